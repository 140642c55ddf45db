//! [`DecodedCache`]: a source's decoded images kept in memory after their first decode.
//!
//! JPEG decoding is most of the loader's time at 224 px (benches/loader.md): a dataset whose
//! decoded pixels fit in RAM pays it once, in the first epoch, and every later epoch reads
//! the u8 pixels from memory. The cache holds full-size decodes, so the loader's views are
//! those of decoding whole images ([`AugRecipe::reduced_decode`] off), whether an image came
//! from the cache or, past the budget, from a fresh decode: the batches do not depend on what
//! was cached, nor on the order in which workers filled it.
//!
//! [`AugRecipe::reduced_decode`]: crate::augment::AugRecipe::reduced_decode

use super::{DataSource, Sample};
use crate::Result;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// A [`DataSource`] that keeps each decoded sample (u8 pixels, key, label) after its first
/// [`get`](DataSource::get), up to `budget` bytes of pixels in all; past the budget, samples are
/// decoded each time (a budget of 0 keeps nothing: whole decodes, every time). Every method answers as the wrapped source does, except that reduced and
/// cropped decodes ([`DataSource::get_region`]) are whole, full-size images (factor 1).
///
/// ```no_run
/// use gps_ssl::dataset::{open_source, DecodedCache, DataSource};
/// use std::sync::Arc;
/// # fn main() -> gps_ssl::Result<()> {
/// let folder: Arc<dyn DataSource> = Arc::from(open_source("data/photos")?);
/// // Up to 8 GiB of decoded pixels stay in memory.
/// let cached: Arc<dyn DataSource> = Arc::new(DecodedCache::new(folder, 8 << 30));
/// # Ok(()) }
/// ```
pub struct DecodedCache {
    inner: Arc<dyn DataSource>,
    slots: Vec<OnceLock<Sample>>,
    budget: u64,
    /// Bytes of pixels held or reserved.
    used: AtomicU64,
}

/// How much a [`DecodedCache`] holds ([`DataSource::cache_use`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheUse {
    /// Samples held.
    pub samples: usize,
    /// Samples of the wrapped source (held or not).
    pub of: usize,
    /// Bytes of decoded pixels held or reserved.
    pub bytes: u64,
    /// The budget in bytes.
    pub budget: u64,
}

impl DecodedCache {
    /// Wraps `inner`, keeping up to `budget` bytes of decoded pixels.
    pub fn new(inner: Arc<dyn DataSource>, budget: u64) -> Self {
        let slots = (0..inner.len()).map(|_| OnceLock::new()).collect();
        DecodedCache {
            inner,
            slots,
            budget,
            used: AtomicU64::new(0),
        }
    }

    /// The budget in bytes for `gib` GiB; `None` unless `gib` is a finite number ≥ 0 (what
    /// `train --cache-decoded` and an experiment's `cache_decoded_gib` accept).
    pub fn budget_of_gib(gib: f64) -> Option<u64> {
        (gib.is_finite() && gib >= 0.0).then(|| (gib * f64::from(1u32 << 30)) as u64)
    }

    /// Bytes of decoded pixels held now, or reserved by a decode about to store its image.
    pub fn cached_bytes(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Samples held now.
    pub fn cached_samples(&self) -> usize {
        self.slots.iter().filter(|s| s.get().is_some()).count()
    }

    /// Reserves `bytes` of the budget; `false` (nothing reserved) when they do not fit.
    fn reserve(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|&u| u <= self.budget)
            })
            .is_ok()
    }
}

impl DataSource for DecodedCache {
    fn len(&self) -> usize {
        self.slots.len()
    }

    fn get(&self, index: usize) -> Result<Sample> {
        if let Some(sample) = self.slots.get(index).and_then(OnceLock::get) {
            return Ok(sample.clone());
        }
        // Out-of-range indices and bad samples: the wrapped source's error, nothing cached.
        let sample = self.inner.get(index)?;
        let bytes = sample.image.data.len() as u64;
        if let Some(slot) = self.slots.get(index) {
            if self.reserve(bytes) && slot.set(sample.clone()).is_err() {
                // Another worker stored it first: give this copy's share back.
                self.used.fetch_sub(bytes, Ordering::Relaxed);
            }
        }
        Ok(sample)
    }

    fn key(&self, index: usize) -> Result<String> {
        self.inner.key(index)
    }

    fn label(&self, index: usize) -> Result<Option<i64>> {
        self.inner.label(index)
    }

    fn fingerprint(&self) -> String {
        self.inner.fingerprint()
    }

    fn describe(&self) -> String {
        format!(
            "{} (decoded images cached, up to {:.1} GiB)",
            self.inner.describe(),
            self.budget as f64 / f64::from(1u32 << 30)
        )
    }

    fn class_names(&self) -> Option<Vec<String>> {
        self.inner.class_names()
    }

    fn channels(&self) -> Option<u8> {
        self.inner.channels()
    }

    fn image_size(&self) -> Option<(u32, u32)> {
        self.inner.image_size()
    }

    fn cache_use(&self) -> Option<CacheUse> {
        Some(CacheUse {
            samples: self.cached_samples(),
            of: self.slots.len(),
            bytes: self.cached_bytes(),
            budget: self.budget,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{DecodeAsk, Image};
    use crate::Error;
    use std::sync::atomic::AtomicUsize;

    /// `n` samples of `side × side` RGB; sample 3 fails to decode; counts the decodes.
    struct Counting {
        n: usize,
        side: u32,
        decodes: AtomicUsize,
    }

    impl DataSource for Counting {
        fn len(&self) -> usize {
            self.n
        }
        fn get(&self, index: usize) -> Result<Sample> {
            if index >= self.n {
                return Err(Error::invalid("index", format!("{index} out of range")));
            }
            self.decodes.fetch_add(1, Ordering::Relaxed);
            if index == 3 {
                return Err(Error::Decode {
                    key: "s3".into(),
                    detail: "corrupt".into(),
                });
            }
            let px = (self.side * self.side * 3) as usize;
            let data = (0..px).map(|i| (i * 7 + index * 13) as u8).collect();
            Ok(Sample {
                id: index as u64,
                key: format!("s{index}"),
                label: Some(index as i64 % 2),
                image: Image::new(self.side, self.side, 3, data),
            })
        }
        fn key(&self, index: usize) -> Result<String> {
            Ok(format!("s{index}"))
        }
        fn label(&self, index: usize) -> Result<Option<i64>> {
            Ok(Some(index as i64 % 2))
        }
        fn fingerprint(&self) -> String {
            "counting".into()
        }
        fn describe(&self) -> String {
            "counting".into()
        }
    }

    fn counting(n: usize) -> Arc<Counting> {
        Arc::new(Counting {
            n,
            side: 4,
            decodes: AtomicUsize::new(0),
        })
    }

    #[test]
    fn a_cached_sample_is_decoded_once_and_equals_the_source() {
        let inner = counting(6);
        let cache = DecodedCache::new(inner.clone(), 1 << 20);
        for _ in 0..3 {
            for i in [0, 1, 2, 4, 5] {
                assert_eq!(cache.get(i).unwrap(), inner.get(i).unwrap());
            }
        }
        // 5 decodes through the cache, then the 15 direct ones of the comparisons.
        assert_eq!(inner.decodes.load(Ordering::Relaxed), 5 + 15);
        assert_eq!((cache.cached_samples(), cache.cached_bytes()), (5, 5 * 48));
        assert_eq!(cache.fingerprint(), "counting");
    }

    #[test]
    fn past_the_budget_samples_are_decoded_each_time() {
        let inner = counting(6);
        // Room for two 48-byte images.
        let cache = DecodedCache::new(inner.clone(), 100);
        for _ in 0..2 {
            for i in [0, 1, 2, 4] {
                assert_eq!(cache.get(i).unwrap(), inner.get(i).unwrap());
            }
        }
        assert_eq!((cache.cached_samples(), cache.cached_bytes()), (2, 96));
        // Samples 0 and 1 once; 2 and 4 twice; plus the 8 direct decodes.
        assert_eq!(inner.decodes.load(Ordering::Relaxed), 2 + 4 + 8);
        // What a run reports, through the trait object a loader holds.
        let shared: Arc<dyn DataSource> = Arc::new(cache);
        let held = CacheUse {
            samples: 2,
            of: 6,
            bytes: 96,
            budget: 100,
        };
        assert_eq!(shared.cache_use(), Some(held));
        assert_eq!(inner.cache_use(), None);
    }

    #[test]
    fn errors_pass_through_and_nothing_is_cached_for_them() {
        let cache = DecodedCache::new(counting(6), 1 << 20);
        for _ in 0..2 {
            let e = cache.get(3).unwrap_err().to_string();
            assert!(e.contains("s3") && e.contains("corrupt"), "{e}");
            assert!(cache.get(6).is_err());
        }
        assert_eq!(cache.cached_samples(), 0);
    }

    #[test]
    fn regions_are_whole_full_size_images() {
        let cache = DecodedCache::new(counting(6), 1 << 20);
        let r = cache
            .get_region(2, &mut |w, h| DecodeAsk {
                factor: 2,
                region: Some(crate::dataset::Region {
                    left: 1,
                    top: 1,
                    width: w - 2,
                    height: h - 2,
                }),
            })
            .unwrap();
        assert_eq!((r.factor, r.origin, r.full), (1, (0, 0), (4, 4)));
        assert_eq!(r.sample, cache.get(2).unwrap());
    }
}
