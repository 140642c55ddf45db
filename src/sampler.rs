//! Positive sampling: which image is paired with an anchor.
//!
//! [`SelfSampler`] is plain SSL (both views from the anchor); [`GpsSampler`] draws the partner
//! uniformly from the anchor's neighbourhood `B(x)` in prior space (the rows of a
//! [`NeighbourLists`]). Draws are pure functions of `(seed, epoch, position, slot)`.
//!
//! Ids are dataset ids. A neighbour table may cover only part of the dataset (samples skipped
//! as bad when embedding have no row): [`PositiveSampler::anchors`] then lists the ids that
//! have a row, and the loader draws anchors — and, since every neighbour id has a row,
//! partners — only among them.
//!
//! ```
//! use gps_ssl::knn::NeighbourLists;
//! use gps_ssl::sampler::{GpsSampler, PositiveSampler, SelfSampler};
//! use std::sync::Arc;
//!
//! // Three points, k = 2 neighbours each.
//! let lists = NeighbourLists::new(2, vec![1, 2, 0, 2, 1, 0], vec![0.0; 6])?;
//! let gps = GpsSampler::new(Arc::new(lists));
//! let (seed, epoch, position) = (0, 3, 17);
//! let partner = gps.partner(0, seed, epoch, position, 0);
//! assert!([1, 2].contains(&partner)); // drawn from B(0)
//! assert_eq!(partner, gps.partner(0, seed, epoch, position, 0)); // a pure function of its inputs
//! assert_eq!(SelfSampler.partner(0, seed, epoch, position, 0), 0); // plain SSL
//! # Ok::<(), gps_ssl::Error>(())
//! ```

use crate::seed::{rng_for, STREAM_MIX, STREAM_PARTNER};
use crate::{knn::NeighbourLists, store::NeighbourTable, Error, Result};
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

    /// The dataset ids that may be anchors, strictly ascending; `None` (the default) means every
    /// sample of the dataset. A GPS sampler over a table with gaps returns the ids that have a
    /// neighbour row.
    fn anchors(&self) -> Option<&[u32]> {
        None
    }

    /// The partner of `anchor` for pair `slot` of the anchor at `position` of epoch `epoch`.
    /// Slots `0..positives_per_anchor()` are the anchor's pairs; the loader asks for further
    /// slots (`slot + r·positives_per_anchor()`, `r ≥ 1`) to redraw a partner that could not be
    /// decoded. Must be a pure function of its arguments.
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
    /// Dataset id of each row (strictly ascending); `None`: row `i` is id `i`.
    row_ids: Option<Arc<[u32]>>,
    include_self: bool,
    positives: usize,
}

impl GpsSampler {
    /// A sampler over the neighbour table `lists` (row `i` = neighbours of dataset id `i`; one
    /// row per sample of the dataset).
    pub fn new(lists: Arc<NeighbourLists>) -> Self {
        GpsSampler {
            lists,
            row_ids: None,
            include_self: DEFAULT_INCLUDE_SELF,
            positives: DEFAULT_POSITIVES,
        }
    }

    /// A sampler over a neighbour table read from disk, which may have gaps (see
    /// [`NeighbourTable::ids`]): only ids with a row are drawn, as anchors and as partners.
    pub fn from_table(table: NeighbourTable) -> Self {
        let row_ids: Arc<[u32]> = table.ids().into();
        GpsSampler {
            row_ids: Some(row_ids),
            ..GpsSampler::new(Arc::new(table.lists))
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

    /// The neighbour table (entries are dataset ids; row `r` belongs to the `r`-th id of
    /// [`anchors`](PositiveSampler::anchors), or to id `r` when that is `None`).
    pub fn lists(&self) -> &NeighbourLists {
        &self.lists
    }

    /// The row of dataset id `id`, if it has one.
    fn row_index(&self, id: u32) -> Option<usize> {
        match &self.row_ids {
            Some(ids) => ids.binary_search(&id).ok(),
            None => ((id as usize) < self.lists.len()).then_some(id as usize),
        }
    }

    /// The raw candidate row of `id` (empty when `id` has no row). The one place that decides
    /// what `B(x)` is read from (today: the k nearest neighbours).
    fn row(&self, id: u32) -> &[u32] {
        // B(x): the entries within the table's radius (all k when it has none).
        self.row_index(id).map_or(&[], |r| self.lists.valid(r))
    }

    /// The candidate set `B(x)` of `id` after the include-self rule, in row order.
    pub fn candidates(&self, id: u32) -> Vec<u32> {
        let mut out: Vec<u32> = self.row(id).iter().copied().filter(|&n| n != id).collect();
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

    fn anchors(&self) -> Option<&[u32]> {
        self.row_ids.as_deref()
    }

    fn validate(&self, dataset_len: usize) -> Result<()> {
        match &self.row_ids {
            None if self.lists.len() != dataset_len => {
                return Err(Error::mismatch(
                    "neighbour table rows",
                    dataset_len,
                    self.lists.len(),
                ));
            }
            None => {}
            Some(ids) => {
                if ids.len() != self.lists.len() {
                    return Err(Error::mismatch(
                        "neighbour table row ids",
                        self.lists.len(),
                        ids.len(),
                    ));
                }
                if ids.is_empty() {
                    return Err(Error::invalid("neighbour table", "has no row"));
                }
                if let Some(row) = ids.windows(2).position(|w| w[0] >= w[1]) {
                    return Err(Error::invalid(
                        "neighbour table ids",
                        format!(
                            "row {}: id {} is not above the previous id",
                            row + 1,
                            ids[row + 1]
                        ),
                    ));
                }
                if let Some(row) = ids.iter().position(|&id| id as usize >= dataset_len) {
                    return Err(Error::invalid(
                        "neighbour table ids",
                        format!(
                            "row {row} has id {}, outside the dataset of {dataset_len} samples",
                            ids[row]
                        ),
                    ));
                }
                if let Some((flat, &bad)) = self
                    .lists
                    .ids_flat()
                    .iter()
                    .enumerate()
                    .find(|(_, &n)| ids.binary_search(&n).is_err())
                {
                    let row = flat / self.lists.k();
                    return Err(Error::invalid(
                        "neighbour id",
                        format!(
                            "row {row} (id {}) holds neighbour {bad}, which has no row of its \
                             own (it would be drawn although it was never embedded)",
                            ids[row]
                        ),
                    ));
                }
            }
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
        let row = self.row(anchor);
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

/// Whether two [`PositiveSampler::anchors`] answers name the same anchors: equal lists, or
/// `None` (every sample) and the ids `0..n` of a table without gaps (the dataset length is
/// checked by [`PositiveSampler::validate`]).
pub(crate) fn same_anchors(a: Option<&[u32]>, b: Option<&[u32]>) -> bool {
    let all = |ids: &[u32]| ids.iter().enumerate().all(|(i, &id)| id as usize == i);
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        (None, None) => true,
        (None, Some(ids)) | (Some(ids), None) => all(ids),
    }
}

/// Two samplers mixed: each partner comes from `primary` with probability `p`, else from
/// `secondary` (one Bernoulli draw per `(seed, epoch, position, slot)`, independent of the
/// partner draws). Used by re-mining ([`crate::train::RemineConfig`]): `primary` holds the lists
/// re-mined from the network being trained, `secondary` the prior's.
///
/// Both samplers must serve the same anchors with the same number of positives per anchor,
/// so an epoch has the same length whichever lists are used.
///
/// ```
/// use std::sync::Arc;
/// use gps_ssl::{sampler::{GpsSampler, MixSampler, PositiveSampler}, knn::NeighbourLists};
/// let lists = |rows: Vec<u32>| Arc::new(NeighbourLists::new(1, rows, vec![0.0; 3]).unwrap());
/// let remined = Arc::new(GpsSampler::new(lists(vec![1, 2, 0])));
/// let prior = Arc::new(GpsSampler::new(lists(vec![2, 0, 1])));
/// let all_remined = MixSampler::new(remined.clone(), prior.clone(), 1.0).unwrap();
/// let all_prior = MixSampler::new(remined, prior, 0.0).unwrap();
/// assert_eq!(all_remined.partner(0, 7, 0, 0, 0), 1);
/// assert_eq!(all_prior.partner(0, 7, 0, 0, 0), 2);
/// ```
#[derive(Debug, Clone)]
pub struct MixSampler {
    primary: Arc<dyn PositiveSampler>,
    secondary: Arc<dyn PositiveSampler>,
    p: f64,
}

impl MixSampler {
    /// Draws from `primary` with probability `p` (in `[0, 1]`), else from `secondary`.
    pub fn new(
        primary: Arc<dyn PositiveSampler>,
        secondary: Arc<dyn PositiveSampler>,
        p: f64,
    ) -> Result<Self> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::invalid(
                "mix",
                format!("{p}: the fraction of partners from the first sampler must be in [0, 1]"),
            ));
        }
        if primary.positives_per_anchor() != secondary.positives_per_anchor() {
            return Err(Error::mismatch(
                "positives per anchor of the mixed samplers",
                secondary.positives_per_anchor(),
                primary.positives_per_anchor(),
            ));
        }
        if !same_anchors(primary.anchors(), secondary.anchors()) {
            return Err(Error::invalid(
                "mixed samplers",
                "the two samplers serve different anchors (one neighbour table has gaps the \
                 other lacks)",
            ));
        }
        Ok(MixSampler {
            primary,
            secondary,
            p,
        })
    }

    /// The fraction of partners drawn from the primary sampler.
    pub fn mix(&self) -> f64 {
        self.p
    }
}

impl PositiveSampler for MixSampler {
    fn positives_per_anchor(&self) -> usize {
        self.primary.positives_per_anchor()
    }

    fn anchors(&self) -> Option<&[u32]> {
        self.primary.anchors()
    }

    fn validate(&self, dataset_len: usize) -> Result<()> {
        self.primary.validate(dataset_len)?;
        self.secondary.validate(dataset_len)
    }

    fn partner(&self, anchor: u32, seed: u64, epoch: u64, position: u64, slot: usize) -> u32 {
        let from_primary = if self.p >= 1.0 {
            true
        } else if self.p <= 0.0 {
            false
        } else {
            rng_for(seed, STREAM_MIX, epoch, position, slot as u64).random::<f64>() < self.p
        };
        if from_primary {
            self.primary.partner(anchor, seed, epoch, position, slot)
        } else {
            self.secondary.partner(anchor, seed, epoch, position, slot)
        }
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
    fn table_with_gaps_draws_only_ids_with_a_row() {
        // Dataset of 6; ids 1, 3 and 4 have no row (skipped as bad when embedding).
        let positional = NeighbourLists::new(2, vec![1, 2, 0, 2, 1, 0], vec![0.0; 6]).unwrap();
        let table = NeighbourTable::from_row_positions(
            positional,
            &[0, 2, 5],
            std::collections::BTreeMap::new(),
        )
        .unwrap();
        let s = GpsSampler::from_table(table);
        s.validate(6).unwrap();
        assert_eq!(s.anchors(), Some(&[0, 2, 5][..]));
        assert_eq!(s.candidates(5), vec![2, 0]);
        assert_eq!(s.candidates(1), Vec::<u32>::new());
        for pos in 0..100 {
            for anchor in [0, 2, 5] {
                let p = s.partner(anchor, 3, 0, pos, 0);
                assert!([0, 2, 5].contains(&p) && p != anchor, "{anchor} -> {p}");
            }
        }
        let err = s.validate(5).unwrap_err().to_string();
        assert!(err.contains("row 2 has id 5"), "{err}");
    }

    #[test]
    fn neighbour_without_a_row_is_refused() {
        let mut s = GpsSampler::new(table(&[[0, 1, 2], [1, 0, 2], [2, 1, 0]]));
        s.row_ids = Some(vec![0, 2, 4].into());
        let err = s.validate(5).unwrap_err().to_string();
        assert!(err.contains("row 0 (id 0) holds neighbour 1"), "{err}");
    }

    #[test]
    fn self_sampler_returns_the_anchor() {
        assert_eq!(SelfSampler.partner(17, 1, 2, 3, 0), 17);
    }

    #[test]
    fn mix_draws_each_side_at_its_rate_and_checks_its_inputs() {
        let a = Arc::new(GpsSampler::new(table(&[[0, 1, 1], [1, 2, 2], [2, 0, 0]])));
        let b = Arc::new(GpsSampler::new(table(&[[0, 2, 2], [1, 0, 0], [2, 1, 1]])));
        let mix = MixSampler::new(a.clone(), b.clone(), 0.3).unwrap();
        let n = 4000;
        let from_a = (0..n)
            .filter(|&pos| mix.partner(0, 11, 2, pos, 0) == 1)
            .count();
        // Binomial(4000, 0.3): mean 1200, sd 29; the draw is seeded, so this is exact each run.
        assert!((1080..1320).contains(&from_a), "{from_a}");
        // Pure: the same arguments give the same partner.
        assert_eq!(mix.partner(1, 3, 4, 5, 0), mix.partner(1, 3, 4, 5, 0));
        assert!(MixSampler::new(a.clone(), b.clone(), 1.5).is_err());
        let two =
            Arc::new(GpsSampler::new(table(&[[0, 1, 2], [1, 0, 2], [2, 1, 0]])).with_positives(2));
        assert!(matches!(
            MixSampler::new(a, two, 0.5),
            Err(Error::Mismatch { .. })
        ));
    }
}
