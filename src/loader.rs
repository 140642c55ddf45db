//! The GPS pair loader: positive sampling + augmentation on worker threads, batched for Burn.
//!
//! A [`PairLoader`] turns a [`DataSource`] and a [`PositiveSampler`] into a stream of
//! [`PairBatch`]es. Each epoch the anchors are permuted by a function of `(seed, epoch)`; item
//! `t` of the epoch is anchor `perm[t / m]` paired with its `t % m`-th partner draw (`m` =
//! positives per anchor). Batch `b` holds items `b·B .. (b+1)·B`. Workers assemble whole
//! batches into one contiguous buffer per view and the iterator hands them out in order, so the
//! stream is bit-identical for any number of workers and can be resumed at any batch.
//!
//! The anchors are every sample of the dataset, or — for a sampler whose neighbour table has
//! gaps ([`PositiveSampler::anchors`]) — only the samples with a neighbour row.
//!
//! **Bad samples.** By default a sample that cannot be read or decoded is an error naming its
//! key. With [`PairLoaderBuilder::skip_bad`] it is skipped instead: a pair whose anchor is bad
//! is left out of its batch (which gets shorter), a bad partner is redrawn from the anchor's
//! neighbourhood (up to [`PARTNER_REDRAWS`] times, then the anchor is its own partner). Both
//! rules depend only on the batch's own items, so the stream stays bit-identical for any worker
//! count. The skipped samples of the batches handed out are listed by
//! [`PairLoader::skipped`].
//!
//! ```
//! use gps_ssl::augment::AugRecipe;
//! use gps_ssl::dataset::{open_source, DataSource};
//! use gps_ssl::loader::PairLoaderBuilder;
//! use gps_ssl::sampler::SelfSampler;
//! use std::sync::Arc;
//!
//! let data: Arc<dyn DataSource> = Arc::from(open_source("data/fashion-mnist/train")?);
//! let loader = PairLoaderBuilder::new(data)
//!     .sampler(SelfSampler) // or GpsSampler::from_table(NeighbourTable::read(..)?)
//!     .recipe(AugRecipe::rhflip())
//!     .batch_size(32)
//!     .workers(2)
//!     .seed(0)
//!     .build()?;
//! let batch = loader.iter_epoch(0).next().expect("a batch")?;
//! assert_eq!(batch.shape, [32, 1, 28, 28]);
//! assert_eq!(batch.view_a.len(), 32 * 28 * 28);
//! assert_eq!(batch.anchor_ids, batch.partner_ids); // SelfSampler: both views of one image
//! // The stream is a function of the seed only, not of the worker count.
//! let again = loader.iter_epoch(0).next().expect("a batch")?;
//! assert_eq!(batch.view_b, again.view_b);
//! # Ok::<(), gps_ssl::Error>(())
//! ```

mod batch;
mod builder;
mod burn;
mod iter;

pub use batch::{false_negative_mask, PairBatch};
pub use builder::{
    PairLoaderBuilder, DEFAULT_BATCH_SIZE, DEFAULT_DROP_LAST, DEFAULT_PREFETCH_PER_WORKER,
    DEFAULT_SEED, DEFAULT_SHUFFLE, DEFAULT_SKIP_BAD, DEFAULT_WORKERS, PARTNER_REDRAWS,
};
pub use burn::{BurnPairLoader, TensorPairBatch};
pub use iter::PairIter;

use crate::augment::AugRecipe;
use crate::sampler::PositiveSampler;
use crate::seed::{rng_for, STREAM_SHUFFLE};
use crate::{
    dataset::{BadSample, DataSource},
    Error, Result,
};
use rand::Rng;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Bad samples met in the batches handed out, by id (shared by a loader and its slices).
pub(crate) type SkippedSet = Arc<Mutex<BTreeMap<u64, BadSample>>>;

/// Everything a worker needs, shared read-only.
pub(crate) struct Plan {
    pub(crate) dataset: Arc<dyn DataSource>,
    pub(crate) sampler: Arc<dyn PositiveSampler>,
    pub(crate) recipe: AugRecipe,
    pub(crate) channels: u8,
    pub(crate) out_h: u32,
    pub(crate) out_w: u32,
    /// `(width, height)` every image must have: the first image's, when neither the recipe nor
    /// the source gives the output size (see [`PairLoaderBuilder::build`]).
    pub(crate) fixed_size: Option<(u32, u32)>,
    pub(crate) batch_size: usize,
    pub(crate) workers: usize,
    pub(crate) prefetch: usize,
    pub(crate) seed: u64,
    pub(crate) shuffle: bool,
    pub(crate) drop_last: bool,
    pub(crate) start: (u64, usize),
    /// Skip undecodable samples instead of failing (see the module docs).
    pub(crate) skip_bad: bool,
    /// Bad samples of the batches handed out so far.
    pub(crate) skipped: SkippedSet,
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

    /// The anchor order of `epoch`: a permutation of the anchor ids (`0..n`, or the sampler's
    /// [`anchors`](PositiveSampler::anchors)) drawn from `(seed, epoch)`.
    pub(crate) fn permutation(&self, epoch: u64) -> Vec<u32> {
        let anchors = self.sampler.anchors();
        let n = anchors.map_or(self.dataset.len(), <[u32]>::len);
        let mut perm: Vec<u32> = (0..n as u32).collect();
        if self.shuffle {
            let mut rng = rng_for(self.seed, STREAM_SHUFFLE, epoch, 0, 0);
            for i in (1..n).rev() {
                let j = rng.random_range(0..=i);
                perm.swap(i, j);
            }
        }
        if let Some(ids) = anchors {
            for p in &mut perm {
                *p = ids[*p as usize];
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

    /// Pairs per epoch (the positives per anchor times the number of anchors, or the slice
    /// length), before any bad sample is skipped.
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

    /// Whether undecodable samples are skipped rather than an error (see the module docs).
    pub fn skips_bad(&self) -> bool {
        self.plan.skip_bad
    }

    /// The bad samples skipped in the batches handed out so far (by this loader and its
    /// slices, all epochs), ascending by id. Always empty without
    /// [`skip_bad`](PairLoaderBuilder::skip_bad).
    pub fn skipped(&self) -> Vec<BadSample> {
        self.plan
            .skipped
            .lock()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The epoch the resume point applies to.
    pub fn start_epoch(&self) -> u64 {
        self.plan.start.0
    }

    /// The dataset the loader reads.
    pub fn dataset(&self) -> &Arc<dyn DataSource> {
        &self.plan.dataset
    }

    /// The positive sampler.
    pub fn sampler(&self) -> &Arc<dyn PositiveSampler> {
        &self.plan.sampler
    }

    /// The same loader (dataset, recipe, batches, seed, workers, slice) with another positive
    /// sampler, e.g. re-mined neighbour lists. The new sampler must serve the same anchors with
    /// the same positives per anchor, so the epochs keep their length and anchor order; only
    /// the partners change.
    pub fn with_sampler(&self, sampler: Arc<dyn PositiveSampler>) -> Result<PairLoader> {
        let p = &self.plan;
        sampler.validate(p.dataset.len())?;
        if sampler.positives_per_anchor() != p.sampler.positives_per_anchor() {
            return Err(Error::mismatch(
                "positives per anchor of the new sampler",
                p.sampler.positives_per_anchor(),
                sampler.positives_per_anchor(),
            ));
        }
        let n = p.dataset.len();
        let covers_all = |a: Option<&[u32]>| a.is_none_or(|ids| ids.len() == n);
        if !crate::sampler::same_anchors(sampler.anchors(), p.sampler.anchors())
            || covers_all(sampler.anchors()) != covers_all(p.sampler.anchors())
        {
            return Err(Error::invalid(
                "sampler",
                "the new sampler serves other anchors than the loader's",
            ));
        }
        Ok(PairLoader {
            plan: Arc::new(Plan {
                dataset: p.dataset.clone(),
                sampler,
                recipe: p.recipe.clone(),
                skipped: p.skipped.clone(),
                ..**p
            }),
        })
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
                skipped: p.skipped.clone(),
                range: (lo, hi),
                ..**p
            }),
        }
    }
}
