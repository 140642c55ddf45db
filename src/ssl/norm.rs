//! Training-mode batch normalisation (optionally fused with the ReLU after it) for the Flex
//! backend, forward and backward in direct per-channel loops.
//!
//! burn 0.22.1's `batch_norm_train` and its backward are backend ops whose default bodies
//! (which Flex uses) compute the per-channel statistics by `swap_dims(0, 1)` + `reshape`, i.e.
//! a full transposed copy of the activation for each of the mean, the variance and the two
//! gradient sums, plus about ten element-wise passes. Profiled on the `small` ResNet's SimCLR
//! step those layout copies (`copy_2d_tiled`) and passes were the largest cost after the GEMMs.
//! Here, on NCHW data:
//!
//! ```text
//! forward   μ_c, σ²_c (biased) over (n, h, w);  y = γ_c (x − μ_c) / √(σ²_c + ε) + β_c  [; max(0, y)]
//! backward  g = dy [· 1{y > 0}];  dβ_c = Σ g;  dγ_c = Σ g x̂;
//!           dx = γ_c / √(σ²_c + ε) · (g − dβ_c / M − x̂ dγ_c / M),   M = N·H·W
//! ```
//!
//! Statistics run in parallel over channels (16 f32 partial sums per plane, added in f64), the
//! element-wise parts in parallel over samples. Like [`super::conv`] it is a custom autodiff operation on
//! `Autodiff<Flex>`; everything else (inference mode, other backends and dtypes) goes to burn's
//! `BatchNorm`. The running statistics are updated exactly as burn's `BatchNorm` does.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::nn::{BatchNorm, Relu};
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

use super::flex::{disabled, flex_tensor, values, AutodiffFlex};

/// `[n, c, plane]` of an NCHW activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dims {
    n: usize,
    c: usize,
    plane: usize,
}

impl Dims {
    fn count(&self) -> usize {
        self.n * self.plane
    }

    /// Per channel `c`, the sum over samples `n` of `f(n, c)`, in parallel over channels.
    fn per_channel<const K: usize>(
        &self,
        f: impl Fn(usize, usize) -> [f64; K] + Sync,
    ) -> Vec<[f64; K]> {
        (0..self.c)
            .into_par_iter()
            .map(|c| {
                let mut acc = [0.0f64; K];
                for n in 0..self.n {
                    let part = f(n, c);
                    acc.iter_mut().zip(part).for_each(|(a, p)| *a += p);
                }
                acc
            })
            .collect()
    }

    fn range(&self, n: usize, c: usize) -> std::ops::Range<usize> {
        let start = (n * self.c + c) * self.plane;
        start..start + self.plane
    }
}

/// The output gradient through the fused ReLU: `g` where the output `y` is positive (or always,
/// without the ReLU), else 0.
#[inline(always)]
fn masked(g: f32, y: f32, relu: bool) -> f32 {
    if relu && y <= 0.0 {
        0.0
    } else {
        g
    }
}

/// Independent f32 partial sums per reduction: enough for the compiler to keep them in one
/// vector register each (the f64 chains these replace did not vectorise).
const LANES: usize = 16;

/// `Σ f(v)` over `xs`: [`LANES`] f32 partial sums over one plane, added up in f64.
#[inline(always)]
fn lane_sum(xs: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let (chunks, tail) = xs.as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += f(v);
        }
    }
    let head: f64 = acc.iter().map(|&a| f64::from(a)).sum();
    head + tail.iter().map(|&v| f64::from(f(v))).sum::<f64>()
}

/// `Σ f(x, y, g)` (two sums at once) over three equally long slices, as [`lane_sum`].
#[inline(always)]
fn lane_sum3(x: &[f32], y: &[f32], g: &[f32], f: impl Fn(f32, f32, f32) -> [f32; 2]) -> [f64; 2] {
    let (xc, xt) = x.as_chunks::<LANES>();
    let (yc, yt) = y.as_chunks::<LANES>();
    let (gc, gt) = g.as_chunks::<LANES>();
    let mut acc = [[0.0f32; LANES]; 2];
    for ((xs, ys), gs) in xc.iter().zip(yc).zip(gc) {
        for l in 0..LANES {
            let [p, q] = f(xs[l], ys[l], gs[l]);
            acc[0][l] += p;
            acc[1][l] += q;
        }
    }
    let mut out = acc.map(|a| a.iter().map(|&v| f64::from(v)).sum::<f64>());
    for ((&xv, &yv), &gv) in xt.iter().zip(yt).zip(gt) {
        let [p, q] = f(xv, yv, gv);
        out[0] += f64::from(p);
        out[1] += f64::from(q);
    }
    out
}

/// What the forward returns: output and the batch statistics.
struct Forward {
    y: Vec<f32>,
    mean: Vec<f32>,
    var: Vec<f32>,
}

fn forward(d: Dims, x: &[f32], gamma: &[f32], beta: &[f32], eps: f64, relu: bool) -> Forward {
    let m = d.count() as f64;
    let sums = d.per_channel(|n, c| [lane_sum(&x[d.range(n, c)], |v| v)]);
    let mean: Vec<f64> = sums.iter().map(|s| s[0] / m).collect();
    // centred second pass (as burn does: mean of (x − μ)²), robust to large means
    let sq = d.per_channel(|n, c| {
        let mu = mean[c] as f32;
        [lane_sum(&x[d.range(n, c)], |v| (v - mu) * (v - mu))]
    });
    let var: Vec<f64> = sq.iter().map(|s| s[0] / m).collect();
    let scale: Vec<f32> = (0..d.c)
        .map(|c| (f64::from(gamma[c]) / (var[c] + eps).sqrt()) as f32)
        .collect();
    let shift: Vec<f32> = (0..d.c)
        .map(|c| (f64::from(beta[c]) - mean[c] * f64::from(scale[c])) as f32)
        .collect();
    let mut y = vec![0.0f32; x.len()];
    let sample = d.c * d.plane;
    y.par_chunks_mut(sample)
        .zip(x.par_chunks(sample))
        .for_each(|(ys, xs)| {
            for c in 0..d.c {
                let (a, b) = (scale[c], shift[c]);
                let span = c * d.plane..(c + 1) * d.plane;
                for (o, &v) in ys[span.clone()].iter_mut().zip(&xs[span]) {
                    let t = v * a + b;
                    *o = if relu { t.max(0.0) } else { t };
                }
            }
        });
    Forward {
        y,
        mean: mean.iter().map(|&v| v as f32).collect(),
        var: var.iter().map(|&v| v as f32).collect(),
    }
}

/// Gradients `(dx, dγ, dβ)`; `y` is the forward output (its sign is the ReLU mask).
#[allow(clippy::too_many_arguments)]
fn backward(
    d: Dims,
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f64,
    relu: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let inv_std: Vec<f64> = var
        .iter()
        .map(|&v| 1.0 / (f64::from(v) + eps).sqrt())
        .collect();
    let sums = d.per_channel(|n, c| {
        let r = d.range(n, c);
        let (mu, is) = (mean[c], inv_std[c]);
        let [sg, sgc] = lane_sum3(&x[r.clone()], &y[r.clone()], &dy[r], |xv, yv, g| {
            let g = masked(g, yv, relu);
            [g, g * (xv - mu)]
        });
        [sg, sgc * is]
    });
    let m = d.count() as f64;
    let dbeta: Vec<f32> = sums.iter().map(|s| s[0] as f32).collect();
    let dgamma: Vec<f32> = sums.iter().map(|s| s[1] as f32).collect();
    // dx = k (g − a − x̂ b) with k = γ/σ, a = dβ/M, b = dγ/M, x̂ = (x − μ)/σ
    let coef: Vec<[f32; 4]> = (0..d.c)
        .map(|c| {
            let k = f64::from(gamma[c]) * inv_std[c];
            let a = sums[c][0] / m;
            let b = sums[c][1] / m;
            [k as f32, a as f32, b as f32, inv_std[c] as f32]
        })
        .collect();
    let mut dx = vec![0.0f32; x.len()];
    let sample = d.c * d.plane;
    dx.par_chunks_mut(sample)
        .zip(x.par_chunks(sample).zip(y.par_chunks(sample)))
        .zip(dy.par_chunks(sample))
        .for_each(|((out, (xs, ys)), dys)| {
            for c in 0..d.c {
                let [k, a, b, is] = coef[c];
                let mu = mean[c];
                let span = c * d.plane..(c + 1) * d.plane;
                let inputs = xs[span.clone()]
                    .iter()
                    .zip(&ys[span.clone()])
                    .zip(&dys[span.clone()]);
                for (o, ((&xv, &yv), &g)) in out[span].iter_mut().zip(inputs) {
                    let xhat = (xv - mu) * is;
                    *o = k * (masked(g, yv, relu) - a - xhat * b);
                }
            }
        });
    (dx, dgamma, dbeta)
}

/// State the backward step keeps: dimensions, inputs, output and statistics.
#[derive(Debug, Clone)]
struct BnState {
    dims: Dims,
    shape: [usize; 4],
    x: FlexTensor,
    y: FlexTensor,
    gamma: FlexTensor,
    mean: Vec<f32>,
    var: Vec<f32>,
    eps: f64,
    relu: bool,
}

#[derive(Debug)]
struct BatchNormBackward;

impl Backward<Flex, 3> for BatchNormBackward {
    type State = BnState;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        let (dx, dgamma, dbeta) = backward(
            s.dims,
            &values(&s.x),
            &values(&s.y),
            &values(&dy),
            &values(&s.gamma),
            &s.mean,
            &s.var,
            s.eps,
            s.relu,
        );
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, flex_tensor(dx, s.shape));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, flex_tensor(dgamma, [s.dims.c]));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, flex_tensor(dbeta, [s.dims.c]));
        }
    }
}

/// Training-mode batch norm of `x [N, C, H, W]` with this crate's kernel, or `None` when the
/// inputs are not f32 `Autodiff<Flex>` tensors. Returns `(y, batch mean, biased batch var)`.
fn train_fast(
    x: &Tensor<4>,
    gamma: &Tensor<1>,
    beta: &Tensor<1>,
    eps: f64,
    relu: bool,
) -> Option<(Tensor<4>, Vec<f32>, Vec<f32>)> {
    if disabled() || x.dtype() != DType::F32 || gamma.dtype() != DType::F32 {
        return None;
    }
    let shape = x.dims();
    let [n, c, h, w] = shape;
    if n * h * w == 0 || gamma.dims() != [c] || beta.dims() != [c] {
        return None;
    }
    let xa = x.clone().try_into_primitive::<AutodiffFlex>().ok()?;
    let ga = gamma.clone().try_into_primitive::<AutodiffFlex>().ok()?;
    let ba = beta.clone().try_into_primitive::<AutodiffFlex>().ok()?;
    let dims = Dims { n, c, plane: h * w };
    let f = forward(
        dims,
        &values(xa.primitive()),
        &values(ga.primitive()),
        &values(ba.primitive()),
        eps,
        relu,
    );
    let y = flex_tensor(f.y, shape);
    let out = match BatchNormBackward
        .prepare::<NoCheckpointing>([xa.node(), ga.node(), ba.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let state = BnState {
                dims,
                shape,
                x: xa.primitive().clone(),
                y: y.clone(),
                gamma: ga.primitive().clone(),
                mean: f.mean.clone(),
                var: f.var.clone(),
                eps,
                relu,
            };
            prep.finish(state, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some((Tensor::from_primitive::<AutodiffFlex>(out), f.mean, f.var))
}

/// `bn.forward(x)`, followed by a ReLU when `relu`: in training mode on the Flex autodiff
/// backend computed by this module's fused kernel (same values, gradients and running-statistic
/// updates as burn's `BatchNorm`), otherwise by burn.
pub fn batch_norm(bn: &BatchNorm, x: Tensor<4>, relu: bool) -> Tensor<4> {
    let training = x.device().is_autodiff() && bn.training.is_enabled();
    let fast = if training {
        train_fast(&x, &bn.gamma.val(), &bn.beta.val(), bn.epsilon, relu)
    } else {
        None
    };
    let Some((y, mean, var)) = fast else {
        let y = bn.forward(x);
        return if relu { Relu::new().forward(y) } else { y };
    };
    // running statistics, as burn's `BatchNorm::forward_train`
    let device = y.device();
    let stat =
        |v: Vec<f32>| Tensor::<1>::from_data(TensorData::new(v, [bn.gamma.dims()[0]]), &device);
    let m = bn.momentum;
    let running_mean = bn
        .running_mean
        .value_sync()
        .to_device(&device)
        .mul_scalar(1.0 - m)
        .add(stat(mean).mul_scalar(m));
    let running_var = bn
        .running_var
        .value_sync()
        .to_device(&device)
        .mul_scalar(1.0 - m)
        .add(stat(var).mul_scalar(m));
    bn.running_mean.update(running_mean.detach());
    bn.running_var.update(running_var.detach());
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssl::flex::max_diff;
    use burn::module::Param;
    use burn::nn::BatchNormConfig;
    use burn::tensor::{Device, Distribution};

    /// Output, all three gradients and the running statistics against burn's `BatchNorm`
    /// (+ `Relu`), with non-trivial γ, β and a non-uniform upstream gradient.
    #[test]
    fn equals_burn_batch_norm_in_value_gradients_and_running_stats() {
        let device = Device::flex().autodiff();
        for (shape, relu) in [
            ([4, 3, 5, 5], false),
            ([4, 3, 5, 5], true),
            ([2, 8, 1, 1], true),
            ([7, 2, 3, 2], false),
            // planes of 49 and 64 values: the 16-lane partial sums and their tails
            ([3, 4, 7, 7], true),
            ([2, 2, 8, 8], false),
        ] {
            let c = shape[1];
            let (x0, g0, b0) =
                crate::train::seeded(&device, shape.iter().product::<usize>() as u64, || {
                    (
                        Tensor::<4>::random(shape, Distribution::Normal(0.5, 2.0), &device),
                        Tensor::<1>::random([c], Distribution::Uniform(0.5, 1.5), &device),
                        Tensor::<1>::random([c], Distribution::Uniform(-0.5, 0.5), &device),
                    )
                });
            let run = |fast: bool| {
                let mut bn = BatchNormConfig::new(c).init(&device);
                bn.gamma = Param::from_tensor(g0.clone().detach());
                bn.beta = Param::from_tensor(b0.clone().detach());
                let x = x0.clone().detach().require_grad();
                let y = if fast {
                    let (y, _, _) =
                        train_fast(&x, &bn.gamma.val(), &bn.beta.val(), bn.epsilon, relu)
                            .expect("fast path taken");
                    // and through the public entry point, for the running statistics
                    let _ = batch_norm(&bn, x.clone().detach(), relu);
                    y
                } else {
                    let y = bn.forward(x.clone());
                    if relu {
                        Relu::new().forward(y)
                    } else {
                        y
                    }
                };
                let weights = Tensor::<4>::ones(shape, &device).cumsum(3).sin();
                let grads = (y.clone() * weights).sum().backward();
                let gx = x.grad(&grads).expect("x grad");
                let gg = bn.gamma.grad(&grads).expect("gamma grad");
                let gb = bn.beta.grad(&grads).expect("beta grad");
                let stats = (bn.running_mean.value(), bn.running_var.value());
                (y.inner(), gx, gg, gb, stats)
            };
            let (y1, gx1, gg1, gb1, (rm1, rv1)) = run(true);
            let (y2, gx2, gg2, gb2, (rm2, rv2)) = run(false);
            let case = format!("{shape:?} relu={relu}");
            assert!(max_diff(y1, y2) < 1e-4, "forward {case}");
            assert!(max_diff(gx1, gx2) < 1e-4, "x grad {case}");
            assert!(max_diff(gg1, gg2) < 1e-3, "gamma grad {case}");
            assert!(max_diff(gb1, gb2) < 1e-3, "beta grad {case}");
            assert!(max_diff(rm1, rm2) < 1e-5, "running mean {case}");
            assert!(max_diff(rv1, rv2) < 1e-5, "running var {case}");
        }
    }

    #[test]
    fn inference_mode_and_plain_devices_use_burn() {
        let device = Device::flex();
        let bn = BatchNormConfig::new(3).init(&device);
        let x = crate::train::seeded(&device, 5, || {
            Tensor::<4>::random([2, 3, 4, 4], Distribution::Default, &device)
        });
        let reference = Relu::new().forward(bn.forward(x.clone()));
        assert!(max_diff(batch_norm(&bn, x.clone(), true), reference) < 1e-6);
        let plain = train_fast(
            &x_plain(&device),
            &bn.gamma.val(),
            &bn.beta.val(),
            1e-5,
            false,
        );
        assert!(
            plain.is_none(),
            "plain Flex tensors are not training tensors"
        );
    }

    fn x_plain(device: &Device) -> Tensor<4> {
        Tensor::<4>::ones([2, 3, 4, 4], device)
    }
}
