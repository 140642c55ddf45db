//! [`PairLoaderBuilder`]: configuration of a [`PairLoader`].

use super::{PairLoader, Plan};
use crate::augment::AugRecipe;
use crate::sampler::{PositiveSampler, SelfSampler};
use crate::{dataset::DataSource, Error, Result};
use std::sync::Arc;

/// Default pairs per batch, see [`PairLoaderBuilder::batch_size`].
pub const DEFAULT_BATCH_SIZE: usize = 256;
/// Default worker threads, see [`PairLoaderBuilder::workers`].
pub const DEFAULT_WORKERS: usize = 2;
/// Default batches in flight per worker, see [`PairLoaderBuilder::prefetch`].
pub const DEFAULT_PREFETCH_PER_WORKER: usize = 2;
/// Default seed, see [`PairLoaderBuilder::seed`].
pub const DEFAULT_SEED: u64 = 0;
/// Default shuffle flag, see [`PairLoaderBuilder::shuffle`].
pub const DEFAULT_SHUFFLE: bool = true;
/// Default drop-last flag, see [`PairLoaderBuilder::drop_last`].
pub const DEFAULT_DROP_LAST: bool = false;
/// Default skip-bad flag, see [`PairLoaderBuilder::skip_bad`].
pub const DEFAULT_SKIP_BAD: bool = false;
/// Redraws of a partner that cannot be decoded (with [`PairLoaderBuilder::skip_bad`]) before
/// the anchor is paired with itself.
pub const PARTNER_REDRAWS: usize = 8;

/// Builds a [`PairLoader`]. Setters consume `self`; [`build`](Self::build) validates.
///
/// ```no_run
/// # fn demo(data: std::sync::Arc<dyn gps_ssl::dataset::DataSource>,
/// #         lists: std::sync::Arc<gps_ssl::knn::NeighbourLists>) -> gps_ssl::Result<()> {
/// use gps_ssl::{augment::AugRecipe, sampler::GpsSampler, loader::PairLoaderBuilder};
/// let loader = PairLoaderBuilder::new(data)
///     .sampler(GpsSampler::new(lists))
///     .recipe(AugRecipe::simclr())
///     .batch_size(256)
///     .workers(4)
///     .seed(42)
///     .build()?;
/// for batch in loader.iter_epoch(0) {
///     let batch = batch?; // PairBatch: view_a / view_b [256, C, H, W]
/// #   let _ = batch;
/// }
/// # Ok(()) }
/// ```
pub struct PairLoaderBuilder {
    dataset: Arc<dyn DataSource>,
    sampler: Arc<dyn PositiveSampler>,
    recipe: AugRecipe,
    batch_size: usize,
    workers: usize,
    prefetch: Option<usize>,
    seed: u64,
    shuffle: bool,
    drop_last: bool,
    skip_bad: bool,
    start: (u64, usize),
}

impl std::fmt::Debug for PairLoaderBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairLoaderBuilder")
            .field("dataset", &self.dataset.describe())
            .field("sampler", &self.sampler)
            .field("recipe", &self.recipe.name)
            .field("batch_size", &self.batch_size)
            .field("workers", &self.workers)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl PairLoaderBuilder {
    /// A builder over `dataset` with plain-SSL pairs ([`SelfSampler`]) and
    /// [`AugRecipe::rhflip`].
    pub fn new(dataset: Arc<dyn DataSource>) -> Self {
        PairLoaderBuilder {
            dataset,
            sampler: Arc::new(SelfSampler),
            recipe: AugRecipe::rhflip(),
            batch_size: DEFAULT_BATCH_SIZE,
            workers: DEFAULT_WORKERS,
            prefetch: None,
            seed: DEFAULT_SEED,
            shuffle: DEFAULT_SHUFFLE,
            drop_last: DEFAULT_DROP_LAST,
            skip_bad: DEFAULT_SKIP_BAD,
            start: (0, 0),
        }
    }

    /// The positive sampler. Defaults to [`SelfSampler`] (plain SSL); pass a
    /// [`GpsSampler`](crate::sampler::GpsSampler) for GPS pairs.
    pub fn sampler(mut self, sampler: impl PositiveSampler + 'static) -> Self {
        self.sampler = Arc::new(sampler);
        self
    }

    /// The positive sampler, shared. Defaults to [`SelfSampler`].
    pub fn sampler_arc(mut self, sampler: Arc<dyn PositiveSampler>) -> Self {
        self.sampler = sampler;
        self
    }

    /// The augmentation recipe. Defaults to [`AugRecipe::rhflip`].
    pub fn recipe(mut self, recipe: AugRecipe) -> Self {
        self.recipe = recipe;
        self
    }

    /// Pairs per batch. Defaults to [`DEFAULT_BATCH_SIZE`].
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    /// Worker threads; 0 assembles batches on the consuming thread. Defaults to
    /// [`DEFAULT_WORKERS`]. The batches do not depend on it.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// Batches in flight (dispatched but not yet consumed). Defaults to
    /// [`DEFAULT_PREFETCH_PER_WORKER`] × workers (at least 1).
    pub fn prefetch(mut self, n: usize) -> Self {
        self.prefetch = Some(n);
        self
    }

    /// Seed of every random choice. Defaults to [`DEFAULT_SEED`].
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Reshuffle the anchors every epoch (the permutation is a function of `(seed, epoch)`).
    /// Defaults to [`DEFAULT_SHUFFLE`].
    pub fn shuffle(mut self, yes: bool) -> Self {
        self.shuffle = yes;
        self
    }

    /// Drop the last, incomplete batch of an epoch. Defaults to [`DEFAULT_DROP_LAST`].
    pub fn drop_last(mut self, yes: bool) -> Self {
        self.drop_last = yes;
        self
    }

    /// Skip samples that cannot be read or decoded instead of failing: a bad anchor's pairs
    /// are left out of their batch (which gets shorter), a bad partner is redrawn from further
    /// sampler slots (up to [`PARTNER_REDRAWS`] times, then the anchor is its own partner).
    /// Both rules depend only on the batch's own items, so the batches stay the same for any
    /// worker count. The skipped samples are listed by [`PairLoader::skipped`]. Defaults to
    /// [`DEFAULT_SKIP_BAD`] (a bad sample is an error naming its key).
    pub fn skip_bad(mut self, yes: bool) -> Self {
        self.skip_bad = yes;
        self
    }

    /// Resume point: [`PairLoader::iter_epoch`]`(epoch)` starts at batch `batch` and yields
    /// exactly the batches an uninterrupted run would have yielded from there. Defaults to
    /// `(0, 0)`.
    pub fn start_at(mut self, epoch: u64, batch: usize) -> Self {
        self.start = (epoch, batch);
        self
    }

    /// Validates the configuration (recipe, sampler against the dataset size, sizes) and fixes
    /// the view shape `[C, H, W]`, by rules that do not depend on which file sorts first:
    /// - `C`: 3 with [`AugRecipe::to_rgb`]; else the source's declared
    ///   [`DataSource::channels`] (IDX: 1, CIFAR: 3); else 3 (grey images are replicated to
    ///   RGB, as torchvision's `ImageFolder` converts every image). An RGB image in a source
    ///   declared grey is an error naming it.
    /// - `H, W`: [`AugRecipe::output_size`]; else the source's declared
    ///   [`DataSource::image_size`]; else the first anchor's size (the first decodable one,
    ///   with `skip_bad`), and then an image of another size is an error naming it (set an
    ///   output size to resize images of mixed sizes).
    pub fn build(self) -> Result<PairLoader> {
        self.recipe.validate()?;
        if self.batch_size == 0 {
            return Err(Error::invalid("batch_size", "must be at least 1"));
        }
        let n = self.dataset.len();
        if n == 0 {
            return Err(Error::invalid(
                "dataset",
                format!("{} is empty", self.dataset.describe()),
            ));
        }
        if n > u32::MAX as usize {
            return Err(Error::invalid(
                "dataset",
                format!("{n} samples exceed u32 ids"),
            ));
        }
        self.sampler.validate(n)?;
        let anchors = self.sampler.anchors().map(<[u32]>::to_vec);
        let anchor_count = anchors.as_ref().map_or(n, Vec::len);
        let mut ids = (0..anchor_count).map(|i| anchors.as_ref().map_or(i, |a| a[i] as usize));
        let declared = self.recipe.output_size.or_else(|| {
            self.dataset
                .image_size()
                .map(|(width, height)| [height, width])
        });
        let first = loop {
            if declared.is_some() {
                break None;
            }
            let Some(id) = ids.next() else {
                return Err(Error::invalid(
                    "dataset",
                    format!(
                        "{}: no sample could be decoded (all skipped as bad)",
                        self.dataset.describe()
                    ),
                ));
            };
            match self.dataset.get(id) {
                Ok(s) => break Some(s),
                Err(_) if self.skip_bad => continue,
                Err(e) => return Err(e),
            }
        };
        let fixed_size = first.as_ref().map(|s| (s.image.width, s.image.height));
        let [h, w] = declared
            .or(fixed_size.map(|(width, height)| [height, width]))
            .unwrap_or_default();
        if h == 0 || w == 0 {
            return Err(Error::invalid(
                "output size",
                format!("{h}x{w} (from the recipe, the source or its first image)"),
            ));
        }
        let channels = if self.recipe.to_rgb {
            3
        } else {
            self.dataset.channels().unwrap_or(3)
        };
        if channels != 1 && channels != 3 {
            return Err(Error::invalid(
                "dataset",
                format!(
                    "{} declares {channels} channels (1 or 3 are supported)",
                    self.dataset.describe()
                ),
            ));
        }
        self.recipe.normalize.check(channels as usize)?;
        let prefetch = self
            .prefetch
            .unwrap_or(DEFAULT_PREFETCH_PER_WORKER * self.workers.max(1))
            .max(1);
        let items = anchor_count * self.sampler.positives_per_anchor();
        Ok(PairLoader {
            plan: Arc::new(Plan {
                dataset: self.dataset,
                sampler: self.sampler,
                recipe: self.recipe,
                channels,
                out_h: h,
                out_w: w,
                fixed_size,
                batch_size: self.batch_size,
                workers: self.workers,
                prefetch,
                seed: self.seed,
                shuffle: self.shuffle,
                drop_last: self.drop_last,
                skip_bad: self.skip_bad,
                skipped: Default::default(),
                start: self.start,
                range: (0, items),
            }),
        })
    }
}
