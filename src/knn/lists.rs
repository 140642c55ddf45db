//! The in-memory neighbour table handed from the `knn` stage to the loader.
//!
//! The table is fixed-width (`k` entries per row). A radius (fixed or adaptive τ, see
//! [`Radius`](crate::knn::Radius)) is encoded as a per-row **valid count**: because each row is
//! sorted ascending, the entries inside the radius are always a prefix, and `valid(id)` is that
//! prefix. The loader samples positives only from `valid(id)`. A row always has at least one
//! valid entry (the nearest one), so sampling never fails.

use crate::{Error, Result};

/// For each of `n` points, its `k` neighbours (ids `u32`) and distances (`f32`), sorted
/// ascending by distance. Stored flat: row `i` is `ids[i*k..(i+1)*k]`.
#[derive(Debug, Clone, PartialEq)]
pub struct NeighbourLists {
    k: usize,
    ids: Vec<u32>,
    distances: Vec<f32>,
    /// Per-row number of leading entries inside the radius, each in `1..=k`.
    valid: Vec<u32>,
}

impl NeighbourLists {
    /// Builds a table from flat `[n * k]` buffers.
    ///
    /// Every entry is valid (no radius). Fails when the buffers disagree in length, are not a
    /// multiple of `k`, or `k == 0`.
    pub fn new(k: usize, ids: Vec<u32>, distances: Vec<f32>) -> Result<Self> {
        if k == 0 {
            return Err(Error::invalid("k", "must be at least 1"));
        }
        if ids.len() != distances.len() || !ids.len().is_multiple_of(k) {
            return Err(Error::mismatch(
                "neighbour buffer length",
                format!("two equal multiples of k={k}"),
                format!("ids={} distances={}", ids.len(), distances.len()),
            ));
        }
        let valid = vec![k as u32; ids.len() / k];
        Ok(NeighbourLists {
            k,
            ids,
            distances,
            valid,
        })
    }

    /// Replaces the per-row valid counts (`[n]`, each in `1..=k`): row `i` keeps only its first
    /// `counts[i]` entries as positives (see the module docs).
    pub fn with_valid(mut self, counts: Vec<u32>) -> Result<Self> {
        if counts.len() != self.len() {
            return Err(Error::mismatch(
                "valid count rows",
                self.len(),
                counts.len(),
            ));
        }
        if let Some((row, c)) = counts
            .iter()
            .enumerate()
            .find(|(_, &c)| c == 0 || c as usize > self.k)
        {
            return Err(Error::invalid(
                "valid count",
                format!("row {row} has {c}, expected 1..={}", self.k),
            ));
        }
        self.valid = counts;
        Ok(self)
    }

    /// The neighbours of point `id` inside its radius (a non-empty prefix of
    /// [`neighbours`](Self::neighbours)); all `k` when no radius was applied.
    ///
    /// # Panics
    /// When `id >= len()`.
    pub fn valid(&self, id: usize) -> &[u32] {
        &self.ids[id * self.k..id * self.k + self.valid[id] as usize]
    }

    /// Per-row valid counts, `[n]`, each in `1..=k`.
    pub fn valid_counts(&self) -> &[u32] {
        &self.valid
    }

    /// Neighbours per point.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Number of points (rows).
    pub fn len(&self) -> usize {
        self.ids.len() / self.k
    }

    /// True when there is no row.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The `k` neighbour ids of point `id`, nearest first.
    ///
    /// # Panics
    /// When `id >= len()`.
    pub fn neighbours(&self, id: usize) -> &[u32] {
        &self.ids[id * self.k..(id + 1) * self.k]
    }

    /// The `k` distances of point `id`, ascending.
    ///
    /// # Panics
    /// When `id >= len()`.
    pub fn distances(&self, id: usize) -> &[f32] {
        &self.distances[id * self.k..(id + 1) * self.k]
    }

    /// All ids, flat `[n * k]`.
    pub fn ids_flat(&self) -> &[u32] {
        &self.ids
    }

    /// All distances, flat `[n * k]`.
    pub fn distances_flat(&self) -> &[f32] {
        &self.distances
    }
}
