//! Iterated GPS and re-mining (issue 13): lists mined from the network being trained.
//!
//! Tiny subsets of the bundled Fashion-MNIST test images, the raw-pixel prior, the `small`
//! backbone and batches of 16, so each test takes seconds. The re-mined lists are checked
//! against an independent computation: the exported-encoder path (`TrainedEncoder`) for the
//! features and exact k-NN for the lists.
// The binary and the trainer: the default features.
#![cfg(feature = "cli")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{exact_cosine_lists, tiny_idx};

use burn::tensor::Device;
use gps_ssl::export::TrainedEncoder;
use gps_ssl::{
    dataset::open_source,
    experiment::{ensure_neighbours, pixel_embeddings, RECORD_FILE, RUNS_DIR},
    knn::NeighbourLists,
    progress::NoProgress,
    store::NeighbourTable,
    train::{read_losses, remined_file, LOG_FILE, META_REMINE_EPOCH},
};

fn cli(log: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gps-ssl"));
    c.env("RUST_LOG", log);
    c
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Exact cosine k-NN (self excluded) of the backbone features of the run in `dir` on `spec`,
/// through the exported-encoder path.
fn reference_lists(dir: &Path, spec: &str, k: usize) -> NeighbourLists {
    let device = Device::flex();
    let encoder = TrainedEncoder::from_run(dir, &device).unwrap();
    let source = open_source(spec).unwrap();
    let features = encoder
        .features(source.into(), &device, &NoProgress)
        .unwrap();
    exact_cosine_lists(&features, encoder.backbone.feature_dim(), k)
}

/// `train --remine-every 1`: epoch 0 uses the prior's lists, later epochs lists mined from the
/// backbone at the epoch boundary (equal to exact k-NN of that checkpoint's features); a run
/// stopped mid-epoch resumes step for step (it reads the saved lists); the setting is part of
/// the run and conflicts on resume.
#[test]
fn remining_mines_from_the_epoch_boundary_weights_and_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_idx(tmp.path(), "a", 0..64);
    let nn = tmp.path().join("nn.parquet");
    let source = open_source(&data).unwrap();
    let vectors = pixel_embeddings(source.as_ref(), &NoProgress).unwrap();
    ensure_neighbours(&vectors, 3, &source.fingerprint(), &nn, &NoProgress).unwrap();
    let train = |out: &Path, extra: &[&str]| {
        let mut c = cli("warn");
        c.args([
            "train",
            "--method",
            "simclr",
            "--data",
            &data,
            "--neighbours",
        ])
        .arg(&nn)
        .args([
            "--batch-size",
            "16",
            "--epochs",
            "3",
            "--warmup-epochs",
            "0.5",
        ])
        .args(["--workers", "1", "--out"])
        .arg(out)
        .args(extra);
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    };

    let fixed = tmp.path().join("fixed");
    train(&fixed, &[]);
    let whole = tmp.path().join("whole");
    train(&whole, &["--remine-every", "1"]);
    let fixed_losses = read_losses(&fixed.join(LOG_FILE)).unwrap();
    let losses = read_losses(&whole.join(LOG_FILE)).unwrap();
    assert_eq!(losses.len(), 12);
    // Epoch 0 (4 steps) draws from the prior's lists in both runs; later epochs do not.
    for step in 0..4 {
        assert!(
            (losses[step] - fixed_losses[step]).abs() <= 1e-6,
            "step {step}"
        );
    }
    assert!(
        (4..12).any(|s| (losses[s] - fixed_losses[s]).abs() > 1e-4),
        "re-mined lists changed no loss: {losses:?} vs {fixed_losses:?}"
    );
    for epoch in [1, 2] {
        let t = NeighbourTable::read(remined_file(&whole, epoch)).unwrap();
        assert_eq!(t.metadata[META_REMINE_EPOCH], epoch.to_string());
        assert_eq!(t.lists.len(), 64);
        assert_eq!(t.lists.k(), 3);
    }
    assert!(!remined_file(&whole, 0).exists() && !remined_file(&whole, 3).exists());

    // Stopped exactly at the end of epoch 0: the checkpoint holds the weights the epoch-1 lists
    // come from. Resuming mines them, equal to exact k-NN of those weights' features.
    let part = tmp.path().join("part");
    train(&part, &["--remine-every", "1", "--max-steps", "4"]);
    assert!(!remined_file(&part, 1).exists());
    let expected = reference_lists(&part, &data, 3);
    let resume = |extra: &[&str]| {
        cli("warn")
            .args(["train", "--resume", "--out"])
            .arg(&part)
            .args(extra)
            .output()
            .unwrap()
    };
    let o = resume(&["--max-steps", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mined = NeighbourTable::read(remined_file(&part, 1)).unwrap().lists;
    assert_eq!(
        mined.ids_flat(),
        expected.ids_flat(),
        "re-mined lists vs exact k-NN"
    );
    let whole_e1 = NeighbourTable::read(remined_file(&whole, 1)).unwrap().lists;
    assert_eq!(mined.ids_flat(), whole_e1.ids_flat());

    // Mid-epoch 1 now (step 6): a conflicting setting is refused, no flag continues exactly.
    let o = resume(&["--remine-every", "2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--remine-every 2 (the saved run has 1)"),
        "{}",
        stderr(&o)
    );
    let o = resume(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let resumed = read_losses(&part.join(LOG_FILE)).unwrap();
    assert_eq!(resumed.len(), losses.len());
    for (step, (a, b)) in resumed.iter().zip(&losses).enumerate() {
        assert!((a - b).abs() <= 1e-6, "step {step}: {a} vs {b}");
    }

    // The saved lists are required to continue mid-epoch: without them it is a clear error.
    let broken = tmp.path().join("broken");
    train(&broken, &["--remine-every", "1", "--max-steps", "6"]);
    std::fs::remove_file(remined_file(&broken, 1)).unwrap();
    let o = cli("warn")
        .args(["train", "--resume", "--out"])
        .arg(&broken)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("remined-e1.parquet is missing"), "{err}");
}

fn run_dirs(out: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out.join(RUNS_DIR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    dirs
}

/// `experiment` with `rounds = 1` from the pixel prior and from plain SSL (`none`): each round-1
/// run trains on lists mined from its round-0 encoder (equal to exact k-NN of that encoder's
/// features), the report has a per-round table, and a second call reuses every run.
#[test]
fn iterated_gps_trains_each_round_on_the_previous_encoder() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_idx(tmp.path(), "a", 0..64);
    let test = tiny_idx(tmp.path(), "test", 64..96);
    let toml = tmp.path().join("rounds.toml");
    std::fs::write(
        &toml,
        format!(
            "name = \"rounds\"\ndata = \"{data}\"\ntest_data = \"{test}\"\n\
             priors = [\"pixels\", \"none\"]\nk = [3]\nmethods = [\"simclr\"]\n\
             augs = [\"rhflip\"]\nbaseline = false\nseeds = [0]\nepochs = 1\nbatch_size = 16\n\
             warmup_epochs = 0.0\nworkers = 1\nlinear_probe = false\nrounds = 1\n"
        ),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let experiment = || {
        let o = cli("info")
            .arg("experiment")
            .arg(&toml)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        stderr(&o)
    };
    experiment();
    let dirs = run_dirs(&out);
    let names: Vec<String> = dirs
        .iter()
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    let find = |prefix: &str| {
        dirs.iter()
            .zip(&names)
            .find(|(_, n)| n.starts_with(prefix))
            .map(|(d, _)| d.clone())
            .unwrap_or_else(|| panic!("no run {prefix}* in {names:?}"))
    };
    for (round0, round1) in [
        (
            "simclr-rhflip-gps-pixels-k3-",
            "simclr-rhflip-gps-pixels.r1-k3-",
        ),
        ("simclr-rhflip-base-", "simclr-rhflip-gps-none.r1-k3-"),
    ] {
        let (r0, r1) = (find(round0), find(round1));
        let lists_path = out.join(format!(
            "neighbours-{}-k3.parquet",
            r0.file_name().unwrap().to_string_lossy()
        ));
        let table = NeighbourTable::read(&lists_path).unwrap();
        let expected = reference_lists(&r0, &data, 3);
        assert_eq!(table.lists.ids_flat(), expected.ids_flat(), "{round1}");
        let record = json(&r1.join(RECORD_FILE));
        assert_eq!(
            record["config"]["data"]["neighbour_table"]["sha256"],
            serde_json::json!(table.content_sha256()),
            "{round1} trained on its round-0 lists"
        );
        assert_eq!(record["round"], 1);
        assert!(record["purity_at_1"].as_f64().is_some());
    }
    let results = json(&out.join("results.json"));
    let rounds: Vec<u64> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["round"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(rounds, [0, 0, 1, 1], "{results}");
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(table.contains("Iterated GPS"), "{table}");
    assert!(
        table.contains("| SimCLR | RHFlipAug | pixels | 1 |"),
        "{table}"
    );
    assert!(
        table.contains("| SimCLR | RHFlipAug | none | 0 |"),
        "{table}"
    );

    let log = experiment();
    assert_eq!(log.matches("reusing finished run").count(), 4, "{log}");
    assert!(!log.contains(": training run="), "{log}");
    assert_eq!(run_dirs(&out), dirs);
}

/// `gps-ssl demo --rounds 1 --remine-every 0,1` runs round 0 and round 1 of fixed and re-mined
/// lists next to the baseline and prints the per-round table.
#[test]
fn demo_takes_rounds_and_remining() {
    let tmp = tempfile::tempdir().unwrap();
    // The demo trains batches of 256: 512 images give 2 steps per epoch.
    let data = tiny_idx(tmp.path(), "a", 0..512);
    let test = tiny_idx(tmp.path(), "test", 512..576);
    let out = tmp.path().join("demo");
    let o = cli("warn")
        .args([
            "demo",
            "--data",
            &data,
            "--test-data",
            &test,
            "--prior",
            "pixels",
        ])
        .args([
            "--k",
            "3",
            "--epochs",
            "2",
            "--rounds",
            "1",
            "--remine-every",
            "0,1",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    for row in [
        "| SimCLR | RHFlipAug | pixels | 1 |",
        "| SimCLR | RHFlipAug | pixels+remine1 | 1 |",
    ] {
        assert!(stdout.contains(row), "{row}: {stdout}");
    }
    // The prior's lists, drawn before training: 8 anchors, each followed by its 3 neighbours.
    let montage = out.join("montage-pixels-k3.png");
    assert!(
        stdout.contains(&format!("montage: {}", montage.display())),
        "{stdout}"
    );
    let img = image::open(&montage).unwrap();
    assert_eq!(img.height(), 20 + 26 + 8 * (96 + 6 + 17) + 7 * 6);
    let names: Vec<String> = run_dirs(&out)
        .iter()
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.len(),
        5,
        "base, pixels, pixels+remine1 and their round 1: {names:?}"
    );
    let remined = run_dirs(&out)
        .into_iter()
        .find(|d| d.to_string_lossy().contains("pixels+remine1.r1"))
        .unwrap();
    assert!(remined_file(&remined, 1).is_file());
}
