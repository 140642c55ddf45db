//! Image → network input: resize to the prior's square resolution, grey → RGB, normalise, NCHW.

use super::resize::resize_bilinear;
use crate::{dataset::Image, embed::PriorManifest, Error, Result};

/// How one image becomes one `[3, size, size]` slice of the input tensor.
///
/// The image is resized (up or down) to `size × size` with a bilinear filter that reproduces
/// Pillow's `Image.resize(..., BILINEAR)` pixel for pixel (antialiased when shrinking; aspect
/// ratio is not kept, nothing is cropped). A grey image is resized on its one channel and then
/// repeated into R, G and B. Each u8 pixel `p` of channel `c` becomes
/// `(p * pixel_scale - mean[c]) / std[c]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocess {
    /// Output side length in pixels.
    pub size: u32,
    /// Multiplier applied to 0–255 pixels before mean/std.
    pub pixel_scale: f32,
    /// Per-channel mean (scaled units).
    pub mean: [f32; 3],
    /// Per-channel standard deviation (scaled units).
    pub std: [f32; 3],
}

impl Preprocess {
    /// The preprocessing of `prior` at resolution `size` (its `input_size` when `None`).
    pub fn from_manifest(prior: &PriorManifest, size: Option<u32>) -> Self {
        Preprocess {
            size: size.unwrap_or(prior.input_size),
            pixel_scale: prior.pixel_scale,
            mean: prior.mean,
            std: prior.std,
        }
    }

    /// Number of f32 values one image occupies: `3 * size * size`.
    pub fn sample_len(&self) -> usize {
        3 * self.size as usize * self.size as usize
    }

    /// A one-line description recorded in output metadata (`gps.prior.preprocess`).
    pub fn describe(&self) -> String {
        format!(
            "resize=pillow-bilinear(square,no-crop) size={} grey=repeat3 layout=NCHW channels=RGB \
             x=(p*{}-mean)/std mean={:?} std={:?}",
            self.size, self.pixel_scale, self.mean, self.std
        )
    }

    /// Resizes `image` to `size × size` (same channel count), or borrows it when it already is.
    ///
    /// `key` names the sample in errors.
    pub fn resize<'a>(&self, image: &'a Image, key: &str) -> Result<std::borrow::Cow<'a, [u8]>> {
        let (w, h, c) = (image.width, image.height, image.channels);
        if w == 0 || h == 0 {
            return Err(Error::Decode {
                key: key.to_string(),
                detail: "empty image".into(),
            });
        }
        if w == self.size && h == self.size {
            return Ok(std::borrow::Cow::Borrowed(&image.data));
        }
        if c != 1 && c != 3 {
            return Err(Error::Decode {
                key: key.to_string(),
                detail: format!("expected 1 or 3 channels, found {c}"),
            });
        }
        if image.data.len() != w as usize * h as usize * c as usize {
            return Err(Error::Decode {
                key: key.to_string(),
                detail: format!("{w}x{h}x{c} image with a {}-byte buffer", image.data.len()),
            });
        }
        let s = self.size as usize;
        let out = resize_bilinear(&image.data, w as usize, h as usize, c as usize, s, s);
        Ok(std::borrow::Cow::Owned(out))
    }

    /// Writes `image` as a normalised `[3, size, size]` planar slice into `out`
    /// (`out.len() == self.sample_len()`).
    ///
    /// # Errors
    /// [`Error::Decode`] naming `key` when the image has an unsupported channel count or a buffer
    /// that does not match its size.
    pub fn apply(&self, image: &Image, key: &str, out: &mut [f32]) -> Result<()> {
        let plane = self.size as usize * self.size as usize;
        if out.len() != 3 * plane {
            return Err(Error::invalid(
                "preprocess output",
                format!("buffer of {} values, expected {}", out.len(), 3 * plane),
            ));
        }
        if image.data.len()
            != image.width as usize * image.height as usize * image.channels as usize
        {
            return Err(Error::Decode {
                key: key.to_string(),
                detail: format!(
                    "{}x{}x{} image with a {}-byte buffer",
                    image.width,
                    image.height,
                    image.channels,
                    image.data.len()
                ),
            });
        }
        let pixels = self.resize(image, key)?;
        // Per-channel affine map: x = p * a[c] + b[c].
        let a: [f32; 3] = std::array::from_fn(|c| self.pixel_scale / self.std[c]);
        let b: [f32; 3] = std::array::from_fn(|c| -self.mean[c] / self.std[c]);
        let (r, rest) = out.split_at_mut(plane);
        let (g, bl) = rest.split_at_mut(plane);
        match image.channels {
            1 => {
                for (i, &p) in pixels.iter().enumerate() {
                    let p = p as f32;
                    r[i] = p * a[0] + b[0];
                    g[i] = p * a[1] + b[1];
                    bl[i] = p * a[2] + b[2];
                }
            }
            3 => {
                for (i, px) in pixels.chunks_exact(3).enumerate() {
                    r[i] = px[0] as f32 * a[0] + b[0];
                    g[i] = px[1] as f32 * a[1] + b[1];
                    bl[i] = px[2] as f32 * a[2] + b[2];
                }
            }
            other => {
                return Err(Error::Decode {
                    key: key.to_string(),
                    detail: format!("expected 1 or 3 channels, found {other}"),
                })
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pre(size: u32) -> Preprocess {
        Preprocess {
            size,
            pixel_scale: 1.0,
            mean: [127.0; 3],
            std: [128.0; 3],
        }
    }

    #[test]
    fn grey_is_repeated_into_three_normalised_planes() {
        let img = Image::new(2, 2, 1, vec![0, 127, 255, 63]);
        let mut out = vec![0.0; 12];
        pre(2).apply(&img, "k", &mut out).unwrap();
        let expect = [-127.0 / 128.0, 0.0, 1.0, -0.5];
        for c in 0..3 {
            assert_eq!(&out[c * 4..c * 4 + 4], &expect);
        }
    }

    #[test]
    fn rgb_is_written_planar() {
        let img = Image::new(1, 2, 3, vec![255, 127, 0, 127, 255, 127]);
        let mut out = [0.0; 6];
        pre(1)
            .apply(&Image::new(1, 1, 3, vec![255, 127, 0]), "k", &mut out[..3])
            .unwrap();
        assert_eq!(&out[..3], &[1.0, 0.0, -127.0 / 128.0]);
        // 1x2 needs a resize to 2x2: columns are repeated, rows interpolated.
        let mut out = vec![0.0; 12];
        pre(2).apply(&img, "k", &mut out).unwrap();
        assert!(out
            .iter()
            .all(|v| v.is_finite() && (-1.0..=1.0).contains(v)));
    }

    #[test]
    fn upscaling_a_constant_image_keeps_it_constant() {
        let img = Image::new(28, 28, 1, vec![200; 28 * 28]);
        let px = pre(112).resize(&img, "k").unwrap();
        assert_eq!(px.len(), 112 * 112);
        assert!(px.iter().all(|&p| p == 200));
    }

    #[test]
    fn corrupt_buffer_is_a_decode_error_naming_the_key() {
        let img = Image {
            width: 4,
            height: 4,
            channels: 3,
            data: vec![0; 5],
        };
        let mut out = vec![0.0; 3 * 8 * 8];
        let err = pre(8).apply(&img, "shirts/0001.png", &mut out).unwrap_err();
        assert!(err.to_string().contains("shirts/0001.png"), "{err}");
    }
}
