//! The cached pipeline stages an experiment runs before training: prior embeddings and GPS
//! neighbour lists. Each output is reused only when it was made from the same dataset
//! (fingerprint) with the same prior (sha256) and settings; otherwise it is rebuilt.

use std::collections::BTreeMap;
use std::path::Path;

use crate::store::embeddings::{PRIOR_INPUT_SIZE_KEY, PRIOR_SHA256_KEY};
use crate::store::{META_DATASET_FINGERPRINT, META_KNN_K};
use crate::{
    label_purity, DataSource, EmbedJob, Embedder, EmbeddingTable, Error, Metric, NeighbourBuilder,
    NeighbourLists, NeighbourTable, PriorManifest, Progress, Purity, Result,
};

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
    if out.is_file() {
        if let Ok(table) = EmbeddingTable::read(out) {
            let m = &table.metadata;
            let same = m.get(META_DATASET_FINGERPRINT).map(String::as_str)
                == Some(source.fingerprint().as_str())
                && m.get(PRIOR_SHA256_KEY) == Some(&prior.sha256)
                && m.get(PRIOR_INPUT_SIZE_KEY) == Some(&size.to_string())
                && table.len() == source.len();
            if same {
                tracing::info!(path = %out.display(), "reusing prior embeddings");
                return Ok(PriorVectors {
                    prior: prior.name.clone(),
                    dim: table.dim,
                    vectors: table.vectors,
                    labels: table.labels,
                });
            }
            tracing::info!(path = %out.display(), "stale embeddings (other data/prior): rebuilding");
        }
    }
    let name = prior.name.clone();
    let mut embedder = Embedder::builder(prior).resolution(size).build()?;
    EmbedJob::new(out).run(&mut embedder, source, progress)?;
    let table = EmbeddingTable::read(out)?;
    Ok(PriorVectors {
        prior: name,
        dim: table.dim,
        vectors: table.vectors,
        labels: table.labels,
    })
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
        prior: crate::PIXEL_PRIOR.into(),
        dim,
        vectors,
        labels,
    })
}

/// Builds (or reuses) the exact cosine k-NN lists of `vectors` (self excluded) at `out`,
/// stamped with the dataset `fingerprint`. Returns the table and its label purity at
/// k = 1/5/10/k when labels are known.
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
            t.check_dataset(fingerprint, n).is_ok()
                && t.metadata.get(META_KNN_K) == Some(&k.to_string())
                && t.metadata.get("gps.prior.name") == Some(&vectors.prior)
        });
    let lists = match cached {
        Some(t) => {
            tracing::info!(path = %out.display(), "reusing neighbour lists");
            t.lists
        }
        None => {
            let run = NeighbourBuilder::new(&vectors.vectors, vectors.dim)
                .k(k)
                .metric(Metric::Cosine)
                .include_self(false)
                .build()?
                .run_with(progress)?;
            let mut meta: BTreeMap<String, String> = run.summary.to_metadata();
            meta.insert(META_DATASET_FINGERPRINT.into(), fingerprint.into());
            meta.insert("gps.prior.name".into(), vectors.prior.clone());
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
