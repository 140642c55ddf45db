//! End-to-end comparisons: the GPS demo and the experiment grid.
//!
//! An [`ExperimentConfig`] names a training set, a test set, one or more priors, the GPS
//! neighbourhood sizes `k`, the SSL methods, the augmentation settings and the seeds. Running it
//! ([`run_experiment`]) goes through every stage of the pipeline and caches each one in the output
//! folder, so a second run reuses what is already there:
//!
//! ```text
//! out/
//!   embeddings-<prior>.parquet        train-set prior embeddings (reused when dataset fingerprint,
//!                                     prior sha256, resolution and preprocessing match)
//!   neighbours-<prior>-k<k>.parquet   GPS neighbour lists (reused when built from the same
//!                                     embedding vectors, by their sha256, with the same k)
//!   montage-<prior>-k<k>.png          8 sampled anchors and their neighbours (`eval::Montage`),
//!                                     written before any training
//!   runs/<method>-<aug>-<base|gps-...>-s<seed>-<run hash>/
//!                                     config.json, log.csv, checkpoint.bin, record.json
//!   results.json  table.md  priors.json
//!   figure.png                        accuracy bars (the prior's own kNN accuracy as a line) and
//!                                     loss curves
//!   experiment.json                   every invocation's configuration, oldest first
//! ```
//!
//! A run's folder is named by (the first 12 hex digits of) its identity,
//! [`TrainConfig::run_hash`](crate::train::TrainConfig::run_hash): a hash of everything that decides its
//! result. A finished run is reused only when its `record.json` holds the same full hash (and
//! was evaluated on the same test set); a changed setting — more epochs, another dataset, a new
//! prior resolution — trains a new run in a new folder.
//!
//! The default configuration is the README's demo: SimCLR and GPS-SimCLR under RHFlipAug on the
//! bundled Fashion-MNIST subset with the EfficientNet-Lite0 prior.
//!
//! ```no_run
//! use gps_ssl::{experiment::{run_experiment, ExperimentConfig}, progress::NoProgress};
//! let config = ExperimentConfig::default();
//! let out = run_experiment(&config, std::path::Path::new("runs/demo"), &NoProgress)?;
//! println!("{}", out.table);
//! # Ok::<(), gps_ssl::Error>(())
//! ```

mod config;
mod run;
mod stages;

pub use config::{ExperimentConfig, NO_PRIOR, PIXEL_PRIOR};
pub use run::{
    reference_lines, run_experiment, ExperimentOutput, PriorReport, EXPERIMENT_LOG_FILE,
    RECORD_FILE, RUNS_DIR,
};
pub use stages::{
    ensure_embeddings, ensure_neighbours, pixel_embeddings, vectors_sha256, PriorVectors,
};
