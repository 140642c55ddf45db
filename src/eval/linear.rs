//! Linear probe: multinomial logistic regression on frozen features.
//!
//! Recipe (deterministic for a given seed):
//! 1. Standardise every feature column with the training rows' mean and standard deviation
//!    (a constant column becomes 0).
//! 2. Hold out a seeded random [`LinearProbe::DEFAULT_VALIDATION_FRACTION`] of the training rows. Fit on the
//!    rest for every L2 strength of the grid, strongest first, each fit warm-started from the
//!    previous one, to a 10× looser tolerance (they only rank the strengths); keep the strength
//!    with the best held-out accuracy (ties: the stronger).
//! 3. Refit on all training rows with that strength, warm-started from its split solution.
//!
//! Each fit minimises `mean cross-entropy + λ/2 ‖W‖²` (bias unpenalised) with full-batch
//! L-BFGS until the largest gradient component is at most the tolerance, the relative
//! objective decrease drops below ~2e-9, or the iteration cap is reached (scipy's rules). The
//! matrix products run through `matrixmultiply::sgemm` (multi-threaded), the per-row softmax
//! in parallel with rayon; sums are taken in a fixed order, so results do not depend on the
//! thread count.

use super::features::{accuracy, classes, FeatureSet};
use super::lbfgs;
use crate::{Error, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The held-out fits that only rank L2 strengths stop at this multiple of the tolerance; the
/// final refit uses the tolerance itself.
const SELECTION_TOLERANCE_FACTOR: f64 = 10.0;

/// Builds a [`LinearProbe`].
#[derive(Debug, Clone, Default)]
pub struct LinearProbeBuilder {
    l2_grid: Option<Vec<f64>>,
    validation_fraction: Option<f64>,
    max_iterations: Option<usize>,
    tolerance: Option<f64>,
    seed: Option<u64>,
}

impl LinearProbeBuilder {
    /// L2 strengths to choose from. A single value skips the held-out split. Defaults to
    /// [`LinearProbe::DEFAULT_L2_GRID`].
    pub fn l2_grid(mut self, grid: impl Into<Vec<f64>>) -> Self {
        self.l2_grid = Some(grid.into());
        self
    }

    /// Fraction of training rows held out to choose the L2 strength, in `(0, 1)`. Defaults to
    /// [`LinearProbe::DEFAULT_VALIDATION_FRACTION`].
    pub fn validation_fraction(mut self, fraction: f64) -> Self {
        self.validation_fraction = Some(fraction);
        self
    }

    /// L-BFGS iteration cap per fit. Defaults to [`LinearProbe::DEFAULT_MAX_ITERATIONS`].
    pub fn max_iterations(mut self, iterations: usize) -> Self {
        self.max_iterations = Some(iterations);
        self
    }

    /// Largest gradient component at convergence. Defaults to [`LinearProbe::DEFAULT_TOLERANCE`].
    pub fn tolerance(mut self, tolerance: f64) -> Self {
        self.tolerance = Some(tolerance);
        self
    }

    /// Seed of the held-out split. Defaults to [`LinearProbe::DEFAULT_SEED`].
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Validates the settings: a non-empty grid of finite `λ ≥ 0`, a fraction in `(0, 1)`, at
    /// least one iteration, a finite tolerance `> 0`.
    pub fn build(self) -> Result<LinearProbe> {
        let mut l2_grid = self
            .l2_grid
            .unwrap_or_else(|| LinearProbe::DEFAULT_L2_GRID.to_vec());
        if l2_grid.is_empty() || l2_grid.iter().any(|l| !(l.is_finite() && *l >= 0.0)) {
            return Err(Error::invalid(
                "l2_grid",
                format!("need one or more finite strengths ≥ 0, got {l2_grid:?}"),
            ));
        }
        // Strongest first: the regularisation path warm-starts towards weaker penalties.
        l2_grid.sort_by(|a, b| b.total_cmp(a));
        l2_grid.dedup();
        let validation_fraction = self
            .validation_fraction
            .unwrap_or(LinearProbe::DEFAULT_VALIDATION_FRACTION);
        if !(validation_fraction > 0.0 && validation_fraction < 1.0) {
            return Err(Error::invalid(
                "validation_fraction",
                format!("must lie in (0, 1), got {validation_fraction}"),
            ));
        }
        let max_iterations = self
            .max_iterations
            .unwrap_or(LinearProbe::DEFAULT_MAX_ITERATIONS);
        if max_iterations == 0 {
            return Err(Error::invalid("max_iterations", "must be at least 1"));
        }
        let tolerance = self.tolerance.unwrap_or(LinearProbe::DEFAULT_TOLERANCE);
        if !(tolerance.is_finite() && tolerance > 0.0) {
            return Err(Error::invalid(
                "tolerance",
                format!("must be > 0, got {tolerance}"),
            ));
        }
        Ok(LinearProbe {
            l2_grid,
            validation_fraction,
            max_iterations,
            tolerance,
            seed: self.seed.unwrap_or(LinearProbe::DEFAULT_SEED),
        })
    }
}

/// Trains and scores a multinomial logistic-regression probe (see the module docs).
///
/// ```
/// use gps_ssl::eval::{FeatureSet, LinearProbe};
/// let x = [0.0, 0.1, 0.2, 5.0, 5.1, 5.2];
/// let y = [0, 0, 0, 1, 1, 1];
/// let train = FeatureSet::new(&x, &y, 1)?;
/// let report = LinearProbe::builder().build()?.evaluate(&train, &train)?;
/// assert_eq!(report.accuracy, 1.0);
/// # Ok::<(), gps_ssl::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LinearProbe {
    l2_grid: Vec<f64>,
    validation_fraction: f64,
    max_iterations: usize,
    tolerance: f64,
    seed: u64,
}

/// Held-out accuracy of one L2 strength.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct L2Score {
    /// The strength `λ`.
    pub l2: f64,
    /// Accuracy on the held-out rows, in `[0, 1]`.
    pub accuracy: f64,
}

/// A trained probe: standardisation plus a `[dim, n_classes]` linear map and bias.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearModel {
    classes: Vec<i64>,
    dim: usize,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    /// `[dim, n_classes]`, row-major.
    weights: Vec<f32>,
    bias: Vec<f32>,
    l2: f64,
    iterations: usize,
    converged: bool,
    validation: Vec<L2Score>,
}

/// Linear-probe results on a labelled test set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LinearProbeReport {
    /// Test accuracy, in `[0, 1]`.
    pub accuracy: f64,
    /// Accuracy on the training rows, in `[0, 1]`.
    pub train_accuracy: f64,
    /// The chosen L2 strength.
    pub l2: f64,
    /// Held-out accuracy of every strength tried (empty for a one-value grid).
    pub validation: Vec<L2Score>,
    /// L-BFGS iterations of the final fit.
    pub iterations: usize,
    /// Whether the final fit met a stopping rule before the iteration cap.
    pub converged: bool,
    /// Train rows.
    pub n_train: usize,
    /// Test rows.
    pub n_test: usize,
}

impl LinearProbe {
    /// L2 strengths `λ` tried on the held-out split (objective `mean CE + λ/2 ‖W‖²` on
    /// standardised features).
    pub const DEFAULT_L2_GRID: [f64; 6] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1];

    /// Fraction of the training rows held out to choose `λ`.
    pub const DEFAULT_VALIDATION_FRACTION: f64 = 0.2;

    /// L-BFGS iteration cap per fit.
    pub const DEFAULT_MAX_ITERATIONS: usize = 300;

    /// Stop when the largest gradient component is at most this (sklearn's `tol`).
    pub const DEFAULT_TOLERANCE: f64 = 1e-4;

    /// Seed of the held-out split.
    pub const DEFAULT_SEED: u64 = 0;

    /// A builder with every setting at its default.
    pub fn builder() -> LinearProbeBuilder {
        LinearProbeBuilder::default()
    }

    /// Trains the probe on `train`.
    ///
    /// Fails when `train` has fewer than 2 rows (with a multi-value grid: fewer rows than it
    /// takes to hold some out).
    pub fn fit(&self, train: &FeatureSet<'_>) -> Result<LinearModel> {
        if train.is_empty() {
            return Err(Error::invalid(
                "train features",
                "the linear probe needs training rows",
            ));
        }
        let dim = train.dim();
        let classes = classes(train.labels());
        let targets: Vec<u32> = train
            .labels()
            .iter()
            .map(|l| classes.binary_search(l).unwrap_or(0) as u32)
            .collect();
        let (mean, inv_std) = column_stats(train.features(), dim);
        let x = standardized(train.features(), dim, &mean, &inv_std);
        let n_classes = classes.len();
        let mut init = vec![0.0f64; dim * n_classes + n_classes];
        let mut l2 = self.l2_grid[0];
        let mut validation = Vec::new();
        if self.l2_grid.len() > 1 {
            let n = train.len();
            let held = ((n as f64 * self.validation_fraction).round() as usize).clamp(1, n);
            if held >= n {
                return Err(Error::invalid(
                    "train features",
                    format!("{n} rows are too few to hold out a validation split"),
                ));
            }
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(self.seed));
            let (val_rows, fit_rows) = order.split_at(held);
            let fit_x = gather(&x, dim, fit_rows);
            let fit_t: Vec<u32> = fit_rows.iter().map(|&i| targets[i]).collect();
            let val_x = gather(&x, dim, val_rows);
            let val_t: Vec<u32> = val_rows.iter().map(|&i| targets[i]).collect();
            let problem = Problem {
                x: &fit_x,
                targets: &fit_t,
                dim,
                n_classes,
            };
            let mut best = (f64::NEG_INFINITY, l2, init.clone());
            let mut warm = init.clone();
            for &lambda in &self.l2_grid {
                let tol = self.tolerance * SELECTION_TOLERANCE_FACTOR;
                let out = problem.fit(warm, lambda, tol, self.max_iterations);
                let predicted = predict_standardized(&val_x, dim, n_classes, &out.x);
                let hits = predicted.iter().zip(&val_t).filter(|(p, t)| p == t).count();
                let acc = hits as f64 / val_t.len() as f64;
                tracing::debug!(
                    lambda,
                    acc,
                    iterations = out.iterations,
                    "linear probe split fit"
                );
                validation.push(L2Score {
                    l2: lambda,
                    accuracy: acc,
                });
                if acc > best.0 {
                    best = (acc, lambda, out.x.clone());
                }
                warm = out.x;
            }
            l2 = best.1;
            init = best.2;
        }
        let problem = Problem {
            x: &x,
            targets: &targets,
            dim,
            n_classes,
        };
        let out = problem.fit(init, l2, self.tolerance, self.max_iterations);
        tracing::debug!(
            l2,
            loss = out.f,
            iterations = out.iterations,
            converged = out.converged,
            "linear probe"
        );
        let params: Vec<f32> = out.x.iter().map(|&v| v as f32).collect();
        let (weights, bias) = params.split_at(dim * n_classes);
        Ok(LinearModel {
            classes,
            dim,
            mean,
            inv_std,
            weights: weights.to_vec(),
            bias: bias.to_vec(),
            l2,
            iterations: out.iterations,
            converged: out.converged,
            validation,
        })
    }

    /// Trains on `train` and scores the probe on `test`.
    pub fn evaluate(
        &self,
        train: &FeatureSet<'_>,
        test: &FeatureSet<'_>,
    ) -> Result<LinearProbeReport> {
        train.check_same_dim(test, "train/test")?;
        let model = self.fit(train)?;
        let train_pred = model.predict(train.features())?;
        let test_pred = model.predict(test.features())?;
        Ok(LinearProbeReport {
            accuracy: accuracy(&test_pred, test.labels()),
            train_accuracy: accuracy(&train_pred, train.labels()),
            l2: model.l2,
            validation: model.validation,
            iterations: model.iterations,
            converged: model.converged,
            n_train: train.len(),
            n_test: test.len(),
        })
    }
}

impl LinearModel {
    /// The labels the model can predict, ascending; class `c` of the weights is `classes()[c]`.
    pub fn classes(&self) -> &[i64] {
        &self.classes
    }

    /// The L2 strength it was trained with.
    pub fn l2(&self) -> f64 {
        self.l2
    }

    /// Whether the final fit met a stopping rule before the iteration cap.
    pub fn converged(&self) -> bool {
        self.converged
    }

    /// Predicts a label for every row of `features` (`[n, dim]`, row-major).
    ///
    /// Fails when the length is not a multiple of the model's dimension.
    pub fn predict(&self, features: &[f32]) -> Result<Vec<i64>> {
        if !features.len().is_multiple_of(self.dim) {
            return Err(Error::mismatch(
                "feature buffer length",
                format!("a multiple of dim {}", self.dim),
                features.len(),
            ));
        }
        let x = standardized(features, self.dim, &self.mean, &self.inv_std);
        let params: Vec<f64> = self
            .weights
            .iter()
            .chain(&self.bias)
            .map(|&v| f64::from(v))
            .collect();
        let idx = predict_standardized(&x, self.dim, self.classes.len(), &params);
        Ok(idx.into_iter().map(|c| self.classes[c as usize]).collect())
    }
}

/// One training problem: standardised rows `[n, dim]` and class indices `[n]`.
struct Problem<'a> {
    x: &'a [f32],
    targets: &'a [u32],
    dim: usize,
    n_classes: usize,
}

impl Problem<'_> {
    fn fit(&self, init: Vec<f64>, l2: f64, tolerance: f64, max_iter: usize) -> lbfgs::Outcome {
        let mut probs = vec![0f32; self.targets.len() * self.n_classes];
        let mut grad_w = vec![0f32; self.dim * self.n_classes];
        lbfgs::minimize(
            init,
            |p, g| self.objective(p, g, l2, &mut probs, &mut grad_w),
            tolerance,
            max_iter,
        )
    }

    /// `mean CE + λ/2 ‖W‖²` at `params = [W (dim × C, row-major), b (C)]`; gradient into `grad`.
    fn objective(
        &self,
        params: &[f64],
        grad: &mut [f64],
        l2: f64,
        probs: &mut [f32],
        grad_w: &mut [f32],
    ) -> f64 {
        let (dim, c) = (self.dim, self.n_classes);
        let n = self.targets.len();
        // The bounds of the `sgemm` below, checked in every build (once per evaluation, next to
        // an `[n, dim] · [dim, C]` product).
        assert!(
            n.checked_mul(dim) == Some(self.x.len())
                && n.checked_mul(c) == Some(probs.len())
                && dim.checked_mul(c) == Some(grad_w.len()),
            "linear probe: {} values for {n} rows of dim {dim}, {} probabilities and {} weight \
             gradients for {c} classes",
            self.x.len(),
            probs.len(),
            grad_w.len()
        );
        logits(self.x, dim, c, params, probs);
        // Softmax in place, then P − Y scaled by 1/n; per-row losses summed in a fixed order.
        let scale = 1.0 / n as f32;
        let losses: Vec<f64> = probs
            .par_chunks_exact_mut(c)
            .zip(self.targets.par_iter())
            .map(|(row, &t)| {
                let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                let target_logit = row[t as usize];
                let mut sum = 0f64;
                for v in row.iter_mut() {
                    *v = (*v - max).exp();
                    sum += f64::from(*v);
                }
                let loss = sum.ln() - f64::from(target_logit - max);
                let inv = 1.0 / sum as f32;
                for v in row.iter_mut() {
                    *v *= inv * scale;
                }
                row[t as usize] -= scale;
                loss
            })
            .collect();
        let ce = losses.iter().sum::<f64>() / n as f64;
        // grad_W = Xᵀ (P − Y)/n : [dim, n] · [n, C].
        // SAFETY: A = Xᵀ read through strides (1, dim) inside `x` ([n, dim]); B is `probs`
        // ([n, C] row-major); C is `grad_w` ([dim, C] row-major), exclusive and non-aliasing;
        // the three lengths are asserted above.
        unsafe {
            matrixmultiply::sgemm(
                dim,
                n,
                c,
                1.0,
                self.x.as_ptr(),
                1,
                dim as isize,
                probs.as_ptr(),
                c as isize,
                1,
                0.0,
                grad_w.as_mut_ptr(),
                c as isize,
                1,
            );
        }
        let (w, _) = params.split_at(dim * c);
        let mut penalty = 0.0;
        for i in 0..dim * c {
            penalty += w[i] * w[i];
            grad[i] = f64::from(grad_w[i]) + l2 * w[i];
        }
        for k in 0..c {
            grad[dim * c + k] = probs[k..].iter().step_by(c).map(|&v| f64::from(v)).sum();
        }
        ce + 0.5 * l2 * penalty
    }
}

/// `out[n, C] = x[n, dim] · W + b` for `params = [W (dim × C), b (C)]`.
fn logits(x: &[f32], dim: usize, c: usize, params: &[f64], out: &mut [f32]) {
    let n = x.len() / dim;
    // The bounds of the `sgemm` below (`w` has `dim × C` values by construction), checked in
    // every build.
    assert!(
        n * dim == x.len() && n.checked_mul(c) == Some(out.len()),
        "logits: {} values are not rows of dim {dim}, or {} outputs are not [n, {c}]",
        x.len(),
        out.len()
    );
    let w: Vec<f32> = params[..dim * c].iter().map(|&v| v as f32).collect();
    let b = &params[dim * c..];
    for row in out.chunks_exact_mut(c) {
        row.iter_mut()
            .zip(b)
            .for_each(|(o, &bias)| *o = bias as f32);
    }
    // SAFETY: A is `x` ([n, dim] row-major), B is `w` ([dim, C] row-major), C is `out`
    // ([n, C] row-major, exclusive), lengths asserted above; β = 1 adds the bias written above.
    unsafe {
        matrixmultiply::sgemm(
            n,
            dim,
            c,
            1.0,
            x.as_ptr(),
            dim as isize,
            1,
            w.as_ptr(),
            c as isize,
            1,
            1.0,
            out.as_mut_ptr(),
            c as isize,
            1,
        );
    }
}

/// Arg-max class index of every standardised row (ties: the lower index).
fn predict_standardized(x: &[f32], dim: usize, c: usize, params: &[f64]) -> Vec<u32> {
    let mut out = vec![0f32; (x.len() / dim) * c];
    logits(x, dim, c, params, &mut out);
    out.chunks_exact(c)
        .map(|row| {
            let mut best = 0;
            for (k, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = k;
                }
            }
            best as u32
        })
        .collect()
}

/// Column means and inverse standard deviations of `x` (`[n, dim]`); a constant column gets an
/// inverse deviation of 0.
fn column_stats(x: &[f32], dim: usize) -> (Vec<f32>, Vec<f32>) {
    let n = (x.len() / dim).max(1) as f64;
    let mut sum = vec![0f64; dim];
    let mut sq = vec![0f64; dim];
    for row in x.chunks_exact(dim) {
        for (j, &v) in row.iter().enumerate() {
            sum[j] += f64::from(v);
            sq[j] += f64::from(v) * f64::from(v);
        }
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let inv_std = sq
        .iter()
        .zip(&mean)
        .map(|(s, m)| {
            let var = (s / n - m * m).max(0.0);
            if var > 1e-12 * (1.0 + m * m) {
                (1.0 / var.sqrt()) as f32
            } else {
                0.0
            }
        })
        .collect();
    (mean.into_iter().map(|m| m as f32).collect(), inv_std)
}

/// `(x − mean) · inv_std`, column-wise.
fn standardized(x: &[f32], dim: usize, mean: &[f32], inv_std: &[f32]) -> Vec<f32> {
    let mut out = x.to_vec();
    out.par_chunks_exact_mut(dim).for_each(|row| {
        for ((v, m), s) in row.iter_mut().zip(mean).zip(inv_std) {
            *v = (*v - m) * s;
        }
    });
    out
}

/// The rows `rows` of `x` (`[n, dim]`), in that order.
fn gather(x: &[f32], dim: usize, rows: &[usize]) -> Vec<f32> {
    rows.iter()
        .flat_map(|&i| &x[i * dim..(i + 1) * dim])
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_validates_and_sorts_the_grid_strongest_first() {
        assert!(LinearProbe::builder().l2_grid(vec![]).build().is_err());
        assert!(LinearProbe::builder().l2_grid(vec![-1.0]).build().is_err());
        assert!(LinearProbe::builder()
            .validation_fraction(1.0)
            .build()
            .is_err());
        assert!(LinearProbe::builder().max_iterations(0).build().is_err());
        assert!(LinearProbe::builder().tolerance(0.0).build().is_err());
        let p = LinearProbe::builder()
            .l2_grid(vec![1e-3, 1e-1, 1e-3])
            .build()
            .unwrap();
        assert_eq!(p.l2_grid, vec![1e-1, 1e-3]);
    }

    /// The `sgemm` bounds hold in release builds: more feature rows than targets (so more
    /// logits than `probs` holds) are refused before the unchecked product runs.
    #[test]
    #[should_panic(expected = "linear probe")]
    fn objective_refuses_rows_that_do_not_match_the_targets() {
        let (dim, c) = (2, 3);
        let x = vec![0.5f32; 4 * dim];
        let targets = [0u32, 1];
        let problem = Problem {
            x: &x,
            targets: &targets,
            dim,
            n_classes: c,
        };
        let params = vec![0.1f64; dim * c + c];
        let (mut probs, mut gw) = (vec![0f32; 2 * c], vec![0f32; dim * c]);
        let mut grad = vec![0f64; params.len()];
        problem.objective(&params, &mut grad, 0.0, &mut probs, &mut gw);
    }

    // The gradient must match central finite differences of the objective.
    #[test]
    fn gradient_matches_finite_differences() {
        let (dim, c) = (3, 4);
        let x: Vec<f32> = (0..5 * dim)
            .map(|i| ((i * 13 % 7) as f32 - 3.0) / 3.0)
            .collect();
        let targets = [0u32, 3, 1, 2, 3];
        let problem = Problem {
            x: &x,
            targets: &targets,
            dim,
            n_classes: c,
        };
        let params: Vec<f64> = (0..dim * c + c)
            .map(|i| ((i * 5 % 11) as f64 - 5.0) / 10.0)
            .collect();
        let mut probs = vec![0f32; 5 * c];
        let mut gw = vec![0f32; dim * c];
        let mut grad = vec![0f64; params.len()];
        problem.objective(&params, &mut grad, 0.3, &mut probs, &mut gw);
        for i in 0..params.len() {
            let h = 1e-3;
            let mut p = params.clone();
            p[i] += h;
            let fp = problem.objective(&p, &mut vec![0.0; params.len()], 0.3, &mut probs, &mut gw);
            p[i] -= 2.0 * h;
            let fm = problem.objective(&p, &mut vec![0.0; params.len()], 0.3, &mut probs, &mut gw);
            let numeric = (fp - fm) / (2.0 * h);
            assert!(
                (numeric - grad[i]).abs() < 2e-3,
                "param {i}: {numeric} vs {}",
                grad[i]
            );
        }
    }

    #[test]
    fn constant_columns_are_zeroed_not_divided_by_zero() {
        let (mean, inv) = column_stats(&[1.0, 5.0, 3.0, 5.0], 2);
        assert_eq!(mean, vec![2.0, 5.0]);
        assert_eq!(inv, vec![1.0, 0.0]);
    }
}
