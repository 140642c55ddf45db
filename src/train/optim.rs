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

fn norm(t: &Tensor<1>) -> f64 {
    t.clone().square().sum().sqrt().into_scalar::<f32>() as f64
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
                    let (wn, gn) = (norm(&w), norm(&g));
                    if wn > 0.0 && gn > 0.0 {
                        g = g.mul_scalar(eta * wn / gn);
                    }
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
