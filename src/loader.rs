//! The GPS pair loader: positive sampling + augmentation on worker threads, batched for Burn.
//!
//! A [`PairLoader`] turns a [`DataSource`] and a [`PositiveSampler`] into a stream of
//! [`PairBatch`]es. Each epoch the anchors are permuted by a function of `(seed, epoch)`; item
//! `t` of the epoch is anchor `perm[t / m]` paired with its `t % m`-th partner draw (`m` =
//! positives per anchor). Batch `b` holds items `b·B .. (b+1)·B`. Workers assemble whole
//! batches into one contiguous buffer per view and the iterator hands them out in order, so the
//! stream is bit-identical for any number of workers and can be resumed at any batch.

mod batch;
mod builder;
mod burn;
mod iter;

pub use batch::PairBatch;
pub use builder::{
    PairLoaderBuilder, DEFAULT_BATCH_SIZE, DEFAULT_DROP_LAST, DEFAULT_PREFETCH_PER_WORKER,
    DEFAULT_SEED, DEFAULT_SHUFFLE, DEFAULT_WORKERS,
};
pub use burn::{BurnPairLoader, TensorPairBatch};
pub use iter::PairIter;

use crate::augment::AugRecipe;
use crate::sampler::PositiveSampler;
use crate::seed::{rng_for, STREAM_SHUFFLE};
use crate::DataSource;
use rand::Rng;
use std::sync::Arc;

/// Everything a worker needs, shared read-only.
pub(crate) struct Plan {
    pub(crate) dataset: Arc<dyn DataSource>,
    pub(crate) sampler: Arc<dyn PositiveSampler>,
    pub(crate) recipe: AugRecipe,
    pub(crate) channels: u8,
    pub(crate) out_h: u32,
    pub(crate) out_w: u32,
    pub(crate) batch_size: usize,
    pub(crate) workers: usize,
    pub(crate) prefetch: usize,
    pub(crate) seed: u64,
    pub(crate) shuffle: bool,
    pub(crate) drop_last: bool,
    pub(crate) start: (u64, usize),
    /// Item range `[lo, hi)` of every epoch served by this loader (see [`PairLoader::slice`]).
    pub(crate) range: (usize, usize),
}

impl Plan {
    fn items(&self) -> usize {
        self.range.1 - self.range.0
    }

    fn batches(&self) -> usize {
        let n = self.items();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// Item indices (epoch-global) of batch `b`.
    pub(crate) fn batch_items(&self, b: usize) -> std::ops::Range<usize> {
        let lo = self.range.0 + b * self.batch_size;
        lo..(lo + self.batch_size).min(self.range.1)
    }

    /// The anchor order of `epoch`: a permutation of `0..n` drawn from `(seed, epoch)`.
    pub(crate) fn permutation(&self, epoch: u64) -> Vec<u32> {
        let n = self.dataset.len();
        let mut perm: Vec<u32> = (0..n as u32).collect();
        if self.shuffle {
            let mut rng = rng_for(self.seed, STREAM_SHUFFLE, epoch, 0, 0);
            for i in (1..n).rev() {
                let j = rng.random_range(0..=i);
                perm.swap(i, j);
            }
        }
        perm
    }
}

/// Streams [`PairBatch`]es; cheap to clone (shares its configuration). Built by
/// [`PairLoaderBuilder`].
#[derive(Clone)]
pub struct PairLoader {
    pub(crate) plan: Arc<Plan>,
}

impl std::fmt::Debug for PairLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.plan;
        f.debug_struct("PairLoader")
            .field("dataset", &p.dataset.describe())
            .field("sampler", &p.sampler)
            .field("recipe", &p.recipe.name)
            .field("view_shape", &self.view_shape())
            .field("batch_size", &p.batch_size)
            .field("workers", &p.workers)
            .field("seed", &p.seed)
            .finish_non_exhaustive()
    }
}

impl PairLoader {
    /// The batches of `epoch`, in order. For the builder's resume epoch it starts at the resume
    /// batch; otherwise at batch 0. Dropping the iterator stops and joins its workers.
    pub fn iter_epoch(&self, epoch: u64) -> PairIter {
        let first = if epoch == self.plan.start.0 {
            self.plan.start.1
        } else {
            0
        };
        self.iter_epoch_from(epoch, first)
    }

    /// The batches of `epoch` from batch `first` on.
    pub fn iter_epoch_from(&self, epoch: u64, first: usize) -> PairIter {
        PairIter::new(self.plan.clone(), epoch, first)
    }

    /// Pairs per epoch (the positives per anchor times the dataset size, or the slice length).
    pub fn num_items(&self) -> usize {
        self.plan.items()
    }

    /// Batches per epoch (counting a last partial batch unless `drop_last`).
    pub fn num_batches(&self) -> usize {
        self.plan.batches()
    }

    /// `[C, H, W]` of one view.
    pub fn view_shape(&self) -> [usize; 3] {
        [
            self.plan.channels as usize,
            self.plan.out_h as usize,
            self.plan.out_w as usize,
        ]
    }

    /// Pairs per batch.
    pub fn batch_size(&self) -> usize {
        self.plan.batch_size
    }

    /// The augmentation recipe (save it with the run).
    pub fn recipe(&self) -> &AugRecipe {
        &self.plan.recipe
    }

    /// The epoch the resume point applies to.
    pub fn start_epoch(&self) -> u64 {
        self.plan.start.0
    }

    /// A loader over items `start..end` (relative to this loader's items) of every epoch, with
    /// the same permutation and draws as the full loader (used to split an epoch between
    /// devices). Bounds are clamped to `num_items()`.
    pub fn slice(&self, start: usize, end: usize) -> PairLoader {
        let p = &self.plan;
        let lo = (p.range.0 + start).min(p.range.1);
        let hi = (p.range.0 + end).clamp(lo, p.range.1);
        PairLoader {
            plan: Arc::new(Plan {
                dataset: p.dataset.clone(),
                sampler: p.sampler.clone(),
                recipe: p.recipe.clone(),
                range: (lo, hi),
                ..**p
            }),
        }
    }
}
