//! Separable Gaussian blur with reflect padding (torchvision `gaussian_blur`).

/// Kernel size for an image side: `round(frac · side)` made odd, at least 3.
pub fn kernel_size(frac: f32, side: u32) -> usize {
    let k = (frac * side as f32).round() as usize;
    (k.max(3)) | 1
}

/// The normalised 1-D Gaussian kernel of odd size `k` and standard deviation `sigma` (pixels).
pub fn gaussian_kernel(k: usize, sigma: f32) -> Vec<f32> {
    let half = (k as f32 - 1.0) / 2.0;
    let mut w: Vec<f32> = (0..k)
        .map(|i| (-0.5 * ((i as f32 - half) / sigma).powi(2)).exp())
        .collect();
    let s: f32 = w.iter().sum();
    w.iter_mut().for_each(|v| *v /= s);
    w
}

/// Weight the tails of a kernel may drop in all (2^-24, half of f32's epsilon): on pixels in
/// `[0, 1]` the dropped taps move no blurred value by more than that.
pub const TAIL_WEIGHT: f32 = 1.0 / 16_777_216.0;

/// [`gaussian_kernel`]`(k, sigma)` without its negligible tails: the outermost pair of taps is
/// dropped while the weight dropped in all stays below [`TAIL_WEIGHT`] (the weights that remain
/// are not rescaled). The kernel a view is blurred with: at the SimCLR recipe's 224-px size
/// (`k` = 23), σ = 2 keeps all 23 taps, σ = 1.5 keeps 17, σ = 1 keeps 11 and σ = 0.1 keeps 1
/// (σ is drawn from `[0.1, 2]`: about half the taps on average), and the blurred pixels stay
/// within [`TAIL_WEIGHT`] of the full kernel's.
pub fn trimmed_gaussian_kernel(k: usize, sigma: f32) -> Vec<f32> {
    let w = gaussian_kernel(k, sigma);
    let (mut lo, mut hi) = (0, w.len());
    let mut dropped = 0.0f32;
    while hi - lo > 1 {
        let pair = w[lo] + w[hi - 1];
        if dropped + pair >= TAIL_WEIGHT {
            break;
        }
        dropped += pair;
        lo += 1;
        hi -= 1;
    }
    w[lo..hi].to_vec()
}

/// Reflect index `i` (may be negative or ≥ n) into `0..n` without repeating the edge.
#[inline]
pub(super) fn reflect(mut i: isize, n: isize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    i = i.rem_euclid(period);
    (if i >= n { period - i } else { i }) as usize
}

// The reference of `super::planar` (tests only).
#[cfg(test)]
/// Blurs an `H×W×C` f32 buffer in place with the separable `kernel`; `scratch` is resized as
/// needed.
pub fn blur_f32(
    data: &mut [f32],
    width: usize,
    height: usize,
    channels: usize,
    kernel: &[f32],
    scratch: &mut Vec<f32>,
) {
    let r = (kernel.len() / 2) as isize;
    scratch.resize(data.len(), 0.0);
    let (w, c) = (width as isize, channels);
    // Horizontal pass: data -> scratch. Interior pixels as one saxpy per tap over the row;
    // the `r` pixels at each end through reflected indices.
    let rr = r as usize;
    for y in 0..height {
        let row = &data[y * width * c..(y + 1) * width * c];
        let out = &mut scratch[y * width * c..(y + 1) * width * c];
        let border = |x: isize, out: &mut [f32]| {
            for ch in 0..c {
                let mut acc = 0.0;
                for (t, kv) in kernel.iter().enumerate() {
                    acc += kv * row[reflect(x + t as isize - r, w) * c + ch];
                }
                out[x as usize * c + ch] = acc;
            }
        };
        if width > 2 * rr {
            let inner = &mut out[rr * c..(width - rr) * c];
            inner.iter_mut().for_each(|v| *v = 0.0);
            let n = inner.len();
            for (t, kv) in kernel.iter().enumerate() {
                for (o, s) in inner.iter_mut().zip(&row[t * c..t * c + n]) {
                    *o += kv * s;
                }
            }
            for x in (0..r).chain(w - r..w) {
                border(x, out);
            }
        } else {
            for x in 0..w {
                border(x, out);
            }
        }
    }
    vertical_pass(data, width * c, height, kernel, scratch);
}

// The reference's vertical pass (tests only; `super::planar` has its own).
#[cfg(test)]
/// The vertical pass of the separable blur: `scratch` (rows of `rowlen` values, `height` of
/// them) blurred along the columns into `data`, whole rows at a time, taps in kernel order.
#[inline(always)]
pub(super) fn vertical_pass(
    data: &mut [f32],
    rowlen: usize,
    height: usize,
    kernel: &[f32],
    scratch: &[f32],
) {
    let (r, h) = ((kernel.len() / 2) as isize, height as isize);
    for y in 0..h {
        let out = &mut data[y as usize * rowlen..(y as usize + 1) * rowlen];
        out.iter_mut().for_each(|v| *v = 0.0);
        for (t, kv) in kernel.iter().enumerate() {
            let yi = reflect(y + t as isize - r, h);
            let src = &scratch[yi * rowlen..(yi + 1) * rowlen];
            for (o, s) in out.iter_mut().zip(src) {
                *o += kv * s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // NumPy reference (torchvision `_get_gaussian_kernel1d`):
    //   import numpy as np
    //   x = np.linspace(-2, 2, 5); k = np.exp(-0.5 * (x / 1.0) ** 2); k / k.sum()
    //   -> [0.05448868, 0.24420134, 0.40261995, 0.24420134, 0.05448868]
    #[test]
    fn kernel_matches_numpy_and_sums_to_one() {
        let k = gaussian_kernel(5, 1.0);
        let want = [
            0.054_488_68,
            0.244_201_34,
            0.402_619_95,
            0.244_201_34,
            0.054_488_68,
        ];
        for (a, b) in k.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        for (ks, s) in [(3, 0.1), (23, 2.0), (9, 0.7)] {
            let sum: f32 = gaussian_kernel(ks, s).iter().sum();
            assert!((sum - 1.0).abs() < 1e-5);
        }
        assert_eq!(kernel_size(0.1, 224), 23);
        assert_eq!(kernel_size(0.1, 28), 3);
    }

    // NumPy reference with reflect padding (as torch.nn.functional.pad(mode="reflect")):
    //   img = np.arange(12, dtype=np.float32).reshape(3, 4)
    //   k = [0.25, 0.5, 0.25]; p = np.pad(img, 1, mode="reflect")
    //   out = sum(k[i] * k[j] * p[i:i+3, j:j+4] for i in range(3) for j in range(3))
    //   -> [[2.5, 3., 4., 4.5], [4.5, 5., 6., 6.5], [6.5, 7., 8., 8.5]]
    #[test]
    fn blur_matches_numpy_reflect_reference() {
        let mut img: Vec<f32> = (0..12).map(|v| v as f32).collect();
        blur_f32(&mut img, 4, 3, 1, &[0.25, 0.5, 0.25], &mut Vec::new());
        let want = [2.5, 3., 4., 4.5, 4.5, 5., 6., 6.5, 6.5, 7., 8., 8.5];
        for (a, b) in img.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{img:?}");
        }
    }

    #[test]
    fn trimmed_kernel_drops_only_negligible_tails() {
        for (k, sigma, want) in [
            (23, 2.0, 23),
            (23, 1.5, 17),
            (23, 1.0, 11),
            (23, 0.1, 1),
            (3, 2.0, 3),
        ] {
            let full = gaussian_kernel(k, sigma);
            let t = trimmed_gaussian_kernel(k, sigma);
            assert_eq!(t.len(), want, "k {k} sigma {sigma}");
            let cut = (full.len() - t.len()) / 2;
            assert_eq!(t, full[cut..full.len() - cut]);
            let dropped: f32 = full[..cut].iter().chain(&full[full.len() - cut..]).sum();
            assert!(dropped < TAIL_WEIGHT, "{dropped}");
        }
        // Blurred with either kernel, pixels in [0, 1] stay within TAIL_WEIGHT (plus rounding).
        let img: Vec<f32> = (0..40 * 30)
            .map(|v| ((v * 37) % 101) as f32 / 100.0)
            .collect();
        for sigma in [0.1, 0.6, 1.3, 2.0] {
            let [a, b] = [
                gaussian_kernel(23, sigma),
                trimmed_gaussian_kernel(23, sigma),
            ]
            .map(|k| {
                let mut out = img.clone();
                blur_f32(&mut out, 40, 30, 1, &k, &mut Vec::new());
                out
            });
            let worst = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max);
            assert!(worst < 4e-7, "sigma {sigma}: {worst}");
        }
    }

    #[test]
    fn reflect_handles_kernels_wider_than_the_image() {
        assert_eq!(reflect(-1, 4), 1);
        assert_eq!(reflect(4, 4), 2);
        assert_eq!(reflect(-7, 3), 1);
        let mut img = vec![0.3f32; 2 * 2];
        blur_f32(&mut img, 2, 2, 1, &gaussian_kernel(7, 2.0), &mut Vec::new());
        assert!(img.iter().all(|v| (v - 0.3).abs() < 1e-6));
    }
}
