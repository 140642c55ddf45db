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

pub use dataset::{DataSource, Image, Sample};
pub use embed::{
    BadSample, EmbedJob, EmbedSummary, Embedder, EmbedderBuilder, ExecutionProvider, Preprocess,
    ShardSpec, DEFAULT_BATCH_SIZE, DEFAULT_ROW_GROUP_ROWS,
};
pub use error::{Error, Result};
pub use knn::{
    default_purity_ks, estimate_seconds, label_purity, AdaptiveTau, ExactIndex, HnswIndex,
    HnswParams, KnnIndex, KnnMethod, KnnOutput, KnnSummary, Metric, NeighbourBuilder,
    NeighbourLists, NeighbourSearch, Purity, Radius, DEFAULT_HNSW_EF_CONSTRUCTION,
    DEFAULT_HNSW_EF_SEARCH, DEFAULT_HNSW_M, DEFAULT_KNN_INCLUDE_SELF, DEFAULT_KNN_K,
    DEFAULT_KNN_METHOD, DEFAULT_KNN_METRIC, DEFAULT_KNN_RECALL_SAMPLE, DEFAULT_KNN_REFINE_FACTOR,
    DEFAULT_KNN_SEED, DEFAULT_KNN_THREADS, EXACT_FLOPS, EXACT_TILE, HNSW_SECONDS_PER_POINT_DIM,
};
pub use loader::PairBatch;
pub use prior::{sha256_file, PriorManifest};
pub use progress::{NoProgress, Progress};
pub use runtime::{find_onnx_runtime, init_onnx_runtime, ORT_DYLIB_ENV};
pub use store::embeddings::{merge_embeddings, EmbeddingTable};
pub use store::{NeighbourTable, META_DATASET_FINGERPRINT, META_EMBEDDINGS_SHA256, META_KNN_K};
