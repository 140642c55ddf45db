//! `neighbours.parquet`: the k-NN table on disk.
//!
//! Schema (one row per embedded point):
//!
//! | column       | type                          | meaning                                   |
//! |--------------|-------------------------------|-------------------------------------------|
//! | `id`         | `UInt64`                      | the point's dataset id, strictly ascending|
//! | `neighbours` | `FixedSizeList<UInt32, k>`    | neighbour dataset ids, nearest first      |
//! | `distances`  | `FixedSizeList<Float32, k>`   | their distances, ascending                |
//! | `valid`      | `UInt32`                      | leading entries inside the radius (1..=k) |
//!
//! Ids are **dataset ids**, not row positions: a table computed from embeddings written with
//! `embed --skip-bad` has gaps where the bad samples were (row 13 may be id 14), and every
//! neighbour id is the id of another row of the table. Without gaps, `id` = row position, as
//! in every table written before gaps were allowed. `valid` is optional on read (absent = all
//! `k`), so tables made elsewhere load too.
//! Key-value metadata: `gps.knn.metric`, `gps.knn.k`, `gps.knn.include_self`,
//! `gps.knn.method`, `gps.knn.params` (JSON), `gps.knn.radius` (JSON),
//! `gps.knn.recall_estimate`, `gps.knn.summary` (JSON), and the provenance keys
//! `gps.embeddings.sha256` and `gps.dataset.fingerprint` (see [`NeighbourTable::check_dataset`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, UInt32Type, UInt64Type};
use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, RecordBatch, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::{knn::NeighbourLists, Error, Result};

/// Metadata key: SHA-256 (hex) of the embeddings file the table was computed from.
pub const META_EMBEDDINGS_SHA256: &str = "gps.embeddings.sha256";
/// Metadata key: SHA-256 (hex) of the embedding vectors themselves (`dim` as u64 LE, then every
/// f32's bits LE, row-major), for tables made from vectors in memory (e.g. the raw-pixel prior).
pub const META_EMBEDDINGS_VECTORS_SHA256: &str = "gps.embeddings.vectors_sha256";
/// Metadata key: fingerprint of the dataset the embeddings belong to.
pub const META_DATASET_FINGERPRINT: &str = "gps.dataset.fingerprint";
/// Metadata key: neighbours per row.
pub const META_KNN_K: &str = "gps.knn.k";

/// Metadata keys whose values decide what a table's lists mean, and so enter
/// [`NeighbourTable::content_sha256`]: the metric, `k`, include-self, the radius (τ), the dataset
/// and the prior / embeddings the lists were computed from. Timings and free-form summaries are
/// left out, so rebuilding the same lists gives the same hash.
pub const CONTENT_METADATA_KEYS: [&str; 11] = [
    "gps.knn.metric",
    META_KNN_K,
    "gps.knn.include_self",
    "gps.knn.radius",
    META_DATASET_FINGERPRINT,
    META_EMBEDDINGS_SHA256,
    META_EMBEDDINGS_VECTORS_SHA256,
    "gps.prior.name",
    "gps.prior.sha256",
    "gps.prior.input_size",
    "gps.prior.preprocess",
];

/// Rows per record batch when writing.
const WRITE_BATCH_ROWS: usize = 65_536;

/// Metadata key: number of samples in the dataset the table was made for (its rows may be
/// fewer: samples skipped as bad when embedding have no row).
pub const META_DATASET_LEN: &str = super::embeddings::DATASET_LEN_KEY;

/// A neighbour table with its file metadata.
///
/// Row `r` holds the neighbours of the sample with dataset id [`ids`](Self::ids)`[r]`; the
/// entries of [`lists`](Self::lists) are dataset ids too. Without gaps (`ids = 0..n`, see
/// [`is_dense`](Self::is_dense)) ids and row positions coincide.
#[derive(Debug, Clone, PartialEq)]
pub struct NeighbourTable {
    /// The table, `[n, k]`: row `r` = neighbours (dataset ids) of the sample `ids()[r]`.
    pub lists: NeighbourLists,
    /// Key-value metadata (`gps.*`).
    pub metadata: BTreeMap<String, String>,
    /// Dataset id of each row, strictly ascending, `[n]`.
    ids: Vec<u32>,
}

impl NeighbourTable {
    /// Pairs a table whose row `i` is dataset id `i` with its metadata; `gps.knn.k` is set
    /// from the table.
    pub fn new(lists: NeighbourLists, mut metadata: BTreeMap<String, String>) -> Self {
        metadata.insert(META_KNN_K.into(), lists.k().to_string());
        let ids = (0..lists.len() as u32).collect();
        NeighbourTable {
            lists,
            metadata,
            ids,
        }
    }

    /// A table over the rows of an embeddings table whose row `r` is dataset id `ids[r]` (e.g.
    /// [`EmbeddingTable::ids`](crate::store::EmbeddingTable::ids) of a file written with
    /// `skip_bad`): `lists` holds **row positions**, as [`NeighbourBuilder`](crate::knn::NeighbourBuilder)
    /// computes them over those rows, and every entry is mapped to its dataset id.
    ///
    /// Errors when `ids` does not have one entry per row, is not strictly ascending, or holds
    /// an id beyond `u32`.
    pub fn from_row_positions(
        lists: NeighbourLists,
        ids: &[u64],
        metadata: BTreeMap<String, String>,
    ) -> Result<Self> {
        if ids.len() != lists.len() {
            return Err(Error::mismatch(
                "neighbour table rows vs dataset ids",
                lists.len(),
                ids.len(),
            ));
        }
        let ids: Vec<u32> = ids
            .iter()
            .enumerate()
            .map(|(row, &id)| {
                u32::try_from(id).map_err(|_| {
                    Error::invalid("dataset id", format!("row {row}: id {id} exceeds u32"))
                })
            })
            .collect::<Result<_>>()?;
        if let Some(row) = ids.windows(2).position(|w| w[0] >= w[1]) {
            return Err(Error::invalid(
                "dataset ids",
                format!(
                    "row {}: id {} after {}; ids must be strictly ascending",
                    row + 1,
                    ids[row + 1],
                    ids[row]
                ),
            ));
        }
        let mapped = lists
            .ids_flat()
            .iter()
            .map(|&p| {
                ids.get(p as usize).copied().ok_or_else(|| {
                    Error::invalid(
                        "neighbour row position",
                        format!("{p} >= {} rows", ids.len()),
                    )
                })
            })
            .collect::<Result<Vec<u32>>>()?;
        let valid = lists.valid_counts().to_vec();
        let lists = NeighbourLists::new(lists.k(), mapped, lists.distances_flat().to_vec())?
            .with_valid(valid)?;
        let mut table = NeighbourTable::new(lists, metadata);
        table.ids = ids;
        Ok(table)
    }

    /// Dataset id of each row, strictly ascending, `[n]`.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// True when row `i` is dataset id `i` for every row (no gaps).
    pub fn is_dense(&self) -> bool {
        self.ids
            .last()
            .is_none_or(|&l| l as usize + 1 == self.ids.len())
    }

    /// The row of dataset id `id`, if it has one.
    pub fn row_of(&self, id: u32) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }

    /// The neighbours (dataset ids) of dataset id `id`, `None` when it has no row.
    pub fn neighbours_of(&self, id: u32) -> Option<&[u32]> {
        self.row_of(id).map(|r| self.lists.neighbours(r))
    }

    /// The dataset fingerprint recorded in the file, if any.
    pub fn fingerprint(&self) -> Option<&str> {
        self.metadata
            .get(META_DATASET_FINGERPRINT)
            .map(String::as_str)
    }

    /// Refuses a table made for another dataset of `rows` samples: errors with
    /// [`Error::Mismatch`] when the recorded fingerprint differs from `fingerprint` (or is
    /// missing), the recorded dataset size (`gps.dataset.len`) differs from `rows`, a row's id
    /// is not below `rows`, or — for a table without gaps that records no dataset size — the
    /// row count differs from `rows`. A table with fewer rows than the dataset is valid: the
    /// samples without a row (skipped as bad when embedding) are never drawn.
    pub fn check_dataset(&self, fingerprint: &str, rows: usize) -> Result<()> {
        let recorded_len = self.metadata.get(META_DATASET_LEN);
        if let Some(len) = recorded_len {
            if *len != rows.to_string() {
                return Err(Error::mismatch(
                    format!("dataset size recorded in the neighbour table ({META_DATASET_LEN})"),
                    rows,
                    len,
                ));
            }
        } else if self.is_dense() && self.lists.len() != rows {
            return Err(Error::mismatch(
                "neighbour table rows",
                rows,
                self.lists.len(),
            ));
        }
        if let Some(&last) = self.ids.last().filter(|&&l| l as usize >= rows) {
            return Err(Error::mismatch(
                format!(
                    "neighbour table row {} (id {last}): dataset ids",
                    self.ids.len() - 1
                ),
                format!("ids below {rows}"),
                last,
            ));
        }
        match self.fingerprint() {
            Some(f) if f == fingerprint => Ok(()),
            found => Err(Error::mismatch(
                "dataset fingerprint of neighbour table",
                fingerprint,
                found.unwrap_or("<none recorded>"),
            )),
        }
    }

    /// Hex SHA-256 of what the table says: `k`, every list (ids, distances as f32 bits, valid
    /// counts) and the metadata values of [`CONTENT_METADATA_KEYS`].
    /// The same lists computed twice hash the same even though their files differ (timings);
    /// a run's identity uses this hash, not the file's bytes.
    pub fn content_sha256(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"gps-ssl-neighbours-v1");
        h.update((self.lists.k() as u64).to_le_bytes());
        h.update((self.lists.len() as u64).to_le_bytes());
        for id in self.lists.ids_flat() {
            h.update(id.to_le_bytes());
        }
        for d in self.lists.distances_flat() {
            h.update(d.to_bits().to_le_bytes());
        }
        for v in self.lists.valid_counts() {
            h.update(v.to_le_bytes());
        }
        // Tables without gaps hash as they did before gaps were allowed.
        if !self.is_dense() {
            h.update(b"ids");
            for id in &self.ids {
                h.update(id.to_le_bytes());
            }
        }
        for key in CONTENT_METADATA_KEYS {
            let value = self.metadata.get(key).map_or("", String::as_str);
            for field in [key, value] {
                h.update((field.len() as u64).to_le_bytes());
                h.update(field.as_bytes());
            }
        }
        crate::dataset::hex(&h.finalize())
    }

    /// Writes `path` (zstd-compressed Parquet) via a temporary file and a rename.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let tmp = super::embeddings::tmp_path(path);
        let res = self.write_to(&tmp);
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
            return res;
        }
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    }

    fn write_to(&self, tmp: &Path) -> Result<()> {
        let k = self.lists.k();
        let k_i32 = i32::try_from(k).map_err(|_| Error::invalid("k", "too large for Arrow"))?;
        let schema = Arc::new(
            Schema::new(vec![
                Field::new("id", DataType::UInt64, false),
                Field::new(
                    "neighbours",
                    DataType::FixedSizeList(
                        Arc::new(Field::new("item", DataType::UInt32, false)),
                        k_i32,
                    ),
                    false,
                ),
                Field::new(
                    "distances",
                    DataType::FixedSizeList(
                        Arc::new(Field::new("item", DataType::Float32, false)),
                        k_i32,
                    ),
                    false,
                ),
                Field::new("valid", DataType::UInt32, false),
            ])
            .with_metadata(
                self.metadata
                    .clone()
                    .into_iter()
                    .collect::<std::collections::HashMap<_, _>>(),
            ),
        );
        let file = File::create(tmp).map_err(|e| Error::io(tmp, e))?;
        // One row group per batch: the writer flushes each batch to the file instead of
        // buffering up to parquet's default 1M rows, so writing holds one batch beyond the lists.
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(WRITE_BATCH_ROWS))
            .build();
        let pq = |e| Error::parquet(tmp, e);
        let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(pq)?;
        for (key, value) in &self.metadata {
            writer.append_key_value_metadata(KeyValue::new(key.clone(), value.clone()));
        }
        let n = self.lists.len();
        for start in (0..n).step_by(WRITE_BATCH_ROWS) {
            let end = (start + WRITE_BATCH_ROWS).min(n);
            let ids = UInt64Array::from_iter_values(self.ids[start..end].iter().map(|&i| i as u64));
            let nb = UInt32Array::from(self.lists.ids_flat()[start * k..end * k].to_vec());
            let ds = Float32Array::from(self.lists.distances_flat()[start * k..end * k].to_vec());
            let item_u = Arc::new(Field::new("item", DataType::UInt32, false));
            let item_f = Arc::new(Field::new("item", DataType::Float32, false));
            let columns: Vec<ArrayRef> = vec![
                Arc::new(ids),
                Arc::new(FixedSizeListArray::try_new(
                    item_u,
                    k_i32,
                    Arc::new(nb),
                    None,
                )?),
                Arc::new(FixedSizeListArray::try_new(
                    item_f,
                    k_i32,
                    Arc::new(ds),
                    None,
                )?),
                Arc::new(UInt32Array::from(
                    self.lists.valid_counts()[start..end].to_vec(),
                )),
            ];
            let batch = RecordBatch::try_new(schema.clone(), columns)?;
            writer.write(&batch).map_err(pq)?;
        }
        let file = writer.into_inner().map_err(pq)?;
        file.sync_all().map_err(|e| Error::io(tmp, e))
    }

    /// Reads and validates a table: schema, ids strictly ascending (gaps allowed), every
    /// neighbour id the id of a row, `valid` in `1..=k`, no nulls, `k` agreeing with
    /// `gps.knn.k` when present.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let pq = |e| Error::parquet(path, e);
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq)?;
        let mut metadata = BTreeMap::new();
        if let Some(kv) = builder.metadata().file_metadata().key_value_metadata() {
            for e in kv.iter().filter(|e| e.key.starts_with("gps.")) {
                metadata.insert(e.key.clone(), e.value.clone().unwrap_or_default());
            }
        }
        let schema = builder.schema().clone();
        let k = list_size(path, &schema, "neighbours", &DataType::UInt32)?;
        if list_size(path, &schema, "distances", &DataType::Float32)? != k {
            return Err(Error::format(
                path,
                "`neighbours` and `distances` differ in list size",
            ));
        }
        if let Some(meta_k) = metadata.get(META_KNN_K) {
            if meta_k != &k.to_string() {
                return Err(Error::format(
                    path,
                    format!("metadata {META_KNN_K}={meta_k} but lists have {k} entries"),
                ));
            }
        }
        let has_valid = schema.column_with_name("valid").is_some();
        let (mut ids, mut dists, mut valid) = (Vec::new(), Vec::new(), Vec::new());
        let mut row_ids: Vec<u32> = Vec::new();
        let mut row = 0u64;
        for batch in builder.build().map_err(pq)? {
            let batch = batch?;
            let id = column(path, &batch, "id")?
                .as_primitive_opt::<UInt64Type>()
                .ok_or_else(|| Error::format(path, "column `id` is not UInt64"))?;
            for (i, &v) in id.values().iter().enumerate() {
                let r = row + i as u64;
                let v32 = u32::try_from(v).map_err(|_| {
                    Error::format(path, format!("row {r}: id {v} exceeds the u32 id range"))
                })?;
                if let Some(&prev) = row_ids.last().filter(|&&p| p >= v32) {
                    return Err(Error::format(
                        path,
                        format!(
                            "row {r}: id {v} after id {prev}; ids must be strictly ascending \
                             dataset ids"
                        ),
                    ));
                }
                row_ids.push(v32);
            }
            let nb = flat_values(path, &batch, "neighbours")?;
            let nb = nb
                .as_primitive_opt::<UInt32Type>()
                .ok_or_else(|| Error::format(path, "`neighbours` items are not UInt32"))?;
            ids.extend_from_slice(nb.values());
            let ds = flat_values(path, &batch, "distances")?;
            let ds = ds
                .as_primitive_opt::<Float32Type>()
                .ok_or_else(|| Error::format(path, "`distances` items are not Float32"))?;
            dists.extend_from_slice(ds.values());
            if has_valid {
                let v = column(path, &batch, "valid")?
                    .as_primitive_opt::<UInt32Type>()
                    .ok_or_else(|| Error::format(path, "column `valid` is not UInt32"))?;
                valid.extend_from_slice(v.values());
            }
            row += batch.num_rows() as u64;
        }
        let n = row as usize;
        let dense = row_ids.last().is_none_or(|&l| l as usize + 1 == n);
        let has_row = |id: u32| {
            if dense {
                (id as usize) < n
            } else {
                row_ids.binary_search(&id).is_ok()
            }
        };
        if let Some(pos) = ids.iter().position(|&id| !has_row(id)) {
            return Err(Error::format(
                path,
                format!(
                    "row {} (id {}): neighbour id {} is not the id of any row ({n} rows{})",
                    pos / k,
                    row_ids[pos / k],
                    ids[pos],
                    if dense {
                        format!(", ids 0..{n}")
                    } else {
                        String::new()
                    }
                ),
            ));
        }
        let mut lists = NeighbourLists::new(k, ids, dists)?;
        if has_valid {
            lists = lists
                .with_valid(valid)
                .map_err(|e| Error::format(path, e.to_string()))?;
        }
        Ok(NeighbourTable {
            lists,
            metadata,
            ids: row_ids,
        })
    }
}

fn list_size(path: &Path, schema: &Schema, name: &str, item: &DataType) -> Result<usize> {
    let (_, field) = schema
        .column_with_name(name)
        .ok_or_else(|| Error::format(path, format!("no column `{name}`")))?;
    match field.data_type() {
        DataType::FixedSizeList(f, size) if f.data_type() == item && *size > 0 => {
            Ok(*size as usize)
        }
        other => Err(Error::format(
            path,
            format!("column `{name}` is {other}, expected FixedSizeList<{item}, k>"),
        )),
    }
}

fn column<'b>(path: &Path, batch: &'b RecordBatch, name: &str) -> Result<&'b ArrayRef> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| Error::format(path, format!("no column `{name}`")))?;
    if col.null_count() > 0 {
        return Err(Error::format(path, format!("column `{name}` has nulls")));
    }
    Ok(col)
}

fn flat_values(path: &Path, batch: &RecordBatch, name: &str) -> Result<ArrayRef> {
    let list = column(path, batch, name)?
        .as_fixed_size_list_opt()
        .ok_or_else(|| Error::format(path, format!("column `{name}` is not a FixedSizeList")))?;
    if list.values().null_count() > 0 {
        return Err(Error::format(
            path,
            format!("column `{name}` has null items"),
        ));
    }
    // Sliced lists: take exactly this batch's window of values.
    let size = list.value_length() as usize;
    Ok(list.values().slice(list.offset() * size, list.len() * size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NeighbourTable {
        let lists = NeighbourLists::new(
            2,
            vec![1, 2, 0, 2, 1, 0],
            vec![0.1, 0.2, 0.1, 0.3, 0.2, 0.3],
        )
        .unwrap()
        .with_valid(vec![2, 1, 2])
        .unwrap();
        let mut meta = BTreeMap::new();
        meta.insert(META_DATASET_FINGERPRINT.to_string(), "abc".to_string());
        NeighbourTable::new(lists, meta)
    }

    #[test]
    fn round_trip_keeps_lists_valid_counts_and_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.parquet");
        let t = sample();
        t.write(&path).unwrap();
        let back = NeighbourTable::read(&path).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.lists.valid(1), &[0]);
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "temp file renamed away");
    }

    #[test]
    fn check_dataset_refuses_other_fingerprint_or_size() {
        let t = sample();
        assert!(t.check_dataset("abc", 3).is_ok());
        assert!(matches!(
            t.check_dataset("xyz", 3),
            Err(Error::Mismatch { .. })
        ));
        assert!(matches!(
            t.check_dataset("abc", 4),
            Err(Error::Mismatch { .. })
        ));
    }

    /// Rows 0, 1, 2 of an embeddings table that holds dataset ids 0, 2 and 5 (ids 1, 3 and 4
    /// were skipped as bad).
    fn with_gaps() -> NeighbourTable {
        let positional = sample().lists;
        NeighbourTable::from_row_positions(positional, &[0, 2, 5], sample().metadata).unwrap()
    }

    #[test]
    fn row_positions_are_mapped_to_dataset_ids() {
        let t = with_gaps();
        assert!(!t.is_dense() && sample().is_dense());
        assert_eq!(t.ids(), &[0, 2, 5]);
        // sample(): row 0 -> [1, 2], row 1 -> [0, 2], row 2 -> [1, 0] (positions)
        assert_eq!(t.lists.ids_flat(), &[2, 5, 0, 5, 2, 0]);
        assert_eq!(t.neighbours_of(5), Some(&[2, 0][..]));
        assert_eq!(t.neighbours_of(1), None);
        assert_eq!(t.lists.valid_counts(), sample().lists.valid_counts());
        assert_ne!(t.content_sha256(), sample().content_sha256());
        let err = NeighbourTable::from_row_positions(sample().lists, &[0, 5, 2], BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("row 2") && err.contains("ascending"), "{err}");
        assert!(
            NeighbourTable::from_row_positions(sample().lists, &[0, 1], BTreeMap::new()).is_err()
        );
    }

    #[test]
    fn table_with_gaps_round_trips_and_checks_against_the_dataset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gaps.parquet");
        let t = with_gaps();
        t.write(&path).unwrap();
        let back = NeighbourTable::read(&path).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.content_sha256(), t.content_sha256());
        // Six samples, three of them without a row: valid. Five: id 5 is outside.
        assert!(back.check_dataset("abc", 6).is_ok());
        let err = back.check_dataset("abc", 5).unwrap_err().to_string();
        assert!(err.contains("id 5"), "{err}");
        let mut sized = back.clone();
        sized.metadata.insert(META_DATASET_LEN.into(), "7".into());
        let err = sized.check_dataset("abc", 6).unwrap_err().to_string();
        assert!(err.contains(META_DATASET_LEN) && err.contains('7'), "{err}");
        assert!(sized.check_dataset("abc", 7).is_ok());
    }

    #[test]
    fn reading_refuses_unsorted_ids_and_neighbours_without_a_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.parquet");
        let mut unsorted = with_gaps();
        unsorted.ids = vec![0, 5, 2];
        unsorted.write(&path).unwrap();
        let err = NeighbourTable::read(&path).unwrap_err().to_string();
        assert!(err.contains("row 2: id 2 after id 5"), "{err}");
        // Neighbour id 1 has no row in a table of ids 0, 2, 5.
        let mut dangling = with_gaps();
        dangling.lists = NeighbourLists::new(2, vec![2, 5, 0, 1, 2, 0], vec![0.0; 6]).unwrap();
        dangling.write(&path).unwrap();
        let err = NeighbourTable::read(&path).unwrap_err().to_string();
        assert!(
            err.contains("row 1 (id 2): neighbour id 1 is not the id of any row"),
            "{err}"
        );
    }

    #[test]
    fn reading_a_non_parquet_file_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.parquet");
        std::fs::write(&path, b"not parquet").unwrap();
        let err = NeighbourTable::read(&path).unwrap_err().to_string();
        assert!(err.contains("bad.parquet"), "{err}");
    }

    #[test]
    fn content_hash_ignores_timings_but_not_lists_or_settings() {
        let t = sample();
        let mut timed = t.clone();
        timed
            .metadata
            .insert("gps.knn.summary".into(), "{\"search_seconds\":1.5}".into());
        assert_eq!(t.content_sha256(), timed.content_sha256());
        let mut other_prior = t.clone();
        other_prior
            .metadata
            .insert("gps.prior.input_size".into(), "224".into());
        assert_ne!(t.content_sha256(), other_prior.content_sha256());
        let moved = NeighbourTable::new(
            NeighbourLists::new(
                2,
                vec![2, 1, 0, 2, 1, 0],
                vec![0.1, 0.2, 0.1, 0.3, 0.2, 0.3],
            )
            .unwrap()
            .with_valid(vec![2, 1, 2])
            .unwrap(),
            t.metadata.clone(),
        );
        assert_ne!(t.content_sha256(), moved.content_sha256());
    }
}
