//! Grayscale conversion with the ITU-R 601 luma weights, keeping the channel count.

/// Luma weights `(R, G, B)`.
pub const LUMA: [f32; 3] = [0.299, 0.587, 0.114];

/// Luma of one RGB pixel.
#[inline]
pub fn luma(r: f32, g: f32, b: f32) -> f32 {
    LUMA[0] * r + LUMA[1] * g + LUMA[2] * b
}

// The reference of `super::planar` (tests only).
#[cfg(test)]
/// Replaces every pixel of the `H×W×3` f32 buffer by its luma on all three channels.
/// A 1-channel buffer is left unchanged.
pub fn grayscale_f32(data: &mut [f32], channels: usize) {
    if channels != 3 {
        return;
    }
    for p in data.chunks_exact_mut(3) {
        let y = luma(p[0], p[1], p[2]);
        p[0] = y;
        p[1] = y;
        p[2] = y;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_601_weights() {
        let mut px = vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.2, 0.4, 0.6];
        grayscale_f32(&mut px, 3);
        let expect = [0.299, 0.587, 0.114, 0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6];
        for (p, e) in px.chunks_exact(3).zip(expect) {
            assert!(p.iter().all(|v| (v - e).abs() < 1e-6), "{p:?} vs {e}");
        }
    }
}
