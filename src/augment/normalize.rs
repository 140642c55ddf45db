//! Conversion to normalised f32 `C×H×W`.

use super::recipe::Normalize;

/// Writes `(v / 255 - mean) / std` of the u8 `H×W×C` image `src` (`width` pixels a row) into
/// `out` (`C×H×W`), mirrored left-right when `flip`, through a 256-entry table per channel: one
/// pass over the pixels, the same values as flipping `src` first
/// ([`super::flip::hflip_u8`]) and normalising it unflipped.
pub fn normalize_u8(
    src: &[u8],
    width: usize,
    channels: usize,
    norm: &Normalize,
    flip: bool,
    out: &mut [f32],
) {
    let luts: Vec<[f32; 256]> = (0..channels)
        .map(|c| {
            let (m, s) = norm.channel(c, channels);
            let mut lut = [0f32; 256];
            for (i, v) in lut.iter_mut().enumerate() {
                *v = (i as f32 / 255.0 - m) / s;
            }
            lut
        })
        .collect();
    to_planes(src, width, channels, flip, out, |c, v| luts[c][v as usize]);
}

/// `out[c·n + y·W + x'] = value(c, src[(y·W + x)·C + c])` for the u8 `H×W×C` image `src` (`C` ∈
/// {1, 3}, `width` pixels a row): planar `C×H×W`, with `x' = W − 1 − x` when `flip` (the flip
/// done while reading) and `x' = x` otherwise.
#[inline(always)]
pub(super) fn to_planes(
    src: &[u8],
    width: usize,
    channels: usize,
    flip: bool,
    out: &mut [f32],
    value: impl Fn(usize, u8) -> f32,
) {
    let n = src.len() / channels.max(1);
    if n == 0 || width == 0 {
        return;
    }
    if channels == 1 {
        for (s, o) in src.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
            if flip {
                for (o, &v) in o.iter_mut().rev().zip(s) {
                    *o = value(0, v);
                }
            } else {
                for (o, &v) in o.iter_mut().zip(s) {
                    *o = value(0, v);
                }
            }
        }
        return;
    }
    let (p0, rest) = out.split_at_mut(n);
    let (p1, p2) = rest.split_at_mut(n);
    let rows = src
        .chunks_exact(width * 3)
        .zip(p0.chunks_exact_mut(width))
        .zip(p1.chunks_exact_mut(width).zip(p2.chunks_exact_mut(width)));
    for ((s, o0), (o1, o2)) in rows {
        let px = s.chunks_exact(3);
        let set = |px: &[u8], (a, (b, c)): (&mut f32, (&mut f32, &mut f32))| {
            (*a, *b, *c) = (value(0, px[0]), value(1, px[1]), value(2, px[2]));
        };
        if flip {
            let outs = o0
                .iter_mut()
                .rev()
                .zip(o1.iter_mut().rev().zip(o2.iter_mut().rev()));
            px.zip(outs).for_each(|(px, o)| set(px, o));
        } else {
            let outs = o0.iter_mut().zip(o1.iter_mut().zip(o2.iter_mut()));
            px.zip(outs).for_each(|(px, o)| set(px, o));
        }
    }
}

// The reference of `super::planar` (tests only).
#[cfg(test)]
/// Writes `(v - mean) / std` of the f32 `H×W×C` image (values in `[0, 1]`) into `out`
/// (`C×H×W`).
pub fn normalize_f32(src: &[f32], channels: usize, norm: &Normalize, out: &mut [f32]) {
    let n = src.len() / channels;
    for c in 0..channels {
        let (m, s) = norm.channel(c, channels);
        let inv = 1.0 / s;
        let plane = &mut out[c * n..(c + 1) * n];
        for (o, px) in plane.iter_mut().zip(src.chunks_exact(channels)) {
            *o = (px[c] - m) * inv;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u8_and_f32_paths_agree_and_are_chw() {
        let src: Vec<u8> = vec![0, 128, 255, 10, 20, 30];
        let norm = Normalize::imagenet();
        let mut a = vec![0f32; 6];
        normalize_u8(&src, 2, 3, &norm, false, &mut a);
        let f: Vec<f32> = src.iter().map(|&v| v as f32 / 255.0).collect();
        let mut b = vec![0f32; 6];
        normalize_f32(&f, 3, &norm, &mut b);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5);
        }
        // Channel-major: out[1] is pixel 1, channel 0 (value 10).
        assert!((a[1] - (10.0 / 255.0 - 0.485) / 0.229).abs() < 1e-5);
        assert!((a[2] - (128.0 / 255.0 - 0.456) / 0.224).abs() < 1e-5);
    }

    /// The one-pass, flip-folding path equals flipping with `hflip_u8` and then normalising
    /// channel by channel (the previous three-pass loop) bit for bit.
    #[test]
    fn one_pass_flipped_normalisation_is_flip_then_normalise() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for (w, h, c) in [(1, 1, 3), (7, 3, 3), (8, 5, 1), (224, 9, 3), (33, 2, 1)] {
            let src: Vec<u8> = (0..w * h * c).map(|_| rng.random()).collect();
            let norm = if c == 3 {
                Normalize::imagenet()
            } else {
                Normalize::half()
            };
            for flip in [false, true] {
                let mut flipped = src.clone();
                if flip {
                    super::super::flip::hflip_u8(&mut flipped, w, c);
                }
                let n = w * h;
                let mut want = vec![0f32; n * c];
                for ch in 0..c {
                    let (m, s) = norm.channel(ch, c);
                    for i in 0..n {
                        want[ch * n + i] = (flipped[i * c + ch] as f32 / 255.0 - m) / s;
                    }
                }
                let mut got = vec![0f32; n * c];
                normalize_u8(&src, w, c, &norm, flip, &mut got);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{w}x{h}x{c} flip {flip}");
            }
        }
    }
}
