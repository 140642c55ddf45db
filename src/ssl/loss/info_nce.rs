//! InfoNCE between queries and keys (MoCo v3, NNCLR).

use burn::tensor::Tensor;

use super::{cross_entropy, false_negative_mask, l2_normalize, MASKED_LOGIT};

/// InfoNCE: `q`, `k` `[batch, dim]` (normalised inside); logits `q·kᵀ / temperature`, the
/// positive of query `i` is key `i`, every other key is a negative. Returns the mean
/// cross-entropy, shape `[1]` (MoCo v3 scales it by `2·temperature`; the method does that).
///
/// `ids = (query_ids, key_ids)` masks in-batch false negatives: key `j ≠ i` whose id equals
/// query `i`'s id or key `i`'s id is not a negative.
pub fn info_nce_loss(
    q: Tensor<2>,
    k: Tensor<2>,
    temperature: f32,
    ids: Option<(&[u64], &[u64])>,
) -> Tensor<1> {
    let [batch, _] = q.dims();
    let device = q.device();
    let logits = l2_normalize(q)
        .matmul(l2_normalize(k).transpose())
        .div_scalar(temperature);
    let positive: Vec<usize> = (0..batch).collect();
    let mask = false_negative_mask(
        ids.map(|i| i.0),
        ids.map(|i| i.1),
        &positive,
        batch,
        false,
        &device,
    );
    let logits = match mask {
        Some(m) => logits.mask_fill(m, MASKED_LOGIT),
        None => logits,
    };
    cross_entropy(logits, &positive)
}
