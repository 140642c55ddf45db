//! JPEG decoding with libjpeg-turbo (the `turbojpeg` crate, which builds its bundled 3.1 source
//! with SIMD), at full size or DCT-scaled to 1/2, 1/4 or 1/8.
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

use super::Image;
use turbojpeg::{Colorspace, Decompressor, PixelFormat, ScalingFactor};

/// The reduction factors libjpeg-turbo's DCT scaling offers that this crate uses.
pub const REDUCTIONS: [u32; 4] = [1, 2, 4, 8];

/// Decodes `bytes` (a JPEG) with libjpeg-turbo: `reduction(width, height)` gets the full size and
/// returns the wanted factor (rounded down to one of [`REDUCTIONS`]); the image comes back at
/// that scale, with the factor used and the full size.
///
/// Grey JPEGs decode to 1 channel, the others (YCbCr, RGB) to RGB. `None` when libjpeg-turbo
/// cannot decode the file to those (CMYK / YCCK, a corrupt stream): the caller falls back to the
/// `image` crate, which decodes CMYK and words its own errors.
pub(crate) fn decode(
    bytes: &[u8],
    reduction: &mut dyn FnMut(u32, u32) -> u32,
) -> Option<(Image, u32, (u32, u32))> {
    let mut dec = Decompressor::new().ok()?;
    let header = dec.read_header(bytes).ok()?;
    let (format, channels) = match header.colorspace {
        Colorspace::Gray => (PixelFormat::GRAY, 1u8),
        Colorspace::YCbCr | Colorspace::RGB => (PixelFormat::RGB, 3u8),
        _ => return None,
    };
    let full = (
        u32::try_from(header.width).ok()?,
        u32::try_from(header.height).ok()?,
    );
    let wanted = reduction(full.0, full.1);
    // Lossless JPEGs have no DCT to scale.
    let wanted = if header.is_lossless { 1 } else { wanted };
    let d = REDUCTIONS
        .iter()
        .rev()
        .copied()
        .find(|&d| d <= wanted)
        .unwrap_or(1);
    let factor = ScalingFactor::new(1, d as usize);
    dec.set_scaling_factor(factor).ok()?;
    let scaled = header.scaled(factor);
    let pitch = scaled.width * channels as usize;
    let mut data = vec![0u8; pitch * scaled.height];
    let out = turbojpeg::Image {
        pixels: data.as_mut_slice(),
        width: scaled.width,
        pitch,
        height: scaled.height,
        format,
    };
    dec.decompress(bytes, out).ok()?;
    let image = Image::new(
        u32::try_from(scaled.width).ok()?,
        u32::try_from(scaled.height).ok()?,
        channels,
        data,
    );
    Some((image, d, full))
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let (img, got, full) = decode(&bytes, &mut |_, _| want).unwrap();
            assert_eq!(
                (got, full, (img.width, img.height), img.channels),
                (d, (37, 21), (w, h), 3)
            );
            assert_eq!(img.data.len(), (w * h * 3) as usize);
        }
        let (img, _, _) = decode(&encode(9, 9, true), &mut |_, _| 1).unwrap();
        assert_eq!(img.channels, 1);
    }

    #[test]
    fn the_full_size_decode_is_close_to_image_crate_decode() {
        // Two IDCT implementations of the same file: a pixel or two of rounding apart.
        let bytes = encode(64, 48, false);
        let (ours, _, _) = decode(&bytes, &mut |_, _| 1).unwrap();
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
        assert!(decode(b"\xFF\xD8\xFFgarbage", &mut |_, _| 1).is_none());
    }
}
