//! Seeded data augmentation on u8 images: the SimCLR / BYOL recipes and the paper's RHFlipAug.
//!
//! A view's random parameters ([`ViewParams`]) are drawn from a generator that is a pure
//! function of `(seed, epoch, position, view)`, then applied by an [`Augmenter`] that owns the
//! scratch buffers of one worker thread. Geometric operations (crop-resize, flip) run on u8;
//! photometric ones on planar f32 in `[0, 1]` (`C×H×W`, vectorised, AVX2 when the CPU has it,
//! bit for bit the same values as the per-pixel reference kept in the tests); the result is
//! normalised in place into the `C×H×W` f32 view.
//!
//! **Argument order.** A view's size is `(height, width)`, the order of its `[C, H, W]` shape
//! and of torchvision's `size=(h, w)`: [`Augmenter::new`]`(recipe, channels, out_h, out_w)`,
//! [`AugRecipe::with_output_size`]`(height, width)`, [`AugRecipe::output_size`] `[h, w]`. An
//! input image's size is `(width, height)`, the order of [`Image`]'s fields and of the `image`
//! crate: [`Augmenter::draw`]`(view, width, height, …)`, whose arguments are the image's
//! `image.width, image.height`.
//!
//! ```
//! use gps_ssl::augment::{AugRecipe, Augmenter};
//! use gps_ssl::dataset::open_source;
//!
//! let image = open_source("data/fashion-mnist/train")?.get(0)?.image; // 28×28×1 u8
//! let mut aug = Augmenter::new(AugRecipe::simclr(), 1, 28, 28)?;
//! let (mut a, mut b) = (vec![0.0; aug.view_len()], vec![0.0; aug.view_len()]);
//! let (seed, epoch, position) = (0, 0, 5);
//! aug.augment(&image, 0, seed, epoch, position, &mut a)?; // view A: [1, 28, 28] f32
//! aug.augment(&image, 0, seed, epoch, position, &mut b)?;
//! assert_eq!(a, b); // same (seed, epoch, position, view) => same bytes, on any thread
//! aug.augment(&image, 0, seed, epoch + 1, position, &mut b)?;
//! assert_ne!(a, b); // a new epoch draws new parameters
//! # Ok::<(), gps_ssl::Error>(())
//! ```

/// Compiles the `#[inline(always)]` function `$body` again, once per `$name = $features`, as
/// `unsafe fn $name` taking the same arguments with those target features enabled (x86-64 only;
/// the caller checks the CPU has them). The per-ISA copies of `planar` and `normalize`.
macro_rules! target_copies {
    (
        $body:ident $params:tt -> $ret:ty;
        $($(#[$doc:meta])* $name:ident = $features:literal;)+
    ) => {
        $(target_copies!(@one $body $params $ret; $(#[$doc])* $name $features);)+
    };
    (
        @one $body:ident ($($arg:ident: $ty:ty),* $(,)?) $ret:ty;
        $(#[$doc:meta])* $name:ident $features:literal
    ) => {
        $(#[$doc])*
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name($($arg: $ty),*) -> $ret {
            $body($($arg),*)
        }
    };
}

mod blur;
mod crop;
// The flip happens while a view's pixels are read (`normalize`, `planar`); this in-place flip
// of the u8 view is their tests' reference.
#[cfg(test)]
mod flip;
mod grayscale;
mod jitter;
mod normalize;
mod planar;
mod recipe;

pub use blur::{gaussian_kernel, kernel_size, trimmed_gaussian_kernel};
pub use crop::{sample_rrc, CropBox};
pub use grayscale::LUMA;
pub use jitter::JitterParams;
pub use recipe::{
    AugRecipe, BlurSpec, CropSpec, JitterSpec, Normalize, ViewRecipe, IMAGENET_MEAN, IMAGENET_STD,
};
pub use solarize::SOLARIZE_THRESHOLD;

mod solarize;

use crate::seed::{rng_for, STREAM_VIEW};
use crate::{
    dataset::{Image, Region},
    Error, Result,
};
use fast_image_resize::Resizer;
use rand::Rng;
use std::mem::MaybeUninit;

/// `out` as a buffer the view writers fill: what every `&mut [f32]` entry point passes on.
///
/// Sound only while no code that receives the result stores an uninitialised value into it
/// (`*o = MaybeUninit::uninit()`, or a copy from another `MaybeUninit` buffer): `out` is an
/// initialised `&mut [f32]` again once the borrow ends. Where that is enforced: the result is
/// only ever passed to [`Augmenter::finish`], whose writers (`normalize.rs`, `planar.rs`, see
/// their module docs) are private to this module and store only through
/// `MaybeUninit::write(f32)`, which cannot store an uninitialised value. A new writer must keep
/// to that rule; `as_uninit` is private so that no code outside `augment` can obtain such a
/// view of an initialised slice.
fn as_uninit(out: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: `MaybeUninit<f32>` has `f32`'s layout; see above for why nothing uninitialised
    // is ever written through the result.
    unsafe { &mut *(out as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// `out`, every value of which the caller has written, as initialised `f32`s.
///
/// # Safety
/// Every value of `out` must have been written.
unsafe fn assume_init(out: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: same layout; the caller guarantees every value is initialised.
    unsafe { &mut *(out as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// Blur kernel size as a fraction of the output side when a view has no blur spec (SimCLR).
pub const DEFAULT_BLUR_KERNEL_FRAC: f32 = 0.1;

/// Every random choice of one view, drawn up front so that it can be inspected and replayed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewParams {
    /// Source rectangle resized to the output size (the whole image without a crop spec).
    pub crop: CropBox,
    /// Mirror horizontally.
    pub flip: bool,
    /// Colour jitter, when it fires.
    pub jitter: Option<JitterParams>,
    /// Convert to grayscale.
    pub grayscale: bool,
    /// Blur σ in output pixels, when the blur fires.
    pub blur_sigma: Option<f32>,
    /// Blur kernel size as a fraction of the output side (see [`kernel_size`]).
    pub blur_kernel_frac: f32,
    /// Solarise.
    pub solarize: bool,
}

impl ViewParams {
    /// Draws the parameters of `view` for a `width × height` source image.
    pub fn sample(view: &ViewRecipe, width: u32, height: u32, rng: &mut impl Rng) -> Self {
        let crop = match &view.crop {
            Some(spec) => sample_rrc(spec, width, height, rng),
            None => CropBox::full(width, height),
        };
        let flip = rng.random::<f32>() < view.flip_p;
        let jitter = match &view.jitter {
            Some(spec) if rng.random::<f32>() < spec.p => Some(JitterParams::sample(spec, rng)),
            _ => None,
        };
        let grayscale = rng.random::<f32>() < view.grayscale_p;
        let blur_sigma = match &view.blur {
            Some(spec) if rng.random::<f32>() < spec.p => {
                Some(crop::uniform(rng, spec.sigma[0], spec.sigma[1]))
            }
            _ => None,
        };
        let blur_kernel_frac = view
            .blur
            .map_or(DEFAULT_BLUR_KERNEL_FRAC, |b| b.kernel_frac);
        let solarize = rng.random::<f32>() < view.solarize_p;
        ViewParams {
            crop,
            flip,
            jitter,
            grayscale,
            blur_sigma,
            blur_kernel_frac,
            solarize,
        }
    }

    /// True when a photometric (f32) operation is needed.
    fn photometric(&self) -> bool {
        self.jitter.is_some() || self.grayscale || self.blur_sigma.is_some() || self.solarize
    }
}

/// Applies an [`AugRecipe`] to images of one output geometry. Holds one thread's scratch
/// buffers: create one per worker.
pub struct Augmenter {
    recipe: AugRecipe,
    out_h: u32,
    out_w: u32,
    channels: u8,
    resizer: Resizer,
    converted: Vec<u8>,
    pixels: Vec<u8>,
    /// The recipe's normalisation for `channels`, its loop chosen once.
    normalizer: normalize::Normalizer,
    scratch: Vec<f32>,
}

impl std::fmt::Debug for Augmenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Augmenter")
            .field("recipe", &self.recipe.name)
            .field("out", &(self.channels, self.out_h, self.out_w))
            .finish()
    }
}

impl Augmenter {
    /// An augmenter producing `[channels, out_h, out_w]` views (`channels` ∈ {1, 3}).
    pub fn new(recipe: AugRecipe, channels: u8, out_h: u32, out_w: u32) -> Result<Self> {
        recipe.validate()?;
        if channels != 1 && channels != 3 {
            return Err(Error::invalid(
                "channels",
                format!("must be 1 or 3, got {channels}"),
            ));
        }
        if out_h == 0 || out_w == 0 {
            return Err(Error::invalid("output size", format!("{out_h}x{out_w}")));
        }
        recipe.normalize.check(channels as usize)?;
        Ok(Augmenter {
            normalizer: normalize::Normalizer::new(&recipe.normalize, channels as usize),
            recipe,
            out_h,
            out_w,
            channels,
            resizer: Resizer::new(),
            converted: Vec::new(),
            pixels: Vec::new(),
            scratch: Vec::new(),
        })
    }

    /// Output `[C, H, W]` of one view.
    pub fn view_shape(&self) -> [usize; 3] {
        [
            self.channels as usize,
            self.out_h as usize,
            self.out_w as usize,
        ]
    }

    /// Number of f32 values of one view (`C·H·W`).
    pub fn view_len(&self) -> usize {
        self.channels as usize * self.out_h as usize * self.out_w as usize
    }

    /// The recipe.
    pub fn recipe(&self) -> &AugRecipe {
        &self.recipe
    }

    /// Draws the parameters of view `view` (0 = A, 1 = B) for `(seed, epoch, position)` and
    /// applies them to `image`, writing `C×H×W` into `out`.
    pub fn augment(
        &mut self,
        image: &Image,
        view: usize,
        seed: u64,
        epoch: u64,
        position: u64,
        out: &mut [f32],
    ) -> Result<ViewParams> {
        let params = self.draw(view, image.width, image.height, seed, epoch, position);
        self.apply(&params, image, out)?;
        Ok(params)
    }

    /// The parameters [`augment`](Self::augment) draws for view `view` (0 = A, 1 = B) of a
    /// `width × height` image (its full size, also when it is decoded reduced).
    pub fn draw(
        &self,
        view: usize,
        width: u32,
        height: u32,
        seed: u64,
        epoch: u64,
        position: u64,
    ) -> ViewParams {
        let mut rng = rng_for(seed, STREAM_VIEW + view as u64, epoch, position, 0);
        let spec = if view == 0 {
            self.recipe.view_a
        } else {
            self.recipe.view_b
        };
        ViewParams::sample(&spec, width, height, &mut rng)
    }

    /// The decode reduction a view with these parameters can take: the largest `d` ∈
    /// {1, 2, 4, 8} whose crop, decoded at `1/d`, still has at least the output's pixels in each
    /// direction (`crop.width ≥ d · out_w` and `crop.height ≥ d · out_h`), so that the resize
    /// only ever shrinks where the full-size path shrinks; 1 when the recipe's
    /// [`reduced_decode`](AugRecipe::reduced_decode) is off.
    pub fn reduction(&self, p: &ViewParams) -> u32 {
        if !self.recipe.reduced_decode {
            return 1;
        }
        let b = p.crop;
        [8, 4, 2]
            .into_iter()
            .find(|&d| b.width >= d * self.out_w && b.height >= d * self.out_h)
            .unwrap_or(1)
    }

    /// Applies drawn parameters to `image`, writing `C×H×W` normalised f32 into `out`
    /// (`view_len()` values).
    pub fn apply(&mut self, p: &ViewParams, image: &Image, out: &mut [f32]) -> Result<()> {
        self.apply_reduced(p, image, 1, out)
    }

    /// [`apply`](Self::apply) to an image decoded at `1/factor` of its size
    /// ([`crate::dataset::DataSource::get_reduced`]): the crop box, in full-size pixels, maps to
    /// `box / factor` in `image` (fractional edges are resampled, not rounded).
    pub fn apply_reduced(
        &mut self,
        p: &ViewParams,
        image: &Image,
        factor: u32,
        out: &mut [f32],
    ) -> Result<()> {
        self.apply_part(p, image, factor, (0, 0), out)
    }

    /// [`apply_reduced`](Self::apply_reduced) to the part of the image decoded at `1/factor`
    /// that starts at `origin` (its pixels; [`crate::dataset::DataSource::get_region`]), which
    /// must hold the view's [`region`](Self::region). The view is the one the whole image gives,
    /// bit for bit in every tested case
    /// (`a_view_from_its_region_is_the_view_from_the_whole_image`); in principle the resize's
    /// f64 sample positions, shifted by `origin`, could round differently and move a pixel by one
    /// level.
    pub fn apply_part(
        &mut self,
        p: &ViewParams,
        image: &Image,
        factor: u32,
        origin: (u32, u32),
        out: &mut [f32],
    ) -> Result<()> {
        self.apply_part_into(p, image, factor, origin, as_uninit(out))
    }

    /// [`apply_part`](Self::apply_part) into memory that need not be initialised, e.g. a
    /// batch's spare capacity (`Vec::spare_capacity_mut`): on `Ok`, every value of `out` is
    /// written (on `Err`, none need be), so a loader can skip zero-filling its batches.
    ///
    /// ```
    /// use gps_ssl::augment::{AugRecipe, Augmenter};
    /// use gps_ssl::dataset::Image;
    /// let image = Image::new(40, 30, 3, vec![128; 40 * 30 * 3]);
    /// let mut aug = Augmenter::new(AugRecipe::simclr(), 3, 16, 16)?;
    /// let p = aug.draw(0, image.width, image.height, 7, 0, 0);
    /// let mut batch: Vec<f32> = Vec::with_capacity(aug.view_len());
    /// aug.apply_part_into(&p, &image, 1, (0, 0), &mut batch.spare_capacity_mut()[..aug.view_len()])?;
    /// // SAFETY: `apply_part_into` returned `Ok`, so it wrote all `view_len()` values.
    /// unsafe { batch.set_len(aug.view_len()) };
    /// assert!(batch.iter().all(|v| v.is_finite()));
    /// # Ok::<(), gps_ssl::Error>(())
    /// ```
    pub fn apply_part_into(
        &mut self,
        p: &ViewParams,
        image: &Image,
        factor: u32,
        origin: (u32, u32),
        out: &mut [MaybeUninit<f32>],
    ) -> Result<()> {
        self.check_view(out.len())?;
        self.crop_resize(p, image, factor, origin)?;
        self.finish(p, out);
        Ok(())
    }

    /// Both views of one image, as plain SSL pairs them: [`apply_part_into`](Self::apply_part_into)
    /// with `pa` into `out_a`, then with `pb` into `out_b`, the same bytes. When the two crops
    /// are the same box (RHFlipAug's full-image views) the crop-resize runs once for both. The
    /// outputs need not be initialised (a batch's spare capacity, as the loader passes): on `Ok`,
    /// every value of both is written.
    #[allow(clippy::too_many_arguments)]
    pub fn apply_pair(
        &mut self,
        pa: &ViewParams,
        pb: &ViewParams,
        image: &Image,
        factor: u32,
        origin: (u32, u32),
        out_a: &mut [MaybeUninit<f32>],
        out_b: &mut [MaybeUninit<f32>],
    ) -> Result<()> {
        self.check_view(out_a.len())?;
        self.check_view(out_b.len())?;
        self.crop_resize(pa, image, factor, origin)?;
        self.finish(pa, out_a);
        // `finish` leaves the crop-resized pixels as they are.
        if pb.crop != pa.crop {
            self.crop_resize(pb, image, factor, origin)?;
        }
        self.finish(pb, out_b);
        Ok(())
    }

    /// The part of a `full`-size image that views with these parameters read when it is decoded
    /// at `1/factor`: the union of their crop boxes, widened by the bilinear resize's reach (its
    /// support, one source pixel scaled by the shrink factor, plus two pixels) and clamped to the
    /// image. What the loader asks [`crate::dataset::DataSource::get_region`] for.
    pub fn region(&self, views: &[&ViewParams], factor: u32, full: (u32, u32)) -> Region {
        let f = factor.max(1);
        let reach = |len: u32, out: u32| {
            let scale = f64::from(len) / f64::from(f) / f64::from(out.max(1));
            (scale.max(1.0).ceil() as u32 + 2) * f
        };
        let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0u32, 0u32);
        for p in views {
            let b = p.crop;
            let (mx, my) = (reach(b.width, self.out_w), reach(b.height, self.out_h));
            x0 = x0.min(b.left.saturating_sub(mx));
            y0 = y0.min(b.top.saturating_sub(my));
            x1 = x1.max(b.left.saturating_add(b.width).saturating_add(mx));
            y1 = y1.max(b.top.saturating_add(b.height).saturating_add(my));
        }
        let (x1, y1) = (x1.min(full.0), y1.min(full.1));
        let (x0, y0) = (x0.min(x1), y0.min(y1));
        Region {
            left: x0,
            top: y0,
            width: (x1 - x0).max(1),
            height: (y1 - y0).max(1),
        }
    }

    fn check_view(&self, len: usize) -> Result<()> {
        if len != self.view_len() {
            return Err(Error::mismatch("view buffer length", self.view_len(), len));
        }
        Ok(())
    }

    /// Crops `p.crop` out of `image` (decoded at `1/factor`, the part starting at `origin`) and
    /// resizes it into `self.pixels` (`out_h × out_w × C` u8, not flipped).
    fn crop_resize(
        &mut self,
        p: &ViewParams,
        image: &Image,
        factor: u32,
        origin: (u32, u32),
    ) -> Result<()> {
        let c = self.channels as usize;
        let (w, h) = (image.width, image.height);
        let b = p.crop;
        // The box, in full-size pixels, inside the part: [o·f, (o + side)·f).
        let fits = |start: u32, len: u32, o: u32, side: u32| {
            let (f, o) = (u64::from(factor), u64::from(o));
            u64::from(start) >= o * f
                && u64::from(start) + u64::from(len) <= (o + u64::from(side)) * f
        };
        if factor == 0
            || b.width == 0
            || b.height == 0
            || !fits(b.left, b.width, origin.0, w)
            || !fits(b.top, b.height, origin.1, h)
        {
            return Err(Error::invalid(
                "crop box",
                format!(
                    "{b:?} outside a {w}x{h} part at {origin:?} of an image decoded at 1/{factor}"
                ),
            ));
        }
        let src: &[u8] = if image.channels == self.channels {
            &image.data
        } else {
            convert_channels(
                &image.data,
                image.channels,
                self.channels,
                &mut self.converted,
            );
            &self.converted
        };
        let npx = self.out_h as usize * self.out_w as usize;
        self.pixels.resize(npx * c, 0);
        crop::crop_resize(
            &mut self.resizer,
            src,
            w,
            h,
            self.channels,
            b,
            factor,
            origin,
            &mut self.pixels,
            self.out_w,
            self.out_h,
        )
    }

    /// Flips and normalises the crop-resized `self.pixels` into `out` (`view_len()` values, all
    /// written), through the photometric operations when the view has any; `self.pixels` is
    /// left as it is (the flip happens while the pixels are read).
    fn finish(&mut self, p: &ViewParams, out: &mut [MaybeUninit<f32>]) {
        let c = self.channels as usize;
        let (ow, oh) = (self.out_w as usize, self.out_h as usize);
        if !p.photometric() {
            self.normalizer.apply(&self.pixels, ow, p.flip, out);
            return;
        }
        let kernel = p.blur_sigma.map(|sigma| {
            let k = blur::kernel_size(p.blur_kernel_frac, self.out_h.min(self.out_w));
            blur::trimmed_gaussian_kernel(k, sigma)
        });
        let ops = planar::Photometric {
            flip: p.flip,
            jitter: p.jitter.as_ref(),
            grayscale: p.grayscale,
            blur: kernel.as_deref(),
            solarize: p.solarize.then_some(SOLARIZE_THRESHOLD),
            normalize: &self.recipe.normalize,
        };
        planar::apply(&self.pixels, ow, oh, c, &ops, out, &mut self.scratch);
    }

    /// The photometric operations of [`Augmenter::apply`] the straightforward way: pixel by
    /// pixel on interleaved f32, then normalised into `C×H×W`. The reference the planar path
    /// must equal bit for bit; `self.pixels` holds the cropped u8 view, flipped here first.
    #[cfg(test)]
    fn photometric_reference(&mut self, p: &ViewParams, out: &mut [f32]) {
        let c = self.channels as usize;
        let mut pixels = self.pixels.clone();
        if p.flip {
            flip::hflip_u8(&mut pixels, self.out_w as usize, c);
        }
        let mut work: Vec<f32> = pixels.iter().map(|&v| v as f32 * (1.0 / 255.0)).collect();
        if let Some(j) = &p.jitter {
            j.apply(&mut work, c);
        }
        if p.grayscale {
            grayscale::grayscale_f32(&mut work, c);
        }
        if let Some(sigma) = p.blur_sigma {
            let k = blur::kernel_size(p.blur_kernel_frac, self.out_h.min(self.out_w));
            let kernel = blur::trimmed_gaussian_kernel(k, sigma);
            let (ow, oh) = (self.out_w as usize, self.out_h as usize);
            let mut scratch = Vec::new();
            blur::blur_f32(&mut work, ow, oh, c, &kernel, &mut scratch);
        }
        if p.solarize {
            solarize::solarize_f32(&mut work, SOLARIZE_THRESHOLD);
        }
        normalize::normalize_f32(&work, c, &self.recipe.normalize, out);
    }
}

/// Converts interleaved u8 pixels between 1 and 3 channels (grey → RGB replicates, RGB → grey
/// takes the rounded luma).
fn convert_channels(src: &[u8], from: u8, to: u8, dst: &mut Vec<u8>) {
    dst.clear();
    match (from, to) {
        (1, 3) => dst.extend(src.iter().flat_map(|&v| [v, v, v])),
        (3, 1) => dst.extend(src.chunks_exact(3).map(|p| {
            grayscale::luma(p[0] as f32, p[1] as f32, p[2] as f32)
                .round()
                .clamp(0.0, 255.0) as u8
        })),
        _ => dst.extend_from_slice(src),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parameters that only crop (no flip, colour, blur or solarisation).
    fn plain(crop: CropBox) -> ViewParams {
        ViewParams {
            crop,
            flip: false,
            jitter: None,
            grayscale: false,
            blur_sigma: None,
            blur_kernel_frac: DEFAULT_BLUR_KERNEL_FRAC,
            solarize: false,
        }
    }

    fn gradient(w: u32, h: u32, c: u8) -> Image {
        let data = (0..w * h * c as u32)
            .map(|v| (v * 13 % 256) as u8)
            .collect();
        Image::new(w, h, c, data)
    }

    /// The planar, vectorised photometric path equals the per-pixel reference bit for bit: grey
    /// and RGB, images narrower than the blur kernel (the reflected-border path) up to 224 px,
    /// every operation forced on in a drawn order as well as the recipes' own draws.
    #[test]
    fn planar_photometric_path_is_the_reference_bit_for_bit() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x706c_616e);
        let jitter = recipe::JitterSpec {
            p: 1.0,
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.4,
            hue: 0.5,
        };
        let mut cases = 0;
        for (side, c) in [
            (1u32, 3u8),
            (3, 1),
            (5, 3),
            (17, 3),
            (32, 1),
            (37, 3),
            (224, 3),
        ] {
            for recipe in [AugRecipe::simclr(), AugRecipe::byol()] {
                let recipe = recipe.with_output_size(side, side).with_rgb(c == 3);
                let img = noise(side + 3, side + 1, c, &mut rng);
                let mut aug = Augmenter::new(recipe, c, side, side).unwrap();
                let views = if side == 224 { 6 } else { 40 };
                for v in 0..views {
                    let spec = if v % 2 == 0 {
                        aug.recipe.view_a
                    } else {
                        aug.recipe.view_b
                    };
                    let mut p = ViewParams::sample(&spec, img.width, img.height, &mut rng);
                    if v % 4 < 2 {
                        p.jitter = Some(JitterParams::sample(&jitter, &mut rng));
                        p.grayscale = rng.random::<bool>();
                        p.blur_sigma = Some(crop::uniform(&mut rng, 0.1, 2.0));
                        p.solarize = rng.random::<bool>();
                    }
                    let mut fast = vec![0.0; aug.view_len()];
                    aug.apply(&p, &img, &mut fast).unwrap();
                    if !p.photometric() {
                        continue;
                    }
                    let mut want = vec![0.0; aug.view_len()];
                    aug.photometric_reference(&p, &mut want);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert!(bits(&fast) == bits(&want), "{side}px c{c} view {v}: {p:?}");
                    cases += 1;
                }
            }
        }
        assert!(cases > 200, "{cases}");
    }

    /// Both views of one image at once are the two views made one by one, bit for bit: a
    /// shared crop (RHFlipAug) resized once, and different crops (SimCLR), flipped or not.
    #[test]
    fn pair_of_one_image_is_its_two_views() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x7061_6972);
        for (recipe, c) in [
            (AugRecipe::rhflip(), 3u8),
            (AugRecipe::rhflip(), 1),
            (AugRecipe::simclr(), 3),
        ] {
            let recipe = recipe.with_output_size(24, 24).with_rgb(c == 3);
            let img = noise(61, 45, c, &mut rng);
            let mut aug = Augmenter::new(recipe, c, 24, 24).unwrap();
            let mut shared = 0;
            for position in 0..24 {
                let pa = aug.draw(0, img.width, img.height, 3, 1, position);
                let pb = aug.draw(1, img.width, img.height, 3, 1, position);
                shared += usize::from(pa.crop == pb.crop && pa.flip != pb.flip);
                let n = aug.view_len();
                let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
                aug.apply_pair(
                    &pa,
                    &pb,
                    &img,
                    1,
                    (0, 0),
                    as_uninit(&mut a),
                    as_uninit(&mut b),
                )
                .unwrap();
                let (mut wa, mut wb) = (vec![0.0; n], vec![0.0; n]);
                aug.apply(&pa, &img, &mut wa).unwrap();
                aug.apply(&pb, &img, &mut wb).unwrap();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!((bits(&a), bits(&b)), (bits(&wa), bits(&wb)), "{position}");
            }
            if aug.recipe.name == "rhflip" {
                assert!(shared > 0, "no shared crop with different flips drawn");
            }
        }
    }

    /// The entry points into memory that need not be initialised (`apply_pair`,
    /// `apply_part_into`) write every value of their output: buffers holding a marker (a NaN no
    /// view can produce) come back without one, equal bit for bit to the views `apply` writes
    /// over zeros. Grey and colour, shared and separate crops,
    /// views without photometric operations (the normaliser) and with each of them (planar).
    #[test]
    fn into_writes_every_value() {
        use rand::SeedableRng;
        const MARK: u32 = 0x7fa5_5a5a;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x696e_746f);
        let mut photometric = 0;
        for (recipe, c) in [
            (AugRecipe::rhflip(), 1u8),
            (AugRecipe::rhflip(), 3),
            (AugRecipe::simclr(), 1),
            (AugRecipe::simclr(), 3),
        ] {
            let recipe = recipe.with_output_size(20, 28).with_rgb(c == 3);
            let mut aug = Augmenter::new(recipe, c, 20, 28).unwrap();
            let img = noise(53, 41, c, &mut rng);
            let n = aug.view_len();
            for position in 0..40 {
                let pa = aug.draw(0, img.width, img.height, 9, 2, position);
                let pb = aug.draw(1, img.width, img.height, 9, 2, position);
                photometric += usize::from(pa.photometric()) + usize::from(pb.photometric());
                let (mut wa, mut wb) = (vec![0.0; n], vec![0.0; n]);
                aug.apply(&pa, &img, &mut wa).unwrap();
                aug.apply(&pb, &img, &mut wb).unwrap();
                let marked = || vec![MaybeUninit::new(f32::from_bits(MARK)); n];
                let (mut a, mut b, mut one) = (marked(), marked(), marked());
                aug.apply_pair(&pa, &pb, &img, 1, (0, 0), &mut a, &mut b)
                    .unwrap();
                aug.apply_part_into(&pb, &img, 1, (0, 0), &mut one).unwrap();
                // SAFETY: every value was initialised (to the marker) before the calls.
                let bits = |v: &[MaybeUninit<f32>]| -> Vec<u32> {
                    v.iter()
                        .map(|x| unsafe { x.assume_init() }.to_bits())
                        .collect()
                };
                let want = |v: &[f32]| -> Vec<u32> { v.iter().map(|x| x.to_bits()).collect() };
                for (got, want, what) in [
                    (bits(&a), want(&wa), "pair A"),
                    (bits(&b), want(&wb), "pair B"),
                    (bits(&one), want(&wb), "part"),
                ] {
                    assert!(
                        !got.contains(&MARK),
                        "{what}: a value left unwritten, c{c} {position}"
                    );
                    assert!(got == want, "{what}: c{c} {position}");
                }
            }
        }
        assert!(photometric > 20, "{photometric}");
    }

    /// A view made from the part of an image its [`Augmenter::region`] names is the view made
    /// from the whole image, bit for bit: the crop-resize reads nothing outside the region and
    /// its coefficients do not depend on where the part starts. Random crops (SimCLR's random
    /// resized crop, shrinking and enlarging), whole and reduced images, odd sizes.
    #[test]
    fn a_view_from_its_region_is_the_view_from_the_whole_image() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x7061_7274);
        let mut partial = 0;
        for (out, factor) in [(24u32, 1u32), (64, 1), (24, 2), (37, 4)] {
            let recipe = AugRecipe::simclr().with_output_size(out, out);
            let mut aug = Augmenter::new(recipe, 3, out, out).unwrap();
            let full = (331u32, 251u32);
            let (rw, rh) = (full.0.div_ceil(factor), full.1.div_ceil(factor));
            let img = noise(rw, rh, 3, &mut rng);
            for position in 0..150 {
                let p = aug.draw(position as usize % 2, full.0, full.1, 5, 0, position);
                let g = aug.region(&[&p], factor, full);
                let (x0, y0) = (g.left / factor, g.top / factor);
                let x1 = (g.left + g.width).div_ceil(factor).min(rw);
                let y1 = (g.top + g.height).div_ceil(factor).min(rh);
                let mut part = Vec::new();
                for y in y0..y1 {
                    let at = ((y * rw + x0) * 3) as usize;
                    part.extend_from_slice(&img.data[at..at + ((x1 - x0) * 3) as usize]);
                }
                let part = Image::new(x1 - x0, y1 - y0, 3, part);
                partial += usize::from(part.width * part.height < rw * rh);
                let n = aug.view_len();
                let (mut want, mut got) = (vec![0.0; n], vec![0.0; n]);
                aug.apply_reduced(&p, &img, factor, &mut want).unwrap();
                aug.apply_part(&p, &part, factor, (x0, y0), &mut got)
                    .unwrap();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert!(bits(&got) == bits(&want), "{out}px 1/{factor} {p:?} {g:?}");
            }
        }
        assert!(partial > 300, "{partial}");
    }

    fn noise(w: u32, h: u32, c: u8, rng: &mut impl Rng) -> Image {
        let data = (0..w * h * c as u32).map(|_| rng.random::<u8>()).collect();
        Image::new(w, h, c, data)
    }

    #[test]
    fn same_tuple_same_view_other_tuple_other_view() {
        let img = gradient(32, 32, 3);
        let mut aug = Augmenter::new(AugRecipe::simclr(), 3, 32, 32).unwrap();
        let (mut a, mut b, mut c) = (vec![0.0; 3072], vec![0.0; 3072], vec![0.0; 3072]);
        aug.augment(&img, 0, 1, 2, 3, &mut a).unwrap();
        aug.augment(&img, 0, 1, 2, 3, &mut b).unwrap();
        aug.augment(&img, 0, 1, 2, 4, &mut c).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn identity_params_give_plain_normalisation() {
        let img = gradient(5, 4, 1);
        let mut aug = Augmenter::new(
            AugRecipe::rhflip().with_normalize(Normalize::half()),
            1,
            4,
            5,
        )
        .unwrap();
        let p = plain(CropBox::full(5, 4));
        let mut out = vec![0.0; 20];
        aug.apply(&p, &img, &mut out).unwrap();
        for (o, &v) in out.iter().zip(&img.data) {
            assert!((o - (v as f32 / 255.0 - 0.5) / 0.5).abs() < 1e-6);
        }
        // Solarise through the f32 path: values >= 0.5 are inverted before normalisation.
        let mut out2 = vec![0.0; 20];
        aug.apply(
            &ViewParams {
                solarize: true,
                ..p
            },
            &img,
            &mut out2,
        )
        .unwrap();
        for (o, &v) in out2.iter().zip(&img.data) {
            let x = v as f32 / 255.0;
            let x = if x >= 0.5 { 1.0 - x } else { x };
            assert!((o - (x - 0.5) / 0.5).abs() < 1e-5);
        }
    }

    #[test]
    fn grey_to_rgb_when_asked() {
        let img = gradient(4, 4, 1);
        let mut aug = Augmenter::new(AugRecipe::rhflip().with_rgb(true), 3, 4, 4).unwrap();
        let mut out = vec![0.0; 48];
        let p = plain(CropBox::full(4, 4));
        aug.apply(&p, &img, &mut out).unwrap();
        let m = IMAGENET_MEAN;
        let s = IMAGENET_STD;
        for c in 0..3 {
            let want = (img.data[5] as f32 / 255.0 - m[c]) / s[c];
            assert!((out[c * 16 + 5] - want).abs() < 1e-5);
        }
    }

    #[test]
    fn bad_crop_box_is_an_error() {
        let img = gradient(8, 8, 1);
        let mut aug = Augmenter::new(AugRecipe::rhflip(), 1, 8, 8).unwrap();
        let p = plain(CropBox {
            top: 4,
            left: 0,
            height: 5,
            width: 8,
        });
        assert!(aug.apply(&p, &img, &mut vec![0.0; 64]).is_err());
    }
}
