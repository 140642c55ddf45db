//! # gps-ssl — Guided Positive Sampling for self-supervised learning
//!
//! Stages (each usable alone, each a `gps-ssl` subcommand):
//! 1. **dataset** sources ([`DataSource`]): image folders, IDX, CIFAR binary, Parquet tables.
//! 2. **embed**: run an ONNX prior over a dataset → `embeddings.parquet`.
//! 3. **knn**: k-NN lists in prior space → `neighbours.parquet`.
//! 4. **loader**: GPS positive pairs, augmented, batched for Burn.
//! 5. **ssl / eval**: SSL methods and their GPS versions; kNN / linear-probe evaluation.

mod augment;
mod dataset;
mod error;
mod knn;
mod loader;
mod progress;
mod sampler;
mod seed;
mod store;

pub use augment::{
    gaussian_kernel, kernel_size, sample_rrc, AugRecipe, Augmenter, BlurSpec, CropBox, CropSpec,
    JitterParams, JitterSpec, Normalize, ViewParams, ViewRecipe, DEFAULT_BLUR_KERNEL_FRAC,
    IMAGENET_MEAN, IMAGENET_STD, LUMA, SOLARIZE_THRESHOLD,
};
pub use dataset::{DataSource, Image, Sample};
pub use error::{Error, Result};
pub use knn::NeighbourLists;
pub use loader::{
    false_negative_mask, BurnPairLoader, PairBatch, PairIter, PairLoader, PairLoaderBuilder,
    TensorPairBatch, DEFAULT_BATCH_SIZE, DEFAULT_DROP_LAST, DEFAULT_PREFETCH_PER_WORKER,
    DEFAULT_SEED, DEFAULT_SHUFFLE, DEFAULT_WORKERS,
};
pub use progress::{NoProgress, Progress};
pub use sampler::{
    GpsSampler, PositiveSampler, SelfSampler, DEFAULT_INCLUDE_SELF, DEFAULT_POSITIVES,
};
