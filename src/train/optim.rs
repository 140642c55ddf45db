//! Optimisers over a Burn module: SGD with momentum, LARS and AdamW.
//!
//! Implemented here rather than with `burn::optim` because (1) burn 0.22 has no LARS, (2) the
//! state is kept per parameter *position* (the module's visiting order), so a checkpoint
//! restores it into a freshly built network exactly — burn's `ModuleOptimizer` keys its state by
//! random `ParamId`s, and (3) one rule covers all three: parameters of rank 1 (biases and
//! batch-norm scales/shifts) get neither weight decay nor LARS adaptation.

use burn::module::{Module, ModuleMapper, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::config::{DEFAULT_ADAMW_LR, DEFAULT_LR};
use crate::{Error, Result};

/// Optimiser and its hyper-parameters (the learning rate comes from the schedule).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum OptimizerConfig {
    /// SGD with (heavy-ball) momentum: `b ← μb + g + λw`, `w ← w − lr·b`.
    Sgd {
        /// Momentum μ.
        momentum: f64,
        /// Weight decay λ (not applied to rank-1 parameters).
        weight_decay: f64,
    },
    /// LARS (as in the Barlow Twins / VICReg code): `g ← g + λw`, scaled by the trust ratio
    /// `η‖w‖/‖g‖` (rank ≥ 2 parameters only), then heavy-ball momentum.
    Lars {
        /// Momentum μ.
        momentum: f64,
        /// Weight decay λ.
        weight_decay: f64,
        /// Trust coefficient η.
        eta: f64,
    },
    /// AdamW with decoupled weight decay.
    AdamW {
        /// β₁.
        beta1: f64,
        /// β₂.
        beta2: f64,
        /// ε.
        epsilon: f64,
        /// Decoupled weight decay λ.
        weight_decay: f64,
    },
}

impl OptimizerConfig {
    /// SGD, momentum 0.9, weight decay 5·10⁻⁴.
    pub fn sgd() -> Self {
        OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 5e-4,
        }
    }

    /// LARS, momentum 0.9, weight decay 10⁻⁵, η = 0.02 (solo-learn's defaults).
    pub fn lars() -> Self {
        OptimizerConfig::Lars {
            momentum: 0.9,
            weight_decay: 1e-5,
            eta: 0.02,
        }
    }

    /// AdamW, β = (0.9, 0.999), ε = 10⁻⁸, weight decay 10⁻⁴.
    pub fn adamw() -> Self {
        OptimizerConfig::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 1e-4,
        }
    }

    /// The peak learning rate this optimiser is run at when none is given: [`DEFAULT_LR`] for SGD
    /// and LARS, [`DEFAULT_ADAMW_LR`] for AdamW.
    pub fn default_lr(&self) -> f64 {
        match self {
            OptimizerConfig::Sgd { .. } | OptimizerConfig::Lars { .. } => DEFAULT_LR,
            OptimizerConfig::AdamW { .. } => DEFAULT_ADAMW_LR,
        }
    }

    /// Parses `sgd|lars|adamw` into its defaults.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "sgd" => Ok(Self::sgd()),
            "lars" => Ok(Self::lars()),
            "adamw" => Ok(Self::adamw()),
            other => Err(Error::invalid(
                "optimizer",
                format!("`{other}`; expected sgd|lars|adamw"),
            )),
        }
    }
}

/// Per-parameter buffers, flattened: momentum / first moment and second moment.
#[derive(Debug, Clone, Default)]
struct Slot {
    first: Option<Tensor<1>>,
    second: Option<Tensor<1>>,
}

/// Saved optimiser state: step count and per-position buffers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerState {
    /// Updates applied so far.
    pub steps: u64,
    /// First buffer (momentum / Adam `m`) per parameter position.
    pub first: Vec<Option<Vec<f32>>>,
    /// Second buffer (Adam `v`) per parameter position.
    pub second: Vec<Option<Vec<f32>>>,
}

/// An optimiser with its state. Apply with [`step`](Self::step).
#[derive(Debug, Clone)]
pub struct Optimizer {
    config: OptimizerConfig,
    steps: u64,
    slots: Vec<Slot>,
}

impl Optimizer {
    /// A fresh optimiser.
    pub fn new(config: OptimizerConfig) -> Self {
        Self {
            config,
            steps: 0,
            slots: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// Updates every parameter of `module` that has a gradient in `grads`, at learning rate `lr`.
    pub fn step<M: Module>(&mut self, module: M, grads: GradientsParams, lr: f64) -> M {
        self.steps += 1;
        let mut mapper = Update {
            opt: self,
            grads,
            lr,
            index: 0,
        };
        module.map(&mut mapper)
    }

    /// Snapshot of the state (exact values).
    pub fn state(&self) -> OptimizerState {
        let host = |t: &Option<Tensor<1>>| {
            t.as_ref().map(|t| {
                t.to_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .unwrap_or_default()
            })
        };
        OptimizerState {
            steps: self.steps,
            first: self.slots.iter().map(|s| host(&s.first)).collect(),
            second: self.slots.iter().map(|s| host(&s.second)).collect(),
        }
    }

    /// Restores a [`state`](Self::state); buffers are created on `device` (without autodiff).
    pub fn load_state(&mut self, state: OptimizerState, device: &Device) -> Result<()> {
        if state.first.len() != state.second.len() {
            return Err(Error::mismatch(
                "optimizer buffers",
                state.first.len(),
                state.second.len(),
            ));
        }
        let dev = |v: Option<Vec<f32>>| {
            v.map(|v| {
                let n = v.len();
                Tensor::<1>::from_data(TensorData::new(v, [n]), device).without_autodiff()
            })
        };
        self.steps = state.steps;
        self.slots = state
            .first
            .into_iter()
            .zip(state.second)
            .map(|(f, s)| Slot {
                first: dev(f),
                second: dev(s),
            })
            .collect();
        Ok(())
    }
}

/// LARS's trust ratio `η‖w‖/‖g‖` as a one-element tensor, 1 where either norm is 0. Computed on
/// the device: reading the two norms back (as this did until 2026-12-03) was two host syncs per
/// weight tensor per step.
fn trust_ratio(w: &Tensor<1>, g: &Tensor<1>, eta: f64) -> Tensor<1> {
    let wn = w.clone().square().sum().sqrt();
    let gn = g.clone().square().sum().sqrt();
    let both = wn
        .clone()
        .greater_elem(0.0)
        .bool_and(gn.clone().greater_elem(0.0));
    // Where `gn` is 0 the quotient is inf or NaN; `mask_where` leaves the 1 there instead.
    let ratio = wn.mul_scalar(eta) / gn;
    Tensor::ones([1], &w.device()).mask_where(both, ratio)
}

struct Update<'a> {
    opt: &'a mut Optimizer,
    grads: GradientsParams,
    lr: f64,
    index: usize,
}

impl ModuleMapper for Update<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let index = self.index;
        self.index += 1;
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        if self.opt.slots.len() <= index {
            self.opt.slots.resize(index + 1, Slot::default());
        }
        let shape = tensor.shape();
        let n = shape.num_elements();
        let require_grad = tensor.is_require_grad();
        let w = tensor.without_autodiff().reshape([n]);
        let g = grad.without_autodiff().reshape([n]);
        let decay = D > 1;
        let lr = self.lr;
        let slot = &mut self.opt.slots[index];
        let updated = match self.opt.config {
            OptimizerConfig::Sgd {
                momentum,
                weight_decay,
            } => {
                let g = if decay && weight_decay > 0.0 {
                    g + w.clone().mul_scalar(weight_decay)
                } else {
                    g
                };
                let buf = match slot.first.take() {
                    Some(b) => b.mul_scalar(momentum) + g,
                    None => g,
                };
                slot.first = Some(buf.clone());
                w - buf.mul_scalar(lr)
            }
            OptimizerConfig::Lars {
                momentum,
                weight_decay,
                eta,
            } => {
                let mut g = g;
                if decay {
                    if weight_decay > 0.0 {
                        g = g + w.clone().mul_scalar(weight_decay);
                    }
                    let ratio = trust_ratio(&w, &g, eta);
                    g = g * ratio;
                }
                let buf = match slot.first.take() {
                    Some(b) => b.mul_scalar(momentum) + g,
                    None => g,
                };
                slot.first = Some(buf.clone());
                w - buf.mul_scalar(lr)
            }
            OptimizerConfig::AdamW {
                beta1,
                beta2,
                epsilon,
                weight_decay,
            } => {
                let t = self.opt.steps as i32;
                let m = match slot.first.take() {
                    Some(m) => m.mul_scalar(beta1) + g.clone().mul_scalar(1.0 - beta1),
                    None => g.clone().mul_scalar(1.0 - beta1),
                };
                let v = match slot.second.take() {
                    Some(v) => v.mul_scalar(beta2) + g.square().mul_scalar(1.0 - beta2),
                    None => g.square().mul_scalar(1.0 - beta2),
                };
                slot.first = Some(m.clone());
                slot.second = Some(v.clone());
                let m_hat = m.div_scalar(1.0 - beta1.powi(t));
                let v_hat = v.div_scalar(1.0 - beta2.powi(t));
                let w = if decay && weight_decay > 0.0 {
                    w.clone() - w.mul_scalar(lr * weight_decay)
                } else {
                    w
                };
                w - (m_hat / v_hat.sqrt().add_scalar(epsilon)).mul_scalar(lr)
            }
        };
        let mut out = updated.reshape(shape).autodiff();
        if require_grad {
            out = out.require_grad();
        }
        Param::from_mapped_value(id, out, mapper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;

    /// `x @ w + b` with a rank-2 weight (decayed, LARS-adapted) and a rank-1 bias (neither).
    #[derive(Module, Debug)]
    struct Affine {
        w: Param<Tensor<2>>,
        b: Param<Tensor<1>>,
    }

    const X: [[f32; 2]; 4] = [[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0], [0.1, -0.3]];
    const Y: [[f32; 3]; 4] = [
        [1.0, 0.0, -1.0],
        [0.5, 2.0, 0.0],
        [-1.0, 1.0, 0.5],
        [0.0, -0.5, 1.0],
    ];
    const LRS: [f64; 3] = [0.1, 0.05, 0.2];

    /// Three steps (learning rates [`LRS`]) on `loss = Σ (x·w + b − y)² / 4`, then `w`
    /// (row-major) followed by `b`.
    fn three_steps(config: OptimizerConfig) -> Vec<f32> {
        let device = Device::flex().autodiff();
        let mut model = Affine {
            w: Param::from_tensor(Tensor::from_floats(
                [[0.2, -0.4, 0.6], [0.8, 0.1, -0.3]],
                &device,
            )),
            b: Param::from_tensor(Tensor::from_floats([0.05, -0.1, 0.3], &device)),
        };
        let x = Tensor::<2>::from_floats(X, &device);
        let y = Tensor::<2>::from_floats(Y, &device);
        let mut opt = Optimizer::new(config);
        for lr in LRS {
            let b = model.b.val().unsqueeze::<2>().expand([4, 3]);
            let loss = (x.clone().matmul(model.w.val()) + b - y.clone())
                .square()
                .sum()
                .div_scalar(4.0);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = opt.step(model, grads, lr);
        }
        let host = |t: Tensor<1>| {
            t.into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .unwrap()
        };
        let mut out = host(model.w.val().reshape([6]));
        out.extend(host(model.b.val()));
        out
    }

    /// Relative tolerance 1e-6, measured against at least 0.1 (the scale of the parameters):
    /// entries near zero are differences of terms of that size, where float rounding in the
    /// last digits is not relative to the small result.
    fn assert_close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let tol = 1e-6 * w.abs().max(0.1);
            assert!(
                (g - w).abs() <= tol,
                "entry {i}: {g} vs {w} (torch)\n{got:?}"
            );
        }
    }

    // Expected values of the three tests below, from PyTorch 2 (float32):
    //
    // import numpy, torch
    // x = torch.tensor([[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0], [0.1, -0.3]])
    // y = torch.tensor([[1.0, 0.0, -1.0], [0.5, 2.0, 0.0], [-1.0, 1.0, 0.5], [0.0, -0.5, 1.0]])
    // def params():
    //     w = torch.tensor([[0.2, -0.4, 0.6], [0.8, 0.1, -0.3]], requires_grad=True)
    //     b = torch.tensor([0.05, -0.1, 0.3], requires_grad=True)
    //     return w, b
    // def grads(w, b):
    //     w.grad = b.grad = None
    //     (((x @ w + b - y) ** 2).sum() / 4).backward()
    // lrs = [0.1, 0.05, 0.2]
    // def run(make_opt):
    //     w, b = params()
    //     opt = make_opt(w, b)
    //     for lr in lrs:
    //         for g in opt.param_groups: g["lr"] = lr
    //         grads(w, b); opt.step()
    //     return w.detach().flatten().tolist() + b.detach().tolist()
    // # rank-1 parameters get no weight decay: their own group with weight_decay=0
    // sgd = run(lambda w, b: torch.optim.SGD([{"params": [w], "weight_decay": 0.1},
    //                                          {"params": [b], "weight_decay": 0.0}],
    //                                         lr=0.1, momentum=0.9))
    // adamw = run(lambda w, b: torch.optim.AdamW([{"params": [w], "weight_decay": 0.1},
    //                                             {"params": [b], "weight_decay": 0.0}],
    //                                            lr=0.1, betas=(0.9, 0.999), eps=1e-8))
    // # LARS as documented above (torch has none), in plain tensor ops.
    // w, b = params(); bufs = {}
    // for lr in lrs:
    //     grads(w, b)
    //     with torch.no_grad():
    //         for name, p in (("w", w), ("b", b)):
    //             g = p.grad.clone()
    //             if p.dim() > 1:
    //                 g = g + 0.1 * p
    //                 wn, gn = p.norm(), g.norm()
    //                 if wn > 0 and gn > 0:
    //                     g = g * (0.02 * wn / gn)
    //             bufs[name] = g if name not in bufs else 0.9 * bufs[name] + g
    //             p -= lr * bufs[name]
    // lars = w.detach().flatten().tolist() + b.detach().tolist()
    // for name, v in (("sgd", sgd), ("lars", lars), ("adamw", adamw)):
    //     print(name, [str(numpy.float32(t)) for t in v])

    #[test]
    fn sgd_with_momentum_and_weight_decay_matches_torch() {
        let got = three_steps(OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 0.1,
        });
        assert_close(
            &got,
            &[
                0.88118345,
                0.7884841,
                -0.44283876,
                -1.1177125,
                0.5932483,
                0.791828,
                -0.13172045,
                0.8357806,
                -0.06168024,
            ],
        );
    }

    #[test]
    fn lars_matches_its_documented_formula_in_torch() {
        let got = three_steps(OptimizerConfig::Lars {
            momentum: 0.9,
            weight_decay: 0.1,
            eta: 0.02,
        });
        assert_close(
            &got,
            &[
                0.20447157,
                -0.39386144,
                0.59395254,
                0.78841335,
                0.10240128,
                -0.29312608,
                -0.17499962,
                0.93148506,
                -0.07783909,
            ],
        );
    }

    #[test]
    fn adamw_matches_torch() {
        let got = three_steps(OptimizerConfig::AdamW {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.1,
        });
        assert_close(
            &got,
            &[
                0.53693783,
                -0.040904284,
                0.2370145,
                0.42810935,
                0.43372774,
                0.053503662,
                -0.2653975,
                0.24523087,
                -0.033600897,
            ],
        );
    }
}
