//! # gps-ssl — Guided Positive Sampling for self-supervised learning
//!
//! Stages (each usable alone, each a `gps-ssl` subcommand):
//! 1. **dataset** sources ([`DataSource`]): image folders, IDX, CIFAR binary, Parquet tables.
//! 2. **embed**: run an ONNX prior over a dataset → `embeddings.parquet`.
//! 3. **knn**: k-NN lists in prior space → `neighbours.parquet`.
//! 4. **loader**: GPS positive pairs, augmented, batched for Burn.
//! 5. **ssl / eval**: SSL methods and their GPS versions; kNN / linear-probe evaluation.

mod dataset;
mod error;
mod eval;
mod knn;
mod loader;
mod progress;
mod store;

pub use dataset::{DataSource, Image, Sample};
pub use error::{Error, Result};
pub use eval::{
    markdown_table, mean_std, read_results_json, recall_at_1, recall_at_k, write_figure,
    write_results_json, AugSetting, FeatureSet, Gallery, KnnClassifier, KnnClassifierBuilder,
    KnnPredictions, KnnReport, L2Score, LinearModel, LinearProbe, LinearProbeBuilder,
    LinearProbeReport, Metric, RunRecord, FIGURE_HEIGHT, FIGURE_WIDTH,
};
pub use knn::NeighbourLists;
pub use loader::PairBatch;
pub use progress::{NoProgress, Progress};
