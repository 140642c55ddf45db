//! Process-wide settings for a *binary* to make on the first line of its `main`, never for a
//! library to make on its users' behalf: today one, [`reuse_freed_memory`], the allocator setting
//! a training process wants.
//!
//! It lives here, outside the stages, because it is not part of any of them: it changes glibc's
//! allocator for the whole process and for good, and takes effect only while the calling thread
//! is the process's only thread. No function of this crate calls it; the `gps-ssl` binary, the
//! examples and the benches do, first thing. It needs no feature (a Burn project that takes only
//! the data path and trains on the CPU benefits as much).
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
///
/// Process-wide and irreversible: the process keeps its peak heap until it exits. It is a
/// setting for a binary to make (the `gps-ssl` binary, the benches and the examples make it on
/// the first line of `main`); a library embedding gps-ssl should leave it to its own binary, or
/// set the same values through glibc's tunables before the process starts:
/// `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=2147483647`.
///
/// glibc documents `mallopt` as MT-Unsafe (it writes parameters other threads' `malloc` calls
/// read without a lock), so the change is made only while the calling thread is the process's
/// only thread, checked in `/proc/self/task` (a thread is only ever added by a thread of the
/// process, so none can appear between the check and the call). Called once a thread pool
/// (rayon, tokio, ONNX Runtime) or any other thread has started, it changes nothing.
///
/// Returns whether the setting took effect: `false` where another thread runs, where
/// `/proc/self/task` cannot be read, or where the C library is not glibc (musl, macOS,
/// Windows).
///
/// ```
/// // The first line of a doctest's `main`: no other thread has started.
/// let tuned = gps_ssl::process::reuse_freed_memory();
/// assert_eq!(tuned, cfg!(all(target_os = "linux", target_env = "gnu")));
/// ```
pub fn reuse_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if !only_thread() {
            return false;
        }
        // SAFETY: `mallopt` only changes two numeric parameters of glibc's allocator, both
        // values are in its accepted range, and the calling thread is the process's only thread
        // (checked just above; only this thread could start another, and it does not before
        // both calls return), so no other `malloc` call reads them concurrently.
        let mmap = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) };
        let trim = unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int) };
        mmap == 1 && trim == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Whether the calling thread is the process's only thread: `/proc/self/task` holds one entry
/// per thread of the process. `false` when it cannot be read.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn only_thread() -> bool {
    match std::fs::read_dir("/proc/self/task") {
        Ok(entries) => entries.take(2).count() == 1,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Another thread is alive while the call is made (the test harness's own threads, and one
    /// started here to be sure): `mallopt` must not run.
    #[test]
    fn refused_while_another_thread_runs() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || rx.recv());
        assert!(!reuse_freed_memory());
        drop(tx);
        other.join().unwrap().unwrap_err();
    }
}
