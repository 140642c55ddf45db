//! ResNet backbones (ResNet-18, ResNet-50 and a small preset) returning pooled features.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d, Relu};
use burn::tensor::ops::ConvOptions;

use super::norm::batch_norm;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Residual block flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// Two 3×3 convolutions (ResNet-18/34). Expansion 1.
    Basic,
    /// 1×1 → 3×3 → 1×1 convolutions (ResNet-50+). Expansion 4.
    Bottleneck,
}

impl BlockKind {
    fn expansion(self) -> usize {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
}

/// Input stem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stem {
    /// ImageNet stem: 7×7 conv stride 2, then 3×3 max-pool stride 2 (224 px inputs).
    ImageNet,
    /// Small-image stem: 3×3 conv stride 1, no max-pool (28–32 px inputs, CIFAR / MNIST).
    Small,
}

/// Architecture of a [`ResNet`]. Serialisable so it is saved with every run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResNetConfig {
    /// Input channels (1 for grey images, 3 for colour).
    pub in_channels: usize,
    /// Block flavour.
    pub block: BlockKind,
    /// Blocks per stage (4 stages).
    pub layers: [usize; 4],
    /// Base width of each stage (output channels are `width * expansion`).
    pub widths: [usize; 4],
    /// Input stem.
    pub stem: Stem,
}

impl ResNetConfig {
    /// ResNet-18: basic blocks `[2, 2, 2, 2]`, widths `[64, 128, 256, 512]`, 512-d features.
    pub fn resnet18(in_channels: usize, stem: Stem) -> Self {
        Self {
            in_channels,
            block: BlockKind::Basic,
            layers: [2, 2, 2, 2],
            widths: [64, 128, 256, 512],
            stem,
        }
    }

    /// ResNet-50: bottleneck blocks `[3, 4, 6, 3]`, widths `[64, 128, 256, 512]`, 2048-d features.
    pub fn resnet50(in_channels: usize, stem: Stem) -> Self {
        Self {
            in_channels,
            block: BlockKind::Bottleneck,
            layers: [3, 4, 6, 3],
            widths: [64, 128, 256, 512],
            stem,
        }
    }

    /// Small preset for demos and tests on CPU: one basic block per stage, widths
    /// `[16, 32, 64, 128]`, small-image stem, 128-d features.
    pub fn small(in_channels: usize) -> Self {
        Self {
            in_channels,
            block: BlockKind::Basic,
            layers: [1, 1, 1, 1],
            widths: [16, 32, 64, 128],
            stem: Stem::Small,
        }
    }

    /// The preset a command line or config names: `small` | `resnet18` | `resnet50` (the ResNets
    /// with the small-image stem), for images with `in_channels` channels.
    pub fn from_name(name: &str, in_channels: usize) -> Result<Self> {
        match name {
            "small" => Ok(Self::small(in_channels)),
            "resnet18" => Ok(Self::resnet18(in_channels, Stem::Small)),
            "resnet50" => Ok(Self::resnet50(in_channels, Stem::Small)),
            other => Err(Error::invalid(
                "backbone",
                format!("`{other}`; expected small|resnet18|resnet50"),
            )),
        }
    }

    /// Dimension of the pooled feature vector: `widths[3] * expansion`.
    pub fn feature_dim(&self) -> usize {
        self.widths[3] * self.block.expansion()
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<()> {
        if self.in_channels == 0 {
            return Err(Error::invalid("backbone.in_channels", "must be at least 1"));
        }
        if self.layers.contains(&0) || self.widths.contains(&0) {
            return Err(Error::invalid(
                "backbone",
                format!(
                    "layers {:?} and widths {:?} must be positive",
                    self.layers, self.widths
                ),
            ));
        }
        Ok(())
    }

    /// Builds the network on `device` (weights drawn from burn's process-wide RNG; wrap the call
    /// in [`crate::train::seeded_module`] for a reproducible initialisation).
    pub fn init(&self, device: &Device) -> Result<ResNet> {
        self.validate()?;
        let stem_width = self.widths[0];
        let (stem_conv, max_pool) = match self.stem {
            Stem::ImageNet => (
                conv(self.in_channels, stem_width, 7, 2, 3, device),
                Some(
                    MaxPool2dConfig::new([3, 3])
                        .with_strides([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(),
                ),
            ),
            Stem::Small => (conv(self.in_channels, stem_width, 3, 1, 1, device), None),
        };
        let mut blocks = Vec::new();
        let mut in_ch = stem_width;
        for (stage, (&n, &width)) in self.layers.iter().zip(&self.widths).enumerate() {
            for i in 0..n {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                let block = Block::new(self.block, in_ch, width, stride, device);
                in_ch = width * self.block.expansion();
                blocks.push(block);
            }
        }
        Ok(ResNet {
            stem_conv,
            stem_bn: BatchNormConfig::new(stem_width).init(device),
            max_pool,
            blocks,
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            relu: Relu::new(),
            feature_dim: in_ch,
        })
    }
}

fn conv(
    in_ch: usize,
    out_ch: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new([in_ch, out_ch], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .init(device)
}

/// `conv.forward(x)` for the bias-free, explicitly padded convolutions built by [`conv`],
/// computed by [`super::conv::conv2d`] (GEMM forward and backward on the Flex backend).
fn conv_forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    match (&conv.bias, &conv.padding) {
        (None, &PaddingConfig2d::Explicit(top, left, bottom, right)) => super::conv::conv2d(
            x,
            conv.weight.val(),
            ConvOptions::new_with_padding(
                conv.stride,
                [(top, bottom), (left, right)],
                conv.dilation,
                conv.groups,
            ),
        ),
        _ => conv.forward(x),
    }
}

/// A residual block (basic or bottleneck) with an optional 1×1 projection shortcut.
#[derive(Module, Debug)]
pub struct Block {
    convs: Vec<Conv2d>,
    norms: Vec<BatchNorm>,
    shortcut: Option<Conv2d>,
    shortcut_norm: Option<BatchNorm>,
    relu: Relu,
}

impl Block {
    fn new(kind: BlockKind, in_ch: usize, width: usize, stride: usize, device: &Device) -> Self {
        let out_ch = width * kind.expansion();
        let convs = match kind {
            BlockKind::Basic => {
                vec![
                    conv(in_ch, width, 3, stride, 1, device),
                    conv(width, width, 3, 1, 1, device),
                ]
            }
            BlockKind::Bottleneck => vec![
                conv(in_ch, width, 1, 1, 0, device),
                conv(width, width, 3, stride, 1, device),
                conv(width, out_ch, 1, 1, 0, device),
            ],
        };
        let norms = match kind {
            BlockKind::Basic => vec![
                BatchNormConfig::new(width).init(device),
                BatchNormConfig::new(width).init(device),
            ],
            BlockKind::Bottleneck => vec![
                BatchNormConfig::new(width).init(device),
                BatchNormConfig::new(width).init(device),
                BatchNormConfig::new(out_ch).init(device),
            ],
        };
        let project = stride != 1 || in_ch != out_ch;
        Self {
            convs,
            norms,
            shortcut: project.then(|| conv(in_ch, out_ch, 1, stride, 0, device)),
            shortcut_norm: project.then(|| BatchNormConfig::new(out_ch).init(device)),
            relu: Relu::new(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = match (&self.shortcut, &self.shortcut_norm) {
            (Some(c), Some(n)) => batch_norm(n, conv_forward(c, x.clone()), false),
            _ => x.clone(),
        };
        let last = self.convs.len() - 1;
        let mut h = x;
        for (i, (c, n)) in self.convs.iter().zip(&self.norms).enumerate() {
            h = batch_norm(n, conv_forward(c, h), i < last);
        }
        self.relu.forward(h + identity)
    }
}

/// A ResNet trunk: input `[batch, C, H, W]` → global-average-pooled features
/// `[batch, feature_dim]`.
#[derive(Module, Debug)]
pub struct ResNet {
    stem_conv: Conv2d,
    stem_bn: BatchNorm,
    max_pool: Option<MaxPool2d>,
    blocks: Vec<Block>,
    pool: AdaptiveAvgPool2d,
    relu: Relu,
    feature_dim: usize,
}

impl ResNet {
    /// Dimension of the output features.
    pub fn feature_dim(&self) -> usize {
        self.feature_dim
    }

    /// `[batch, C, H, W]` → `[batch, feature_dim]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut h = batch_norm(&self.stem_bn, conv_forward(&self.stem_conv, x), true);
        if let Some(pool) = &self.max_pool {
            h = pool.forward(h);
        }
        for block in &self.blocks {
            h = block.forward(h);
        }
        let [b, c, _, _] = h.dims();
        self.pool.forward(h).reshape([b, c])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_found_by_name_and_unknown_names_are_refused() {
        assert_eq!(
            ResNetConfig::from_name("small", 1).unwrap(),
            ResNetConfig::small(1)
        );
        assert_eq!(
            ResNetConfig::from_name("resnet50", 3).unwrap(),
            ResNetConfig::resnet50(3, Stem::Small)
        );
        let err = ResNetConfig::from_name("vit", 3).unwrap_err().to_string();
        assert!(err.contains("vit") && err.contains("resnet18"), "{err}");
    }

    #[test]
    fn resnet_variants_output_pooled_features() {
        let device = Device::flex();
        for (cfg, hw, dim) in [
            (ResNetConfig::small(1), 28, 128),
            (ResNetConfig::resnet18(3, Stem::Small), 16, 512),
            (ResNetConfig::resnet50(3, Stem::ImageNet), 32, 2048),
        ] {
            let net = cfg.init(&device).unwrap();
            assert_eq!(net.feature_dim(), dim);
            let x = Tensor::<4>::ones([2, cfg.in_channels, hw, hw], &device);
            assert_eq!(net.forward(x).dims(), [2, dim]);
        }
    }

    #[test]
    fn zero_channels_is_rejected() {
        let mut cfg = ResNetConfig::small(1);
        cfg.in_channels = 0;
        assert!(cfg.validate().is_err());
    }
}
