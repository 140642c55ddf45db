//! Provenance other tools can read, and files other tools wrote (issue 15).
//!
//! pyarrow (the setup's venv) reads the `gps.*` keys of a gps-ssl embeddings file from its Arrow
//! schema; an embeddings file written by pyarrow with only `id` + `embedding` (List<float32>)
//! builds neighbour lists equal to numpy's exact cosine top-k, and trains.
// The binary and the trainer: the default features.
#![cfg(feature = "cli")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::tiny_idx;

use gps_ssl::store::{NeighbourTable, META_DATASET_FINGERPRINT};

fn cli() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gps-ssl"));
    c.env("RUST_LOG", "warn");
    c
}

fn python() -> Command {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let mut c = Command::new(venv);
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/provenance/foreign.py"));
    c
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Trains 4 steps on `data` into `dir/run` and writes its features of `data`.
fn features_of(dir: &Path, data: &str) -> PathBuf {
    let run = dir.join("run");
    ok(cli()
        .args([
            "train",
            "--method",
            "simclr",
            "--data",
            data,
            "--batch-size",
            "16",
        ])
        .args(["--workers", "1", "--out"])
        .arg(&run)
        .output()
        .unwrap());
    let features = dir.join("features.parquet");
    ok(cli()
        .args(["encode", "--run"])
        .arg(&run)
        .args(["--data", data, "--out"])
        .arg(&features)
        .output()
        .unwrap());
    features
}

#[test]
fn pyarrow_reads_the_provenance_from_the_arrow_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_idx(tmp.path(), "a", 0..64);
    let features = features_of(tmp.path(), &data);
    let seen: serde_json::Value =
        serde_json::from_str(&ok(python().arg("schema").arg(&features).output().unwrap())).unwrap();
    let table = gps_ssl::store::EmbeddingTable::read(&features).unwrap();
    for key in [
        META_DATASET_FINGERPRINT,
        "gps.prior.name",
        "gps.embedding.dim",
        "gps.encoder.run_hash",
    ] {
        assert_eq!(
            seen[key].as_str(),
            Some(table.metadata[key].as_str()),
            "{key} in pyarrow's schema metadata: {seen}"
        );
    }
}

#[test]
fn embeddings_written_by_another_tool_build_lists_and_train() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_idx(tmp.path(), "a", 0..64);
    let foreign = tmp.path().join("foreign.parquet");
    let expected: Vec<Vec<u32>> = serde_json::from_str(&ok(python()
        .arg("write")
        .arg(&foreign)
        .args(["64", "12", "7"])
        .output()
        .unwrap()))
    .unwrap();
    let nn = tmp.path().join("nn.parquet");
    let neighbours = |extra: &[&str]| {
        cli()
            .args(["neighbours", "--embeddings"])
            .arg(&foreign)
            .args(["--k", "3", "--method", "exact", "--out"])
            .arg(&nn)
            .args(extra)
            .output()
            .unwrap()
    };
    let report = ok(neighbours(&["--data", &data]));
    assert!(
        report.contains("prior      unknown (sha256 unknown)"),
        "{report}"
    );
    let table = NeighbourTable::read(&nn).unwrap();
    let lists: Vec<Vec<u32>> = (0..64)
        .map(|i| table.neighbours_of(i).unwrap().to_vec())
        .collect();
    assert_eq!(lists, expected, "gps-ssl vs numpy exact cosine top-3");
    assert!(
        !table.metadata.contains_key("gps.prior.sha256"),
        "invented provenance"
    );
    assert_eq!(
        table.fingerprint(),
        Some(
            gps_ssl::dataset::open_source(&data)
                .unwrap()
                .fingerprint()
                .as_str()
        )
    );
    ok(cli()
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
            "--max-steps",
            "2",
            "--workers",
            "1",
            "--out",
        ])
        .arg(tmp.path().join("run"))
        .output()
        .unwrap());

    // Another dataset than the ids allow, and a ragged list column, are named errors.
    let small = tiny_idx(tmp.path(), "small", 0..32);
    let o = neighbours(&["--data", &small]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("row 32 has id 32") && err.contains("32 samples"),
        "{err}"
    );
    ok(python()
        .arg("write")
        .arg(&foreign)
        .args(["64", "12", "7", "ragged"])
        .output()
        .unwrap());
    let o = neighbours(&[]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("row 3") && err.contains("11 values, expected 12"),
        "{err}"
    );
}
