//! Self-supervised methods on Burn: backbones, heads, losses and the [`Method`] type that the
//! trainer drives.
//!
//! Methods: SimCLR, BYOL, Barlow Twins, VICReg, MoCo v3, NNCLR. Each is the unchanged method;
//! GPS lives in the pair loader (which partner each anchor gets), never here.
//!
//! ```
//! use burn::tensor::{Device, Tensor, TensorData};
//! use gps_ssl::ssl::nt_xent_loss;
//!
//! let device = Device::flex();
//! // Two views of 2 images, 2-d projections [batch, dim]: the positives agree, so the loss is low.
//! let z_a = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 0.0, 0.0, 1.0], [2, 2]), &device);
//! let z_b = z_a.clone();
//! let aligned: f32 = nt_xent_loss(z_a.clone(), z_b, 0.1, None).into_scalar();
//! let swapped = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 1.0, 1.0, 0.0], [2, 2]), &device);
//! let wrong: f32 = nt_xent_loss(z_a, swapped, 0.1, None).into_scalar();
//! assert!(aligned < wrong);
//! ```

mod backbone;
mod conv;
mod ema;
mod flex;
mod head;
mod loss;
mod method;
mod network;
mod norm;
mod queue;
mod snapshot;
mod stats;

pub use backbone::{Block, BlockKind, ResNet, ResNetConfig, Stem};
pub use conv::conv2d;
pub use ema::{cosine_momentum, ema_update};
pub use head::{Mlp, MlpConfig};
pub use loss::{
    barlow_twins_loss, byol_regression_loss, info_nce_loss, l2_normalize, nt_xent_loss,
    try_vicreg_loss, vicreg_loss, VicRegWeights,
};
pub use method::{batch_tensors, LossConfig, Method, MethodKind, MethodState, StepStats};
pub use network::{NetworkConfig, SslNetwork, ViewOutput};
pub use queue::SupportQueue;
pub use snapshot::{export_tensors, import_tensors, TensorBlob};
pub use stats::{embedding_std, embedding_std_tensor};
