//! # gps-ssl — Guided Positive Sampling for self-supervised learning
//!
//! Plain SSL makes its positive pair from two augmentations of one image. GPS-SSL embeds the
//! training set once with a fixed pre-trained *prior*, finds each image's k nearest neighbours
//! in prior space, and pairs every image `x` with a partner `x'` drawn uniformly from that
//! neighbourhood `B(x)`: the positive pair becomes `(DA(x), DA(x'))`. Loss, network and
//! optimiser stay those of the SSL method, so GPS lives entirely in the data loader.
//!
//! ## Stages
//! Each stage is a library API here and a `gps-ssl` subcommand; each reads and writes a file or
//! a typed value, so any of them can be used alone.
//!
//! | stage | API | output |
//! |---|---|---|
//! | dataset sources | [`open_source`], [`DataSource`] ([`IdxSource`], [`CifarSource`], [`ImageFolderSource`], [`ParquetImageSource`]) | [`Sample`]s with a dataset fingerprint |
//! | embed | [`Embedder`], [`EmbedJob`], [`PriorManifest`] | `embeddings.parquet` ([`EmbeddingTable`]) |
//! | neighbours | [`NeighbourBuilder`] (exact / HNSW / auto), [`label_purity`] | `neighbours.parquet` ([`NeighbourTable`], [`NeighbourLists`]) |
//! | loader | [`PairLoaderBuilder`] with [`SelfSampler`] or [`GpsSampler`] and an [`AugRecipe`] | [`PairBatch`] `[batch, C, H, W]` ×2, or Burn tensors via [`BurnPairLoader`] |
//! | train | [`Trainer`], [`TrainConfig`], [`Method`] (SimCLR, BYOL, Barlow Twins, VICReg, MoCo v3, NNCLR) | checkpoints, `log.csv`, `config.json` |
//! | eval | [`KnnClassifier`], [`LinearProbe`], [`recall_at_1`] | accuracies, [`RunRecord`] |
//! | export | [`export::export_encoder`], [`export::load_encoder`], [`export::TrainedEncoder`] | `encoder.safetensors` (torchvision names), `encoder.onnx` + prior manifest, `features.parquet` |
//! | experiment | [`run_experiment`], [`ExperimentConfig`] | `results.json`, `table.md`, `figure.png` |
//!
//! ## Example: GPS pairs for your own Burn loop
//! ```no_run
//! use std::sync::Arc;
//! use gps_ssl::{open_source, AugRecipe, GpsSampler, NeighbourTable, PairLoaderBuilder};
//!
//! let data: Arc<dyn gps_ssl::DataSource> = Arc::from(open_source("data/fashion-mnist/train")?);
//! let table = NeighbourTable::read("neighbours.parquet")?;
//! table.check_dataset(&data.fingerprint(), data.len())?; // refuse lists made for other data
//! let loader = PairLoaderBuilder::new(data)
//!     .sampler(GpsSampler::from_table(table)) // ids without a row (bad images) are never drawn
//!     .recipe(AugRecipe::rhflip())
//!     .batch_size(256)
//!     .seed(0)
//!     .build()?;
//! for batch in loader.iter_epoch(0) {
//!     let batch = batch?; // view_a / view_b: [256, 1, 28, 28] f32, anchor_ids, partner_ids
//!     # let _ = batch;
//! }
//! # Ok::<(), gps_ssl::Error>(())
//! ```
//!
//! ## Features
//! - default: CPU — burn's `flex` backend with autodiff; ONNX Runtime's CPU execution provider,
//!   loaded at run time from `ORT_DYLIB_PATH` or the `onnxruntime` Python wheel.
//! - `cuda`: burn's CUDA backend and ONNX Runtime's CUDA execution provider.

mod augment;
mod dataset;
mod embed;
mod error;
mod eval;
mod experiment;
pub mod export;
mod knn;
mod loader;
mod prior;
mod progress;
mod runtime;
mod sampler;
mod seed;
mod ssl;
mod store;
mod train;

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
pub use eval::{
    chain_label, markdown_table, mean_std, read_results_json, recall_at_1, recall_at_k,
    rounds_table, write_figure, write_results_json, AugSetting, FeatureSet, Gallery, KnnClassifier,
    KnnClassifierBuilder, KnnPredictions, KnnReport, L2Score, LinearModel, LinearProbe,
    LinearProbeBuilder, LinearProbeReport, Metric as ReportMetric, RunRecord, FIGURE_HEIGHT,
    FIGURE_WIDTH,
};
pub use experiment::{
    encode_features, ensure_embeddings, ensure_neighbours, pixel_embeddings, run_experiment,
    vectors_sha256, ExperimentConfig, ExperimentOutput, PriorReport, PriorVectors,
    EXPERIMENT_LOG_FILE, NO_PRIOR, PIXEL_PRIOR, RECORD_FILE, RUNS_DIR,
};
pub use knn::{
    default_purity_ks, estimate_seconds, label_purity, AdaptiveTau, ExactIndex, HnswIndex,
    HnswParams, Insertion, KnnIndex, KnnMethod, KnnOutput, KnnSummary, Metric, NeighbourBuilder,
    NeighbourLists, NeighbourSearch, Purity, Radius, DEFAULT_HNSW_EF_CONSTRUCTION,
    DEFAULT_HNSW_EF_SEARCH, DEFAULT_HNSW_M, DEFAULT_KNN_INCLUDE_SELF, DEFAULT_KNN_K,
    DEFAULT_KNN_METHOD, DEFAULT_KNN_METRIC, DEFAULT_KNN_RECALL_SAMPLE, DEFAULT_KNN_REFINE_FACTOR,
    DEFAULT_KNN_SEED, DEFAULT_KNN_THREADS, EXACT_FLOPS, EXACT_TILE, HNSW_SECONDS_PER_POINT_DIM,
};
pub use loader::{
    false_negative_mask, BurnPairLoader, PairBatch, PairIter, PairLoader, PairLoaderBuilder,
    TensorPairBatch, DEFAULT_BATCH_SIZE as DEFAULT_LOADER_BATCH_SIZE, DEFAULT_DROP_LAST,
    DEFAULT_PREFETCH_PER_WORKER, DEFAULT_SEED as DEFAULT_LOADER_SEED, DEFAULT_SHUFFLE,
    DEFAULT_SKIP_BAD, DEFAULT_WORKERS, PARTNER_REDRAWS,
};
pub use prior::PriorManifest;
pub use progress::{NoProgress, Progress};
pub use runtime::{find_onnx_runtime, init_onnx_runtime, ORT_DYLIB_ENV};
pub use sampler::{
    GpsSampler, MixSampler, PositiveSampler, SelfSampler, DEFAULT_INCLUDE_SELF, DEFAULT_POSITIVES,
};
pub use ssl::{
    barlow_twins_loss, batch_tensors, byol_regression_loss, conv2d, cosine_momentum, ema_update,
    embedding_std, export_tensors, import_tensors, info_nce_loss, l2_normalize, nt_xent_loss,
    vicreg_loss, Block, BlockKind, LossConfig, Method, MethodKind, MethodState, Mlp, MlpConfig,
    NetworkConfig, ResNet, ResNetConfig, SslNetwork, Stem, StepStats, SupportQueue, TensorBlob,
    VicRegWeights, ViewOutput,
};
pub use store::embeddings::{merge_embeddings, EmbeddingTable};
pub use store::{
    NeighbourTable, CONTENT_METADATA_KEYS, META_DATASET_FINGERPRINT, META_DATASET_LEN,
    META_EMBEDDINGS_SHA256, META_EMBEDDINGS_VECTORS_SHA256, META_KNN_K,
};
pub use train::{
    canonical_hash, canonical_json, mine_lists, read_losses, record_skipped, remined_file, seeded,
    seeded_module, Checkpoint, CsvLog, DataConfig, DataIdentity, FnSource, LrSchedule, MinedLists,
    NeighbourProvenance, Optimizer, OptimizerConfig, OptimizerState, PairData, PairSource,
    Position, PriorProvenance, RemineConfig, StepRecord, TrainConfig, Trainer, CHECKPOINT_FILE,
    CONFIG_FILE, DEFAULT_ADAMW_LR, DEFAULT_HIDDEN_DIM, DEFAULT_LR, DEFAULT_PROJECTION_DIM,
    DEFAULT_REMINE_MIX, DEFAULT_WARMUP_EPOCHS, LOG_FILE, LOG_HEADER, META_REMINE_EPOCH,
    META_REMINE_PURITY_PREFIX, META_REMINE_RUN_HASH, RUN_IDENTITY_VERSION, SKIPPED_FILE,
};
