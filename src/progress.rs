//! Progress reporting from long library jobs to whoever draws it (the CLI draws indicatif bars).
//!
//! ```
//! use gps_ssl::progress::Progress;
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! #[derive(Default)]
//! struct Count(AtomicU64);
//! impl Progress for Count {
//!     fn advance(&self, n: u64) {
//!         self.0.fetch_add(n, Ordering::Relaxed);
//!     }
//! }
//! let count = Count::default();
//! count.start("embed", 10);
//! count.advance(4);
//! assert_eq!(count.0.load(Ordering::Relaxed), 4);
//! ```

/// Receives progress from a long job. Implementations must be cheap and thread-safe.
pub trait Progress: Send + Sync {
    /// Announces the total amount of work, in the job's unit (images, queries, steps).
    fn start(&self, _stage: &str, _total: u64) {}
    /// Reports `n` more units done.
    fn advance(&self, _n: u64) {}
    /// Reports that the stage has finished.
    fn finish(&self) {}
}

/// A [`Progress`] that ignores everything. The default for library calls.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
