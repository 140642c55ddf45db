// Shared helpers for the tests and the loader benchmark: an in-memory `DataSource`, a small IDX
// reader (kept here so the tests do not depend on the dataset stage's own reader), and the
// setup venv's Python for independent references.
#![allow(dead_code)]

use flate2::read::GzDecoder;
use gps_ssl::{
    dataset::{DataSource, Image, Sample},
    Error, Result,
};
use std::io::Read;
use std::path::Path;

/// Images held in memory; keys `mem:<i>`; `corrupt` lists ids whose `get` fails.
pub struct VecSource {
    pub images: Vec<Image>,
    pub labels: Vec<i64>,
    pub corrupt: Vec<usize>,
    pub delay: std::time::Duration,
}

impl VecSource {
    pub fn new(images: Vec<Image>, labels: Vec<i64>) -> Self {
        VecSource {
            images,
            labels,
            corrupt: vec![],
            delay: std::time::Duration::ZERO,
        }
    }
}

impl DataSource for VecSource {
    fn len(&self) -> usize {
        self.images.len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        if self.corrupt.contains(&index) {
            return Err(Error::Decode {
                key: format!("mem:{index}"),
                detail: "truncated".into(),
            });
        }
        let image = self
            .images
            .get(index)
            .cloned()
            .ok_or_else(|| Error::invalid("index", format!("{index} out of range")))?;
        Ok(Sample {
            id: index as u64,
            key: format!("mem:{index}"),
            label: Some(self.labels[index]),
            image,
        })
    }
    fn key(&self, index: usize) -> Result<String> {
        Ok(format!("mem:{index}"))
    }
    fn label(&self, index: usize) -> Result<Option<i64>> {
        Ok(self.labels.get(index).copied())
    }
    fn fingerprint(&self) -> String {
        format!("mem-{}", self.images.len())
    }
    fn describe(&self) -> String {
        format!("memory ({} samples)", self.images.len())
    }
    /// The images' channel count when they all share one (Fashion-MNIST: grey).
    fn channels(&self) -> Option<u8> {
        let c = self.images.first()?.channels;
        self.images.iter().all(|i| i.channels == c).then_some(c)
    }
}

fn read_gz(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Reads the first `limit` images (and labels) of an IDX pair (gzip).
pub fn read_idx(images: &Path, labels: &Path, limit: usize) -> VecSource {
    let raw = read_gz(images);
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    assert_eq!(be(&raw[0..4]), 0x0803);
    let (n, h, w) = (be(&raw[4..8]), be(&raw[8..12]), be(&raw[12..16]));
    let n = n.min(limit);
    let lab = read_gz(labels);
    let images = (0..n)
        .map(|i| {
            let s = 16 + i * h * w;
            Image::new(w as u32, h as u32, 1, raw[s..s + h * w].to_vec())
        })
        .collect();
    let labels = (0..n).map(|i| lab[8 + i] as i64).collect();
    VecSource::new(images, labels)
}

/// The repository's Fashion-MNIST test subset (first `limit` of its 2,000 images).
pub fn fashion(limit: usize) -> VecSource {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist");
    read_idx(
        &root.join("t10k-images-idx3-ubyte.gz"),
        &root.join("t10k-labels-idx1-ubyte.gz"),
        limit,
    )
}

/// The bundled 2,000 Fashion-MNIST test images (28×28) and labels, un-gzipped.
pub fn fashion_t10k() -> (Vec<u8>, Vec<u8>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist");
    let gunzip = |name: &str| {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(root.join(name)).unwrap())
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    (
        gunzip("t10k-images-idx3-ubyte.gz"),
        gunzip("t10k-labels-idx1-ubyte.gz"),
    )
}

/// Writes images `range` of the bundled test set as the raw IDX pair `<dir>/<name>-…` and
/// returns the dataset spec (the prefix `<dir>/<name>`).
pub fn tiny_idx(dir: &Path, name: &str, range: std::ops::Range<usize>) -> String {
    let (images, labels) = fashion_t10k();
    let n = range.len() as u32;
    let mut img = vec![0, 0, 8, 3];
    img.extend(n.to_be_bytes());
    img.extend(28u32.to_be_bytes());
    img.extend(28u32.to_be_bytes());
    img.extend(&images[16 + range.start * 784..16 + range.end * 784]);
    let mut lab = vec![0, 0, 8, 1];
    lab.extend(n.to_be_bytes());
    lab.extend(&labels[8 + range.start..8 + range.end]);
    std::fs::write(dir.join(format!("{name}-images-idx3-ubyte")), img).unwrap();
    std::fs::write(dir.join(format!("{name}-labels-idx1-ubyte")), lab).unwrap();
    dir.join(name).display().to_string()
}

/// Exact cosine k-NN lists (self excluded) of `vectors` (`[n, dim]` row-major): the reference
/// the tests compare cached, re-mined and per-round lists with.
#[allow(dead_code)]
pub fn exact_cosine_lists(vectors: &[f32], dim: usize, k: usize) -> gps_ssl::knn::NeighbourLists {
    gps_ssl::knn::NeighbourBuilder::new(vectors, dim)
        .k(k)
        .metric(gps_ssl::knn::Metric::Cosine)
        .method(gps_ssl::knn::KnnMethod::Exact)
        .include_self(false)
        .build()
        .unwrap()
        .run()
        .unwrap()
        .lists
}

/// Runs `script` with the setup's venv Python (`python -c script dir`), panicking with its
/// stderr when it fails: the independent references (Pillow) of the image tests.
pub fn venv_python(script: &str, dir: &Path) {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let out = std::process::Command::new(venv)
        .arg("-c")
        .arg(script)
        .arg(dir)
        .output()
        .expect("the setup's .venv python (scripts/setup.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
