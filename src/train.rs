//! Training: a method-agnostic loop over a pair source, with optimisers (SGD, LARS, AdamW),
//! warm-up + cosine schedule, CSV log, and checkpoints that resume exactly.

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
pub use log::{read_losses, CsvLog, StepRecord, LOG_HEADER};
pub use optim::{Optimizer, OptimizerConfig, OptimizerState};
pub use remine::{
    mine_lists, remined_file, MinedLists, RemineConfig, DEFAULT_REMINE_MIX, META_REMINE_EPOCH,
    META_REMINE_PURITY_PREFIX, META_REMINE_RUN_HASH,
};
pub use schedule::LrSchedule;
pub use source::{FnSource, PairSource};
pub use trainer::{seeded, seeded_module, Trainer, CHECKPOINT_FILE, CONFIG_FILE, LOG_FILE};
