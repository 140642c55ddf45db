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
