//! VICReg's variance / invariance / covariance loss.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::off_diagonal;

/// Weights of the three VICReg terms (paper: 25 / 25 / 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VicRegWeights {
    /// Invariance (mean squared error) weight λ.
    pub invariance: f32,
    /// Variance (hinge on the per-dimension std) weight μ.
    pub variance: f32,
    /// Covariance (off-diagonal) weight ν.
    pub covariance: f32,
}

impl Default for VicRegWeights {
    fn default() -> Self {
        Self {
            invariance: 25.0,
            variance: 25.0,
            covariance: 1.0,
        }
    }
}

/// Hinge on the per-dimension std (unbiased, `eps = 1e-4`): `mean_d relu(1 − std_d)`.
fn variance_term(z: Tensor<2>) -> Tensor<1> {
    let std = z.var(0).add_scalar(1e-4).sqrt();
    std.neg().add_scalar(1.0).clamp_min(0.0).mean()
}

/// `Σ_{i≠j} cov(z)ᵢⱼ² / dim` with the unbiased covariance of `[batch, dim]`.
fn covariance_term(z: Tensor<2>) -> Tensor<1> {
    let [batch, dim] = z.dims();
    let centred = z.clone() - z.mean_dim(0);
    let cov = centred
        .clone()
        .transpose()
        .matmul(centred)
        .div_scalar((batch - 1) as f32);
    off_diagonal(cov).square().sum().div_scalar(dim as f32)
}

/// VICReg: `λ·mse(zₐ, z_b) + μ·(v(zₐ) + v(z_b))/2 + ν·(c(zₐ) + c(z_b))`, with `z` `[batch, dim]`
/// (batch ≥ 2). Shape `[1]`.
pub fn vicreg_loss(z_a: Tensor<2>, z_b: Tensor<2>, w: VicRegWeights) -> Tensor<1> {
    let inv = (z_a.clone() - z_b.clone()).square().mean();
    let var = (variance_term(z_a.clone()) + variance_term(z_b.clone())).div_scalar(2.0);
    let cov = covariance_term(z_a) + covariance_term(z_b);
    inv.mul_scalar(w.invariance) + var.mul_scalar(w.variance) + cov.mul_scalar(w.covariance)
}
