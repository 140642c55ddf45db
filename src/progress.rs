//! Progress reporting from long library jobs to whoever draws it (the CLI draws indicatif bars).

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
