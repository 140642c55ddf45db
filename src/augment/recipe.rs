//! The serde augmentation recipe saved with every run.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Default ImageNet per-channel mean (RGB), used by [`Normalize::imagenet`].
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// Default ImageNet per-channel standard deviation (RGB), used by [`Normalize::imagenet`].
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Random-resized crop parameters (torchvision `RandomResizedCrop` semantics).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CropSpec {
    /// Range of the crop area as a fraction of the image area, e.g. `[0.08, 1.0]`.
    pub scale: [f32; 2],
    /// Range of the crop aspect ratio `w / h`, e.g. `[3/4, 4/3]` (sampled log-uniformly).
    pub ratio: [f32; 2],
}

/// Colour jitter parameters (torchvision `ColorJitter` semantics), applied with probability `p`
/// in a random order of the four operations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct JitterSpec {
    /// Probability of applying the jitter at all.
    pub p: f32,
    /// Brightness factor drawn from `[max(0, 1 - b), 1 + b]`.
    pub brightness: f32,
    /// Contrast factor drawn from `[max(0, 1 - c), 1 + c]`.
    pub contrast: f32,
    /// Saturation factor drawn from `[max(0, 1 - s), 1 + s]` (ignored on grey images).
    pub saturation: f32,
    /// Hue shift drawn from `[-h, h]`, in turns (`h ≤ 0.5`; ignored on grey images).
    pub hue: f32,
}

/// Gaussian blur parameters (torchvision `GaussianBlur`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BlurSpec {
    /// Probability of blurring.
    pub p: f32,
    /// Range of σ in pixels of the output image.
    pub sigma: [f32; 2],
    /// Kernel size as a fraction of the output side (SimCLR: 0.1); rounded to an odd size ≥ 3.
    pub kernel_frac: f32,
}

/// The augmentation of one view. Operations run in this order: crop (or resize), flip,
/// colour jitter, grayscale, blur, solarize, normalise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ViewRecipe {
    /// Random-resized crop; `None` resizes the whole image to the output size.
    pub crop: Option<CropSpec>,
    /// Probability of a horizontal flip.
    pub flip_p: f32,
    /// Colour jitter, if any.
    pub jitter: Option<JitterSpec>,
    /// Probability of converting to grayscale (luma 0.299/0.587/0.114, channels kept).
    pub grayscale_p: f32,
    /// Gaussian blur, if any.
    pub blur: Option<BlurSpec>,
    /// Probability of solarising (values `≥ 0.5` become `1 - v`, on the `[0, 1]` scale).
    pub solarize_p: f32,
}

/// Per-channel normalisation `(v - mean) / std` of values on the `[0, 1]` scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalize {
    /// Mean per output channel (one value is broadcast to every channel).
    pub mean: Vec<f32>,
    /// Standard deviation per output channel (one value is broadcast to every channel).
    pub std: Vec<f32>,
}

impl Normalize {
    /// ImageNet statistics ([`IMAGENET_MEAN`], [`IMAGENET_STD`]); on a 1-channel output the
    /// mean of the three values is used.
    pub fn imagenet() -> Self {
        Normalize {
            mean: IMAGENET_MEAN.to_vec(),
            std: IMAGENET_STD.to_vec(),
        }
    }

    /// `mean = 0.5`, `std = 0.5` on every channel (maps `[0, 1]` to `[-1, 1]`).
    pub fn half() -> Self {
        Normalize {
            mean: vec![0.5],
            std: vec![0.5],
        }
    }

    /// Checks that the statistics fit a `channels`-channel output: one value (broadcast),
    /// `channels` values, or three on a 1-channel output (their mean is used, as for
    /// [`Normalize::imagenet`] on grey images). Any other length is an error naming both
    /// lengths (it used to fall back to the first value silently).
    pub fn check(&self, channels: usize) -> Result<()> {
        for (name, v) in [("mean", &self.mean), ("std", &self.std)] {
            let n = v.len();
            if !(n == 1 || n == channels || (channels == 1 && n == 3)) {
                return Err(Error::invalid(
                    "normalize",
                    format!(
                        "{name} has {n} values for {channels}-channel views (give 1 or \
                         {channels})"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `(mean, std)` of output channel `c` out of `channels` (lengths as [`Normalize::check`]
    /// accepts).
    pub(crate) fn channel(&self, c: usize, channels: usize) -> (f32, f32) {
        let pick = |v: &[f32]| -> f32 {
            if v.len() == channels {
                v[c]
            } else if channels == 1 {
                v.iter().sum::<f32>() / v.len() as f32
            } else {
                v[0]
            }
        };
        (pick(&self.mean), pick(&self.std))
    }
}

/// A full augmentation recipe: the two views' pipelines, output size and normalisation.
/// Serialise it (TOML / JSON) next to the run's outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AugRecipe {
    /// A short name (`"rhflip"`, `"simclr"`, `"byol"`).
    pub name: String,
    /// Output `[height, width]`; `None` keeps the size of the dataset's first image.
    pub output_size: Option<[u32; 2]>,
    /// Replicate grey images to 3 channels (otherwise grey datasets stay 1-channel).
    pub to_rgb: bool,
    /// Normalisation applied last.
    pub normalize: Normalize,
    /// Pipeline of the first view (the anchor's).
    pub view_a: ViewRecipe,
    /// Pipeline of the second view (the partner's).
    pub view_b: ViewRecipe,
    /// Decode a JPEG at 1/2, 1/4 or 1/8 of its size (libjpeg-turbo's DCT scaling) when the
    /// views made from it crop at least that many times the output size in each direction (see
    /// [`crate::augment::Augmenter::reduction`]): the resize then starts from fewer pixels, and
    /// the decode skips most of the inverse DCT and colour conversion. `false` decodes every
    /// image at full size. `true` in every recipe this crate makes; `false` when absent from a
    /// saved recipe (runs saved before it existed decoded at full size). Only libjpeg-turbo
    /// decodes scaled: without the `turbojpeg` feature every image is decoded whole, and the
    /// trainer sets this to `false` so that a run's recipe says what it did.
    #[serde(default)]
    pub reduced_decode: bool,
}

const SIMCLR_JITTER: JitterSpec = JitterSpec {
    p: 0.8,
    brightness: 0.4,
    contrast: 0.4,
    saturation: 0.4,
    hue: 0.1,
};
const SIMCLR_CROP: CropSpec = CropSpec {
    scale: [0.08, 1.0],
    ratio: [3.0 / 4.0, 4.0 / 3.0],
};

fn strong_view(blur_p: f32, solarize_p: f32) -> ViewRecipe {
    ViewRecipe {
        crop: Some(SIMCLR_CROP),
        flip_p: 0.5,
        jitter: Some(SIMCLR_JITTER),
        grayscale_p: 0.2,
        blur: Some(BlurSpec {
            p: blur_p,
            sigma: [0.1, 2.0],
            kernel_frac: 0.1,
        }),
        solarize_p,
    }
}

impl AugRecipe {
    /// The paper's weak setting (`RHFlipAug`): horizontal flip with p = 0.5 only, both views.
    pub fn rhflip() -> Self {
        let view = ViewRecipe {
            crop: None,
            flip_p: 0.5,
            jitter: None,
            grayscale_p: 0.0,
            blur: None,
            solarize_p: 0.0,
        };
        AugRecipe {
            name: "rhflip".into(),
            output_size: None,
            to_rgb: false,
            normalize: Normalize::imagenet(),
            view_a: view,
            view_b: view,
            reduced_decode: true,
        }
    }

    /// `StrongAug`, the SimCLR recipe on both views: RRC (scale 0.08–1, ratio 3/4–4/3), flip,
    /// colour jitter 0.4/0.4/0.4/0.1 with p = 0.8, grayscale p = 0.2, blur p = 0.5 with
    /// σ ∈ [0.1, 2.0], no solarisation.
    pub fn simclr() -> Self {
        AugRecipe {
            name: "simclr".into(),
            output_size: None,
            to_rgb: false,
            normalize: Normalize::imagenet(),
            view_a: strong_view(0.5, 0.0),
            view_b: strong_view(0.5, 0.0),
            reduced_decode: true,
        }
    }

    /// The BYOL asymmetric recipe: as [`simclr`](Self::simclr) but view A blurs with p = 1.0
    /// and never solarises, view B blurs with p = 0.1 and solarises with p = 0.2.
    pub fn byol() -> Self {
        AugRecipe {
            name: "byol".into(),
            output_size: None,
            to_rgb: false,
            normalize: Normalize::imagenet(),
            view_a: strong_view(1.0, 0.0),
            view_b: strong_view(0.1, 0.2),
            reduced_decode: true,
        }
    }

    /// Sets the output `[height, width]`.
    pub fn with_output_size(mut self, height: u32, width: u32) -> Self {
        self.output_size = Some([height, width]);
        self
    }

    /// Sets [`reduced_decode`](Self::reduced_decode) (`false`: every image at full size).
    pub fn with_reduced_decode(mut self, reduced: bool) -> Self {
        self.reduced_decode = reduced;
        self
    }

    /// Sets the normalisation.
    pub fn with_normalize(mut self, normalize: Normalize) -> Self {
        self.normalize = normalize;
        self
    }

    /// Replicates grey images to 3 channels when `yes`.
    pub fn with_rgb(mut self, yes: bool) -> Self {
        self.to_rgb = yes;
        self
    }

    /// Checks every probability, range and size.
    pub fn validate(&self) -> Result<()> {
        let prob = |p: f32, what: &'static str| -> Result<()> {
            if (0.0..=1.0).contains(&p) {
                Ok(())
            } else {
                Err(Error::invalid(
                    what,
                    format!("probability must be in [0, 1], got {p}"),
                ))
            }
        };
        let range = |r: [f32; 2], what: &'static str| -> Result<()> {
            if r[0].is_finite() && r[1].is_finite() && r[0] > 0.0 && r[0] <= r[1] {
                Ok(())
            } else {
                Err(Error::invalid(
                    what,
                    format!("need 0 < lo <= hi, got {r:?}"),
                ))
            }
        };
        if let Some([h, w]) = self.output_size {
            if h == 0 || w == 0 {
                return Err(Error::invalid(
                    "output_size",
                    format!("must be positive, got {h}x{w}"),
                ));
            }
        }
        let n = &self.normalize;
        if n.mean.is_empty() || n.std.is_empty() || n.std.iter().any(|s| s.is_nan() || *s <= 0.0) {
            return Err(Error::invalid(
                "normalize",
                "need non-empty mean/std and std > 0",
            ));
        }
        for v in [&self.view_a, &self.view_b] {
            prob(v.flip_p, "flip_p")?;
            prob(v.grayscale_p, "grayscale_p")?;
            prob(v.solarize_p, "solarize_p")?;
            if let Some(c) = v.crop {
                range(c.scale, "crop.scale")?;
                range(c.ratio, "crop.ratio")?;
                if c.scale[1] > 1.0 {
                    return Err(Error::invalid("crop.scale", "upper bound must be <= 1"));
                }
            }
            if let Some(j) = v.jitter {
                prob(j.p, "jitter.p")?;
                let bad = [j.brightness, j.contrast, j.saturation]
                    .iter()
                    .any(|x| x.is_nan() || *x < 0.0);
                if bad || !(0.0..=0.5).contains(&j.hue) {
                    return Err(Error::invalid(
                        "jitter",
                        "brightness/contrast/saturation must be >= 0 and hue in [0, 0.5]",
                    ));
                }
            }
            if let Some(b) = v.blur {
                prob(b.p, "blur.p")?;
                range(b.sigma, "blur.sigma")?;
                if !(b.kernel_frac > 0.0 && b.kernel_frac <= 1.0) {
                    return Err(Error::invalid("blur.kernel_frac", "must be in (0, 1]"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate_and_roundtrip_through_toml() {
        for r in [AugRecipe::rhflip(), AugRecipe::simclr(), AugRecipe::byol()] {
            r.validate().unwrap();
            let text = toml::to_string(&r).unwrap();
            let back: AugRecipe = toml::from_str(&text).unwrap();
            assert_eq!(back, r);
        }
    }

    #[test]
    fn byol_views_are_asymmetric() {
        let r = AugRecipe::byol();
        assert_eq!(r.view_a.blur.unwrap().p, 1.0);
        assert_eq!(r.view_b.blur.unwrap().p, 0.1);
        assert_eq!((r.view_a.solarize_p, r.view_b.solarize_p), (0.0, 0.2));
    }

    #[test]
    fn bad_probability_is_rejected() {
        let mut r = AugRecipe::simclr();
        r.view_b.flip_p = 1.5;
        assert!(matches!(
            r.validate(),
            Err(Error::InvalidInput { what: "flip_p", .. })
        ));
    }
}
