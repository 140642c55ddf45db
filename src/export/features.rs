//! `features.parquet`: a trained encoder's backbone features of a dataset, in the embeddings
//! schema (so `eval`, `neighbours` and any Parquet tool read them).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use burn::tensor::Device;

use super::trained::TrainedEncoder;
use crate::embed::DEFAULT_ROW_GROUP_ROWS;
use crate::store::embeddings::{self as store, Rows, DATASET_LEN_KEY, DIM_KEY};
use crate::store::META_DATASET_FINGERPRINT;
use crate::{dataset::DataSource, eval::encode_features, progress::Progress, Error, Result};

/// Metadata key: the run hash of the encoder that made a features file.
pub const META_ENCODER_RUN_HASH: &str = "gps.encoder.run_hash";
/// Metadata key: the run folder of that encoder.
pub const META_ENCODER_RUN_DIR: &str = "gps.encoder.run_dir";
/// Metadata key: the optimiser step of that encoder's checkpoint.
pub const META_ENCODER_STEP: &str = "gps.encoder.step";

/// What [`TrainedEncoder::write_features`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct FeaturesSummary {
    /// Rows written (the whole dataset).
    pub rows: usize,
    /// Feature dimension.
    pub dim: usize,
    /// Seconds taken.
    pub seconds: f64,
}

impl TrainedEncoder {
    /// The backbone features of every sample of `source`, `[n, feature_dim]` row-major in
    /// dataset order: [`encode_features`] with this encoder's recipe (what `experiment`
    /// evaluates).
    pub fn features(
        &self,
        source: Arc<dyn DataSource>,
        device: &Device,
        progress: &dyn Progress,
    ) -> Result<Vec<f32>> {
        encode_features(&self.backbone, source, &self.recipe, device, progress)
    }

    /// Writes the backbone features of `source` to `out` in the embeddings schema (`id`,
    /// `key`, `label`, `embedding`; raw features, not L2-normalised), through a temporary file
    /// and a rename. Metadata: the embeddings file's keys (`gps.prior.name` = the encoder's
    /// name, `gps.prior.sha256` = [`tensors_sha256`](super::tensors_sha256) of the backbone,
    /// the input size and preprocessing, dim, dataset fingerprint and length, version) plus
    /// [`META_ENCODER_RUN_HASH`], [`META_ENCODER_RUN_DIR`] and [`META_ENCODER_STEP`].
    pub fn write_features(
        &self,
        source: Arc<dyn DataSource>,
        out: &Path,
        device: &Device,
        progress: &dyn Progress,
    ) -> Result<FeaturesSummary> {
        let started = std::time::Instant::now();
        let n = source.len();
        let dim = self.backbone.feature_dim();
        let vectors = self.features(source.clone(), device, progress)?;
        let mut meta = BTreeMap::new();
        let [h, w] = self.input_size;
        let norm = &self.recipe.normalize;
        let mut put = |k: &str, v: String| {
            meta.insert(k.to_string(), v);
        };
        put("gps.prior.name", format!("encoder:{}", self.name));
        put(
            store::PRIOR_SHA256_KEY,
            super::tensors_sha256(&self.backbone),
        );
        put(store::PRIOR_INPUT_SIZE_KEY, h.to_string());
        put(
            "gps.prior.preprocess",
            format!(
                "gps-ssl encoder views {h}x{w} (no augmentation), to_rgb={}, \
                 (p / 255 - mean) / std, mean={:?} std={:?}, NCHW",
                self.recipe.to_rgb, norm.mean, norm.std
            ),
        );
        put("gps.prior.output", super::onnx::ONNX_FEATURES.to_string());
        put(DIM_KEY, dim.to_string());
        put("gps.embedding.normalized", "false".into());
        put(META_DATASET_FINGERPRINT, source.fingerprint());
        put(DATASET_LEN_KEY, n.to_string());
        put("gps.version", env!("CARGO_PKG_VERSION").to_string());
        put(META_ENCODER_RUN_HASH, self.run.hash.clone());
        put(META_ENCODER_RUN_DIR, self.run.dir.display().to_string());
        put(META_ENCODER_STEP, self.run.step.to_string());

        let mut groups = Vec::new();
        for (g, chunk) in vectors.chunks(DEFAULT_ROW_GROUP_ROWS * dim).enumerate() {
            let start = g * DEFAULT_ROW_GROUP_ROWS;
            let rows = chunk.len() / dim;
            let mut r = Rows {
                vectors: chunk.to_vec(),
                ..Rows::default()
            };
            for i in start..start + rows {
                r.ids.push(i as u64);
                r.keys.push(source.key(i)?);
                r.labels.push(source.label(i)?);
            }
            groups.push(store::to_batch(&r, dim));
        }
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        store::write_file(out, dim, &meta, groups)?;
        Ok(FeaturesSummary {
            rows: n,
            dim,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}
