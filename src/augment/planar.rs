//! The photometric half of a view on planar f32 (`C×H×W`), written so that the compiler
//! vectorises every pass: colour jitter, grayscale, blur, solarise and normalisation.
//!
//! The straightforward implementations ([`super::jitter`], [`super::grayscale`],
//! [`super::blur`], [`super::solarize`], [`super::normalize`]) work pixel by pixel on
//! interleaved `H×W×C`, with a branchy HSV round trip per pixel; at 224 px they were the hot spot
//! of a StrongAug view. Here each operation runs over whole planes, the HSV round trip is a
//! branch-free select chain, and the whole pipeline is compiled again for AVX2 and for AVX-512
//! (chosen at run time). Every pass does the same IEEE operations in the same order as the
//! straightforward one (no fused multiply-adds, no reassociated sums), so the result is **bit
//! for bit** that of the reference path on any x86-64, with or without AVX2
//! (`augment::tests::planar_photometric_path_is_the_reference_bit_for_bit` and the tests below).
//!
//! Output is written only with `MaybeUninit::write` (the rule in `normalize.rs`'s module doc
//! that keeps `augment::as_uninit` sound).

use super::blur::reflect;
use super::grayscale::luma;
use super::jitter::{JitterParams, SUM_LANES};
use super::normalize::to_planes;
use super::recipe::Normalize;
use std::mem::MaybeUninit;

/// What the photometric pipeline applies to one view (drawn in [`super::ViewParams`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Photometric<'a> {
    /// Mirror the view left-right (done while the u8 pixels are read).
    pub flip: bool,
    pub jitter: Option<&'a JitterParams>,
    pub grayscale: bool,
    /// The normalised 1-D Gaussian kernel, when the view is blurred.
    pub blur: Option<&'a [f32]>,
    pub solarize: Option<f32>,
    pub normalize: &'a Normalize,
}

/// Converts the u8 `H×W×C` view `pixels` to planar `[0, 1]` f32 in `out` (`C×H×W`), applies
/// `ops` in the recipe's order (jitter, grayscale, blur, solarise) and normalises in place.
/// Every value of `out` is written (the conversion writes them all first; panics unless `out`
/// has `pixels`' length). `scratch` holds one plane and one padded row during the blur.
pub(super) fn apply(
    pixels: &[u8],
    width: usize,
    height: usize,
    channels: usize,
    ops: &Photometric<'_>,
    out: &mut [MaybeUninit<f32>],
    scratch: &mut Vec<f32>,
) {
    debug_assert_eq!(pixels.len(), width * height * channels);
    let padding = ops.blur.map_or(0, |k| k.len());
    scratch.resize(width * height + width + padding, 0.0);
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw") {
        // SAFETY: the CPU supports AVX-512F and BW (checked just above).
        unsafe { apply_avx512(pixels, width, height, channels, ops, out, scratch) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        unsafe { apply_avx2(pixels, width, height, channels, ops, out, scratch) };
        return;
    }
    apply_body(pixels, width, height, channels, ops, out, scratch);
}

// No copy enables FMA, and Rust never fuses a multiply and an add on its own, so every copy
// rounds each operation the same way: the same bits on any CPU.
target_copies!(
    apply_body(
        pixels: &[u8],
        width: usize,
        height: usize,
        channels: usize,
        ops: &Photometric<'_>,
        out: &mut [MaybeUninit<f32>],
        scratch: &mut [f32],
    ) -> ();
    /// [`apply_body`] for AVX-512 (16 floats a vector).
    apply_avx512 = "avx512f,avx512bw,avx2";
    /// [`apply_body`] for AVX2 (8 floats a vector).
    apply_avx2 = "avx2";
);

#[inline(always)]
fn apply_body(
    pixels: &[u8],
    width: usize,
    height: usize,
    channels: usize,
    ops: &Photometric<'_>,
    out: &mut [MaybeUninit<f32>],
    scratch: &mut [f32],
) {
    let n = width * height;
    let out = to_unit_planes(pixels, ops.flip, width, channels, out);
    if let Some(j) = ops.jitter {
        for op in j.order {
            match op {
                0 => brightness(out, j.brightness),
                1 => contrast(out, channels, n, j.contrast),
                2 if channels == 3 => saturation(out, n, j.saturation),
                3 if channels == 3 => hue(out, n, j.hue),
                _ => {}
            }
        }
    }
    if ops.grayscale && channels == 3 {
        grayscale(out, n);
    }
    if let Some(kernel) = ops.blur {
        if ops.grayscale && channels == 3 {
            // Three equal planes blur to three equal planes: blur one, copy it.
            let (first, rest) = out.split_at_mut(n);
            blur_plane(first, width, height, kernel, scratch);
            for plane in rest.chunks_exact_mut(n) {
                plane.copy_from_slice(first);
            }
        } else {
            for plane in out.chunks_exact_mut(n) {
                blur_plane(plane, width, height, kernel, scratch);
            }
        }
    }
    if let Some(threshold) = ops.solarize {
        for v in out.iter_mut() {
            *v = if *v >= threshold { 1.0 - *v } else { *v };
        }
    }
    for (c, plane) in out.chunks_exact_mut(n).enumerate() {
        let (m, s) = ops.normalize.channel(c, channels);
        let inv = 1.0 / s;
        for v in plane {
            *v = (*v - m) * inv;
        }
    }
}

/// `out[c·n + i] = pixels[i·C + c] / 255` (the reference's `v as f32 * (1 / 255)`), each row
/// mirrored when `flip` (the reference flips the u8 view first); every value written, `out`
/// returned initialised.
#[inline(always)]
fn to_unit_planes<'a>(
    pixels: &[u8],
    flip: bool,
    width: usize,
    channels: usize,
    out: &'a mut [MaybeUninit<f32>],
) -> &'a mut [f32] {
    const SCALE: f32 = 1.0 / 255.0;
    to_planes(pixels, width, channels, flip, out, |_, v| v as f32 * SCALE)
}

#[inline(always)]
fn clamp01(v: f32) -> f32 {
    v.clamp(0.0, 1.0)
}

/// The three planes of an RGB view.
#[inline(always)]
fn rgb(out: &mut [f32], n: usize) -> (&mut [f32], &mut [f32], &mut [f32]) {
    let (r, rest) = out.split_at_mut(n);
    let (g, b) = rest.split_at_mut(n);
    (r, g, &mut b[..n])
}

#[inline(always)]
fn brightness(out: &mut [f32], f: f32) {
    for v in out {
        *v = clamp01(*v * f);
    }
}

#[inline(always)]
fn contrast(out: &mut [f32], channels: usize, n: usize, f: f32) {
    // The mean luma, summed in the reference's order (`jitter::lane_sum`), SUM_LANES pixels at
    // a time in registers.
    let count = n.max(1) as f32;
    let mean = if channels == 3 {
        let (r, g, b) = rgb(out, n);
        lane_sum(&[r, g, b], |v| luma(v[0], v[1], v[2]))
    } else {
        lane_sum(&[out], |v| v[0])
    } / count;
    let off = (1.0 - f) * mean;
    for v in out {
        *v = clamp01(f * *v + off);
    }
}

/// `jitter::lane_sum` over the pixels of `planes` (each pixel's value `value([p0, p1, …])`),
/// a vector of partial sums at a time.
#[inline(always)]
fn lane_sum<const P: usize>(planes: &[&mut [f32]; P], value: impl Fn([f32; P]) -> f32) -> f32 {
    let n = planes[0].len();
    let mut lanes = [0f32; SUM_LANES];
    let full = n - n % SUM_LANES;
    for start in (0..full).step_by(SUM_LANES) {
        let chunk: [&[f32]; P] = std::array::from_fn(|p| &planes[p][start..start + SUM_LANES]);
        for (l, acc) in lanes.iter_mut().enumerate() {
            *acc += value(std::array::from_fn(|p| chunk[p][l]));
        }
    }
    for (l, acc) in lanes.iter_mut().enumerate().take(n - full) {
        *acc += value(std::array::from_fn(|p| planes[p][full + l]));
    }
    lanes.iter().sum()
}

#[inline(always)]
fn saturation(out: &mut [f32], n: usize, f: f32) {
    let (r, g, b) = rgb(out, n);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let off = (1.0 - f) * luma(*r, *g, *b);
        *r = clamp01(f * *r + off);
        *g = clamp01(f * *g + off);
        *b = clamp01(f * *b + off);
    }
}

#[inline(always)]
fn grayscale(out: &mut [f32], n: usize) {
    let (r, g, b) = rgb(out, n);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let y = luma(*r, *g, *b);
        *r = y;
        *g = y;
        *b = y;
    }
}

/// The reference's HSV round trip (`jitter::rgb_to_hsv`, shift, `jitter::hsv_to_rgb`) as a
/// select chain: every branch is computed and the taken one kept, which gives the same values.
#[inline(always)]
fn hue(out: &mut [f32], n: usize, shift: f32) {
    let (r, g, b) = rgb(out, n);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let (pr, pg, pb) = hue_pixel(*r, *g, *b, shift);
        *r = pr;
        *g = pg;
        *b = pb;
    }
}

#[inline(always)]
fn pick(cond: bool, a: f32, b: f32) -> f32 {
    if cond {
        a
    } else {
        b
    }
}

#[inline(always)]
fn hue_pixel(r: f32, g: f32, b: f32, shift: f32) -> (f32, f32, f32) {
    // rgb_to_hsv
    let maxc = r.max(g).max(b);
    let minc = r.min(g).min(b);
    let cr = maxc - minc;
    let grey = cr == 0.0;
    let s = pick(grey, 0.0, cr / maxc);
    // The reference's `rc`, `gc`, `bc` are `(maxc − channel) / cr`, and each branch uses two
    // of them: `bc − gc` (max in red), `2 + rc − bc` (green), `4 + gc − rc` (blue). Selecting
    // the two numerators first leaves two divisions instead of three, the same quotients.
    let (is_r, is_g) = (maxc == r, maxc == g);
    let first = pick(is_r, maxc - b, pick(is_g, maxc - r, maxc - g)) / cr;
    let second = pick(is_r, maxc - g, pick(is_g, maxc - b, maxc - r)) / cr;
    let h = pick(
        is_r,
        first - second,
        pick(is_g, 2.0 + first - second, 4.0 + first - second),
    );
    let h = h / 6.0 + 1.0;
    let h = pick(grey, 0.0, h - h.floor());
    let v = maxc;
    // shift
    let h = h + shift;
    let h = h - h.floor();
    // hsv_to_rgb
    let h6 = h * 6.0;
    let i = h6.floor();
    let f = h6 - i;
    let p = clamp01(v * (1.0 - s));
    let q = clamp01(v * (1.0 - s * f));
    let t = clamp01(v * (1.0 - s * (1.0 - f)));
    // `(i as i32).rem_euclid(6)` of the reference; `i` is in 0..=6 here (6 only by rounding).
    let sector = pick(i >= 6.0, i - 6.0, i);
    let s0 = sector == 0.0;
    let s1 = sector == 1.0;
    let s2 = sector == 2.0;
    let s3 = sector == 3.0;
    let s4 = sector == 4.0;
    // (v,t,p) (q,v,p) (p,v,t) (p,q,v) (t,p,v) (v,p,q)
    let ro = pick(s0, v, pick(s1, q, pick(s2 || s3, p, pick(s4, t, v))));
    let go = pick(s0, t, pick(s1 || s2, v, pick(s3, q, pick(s4, p, p))));
    let bo = pick(s0 || s1, p, pick(s2, t, pick(s3 || s4, v, q)));
    (ro, go, bo)
}

/// [`reflect`] for an index at most `n - 1` outside `0..n` (one reflection, no division); the
/// general case otherwise. The border pixels of a 224-px row made `reflect`'s `rem_euclid` a
/// tenth of a StrongAug view's time.
#[inline(always)]
fn reflect_once(i: isize, n: isize) -> usize {
    if i < 0 && -i < n {
        (-i) as usize
    } else if i >= n && i < 2 * n - 1 {
        (2 * (n - 1) - i) as usize
    } else if (0..n).contains(&i) {
        i as usize
    } else {
        reflect(i, n)
    }
}

/// The reference blur (`blur::blur_f32` with one channel) on one plane: the same taps in the
/// same order, horizontal pass into the first plane of `scratch`, vertical pass back. Each row is
/// first copied into the padded row after it, with its reflected borders, so that every output
/// pixel, border ones included, is the same sum of products (`0 + k0·p0 + k1·p1 + …`, the
/// reference's order); [`convolve`] computes 32 outputs at a time in registers.
#[inline(always)]
fn blur_plane(data: &mut [f32], width: usize, height: usize, kernel: &[f32], scratch: &mut [f32]) {
    let r = kernel.len() / 2;
    let (wi, ri) = (width as isize, r as isize);
    let (scratch, padded) = scratch.split_at_mut(width * height);
    let padded = &mut padded[..width + 2 * r];
    for (row, out) in data
        .chunks_exact(width)
        .zip(scratch.chunks_exact_mut(width))
    {
        padded[r..r + width].copy_from_slice(row);
        for j in (0..r).chain(r + width..width + 2 * r) {
            padded[j] = row[reflect_once(j as isize - ri, wi)];
        }
        convolve(out, kernel, |t| &padded[t..t + width]);
    }
    // Vertical pass: row `y` sums the rows `reflect(y + t - r)` of the horizontal pass.
    let mut rows = vec![0usize; kernel.len()];
    for (y, out) in data.chunks_exact_mut(width).enumerate() {
        for (t, start) in rows.iter_mut().enumerate() {
            *start = reflect(y as isize + t as isize - ri, height as isize) * width;
        }
        convolve(out, kernel, |t| &scratch[rows[t]..rows[t] + width]);
    }
}

/// `out[x] = 0 + k[0]·tap(0)[x] + k[1]·tap(1)[x] + …`, the taps in kernel order (the
/// reference's sums, bit for bit), a block of outputs at a time held in registers so that each
/// tap costs one load and one multiply and add per vector instead of a pass over the row.
/// `tap(t)` is the source row tap `t` reads, at least `out.len()` long.
///
/// Blocks of [`WIDE`] outputs, then of [`NARROW`]: the sums of one vector form a chain of
/// dependent additions, so a block needs several vectors in flight to keep the adder busy (32
/// outputs, two AVX-512 vectors, left it waiting on the previous addition most of the time);
/// the narrow block takes the rest of a row in registers too (224 = 3 · 64 + 32).
#[inline(always)]
fn convolve<'a>(out: &mut [f32], kernel: &[f32], tap: impl Fn(usize) -> &'a [f32]) {
    let n = out.len();
    let mut x = 0;
    while x + WIDE <= n {
        convolve_block::<WIDE>(&mut out[x..x + WIDE], x, kernel, &tap);
        x += WIDE;
    }
    while x + NARROW <= n {
        convolve_block::<NARROW>(&mut out[x..x + NARROW], x, kernel, &tap);
        x += NARROW;
    }
    let rest = &mut out[x..];
    if rest.is_empty() {
        return;
    }
    rest.fill(0.0);
    for (t, &kv) in kernel.iter().enumerate() {
        for (a, &v) in rest.iter_mut().zip(&tap(t)[x..n]) {
            *a += kv * v;
        }
    }
}

/// Outputs a block of [`convolve`] computes in registers at a time (four AVX-512 vectors).
const WIDE: usize = 64;
/// The smaller block for what is left of a row after the wide ones.
const NARROW: usize = 32;

/// `out[i] = Σ_t k[t]·tap(t)[x + i]` for the `L` outputs of `out`, summed in kernel order.
#[inline(always)]
fn convolve_block<'a, const L: usize>(
    out: &mut [f32],
    x: usize,
    kernel: &[f32],
    tap: &impl Fn(usize) -> &'a [f32],
) {
    let mut acc = [0f32; L];
    for (t, &kv) in kernel.iter().enumerate() {
        let src = &tap(t)[x..x + L];
        for (a, &v) in acc.iter_mut().zip(src) {
            *a += kv * v;
        }
    }
    out.copy_from_slice(&acc);
}

#[cfg(test)]
mod tests {
    use super::super::jitter::{hsv_to_rgb, rgb_to_hsv};
    use super::*;

    /// The reference's hue shift of one pixel.
    fn hue_reference(r: f32, g: f32, b: f32, shift: f32) -> (f32, f32, f32) {
        let (h, s, v) = rgb_to_hsv(r, g, b);
        let h = h + shift;
        hsv_to_rgb(h - h.floor(), s, v)
    }

    /// The portable, AVX2 and AVX-512 copies of the pipeline give the same bits (the test
    /// through the whole augmenter, `augment::tests`, reaches only the copy this CPU picks).
    #[test]
    fn every_compiled_copy_gives_the_same_bits() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x0063_6f70);
        let kernel = super::super::blur::trimmed_gaussian_kernel(23, 1.7);
        let normalize = Normalize::imagenet();
        for (w, h, c) in [(224, 224, 3), (37, 19, 3), (33, 7, 1), (1, 1, 3)] {
            let pixels: Vec<u8> = (0..w * h * c).map(|_| rng.random()).collect();
            for case in 0..4 {
                let jitter = JitterParams {
                    order: [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]][case],
                    brightness: rng.random_range(0.6..1.4),
                    contrast: rng.random_range(0.6..1.4),
                    saturation: rng.random_range(0.6..1.4),
                    hue: rng.random_range(-0.1..0.1),
                };
                let ops = Photometric {
                    flip: case % 2 == 0,
                    jitter: Some(&jitter),
                    grayscale: case == 1,
                    blur: (case != 3).then_some(&kernel[..]),
                    solarize: (case >= 2).then_some(0.5),
                    normalize: &normalize,
                };
                let run = |copy: usize| {
                    let mut buf = vec![0f32; pixels.len()];
                    let out = super::super::as_uninit(&mut buf);
                    let mut scratch = vec![0f32; w * h + w + kernel.len()];
                    match copy {
                        0 => apply_body(&pixels, w, h, c, &ops, out, &mut scratch),
                        #[cfg(target_arch = "x86_64")]
                        // SAFETY: called only when the CPU has AVX2 (below).
                        1 => unsafe { apply_avx2(&pixels, w, h, c, &ops, out, &mut scratch) },
                        #[cfg(target_arch = "x86_64")]
                        // SAFETY: called only when the CPU has AVX-512F and BW (below).
                        _ => unsafe { apply_avx512(&pixels, w, h, c, &ops, out, &mut scratch) },
                        #[cfg(not(target_arch = "x86_64"))]
                        _ => unreachable!(),
                    }
                    buf.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
                };
                let want = run(0);
                #[cfg(target_arch = "x86_64")]
                {
                    if std::is_x86_feature_detected!("avx2") {
                        assert!(run(1) == want, "AVX2, {w}x{h}x{c}, case {case}");
                    }
                    if std::is_x86_feature_detected!("avx512f")
                        && std::is_x86_feature_detected!("avx512bw")
                    {
                        assert!(run(2) == want, "AVX-512, {w}x{h}x{c}, case {case}");
                    }
                }
            }
        }
    }

    #[test]
    fn reflect_once_is_reflect() {
        for n in 1..12isize {
            for i in -40..40isize {
                assert_eq!(reflect_once(i, n), reflect(i, n), "{i} in {n}");
            }
        }
    }

    #[test]
    fn hue_select_chain_is_the_reference_bit_for_bit() {
        // Every u8 level on a coarse RGB grid, grey pixels, black, white, ties between
        // channels, and shifts across the range (both signs, zero, ±0.5).
        let levels: Vec<f32> = (0..=255).step_by(15).map(|v| v as f32 / 255.0).collect();
        for shift in [-0.5, -0.1, -0.013, 0.0, 0.02, 0.1, 0.333, 0.5] {
            for &r in &levels {
                for &g in &levels {
                    for &b in &levels {
                        let want = hue_reference(r, g, b, shift);
                        let got = hue_pixel(r, g, b, shift);
                        assert_eq!(
                            (got.0.to_bits(), got.1.to_bits(), got.2.to_bits()),
                            (want.0.to_bits(), want.1.to_bits(), want.2.to_bits()),
                            "rgb ({r}, {g}, {b}) shift {shift}: {got:?} vs {want:?}"
                        );
                    }
                }
            }
        }
    }
}
