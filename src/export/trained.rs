//! A trained encoder in memory: backbone (+ projector), its input recipe and where it came from.

use std::path::Path;

use burn::tensor::Device;

use super::manifest::{EncoderManifest, RunProvenance};
use super::state;
use crate::ssl::{import_tensors, Mlp, MlpConfig, ResNet, ResNetConfig};
use crate::train::{Checkpoint, CHECKPOINT_FILE, CONFIG_FILE};
use crate::{augment::AugRecipe, train::TrainConfig, Error, Result};

/// Hex digits of the run hash in an encoder's name.
const NAME_HASH_LEN: usize = 12;

/// A trained backbone with everything needed to feed it and to say where it came from.
///
/// Built from a training run folder ([`from_run`](Self::from_run): `config.json` +
/// `checkpoint.bin`) or from an exported encoder ([`from_manifest`](Self::from_manifest));
/// both give the same features for the same weights.
#[derive(Debug)]
pub struct TrainedEncoder {
    /// The backbone, `[batch, C, H, W]` → `[batch, feature_dim]`.
    pub backbone: ResNet,
    /// Its architecture.
    pub config: ResNetConfig,
    /// The projector and its architecture, when loaded.
    pub projector: Option<(Mlp, MlpConfig)>,
    /// The recipe whose un-augmented views are the backbone's inputs (size, channels,
    /// normalisation of training).
    pub recipe: AugRecipe,
    /// `[height, width]` of those views.
    pub input_size: [u32; 2],
    /// `<method>-<aug>-<first 12 hex digits of the run hash>`.
    pub name: String,
    /// The run the weights come from.
    pub run: RunProvenance,
}

impl TrainedEncoder {
    /// The online backbone and projector of the run in `dir` (its `config.json` and the latest
    /// `checkpoint.bin`), on `device` (a plain, non-autodiff device is enough).
    ///
    /// # Errors
    /// When either file is missing or unreadable, when `config.json` has no typed data
    /// configuration (written by an older gps-ssl or a library caller: the input normalisation
    /// is unknown), or when the checkpoint does not fit the configured network.
    pub fn from_run(dir: &Path, device: &Device) -> Result<Self> {
        let config_path = dir.join(CONFIG_FILE);
        let config = TrainConfig::load(&config_path)?;
        let data = config.data.clone().ok_or_else(|| {
            Error::format(
                &config_path,
                "field `data`: no typed data configuration (written by an older gps-ssl or a \
                 library caller), so the input size and normalisation are unknown",
            )
        })?;
        let checkpoint_path = dir.join(CHECKPOINT_FILE);
        let checkpoint = Checkpoint::load(&checkpoint_path)?;
        let network = config.network.init(device)?;
        let network = import_tensors(network, checkpoint.method.online).map_err(|e| {
            Error::format(
                &checkpoint_path,
                format!("does not fit the network of {}: {e}", config_path.display()),
            )
        })?;
        let hash = config.run_hash()?;
        let short = hash.get(..NAME_HASH_LEN).unwrap_or(&hash);
        let method = config.method.kind().name().to_string();
        let [_, h, w] = data.view_shape;
        Ok(Self {
            backbone: network.backbone,
            config: config.network.backbone.clone(),
            projector: Some((network.projector, config.network.projector.clone())),
            recipe: data.recipe.clone(),
            input_size: [h as u32, w as u32],
            name: format!("{method}-{}-{short}", data.pairs.aug),
            run: RunProvenance {
                hash,
                dir: dir.to_path_buf(),
                method,
                step: checkpoint.position.step,
                epoch: checkpoint.position.epoch,
            },
        })
    }

    /// The encoder exported to `path` (an `encoder.toml` or its folder), with its projector
    /// when one was exported, on `device`.
    ///
    /// # Errors
    /// As [`EncoderManifest::load`]; when a weights file is missing, does not match the
    /// manifest's architecture, or its SHA-256 differs from the manifest's.
    pub fn from_manifest(path: &Path, device: &Device) -> Result<Self> {
        let manifest = EncoderManifest::load(path)?;
        let backbone = load_backbone(&manifest, device)?;
        let projector = match (&manifest.projector, &manifest.projector_config) {
            (Some(file), Some(config)) => {
                Some((state::load_projector(config, file, device)?, config.clone()))
            }
            _ => None,
        };
        Ok(Self {
            backbone,
            config: manifest.backbone.clone(),
            projector,
            recipe: manifest.recipe(),
            input_size: manifest.input_size,
            name: manifest.name.clone(),
            run: manifest.run.clone(),
        })
    }
}

/// The backbone of the exported encoder `manifest` on `device`, after checking the weights
/// file's SHA-256 against the manifest.
pub(crate) fn load_backbone(manifest: &EncoderManifest, device: &Device) -> Result<ResNet> {
    let found = crate::dataset::sha256_hex_file(&manifest.weights)?;
    if !found.eq_ignore_ascii_case(&manifest.weights_sha256) {
        return Err(Error::mismatch(
            format!(
                "SHA-256 of {} (field `weights_sha256` of the encoder manifest)",
                manifest.weights.display()
            ),
            &manifest.weights_sha256,
            found,
        ));
    }
    state::load_backbone(&manifest.backbone, &manifest.weights, device)
}
