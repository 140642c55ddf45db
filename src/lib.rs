//! # gps-ssl — Guided Positive Sampling for self-supervised learning
//!
//! Stages (each usable alone, each a `gps-ssl` subcommand):
//! 1. **dataset** sources ([`DataSource`]): image folders, IDX, CIFAR binary, Parquet tables.
//! 2. **embed**: run an ONNX prior over a dataset → `embeddings.parquet`.
//! 3. **knn**: k-NN lists in prior space → `neighbours.parquet`.
//! 4. **loader**: GPS positive pairs, augmented, batched for Burn.
//! 5. **ssl / eval**: SSL methods and their GPS versions; kNN / linear-probe evaluation.

mod dataset;
mod embed;
mod error;
mod knn;
mod loader;
mod prior;
mod progress;
mod runtime;
mod store;

pub use dataset::{
    decode_image, open_source, sha256, sha256_file, CifarFormat, CifarSource, DataSource,
    Fingerprinter, IdxSource, Image, ImageFolderSource, ParquetImageSource,
    ParquetImageSourceBuilder, Sample, CIFAR_PIXELS, CIFAR_SIDE, DEFAULT_CACHED_ROW_GROUPS,
    DEFAULT_IMAGE_COLUMN, DEFAULT_LABEL_COLUMN, FINGERPRINT_VERSION, IDX_IMAGES_MAGIC,
    IDX_LABELS_MAGIC, IMAGE_EXTENSIONS,
};
pub use embed::{
    BadSample, EmbedJob, EmbedSummary, Embedder, EmbedderBuilder, ExecutionProvider, Preprocess,
    ShardSpec, DEFAULT_BATCH_SIZE, DEFAULT_ROW_GROUP_ROWS,
};
pub use error::{Error, Result};
pub use knn::NeighbourLists;
pub use loader::PairBatch;
pub use prior::PriorManifest;
pub use progress::{NoProgress, Progress};
pub use runtime::{find_onnx_runtime, init_onnx_runtime, ORT_DYLIB_ENV};
pub use store::embeddings::{merge_embeddings, EmbeddingTable};
