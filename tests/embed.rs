//! Integration tests of the embed stage: Rust vs Python onnxruntime, resumption, shards, bad data.
//!
//! Needs `scripts/setup.sh` to have built `models/efficientnet_lite0.onnx` and fetched the
//! foolbox sample images into `.cache/assets/` (the README's test command runs it).
// The binary and the trainer: the default features.
#![cfg(feature = "cli")]

mod common;

use gps_ssl::{
    dataset::{DataSource, Image, Sample},
    embed::{EmbedJob, Embedder, ExecutionProvider, PriorManifest, ShardSpec},
    progress::NoProgress,
    store::{merge_embeddings, EmbeddingTable},
    Error, Result,
};
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> PathBuf {
    root().join("tests/fixtures")
}

fn lite0() -> PriorManifest {
    PriorManifest::load(root().join("models/efficientnet_lite0.toml"))
        .expect("models/efficientnet_lite0.onnx missing or stale: run scripts/setup.sh")
}

fn tiny() -> PriorManifest {
    PriorManifest::load(fixtures().join("tiny_prior.toml")).unwrap()
}

/// Decodes a PNG/JPEG as grey (1 channel) when it is grey, else RGB.
fn load_image(path: &Path) -> Image {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match img.color().channel_count() {
        1 => {
            let g = img.to_luma8();
            Image::new(g.width(), g.height(), 1, g.into_raw())
        }
        _ => {
            let c = img.to_rgb8();
            Image::new(c.width(), c.height(), 3, c.into_raw())
        }
    }
}

/// An in-memory dataset; `fail_at` makes that one sample fail to decode.
struct VecSource {
    samples: Vec<Sample>,
    fail_at: Option<usize>,
}

impl VecSource {
    fn new(images: Vec<(String, Option<i64>, Image)>) -> Self {
        let samples = images
            .into_iter()
            .enumerate()
            .map(|(i, (key, label, image))| Sample {
                id: i as u64,
                key,
                label,
                image,
            })
            .collect();
        VecSource {
            samples,
            fail_at: None,
        }
    }

    /// `n` seeded random images of mixed sizes and channel counts.
    fn random(n: usize, seed: u64) -> Self {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let images = (0..n)
            .map(|i| {
                let (w, h) = (rng.random_range(8..24u32), rng.random_range(8..24u32));
                let c = if i % 3 == 0 { 1 } else { 3 };
                let data = (0..w * h * c as u32).map(|_| rng.random::<u8>()).collect();
                (
                    format!("img/{i:03}.png"),
                    (i % 4 != 0).then_some((i % 10) as i64),
                    Image::new(w, h, c, data),
                )
            })
            .collect();
        Self::new(images)
    }
}

impl DataSource for VecSource {
    fn len(&self) -> usize {
        self.samples.len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        if Some(index) == self.fail_at {
            return Err(Error::Decode {
                key: self.samples[index].key.clone(),
                detail: "truncated PNG stream".into(),
            });
        }
        self.samples
            .get(index)
            .cloned()
            .ok_or_else(|| Error::invalid("index", format!("{index} out of range")))
    }
    fn key(&self, index: usize) -> Result<String> {
        Ok(self.samples[index].key.clone())
    }
    fn label(&self, index: usize) -> Result<Option<i64>> {
        Ok(self.samples[index].label)
    }
    fn fingerprint(&self) -> String {
        format!("vec-{}", self.samples.len())
    }
    fn describe(&self) -> String {
        format!("vec ({} samples)", self.samples.len())
    }
}

fn reference() -> (Vec<PathBuf>, Vec<Vec<f32>>) {
    let text = std::fs::read_to_string(fixtures().join("embed_reference.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let files = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| fixtures().join(f.as_str().unwrap()))
        .collect();
    let feats = v["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    (files, feats)
}

// The reference comes from tests/fixtures/make_embed_reference.py:
//   img = Image.open(f).convert("RGB").resize((112, 112), Image.BILINEAR)
//   x = ((np.asarray(img, np.float32) - 127) / 128).transpose(2, 0, 1)
//   f = onnxruntime.InferenceSession("models/efficientnet_lite0.onnx").run(["features"], {"input": x[None]})
//   f / np.linalg.norm(f, axis=1, keepdims=True)
// on 4 ImageNet images already at 112 px (no resize on either side), 4 Fashion-MNIST 28x28 grey
// and 2 CIFAR-10 32x32 RGB images (upsampled to 112 on both sides).
#[test]
fn lite0_embeddings_match_python_onnxruntime_reference() {
    let (files, expected) = reference();
    let images: Vec<(String, Option<i64>, Image)> = files
        .iter()
        .map(|f| {
            (
                f.file_name().unwrap().to_string_lossy().into_owned(),
                None,
                load_image(f),
            )
        })
        .collect();
    let source = VecSource::new(images);
    let mut embedder = Embedder::builder(lite0())
        .resolution(112)
        .batch_size(3)
        .threads(2)
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e.parquet");
    EmbedJob::new(&out)
        .row_group_rows(4)
        .workers(2)
        .run(&mut embedder, &source, &NoProgress)
        .unwrap();
    let table = EmbeddingTable::read(&out).unwrap();
    assert_eq!(table.len(), files.len());
    assert_eq!(table.dim, 1280);
    for (i, want) in expected.iter().enumerate() {
        let got = table.vector(i);
        let norm: f32 = got.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "row {i}: norm {norm}");
        let max = got
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(max < 1e-4, "{}: max |rust - python| = {max}", table.keys[i]);
    }
}

// Pillow's pixels: tests/fixtures/embed_in/pillow112_*.png, written by make_embed_reference.py as
//   Image.open(f).convert("RGB").resize((112, 112), Image.BILINEAR)
#[test]
fn upsampling_matches_pillow_bilinear_exactly() {
    let pre = gps_ssl::embed::Preprocess {
        size: 112,
        pixel_scale: 1.0,
        mean: [0.0; 3],
        std: [1.0; 3],
    };
    let mut checked = 0;
    for entry in std::fs::read_dir(fixtures().join("embed_in")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(orig) = name.strip_prefix("pillow112_") else {
            continue;
        };
        let pillow = load_image(&path);
        let input = load_image(&fixtures().join("embed_in").join(orig));
        let mut ours = vec![0.0f32; 3 * 112 * 112];
        pre.apply(&input, orig, &mut ours).unwrap();
        let plane = 112 * 112;
        for (i, px) in pillow.data.chunks_exact(3).enumerate() {
            for c in 0..3 {
                assert_eq!(
                    ours[c * plane + i],
                    px[c] as f32,
                    "{orig}: pixel {i} channel {c}"
                );
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 6);
}

// The fast resize (transposed strips, i32 lanes, AVX2) against Pillow itself, run live from the
// setup's venv: seeded random RGB and grey images of odd, non-square sizes, shrunk and enlarged
// to square sizes with `Image.resize((s, s), Image.BILINEAR)`.
#[test]
fn resizing_matches_pillow_bilinear_exactly() {
    const SCRIPT: &str = r#"
import sys, numpy as np
from PIL import Image
out = sys.argv[1]
rng = np.random.default_rng(3)
cases = [(513, 389, 3, 224), (300, 517, 1, 224), (97, 131, 3, 112), (40, 23, 3, 64), (224, 224, 3, 97)]
for i, (w, h, c, s) in enumerate(cases):
    a = rng.integers(0, 256, size=(h, w, c) if c == 3 else (h, w), dtype=np.uint8)
    img = Image.fromarray(a)
    img.save(f"{out}/in{i}.png")
    img.resize((s, s), Image.BILINEAR).save(f"{out}/out{i}_{s}.png")
"#;
    let dir = tempfile::tempdir().unwrap();
    common::venv_python(SCRIPT, dir.path());
    let mut checked = 0;
    for i in 0..5 {
        let result = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&format!("out{i}_"))
            })
            .unwrap();
        let size: u32 = result.file_stem().unwrap().to_string_lossy()[format!("out{i}_").len()..]
            .parse()
            .unwrap();
        let input = load_image(&dir.path().join(format!("in{i}.png")));
        let pillow = load_image(&result);
        let pre = gps_ssl::embed::Preprocess {
            size,
            pixel_scale: 1.0,
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        let ours = pre.resize(&input, "in").unwrap();
        assert_eq!(pillow.channels, input.channels, "case {i}");
        assert_eq!(ours.len(), pillow.data.len(), "case {i}");
        let differ = ours
            .iter()
            .zip(&pillow.data)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(differ, 0, "case {i}: {differ} bytes differ from Pillow");
        checked += 1;
    }
    assert_eq!(checked, 5);
}

#[test]
fn metadata_round_trips() {
    let source = VecSource::random(10, 1);
    let prior = tiny();
    let mut embedder = Embedder::builder(prior.clone())
        .resolution(16)
        .threads(1)
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e.parquet");
    let summary = EmbedJob::new(&out)
        .run(&mut embedder, &source, &NoProgress)
        .unwrap();
    assert_eq!(summary.rows, 10);
    let t = EmbeddingTable::read(&out).unwrap();
    let m = &t.metadata;
    assert_eq!(m["gps.prior.name"], "tiny_prior");
    assert_eq!(m["gps.prior.sha256"], prior.sha256);
    assert_eq!(m["gps.prior.input_size"], "16");
    assert_eq!(m["gps.prior.preprocess"], embedder.preprocess().describe());
    assert_eq!(m["gps.embedding.dim"], "8");
    assert_eq!(m["gps.embedding.normalized"], "true");
    assert_eq!(m["gps.dataset.fingerprint"], source.fingerprint());
    assert_eq!(m["gps.version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(t.ids, (0..10).collect::<Vec<u64>>());
    assert_eq!(t.keys[3], "img/003.png");
    assert_eq!(t.labels[4], None);
    assert_eq!(t.labels[5], Some(5));
    for i in 0..t.len() {
        let n: f32 = t.vector(i).iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-5);
    }
    assert!(
        !embedder_partial(&out).exists(),
        "partial dir must be removed"
    );
}

fn embedder_partial(out: &Path) -> PathBuf {
    EmbedJob::new(out).partial_dir()
}

fn tiny_embedder(batch: usize) -> Embedder {
    Embedder::builder(tiny())
        .resolution(16)
        .batch_size(batch)
        .threads(1)
        .build()
        .unwrap()
}

fn lite0_job(
    (threads, replicas, inference_batch): (usize, usize, usize),
    source: &VecSource,
    out: &Path,
) -> EmbeddingTable {
    let mut embedder = Embedder::builder(lite0())
        .resolution(64)
        .batch_size(6)
        .threads(threads)
        .replicas(replicas)
        .inference_batch(inference_batch)
        .build()
        .unwrap();
    EmbedJob::new(out)
        .row_group_rows(4)
        .workers(1)
        .run(&mut embedder, source, &NoProgress)
        .unwrap();
    EmbeddingTable::read(out).unwrap()
}

// Replicas split the batches between sessions, and each batch runs in calls of
// `inference_batch` images; each image is still embedded by one single-threaded session, so
// the bits are those of one session taking whole batches, and a two-threaded session agrees
// to float rounding.
#[test]
fn replicas_and_inference_slices_equal_a_single_session() {
    let source = VecSource::random(14, 11);
    let dir = tempfile::tempdir().unwrap();
    let one = lite0_job((1, 1, 6), &source, &dir.path().join("one.parquet"));
    let two = lite0_job((2, 2, 4), &source, &dir.path().join("two.parquet"));
    let sliced = lite0_job((1, 1, 1), &source, &dir.path().join("sliced.parquet"));
    let wide = lite0_job((2, 1, 6), &source, &dir.path().join("wide.parquet"));
    assert_eq!(one.len(), 14);
    assert_eq!(one.ids, two.ids);
    assert_eq!(one.keys, two.keys);
    for i in 0..one.len() {
        assert_eq!(one.vector(i), two.vector(i), "row {i}");
        assert_eq!(one.vector(i), sliced.vector(i), "row {i}");
        let max = one
            .vector(i)
            .iter()
            .zip(wide.vector(i))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(max < 1e-5, "row {i}: 2-thread session differs by {max}");
    }
}

/// On this machine (no GPU; the setup's CPU `onnxruntime` unless GPS_SSL_ORT=gpu) the CUDA
/// execution provider cannot run: the embedder is an error that says what is missing, never a
/// session that silently runs on the CPU.
#[test]
fn cuda_execution_provider_that_cannot_register_is_an_error_naming_what_is_missing() {
    let library = gps_ssl::embed::init_onnx_runtime().unwrap().to_path_buf();
    let err = match Embedder::builder(tiny())
        .execution_provider(ExecutionProvider::Cuda(0))
        .build()
    {
        Ok(_) => panic!("a CUDA embedder was built on a machine without a GPU"),
        Err(e) => e.to_string(),
    };
    match gps_ssl::embed::missing_provider(&library, "cuda", "onnxruntime-gpu") {
        // The CPU package: the message names the missing provider library and the package.
        Some(expected) => assert!(err.contains(&expected), "{err}"),
        // onnxruntime-gpu without a GPU: ONNX Runtime's own reason, with what the EP needs.
        None => assert!(
            err.contains("CUDA execution provider (device 0) could not be registered")
                && err.contains("libcuda.so.1"),
            "{err}"
        ),
    }
}

#[test]
fn zero_inference_batch_is_refused() {
    let err = Embedder::builder(tiny())
        .inference_batch(0)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("inference batch"), "{err}");
}

#[test]
fn replicas_beyond_the_threads_are_refused() {
    for replicas in [0, 3] {
        let err = Embedder::builder(tiny())
            .threads(2)
            .replicas(replicas)
            .build()
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("replicas"), "{msg}");
        assert!(msg.contains(&format!("got {replicas}")), "{msg}");
    }
}

#[test]
fn interrupted_then_resumed_equals_uninterrupted_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.parquet");
    let resumed = dir.path().join("resumed.parquet");
    let job = |out: &Path| EmbedJob::new(out).row_group_rows(8).workers(2);

    let mut source = VecSource::random(50, 7);
    job(&whole)
        .run(&mut tiny_embedder(3), &source, &NoProgress)
        .unwrap();

    // "Crash" at row 27: chunks 0..3 (rows 0..24) are finished, chunk 3 is lost.
    source.fail_at = Some(27);
    let err = job(&resumed)
        .run(&mut tiny_embedder(3), &source, &NoProgress)
        .unwrap_err();
    assert!(err.to_string().contains("img/027.png"), "{err}");
    assert!(
        !resumed.exists(),
        "the final file must not appear before the job finishes"
    );
    let chunks = std::fs::read_dir(job(&resumed).partial_dir())
        .unwrap()
        .count();
    assert_eq!(chunks, 3 + 1, "3 finished chunks + job.json");

    source.fail_at = None;
    let summary = job(&resumed)
        .run(&mut tiny_embedder(3), &source, &NoProgress)
        .unwrap();
    assert_eq!(summary.resumed_rows, 24);
    assert_eq!(summary.rows, 50);
    assert_eq!(
        std::fs::read(&whole).unwrap(),
        std::fs::read(&resumed).unwrap()
    );
}

/// A job on 20 random images in `dir` interrupted at image 12 (batch size 2, chunks of 4 rows),
/// and its source, ready to complete.
fn interrupted_job(dir: &Path) -> (EmbedJob, VecSource) {
    let mut source = VecSource::random(20, 3);
    source.fail_at = Some(12);
    let job = EmbedJob::new(dir.join("e.parquet")).row_group_rows(4);
    job.run(&mut tiny_embedder(2), &source, &NoProgress)
        .unwrap_err();
    source.fail_at = None;
    (job, source)
}

#[test]
fn resume_with_other_settings_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (job, source) = interrupted_job(dir.path());
    let err = job
        .run(&mut tiny_embedder(4), &source, &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("delete that directory") && err.contains("batch_size"),
        "{err}"
    );
}

#[test]
fn shards_merged_equal_unsharded() {
    let dir = tempfile::tempdir().unwrap();
    let source = VecSource::random(45, 11);
    let whole = dir.path().join("whole.parquet");
    EmbedJob::new(&whole)
        .row_group_rows(8)
        .run(&mut tiny_embedder(5), &source, &NoProgress)
        .unwrap();
    let parts_dir = dir.path().join("parts");
    std::fs::create_dir(&parts_dir).unwrap();
    let mut parts = Vec::new();
    for i in 0..3 {
        let part = parts_dir.join(format!("e.part-{i}-of-3.parquet"));
        let s = EmbedJob::new(&part)
            .row_group_rows(8)
            .shard(ShardSpec { index: i, count: 3 })
            .run(&mut tiny_embedder(5), &source, &NoProgress)
            .unwrap();
        assert!(s.rows > 0);
        parts.push(part);
    }
    parts.reverse(); // order given does not matter
    let merged = dir.path().join("merged.parquet");
    merge_embeddings(&parts, &merged).unwrap();
    assert_eq!(
        std::fs::read(&whole).unwrap(),
        std::fs::read(&merged).unwrap()
    );
    let from_dir = EmbeddingTable::read(&parts_dir).unwrap();
    assert_eq!(from_dir, EmbeddingTable::read(&whole).unwrap());
    // A missing shard is refused.
    let err = merge_embeddings(&parts[..2], &dir.path().join("x.parquet")).unwrap_err();
    assert!(err.to_string().contains("is missing"), "{err}");
}

#[test]
fn bad_image_stops_the_job_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e.parquet");
    let mut source = VecSource::random(12, 5);
    source.fail_at = Some(9);
    let err = EmbedJob::new(&out)
        .run(&mut tiny_embedder(4), &source, &NoProgress)
        .unwrap_err();
    assert!(
        matches!(err, Error::Decode { ref key, .. } if key == "img/009.png"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn skip_bad_records_the_key_in_a_side_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e.parquet");
    let mut source = VecSource::random(12, 5);
    source.fail_at = Some(9);
    let job = EmbedJob::new(&out).skip_bad(true);
    let summary = job
        .run(&mut tiny_embedder(4), &source, &NoProgress)
        .unwrap();
    assert_eq!(summary.rows, 11);
    let report = std::fs::read_to_string(job.bad_report_path()).unwrap();
    let bad: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(bad[0]["key"], "img/009.png");
    assert_eq!(bad[0]["id"], 9);
    assert!(bad[0]["error"].as_str().unwrap().contains("truncated PNG"));
    let t = EmbeddingTable::read(&out).unwrap();
    assert!(!t.ids.contains(&9) && t.len() == 11);
}

#[test]
fn corrupt_image_buffer_is_reported_with_its_key() {
    let mut source = VecSource::random(4, 2);
    source.samples[2].image.data.truncate(5);
    let dir = tempfile::tempdir().unwrap();
    let err = EmbedJob::new(dir.path().join("e.parquet"))
        .run(&mut tiny_embedder(4), &source, &NoProgress)
        .unwrap_err();
    assert!(err.to_string().contains("img/002.png"), "{err}");
}

#[test]
fn non_finite_output_is_an_error_naming_the_row() {
    // nan_prior.onnx = GlobalAveragePool(Sqrt(x)): NaN as soon as one normalised pixel is < 0.
    let prior = PriorManifest::load(fixtures().join("nan_prior.toml")).unwrap();
    let bright = Image::new(4, 4, 3, vec![255; 48]);
    let dark = Image::new(4, 4, 3, vec![0; 48]);
    let source = VecSource::new(vec![
        ("a".into(), None, bright.clone()),
        ("b".into(), None, bright),
        ("c".into(), None, dark),
    ]);
    let mut embedder = Embedder::builder(prior)
        .resolution(4)
        .threads(1)
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = EmbedJob::new(dir.path().join("e.parquet"))
        .run(&mut embedder, &source, &NoProgress)
        .unwrap_err();
    assert!(matches!(err, Error::NonFinite { row: 2, .. }), "{err}");
}

#[test]
fn unknown_output_name_is_refused() {
    let err = Embedder::builder(tiny())
        .output_name("nope")
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope") && err.contains("features"), "{err}");
}

// Labels are in the foolbox file names (imagenet_<i>_<label>.jpg). Preprocessing per the manifest at
// the native 224 px; the 512x512 JPEGs are shrunk with the bilinear (antialiased) filter.
#[test]
fn lite0_classifies_foolbox_imagenet_samples() {
    let dir = root().join(".cache/assets/foolbox/data");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup.sh)", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("imagenet_")
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 20);
    let prior = lite0();
    let logits = prior.logits_name.clone().unwrap_or_else(|| "logits".into());
    let mut embedder = Embedder::builder(prior)
        .output_name(logits)
        .normalize(false)
        .batch_size(10)
        .build()
        .unwrap();
    let images: Vec<Image> = files.iter().map(|f| load_image(f)).collect();
    let out = embedder.embed_images(&images).unwrap();
    assert_eq!(embedder.dim(), 1000);
    let mut correct = 0;
    for (f, row) in files.iter().zip(out.chunks_exact(1000)) {
        let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
        let label: usize = stem.rsplit('_').next().unwrap().parse().unwrap();
        let top = row
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        correct += (top == label) as usize;
    }
    let acc = correct as f64 / 20.0;
    assert!(acc >= 0.85, "top-1 {acc}");
}

fn cli() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_gps-ssl"));
    c.current_dir(root()).env("RUST_LOG", "warn");
    c
}

/// `gps-ssl embed` on the 2,000 Fashion-MNIST test images of `data/`, Lite0 at 32 px.
fn cli_embed(out: &Path) -> std::process::Command {
    let mut c = cli();
    c.args([
        "embed",
        "--data",
        "data/fashion-mnist/t10k",
        "--prior",
        "models/efficientnet_lite0.toml",
    ])
    .args([
        "--resolution",
        "32",
        "--threads",
        "2",
        "--batch-size",
        "50",
        "--row-group-rows",
        "200",
    ])
    .arg("--out")
    .arg(out);
    c
}

#[test]
fn cli_killed_with_sigkill_then_rerun_equals_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.parquet");
    let status = cli_embed(&whole).status().unwrap();
    assert!(status.success());

    let resumed = dir.path().join("resumed.parquet");
    let partial = EmbedJob::new(&resumed).partial_dir();
    let mut child = cli_embed(&resumed)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill -9 as soon as two chunks are on disk.
    let start = std::time::Instant::now();
    loop {
        let chunks = std::fs::read_dir(&partial)
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
                })
                .count()
            })
            .unwrap_or(0);
        if chunks >= 2 || start.elapsed().as_secs() > 60 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    assert!(
        !resumed.exists(),
        "the job was killed before it could finish"
    );
    assert!(partial.is_dir());

    let out = cli_embed(&resumed).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("rows resumed"));
    assert_eq!(
        std::fs::read(&whole).unwrap(),
        std::fs::read(&resumed).unwrap()
    );
    let t = EmbeddingTable::read(&resumed).unwrap();
    assert_eq!(t.len(), 2000);
    assert_eq!(t.labels.iter().filter(|l| l.is_some()).count(), 2000);
}

#[test]
fn cli_shards_then_merge_equal_unsharded_run() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.parquet");
    assert!(cli_embed(&whole).status().unwrap().success());
    let parts = dir.path().join("parts");
    std::fs::create_dir(&parts).unwrap();
    for i in 0..2 {
        let status = cli_embed(&parts.join("e.parquet"))
            .args(["--shard", &format!("{i}/2")])
            .status()
            .unwrap();
        assert!(status.success());
    }
    assert!(parts.join("e.part-00001-of-00002.parquet").is_file());
    let merged = dir.path().join("merged.parquet");
    let status = cli()
        .arg("merge-embeddings")
        .arg("--out")
        .arg(&merged)
        .arg(&parts)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read(&whole).unwrap(),
        std::fs::read(&merged).unwrap()
    );
}

#[test]
fn cli_reports_a_missing_prior_file() {
    let out = cli()
        .args([
            "embed",
            "--data",
            "data/fashion-mnist/t10k",
            "--prior",
            "models/nope.toml",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("models/nope.toml"));
}

/// A job records where ONNX Runtime ran and which build it was (in `job.json` and the file's
/// metadata): one interrupted under another execution provider or ONNX Runtime build is not
/// joined to this one. Simulated by editing the interrupted job's state, as a run on CUDA or
/// with another wheel would have written it (before, both were not recorded and the resume
/// went ahead).
#[test]
fn resume_under_another_provider_or_runtime_is_refused() {
    for (field, other) in [
        ("execution_provider", "cuda:0"),
        ("onnxruntime", "ORT Build Info: git-branch=rel-0.0.0"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (job, source) = interrupted_job(dir.path());
        let state_path = job.partial_dir().join("job.json");
        let mut state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
        assert_ne!(state[field], serde_json::Value::from(other), "{field}");
        state[field] = other.into();
        std::fs::write(&state_path, state.to_string()).unwrap();
        let err = job
            .run(&mut tiny_embedder(2), &source, &NoProgress)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("delete that directory") && err.contains(other),
            "{field}: {err}"
        );
    }
    // The finished file says where it was computed.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e.parquet");
    EmbedJob::new(&out)
        .run(&mut tiny_embedder(2), &VecSource::random(6, 3), &NoProgress)
        .unwrap();
    let meta = EmbeddingTable::read(&out).unwrap().metadata;
    assert_eq!(meta["gps.embed.execution_provider"], "cpu");
    assert!(
        meta["gps.embed.onnxruntime"].contains("git-commit-id"),
        "{meta:?}"
    );
}
