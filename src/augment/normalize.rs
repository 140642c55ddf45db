//! Conversion to normalised f32 `C×H×W`.
//!
//! The writers take their output as `&mut [MaybeUninit<f32>]` and write every value of it
//! (shapes are checked first): the loader hands them a batch's spare capacity, so a view's
//! memory is written once instead of zero-filled and then written.
//!
//! Rule for every writer here and in `planar.rs`: store only with `MaybeUninit::write` (an
//! initialised `f32`), never assign a `MaybeUninit` value or copy from a `MaybeUninit` buffer.
//! `augment::as_uninit` hands these writers an initialised `&mut [f32]` viewed as
//! `MaybeUninit`, and is sound only because of this rule.

use super::recipe::Normalize;
use std::mem::MaybeUninit;

/// Writes `(v / 255 - mean) / std` of the u8 `H×W×C` image `src` (`width` pixels a row) into
/// `out` (`C×H×W`), mirrored left-right when `flip`: [`Normalizer::apply`] with a normaliser
/// made for this call (tests; the augmenter keeps its normaliser).
#[cfg(test)]
pub fn normalize_u8(
    src: &[u8],
    width: usize,
    channels: usize,
    norm: &Normalize,
    flip: bool,
    out: &mut [f32],
) {
    Normalizer::new(norm, channels).apply(src, width, flip, super::as_uninit(out));
}

/// ToTensor then Normalize of u8 levels into planar f32 for one channel count, with its loop
/// chosen once (an [`super::Augmenter`] holds one).
///
/// Every value is [`reference`]'s, bit for bit. Where the CPU has FMA (x86-64 with AVX2 and
/// FMA, in copies of the loop compiled for AVX2 and for AVX-512; aarch64) the two divisions
/// are multiplications by reciprocals, each corrected by fused multiply-adds ([`fused`]); that
/// loop is chosen only when it gives the reference's bits for all 256 levels of every channel,
/// checked when the normaliser is made, through the loop itself, which it does for every
/// normalisation tried
/// (`fused_path_is_exact_for_common_normalisations`). Otherwise a 256-entry table of reference
/// values per channel. Measured: the table's scalar loop was 9 % of an RHFlip pair's time
/// from JPEG at 224 px; the fused loop, vectorised, made the pair 3 % faster.
#[derive(Debug, Clone)]
pub struct Normalizer {
    k: Vec<Fused>,
    /// Tables of reference values when the fused loop is not taken.
    luts: Option<Vec<[f32; 256]>>,
}

impl Normalizer {
    /// The normaliser of `channels`-channel images (`norm.channel(c, channels)` for each `c`).
    pub fn new(norm: &Normalize, channels: usize) -> Self {
        let k: Vec<Fused> = (0..channels)
            .map(|c| Fused::new(norm.channel(c, channels)))
            .collect();
        let fused = Normalizer {
            k: k.clone(),
            luts: None,
        };
        let luts = (!(has_fma() && fused.exact_here())).then(|| tables(&k));
        Normalizer { k, luts }
    }

    /// Whether the fused loop this CPU runs gives [`reference`]'s bits for every level of every
    /// channel: checked through that loop itself, on a one-row image of the 256 levels. Only
    /// where [`has_fma`] holds.
    fn exact_here(&self) -> bool {
        let c = self.k.len();
        let src: Vec<u8> = (0..=255u8)
            .flat_map(|v| std::iter::repeat_n(v, c))
            .collect();
        let mut out = vec![f32::NAN; src.len()];
        self.apply_fused(&src, 256, false, super::as_uninit(&mut out))
            && self.k.iter().enumerate().all(|(ch, k)| {
                (0..=255u8).all(|v| {
                    out[ch * 256 + v as usize].to_bits() == reference(v, k.mean, k.std).to_bits()
                })
            })
    }

    /// Writes the normalised values of the u8 `H×W×C` image `src` (`width` pixels a row, `C`
    /// the normaliser's channels) into `out` (`C×H×W`), mirrored left-right when `flip`: one
    /// pass over the pixels, the same values as flipping `src` first
    /// ([`super::flip::hflip_u8`]) and normalising it unflipped. Every value of `out` is
    /// written; panics unless `out` has `src`'s length and `src` whole rows of `width` pixels.
    pub fn apply(&self, src: &[u8], width: usize, flip: bool, out: &mut [MaybeUninit<f32>]) {
        let channels = self.k.len();
        if let Some(luts) = &self.luts {
            to_planes(src, width, channels, flip, out, |c, v| luts[c][v as usize]);
            return;
        }
        if !self.apply_fused(src, width, flip, out) {
            // A shape the fused loop does not take: the table, made now.
            let luts = tables(&self.k);
            to_planes(src, width, channels, flip, out, |c, v| luts[c][v as usize]);
        }
    }

    /// The fused loop in the copy this CPU takes; `false` when it did not run.
    fn apply_fused(
        &self,
        src: &[u8],
        width: usize,
        flip: bool,
        out: &mut [MaybeUninit<f32>],
    ) -> bool {
        let k = &self.k[..];
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw")
            {
                // SAFETY: AVX-512F and BW are there (just checked), AVX2 and FMA too: this runs
                // only where `has_fma()` held (`new` checks it before `exact_here`, and keeps
                // no tables, which sends `apply` here, only then).
                return unsafe { fused_avx512(k, src, width, flip, out) };
            }
            // SAFETY: AVX2 and FMA are there (as above: only where `has_fma()` held).
            unsafe { fused_avx2(k, src, width, flip, out) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        fused_body(k, src, width, flip, out)
    }
}

/// Whether the CPU computes `mul_add` in one instruction: AVX2 and FMA on x86-64, always on
/// aarch64; elsewhere `mul_add` may be a call into a software FMA for every value.
fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("fma") && std::is_x86_feature_detected!("avx2");
    #[cfg(target_arch = "aarch64")]
    return true;
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    return false;
}

/// The [`reference`] value of every level, a table per channel of `k`.
fn tables(k: &[Fused]) -> Vec<[f32; 256]> {
    k.iter()
        .map(|k| std::array::from_fn(|v| reference(v as u8, k.mean, k.std)))
        .collect()
}

/// ToTensor then Normalize of one level, as torchvision computes them: `(v / 255 − mean) / std`.
#[inline(always)]
fn reference(v: u8, mean: f32, std: f32) -> f32 {
    (v as f32 / 255.0 - mean) / std
}

/// One channel's normalisation for [`fused`].
#[derive(Debug, Clone, Copy)]
struct Fused {
    mean: f32,
    std: f32,
    inv_std: f32,
}

impl Fused {
    fn new((mean, std): (f32, f32)) -> Self {
        Fused {
            mean,
            std,
            inv_std: 1.0 / std,
        }
    }
}

/// [`reference`] without divisions: `a / b` as `q = a · (1/b)` plus the correction
/// `(a − q·b) · (1/b)`, both steps fused multiply-adds (the residual `a − q·b` is exact in one
/// FMA, and the corrected quotient is the correctly rounded one for all but rare inputs, which
/// the caller rules out by checking every level).
#[inline(always)]
fn fused(v: u8, k: &Fused) -> f32 {
    const INV_255: f32 = 1.0 / 255.0;
    let x = quotient(v as f32, 255.0, INV_255);
    quotient(x - k.mean, k.std, k.inv_std)
}

#[inline(always)]
fn quotient(a: f32, b: f32, inv_b: f32) -> f32 {
    let q = a * inv_b;
    (-q).mul_add(b, a).mul_add(inv_b, q)
}

/// Whether [`fused`] gives [`reference`]'s bits for all 256 levels of each of `k`, computed
/// portably (`mul_add` as the platform's FMA): the arithmetic alone, for the tests.
#[cfg(test)]
fn fused_is_exact(k: &[Fused]) -> bool {
    k.iter().all(|k| {
        (0..=255u8).all(|v| fused(v, k).to_bits() == reference(v, k.mean, k.std).to_bits())
    })
}

/// The fused loop (`true`, every value of `out` written), or nothing for a shape it does not
/// take (`false`); exact only where [`fused_is_exact`] holds.
#[inline(always)]
fn fused_body(
    k: &[Fused],
    src: &[u8],
    width: usize,
    flip: bool,
    out: &mut [MaybeUninit<f32>],
) -> bool {
    if out.len() != src.len() || width == 0 || !src.len().is_multiple_of(width * k.len().max(1)) {
        return false;
    }
    match k {
        [k] => fused_planes::<1>(src, width, [*k], flip, out),
        [k0, k1, k2] => fused_planes::<3>(src, width, [*k0, *k1, *k2], flip, out),
        _ => return false,
    }
    true
}

/// The fused values of `C`-channel `src` into `C` planes of `out`, one plane's row at a time
/// (zipped iterators, so that the loops vectorise without bounds checks); `out` has `src`'s
/// length and `src` whole rows (checked by [`fused_body`]), so every value is written.
#[inline(always)]
fn fused_planes<const C: usize>(
    src: &[u8],
    width: usize,
    k: [Fused; C],
    flip: bool,
    out: &mut [MaybeUninit<f32>],
) {
    let n = src.len() / C;
    // A flipped row is computed forward here and stored mirrored (see [`write_reversed`]).
    let mut line = vec![0f32; if flip { width } else { 0 }];
    for (y, row) in src.chunks_exact(width * C).enumerate() {
        for (ch, k) in k.iter().enumerate() {
            let o = &mut out[ch * n + y * width..ch * n + (y + 1) * width];
            let px = row.chunks_exact(C);
            if flip {
                for (v, px) in line.iter_mut().zip(px) {
                    *v = fused(px[ch], k);
                }
                write_reversed(o, &line);
            } else {
                for (o, px) in o.iter_mut().zip(px) {
                    o.write(fused(px[ch], k));
                }
            }
        }
    }
}

// Copies with FMA, so that `mul_add` is one instruction.
target_copies!(
    fused_body(
        k: &[Fused],
        src: &[u8],
        width: usize,
        flip: bool,
        out: &mut [MaybeUninit<f32>],
    ) -> bool;
    /// [`fused_body`] for AVX-512 (16 floats a vector).
    fused_avx512 = "avx512f,avx512bw,avx2,fma";
    /// [`fused_body`] for AVX2 and FMA (8 floats a vector).
    fused_avx2 = "avx2,fma";
);

/// `out[i] = row[len − 1 − i]`: a row computed in forward order, stored mirrored, which is how
/// flipped views are written. Measured at 224 px: reading the pixels backwards cost the fused
/// normaliser 55 against 32 µs a view (the deinterleave runs backwards through shuffles), and
/// storing backwards into the batch cost the photometric conversion 72 against 44 µs; computed
/// forward, then copied mirrored from L1 a row at a time, they take 46 and 55 µs.
#[inline(always)]
fn write_reversed(out: &mut [MaybeUninit<f32>], row: &[f32]) {
    for (o, &v) in out.iter_mut().zip(row.iter().rev()) {
        o.write(v);
    }
}

/// `out[c·n + y·W + x'] = value(c, src[(y·W + x)·C + c])` for the u8 `H×W×C` image `src` (`C` ∈
/// {1, 3}, `width` pixels a row): planar `C×H×W`, with `x' = W − 1 − x` when `flip` (the flip
/// done while reading) and `x' = x` otherwise. Every value of `out` is written, and `out` is
/// returned initialised; panics unless `out` has `src`'s length and `src` whole rows.
#[inline(always)]
pub(super) fn to_planes<'a>(
    src: &[u8],
    width: usize,
    channels: usize,
    flip: bool,
    out: &'a mut [MaybeUninit<f32>],
    value: impl Fn(usize, u8) -> f32,
) -> &'a mut [f32] {
    assert!(
        (channels == 1 || channels == 3)
            && out.len() == src.len()
            && (src.is_empty() || (width > 0 && src.len().is_multiple_of(width * channels))),
        "to_planes: {} values of {channels}-channel rows of {width} pixels into {}",
        src.len(),
        out.len()
    );
    let n = src.len() / channels;
    // Flipped rows are computed forward here, a line per channel, and stored mirrored.
    let mut lines = vec![0f32; if flip { width * channels } else { 0 }];
    if channels == 1 {
        for (s, o) in src
            .chunks_exact(width.max(1))
            .zip(out.chunks_exact_mut(width.max(1)))
        {
            if flip {
                for (v, &p) in lines.iter_mut().zip(s) {
                    *v = value(0, p);
                }
                write_reversed(o, &lines);
            } else {
                for (o, &v) in o.iter_mut().zip(s) {
                    o.write(value(0, v));
                }
            }
        }
        // SAFETY: the rows above cover `out` (checked by the assertion) and wrote every value.
        return unsafe { super::assume_init(out) };
    }
    let (p0, rest) = out.split_at_mut(n);
    let (p1, p2) = rest.split_at_mut(n);
    let rows = src
        .chunks_exact(width.max(1) * 3)
        .zip(p0.chunks_exact_mut(width))
        .zip(p1.chunks_exact_mut(width).zip(p2.chunks_exact_mut(width)));
    for ((s, o0), (o1, o2)) in rows {
        let px = s.chunks_exact(3);
        if flip {
            let (l0, rest) = lines.split_at_mut(width);
            let (l1, l2) = rest.split_at_mut(width);
            for (px, (a, (b, c))) in px.zip(l0.iter_mut().zip(l1.iter_mut().zip(l2.iter_mut()))) {
                (*a, *b, *c) = (value(0, px[0]), value(1, px[1]), value(2, px[2]));
            }
            write_reversed(o0, l0);
            write_reversed(o1, l1);
            write_reversed(o2, l2);
        } else {
            for (px, (a, (b, c))) in px.zip(o0.iter_mut().zip(o1.iter_mut().zip(o2.iter_mut()))) {
                a.write(value(0, px[0]));
                b.write(value(1, px[1]));
                c.write(value(2, px[2]));
            }
        }
    }
    // SAFETY: the three planes' rows cover `out` (checked by the assertion: `out` is `3n`
    // values, `src` `n / width` rows of `width` pixels) and every value was written.
    unsafe { super::assume_init(out) }
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
    use super::super::as_uninit as uninit;
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

    /// The normalisations a user is likely to give (ImageNet's, 0.5/0.5, CIFAR's, none) and a
    /// hundred random ones: the fused path gives the reference's bits on every level, so the
    /// fast loop is the one taken (on CPUs that have it).
    #[test]
    fn fused_path_is_exact_for_common_normalisations() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x6e6f_726d);
        let mut cases: Vec<(f32, f32)> = vec![
            (0.485, 0.229),
            (0.456, 0.224),
            (0.406, 0.225),
            (0.5, 0.5),
            (0.4914, 0.2470),
            (0.4822, 0.2435),
            (0.4465, 0.2616),
            (0.0, 1.0),
        ];
        cases.extend((0..100).map(|_| (rng.random_range(0.0..1.0), rng.random_range(0.05..1.0))));
        for (m, s) in cases {
            assert!(fused_is_exact(&[Fused::new((m, s))]), "mean {m}, std {s}");
            // And this CPU's loop (where it has FMA) is exact too, so it is the one taken.
            let norm = Normalize {
                mean: vec![m],
                std: vec![s],
            };
            for channels in [1, 3] {
                let taken = Normalizer::new(&norm, channels).luts.is_none();
                assert_eq!(taken, has_fma(), "mean {m}, std {s}, {channels} channels");
            }
        }
    }

    /// `normalize_u8` (whichever path this CPU takes), the table, the portable fused loop and
    /// its AVX2 copy (the AVX-512 one is what `normalize_u8` takes on CPUs that have it) give
    /// [`reference`]'s bits for every level, in every channel, flipped or not, for random
    /// normalisations.
    #[test]
    fn every_level_is_the_reference() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x6c76_6c73);
        // 256 levels per channel, laid out as a 16-pixel-wide image, in every channel.
        let src: Vec<u8> = (0..=255u8).flat_map(|v| [v, 255 - v, v ^ 0x5a]).collect();
        for _ in 0..20 {
            let norm = Normalize {
                mean: (0..3).map(|_| rng.random_range(0.0..1.0)).collect(),
                std: (0..3).map(|_| rng.random_range(0.05..1.0)).collect(),
            };
            let k: Vec<Fused> = (0..3).map(|c| Fused::new(norm.channel(c, 3))).collect();
            for (path, flip) in (0..4).flat_map(|p| [(p, false), (p, true)]) {
                let mut got = vec![f32::NAN; src.len()];
                match path {
                    0 => normalize_u8(&src, 16, 3, &norm, flip, &mut got),
                    1 => {
                        let table = Normalizer {
                            k: k.clone(),
                            luts: Some(tables(&k)),
                        };
                        table.apply(&src, 16, flip, uninit(&mut got))
                    }
                    2 => assert!(fused_body(&k, &src, 16, flip, uninit(&mut got))),
                    _ => {
                        #[cfg(target_arch = "x86_64")]
                        if std::is_x86_feature_detected!("fma")
                            && std::is_x86_feature_detected!("avx2")
                        {
                            // SAFETY: the CPU has AVX2 and FMA (checked just above).
                            let out = uninit(&mut got);
                            assert!(unsafe { fused_avx2(&k, &src, 16, flip, out) });
                        } else {
                            continue;
                        }
                        #[cfg(not(target_arch = "x86_64"))]
                        continue;
                    }
                }
                for (i, px) in src.chunks_exact(3).enumerate() {
                    // Pixel i lands at column 15 - (i % 16) of its row when flipped.
                    let at = if flip { i / 16 * 16 + 15 - i % 16 } else { i };
                    for c in 0..3 {
                        let (m, s) = norm.channel(c, 3);
                        let want = reference(px[c], m, s).to_bits();
                        let got = got[c * 256 + at].to_bits();
                        assert_eq!(got, want, "{norm:?} path {path} flip {flip} {i} {c}");
                    }
                }
            }
        }
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
