//! Exact cosine top-k search of queries against a gallery, tiled over queries.
//!
//! Similarities of one tile of queries against the whole gallery come from one
//! `matrixmultiply::sgemm` call (which uses its own threads); each row of the tile then keeps its
//! `k` best candidates in a bounded max-heap (rows in parallel with rayon). Memory is one
//! `[tile, n_gallery]` buffer, never `[n_query, n_gallery]`.

use crate::progress::Progress;
use rayon::prelude::*;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// At most this many f32 similarities per tile buffer (64 MiB).
const TILE_FLOATS: usize = 16 << 20;

/// `k` nearest gallery rows of every query row, best first.
///
/// Order: descending similarity; equal similarities by ascending gallery index, so results are
/// deterministic whatever the thread count.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TopK {
    /// Neighbours kept per query (`min(k, candidates)`).
    pub k: usize,
    /// Gallery indices, `[n_query * k]`.
    pub indices: Vec<u32>,
    /// Cosine similarities, `[n_query * k]`.
    pub similarities: Vec<f32>,
}

impl TopK {
    /// Indices of query `q`'s neighbours, best first.
    pub fn indices(&self, q: usize) -> &[u32] {
        &self.indices[q * self.k..(q + 1) * self.k]
    }

    /// Similarities of query `q`'s neighbours, descending.
    pub fn similarities(&self, q: usize) -> &[f32] {
        &self.similarities[q * self.k..(q + 1) * self.k]
    }
}

/// A heap entry; `Ord` puts the *worse* candidate last, so a max-heap's top is the worst kept.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    similarity: f32,
    index: u32,
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .similarity
            .total_cmp(&self.similarity)
            .then(self.index.cmp(&other.index))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

/// Searches the `k` most similar gallery rows for every query row by dot product.
///
/// `query` is `[n_query, dim]`, `gallery` `[n_gallery, dim]`, both row-major and already
/// L2-normalised (so the dot product is the cosine similarity). With `exclude_self`, query `i`
/// never returns gallery row `i` (use when query and gallery are the same set). Fewer than `k`
/// candidates shrink `k`. Progress is reported in queries.
pub(crate) fn cosine_top_k(
    query: &[f32],
    gallery: &[f32],
    dim: usize,
    k: usize,
    exclude_self: bool,
    progress: &dyn Progress,
) -> TopK {
    let n_gallery = gallery.len() / dim;
    let tile = (TILE_FLOATS / n_gallery.max(1)).clamp(1, 1024);
    search_tiled(query, gallery, dim, k, exclude_self, tile, progress)
}

/// [`cosine_top_k`] with an explicit tile height (queries per sgemm call).
fn search_tiled(
    query: &[f32],
    gallery: &[f32],
    dim: usize,
    k: usize,
    exclude_self: bool,
    tile: usize,
    progress: &dyn Progress,
) -> TopK {
    let n_query = query.len() / dim;
    let n_gallery = gallery.len() / dim;
    let candidates = if exclude_self {
        n_gallery.saturating_sub(1)
    } else {
        n_gallery
    };
    let k = k.min(candidates);
    let mut indices = vec![0u32; n_query * k];
    let mut similarities = vec![0f32; n_query * k];
    if k == 0 || n_query == 0 {
        return TopK {
            k,
            indices,
            similarities,
        };
    }
    let tile = tile.clamp(1, n_query);
    let mut sims = vec![0f32; tile * n_gallery];
    progress.start("knn search", n_query as u64);
    for start in (0..n_query).step_by(tile) {
        let rows = tile.min(n_query - start);
        let a = &query[start * dim..(start + rows) * dim];
        let c = &mut sims[..rows * n_gallery];
        // SAFETY: A is `[rows, dim]` row-major (strides dim, 1) inside `a`; B = galleryᵀ is
        // `[dim, n_gallery]` read through strides (1, dim) inside `gallery`; C is `[rows,
        // n_gallery]` row-major inside `c`, which is exclusively borrowed and non-aliasing.
        unsafe {
            matrixmultiply::sgemm(
                rows,
                dim,
                n_gallery,
                1.0,
                a.as_ptr(),
                dim as isize,
                1,
                gallery.as_ptr(),
                1,
                dim as isize,
                0.0,
                c.as_mut_ptr(),
                n_gallery as isize,
                1,
            );
        }
        let out_idx = &mut indices[start * k..(start + rows) * k];
        let out_sim = &mut similarities[start * k..(start + rows) * k];
        c.par_chunks_exact(n_gallery)
            .zip(out_idx.par_chunks_exact_mut(k))
            .zip(out_sim.par_chunks_exact_mut(k))
            .enumerate()
            .for_each(|(r, ((row, idx), sim))| {
                let skip = exclude_self.then_some(start + r);
                select_row(row, skip, idx, sim);
            });
        progress.advance(rows as u64);
    }
    progress.finish();
    TopK {
        k,
        indices,
        similarities,
    }
}

/// Writes the `idx.len()` best entries of `row` (skipping index `skip`) into `idx` / `sim`.
fn select_row(row: &[f32], skip: Option<usize>, idx: &mut [u32], sim: &mut [f32]) {
    let k = idx.len();
    let mut heap: BinaryHeap<Candidate> = BinaryHeap::with_capacity(k + 1);
    for (j, &s) in row.iter().enumerate() {
        if Some(j) == skip {
            continue;
        }
        if heap.len() == k {
            // Later indices lose ties, so an equal similarity cannot enter a full heap.
            match heap.peek() {
                Some(worst) if s > worst.similarity => {
                    heap.pop();
                }
                _ => continue,
            }
        }
        heap.push(Candidate {
            similarity: s,
            index: j as u32,
        });
    }
    for (slot, c) in heap.into_sorted_vec().into_iter().enumerate() {
        idx[slot] = c.index;
        sim[slot] = c.similarity;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    /// Brute force: sort all (similarity desc, index asc).
    fn brute(query: &[f32], gallery: &[f32], dim: usize, k: usize, ex: bool) -> Vec<Vec<u32>> {
        query
            .chunks_exact(dim)
            .enumerate()
            .map(|(q, qr)| {
                let mut all: Vec<(f32, u32)> = gallery
                    .chunks_exact(dim)
                    .enumerate()
                    .filter(|(j, _)| !(ex && *j == q))
                    .map(|(j, g)| (qr.iter().zip(g).map(|(a, b)| a * b).sum(), j as u32))
                    .collect();
                all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                all.into_iter().take(k).map(|p| p.1).collect()
            })
            .collect()
    }

    #[test]
    fn matches_brute_force_with_and_without_self() {
        // Small integers make every dot product exact, so ties are real ties.
        let dim = 3;
        let g: Vec<f32> = (0..40 * dim)
            .map(|i| ((i * 7 + 3) % 5) as f32 - 2.0)
            .collect();
        for (ex, tile) in [(false, 1024), (true, 1024), (false, 7), (true, 3)] {
            let top = search_tiled(&g, &g, dim, 6, ex, tile, &NoProgress);
            let want = brute(&g, &g, dim, 6, ex);
            for (q, w) in want.iter().enumerate() {
                assert_eq!(top.indices(q), w.as_slice(), "query {q} exclude_self={ex}");
            }
        }
    }

    #[test]
    fn k_shrinks_to_the_candidate_count() {
        let g = [1.0, 0.0, 0.0, 1.0];
        let top = cosine_top_k(&g, &g, 2, 5, true, &NoProgress);
        assert_eq!(top.k, 1);
        assert_eq!(top.indices, vec![1, 0]);
    }
}
