//! A borrowed, validated view of a labelled feature matrix.

use crate::{Error, Result};

/// A labelled feature matrix `[n, dim]`, row-major, borrowed from the caller.
///
/// Every evaluator takes its inputs as `FeatureSet`s so the shape checks (row count × `dim`
/// equals the buffer length, one label per row, only finite values) happen once, in
/// [`FeatureSet::new`].
///
/// ```
/// use gps_ssl::eval::FeatureSet;
/// let features = [1.0, 0.0, 0.0, 1.0, 0.7, 0.7];
/// let labels = [0, 1, 1];
/// let set = FeatureSet::new(&features, &labels, 2)?;
/// assert_eq!(set.len(), 3);
/// assert_eq!(set.row(2), &[0.7, 0.7]);
/// # Ok::<(), gps_ssl::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FeatureSet<'a> {
    features: &'a [f32],
    labels: &'a [i64],
    dim: usize,
}

impl<'a> FeatureSet<'a> {
    /// Wraps `features` (`[n, dim]`, row-major) and `labels` (`[n]`).
    ///
    /// Fails when `dim == 0`, the buffer length is not `labels.len() * dim`, or a value is NaN
    /// or infinite (the error names the row).
    pub fn new(features: &'a [f32], labels: &'a [i64], dim: usize) -> Result<Self> {
        if dim == 0 {
            return Err(Error::invalid(
                "dim",
                "feature dimension must be at least 1",
            ));
        }
        if features.len() != labels.len() * dim {
            return Err(Error::mismatch(
                "feature buffer length",
                format!(
                    "{} labels × dim {dim} = {}",
                    labels.len(),
                    labels.len() * dim
                ),
                features.len(),
            ));
        }
        if let Some(row) = features
            .chunks_exact(dim)
            .position(|r| r.iter().any(|v| !v.is_finite()))
        {
            return Err(Error::NonFinite {
                context: "evaluation features".into(),
                row: row as u64,
            });
        }
        Ok(FeatureSet {
            features,
            labels,
            dim,
        })
    }

    /// The features, flat `[n * dim]`.
    pub fn features(&self) -> &'a [f32] {
        self.features
    }

    /// The labels, `[n]`.
    pub fn labels(&self) -> &'a [i64] {
        self.labels
    }

    /// Feature dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there is no row.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Row `i`, `[dim]`.
    ///
    /// # Panics
    /// When `i >= len()`.
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.features[i * self.dim..(i + 1) * self.dim]
    }

    /// Fails unless `self` and `other` have the same dimension (`what` names the pair).
    pub(crate) fn check_same_dim(&self, other: &FeatureSet<'_>, what: &str) -> Result<()> {
        if self.dim != other.dim {
            return Err(Error::mismatch(
                format!("{what} feature dimension"),
                self.dim,
                other.dim,
            ));
        }
        Ok(())
    }
}

/// Copies `features` (`[n, dim]`) with every row scaled to unit L2 norm.
///
/// Like PyTorch's `F.normalize`, a row's norm is clamped below at `1e-12`, so an all-zero row
/// stays all zero (cosine similarity 0 to everything).
pub(crate) fn l2_normalized(features: &[f32], dim: usize) -> Vec<f32> {
    let mut out = features.to_vec();
    for row in out.chunks_exact_mut(dim) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|v| *v /= norm);
    }
    out
}

/// The sorted distinct labels of `labels`: index `c` of the result is class `c`.
pub(crate) fn classes(labels: &[i64]) -> Vec<i64> {
    let mut classes = labels.to_vec();
    classes.sort_unstable();
    classes.dedup();
    classes
}

/// Fraction of positions where `predicted == truth` (0 for empty inputs).
pub(crate) fn accuracy(predicted: &[i64], truth: &[i64]) -> f64 {
    if truth.is_empty() {
        return 0.0;
    }
    let hits = predicted.iter().zip(truth).filter(|(p, t)| p == t).count();
    hits as f64 / truth.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_length_mismatch_and_non_finite_rows() {
        assert!(FeatureSet::new(&[1.0, 2.0, 3.0], &[0, 1], 2).is_err());
        assert!(FeatureSet::new(&[1.0, 2.0], &[0], 0).is_err());
        let err = FeatureSet::new(&[1.0, 2.0, f32::NAN, 0.0], &[0, 1], 2).unwrap_err();
        assert!(matches!(err, Error::NonFinite { row: 1, .. }), "{err}");
    }

    #[test]
    fn normalization_gives_unit_rows_and_keeps_zero_rows() {
        let x = l2_normalized(&[3.0, 4.0, 0.0, 0.0], 2);
        assert_eq!(x, vec![0.6, 0.8, 0.0, 0.0]);
    }

    #[test]
    fn classes_are_sorted_and_distinct() {
        assert_eq!(classes(&[3, -1, 3, 0, -1]), vec![-1, 0, 3]);
        assert_eq!(accuracy(&[1, 2, 3, 4], &[1, 0, 3, 0]), 0.5);
    }
}
