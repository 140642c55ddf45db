//! MNIST-style IDX files (MNIST, Fashion-MNIST, KMNIST...), gzip-compressed or raw.
//!
//! An IDX file is a big-endian header — magic `0x0000_08NN` (`08` = unsigned bytes, `NN` = number
//! of dimensions), then `NN` u32 dimensions — followed by the bytes of the array. Images files
//! are `[n, rows, cols]` (magic `0x0000_0803`), labels files `[n]` (magic `0x0000_0801`).
//! Gzip is detected from the content (magic `1f 8b`), not from the file name.
//!
//! The whole (decompressed) file is kept in memory: 60,000 Fashion-MNIST images are 47 MB.
//!
//! **Keys** are `"<stem>#<row>"`, where `<stem>` is the images file name without
//! `-images-idx3-ubyte[.gz]` (or `.idx3-ubyte[.gz]`, or `.gz`): row 17 of
//! `train-images-idx3-ubyte.gz` has key `train#17`. Keys are therefore stable across copies of the
//! data and distinguish the train and test splits.

use super::fingerprint::Fingerprinter;
use super::{DataSource, Image, Sample};
use crate::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Magic number of an IDX file of unsigned bytes with 3 dimensions (`[n, rows, cols]` images).
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension (`[n]` labels).
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// Images (and optional labels) read from IDX files, held in memory.
///
/// Images are `rows × cols × 1` (grey), labels `0..=255` when a labels file is given.
///
/// ```no_run
/// use gps_ssl::dataset::{DataSource, IdxSource};
/// let train = IdxSource::open_prefix("data/fashion-mnist/train")?;
/// assert_eq!(train.len(), 10_000);
/// let s = train.get(0)?;
/// assert_eq!((s.image.width, s.image.height, s.image.channels), (28, 28, 1));
/// # Ok::<(), gps_ssl::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct IdxSource {
    images_path: PathBuf,
    labels_path: Option<PathBuf>,
    stem: String,
    count: usize,
    rows: u32,
    cols: u32,
    /// `count * rows * cols` bytes, row-major.
    pixels: Vec<u8>,
    labels: Option<Vec<u8>>,
    fingerprint: String,
}

impl IdxSource {
    /// Opens an images file and, optionally, its labels file.
    ///
    /// Errors ([`Error::Format`] naming the file) on a wrong magic number, a zero dimension, a
    /// truncated or over-long file (expected vs found bytes), a corrupt gzip stream, or a label
    /// count that differs from the image count.
    pub fn open(images: impl AsRef<Path>, labels: Option<&Path>) -> Result<Self> {
        let images_path = images.as_ref().to_path_buf();
        let raw = read_maybe_gz(&images_path, IDX_IMAGES_MAGIC)?;
        let (dims, offset) = parse_header(&images_path, &raw, IDX_IMAGES_MAGIC, "images")?;
        let (count, rows, cols) = (dims[0] as usize, dims[1], dims[2]);
        if rows == 0 || cols == 0 {
            return Err(Error::format(
                &images_path,
                format!("IDX images must have non-zero rows and cols, found {rows}x{cols}"),
            ));
        }
        let mut pixels = raw;
        pixels.drain(..offset);

        let labels_data = match labels {
            Some(path) => {
                let raw = read_maybe_gz(path, IDX_LABELS_MAGIC)?;
                let (ldims, loff) = parse_header(path, &raw, IDX_LABELS_MAGIC, "labels")?;
                if ldims[0] as usize != count {
                    return Err(Error::format(
                        path,
                        format!(
                            "label count {} does not match the {count} images of {}",
                            ldims[0],
                            images_path.display()
                        ),
                    ));
                }
                let mut l = raw;
                l.drain(..loff);
                Some(l)
            }
            None => None,
        };

        let stem = idx_stem(&images_path);
        let mut fp = Fingerprinter::new("idx", count);
        fp.option("shape", &format!("{rows}x{cols}x1"));
        fp.entry(&format!("{stem}-images"), &pixels);
        if let Some(l) = &labels_data {
            fp.entry(&format!("{stem}-labels"), l);
        }
        tracing::debug!(path = %images_path.display(), count, rows, cols, "opened IDX images");
        Ok(IdxSource {
            images_path,
            labels_path: labels.map(Path::to_path_buf),
            stem,
            count,
            rows,
            cols,
            pixels,
            labels: labels_data,
            fingerprint: fp.finish(),
        })
    }

    /// Opens `<prefix>-images-idx3-ubyte[.gz]` and, when it exists,
    /// `<prefix>-labels-idx1-ubyte[.gz]` (the raw file is preferred when both forms exist).
    ///
    /// `open_prefix("data/fashion-mnist/t10k")` opens the Fashion-MNIST test split.
    pub fn open_prefix(prefix: impl AsRef<Path>) -> Result<Self> {
        let prefix = prefix.as_ref();
        let images = find_with_suffix(prefix, "-images-idx3-ubyte").ok_or_else(|| {
            Error::format(
                prefix,
                format!(
                    "no IDX images file `{p}-images-idx3-ubyte` or `{p}-images-idx3-ubyte.gz`",
                    p = prefix.display()
                ),
            )
        })?;
        let labels = find_with_suffix(prefix, "-labels-idx1-ubyte");
        Self::open(images, labels.as_deref())
    }

    /// Path of the images file.
    pub fn images_path(&self) -> &Path {
        &self.images_path
    }

    /// Path of the labels file, when one was given.
    pub fn labels_path(&self) -> Option<&Path> {
        self.labels_path.as_deref()
    }

    /// Image height in pixels.
    pub fn rows(&self) -> u32 {
        self.rows
    }

    /// Image width in pixels.
    pub fn cols(&self) -> u32 {
        self.cols
    }

    /// All pixels, `[n, rows, cols]` row-major u8.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// All labels (`[n]`), when a labels file was given.
    pub fn labels(&self) -> Option<&[u8]> {
        self.labels.as_deref()
    }

    /// The raw `rows * cols` bytes of image `index` without copying.
    pub fn image_bytes(&self, index: usize) -> Result<&[u8]> {
        self.check(index)?;
        let size = self.rows as usize * self.cols as usize;
        Ok(&self.pixels[index * size..(index + 1) * size])
    }

    fn check(&self, index: usize) -> Result<()> {
        if index >= self.count {
            return Err(super::out_of_range(index, &self.describe(), self.count));
        }
        Ok(())
    }
}

impl DataSource for IdxSource {
    fn len(&self) -> usize {
        self.count
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let bytes = self.image_bytes(index)?.to_vec();
        Ok(Sample {
            id: index as u64,
            key: format!("{}#{index}", self.stem),
            label: self.labels.as_ref().map(|l| i64::from(l[index])),
            image: Image::new(self.cols, self.rows, 1, bytes),
        })
    }

    fn key(&self, index: usize) -> Result<String> {
        self.check(index)?;
        Ok(format!("{}#{index}", self.stem))
    }

    fn label(&self, index: usize) -> Result<Option<i64>> {
        self.check(index)?;
        Ok(self.labels.as_ref().map(|l| i64::from(l[index])))
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn channels(&self) -> Option<u8> {
        Some(1)
    }

    fn image_size(&self) -> Option<(u32, u32)> {
        Some((self.cols, self.rows))
    }

    fn describe(&self) -> String {
        format!(
            "idx:{} ({} samples, {}x{}x1, {})",
            self.images_path.display(),
            self.count,
            self.rows,
            self.cols,
            if self.labels.is_some() {
                "labelled"
            } else {
                "unlabelled"
            }
        )
    }
}

/// Reads an IDX file with `magic`, gunzipping it when it starts with the gzip magic `1f 8b`.
///
/// A gzip stream is decompressed no further than the IDX header it starts with declares, plus
/// one byte: at most what the file needs (a gzip bomb or a stream with more data than the header
/// declares stops there, and [`parse_header`] reports the extra byte as "too long"; a short one
/// as "truncated"). Nothing is allocated from the header's sizes before the data arrives. A
/// corrupt or truncated gzip stream is an [`Error::Format`] naming the file.
pub(crate) fn read_maybe_gz(path: &Path, magic: u32) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if !(raw.len() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b) {
        return Ok(raw);
    }
    let mut gz = flate2::read::MultiGzDecoder::new(&raw[..]);
    let mut out = Vec::new();
    let mut read_up_to = |out: &mut Vec<u8>, total: u64| {
        let more = total.saturating_sub(out.len() as u64);
        (&mut gz).take(more).read_to_end(out).map_err(|e| {
            Error::format(
                path,
                format!(
                    "corrupt or truncated gzip stream ({e}) after {} decompressed bytes",
                    out.len()
                ),
            )
        })
    };
    let header = 4 + 4 * u64::from(magic & 0xff);
    read_up_to(&mut out, header)?;
    if let Some(total) = declared_len(&out, magic) {
        read_up_to(&mut out, total.saturating_add(1))?;
    }
    Ok(out)
}

/// Header plus payload bytes the IDX header at the start of `data` declares; `None` when the
/// header is incomplete, has another magic, or its sizes overflow (all reported by
/// [`parse_header`]).
fn declared_len(data: &[u8], magic: u32) -> Option<u64> {
    let ndim = (magic & 0xff) as usize;
    let header = data.get(..4 + 4 * ndim)?;
    let word = |i: usize| {
        u32::from_be_bytes([
            header[4 * i],
            header[4 * i + 1],
            header[4 * i + 2],
            header[4 * i + 3],
        ])
    };
    if word(0) != magic {
        return None;
    }
    (1..=ndim)
        .try_fold(1u64, |acc, d| acc.checked_mul(u64::from(word(d))))?
        .checked_add(header.len() as u64)
}

/// Parses an IDX header; checks the magic and that the payload length is exactly the product of
/// the dimensions. Returns the dimensions and the payload offset.
fn parse_header(path: &Path, data: &[u8], magic: u32, what: &str) -> Result<(Vec<u32>, usize)> {
    let be32 = |at: usize| -> Option<u32> {
        data.get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let found = be32(0).ok_or_else(|| {
        Error::format(
            path,
            format!(
                "IDX {what} file too short for a header: {} bytes",
                data.len()
            ),
        )
    })?;
    if found != magic {
        return Err(Error::format(
            path,
            format!("not an IDX {what} file: magic {found:#010x}, expected {magic:#010x}"),
        ));
    }
    let ndim = (magic & 0xff) as usize;
    let offset = 4 + 4 * ndim;
    let dims: Vec<u32> = (0..ndim)
        .map(|d| be32(4 + 4 * d))
        .collect::<Option<_>>()
        .ok_or_else(|| {
            Error::format(
                path,
                format!(
                    "IDX {what} header truncated: expected {offset} header bytes, found {}",
                    data.len()
                ),
            )
        })?;
    let payload = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)));
    let expected = payload
        .and_then(|p| p.checked_add(offset as u64))
        .ok_or_else(|| Error::format(path, format!("IDX {what} dimensions {dims:?} overflow")))?;
    if data.len() as u64 != expected {
        let kind = if (data.len() as u64) < expected {
            "truncated"
        } else {
            "too long"
        };
        return Err(Error::format(
            path,
            format!(
                "IDX {what} file {kind}: dimensions {dims:?} need {expected} bytes, found {} bytes",
                data.len()
            ),
        ));
    }
    Ok((dims, offset))
}

/// `<prefix><suffix>` or `<prefix><suffix>.gz`, whichever exists (raw first).
pub(crate) fn find_with_suffix(prefix: &Path, suffix: &str) -> Option<PathBuf> {
    let base = prefix.as_os_str().to_string_lossy();
    [format!("{base}{suffix}"), format!("{base}{suffix}.gz")]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// The split name of an IDX images file: `train-images-idx3-ubyte.gz` → `train`.
fn idx_stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    for suffix in [
        "-images-idx3-ubyte",
        "-images.idx3-ubyte",
        ".idx3-ubyte",
        "-idx3-ubyte",
    ] {
        if let Some(stem) = name.strip_suffix(suffix) {
            if !stem.is_empty() {
                return stem.to_string();
            }
        }
    }
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx_bytes(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(payload);
        v
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, bytes).unwrap();
        enc.finish().unwrap()
    }

    /// A gzip stream is read as far as its IDX header declares: trailing data is "too long"
    /// (one byte past the declared size is read, not the whole 64 MiB tail), a short stream is
    /// "truncated".
    #[test]
    fn gzip_streams_are_read_to_the_declared_size_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x-images-idx3-ubyte.gz");
        let mut long = idx_bytes(IDX_IMAGES_MAGIC, &[2, 2, 2], &[7; 8]);
        long.resize(long.len() + (64 << 20), 0);
        std::fs::write(&path, gzip(&long)).unwrap();
        let read = read_maybe_gz(&path, IDX_IMAGES_MAGIC).unwrap();
        assert_eq!(read.len(), 16 + 8 + 1);
        let err = IdxSource::open(&path, None).unwrap_err().to_string();
        assert!(
            err.contains("x-images-idx3-ubyte.gz") && err.contains("too long"),
            "{err}"
        );

        let short = idx_bytes(IDX_IMAGES_MAGIC, &[2, 2, 2], &[7; 5]);
        std::fs::write(&path, gzip(&short)).unwrap();
        let err = IdxSource::open(&path, None).unwrap_err().to_string();
        assert!(
            err.contains("truncated") && err.contains("found 21 bytes"),
            "{err}"
        );

        let exact = idx_bytes(IDX_IMAGES_MAGIC, &[2, 2, 2], &[7; 8]);
        std::fs::write(&path, gzip(&exact)).unwrap();
        assert_eq!(IdxSource::open(&path, None).unwrap().len(), 2);
    }

    #[test]
    fn stem_strips_idx_suffixes() {
        assert_eq!(idx_stem(Path::new("a/train-images-idx3-ubyte.gz")), "train");
        assert_eq!(idx_stem(Path::new("t10k-images-idx3-ubyte")), "t10k");
        assert_eq!(idx_stem(Path::new("x/digits.idx3-ubyte")), "digits");
        assert_eq!(idx_stem(Path::new("weird.bin")), "weird.bin");
    }

    #[test]
    fn header_reports_expected_and_found_bytes_when_truncated() {
        let data = idx_bytes(IDX_IMAGES_MAGIC, &[2, 2, 2], &[0; 7]);
        let err = parse_header(Path::new("f.idx"), &data, IDX_IMAGES_MAGIC, "images").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("f.idx") && msg.contains("truncated"), "{msg}");
        assert!(
            msg.contains("need 24 bytes") && msg.contains("found 23 bytes"),
            "{msg}"
        );
    }

    #[test]
    fn header_rejects_wrong_magic_and_short_header() {
        let data = idx_bytes(IDX_LABELS_MAGIC, &[1], &[3]);
        let msg = parse_header(Path::new("l"), &data, IDX_IMAGES_MAGIC, "images")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("magic 0x00000801, expected 0x00000803"),
            "{msg}"
        );
        let msg = parse_header(Path::new("l"), &data[..6], IDX_LABELS_MAGIC, "labels")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("header truncated"), "{msg}");
    }

    #[test]
    fn header_rejects_overflowing_dimensions_without_allocating() {
        let data = idx_bytes(IDX_IMAGES_MAGIC, &[u32::MAX, u32::MAX, u32::MAX], &[]);
        let err = parse_header(Path::new("big"), &data, IDX_IMAGES_MAGIC, "images").unwrap_err();
        assert!(err.to_string().contains("overflow"), "{err}");
    }

    #[test]
    fn reads_raw_idx_with_labels_and_keys() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("toy-images-idx3-ubyte");
        let lab = dir.path().join("toy-labels-idx1-ubyte");
        std::fs::write(
            &img,
            idx_bytes(
                IDX_IMAGES_MAGIC,
                &[2, 2, 3],
                &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
            ),
        )
        .unwrap();
        std::fs::write(&lab, idx_bytes(IDX_LABELS_MAGIC, &[2], &[7, 9])).unwrap();
        let src = IdxSource::open_prefix(dir.path().join("toy")).unwrap();
        assert_eq!(src.len(), 2);
        let s = src.get(1).unwrap();
        assert_eq!((s.image.width, s.image.height, s.image.channels), (3, 2, 1));
        assert_eq!(s.image.data, vec![7, 8, 9, 10, 11, 12]);
        assert_eq!(s.image.at(2, 0, 0), 9);
        assert_eq!(s.label, Some(9));
        assert_eq!(s.key, "toy#1");
        assert!(src.get(2).is_err());
        assert!(matches!(src.label(5), Err(Error::InvalidInput { .. })));
    }

    #[test]
    fn label_count_must_match_image_count() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("a-images-idx3-ubyte");
        let lab = dir.path().join("a-labels-idx1-ubyte");
        std::fs::write(&img, idx_bytes(IDX_IMAGES_MAGIC, &[2, 1, 1], &[1, 2])).unwrap();
        std::fs::write(&lab, idx_bytes(IDX_LABELS_MAGIC, &[3], &[0, 1, 2])).unwrap();
        let msg = IdxSource::open(&img, Some(&lab)).unwrap_err().to_string();
        assert!(
            msg.contains("a-labels-idx1-ubyte") && msg.contains("label count 3"),
            "{msg}"
        );
    }
}
