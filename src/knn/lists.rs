//! The in-memory neighbour table handed from the `knn` stage to the loader.

use crate::{Error, Result};

/// For each of `n` points, its `k` neighbours (ids `u32`) and distances (`f32`), sorted
/// ascending by distance. Stored flat: row `i` is `ids[i*k..(i+1)*k]`.
#[derive(Debug, Clone, PartialEq)]
pub struct NeighbourLists {
    k: usize,
    ids: Vec<u32>,
    distances: Vec<f32>,
}

impl NeighbourLists {
    /// Builds a table from flat `[n * k]` buffers.
    ///
    /// Fails when the buffers disagree in length, are not a multiple of `k`, or `k == 0`.
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
        Ok(NeighbourLists { k, ids, distances })
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
