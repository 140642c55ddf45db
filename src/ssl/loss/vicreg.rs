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
/// (batch ≥ 2). Shape `[1]`. [`try_vicreg_loss`] returns the same as a `Result`.
///
/// # Panics
/// When `batch < 2` (the unbiased variance and covariance divide by `batch − 1`) or the two
/// shapes differ.
pub fn vicreg_loss(z_a: Tensor<2>, z_b: Tensor<2>, w: VicRegWeights) -> Tensor<1> {
    match try_vicreg_loss(z_a, z_b, w) {
        Ok(loss) => loss,
        Err(e) => panic!("vicreg_loss: {e}"),
    }
}

/// [`vicreg_loss`], with an [`Error::InvalidInput`](crate::Error::InvalidInput) naming the
/// argument for a batch under 2 rows, and an [`Error::Mismatch`](crate::Error::Mismatch) when
/// `z_a` and `z_b` differ in shape.
pub fn try_vicreg_loss(
    z_a: Tensor<2>,
    z_b: Tensor<2>,
    w: VicRegWeights,
) -> crate::Result<Tensor<1>> {
    let (da, db) = (z_a.dims(), z_b.dims());
    if da != db {
        return Err(crate::Error::mismatch(
            "vicreg_loss: z_b shape",
            format!("{da:?} (z_a's)"),
            format!("{db:?}"),
        ));
    }
    if da[0] < 2 {
        return Err(crate::Error::invalid(
            "z_a / z_b",
            format!(
                "VICReg needs a batch of at least 2 rows (unbiased variance), got {}",
                da[0]
            ),
        ));
    }
    Ok(vicreg_terms(z_a, z_b, w))
}

fn vicreg_terms(z_a: Tensor<2>, z_b: Tensor<2>, w: VicRegWeights) -> Tensor<1> {
    let inv = (z_a.clone() - z_b.clone()).square().mean();
    let var = (variance_term(z_a.clone()) + variance_term(z_b.clone())).div_scalar(2.0);
    let cov = covariance_term(z_a) + covariance_term(z_b);
    inv.mul_scalar(w.invariance) + var.mul_scalar(w.variance) + cov.mul_scalar(w.covariance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    /// A batch of one row used to divide by `batch − 1 = 0` (NaN loss), a batch of none to
    /// underflow; both are errors naming the argument now.
    #[test]
    fn batches_under_two_rows_are_errors() {
        let device = Device::flex();
        for batch in [0usize, 1] {
            let z = || {
                Tensor::<2>::from_data(
                    TensorData::new(vec![0.5f32; batch * 4], [batch, 4]),
                    &device,
                )
            };
            let err = try_vicreg_loss(z(), z(), VicRegWeights::default()).unwrap_err();
            assert!(err.to_string().contains("at least 2 rows"), "{err}");
        }
        let z = |b: usize| {
            Tensor::<2>::from_data(TensorData::new(vec![0.5f32; b * 4], [b, 4]), &device)
        };
        let err = try_vicreg_loss(z(3), z(2), VicRegWeights::default()).unwrap_err();
        assert!(err.to_string().contains("z_b shape"), "{err}");
        let loss = try_vicreg_loss(z(2), z(2), VicRegWeights::default()).unwrap();
        assert!(loss.into_scalar::<f32>().is_finite());
    }
}
