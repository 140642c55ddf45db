//! The project's own model, loss and step, shared by its two programs (`src/main.rs`, the GPS run CI
//! checks, and `src/bin/burn_integration.rs`, an existing loop switched to GPS pairs).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::{Device, Tensor};
use gps_ssl::loader::TensorPairBatch;

/// The project's own encoder: two strided convolutions, global average pooling and a projection;
/// `[B, channels, H, W]` → `[B, 32]`, L2-normalised.
#[derive(Module, Debug)]
pub struct Net {
    conv1: Conv2d,
    conv2: Conv2d,
    proj: Linear,
}

impl Net {
    /// A new network for `channels`-channel images on `device`.
    pub fn new(channels: usize, device: &Device) -> Self {
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        Net {
            conv1: conv(channels, 16),
            conv2: conv(16, 32),
            proj: LinearConfig::new(32, 32).init(device),
        }
    }

    /// The normalised projections of a batch of views.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = relu(self.conv1.forward(x));
        let x = relu(self.conv2.forward(x));
        let x: Tensor<2> = x.mean_dim(3).mean_dim(2).flatten(1, 3);
        let z = self.proj.forward(x);
        let norm = z.clone().powf_scalar(2.0).sum_dim(1).sqrt().clamp_min(1e-6);
        z / norm
    }
}

/// NT-Xent (InfoNCE) between the two views' projections `[B, D]`; `mask` `[B, B]` (1 = in-batch
/// false negative, as `TensorPairBatch::false_negative_mask` gives) removes those logits.
pub fn nt_xent(za: Tensor<2>, zb: Tensor<2>, mask: Tensor<2>, temperature: f32) -> Tensor<1> {
    let b = za.dims()[0];
    let logits = za.matmul(zb.transpose()) / temperature - mask * 1e9;
    let eye = Tensor::<2>::eye(b, &logits.device());
    -(log_softmax(logits, 1) * eye).sum() / b as f32
}

/// One training step on a pair batch: NT-Xent (temperature 0.2) between the two views, in-batch
/// false negatives masked, then `optim` at learning rate `lr`. Returns the updated model and the
/// loss before the update.
pub fn train_step(
    model: Net,
    optim: &mut ModuleOptimizer,
    batch: TensorPairBatch,
    lr: f64,
) -> (Net, f32) {
    let mask = batch.false_negative_mask();
    let loss = nt_xent(
        model.forward(batch.view_a),
        model.forward(batch.view_b),
        mask,
        0.2,
    );
    let value: f32 = loss.clone().into_scalar();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    (optim.step(lr, model, grads), value)
}
