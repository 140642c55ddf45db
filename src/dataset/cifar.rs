//! CIFAR-10 / CIFAR-100 binary batches (`data_batch_1.bin`, `test_batch.bin`, `train.bin`...).
//!
//! A batch file is a sequence of fixed-size records: the label byte(s) then 3072 bytes of
//! pixels stored as three 32×32 planes (all R, then all G, then all B, each row-major).
//! - CIFAR-10: 1 label byte (`0..10`) → 3073 bytes a record.
//! - CIFAR-100: coarse label (`0..20`) then fine label (`0..100`) → 3074 bytes a record.
//!
//! Files are read whole into memory (50,000 records = 154 MB) and validated at open: the length
//! must be a non-zero multiple of the record size and every label in range. Images are returned
//! as 32×32×3 `HWC` (interleaved), converted from the planar layout.
//!
//! **Keys** are `"<file stem>#<record>"` (`data_batch_1#17`); several files are concatenated in
//! the order given.

use super::fingerprint::Fingerprinter;
use super::{DataSource, Image, Sample};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Side of a CIFAR image in pixels.
pub const CIFAR_SIDE: u32 = 32;
/// Pixel bytes of one CIFAR image (`3 × 32 × 32`).
pub const CIFAR_PIXELS: usize = 3 * 32 * 32;

/// CIFAR-10 class names, indexed by label.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Which CIFAR layout a batch file has, and which label to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CifarFormat {
    /// CIFAR-10: one label byte, 10 classes.
    Cifar10,
    /// CIFAR-100, returning the fine label (100 classes). The usual choice.
    Cifar100Fine,
    /// CIFAR-100, returning the coarse (superclass) label (20 classes).
    Cifar100Coarse,
}

impl CifarFormat {
    /// Bytes of one record: label byte(s) + [`CIFAR_PIXELS`].
    pub fn record_size(self) -> usize {
        self.label_bytes() + CIFAR_PIXELS
    }

    /// Number of classes of the returned label.
    pub fn num_classes(self) -> u8 {
        match self {
            CifarFormat::Cifar10 => 10,
            CifarFormat::Cifar100Fine => 100,
            CifarFormat::Cifar100Coarse => 20,
        }
    }

    fn label_bytes(self) -> usize {
        match self {
            CifarFormat::Cifar10 => 1,
            CifarFormat::Cifar100Fine | CifarFormat::Cifar100Coarse => 2,
        }
    }

    fn name(self) -> &'static str {
        match self {
            CifarFormat::Cifar10 => "cifar10",
            CifarFormat::Cifar100Fine => "cifar100-fine",
            CifarFormat::Cifar100Coarse => "cifar100-coarse",
        }
    }
}

struct BatchFile {
    path: PathBuf,
    stem: String,
    /// Index of this file's first record in the source.
    first: usize,
    /// Raw records.
    data: Vec<u8>,
}

/// Samples from one or several CIFAR binary batch files, held in memory.
///
/// ```no_run
/// use gps_ssl::dataset::{CifarFormat, CifarSource, DataSource};
/// let test = CifarSource::open(CifarFormat::Cifar10, &["cifar-10-batches-bin/test_batch.bin"])?;
/// assert_eq!(test.len(), 10_000);
/// # Ok::<(), gps_ssl::Error>(())
/// ```
pub struct CifarSource {
    format: CifarFormat,
    files: Vec<BatchFile>,
    count: usize,
    fingerprint: String,
}

impl std::fmt::Debug for CifarSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CifarSource")
            .field("format", &self.format)
            .field(
                "files",
                &self.files.iter().map(|b| &b.path).collect::<Vec<_>>(),
            )
            .field("count", &self.count)
            .finish()
    }
}

impl CifarSource {
    /// Opens the batch files `paths` (at least one), concatenated in that order.
    ///
    /// Errors ([`Error::Format`] naming the file) when a file is empty, its length is not a
    /// multiple of the record size, or a label is out of range for `format`.
    pub fn open<P: AsRef<Path>>(format: CifarFormat, paths: &[P]) -> Result<Self> {
        if paths.is_empty() {
            return Err(Error::invalid("CIFAR batch files", "no file given"));
        }
        let record = format.record_size();
        let mut files = Vec::with_capacity(paths.len());
        let mut count = 0usize;
        let mut fp_entries = Vec::with_capacity(paths.len());
        for p in paths {
            let path = p.as_ref().to_path_buf();
            let data = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            if data.is_empty() || !data.len().is_multiple_of(record) {
                return Err(Error::format(
                    &path,
                    format!(
                        "{} bytes is not a non-zero multiple of the {} record size {record} \
                         ({} label byte(s) + {CIFAR_PIXELS} pixel bytes); {} remain after {} records",
                        data.len(),
                        format.name(),
                        format.label_bytes(),
                        data.len() % record,
                        data.len() / record
                    ),
                ));
            }
            validate_labels(&path, &data, format)?;
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string());
            fp_entries.push((stem.clone(), super::fingerprint::sha256(&data), data.len()));
            let n = data.len() / record;
            files.push(BatchFile {
                path,
                stem,
                first: count,
                data,
            });
            count += n;
        }
        let mut fp = Fingerprinter::new("cifar", count);
        fp.option("format", format.name());
        for (stem, digest, len) in &fp_entries {
            fp.entry_digest(stem, *len as u64, digest);
        }
        tracing::debug!(
            files = files.len(),
            count,
            format = format.name(),
            "opened CIFAR batches"
        );
        Ok(CifarSource {
            format,
            files,
            count,
            fingerprint: fp.finish(),
        })
    }

    /// The layout and label choice.
    pub fn format(&self) -> CifarFormat {
        self.format
    }

    /// The batch files, in order.
    pub fn paths(&self) -> Vec<&Path> {
        self.files.iter().map(|f| f.path.as_path()).collect()
    }

    /// The file and record index within it of sample `index`.
    fn locate(&self, index: usize) -> Result<(&BatchFile, usize)> {
        if index >= self.count {
            return Err(super::out_of_range(index, &self.describe(), self.count));
        }
        let f = self.files.partition_point(|f| f.first <= index) - 1;
        let file = &self.files[f];
        Ok((file, index - file.first))
    }

    fn label_of(&self, file: &BatchFile, row: usize) -> i64 {
        let rec = &file.data[row * self.format.record_size()..];
        i64::from(match self.format {
            CifarFormat::Cifar10 | CifarFormat::Cifar100Coarse => rec[0],
            CifarFormat::Cifar100Fine => rec[1],
        })
    }
}

fn validate_labels(path: &Path, data: &[u8], format: CifarFormat) -> Result<()> {
    let limits: &[(u8, &str)] = match format {
        CifarFormat::Cifar10 => &[(10, "label")],
        _ => &[(20, "coarse label"), (100, "fine label")],
    };
    for (row, rec) in data.chunks_exact(format.record_size()).enumerate() {
        for (b, &(limit, what)) in limits.iter().enumerate() {
            if rec[b] >= limit {
                return Err(Error::format(
                    path,
                    format!(
                        "record {row}: {what} {} out of range 0..{limit} for {} (wrong format?)",
                        rec[b],
                        format.name()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Planar `[3, 32, 32]` → interleaved `[32, 32, 3]`.
fn planar_to_hwc(planes: &[u8]) -> Vec<u8> {
    let n = (CIFAR_SIDE * CIFAR_SIDE) as usize;
    let (r, rest) = planes.split_at(n);
    let (g, b) = rest.split_at(n);
    let mut out = Vec::with_capacity(3 * n);
    for i in 0..n {
        out.extend_from_slice(&[r[i], g[i], b[i]]);
    }
    out
}

impl DataSource for CifarSource {
    fn len(&self) -> usize {
        self.count
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let (file, row) = self.locate(index)?;
        let size = self.format.record_size();
        let rec = &file.data[row * size..(row + 1) * size];
        let pixels = planar_to_hwc(&rec[self.format.label_bytes()..]);
        Ok(Sample {
            id: index as u64,
            key: format!("{}#{row}", file.stem),
            label: Some(self.label_of(file, row)),
            image: Image::new(CIFAR_SIDE, CIFAR_SIDE, 3, pixels),
        })
    }

    fn key(&self, index: usize) -> Result<String> {
        let (file, row) = self.locate(index)?;
        Ok(format!("{}#{row}", file.stem))
    }

    fn label(&self, index: usize) -> Result<Option<i64>> {
        let (file, row) = self.locate(index)?;
        Ok(Some(self.label_of(file, row)))
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn class_names(&self) -> Option<Vec<String>> {
        (self.format == CifarFormat::Cifar10)
            .then(|| CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect())
    }

    fn channels(&self) -> Option<u8> {
        Some(3)
    }

    fn image_size(&self) -> Option<(u32, u32)> {
        Some((CIFAR_SIDE, CIFAR_SIDE))
    }

    fn describe(&self) -> String {
        let first = self
            .files
            .first()
            .map(|f| f.path.display().to_string())
            .unwrap_or_default();
        let more = if self.files.len() > 1 {
            format!(" + {} more files", self.files.len() - 1)
        } else {
            String::new()
        };
        format!(
            "{}:{first}{more} ({} samples, 32x32x3)",
            self.format.name(),
            self.count
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planar_to_hwc_interleaves_planes() {
        let n = 1024;
        let mut planes = vec![0u8; 3 * n];
        planes[5] = 10; // R of pixel 5
        planes[n + 5] = 20; // G of pixel 5
        planes[2 * n + 5] = 30; // B of pixel 5
        let hwc = planar_to_hwc(&planes);
        assert_eq!(&hwc[15..18], &[10, 20, 30]);
        assert_eq!(hwc.len(), 3 * n);
    }

    #[test]
    fn multiple_files_are_concatenated_with_per_file_keys() {
        let dir = tempfile::tempdir().unwrap();
        let rec = |label: u8, fill: u8| {
            let mut r = vec![label];
            r.extend(std::iter::repeat_n(fill, CIFAR_PIXELS));
            r
        };
        let a = dir.path().join("data_batch_1.bin");
        let b = dir.path().join("data_batch_2.bin");
        std::fs::write(&a, [rec(1, 11), rec(2, 22)].concat()).unwrap();
        std::fs::write(&b, rec(9, 99)).unwrap();
        let src = CifarSource::open(CifarFormat::Cifar10, &[&a, &b]).unwrap();
        assert_eq!(src.len(), 3);
        let s = src.get(2).unwrap();
        assert_eq!((s.key.as_str(), s.label), ("data_batch_2#0", Some(9)));
        assert_eq!(s.image.at(31, 31, 2), 99);
        assert_eq!(src.key(1).unwrap(), "data_batch_1#1");
        assert!(src.get(3).is_err());
    }

    #[test]
    fn out_of_range_label_is_a_format_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("bad.bin");
        let mut r = vec![12u8];
        r.extend(std::iter::repeat_n(0, CIFAR_PIXELS));
        std::fs::write(&a, r).unwrap();
        let msg = CifarSource::open(CifarFormat::Cifar10, &[&a])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("bad.bin") && msg.contains("record 0: label 12"),
            "{msg}"
        );
    }
}
