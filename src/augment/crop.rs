//! Random-resized crop (torchvision `RandomResizedCrop.get_params`) and the bilinear
//! crop-resize through `fast_image_resize`.

use super::recipe::CropSpec;
use crate::{Error, Result};
use fast_image_resize::images::{Image as FirImage, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use rand::Rng;

/// A crop rectangle in source pixels: rows `top..top + height`, columns `left..left + width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropBox {
    /// First row.
    pub top: u32,
    /// First column.
    pub left: u32,
    /// Number of rows (≥ 1).
    pub height: u32,
    /// Number of columns (≥ 1).
    pub width: u32,
}

impl CropBox {
    /// The whole `width × height` image.
    pub fn full(width: u32, height: u32) -> Self {
        CropBox {
            top: 0,
            left: 0,
            height,
            width,
        }
    }
}

/// Draws a crop box the way torchvision's `RandomResizedCrop.get_params` does: up to ten tries
/// of an area fraction uniform in `scale` and a log-uniform aspect ratio in `ratio`, then a
/// central crop clamped to the ratio range.
pub fn sample_rrc(spec: &CropSpec, width: u32, height: u32, rng: &mut impl Rng) -> CropBox {
    let area = width as f32 * height as f32;
    let (lr0, lr1) = (spec.ratio[0].ln(), spec.ratio[1].ln());
    for _ in 0..10 {
        let target = area * uniform(rng, spec.scale[0], spec.scale[1]);
        let aspect = uniform(rng, lr0, lr1).exp();
        let w = (target * aspect).sqrt().round() as u32;
        let h = (target / aspect).sqrt().round() as u32;
        if w > 0 && h > 0 && w <= width && h <= height {
            let top = rng.random_range(0..=height - h);
            let left = rng.random_range(0..=width - w);
            return CropBox {
                top,
                left,
                height: h,
                width: w,
            };
        }
    }
    let in_ratio = width as f32 / height as f32;
    let (w, h) = if in_ratio < spec.ratio[0] {
        (
            width,
            ((width as f32 / spec.ratio[0]).round() as u32).clamp(1, height),
        )
    } else if in_ratio > spec.ratio[1] {
        (
            ((height as f32 * spec.ratio[1]).round() as u32).clamp(1, width),
            height,
        )
    } else {
        (width, height)
    };
    CropBox {
        top: (height - h) / 2,
        left: (width - w) / 2,
        height: h,
        width: w,
    }
}

/// Uniform in `[lo, hi)` (exactly `lo` when the range is empty).
pub(crate) fn uniform(rng: &mut impl Rng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.random::<f32>()
}

/// Crops `bx` out of the u8 `H×W×C` image `src` (`width × height`, `channels` ∈ {1, 3}) and
/// resizes it bilinearly to `out_w × out_h` into `dst` (`out_h * out_w * channels` bytes).
/// `src` may be the image decoded at `1/factor` of its size, or the part of it starting at
/// `origin` (in its pixels): `bx` is in full-size pixels and maps to `bx / factor - origin` in
/// `src`. A crop already of the output size (at factor 1) is copied exactly.
#[allow(clippy::too_many_arguments)]
pub fn crop_resize(
    resizer: &mut Resizer,
    src: &[u8],
    width: u32,
    height: u32,
    channels: u8,
    bx: CropBox,
    factor: u32,
    origin: (u32, u32),
    dst: &mut [u8],
    out_w: u32,
    out_h: u32,
) -> Result<()> {
    let c = channels as usize;
    if factor == 1 && bx.width == out_w && bx.height == out_h {
        let row = out_w as usize * c;
        for y in 0..out_h as usize {
            let (top, left) = ((bx.top - origin.1) as usize, (bx.left - origin.0) as usize);
            let s = ((top + y) * width as usize + left) * c;
            dst[y * row..(y + 1) * row].copy_from_slice(&src[s..s + row]);
        }
        return Ok(());
    }
    let pixel = if channels == 1 {
        PixelType::U8
    } else {
        PixelType::U8x3
    };
    let fail = |e: &dyn std::fmt::Display| Error::invalid("crop_resize", e.to_string());
    let src_img = ImageRef::new(width, height, src, pixel).map_err(|e| fail(&e))?;
    let mut dst_img = FirImage::from_slice_u8(out_w, out_h, dst, pixel).map_err(|e| fail(&e))?;
    let f = f64::from(factor);
    let opts = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
        .crop(
            bx.left as f64 / f - f64::from(origin.0),
            bx.top as f64 / f - f64::from(origin.1),
            bx.width as f64 / f,
            bx.height as f64 / f,
        );
    resizer
        .resize(&src_img, &mut dst_img, &opts)
        .map_err(|e| fail(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn rrc_boxes_stay_inside_and_respect_scale() {
        let spec = CropSpec {
            scale: [0.08, 1.0],
            ratio: [0.75, 4.0 / 3.0],
        };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for (w, h) in [(28, 28), (32, 32), (224, 160), (5, 300)] {
            for _ in 0..500 {
                let b = sample_rrc(&spec, w, h, &mut rng);
                assert!(b.width >= 1 && b.height >= 1);
                assert!(
                    b.left + b.width <= w && b.top + b.height <= h,
                    "{b:?} in {w}x{h}"
                );
                let frac = (b.width * b.height) as f32 / (w * h) as f32;
                // Rounding of the sides can move the area a little outside `scale`.
                assert!(frac <= 1.0 + 1e-6);
            }
        }
    }

    #[test]
    fn exact_crop_when_sizes_match() {
        let (w, h) = (7u32, 5u32);
        let src: Vec<u8> = (0..w * h * 3).map(|v| (v * 7 % 251) as u8).collect();
        let bx = CropBox {
            top: 1,
            left: 2,
            height: 3,
            width: 4,
        };
        let mut dst = vec![0u8; 3 * 4 * 3];
        crop_resize(
            &mut Resizer::new(),
            &src,
            w,
            h,
            3,
            bx,
            1,
            (0, 0),
            &mut dst,
            4,
            3,
        )
        .unwrap();
        for y in 0..3 {
            for x in 0..4 {
                for c in 0..3 {
                    let s = (((1 + y) * w + 2 + x) * 3 + c) as usize;
                    assert_eq!(dst[((y * 4 + x) * 3 + c) as usize], src[s]);
                }
            }
        }
    }

    #[test]
    fn resize_of_constant_image_is_constant() {
        let src = vec![77u8; 10 * 6];
        let mut dst = vec![0u8; 16 * 16];
        let bx = CropBox {
            top: 1,
            left: 1,
            height: 4,
            width: 7,
        };
        crop_resize(
            &mut Resizer::new(),
            &src,
            10,
            6,
            1,
            bx,
            1,
            (0, 0),
            &mut dst,
            16,
            16,
        )
        .unwrap();
        assert!(dst.iter().all(|&v| v == 77));
    }
}
