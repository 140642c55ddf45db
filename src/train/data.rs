//! Opening the pair stream of a run: dataset + (plain | GPS) sampler + augmentation → loader,
//! and the typed record of what that stream was made from ([`DataConfig`], saved in the run's
//! `config.json` and part of its identity).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::store::{META_EMBEDDINGS_SHA256, META_EMBEDDINGS_VECTORS_SHA256};
use crate::{
    augment::AugRecipe,
    dataset::{open_source, BadSample, DecodedCache},
    loader::{PairLoader, PairLoaderBuilder},
    sampler::{GpsSampler, SelfSampler},
    store::NeighbourTable,
    Error, Result,
};

/// Where a run's pairs come from, as asked for (paths and settings). Serialisable; saved in the
/// run's `config.json` as part of its [`DataConfig`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairData {
    /// Dataset spec for [`open_source`] (IDX / CIFAR / image folder / Parquet).
    pub data: String,
    /// `neighbours.parquet` for GPS; `None` trains plain SSL (each image paired with itself).
    pub neighbours: Option<PathBuf>,
    /// Augmentation: `rhflip` (the paper's RHFlipAug) or `strong` (SimCLR recipe).
    pub aug: String,
    /// Output side length in pixels (`None`: the images' own size).
    pub size: Option<u32>,
    /// Pairs per batch.
    pub batch_size: usize,
    /// Loader seed (shuffle, partners, augmentation).
    pub seed: u64,
    /// Loader worker threads (the batches are bit-identical for any count).
    pub workers: usize,
    /// Skip samples that cannot be decoded instead of stopping (see
    /// [`PairLoaderBuilder::skip_bad`]); the skipped ones are listed in the run's
    /// [`SKIPPED_FILE`]. Not part of the run's identity: a run that completes without it met no
    /// bad sample, so it would have been the same run with it.
    #[serde(default)]
    pub skip_bad: bool,
    /// Keep decoded images in memory, up to this many GiB of pixels
    /// ([`DecodedCache`](crate::dataset::DecodedCache)): later epochs read them instead of
    /// decoding again. The cache holds whole, full-size decodes, so the recipe's
    /// [`reduced_decode`](AugRecipe::reduced_decode) is turned off (recorded in the run's
    /// recipe, which is part of its identity); the batches do not depend on the budget, and 0
    /// keeps nothing (whole decodes without a cache: how a cached run resumes with less RAM).
    #[serde(default)]
    pub cache_gib: Option<f64>,
}

/// File name, inside a run's output directory, of the samples skipped as bad while training
/// (a JSON array of [`BadSample`], ascending by id; written only when some were skipped).
pub const SKIPPED_FILE: &str = "skipped.json";

/// Adds `skipped` to the list in `dir/`[`SKIPPED_FILE`] (merging with what an earlier,
/// resumed part of the run wrote; one entry per id, ascending) and writes it through a
/// temporary file and a rename. Returns the file's path and the total count, or `None` when
/// nothing was ever skipped.
pub fn record_skipped(dir: &Path, skipped: &[BadSample]) -> Result<Option<(PathBuf, usize)>> {
    let path = dir.join(SKIPPED_FILE);
    let mut all: BTreeMap<u64, BadSample> = BTreeMap::new();
    if path.is_file() {
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let old: Vec<BadSample> = serde_json::from_str(&text).map_err(|e| Error::Serde {
            path: path.clone(),
            detail: format!("expected a JSON array of {{id, key, error}}: {e}"),
        })?;
        all.extend(old.into_iter().map(|b| (b.id, b)));
    }
    if skipped.is_empty() && all.is_empty() {
        return Ok(None);
    }
    for b in skipped {
        all.entry(b.id).or_insert_with(|| b.clone());
    }
    let list: Vec<&BadSample> = all.values().collect();
    let json = serde_json::to_string_pretty(&list).map_err(|e| Error::Serde {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    let tmp = dir.join(format!("{SKIPPED_FILE}.tmp{}", std::process::id()));
    std::fs::write(&tmp, json + "\n").map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    Ok(Some((path, list.len())))
}

/// The prior a neighbour table was computed with, as recorded in the table's metadata (a field
/// is `None` when the table does not record it, e.g. a table made by another tool).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PriorProvenance {
    /// `gps.prior.name`.
    pub name: Option<String>,
    /// `gps.prior.sha256`: SHA-256 of the prior's ONNX file.
    pub sha256: Option<String>,
    /// `gps.prior.input_size`: the resolution the images were embedded at, in pixels.
    pub input_size: Option<String>,
    /// `gps.prior.preprocess`: the embedding preprocessing.
    pub preprocess: Option<String>,
    /// `gps.embeddings.sha256`: SHA-256 of the embeddings file.
    pub embeddings_sha256: Option<String>,
    /// `gps.embeddings.vectors_sha256`: SHA-256 of the embedding vectors.
    pub vectors_sha256: Option<String>,
}

/// The neighbour table of a GPS run, identified by content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighbourProvenance {
    /// [`NeighbourTable::content_sha256`]: lists, `k`, τ, include-self, metric and prior.
    pub sha256: String,
    /// Neighbours per point.
    pub k: usize,
    /// `gps.knn.include_self` (`None` when not recorded).
    pub include_self: Option<String>,
    /// `gps.knn.metric`.
    pub metric: Option<String>,
    /// `gps.knn.radius` (JSON; `None` when not recorded).
    pub radius: Option<String>,
    /// The prior the lists come from.
    pub prior: PriorProvenance,
}

impl NeighbourProvenance {
    /// The provenance of `table`, read from its lists and metadata.
    pub fn of(table: &NeighbourTable) -> Self {
        let meta = |key: &str| table.metadata.get(key).cloned();
        NeighbourProvenance {
            sha256: table.content_sha256(),
            k: table.lists.k(),
            include_self: meta("gps.knn.include_self"),
            metric: meta("gps.knn.metric"),
            radius: meta("gps.knn.radius"),
            prior: PriorProvenance {
                name: meta("gps.prior.name"),
                sha256: meta("gps.prior.sha256"),
                input_size: meta("gps.prior.input_size"),
                preprocess: meta("gps.prior.preprocess"),
                embeddings_sha256: meta(META_EMBEDDINGS_SHA256),
                vectors_sha256: meta(META_EMBEDDINGS_VECTORS_SHA256),
            },
        }
    }
}

/// What a run's pairs were made from, resolved when the loader was opened: the request
/// ([`PairData`], flattened), the dataset's fingerprint and size, the full augmentation recipe,
/// the view shape and, for GPS, the neighbour table's content hash and prior. Saved as `data` in
/// `config.json`; `gps-ssl train --resume` rebuilds the loader from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataConfig {
    /// The request.
    #[serde(flatten)]
    pub pairs: PairData,
    /// The dataset's fingerprint (see [`crate::dataset::DataSource::fingerprint`]).
    pub fingerprint: String,
    /// Samples in the dataset.
    pub samples: usize,
    /// `[C, H, W]` of one view.
    pub view_shape: [usize; 3],
    /// The augmentation recipe of both views.
    pub recipe: AugRecipe,
    /// The neighbour table (GPS runs; `None` for plain SSL).
    pub neighbour_table: Option<NeighbourProvenance>,
}

impl DataConfig {
    /// What of this configuration determines a run's result: everything except where the
    /// files live (dataset spec, neighbour path: they are identified by content) and the worker
    /// count (batches are bit-identical for any count).
    pub fn identity(&self) -> DataIdentity<'_> {
        DataIdentity {
            fingerprint: &self.fingerprint,
            samples: self.samples,
            view_shape: self.view_shape,
            recipe: &self.recipe,
            size: self.pairs.size,
            batch_size: self.pairs.batch_size,
            seed: self.pairs.seed,
            drop_last: true,
            neighbour_table: self.neighbour_table.as_ref(),
            jpeg_decoder: (!cfg!(feature = "turbojpeg")).then_some(crate::dataset::JPEG_DECODER),
        }
    }
}

/// The part of a [`DataConfig`] that determines a run's result (see [`DataConfig::identity`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DataIdentity<'a> {
    /// Dataset fingerprint.
    pub fingerprint: &'a str,
    /// Samples in the dataset.
    pub samples: usize,
    /// `[C, H, W]` of one view.
    pub view_shape: [usize; 3],
    /// Augmentation recipe.
    pub recipe: &'a AugRecipe,
    /// Requested output side.
    pub size: Option<u32>,
    /// Pairs per batch.
    pub batch_size: usize,
    /// Loader seed.
    pub seed: u64,
    /// Whether the last partial batch is dropped (always, for training).
    pub drop_last: bool,
    /// The neighbour table's content hash, k, τ, include-self and prior.
    pub neighbour_table: Option<&'a NeighbourProvenance>,
    /// The JPEG decoder when it is not libjpeg-turbo (a build without the `turbojpeg` feature:
    /// [`JPEG_DECODER`](crate::dataset::JPEG_DECODER) = `"zune-jpeg"`, other pixels). Left out
    /// of the identity for libjpeg-turbo, so runs of earlier versions keep their hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jpeg_decoder: Option<&'static str>,
}

impl PairData {
    /// Opens the dataset, the sampler and builds the loader (last partial batch dropped).
    /// A neighbour file made for another dataset is refused; one with gaps (embedded with
    /// `skip_bad`) is used as it is: the samples without a row are never drawn.
    pub fn open(&self) -> Result<PairLoader> {
        Ok(self.open_with_config()?.0)
    }

    /// As [`open`](Self::open), and also returns the [`DataConfig`] of the stream (dataset
    /// fingerprint, recipe, neighbour table hash) for the run's `config.json`.
    pub fn open_with_config(&self) -> Result<(PairLoader, DataConfig)> {
        let mut source: Arc<dyn crate::dataset::DataSource> = Arc::from(open_source(&self.data)?);
        let mut recipe = match self.aug.as_str() {
            "rhflip" => AugRecipe::rhflip(),
            "strong" => AugRecipe::simclr(),
            other => {
                return Err(Error::invalid(
                    "aug",
                    format!("`{other}`; expected rhflip|strong"),
                ))
            }
        };
        if let Some(s) = self.size {
            recipe = recipe.with_output_size(s, s);
        }
        if let Some(gib) = self.cache_gib {
            let budget = DecodedCache::budget_of_gib(gib).ok_or_else(|| {
                Error::invalid(
                    "cache_gib (--cache-decoded)",
                    format!("{gib}; expected a number of GiB, 0 or more"),
                )
            })?;
            source = Arc::new(DecodedCache::new(source, budget));
            recipe = recipe.with_reduced_decode(false);
        }
        // Without libjpeg-turbo every JPEG is decoded whole: the recipe says so.
        if !cfg!(feature = "turbojpeg") {
            recipe = recipe.with_reduced_decode(false);
        }
        let fingerprint = source.fingerprint();
        let samples = source.len();
        let builder = PairLoaderBuilder::new(source.clone())
            .recipe(recipe)
            .batch_size(self.batch_size)
            .seed(self.seed)
            .workers(self.workers)
            .skip_bad(self.skip_bad)
            .drop_last(true);
        let (builder, neighbour_table) = match &self.neighbours {
            Some(path) => {
                let table = NeighbourTable::read(path)?;
                table
                    .check_dataset(&fingerprint, samples)
                    .map_err(|e| Error::format(path, e.to_string()))?;
                let provenance = NeighbourProvenance::of(&table);
                let missing = samples.saturating_sub(table.lists.len());
                if missing > 0 {
                    tracing::warn!(
                        path = %path.display(),
                        missing,
                        "samples without a neighbour row (skipped when embedding) are never drawn"
                    );
                }
                (
                    builder.sampler(GpsSampler::from_table(table)),
                    Some(provenance),
                )
            }
            None => (builder.sampler(SelfSampler), None),
        };
        let loader = builder.build()?;
        let config = DataConfig {
            pairs: self.clone(),
            fingerprint,
            samples,
            view_shape: loader.view_shape(),
            recipe: loader.recipe().clone(),
            neighbour_table,
        };
        Ok((loader, config))
    }

    /// One line for logs: dataset, neighbours, augmentation, size and seed.
    pub fn describe(&self) -> String {
        format!(
            "data={} neighbours={} aug={} size={:?} seed={}{}{}",
            self.data,
            self.neighbours
                .as_ref()
                .map_or("none (plain SSL)".into(), |p| p.display().to_string()),
            self.aug,
            self.size,
            self.seed,
            if self.skip_bad { " skip-bad" } else { "" },
            self.cache_gib
                .map_or(String::new(), |g| format!(" cache-decoded={g}GiB"))
        )
    }
}
