//! Self-supervised methods on Burn: backbones, heads, losses and the [`Method`] type that the
//! trainer drives.
//!
//! Methods: SimCLR, BYOL, Barlow Twins, VICReg, MoCo v3, NNCLR. Each is the unchanged method;
//! GPS lives in the pair loader (which partner each anchor gets), never here.

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
    vicreg_loss, VicRegWeights,
};
pub use method::{batch_tensors, LossConfig, Method, MethodKind, MethodState, StepStats};
pub use network::{NetworkConfig, SslNetwork, ViewOutput};
pub use queue::SupportQueue;
pub use snapshot::{export_tensors, import_tensors, TensorBlob};
pub use stats::embedding_std;
