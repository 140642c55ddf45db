//! Keep freed memory for reuse: the allocator setting a training process wants.
//!
//! A training step allocates and frees the same large buffers every step (activations,
//! im2col columns, gradients: 1–100 MB each at batch 256). glibc's `malloc` serves blocks over
//! its mmap threshold (128 KiB, raised on the fly to at most 32 MiB) with fresh `mmap`s and
//! gives the top of its heaps back to the kernel once more than the trim threshold is free, so
//! every step pays again for the page faults (and the kernel's zeroing) of memory it just freed.
//! How badly depends on the process's history: after an in-process ONNX Runtime embedding (the
//! demo's first stage), the bundled demo's SimCLR step went from 0.81 to 1.11 s with 30× the
//! page faults (`gps-ssl experiment`, 1 epoch, 2-core VM). [`reuse_freed_memory`] raises both
//! thresholds so freed blocks stay in the heap and are handed out again, as PyTorch's caching
//! allocator does. The price: the process keeps its peak heap until it exits.

/// Largest block served from the heap instead of its own `mmap` (1 GiB).
pub const MMAP_THRESHOLD: usize = 1 << 30;

/// Free memory at the top of a heap kept instead of returned to the kernel (2 GiB − 1).
pub const TRIM_THRESHOLD: usize = i32::MAX as usize;

/// Sets glibc `malloc`'s mmap and trim thresholds to [`MMAP_THRESHOLD`] and
/// [`TRIM_THRESHOLD`], so freed blocks are reused rather than unmapped and faulted in again.
/// Process-wide; call it once, first thing in `main`, before any other thread starts (glibc
/// documents `mallopt` as MT-Unsafe: it writes parameters that other threads' `malloc` calls
/// read without a lock). The `gps-ssl` binary, the `ssl_step` bench and the examples do.
/// Returns whether the setting took effect: `false` where the C library is not glibc (musl,
/// macOS, Windows), where nothing is changed.
///
/// ```
/// let tuned = gps_ssl::train::reuse_freed_memory();
/// assert_eq!(tuned, cfg!(all(target_os = "linux", target_env = "gnu")));
/// ```
pub fn reuse_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only changes two numeric parameters of glibc's allocator, both
        // values are in its accepted range, and callers make this call before other threads
        // run (see above).
        let mmap = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) };
        let trim = unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int) };
        mmap == 1 && trim == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
