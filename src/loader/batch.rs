//! The loader's output type.

/// A batch of positive pairs, views laid out `[batch, C, H, W]` f32 (normalised) in one
/// contiguous buffer each.
#[derive(Debug, Clone, PartialEq)]
pub struct PairBatch {
    /// First views, `[batch, C, H, W]` row-major.
    pub view_a: Vec<f32>,
    /// Second views (of the partners), `[batch, C, H, W]` row-major.
    pub view_b: Vec<f32>,
    /// `[batch, C, H, W]`.
    pub shape: [usize; 4],
    /// Dataset ids of the anchors `x`.
    pub anchor_ids: Vec<u64>,
    /// Dataset ids of the partners `x'` (equal to the anchor under plain SSL).
    pub partner_ids: Vec<u64>,
    /// Anchor labels when the dataset has them (for online evaluation only).
    pub labels: Option<Vec<i64>>,
}

impl PairBatch {
    /// Number of pairs in the batch.
    pub fn len(&self) -> usize {
        self.shape[0]
    }

    /// True when the batch holds no pair.
    pub fn is_empty(&self) -> bool {
        self.shape[0] == 0
    }
}

impl PairBatch {
    /// Values of one view of one pair (`C·H·W`).
    pub fn view_len(&self) -> usize {
        self.shape[1] * self.shape[2] * self.shape[3]
    }

    /// The in-batch false-negative mask, row-major `[batch, batch]`: entry `(i, j)` is `true`
    /// when `i != j` and pairs `i` and `j` share an image (`anchor_j` or `partner_j` equals
    /// `anchor_i` or `partner_i`), so a contrastive loss should not treat `j` as a negative of
    /// `i`. The diagonal (the positive pair itself) is `false`.
    pub fn false_negative_mask(&self) -> Vec<bool> {
        let n = self.anchor_ids.len();
        let mut mask = vec![false; n * n];
        for i in 0..n {
            let (ai, pi) = (self.anchor_ids[i], self.partner_ids[i]);
            for j in 0..n {
                if i != j {
                    let (aj, pj) = (self.anchor_ids[j], self.partner_ids[j]);
                    mask[i * n + j] = aj == ai || aj == pi || pj == ai || pj == pi;
                }
            }
        }
        mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_marks_pairs_sharing_an_image() {
        let b = PairBatch {
            view_a: vec![],
            view_b: vec![],
            shape: [4, 1, 0, 0],
            anchor_ids: vec![0, 1, 2, 3],
            partner_ids: vec![1, 5, 6, 3],
            labels: None,
        };
        let m = b.false_negative_mask();
        let at = |i: usize, j: usize| m[i * 4 + j];
        assert!(at(0, 1) && at(1, 0)); // partner of 0 is anchor of 1
        assert!(!at(0, 2) && !at(2, 3) && !at(0, 0));
        assert_eq!(m.iter().filter(|&&v| v).count(), 2);
    }
}
