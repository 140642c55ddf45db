//! k-nearest-neighbour classification of test features by train features.
//!
//! The **weighted kNN** classifier is the one solo-learn and the official GPS-SSL code report:
//! features are L2-normalised, the `k` train rows with the largest cosine similarity `s` to a
//! test row vote for their label with weight `exp(s / T)`, and the class with the largest
//! summed weight wins. The same search also gives plain **1-NN** and **majority k-NN** (one vote
//! per neighbour) accuracy.
//!
//! Ties are deterministic: neighbours with equal similarity rank by ascending train index, and
//! classes with an equal vote go to the one whose best neighbour ranks first.

use super::features::{accuracy, l2_normalized, FeatureSet};
use super::topk::cosine_top_k;
use crate::{
    progress::{NoProgress, Progress},
    Error, Result,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Builds a [`KnnClassifier`].
#[derive(Debug, Clone, Default)]
pub struct KnnClassifierBuilder {
    k: Option<usize>,
    temperature: Option<f32>,
}

impl KnnClassifierBuilder {
    /// Neighbours that vote. Defaults to [`KnnClassifier::DEFAULT_K`].
    pub fn k(mut self, k: usize) -> Self {
        self.k = Some(k);
        self
    }

    /// Temperature of the vote weight `exp(similarity / T)`. Defaults to
    /// [`KnnClassifier::DEFAULT_TEMPERATURE`].
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Validates the settings: `k ≥ 1` and a finite `temperature > 0`.
    pub fn build(self) -> Result<KnnClassifier> {
        let k = self.k.unwrap_or(KnnClassifier::DEFAULT_K);
        let temperature = self
            .temperature
            .unwrap_or(KnnClassifier::DEFAULT_TEMPERATURE);
        if k == 0 {
            return Err(Error::invalid("k", "at least one neighbour must vote"));
        }
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(Error::invalid(
                "temperature",
                format!("must be a finite number > 0, got {temperature}"),
            ));
        }
        Ok(KnnClassifier { k, temperature })
    }
}

/// Weighted, majority and 1-NN classification by cosine similarity to labelled train features.
///
/// ```
/// use gps_ssl::eval::{FeatureSet, KnnClassifier};
/// let train = [1.0, 0.0, 0.9, 0.1, 0.0, 1.0];
/// let test = [0.8, 0.2, 0.1, 0.9];
/// let knn = KnnClassifier::builder().k(2).build()?;
/// let report = knn.evaluate(
///     &FeatureSet::new(&train, &[0, 0, 1], 2)?,
///     &FeatureSet::new(&test, &[0, 1], 2)?,
/// )?;
/// assert_eq!(report.nn1_accuracy, 1.0);
/// # Ok::<(), gps_ssl::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KnnClassifier {
    k: usize,
    temperature: f32,
}

/// Predicted labels of each test row, `[n_test]` each.
#[derive(Debug, Clone, PartialEq)]
pub struct KnnPredictions {
    /// Weighted k-NN vote (`exp(similarity / T)` per neighbour).
    pub weighted: Vec<i64>,
    /// Majority k-NN vote (one vote per neighbour).
    pub majority: Vec<i64>,
    /// Label of the single nearest train row.
    pub nn1: Vec<i64>,
}

/// Accuracies of a [`KnnClassifier`] on a labelled test set (fractions in `[0, 1]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KnnReport {
    /// Weighted k-NN accuracy — the number papers report as "kNN accuracy".
    pub weighted_accuracy: f64,
    /// Majority-vote k-NN accuracy.
    pub majority_accuracy: f64,
    /// 1-NN accuracy.
    pub nn1_accuracy: f64,
    /// Neighbours that voted (smaller than asked when the train set is smaller).
    pub k: usize,
    /// Vote temperature.
    pub temperature: f32,
    /// Train rows.
    pub n_train: usize,
    /// Test rows.
    pub n_test: usize,
}

impl KnnClassifier {
    /// Neighbours that vote, as in solo-learn and the official GPS-SSL code.
    pub const DEFAULT_K: usize = 20;

    /// Temperature `T` of the vote weight `exp(similarity / T)`, as in solo-learn.
    pub const DEFAULT_TEMPERATURE: f32 = 0.07;

    /// A builder with every setting at its default.
    pub fn builder() -> KnnClassifierBuilder {
        KnnClassifierBuilder::default()
    }

    /// Neighbours that vote.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Vote temperature.
    pub fn temperature(&self) -> f32 {
        self.temperature
    }

    /// Predicts a label for every row of `test` (`[n_test, dim]`, row-major; its labels are not
    /// used). Progress is reported in test rows.
    ///
    /// Fails when `train` is empty or the dimensions differ.
    pub fn predict(
        &self,
        train: &FeatureSet<'_>,
        test: &FeatureSet<'_>,
        progress: &dyn Progress,
    ) -> Result<KnnPredictions> {
        if train.is_empty() {
            return Err(Error::invalid(
                "train features",
                "kNN needs at least one train row",
            ));
        }
        train.check_same_dim(test, "train/test")?;
        let dim = train.dim();
        let gallery = l2_normalized(train.features(), dim);
        let query = l2_normalized(test.features(), dim);
        let top = cosine_top_k(&query, &gallery, dim, self.k, false, progress);
        let labels = train.labels();
        let votes: Vec<(i64, i64, i64)> = (0..test.len())
            .into_par_iter()
            .map(|q| {
                let idx = top.indices(q);
                let sims = top.similarities(q);
                let neighbour_labels: Vec<i64> = idx.iter().map(|&j| labels[j as usize]).collect();
                let best = sims[0];
                let weighted = vote(&neighbour_labels, |r| {
                    (f64::from(sims[r] - best) / f64::from(self.temperature)).exp()
                });
                let majority = vote(&neighbour_labels, |_| 1.0);
                (weighted, majority, neighbour_labels[0])
            })
            .collect();
        let mut out = KnnPredictions {
            weighted: Vec::with_capacity(votes.len()),
            majority: Vec::with_capacity(votes.len()),
            nn1: Vec::with_capacity(votes.len()),
        };
        for (w, m, n) in votes {
            out.weighted.push(w);
            out.majority.push(m);
            out.nn1.push(n);
        }
        Ok(out)
    }

    /// Classifies `test` by `train` and scores the predictions against `test`'s labels.
    pub fn evaluate(&self, train: &FeatureSet<'_>, test: &FeatureSet<'_>) -> Result<KnnReport> {
        self.evaluate_with_progress(train, test, &NoProgress)
    }

    /// [`KnnClassifier::evaluate`], reporting progress in test rows.
    pub fn evaluate_with_progress(
        &self,
        train: &FeatureSet<'_>,
        test: &FeatureSet<'_>,
        progress: &dyn Progress,
    ) -> Result<KnnReport> {
        let p = self.predict(train, test, progress)?;
        Ok(KnnReport {
            weighted_accuracy: accuracy(&p.weighted, test.labels()),
            majority_accuracy: accuracy(&p.majority, test.labels()),
            nn1_accuracy: accuracy(&p.nn1, test.labels()),
            k: self.k.min(train.len()),
            temperature: self.temperature,
            n_train: train.len(),
            n_test: test.len(),
        })
    }
}

/// The label with the largest summed `weight(rank)` over `labels` (neighbours best first); a tie
/// goes to the label seen first.
///
/// # Panics
/// When `labels` is empty (the search always returns at least one neighbour).
fn vote(labels: &[i64], weight: impl Fn(usize) -> f64) -> i64 {
    // (label, summed weight), in order of first appearance; k is small, so a linear scan wins.
    let mut tally: Vec<(i64, f64)> = Vec::with_capacity(labels.len());
    for (rank, &label) in labels.iter().enumerate() {
        let w = weight(rank);
        match tally.iter_mut().find(|(l, _)| *l == label) {
            Some(entry) => entry.1 += w,
            None => tally.push((label, w)),
        }
    }
    let mut best = tally[0];
    for &entry in &tally[1..] {
        if entry.1 > best.1 {
            best = entry;
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_rejects_bad_settings_and_fills_defaults() {
        assert!(KnnClassifier::builder().k(0).build().is_err());
        assert!(KnnClassifier::builder().temperature(0.0).build().is_err());
        assert!(KnnClassifier::builder()
            .temperature(f32::NAN)
            .build()
            .is_err());
        let knn = KnnClassifier::builder().build().unwrap();
        assert_eq!(
            (knn.k(), knn.temperature()),
            (KnnClassifier::DEFAULT_K, KnnClassifier::DEFAULT_TEMPERATURE)
        );
    }

    #[test]
    fn vote_ties_go_to_the_label_ranked_first() {
        assert_eq!(vote(&[3, 1, 1, 3], |_| 1.0), 3);
        assert_eq!(vote(&[3, 1, 1], |_| 1.0), 1);
        assert_eq!(vote(&[3, 1, 1], |r| [5.0, 2.0, 2.0][r]), 3);
    }

    #[test]
    fn rejects_empty_train_and_dimension_mismatch() {
        let knn = KnnClassifier::builder().build().unwrap();
        let test = FeatureSet::new(&[1.0, 0.0], &[0], 2).unwrap();
        let empty = FeatureSet::new(&[], &[], 2).unwrap();
        assert!(knn.evaluate(&empty, &test).is_err());
        let other = FeatureSet::new(&[1.0, 0.0, 0.0], &[0], 3).unwrap();
        assert!(knn.evaluate(&other, &test).is_err());
    }
}
