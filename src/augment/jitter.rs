//! Colour jitter (torchvision `ColorJitter` semantics on float images in `[0, 1]`).

use super::crop::uniform;
use super::grayscale::luma;
use super::recipe::JitterSpec;
use rand::Rng;

/// One drawn colour jitter: the order of the four operations (0 brightness, 1 contrast,
/// 2 saturation, 3 hue) and their factors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JitterParams {
    /// A permutation of `0..4`.
    pub order: [u8; 4],
    /// Brightness factor (multiplies every value).
    pub brightness: f32,
    /// Contrast factor (blend with the mean luma).
    pub contrast: f32,
    /// Saturation factor (blend with each pixel's luma); skipped on grey images.
    pub saturation: f32,
    /// Hue shift in turns; skipped on grey images.
    pub hue: f32,
}

impl JitterParams {
    /// Draws the order and the four factors: brightness/contrast/saturation uniform in
    /// `[max(0, 1 - x), 1 + x]`, hue uniform in `[-h, h]`.
    pub fn sample(spec: &JitterSpec, rng: &mut impl Rng) -> Self {
        let mut order = [0u8, 1, 2, 3];
        for i in (1..4).rev() {
            let j = rng.random_range(0..=i);
            order.swap(i, j);
        }
        let f = |x: f32, rng: &mut _| uniform(rng, (1.0 - x).max(0.0), 1.0 + x);
        let brightness = f(spec.brightness, rng);
        let contrast = f(spec.contrast, rng);
        let saturation = f(spec.saturation, rng);
        let hue = uniform(rng, -spec.hue, spec.hue);
        JitterParams {
            order,
            brightness,
            contrast,
            saturation,
            hue,
        }
    }

    /// Applies the jitter to an `H×W×C` f32 buffer in `[0, 1]`. On a 1-channel buffer only
    /// brightness and contrast apply.
    pub fn apply(&self, data: &mut [f32], channels: usize) {
        for op in self.order {
            match op {
                0 => adjust_brightness(data, self.brightness),
                1 => adjust_contrast(data, channels, self.contrast),
                2 if channels == 3 => adjust_saturation(data, self.saturation),
                3 if channels == 3 => adjust_hue(data, self.hue),
                _ => {}
            }
        }
    }
}

/// `v ← clamp(v · f, 0, 1)`.
pub fn adjust_brightness(data: &mut [f32], f: f32) {
    for v in data {
        *v = (*v * f).clamp(0.0, 1.0);
    }
}

/// Partial sums of [`lane_sum`].
pub const SUM_LANES: usize = 16;

/// The sum of `values` as the contrast's mean luma takes it: value `i` goes to partial sum
/// `i % SUM_LANES`, each partial sum adds its values in order, and the partial sums are then
/// added in lane order. One fixed order (so the vectorised path in `super::planar` gives the
/// same bits), more accurate than one running sum, and not a serial chain of adds.
pub fn lane_sum(values: impl Iterator<Item = f32>) -> f32 {
    let mut lanes = [0f32; SUM_LANES];
    for (i, v) in values.enumerate() {
        lanes[i % SUM_LANES] += v;
    }
    lanes.iter().sum()
}

/// `v ← clamp(f · v + (1 - f) · m, 0, 1)` with `m` the mean luma of the image ([`lane_sum`]
/// over the pixels, divided by their count).
pub fn adjust_contrast(data: &mut [f32], channels: usize, f: f32) {
    let n = (data.len() / channels.max(1)).max(1) as f32;
    let mean = if channels == 3 {
        lane_sum(data.chunks_exact(3).map(|p| luma(p[0], p[1], p[2]))) / n
    } else {
        lane_sum(data.iter().copied()) / n
    };
    let off = (1.0 - f) * mean;
    for v in data {
        *v = (f * *v + off).clamp(0.0, 1.0);
    }
}

/// `p ← clamp(f · p + (1 - f) · luma(p), 0, 1)` per RGB pixel.
pub fn adjust_saturation(data: &mut [f32], f: f32) {
    for p in data.chunks_exact_mut(3) {
        let off = (1.0 - f) * luma(p[0], p[1], p[2]);
        for v in p {
            *v = (f * *v + off).clamp(0.0, 1.0);
        }
    }
}

/// Rotates the hue of each RGB pixel by `shift` turns (through HSV, as torchvision does).
pub fn adjust_hue(data: &mut [f32], shift: f32) {
    for p in data.chunks_exact_mut(3) {
        let (h, s, v) = rgb_to_hsv(p[0], p[1], p[2]);
        let h = h + shift;
        let h = h - h.floor();
        let (r, g, b) = hsv_to_rgb(h, s, v);
        p[0] = r;
        p[1] = g;
        p[2] = b;
    }
}

/// torchvision `_rgb2hsv` for one pixel; `h` in turns `[0, 1)`.
pub fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let maxc = r.max(g).max(b);
    let minc = r.min(g).min(b);
    let cr = maxc - minc;
    if cr == 0.0 {
        return (0.0, 0.0, maxc);
    }
    let s = cr / maxc;
    let rc = (maxc - r) / cr;
    let gc = (maxc - g) / cr;
    let bc = (maxc - b) / cr;
    let h = if maxc == r {
        bc - gc
    } else if maxc == g {
        2.0 + rc - bc
    } else {
        4.0 + gc - rc
    };
    let h = h / 6.0 + 1.0;
    (h - h.floor(), s, maxc)
}

/// torchvision `_hsv2rgb` for one pixel.
pub fn hsv_to_rgb(h: f32, s: f32, v: f32) -> (f32, f32, f32) {
    let h6 = h * 6.0;
    let i = h6.floor();
    let f = h6 - i;
    let p = (v * (1.0 - s)).clamp(0.0, 1.0);
    let q = (v * (1.0 - s * f)).clamp(0.0, 1.0);
    let t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0);
    match (i as i32).rem_euclid(6) {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn factors_stay_in_their_ranges_and_order_is_a_permutation() {
        let spec = JitterSpec {
            p: 0.8,
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.4,
            hue: 0.1,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (mut lo, mut hi) = (f32::MAX, f32::MIN);
        for _ in 0..2000 {
            let j = JitterParams::sample(&spec, &mut rng);
            for f in [j.brightness, j.contrast, j.saturation] {
                assert!((0.6..=1.4).contains(&f));
                lo = lo.min(f);
                hi = hi.max(f);
            }
            assert!((-0.1..=0.1).contains(&j.hue));
            let mut o = j.order;
            o.sort();
            assert_eq!(o, [0, 1, 2, 3]);
        }
        // The draws cover the range, not a corner of it.
        assert!(lo < 0.62 && hi > 1.38, "{lo} {hi}");
    }

    // colorsys reference (Python):
    //   import colorsys; colorsys.rgb_to_hsv(0.2, 0.6, 0.4) -> (0.41666, 0.66666, 0.6)
    #[test]
    fn hsv_roundtrip_and_reference() {
        let (h, s, v) = rgb_to_hsv(0.2, 0.6, 0.4);
        assert!((h - 0.416_666_7).abs() < 1e-5 && (s - 0.666_666_7).abs() < 1e-5 && v == 0.6);
        let (r, g, b) = hsv_to_rgb(h, s, v);
        assert!((r - 0.2).abs() < 1e-5 && (g - 0.6).abs() < 1e-5 && (b - 0.4).abs() < 1e-5);
    }

    #[test]
    fn grey_image_ignores_saturation_and_hue() {
        let j = JitterParams {
            order: [2, 3, 0, 1],
            brightness: 1.0,
            contrast: 1.0,
            saturation: 0.0,
            hue: 0.3,
        };
        let mut v = vec![0.1, 0.5, 0.9];
        j.apply(&mut v, 1);
        assert_eq!(v, vec![0.1, 0.5, 0.9]);
    }

    #[test]
    fn contrast_zero_gives_mean_luma() {
        let mut v = vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0];
        adjust_contrast(&mut v, 3, 0.0);
        let m = (0.299 + 0.114) / 2.0;
        assert!(v.iter().all(|x| (x - m).abs() < 1e-6));
    }
}
