//! Dataset sources: one trait over image folders, IDX, CIFAR binary batches and Parquet tables.
//!
//! Every source gives random access to [`Sample`]s by position. A sample's `id` is its position
//! (stable for a given dataset), its `key` a relative path or row id, its `label` optional.
//! Images are decoded to u8 `H×W×C` with `C ∈ {1, 3}`.
//!
//! ```
//! use gps_ssl::dataset::{open_source, DataSource};
//!
//! // The bundled Fashion-MNIST subset: the layout (IDX) is found from the path prefix.
//! let train = open_source("data/fashion-mnist/train")?;
//! let sample = train.get(0)?;
//! assert_eq!((sample.image.width, sample.image.height, sample.image.channels), (28, 28, 1));
//! assert_eq!(sample.id, 0);
//! assert!(sample.label.is_some());
//! // The fingerprint names the exact bytes; lists and embeddings made for other data are refused.
//! assert_eq!(train.fingerprint(), open_source("data/fashion-mnist/train")?.fingerprint());
//! # Ok::<(), gps_ssl::Error>(())
//! ```

mod cache;
mod cifar;
mod fingerprint;
mod folder;
mod idx;
mod image;
#[cfg(feature = "turbojpeg")]
#[cfg_attr(docsrs, doc(cfg(feature = "turbojpeg")))]
pub mod jpeg;
mod open;
mod parquet;
mod truncation;

pub use self::parquet::{
    ParquetImageSource, ParquetImageSourceBuilder, DEFAULT_CACHED_ROW_GROUPS, DEFAULT_IMAGE_COLUMN,
    DEFAULT_LABEL_COLUMN,
};
pub use cache::{CacheUse, DecodedCache};
pub use cifar::{CifarFormat, CifarSource, CIFAR10_CLASSES, CIFAR_PIXELS, CIFAR_SIDE};
pub use folder::{decode_image, ImageFolderSource, IMAGE_EXTENSIONS, JPEG_DECODER, LIBJPEG_TURBO};

pub use self::image::{Image, MAX_IMAGE_PIXELS};
pub(crate) use fingerprint::hex;
pub use fingerprint::{sha256, sha256_file, sha256_hex_file, Fingerprinter, FINGERPRINT_VERSION};
pub use idx::{IdxSource, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC};
pub use open::open_source;

use crate::Result;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The error for an `index` past the end of a source of `count` samples.
pub(crate) fn out_of_range(index: usize, source: &str, count: usize) -> crate::Error {
    crate::Error::invalid(
        "index",
        format!("{index} out of range for {source} ({count} samples)"),
    )
}

/// A sample that could not be read or decoded and was skipped: by an embedding job with
/// `skip_bad` (`embed::EmbedJob::skip_bad`, listed in its summary) or by a pair loader, which
/// draws another partner and reports it ([`crate::loader::PairLoader::skipped`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadSample {
    /// The sample's id (dataset position).
    pub id: u64,
    /// Its key (or `#<id>` when even the key could not be read).
    pub key: String,
    /// The error message.
    pub error: String,
}

/// One decoded example of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Position in the dataset, `0..len`. Stable for a given dataset. The pair loader does
    /// not rely on it: it keys decodes, ids and labels by the index it asked for.
    pub id: u64,
    /// Relative path (image folders) or row identifier (tables, IDX, CIFAR).
    pub key: String,
    /// Class label, when the source has one.
    pub label: Option<i64>,
    /// The decoded image, u8 `H×W×C`.
    pub image: Image,
}

/// A sample decoded at a reduced size by [`DataSource::get_reduced`], or a part of it by
/// [`DataSource::get_region`].
#[derive(Debug, Clone, PartialEq)]
pub struct Reduced {
    /// The sample; its image is the whole image decoded at `1/factor`
    /// (`⌈full.0 / factor⌉ × ⌈full.1 / factor⌉`), or the part of it at `origin`.
    pub sample: Sample,
    /// The reduction used, ≥ 1 (1: full size).
    pub factor: u32,
    /// `(width, height)` of the image at full size.
    pub full: (u32, u32),
    /// Where `sample.image` starts in the whole image decoded at `1/factor`, `(x, y)` in its
    /// pixels: `(0, 0)` for the whole image.
    pub origin: (u32, u32),
}

/// A rectangle of an image, in full-size pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// Left edge.
    pub left: u32,
    /// Top edge.
    pub top: u32,
    /// Width, ≥ 1.
    pub width: u32,
    /// Height, ≥ 1.
    pub height: u32,
}

/// What a caller of [`DataSource::get_region`] needs of an image of a given full size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeAsk {
    /// The largest reduction the caller can use (1, 2, 4 or 8; rounded down to one of those).
    pub factor: u32,
    /// The part of the image the caller reads, with any margin it needs; `None`: all of it.
    pub region: Option<Region>,
}

impl DecodeAsk {
    /// The whole image at reduction `factor`.
    pub const fn whole(factor: u32) -> Self {
        DecodeAsk {
            factor,
            region: None,
        }
    }
}

/// Random-access source of [`Sample`]s.
///
/// Implementations must be cheap to call from many threads at once (`&self`, `Send + Sync`).
pub trait DataSource: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;

    /// True when the source holds no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decodes sample `index` (`0..len`).
    ///
    /// Returns an error naming the key when the sample cannot be read or decoded, and
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) when `index` is out of range.
    fn get(&self, index: usize) -> Result<Sample>;

    /// Decodes sample `index` for a caller that needs only part of its resolution.
    /// `reduction(width, height)` receives the full size and returns the largest factor `d` the
    /// caller can use; sources whose format can decode smaller directly (JPEG files and cells
    /// with the `turbojpeg` feature: libjpeg-turbo's DCT scaling, `d` ∈ {1, 2, 4, 8}, see the
    /// `jpeg` module) return the image at
    /// `⌈width/d⌉ × ⌈height/d⌉`, with the factor used and the full size. `reduction` may be
    /// called more than once, always with the full size.
    ///
    /// The default is [`get_region`](Self::get_region) for the whole image. The pair loader
    /// calls `get_region`: a source that can decode smaller overrides that one.
    fn get_reduced(
        &self,
        index: usize,
        reduction: &mut dyn FnMut(u32, u32) -> u32,
    ) -> Result<Reduced> {
        self.get_region(index, &mut |w, h| DecodeAsk::whole(reduction(w, h)))
    }

    /// [`get_reduced`](Self::get_reduced) for a caller that also reads only a part of the image:
    /// `ask(width, height)` gets the full size and returns the reduction and the region
    /// ([`DecodeAsk`]). Sources that can decode a part directly (JPEG with `turbojpeg`: libjpeg-turbo's cropped
    /// decoding, rows below the region not decoded at all) return at least that part of the
    /// image decoded at `1/factor`, with its `origin`; the pixels are those of the whole decode at
    /// the same factor. `ask` may be called more than once, always with the full size.
    ///
    /// The default decodes the whole image at full size with [`get`](Self::get) (factor 1).
    fn get_region(
        &self,
        index: usize,
        ask: &mut dyn FnMut(u32, u32) -> DecodeAsk,
    ) -> Result<Reduced> {
        let sample = self.get(index)?;
        let full = (sample.image.width, sample.image.height);
        ask(full.0, full.1);
        Ok(Reduced {
            sample,
            factor: 1,
            full,
            origin: (0, 0),
        })
    }

    /// The key of sample `index` without decoding its image.
    fn key(&self, index: usize) -> Result<String>;

    /// The label of sample `index` without decoding its image (`None` when unlabelled).
    fn label(&self, index: usize) -> Result<Option<i64>>;

    /// A hex digest over the keys and sizes of the samples (and, for files, their length and
    /// content hash): changes when the data changes. Outputs record it so that later stages can
    /// refuse files computed from another dataset.
    fn fingerprint(&self) -> String;

    /// A short human-readable description (`"idx:data/fmnist/train (10000 samples)"`).
    fn describe(&self) -> String;

    /// Class names indexed by label (`names[label]`), when the source knows them (image
    /// folders: the directory names; CIFAR-10: the standard names). `None` by default.
    fn class_names(&self) -> Option<Vec<String>> {
        None
    }

    /// What this source holds of decoded images in memory, when it keeps them
    /// ([`DecodedCache`]); `None` (the default) for sources that decode every time.
    fn cache_use(&self) -> Option<CacheUse> {
        None
    }

    /// The channel count every image of the source has by its format: `Some(1)` for grey
    /// formats (IDX), `Some(3)` for RGB ones (CIFAR). `None` (the default) when images may
    /// differ (folders, Parquet cells): the pair loader then makes every view RGB, as
    /// torchvision's `ImageFolder` does, so the output never depends on which file sorts
    /// first. A source that declares 1 and returns an RGB image is an error naming its key.
    fn channels(&self) -> Option<u8> {
        None
    }

    /// `(width, height)` every image of the source has by its format (IDX, CIFAR); `None` (the
    /// default) when sizes may differ. The pair loader's output size is the recipe's, else this
    /// one; without either it takes the first image's size and refuses any image of another
    /// size (an error naming its key) rather than silently resizing it.
    fn image_size(&self) -> Option<(u32, u32)> {
        None
    }
}

/// `DataSource` for a pointer to one (`Arc`, `Box`): every method forwarded.
macro_rules! forward_data_source {
    ($($ptr:ident),*) => {$(
        impl<T: DataSource + ?Sized> DataSource for $ptr<T> {
            fn len(&self) -> usize {
                (**self).len()
            }
            fn get(&self, index: usize) -> Result<Sample> {
                (**self).get(index)
            }
            fn get_reduced(
                &self,
                index: usize,
                reduction: &mut dyn FnMut(u32, u32) -> u32,
            ) -> Result<Reduced> {
                (**self).get_reduced(index, reduction)
            }
            fn get_region(
                &self,
                index: usize,
                ask: &mut dyn FnMut(u32, u32) -> DecodeAsk,
            ) -> Result<Reduced> {
                (**self).get_region(index, ask)
            }
            fn key(&self, index: usize) -> Result<String> {
                (**self).key(index)
            }
            fn label(&self, index: usize) -> Result<Option<i64>> {
                (**self).label(index)
            }
            fn fingerprint(&self) -> String {
                (**self).fingerprint()
            }
            fn describe(&self) -> String {
                (**self).describe()
            }
            fn class_names(&self) -> Option<Vec<String>> {
                (**self).class_names()
            }
            fn cache_use(&self) -> Option<CacheUse> {
                (**self).cache_use()
            }
            fn channels(&self) -> Option<u8> {
                (**self).channels()
            }
            fn image_size(&self) -> Option<(u32, u32)> {
                (**self).image_size()
            }
        }
    )*};
}

forward_data_source!(Arc, Box);
