//! The full configuration of a training run, saved as `config.json` next to its outputs.

use serde::{Deserialize, Serialize};

use super::optim::OptimizerConfig;
use crate::ssl::{LossConfig, MethodKind, NetworkConfig, ResNetConfig};
use crate::{Error, Result};

/// Default peak learning rate ([`TrainConfig::lr`]).
pub const DEFAULT_LR: f64 = 0.05;
/// Default warm-up length in epochs.
pub const DEFAULT_WARMUP_EPOCHS: f64 = 1.0;
/// Default projector hidden width.
pub const DEFAULT_HIDDEN_DIM: usize = 512;
/// Default projection width.
pub const DEFAULT_PROJECTION_DIM: usize = 128;

/// Everything that defines a training run. Serialisable: written as `config.json` next to the
/// outputs and read back on resume.
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
    /// Free-form description of the data (source, neighbours file, augmentation), for the record.
    pub data: String,
}

impl TrainConfig {
    /// Defaults for `kind` over `backbone`: the method's paper loss settings, its usual heads
    /// ([`DEFAULT_HIDDEN_DIM`] → [`DEFAULT_PROJECTION_DIM`]), LARS for Barlow Twins / VICReg /
    /// BYOL and SGD otherwise, lr [`DEFAULT_LR`], 1 epoch, batch 128.
    pub fn new(kind: MethodKind, backbone: ResNetConfig) -> Self {
        let optimizer = match kind {
            MethodKind::Barlow | MethodKind::Vicreg | MethodKind::Byol => OptimizerConfig::lars(),
            _ => OptimizerConfig::sgd(),
        };
        Self {
            method: kind.default_loss(),
            network: kind.default_network(backbone, DEFAULT_HIDDEN_DIM, DEFAULT_PROJECTION_DIM),
            optimizer,
            lr: DEFAULT_LR,
            warmup_epochs: DEFAULT_WARMUP_EPOCHS,
            final_lr_ratio: 0.0,
            epochs: 1,
            batch_size: 128,
            seed: 0,
            mask_false_negatives: false,
            checkpoint_every: 0,
            data: String::new(),
        }
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
        self.network.backbone.validate()
    }
}
