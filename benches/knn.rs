//! Neighbour-stage benchmark against faiss-cpu, both sides in one invocation.
//!
//! 1. exact k=20, cosine, `KNN_EXACT_N` × `KNN_EXACT_DIM` (default 20 000 × 1280; the issue's
//!    case is 60 000 × 1280) seeded clustered unit vectors, vs faiss `IndexFlatIP`.
//! 2. approximate k=10, `KNN_HNSW_N` × `KNN_HNSW_DIM` (default 20 000 × 512; the issue's case
//!    is 1 000 000 × 512) vs faiss `IndexHNSWFlat` at matched recall (the cheapest faiss
//!    efSearch whose recall@10 reaches ours).
//!
//! Threads: `KNN_THREADS` (default: all cores) for both sides. Peer: `benches/peers/knn_peer.py`
//! run with `KNN_PYTHON` (default `.venv/bin/python`, needs `faiss-cpu==1.15.1`).
//!
//! ```text
//! cargo bench --bench knn
//! # or without a release build of every dependency:
//! CARGO_PROFILE_DEV_OPT_LEVEL=3 cargo bench --profile dev --bench knn
//! ```

use std::io::Write;
use std::process::Command;
use std::time::Instant;

use gps_ssl::{
    knn::{HnswParams, KnnMethod, Metric, NeighbourBuilder},
    store::NeighbourTable,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn gaussian(rng: &mut ChaCha8Rng) -> f32 {
    let (u, w): (f32, f32) = (rng.random_range(1e-7..1.0), rng.random());
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * w).cos()
}

/// Seeded clustered unit vectors `[n, dim]` (√n clusters, within-cluster spread 0.5).
fn data(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let clusters = (n as f64).sqrt() as usize;
    let centres: Vec<f32> = (0..clusters * dim).map(|_| gaussian(&mut rng)).collect();
    let mut v = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = rng.random_range(0..clusters);
        let start = v.len();
        for d in 0..dim {
            v.push(centres[c * dim + d] + 0.5 * gaussian(&mut rng));
        }
        let norm = v[start..].iter().map(|x| x * x).sum::<f32>().sqrt();
        v[start..].iter_mut().for_each(|x| *x /= norm);
    }
    v
}

fn write_f32(path: &std::path::Path, v: &[f32]) {
    let mut f = std::fs::File::create(path).expect("temp data file");
    f.write_all(bytemuck::cast_slice(v)).expect("write data");
}

fn peer(args: &[String]) -> serde_json::Value {
    let python = std::env::var("KNN_PYTHON").unwrap_or_else(|_| ".venv/bin/python".into());
    let out = Command::new(&python)
        .arg("benches/peers/knn_peer.py")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "peer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or("{}");
    serde_json::from_str(last).expect("peer JSON")
}

fn main() {
    let threads = env_usize(
        "KNN_THREADS",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    println!(
        "threads: {threads} (KNN_THREADS); MATMUL_NUM_THREADS={:?}",
        std::env::var("MATMUL_NUM_THREADS").ok()
    );
    println!(
        "{:<42} {:>10} {:>10} {:>8} {:>9}",
        "case", "gps-ssl s", "faiss s", "ratio", "recall"
    );

    // 1. exact
    let (n, dim, k) = (
        env_usize("KNN_EXACT_N", 20_000),
        env_usize("KNN_EXACT_DIM", 1280),
        20,
    );
    let v = data(n, dim, 1);
    let path = dir.path().join("exact.f32");
    write_f32(&path, &v);
    let t = Instant::now();
    let out = NeighbourBuilder::new(&v, dim)
        .k(k)
        .metric(Metric::Cosine)
        .method(KnnMethod::Exact)
        .threads(threads)
        .build()
        .expect("valid search")
        .run()
        .expect("search");
    let ours = t.elapsed().as_secs_f64();
    let ids_path = dir.path().join("faiss_ids.i64");
    let p = peer(&[
        "exact".into(),
        path.display().to_string(),
        n.to_string(),
        dim.to_string(),
        k.to_string(),
        threads.to_string(),
        ids_path.display().to_string(),
    ]);
    let theirs = p["seconds"].as_f64().unwrap_or(f64::NAN);
    let faiss_ids: Vec<i64> =
        bytemuck::cast_slice(&std::fs::read(&ids_path).expect("faiss ids")).to_vec();
    let agree = (0..n)
        .map(|i| {
            let f = &faiss_ids[i * k..(i + 1) * k];
            out.lists
                .neighbours(i)
                .iter()
                .filter(|&&j| f.contains(&i64::from(j)))
                .count()
        })
        .sum::<usize>() as f64
        / (n * k) as f64;
    println!(
        "{:<42} {:>10.2} {:>10.2} {:>7.2}x {:>9.4}",
        format!("exact_knn/{n}x{dim}/k{k} (vs IndexFlatIP)"),
        ours,
        theirs,
        ours / theirs,
        agree
    );
    println!("  (recall column = share of faiss exact neighbours we also return; ties can differ)");
    let flops = (n as f64).powi(2) * dim as f64;
    println!(
        "  gps-ssl effective {:.1} GFLOP/s (n²·dim FLOP, symmetric tiles)",
        flops / ours / 1e9
    );
    let table = NeighbourTable::new(out.lists.clone(), out.summary.to_metadata());
    let tpath = dir.path().join("neighbours.parquet");
    table.write(&tpath).expect("write table");
    let bytes = std::fs::metadata(&tpath).map_or(0, |m| m.len());
    println!(
        "  table: {:.1} bytes/image on disk (zstd Parquet), {} bytes/image in memory (8·k+4, k={k})",
        bytes as f64 / n as f64,
        8 * k + 4
    );

    // 2. approximate
    let (n, dim, k) = (
        env_usize("KNN_HNSW_N", 20_000),
        env_usize("KNN_HNSW_DIM", 512),
        10,
    );
    let params = HnswParams {
        m: env_usize("KNN_HNSW_M", 16),
        ef_construction: env_usize("KNN_HNSW_EFC", 100),
        ef_search: env_usize("KNN_HNSW_EFS", 64),
    };
    let v = data(n, dim, 2);
    let path = dir.path().join("hnsw.f32");
    write_f32(&path, &v);
    let t = Instant::now();
    let out = NeighbourBuilder::new(&v, dim)
        .k(k)
        .metric(Metric::Cosine)
        .method(KnnMethod::Hnsw)
        .hnsw(params)
        .recall_sample(1000)
        .threads(threads)
        .build()
        .expect("valid search")
        .run()
        .expect("search");
    let total = t.elapsed().as_secs_f64();
    let ours = out.summary.search_seconds;
    let recall = out.summary.recall_estimate.unwrap_or(f64::NAN);
    let p = peer(&[
        "hnsw".into(),
        path.display().to_string(),
        n.to_string(),
        dim.to_string(),
        k.to_string(),
        threads.to_string(),
        params.m.to_string(),
        params.ef_construction.to_string(),
        "16,32,64,128,256".into(),
        "1000".into(),
    ]);
    let rows = p["rows"].as_array().cloned().unwrap_or_default();
    for r in &rows {
        println!(
            "  faiss HNSW ef={:<4} build {:>7.2} s search {:>7.2} s recall {:.4}",
            r["ef"],
            r["build"].as_f64().unwrap_or(0.0),
            r["search"].as_f64().unwrap_or(0.0),
            r["recall"].as_f64().unwrap_or(0.0)
        );
    }
    let matched = rows
        .iter()
        .find(|r| r["recall"].as_f64().unwrap_or(0.0) >= recall)
        .or(rows.last());
    let (theirs, their_recall) = matched.map_or((f64::NAN, f64::NAN), |r| {
        (
            r["build"].as_f64().unwrap_or(0.0) + r["search"].as_f64().unwrap_or(0.0),
            r["recall"].as_f64().unwrap_or(0.0),
        )
    });
    println!(
        "{:<42} {:>10.2} {:>10.2} {:>7.2}x {:>9.4}",
        format!(
            "hnsw_knn/{n}x{dim}/k{k} M{} efc{} efs{}",
            params.m, params.ef_construction, params.ef_search
        ),
        ours,
        theirs,
        ours / theirs,
        recall
    );
    println!(
        "  faiss at matched recall: {their_recall:.4}; gps-ssl recall check took {:.2} s more (total {total:.2} s)",
        out.summary.recall_seconds
    );
}
