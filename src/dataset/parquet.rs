//! Parquet image tables in the Hugging Face `datasets` layout.
//!
//! Expected columns (names configurable):
//! - `image`: a struct `{bytes: Binary, path: Utf8}` holding encoded PNG/JPEG bytes (what
//!   `datasets` writes for its `Image` feature), or a plain `Binary` column of encoded bytes;
//! - `label`: any integer type, nullable (optional — a table without it is unlabelled).
//!
//! One file or a directory of `*.parquet` files (sorted by name, concatenated) is one source.
//!
//! **Random access.** At open, only the footer (row-group sizes) and the label column are read.
//! [`DataSource::get`] finds the row group holding the row, decodes that row group's image
//! column and keeps the last few decoded row groups in a small LRU cache, so reading in order
//! decodes each row group once. Fully random access decodes a row group per miss: prefer
//! tables with small row groups (a few hundred rows) for shuffled training.
//!
//! **Keys** are `"<file stem>#<row in file>"` (`train-00000-of-00001#17`).

use super::fingerprint::{sha256_file, Fingerprinter};
use super::folder::decode_from;
use super::{DataSource, DecodeAsk, Reduced, Sample};
use crate::{Error, Result};
use ::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use ::parquet::arrow::ProjectionMask;
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, BinaryArray, StructArray};
use arrow_schema::DataType;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Default name of the image column.
pub const DEFAULT_IMAGE_COLUMN: &str = "image";
/// Default name of the label column.
pub const DEFAULT_LABEL_COLUMN: &str = "label";
/// Default number of decoded row groups kept in the cache.
pub const DEFAULT_CACHED_ROW_GROUPS: usize = 4;

/// Builder of a [`ParquetImageSource`]; see [`ParquetImageSource::builder`].
#[derive(Debug, Clone)]
pub struct ParquetImageSourceBuilder {
    path: PathBuf,
    image_column: String,
    label_column: Option<String>,
    label_required: bool,
    cached_row_groups: usize,
}

impl ParquetImageSourceBuilder {
    /// Name of the image column. Defaults to [`DEFAULT_IMAGE_COLUMN`].
    pub fn image_column(mut self, name: impl Into<String>) -> Self {
        self.image_column = name.into();
        self
    }

    /// Name of the label column, or `None` to read no labels. Defaults to
    /// [`DEFAULT_LABEL_COLUMN`], which is optional (a table without it is unlabelled); a name set
    /// here must exist.
    pub fn label_column(mut self, name: Option<&str>) -> Self {
        self.label_column = name.map(str::to_string);
        self.label_required = name.is_some();
        self
    }

    /// Number of decoded row groups kept in memory (at least 1). Defaults to
    /// [`DEFAULT_CACHED_ROW_GROUPS`].
    pub fn cached_row_groups(mut self, n: usize) -> Self {
        self.cached_row_groups = n;
        self
    }

    /// Opens the file(s), checks the schema, reads the labels and fingerprints the files.
    pub fn build(self) -> Result<ParquetImageSource> {
        if self.cached_row_groups == 0 {
            return Err(Error::invalid("cached_row_groups", "must be at least 1"));
        }
        let paths = if self.path.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(&self.path)
                .map_err(|e| Error::io(&self.path, e))?
                .map(|e| {
                    e.map(|e| e.path())
                        .map_err(|err| Error::io(&self.path, err))
                })
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .filter(|p| {
                    p.extension()
                        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
                        && p.is_file()
                })
                .collect();
            v.sort();
            if v.is_empty() {
                return Err(Error::format(
                    &self.path,
                    "directory holds no `.parquet` file",
                ));
            }
            v
        } else {
            vec![self.path.clone()]
        };
        let mut files = Vec::with_capacity(paths.len());
        let mut labels: Option<Vec<Option<i64>>> = None;
        let mut count = 0usize;
        let mut fp_entries = Vec::new();
        for (i, path) in paths.iter().enumerate() {
            let f = open_file(path, &self, count)?;
            if i == 0 && f.label_idx.is_some() {
                labels = Some(Vec::new());
            }
            match (&mut labels, f.label_idx) {
                (Some(all), Some(idx)) => all.extend(read_labels(path, &f.meta, idx)?),
                (None, None) => {}
                _ => {
                    return Err(Error::format(
                        path,
                        format!(
                            "label column `{}` present in some files of {} but not in others",
                            self.label_column.as_deref().unwrap_or(""),
                            self.path.display()
                        ),
                    ))
                }
            }
            let (digest, len) = sha256_file(path)?;
            fp_entries.push((f.stem.clone(), digest, len));
            count += f.rows;
            files.push(f);
        }
        let mut fp = Fingerprinter::new("parquet", count);
        fp.option("image_column", &self.image_column);
        fp.option(
            "label_column",
            if labels.is_some() {
                self.label_column.as_deref().unwrap_or("")
            } else {
                ""
            },
        );
        for (stem, digest, len) in &fp_entries {
            fp.entry_digest(stem, *len, digest);
        }
        tracing::debug!(path = %self.path.display(), files = files.len(), count, "opened parquet image table");
        Ok(ParquetImageSource {
            path: self.path,
            image_column: self.image_column,
            files,
            labels,
            count,
            cache: Mutex::new(VecDeque::new()),
            cache_size: self.cached_row_groups,
            fingerprint: fp.finish(),
        })
    }
}

/// How the encoded bytes are stored in the image column.
#[derive(Debug, Clone, Copy)]
enum ImageLayout {
    /// Struct column; the index of its `bytes` child.
    Struct(usize),
    /// Plain binary column.
    Binary,
}

#[derive(Debug)]
struct PqFile {
    path: PathBuf,
    stem: String,
    meta: ArrowReaderMetadata,
    image_idx: usize,
    layout: ImageLayout,
    label_idx: Option<usize>,
    /// Start row (within the file) of each row group, plus the total at the end.
    rg_starts: Vec<usize>,
    /// Global index of the file's first row.
    first: usize,
    rows: usize,
}

fn open_file(path: &Path, cfg: &ParquetImageSourceBuilder, first: usize) -> Result<PqFile> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
        .map_err(|e| Error::parquet(path, e))?;
    let schema = meta.schema().clone();
    let columns = || {
        schema
            .fields()
            .iter()
            .map(|f| format!("`{}` ({})", f.name(), f.data_type()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (image_idx, field) = schema.column_with_name(&cfg.image_column).ok_or_else(|| {
        Error::format(
            path,
            format!(
                "no image column `{}`; columns found: {}",
                cfg.image_column,
                columns()
            ),
        )
    })?;
    let layout = match field.data_type() {
        DataType::Struct(children) => {
            let idx = children
                .iter()
                .position(|c| c.name() == "bytes")
                .ok_or_else(|| {
                    Error::format(
                        path,
                        format!(
                            "image column `{}` is a struct without a `bytes` field: {}",
                            cfg.image_column,
                            field.data_type()
                        ),
                    )
                })?;
            check_binary(path, &cfg.image_column, children[idx].data_type())?;
            ImageLayout::Struct(idx)
        }
        other => {
            check_binary(path, &cfg.image_column, other)?;
            ImageLayout::Binary
        }
    };
    let label_idx = match &cfg.label_column {
        None => None,
        Some(name) => match schema.column_with_name(name) {
            Some((idx, f)) if f.data_type().is_integer() => Some(idx),
            Some((_, f)) => {
                return Err(Error::format(
                    path,
                    format!(
                        "label column `{name}` has type {}, expected an integer type",
                        f.data_type()
                    ),
                ))
            }
            None if cfg.label_required => {
                return Err(Error::format(
                    path,
                    format!("no label column `{name}`; columns found: {}", columns()),
                ))
            }
            None => {
                tracing::debug!(path = %path.display(), "no `{name}` column: unlabelled");
                None
            }
        },
    };
    let mut rg_starts = vec![0usize];
    for rg in meta.metadata().row_groups() {
        let n = usize::try_from(rg.num_rows())
            .map_err(|_| Error::format(path, format!("negative row count {}", rg.num_rows())))?;
        rg_starts.push(rg_starts[rg_starts.len() - 1] + n);
    }
    let rows = rg_starts[rg_starts.len() - 1];
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(PqFile {
        path: path.to_path_buf(),
        stem,
        meta,
        image_idx,
        layout,
        label_idx,
        rg_starts,
        first,
        rows,
    })
}

fn check_binary(path: &Path, column: &str, dt: &DataType) -> Result<()> {
    match dt {
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Ok(()),
        other => Err(Error::format(
            path,
            format!("image column `{column}` holds {other}, expected binary image bytes"),
        )),
    }
}

fn read_labels(path: &Path, meta: &ArrowReaderMetadata, idx: usize) -> Result<Vec<Option<i64>>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mask = ProjectionMask::roots(meta.metadata().file_metadata().schema_descr(), [idx]);
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone())
        .with_projection(mask)
        .with_batch_size(65_536)
        .build()
        .map_err(|e| Error::parquet(path, e))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| Error::format(path, format!("reading label column: {e}")))?;
        let col = crate::store::columns::to_i64(batch.column(0))
            .map_err(|e| Error::format(path, format!("label column: {e}")))?;
        out.extend(col);
    }
    Ok(out)
}

type CacheEntry = ((usize, usize), Arc<BinaryArray>);

/// Images from a Hugging Face-style Parquet table (one file or a directory of files).
///
/// ```no_run
/// use gps_ssl::dataset::{DataSource, ParquetImageSource};
/// let src = ParquetImageSource::builder("data/fixtures/cifar10_hf.parquet")
///     .image_column("image")
///     .build()?;
/// let s = src.get(12)?;
/// # Ok::<(), gps_ssl::Error>(())
/// ```
#[derive(Debug)]
pub struct ParquetImageSource {
    path: PathBuf,
    image_column: String,
    files: Vec<PqFile>,
    labels: Option<Vec<Option<i64>>>,
    count: usize,
    cache: Mutex<VecDeque<CacheEntry>>,
    cache_size: usize,
    fingerprint: String,
}

impl ParquetImageSource {
    /// A builder for the table at `path` (a `.parquet` file or a directory of them).
    pub fn builder(path: impl AsRef<Path>) -> ParquetImageSourceBuilder {
        ParquetImageSourceBuilder {
            path: path.as_ref().to_path_buf(),
            image_column: DEFAULT_IMAGE_COLUMN.to_string(),
            label_column: Some(DEFAULT_LABEL_COLUMN.to_string()),
            label_required: false,
            cached_row_groups: DEFAULT_CACHED_ROW_GROUPS,
        }
    }

    /// Opens `path` with the default column names.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::builder(path).build()
    }

    /// The files of the table, in order.
    pub fn paths(&self) -> Vec<&Path> {
        self.files.iter().map(|f| f.path.as_path()).collect()
    }

    /// Total number of row groups over all files.
    pub fn num_row_groups(&self) -> usize {
        self.files.iter().map(|f| f.rg_starts.len() - 1).sum()
    }

    /// `(file index, row group, row within the row group, row within the file)` of `index`.
    fn locate(&self, index: usize) -> Result<(usize, usize, usize, usize)> {
        if index >= self.count {
            return Err(super::out_of_range(index, &self.describe(), self.count));
        }
        let fi = self.files.partition_point(|f| f.first <= index) - 1;
        let f = &self.files[fi];
        let row = index - f.first;
        let rg = f.rg_starts.partition_point(|&s| s <= row) - 1;
        Ok((fi, rg, row - f.rg_starts[rg], row))
    }

    /// The encoded image bytes of every row of one row group (cached).
    fn row_group(&self, fi: usize, rg: usize) -> Result<Arc<BinaryArray>> {
        if let Ok(mut cache) = self.cache.lock() {
            if let Some(pos) = cache.iter().position(|(k, _)| *k == (fi, rg)) {
                if let Some(entry) = cache.remove(pos) {
                    let arr = entry.1.clone();
                    cache.push_front(entry);
                    return Ok(arr);
                }
            }
        }
        let f = &self.files[fi];
        let path = &f.path;
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mask = ProjectionMask::roots(
            f.meta.metadata().file_metadata().schema_descr(),
            [f.image_idx],
        );
        let rows = f.rg_starts[rg + 1] - f.rg_starts[rg];
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, f.meta.clone())
            .with_projection(mask)
            .with_row_groups(vec![rg])
            .with_batch_size(rows.max(1))
            .build()
            .map_err(|e| Error::parquet(path, e))?;
        let mut parts: Vec<ArrayRef> = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|e| Error::format(path, format!("row group {rg}: {e}")))?;
            let col = batch.column(0).clone();
            let bytes = match f.layout {
                ImageLayout::Struct(child) => {
                    let s: &StructArray = col
                        .as_struct_opt()
                        .ok_or_else(|| Error::format(path, "image column is not a struct"))?;
                    // A null struct row masks its child: carry the parent's nulls over.
                    crate::store::columns::with_nulls(s.column(child).clone(), s.nulls())?
                }
                ImageLayout::Binary => col,
            };
            let bytes = crate::store::columns::to_binary(&bytes)
                .map_err(|e| Error::format(path, format!("image column: {e}")))?;
            parts.push(Arc::new(bytes));
        }
        let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
        let all = if refs.len() == 1 {
            parts[0].clone()
        } else {
            arrow_select::concat::concat(&refs)?
        };
        let arr = Arc::new(all.as_binary::<i32>().clone());
        if arr.len() != rows {
            return Err(Error::format(
                path,
                format!(
                    "row group {rg}: expected {rows} rows, decoded {}",
                    arr.len()
                ),
            ));
        }
        if let Ok(mut cache) = self.cache.lock() {
            cache.push_front(((fi, rg), arr.clone()));
            cache.truncate(self.cache_size);
        }
        Ok(arr)
    }
}

impl DataSource for ParquetImageSource {
    fn len(&self) -> usize {
        self.count
    }

    fn get(&self, index: usize) -> Result<Sample> {
        self.get_reduced(index, &mut |_, _| 1).map(|r| r.sample)
    }

    fn get_region(
        &self,
        index: usize,
        ask: &mut dyn FnMut(u32, u32) -> DecodeAsk,
    ) -> Result<Reduced> {
        let (fi, rg, in_rg, in_file) = self.locate(index)?;
        let key = format!("{}#{in_file}", self.files[fi].stem);
        let arr = self.row_group(fi, rg)?;
        if arr.is_null(in_rg) {
            return Err(Error::Decode {
                key,
                detail: format!(
                    "{}: null image in column `{}`",
                    self.files[fi].path.display(),
                    self.image_column
                ),
            });
        }
        let d = decode_from(arr.value(in_rg), &key, &self.files[fi].path, ask)?;
        let label = self.labels.as_ref().and_then(|l| l[index]);
        Ok(d.reduced(index, key, label))
    }

    fn key(&self, index: usize) -> Result<String> {
        let (fi, _, _, in_file) = self.locate(index)?;
        Ok(format!("{}#{in_file}", self.files[fi].stem))
    }

    fn label(&self, index: usize) -> Result<Option<i64>> {
        self.locate(index)?;
        Ok(self.labels.as_ref().and_then(|l| l[index]))
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn describe(&self) -> String {
        format!(
            "parquet:{} ({} samples, {} files, {} row groups, {})",
            self.path.display(),
            self.count,
            self.files.len(),
            self.num_row_groups(),
            if self.labels.is_some() {
                "labelled"
            } else {
                "unlabelled"
            }
        )
    }
}
