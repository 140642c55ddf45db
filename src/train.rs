//! Training: a method-agnostic loop over a pair source, with optimisers (SGD, LARS, AdamW),
//! warm-up + cosine schedule, CSV log, and checkpoints that resume exactly.
//!
//! ```
//! use burn::tensor::Device;
//! use gps_ssl::progress::NoProgress;
//! use gps_ssl::ssl::{MethodKind, ResNetConfig};
//! use gps_ssl::train::{PairData, TrainConfig, Trainer};
//!
//! // Plain SimCLR pairs from the bundled data (`neighbours: Some(..)` makes them GPS pairs).
//! let pairs = PairData {
//!     data: "data/fashion-mnist/train".into(),
//!     neighbours: None,
//!     aug: "rhflip".into(),
//!     size: None,
//!     batch_size: 16,
//!     seed: 0,
//!     workers: 2,
//!     skip_bad: false,
//!     cache_gib: None,
//! };
//! let (mut loader, data) = pairs.open_with_config()?;
//! let mut config = TrainConfig::new(MethodKind::Simclr, ResNetConfig::small(1));
//! config.batch_size = 16;
//! config.data = Some(data);
//! let out = std::env::temp_dir().join(format!("gps-ssl-doc-train-{}", std::process::id()));
//! let device = Device::flex().autodiff();
//! let mut trainer = Trainer::new(config, loader.num_batches(), &device)?.with_output_dir(&out)?;
//! let log = trainer.fit(&mut loader, Some(2), &NoProgress)?; // 2 steps; resumable from out/
//! assert_eq!(log.len(), 2);
//! assert!(log[0].loss.is_finite());
//! assert!(out.join("log.csv").exists());
//! # std::fs::remove_dir_all(&out).ok();
//! # Ok::<(), gps_ssl::Error>(())
//! ```

mod checkpoint;
mod config;
mod data;
mod identity;
mod log;
mod optim;
mod remine;
mod schedule;
mod source;
mod trainer;

pub use checkpoint::{Checkpoint, Position};
pub use config::{
    TrainConfig, DEFAULT_ADAMW_LR, DEFAULT_HIDDEN_DIM, DEFAULT_LR, DEFAULT_PROJECTION_DIM,
    DEFAULT_WARMUP_EPOCHS,
};
pub use data::{
    record_skipped, DataConfig, DataIdentity, NeighbourProvenance, PairData, PriorProvenance,
    SKIPPED_FILE,
};
pub use identity::{canonical_hash, canonical_json, RUN_IDENTITY_VERSION};
pub use log::{read_log, read_losses, CsvLog, StepRecord, LOG_HEADER};
pub use optim::{Optimizer, OptimizerConfig, OptimizerState};
pub use remine::{
    mine_lists, remined_file, MinedLists, RemineConfig, DEFAULT_REMINE_MIX, META_REMINE_EPOCH,
    META_REMINE_PURITY_PREFIX, META_REMINE_RUN_HASH,
};
pub use schedule::LrSchedule;
pub use source::{FnSource, PairSource};
pub use trainer::{seeded, seeded_module, Trainer, CHECKPOINT_FILE, CONFIG_FILE, LOG_FILE};
