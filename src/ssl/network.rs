//! The online (and target) network of an SSL method: backbone → projector (→ predictor).

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::backbone::{ResNet, ResNetConfig};
use super::head::{Mlp, MlpConfig};
use crate::Result;

/// Architecture of an [`SslNetwork`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// The trunk.
    pub backbone: ResNetConfig,
    /// Projector (input must equal the backbone's feature dimension).
    pub projector: MlpConfig,
    /// Predictor on top of the projector (BYOL, MoCo v3, NNCLR).
    pub predictor: Option<MlpConfig>,
}

impl NetworkConfig {
    /// Builds the network on `device`.
    pub fn init(&self, device: &Device) -> Result<SslNetwork> {
        let backbone = self.backbone.init(device)?;
        if self.projector.dims.first() != Some(&backbone.feature_dim()) {
            return Err(crate::Error::mismatch(
                "projector input width",
                backbone.feature_dim(),
                format!("{:?}", self.projector.dims.first()),
            ));
        }
        Ok(SslNetwork {
            backbone,
            projector: self.projector.init(device)?,
            predictor: self
                .predictor
                .as_ref()
                .map(|p| p.init(device))
                .transpose()?,
        })
    }

    /// The same network without predictor (a momentum target).
    pub fn without_predictor(&self) -> Self {
        Self {
            predictor: None,
            ..self.clone()
        }
    }
}

/// Backbone + projector (+ predictor).
#[derive(Module, Debug)]
pub struct SslNetwork {
    /// Feature extractor `[batch, C, H, W]` → `[batch, feature_dim]`.
    pub backbone: ResNet,
    /// Projector `[batch, feature_dim]` → `[batch, proj_dim]`.
    pub projector: Mlp,
    /// Predictor `[batch, proj_dim]` → `[batch, proj_dim]`.
    pub predictor: Option<Mlp>,
}

/// Outputs of one view through an [`SslNetwork`].
#[derive(Debug, Clone)]
pub struct ViewOutput {
    /// Projector output `[batch, proj_dim]`.
    pub projection: Tensor<2>,
    /// Predictor output `[batch, proj_dim]` (the projection when there is no predictor).
    pub prediction: Tensor<2>,
}

impl SslNetwork {
    /// Runs one view `[batch, C, H, W]` through backbone, projector and predictor.
    pub fn forward(&self, x: Tensor<4>) -> ViewOutput {
        let projection = self.projector.forward(self.backbone.forward(x));
        let prediction = match &self.predictor {
            Some(p) => p.forward(projection.clone()),
            None => projection.clone(),
        };
        ViewOutput {
            projection,
            prediction,
        }
    }
}
