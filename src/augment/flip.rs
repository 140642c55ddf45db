//! Horizontal flip of an interleaved u8 image, in place: the tests' reference for the flip that
//! `normalize::Normalizer::apply` and `planar::apply` fold into their reads.

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
            // Swap pixel i with pixel width-1-i: the left half with the right half read
            // backwards (the middle pixel of an odd width stays).
            let half = width / 2;
            let (left, rest) = r.split_at_mut(half * channels);
            let right = &mut rest[(width - 2 * half) * channels..];
            for (a, b) in left
                .chunks_exact_mut(channels)
                .zip(right.rchunks_exact_mut(channels))
            {
                a.swap_with_slice(b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flip_matches_index_reference() {
        for (w, h, c) in [(5, 3, 3), (4, 2, 3), (1, 2, 3), (2, 1, 3), (6, 2, 1)] {
            let src: Vec<u8> = (0..w * h * c).map(|v| v as u8).collect();
            let mut got = src.clone();
            hflip_u8(&mut got, w, c);
            for y in 0..h {
                for x in 0..w {
                    for k in 0..c {
                        let want = src[(y * w + (w - 1 - x)) * c + k];
                        assert_eq!(got[(y * w + x) * c + k], want, "{w}x{h}x{c}");
                    }
                }
            }
            hflip_u8(&mut got, w, c);
            assert_eq!(got, src);
        }
    }
}
