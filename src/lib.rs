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
mod embed;
mod error;
mod knn;
mod loader;
mod prior;
mod progress;
mod runtime;
mod sampler;
mod seed;
mod store;

pub use augment::{
    gaussian_kernel, kernel_size, sample_rrc, AugRecipe, Augmenter, BlurSpec, CropBox, CropSpec,
    JitterParams, JitterSpec, Normalize, ViewParams, ViewRecipe, DEFAULT_BLUR_KERNEL_FRAC,
    IMAGENET_MEAN, IMAGENET_STD, LUMA, SOLARIZE_THRESHOLD,
};
pub use dataset::{
    decode_image, open_source, sha256, sha256_file, CifarFormat, CifarSource, DataSource,
    Fingerprinter, IdxSource, Image, ImageFolderSource, ParquetImageSource,
    ParquetImageSourceBuilder, Sample, CIFAR10_CLASSES, CIFAR_PIXELS, CIFAR_SIDE,
    DEFAULT_CACHED_ROW_GROUPS, DEFAULT_IMAGE_COLUMN, DEFAULT_LABEL_COLUMN, FINGERPRINT_VERSION,
    IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, IMAGE_EXTENSIONS,
};
pub use embed::{
    BadSample, EmbedJob, EmbedSummary, Embedder, EmbedderBuilder, ExecutionProvider, Preprocess,
    ShardSpec, DEFAULT_BATCH_SIZE as DEFAULT_EMBED_BATCH_SIZE, DEFAULT_ROW_GROUP_ROWS,
};
pub use error::{Error, Result};
pub use knn::NeighbourLists;
pub use loader::{
    BurnPairLoader, PairBatch, PairIter, PairLoader, PairLoaderBuilder, TensorPairBatch,
    DEFAULT_BATCH_SIZE as DEFAULT_LOADER_BATCH_SIZE, DEFAULT_DROP_LAST, DEFAULT_PREFETCH_PER_WORKER,
    DEFAULT_SEED as DEFAULT_LOADER_SEED, DEFAULT_SHUFFLE, DEFAULT_WORKERS,
};
pub use progress::{NoProgress, Progress};
pub use sampler::{
    GpsSampler, PositiveSampler, SelfSampler, DEFAULT_INCLUDE_SELF, DEFAULT_POSITIVES,
};
pub use prior::PriorManifest;
pub use runtime::{find_onnx_runtime, init_onnx_runtime, ORT_DYLIB_ENV};
pub use store::embeddings::{merge_embeddings, EmbeddingTable};
