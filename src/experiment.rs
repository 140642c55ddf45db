//! End-to-end comparisons: the GPS demo and the experiment grid.
//!
//! An [`ExperimentConfig`] names a training set, a test set, one or more priors, the GPS
//! neighbourhood sizes `k`, the SSL methods, the augmentation settings and the seeds. Running it
//! ([`run_experiment`]) goes through every stage of the pipeline and caches each one in the output
//! folder, so a second run reuses what is already there:
//!
//! ```text
//! out/
//!   embeddings-<prior>.parquet        train-set prior embeddings (reused when fingerprints match)
//!   neighbours-<prior>-k<k>.parquet   GPS neighbour lists
//!   runs/<method>-<aug>-<base|gps-...>-s<seed>/   config.json, log.csv, record.json
//!   results.json  table.md  figure.png  prior.json
//! ```
//!
//! The default configuration is the README's demo: SimCLR and GPS-SimCLR under RHFlipAug on the
//! bundled Fashion-MNIST subset with the EfficientNet-Lite0 prior.
//!
//! ```no_run
//! use gps_ssl::{run_experiment, ExperimentConfig, NoProgress};
//! let config = ExperimentConfig::default();
//! let out = run_experiment(&config, std::path::Path::new("runs/demo"), &NoProgress)?;
//! println!("{}", out.table);
//! # Ok::<(), gps_ssl::Error>(())
//! ```

mod config;
mod encode;
mod run;
mod stages;

pub use config::{ExperimentConfig, PIXEL_PRIOR};
pub use encode::encode_features;
pub use run::{run_experiment, ExperimentOutput, PriorReport};
pub use stages::{ensure_embeddings, ensure_neighbours, pixel_embeddings, PriorVectors};
