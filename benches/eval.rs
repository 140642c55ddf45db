//! Evaluation speed: weighted kNN over 10k test × 10k train × 512-d, and the linear probe on
//! 10k × 512 (default L2 grid of 6 values + refit).
//!
//! Run: `cargo bench --bench eval` (sizes can be overridden: `-- --n 5000 --dim 256`).
//! Data: seeded, overlapping clusters (10 classes), so the classifiers do real work. The NumPy
//! peer (`scripts/bench_eval_peer.py`, solo-learn's recipe) runs on the same data in the same
//! invocation when `.venv/bin/python` (or `python3`) has NumPy.

use gps_ssl::eval::{FeatureSet, KnnClassifier, LinearProbe};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

fn data(n: usize, dim: usize, classes: usize, seed: u64) -> (Vec<f32>, Vec<i64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Class centres: the same for train and test (seed 99), uniform in [-1, 1).
    let mut centre_rng = ChaCha8Rng::seed_from_u64(99);
    let centres: Vec<f32> = (0..classes * dim)
        .map(|_| 2.0 * centre_rng.random::<f32>() - 1.0)
        .collect();
    let mut x = Vec::with_capacity(n * dim);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % classes;
        for j in 0..dim {
            x.push(centres[c * dim + j] + 2.0 * (rng.random::<f32>() - 0.5));
        }
        y.push(c as i64);
    }
    (x, y)
}

/// Runs `scripts/bench_eval_peer.py` (NumPy, solo-learn's recipe) on the same data; returns its
/// (seconds, accuracy).
fn numpy_peer(
    xtr: &[f32],
    ytr: &[i64],
    xte: &[f32],
    yte: &[i64],
    dim: usize,
) -> Result<(f64, f64), String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join(".venv/bin/python");
    let python = if venv.exists() {
        venv
    } else {
        "python3".into()
    };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let write = |name: &str, bytes: Vec<u8>| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes)
            .map(|_| p)
            .map_err(|e| e.to_string())
    };
    let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let i64s = |v: &[i64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let files = [
        write("xtr", f32s(xtr))?,
        write("ytr", i64s(ytr))?,
        write("xte", f32s(xte))?,
        write("yte", i64s(yte))?,
    ];
    let out = std::process::Command::new(&python)
        .arg(root.join("scripts/bench_eval_peer.py"))
        .args(&files)
        .args([
            ytr.len().to_string(),
            yte.len().to_string(),
            dim.to_string(),
        ])
        .output()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or("")
            .to_string());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace().map(|p| p.parse::<f64>());
    match (parts.next(), parts.next()) {
        (Some(Ok(s)), Some(Ok(a))) => Ok((s, a)),
        _ => Err(format!("unexpected peer output {text:?}")),
    }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n = arg("--n", 10_000);
    let dim = arg("--dim", 512);
    let (xtr, ytr) = data(n, dim, 10, 1);
    let (xte, yte) = data(n, dim, 10, 2);
    let train = FeatureSet::new(&xtr, &ytr, dim).expect("train");
    let test = FeatureSet::new(&xte, &yte, dim).expect("test");
    let threads = rayon::current_num_threads();
    println!("eval benchmark: {threads} rayon threads");
    println!("| case | seconds | throughput | result |");
    println!("|---|---:|---:|---|");

    let knn = KnnClassifier::builder().build().expect("knn");
    let t = Instant::now();
    let report = knn.evaluate(&train, &test).expect("knn eval");
    let s = t.elapsed().as_secs_f64();
    let gflops = 2.0 * (n * n * dim) as f64 / s / 1e9;
    println!(
        "| knn_eval/{n}x{n}x{dim}/k20 | {s:.2} | {:.0} queries/s ({gflops:.1} GFLOP/s) | acc {:.3} |",
        n as f64 / s,
        report.weighted_accuracy
    );
    match numpy_peer(&xtr, &ytr, &xte, &yte, dim) {
        Ok((peer_s, peer_acc)) => println!(
            "| knn_eval_numpy/{n}x{n}x{dim}/k20 | {peer_s:.2} | {:.0} queries/s | acc {peer_acc:.3}; \
             gps-ssl is {:.2}× NumPy's speed |",
            n as f64 / peer_s,
            peer_s / s
        ),
        Err(e) => println!("| knn_eval_numpy | — | — | peer not run: {e} |"),
    }

    let probe = LinearProbe::builder().build().expect("probe");
    let t = Instant::now();
    let report = probe.evaluate(&train, &test).expect("probe eval");
    let s = t.elapsed().as_secs_f64();
    println!(
        "| linear_probe/{n}x{dim}/grid{} | {s:.2} | {:.0} rows/s | acc {:.3}, λ {:.0e}, {} it, converged {} |",
        LinearProbe::DEFAULT_L2_GRID.len(),
        n as f64 / s,
        report.accuracy,
        report.l2,
        report.iterations,
        report.converged
    );
}
