//! Test/example helper: Fashion-MNIST pairs (image, horizontally flipped image) read straight
//! from the IDX files, until the pair loader lands. Images are 2×2 average-pooled to 14 px and
//! zero-padded to 16 px, then normalised with the dataset mean/std.
#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;

use gps_ssl::loader::PairBatch;

/// The IDX training images, from the repo's bundled copy or the Debian package.
pub fn images_path() -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist");
    for dir in [repo, PathBuf::from("/usr/share/datasets/fashion-mnist")] {
        let p = dir.join("train-images-idx3-ubyte.gz");
        if p.exists() {
            return p;
        }
    }
    panic!("Fashion-MNIST not found: install Debian `dataset-fashion-mnist`");
}

/// The first `n` training images as 16×16 normalised f32 (`[n, 1, 16, 16]`).
pub fn load_images(n: usize) -> Vec<f32> {
    let path = images_path();
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).expect("open idx"))
        .read_to_end(&mut raw)
        .expect("gunzip idx");
    assert_eq!(&raw[..4], &[0, 0, 8, 3], "IDX image magic");
    let count = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]) as usize;
    assert!(n <= count);
    let pixels = &raw[16..];
    let mut out = vec![0f32; n * 256];
    let (mean, std) = (0.2860f32, 0.3530f32);
    for i in 0..n {
        let img = &pixels[i * 784..(i + 1) * 784];
        for y in 0..16 {
            for x in 0..16 {
                let v = if (1..15).contains(&y) && (1..15).contains(&x) {
                    let (sy, sx) = (2 * (y - 1), 2 * (x - 1));
                    let s: u32 = [(0, 0), (0, 1), (1, 0), (1, 1)]
                        .iter()
                        .map(|(dy, dx)| img[(sy + dy) * 28 + sx + dx] as u32)
                        .sum();
                    s as f32 / (4.0 * 255.0)
                } else {
                    0.0
                };
                out[i * 256 + y * 16 + x] = (v - mean) / std;
            }
        }
    }
    out
}

/// Horizontal flip of `[n, 1, 16, 16]`.
pub fn flip(images: &[f32]) -> Vec<f32> {
    let mut out = images.to_vec();
    for (o, i) in out.chunks_exact_mut(16).zip(images.chunks_exact(16)) {
        for x in 0..16 {
            o[x] = i[15 - x];
        }
    }
    out
}

/// Batch `b` of size `batch` from `images` (`[n, 1, 16, 16]`), wrapping around: view a is
/// the image, view b its flip, ids are positions.
pub fn flip_batch(images: &[f32], batch: usize, b: usize) -> PairBatch {
    let n = images.len() / 256;
    let ids: Vec<u64> = (0..batch).map(|i| ((b * batch + i) % n) as u64).collect();
    let view_a: Vec<f32> = ids
        .iter()
        .flat_map(|&i| images[i as usize * 256..(i as usize + 1) * 256].to_vec())
        .collect();
    let view_b = flip(&view_a);
    PairBatch {
        view_a,
        view_b,
        shape: [batch, 1, 16, 16],
        anchor_ids: ids.clone(),
        partner_ids: ids,
        labels: None,
    }
}

/// [`flip_batch`]es `0..per_epoch` of every epoch as a training source (resumable mid-epoch).
pub fn flip_source(
    images: &[f32],
    batch: usize,
    per_epoch: usize,
) -> impl gps_ssl::train::PairSource + '_ {
    gps_ssl::train::FnSource::new(per_epoch, move |_epoch, start| {
        (start..per_epoch)
            .map(move |b| Ok::<PairBatch, gps_ssl::Error>(flip_batch(images, batch, b)))
    })
}
