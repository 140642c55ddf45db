//! Pillow-exact bilinear resize of u8 images.
//!
//! The prior contract (models/README.md, `reference_embeddings.py`) is Pillow's
//! `Image.resize((s, s), Image.BILINEAR)`. `fast_image_resize`'s bilinear convolution is the same
//! algorithm but rounds its fixed-point weights differently: on the Fashion-MNIST test images
//! about 1 pixel in 50 differed by ±1, which moved Lite0 embeddings by up to 5e-3. This is a
//! direct port of Pillow's `Resample.c` (triangle filter, support scaled by the shrink factor,
//! weights normalised in f64 then rounded to 22-bit fixed point, horizontal pass then vertical
//! pass with an 8-bit intermediate), so both sides produce identical pixels.

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Per-output-pixel source window and fixed-point weights for one axis.
struct Coeffs {
    /// `(first source index, number of taps)` per output index.
    bounds: Vec<(usize, usize)>,
    /// `ksize` weights per output index.
    weights: Vec<i32>,
    ksize: usize,
}

fn coeffs(in_size: usize, out_size: usize) -> Coeffs {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale; // bilinear support 1.0
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let taps = xmax.saturating_sub(xmin).min(ksize);
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(taps) {
            let t = ((x + xmin) as f64 - center + 0.5) * ss;
            let w = (1.0 - t.abs()).max(0.0);
            *kx = w;
            ww += w;
        }
        for (x, kx) in k.iter().enumerate().take(taps) {
            let w = if ww != 0.0 { kx / ww } else { *kx };
            let fixed = w * (1u32 << PRECISION_BITS) as f64;
            weights[xx * ksize + x] = if w < 0.0 {
                (fixed - 0.5) as i32
            } else {
                (fixed + 0.5) as i32
            };
        }
        bounds.push((xmin, taps));
    }
    Coeffs {
        bounds,
        weights,
        ksize,
    }
}

#[cfg(test)]
#[inline]
fn clip8(v: i64) -> u8 {
    if v >= (1i64 << PRECISION_BITS << 8) {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

/// Values one pass computes together: the accumulators of a chunk stay in vector registers
/// while its taps are added.
const LANES: usize = 32;

/// Rows the horizontal pass transposes at a time (a strip of `STRIP · c` bytes per column).
const STRIP: usize = 32;

/// Pillow's rounding offset, the fixed-point ½.
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// Resizes an interleaved `h × w × c` u8 image to `out_h × out_w × c` exactly as Pillow's
/// `BILINEAR` does.
///
/// Both passes run as one kind of loop, a weighted sum of whole rows: the vertical pass sums
/// rows of the image, and the horizontal pass sums the rows of a transposed strip of `STRIP`
/// image rows (one row per source column), so every multiply-add is a lane of a vector.
/// Accumulation is in i32, as in Pillow's `ImagingResample*_8bpc`: the bilinear weights are
/// non-negative and sum to about 2²², so a sum stays below 255 · 2²² + 2²¹ < 2³¹. The values
/// are those of the straightforward port (`tests::fast_passes_equal_the_reference`).
///
/// # Panics
/// When `src.len() != w * h * c` or a size is zero (callers check).
pub(crate) fn resize_bilinear(
    src: &[u8],
    w: usize,
    h: usize,
    c: usize,
    out_w: usize,
    out_h: usize,
) -> Vec<u8> {
    assert_eq!(src.len(), w * h * c);
    assert!(w > 0 && h > 0 && out_w > 0 && out_h > 0 && c > 0);
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { resize_avx2(src, w, h, c, out_w, out_h) };
    }
    resize_body(src, w, h, c, out_w, out_h)
}

/// [`resize_body`] compiled for AVX2 (8 × i32 multiply-adds a lane group).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn resize_avx2(
    src: &[u8],
    w: usize,
    h: usize,
    c: usize,
    out_w: usize,
    out_h: usize,
) -> Vec<u8> {
    resize_body(src, w, h, c, out_w, out_h)
}

#[inline(always)]
fn resize_body(src: &[u8], w: usize, h: usize, c: usize, out_w: usize, out_h: usize) -> Vec<u8> {
    // An `if`, not `bool::then`: a closure would not inherit the caller's target features.
    let horizontal = if out_w != w {
        Some(horizontal_pass(src, w, h, c, out_w))
    } else {
        None
    };
    if out_h == h {
        return horizontal.unwrap_or_else(|| src.to_vec());
    }
    let stride = out_w * c;
    let mut out = vec![0u8; out_h * stride];
    let src = horizontal.as_deref().unwrap_or(src);
    weighted_rows(src, stride, &coeffs(h, out_h), &mut out);
    out
}

/// Pillow's horizontal pass, `h × w × c` → `h × out_w × c`, over transposed strips of rows.
#[inline(always)]
fn horizontal_pass(src: &[u8], w: usize, h: usize, c: usize, out_w: usize) -> Vec<u8> {
    match c {
        1 => horizontal_strips::<1>(src, w, h, out_w),
        3 => horizontal_strips::<3>(src, w, h, out_w),
        _ => horizontal_strips_dyn(src, w, h, c, out_w),
    }
}

/// [`horizontal_pass`] for `C` channels known at compile time, so that the transposes move
/// whole pixels instead of calling `memmove` for a few bytes.
#[inline(always)]
fn horizontal_strips<const C: usize>(src: &[u8], w: usize, h: usize, out_w: usize) -> Vec<u8> {
    let cx = coeffs(w, out_w);
    let mut out = vec![0u8; h * out_w * C];
    let mut strip = vec![[0u8; C]; w * STRIP];
    let mut strip_out = vec![[0u8; C]; out_w * STRIP];
    let (src_px, _) = src.as_chunks::<C>();
    for y0 in (0..h).step_by(STRIP) {
        let rows = STRIP.min(h - y0);
        // strip[x][r] = src[y0 + r][x]
        for r in 0..rows {
            let row = &src_px[(y0 + r) * w..(y0 + r + 1) * w];
            for (x, px) in row.iter().enumerate() {
                strip[x * rows + r] = *px;
            }
        }
        weighted_rows(
            strip[..w * rows].as_flattened(),
            rows * C,
            &cx,
            strip_out[..out_w * rows].as_flattened_mut(),
        );
        // out[y0 + r][xx] = strip_out[xx][r]
        let (out_px, _) = out.as_chunks_mut::<C>();
        for r in 0..rows {
            let row = &mut out_px[(y0 + r) * out_w..(y0 + r + 1) * out_w];
            for (xx, px) in row.iter_mut().enumerate() {
                *px = strip_out[xx * rows + r];
            }
        }
    }
    out
}

/// [`horizontal_strips`] for any channel count.
fn horizontal_strips_dyn(src: &[u8], w: usize, h: usize, c: usize, out_w: usize) -> Vec<u8> {
    let cx = coeffs(w, out_w);
    let mut out = vec![0u8; h * out_w * c];
    let mut strip = vec![0u8; w * STRIP * c];
    let mut strip_out = vec![0u8; out_w * STRIP * c];
    for y0 in (0..h).step_by(STRIP) {
        let rows = STRIP.min(h - y0);
        let len = rows * c;
        for r in 0..rows {
            let row = &src[(y0 + r) * w * c..(y0 + r + 1) * w * c];
            for (x, px) in row.chunks_exact(c).enumerate() {
                strip[x * len + r * c..x * len + (r + 1) * c].copy_from_slice(px);
            }
        }
        weighted_rows(&strip[..w * len], len, &cx, &mut strip_out[..out_w * len]);
        for r in 0..rows {
            let row = &mut out[(y0 + r) * out_w * c..(y0 + r + 1) * out_w * c];
            for (xx, px) in row.chunks_exact_mut(c).enumerate() {
                px.copy_from_slice(&strip_out[xx * len + r * c..xx * len + (r + 1) * c]);
            }
        }
    }
    out
}

/// `out[j] = clip8(½ + Σ_t k[j][t] · src[first_j + t])` for every output row `j` of the
/// coefficients, where `src` and `out` hold rows of `len` bytes.
#[inline(always)]
fn weighted_rows(src: &[u8], len: usize, co: &Coeffs, out: &mut [u8]) {
    for (j, (&(first, taps), out_row)) in
        co.bounds.iter().zip(out.chunks_exact_mut(len)).enumerate()
    {
        let k = &co.weights[j * co.ksize..j * co.ksize + taps];
        let rows = &src[first * len..(first + taps) * len];
        let mut x = 0;
        while x + LANES <= len {
            let mut acc = [HALF; LANES];
            for (t, &kt) in k.iter().enumerate() {
                let row = &rows[t * len + x..t * len + x + LANES];
                for (a, &p) in acc.iter_mut().zip(row) {
                    *a += i32::from(p) * kt;
                }
            }
            for (o, &a) in out_row[x..x + LANES].iter_mut().zip(&acc) {
                *o = clip8_i32(a);
            }
            x += LANES;
        }
        for (i, o) in out_row.iter_mut().enumerate().skip(x) {
            let mut a = HALF;
            for (t, &kt) in k.iter().enumerate() {
                a += i32::from(rows[t * len + i]) * kt;
            }
            *o = clip8_i32(a);
        }
    }
}

/// [`clip8`] in i32, written as a clamp so that it vectorises.
#[inline]
fn clip8_i32(v: i32) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The straightforward port of Pillow's two passes, one output value at a time in i64: the
    /// reference [`resize_bilinear`] is tested against.
    ///
    /// # Panics
    /// When `src.len() != w * h * c` or a size is zero (callers check).
    fn resize_bilinear_reference(
        src: &[u8],
        w: usize,
        h: usize,
        c: usize,
        out_w: usize,
        out_h: usize,
    ) -> Vec<u8> {
        assert_eq!(src.len(), w * h * c);
        assert!(w > 0 && h > 0 && out_w > 0 && out_h > 0 && c > 0);
        let horizontal = if out_w != w {
            let cx = coeffs(w, out_w);
            let mut tmp = vec![0u8; h * out_w * c];
            for y in 0..h {
                let row = &src[y * w * c..(y + 1) * w * c];
                let out = &mut tmp[y * out_w * c..(y + 1) * out_w * c];
                for (xx, &(xmin, taps)) in cx.bounds.iter().enumerate() {
                    let k = &cx.weights[xx * cx.ksize..xx * cx.ksize + taps];
                    for ch in 0..c {
                        let mut ss: i64 = 1 << (PRECISION_BITS - 1);
                        for (x, &kx) in k.iter().enumerate() {
                            ss += row[(x + xmin) * c + ch] as i64 * kx as i64;
                        }
                        out[xx * c + ch] = clip8(ss);
                    }
                }
            }
            Some(tmp)
        } else {
            None
        };
        let src = horizontal.as_deref().unwrap_or(src);
        if out_h == h {
            return src.to_vec();
        }
        let cy = coeffs(h, out_h);
        let stride = out_w * c;
        let mut out = vec![0u8; out_h * stride];
        let mut acc = vec![0i64; stride];
        for (yy, &(ymin, taps)) in cy.bounds.iter().enumerate() {
            let k = &cy.weights[yy * cy.ksize..yy * cy.ksize + taps];
            acc.fill(1 << (PRECISION_BITS - 1));
            for (y, &ky) in k.iter().enumerate() {
                let row = &src[(y + ymin) * stride..(y + ymin + 1) * stride];
                for (a, &p) in acc.iter_mut().zip(row) {
                    *a += p as i64 * ky as i64;
                }
            }
            for (o, &a) in out[yy * stride..(yy + 1) * stride].iter_mut().zip(&acc) {
                *o = clip8(a);
            }
        }
        out
    }

    // Pillow: Image.fromarray(np.array([[0, 100], [200, 255]], np.uint8)).resize((4, 4), Image.BILINEAR)
    // -> [[0, 25, 75, 100], [50, 72, 117, 139], [150, 167, 200, 216], [200, 214, 241, 255]]
    #[test]
    fn two_by_two_upsampled_like_pillow() {
        let out = resize_bilinear(&[0, 100, 200, 255], 2, 2, 1, 4, 4);
        assert_eq!(
            out,
            vec![0, 25, 75, 100, 50, 72, 117, 139, 150, 167, 200, 216, 200, 214, 241, 255]
        );
    }

    #[test]
    fn constant_image_stays_constant_when_shrinking() {
        let out = resize_bilinear(&[77; 9 * 7 * 3], 9, 7, 3, 4, 3);
        assert!(out.iter().all(|&p| p == 77));
    }

    #[test]
    fn fast_passes_equal_the_reference() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let sizes = [1, 2, 3, 7, 28, 31, 32, 33, 64, 97, 112, 224, 300, 513];
        for case in 0..300 {
            let c = [1, 3, 4, 2][case % 4];
            let (w, h) = (
                sizes[rng.random_range(0..sizes.len())],
                sizes[rng.random_range(0..sizes.len())],
            );
            let (ow, oh) = (
                sizes[rng.random_range(0..sizes.len())],
                sizes[rng.random_range(0..sizes.len())],
            );
            let src: Vec<u8> = (0..w * h * c).map(|_| rng.random()).collect();
            assert_eq!(
                resize_bilinear(&src, w, h, c, ow, oh),
                resize_bilinear_reference(&src, w, h, c, ow, oh),
                "{w}x{h}x{c} -> {ow}x{oh}"
            );
        }
    }
}
