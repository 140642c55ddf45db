//! `encoder.toml`: what an exported encoder is and how to feed it.
//!
//! ```toml
//! format = "gps-ssl-encoder/1"
//! name = "simclr-rhflip-3f2a…"          # method-aug-<first 12 hex digits of the run hash>
//! weights = "encoder.safetensors"        # relative to this file; torchvision key names
//! weights_sha256 = "…"                   # SHA-256 of the weights file
//! tensors_sha256 = "…"                   # SHA-256 of the backbone's tensors (see below)
//! feature_dim = 128
//! input_size = [28, 28]                  # [height, width] the encoder was trained at
//! to_rgb = false                         # grey images replicated to 3 channels before the net
//! mean = [0.449]                         # x = (pixel / 255 - mean[c]) / std[c]
//! std = [0.226]
//! projector = "projector.safetensors"    # optional (`export --projector`)
//! onnx = "encoder.onnx"                  # optional: the ONNX graph and its prior manifest
//! prior = "prior.toml"
//!
//! [backbone]                             # crate::ssl::ResNetConfig
//! in_channels = 1
//! block = "basic"
//! layers = [1, 1, 1, 1]
//! widths = [16, 32, 64, 128]
//! stem = "small"
//!
//! [run]                                  # provenance
//! hash = "…"                             # TrainConfig::run_hash of the run
//! dir = "runs/…"
//! method = "simclr"
//! step = 78
//! epoch = 2
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::file_kind::{toml_error, FileKind};
use crate::ssl::{MlpConfig, ResNetConfig};
use crate::{
    augment::{AugRecipe, Normalize},
    Error, Result,
};

/// Value of [`EncoderManifest::format`] this version writes and reads.
pub const ENCODER_FORMAT: &str = crate::file_kind::ENCODER_FORMAT;

/// The run an exported encoder comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunProvenance {
    /// [`TrainConfig::run_hash`](crate::train::TrainConfig::run_hash) of the run (lowercase hex).
    pub hash: String,
    /// The run folder, as given to `export`.
    pub dir: PathBuf,
    /// SSL method (`simclr`, `byol`, …).
    pub method: String,
    /// Optimiser steps the checkpoint had taken.
    pub step: u64,
    /// Epoch the checkpoint was in (0-based; equals the run's epochs once finished).
    pub epoch: usize,
}

/// `encoder.toml`: architecture, input preparation, files and provenance of an exported
/// encoder (see the module docs for an example).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderManifest {
    /// Always [`ENCODER_FORMAT`].
    pub format: String,
    /// Short name: `<method>-<aug>-<first 12 hex digits of the run hash>`.
    pub name: String,
    /// The backbone's safetensors file (torchvision key names), relative to the manifest.
    pub weights: PathBuf,
    /// SHA-256 of the weights file.
    pub weights_sha256: String,
    /// SHA-256 of the backbone's tensors in module order (shape and f32 values; see
    /// [`tensors_sha256`](super::tensors_sha256)): the same for every copy of these weights,
    /// whatever file they are read from.
    pub tensors_sha256: String,
    /// Dimension of the pooled features.
    pub feature_dim: usize,
    /// `[height, width]` of the training views.
    pub input_size: [u32; 2],
    /// Whether grey images were replicated to 3 channels before the network.
    pub to_rgb: bool,
    /// Per-channel mean of the training normalisation, on the `[0, 1]` pixel scale.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation of the training normalisation, on the `[0, 1]` scale.
    pub std: Vec<f32>,
    /// The projector's safetensors file, when exported.
    #[serde(default)]
    pub projector: Option<PathBuf>,
    /// The projector's architecture, when exported.
    #[serde(default)]
    pub projector_config: Option<MlpConfig>,
    /// The ONNX graph, when exported.
    #[serde(default)]
    pub onnx: Option<PathBuf>,
    /// The ONNX graph's prior manifest (for `gps-ssl embed --prior`), when exported.
    #[serde(default)]
    pub prior: Option<PathBuf>,
    /// The backbone architecture.
    pub backbone: ResNetConfig,
    /// Where the weights come from.
    pub run: RunProvenance,
}

impl EncoderManifest {
    /// Reads `path` (an `encoder.toml`, or a folder holding one) and resolves its file names
    /// relative to it.
    ///
    /// # Errors
    /// [`Error::Io`] / [`Error::Serde`] for an unreadable or invalid file, [`Error::Format`]
    /// naming the field for an unknown format or inconsistent values.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let path = if path.is_dir() {
            path.join(super::ENCODER_MANIFEST)
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let mut m: EncoderManifest = toml::from_str(&text).map_err(|e| {
            toml_error(&path, &text, &e, FileKind::EncoderManifest, |found| {
                (found == FileKind::PriorManifest).then(|| {
                    "an encoder is loaded from the encoder.toml written by `gps-ssl export` (or \
                     from its folder); a prior manifest is for `gps-ssl embed --prior`"
                        .to_string()
                })
            })
        })?;
        m.validate(&path)?;
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        resolve(&mut m.weights);
        for p in [&mut m.projector, &mut m.onnx, &mut m.prior]
            .into_iter()
            .flatten()
        {
            resolve(p);
        }
        Ok(m)
    }

    /// Writes the manifest to `path` (through a temporary file and a rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = toml::to_string_pretty(self).map_err(|e| Error::Serde {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        let header = "# gps-ssl exported encoder (`gps-ssl export`); load with \
                      gps_ssl::export::load_encoder\n";
        super::write_atomic(path, format!("{header}{text}").as_bytes())
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let bad = |detail: String| Err(Error::format(path, detail));
        if self.format != ENCODER_FORMAT {
            return bad(format!(
                "field `format`: expected {ENCODER_FORMAT:?}, found {:?}",
                self.format
            ));
        }
        if let Err(e) = self.backbone.validate() {
            return bad(format!("table `backbone`: {e}"));
        }
        if self.backbone.feature_dim() != self.feature_dim {
            return bad(format!(
                "field `feature_dim`: the backbone gives {}, the manifest says {}",
                self.backbone.feature_dim(),
                self.feature_dim
            ));
        }
        if self.input_size.contains(&0) {
            return bad(format!(
                "field `input_size`: expected positive [height, width], found {:?}",
                self.input_size
            ));
        }
        // As `Normalize`: one value per channel, or one value for all channels, or (for a grey
        // encoder) values whose mean is used.
        for (field, values) in [("mean", &self.mean), ("std", &self.std)] {
            if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
                return bad(format!(
                    "field `{field}`: expected finite per-channel values, found {values:?}"
                ));
            }
        }
        if self.std.iter().any(|s| *s <= 0.0) {
            return bad(format!(
                "field `std`: expected positive values, found {:?}",
                self.std
            ));
        }
        if self.projector.is_some() != self.projector_config.is_some() {
            return bad("fields `projector` and `projector_config` come together".into());
        }
        Ok(())
    }

    /// The augmentation recipe whose un-augmented views are this encoder's inputs: output size
    /// [`input_size`](Self::input_size), [`to_rgb`](Self::to_rgb), the training
    /// normalisation (the random parts are those of [`AugRecipe::rhflip`]; encoding drops them).
    pub fn recipe(&self) -> AugRecipe {
        let [h, w] = self.input_size;
        let mut recipe = AugRecipe::rhflip()
            .with_output_size(h, w)
            .with_rgb(self.to_rgb)
            .with_normalize(Normalize {
                mean: self.mean.clone(),
                std: self.std.clone(),
            });
        recipe.name = self.name.clone();
        recipe
    }

    /// `(mean, std)` of each of the network's input channels.
    pub(crate) fn channel_stats(&self) -> Vec<(f32, f32)> {
        let n = Normalize {
            mean: self.mean.clone(),
            std: self.std.clone(),
        };
        let c = self.backbone.in_channels;
        (0..c).map(|i| n.channel(i, c)).collect()
    }
}
