//! SSL losses, one file each, plus the shared helpers they use (L2 normalisation, masks).
//!
//! Every loss takes batch-major embeddings `[batch, dim]` and returns a scalar tensor of shape
//! `[1]` that stays on the autodiff graph.

mod barlow;
mod info_nce;
mod nt_xent;
mod regression;
mod vicreg;

pub use barlow::barlow_twins_loss;
pub use info_nce::info_nce_loss;
pub use nt_xent::nt_xent_loss;
pub use regression::byol_regression_loss;
pub use vicreg::{try_vicreg_loss, vicreg_loss, VicRegWeights};

use burn::tensor::{Bool, Device, Tensor, TensorData};

/// Logit given to masked pairs: large and negative, but finite so `log_softmax` stays NaN-free.
pub(crate) const MASKED_LOGIT: f32 = -1.0e9;

/// L2-normalises each row of `[batch, dim]` (norm clamped at `1e-12`, as `F.normalize`).
pub fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

/// Mask of in-batch false negatives for a logits matrix `[rows, cols]` whose positive for row
/// `i` is column `positive[i]`: column `j != positive[i]` is masked when its id equals the id of
/// row `i` or of its positive (the same image drawn twice into one batch). With `self_column`,
/// row `i` also masks column `i` (NT-Xent, where rows and columns are the same samples).
pub(crate) fn false_negative_mask(
    row_ids: Option<&[u64]>,
    col_ids: Option<&[u64]>,
    positive: &[usize],
    cols: usize,
    self_column: bool,
    device: &Device,
) -> Option<Tensor<2, Bool>> {
    let rows = positive.len();
    if row_ids.is_none() && !self_column {
        return None;
    }
    let mut mask = vec![false; rows * cols];
    for (i, &p) in positive.iter().enumerate() {
        for j in 0..cols {
            let masked = (self_column && j == i)
                || match (row_ids, col_ids) {
                    (Some(r), Some(c)) => j != p && (c[j] == r[i] || c[j] == c[p]),
                    _ => false,
                };
            mask[i * cols + j] = masked;
        }
    }
    Some(Tensor::from_data(
        TensorData::new(mask, [rows, cols]),
        device,
    ))
}

/// Mean cross-entropy of `logits [rows, cols]` against targets `positive[i]`.
pub(crate) fn cross_entropy(logits: Tensor<2>, positive: &[usize]) -> Tensor<1> {
    let [rows, cols] = logits.dims();
    let mut onehot = vec![0f32; rows * cols];
    for (i, &p) in positive.iter().enumerate() {
        onehot[i * cols + p] = 1.0;
    }
    let onehot = Tensor::<2>::from_data(TensorData::new(onehot, [rows, cols]), &logits.device());
    let logp = burn::tensor::activation::log_softmax(logits, 1);
    (logp * onehot).sum().neg().div_scalar(rows as f32)
}

/// Off-diagonal elements of a square matrix `[n, n]` set to themselves, diagonal set to zero.
pub(crate) fn off_diagonal(m: Tensor<2>) -> Tensor<2> {
    let [n, _] = m.dims();
    let eye = Tensor::<2>::eye(n, &m.device());
    m.clone() - m * eye
}
