//! Trustworthy runs (issue 12): content-addressed experiment runs and stage caches, `train
//! --resume` that restores the saved run, and CLI errors/logs that read well in a file.
//!
//! Everything runs on tiny subsets of the bundled Fashion-MNIST test images (raw IDX files
//! written into a temporary folder), the raw-pixel prior (no ONNX Runtime needed), the `small`
//! backbone and batches of 16, so each test takes seconds.
// The binary and the trainer: the default features.
#![cfg(feature = "cli")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{exact_cosine_lists, tiny_idx};

use burn::tensor::Device;
use gps_ssl::{
    dataset::open_source,
    experiment::{
        ensure_neighbours, pixel_embeddings, PriorVectors, EXPERIMENT_LOG_FILE, RECORD_FILE,
        RUNS_DIR,
    },
    progress::NoProgress,
    ssl::{export_tensors, MethodKind, MlpConfig, ResNetConfig},
    store::NeighbourTable,
    train::{read_losses, TrainConfig, Trainer, CHECKPOINT_FILE, CONFIG_FILE, LOG_FILE},
};

/// GPS lists (k nearest in raw-pixel space) for the dataset `spec`, written to `out`.
fn pixel_neighbours(spec: &str, k: usize, out: &Path) {
    let source = open_source(spec).unwrap();
    let vectors = pixel_embeddings(source.as_ref(), &NoProgress).unwrap();
    ensure_neighbours(&vectors, k, &source.fingerprint(), out, &NoProgress).unwrap();
}

fn cli(log: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gps-ssl"));
    c.env("RUST_LOG", log).env("RUST_BACKTRACE", "1");
    c
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The run folders under `<out>/runs`, sorted.
fn run_dirs(out: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out.join(RUNS_DIR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    dirs
}

fn experiment_toml(data: &str, test: &str, epochs: usize) -> String {
    format!(
        "name = \"tiny\"\ndata = \"{data}\"\ntest_data = \"{test}\"\npriors = [\"pixels\"]\n\
         k = [3]\nmethods = [\"simclr\"]\naugs = [\"rhflip\"]\nbaseline = false\ngps = true\n\
         seeds = [0]\nepochs = {epochs}\nbatch_size = 16\nwarmup_epochs = 0.0\n\
         backbone = \"small\"\nworkers = 1\nlinear_probe = false\n"
    )
}

/// `gps-ssl experiment` reuses a finished run only for the same configuration: the same config
/// is reused untouched; more epochs or another dataset train a new run (in a new folder named by
/// the run hash) instead of relabelling the old record; the neighbour lists follow the data;
/// `experiment.json` keeps every invocation; the log has no colour codes when piped.
#[test]
fn experiment_reuses_only_the_same_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tiny_idx(tmp.path(), "a", 0..64);
    let b = tiny_idx(tmp.path(), "b", 64..128);
    let test = tiny_idx(tmp.path(), "test", 128..160);
    let toml = tmp.path().join("tiny.toml");
    let out = tmp.path().join("out");
    let experiment = |config: String| {
        std::fs::write(&toml, config).unwrap();
        let o = cli("info")
            .arg("experiment")
            .arg(&toml)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let err = stderr(&o);
        assert!(o.status.success(), "{err}");
        assert!(
            !err.contains('\u{1b}'),
            "ANSI escape codes in piped log:\n{err}"
        );
        err
    };
    let record = |dir: &Path| json(&dir.join(RECORD_FILE));

    // 1. A fresh run: 64 images / batch 16 = 4 steps.
    let log = experiment(experiment_toml(&a, &test, 1));
    assert!(log.contains(": training run="), "{log}");
    let dirs = run_dirs(&out);
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let first = record(&dirs[0]);
    let hash = first["run_hash"].as_str().unwrap().to_string();
    assert_eq!(hash.len(), 64);
    let name = dirs[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("simclr-rhflip-gps-pixels-k3-s0-") && name.ends_with(&hash[..12]),
        "{name}"
    );
    assert_eq!(first["epochs"], 1);
    assert_eq!(first["loss_curve"].as_array().unwrap().len(), 4);
    assert_eq!(first["config"]["epochs"], 1);
    let fingerprint_a = first["config"]["data"]["fingerprint"].clone();
    assert_eq!(
        fingerprint_a,
        serde_json::json!(open_source(&a).unwrap().fingerprint())
    );
    assert!(first["config"]["data"]["neighbour_table"]["sha256"].is_string());
    let record_bytes = std::fs::read(dirs[0].join(RECORD_FILE)).unwrap();
    let log_bytes = std::fs::read(dirs[0].join(LOG_FILE)).unwrap();

    // 2. The same configuration: reused, nothing trained or rewritten.
    let log = experiment(experiment_toml(&a, &test, 1));
    assert!(log.contains(": reusing finished run run="), "{log}");
    assert!(!log.contains(": training run="), "{log}");
    assert!(log.contains("reusing neighbour lists"), "{log}");
    assert_eq!(run_dirs(&out), dirs);
    assert_eq!(
        std::fs::read(dirs[0].join(RECORD_FILE)).unwrap(),
        record_bytes
    );
    assert_eq!(std::fs::read(dirs[0].join(LOG_FILE)).unwrap(), log_bytes);

    // 3. More epochs: a new run of 2 × 4 steps, not the old record relabelled.
    let log = experiment(experiment_toml(&a, &test, 2));
    assert!(log.contains(": training run="), "{log}");
    let dirs = run_dirs(&out);
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    let longer = dirs
        .iter()
        .map(|d| record(d))
        .find(|r| r["epochs"] == 2)
        .expect("a record with 2 epochs");
    assert_ne!(longer["run_hash"].as_str().unwrap(), hash);
    assert_eq!(longer["loss_curve"].as_array().unwrap().len(), 8);
    assert_eq!(longer["config"]["epochs"], 2);

    // 4. Another dataset into the same folder: trained on it, with lists rebuilt for it.
    let log = experiment(experiment_toml(&b, &test, 1));
    assert!(log.contains(": training run="), "{log}");
    assert!(log.contains("stale neighbour lists"), "{log}");
    let dirs = run_dirs(&out);
    assert_eq!(dirs.len(), 3, "{dirs:?}");
    let fingerprint_b = serde_json::json!(open_source(&b).unwrap().fingerprint());
    assert!(dirs
        .iter()
        .any(|d| record(d)["config"]["data"]["fingerprint"] == fingerprint_b));
    let results = json(&out.join("results.json"));
    assert_eq!(results.as_array().map(Vec::len), Some(1), "{results}");

    // Every invocation's configuration is kept, oldest first.
    let invocations = json(&out.join(EXPERIMENT_LOG_FILE));
    let epochs: Vec<_> = invocations
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["config"]["epochs"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, [1, 1, 2, 1]);
    assert_eq!(invocations[3]["config"]["data"], serde_json::json!(b));
}

/// Exact cosine lists of `vectors` (self excluded), as `ensure_neighbours` builds them.
fn exact_lists(v: &PriorVectors, k: usize) -> gps_ssl::knn::NeighbourLists {
    exact_cosine_lists(&v.vectors, v.dim, k)
}

/// The neighbour cache is keyed by the embedding vectors: new vectors of the same dataset, prior
/// name and k (a new prior resolution, new weights) rebuild the lists; the same vectors reuse
/// the file.
#[test]
fn neighbour_cache_follows_the_embeddings() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tiny_idx(tmp.path(), "a", 0..48);
    let source = open_source(&spec).unwrap();
    let fingerprint = source.fingerprint();
    let old = pixel_embeddings(source.as_ref(), &NoProgress).unwrap();
    // "Another resolution": the same images seen through the top half only.
    let mut new = old.clone();
    for row in new.vectors.chunks_exact_mut(new.dim) {
        row[new.dim / 2..].iter_mut().for_each(|x| *x = 0.0);
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|x| *x /= norm);
    }
    new.vectors_sha256 = gps_ssl::experiment::vectors_sha256(new.dim, &new.vectors);
    new.input_size = Some(14);
    assert_ne!(exact_lists(&old, 3), exact_lists(&new, 3), "precondition");

    let path = tmp.path().join("neighbours-pixels-k3.parquet");
    let (lists, _) = ensure_neighbours(&old, 3, &fingerprint, &path, &NoProgress).unwrap();
    assert_eq!(lists, exact_lists(&old, 3));
    let (lists, _) = ensure_neighbours(&new, 3, &fingerprint, &path, &NoProgress).unwrap();
    assert_eq!(lists, exact_lists(&new, 3), "stale lists reused");
    let table = NeighbourTable::read(&path).unwrap();
    assert_eq!(table.metadata["gps.prior.input_size"], "14");

    // Same vectors: the file is reused as it is (here: doctored lists come back unchanged).
    let doctored = NeighbourTable::new(exact_lists(&old, 3), table.metadata.clone());
    doctored.write(&path).unwrap();
    let (lists, _) = ensure_neighbours(&new, 3, &fingerprint, &path, &NoProgress).unwrap();
    assert_eq!(lists, exact_lists(&old, 3), "a matching cache is reused");
}

/// `train --resume` with no flag continues the saved GPS run exactly (the losses equal an
/// uninterrupted run's), and a flag that conflicts with the saved run is refused, naming the
/// flag and both values.
#[test]
fn train_resume_restores_the_saved_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_idx(tmp.path(), "a", 0..64);
    let nn = tmp.path().join("nn.parquet");
    pixel_neighbours(&data, 3, &nn);
    let train = |out: &Path, extra: &[&str]| {
        cli("warn")
            .args([
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
                "2",
                "--warmup-epochs",
                "0.5",
            ])
            .args(["--workers", "1", "--out"])
            .arg(out)
            .args(extra)
            .output()
            .unwrap()
    };
    let resume = |out: &Path, extra: &[&str]| {
        cli("warn")
            .args(["train", "--resume", "--out"])
            .arg(out)
            .args(extra)
            .output()
            .unwrap()
    };

    let whole = tmp.path().join("whole");
    let o = train(&whole, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = read_losses(&whole.join(LOG_FILE)).unwrap();
    assert_eq!(reference.len(), 8);

    let part = tmp.path().join("part");
    let o = train(&part, &["--max-steps", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_losses(&part.join(LOG_FILE)).unwrap().len(), 3);
    let saved = json(&part.join(CONFIG_FILE));
    assert_eq!(saved["data"]["neighbours"], nn.display().to_string());
    assert_eq!(saved["data"]["batch_size"], 16);
    assert!(saved["data"]["neighbour_table"]["sha256"].is_string());

    // Conflicting flags are refused before anything runs, each named with both values.
    let o = resume(
        &part,
        &[
            "--batch-size",
            "32",
            "--lr",
            "0.1",
            "--method",
            "byol",
            "--cache-decoded",
            "2",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    for needle in [
        "--batch-size 32 (the saved run has 16)",
        "--lr 0.1 (the saved run has 0.05)",
        "--method byol (the saved run has simclr)",
        "--cache-decoded 2 GiB (the saved run has no decoded cache",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    let other = tmp.path().join("other.parquet");
    pixel_neighbours(&data, 2, &other);
    let o = resume(&part, &["--neighbours", other.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("--neighbours") && err.contains("other.parquet"),
        "{err}"
    );
    assert_eq!(read_losses(&part.join(LOG_FILE)).unwrap().len(), 3);

    // No flag at all: the saved GPS run continues, step for step.
    let o = resume(&part, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let resumed = read_losses(&part.join(LOG_FILE)).unwrap();
    assert_eq!(resumed.len(), reference.len());
    for (step, (a, b)) in resumed.iter().zip(&reference).enumerate() {
        assert!((a - b).abs() <= 1e-6, "step {step}: {a} vs {b}");
    }
}

/// Resuming draws nothing from burn's process-wide RNG beyond what a fresh `Trainer::new`
/// draws under `seeded`: the next unseeded draw after a resume equals the one after `new`.
#[test]
fn resume_draws_no_unlocked_random_numbers() {
    let device = Device::flex().autodiff();
    let tmp = tempfile::tempdir().unwrap();
    let mut config = TrainConfig::new(MethodKind::Simclr, ResNetConfig::small(1));
    config.batch_size = 16;
    let trainer = Trainer::new(config.clone(), 4, &device)
        .unwrap()
        .with_output_dir(tmp.path())
        .unwrap();
    trainer
        .save_checkpoint(&tmp.path().join(CHECKPOINT_FILE))
        .unwrap();
    drop(trainer);
    let next_draw = || export_tensors(&MlpConfig::new(4, 6, 2, 2).init(&device).unwrap());

    let fresh = Trainer::new(config, 4, &device).unwrap();
    let after_new = next_draw();
    let resumed = Trainer::resume(tmp.path(), 4, &device).unwrap();
    let after_resume = next_draw();
    assert_eq!(resumed.position(), fresh.position());
    assert_eq!(after_new, after_resume, "resume drew random numbers");
}

/// A user error is one line naming what is wrong, with exit status 2 and no backtrace even
/// with `RUST_BACKTRACE=1`.
#[test]
fn cli_user_errors_are_one_line_without_backtrace() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_idx(tmp.path(), "a", 0..32);
    let bad_toml = tmp.path().join("bad.toml");
    std::fs::write(&bad_toml, "epoch = 3\n").unwrap();
    let missing = tmp.path().join("missing-run");
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            ["train", "--method", "simsiam", "--data", &data, "--out"]
                .map(String::from)
                .into_iter()
                .chain([tmp.path().join("run").display().to_string()])
                .collect(),
            vec!["simsiam", "simclr|byol"],
        ),
        (
            vec!["experiment".into(), bad_toml.display().to_string()],
            vec!["bad.toml", "epoch"],
        ),
        (
            vec![
                "train".into(),
                "--resume".into(),
                "--out".into(),
                missing.display().to_string(),
            ],
            vec!["missing-run", "--resume"],
        ),
    ];
    for (args, needles) in cases {
        let o = cli("warn").args(&args).output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            !err.to_lowercase().contains("backtrace"),
            "{args:?}: backtrace printed:\n{err}"
        );
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{args:?}: not one line:\n{err}"
        );
        assert!(err.starts_with("error: "), "{err}");
        for needle in needles {
            assert!(err.contains(needle), "{args:?}: no `{needle}` in {err}");
        }
    }
}

/// The three files of an output directory, byte for byte (`None` for a missing one).
fn run_files(dir: &Path) -> Vec<Option<Vec<u8>>> {
    [CONFIG_FILE, LOG_FILE, CHECKPOINT_FILE]
        .map(|f| std::fs::read(dir.join(f)).ok())
        .into()
}

/// Run A's directory after a few steps: its config, a checkpoint at step 3 and three log rows
/// (written as `CsvLog` writes them; no training needed to check who may write here).
fn run_in_progress(dir: &Path, config: &TrainConfig, device: &Device) {
    let trainer = Trainer::new(config.clone(), 4, device)
        .unwrap()
        .with_output_dir(dir)
        .unwrap();
    let mut ck = trainer.checkpoint();
    ck.position.step = 3;
    ck.position.batch = 3;
    ck.save(&dir.join(CHECKPOINT_FILE)).unwrap();
    let mut log = gps_ssl::train::CsvLog::open(&dir.join(LOG_FILE), 0).unwrap();
    for step in 0..3 {
        log.write(&gps_ssl::train::StepRecord {
            step,
            epoch: 0,
            batch: step as usize,
            lr: 0.1,
            momentum: 0.0,
            loss: 4.0 - step as f32,
            embedding_std: 0.1,
            seconds: 0.5,
            data_seconds: Some(0.01),
        })
        .unwrap();
    }
}

fn small_config(seed: u64, lr: f64) -> TrainConfig {
    let mut config = TrainConfig::new(MethodKind::Simclr, ResNetConfig::small(1));
    config.batch_size = 16;
    config.seed = seed;
    config.lr = lr;
    config
}

/// `Trainer::new(B).with_output_dir(dir of run A)` is refused and leaves A's config, log and
/// checkpoint as they were (it used to rewrite A's config and truncate A's log, so a later
/// `Trainer::resume` loaded config B with A's weights).
#[test]
fn output_dir_of_another_run_is_refused_and_left_intact() {
    let device = Device::flex().autodiff();
    let tmp = tempfile::tempdir().unwrap();
    let a = small_config(7, 0.05);
    run_in_progress(tmp.path(), &a, &device);
    let before = run_files(tmp.path());
    let b = small_config(7, 0.1);
    let err = Trainer::new(b, 4, &device)
        .unwrap()
        .with_output_dir(tmp.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("another run") && err.contains("lr"), "{err}");
    assert_eq!(run_files(tmp.path()), before);
    // A itself still resumes where it stood.
    let resumed = Trainer::resume(tmp.path(), 4, &device).unwrap();
    assert_eq!(resumed.position().step, 3);
    assert_eq!(read_losses(&tmp.path().join(LOG_FILE)).unwrap().len(), 3);
}

/// A fresh trainer of the same run pointed at the run in progress (before `with_checkpoint`)
/// is refused instead of truncating the log to step 0.
#[test]
fn fresh_trainer_does_not_truncate_a_run_in_progress() {
    let device = Device::flex().autodiff();
    let tmp = tempfile::tempdir().unwrap();
    let a = small_config(7, 0.05);
    run_in_progress(tmp.path(), &a, &device);
    let before = run_files(tmp.path());
    let err = Trainer::new(a, 4, &device)
        .unwrap()
        .with_output_dir(tmp.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("step 3"), "{err}");
    assert_eq!(run_files(tmp.path()), before);
}

/// A checkpoint carries its run's hash: another configuration with the same seed is refused
/// (only the seed was compared before).
#[test]
fn checkpoint_of_another_run_with_the_same_seed_is_refused() {
    let device = Device::flex().autodiff();
    let tmp = tempfile::tempdir().unwrap();
    let a = small_config(7, 0.05);
    let path = tmp.path().join(CHECKPOINT_FILE);
    Trainer::new(a.clone(), 4, &device)
        .unwrap()
        .save_checkpoint(&path)
        .unwrap();
    let ck = gps_ssl::train::Checkpoint::load(&path).unwrap();
    assert_eq!(ck.run_hash.as_deref(), Some(a.run_hash().unwrap().as_str()));
    let err = Trainer::new(small_config(7, 0.1), 4, &device)
        .unwrap()
        .with_checkpoint(&path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("run hash"), "{err}");
    // The same run restores.
    Trainer::new(a, 4, &device)
        .unwrap()
        .with_checkpoint(&path)
        .unwrap();
}
