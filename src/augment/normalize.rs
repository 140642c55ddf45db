//! Conversion to normalised f32 `C×H×W`.

use super::recipe::Normalize;

/// Writes `(v / 255 - mean) / std` of the u8 `H×W×C` image into `out` (`C×H×W`), through a
/// 256-entry table per channel.
pub fn normalize_u8(src: &[u8], channels: usize, norm: &Normalize, out: &mut [f32]) {
    let n = src.len() / channels;
    for c in 0..channels {
        let (m, s) = norm.channel(c, channels);
        let mut lut = [0f32; 256];
        for (i, v) in lut.iter_mut().enumerate() {
            *v = (i as f32 / 255.0 - m) / s;
        }
        let plane = &mut out[c * n..(c + 1) * n];
        if channels == 1 {
            for (o, &v) in plane.iter_mut().zip(src) {
                *o = lut[v as usize];
            }
        } else {
            for (o, px) in plane.iter_mut().zip(src.chunks_exact(channels)) {
                *o = lut[px[c] as usize];
            }
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
        normalize_u8(&src, 3, &norm, &mut a);
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
}
