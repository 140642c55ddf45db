//! MLP heads: projectors and predictors (`Linear → BatchNorm → ReLU` blocks).

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, Relu};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Shape of an MLP head. Serialisable so it is saved with every run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Layer widths including the input: `[in, hidden.., out]` (at least two entries).
    pub dims: Vec<usize>,
    /// Batch-normalise the last layer's output too (SimCLR v2, MoCo v3, NNCLR projectors).
    pub last_norm: bool,
}

impl MlpConfig {
    /// A head `in → hidden (×(layers-1)) → out`, each hidden layer `Linear → BN → ReLU`.
    pub fn new(input: usize, hidden: usize, output: usize, layers: usize) -> Self {
        let mut dims = vec![input];
        dims.extend(std::iter::repeat_n(hidden, layers.saturating_sub(1)));
        dims.push(output);
        Self {
            dims,
            last_norm: false,
        }
    }

    /// Sets whether the last layer is batch-normalised.
    pub fn with_last_norm(mut self, last_norm: bool) -> Self {
        self.last_norm = last_norm;
        self
    }

    /// Output dimension.
    pub fn output_dim(&self) -> usize {
        self.dims.last().copied().unwrap_or(0)
    }

    /// Builds the head on `device`.
    pub fn init(&self, device: &Device) -> Result<Mlp> {
        if self.dims.len() < 2 || self.dims.contains(&0) {
            return Err(Error::invalid(
                "head.dims",
                format!(
                    "need at least [in, out] with positive widths, got {:?}",
                    self.dims
                ),
            ));
        }
        let n = self.dims.len() - 1;
        let linears = (0..n)
            .map(|i| {
                // A bias before batch norm is redundant.
                let normed = i + 1 < n || self.last_norm;
                LinearConfig::new(self.dims[i], self.dims[i + 1])
                    .with_bias(!normed)
                    .init(device)
            })
            .collect();
        let norm_count = if self.last_norm { n } else { n - 1 };
        let norms = (0..norm_count)
            .map(|i| BatchNormConfig::new(self.dims[i + 1]).init(device))
            .collect();
        Ok(Mlp {
            linears,
            norms,
            relu: Relu::new(),
        })
    }
}

/// An MLP head: `[batch, in]` → `[batch, out]`.
#[derive(Module, Debug)]
pub struct Mlp {
    linears: Vec<Linear>,
    norms: Vec<BatchNorm>,
    relu: Relu,
}

impl Mlp {
    /// `[batch, in]` → `[batch, out]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let n = self.linears.len();
        let mut h = x;
        for (i, linear) in self.linears.iter().enumerate() {
            h = linear.forward(h);
            if let Some(norm) = self.norms.get(i) {
                h = norm.forward(h);
            }
            if i + 1 < n {
                h = self.relu.forward(h);
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_maps_input_to_output_width() {
        let device = Device::flex();
        let mlp = MlpConfig::new(8, 16, 4, 3)
            .with_last_norm(true)
            .init(&device)
            .unwrap();
        let y = mlp.forward(Tensor::<2>::ones([5, 8], &device));
        assert_eq!(y.dims(), [5, 4]);
    }

    #[test]
    fn single_entry_dims_are_rejected() {
        let cfg = MlpConfig {
            dims: vec![8],
            last_norm: false,
        };
        assert!(cfg.init(&Device::flex()).is_err());
    }
}
