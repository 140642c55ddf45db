//! Exponential moving average of a network (BYOL / MoCo v3 target) and its momentum schedule.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// BYOL's cosine momentum schedule: `m(k) = 1 − (1 − m₀)·(cos(π·k/K) + 1)/2`, rising from
/// `base` at step 0 to 1 at step `total`.
pub fn cosine_momentum(base: f64, step: u64, total: u64) -> f64 {
    if total == 0 {
        return base;
    }
    let t = (step.min(total) as f64) / total as f64;
    1.0 - (1.0 - base) * ((std::f64::consts::PI * t).cos() + 1.0) / 2.0
}

/// Collects every float tensor of a module (parameters and running statistics), flattened,
/// without autodiff, in visiting order.
struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val().without_autodiff();
        let n = t.shape().num_elements();
        self.0.push(t.reshape([n]));
    }
}

/// Replaces every float tensor `t` of the target by `m·t + (1 − m)·s` with `s` the source's
/// tensor at the same position.
struct Blend {
    source: std::vec::IntoIter<Tensor<1>>,
    momentum: f32,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, target, mapper) = param.consume();
        let Some(source) = self.source.next() else {
            return Param::from_mapped_value(id, target, mapper);
        };
        let shape = target.shape();
        let device = target.device();
        let t = target.without_autodiff();
        let s = source.reshape(shape);
        let blended = t.mul_scalar(self.momentum) + s.mul_scalar(1.0 - self.momentum);
        let blended = if device.is_autodiff() {
            blended.autodiff()
        } else {
            blended
        };
        Param::from_mapped_value(id, blended, mapper)
    }
}

/// `target ← m·target + (1 − m)·online`, tensor by tensor (parameters and batch-norm running
/// statistics). Both modules must have the same architecture.
///
/// # Panics
/// Never for same-architecture modules; a shape mismatch (programmer error) panics in reshape.
pub fn ema_update<M: Module>(target: M, online: &M, momentum: f64) -> M {
    let mut collect = Collect(Vec::new());
    online.visit(&mut collect);
    target.map(&mut Blend {
        source: collect.0.into_iter(),
        momentum: momentum as f32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn momentum_schedule_goes_from_base_to_one() {
        assert!((cosine_momentum(0.99, 0, 100) - 0.99).abs() < 1e-12);
        assert!((cosine_momentum(0.99, 50, 100) - 0.995).abs() < 1e-12);
        assert!((cosine_momentum(0.99, 100, 100) - 1.0).abs() < 1e-12);
    }
}
