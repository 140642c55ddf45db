//! The full configuration of a training run, saved as `config.json` next to its outputs.

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};

use super::data::{DataConfig, DataIdentity};
use super::identity::{canonical_hash, RUN_IDENTITY_VERSION};
use super::optim::OptimizerConfig;
use super::remine::RemineConfig;
use crate::device::DeviceChoice;
use crate::ssl::{LossConfig, MethodKind, NetworkConfig, ResNetConfig};
use crate::{Error, Result};

/// Default peak learning rate of SGD and LARS ([`TrainConfig::lr`]).
pub const DEFAULT_LR: f64 = 0.05;
/// Default peak learning rate of AdamW.
pub const DEFAULT_ADAMW_LR: f64 = 1e-3;
/// Default warm-up length in epochs.
pub const DEFAULT_WARMUP_EPOCHS: f64 = 1.0;
/// Default projector hidden width.
pub const DEFAULT_HIDDEN_DIM: usize = 512;
/// Default projection width.
pub const DEFAULT_PROJECTION_DIM: usize = 128;

/// Everything that defines a training run. Serialisable: written as `config.json` next to the
/// outputs and read back on resume. Its [`run_hash`](Self::run_hash) is the run's identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Method and its loss hyper-parameters.
    pub method: LossConfig,
    /// Backbone, projector and predictor.
    pub network: NetworkConfig,
    /// Optimiser.
    pub optimizer: OptimizerConfig,
    /// Peak learning rate (after warm-up).
    pub lr: f64,
    /// Warm-up length in epochs (fractional allowed).
    pub warmup_epochs: f64,
    /// Final learning rate as a fraction of `lr`.
    pub final_lr_ratio: f64,
    /// Epochs to train.
    pub epochs: usize,
    /// Pairs per batch (for the record: the source decides the actual batches).
    pub batch_size: usize,
    /// Seed of the network initialisation.
    pub seed: u64,
    /// Mask in-batch false negatives (same ids) in the contrastive losses.
    pub mask_false_negatives: bool,
    /// Checkpoint every this many steps (0: only at the end of each epoch).
    pub checkpoint_every: u64,
    /// Where the pairs come from (dataset + fingerprint, neighbour table + hash, augmentation,
    /// batch size, loader seed, workers). `None` for a source the trainer knows nothing about
    /// (e.g. a closure), and for `config.json` files written before this field was typed.
    #[serde(default, deserialize_with = "typed_or_legacy_data")]
    pub data: Option<DataConfig>,
    /// Re-mine the neighbour lists from the network being trained (see [`RemineConfig`];
    /// honoured by [`Trainer::fit_loader`](super::Trainer::fit_loader)). `None`: the lists stay
    /// fixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remine: Option<RemineConfig>,
    /// The device the run trains on, as recorded in `config.json` (absent there for `cpu`).
    /// Not part of the run's identity: the same seed gives the same initial weights and batches
    /// on every device ([`Trainer::new`](super::Trainer::new)), so the runs differ only by
    /// floating-point rounding.
    #[serde(default, skip_serializing_if = "DeviceChoice::is_cpu")]
    pub device: DeviceChoice,
}

/// The fields of [`TrainConfig::identity`], borrowed.
#[derive(Serialize)]
struct RunIdentity<'a> {
    version: &'static str,
    method: &'a LossConfig,
    network: &'a NetworkConfig,
    optimizer: &'a OptimizerConfig,
    lr: f64,
    warmup_epochs: f64,
    final_lr_ratio: f64,
    epochs: usize,
    batch_size: usize,
    seed: u64,
    mask_false_negatives: bool,
    data: Option<DataIdentity<'a>>,
    /// Absent when the lists are fixed, so runs without re-mining keep their hashes.
    #[serde(skip_serializing_if = "Option::is_none")]
    remine: Option<&'a RemineConfig>,
}

/// Reads `data` as a [`DataConfig`]; the free-text string older versions wrote reads as `None`.
fn typed_or_legacy_data<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DataConfig>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Field {
        Typed(Box<DataConfig>),
        Legacy(String),
    }
    Ok(match Option::<Field>::deserialize(d)? {
        Some(Field::Typed(c)) => Some(*c),
        Some(Field::Legacy(text)) => {
            tracing::debug!(data = %text, "config.json: free-text data field of an older version");
            None
        }
        None => None,
    })
}

impl TrainConfig {
    /// Defaults for `kind` over `backbone`: the method's loss settings
    /// ([`MethodKind::default_loss`]), its usual heads ([`DEFAULT_HIDDEN_DIM`] →
    /// [`DEFAULT_PROJECTION_DIM`]), LARS for Barlow Twins / VICReg / BYOL and SGD otherwise, at
    /// the optimiser's [`default_lr`](OptimizerConfig::default_lr), 1 epoch, batch 128.
    pub fn new(kind: MethodKind, backbone: ResNetConfig) -> Self {
        let optimizer = match kind {
            MethodKind::Barlow | MethodKind::Vicreg | MethodKind::Byol => OptimizerConfig::lars(),
            MethodKind::Simclr | MethodKind::Mocov3 | MethodKind::Nnclr => OptimizerConfig::sgd(),
        };
        Self {
            method: kind.default_loss(),
            network: kind.default_network(backbone, DEFAULT_HIDDEN_DIM, DEFAULT_PROJECTION_DIM),
            lr: optimizer.default_lr(),
            optimizer,
            warmup_epochs: DEFAULT_WARMUP_EPOCHS,
            final_lr_ratio: 0.0,
            epochs: 1,
            batch_size: 128,
            seed: 0,
            mask_false_negatives: false,
            checkpoint_every: 0,
            data: None,
            remine: None,
            device: DeviceChoice::Cpu,
        }
    }

    /// The same run with `optimizer`, at that optimiser's
    /// [`default_lr`](OptimizerConfig::default_lr) (set [`lr`](Self::lr) afterwards to override).
    pub fn with_optimizer(mut self, optimizer: OptimizerConfig) -> Self {
        self.lr = optimizer.default_lr();
        self.optimizer = optimizer;
        self
    }

    /// Reads a `config.json` written by [`save`](Self::save).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::Serde {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
    }

    /// Writes the configuration as pretty JSON to `path` (via a temporary file and a rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(|e| Error::Serde {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    }

    /// What determines the run's result, as one JSON value: method and loss settings,
    /// network (backbone, heads), optimiser, lr, schedule, epochs, batch size, seed, false-negative
    /// masking and the data's [`DataConfig::identity`] (dataset fingerprint, augmentation recipe,
    /// output size, loader seed, neighbour table hash with its k, τ, include-self and prior).
    /// Left out: `checkpoint_every`, the worker count and file locations, which do not change
    /// the result.
    pub fn identity(&self) -> Result<serde_json::Value> {
        let identity = RunIdentity {
            version: RUN_IDENTITY_VERSION,
            method: &self.method,
            network: &self.network,
            optimizer: &self.optimizer,
            lr: self.lr,
            warmup_epochs: self.warmup_epochs,
            final_lr_ratio: self.final_lr_ratio,
            epochs: self.epochs,
            batch_size: self.batch_size,
            seed: self.seed,
            mask_false_negatives: self.mask_false_negatives,
            data: self.data.as_ref().map(DataConfig::identity),
            remine: self.remine.as_ref(),
        };
        serde_json::to_value(identity)
            .map_err(|e| Error::invalid("run configuration", format!("not serialisable: {e}")))
    }

    /// The run's identity: lowercase hex SHA-256 of the canonical JSON (keys sorted) of
    /// [`identity`](Self::identity). Two configurations with the same hash train the same run.
    pub fn run_hash(&self) -> Result<String> {
        canonical_hash(&self.identity()?)
    }

    /// Checks value ranges and that the network fits the method.
    pub fn validate(&self) -> Result<()> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::invalid(
                "lr",
                format!("{} (must be positive)", self.lr),
            ));
        }
        if self.epochs == 0 || self.batch_size < 2 {
            return Err(Error::invalid(
                "epochs / batch_size",
                format!(
                    "{} / {} (need ≥ 1 epoch and ≥ 2 pairs)",
                    self.epochs, self.batch_size
                ),
            ));
        }
        if self.warmup_epochs.is_nan()
            || self.warmup_epochs < 0.0
            || !(0.0..=1.0).contains(&self.final_lr_ratio)
        {
            return Err(Error::invalid(
                "schedule",
                "warmup_epochs ≥ 0, final_lr_ratio in [0, 1]",
            ));
        }
        let needs_predictor = matches!(
            self.method.kind(),
            MethodKind::Byol | MethodKind::Mocov3 | MethodKind::Nnclr
        );
        if needs_predictor != self.network.predictor.is_some() {
            return Err(Error::invalid(
                "network.predictor",
                format!(
                    "{} {} a predictor",
                    self.method.kind().name(),
                    if needs_predictor { "needs" } else { "takes no" }
                ),
            ));
        }
        if let Some(data) = &self.data {
            if data.pairs.batch_size != self.batch_size {
                return Err(Error::mismatch(
                    "batch size of the data configuration",
                    self.batch_size,
                    data.pairs.batch_size,
                ));
            }
        }
        if let Some(r) = &self.remine {
            r.validate()?;
        }
        self.network.backbone.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment::AugRecipe;
    use crate::train::data::PairData;

    #[test]
    fn each_optimiser_brings_its_own_default_lr() {
        let sgd = TrainConfig::new(MethodKind::Simclr, ResNetConfig::small(1));
        assert_eq!(sgd.optimizer, OptimizerConfig::sgd());
        assert_eq!(sgd.lr, DEFAULT_LR);
        let adamw = sgd.with_optimizer(OptimizerConfig::adamw());
        assert_eq!(adamw.optimizer, OptimizerConfig::adamw());
        assert_eq!(adamw.lr, DEFAULT_ADAMW_LR);
    }

    fn with_data() -> TrainConfig {
        let mut c = TrainConfig::new(MethodKind::Simclr, ResNetConfig::small(1));
        c.data = Some(DataConfig {
            pairs: PairData {
                data: "data/fashion-mnist/t10k".into(),
                neighbours: None,
                aug: "rhflip".into(),
                size: None,
                batch_size: c.batch_size,
                seed: 0,
                workers: 2,
                skip_bad: false,
                cache_gib: None,
            },
            fingerprint: "abc".into(),
            samples: 100,
            view_shape: [1, 28, 28],
            recipe: AugRecipe::rhflip(),
            neighbour_table: None,
        });
        c
    }

    #[test]
    fn the_hash_follows_what_changes_the_result_only() {
        let base = with_data();
        let h = base.run_hash().unwrap();
        assert_eq!(h, base.clone().run_hash().unwrap());
        let mut resource = base.clone();
        resource.checkpoint_every = 7;
        if let Some(d) = resource.data.as_mut() {
            d.pairs.workers = 8;
            d.pairs.data = "/elsewhere/t10k".into();
        }
        assert_eq!(h, resource.run_hash().unwrap(), "location and resources");
        let mut longer = base.clone();
        longer.epochs = 2;
        assert_ne!(h, longer.run_hash().unwrap());
        let mut other_data = base.clone();
        if let Some(d) = other_data.data.as_mut() {
            d.fingerprint = "def".into();
        }
        assert_ne!(h, other_data.run_hash().unwrap());
        let mut strong = base;
        if let Some(d) = strong.data.as_mut() {
            d.recipe = AugRecipe::simclr();
        }
        assert_ne!(h, strong.run_hash().unwrap());
        let mut remined = with_data();
        remined.remine = Some(RemineConfig::new(1, 5));
        let h1 = remined.run_hash().unwrap();
        assert_ne!(h, h1, "re-mining is part of the identity");
        remined.remine = Some(RemineConfig::new(1, 5).with_mix(0.5));
        assert_ne!(h1, remined.run_hash().unwrap());
    }

    /// The JPEG decoder is part of a run's identity only when it is not libjpeg-turbo: builds
    /// with `turbojpeg` keep the hashes of earlier versions, builds without it get others.
    #[test]
    fn the_identity_names_the_jpeg_decoder_only_without_libjpeg_turbo() {
        let identity = with_data().identity().unwrap();
        let recorded = identity["data"].get("jpeg_decoder").cloned();
        if cfg!(feature = "turbojpeg") {
            assert_eq!(recorded, None, "{identity}");
        } else {
            assert_eq!(recorded, Some(serde_json::json!("zune-jpeg")), "{identity}");
        }
    }

    #[test]
    fn config_round_trips_and_reads_the_old_free_text_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let c = with_data();
        c.save(&path).unwrap();
        assert_eq!(TrainConfig::load(&path).unwrap(), c);
        let mut old: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        old["data"] = serde_json::json!("data=x neighbours=none (plain SSL) aug=rhflip");
        std::fs::write(&path, old.to_string()).unwrap();
        assert_eq!(TrainConfig::load(&path).unwrap().data, None);
    }
}
