//! Embedding throughput: this crate vs a plain Python onnxruntime + Pillow loop, same images, same
//! model (EfficientNet-Lite0), same resolution and ONNX Runtime thread count, in one run.
//!
//! `cargo bench --bench embed` (env: `GPS_BENCH_N` images, default 1024; `GPS_BENCH_SIZE` px,
//! default 112; `GPS_BENCH_THREADS`, default all cores; `GPS_BENCH_BATCH`, default 64).
//! The images are foolbox's 20 Fashion-MNIST 28×28 PNGs, cycled to N files on disk, so both sides
//! decode PNGs, upsample to the resolution, normalise, run the prior and L2-normalise; the Rust
//! side also writes the Parquet output.

use gps_ssl::{
    dataset::{DataSource, Image, Sample},
    embed::{EmbedJob, Embedder, PriorManifest},
    progress::NoProgress,
};
use std::path::PathBuf;
use std::time::Instant;

struct PngFiles(Vec<PathBuf>);

impl DataSource for PngFiles {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&self, index: usize) -> gps_ssl::Result<Sample> {
        let path = &self.0[index];
        let key = path.display().to_string();
        let img = image::open(path).map_err(|e| gps_ssl::Error::Decode {
            key: key.clone(),
            detail: e.to_string(),
        })?;
        let image = if img.color().channel_count() == 1 {
            let g = img.to_luma8();
            Image::new(g.width(), g.height(), 1, g.into_raw())
        } else {
            let c = img.to_rgb8();
            Image::new(c.width(), c.height(), 3, c.into_raw())
        };
        Ok(Sample {
            id: index as u64,
            key,
            label: None,
            image,
        })
    }
    fn key(&self, index: usize) -> gps_ssl::Result<String> {
        Ok(self.0[index].display().to_string())
    }
    fn label(&self, _index: usize) -> gps_ssl::Result<Option<i64>> {
        Ok(None)
    }
    fn fingerprint(&self) -> String {
        format!("bench-{}", self.0.len())
    }
    fn describe(&self) -> String {
        format!("{} PNG files", self.0.len())
    }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let n = env_or("GPS_BENCH_N", 1024);
    let size = env_or("GPS_BENCH_SIZE", 112) as u32;
    let threads = env_or("GPS_BENCH_THREADS", cores);
    let batch = env_or("GPS_BENCH_BATCH", 64);

    let foolbox = root.join(".cache/assets/foolbox/data");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&foolbox)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup.sh)", foolbox.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("fashionMNIST_")
        })
        .collect();
    sources.sort();
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..n)
        .map(|i| {
            let f = dir.path().join(format!("{i:06}.png"));
            std::fs::copy(&sources[i % sources.len()], &f).unwrap();
            f
        })
        .collect();
    let listing = dir.path().join("files.txt");
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    std::fs::write(&listing, names.join("\n")).unwrap();

    // Rust: the full EmbedJob pipeline (decode workers + ORT + Parquet output).
    let prior = PriorManifest::load(root.join("models/efficientnet_lite0.toml")).unwrap();
    let onnx = prior.onnx.clone();
    let mut embedder = Embedder::builder(prior)
        .resolution(size)
        .threads(threads)
        .batch_size(batch)
        .build()
        .unwrap();
    let warm: Vec<Image> = (0..batch)
        .map(|i| PngFiles(files.clone()).get(i % n).unwrap().image)
        .collect();
    embedder.embed_images(&warm).unwrap();
    let source = PngFiles(files.clone());
    let out = dir.path().join("e.parquet");
    let t = Instant::now();
    EmbedJob::new(&out)
        .run(&mut embedder, &source, &NoProgress)
        .unwrap();
    let rust = n as f64 / t.elapsed().as_secs_f64();

    // Python peer, same files, model, resolution, threads, batch size.
    let python = root.join(".venv/bin/python");
    let output = std::process::Command::new(&python)
        .arg(root.join("benches/peers/embed_peer.py"))
        .arg(&onnx)
        .args([size.to_string(), threads.to_string(), batch.to_string()])
        .arg(&listing)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup.sh)", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "peer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let peer: f64 = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("images_per_s="))
        .next_back()
        .and_then(|v| v.parse().ok())
        .expect("peer printed no images_per_s");

    println!("embed/lite0/{n}x28px->{size}px/threads{threads}/batch{batch}");
    println!("{:<40} {:>12}", "implementation", "images/s");
    println!("{:<40} {:>12.1}", "gps-ssl (Rust, ort, EmbedJob)", rust);
    println!("{:<40} {:>12.1}", "Python onnxruntime + Pillow loop", peer);
    println!("{:<40} {:>12.2}x", "ratio (Rust / Python)", rust / peer);
}
