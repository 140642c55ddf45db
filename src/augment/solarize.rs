//! Solarisation: values at or above the threshold are inverted.

/// Threshold on the `[0, 1]` scale (128/255 in u8 terms is ≈ 0.502; BYOL uses 0.5).
pub const SOLARIZE_THRESHOLD: f32 = 0.5;

// The reference of `super::planar` (tests only).
#[cfg(test)]
/// `v ≥ threshold → 1 - v`, in place.
pub fn solarize_f32(data: &mut [f32], threshold: f32) {
    for v in data {
        if *v >= threshold {
            *v = 1.0 - *v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverts_only_at_or_above_threshold() {
        let mut v = vec![0.0, 0.49, 0.5, 0.75, 1.0];
        solarize_f32(&mut v, SOLARIZE_THRESHOLD);
        assert_eq!(v, vec![0.0, 0.49, 0.5, 0.25, 0.0]);
    }
}
