//! Learning-rate schedule: linear warm-up then cosine decay.

use serde::{Deserialize, Serialize};

/// Linear warm-up from 0 to `base_lr` over `warmup_steps`, then cosine decay to
/// `base_lr · final_ratio` at `total_steps`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    /// Peak learning rate.
    pub base_lr: f64,
    /// Warm-up length in steps.
    pub warmup_steps: u64,
    /// Schedule length in steps.
    pub total_steps: u64,
    /// Final learning rate as a fraction of `base_lr`.
    pub final_ratio: f64,
}

impl LrSchedule {
    /// Learning rate for (0-based) `step`.
    pub fn lr(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.base_lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let t = ((step - self.warmup_steps) as f64 / span as f64).min(1.0);
        let min = self.base_lr * self.final_ratio;
        min + (self.base_lr - min) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        let s = LrSchedule {
            base_lr: 1.0,
            warmup_steps: 4,
            total_steps: 14,
            final_ratio: 0.0,
        };
        assert!((s.lr(0) - 0.25).abs() < 1e-12);
        assert!((s.lr(3) - 1.0).abs() < 1e-12);
        assert!((s.lr(4) - 1.0).abs() < 1e-12);
        assert!((s.lr(9) - 0.5).abs() < 1e-12);
        assert!(s.lr(14).abs() < 1e-12);
        assert!(s.lr(20).abs() < 1e-12);
    }
}
