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
mod knn;
mod loader;
mod progress;
mod ssl;
mod store;
mod train;

pub use dataset::{DataSource, Image, Sample};
pub use error::{Error, Result};
pub use knn::NeighbourLists;
pub use loader::PairBatch;
pub use progress::{NoProgress, Progress};
pub use ssl::{
    barlow_twins_loss, batch_tensors, byol_regression_loss, cosine_momentum, ema_update,
    embedding_std, export_tensors, import_tensors, info_nce_loss, l2_normalize, nt_xent_loss,
    vicreg_loss, Block, BlockKind, LossConfig, Method, MethodKind, MethodState, Mlp, MlpConfig,
    NetworkConfig, ResNet, ResNetConfig, SslNetwork, StepStats, Stem, SupportQueue, TensorBlob,
    VicRegWeights, ViewOutput,
};
pub use train::{
    Checkpoint, CsvLog, FnSource, LrSchedule, Optimizer, OptimizerConfig, OptimizerState,
    PairSource, Position, StepRecord, TrainConfig, Trainer, CHECKPOINT_FILE, CONFIG_FILE,
    DEFAULT_HIDDEN_DIM, DEFAULT_LR, DEFAULT_PROJECTION_DIM, DEFAULT_WARMUP_EPOCHS, LOG_FILE,
    LOG_HEADER,
};
