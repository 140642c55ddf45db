//! The GPS chain end to end on real data (issue 12): training pairs every anchor with one of its
//! prior-space neighbours, and a dataset with bad images goes through `embed --skip-bad` →
//! `neighbours` → `train --neighbours`; a truncated JPEG is an error naming the file, or is
//! skipped with `--skip-bad`.
//!
//! Data: small subsets of the bundled Fashion-MNIST test images (IDX files or PNGs written into
//! a temporary folder) and the bundled ImageNet sample JPEG; the CLI test embeds with the tiny
//! random ONNX prior of `tests/fixtures` (ONNX Runtime from `scripts/setup.sh`, as in
//! `tests/embed.rs`).
// The binary and the trainer: the default features.
#![cfg(feature = "cli")]

use std::cell::RefCell;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use burn::tensor::Device;
use gps_ssl::{
    dataset::{decode_image, open_source},
    experiment::{ensure_neighbours, pixel_embeddings},
    knn::{KnnMethod, Metric, NeighbourBuilder},
    progress::NoProgress,
    ssl::{MethodKind, ResNetConfig},
    store::{EmbeddingTable, NeighbourTable, META_DATASET_FINGERPRINT},
    train::{read_losses, FnSource, PairData, TrainConfig, Trainer, LOG_FILE, SKIPPED_FILE},
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The bundled 2,000 Fashion-MNIST test images (28×28, `[n·784]`) and labels, un-gzipped.
fn fashion_t10k() -> (Vec<u8>, Vec<u8>) {
    let dir = root().join("data/fashion-mnist");
    let gunzip = |name: &str| {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(dir.join(name)).unwrap())
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    (
        gunzip("t10k-images-idx3-ubyte.gz")[16..].to_vec(),
        gunzip("t10k-labels-idx1-ubyte.gz")[8..].to_vec(),
    )
}

/// Writes the first `n` bundled test images as the raw IDX pair `<dir>/<name>-…`; returns the
/// dataset spec.
fn tiny_idx(dir: &Path, name: &str, n: usize) -> String {
    let (images, labels) = fashion_t10k();
    let mut img = vec![0, 0, 8, 3];
    for v in [n as u32, 28, 28] {
        img.extend(v.to_be_bytes());
    }
    img.extend(&images[..n * 784]);
    let mut lab = vec![0, 0, 8, 1];
    lab.extend((n as u32).to_be_bytes());
    lab.extend(&labels[..n]);
    std::fs::write(dir.join(format!("{name}-images-idx3-ubyte")), img).unwrap();
    std::fs::write(dir.join(format!("{name}-labels-idx1-ubyte")), lab).unwrap();
    dir.join(name).display().to_string()
}

/// The first third of a real JPEG (the bundled ImageNet sample of class 243).
fn truncated_jpeg() -> (Vec<u8>, Vec<u8>) {
    let full = std::fs::read(root().join("data/fixtures/imagenet_jpeg/243/00.jpg")).unwrap();
    let cut = full[..full.len() / 3].to_vec();
    (full, cut)
}

/// Trains 1 epoch of GPS-SimCLR (batch 16) on `spec` with the neighbour file `nn` and returns
/// every `(anchor, partner)` pair the trainer received, with the number of steps taken.
fn train_recording_pairs(spec: &str, nn: &Path) -> (Vec<(u64, u64)>, usize) {
    let pairs = PairData {
        data: spec.into(),
        neighbours: Some(nn.to_path_buf()),
        aug: "rhflip".into(),
        size: None,
        batch_size: 16,
        seed: 0,
        workers: 2,
        skip_bad: false,
        cache_gib: None,
    };
    let (loader, data) = pairs.open_with_config().unwrap();
    let mut config = TrainConfig::new(MethodKind::Simclr, ResNetConfig::small(1));
    config.batch_size = 16;
    config.epochs = 1;
    config.warmup_epochs = 0.0;
    config.data = Some(data);
    let device = Device::flex().autodiff();
    let mut trainer = Trainer::new(config, loader.num_batches(), &device).unwrap();
    let seen = RefCell::new(Vec::new());
    let mut source = FnSource::new(loader.num_batches(), |epoch, start| {
        loader
            .iter_epoch_from(epoch as u64, start)
            .inspect(|batch| {
                if let Ok(b) = batch {
                    let mut seen = seen.borrow_mut();
                    seen.extend(
                        b.anchor_ids
                            .iter()
                            .copied()
                            .zip(b.partner_ids.iter().copied()),
                    );
                }
            })
    });
    let records = trainer.fit(&mut source, None, &NoProgress).unwrap();
    assert!(records.iter().all(|r| r.loss.is_finite()));
    (seen.into_inner(), records.len())
}

/// GPS training on real data: every partner of every batch the trainer receives is in its
/// anchor's neighbour list (and is not the anchor), for a complete table and for one with gaps
/// (rows only for the samples that were embedded), where the ids without a row never appear.
#[test]
fn gps_training_pairs_every_anchor_with_one_of_its_neighbours() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tiny_idx(tmp.path(), "a", 64);
    let source = open_source(&spec).unwrap();
    let fingerprint = source.fingerprint();
    let vectors = pixel_embeddings(source.as_ref(), &NoProgress).unwrap();

    // A complete table (one row per image).
    let dense = tmp.path().join("nn.parquet");
    ensure_neighbours(&vectors, 3, &fingerprint, &dense, &NoProgress).unwrap();

    // A table with gaps: ids 5, 30 and 31 have no embedding (as after `embed --skip-bad`).
    let missing = [5u64, 30, 31];
    let ids: Vec<u64> = (0..64).filter(|i| !missing.contains(i)).collect();
    let rows: Vec<f32> = ids
        .iter()
        .flat_map(|&i| vectors.vectors[i as usize * vectors.dim..][..vectors.dim].to_vec())
        .collect();
    let lists = NeighbourBuilder::new(&rows, vectors.dim)
        .k(3)
        .metric(Metric::Cosine)
        .method(KnnMethod::Exact)
        .build()
        .unwrap()
        .run()
        .unwrap()
        .lists;
    let meta = [(META_DATASET_FINGERPRINT.to_string(), fingerprint.clone())].into();
    let gaps = tmp.path().join("nn-gaps.parquet");
    NeighbourTable::from_row_positions(lists, &ids, meta)
        .unwrap()
        .write(&gaps)
        .unwrap();

    for (path, steps) in [(&dense, 64 / 16), (&gaps, 61 / 16)] {
        let table = NeighbourTable::read(path).unwrap();
        let (seen, taken) = train_recording_pairs(&spec, path);
        assert_eq!(taken, steps, "{}", path.display());
        assert_eq!(seen.len(), steps * 16);
        for &(a, p) in &seen {
            let row = table
                .neighbours_of(a as u32)
                .unwrap_or_else(|| panic!("anchor {a} has no neighbour row"));
            assert!(
                p != a && row.contains(&(p as u32)),
                "{}: partner {p} of anchor {a} not in its list {row:?}",
                path.display()
            );
            assert!(!missing.contains(&a) || path == &dense, "anchor {a} drawn");
        }
        let mut anchors: Vec<u64> = seen.iter().map(|&(a, _)| a).collect();
        anchors.sort();
        anchors.dedup();
        assert_eq!(
            anchors.len(),
            seen.len(),
            "an anchor drawn twice in one epoch"
        );
    }
}

/// `decode_image` refuses the first third of a real JPEG (the `image` crate alone would decode
/// it, grey-filling the missing rows), naming the key; the whole file decodes.
#[test]
fn truncated_jpeg_is_an_error_naming_the_key() {
    let (full, cut) = truncated_jpeg();
    assert!(
        image::load_from_memory(&cut).is_ok(),
        "precondition: the decoder accepts the truncated file"
    );
    let img = decode_image(&full, "n02106550/00.jpg").unwrap();
    assert!(img.width > 0 && img.height > 0);
    let err = decode_image(&cut, "n02106550/00.jpg")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("n02106550/00.jpg") && err.contains("truncated JPEG"),
        "{err}"
    );
}

fn cli() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gps-ssl"));
    c.current_dir(root())
        .env("RUST_LOG", "warn")
        .env("RUST_BACKTRACE", "1");
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An image folder of 46 Fashion-MNIST PNGs with two bad files in the middle: the first third
/// of a real JPEG (`a/011_cut.jpg`) and bytes that are no image (`b/030_bad.png`).
fn folder_with_bad_images(dir: &Path) -> (String, [&'static str; 2]) {
    let (images, _) = fashion_t10k();
    for i in 0..46 {
        let class = if i < 23 { "a" } else { "b" };
        std::fs::create_dir_all(dir.join(class)).unwrap();
        let img =
            image::GrayImage::from_raw(28, 28, images[i * 784..(i + 1) * 784].to_vec()).unwrap();
        img.save(dir.join(format!("{class}/{i:03}.png"))).unwrap();
    }
    let bad = ["a/011_cut.jpg", "b/030_bad.png"];
    std::fs::write(dir.join(bad[0]), truncated_jpeg().1).unwrap();
    std::fs::write(dir.join(bad[1]), b"this is not a PNG file").unwrap();
    (format!("folder:{}", dir.display()), bad)
}

/// `embed --skip-bad` over a folder with bad images → `neighbours` (ids with gaps) → `train
/// --neighbours` runs; without `--skip-bad` the truncated JPEG stops `embed` and a bad image
/// stops plain `train`, each naming the file; `train --skip-bad` skips and lists them.
#[test]
fn skip_bad_chain_from_embedding_to_training() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, bad) = folder_with_bad_images(&tmp.path().join("images"));
    let emb = tmp.path().join("emb.parquet");
    let embed = |emb: &Path, extra: &[&str]| {
        cli()
            .args([
                "embed",
                "--data",
                &data,
                "--prior",
                "tests/fixtures/tiny_prior.toml",
            ])
            .args(["--threads", "1", "--batch-size", "8", "--out"])
            .arg(emb)
            .args(extra)
            .output()
            .unwrap()
    };

    // Without --skip-bad the truncated JPEG (the first bad file in key order) is an error.
    // (Its own output: the failed job leaves a partial directory to resume from.)
    let o = embed(&tmp.path().join("strict.parquet"), &[]);
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains(bad[0]) && err.contains("truncated JPEG"),
        "{err}"
    );
    assert!(!err.to_lowercase().contains("backtrace"), "{err}");

    let o = embed(&emb, &["--skip-bad"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = EmbeddingTable::read(&emb).unwrap();
    assert_eq!(table.ids.len(), 46);
    assert_ne!(table.ids, (0..46).collect::<Vec<u64>>(), "ids have gaps");
    let keys: Vec<&str> = table.keys.iter().map(String::as_str).collect();
    assert!(
        !keys.contains(&bad[0]) && !keys.contains(&bad[1]),
        "{keys:?}"
    );

    // `neighbours` accepts the table with gaps and stores dataset ids.
    let nn = tmp.path().join("nn.parquet");
    let o = cli()
        .args(["neighbours", "--embeddings"])
        .arg(&emb)
        .args(["--k", "3", "--method", "exact", "--out"])
        .arg(&nn)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let lists = NeighbourTable::read(&nn).unwrap();
    let row_ids: Vec<u64> = lists.ids().iter().map(|&i| i as u64).collect();
    assert_eq!(row_ids, table.ids);
    assert_eq!(lists.metadata["gps.dataset.len"], "48");
    for id in lists.lists.ids_flat() {
        assert!(lists.row_of(*id).is_some(), "neighbour {id} without a row");
    }

    let train = |out: &Path, extra: &[&str]| {
        cli()
            .args(["train", "--method", "simclr", "--data", &data])
            .args([
                "--batch-size",
                "16",
                "--epochs",
                "1",
                "--warmup-epochs",
                "0",
            ])
            .args(["--workers", "2", "--out"])
            .arg(out)
            .args(extra)
            .output()
            .unwrap()
    };
    // GPS: the bad images have no neighbour row, so they are never drawn: 46 / 16 = 2 steps.
    let gps = tmp.path().join("gps");
    let o = train(&gps, &["--neighbours", nn.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_losses(&gps.join(LOG_FILE)).unwrap().len(), 2);
    assert!(!gps.join(SKIPPED_FILE).exists());

    // Plain SSL over all 48 files (3 full batches): a bad image is an error naming it.
    let plain = tmp.path().join("plain");
    let o = train(&plain, &[]);
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(
        (err.contains(bad[0]) || err.contains(bad[1])) && err.contains("cannot decode image"),
        "{err}"
    );
    assert!(!err.to_lowercase().contains("backtrace"), "{err}");

    // With --skip-bad: both are skipped, listed next to the run, and training completes.
    let skipping = tmp.path().join("skipping");
    let o = train(&skipping, &["--skip-bad"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("skipped 2 bad samples"), "{err}");
    assert_eq!(read_losses(&skipping.join(LOG_FILE)).unwrap().len(), 3);
    let listed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(skipping.join(SKIPPED_FILE)).unwrap())
            .unwrap();
    let listed: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["key"].as_str().unwrap())
        .collect();
    assert_eq!(listed, bad);
}
