//! Exact (brute-force) k-NN: blocked GEMM of query tiles against data tiles, then a bounded
//! top-k per query row.
//!
//! For the all-points search the similarity matrix `X·Xᵀ` is symmetric, so only the tiles on
//! and above the diagonal are computed: each off-diagonal tile updates both its row points and
//! (transposed) its column points. That halves the floating-point work compared with a plain
//! query-versus-database scan. Working memory is two `TILE × TILE` f32 tiles plus the `[n, k]`
//! heaps, whatever `n` is. The GEMM is `matrixmultiply::sgemm` (multi-threaded by that crate,
//! see `MATMUL_NUM_THREADS`); the per-row selection runs on the current rayon pool.

use rayon::prelude::*;

use super::metric::Metric;
use super::topk::{Candidate, TopK};
use crate::{progress::Progress, Error, Result};

/// Rows per GEMM tile (queries and data alike). 1024 × 1024 f32 = 4 MiB per tile.
pub const EXACT_TILE: usize = 1024;

/// Brute-force index over borrowed vectors `[n, dim]` (row-major, flat).
#[derive(Debug, Clone)]
pub struct ExactIndex<'a> {
    vectors: &'a [f32],
    dim: usize,
    metric: Metric,
    /// Per-row term for [`Metric::dist_from_dot`]: inverse norm (cosine), squared norm (L2), 0 (dot).
    aux: Vec<f32>,
}

impl<'a> ExactIndex<'a> {
    /// Wraps `vectors` (`[n, dim]`, flat) for exact search; precomputes norms for L2 / cosine.
    ///
    /// Fails when `dim == 0` or `vectors.len()` is not a multiple of `dim`.
    pub fn new(vectors: &'a [f32], dim: usize, metric: Metric) -> Result<Self> {
        if dim == 0 || !vectors.len().is_multiple_of(dim) {
            return Err(Error::mismatch(
                "embedding buffer length",
                format!("a multiple of dim={dim}"),
                vectors.len(),
            ));
        }
        let aux = vectors
            .par_chunks_exact(dim)
            .map(|v| metric.aux(v))
            .collect();
        Ok(ExactIndex {
            vectors,
            dim,
            metric,
            aux,
        })
    }

    /// Number of indexed points.
    pub fn len(&self) -> usize {
        self.vectors.len() / self.dim
    }

    /// True when no point is indexed.
    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The metric used.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.vectors[i * self.dim..(i + 1) * self.dim]
    }

    /// For every point, its `k` nearest *other* points, nearest first (ties: smaller id).
    pub(crate) fn all_others(&self, k: usize, progress: &dyn Progress) -> Vec<Vec<Candidate>> {
        let n = self.len();
        let mut heaps: Vec<TopK> = (0..n).map(|_| TopK::new(k)).collect();
        let nt = n.div_ceil(EXACT_TILE);
        progress.start("exact k-NN (tile pairs)", (nt * (nt + 1) / 2) as u64);
        let mut tile = vec![0.0f32; EXACT_TILE * EXACT_TILE];
        let mut tile_t = vec![0.0f32; EXACT_TILE * EXACT_TILE];
        for bi in 0..nt {
            let (i0, i1) = (bi * EXACT_TILE, ((bi + 1) * EXACT_TILE).min(n));
            let (mi, a) = (i1 - i0, &self.vectors[i0 * self.dim..i1 * self.dim]);
            for bj in bi..nt {
                let (j0, j1) = (bj * EXACT_TILE, ((bj + 1) * EXACT_TILE).min(n));
                let (mj, b) = (j1 - j0, &self.vectors[j0 * self.dim..j1 * self.dim]);
                let out = &mut tile[..mi * mj];
                gemm_abt(a, b, self.dim, out);
                let out = &tile[..mi * mj];
                if bi == bj {
                    heaps[i0..i1].par_iter_mut().enumerate().for_each(|(r, h)| {
                        let row = &out[r * mj..(r + 1) * mj];
                        scan(
                            self.metric,
                            h,
                            row,
                            self.aux[i0 + r],
                            &self.aux[j0..j1],
                            j0,
                            Some(r),
                        );
                    });
                } else {
                    let out_t = &mut tile_t[..mi * mj];
                    out_t
                        .par_chunks_exact_mut(mi)
                        .enumerate()
                        .for_each(|(c, dst)| {
                            for (r, d) in dst.iter_mut().enumerate() {
                                *d = out[r * mj + c];
                            }
                        });
                    let out_t = &tile_t[..mi * mj];
                    let (lo, hi) = heaps.split_at_mut(j0);
                    let (rows_i, rows_j) = (&mut lo[i0..i1], &mut hi[..mj]);
                    let metric = self.metric;
                    let aux = &self.aux;
                    rayon::join(
                        || {
                            rows_i.par_iter_mut().enumerate().for_each(|(r, h)| {
                                let row = &out[r * mj..(r + 1) * mj];
                                scan(metric, h, row, aux[i0 + r], &aux[j0..j1], j0, None);
                            })
                        },
                        || {
                            rows_j.par_iter_mut().enumerate().for_each(|(c, h)| {
                                let col = &out_t[c * mi..(c + 1) * mi];
                                scan(metric, h, col, aux[j0 + c], &aux[i0..i1], i0, None);
                            })
                        },
                    );
                }
                progress.advance(1);
            }
        }
        progress.finish();
        heaps.into_par_iter().map(TopK::into_sorted).collect()
    }

    /// For each query point id in `rows`, its `k` nearest *other* points (exact), nearest first.
    ///
    /// # Panics
    /// When an id in `rows` is `>= len()` (ids come from the crate, not the user).
    pub(crate) fn rows_others(&self, rows: &[u32], k: usize) -> Vec<Vec<Candidate>> {
        let n = self.len();
        let mut out = Vec::with_capacity(rows.len());
        let mut queries = vec![0.0f32; EXACT_TILE * self.dim];
        let mut tile = vec![0.0f32; EXACT_TILE * EXACT_TILE];
        for chunk in rows.chunks(EXACT_TILE) {
            let mq = chunk.len();
            for (q, &id) in chunk.iter().enumerate() {
                queries[q * self.dim..(q + 1) * self.dim].copy_from_slice(self.row(id as usize));
            }
            let a = &queries[..mq * self.dim];
            let mut heaps: Vec<TopK> = (0..mq).map(|_| TopK::new(k)).collect();
            for j0 in (0..n).step_by(EXACT_TILE) {
                let j1 = (j0 + EXACT_TILE).min(n);
                let mj = j1 - j0;
                let t = &mut tile[..mq * mj];
                gemm_abt(a, &self.vectors[j0 * self.dim..j1 * self.dim], self.dim, t);
                let t = &tile[..mq * mj];
                heaps.par_iter_mut().enumerate().for_each(|(q, h)| {
                    let id = chunk[q] as usize;
                    let skip = (j0..j1).contains(&id).then(|| id - j0);
                    let row = &t[q * mj..(q + 1) * mj];
                    scan(
                        self.metric,
                        h,
                        row,
                        self.aux[id],
                        &self.aux[j0..j1],
                        j0,
                        skip,
                    );
                });
            }
            out.extend(heaps.into_iter().map(TopK::into_sorted));
        }
        out
    }

    /// Exact distance between points `i` and `j` using the precomputed norms.
    pub(crate) fn pair_distance(&self, i: usize, j: usize) -> f32 {
        let d = super::metric::dot(self.row(i), self.row(j));
        self.metric.dist_from_dot(d, self.aux[i], self.aux[j])
    }

    /// Distance of point `i` to itself (0, or `-||x||²` for dot).
    pub(crate) fn self_distance(&self, i: usize) -> f32 {
        self.metric.self_distance(self.row(i))
    }
}

/// Offers one row of inner products to a heap, skipping column `skip` (the point itself).
#[inline]
fn scan(
    metric: Metric,
    heap: &mut TopK,
    dots: &[f32],
    q_aux: f32,
    col_aux: &[f32],
    col0: usize,
    skip: Option<usize>,
) {
    // Monomorphise the inner loop per metric so the match is not in the hot loop.
    #[inline(always)]
    fn go(
        heap: &mut TopK,
        dots: &[f32],
        col_aux: &[f32],
        col0: usize,
        skip: Option<usize>,
        f: impl Fn(f32, f32) -> f32,
    ) {
        for (c, (&s, &a)) in dots.iter().zip(col_aux).enumerate() {
            if Some(c) != skip {
                heap.push(f(s, a), (col0 + c) as u32);
            }
        }
    }
    match metric {
        Metric::Cosine => go(heap, dots, col_aux, col0, skip, |s, a| {
            (1.0 - s * q_aux * a).max(0.0)
        }),
        Metric::L2 => go(heap, dots, col_aux, col0, skip, |s, a| {
            (q_aux + a - 2.0 * s).max(0.0)
        }),
        Metric::Dot => go(heap, dots, col_aux, col0, skip, |s, _| -s),
    }
}

/// `out[ma, mb] = a[ma, dim] · b[mb, dim]ᵀ`, all row-major.
fn gemm_abt(a: &[f32], b: &[f32], dim: usize, out: &mut [f32]) {
    let (ma, mb) = (a.len() / dim, b.len() / dim);
    assert!(out.len() == ma * mb && a.len() == ma * dim && b.len() == mb * dim);
    // SAFETY: the asserted lengths make every index sgemm touches in-bounds: A is [ma, dim]
    // with strides (dim, 1), B = bᵀ is [dim, mb] with strides (1, dim), C is [ma, mb] with
    // strides (mb, 1); C does not alias A or B (distinct borrows).
    unsafe {
        matrixmultiply::sgemm(
            ma,
            dim,
            mb,
            1.0,
            a.as_ptr(),
            dim as isize,
            1,
            b.as_ptr(),
            1,
            dim as isize,
            0.0,
            out.as_mut_ptr(),
            mb as isize,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    #[test]
    fn gemm_matches_naive_products() {
        let a: Vec<f32> = (0..3 * 5).map(|i| i as f32 - 4.0).collect();
        let b: Vec<f32> = (0..2 * 5).map(|i| (i % 3) as f32).collect();
        let mut out = vec![0.0; 6];
        gemm_abt(&a, &b, 5, &mut out);
        for r in 0..3 {
            for c in 0..2 {
                let want = super::super::metric::dot(&a[r * 5..r * 5 + 5], &b[c * 5..c * 5 + 5]);
                assert_eq!(out[r * 2 + c], want);
            }
        }
    }

    #[test]
    fn rows_search_agrees_with_all_points_search() {
        let n = 2 * EXACT_TILE + 37;
        let dim = 6;
        let v: Vec<f32> = (0..n * dim)
            .map(|i| ((i * 7919) % 23) as f32 - 11.0)
            .collect();
        let idx = ExactIndex::new(&v, dim, Metric::L2).unwrap();
        let all = idx.all_others(5, &NoProgress);
        let rows = [0u32, 1500, (n - 1) as u32];
        let some = idx.rows_others(&rows, 5);
        for (q, &r) in rows.iter().enumerate() {
            let a: Vec<u32> = all[r as usize].iter().map(|c| c.id).collect();
            let b: Vec<u32> = some[q].iter().map(|c| c.id).collect();
            assert_eq!(a, b, "row {r}");
        }
    }
}
