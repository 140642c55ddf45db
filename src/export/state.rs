//! Safetensors files of the backbone (and projector) in torchvision's naming, through burn's
//! store, and the named state dict the ONNX writer reads.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Module;
use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use burn::tensor::{DType, Device};

use super::names::{backbone_prefixes, projector_prefixes, remapper};
use crate::ssl::{Mlp, MlpConfig, ResNet, ResNetConfig, TensorBlob};
use crate::{Error, Result};

/// Tensors by exported (torchvision) name, f32, PyTorch layouts.
pub(crate) type StateDict = BTreeMap<String, TensorBlob>;

/// Writes `module` to `path` with the names of `pairs` (burn prefix → exported prefix) and
/// PyTorch conventions (`weight`/`bias` of batch norms, `[out, in]` linear weights); `metadata`
/// goes into the safetensors header. burn's store writes a scratch file and renames it.
pub(crate) fn save<M: Module>(
    module: &M,
    pairs: &[(String, String)],
    metadata: &BTreeMap<String, String>,
    path: &Path,
) -> Result<()> {
    let mut store = SafetensorsStore::from_file(path)
        .with_to_adapter(BurnToPyTorchAdapter)
        .remap(remapper(pairs, true)?)
        .overwrite(true);
    for (k, v) in metadata {
        store = store.metadata(k.clone(), v.clone());
    }
    module
        .save_into(&mut store)
        .map_err(|e| Error::format(path, format!("writing safetensors: {e}")))
}

/// Loads the file written by [`save`] into `module`: every tensor of the module must be in the
/// file with its shape, and the file may hold nothing else.
fn load<M: Module>(mut module: M, pairs: &[(String, String)], path: &Path) -> Result<M> {
    if !path.is_file() {
        return Err(Error::format(path, "weights file does not exist"));
    }
    let mut store = SafetensorsStore::from_file(path)
        .with_from_adapter(PyTorchToBurnAdapter)
        .remap(remapper(pairs, false)?);
    let result = module
        .load_from(&mut store)
        .map_err(|e| Error::format(path, format!("reading safetensors: {e}")))?;
    if !result.errors.is_empty() || !result.missing.is_empty() || !result.unused.is_empty() {
        return Err(Error::format(
            path,
            format!(
                "does not match the architecture in the manifest: missing {:?}, unexpected {:?}, \
                 errors {:?}",
                result.missing, result.unused, result.errors
            ),
        ));
    }
    Ok(module)
}

/// Writes the backbone's weights (torchvision names) to `path`.
pub(crate) fn save_backbone(
    backbone: &ResNet,
    config: &ResNetConfig,
    metadata: &BTreeMap<String, String>,
    path: &Path,
) -> Result<()> {
    save(backbone, &backbone_prefixes(config), metadata, path)
}

/// A backbone with `config` on `device`, weights from `path` (written by [`save_backbone`]).
pub(crate) fn load_backbone(config: &ResNetConfig, path: &Path, device: &Device) -> Result<ResNet> {
    load(config.init(device)?, &backbone_prefixes(config), path)
}

/// Writes the projector's weights (`projector.layers.<j>.{linear,bn}.*`) to `path`.
pub(crate) fn save_projector(
    projector: &Mlp,
    config: &MlpConfig,
    metadata: &BTreeMap<String, String>,
    path: &Path,
) -> Result<()> {
    save(
        projector,
        &projector_prefixes(config.dims.len() - 1),
        metadata,
        path,
    )
}

/// A projector with `config` on `device`, weights from `path` (written by [`save_projector`]).
pub(crate) fn load_projector(config: &MlpConfig, path: &Path, device: &Device) -> Result<Mlp> {
    let layers = config.dims.len().saturating_sub(1);
    load(config.init(device)?, &projector_prefixes(layers), path)
}

/// The tensors [`save`] would write, by exported name, as f32 arrays.
pub(crate) fn state_dict<M: Module>(module: &M, pairs: &[(String, String)]) -> Result<StateDict> {
    let tensors = module.collect(None, Some(Box::new(BurnToPyTorchAdapter)), false);
    let (tensors, _) = remapper(pairs, true)?.remap(tensors);
    let mut out = StateDict::new();
    for t in tensors {
        let name = t.name.clone();
        if t.dtype != DType::F32 {
            return Err(Error::invalid(
                "module tensor",
                format!("{name}: expected f32, found {:?}", t.dtype),
            ));
        }
        let shape = t.shape.to_vec();
        let bytes = t
            .to_bytes()
            .map_err(|e| Error::invalid("module tensor", format!("{name}: {e}")))?;
        let values = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.insert(name, TensorBlob { shape, values });
    }
    Ok(out)
}
