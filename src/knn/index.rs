//! One search trait over every index kind, and the builder that runs the whole stage.

use std::collections::BTreeMap;
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::exact::ExactIndex;
use super::hnsw::{HnswIndex, HnswParams, Insertion};
use super::hybrid::{estimate_recall, KnnMethod};
use super::lists::NeighbourLists;
use super::metric::Metric;
use super::radius::Radius;
use super::topk::Candidate;
use crate::{
    progress::{NoProgress, Progress},
    Error, Result,
};

/// Default [`NeighbourBuilder::k`]: neighbours per point.
pub const DEFAULT_KNN_K: usize = 20;
/// Default [`NeighbourBuilder::metric`].
pub const DEFAULT_KNN_METRIC: Metric = Metric::Cosine;
/// Default [`NeighbourBuilder::method`].
pub const DEFAULT_KNN_METHOD: KnnMethod = KnnMethod::Auto;
/// Default [`NeighbourBuilder::include_self`].
pub const DEFAULT_KNN_INCLUDE_SELF: bool = false;
/// Default [`NeighbourBuilder::refine_factor`]: 1 = no refinement.
pub const DEFAULT_KNN_REFINE_FACTOR: usize = 1;
/// Default [`NeighbourBuilder::recall_sample`]: queries checked against exact search.
pub const DEFAULT_KNN_RECALL_SAMPLE: usize = 1000;
/// Default [`NeighbourBuilder::seed`] (recall sample).
pub const DEFAULT_KNN_SEED: u64 = 0;
/// Default [`NeighbourBuilder::threads`]: 0 = rayon's default (all cores).
pub const DEFAULT_KNN_THREADS: usize = 0;

/// A k-NN index over a fixed set of points that can list every point's neighbours.
///
/// Lists are sorted by `(distance, id)` ascending. With `include_self` each row holds the point
/// itself plus its `k - 1` nearest other points (the point sorts first among equal distances,
/// so for cosine and L2 it is always entry 0); without, its `k` nearest other points.
pub trait KnnIndex {
    /// Number of indexed points.
    fn len(&self) -> usize;
    /// True when nothing is indexed.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The metric distances are measured in.
    fn metric(&self) -> Metric;
    /// Every point's `k` neighbours, `[n, k]`.
    fn search_all(
        &self,
        k: usize,
        include_self: bool,
        progress: &dyn Progress,
    ) -> Result<NeighbourLists>;
}

impl KnnIndex for ExactIndex<'_> {
    fn len(&self) -> usize {
        ExactIndex::len(self)
    }
    fn metric(&self) -> Metric {
        ExactIndex::metric(self)
    }
    fn search_all(
        &self,
        k: usize,
        include_self: bool,
        progress: &dyn Progress,
    ) -> Result<NeighbourLists> {
        let others = others_needed(self.len(), k, include_self)?;
        let rows = self.all_others(others, progress);
        assemble(self, rows, k, include_self)
    }
}

impl KnnIndex for HnswIndex<'_> {
    fn len(&self) -> usize {
        self.exact().len()
    }
    fn metric(&self) -> Metric {
        self.exact().metric()
    }
    fn search_all(
        &self,
        k: usize,
        include_self: bool,
        progress: &dyn Progress,
    ) -> Result<NeighbourLists> {
        let others = others_needed(self.len(), k, include_self)?;
        let rows = self.all_others(others, others, progress);
        assemble(self.exact(), rows, k, include_self)
    }
}

/// How many other points each row needs; errors when there are not that many.
fn others_needed(n: usize, k: usize, include_self: bool) -> Result<usize> {
    let others = if include_self { k.saturating_sub(1) } else { k };
    if k == 0 {
        return Err(Error::invalid("k", "must be at least 1"));
    }
    if n == 0 {
        return Err(Error::invalid("embeddings", "no points to search"));
    }
    if others >= n {
        return Err(Error::invalid(
            "k",
            format!(
                "k={k} needs {others} other points per row but there are only {n} points \
                 (use k < {}{})",
                if include_self { n + 1 } else { n },
                if include_self { "" } else { " or include self" }
            ),
        ));
    }
    Ok(others)
}

/// Builds the table from per-row "other points" lists, inserting the point itself when asked.
fn assemble(
    exact: &ExactIndex<'_>,
    rows: Vec<Vec<Candidate>>,
    k: usize,
    include_self: bool,
) -> Result<NeighbourLists> {
    let n = rows.len();
    let mut ids = vec![0u32; n * k];
    let mut dist = vec![0.0f32; n * k];
    ids.par_chunks_exact_mut(k)
        .zip(dist.par_chunks_exact_mut(k))
        .zip(rows.into_par_iter())
        .enumerate()
        .for_each(|(i, ((ids, dist), others))| {
            let mut row: Vec<(f32, u32)> = others.iter().map(|c| (c.dist, c.id)).collect();
            if include_self {
                let d = exact.self_distance(i);
                let at = row.partition_point(|&(o, _)| o < d);
                row.insert(at, (d, i as u32));
            }
            row.truncate(k);
            for (j, (d, id)) in row.into_iter().enumerate() {
                ids[j] = id;
                dist[j] = d;
            }
        });
    NeighbourLists::new(k, ids, dist)
}

/// Configures and validates a neighbour search over `[n, dim]` vectors.
///
/// ```
/// use gps_ssl::knn::{KnnMethod, Metric, NeighbourBuilder};
/// // four points on a line
/// let v = [0.0f32, 0.0, 1.0, 0.0, 3.0, 0.0, 7.0, 0.0];
/// let out = NeighbourBuilder::new(&v, 2)
///     .k(2)
///     .metric(Metric::L2)
///     .method(KnnMethod::Exact)
///     .build()?
///     .run()?;
/// assert_eq!(out.lists.neighbours(0), &[1, 2]);
/// # Ok::<(), gps_ssl::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct NeighbourBuilder<'a> {
    vectors: &'a [f32],
    dim: usize,
    k: usize,
    metric: Metric,
    method: KnnMethod,
    include_self: bool,
    radius: Radius,
    hnsw: HnswParams,
    refine_factor: usize,
    recall_sample: usize,
    seed: u64,
    threads: usize,
    insertion: Insertion,
}

impl<'a> NeighbourBuilder<'a> {
    /// Starts a search over `vectors`, flat `[n, dim]` row-major.
    pub fn new(vectors: &'a [f32], dim: usize) -> Self {
        NeighbourBuilder {
            vectors,
            dim,
            k: DEFAULT_KNN_K,
            metric: DEFAULT_KNN_METRIC,
            method: DEFAULT_KNN_METHOD,
            include_self: DEFAULT_KNN_INCLUDE_SELF,
            radius: Radius::None,
            hnsw: HnswParams::default(),
            refine_factor: DEFAULT_KNN_REFINE_FACTOR,
            recall_sample: DEFAULT_KNN_RECALL_SAMPLE,
            seed: DEFAULT_KNN_SEED,
            threads: DEFAULT_KNN_THREADS,
            insertion: Insertion::Parallel,
        }
    }

    /// Neighbours per point. Defaults to [`DEFAULT_KNN_K`].
    pub fn k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }

    /// Distance metric. Defaults to [`DEFAULT_KNN_METRIC`].
    pub fn metric(mut self, metric: Metric) -> Self {
        self.metric = metric;
        self
    }

    /// Exact, HNSW or automatic. Defaults to [`DEFAULT_KNN_METHOD`].
    pub fn method(mut self, method: KnnMethod) -> Self {
        self.method = method;
        self
    }

    /// Whether each row holds the point itself. Defaults to [`DEFAULT_KNN_INCLUDE_SELF`].
    pub fn include_self(mut self, yes: bool) -> Self {
        self.include_self = yes;
        self
    }

    /// Radius applied to the lists (fixed or adaptive τ). Defaults to [`Radius::None`].
    pub fn radius(mut self, radius: Radius) -> Self {
        self.radius = radius;
        self
    }

    /// HNSW graph parameters. Defaults to [`HnswParams::default`].
    pub fn hnsw(mut self, params: HnswParams) -> Self {
        self.hnsw = params;
        self
    }

    /// HNSW only: fetch `refine_factor · k` graph candidates and keep the exact best `k`.
    /// Defaults to [`DEFAULT_KNN_REFINE_FACTOR`].
    pub fn refine_factor(mut self, factor: usize) -> Self {
        self.refine_factor = factor;
        self
    }

    /// Queries checked against exact search to estimate recall of approximate runs (0 = skip).
    /// Defaults to [`DEFAULT_KNN_RECALL_SAMPLE`].
    pub fn recall_sample(mut self, queries: usize) -> Self {
        self.recall_sample = queries;
        self
    }

    /// Seed of the recall sample. Defaults to [`DEFAULT_KNN_SEED`].
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Worker threads (0 = all cores). Defaults to [`DEFAULT_KNN_THREADS`]. The GEMM inside exact
    /// search is threaded by `matrixmultiply` (env `MATMUL_NUM_THREADS`, at most 4).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// HNSW only: build the graph reproducibly (sequential insertion in id order, so the same
    /// input gives the same lists bit for bit) instead of in parallel. Defaults to `false`
    /// (parallel, faster, lists may differ between runs in a few rows).
    pub fn deterministic(mut self, yes: bool) -> Self {
        self.insertion = if yes {
            Insertion::Sequential
        } else {
            Insertion::Parallel
        };
        self
    }

    /// Validates the input and options.
    ///
    /// Errors: `dim == 0` or a buffer that is not `[n, dim]`; no points; `k` not in
    /// `1..n` (`1..=n` with self); a row holding NaN or ±inf (named by row); bad radius, HNSW
    /// or refine options.
    pub fn build(self) -> Result<NeighbourSearch<'a>> {
        if self.dim == 0 || !self.vectors.len().is_multiple_of(self.dim) {
            return Err(Error::mismatch(
                "embedding buffer",
                format!("[n, {}] (a multiple of {} values)", self.dim, self.dim),
                format!("{} values", self.vectors.len()),
            ));
        }
        let n = self.vectors.len() / self.dim;
        others_needed(n, self.k, self.include_self)?;
        if n > u32::MAX as usize {
            return Err(Error::invalid(
                "embeddings",
                format!("{n} points exceed u32 ids"),
            ));
        }
        if let Some(row) = self
            .vectors
            .par_chunks_exact(self.dim)
            .position_first(|v| v.iter().any(|x| !x.is_finite()))
        {
            return Err(Error::NonFinite {
                context: "embeddings".into(),
                row: row as u64,
            });
        }
        self.radius.validate(self.k, self.include_self)?;
        self.hnsw.validate()?;
        if self.refine_factor == 0 {
            return Err(Error::invalid("refine factor", "must be at least 1"));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .build()
            .map_err(|e| Error::invalid("threads", e.to_string()))?;
        Ok(NeighbourSearch { cfg: self, n, pool })
    }
}

/// A validated search, ready to [`run`](Self::run).
#[derive(Debug)]
pub struct NeighbourSearch<'a> {
    cfg: NeighbourBuilder<'a>,
    n: usize,
    pool: rayon::ThreadPool,
}

/// What a run produced: the table and a summary (also the file metadata).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KnnOutput {
    /// The neighbour table, `[n, k]`, radius applied.
    pub lists: NeighbourLists,
    /// How it was made.
    pub summary: KnnSummary,
}

/// How a neighbour table was made; saved as `gps.knn.*` metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KnnSummary {
    /// Points.
    pub n: usize,
    /// Embedding dimension.
    pub dim: usize,
    /// Neighbours per point.
    pub k: usize,
    /// Metric.
    pub metric: Metric,
    /// Whether rows hold the point itself.
    pub include_self: bool,
    /// The method asked for (may be `auto`).
    pub requested: KnnMethod,
    /// The method that ran (`exact` or `hnsw`).
    pub method: KnnMethod,
    /// HNSW parameters when HNSW ran.
    pub hnsw: Option<HnswParams>,
    /// How the HNSW graph was built (parallel or sequential insertion).
    #[serde(default)]
    pub insertion: Insertion,
    /// Refine factor (HNSW only; 1 = none).
    pub refine_factor: usize,
    /// The radius applied.
    pub radius: Radius,
    /// Recall@k against exact search: 1 for exact runs, the sample estimate for HNSW runs,
    /// `None` when the sample was disabled.
    pub recall_estimate: Option<f64>,
    /// Queries in the recall sample (0 for exact runs).
    pub recall_queries: usize,
    /// Mean valid entries per row after the radius.
    pub mean_valid: f64,
    /// Wall time of the search (seconds), recall check excluded.
    pub search_seconds: f64,
    /// Wall time of the recall check (seconds).
    pub recall_seconds: f64,
}

impl KnnSummary {
    /// The `gps.knn.*` key-value metadata for `neighbours.parquet`.
    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        let params = serde_json::json!({
            "requested": self.requested,
            "hnsw": self.hnsw,
            "refine_factor": self.refine_factor,
            "insertion": self.insertion,
            "recall_queries": self.recall_queries,
        });
        let mut m = BTreeMap::new();
        m.insert("gps.knn.metric".into(), self.metric.name().into());
        m.insert("gps.knn.k".into(), self.k.to_string());
        m.insert("gps.knn.include_self".into(), self.include_self.to_string());
        m.insert("gps.knn.method".into(), self.method.name().into());
        m.insert("gps.knn.params".into(), params.to_string());
        m.insert(
            "gps.knn.radius".into(),
            serde_json::to_string(&self.radius).unwrap_or_default(),
        );
        m.insert(
            "gps.knn.recall_estimate".into(),
            self.recall_estimate
                .map_or_else(|| "unknown".into(), |r| format!("{r:.5}")),
        );
        m.insert(
            "gps.knn.summary".into(),
            serde_json::to_string(self).unwrap_or_default(),
        );
        m
    }
}

impl NeighbourSearch<'_> {
    /// Runs the search without progress reporting.
    pub fn run(&self) -> Result<KnnOutput> {
        self.run_with(&NoProgress)
    }

    /// Runs the search, reporting to `progress`.
    pub fn run_with(&self, progress: &dyn Progress) -> Result<KnnOutput> {
        self.pool.install(|| self.run_inner(progress))
    }

    fn run_inner(&self, progress: &dyn Progress) -> Result<KnnOutput> {
        let c = &self.cfg;
        let method = c.method.resolve(self.n, c.dim);
        tracing::info!(n = self.n, dim = c.dim, k = c.k, %method, metric = %c.metric, "k-NN search");
        let others = others_needed(self.n, c.k, c.include_self)?;
        let t0 = Instant::now();
        let (lists, recall, queries, recall_seconds) = match method {
            KnnMethod::Hnsw => {
                let idx =
                    HnswIndex::build(c.vectors, c.dim, c.metric, c.hnsw, c.insertion, progress)?;
                let rows = idx.all_others(others, others * c.refine_factor, progress);
                let search = t0.elapsed().as_secs_f64();
                let t1 = Instant::now();
                let (recall, q) = if c.recall_sample > 0 && others > 0 {
                    let (r, q) =
                        estimate_recall(idx.exact(), &rows, others, c.recall_sample, c.seed);
                    (Some(r), q)
                } else {
                    (None, 0)
                };
                let lists = assemble(idx.exact(), rows, c.k, c.include_self)?;
                (lists, recall, q, (search, t1.elapsed().as_secs_f64()))
            }
            _ => {
                let idx = ExactIndex::new(c.vectors, c.dim, c.metric)?;
                let lists = idx.search_all(c.k, c.include_self, progress)?;
                (lists, Some(1.0), 0, (t0.elapsed().as_secs_f64(), 0.0))
            }
        };
        let lists = c.radius.apply(lists)?;
        let counts = lists.valid_counts();
        let mean_valid = counts.iter().map(|&v| f64::from(v)).sum::<f64>() / counts.len() as f64;
        let summary = KnnSummary {
            n: self.n,
            dim: c.dim,
            k: c.k,
            metric: c.metric,
            include_self: c.include_self,
            requested: c.method,
            method,
            hnsw: (method == KnnMethod::Hnsw).then_some(c.hnsw),
            insertion: c.insertion,
            refine_factor: c.refine_factor,
            radius: c.radius,
            recall_estimate: recall,
            recall_queries: queries,
            mean_valid,
            search_seconds: recall_seconds.0,
            recall_seconds: recall_seconds.1,
        };
        if let Some(r) = recall {
            tracing::info!(recall = r, seconds = summary.search_seconds, "k-NN done");
        }
        Ok(KnnOutput { lists, summary })
    }
}
