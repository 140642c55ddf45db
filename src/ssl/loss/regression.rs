//! BYOL's normalised regression loss.

use burn::tensor::Tensor;

use super::l2_normalize;

/// `mean_i (2 − 2·cos(p_i, t_i))` for predictions `p` and (detached) targets `t`, both
/// `[batch, dim]`. BYOL symmetrises by adding the loss with the views swapped. Shape `[1]`.
pub fn byol_regression_loss(p: Tensor<2>, t: Tensor<2>) -> Tensor<1> {
    let [batch, _] = p.dims();
    let cos = (l2_normalize(p) * l2_normalize(t)).sum();
    cos.mul_scalar(-2.0 / batch as f32).add_scalar(2.0)
}
