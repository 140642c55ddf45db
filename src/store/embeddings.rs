//! `embeddings.parquet`: one row per embedded sample.
//!
//! Schema: `id: UInt64`, `key: Utf8`, `label: Int64` (nullable),
//! `embedding: FixedSizeList<Float32, D>`. File key-value metadata: `gps.prior.name`,
//! `gps.prior.sha256`, `gps.prior.input_size`, `gps.prior.preprocess`, `gps.embedding.dim`,
//! `gps.embedding.normalized`, `gps.dataset.fingerprint`, `gps.version` (plus
//! `gps.dataset.len`, the output name, where ONNX Runtime ran and its build
//! (`gps.embed.execution_provider`, `gps.embed.onnxruntime`) and, in shard part files,
//! `gps.shard`), written both as
//! Parquet key-value metadata and into the embedded Arrow schema (what pyarrow, polars and
//! DuckDB read). Files from other tools need only `id` and `embedding` (see
//! [`EmbeddingTable::read`]).
//!
//! Written with zstd, and BYTE_STREAM_SPLIT (no dictionary) on the embedding values.
//! Row groups are whole "chunks" of the dataset (see [`EmbedJob`](crate::embed::EmbedJob)), so a
//! resumed or a sharded-then-merged run produces the same bytes as one uninterrupted run.

use super::columns;
use crate::{Error, Result};
use arrow_array::{Array, ArrayRef, FixedSizeListArray, Float32Array, RecordBatch};
#[cfg(any(feature = "embed", feature = "train", test))]
use arrow_array::{Int64Array, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Metadata key: the shard `"i/n"` a part file holds (absent in whole files).
pub const SHARD_KEY: &str = "gps.shard";
/// Metadata key: number of samples in the dataset (all shards together).
pub const DATASET_LEN_KEY: &str = "gps.dataset.len";
/// Metadata key: embedding width `D`.
pub const DIM_KEY: &str = "gps.embedding.dim";

#[cfg(any(feature = "embed", feature = "train", test))]
/// Metadata key: SHA-256 of the prior's ONNX file.
pub const PRIOR_SHA256_KEY: &str = "gps.prior.sha256";
#[cfg(any(feature = "embed", feature = "train", test))]
/// Metadata key: the prior's input side in pixels.
pub const PRIOR_INPUT_SIZE_KEY: &str = "gps.prior.input_size";

/// Keys every embeddings file written by gps-ssl carries (a file from another tool may lack
/// any of them: the provenance it does not record is unknown, and [`EmbeddingTable::read`]
/// takes it as it is).
#[cfg(test)]
const REQUIRED_METADATA: [&str; 8] = [
    "gps.prior.name",
    PRIOR_SHA256_KEY,
    PRIOR_INPUT_SIZE_KEY,
    "gps.prior.preprocess",
    DIM_KEY,
    "gps.embedding.normalized",
    super::META_DATASET_FINGERPRINT,
    "gps.version",
];

/// An `embeddings.parquet` file in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingTable {
    /// Sample ids (dataset positions), ascending. `[n]`.
    pub ids: Vec<u64>,
    /// Sample keys. `[n]`.
    pub keys: Vec<String>,
    /// Labels, `None` when unknown. `[n]`.
    pub labels: Vec<Option<i64>>,
    /// Embedding width `D`.
    pub dim: usize,
    /// Embeddings, `[n, dim]` row-major.
    pub vectors: Vec<f32>,
    /// The file's `gps.*` key-value metadata.
    pub metadata: BTreeMap<String, String>,
}

#[cfg(any(feature = "embed", feature = "train", test))]
/// Rows of one chunk, ready to be written as one row group.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Rows {
    pub ids: Vec<u64>,
    pub keys: Vec<String>,
    pub labels: Vec<Option<i64>>,
    /// `[ids.len(), dim]`.
    pub vectors: Vec<f32>,
}

impl EmbeddingTable {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Embedding of row `i` (`[dim]`).
    ///
    /// # Panics
    /// When `i >= len()`.
    pub fn vector(&self, i: usize) -> &[f32] {
        &self.vectors[i * self.dim..(i + 1) * self.dim]
    }

    /// Reads an embeddings file, or a directory of shard part files (`*.parquet`, joined in
    /// shard order; every shard `0..n` must be present exactly once).
    ///
    /// Files from other tools are read too: the only required columns are `id` (any integer
    /// type, non-negative) and `embedding` (`FixedSizeList<Float32, D>` or `List<Float32>` with
    /// one width for every row); `key` (default: the id) and `label` (default: unknown) are
    /// optional, and the `gps.*` metadata, read from the Parquet key-value metadata or the
    /// Arrow schema, is kept as found — absent keys stay absent.
    ///
    /// # Errors
    /// Names the file, and the column or row, when a required column is missing, a column has
    /// the wrong type or nulls, an id is negative, a row's width differs from the first's, or
    /// the list width differs from `gps.embedding.dim`.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if path.is_dir() {
            let parts = ordered_parts(&list_parts(path)?)?;
            let mut table: Option<EmbeddingTable> = None;
            for (_, part) in parts {
                let t = read_file(&part)?;
                match &mut table {
                    None => table = Some(t),
                    Some(acc) => {
                        check_same_metadata(&acc.metadata, &t.metadata, &part)?;
                        acc.ids.extend(t.ids);
                        acc.keys.extend(t.keys);
                        acc.labels.extend(t.labels);
                        acc.vectors.extend(t.vectors);
                    }
                }
            }
            let mut table =
                table.ok_or_else(|| Error::format(path, "directory holds no *.parquet part"))?;
            table.metadata.remove(SHARD_KEY);
            Ok(table)
        } else {
            read_file(path)
        }
    }
}

/// The Arrow schema of an embeddings file with width `dim`.
pub(crate) fn schema(dim: usize) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("key", DataType::Utf8, false),
        Field::new("label", DataType::Int64, true),
        Field::new(
            "embedding",
            DataType::FixedSizeList(
                Arc::new(Field::new("item", DataType::Float32, false)),
                dim as i32,
            ),
            false,
        ),
    ]))
}

#[cfg(any(feature = "embed", feature = "train", test))]
/// Converts rows to a record batch of [`schema`]`(dim)`.
pub(crate) fn to_batch(rows: &Rows, dim: usize) -> Result<RecordBatch> {
    let values = Float32Array::from(rows.vectors.clone());
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let list = FixedSizeListArray::try_new(item, dim as i32, Arc::new(values), None)?;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from(rows.ids.clone())),
        Arc::new(StringArray::from_iter_values(rows.keys.iter())),
        Arc::new(Int64Array::from(rows.labels.clone())),
        Arc::new(list),
    ];
    Ok(RecordBatch::try_new(schema(dim), columns)?)
}

/// Writes groups of rows to `path` (through `path.tmp` + rename), one row group per item.
pub(crate) fn write_file(
    path: &Path,
    dim: usize,
    metadata: &BTreeMap<String, String>,
    groups: impl IntoIterator<Item = Result<RecordBatch>>,
) -> Result<()> {
    let tmp = tmp_path(path);
    let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let kv = metadata
        .iter()
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect();
    let embedding = ColumnPath::new(vec!["embedding".into(), "list".into(), "item".into()]);
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_column_dictionary_enabled(embedding.clone(), false)
        .set_column_encoding(embedding, Encoding::BYTE_STREAM_SPLIT)
        .set_max_row_group_row_count(None)
        .set_key_value_metadata(Some(kv))
        .build();
    // The `gps.*` keys go into the embedded Arrow schema too, where pyarrow, polars, pandas and
    // DuckDB (through Arrow) read a file's metadata.
    let schema = Arc::new(
        Schema::clone(&schema(dim)).with_metadata(
            metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<std::collections::HashMap<_, _>>(),
        ),
    );
    let mut writer =
        ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| Error::parquet(&tmp, e))?;
    for batch in groups {
        let batch = batch?;
        writer.write(&batch).map_err(|e| Error::parquet(&tmp, e))?;
        writer.flush().map_err(|e| Error::parquet(&tmp, e))?;
    }
    let file = writer.into_inner().map_err(|e| Error::parquet(&tmp, e))?;
    file.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// A temporary file next to `path` for a write that ends in a rename onto `path`:
/// `<path>.tmp.<process id>.<n>`, `n` counting the calls of this process, so two writers of the
/// same output (two processes, or two threads) never write into one temporary file; the last
/// rename wins, whole.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".tmp.{}.{n}", std::process::id()));
    PathBuf::from(s)
}

#[cfg(any(feature = "embed", feature = "train", test))]
/// An exclusive lock on an output a long job writes, held until dropped: `<path>.lock`, locked
/// with the OS's advisory file lock (`flock` on Linux; released when the process exits, however
/// it exits). A second writer of the same output, in this process or another, is refused
/// instead of clobbering the first one's files. The lock file itself stays (empty).
#[derive(Debug)]
pub(crate) struct OutputLock {
    _file: std::fs::File,
}

#[cfg(any(feature = "embed", feature = "train", test))]
impl OutputLock {
    /// Locks `path` for writing, or errors naming it when another writer holds it.
    pub(crate) fn acquire(path: &Path) -> Result<Self> {
        let mut name = path.as_os_str().to_owned();
        name.push(".lock");
        let lock = PathBuf::from(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(|e| Error::io(&lock, e))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::invalid(
                "output",
                format!(
                    "{} is being written by another job (its lock {} is held); wait for it or \
                     choose another output",
                    path.display(),
                    lock.display()
                ),
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&lock, e)),
        }
    }
}

/// Reads the `gps.*` (non-Arrow) key-value metadata of a Parquet file.
pub(crate) fn read_metadata(path: &Path) -> Result<BTreeMap<String, String>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| Error::parquet(path, e))?;
    Ok(kv_metadata(
        builder.metadata().file_metadata().key_value_metadata(),
    ))
}

fn kv_metadata(kv: Option<&Vec<KeyValue>>) -> BTreeMap<String, String> {
    kv.into_iter()
        .flatten()
        .filter(|kv| kv.key != "ARROW:schema")
        .map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default()))
        .collect()
}

/// Reads every row group of `path` as one record batch each (row group boundaries preserved).
pub(crate) fn read_groups(path: &Path) -> Result<Vec<RecordBatch>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| Error::parquet(path, e))?;
    let groups: Vec<usize> = builder
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows() as usize)
        .collect();
    let mut out = Vec::with_capacity(groups.len());
    for (i, rows) in groups.into_iter().enumerate() {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| Error::parquet(path, e))?
            .with_row_groups(vec![i])
            .with_batch_size(rows.max(1))
            .build()
            .map_err(|e| Error::parquet(path, e))?;
        let batches: Vec<RecordBatch> = reader.collect::<std::result::Result<_, _>>()?;
        let schema = batches
            .first()
            .map(|b| b.schema())
            .unwrap_or_else(|| schema(0));
        out.push(arrow_select::concat::concat_batches(&schema, &batches)?);
    }
    Ok(out)
}

fn read_file(path: &Path) -> Result<EmbeddingTable> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| Error::parquet(path, e))?;
    let mut metadata = kv_metadata(builder.metadata().file_metadata().key_value_metadata());
    let arrow_schema = builder.schema().clone();
    // A file written by another tool may carry its keys in the Arrow schema only.
    for (k, v) in arrow_schema.metadata() {
        metadata.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let recorded_dim = match metadata.get(DIM_KEY) {
        Some(v) => Some(v.parse::<usize>().map_err(|_| {
            Error::format(
                path,
                format!("metadata `{DIM_KEY}` = {v:?} is not a number"),
            )
        })?),
        None => None,
    };
    let column = |name: &str| arrow_schema.column_with_name(name);
    let integer = |t: &DataType| {
        matches!(
            t,
            DataType::UInt64
                | DataType::Int64
                | DataType::UInt32
                | DataType::Int32
                | DataType::UInt16
                | DataType::Int16
        )
    };
    let id_col = match column("id") {
        Some((i, f)) if integer(f.data_type()) => i,
        Some((_, f)) => {
            return Err(Error::format(
                path,
                format!(
                    "column `id` has type {}, expected an integer type",
                    f.data_type()
                ),
            ))
        }
        None => return Err(Error::format(path, "missing column `id`")),
    };
    let key_col = match column("key") {
        Some((i, f)) if matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8) => Some(i),
        Some((_, f)) => {
            return Err(Error::format(
                path,
                format!("column `key` has type {}, expected Utf8", f.data_type()),
            ))
        }
        None => None,
    };
    let label_col = match column("label") {
        Some((i, f)) if integer(f.data_type()) => Some(i),
        Some((_, f)) => {
            return Err(Error::format(
                path,
                format!(
                    "column `label` has type {}, expected an integer type",
                    f.data_type()
                ),
            ))
        }
        None => None,
    };
    let (emb, fixed_dim) = match column("embedding") {
        Some((i, f)) => match f.data_type() {
            DataType::FixedSizeList(item, d) if item.data_type() == &DataType::Float32 => {
                (i, Some(*d as usize))
            }
            DataType::List(item) | DataType::LargeList(item)
                if item.data_type() == &DataType::Float32 =>
            {
                (i, None)
            }
            other => {
                return Err(Error::format(
                    path,
                    format!(
                        "column `embedding` has type {other}, expected FixedSizeList<Float32, D> \
                         or List<Float32>"
                    ),
                ))
            }
        },
        None => return Err(Error::format(path, "missing column `embedding`")),
    };
    if let (Some(d), Some(m)) = (fixed_dim, recorded_dim) {
        if d != m {
            return Err(Error::format(
                path,
                format!("column `embedding` has width {d}, but metadata `{DIM_KEY}` says {m}"),
            ));
        }
    }
    let reader = builder
        .with_batch_size(8192)
        .build()
        .map_err(|e| Error::parquet(path, e))?;
    let mut table = EmbeddingTable {
        ids: Vec::new(),
        keys: Vec::new(),
        labels: Vec::new(),
        dim: fixed_dim.or(recorded_dim).unwrap_or(0),
        vectors: Vec::new(),
        metadata,
    };
    let mut dim = fixed_dim.or(recorded_dim);
    for batch in reader {
        let batch = batch?;
        let rows_before = table.ids.len();
        let ids = {
            let col = batch.column(id_col);
            if col.null_count() > 0 {
                return Err(Error::format(path, "column `id` contains nulls"));
            }
            columns::to_u64(col).map_err(|e| Error::format(path, format!("column `id`: {e}")))?
        };
        let n = ids.len();
        table.ids.extend_from_slice(&ids);
        match key_col {
            Some(i) => {
                let keys = columns::to_strings(batch.column(i))
                    .map_err(|e| Error::format(path, format!("column `key`: {e}")))?;
                for (r, k) in keys.into_iter().enumerate() {
                    let k = k.ok_or_else(|| {
                        Error::format(
                            path,
                            format!("row {}: column `key` is null", rows_before + r),
                        )
                    })?;
                    table.keys.push(k);
                }
            }
            // No key column: the id stands for the sample.
            None => table.keys.extend(ids.iter().map(u64::to_string)),
        }
        match label_col {
            Some(i) => {
                let labels = columns::to_i64(batch.column(i))
                    .map_err(|e| Error::format(path, format!("column `label`: {e}")))?;
                table.labels.extend(labels);
            }
            None => table.labels.extend(std::iter::repeat_n(None, n)),
        }
        let col = batch.column(emb);
        if col.null_count() > 0 {
            return Err(Error::format(path, "column `embedding` contains nulls"));
        }
        // Every row of a List column must have the width of the first.
        let (values, offsets): (ArrayRef, Vec<usize>) =
            if let Some(list) = col.as_any().downcast_ref::<FixedSizeListArray>() {
                let d = list.value_length() as usize;
                let offsets = (0..=list.len()).map(|r| (list.offset() + r) * d).collect();
                (list.values().clone(), offsets)
            } else if let Some(list) = col.as_any().downcast_ref::<arrow_array::ListArray>() {
                let offsets = list.value_offsets().iter().map(|&o| o as usize).collect();
                (list.values().clone(), offsets)
            } else if let Some(list) = col.as_any().downcast_ref::<arrow_array::LargeListArray>() {
                let offsets = list.value_offsets().iter().map(|&o| o as usize).collect();
                (list.values().clone(), offsets)
            } else {
                return Err(Error::format(
                    path,
                    "column `embedding`: unexpected array type",
                ));
            };
        let values = values
            .as_any()
            .downcast_ref::<Float32Array>()
            .ok_or_else(|| Error::format(path, "column `embedding`: values are not float32"))?;
        if values.null_count() > 0 {
            return Err(Error::format(
                path,
                "column `embedding` contains null values",
            ));
        }
        for (r, w) in offsets.windows(2).enumerate() {
            let width = w[1] - w[0];
            let want = *dim.get_or_insert(width);
            if width != want {
                return Err(Error::format(
                    path,
                    format!(
                        "row {}: column `embedding` has {width} values, expected {want} (the \
                         width of the first row)",
                        rows_before + r
                    ),
                ));
            }
            table
                .vectors
                .extend_from_slice(&values.values()[w[0]..w[1]]);
        }
    }
    table.dim = dim.unwrap_or(0);
    Ok(table)
}

/// `*.parquet` files directly inside `dir`, sorted by name.
pub(crate) fn list_parts(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut parts: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "parquet") && p.is_file())
        .collect();
    parts.sort();
    Ok(parts)
}

/// Orders shard part files by shard index and checks that shards `0..n` are all present once.
pub(crate) fn ordered_parts(parts: &[PathBuf]) -> Result<Vec<(usize, PathBuf)>> {
    let mut seen: BTreeMap<usize, PathBuf> = BTreeMap::new();
    let mut count = None;
    for part in parts {
        let meta = read_metadata(part)?;
        let shard = meta.get(SHARD_KEY).ok_or_else(|| {
            Error::format(
                part,
                format!("not a shard part file (no `{SHARD_KEY}` metadata)"),
            )
        })?;
        let (i, n) = shard
            .split_once('/')
            .and_then(|(i, n)| Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?)))
            .ok_or_else(|| Error::format(part, format!("bad `{SHARD_KEY}` value {shard:?}")))?;
        if *count.get_or_insert(n) != n {
            return Err(Error::mismatch(
                format!("shard count of {}", part.display()),
                count.unwrap_or(n),
                n,
            ));
        }
        if let Some(other) = seen.insert(i, part.clone()) {
            return Err(Error::format(
                part,
                format!("shard {i}/{n} also in {}", other.display()),
            ));
        }
    }
    let n = count.unwrap_or(0);
    if let Some(missing) = (0..n).find(|i| !seen.contains_key(i)) {
        return Err(Error::invalid(
            "shard parts",
            format!(
                "shard {missing}/{n} is missing among {} part file(s)",
                parts.len()
            ),
        ));
    }
    Ok(seen.into_iter().collect())
}

fn check_same_metadata(
    first: &BTreeMap<String, String>,
    other: &BTreeMap<String, String>,
    path: &Path,
) -> Result<()> {
    let strip = |m: &BTreeMap<String, String>| {
        let mut m = m.clone();
        m.remove(SHARD_KEY);
        m
    };
    let (a, b) = (strip(first), strip(other));
    if a != b {
        let key = a
            .keys()
            .chain(b.keys())
            .find(|k| a.get(*k) != b.get(*k))
            .cloned()
            .unwrap_or_default();
        return Err(Error::mismatch(
            format!("metadata `{key}` of {} vs the first part", path.display()),
            a.get(&key).cloned().unwrap_or_default(),
            b.get(&key).cloned().unwrap_or_default(),
        ));
    }
    Ok(())
}

/// Joins shard part files (every shard `0..n` once) into one embeddings file at `out`.
///
/// The result is byte-identical to an unsharded run with the same settings: row groups are
/// copied in shard order and the `gps.shard` key is dropped.
///
/// # Errors
/// When a shard is missing or duplicated, when parts disagree on metadata, or on I/O errors.
pub fn merge_embeddings(parts: &[PathBuf], out: &Path) -> Result<()> {
    let ordered = ordered_parts(parts)?;
    let first = ordered
        .first()
        .ok_or_else(|| Error::invalid("shard parts", "no part file given"))?;
    let mut metadata = read_metadata(&first.1)?;
    for (_, part) in &ordered[1..] {
        check_same_metadata(&metadata, &read_metadata(part)?, part)?;
    }
    metadata.remove(SHARD_KEY);
    let dim: usize = metadata
        .get(DIM_KEY)
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| Error::format(&first.1, format!("missing or bad `{DIM_KEY}` metadata")))?;
    let mut groups = Vec::new();
    for (_, part) in &ordered {
        groups.extend(read_groups(part)?.into_iter().map(Ok));
    }
    write_file(out, dim, &metadata, groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(dim: usize) -> BTreeMap<String, String> {
        REQUIRED_METADATA
            .iter()
            .map(|k| {
                (
                    k.to_string(),
                    if *k == DIM_KEY {
                        dim.to_string()
                    } else {
                        format!("v-{k}")
                    },
                )
            })
            .collect()
    }

    fn rows(ids: std::ops::Range<u64>, dim: usize) -> Rows {
        Rows {
            ids: ids.clone().collect(),
            keys: ids.clone().map(|i| format!("k{i}")).collect(),
            labels: ids
                .clone()
                .map(|i| (i % 3 != 0).then_some(i as i64))
                .collect(),
            vectors: ids
                .flat_map(|i| (0..dim).map(move |d| i as f32 + d as f32 / 10.0))
                .collect(),
        }
    }

    #[test]
    fn round_trip_keeps_rows_metadata_and_row_groups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.parquet");
        let (a, b) = (rows(0..5, 3), rows(5..7, 3));
        write_file(&path, 3, &meta(3), [to_batch(&a, 3), to_batch(&b, 3)]).unwrap();
        let t = EmbeddingTable::read(&path).unwrap();
        assert_eq!(t.ids, (0..7).collect::<Vec<_>>());
        assert_eq!(t.labels[3], None);
        assert_eq!(t.labels[4], Some(4));
        assert_eq!(t.vector(6), &[6.0, 6.1, 6.2]);
        assert_eq!(t.metadata, meta(3));
        assert_eq!(read_groups(&path).unwrap().len(), 2);
        // The embedding column uses BYTE_STREAM_SPLIT + zstd.
        let file = std::fs::File::open(&path).unwrap();
        let md = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .metadata()
            .clone();
        let col = md.row_group(0).column(3);
        assert_eq!(col.column_path().string(), "embedding.list.item");
        assert!(col.encodings().any(|e| e == Encoding::BYTE_STREAM_SPLIT));
        assert!(matches!(col.compression(), Compression::ZSTD(_)));
        // Nothing but the file is left next to it.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["e.parquet"]);
    }

    /// Temporary names differ from call to call; a second lock on an output is refused until
    /// the first is dropped.
    #[test]
    fn temporary_names_are_unique_and_outputs_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.parquet");
        assert_ne!(tmp_path(&path), tmp_path(&path));
        let first = OutputLock::acquire(&path).unwrap();
        let err = OutputLock::acquire(&path).unwrap_err().to_string();
        assert!(
            err.contains("e.parquet") && err.contains("another job"),
            "{err}"
        );
        drop(first);
        OutputLock::acquire(&path).unwrap();
    }

    #[test]
    fn wrong_dim_metadata_is_reported_with_file_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.parquet");
        let mut m = meta(3);
        m.insert(DIM_KEY.into(), "4".into());
        write_file(&path, 3, &m, [to_batch(&rows(0..2, 3), 3)]).unwrap();
        let msg = EmbeddingTable::read(&path).unwrap_err().to_string();
        assert!(
            msg.contains("e.parquet") && msg.contains("`embedding`") && msg.contains('4'),
            "{msg}"
        );
    }

    #[test]
    fn missing_column_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.parquet");
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::UInt64, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(UInt64Array::from(vec![1u64]))],
        )
        .unwrap();
        let kv = meta(3)
            .into_iter()
            .map(|(k, v)| KeyValue::new(k, v))
            .collect();
        let props = WriterProperties::builder()
            .set_key_value_metadata(Some(kv))
            .build();
        let mut w =
            ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, Some(props))
                .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let msg = EmbeddingTable::read(&path).unwrap_err().to_string();
        assert!(
            msg.contains("x.parquet") && msg.contains("missing column `embedding`"),
            "{msg}"
        );
    }

    #[test]
    fn missing_shard_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = meta(2);
        m.insert(SHARD_KEY.into(), "1/3".into());
        let p = dir.path().join("p1.parquet");
        write_file(&p, 2, &m, [to_batch(&rows(0..2, 2), 2)]).unwrap();
        let msg = merge_embeddings(&[p], &dir.path().join("out.parquet"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("shard 0/3 is missing"), "{msg}");
    }
}
