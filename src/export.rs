//! The trained encoder as a product: export it (safetensors + ONNX + prior manifest), load it
//! back, and encode datasets with it.
//!
//! [`export_encoder`] writes, into one folder:
//!
//! ```text
//! encoder.toml           EncoderManifest: architecture, input size, normalisation, provenance
//! encoder.safetensors    backbone weights under torchvision's ResNet key names
//! projector.safetensors  the projector (with ExportOptions::projector)
//! encoder.onnx           ONNX opset 17, BatchNorm folded, symbolic batch / height / width
//! prior.toml             a PriorManifest for the ONNX graph: `gps-ssl embed --prior prior.toml`
//! ```
//!
//! **PyTorch.** `encoder.safetensors` loads with one `load_state_dict` call into torchvision's
//! `resnet18` / `resnet50` with `fc = nn.Identity()` when the architecture matches:
//! the `resnet18` / `resnet50` presets with [`Stem::ImageNet`](crate::ssl::Stem) are exactly
//! torchvision's; with the small-image stem (the presets `gps-ssl train --backbone` names)
//! replace `conv1` by `nn.Conv2d(C, 64, 3, 1, 1, bias=False)` and `maxpool` by
//! `nn.Identity()`, the usual CIFAR adaptation. The `small` preset has narrower stages than any
//! torchvision model, but the same key names. BatchNorm's `num_batches_tracked` is not stored
//! (PyTorch fills it in when loading a plain dict).
//!
//! **ONNX.** The graph is written directly from the trained weights by a small protobuf
//! writer in this crate (no Python, no extra dependency): `gps-ssl export` runs anywhere the
//! trainer runs. Its input is `[batch, 3, H, W]`, normalised as in training (the prior
//! manifest says how: `pixel_scale = 1/255` and the training mean/std), so the exported
//! encoder is directly the next round's prior.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use gps_ssl::export::{export_encoder, load_encoder, ExportOptions, TrainedEncoder};
//!
//! let device = Device::flex();
//! let trained = TrainedEncoder::from_run("runs/gps-simclr".as_ref(), &device)?;
//! export_encoder(&trained, "encoders/gps-simclr".as_ref(), &ExportOptions::default())?;
//! let backbone = load_encoder("encoders/gps-simclr", &device)?; // a gps_ssl::ssl::ResNet
//! # let _ = backbone;
//! # Ok::<(), gps_ssl::Error>(())
//! ```

mod features;
mod manifest;
mod names;
mod onnx;
mod proto;
mod state;
mod trained;

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::Device;
use sha2::{Digest, Sha256};

pub use features::{
    FeaturesSummary, META_ENCODER_RUN_DIR, META_ENCODER_RUN_HASH, META_ENCODER_STEP,
};
pub use manifest::{EncoderManifest, RunProvenance, ENCODER_FORMAT};
pub use onnx::{ONNX_FEATURES, ONNX_INPUT, ONNX_OPSET, ONNX_PROJECTION};
pub use trained::TrainedEncoder;

use crate::dataset::hex;
use crate::ssl::{export_tensors, ResNet};
use crate::{embed::PriorManifest, Error, Result};

/// File name of the encoder manifest in an export folder.
pub const ENCODER_MANIFEST: &str = "encoder.toml";
/// File name of the backbone weights in an export folder.
pub const WEIGHTS_FILE: &str = "encoder.safetensors";
/// File name of the projector weights in an export folder.
pub const PROJECTOR_FILE: &str = "projector.safetensors";
/// File name of the ONNX graph in an export folder.
pub const ONNX_FILE: &str = "encoder.onnx";
/// File name of the ONNX graph's prior manifest in an export folder.
pub const PRIOR_FILE: &str = "prior.toml";

/// What [`export_encoder`] writes besides the backbone's safetensors and manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// Also export the projector (safetensors, and a `projection` output of the ONNX graph).
    /// Defaults to `false`.
    pub projector: bool,
    /// Write the ONNX graph and its prior manifest. Defaults to `true`.
    pub onnx: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            projector: false,
            onnx: true,
        }
    }
}

/// SHA-256 of a backbone's float tensors in module order (for each: its shape as u64 LE, then
/// its f32 LE values): the identity of the weights, whichever file they were read from.
pub fn tensors_sha256(backbone: &ResNet) -> String {
    let mut h = Sha256::new();
    for blob in export_tensors(backbone) {
        h.update((blob.shape.len() as u64).to_le_bytes());
        for &d in &blob.shape {
            h.update((d as u64).to_le_bytes());
        }
        for v in &blob.values {
            h.update(v.to_le_bytes());
        }
    }
    hex(&h.finalize())
}

/// Writes `bytes` to `path` through `path.tmp` and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = crate::store::embeddings::tmp_path(path);
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Exports `encoder` into the folder `out` (created if needed; files already there are
/// replaced): see the [module docs](self) for the files. Returns the manifest written to
/// `out/encoder.toml` (file names relative to it).
///
/// # Errors
/// I/O errors naming the file; [`Error::InvalidInput`] when ONNX export is asked for an
/// encoder with other than 1 or 3 input channels or non-square training views (the prior
/// manifest describes square inputs).
pub fn export_encoder(
    encoder: &TrainedEncoder,
    out: &Path,
    options: &ExportOptions,
) -> Result<EncoderManifest> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let config = &encoder.config;
    let mut meta = BTreeMap::new();
    meta.insert("gps.encoder.name".to_string(), encoder.name.clone());
    meta.insert(META_ENCODER_RUN_HASH.to_string(), encoder.run.hash.clone());
    meta.insert(
        "gps.encoder.backbone".to_string(),
        serde_json::to_string(config).unwrap_or_default(),
    );
    let weights = out.join(WEIGHTS_FILE);
    state::save_backbone(&encoder.backbone, config, &meta, &weights)?;
    let projector = match (&encoder.projector, options.projector) {
        (Some((mlp, mlp_config)), true) => {
            state::save_projector(mlp, mlp_config, &meta, &out.join(PROJECTOR_FILE))?;
            Some(mlp_config.clone())
        }
        (None, true) => {
            return Err(Error::invalid(
                "export --projector",
                format!(
                    "the encoder `{}` was loaded without a projector",
                    encoder.name
                ),
            ))
        }
        (_, false) => None,
    };
    let norm = &encoder.recipe.normalize;
    let mut manifest = EncoderManifest {
        format: ENCODER_FORMAT.to_string(),
        name: encoder.name.clone(),
        weights: WEIGHTS_FILE.into(),
        weights_sha256: crate::dataset::sha256_hex_file(&weights)?,
        tensors_sha256: tensors_sha256(&encoder.backbone),
        feature_dim: encoder.backbone.feature_dim(),
        input_size: encoder.input_size,
        to_rgb: encoder.recipe.to_rgb,
        mean: norm.mean.clone(),
        std: norm.std.clone(),
        projector: projector.as_ref().map(|_| PROJECTOR_FILE.into()),
        projector_config: projector.clone(),
        onnx: None,
        prior: None,
        backbone: config.clone(),
        run: encoder.run.clone(),
    };
    if options.onnx {
        write_onnx(encoder, &mut manifest, out)?;
    }
    manifest.save(&out.join(ENCODER_MANIFEST))?;
    Ok(manifest)
}

/// Writes `encoder.onnx` and `prior.toml` and names them in `manifest`.
fn write_onnx(encoder: &TrainedEncoder, manifest: &mut EncoderManifest, out: &Path) -> Result<()> {
    let [h, w] = encoder.input_size;
    if h != w {
        return Err(Error::invalid(
            "encoder for ONNX export",
            format!("training views are {h}x{w}; a prior manifest describes square inputs"),
        ));
    }
    let config = &encoder.config;
    let backbone_state = state::state_dict(&encoder.backbone, &names::backbone_prefixes(config))?;
    let projector_state = match (&manifest.projector_config, &encoder.projector) {
        (Some(c), Some((mlp, _))) => Some((
            c,
            state::state_dict(mlp, &names::projector_prefixes(c.dims.len() - 1))?,
        )),
        _ => None,
    };
    let metadata = vec![
        ("gps.encoder.name".to_string(), encoder.name.clone()),
        (META_ENCODER_RUN_HASH.to_string(), encoder.run.hash.clone()),
        (
            "gps.encoder.tensors_sha256".to_string(),
            manifest.tensors_sha256.clone(),
        ),
    ];
    let bytes = onnx::encoder_model(
        config,
        &backbone_state,
        projector_state.as_ref().map(|(c, s)| (*c, s)),
        &metadata,
    )?;
    let onnx_path = out.join(ONNX_FILE);
    write_atomic(&onnx_path, &bytes)?;

    // A 1-channel encoder sees three equal planes (grey replicated): the same mean/std on each.
    let stats = manifest.channel_stats();
    let pick = |f: fn(&(f32, f32)) -> f32| -> [f32; 3] {
        std::array::from_fn(|c| f(&stats[c.min(stats.len() - 1)]))
    };
    let (mean, std) = (pick(|s| s.0), pick(|s| s.1));
    let prior = PriorManifest {
        name: format!("encoder-{}", encoder.name),
        onnx: ONNX_FILE.into(),
        sha256: crate::dataset::sha256_hex_file(&onnx_path)?,
        input_name: ONNX_INPUT.into(),
        output_name: ONNX_FEATURES.into(),
        dim: encoder.backbone.feature_dim(),
        input_size: h,
        channels: "RGB".into(),
        layout: "NCHW".into(),
        pixel_scale: 1.0 / 255.0,
        mean,
        std,
        resize: "bilinear".into(),
        source: format!(
            "gps-ssl export of run {} ({}, step {})",
            encoder.run.hash,
            encoder.run.dir.display(),
            encoder.run.step
        ),
        license: "as the training data".into(),
        preprocess: Some(format!(
            "RGB (grey repeated), bilinear resize to {h}x{h}, (p / 255 - mean) / std, NCHW"
        )),
        logits_name: None,
    };
    let text = toml::to_string_pretty(&prior).map_err(|e| Error::Serde {
        path: out.join(PRIOR_FILE),
        detail: e.to_string(),
    })?;
    let header = format!(
        "# Prior manifest (format: models/README.md) of an encoder exported by `gps-ssl export`.\n\
         # Use: gps-ssl embed --prior {PRIOR_FILE} --data <dataset> --out <embeddings.parquet>\n"
    );
    write_atomic(&out.join(PRIOR_FILE), format!("{header}{text}").as_bytes())?;
    manifest.onnx = Some(ONNX_FILE.into());
    manifest.prior = Some(PRIOR_FILE.into());
    Ok(())
}

/// The backbone exported to `path` (an `encoder.toml` or the export folder) on `device`,
/// weights checked against the manifest's SHA-256. The manifest itself:
/// [`EncoderManifest::load`]; with projector and input recipe: [`TrainedEncoder::from_manifest`].
pub fn load_encoder(path: impl AsRef<Path>, device: &Device) -> Result<ResNet> {
    let manifest = EncoderManifest::load(path)?;
    trained::load_backbone(&manifest, device)
}
