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

/// Resizes an interleaved `h × w × c` u8 image to `out_h × out_w × c` exactly as Pillow's
/// `BILINEAR` does.
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
