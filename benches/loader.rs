//! Augmentation + pair-assembly throughput, pairs/s on one core, side by side with Python peers.
//!
//! `cargo bench --bench loader` (Fashion-MNIST from /usr/share/datasets/fashion-mnist for 28,
//! 32 and 96 px; the foolbox ImageNet JPEGs for 224 px). Peers run `benches/peers/aug_peer.py`
//! on the same images and recipe: torchvision through a `torch.utils.data.DataLoader` with
//! Debian's `/usr/bin/python3` (`scripts/install_bench_peers.sh`) and albumentations from the
//! project venv (`scripts/requirements-bench.txt`). Every side uses one thread.
//! The `jpeg-*` rows decode in the loop: each pair reads its file and decodes it (gps-ssl: an
//! `ImageFolderSource`, libjpeg-turbo, DCT-scaled where the crops allow; albumentations:
//! `cv2.imread`; torchvision: PIL), from the foolbox files as they are (progressive) and
//! re-encoded by Pillow as baseline 4:2:0 quality 90, what ImageNet's training JPEGs are. Their
//! `full-decode` line is gps-ssl with `reduced_decode` off.
//! Environment: `GPS_FASHION_IDX` (images .gz), `GPS_FOOLBOX_DIR` (folder of imagenet_*.jpg),
//! `GPS_BENCH_PAIRS` (pairs per Rust measurement, default 4000), `GPS_BENCH_QUICK=1` (skip peers),
//! `GPS_BENCH_ONLY=<text>` (only the rows whose case name contains it, e.g. `jpeg-baseline`),
//! `GPS_BENCH_WORKERS=1,2` (the JPEG rows on 16 copies of each file, so that an epoch has 5
//! batches, on the calling thread and then with that many loader threads, and their speed-up; the
//! machine's cores bound it), `GPS_BENCH_GPS=1` (the JPEG rows with GPS pairs: each image with
//! one of its 5 next files, two decodes a pair; no peer), `GPS_BENCH_FULL=0` (skip the
//! `full-decode` and `cached` lines' measurements, e.g. to profile the reduced decodes alone).
//! The `cached` lines are `gps-ssl train --cache-decoded`: the folder behind a `DecodedCache`
//! filled by a first pass, as every epoch after the first reads it (whole decodes); their peer
//! is the `imagenet` line (albumentations from images decoded up front).

#[path = "../tests/common/mod.rs"]
mod common;

use common::VecSource;
use gps_ssl::{
    augment::AugRecipe,
    dataset::{DataSource, DecodedCache, Image, ImageFolderSource},
    knn::NeighbourLists,
    loader::PairLoaderBuilder,
    sampler::GpsSampler,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

fn fashion(path: &Path) -> VecSource {
    let labels = path.with_file_name("t10k-labels-idx1-ubyte.gz");
    common::read_idx(path, &labels, 2000)
}

fn jpegs(dir: &Path) -> Option<VecSource> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with("imagenet_") && n.ends_with(".jpg")
        })
        .collect();
    files.sort();
    let images: Vec<Image> = files
        .iter()
        .filter_map(|f| image::open(f).ok())
        .map(|im| {
            let rgb = im.to_rgb8();
            Image::new(rgb.width(), rgb.height(), 3, rgb.into_raw())
        })
        .collect();
    if images.is_empty() {
        return None;
    }
    let n = images.len();
    Some(VecSource::new(images, vec![0; n]))
}

/// Image folders of the foolbox JPEGs under `root`: `progressive/img/` (copies of the files) and
/// `baseline/img/` (Pillow re-encodes, baseline 4:2:0 quality 90). `None` without the files or
/// the venv's Pillow.
fn jpeg_folders(foolbox: &Path, root: &Path, python: &str) -> Option<[PathBuf; 2]> {
    let prog = root.join("progressive/img");
    let base = root.join("baseline/img");
    std::fs::create_dir_all(&prog).ok()?;
    std::fs::create_dir_all(&base).ok()?;
    let mut n = 0;
    for e in std::fs::read_dir(foolbox).ok()?.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with("imagenet_") && name.ends_with(".jpg") {
            std::fs::copy(e.path(), prog.join(&name)).ok()?;
            n += 1;
        }
    }
    let script = "import os, sys\nfrom PIL import Image\nsrc, dst = sys.argv[1:3]\n\
        for f in os.listdir(src):\n    Image.open(os.path.join(src, f)).convert('RGB').save(\
        os.path.join(dst, f), quality=90, subsampling=2, progressive=False)\n";
    let ok = Command::new(python)
        .args(["-c", script])
        .arg(&prog)
        .arg(&base)
        .status()
        .ok()?
        .success();
    (n > 0 && ok).then_some([prog, base])
}

/// `copies` copies of every file of `from` in `to` (created; `name` becomes `name.k.jpg`).
fn replicate(from: &Path, to: &Path, copies: usize) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)?.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let stem = name.trim_end_matches(".jpg");
        for k in 0..copies {
            std::fs::copy(e.path(), to.join(format!("{stem}.{k}.jpg")))?;
        }
    }
    Ok(to.to_path_buf())
}

/// Pairs/s of batches of 64 assembled on the calling thread (`workers(0)`: one core).
fn rust_rate(data: Arc<dyn DataSource>, recipe: AugRecipe, pairs: usize) -> f64 {
    rust_rate_workers(data, recipe, pairs, 0)
}

/// Pairs/s of batches of 64 with `workers` loader threads (0: on the calling thread).
fn rust_rate_workers(
    data: Arc<dyn DataSource>,
    recipe: AugRecipe,
    pairs: usize,
    workers: usize,
) -> f64 {
    rate_of(PairLoaderBuilder::new(data), recipe, pairs, workers)
}

/// Pairs/s of GPS pairs (each image with one of its 5 next images, two decodes a pair) on the
/// calling thread.
fn gps_rate(data: Arc<dyn DataSource>, recipe: AugRecipe, pairs: usize) -> f64 {
    let n = data.len() as u32;
    let k = 5;
    let ids: Vec<u32> = (0..n)
        .flat_map(|i| (1..=k).map(move |j| (i + j) % n))
        .collect();
    let lists = NeighbourLists::new(k as usize, ids, vec![0.0; (n * k) as usize]).expect("lists");
    let builder = PairLoaderBuilder::new(data).sampler(GpsSampler::new(Arc::new(lists)));
    rate_of(builder, recipe, pairs, 0)
}

fn rate_of(builder: PairLoaderBuilder, recipe: AugRecipe, pairs: usize, workers: usize) -> f64 {
    let loader = builder
        .recipe(recipe)
        .batch_size(64)
        .workers(workers)
        .seed(7)
        .build()
        .expect("loader");
    let mut done = 0;
    let start = Instant::now();
    let mut epoch = 0;
    while done < pairs {
        for b in loader.iter_epoch(epoch) {
            done += b.expect("batch").len();
            if done >= pairs {
                break;
            }
        }
        epoch += 1;
    }
    done as f64 / start.elapsed().as_secs_f64()
}

#[allow(clippy::too_many_arguments)]
fn peer(
    python: &str,
    lib: &str,
    recipe: &str,
    size: u32,
    source: &str,
    path: &Path,
    pairs: usize,
    extra: &[&str],
) -> Option<f64> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/aug_peer.py");
    let out = Command::new(python)
        .arg(script)
        .args([lib, recipe, &size.to_string(), source])
        .arg(path)
        .arg(pairs.to_string())
        .args(extra)
        .env("OMP_NUM_THREADS", "1")
        .env("MKL_NUM_THREADS", "1")
        // The allocator setting of `gps_ssl::process::reuse_freed_memory` (which `main` makes for
        // the Rust side, as the `gps-ssl` binary does), through glibc's tunables.
        .env("GLIBC_TUNABLES", GLIBC_TUNABLES)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.lines().last()?)
        .ok()
        .or_else(|| {
            eprintln!(
                "{lib} failed: {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            None
        })?;
    v["pairs_per_s"].as_f64()
}

/// `gps_ssl::process::reuse_freed_memory` as glibc tunables, for the Python peers.
const GLIBC_TUNABLES: &str =
    "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=2147483647";

fn fmt(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.0}"))
}

fn ratio(a: f64, b: Option<f64>) -> String {
    b.map_or("n/a".into(), |b| format!("{:.1}x", a / b))
}

fn main() {
    // Freed batches stay in the heap for the next one instead of being unmapped and faulted in
    // again, as in `gps-ssl train` (its `main` makes the same call); the peers get the same
    // setting through GLIBC_TUNABLES.
    gps_ssl::process::reuse_freed_memory();
    let fashion_path = std::env::var("GPS_FASHION_IDX")
        .unwrap_or_else(|_| "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz".into());
    let foolbox = std::env::var("GPS_FOOLBOX_DIR").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/.cache/assets/foolbox/data").into()
    });
    let pairs: usize = std::env::var("GPS_BENCH_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    let quick = std::env::var("GPS_BENCH_QUICK").is_ok();
    let only = std::env::var("GPS_BENCH_ONLY").unwrap_or_default();
    let workers: Vec<usize> = std::env::var("GPS_BENCH_WORKERS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|w| w.trim().parse().ok())
        .collect();
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let venv = venv.to_string_lossy().to_string();

    let fashion_path = PathBuf::from(fashion_path);
    let fm: Arc<dyn DataSource> = Arc::new(fashion(&fashion_path));
    let jp: Option<Arc<dyn DataSource>> = jpegs(Path::new(&foolbox)).map(|s| Arc::new(s) as _);
    if jp.is_none() {
        eprintln!("no foolbox JPEGs under {foolbox}: 224 px rows skipped (run scripts/setup.sh)");
    }

    let tmp = tempfile::tempdir().expect("temp dir");
    let folders = jpeg_folders(Path::new(&foolbox), tmp.path(), &venv);
    if folders.is_none() {
        eprintln!("no foolbox JPEGs or Pillow: jpeg-* rows skipped (run scripts/setup.sh)");
    }

    println!("pairs/s on one core (batch 64, two views per pair); ratio = gps-ssl / peer");
    println!(
        "{:<32} {:>10} {:>12} {:>8} {:>14} {:>8}",
        "case", "gps-ssl", "torchvision", "ratio", "albumentations", "ratio"
    );
    for (recipe_name, make) in [
        ("rhflip", AugRecipe::rhflip as fn() -> AugRecipe),
        ("simclr", AugRecipe::simclr),
    ] {
        for size in [28u32, 32, 96, 224] {
            let (data, source, path) = if size == 224 {
                match &jp {
                    Some(d) => (d.clone(), "jpeg", PathBuf::from(&foolbox)),
                    None => continue,
                }
            } else {
                (fm.clone(), "idx", fashion_path.clone())
            };
            let name = format!(
                "{recipe_name}/{size}px/{}",
                if size == 224 { "imagenet" } else { "fmnist" }
            );
            if !name.contains(&only) {
                continue;
            }
            let n = if size >= 96 { pairs / 8 } else { pairs };
            let recipe = make().with_output_size(size, size);
            let rust = rust_rate(data, recipe, n);
            let (tv, alb) = if quick {
                (None, None)
            } else {
                let pn = if size >= 96 { n / 2 } else { n };
                (
                    peer(
                        "/usr/bin/python3",
                        "torchvision",
                        recipe_name,
                        size,
                        source,
                        &path,
                        pn,
                        &[],
                    ),
                    peer(
                        &venv,
                        "albumentations",
                        recipe_name,
                        size,
                        source,
                        &path,
                        pn,
                        &[],
                    ),
                )
            };
            println!(
                "{:<32} {:>10.0} {:>12} {:>8} {:>14} {:>8}",
                name,
                rust,
                fmt(tv),
                ratio(rust, tv),
                fmt(alb),
                ratio(rust, alb)
            );
        }
        for (kind, folder) in folders
            .iter()
            .flat_map(|f| [("progressive", &f[0]), ("baseline", &f[1])])
        {
            if !format!("{recipe_name}/224px/jpeg-{kind}").contains(&only) {
                continue;
            }
            let root = folder.parent().expect("folder/img");
            let data: Arc<dyn DataSource> =
                Arc::new(ImageFolderSource::open(root).expect("jpeg folder"));
            let n = pairs / 8;
            let recipe = make().with_output_size(224, 224);
            let rust = rust_rate(data.clone(), recipe.clone(), n);
            if !workers.is_empty() {
                // The 20 foolbox files make one batch an epoch, which one thread assembles: the
                // worker rows read 16 copies of each (5 batches an epoch).
                let many = replicate(folder, &tmp.path().join(format!("{kind}-x16/img")), 16)
                    .expect("copies of the JPEG folder");
                let many: Arc<dyn DataSource> = Arc::new(
                    ImageFolderSource::open(many.parent().expect("folder/img")).expect("copies"),
                );
                let one = rust_rate(many.clone(), recipe.clone(), n);
                println!(
                    "{:<32} {:>10.0}   (16 copies of each file, on the calling thread)",
                    format!("{recipe_name}/224px/jpeg-{kind}/x16"),
                    one
                );
                for &w in &workers {
                    let rate = rust_rate_workers(many.clone(), recipe.clone(), n * w.max(1), w);
                    println!(
                        "{:<32} {:>10.0}   ({:.2}x the x16 row)",
                        format!("{recipe_name}/224px/jpeg-{kind}/x16/workers={w}"),
                        rate,
                        rate / one
                    );
                }
            }
            if std::env::var("GPS_BENCH_GPS").is_ok() {
                let alb = if quick {
                    None
                } else {
                    peer(
                        &venv,
                        "albumentations",
                        recipe_name,
                        224,
                        "jpegfile",
                        folder,
                        n / 2,
                        &["gps"],
                    )
                };
                for (label, r) in [
                    ("gps", recipe.clone()),
                    ("gps/full-decode", recipe.clone().with_reduced_decode(false)),
                ] {
                    let v = gps_rate(data.clone(), r, n);
                    println!(
                        "{:<32} {:>10.0} {:>12} {:>8} {:>14} {:>8}",
                        format!("{recipe_name}/224px/jpeg-{kind}/{label}"),
                        v,
                        "n/a",
                        "n/a",
                        fmt(alb),
                        ratio(v, alb)
                    );
                }
            }
            let skip_full = std::env::var("GPS_BENCH_FULL").is_ok_and(|v| v == "0");
            // `--cache-decoded`: the folder behind a DecodedCache, filled by a first pass (what
            // every epoch after the first reads).
            let cached = if skip_full {
                f64::NAN
            } else {
                let cache: Arc<dyn DataSource> = Arc::new(DecodedCache::new(data.clone(), 8 << 30));
                for i in 0..cache.len() {
                    cache.get(i).expect("decode");
                }
                rust_rate(cache, recipe.clone().with_reduced_decode(false), n)
            };
            let full = if skip_full {
                f64::NAN
            } else {
                rust_rate(data, recipe.with_reduced_decode(false), n)
            };
            let (tv, alb) = if quick {
                (None, None)
            } else {
                let run = |python: &str, lib: &str| {
                    peer(
                        python,
                        lib,
                        recipe_name,
                        224,
                        "jpegfile",
                        folder,
                        n / 2,
                        &[],
                    )
                };
                (
                    run("/usr/bin/python3", "torchvision"),
                    run(&venv, "albumentations"),
                )
            };
            for (name, v, tv, alb) in [
                (format!("{recipe_name}/224px/jpeg-{kind}"), rust, tv, alb),
                (
                    format!("{recipe_name}/224px/jpeg-{kind}/full-decode"),
                    full,
                    tv,
                    alb,
                ),
                (
                    format!("{recipe_name}/224px/jpeg-{kind}/cached"),
                    cached,
                    None,
                    None,
                ),
            ] {
                println!(
                    "{:<32} {:>10.0} {:>12} {:>8} {:>14} {:>8}",
                    name,
                    v,
                    fmt(tv),
                    ratio(v, tv),
                    fmt(alb),
                    ratio(v, alb)
                );
            }
        }
    }
}
