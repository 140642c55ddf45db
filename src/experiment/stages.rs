//! The cached pipeline stages an experiment runs before training: prior embeddings and GPS
//! neighbour lists. Each output is reused only when it was made from the same inputs:
//! embeddings from the same dataset (fingerprint) by the same prior (ONNX sha256) at the same
//! resolution and preprocessing; neighbour lists from the same embedding vectors (their
//! sha256) with the same `k`, metric and include-self. Anything else is rebuilt.

use std::collections::BTreeMap;
use std::path::Path;

use crate::store::embeddings::{PRIOR_INPUT_SIZE_KEY, PRIOR_SHA256_KEY};
use crate::store::{META_DATASET_FINGERPRINT, META_EMBEDDINGS_VECTORS_SHA256, META_KNN_K};
use crate::{
    dataset::DataSource,
    embed::{EmbedJob, Embedder, Preprocess, PriorManifest},
    knn::{label_purity, Metric, NeighbourBuilder, NeighbourLists, Purity},
    progress::Progress,
    store::{EmbeddingTable, NeighbourTable},
    Error, Result,
};

/// The preprocessing recorded for the raw-pixel prior (`gps.prior.preprocess`).
const PIXEL_PREPROCESS: &str = "pixels/255, flattened HWC, L2-normalised";

/// Prior embeddings of a dataset, in memory: `[n, dim]` row-major, L2-normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorVectors {
    /// Prior name (`efficientnet_lite0`, `pixels`).
    pub prior: String,
    /// Embedding width.
    pub dim: usize,
    /// `[n, dim]` row-major.
    pub vectors: Vec<f32>,
    /// Labels `[n]` (`None` when unknown).
    pub labels: Vec<Option<i64>>,
    /// SHA-256 of the prior's ONNX file (`None` for the raw-pixel prior).
    pub prior_sha256: Option<String>,
    /// Resolution the images were embedded at, in pixels (`None`: their own size).
    pub input_size: Option<u32>,
    /// The embedding preprocessing (`gps.prior.preprocess`).
    pub preprocess: String,
    /// [`vectors_sha256`] of `dim` and `vectors`: what the neighbour cache is keyed by.
    pub vectors_sha256: String,
}

/// SHA-256 (hex) of embedding vectors: `dim` as u64 LE, then each f32's bits LE, row-major.
/// Equal vectors hash equal wherever they came from; any other prior, resolution,
/// preprocessing or dataset changes it.
pub fn vectors_sha256(dim: usize, vectors: &[f32]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update((dim as u64).to_le_bytes());
    for v in vectors {
        h.update(v.to_bits().to_le_bytes());
    }
    crate::dataset::hex(&h.finalize())
}

/// Embeds `source` with the ONNX prior of `manifest` into `out` (an `embeddings.parquet`), or
/// reuses `out` when it holds this dataset's embeddings by this prior at this resolution.
pub fn ensure_embeddings(
    source: &dyn DataSource,
    manifest: &Path,
    resolution: Option<u32>,
    out: &Path,
    progress: &dyn Progress,
) -> Result<PriorVectors> {
    let prior = PriorManifest::load(manifest)?;
    let size = resolution.unwrap_or(prior.input_size);
    let preprocess = Preprocess::from_manifest(&prior, Some(size)).describe();
    let vectors_of = |table: EmbeddingTable| PriorVectors {
        prior: prior.name.clone(),
        dim: table.dim,
        vectors_sha256: vectors_sha256(table.dim, &table.vectors),
        vectors: table.vectors,
        labels: table.labels,
        prior_sha256: Some(prior.sha256.clone()),
        input_size: Some(size),
        preprocess: preprocess.clone(),
    };
    if out.is_file() {
        if let Ok(table) = EmbeddingTable::read(out) {
            let m = &table.metadata;
            let same = m.get(META_DATASET_FINGERPRINT).map(String::as_str)
                == Some(source.fingerprint().as_str())
                && m.get(PRIOR_SHA256_KEY) == Some(&prior.sha256)
                && m.get(PRIOR_INPUT_SIZE_KEY) == Some(&size.to_string())
                && m.get("gps.prior.preprocess") == Some(&preprocess)
                && m.get(crate::embed::JPEG_DECODER_KEY)
                    .map_or(crate::dataset::LIBJPEG_TURBO, String::as_str)
                    == crate::dataset::JPEG_DECODER
                && table.len() == source.len();
            if same {
                tracing::info!(path = %out.display(), "reusing prior embeddings");
                return Ok(vectors_of(table));
            }
            tracing::info!(
                path = %out.display(),
                "stale embeddings (other data, prior, resolution or preprocessing): rebuilding"
            );
        }
    }
    let mut embedder = Embedder::builder(prior.clone()).resolution(size).build()?;
    EmbedJob::new(out).run(&mut embedder, source, progress)?;
    Ok(vectors_of(EmbeddingTable::read(out)?))
}

/// The hand-crafted raw-pixel prior: each image flattened to `[H·W·C]` values in `[0, 1]`,
/// then L2-normalised. All images must share one shape.
pub fn pixel_embeddings(source: &dyn DataSource, progress: &dyn Progress) -> Result<PriorVectors> {
    let n = source.len();
    progress.start("pixel prior", n as u64);
    let mut vectors = Vec::new();
    let mut labels = Vec::with_capacity(n);
    let mut dim = 0;
    for i in 0..n {
        let s = source.get(i)?;
        if i == 0 {
            dim = s.image.data.len();
        } else if s.image.data.len() != dim {
            return Err(Error::mismatch(
                format!("pixel prior: size of image `{}`", s.key),
                dim,
                s.image.data.len(),
            ));
        }
        let start = vectors.len();
        vectors.extend(s.image.data.iter().map(|&v| f32::from(v) / 255.0));
        let row = &mut vectors[start..];
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|v| *v /= norm);
        labels.push(s.label);
        progress.advance(1);
    }
    progress.finish();
    Ok(PriorVectors {
        prior: crate::experiment::PIXEL_PRIOR.into(),
        dim,
        vectors_sha256: vectors_sha256(dim, &vectors),
        vectors,
        labels,
        prior_sha256: None,
        input_size: None,
        preprocess: PIXEL_PREPROCESS.into(),
    })
}

/// Builds (or reuses) the exact cosine k-NN lists of `vectors` (self excluded) at `out`,
/// stamped with the dataset `fingerprint` and the prior's provenance (name, sha256, input size,
/// preprocessing, [`PriorVectors::vectors_sha256`]). The file at `out` is reused only when it
/// was built from the same vectors (same `vectors_sha256`), dataset, `k`, metric and
/// include-self; a new prior, resolution or preprocessing rebuilds it. Returns the table and its
/// label purity at k = 1/5/10/k when labels are known.
pub fn ensure_neighbours(
    vectors: &PriorVectors,
    k: usize,
    fingerprint: &str,
    out: &Path,
    progress: &dyn Progress,
) -> Result<(NeighbourLists, Option<Vec<Purity>>)> {
    let n = vectors.labels.len();
    let cached = out
        .is_file()
        .then(|| NeighbourTable::read(out).ok())
        .flatten()
        .filter(|t| {
            let meta = |key: &str| t.metadata.get(key).map(String::as_str);
            t.check_dataset(fingerprint, n).is_ok()
                && t.is_dense()
                && t.lists.len() == n
                && meta(META_KNN_K) == Some(k.to_string().as_str())
                && meta("gps.prior.name") == Some(vectors.prior.as_str())
                && meta(META_EMBEDDINGS_VECTORS_SHA256) == Some(vectors.vectors_sha256.as_str())
                && meta("gps.knn.metric") == Some(Metric::Cosine.name())
                && meta("gps.knn.include_self") == Some("false")
        });
    let lists = match cached {
        Some(t) => {
            tracing::info!(path = %out.display(), "reusing neighbour lists");
            t.lists
        }
        None => {
            if out.is_file() {
                tracing::info!(
                    path = %out.display(),
                    "stale neighbour lists (other embeddings, dataset or k): rebuilding"
                );
            }
            let run = NeighbourBuilder::new(&vectors.vectors, vectors.dim)
                .k(k)
                .metric(Metric::Cosine)
                .include_self(false)
                .build()?
                .run_with(progress)?;
            let mut meta: BTreeMap<String, String> = run.summary.to_metadata();
            meta.insert(META_DATASET_FINGERPRINT.into(), fingerprint.into());
            meta.insert("gps.prior.name".into(), vectors.prior.clone());
            if let Some(sha) = &vectors.prior_sha256 {
                meta.insert(PRIOR_SHA256_KEY.into(), sha.clone());
            }
            if let Some(size) = vectors.input_size {
                meta.insert(PRIOR_INPUT_SIZE_KEY.into(), size.to_string());
            }
            meta.insert("gps.prior.preprocess".into(), vectors.preprocess.clone());
            meta.insert(
                META_EMBEDDINGS_VECTORS_SHA256.into(),
                vectors.vectors_sha256.clone(),
            );
            meta.insert("gps.version".into(), env!("CARGO_PKG_VERSION").into());
            NeighbourTable::new(run.lists.clone(), meta).write(out)?;
            run.lists
        }
    };
    let mut ks: Vec<usize> = [1, 5, 10, k].into_iter().filter(|&j| j <= k).collect();
    ks.dedup();
    let purity = label_purity(&lists, &vectors.labels, &ks)?;
    Ok((lists, purity))
}
