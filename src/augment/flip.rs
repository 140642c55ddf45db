//! Horizontal flip of an interleaved u8 image, in place.

/// Mirrors each row of the `H×W×C` buffer `data` (`width` pixels of `channels` bytes).
pub fn hflip_u8(data: &mut [u8], width: usize, channels: usize) {
    let row = width * channels;
    if row == 0 {
        return;
    }
    for r in data.chunks_exact_mut(row) {
        if channels == 1 {
            r.reverse();
        } else {
            let (mut i, mut j) = (0, width - 1);
            while i < j {
                for c in 0..channels {
                    r.swap(i * channels + c, j * channels + c);
                }
                i += 1;
                j -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flip_matches_index_reference() {
        let (w, h, c) = (5, 3, 3);
        let src: Vec<u8> = (0..w * h * c).map(|v| v as u8).collect();
        let mut got = src.clone();
        hflip_u8(&mut got, w, c);
        for y in 0..h {
            for x in 0..w {
                for k in 0..c {
                    assert_eq!(got[(y * w + x) * c + k], src[(y * w + (w - 1 - x)) * c + k]);
                }
            }
        }
        hflip_u8(&mut got, w, c);
        assert_eq!(got, src);
    }
}
