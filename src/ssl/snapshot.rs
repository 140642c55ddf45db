//! Exact snapshots of a module's float tensors (parameters and running statistics), for
//! checkpoints: values round-trip bit for bit.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One tensor's shape and values (row-major f32).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorBlob {
    /// Shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: Vec<f32>,
}

struct Export(Vec<TensorBlob>);

impl ModuleVisitor for Export {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        let shape = t.dims().to_vec();
        let values = t
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap_or_default();
        self.0.push(TensorBlob { shape, values });
    }
}

/// Every float tensor of `module` in visiting order, running statistics (batch norm) included
/// with their latest values.
pub fn export_tensors<M: Module>(module: &M) -> Vec<TensorBlob> {
    // burn's `RunningState` keeps its last update per thread until it is synchronised, and a
    // visit reads the synchronised value ("might be outdated by one update"): a snapshot taken
    // right after training would miss the last batch's running-statistics update, which the
    // evaluation (`valid()` synchronises) does see. `valid()` synchronises the shared state in
    // place, so sync first; the returned copy is not needed.
    let _ = module.valid();
    let mut e = Export(Vec::new());
    module.visit(&mut e);
    e.0
}

struct Import {
    blobs: std::vec::IntoIter<TensorBlob>,
    index: usize,
    error: Option<Error>,
}

impl ModuleMapper for Import {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, old, mapper) = param.consume();
        let index = self.index;
        self.index += 1;
        let Some(blob) = self.blobs.next() else {
            self.error
                .get_or_insert(Error::mismatch("snapshot tensor count", "more", index));
            return Param::from_mapped_value(id, old, mapper);
        };
        if blob.shape != old.dims().to_vec() || blob.values.len() != old.shape().num_elements() {
            self.error.get_or_insert(Error::mismatch(
                format!("snapshot tensor {index} shape"),
                format!("{:?}", old.dims()),
                format!("{:?}", blob.shape),
            ));
            return Param::from_mapped_value(id, old, mapper);
        }
        let device = old.device();
        let require_grad = old.is_require_grad();
        let mut t = Tensor::<D>::from_data(TensorData::new(blob.values, blob.shape), &device);
        if require_grad {
            t = t.require_grad();
        }
        Param::from_mapped_value(id, t, mapper)
    }
}

/// Loads `blobs` (from [`export_tensors`] of a same-architecture module) into `module`.
pub fn import_tensors<M: Module>(module: M, blobs: Vec<TensorBlob>) -> Result<M> {
    let expected = blobs.len();
    let mut import = Import {
        blobs: blobs.into_iter(),
        index: 0,
        error: None,
    };
    let module = module.map(&mut import);
    if let Some(e) = import.error {
        return Err(e);
    }
    if import.index != expected {
        return Err(Error::mismatch(
            "snapshot tensor count",
            import.index,
            expected,
        ));
    }
    Ok(module)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::BatchNormConfig;
    use burn::tensor::Device;

    /// Running mean after batches of constant 1 then constant 3, momentum 0.1, from 0:
    /// 0.9 · (0.9 · 0 + 0.1 · 1) + 0.1 · 3 = 0.39 (PyTorch: `bn(ones)`, `bn(3 * ones)` in train
    /// mode gives `bn.running_mean == 0.39`).
    #[test]
    fn snapshots_hold_the_latest_running_statistics() {
        let device = Device::flex().autodiff();
        let bn = BatchNormConfig::new(2).init(&device);
        for v in [1.0, 3.0] {
            let _ = bn.forward(Tensor::<4>::full([2, 2, 3, 3], v, &device));
        }
        let blobs = export_tensors(&bn);
        let mean = blobs
            .iter()
            .find(|b| b.values.iter().all(|&m| (m - 0.39).abs() < 1e-6));
        assert!(mean.is_some(), "{blobs:?}");
    }
}
