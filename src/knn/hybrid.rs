//! Choosing between exact and HNSW search, and measuring the recall of approximate results.
//!
//! # Cost model
//! Exact all-points search computes the upper triangle of `X·Xᵀ`: `n²/2 · dim` multiply-adds,
//! i.e. `n² · dim` FLOP. HNSW costs roughly `n · dim · c` for build + search at the default
//! parameters. So
//!
//! ```text
//! exact_seconds = n² · dim / EXACT_FLOPS
//! hnsw_seconds  = n · dim · HNSW_SECONDS_PER_POINT_DIM
//! ```
//!
//! and [`KnnMethod::Auto`] takes the cheaper one, except that it searches exactly whenever the
//! exact estimate is at most [`AUTO_EXACT_SECONDS`]: exact lists have recall 1 and are the same
//! bit for bit on every run, which an HNSW graph built in parallel is not. The crossover is
//! `n* = EXACT_FLOPS · HNSW_SECONDS_PER_POINT_DIM` ≈ 50 000 points whatever `dim` is; the floor
//! keeps exact search up to `√(AUTO_EXACT_SECONDS · EXACT_FLOPS / dim)` points, ≈ 80 000 at 512
//! dimensions, ≈ 51 000 at 1280 and ≈ 160 000 at 128. The constants were measured on the 2-core
//! development machine (see their docs); they only decide the method, never the results.

use std::fmt;
use std::str::FromStr;

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::exact::ExactIndex;
use super::topk::Candidate;
use crate::{Error, Result};

/// Measured exact-search throughput, FLOP/s (`n² · dim` per all-points search), on the 2-core
/// dev box, this crate at opt-level 3 without debug assertions (as in a release build), k = 20,
/// cosine, seeded clustered vectors, 2026-12-05: 20 000, 40 000 and 80 000 × 512 took 1.97, 7.96
/// and 29.1 s (1.04, 1.03, 1.13e11), 40 000 × 1280 14.0 s (1.46e11) → 1.1e11. (The earlier
/// 2.0e11, from one 20 000 × 1280 run, made `auto` search 70 000 × 1280 exactly, estimated
/// 31 s; it took 58.8 s where HNSW takes about 12.)
pub const EXACT_FLOPS: f64 = 1.1e11;
/// Measured HNSW (build + search, default params, k = 10) cost in seconds per point per
/// dimension on the 2-core dev box: 1 000 000 × 512 took 121 s to build and 110 s to search at
/// ef 64 (2026-12-04, `knn::graph`) → 4.5e-7. Per point it grows slowly with `n` (100 000 ×
/// 512 took 3.1e-7; 40 000 and 80 000 × 512 at the default parameters 1.6e-7 and 1.9e-7 on
/// 2026-12-05), so the 1M figure is the conservative one. Where `auto` decides (below
/// [`AUTO_EXACT_SECONDS`] of exact search) the floor, not this constant, sets the choice.
pub const HNSW_SECONDS_PER_POINT_DIM: f64 = 4.5e-7;
/// [`KnnMethod::Auto`] searches exactly whenever that is estimated to take at most this many
/// seconds, even where HNSW would be quicker (exact lists are exact and reproducible).
pub const AUTO_EXACT_SECONDS: f64 = 30.0;

/// Which search to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KnnMethod {
    /// Brute force, exact.
    Exact,
    /// HNSW graph, approximate (optionally refined).
    Hnsw,
    /// Exact or HNSW, whichever the cost model says is cheaper.
    #[default]
    Auto,
}

impl KnnMethod {
    /// Stable lower-case name (`exact`, `hnsw`, `auto`).
    pub fn name(self) -> &'static str {
        match self {
            KnnMethod::Exact => "exact",
            KnnMethod::Hnsw => "hnsw",
            KnnMethod::Auto => "auto",
        }
    }

    /// Resolves [`KnnMethod::Auto`] for `n` points of dimension `dim` (see the module doc's cost
    /// model); other methods are returned unchanged.
    pub fn resolve(self, n: usize, dim: usize) -> KnnMethod {
        match self {
            KnnMethod::Auto
                if estimate_seconds(KnnMethod::Exact, n, dim)
                    <= estimate_seconds(KnnMethod::Hnsw, n, dim).max(AUTO_EXACT_SECONDS) =>
            {
                KnnMethod::Exact
            }
            KnnMethod::Auto => KnnMethod::Hnsw,
            m => m,
        }
    }
}

/// The cost model's estimate in seconds ([`KnnMethod::Auto`] is the cheaper of the two).
pub fn estimate_seconds(method: KnnMethod, n: usize, dim: usize) -> f64 {
    let (n, dim) = (n as f64, dim as f64);
    let exact = n * n * dim / EXACT_FLOPS;
    let hnsw = n * dim * HNSW_SECONDS_PER_POINT_DIM;
    match method {
        KnnMethod::Exact => exact,
        KnnMethod::Hnsw => hnsw,
        KnnMethod::Auto => exact.min(hnsw),
    }
}

impl fmt::Display for KnnMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KnnMethod {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "exact" | "flat" => Ok(KnnMethod::Exact),
            "hnsw" => Ok(KnnMethod::Hnsw),
            "auto" => Ok(KnnMethod::Auto),
            "hybrid" => Err(Error::invalid(
                "method",
                "`hybrid` is not a method: HNSW candidates re-ranked exactly are `hnsw` with \
                 `--refine R` (R·k candidates per point); `auto` picks exact or hnsw by cost",
            )),
            other => Err(Error::invalid(
                "method",
                format!("`{other}` is not one of exact, hnsw, auto"),
            )),
        }
    }
}

/// Recall@k of approximate "other points" lists against exact search, on a seeded uniform
/// sample of `sample` rows (all rows when `sample >= n`). Returns `(recall, rows checked)`.
pub(crate) fn estimate_recall(
    exact: &ExactIndex<'_>,
    approx: &[Vec<Candidate>],
    k: usize,
    sample_size: usize,
    seed: u64,
) -> (f64, usize) {
    let n = approx.len();
    if n == 0 || k == 0 || sample_size == 0 {
        return (1.0, 0);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut rows: Vec<u32> = if sample_size >= n {
        (0..n as u32).collect()
    } else {
        sample(&mut rng, n, sample_size)
            .into_iter()
            .map(|i| i as u32)
            .collect()
    };
    rows.sort_unstable();
    let truth = exact.rows_others(&rows, k);
    let mut hit = 0usize;
    for (&r, t) in rows.iter().zip(&truth) {
        let got = &approx[r as usize];
        hit += t
            .iter()
            .filter(|c| got.iter().any(|g| g.id == c.id))
            .count();
    }
    (hit as f64 / (rows.len() * k) as f64, rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_exact_for_small_and_hnsw_for_huge_inputs() {
        assert_eq!(KnnMethod::Auto.resolve(10_000, 512), KnnMethod::Exact);
        assert_eq!(KnnMethod::Auto.resolve(10_000_000, 512), KnnMethod::Hnsw);
        assert_eq!(KnnMethod::Hnsw.resolve(10, 2), KnnMethod::Hnsw);
        // HNSW is estimated quicker at 150 000 × 64 (4.3 s against 13 s), but exact is under
        // the 30 s floor; at 200 000 × 512 (186 s against 46 s) it is not.
        assert!(
            estimate_seconds(KnnMethod::Hnsw, 150_000, 64)
                < estimate_seconds(KnnMethod::Exact, 150_000, 64)
        );
        assert_eq!(KnnMethod::Auto.resolve(150_000, 64), KnnMethod::Exact);
        assert_eq!(KnnMethod::Auto.resolve(200_000, 512), KnnMethod::Hnsw);
        // Full Fashion-MNIST through Lite0: exact search took 58.8 s, HNSW about 12 s.
        assert_eq!(KnnMethod::Auto.resolve(70_000, 1280), KnnMethod::Hnsw);
        // 60 000 × 512: about 17 s exactly (measured: 80 000 × 512 took 29.1 s).
        assert_eq!(KnnMethod::Auto.resolve(60_000, 512), KnnMethod::Exact);
        assert_eq!("flat".parse::<KnnMethod>().ok(), Some(KnnMethod::Exact));
        assert!("ivf".parse::<KnnMethod>().is_err());
        let hybrid = "hybrid".parse::<KnnMethod>().unwrap_err().to_string();
        assert!(hybrid.contains("--refine"), "{hybrid}");
    }
}
