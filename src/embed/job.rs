//! An embedding job: a dataset (or one shard of it) → `embeddings.parquet`, resumable.
//!
//! The dataset is cut into fixed *chunks* of [`EmbedJob::row_group_rows`] rows (chunk `c` holds
//! rows `c*R .. (c+1)*R`), each cut into batches that never cross a chunk boundary. Every
//! finished chunk is written atomically to `<out>.partial/chunk-<c>.parquet`; next to them,
//! `<out>.partial/job.json` records the settings. A rerun with the same settings skips the
//! chunks already there (so a `kill -9` loses at most one chunk of work), and the final file is
//! assembled from the chunk files — one row group per chunk — and appears only by an atomic
//! rename. Because the batches, the row groups and the writer settings do not depend on when
//! the job was interrupted, the result is byte-identical to an uninterrupted run.
//!
//! A shard `i/n` takes chunks `i*C/n .. (i+1)*C/n` of the `C` chunks, so shards joined with
//! [`merge_embeddings`](crate::store::merge_embeddings) give the same bytes as one unsharded run.

use super::pipeline;
use super::Embedder;
use crate::dataset::BadSample;
use crate::store::embeddings::{
    self as store, Rows, DATASET_LEN_KEY, DIM_KEY, PRIOR_INPUT_SIZE_KEY, PRIOR_SHA256_KEY,
    SHARD_KEY,
};
use crate::store::META_DATASET_FINGERPRINT;
use crate::{dataset::DataSource, progress::Progress, Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::DEFAULT_ROW_GROUP_ROWS;

/// Metadata key of the JPEG decoder that decoded the images ([`crate::dataset::JPEG_DECODER`];
/// files without it were decoded by libjpeg-turbo).
pub const JPEG_DECODER_KEY: &str = "gps.embed.jpeg_decoder";

/// Metadata key of a chunk file listing the samples skipped in it (JSON).
const BAD_KEY: &str = "gps.embed.bad";

/// One slice `index` of `count` equal slices of a dataset's chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    /// Zero-based shard index, `< count`.
    pub index: usize,
    /// Number of shards, `≥ 1`.
    pub count: usize,
}

impl FromStr for ShardSpec {
    type Err = Error;

    /// Parses `"i/n"` with `0 ≤ i < n`.
    fn from_str(s: &str) -> Result<Self> {
        let parsed = s
            .split_once('/')
            .and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) if count > 0 && index < count => Ok(ShardSpec { index, count }),
            _ => Err(Error::invalid(
                "shard",
                format!("expected `i/n` with 0 <= i < n, found {s:?}"),
            )),
        }
    }
}

impl std::fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What a finished [`EmbedJob`] did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EmbedSummary {
    /// The file written.
    pub out: PathBuf,
    /// Rows in the file.
    pub rows: usize,
    /// Rows taken from a previous, interrupted run.
    pub resumed_rows: usize,
    /// Samples skipped as bad (only with `skip_bad`).
    pub skipped: Vec<BadSample>,
    /// The side report listing `skipped`, when any sample was skipped.
    pub bad_report: Option<PathBuf>,
    /// Wall-clock seconds of this run.
    pub seconds: f64,
}

/// Settings recorded in `job.json`; a resume requires them to be equal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct JobState {
    version: String,
    fingerprint: String,
    dataset_len: usize,
    prior_sha256: String,
    preprocess: String,
    output_name: String,
    normalized: bool,
    batch_size: usize,
    row_group_rows: usize,
    shard: Option<ShardSpec>,
    skip_bad: bool,
    /// Where ONNX Runtime ran (`cpu`, `cuda:0`): another provider rounds differently. Absent
    /// (empty) in jobs started before it was recorded, which then do not resume.
    #[serde(default)]
    execution_provider: String,
    /// The ONNX Runtime build ([`Embedder::runtime_build`]): another version or wheel may round
    /// differently.
    #[serde(default)]
    onnxruntime: String,
    /// [`JPEG_DECODER`](crate::dataset::JPEG_DECODER): the two decoders' pixels differ. Jobs
    /// started before it was recorded were built with libjpeg-turbo.
    #[serde(default = "libjpeg_turbo")]
    jpeg_decoder: String,
}

fn libjpeg_turbo() -> String {
    crate::dataset::LIBJPEG_TURBO.into()
}

/// Embeds a [`DataSource`] into an embeddings Parquet file. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct EmbedJob {
    out: PathBuf,
    shard: Option<ShardSpec>,
    skip_bad: bool,
    row_group_rows: usize,
    workers: Option<usize>,
}

impl EmbedJob {
    /// A job writing to `out`.
    pub fn new(out: impl Into<PathBuf>) -> Self {
        EmbedJob {
            out: out.into(),
            shard: None,
            skip_bad: false,
            row_group_rows: DEFAULT_ROW_GROUP_ROWS,
            workers: None,
        }
    }

    /// Embed only this shard and mark `out` as a part file. Defaults to the whole dataset.
    pub fn shard(mut self, shard: ShardSpec) -> Self {
        self.shard = Some(shard);
        self
    }

    /// Skip samples that fail to decode and list them in `<out>.bad.json` instead of stopping.
    /// Defaults to `false`.
    pub fn skip_bad(mut self, skip: bool) -> Self {
        self.skip_bad = skip;
        self
    }

    /// Rows per chunk / row group. Defaults to [`DEFAULT_ROW_GROUP_ROWS`].
    pub fn row_group_rows(mut self, rows: usize) -> Self {
        self.row_group_rows = rows;
        self
    }

    /// Decode/preprocess worker threads. Defaults to half the available cores (at least 1).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers);
        self
    }

    /// The directory holding finished chunks and `job.json` while the job runs.
    pub fn partial_dir(&self) -> PathBuf {
        with_suffix(&self.out, ".partial")
    }

    /// The side report of skipped samples.
    pub fn bad_report_path(&self) -> PathBuf {
        with_suffix(&self.out, ".bad.json")
    }

    /// Runs (or resumes) the job.
    ///
    /// # Errors
    /// A bad sample (without `skip_bad`) naming its key; [`Error::NonFinite`] naming the row
    /// when the prior outputs NaN/Inf; [`Error::Mismatch`] when `<out>.partial` was left by a
    /// job with other settings (delete it to start over); I/O and ONNX Runtime errors.
    pub fn run(
        &self,
        embedder: &mut Embedder,
        source: &dyn DataSource,
        progress: &dyn Progress,
    ) -> Result<EmbedSummary> {
        let started = std::time::Instant::now();
        if self.row_group_rows == 0 {
            return Err(Error::invalid("row group rows", "must be at least 1"));
        }
        let n = source.len();
        let r = self.row_group_rows;
        let n_chunks = n.div_ceil(r);
        let (index, count) = self.shard.map_or((0, 1), |s| (s.index, s.count));
        let chunks = index * n_chunks / count..(index + 1) * n_chunks / count;
        let chunk_rows = |c: usize| c * r..((c + 1) * r).min(n);

        let fingerprint = source.fingerprint();
        let state = JobState {
            version: env!("CARGO_PKG_VERSION").to_string(),
            fingerprint: fingerprint.clone(),
            dataset_len: n,
            prior_sha256: embedder.prior().sha256.clone(),
            preprocess: embedder.preprocess().describe(),
            output_name: embedder.output_name().to_string(),
            normalized: embedder.normalized(),
            batch_size: embedder.batch_size(),
            row_group_rows: r,
            shard: self.shard,
            skip_bad: self.skip_bad,
            execution_provider: embedder.execution_provider().to_string(),
            onnxruntime: embedder.runtime_build(),
            jpeg_decoder: crate::dataset::JPEG_DECODER.into(),
        };
        // One writer per output: a second job on the same `out` (another process, or this
        // one) is refused while this one runs.
        let _lock = store::OutputLock::acquire(&self.out)?;
        let partial = self.partial_dir();
        self.prepare_partial(&partial, &state)?;

        let chunk_path = |c: usize| partial.join(format!("chunk-{c:08}.parquet"));
        let todo: Vec<usize> = chunks
            .clone()
            .filter(|&c| !chunk_path(c).is_file())
            .collect();
        let total_rows: usize = chunks.clone().map(|c| chunk_rows(c).len()).sum();
        let todo_rows: usize = todo.iter().map(|&c| chunk_rows(c).len()).sum();
        let resumed_rows = total_rows - todo_rows;
        if resumed_rows > 0 {
            tracing::info!(resumed_rows, dir = %partial.display(), "resuming embedding job");
        }
        progress.start("embed", total_rows as u64);
        progress.advance(resumed_rows as u64);

        // Batches never cross a chunk boundary: (batch rows, chunk, last batch of chunk).
        let bs = embedder.batch_size();
        let mut plan: Vec<Range<usize>> = Vec::new();
        let mut owner: Vec<(usize, bool)> = Vec::new();
        for &c in &todo {
            let rows = chunk_rows(c);
            let mut s = rows.start;
            while s < rows.end {
                let e = (s + bs).min(rows.end);
                plan.push(s..e);
                owner.push((c, e == rows.end));
                s = e;
            }
        }
        let base_meta = self.metadata(embedder, &fingerprint, n, embedder.dim());
        let workers = self.workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get() / 2)
                .unwrap_or(1)
                .max(1)
        });
        let mut current = Rows::default();
        let mut current_bad: Vec<BadSample> = Vec::new();
        pipeline::run(embedder, source, &plan, workers, self.skip_bad, |batch| {
            let (chunk, last) = owner[batch.index];
            progress.advance((batch.rows.ids.len() + batch.bad.len()) as u64);
            current.ids.extend(batch.rows.ids);
            current.keys.extend(batch.rows.keys);
            current.labels.extend(batch.rows.labels);
            current.vectors.extend(batch.rows.vectors);
            current_bad.extend(batch.bad);
            if last {
                let rows = std::mem::take(&mut current);
                let bad = std::mem::take(&mut current_bad);
                let dim = if rows.ids.is_empty() {
                    base_meta_dim(&base_meta)
                } else {
                    rows.vectors.len() / rows.ids.len()
                };
                let mut meta = base_meta.clone();
                meta.insert(DIM_KEY.into(), dim.to_string());
                meta.insert(
                    BAD_KEY.into(),
                    serde_json::to_string(&bad).unwrap_or_default(),
                );
                let batch = store::to_batch(&rows, dim);
                store::write_file(&chunk_path(chunk), dim, &meta, [batch])?;
            }
            Ok(())
        })?;

        // Assemble: metadata from the first chunk (its dim is the real output width).
        let mut meta = match chunks.clone().next() {
            Some(c) => store::read_metadata(&chunk_path(c))?,
            None => base_meta.clone(),
        };
        meta.remove(BAD_KEY);
        let dim = base_meta_dim(&meta);
        let mut skipped = Vec::new();
        for c in chunks.clone() {
            let m = store::read_metadata(&chunk_path(c))?;
            if let Some(json) = m.get(BAD_KEY) {
                let bad: Vec<BadSample> = serde_json::from_str(json).map_err(|e| Error::Serde {
                    path: chunk_path(c),
                    detail: format!("metadata `{BAD_KEY}`: {e}"),
                })?;
                skipped.extend(bad);
            }
        }
        let groups = chunks
            .clone()
            .flat_map(|c| match store::read_groups(&chunk_path(c)) {
                Ok(groups) => groups.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => vec![Err(e)],
            });
        if let Some(parent) = self.out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        store::write_file(&self.out, dim, &meta, groups)?;
        let rows = total_rows - skipped.len();

        let report = self.bad_report_path();
        let bad_report = if skipped.is_empty() {
            if report.is_file() {
                std::fs::remove_file(&report).map_err(|e| Error::io(&report, e))?;
            }
            None
        } else {
            let tmp = store::tmp_path(&report);
            let json = serde_json::to_string_pretty(&skipped).map_err(|e| Error::Serde {
                path: report.clone(),
                detail: e.to_string(),
            })?;
            std::fs::write(&tmp, json).map_err(|e| Error::io(&tmp, e))?;
            std::fs::rename(&tmp, &report).map_err(|e| Error::io(&report, e))?;
            tracing::warn!(skipped = skipped.len(), report = %report.display(), "skipped bad samples");
            Some(report)
        };
        std::fs::remove_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;
        progress.finish();
        Ok(EmbedSummary {
            out: self.out.clone(),
            rows,
            resumed_rows,
            skipped,
            bad_report,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Creates `<out>.partial/job.json`, or checks that an existing one has the same settings.
    fn prepare_partial(&self, partial: &Path, state: &JobState) -> Result<()> {
        let job = partial.join("job.json");
        let json = serde_json::to_string_pretty(state).map_err(|e| Error::Serde {
            path: job.clone(),
            detail: e.to_string(),
        })?;
        if job.is_file() {
            let old = std::fs::read_to_string(&job).map_err(|e| Error::io(&job, e))?;
            let old: JobState = serde_json::from_str(&old).map_err(|e| Error::Serde {
                path: job.clone(),
                detail: e.to_string(),
            })?;
            if &old != state {
                return Err(Error::mismatch(
                    format!(
                        "settings of the interrupted job in {} (delete that directory to start over)",
                        partial.display()
                    ),
                    serde_json::to_string(&old).unwrap_or_default(),
                    serde_json::to_string(state).unwrap_or_default(),
                ));
            }
            return Ok(());
        }
        std::fs::create_dir_all(partial).map_err(|e| Error::io(partial, e))?;
        let tmp = store::tmp_path(&job);
        std::fs::write(&tmp, json).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &job).map_err(|e| Error::io(&job, e))
    }

    fn metadata(
        &self,
        embedder: &Embedder,
        fingerprint: &str,
        n: usize,
        dim: usize,
    ) -> BTreeMap<String, String> {
        let prior = embedder.prior();
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_string(), v);
        };
        put("gps.prior.name", prior.name.clone());
        put(PRIOR_SHA256_KEY, prior.sha256.to_ascii_lowercase());
        put(PRIOR_INPUT_SIZE_KEY, embedder.preprocess().size.to_string());
        put("gps.prior.preprocess", embedder.preprocess().describe());
        put("gps.prior.output", embedder.output_name().to_string());
        put(DIM_KEY, dim.to_string());
        put(
            "gps.embedding.normalized",
            embedder.normalized().to_string(),
        );
        put(META_DATASET_FINGERPRINT, fingerprint.to_string());
        put(DATASET_LEN_KEY, n.to_string());
        put("gps.embed.row_group_rows", self.row_group_rows.to_string());
        put("gps.version", env!("CARGO_PKG_VERSION").to_string());
        put(
            "gps.embed.execution_provider",
            embedder.execution_provider().to_string(),
        );
        put("gps.embed.onnxruntime", embedder.runtime_build());
        put(JPEG_DECODER_KEY, crate::dataset::JPEG_DECODER.to_string());
        if let Some(s) = self.shard {
            put(SHARD_KEY, s.to_string());
        }
        m
    }
}

fn base_meta_dim(meta: &BTreeMap<String, String>) -> usize {
    meta.get(DIM_KEY).and_then(|d| d.parse().ok()).unwrap_or(0)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `job.json` written before the decoder was recorded reads as libjpeg-turbo's (every
    /// earlier build had it), and a state with another decoder is not equal: no resume across.
    #[test]
    fn job_state_without_a_decoder_is_libjpeg_turbo_and_another_decoder_differs() {
        let state = JobState {
            version: "0.1.0".into(),
            fingerprint: "fp".into(),
            dataset_len: 3,
            prior_sha256: "00".into(),
            preprocess: "p".into(),
            output_name: "out".into(),
            normalized: true,
            batch_size: 8,
            row_group_rows: 4,
            shard: None,
            skip_bad: false,
            execution_provider: "cpu".into(),
            onnxruntime: "1.32.0".into(),
            jpeg_decoder: "libjpeg-turbo".into(),
        };
        let mut json = serde_json::to_value(&state).unwrap();
        json.as_object_mut().unwrap().remove("jpeg_decoder");
        let old: JobState = serde_json::from_value(json).unwrap();
        assert_eq!(old, state);
        let other = JobState {
            jpeg_decoder: "zune-jpeg".into(),
            ..state.clone()
        };
        assert_ne!(other, state);
    }

    #[test]
    fn shard_spec_parses_and_rejects() {
        assert_eq!(
            "2/5".parse::<ShardSpec>().unwrap(),
            ShardSpec { index: 2, count: 5 }
        );
        for bad in ["5/5", "1/0", "x/2", "3", ""] {
            let err = bad.parse::<ShardSpec>().unwrap_err().to_string();
            assert!(err.contains("i/n"), "{bad}: {err}");
        }
    }
}
