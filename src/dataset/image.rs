//! The decoded image type shared by every stage.

/// Most pixels (`width × height`) an image file may declare: larger ones are refused from their
/// header, before anything is allocated, by every decoder (JPEG through libjpeg-turbo with the
/// `turbojpeg` feature, PNG and the rest through `image`), with an error naming the file. 178,956,970 is Pillow's
/// `DecompressionBombError` threshold (twice `Image.MAX_IMAGE_PIXELS`): at most 512 MiB of RGB.
pub const MAX_IMAGE_PIXELS: u64 = 178_956_970;

/// The error detail for an image of `width × height` over [`MAX_IMAGE_PIXELS`], `None` within.
pub(crate) fn over_pixel_limit(width: u32, height: u32) -> Option<String> {
    let pixels = u64::from(width) * u64::from(height);
    (pixels > MAX_IMAGE_PIXELS).then(|| {
        format!(
            "the header declares {width}x{height} = {pixels} pixels, over the limit of \
             {MAX_IMAGE_PIXELS} (gps_ssl::dataset::MAX_IMAGE_PIXELS)"
        )
    })
}

/// A decoded u8 image, row-major `H×W×C` (interleaved channels), `C ∈ {1, 3}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Channels: 1 (grey) or 3 (RGB).
    pub channels: u8,
    /// `height * width * channels` bytes.
    pub data: Vec<u8>,
}

impl Image {
    /// Wraps raw `H×W×C` bytes.
    ///
    /// # Panics
    /// When `data.len() != height * width * channels` or `channels ∉ {1, 3}` (a programmer error).
    pub fn new(width: u32, height: u32, channels: u8, data: Vec<u8>) -> Self {
        assert!(
            channels == 1 || channels == 3,
            "channels must be 1 or 3, got {channels}"
        );
        assert_eq!(
            data.len(),
            width as usize * height as usize * channels as usize,
            "image buffer size does not match {width}x{height}x{channels}"
        );
        Image {
            width,
            height,
            channels,
            data,
        }
    }

    /// Pixel `(x, y)` channel `c`.
    ///
    /// # Panics
    /// When the coordinates are out of bounds.
    pub fn at(&self, x: u32, y: u32, c: u8) -> u8 {
        let idx =
            (y as usize * self.width as usize + x as usize) * self.channels as usize + c as usize;
        self.data[idx]
    }
}
