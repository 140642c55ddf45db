//! Positive sampling: which image is paired with an anchor.
//!
//! [`SelfSampler`] is plain SSL (both views from the anchor); [`GpsSampler`] draws the partner
//! uniformly from the anchor's neighbourhood `B(x)` in prior space (the rows of a
//! [`NeighbourLists`]). Draws are pure functions of `(seed, epoch, position, slot)`.

use crate::seed::{rng_for, STREAM_PARTNER};
use crate::{Error, NeighbourLists, Result};
use rand::Rng;
use std::sync::Arc;

/// Default number of positives per anchor, see [`GpsSampler::with_positives`].
pub const DEFAULT_POSITIVES: usize = 1;
/// Default of the include-self flag, see [`GpsSampler::include_self`].
pub const DEFAULT_INCLUDE_SELF: bool = false;

/// Chooses the partner (positive) of each anchor.
pub trait PositiveSampler: Send + Sync + std::fmt::Debug {
    /// Pairs produced per anchor (each with its own partner draw). At least 1.
    fn positives_per_anchor(&self) -> usize {
        1
    }

    /// Checks that the sampler can serve a dataset of `dataset_len` samples.
    fn validate(&self, dataset_len: usize) -> Result<()>;

    /// The partner of `anchor` for pair `slot` (`0..positives_per_anchor()`) of the anchor at
    /// `position` of epoch `epoch`. Must be a pure function of its arguments.
    fn partner(&self, anchor: u32, seed: u64, epoch: u64, position: u64, slot: usize) -> u32;
}

/// Plain SSL: the partner is the anchor itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct SelfSampler;

impl PositiveSampler for SelfSampler {
    fn validate(&self, _dataset_len: usize) -> Result<()> {
        Ok(())
    }

    fn partner(&self, anchor: u32, _: u64, _: u64, _: u64, _: usize) -> u32 {
        anchor
    }
}

/// GPS: the partner is drawn uniformly from `B(x)`, the anchor's neighbour row.
///
/// With `include_self`, the anchor itself is a candidate too (added when its row lacks it);
/// without, it is removed from the candidates. A row left with no candidate pairs the anchor
/// with itself.
#[derive(Debug, Clone)]
pub struct GpsSampler {
    lists: Arc<NeighbourLists>,
    include_self: bool,
    positives: usize,
}

impl GpsSampler {
    /// A sampler over the neighbour table `lists` (row `i` = neighbours of dataset id `i`).
    pub fn new(lists: Arc<NeighbourLists>) -> Self {
        GpsSampler {
            lists,
            include_self: DEFAULT_INCLUDE_SELF,
            positives: DEFAULT_POSITIVES,
        }
    }

    /// Whether the anchor itself belongs to `B(x)`. Defaults to [`DEFAULT_INCLUDE_SELF`].
    pub fn include_self(mut self, yes: bool) -> Self {
        self.include_self = yes;
        self
    }

    /// Positives drawn per anchor (each becomes one pair). Defaults to [`DEFAULT_POSITIVES`];
    /// 0 is treated as 1.
    pub fn with_positives(mut self, m: usize) -> Self {
        self.positives = m.max(1);
        self
    }

    /// The neighbour table.
    pub fn lists(&self) -> &NeighbourLists {
        &self.lists
    }

    /// The raw candidate row of `id`. The one place that decides what `B(x)` is read from
    /// (today: the k nearest neighbours).
    fn row(&self, id: usize) -> &[u32] {
        // B(x): the entries within the table's radius (all k when it has none).
        self.lists.valid(id)
    }

    /// The candidate set `B(x)` of `id` after the include-self rule, in row order.
    pub fn candidates(&self, id: u32) -> Vec<u32> {
        let mut out: Vec<u32> = self
            .row(id as usize)
            .iter()
            .copied()
            .filter(|&n| n != id)
            .collect();
        if self.include_self {
            out.insert(0, id);
        }
        out
    }
}

impl PositiveSampler for GpsSampler {
    fn positives_per_anchor(&self) -> usize {
        self.positives
    }

    fn validate(&self, dataset_len: usize) -> Result<()> {
        if self.lists.len() != dataset_len {
            return Err(Error::mismatch(
                "neighbour table rows",
                dataset_len,
                self.lists.len(),
            ));
        }
        if let Some((flat, &bad)) = self
            .lists
            .ids_flat()
            .iter()
            .enumerate()
            .find(|(_, &n)| n as usize >= dataset_len)
        {
            return Err(Error::invalid(
                "neighbour id",
                format!(
                    "row {} holds neighbour {bad}, outside the dataset of {dataset_len} samples",
                    flat / self.lists.k()
                ),
            ));
        }
        Ok(())
    }

    fn partner(&self, anchor: u32, seed: u64, epoch: u64, position: u64, slot: usize) -> u32 {
        let row = self.row(anchor as usize);
        let mut rng = rng_for(seed, STREAM_PARTNER, epoch, position, slot as u64);
        // Count the candidates without allocating: the row minus the anchor, plus the anchor
        // when include_self.
        let others = row.iter().filter(|&&n| n != anchor).count();
        let total = others + self.include_self as usize;
        if total == 0 {
            return anchor;
        }
        let mut pick = rng.random_range(0..total);
        if self.include_self {
            if pick == 0 {
                return anchor;
            }
            pick -= 1;
        }
        row.iter()
            .copied()
            .filter(|&n| n != anchor)
            .nth(pick)
            .unwrap_or(anchor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[[u32; 3]]) -> Arc<NeighbourLists> {
        let ids: Vec<u32> = rows.iter().flatten().copied().collect();
        Arc::new(NeighbourLists::new(3, ids.clone(), vec![0.0; ids.len()]).unwrap())
    }

    #[test]
    fn out_of_range_neighbour_is_an_error_not_a_panic() {
        let s = GpsSampler::new(table(&[[0, 1, 2], [1, 0, 9], [2, 1, 0]]));
        let err = s.validate(3).unwrap_err();
        assert!(err.to_string().contains("row 1"), "{err}");
    }

    #[test]
    fn row_count_must_match_dataset() {
        let s = GpsSampler::new(table(&[[0, 1, 2], [1, 0, 2], [2, 1, 0]]));
        assert!(matches!(s.validate(4), Err(Error::Mismatch { .. })));
        s.validate(3).unwrap();
    }

    #[test]
    fn include_self_controls_the_anchor() {
        let t = table(&[[0, 1, 2], [1, 0, 2], [2, 1, 0]]);
        let without = GpsSampler::new(t.clone());
        let with = GpsSampler::new(t).include_self(true);
        assert_eq!(without.candidates(0), vec![1, 2]);
        assert_eq!(with.candidates(0), vec![0, 1, 2]);
        let mut seen_self = false;
        for pos in 0..200 {
            assert_ne!(without.partner(0, 5, 0, pos, 0), 0);
            seen_self |= with.partner(0, 5, 0, pos, 0) == 0;
        }
        assert!(seen_self);
    }

    #[test]
    fn self_sampler_returns_the_anchor() {
        assert_eq!(SelfSampler.partner(17, 1, 2, 3, 0), 17);
    }
}
