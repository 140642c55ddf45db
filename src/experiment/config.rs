//! The serde description of an experiment (saved next to its results).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::device::DeviceChoice;

use crate::file_kind::{toml_error, FileKind};
use crate::{Error, Result};

/// The prior name that selects the hand-crafted raw-pixel prior (the identity map of
/// Proposition 1 in the paper) instead of an ONNX manifest.
pub const PIXEL_PRIOR: &str = "pixels";
/// The prior name that starts an iterated-GPS chain from plain SSL: round 0 trains without
/// neighbour lists (the baseline run), later rounds mine lists from the previous round.
pub const NO_PRIOR: &str = "none";

/// One experiment: which runs to make and how long to train them.
///
/// Baseline runs (plain SSL) do not depend on the prior or `k`, so they are made once per
/// `(method, aug, seed)`; GPS runs once per `(method, aug, prior, k, seed)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Short name shown in reports.
    pub name: String,
    /// Training set (any dataset source spec, see `open_source`).
    pub data: String,
    /// Test set for evaluation (same kind of source).
    pub test_data: String,
    /// Priors: paths of prior manifests (`models/*.toml`), [`PIXEL_PRIOR`], or [`NO_PRIOR`]
    /// (plain SSL at round 0; needs `rounds ≥ 1` or re-mining).
    pub priors: Vec<String>,
    /// Input resolution of the ONNX prior (`None`: the manifest's native size).
    pub resolution: Option<u32>,
    /// GPS neighbourhood sizes (partners drawn uniformly from the k nearest, self excluded).
    pub k: Vec<usize>,
    /// SSL methods (`simclr`, `byol`, `barlow`, `vicreg`, `mocov3`, `nnclr`).
    pub methods: Vec<String>,
    /// Augmentation settings (`rhflip` = the paper's RHFlipAug, `strong` = SimCLR's recipe).
    pub augs: Vec<String>,
    /// Make the plain-SSL baseline runs.
    pub baseline: bool,
    /// Make the GPS runs.
    pub gps: bool,
    /// Seeds; each run is repeated once per seed (loader, initialisation).
    pub seeds: Vec<u64>,
    /// Training epochs per run.
    pub epochs: usize,
    /// Pairs per batch.
    pub batch_size: usize,
    /// Base learning rate (`None`: the optimiser's default, `OptimizerConfig::default_lr`).
    pub lr: Option<f64>,
    /// Optimiser `sgd`, `lars` or `adamw` (`None`: the method's default, see
    /// `TrainConfig::new`).
    pub optimizer: Option<String>,
    /// Softmax temperature of the contrastive losses (SimCLR, MoCo v3, NNCLR; `None`: the
    /// method's default).
    pub temperature: Option<f64>,
    /// Linear warm-up length in epochs (then cosine decay).
    pub warmup_epochs: f64,
    /// Backbone preset: `small`, `resnet18` or `resnet50`.
    pub backbone: String,
    /// Loader worker threads.
    pub workers: usize,
    /// Keep the decoded training images in memory, up to this many GiB of pixels, in each
    /// run (`gps-ssl train --cache-decoded`): whole decodes, recorded in the runs' recipe, so
    /// runs with and without it are distinct runs (0 caches nothing but decodes whole images
    /// as the cache does). `None` (default): decode every time, DCT-scaled and cropped where
    /// the views allow.
    pub cache_decoded_gib: Option<f64>,
    /// Evaluate with the linear probe too (kNN is always evaluated).
    pub linear_probe: bool,
    /// Iterated GPS: after round 0 (lists from the prior), `rounds` more rounds, each training
    /// anew (same budget) on lists mined from the previous round's trained encoder (its
    /// backbone features of the training set, cosine k-NN). 0: round 0 only.
    pub rounds: usize,
    /// Re-mining settings to run the GPS variants with, in epochs between re-minings; 0 keeps
    /// the lists fixed. `[0, 1]` compares fixed lists with re-mining every epoch.
    pub remine_every: Vec<usize>,
    /// Fraction of partners drawn from the re-mined lists (the rest from the prior's).
    pub remine_mix: f64,
    /// The device runs train and encode on: `cpu` (default), `wgpu[:N]`, `vulkan[:N]`,
    /// `cuda[:N]` (see [`crate::device`]). Not part of a run's identity: a finished run is
    /// reused whichever device trained it.
    pub device: DeviceChoice,
}

impl Default for ExperimentConfig {
    /// The README demo: SimCLR vs GPS-SimCLR, RHFlipAug, Lite0 prior at 112 px, k = 5, seed 0,
    /// 8 epochs of batch 256 with a half-epoch warm-up (SimCLR: SGD 0.05, τ = 0.2; how these were
    /// chosen: `docs/experiments.md`, "How the demo's recipe was chosen").
    fn default() -> Self {
        ExperimentConfig {
            name: "demo".into(),
            data: "data/fashion-mnist/train".into(),
            test_data: "data/fashion-mnist/t10k".into(),
            priors: vec!["models/efficientnet_lite0.toml".into()],
            resolution: Some(112),
            k: vec![5],
            methods: vec!["simclr".into()],
            augs: vec!["rhflip".into()],
            baseline: true,
            gps: true,
            seeds: vec![0],
            epochs: 8,
            batch_size: 256,
            lr: None,
            optimizer: None,
            temperature: None,
            warmup_epochs: 0.5,
            backbone: "small".into(),
            workers: 2,
            cache_decoded_gib: None,
            linear_probe: true,
            rounds: 0,
            remine_every: vec![0],
            remine_mix: crate::train::DEFAULT_REMINE_MIX,
            device: DeviceChoice::Cpu,
        }
    }
}

impl ExperimentConfig {
    /// Reads a TOML file; missing keys take the [`Default`] values.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let config: ExperimentConfig = toml::from_str(&text).map_err(|e| {
            toml_error(path, &text, &e, FileKind::ExperimentConfig, |found| {
                (found == FileKind::PriorManifest).then(|| {
                    format!(
                        "name it in an experiment's priors list instead: priors = [\"{}\"]",
                        path.display()
                    )
                })
            })
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks that every list is non-empty and every name is known.
    pub fn validate(&self) -> Result<()> {
        if self.methods.is_empty() || self.augs.is_empty() || self.seeds.is_empty() {
            return Err(Error::invalid(
                "experiment",
                "methods, augs and seeds must be non-empty",
            ));
        }
        if !self.baseline && !self.gps {
            return Err(Error::invalid("experiment", "enable baseline, gps or both"));
        }
        if self.gps && (self.priors.is_empty() || self.k.is_empty()) {
            return Err(Error::invalid(
                "experiment",
                "GPS runs need at least one prior and one k",
            ));
        }
        if let Some(&k) = self.k.iter().find(|&&k| k == 0) {
            return Err(Error::invalid("k", format!("{k}: must be at least 1")));
        }
        for aug in &self.augs {
            if aug != "rhflip" && aug != "strong" {
                return Err(Error::invalid(
                    "aug",
                    format!("`{aug}`; expected rhflip|strong"),
                ));
            }
        }
        for m in &self.methods {
            let kind = crate::ssl::MethodKind::parse(m)?;
            if let Some(t) = self.temperature {
                kind.default_loss().with_temperature(t)?;
            }
        }
        if let Some(o) = &self.optimizer {
            crate::train::OptimizerConfig::parse(o)?;
        }
        if self.epochs == 0 || self.batch_size < 2 {
            return Err(Error::invalid(
                "experiment",
                "epochs ≥ 1 and batch_size ≥ 2 required",
            ));
        }
        if self.remine_every.is_empty() {
            return Err(Error::invalid(
                "remine_every",
                "empty; use [0] for fixed lists",
            ));
        }
        if !(0.0..=1.0).contains(&self.remine_mix) {
            return Err(Error::invalid(
                "remine_mix",
                format!("{} (must be in [0, 1])", self.remine_mix),
            ));
        }
        let only_fixed = self.remine_every.iter().all(|&e| e == 0);
        if self.gps && self.priors.iter().any(|p| p == NO_PRIOR) && self.rounds == 0 && only_fixed {
            return Err(Error::invalid(
                "priors",
                "`none` trains plain SSL at round 0 (the baseline); use it with rounds ≥ 1 or \
                 remine_every ≥ 1",
            ));
        }
        if let Some(gib) = self.cache_decoded_gib {
            if crate::dataset::DecodedCache::budget_of_gib(gib).is_none() {
                return Err(Error::invalid(
                    "cache_decoded_gib",
                    format!("{gib} (must be a number of GiB, 0 or more)"),
                ));
            }
        }
        Ok(())
    }

    /// A short file-name-safe label of a prior (`efficientnet_lite0`, `pixels`).
    pub fn prior_label(prior: &str) -> String {
        if prior == PIXEL_PRIOR || prior == NO_PRIOR {
            return prior.into();
        }
        Path::new(prior)
            .file_stem()
            .map_or_else(|| prior.to_string(), |s| s.to_string_lossy().into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prior_manifest_passed_as_experiment_config_says_where_it_belongs() {
        let prior = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/models/efficientnet_lite0.toml"
        );
        let err = ExperimentConfig::load(prior).unwrap_err().to_string();
        assert!(err.contains("this is a prior manifest"), "{err}");
        assert!(err.contains("priors = ["), "{err}");
        assert!(!err.contains("unknown field"), "{err}");
        // Any other bad key still gets the parser's message, on one line with its position.
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "methods = [\"simclr\"]\nepoch = 3\n").unwrap();
        let err = ExperimentConfig::load(&bad).unwrap_err().to_string();
        assert!(
            err.contains("line 2, column 1: unknown field `epoch`"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn default_is_the_demo_and_valid() {
        let c = ExperimentConfig::default();
        assert_eq!(c.methods, ["simclr"]);
        assert!(c.baseline && c.gps);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn partial_toml_fills_defaults_and_rejects_unknown_keys() {
        let c: ExperimentConfig = toml::from_str("methods = [\"byol\"]\nseeds = [1, 2]").unwrap();
        assert_eq!(c.methods, ["byol"]);
        assert_eq!(c.seeds, [1, 2]);
        assert_eq!(c.k, [5]);
        assert!(toml::from_str::<ExperimentConfig>("epoch = 3").is_err());
    }

    #[test]
    fn temperature_and_optimizer_are_checked_against_the_methods() {
        let ok: ExperimentConfig =
            toml::from_str("temperature = 0.2\noptimizer = \"adamw\"").unwrap();
        assert!(ok.validate().is_ok());
        assert_eq!(
            crate::ssl::MethodKind::Simclr
                .default_loss()
                .with_temperature(0.2)
                .unwrap(),
            crate::ssl::LossConfig::Simclr { temperature: 0.2 }
        );
        let byol: ExperimentConfig =
            toml::from_str("methods = [\"byol\"]\ntemperature = 0.2").unwrap();
        let err = byol.validate().unwrap_err().to_string();
        assert!(err.contains("no softmax temperature"), "{err}");
        let unknown: ExperimentConfig = toml::from_str("optimizer = \"adam\"").unwrap();
        assert!(unknown.validate().is_err());
        let negative: ExperimentConfig = toml::from_str("temperature = -1.0").unwrap();
        assert!(negative.validate().is_err());
    }

    #[test]
    fn a_toml_error_is_one_line_naming_file_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "seeds = [0]\nepoch = 3\n").unwrap();
        let err = ExperimentConfig::load(&path).unwrap_err().to_string();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("bad.toml") && err.contains("line 2, column 1") && err.contains("epoch"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let c = ExperimentConfig {
            augs: vec!["heavy".into()],
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("heavy"));
        let c = ExperimentConfig {
            k: vec![0],
            ..Default::default()
        };
        assert!(c.validate().is_err());
        let c = ExperimentConfig {
            methods: vec!["simsiam".into()],
            ..Default::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn prior_labels_are_file_stems() {
        assert_eq!(
            ExperimentConfig::prior_label("models/efficientnet_lite0.toml"),
            "efficientnet_lite0"
        );
        assert_eq!(ExperimentConfig::prior_label(PIXEL_PRIOR), "pixels");
        assert_eq!(ExperimentConfig::prior_label(NO_PRIOR), "none");
    }

    #[test]
    fn rounds_and_remining_are_checked() {
        let c: ExperimentConfig =
            toml::from_str("priors = [\"none\"]\nrounds = 2\nremine_every = [0, 1]").unwrap();
        c.validate().unwrap();
        let plain: ExperimentConfig = toml::from_str("priors = [\"none\"]").unwrap();
        assert!(plain.validate().unwrap_err().to_string().contains("rounds"));
        let mix: ExperimentConfig = toml::from_str("remine_mix = 2.0").unwrap();
        assert!(mix.validate().is_err());
        let empty: ExperimentConfig = toml::from_str("remine_every = []").unwrap();
        assert!(empty.validate().is_err());
    }

    #[test]
    fn the_decoded_cache_budget_is_read_and_checked() {
        let c: ExperimentConfig = toml::from_str("cache_decoded_gib = 2.5").unwrap();
        c.validate().unwrap();
        assert_eq!(c.cache_decoded_gib, Some(2.5));
        assert_eq!(ExperimentConfig::default().cache_decoded_gib, None);
        for bad in ["-1.0", "nan", "inf"] {
            let c: ExperimentConfig =
                toml::from_str(&format!("cache_decoded_gib = {bad}")).unwrap();
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains("cache_decoded_gib"), "{bad}: {e}");
        }
    }
}
