//! Embedding throughput: this crate vs a plain Python onnxruntime + Pillow loop, same images, same
//! model (EfficientNet-Lite0), same resolution and ONNX Runtime thread count, in one run.
//!
//! `cargo bench --bench embed` (env: `GPS_BENCH_N` images, default 1024; `GPS_BENCH_SIZE` px,
//! default 112, or 224 for `imagenet`; `GPS_BENCH_THREADS`, default all cores; `GPS_BENCH_BATCH`,
//! default 64; `GPS_BENCH_IMAGES`, `fashion` or `imagenet`; `GPS_BENCH_REPLICAS`, comma-separated
//! replica counts to run, default the embedder's default; `GPS_BENCH_SLICE`, images per ONNX
//! Runtime call on the Rust side, default the embedder's; `GPS_BENCH_ROUNDS`, default 3: rounds
//! of every Rust configuration then the peer, medians printed).
//!
//! The thread count and batch size are the same on both sides: Python gets one session of
//! `threads` intra-op threads (its plain loop); the Rust side shares `threads` among its
//! replicas and runs each batch in ONNX Runtime calls of its default inference slice. The peer
//! also runs in batches of that slice, printed on its own line.
//!
//! - `fashion` (default): foolbox's 20 Fashion-MNIST 28×28 PNGs, cycled to N files on disk.
//! - `imagenet`: foolbox's 20 ImageNet JPEGs (mostly 512×512), re-encoded by Pillow as baseline
//!   4:2:0 quality 90 (what ImageNet's training JPEGs are), cycled to N files.
//!
//! Both sides decode the files (Rust: [`gps_ssl::dataset::decode_image`], libjpeg-turbo for
//! JPEGs; Python: Pillow), resize to the resolution (the same Pillow bilinear filter), normalise,
//! run the prior and L2-normalise; the Rust side also writes the Parquet output.

use gps_ssl::{
    dataset::{decode_image, DataSource, Image, Sample},
    embed::{EmbedJob, Embedder, PriorManifest, DEFAULT_CPU_INFERENCE_BATCH},
    progress::NoProgress,
};
use std::path::{Path, PathBuf};
use std::time::Instant;

struct Files(Vec<PathBuf>);

impl DataSource for Files {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&self, index: usize) -> gps_ssl::Result<Sample> {
        let path = &self.0[index];
        let key = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| gps_ssl::Error::io(path, e))?;
        let image = decode_image(&bytes, &key)?;
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
        format!("{} image files", self.0.len())
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
    let imagenet = std::env::var("GPS_BENCH_IMAGES").is_ok_and(|v| v == "imagenet");
    let n = env_or("GPS_BENCH_N", 1024);
    let size = env_or("GPS_BENCH_SIZE", if imagenet { 224 } else { 112 }) as u32;
    let threads = env_or("GPS_BENCH_THREADS", cores);
    let batch = env_or("GPS_BENCH_BATCH", 64);
    let rounds = env_or("GPS_BENCH_ROUNDS", 3).max(1);
    let python = root.join(".venv/bin/python");

    let foolbox = root.join(".cache/assets/foolbox/data");
    let prefix = if imagenet {
        "imagenet_"
    } else {
        "fashionMNIST_"
    };
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&foolbox)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup.sh)", foolbox.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    sources.sort();
    let dir = tempfile::tempdir().unwrap();
    if imagenet {
        // Baseline re-encodes, as the loader bench makes them.
        let base = dir.path().join("baseline");
        std::fs::create_dir_all(&base).unwrap();
        let script = "import os, sys\nfrom PIL import Image\nout = sys.argv[1]\n\
            for f in sys.argv[2:]:\n    Image.open(f).convert('RGB').save(os.path.join(out, \
            os.path.basename(f)), quality=90, subsampling=2, progressive=False)\n";
        let ok = std::process::Command::new(&python)
            .args(["-c", script])
            .arg(&base)
            .args(&sources)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "Pillow re-encode failed (run scripts/setup.sh)");
        sources = sources
            .iter()
            .map(|p| base.join(p.file_name().unwrap()))
            .collect();
    }
    let ext = if imagenet { "jpg" } else { "png" };
    let files: Vec<PathBuf> = (0..n)
        .map(|i| {
            let f = dir.path().join(format!("{i:06}.{ext}"));
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
    let replica_counts: Vec<Option<usize>> = match std::env::var("GPS_BENCH_REPLICAS") {
        Ok(v) => v
            .split(',')
            .map(|r| Some(r.trim().parse().unwrap()))
            .collect(),
        Err(_) => vec![None],
    };
    let warm: Vec<Image> = (0..batch)
        .map(|i| Files(files.clone()).get(i % n).unwrap().image)
        .collect();
    let source = Files(files.clone());
    let mut embedders: Vec<Embedder> = replica_counts
        .iter()
        .map(|replicas| {
            let mut builder = Embedder::builder(prior.clone())
                .resolution(size)
                .threads(threads)
                .batch_size(batch);
            if let Some(r) = replicas {
                builder = builder.replicas(*r);
            }
            if let Ok(v) = std::env::var("GPS_BENCH_SLICE") {
                builder = builder.inference_batch(v.parse().unwrap());
            }
            let mut embedder = builder.build().unwrap();
            embedder.embed_images(&warm).unwrap();
            embedder
        })
        .collect();
    // Each round runs every Rust configuration and then the peer, so that this VM's drift
    // (up to ±20 % within minutes) reaches both sides alike; the medians are printed.
    let mut rust: Vec<Vec<f64>> = vec![Vec::new(); embedders.len()];
    let mut peer = Vec::new();
    // The peer also runs in batches of our inference slice, to show what of the gap a Python
    // user could close by choosing a smaller batch.
    let small_batch = DEFAULT_CPU_INFERENCE_BATCH;
    let mut peer_small = Vec::new();
    for round in 0..rounds {
        for (e, embedder) in embedders.iter_mut().enumerate() {
            let out = dir.path().join(format!("e{round}-{e}.parquet"));
            let t = Instant::now();
            EmbedJob::new(&out)
                .run(embedder, &source, &NoProgress)
                .unwrap();
            rust[e].push(n as f64 / t.elapsed().as_secs_f64());
            std::fs::remove_file(&out).unwrap();
        }
        peer.push(python_peer(
            &python, &root, &onnx, size, threads, batch, &listing,
        ));
        if small_batch != batch {
            peer_small.push(python_peer(
                &python,
                &root,
                &onnx,
                size,
                threads,
                small_batch,
                &listing,
            ));
        }
    }

    let what = if imagenet {
        "imagenet-jpeg"
    } else {
        "fashion-png-28px"
    };
    println!(
        "embed/lite0/{n}x{what}->{size}px/threads{threads}/batch{batch} (median of {rounds} rounds)"
    );
    println!(
        "{:<44} {:>10} {:>8}   each round",
        "implementation", "images/s", "ratio"
    );
    let peer_median = median(&peer);
    for (embedder, runs) in embedders.iter().zip(&rust) {
        let name = format!("gps-ssl (EmbedJob, {} replicas)", embedder.replicas());
        let m = median(runs);
        println!(
            "{name:<44} {m:>10.1} {:>7.2}x   {}",
            m / peer_median,
            list(runs)
        );
    }
    println!(
        "{:<44} {:>10.1} {:>8}   {}",
        "Python onnxruntime + Pillow loop",
        peer_median,
        "1.00x",
        list(&peer)
    );
    if !peer_small.is_empty() {
        let m = median(&peer_small);
        let name = format!("Python loop in batches of {small_batch}");
        println!(
            "{name:<44} {m:>10.1} {:>7.2}x   {}",
            m / peer_median,
            list(&peer_small)
        );
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.1}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The Python peer on the same files, model, resolution, threads and batch size: images/s.
fn python_peer(
    python: &Path,
    root: &Path,
    onnx: &Path,
    size: u32,
    threads: usize,
    batch: usize,
    listing: &Path,
) -> f64 {
    let output = std::process::Command::new(python)
        .arg(root.join("benches/peers/embed_peer.py"))
        .arg(onnx)
        .args([size.to_string(), threads.to_string(), batch.to_string()])
        .arg(listing)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup.sh)", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "peer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("images_per_s="))
        .next_back()
        .and_then(|v| v.parse().ok())
        .expect("peer printed no images_per_s")
}
