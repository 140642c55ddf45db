//! A small full-batch L-BFGS minimiser for smooth convex objectives (the linear probe).
//!
//! Two-loop recursion over the last [`MEMORY`] curvature pairs, a backtracking Armijo line
//! search, and scipy's stopping rules: the largest gradient component at most `gtol`, or a
//! relative decrease `(f_k − f_{k+1}) / max(|f_k|, |f_{k+1}|, 1)` at most [`FTOL`].

use std::collections::VecDeque;

/// Curvature pairs kept (scipy's default `maxcor`).
pub(crate) const MEMORY: usize = 10;

/// Relative-decrease stopping threshold (scipy's `factr = 1e7` times f64 epsilon).
pub(crate) const FTOL: f64 = 1e7 * f64::EPSILON;

/// Armijo sufficient-decrease constant.
const ARMIJO: f64 = 1e-4;

/// Step halvings before the line search gives up.
const MAX_HALVINGS: usize = 40;

/// Where the minimiser stopped.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// The parameters reached.
    pub x: Vec<f64>,
    /// The objective there.
    pub f: f64,
    /// Iterations (line searches) taken.
    pub iterations: usize,
    /// True when a stopping rule fired (not the iteration cap or a failed line search).
    pub converged: bool,
}

/// Minimises `objective` from `x0`. `objective(x, grad)` returns `f(x)` and writes `∇f(x)` into
/// `grad`.
pub(crate) fn minimize(
    x0: Vec<f64>,
    mut objective: impl FnMut(&[f64], &mut [f64]) -> f64,
    gtol: f64,
    max_iterations: usize,
) -> Outcome {
    let n = x0.len();
    let mut x = x0;
    let mut g = vec![0.0; n];
    let mut f = objective(&x, &mut g);
    let mut memory: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::with_capacity(MEMORY);
    let mut x_new = vec![0.0; n];
    let mut g_new = vec![0.0; n];
    for iteration in 0..max_iterations {
        if max_abs(&g) <= gtol {
            return Outcome {
                x,
                f,
                iterations: iteration,
                converged: true,
            };
        }
        let mut d = direction(&g, &memory);
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            // Not a descent direction (numerical trouble): restart from steepest descent.
            memory.clear();
            d = g.iter().map(|v| -v).collect();
            slope = -dot(&g, &g);
        }
        // First step: unit length along -g; afterwards the quasi-Newton step is scaled already.
        let mut step = if memory.is_empty() {
            1.0 / norm(&d).max(1e-12)
        } else {
            1.0
        };
        let mut f_new = f64::INFINITY;
        let mut accepted = false;
        for _ in 0..MAX_HALVINGS {
            for i in 0..n {
                x_new[i] = x[i] + step * d[i];
            }
            f_new = objective(&x_new, &mut g_new);
            if f_new.is_finite() && f_new <= f + ARMIJO * step * slope {
                accepted = true;
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            return Outcome {
                x,
                f,
                iterations: iteration,
                converged: false,
            };
        }
        let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-10 * dot(&y, &y) {
            if memory.len() == MEMORY {
                memory.pop_front();
            }
            memory.push_back((s, y, 1.0 / sy));
        }
        let decrease = (f - f_new) / f.abs().max(f_new.abs()).max(1.0);
        std::mem::swap(&mut x, &mut x_new);
        std::mem::swap(&mut g, &mut g_new);
        f = f_new;
        if decrease <= FTOL {
            return Outcome {
                x,
                f,
                iterations: iteration + 1,
                converged: true,
            };
        }
    }
    let converged = max_abs(&g) <= gtol;
    Outcome {
        x,
        f,
        iterations: max_iterations,
        converged,
    }
}

/// `-H g` by the two-loop recursion, `H₀ = (sᵀy / yᵀy) I` from the newest pair.
fn direction(g: &[f64], memory: &VecDeque<(Vec<f64>, Vec<f64>, f64)>) -> Vec<f64> {
    let mut q: Vec<f64> = g.to_vec();
    let mut alphas = Vec::with_capacity(memory.len());
    for (s, y, rho) in memory.iter().rev() {
        let a = rho * dot(s, &q);
        axpy(-a, y, &mut q);
        alphas.push(a);
    }
    if let Some((s, y, _)) = memory.back() {
        let gamma = dot(s, y) / dot(y, y);
        q.iter_mut().for_each(|v| *v *= gamma);
    }
    for ((s, y, rho), a) in memory.iter().zip(alphas.into_iter().rev()) {
        let b = rho * dot(y, &q);
        axpy(a - b, s, &mut q);
    }
    q.iter_mut().for_each(|v| *v = -*v);
    q
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    y.iter_mut().zip(x).for_each(|(y, x)| *y += alpha * x);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimizes_an_ill_conditioned_quadratic() {
        // f(x) = Σ cᵢ (xᵢ − i)², minimum at xᵢ = i.
        let c = [1.0, 10.0, 100.0, 1000.0];
        let out = minimize(
            vec![0.0; 4],
            |x, g| {
                let mut f = 0.0;
                for i in 0..4 {
                    let r = x[i] - i as f64;
                    f += c[i] * r * r;
                    g[i] = 2.0 * c[i] * r;
                }
                f
            },
            1e-8,
            200,
        );
        assert!(out.converged);
        for (i, v) in out.x.iter().enumerate() {
            assert!((v - i as f64).abs() < 1e-6, "x[{i}] = {v}");
        }
    }

    #[test]
    fn minimizes_rosenbrock() {
        let out = minimize(
            vec![-1.2, 1.0],
            |x, g| {
                let (a, b) = (x[0], x[1]);
                g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
                g[1] = 200.0 * (b - a * a);
                (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
            },
            1e-9,
            1000,
        );
        assert!(
            (out.x[0] - 1.0).abs() < 1e-4 && (out.x[1] - 1.0).abs() < 1e-4,
            "{:?}",
            out.x
        );
    }
}
