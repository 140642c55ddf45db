//! GPS neighbourhoods `B(x)`: the k nearest neighbours, optionally cut by a fixed radius τ or
//! by an adaptive τ per point (as in the GPS-SSL paper and its official code).
//!
//! Semantics (all distances in the chosen metric's unit — squared distance for L2, `1 - cos`
//! for cosine):
//! - [`Radius::None`]: all `k` neighbours are positives.
//! - [`Radius::Fixed`]: entries with `distance <= tau` are positives.
//! - [`Radius::Adaptive`]: for each point, τ(x) is a statistic ([`AdaptiveTau`]) of the
//!   distances to its first `threshold_k` neighbours *other than itself*; entries with
//!   `distance <= τ(x)` are positives.
//!
//! A point with no neighbour inside its radius keeps its nearest entry (entry 0: the point
//! itself when self is included, else its nearest other point), so `B(x)` is never empty.
//! The result is a per-row valid count on [`NeighbourLists`] (see its docs).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::lists::NeighbourLists;
use crate::{Error, Result};

/// Which statistic of the first `threshold_k` distances sets an adaptive τ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdaptiveTau {
    /// τ = mean.
    #[serde(rename = "mean")]
    Mean,
    /// τ = mean + standard deviation (population).
    #[serde(rename = "mean+std")]
    MeanPlusStd,
    /// τ = mean − standard deviation (population).
    #[serde(rename = "mean-std")]
    MeanMinusStd,
}

impl fmt::Display for AdaptiveTau {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AdaptiveTau::Mean => "mean",
            AdaptiveTau::MeanPlusStd => "mean+std",
            AdaptiveTau::MeanMinusStd => "mean-std",
        })
    }
}

impl FromStr for AdaptiveTau {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mean" => Ok(AdaptiveTau::Mean),
            "mean+std" => Ok(AdaptiveTau::MeanPlusStd),
            "mean-std" => Ok(AdaptiveTau::MeanMinusStd),
            other => Err(Error::invalid(
                "adaptive tau",
                format!("`{other}` is not one of mean, mean+std, mean-std"),
            )),
        }
    }
}

/// How far `B(x)` reaches inside the k-NN list. Saved as JSON in `gps.knn.radius`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Radius {
    /// All `k` neighbours.
    #[default]
    None,
    /// A fixed τ: `distance <= tau`.
    Fixed {
        /// The radius, in the metric's distance unit.
        tau: f32,
    },
    /// τ(x) from the distances to the first `threshold_k` other neighbours of x.
    Adaptive {
        /// The statistic.
        stat: AdaptiveTau,
        /// How many neighbours enter the statistic (`1..=k`, excluding the point itself).
        threshold_k: usize,
    },
}

impl Radius {
    /// Checks the option against the list shape: τ finite and ≥ 0; `threshold_k` between 1
    /// and the number of non-self entries per row.
    pub fn validate(&self, k: usize, include_self: bool) -> Result<()> {
        match *self {
            Radius::None => Ok(()),
            Radius::Fixed { tau } if !(tau.is_finite() && tau >= 0.0) => Err(Error::invalid(
                "tau",
                format!("{tau} is not a finite value >= 0"),
            )),
            Radius::Fixed { .. } => Ok(()),
            Radius::Adaptive { threshold_k, .. } => {
                let others = if include_self { k.saturating_sub(1) } else { k };
                if threshold_k == 0 || threshold_k > others {
                    Err(Error::invalid(
                        "threshold_k",
                        format!(
                            "{threshold_k} is not in 1..={others} (the non-self neighbours per row)"
                        ),
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// The τ of one row (`None` for [`Radius::None`]). `row` is the point's own id.
    pub fn tau_of(&self, lists: &NeighbourLists, row: usize) -> Option<f32> {
        match *self {
            Radius::None => None,
            Radius::Fixed { tau } => Some(tau),
            Radius::Adaptive { stat, threshold_k } => {
                let d: Vec<f64> = lists
                    .neighbours(row)
                    .iter()
                    .zip(lists.distances(row))
                    .filter(|(&id, _)| id as usize != row)
                    .take(threshold_k)
                    .map(|(_, &d)| f64::from(d))
                    .collect();
                if d.is_empty() {
                    return Some(f32::INFINITY);
                }
                let mean = d.iter().sum::<f64>() / d.len() as f64;
                let var = d.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / d.len() as f64;
                let tau = match stat {
                    AdaptiveTau::Mean => mean,
                    AdaptiveTau::MeanPlusStd => mean + var.sqrt(),
                    AdaptiveTau::MeanMinusStd => mean - var.sqrt(),
                };
                Some(tau as f32)
            }
        }
    }

    /// Per-row valid counts (`[n]`, each `1..=k`) for this radius.
    pub fn valid_counts(&self, lists: &NeighbourLists) -> Vec<u32> {
        (0..lists.len())
            .map(|row| match self.tau_of(lists, row) {
                None => lists.k() as u32,
                Some(tau) => {
                    let inside = lists
                        .distances(row)
                        .iter()
                        .take_while(|&&d| d <= tau)
                        .count();
                    inside.max(1) as u32
                }
            })
            .collect()
    }

    /// Applies the radius to a table (sets its valid counts).
    pub fn apply(&self, lists: NeighbourLists) -> Result<NeighbourLists> {
        let counts = self.valid_counts(&lists);
        lists.with_valid(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> NeighbourLists {
        // row 0 includes itself at distance 0; row 1 excludes itself.
        NeighbourLists::new(
            4,
            vec![0, 1, 2, 3, 2, 3, 0, 4],
            vec![0.0, 1.0, 2.0, 3.0, 0.5, 0.6, 0.7, 5.0],
        )
        .unwrap()
    }

    #[test]
    fn fixed_tau_keeps_prefix_and_falls_back_to_nearest() {
        let t = Radius::Fixed { tau: 1.0 }.apply(table()).unwrap();
        assert_eq!(t.valid(0), &[0, 1]);
        assert_eq!(t.valid(1), &[2, 3, 0]);
        let t = Radius::Fixed { tau: 0.1 }.apply(table()).unwrap();
        assert_eq!(
            t.valid(1),
            &[2],
            "empty ball falls back to the nearest entry"
        );
    }

    // numpy: d=[1,2,3] (row 0 without self): mean 2, std sqrt(2/3)=0.8165
    //        row 1: d=[0.5,0.6,0.7]: mean 0.6, std 0.08165
    #[test]
    fn adaptive_tau_uses_non_self_distances() {
        let lists = table();
        let r = Radius::Adaptive {
            stat: AdaptiveTau::Mean,
            threshold_k: 3,
        };
        assert!((r.tau_of(&lists, 0).unwrap() - 2.0).abs() < 1e-6);
        assert_eq!(r.apply(lists.clone()).unwrap().valid_counts(), &[3, 2]);
        let r = Radius::Adaptive {
            stat: AdaptiveTau::MeanPlusStd,
            threshold_k: 3,
        };
        assert!((r.tau_of(&lists, 0).unwrap() - 2.816_5).abs() < 1e-4);
        assert_eq!(r.apply(lists.clone()).unwrap().valid_counts(), &[3, 2]);
        let r = Radius::Adaptive {
            stat: AdaptiveTau::MeanMinusStd,
            threshold_k: 3,
        };
        assert!((r.tau_of(&lists, 1).unwrap() - 0.518_35).abs() < 1e-4);
        assert_eq!(r.apply(lists).unwrap().valid_counts(), &[2, 1]);
    }

    #[test]
    fn invalid_options_are_rejected() {
        assert!(Radius::Fixed { tau: f32::NAN }.validate(4, false).is_err());
        assert!(Radius::Fixed { tau: -1.0 }.validate(4, false).is_err());
        let r = Radius::Adaptive {
            stat: AdaptiveTau::Mean,
            threshold_k: 4,
        };
        assert!(r.validate(4, false).is_ok());
        assert!(r.validate(4, true).is_err());
        assert!("median".parse::<AdaptiveTau>().is_err());
        assert_eq!(
            "mean-std".parse::<AdaptiveTau>().ok(),
            Some(AdaptiveTau::MeanMinusStd)
        );
    }

    #[test]
    fn radius_serialises_as_tagged_json() {
        let r = Radius::Adaptive {
            stat: AdaptiveTau::MeanPlusStd,
            threshold_k: 5,
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(
            s,
            r#"{"kind":"adaptive","stat":"mean+std","threshold_k":5}"#
        );
        assert_eq!(serde_json::from_str::<Radius>(&s).unwrap(), r);
    }
}
