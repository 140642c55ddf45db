//! Truncated-file checks for encoded images.
//!
//! The `image` crate's JPEG decoder accepts a file cut short and fills the missing scan lines
//! with grey; Pillow (and therefore the reference Python pipelines) refuses such a file by
//! default ("image file is truncated"). Before decoding, [`check_complete`] walks the file's
//! structure and refuses a JPEG that ends before its end-of-image marker and a PNG that ends
//! before its `IEND` chunk. Bytes after the end marker (padding, appended metadata) are
//! allowed, as Pillow allows them.

use image::ImageFormat;

/// `Err(detail)` when `bytes` of `format` end before the format's end marker; `Ok` for
/// complete files and for formats without a check.
pub(crate) fn check_complete(bytes: &[u8], format: ImageFormat) -> Result<(), String> {
    match format {
        ImageFormat::Jpeg => jpeg_complete(bytes),
        ImageFormat::Png => png_complete(bytes),
        _ => Ok(()),
    }
}

/// Walks the JPEG marker segments (skipping each segment by its length, so thumbnails inside
/// APPn segments are not mistaken for the end) and the entropy-coded data after each
/// start-of-scan, until the end-of-image marker `FF D9`.
fn jpeg_complete(bytes: &[u8]) -> Result<(), String> {
    let n = bytes.len();
    let truncated = |at: usize, what: &str| {
        Err(format!(
            "truncated JPEG: the data ends {what} at byte {at} of {n}, before the end-of-image \
             marker FF D9"
        ))
    };
    if n < 2 || bytes[0] != 0xFF || bytes[1] != 0xD8 {
        return Err("not a JPEG stream: no start-of-image marker FF D8".into());
    }
    let mut i = 2;
    loop {
        // A marker: one or more 0xFF fill bytes, then its code.
        if i >= n {
            return truncated(n, "between segments");
        }
        if bytes[i] != 0xFF {
            return Err(format!(
                "corrupt JPEG: byte {i} of {n} is {:#04x} where a marker (FF xx) was expected",
                bytes[i]
            ));
        }
        while i < n && bytes[i] == 0xFF {
            i += 1;
        }
        let Some(&code) = bytes.get(i) else {
            return truncated(n, "inside a marker");
        };
        i += 1;
        match code {
            0xD9 => return Ok(()),
            // Markers without a length: SOI, RST0–7, TEM.
            0xD8 | 0xD0..=0xD7 | 0x01 => continue,
            _ => {}
        }
        if i + 2 > n {
            return truncated(n, "inside a segment header");
        }
        let len = u16::from_be_bytes([bytes[i], bytes[i + 1]]) as usize;
        if len < 2 {
            return Err(format!(
                "corrupt JPEG: segment FF {code:02X} at byte {} has length {len}",
                i - 2
            ));
        }
        if i + len > n {
            return truncated(n, &format!("inside segment FF {code:02X}"));
        }
        i += len;
        if code == 0xDA {
            // Entropy-coded data: runs until a marker other than a stuffed 0xFF (FF 00) or a
            // restart marker (FF D0–D7).
            loop {
                let Some(off) = memchr::memchr(0xFF, &bytes[i..]) else {
                    return truncated(n, "inside the scan data");
                };
                let mut j = i + off + 1;
                while j < n && bytes[j] == 0xFF {
                    j += 1;
                }
                match bytes.get(j) {
                    None => return truncated(n, "inside the scan data"),
                    Some(0x00) | Some(0xD0..=0xD7) => i = j + 1,
                    Some(_) => {
                        i += off;
                        break;
                    }
                }
            }
        }
    }
}

/// Walks the PNG chunks (length, type, data, CRC) until `IEND`.
fn png_complete(bytes: &[u8]) -> Result<(), String> {
    const SIGNATURE: [u8; 8] = *b"\x89PNG\r\n\x1a\n";
    let n = bytes.len();
    if n < 8 || bytes[..8] != SIGNATURE {
        return Err("not a PNG stream: no PNG signature".into());
    }
    let mut i = 8;
    loop {
        if i + 8 > n {
            return Err(format!(
                "truncated PNG: the data ends at byte {n} inside a chunk header, before the IEND \
                 chunk"
            ));
        }
        let len = u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]) as usize;
        let kind = &bytes[i + 4..i + 8];
        let end = i.saturating_add(12).saturating_add(len);
        if end > n {
            return Err(format!(
                "truncated PNG: chunk {} at byte {i} needs {} bytes but the data ends at byte \
                 {n}, before the IEND chunk",
                String::from_utf8_lossy(kind),
                len + 12
            ));
        }
        if kind == b"IEND" {
            return Ok(());
        }
        i = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real (tiny) PNG and JPEG encoded by the `image` crate.
    fn encoded(format: ImageFormat) -> Vec<u8> {
        let img =
            image::RgbImage::from_fn(24, 16, |x, y| image::Rgb([x as u8 * 10, y as u8 * 15, 99]));
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut out, format)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn complete_files_pass_with_or_without_trailing_bytes() {
        for format in [ImageFormat::Jpeg, ImageFormat::Png] {
            let mut bytes = encoded(format);
            assert_eq!(check_complete(&bytes, format), Ok(()), "{format:?}");
            bytes.extend_from_slice(&[0, 0, 0, 0]);
            assert_eq!(
                check_complete(&bytes, format),
                Ok(()),
                "{format:?} + padding"
            );
        }
    }

    #[test]
    fn every_cut_of_a_file_is_refused() {
        for format in [ImageFormat::Jpeg, ImageFormat::Png] {
            let bytes = encoded(format);
            for cut in 0..bytes.len() {
                let err = check_complete(&bytes[..cut], format);
                assert!(
                    err.is_err(),
                    "{format:?} cut at {cut} of {} accepted",
                    bytes.len()
                );
            }
        }
    }

    #[test]
    fn a_thumbnail_end_marker_inside_a_segment_is_not_the_end() {
        // SOI, an APP1 segment that holds FF D9, then the data stops: truncated.
        let bytes = [0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD8, 0xFF, 0xD9];
        let err = check_complete(&bytes, ImageFormat::Jpeg).unwrap_err();
        assert!(err.contains("truncated JPEG"), "{err}");
    }
}
