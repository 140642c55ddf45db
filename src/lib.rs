//! # gps-ssl — Guided Positive Sampling for self-supervised learning
//!
//! Plain SSL makes its positive pair from two augmentations of one image. GPS-SSL embeds the
//! training set once with a fixed pre-trained *prior*, finds each image's k nearest neighbours
//! in prior space, and pairs every image `x` with a partner `x'` drawn uniformly from that
//! neighbourhood `B(x)`: the positive pair becomes `(DA(x), DA(x'))`. Loss, network and
//! optimiser stay those of the SSL method, so GPS lives entirely in the data loader.
//!
//! ## Modules, in the order data flows
//! Each stage is a public module with a guide and an example of its own, and a `gps-ssl`
//! subcommand; each reads and writes a file or a typed value, so any of them can be used alone.
//! Every name lives in the module of its stage, under its plain name (`loader::DEFAULT_SEED`,
//! `embed::DEFAULT_BATCH_SIZE`); the root holds only [`Error`], [`Result`] and the [`prelude`].
//!
//! | module | stage | main types | output | feature |
//! |---|---|---|---|---|
//! | [`dataset`] | image sources | [`dataset::open_source`], [`dataset::DataSource`] (IDX, CIFAR, image folder, Parquet) | [`dataset::Sample`]s with a dataset fingerprint | — |
//! | [`embed`] | embed with a prior | [`embed::Embedder`], [`embed::EmbedJob`], [`embed::PriorManifest`] | `embeddings.parquet` | `embed` (the manifest: none) |
//! | [`store`] | the files between stages | [`store::EmbeddingTable`], [`store::NeighbourTable`] | Parquet with provenance metadata | — |
//! | [`knn`] | neighbour lists | [`knn::NeighbourBuilder`] (exact / HNSW / auto), [`knn::label_purity`] | `neighbours.parquet`, [`knn::NeighbourLists`] | — |
//! | [`sampler`] | who is paired with whom | [`sampler::GpsSampler`], [`sampler::SelfSampler`], [`sampler::MixSampler`] | partner ids | — |
//! | [`augment`] | views | [`augment::AugRecipe`], [`augment::Augmenter`] | `[C, H, W]` f32 views | — |
//! | [`loader`] | pair batches | [`loader::PairLoaderBuilder`], [`loader::BurnPairLoader`] | [`loader::PairBatch`] `[batch, C, H, W]` ×2 | — |
//! | [`ssl`] | networks and losses | [`ssl::Method`] (SimCLR, BYOL, Barlow Twins, VICReg, MoCo v3, NNCLR), [`ssl::ResNet`] | losses, [`ssl::StepStats`] | `train` |
//! | [`train`] | the training loop | [`train::Trainer`], [`train::TrainConfig`] | checkpoints, `log.csv`, `config.json` | `train` |
//! | [`eval`] | accuracy of features | [`eval::KnnClassifier`], [`eval::LinearProbe`], [`eval::recall_at_1`] | accuracies, [`eval::RunRecord`] | `train` (figures: `plots`) |
//! | [`export`] | the trained encoder | [`export::export_encoder`], [`export::load_encoder`] | safetensors (torchvision names), ONNX + prior manifest | `train` |
//! | [`experiment`] | whole grids | [`experiment::run_experiment`], [`experiment::ExperimentConfig`] | `results.json`, `table.md`, `figure.png` | `experiment` |
//!
//! [`progress`] carries progress reports out of long jobs (the CLI draws them as bars);
//! [`process`] holds the allocator setting a training binary makes first thing in `main`;
//! [`device`] names the device the networks run on (`cpu`, `wgpu`, `vulkan`, `cuda`) and
//! [`selftest`] checks a device against the CPU and times the training step on it (both `train`).
//!
//! ## Example: GPS pairs for your own Burn loop
//! The [`prelude`] has what this needs.
//! ```no_run
//! use std::sync::Arc;
//! use gps_ssl::prelude::*;
//!
//! let data: Arc<dyn DataSource> = Arc::from(open_source("data/fashion-mnist/train")?);
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
//! The default is everything (`cli`). A Burn project that only wants GPS pairs takes the data
//! path alone, which turns on no burn backend (the tensors go to the backend and device of the
//! project's own burn features) and builds with a Rust toolchain and a C compiler:
//! ```toml
//! gps-ssl = { version = "0.1", default-features = false }
//! ```
//! | feature | adds | brings in |
//! |---|---|---|
//! | (none) | `dataset`, `augment`, `sampler`, `knn`, `store` (read and write), `loader` + burn's `DataLoader`, `progress`, `process` | burn (`std`, `dataset`; no backend), parquet + arrow, `image` (PNG, JPEG by zune-jpeg) |
//! | `embed` | `embed::Embedder`, `embed::EmbedJob`: run an ONNX prior | ONNX Runtime's bindings (`ort`, library loaded at run time) |
//! | `train` | `ssl`, `train`, `eval`, `export`, `device`, `selftest` | burn's CPU backend (`flex` with autodiff, `x86-v4`), this crate's CPU kernels (`gemm`) |
//! | `plots` | `eval::write_figure`, `eval::Montage` (implies `train`) | plotters |
//! | `turbojpeg` | JPEG through libjpeg-turbo: Pillow's bytes, DCT-scaled and cropped decoding (the fast path at 224 px) | libjpeg-turbo, built from C (cmake, nasm) |
//! | `experiment` | `experiment` (= `train` + `embed` + `plots`) | |
//! | `cli` (default) | the `gps-ssl` binary (= `experiment` + `turbojpeg`) | clap, indicatif, tracing-subscriber, anyhow |
//! | `wgpu` | burn's wgpu backend (WGSL on Vulkan / Metal / DX12): `--device wgpu`. Tested on Mesa's lavapipe in CI | wgpu, cubecl |
//! | `vulkan` | the same, pinned to Vulkan with cubecl's SPIR-V compiler, for real GPUs: `--device vulkan` | |
//! | `cuda` | burn's CUDA backend: `--device cuda[:N]`. Links LLVM 23: `GPS_SSL_CUDA=1 scripts/setup.sh` installs it from PyPI (docs/gpu.md) | cubecl-cuda, LLVM |
//! | `fusion`, `autotune` | burn's kernel fusion and autotuning for `wgpu`, `vulkan`, `cuda`: turn both on for a real GPU | |
//!
//! The backend features imply `train`. ONNX Runtime's CUDA execution provider (`embed --ep cuda`)
//! needs no feature, only the `onnxruntime-gpu` library.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod augment;
pub mod dataset;
#[cfg(feature = "train")]
#[cfg_attr(docsrs, doc(cfg(feature = "train")))]
pub mod device;
pub mod embed;
#[cfg(feature = "train")]
#[cfg_attr(docsrs, doc(cfg(feature = "train")))]
pub mod eval;
#[cfg(feature = "experiment")]
#[cfg_attr(docsrs, doc(cfg(feature = "experiment")))]
pub mod experiment;
#[cfg(feature = "train")]
#[cfg_attr(docsrs, doc(cfg(feature = "train")))]
pub mod export;
pub mod knn;
pub mod loader;
pub mod process;
pub mod progress;
pub mod sampler;
#[cfg(feature = "train")]
#[cfg_attr(docsrs, doc(cfg(feature = "train")))]
pub mod selftest;
#[cfg(feature = "train")]
#[cfg_attr(docsrs, doc(cfg(feature = "train")))]
pub mod ssl;
pub mod store;
#[cfg(feature = "train")]
#[cfg_attr(docsrs, doc(cfg(feature = "train")))]
pub mod train;

mod error;
mod file_kind;
mod seed;

pub use error::{Error, Result};

/// The names a Burn user needs to drop GPS pairs into a training loop, for `use gps_ssl::prelude::*`.
pub mod prelude {
    pub use crate::augment::AugRecipe;
    pub use crate::dataset::{open_source, DataSource};
    #[cfg(feature = "train")]
    pub use crate::device::DeviceChoice;
    pub use crate::knn::{NeighbourBuilder, NeighbourLists};
    pub use crate::loader::{
        BurnPairLoader, PairBatch, PairLoader, PairLoaderBuilder, TensorPairBatch,
    };
    pub use crate::sampler::{GpsSampler, PositiveSampler, SelfSampler};
    #[cfg(feature = "train")]
    pub use crate::ssl::Method;
    pub use crate::store::{EmbeddingTable, NeighbourTable};
    #[cfg(feature = "train")]
    pub use crate::train::{TrainConfig, Trainer};
    pub use crate::{Error, Result};
}
