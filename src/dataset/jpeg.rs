//! JPEG decoding with libjpeg-turbo (the `turbojpeg` crate, which builds its bundled 3.1 source
//! with SIMD), at full size or DCT-scaled to 1/2, 1/4 or 1/8, whole or only a region (cropped
//! decoding through the C API, `turbojpeg::raw`, which the crate's safe API does not wrap).
//!
//! libjpeg-turbo is what OpenCV, Pillow and torchvision decode with; it was faster than
//! `image`'s zune-jpeg on 512-px baseline JPEGs (a rough comparison, `benches/loader.md`), and
//! its DCT scaling (an `8/d`-point
//! inverse DCT per block, then colour conversion of `1/d²` of the pixels) decodes only the
//! resolution a view needs. A reduced image is `⌈width/d⌉ × ⌈height/d⌉`, its pixel `(x, y)`
//! covering the source pixels `[d·x, d·x + d) × [d·y, d·y + d)`; it is the image Pillow's
//! `Image.draft("RGB", …)` decodes at the same scale (the tests compare them byte for byte).
//!
//! Defaults are libjpeg's: the accurate integer IDCT and "fancy" (triangular) chroma upsampling.

use super::folder::Decoded;
use super::{DecodeAsk, Image};
use std::cell::RefCell;
use std::ffi::c_int;
use turbojpeg::raw;

/// The reduction factors libjpeg-turbo's DCT scaling offers that this crate uses.
pub const REDUCTIONS: [u32; 4] = [1, 2, 4, 8];

/// Decodes `bytes` (a JPEG) with libjpeg-turbo: `ask(width, height)` gets the full size and
/// returns the wanted factor (rounded down to one of [`REDUCTIONS`]) and the region the caller
/// reads; the image comes back at that scale, whole or the part around the region (below), with
/// the factor used, the full size and where the part starts.
///
/// A region is decoded with libjpeg-turbo's cropping (`tj3SetCroppingRegion`): rows above it are
/// entropy-decoded and skipped, rows below it are not decoded at all, and only the columns of
/// the region get the IDCT, upsampling and colour conversion. Its edges are widened by one iMCU
/// on every side (then aligned to the iMCU grid as libjpeg-turbo requires), because "fancy"
/// chroma upsampling treats the edge of a cropped region as an image edge: inside the widened
/// part the pixels are those of the whole decode, byte for byte (tested).
///
/// Each thread keeps one TurboJPEG decompressor for all its images (made on first use, made
/// anew after a failed decode), and each image's header is parsed once here and once by the
/// decompression itself.
///
/// Grey JPEGs decode to 1 channel, the others (YCbCr, RGB) to RGB. `Ok(None)` when
/// libjpeg-turbo cannot decode the file to those (CMYK / YCCK, a corrupt stream): the caller
/// falls back to the `image` crate, which decodes CMYK and words its own errors. `Err(detail)`
/// when the header declares more than [`super::MAX_IMAGE_PIXELS`] pixels: refused before
/// anything is allocated.
pub(crate) fn decode(
    bytes: &[u8],
    ask: &mut dyn FnMut(u32, u32) -> DecodeAsk,
) -> Result<Option<Decoded>, String> {
    let mut refused = None;
    let decoded = with_decompressor(|tj| {
        let header = tj.header(bytes)?;
        if let Some(detail) = super::image::over_pixel_limit(header.width, header.height) {
            refused = Some(detail);
            return None;
        }
        let (pixel_format, channels) = match header.colorspace {
            raw::TJCS_TJCS_GRAY => (raw::TJPF_TJPF_GRAY, 1u8),
            raw::TJCS_TJCS_YCbCr | raw::TJCS_TJCS_RGB => (raw::TJPF_TJPF_RGB, 3u8),
            _ => return None,
        };
        let full = (header.width, header.height);
        let wanted = ask(full.0, full.1);
        // Lossless JPEGs have no DCT to scale or crop.
        let (wanted_factor, region) = if header.lossless {
            (1, None)
        } else {
            (wanted.factor, wanted.region)
        };
        let d = REDUCTIONS
            .iter()
            .rev()
            .copied()
            .find(|&d| d <= wanted_factor)
            .unwrap_or(1);
        // TJSCALED: the reduced size rounds up.
        let (sw, sh) = (full.0.div_ceil(d), full.1.div_ceil(d));
        tj.set_scale(d)?;
        // A region of a file whose subsampling TurboJPEG cannot name is decoded whole, as is one
        // whose cropped decode fails (libjpeg-turbo's own iMCU alignment can be wider than
        // TurboJPEG's for unusual sampling factors): the same pixels either way, from the same
        // decoder.
        if let (Some(r), Some(mcu)) = (region, mcu_size(header.subsamp)) {
            let (x0, y0, x1, y1) = scaled_region(r, d, mcu, (sw, sh));
            if (x0, y0, x1, y1) != (0, 0, sw, sh) && x1 > x0 && y1 > y0 {
                let (w, h) = (x1 - x0, y1 - y0);
                let crop = Some((x0, y0));
                if let Some(data) = tj.decompress(bytes, pixel_format, channels, crop, (w, h)) {
                    return Some(Decoded {
                        image: Image::new(w, h, channels, data),
                        factor: d,
                        full,
                        origin: (x0, y0),
                    });
                }
                // The failed call may have left the decompressor mid-image: re-read the header
                // (and set the scale again) before the whole decode.
                tj.header(bytes)?;
                tj.set_scale(d)?;
            }
        }
        let data = tj.decompress(bytes, pixel_format, channels, None, (sw, sh))?;
        Some(Decoded {
            image: Image::new(sw, sh, channels, data),
            factor: d,
            full,
            origin: (0, 0),
        })
    });
    match refused {
        Some(detail) => Err(detail),
        None => Ok(decoded),
    }
}

/// The full-size width and height of an iMCU for a TurboJPEG subsampling code (libjpeg-turbo's
/// `tjMCUWidth` / `tjMCUHeight`), `None` for `TJSAMP_UNKNOWN` or a code it does not name.
fn mcu_size(subsamp: c_int) -> Option<(u32, u32)> {
    Some(match subsamp {
        raw::TJSAMP_TJSAMP_444 => (8, 8),
        raw::TJSAMP_TJSAMP_422 => (16, 8),
        raw::TJSAMP_TJSAMP_420 => (16, 16),
        raw::TJSAMP_TJSAMP_GRAY => (8, 8),
        raw::TJSAMP_TJSAMP_440 => (8, 16),
        raw::TJSAMP_TJSAMP_411 => (32, 8),
        raw::TJSAMP_TJSAMP_441 => (8, 32),
        _ => return None,
    })
}

/// The part of an image decoded at `1/d` (`sw × sh`) that holds the full-size region `r`:
/// `[x0, x1) × [y0, y1)`, widened by one scaled iMCU (`mcu` is its full-size width and height)
/// on every side and clamped to the image, `x0` aligned down to a multiple of `32 / d` (at least
/// 1): a multiple of every scaled iMCU width (8, 16 or 32 pixels at full size), which TurboJPEG
/// requires, and of libjpeg's own alignment (the widest sampling factor's blocks).
fn scaled_region(
    r: super::Region,
    d: u32,
    mcu: (u32, u32),
    (sw, sh): (u32, u32),
) -> (u32, u32, u32, u32) {
    let (mw, mh) = ((mcu.0 / d).max(1), (mcu.1 / d).max(1));
    let align = (32 / d).max(1);
    let x0 = (r.left / d).saturating_sub(mw) / align * align;
    let y0 = (r.top / d).saturating_sub(mh);
    let x1 = r
        .left
        .saturating_add(r.width)
        .div_ceil(d)
        .saturating_add(mw)
        .min(sw);
    let y1 = r
        .top
        .saturating_add(r.height)
        .div_ceil(d)
        .saturating_add(mh)
        .min(sh);
    (x0.min(x1), y0.min(y1), x1, y1)
}

/// What [`Decompressor::header`] reads of a JPEG's header.
struct Header {
    width: u32,
    height: u32,
    /// A `TJSAMP_*` code.
    subsamp: c_int,
    /// A `TJCS_*` code.
    colorspace: raw::TJCS,
    lossless: bool,
}

/// A TurboJPEG decompressor (libjpeg-turbo's C API through `turbojpeg::raw`, which also offers
/// the cropping the `turbojpeg` crate's safe API does not wrap), destroyed on drop.
struct Decompressor(raw::tjhandle);

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from `tj3Init`, is not null, and is destroyed once.
        unsafe { raw::tj3Destroy(self.0) }
    }
}

thread_local! {
    /// This thread's decompressor (see [`with_decompressor`]).
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's decompressor, made on first use; when `f` fails (`None`) the
/// decompressor is destroyed, so that the next image starts on a fresh one whatever state the
/// failure left it in.
fn with_decompressor<R>(f: impl FnOnce(&Decompressor) -> Option<R>) -> Option<R> {
    DECOMPRESSOR.with(|cell| {
        // Only this function borrows the cell and `f` never calls back into it: the borrow
        // cannot fail, but a failure would only mean decoding on a decompressor of its own.
        let Ok(mut slot) = cell.try_borrow_mut() else {
            return f(&Decompressor::new()?);
        };
        if slot.is_none() {
            *slot = Some(Decompressor::new()?);
        }
        let out = slot.as_ref().and_then(f);
        if out.is_none() {
            *slot = None;
        }
        out
    })
}

impl Decompressor {
    fn new() -> Option<Self> {
        // SAFETY: tj3Init has no preconditions; a null handle is an allocation failure.
        let ptr = unsafe { raw::tj3Init(raw::TJINIT_TJINIT_DECOMPRESS as c_int) };
        (!ptr.is_null()).then_some(Decompressor(ptr))
    }

    /// Parses the header of `bytes`; later calls decode that image.
    fn header(&self, bytes: &[u8]) -> Option<Header> {
        let len = raw::size_t::try_from(bytes.len()).ok()?;
        // SAFETY: the handle is valid; `bytes` is read within its length.
        if unsafe { raw::tj3DecompressHeader(self.0, bytes.as_ptr(), len) } != 0 {
            return None;
        }
        // SAFETY: the handle is valid; tj3Get only reads a parameter.
        let get = |p: raw::TJPARAM| unsafe { raw::tj3Get(self.0, p as c_int) };
        Some(Header {
            width: u32::try_from(get(raw::TJPARAM_TJPARAM_JPEGWIDTH)).ok()?,
            height: u32::try_from(get(raw::TJPARAM_TJPARAM_JPEGHEIGHT)).ok()?,
            subsamp: get(raw::TJPARAM_TJPARAM_SUBSAMP),
            colorspace: raw::TJCS::try_from(get(raw::TJPARAM_TJPARAM_COLORSPACE)).ok()?,
            lossless: get(raw::TJPARAM_TJPARAM_LOSSLESS) != 0,
        })
    }

    /// Sets the DCT scaling to `1/d` for the image whose header was read last.
    fn set_scale(&self, d: u32) -> Option<()> {
        let scale = raw::tjscalingfactor {
            num: 1,
            denom: c_int::try_from(d).ok()?,
        };
        // SAFETY: the handle is valid.
        (unsafe { raw::tj3SetScalingFactor(self.0, scale) } == 0).then_some(())
    }

    /// Decodes the image whose header was read last, at the scale set last, as `pixel_format`
    /// with `channels` bytes a pixel: the `w × h` scaled pixels from `(x, y)` (`x` on the scaled
    /// iMCU grid) for a crop, or the whole `w × h` scaled image for `crop == None`. `None` on any
    /// libjpeg-turbo error or warning.
    fn decompress(
        &self,
        bytes: &[u8],
        pixel_format: raw::TJPF,
        channels: u8,
        crop: Option<(u32, u32)>,
        (w, h): (u32, u32),
    ) -> Option<Vec<u8>> {
        let int = |v: u32| c_int::try_from(v).ok();
        let region = match crop {
            Some((x, y)) => raw::tjregion {
                x: int(x)?,
                y: int(y)?,
                w: int(w)?,
                h: int(h)?,
            },
            // TJUNCROPPED: the decompressor keeps the last image's region otherwise.
            None => raw::tjregion {
                x: 0,
                y: 0,
                w: 0,
                h: 0,
            },
        };
        // SAFETY: the handle is valid.
        if unsafe { raw::tj3SetCroppingRegion(self.0, region) } != 0 {
            return None;
        }
        let len = raw::size_t::try_from(bytes.len()).ok()?;
        let pitch = (w as usize).checked_mul(channels as usize)?;
        let mut data = vec![0u8; pitch.checked_mul(h as usize)?];
        // SAFETY: the handle is valid; `bytes` is read within its length; `data` holds
        // `pitch · h` bytes, exactly the `w × h` image or region at `pitch` bytes a row that
        // tj3Decompress8 writes (a failed call returns -1 and we return None).
        let done = unsafe {
            raw::tj3Decompress8(
                self.0,
                bytes.as_ptr(),
                len,
                data.as_mut_ptr(),
                c_int::try_from(pitch).ok()?,
                pixel_format as c_int,
            )
        };
        (done == 0).then_some(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Region;
    use rand::{Rng, SeedableRng};
    use turbojpeg::{PixelFormat, Subsamp};

    /// [`super::decode`] of a file within the pixel limit.
    fn decode(bytes: &[u8], ask: &mut dyn FnMut(u32, u32) -> DecodeAsk) -> Option<Decoded> {
        super::decode(bytes, ask).expect("within the pixel limit")
    }

    /// `bytes` (a baseline JPEG) with its frame header (SOF0) declaring `w × h`.
    fn forge_size(mut bytes: Vec<u8>, w: u16, h: u16) -> Vec<u8> {
        let sof = bytes
            .windows(2)
            .position(|m| m == [0xFF, 0xC0])
            .expect("a baseline JPEG");
        // FF C0, length (2), precision (1), height (2), width (2).
        bytes[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
        bytes[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
        bytes
    }

    /// A 2-kB file whose header asks for 65,000 × 65,000 pixels (12.7 GB of RGB) is refused from
    /// its header, before libjpeg-turbo allocates; just under the limit is decoded as usual
    /// (here: it fails as a corrupt stream, `Ok(None)`, without a refusal).
    #[test]
    fn a_forged_header_over_the_pixel_limit_is_refused_before_decoding() {
        let small = encode(16, 16, false);
        let forged = forge_size(small.clone(), 65_000, 65_000);
        let mut asked = false;
        let Err(err) = super::decode(&forged, &mut |_, _| {
            asked = true;
            DecodeAsk::whole(1)
        }) else {
            panic!("a 65000x65000 header was not refused");
        };
        assert!(
            err.contains("65000x65000") && err.contains("limit"),
            "{err}"
        );
        assert!(
            !asked,
            "the caller was asked for a reduction of a refused image"
        );
        // 13,000 × 13,000 = 169 M pixels: under the limit, not refused.
        assert!(
            super::decode(&forge_size(small, 13_000, 13_000), &mut |_, _| {
                DecodeAsk::whole(8)
            })
            .is_ok()
        );
    }

    fn encode(w: u32, h: u32, grey: bool) -> Vec<u8> {
        let c = if grey { 1 } else { 3 };
        let px: Vec<u8> = (0..w * h * c).map(|v| ((v * 37) % 251) as u8).collect();
        let mut out = Vec::new();
        let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90);
        let ty = if grey {
            image::ExtendedColorType::L8
        } else {
            image::ExtendedColorType::Rgb8
        };
        image::ImageEncoder::write_image(enc, &px, w, h, ty).unwrap();
        out
    }

    #[test]
    fn full_size_matches_the_header_and_reduced_sizes_round_up() {
        let bytes = encode(37, 21, false);
        for (want, d, (w, h)) in [
            (1, 1, (37, 21)),
            (3, 2, (19, 11)),
            (4, 4, (10, 6)),
            (99, 8, (5, 3)),
        ] {
            let got = decode(&bytes, &mut |_, _| DecodeAsk::whole(want)).unwrap();
            let img = &got.image;
            assert_eq!((got.factor, got.full, got.origin), (d, (37, 21), (0, 0)));
            assert_eq!(((img.width, img.height), img.channels), ((w, h), 3));
            assert_eq!(img.data.len(), (w * h * 3) as usize);
        }
        let grey = decode(&encode(9, 9, true), &mut |_, _| DecodeAsk::whole(1)).unwrap();
        assert_eq!(grey.image.channels, 1);
    }

    /// A region's pixels are the whole decode's, byte for byte, at every reduction, for 4:2:0,
    /// 4:2:2, 4:4:4 and grey JPEGs (fancy upsampling included), random regions and sizes that
    /// are not multiples of the iMCU; the part decoded is smaller than the whole when the region
    /// is.
    #[test]
    fn a_region_decodes_to_the_whole_decodes_pixels() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x7265_6769);
        let mut smaller = 0;
        for (subsamp, grey) in [
            (Subsamp::Sub2x2, false),
            (Subsamp::Sub2x1, false),
            (Subsamp::None, false),
            (Subsamp::Gray, true),
        ] {
            let (w, h) = (203u32, 157u32);
            let c = if grey { 1 } else { 3 };
            // Smooth content with noise, so that chroma upsampling has something to blend.
            let px: Vec<u8> = (0..w * h * c)
                .map(|i| {
                    let (x, y) = ((i / c) % w, (i / c) / w);
                    ((x * 3 + y * 2 + (i % c) * 40) % 256) as u8 ^ rng.random::<u8>() & 15
                })
                .collect();
            let format = if grey {
                PixelFormat::GRAY
            } else {
                PixelFormat::RGB
            };
            let img = turbojpeg::Image {
                pixels: &px[..],
                width: w as usize,
                pitch: (w * c) as usize,
                height: h as usize,
                format,
            };
            let bytes = turbojpeg::compress(img, 90, subsamp).unwrap().to_vec();
            for d in REDUCTIONS {
                let all = decode(&bytes, &mut |_, _| DecodeAsk::whole(d)).unwrap();
                for _ in 0..12 {
                    let left = rng.random_range(0..w - 1);
                    let top = rng.random_range(0..h - 1);
                    let r = Region {
                        left,
                        top,
                        width: rng.random_range(1..=w - left),
                        height: rng.random_range(1..=h - top),
                    };
                    let ask = DecodeAsk {
                        factor: d,
                        region: Some(r),
                    };
                    let part = decode(&bytes, &mut |_, _| ask).unwrap();
                    assert_eq!((part.factor, part.full), (d, (w, h)));
                    let (ox, oy) = part.origin;
                    let (pw, ph) = (part.image.width, part.image.height);
                    smaller += usize::from(pw * ph < all.image.width * all.image.height);
                    // The region in the reduced image; it must lie inside the part.
                    let (x0, y0) = (left / d, top / d);
                    let x1 = (left + r.width).div_ceil(d).min(all.image.width);
                    let y1 = (top + r.height).div_ceil(d).min(all.image.height);
                    assert!(ox <= x0 && oy <= y0 && ox + pw >= x1 && oy + ph >= y1);
                    for y in y0..y1 {
                        let row = |img: &Image, x: u32, y: u32| {
                            let at = ((y * img.width + x) * c) as usize;
                            img.data[at..at + ((x1 - x0) * c) as usize].to_vec()
                        };
                        assert_eq!(
                            row(&part.image, x0 - ox, y - oy),
                            row(&all.image, x0, y),
                            "{subsamp:?} 1/{d} {r:?} row {y}"
                        );
                    }
                }
            }
        }
        assert!(smaller > 100, "{smaller}");
    }

    /// A region reaching past the image (a caller's saturated sums) is clamped, not wrapped.
    #[test]
    fn a_region_past_the_image_is_clamped() {
        let bytes = encode(64, 48, false);
        let region = Region {
            left: 40,
            top: 0,
            width: u32::MAX,
            height: u32::MAX,
        };
        for factor in REDUCTIONS {
            let ask = DecodeAsk {
                factor,
                region: Some(region),
            };
            let part = decode(&bytes, &mut |_, _| ask).unwrap();
            let whole = decode(&bytes, &mut |_, _| DecodeAsk::whole(factor)).unwrap();
            let (ox, oy) = part.origin;
            assert_eq!(oy, 0);
            assert_eq!(ox + part.image.width, whole.image.width, "1/{factor}");
            assert_eq!(part.image.height, whole.image.height, "1/{factor}");
        }
    }

    #[test]
    fn the_full_size_decode_is_close_to_image_crate_decode() {
        // Two IDCT implementations of the same file: a pixel or two of rounding apart.
        let bytes = encode(64, 48, false);
        let ours = decode(&bytes, &mut |_, _| DecodeAsk::whole(1))
            .unwrap()
            .image;
        let theirs = image::load_from_memory(&bytes)
            .unwrap()
            .to_rgb8()
            .into_raw();
        let worst = ours
            .data
            .iter()
            .zip(&theirs)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(worst <= 3, "{worst}");
    }

    #[test]
    fn not_a_jpeg_is_none() {
        assert!(decode(b"\xFF\xD8\xFFgarbage", &mut |_, _| DecodeAsk::whole(1)).is_none());
    }

    /// The thread's decompressor carries nothing from one image to the next: a scaled, cropped
    /// decode, a failed one (garbage, then a truncated stream) and a whole one in between do
    /// not change the pixels of the same decode made first on a fresh thread.
    #[test]
    fn decodes_on_one_thread_do_not_depend_on_the_ones_before() {
        let bytes = encode(96, 80, false);
        let region = Region {
            left: 30,
            top: 20,
            width: 40,
            height: 30,
        };
        let cropped = DecodeAsk {
            factor: 2,
            region: Some(region),
        };
        let fresh = |ask: DecodeAsk| {
            let bytes = bytes.clone();
            std::thread::spawn(move || decode(&bytes, &mut |_, _| ask).unwrap())
                .join()
                .unwrap()
        };
        let (first_whole, first_crop) = (fresh(DecodeAsk::whole(1)), fresh(cropped));
        let same = |a: &Decoded, b: &Decoded| {
            (a.factor, a.full, a.origin, &a.image.data)
                == (b.factor, b.full, b.origin, &b.image.data)
        };
        let crop = decode(&bytes, &mut |_, _| cropped).unwrap();
        assert!(same(&crop, &first_crop));
        assert!(decode(b"\xFF\xD8\xFFgarbage", &mut |_, _| cropped).is_none());
        assert!(decode(&bytes[..bytes.len() / 2], &mut |_, _| DecodeAsk::whole(1)).is_none());
        let whole = decode(&bytes, &mut |_, _| DecodeAsk::whole(1)).unwrap();
        assert!(same(&whole, &first_whole));
        assert_eq!(whole.image.data.len(), 96 * 80 * 3);
        let crop = decode(&bytes, &mut |_, _| cropped).unwrap();
        assert!(same(&crop, &first_crop));
    }
}
