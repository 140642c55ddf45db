//! Barlow Twins' cross-correlation loss.

use burn::tensor::Tensor;

use super::off_diagonal;

/// Standardises each column of `[batch, dim]` with batch statistics (biased variance,
/// `eps = 1e-5`, as a non-affine `BatchNorm1d`).
fn standardise(z: Tensor<2>) -> Tensor<2> {
    let mean = z.clone().mean_dim(0);
    let centred = z - mean;
    let var = centred.clone().square().mean_dim(0);
    centred / var.add_scalar(1e-5).sqrt()
}

/// Barlow Twins: `C = zₐᵀ z_b / batch` of the column-standardised projections `[batch, dim]`;
/// loss `Σᵢ (1 − Cᵢᵢ)² + λ Σ_{i≠j} Cᵢⱼ²` (paper: λ = 5·10⁻³). Shape `[1]`.
pub fn barlow_twins_loss(z_a: Tensor<2>, z_b: Tensor<2>, lambda: f32) -> Tensor<1> {
    let [batch, _] = z_a.dims();
    let c = standardise(z_a)
        .transpose()
        .matmul(standardise(z_b))
        .div_scalar(batch as f32);
    let [d, _] = c.dims();
    let eye = Tensor::<2>::eye(d, &c.device());
    let on_diag = ((c.clone() * eye.clone()) - eye).square().sum();
    let off = off_diagonal(c).square().sum();
    on_diag + off.mul_scalar(lambda)
}
