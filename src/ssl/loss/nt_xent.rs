//! NT-Xent, SimCLR's normalised-temperature cross-entropy.

use burn::tensor::Tensor;

use super::{cross_entropy, false_negative_mask, l2_normalize, MASKED_LOGIT};

/// NT-Xent over the `2·batch` views: for each view, its partner is the positive and the other
/// `2·batch − 2` views are negatives. `z_a`, `z_b`: `[batch, dim]` (normalised inside).
/// `temperature` > 0 (SimCLR: 0.5 at batch 256–512, 0.1–0.2 for larger).
///
/// `ids`, when given as `(anchor_ids, partner_ids)` of length `batch`, masks in-batch false
/// negatives: another view whose id equals this view's or its positive's id is not a negative.
/// Returns the mean loss, shape `[1]`.
pub fn nt_xent_loss(
    z_a: Tensor<2>,
    z_b: Tensor<2>,
    temperature: f32,
    ids: Option<(&[u64], &[u64])>,
) -> Tensor<1> {
    let [batch, _] = z_a.dims();
    let device = z_a.device();
    let z = l2_normalize(Tensor::cat(vec![z_a, z_b], 0));
    let logits = z.clone().matmul(z.transpose()).div_scalar(temperature);
    let positive: Vec<usize> = (0..2 * batch).map(|i| (i + batch) % (2 * batch)).collect();
    let all_ids: Option<Vec<u64>> = ids.map(|(a, b)| a.iter().chain(b).copied().collect());
    let mask = false_negative_mask(
        all_ids.as_deref(),
        all_ids.as_deref(),
        &positive,
        2 * batch,
        true,
        &device,
    );
    let logits = match mask {
        Some(m) => logits.mask_fill(m, MASKED_LOGIT),
        None => logits,
    };
    cross_entropy(logits, &positive)
}
