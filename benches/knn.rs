//! Neighbour-stage benchmark against faiss-cpu, both sides in one invocation.
//!
//! 1. exact k=20, cosine, `KNN_EXACT_N` × `KNN_EXACT_DIM` (default 20 000 × 1280; the issue's
//!    case is 60 000 × 1280) seeded clustered unit vectors, vs faiss `IndexFlatIP`.
//! 2. approximate k=10, `KNN_HNSW_N` × `KNN_HNSW_DIM` (default 20 000 × 512; the issue's case
//!    is 1 000 000 × 512) vs faiss `IndexHNSWFlat` with the same M / efConstruction
//!    (`KNN_HNSW_M`, `KNN_HNSW_EFC`: 16, 100), both sides swept over efSearch (`KNN_HNSW_EFS`).
//!    Recall@10 of both on the same 1000 seeded queries against brute force; the headline is
//!    each side's build + all-points search time at its first efSearch reaching recall 0.95.
//!    Peak RSS of both while building and searching.
//!
//! Real vectors: `KNN_EMBEDDINGS=<embeddings.parquet>` runs both cases on that file's rows
//! (L2-normalised; e.g. `gps-ssl embed` of the full 70k Fashion-MNIST with Lite0, 70 000 × 1280)
//! instead of the synthetic ones; the size variables are then ignored.
//!
//! Cases: `KNN_CASES` (default `exact,hnsw`), each run in its own function so that one case's
//! data is freed before the next one's peak RSS is taken.
//!
//! Threads: `KNN_THREADS` (default: all cores) for both sides. Peer: `benches/peers/knn_peer.py`
//! run with `KNN_PYTHON` (default `.venv/bin/python`, needs `faiss-cpu==1.15.1`).
//!
//! ```text
//! cargo bench --bench knn
//! # or on the dev build's dependencies, this crate compiled as in a release build:
//! cargo bench --profile dev --bench knn \
//!   --config 'profile.dev.package."gps-ssl".opt-level=3' \
//!   --config 'profile.dev.package."gps-ssl".debug-assertions=false' \
//!   --config 'profile.dev.package."gps-ssl".overflow-checks=false'
//! ```
//!
//! The last two flags matter: with debug assertions on, every `ptr.add` and unaligned SIMD load
//! in the distance kernels carries a precondition check (std's `ub_checks`), which took the
//! HNSW build from 1.2 s to 2.2 s on 20 000 × 512.

use std::io::Write;
use std::process::Command;
use std::time::Instant;

use gps_ssl::{
    knn::{HnswIndex, HnswParams, Insertion, KnnIndex, KnnMethod, Metric, NeighbourBuilder},
    progress::NoProgress,
    store::{EmbeddingTable, NeighbourTable},
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

/// The case's vectors: the rows of `KNN_EMBEDDINGS` (unit length), or [`data`]`(n, dim, seed)`.
fn vectors(n: usize, dim: usize, seed: u64) -> (Vec<f32>, usize, usize) {
    let Ok(path) = std::env::var("KNN_EMBEDDINGS") else {
        return (data(n, dim, seed), n, dim);
    };
    let table = EmbeddingTable::read(&path).unwrap_or_else(|e| panic!("KNN_EMBEDDINGS: {e}"));
    let mut v = table.vectors;
    for row in v.chunks_exact_mut(table.dim) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|x| *x /= norm);
        }
    }
    (v, table.ids.len(), table.dim)
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

    // Each case in its own function, so that its data is freed before the next one's peak RSS.
    let cases = std::env::var("KNN_CASES").unwrap_or_else(|_| "exact,hnsw".into());
    if cases.split(',').any(|c| c == "exact") {
        exact_case(threads, dir.path());
    }
    if cases.split(',').any(|c| c == "hnsw") {
        hnsw_case(threads, dir.path());
    }
}

/// 1. exact k-NN, ours vs faiss `IndexFlatIP`.
fn exact_case(threads: usize, dir: &std::path::Path) {
    let k = 20;
    let (v, n, dim) = vectors(
        env_usize("KNN_EXACT_N", 20_000),
        env_usize("KNN_EXACT_DIM", 1280),
        1,
    );
    let path = dir.join("exact.f32");
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
    let ids_path = dir.join("faiss_ids.i64");
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
    let tpath = dir.join("neighbours.parquet");
    table.write(&tpath).expect("write table");
    let bytes = std::fs::metadata(&tpath).map_or(0, |m| m.len());
    println!(
        "  table: {:.1} bytes/image on disk (zstd Parquet), {} bytes/image in memory (8·k+4, k={k})",
        bytes as f64 / n as f64,
        8 * k + 4
    );
}

/// 2. approximate k-NN, our HNSW vs faiss `IndexHNSWFlat`, swept over efSearch.
fn hnsw_case(threads: usize, dir: &std::path::Path) {
    let k = 10;
    let params = HnswParams {
        m: env_usize("KNN_HNSW_M", 16),
        ef_construction: env_usize("KNN_HNSW_EFC", 100),
        ef_search: 16,
    };
    let sweep = std::env::var("KNN_HNSW_EFS").unwrap_or_else(|_| "16,24,32,48,64,96,128".into());
    let efs: Vec<usize> = sweep.split(',').filter_map(|e| e.parse().ok()).collect();
    let target = 0.95;
    let (v, n, dim) = vectors(
        env_usize("KNN_HNSW_N", 20_000),
        env_usize("KNN_HNSW_DIM", 512),
        2,
    );
    let path = dir.join("hnsw.f32");
    write_f32(&path, &v);
    let truth_path = dir.join("truth.i64");
    let p = peer(&[
        "hnsw".into(),
        path.display().to_string(),
        n.to_string(),
        dim.to_string(),
        k.to_string(),
        threads.to_string(),
        params.m.to_string(),
        params.ef_construction.to_string(),
        sweep.clone(),
        "1000".into(),
        truth_path.display().to_string(),
    ]);
    let truth: Vec<i64> =
        bytemuck::cast_slice(&std::fs::read(&truth_path).expect("truth file")).to_vec();
    let sample = truth.len() / (k + 1);
    let (rows_q, truth_ids) = truth.split_at(sample);
    let faiss: Vec<(usize, f64, f64, f64)> = p["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r["ef"].as_u64().unwrap_or(0) as usize,
                r["build"].as_f64().unwrap_or(f64::NAN),
                r["search"].as_f64().unwrap_or(f64::NAN),
                r["recall"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    let faiss_peak = p["peak_rss"].as_f64().unwrap_or(f64::NAN);

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    reset_peak();
    let t = Instant::now();
    let mut index = pool
        .install(|| {
            HnswIndex::build(
                &v,
                dim,
                Metric::Cosine,
                params,
                Insertion::Parallel,
                &NoProgress,
            )
        })
        .expect("valid graph");
    let build = t.elapsed().as_secs_f64();
    let mut ours = Vec::new();
    for &ef in &efs {
        index.set_ef_search(ef);
        let t = Instant::now();
        let lists = pool
            .install(|| index.search_all(k, false, &NoProgress))
            .expect("search");
        let search = t.elapsed().as_secs_f64();
        let hit: usize = rows_q
            .iter()
            .enumerate()
            .map(|(j, &i)| {
                let got = lists.neighbours(i as usize);
                truth_ids[j * k..(j + 1) * k]
                    .iter()
                    .filter(|&&t| got.contains(&(t as u32)))
                    .count()
            })
            .sum();
        ours.push((ef, build, search, hit as f64 / (sample * k) as f64));
    }
    let our_peak = peak_rss();
    println!(
        "  {:<6} {:>22} {:>22}",
        "ef", "gps-ssl build+search s", "faiss build+search s"
    );
    for (o, f) in ours.iter().zip(&faiss) {
        println!(
            "  {:<6} {:>7.2}+{:<6.2} r {:.4} {:>7.2}+{:<6.2} r {:.4}",
            o.0, o.1, o.2, o.3, f.1, f.2, f.3
        );
    }
    let first_reaching = |rows: &[(usize, f64, f64, f64)]| {
        rows.iter()
            .find(|r| r.3 >= target)
            .or(rows.last())
            .copied()
            .unwrap_or((0, f64::NAN, f64::NAN, f64::NAN))
    };
    let (o, f) = (first_reaching(&ours), first_reaching(&faiss));
    println!(
        "{:<42} {:>10.2} {:>10.2} {:>7.2}x {:>9.4}",
        format!(
            "hnsw_knn/{n}x{dim}/k{k} M{} efc{} (recall>={target})",
            params.m, params.ef_construction
        ),
        o.1 + o.2,
        f.1 + f.2,
        (o.1 + o.2) / (f.1 + f.2),
        o.3
    );
    println!(
        "  at the first ef reaching recall@{k} {target}: gps-ssl ef {} (recall {:.4}), faiss ef {} (recall {:.4}); \
         recall on the same {sample} seeded queries against brute force",
        o.0, o.3, f.0, f.3
    );
    println!(
        "  peak RSS while building + searching (data included): gps-ssl {:.2} GiB, faiss {:.2} GiB",
        our_peak / f64::from(1 << 30),
        faiss_peak / f64::from(1 << 30)
    );
}

/// Resets this process's peak-RSS counter (`VmHWM`), Linux ≥ 4.0.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// This process's peak resident set since the last [`reset_peak`], bytes.
fn peak_rss() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb * 1024.0)
}
