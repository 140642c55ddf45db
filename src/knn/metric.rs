//! Distance metrics. Every metric is turned into a distance where *ascending = nearest*.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// How two embeddings are compared. All distances are "smaller is nearer".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// `1 - cos(a, b)`, in `[0, 2]` (rounding below 0 is clamped to 0). A zero vector has
    /// cosine 0 with everything.
    #[default]
    Cosine,
    /// Squared Euclidean distance `||a - b||²` (no square root; ordering is the same).
    L2,
    /// Negative inner product `-a·b` (maximum inner product search).
    Dot,
}

impl Metric {
    /// Stable lower-case name: `cosine`, `l2` or `dot` (the `gps.knn.metric` value).
    pub fn name(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::L2 => "l2",
            Metric::Dot => "dot",
        }
    }

    /// The distance between `a` and `b` computed directly (no GEMM), for references and
    /// re-ranking. Both slices have the same length `dim`.
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        match self {
            Metric::Cosine => {
                let (dot, na, nb) = (dot(a, b), dot(a, a).sqrt(), dot(b, b).sqrt());
                self.dist_from_dot(dot, inv(na), inv(nb))
            }
            Metric::L2 => {
                let mut acc = [0.0f32; 8];
                let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
                let (ra, rb) = (ca.remainder(), cb.remainder());
                for (x, y) in ca.zip(cb) {
                    for l in 0..8 {
                        let d = x[l] - y[l];
                        acc[l] += d * d;
                    }
                }
                let tail: f32 = ra.iter().zip(rb).map(|(x, y)| (x - y) * (x - y)).sum();
                acc.iter().sum::<f32>() + tail
            }
            Metric::Dot => -dot(a, b),
        }
    }

    /// Turns an inner product into this metric's distance.
    ///
    /// `qa`, `qb` are the per-vector auxiliary terms from [`Metric::aux`]: the inverse norm for
    /// cosine, the squared norm for L2, unused for dot.
    #[inline]
    pub(crate) fn dist_from_dot(self, dot: f32, qa: f32, qb: f32) -> f32 {
        match self {
            Metric::Cosine => (1.0 - dot * qa * qb).max(0.0),
            Metric::L2 => (qa + qb - 2.0 * dot).max(0.0),
            Metric::Dot => -dot,
        }
    }

    /// The per-vector term used by [`Metric::dist_from_dot`] (inverse norm, squared norm, or 0).
    pub(crate) fn aux(self, v: &[f32]) -> f32 {
        match self {
            Metric::Cosine => inv(dot(v, v).sqrt()),
            Metric::L2 => dot(v, v),
            Metric::Dot => 0.0,
        }
    }

    /// The distance of a point to itself: 0 for cosine and L2, `-||x||²` for dot.
    pub(crate) fn self_distance(self, v: &[f32]) -> f32 {
        match self {
            Metric::Cosine | Metric::L2 => 0.0,
            Metric::Dot => -dot(v, v),
        }
    }
}

fn inv(norm: f32) -> f32 {
    if norm > 0.0 {
        1.0 / norm
    } else {
        0.0
    }
}

/// Inner product with 8 independent accumulators (vectorises well).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "cosine" | "cos" => Ok(Metric::Cosine),
            "l2" | "euclidean" => Ok(Metric::L2),
            "dot" | "ip" | "inner_product" => Ok(Metric::Dot),
            other => Err(Error::invalid(
                "metric",
                format!("`{other}` is not one of cosine, l2, dot"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // numpy: a=[1,2,2]; b=[2,0,1]; 1-a@b/(norm(a)*norm(b)) = 1-4/(3*sqrt(5)) = 0.40372
    //        ((a-b)**2).sum() = 6 ; -a@b = -4
    #[test]
    fn distances_match_numpy() {
        let (a, b) = ([1.0, 2.0, 2.0], [2.0, 0.0, 1.0]);
        assert!((Metric::Cosine.distance(&a, &b) - 0.403_72).abs() < 1e-4);
        assert_eq!(Metric::L2.distance(&a, &b), 6.0);
        assert_eq!(Metric::Dot.distance(&a, &b), -4.0);
    }

    #[test]
    fn from_dot_agrees_with_direct_distance() {
        let a: Vec<f32> = (0..19).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..19).map(|i| (i as f32 * 0.11).cos()).collect();
        for m in [Metric::Cosine, Metric::L2, Metric::Dot] {
            let via = m.dist_from_dot(dot(&a, &b), m.aux(&a), m.aux(&b));
            assert!((via - m.distance(&a, &b)).abs() < 1e-4, "{m}");
        }
    }

    #[test]
    fn parses_names_and_rejects_unknown() {
        assert_eq!("Cosine".parse::<Metric>().ok(), Some(Metric::Cosine));
        assert_eq!("l2".parse::<Metric>().ok(), Some(Metric::L2));
        assert_eq!("dot".parse::<Metric>().ok(), Some(Metric::Dot));
        let err = "manhattan".parse::<Metric>().err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("manhattan")));
    }
}
