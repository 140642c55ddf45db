//! The decoded image type shared by every stage.

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
