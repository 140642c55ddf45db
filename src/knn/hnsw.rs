//! Approximate k-NN with a hierarchical navigable small-world graph ([`super::graph`]).
//!
//! The graph is built over a prepared copy of the vectors: unit-normalised for cosine
//! (`1 - a·b`), unchanged for L2 (squared distance), and for dot products the classic MIPS → L2
//! reduction (each point gets an extra coordinate `sqrt(M² - ||x||²)`, queries a 0, so the L2
//! order equals the inner-product order). Returned candidates are always re-scored exactly with
//! the original vectors and metric, so the distances in the output are exact and sorted by
//! `(distance, id)`.
//!
//! Reproducibility: node levels come from a hash of the node id (not from insertion order), so
//! the graph depends only on the order in which points are linked. With parallel insertion (the
//! default) that order races between threads and the graph, hence the lists, can differ between
//! runs in a few rows; recall is measured and reported instead. A *deterministic* build
//! ([`Insertion::Sequential`], CLI `--deterministic`) inserts points one by one in id order: the
//! same vectors and parameters give the same lists bit for bit, for any thread count, on one
//! CPU (the graph's distance kernel is chosen for the CPU at run time; searching the finished
//! graph is read-only and runs in parallel either way).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::exact::ExactIndex;
use super::graph::{Graph, GraphDistance, ScratchPool};
use super::metric::{dot, Metric};
use super::topk::Candidate;
use crate::{progress::Progress, Error, Result};

/// Seed of the node levels (fixed: the levels are part of the graph, not a user choice).
const LEVEL_SEED: u64 = 0x6770_732d_7373_6c00;
/// Queries handed to a rayon task at a time (one search scratch each).
const SEARCH_CHUNK: usize = 64;

/// Default [`HnswParams::m`].
pub const DEFAULT_HNSW_M: usize = 16;
/// Default [`HnswParams::ef_construction`].
pub const DEFAULT_HNSW_EF_CONSTRUCTION: usize = 100;
/// Default [`HnswParams::ef_search`].
pub const DEFAULT_HNSW_EF_SEARCH: usize = 64;

/// HNSW graph parameters, saved with the neighbour file (`gps.knn.params`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnswParams {
    /// Links per node per layer (2..=255). Defaults to [`DEFAULT_HNSW_M`].
    pub m: usize,
    /// Candidate list width while building. Defaults to [`DEFAULT_HNSW_EF_CONSTRUCTION`].
    pub ef_construction: usize,
    /// Candidate list width while searching (raised to the number of candidates asked for when
    /// smaller). Defaults to [`DEFAULT_HNSW_EF_SEARCH`].
    pub ef_search: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: DEFAULT_HNSW_M,
            ef_construction: DEFAULT_HNSW_EF_CONSTRUCTION,
            ef_search: DEFAULT_HNSW_EF_SEARCH,
        }
    }
}

impl HnswParams {
    /// Checks the ranges the graph accepts.
    pub fn validate(&self) -> Result<()> {
        if !(2..=255).contains(&self.m) {
            return Err(Error::invalid(
                "hnsw m",
                format!("{} is not in 2..=255", self.m),
            ));
        }
        if self.ef_construction == 0 || self.ef_search == 0 {
            return Err(Error::invalid(
                "hnsw ef",
                "ef_construction and ef_search must be >= 1",
            ));
        }
        Ok(())
    }
}

/// How points enter the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Insertion {
    /// Parallel insertion on the rayon pool: fastest, not bit-reproducible.
    #[default]
    Parallel,
    /// One point at a time in id order: reproducible bit for bit, single-threaded build.
    Sequential,
}

/// An HNSW graph over borrowed vectors `[n, dim]`, plus an exact index used to re-score.
pub struct HnswIndex<'a> {
    exact: ExactIndex<'a>,
    /// The graph over the prepared vectors `[n, pdim]` (queries use the same rows; for dot the
    /// query form replaces the last coordinate by 0).
    graph: Graph,
    pdim: usize,
    params: HnswParams,
}

impl std::fmt::Debug for HnswIndex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswIndex")
            .field("n", &self.exact.len())
            .field("dim", &self.exact.dim())
            .field("metric", &self.exact.metric())
            .field("params", &self.params)
            .finish()
    }
}

impl<'a> HnswIndex<'a> {
    /// Builds the graph, inserting in parallel on the current rayon pool or sequentially in id
    /// order (see the module doc on reproducibility).
    pub fn build(
        vectors: &'a [f32],
        dim: usize,
        metric: Metric,
        params: HnswParams,
        insertion: Insertion,
        progress: &dyn Progress,
    ) -> Result<Self> {
        params.validate()?;
        let exact = ExactIndex::new(vectors, dim, metric)?;
        let n = exact.len();
        let (prepared, pdim, dist) = prepare(vectors, dim, metric);
        let mut graph = Graph::new(
            prepared,
            pdim,
            params.m,
            params.ef_construction,
            dist,
            LEVEL_SEED,
        );
        progress.start("hnsw insert", n as u64);
        graph.insert_all(insertion == Insertion::Parallel, &|done| {
            progress.advance(done as u64)
        });
        progress.finish();
        graph.freeze();
        Ok(HnswIndex {
            exact,
            graph,
            pdim,
            params,
        })
    }

    /// The parameters the graph was built with.
    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// Changes the search width of later searches (the graph is unchanged); 0 is taken as 1.
    pub fn set_ef_search(&mut self, ef_search: usize) {
        self.params.ef_search = ef_search.max(1);
    }

    /// The exact index over the same vectors (used for re-scoring and recall checks).
    pub fn exact(&self) -> &ExactIndex<'a> {
        &self.exact
    }

    /// For every point, `k` other points: the `candidates` (≥ k) best graph hits re-scored
    /// exactly and cut to `k`. Rows where the graph returns fewer than `k` others fall back to
    /// exact search, so every row is full.
    pub(crate) fn all_others(
        &self,
        k: usize,
        candidates: usize,
        progress: &dyn Progress,
    ) -> Vec<Vec<Candidate>> {
        let n = self.exact.len();
        let want = candidates.max(k) + 1; // +1: the point itself is usually returned
        let ef = self.params.ef_search.max(want);
        progress.start("hnsw search", n as u64);
        let pool = ScratchPool::new(n);
        let mut rows: Vec<Vec<Candidate>> = (0..n)
            .into_par_iter()
            .chunks(SEARCH_CHUNK)
            .flat_map_iter(|chunk| {
                let mut q = Vec::with_capacity(self.pdim);
                let out: Vec<Vec<Candidate>> = pool.with(|s| {
                    chunk
                        .iter()
                        .map(|&i| {
                            self.graph.row(i, &mut q);
                            if self.pdim != self.exact.dim() {
                                if let Some(last) = q.last_mut() {
                                    *last = 0.0;
                                }
                            }
                            let mut c: Vec<Candidate> = self
                                .graph
                                .search(&q, want, ef, s)
                                .iter()
                                .filter(|h| h.id as usize != i)
                                .map(|h| Candidate {
                                    dist: self.exact.pair_distance(i, h.id as usize),
                                    id: h.id,
                                })
                                .collect();
                            c.sort();
                            c.dedup_by_key(|x| x.id);
                            c.truncate(k);
                            c
                        })
                        .collect()
                });
                progress.advance(chunk.len() as u64);
                out
            })
            .collect();
        progress.finish();
        let short: Vec<u32> = (0..n)
            .filter(|&i| rows[i].len() < k)
            .map(|i| i as u32)
            .collect();
        if !short.is_empty() {
            tracing::debug!(
                rows = short.len(),
                "hnsw returned too few neighbours; exact fallback"
            );
            for (r, c) in short.iter().zip(self.exact.rows_others(&short, k)) {
                rows[*r as usize] = c;
            }
        }
        rows
    }
}

/// Maps vectors into graph space; returns `(prepared [n, pdim], pdim, distance)`.
fn prepare(vectors: &[f32], dim: usize, metric: Metric) -> (Vec<f32>, usize, GraphDistance) {
    match metric {
        Metric::Cosine => {
            let mut p = vectors.to_vec();
            p.par_chunks_exact_mut(dim).for_each(|v| {
                let norm = dot(v, v).sqrt();
                if norm > 0.0 {
                    v.iter_mut().for_each(|x| *x /= norm);
                }
            });
            (p, dim, GraphDistance::UnitDot)
        }
        Metric::L2 => (vectors.to_vec(), dim, GraphDistance::SquaredL2),
        Metric::Dot => {
            let sq: Vec<f32> = vectors.par_chunks_exact(dim).map(|v| dot(v, v)).collect();
            let max = sq.iter().copied().fold(0.0f32, f32::max);
            let mut p = Vec::with_capacity(vectors.len() + sq.len());
            for (v, s) in vectors.chunks_exact(dim).zip(&sq) {
                p.extend_from_slice(v);
                p.push((max - s).max(0.0).sqrt());
            }
            (p, dim + 1, GraphDistance::SquaredL2)
        }
    }
}
