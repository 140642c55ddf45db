//! Image folders: `root/<class>/<image>` (the torchvision `ImageFolder` layout).
//!
//! - Classes are the sub-directories of `root`, sorted by name; a class's label is its position
//!   in that order. An empty class directory keeps its label (so labels depend only on the
//!   directory names) and is reported with a `tracing::warn!`.
//! - Images are the files with extension `png`, `jpg` or `jpeg` (any case) under a class
//!   directory, recursively, sorted by relative path. **Other files are skipped at open with a
//!   `tracing::warn!`** naming them (as torchvision does); hidden files (`.DS_Store`...) are
//!   skipped silently; files directly under `root` are skipped with a warning.
//! - Images are decoded on demand by [`DataSource::get`] from their content (not their
//!   extension). A file that cannot be decoded gives [`Error::Decode`] naming its key and path.
//! - Channel rules: grey stays 1 channel; grey + alpha → grey; RGBA → RGB (alpha is dropped,
//!   not composited); palette PNGs are expanded to RGB; 16-bit samples become 8-bit by
//!   `round(v / 257)`.
//!
//! **Keys** are relative paths with `/` separators (`cat/0001.png`).
//!
//! The fingerprint hashes each key, file size and SHA-256 of the content (not modification
//! times, which differ between clones); it is computed at open, in parallel.

use super::fingerprint::{sha256_file, Fingerprinter};
use super::truncation::check_complete;
use super::{DataSource, DecodeAsk, Image, Reduced, Sample};
use crate::{Error, Result};
use image::DynamicImage;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// File extensions (lowercase) treated as images.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    label: u32,
}

/// A labelled image folder `root/<class>/<image>`, decoded on demand.
///
/// ```no_run
/// use gps_ssl::dataset::{DataSource, ImageFolderSource};
/// let src = ImageFolderSource::open("data/fixtures/cifar10_folder")?;
/// println!("{} images in {} classes", src.len(), src.classes().len());
/// # Ok::<(), gps_ssl::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ImageFolderSource {
    root: PathBuf,
    classes: Vec<String>,
    entries: Vec<Entry>,
    fingerprint: String,
}

impl ImageFolderSource {
    /// Scans `root`, lists the classes and images and fingerprints their content.
    ///
    /// Errors when `root` is not a readable directory, has no class sub-directory, or holds no
    /// image at all.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        if !root.is_dir() {
            return Err(Error::format(&root, "image folder root is not a directory"));
        }
        let mut classes = Vec::new();
        for path in read_dir_sorted(&root)? {
            let name = file_name(&path);
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                classes.push(name);
            } else {
                tracing::warn!(file = %path.display(), "skipping file outside any class directory");
            }
        }
        if classes.is_empty() {
            return Err(Error::format(
                &root,
                "image folder has no class sub-directory; expected root/<class>/<image>",
            ));
        }
        let mut entries = Vec::new();
        let mut skipped = 0usize;
        for (label, class) in classes.iter().enumerate() {
            let before = entries.len();
            walk(
                &root,
                Path::new(class),
                label as u32,
                &mut entries,
                &mut skipped,
            )?;
            if entries.len() == before {
                tracing::warn!(class, root = %root.display(), "class directory holds no image");
            }
        }
        if entries.is_empty() {
            return Err(Error::format(
                &root,
                format!(
                    "image folder holds no image ({} files in {} class directories, none with \
                     extension {})",
                    skipped,
                    classes.len(),
                    IMAGE_EXTENSIONS.join("/")
                ),
            ));
        }
        if skipped > 0 {
            tracing::warn!(skipped, root = %root.display(), "skipped non-image files");
        }
        let digests = entries
            .par_iter()
            .map(|e| sha256_file(&root.join(&e.key)))
            .collect::<Result<Vec<_>>>()?;
        let mut fp = Fingerprinter::new("folder", entries.len());
        for c in &classes {
            fp.option("class", c);
        }
        for (e, (digest, len)) in entries.iter().zip(&digests) {
            fp.entry_digest(&e.key, *len, digest);
        }
        tracing::debug!(root = %root.display(), images = entries.len(), classes = classes.len(), "opened image folder");
        Ok(ImageFolderSource {
            root,
            classes,
            entries,
            fingerprint: fp.finish(),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Class names, sorted; label `i` is `classes()[i]`.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Absolute-or-relative path (as opened) of sample `index`.
    pub fn path(&self, index: usize) -> Result<PathBuf> {
        Ok(self.root.join(&self.entry(index)?.key))
    }

    fn entry(&self, index: usize) -> Result<&Entry> {
        self.entries
            .get(index)
            .ok_or_else(|| super::out_of_range(index, &self.describe(), self.len()))
    }
}

/// Appends the images under `root/rel` (recursively, sorted) to `out`.
fn walk(
    root: &Path,
    rel: &Path,
    label: u32,
    out: &mut Vec<Entry>,
    skipped: &mut usize,
) -> Result<()> {
    for path in read_dir_sorted(&root.join(rel))? {
        let name = file_name(&path);
        if name.starts_with('.') {
            continue;
        }
        let rel_path = rel.join(&name);
        if path.is_dir() {
            walk(root, &rel_path, label, out, skipped)?;
        } else if is_image_name(&name) {
            let key = rel_path
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push(Entry { key, label });
        } else {
            tracing::warn!(file = %path.display(), "skipping file without an image extension ({})", IMAGE_EXTENSIONS.join("/"));
            *skipped += 1;
        }
    }
    Ok(())
}

fn is_image_name(name: &str) -> bool {
    Path::new(name)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

pub(super) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub(super) fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|err| Error::io(dir, err)))
        .collect::<Result<Vec<_>>>()?;
    entries.sort();
    Ok(entries)
}

/// [`JPEG_DECODER`]'s value with the `turbojpeg` feature, and what a file or job state that does
/// not name its decoder was decoded with (every build before the name was recorded had it).
pub const LIBJPEG_TURBO: &str = "libjpeg-turbo";

/// The JPEG decoder of this build: `"libjpeg-turbo"` with the `turbojpeg` feature (the default),
/// `"zune-jpeg"` without it. Their pixels differ (see [`decode_image`]), so a training run's
/// identity and an embedding job's `job.json` and metadata (`gps.embed.jpeg_decoder`) record it,
/// and a resume or cache reuse across the two is refused.
pub const JPEG_DECODER: &str = if cfg!(feature = "turbojpeg") {
    LIBJPEG_TURBO
} else {
    "zune-jpeg"
};

/// Decodes PNG/JPEG `bytes` (format guessed from the content) to 8-bit grey or RGB.
///
/// `key` names the image in the error. A truncated file (a JPEG without its end-of-image
/// marker, a PNG without its `IEND` chunk) is an error, as in Pillow, never decoded into grey
/// fill.
///
/// JPEG decoder ([`JPEG_DECODER`]): with the `turbojpeg` feature (on by default) libjpeg-turbo,
/// whose pixels are Pillow's byte for byte, and whose DCT scaling and cropping let the pair loader
/// decode only the resolution and region a view needs. Without it `image`'s pure-Rust decoder
/// (zune-jpeg), always whole and at full size (a loader's view is then resized from the full
/// image): pixels a few levels from libjpeg-turbo's (its IDCT and chroma upsampling differ), and
/// arithmetic-coded, lossless and 12-bit JPEGs are refused (docs/guide.md "As a dependency" has
/// the measured difference and speed). PNGs are decoded by `image` either way.
pub fn decode_image(bytes: &[u8], key: &str) -> Result<Image> {
    decode_image_reduced(bytes, key, &mut |_, _| DecodeAsk::whole(1)).map(|d| d.image)
}

impl Decoded {
    /// The decoded image as sample `index` of a source.
    pub(super) fn reduced(self, index: usize, key: String, label: Option<i64>) -> Reduced {
        Reduced {
            sample: Sample {
                id: index as u64,
                key,
                label,
                image: self.image,
            },
            factor: self.factor,
            full: self.full,
            origin: self.origin,
        }
    }
}

/// An image decoded by [`decode_image_reduced`]: at `1/factor` of the `full` size, the part of
/// it starting at `origin` (in the reduced image's pixels; `(0, 0)` when whole).
pub(crate) struct Decoded {
    pub image: Image,
    pub factor: u32,
    pub full: (u32, u32),
    pub origin: (u32, u32),
}

/// [`decode_image`], JPEGs decoded at the reduction and region `ask(width, height)` asks for
/// (see [`DataSource::get_region`]). With the `turbojpeg` feature JPEGs go through libjpeg-turbo
/// (`super::jpeg`); PNGs, JPEGs it cannot take to RGB, and every JPEG without the feature, through
/// `image`, whole and at full size (factor 1). `ask` may be called more than once, always with the
/// full size.
pub(crate) fn decode_image_reduced(
    bytes: &[u8],
    key: &str,
    ask: &mut dyn FnMut(u32, u32) -> DecodeAsk,
) -> Result<Decoded> {
    let decoded = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::Decode {
            key: key.to_string(),
            detail: e.to_string(),
        })?;
    let Some(format) = decoded.format() else {
        return Err(Error::Decode {
            key: key.to_string(),
            detail: format!(
                "not a PNG or JPEG image ({} bytes, starting {:02x?})",
                bytes.len(),
                &bytes[..bytes.len().min(8)]
            ),
        });
    };
    // The decoder would fill a truncated file's missing rows with grey; refuse it instead.
    check_complete(bytes, format).map_err(|detail| Error::Decode {
        key: key.to_string(),
        detail,
    })?;
    let refuse = |detail: String| Error::Decode {
        key: key.to_string(),
        detail,
    };
    #[cfg(feature = "turbojpeg")]
    if format == image::ImageFormat::Jpeg {
        if let Some(done) = super::jpeg::decode(bytes, ask).map_err(refuse)? {
            return Ok(done);
        }
    }
    // The same pixel limit as libjpeg-turbo's path, from the header, before `image` allocates.
    let (w, h) = image::ImageReader::with_format(std::io::Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|e| refuse(e.to_string()))?;
    if let Some(detail) = super::image::over_pixel_limit(w, h) {
        return Err(refuse(detail));
    }
    let img = decoded.decode().map_err(|e| Error::Decode {
        key: key.to_string(),
        detail: e.to_string(),
    })?;
    let image = to_image(img);
    let full = (image.width, image.height);
    ask(full.0, full.1);
    Ok(Decoded {
        image,
        factor: 1,
        full,
        origin: (0, 0),
    })
}

/// [`decode_image_reduced`] of bytes read from `path` (a file, or a Parquet file's cell): a
/// decode error also names `path`.
pub(super) fn decode_from(
    bytes: &[u8],
    key: &str,
    path: &Path,
    ask: &mut dyn FnMut(u32, u32) -> DecodeAsk,
) -> Result<Decoded> {
    decode_image_reduced(bytes, key, ask).map_err(|e| match e {
        Error::Decode { key, detail } => Error::Decode {
            key,
            detail: format!("{}: {detail}", path.display()),
        },
        other => other,
    })
}

/// Converts a decoded image to u8 grey (1 channel) or RGB (3 channels).
fn to_image(img: DynamicImage) -> Image {
    let (w, h) = (img.width(), img.height());
    let grey = !img.color().has_color();
    let eight_bit = img.color().bytes_per_pixel() / img.color().channel_count() == 1;
    let data = match img {
        DynamicImage::ImageLuma8(b) => b.into_raw(),
        DynamicImage::ImageRgb8(b) => b.into_raw(),
        DynamicImage::ImageLumaA8(b) => b.into_raw().chunks_exact(2).map(|p| p[0]).collect(),
        DynamicImage::ImageRgba8(b) => b
            .into_raw()
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        other if grey && !eight_bit => {
            // 16-bit (or float) grey: image's conversion rounds v / 257; alpha is dropped.
            other.to_luma8().into_raw()
        }
        other if grey => other.to_luma8().into_raw(),
        other => other.to_rgb8().into_raw(),
    };
    Image::new(w, h, if grey { 1 } else { 3 }, data)
}

impl DataSource for ImageFolderSource {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn get(&self, index: usize) -> Result<Sample> {
        self.get_reduced(index, &mut |_, _| 1).map(|r| r.sample)
    }

    fn get_region(
        &self,
        index: usize,
        ask: &mut dyn FnMut(u32, u32) -> DecodeAsk,
    ) -> Result<Reduced> {
        let entry = self.entry(index)?;
        let path = self.root.join(&entry.key);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let d = decode_from(&bytes, &entry.key, &path, ask)?;
        Ok(d.reduced(index, entry.key.clone(), Some(i64::from(entry.label))))
    }

    fn key(&self, index: usize) -> Result<String> {
        Ok(self.entry(index)?.key.clone())
    }

    fn label(&self, index: usize) -> Result<Option<i64>> {
        Ok(Some(i64::from(self.entry(index)?.label)))
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn class_names(&self) -> Option<Vec<String>> {
        Some(self.classes.clone())
    }

    fn describe(&self) -> String {
        format!(
            "folder:{} ({} samples, {} classes)",
            self.root.display(),
            self.entries.len(),
            self.classes.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_extensions_are_case_insensitive() {
        assert!(is_image_name("a.PNG") && is_image_name("b.JpEg") && is_image_name("c.jpg"));
        assert!(!is_image_name("notes.txt") && !is_image_name("png") && !is_image_name("x.gif"));
    }

    #[test]
    fn decode_rejects_garbage_naming_the_key() {
        let err = decode_image(b"definitely not an image", "cls/bad.png").unwrap_err();
        assert!(
            matches!(&err, Error::Decode { key, .. } if key == "cls/bad.png"),
            "{err}"
        );
        // A PNG signature followed by garbage: recognised, then fails inside the decoder.
        let mut fake = b"\x89PNG\r\n\x1a\n".to_vec();
        fake.extend_from_slice(&[0xff; 40]);
        let err = decode_image(&fake, "cls/trunc.png").unwrap_err();
        assert!(err.to_string().contains("cls/trunc.png"), "{err}");
    }

    #[test]
    fn rgba_drops_alpha_and_luma_alpha_stays_grey() {
        let rgba = image::RgbaImage::from_raw(1, 2, vec![1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let img = to_image(DynamicImage::ImageRgba8(rgba));
        assert_eq!(
            (img.channels, img.data.clone()),
            (3, vec![1, 2, 3, 5, 6, 7])
        );
        let la = image::GrayAlphaImage::from_raw(2, 1, vec![9, 0, 10, 255]).unwrap();
        let img = to_image(DynamicImage::ImageLumaA8(la));
        assert_eq!((img.channels, img.data), (1, vec![9, 10]));
    }

    #[test]
    fn sixteen_bit_rounds_to_eight_bit() {
        // python3 -c "print([(v + 128) // 257 for v in (0, 128, 129, 65535, 257 * 100 + 129)])"
        // -> [0, 0, 1, 255, 101]
        let g = image::ImageBuffer::<image::Luma<u16>, _>::from_raw(
            5,
            1,
            vec![0, 128, 129, 65535, 257 * 100 + 129],
        )
        .unwrap();
        let img = to_image(DynamicImage::ImageLuma16(g));
        assert_eq!((img.channels, img.data), (1, vec![0, 0, 1, 255, 101]));
    }
}
