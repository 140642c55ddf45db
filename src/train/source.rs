//! Where the trainer's batches come from.

use crate::{loader::PairBatch, Result};

/// A resumable stream of [`PairBatch`]es, epoch by epoch.
///
/// The pair loader implements this; so does [`FnSource`] for a closure. GPS or plain SSL is the
/// source's business (which partner it draws), never the trainer's.
pub trait PairSource {
    /// Batches in one epoch (sets the schedule length).
    fn batches_per_epoch(&self) -> usize;

    /// The batches of `epoch` starting at batch `start_batch` (0 for a fresh epoch; the
    /// checkpointed position on resume). Must yield the same batches for the same arguments.
    fn epoch(
        &mut self,
        epoch: usize,
        start_batch: usize,
    ) -> Result<Box<dyn Iterator<Item = Result<PairBatch>> + '_>>;
}

/// A [`PairSource`] from a closure `f(epoch, start_batch) -> iterator`.
pub struct FnSource<'a, F> {
    batches_per_epoch: usize,
    f: F,
    _borrow: std::marker::PhantomData<&'a ()>,
}

impl<'a, F, I> FnSource<'a, F>
where
    F: FnMut(usize, usize) -> I,
    I: Iterator<Item = Result<PairBatch>> + 'a,
{
    /// Wraps `f`, which yields `batches_per_epoch` batches per epoch.
    pub fn new(batches_per_epoch: usize, f: F) -> Self {
        Self {
            batches_per_epoch,
            f,
            _borrow: std::marker::PhantomData,
        }
    }
}

impl<'a, F, I> PairSource for FnSource<'a, F>
where
    F: FnMut(usize, usize) -> I,
    I: Iterator<Item = Result<PairBatch>> + 'a,
{
    fn batches_per_epoch(&self) -> usize {
        self.batches_per_epoch
    }

    fn epoch(
        &mut self,
        epoch: usize,
        start_batch: usize,
    ) -> Result<Box<dyn Iterator<Item = Result<PairBatch>> + '_>> {
        Ok(Box::new((self.f)(epoch, start_batch)))
    }
}

impl PairSource for crate::loader::PairLoader {
    fn batches_per_epoch(&self) -> usize {
        self.num_batches()
    }

    fn epoch(
        &mut self,
        epoch: usize,
        start_batch: usize,
    ) -> Result<Box<dyn Iterator<Item = Result<PairBatch>> + '_>> {
        Ok(Box::new(self.iter_epoch_from(epoch as u64, start_batch)))
    }
}
