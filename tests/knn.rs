//! Integration tests of the neighbours stage: exact vs a naive reference, HNSW recall,
//! GPS radius options, purity, Parquet round trip and input errors.

use gps_ssl::{
    knn::{label_purity, AdaptiveTau, HnswParams, KnnMethod, Metric, NeighbourBuilder, Radius},
    store::NeighbourTable,
    Error,
};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Naive O(n²) reference: row i = the k (k-1 with self) nearest others by (distance, id),
/// plus i itself sorted before equal distances when `include_self`.
fn naive(v: &[f32], dim: usize, k: usize, metric: Metric, include_self: bool) -> Vec<Vec<u32>> {
    let n = v.len() / dim;
    let row = |i: usize| &v[i * dim..(i + 1) * dim];
    (0..n)
        .map(|i| {
            let mut others: Vec<(f32, u32)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| (metric.distance(row(i), row(j)), j as u32))
                .collect();
            others.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let take = if include_self { k - 1 } else { k };
            let mut keep: Vec<(f32, bool, u32)> =
                others[..take].iter().map(|&(d, j)| (d, true, j)).collect();
            if include_self {
                keep.push((metric.distance(row(i), row(i)), false, i as u32));
            }
            keep.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            keep.into_iter().map(|(_, _, j)| j).collect()
        })
        .collect()
}

fn exact(v: &[f32], dim: usize, k: usize, metric: Metric, include_self: bool) -> Vec<Vec<u32>> {
    let out = NeighbourBuilder::new(v, dim)
        .k(k)
        .metric(metric)
        .method(KnnMethod::Exact)
        .include_self(include_self)
        .build()
        .unwrap()
        .run()
        .unwrap();
    (0..out.lists.len())
        .map(|i| out.lists.neighbours(i).to_vec())
        .collect()
}

fn gaussian(rng: &mut ChaCha8Rng) -> f32 {
    let (u, w): (f32, f32) = (rng.random_range(1e-7..1.0), rng.random());
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * w).cos()
}

/// `clusters` Gaussian blobs in `dim` dimensions, `n` points, spread `sigma` around unit-ish
/// centres. Returns (vectors [n, dim], labels [n]).
fn clustered(n: usize, dim: usize, clusters: usize, sigma: f32, seed: u64) -> (Vec<f32>, Vec<i64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres: Vec<f32> = (0..clusters * dim).map(|_| gaussian(&mut rng)).collect();
    let mut v = Vec::with_capacity(n * dim);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let c = rng.random_range(0..clusters);
        labels.push(c as i64);
        for d in 0..dim {
            v.push(centres[c * dim + d] + sigma * gaussian(&mut rng));
        }
    }
    (v, labels)
}

proptest! {
    // A fixed generator seed and no failure file: the same 64 cases on every run and machine
    // (proptest's default seed comes from the OS, which made this suite's outcome a draw).
    #![proptest_config(ProptestConfig {
        cases: 64,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x6b6e_6e5f_7465_7374),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    // Small integer coordinates make every inner product exact in f32, so GEMM and the naive
    // loop agree bit for bit and ties (frequent here) must be broken identically.
    #[test]
    fn exact_equals_naive_reference_with_ties(
        n in 2usize..40,
        dim in 1usize..7,
        seed in any::<u64>(),
        k_frac in 0.0f64..1.0,
        include_self in any::<bool>(),
        dot in any::<bool>(),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let v: Vec<f32> = (0..n * dim).map(|_| rng.random_range(-2i32..=2) as f32).collect();
        let max_k = if include_self { n } else { n - 1 };
        let k = 1 + ((max_k - 1) as f64 * k_frac) as usize;
        let metric = if dot { Metric::Dot } else { Metric::L2 };
        prop_assert_eq!(exact(&v, dim, k, metric, include_self), naive(&v, dim, k, metric, include_self));
    }
}

#[test]
fn exact_equals_naive_across_tile_boundaries() {
    // 2 500 points span three 1 024-row tiles, so off-diagonal (transposed) tiles are used.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (n, dim) = (2_500, 5);
    let v: Vec<f32> = (0..n * dim)
        .map(|_| rng.random_range(-3i32..=3) as f32)
        .collect();
    assert_eq!(
        exact(&v, dim, 7, Metric::L2, false),
        naive(&v, dim, 7, Metric::L2, false)
    );
}

#[test]
fn exact_cosine_distances_match_reference() {
    let (v, _) = clustered(300, 12, 4, 0.3, 3);
    let out = NeighbourBuilder::new(&v, 12)
        .k(5)
        .method(KnnMethod::Exact)
        .build()
        .unwrap()
        .run()
        .unwrap();
    let refs = naive(&v, 12, 5, Metric::Cosine, false);
    for (i, r) in refs.iter().enumerate() {
        let row = |j: usize| &v[j * 12..(j + 1) * 12];
        for (slot, &j) in r.iter().enumerate() {
            let want = Metric::Cosine.distance(row(i), row(j as usize));
            let got = out.lists.distances(i)[slot];
            assert!(
                (want - got).abs() < 1e-5,
                "row {i} slot {slot}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn nearest_neighbour_is_itself_when_included() {
    let (mut v, _) = clustered(500, 8, 5, 0.2, 11);
    // exact duplicates: point 1 = point 0, so self must win the tie at distance 0
    let p0: Vec<f32> = v[..8].to_vec();
    v[8..16].copy_from_slice(&p0);
    for metric in [Metric::Cosine, Metric::L2] {
        for method in [KnnMethod::Exact, KnnMethod::Hnsw] {
            let out = NeighbourBuilder::new(&v, 8)
                .k(4)
                .metric(metric)
                .method(method)
                .include_self(true)
                .deterministic(true)
                .build()
                .unwrap()
                .run()
                .unwrap();
            for i in 0..500 {
                assert_eq!(
                    out.lists.neighbours(i)[0],
                    i as u32,
                    "{metric} {method} row {i}"
                );
                assert_eq!(out.lists.distances(i)[0], 0.0);
            }
            assert_eq!(out.lists.neighbours(0)[1], 1, "the duplicate comes next");
        }
    }
}

#[test]
fn hnsw_recall_at_10_on_clustered_data() {
    let (v, _) = clustered(6_000, 32, 30, 0.35, 42);
    let out = NeighbourBuilder::new(&v, 32)
        .k(10)
        .method(KnnMethod::Hnsw)
        .hnsw(HnswParams {
            m: 16,
            ef_construction: 100,
            ef_search: 64,
        })
        .recall_sample(500)
        .deterministic(true)
        .build()
        .unwrap()
        .run()
        .unwrap();
    assert_eq!(out.summary.method, KnnMethod::Hnsw);
    let reported = out.summary.recall_estimate.unwrap();
    // independent check against the exact table on every row
    let truth = exact(&v, 32, 10, Metric::Cosine, false);
    let hits: usize = truth
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.iter()
                .filter(|j| out.lists.neighbours(i).contains(j))
                .count()
        })
        .sum();
    let recall = hits as f64 / (truth.len() * 10) as f64;
    assert!(recall >= 0.95, "recall@10 = {recall}");
    assert!(
        (reported - recall).abs() < 0.03,
        "estimate {reported} vs full {recall}"
    );
    // distances are exact and ascending
    for i in 0..out.lists.len() {
        assert!(out.lists.distances(i).windows(2).all(|w| w[0] <= w[1]));
    }
}

#[test]
fn refine_does_not_lower_recall() {
    let (v, _) = clustered(3_000, 16, 20, 0.5, 5);
    let run = |refine| {
        NeighbourBuilder::new(&v, 16)
            .k(10)
            .method(KnnMethod::Hnsw)
            .hnsw(HnswParams {
                m: 8,
                ef_construction: 32,
                ef_search: 10,
            })
            .refine_factor(refine)
            .recall_sample(3_000)
            .deterministic(true)
            .build()
            .unwrap()
            .run()
            .unwrap()
            .summary
            .recall_estimate
            .unwrap()
    };
    let (plain, refined) = (run(1), run(4));
    // Refining re-ranks more candidates exactly: recall must not drop at all.
    assert!(
        refined >= plain && refined > 0.97,
        "plain {plain} refined {refined}"
    );
}

#[test]
fn fixed_and_adaptive_radius_cut_the_lists() {
    // points on a line at 0, 1, 3, 7, 15 (L2 squared distances)
    let v = [0.0f32, 1.0, 3.0, 7.0, 15.0];
    let run = |radius| {
        NeighbourBuilder::new(&v, 1)
            .k(3)
            .metric(Metric::L2)
            .method(KnnMethod::Exact)
            .radius(radius)
            .build()
            .unwrap()
            .run()
            .unwrap()
    };
    let out = run(Radius::Fixed { tau: 4.0 });
    // row 0: others 1 (d=1), 3 (9), 7 (49) -> only id 1 inside
    assert_eq!(out.lists.valid(0), &[1]);
    // row 4 (x=15): nearest 7 at d=64 > 4 -> falls back to the nearest
    assert_eq!(out.lists.valid(4), &[3]);
    assert_eq!(out.lists.neighbours(4).len(), 3, "table stays k wide");
    // adaptive mean over 2 neighbours, row 1 (x=1): d = 1 (x=0), 4 (x=3) -> tau 2.5 -> 1 entry
    let out = run(Radius::Adaptive {
        stat: AdaptiveTau::Mean,
        threshold_k: 2,
    });
    assert_eq!(out.lists.valid(1), &[0]);
    let meta = out.summary.to_metadata();
    assert_eq!(
        meta["gps.knn.radius"],
        r#"{"kind":"adaptive","stat":"mean","threshold_k":2}"#
    );
}

#[test]
fn purity_of_two_separated_classes() {
    // class 0 near x=0, class 1 near x=100, one class-1 point (id 5) planted among class 0
    let v = [0.0f32, 0.1, 0.2, 0.3, 0.4, 0.25, 100.0, 100.1, 100.2, 100.3];
    let labels = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1].map(Some);
    let out = NeighbourBuilder::new(&v, 1)
        .k(1)
        .metric(Metric::L2)
        .build()
        .unwrap()
        .run()
        .unwrap();
    let p = label_purity(&out.lists, &labels, &[1]).unwrap().unwrap();
    // nearest others: id5's neighbour (x=0.2/0.3) is class 0, and ids 2, 3 (0.2, 0.3) pick id 5
    // (d 0.05) -> 3 of 10 pairs differ.
    assert!((p[0].purity - 0.7).abs() < 1e-12, "{:?}", p);
}

#[test]
fn parquet_round_trip_of_a_search() {
    let (v, _) = clustered(200, 6, 3, 0.3, 9);
    let out = NeighbourBuilder::new(&v, 6)
        .k(5)
        .radius(Radius::Fixed { tau: 0.01 })
        .build()
        .unwrap()
        .run()
        .unwrap();
    let mut meta = out.summary.to_metadata();
    meta.insert("gps.dataset.fingerprint".into(), "fp-1".into());
    let table = NeighbourTable::new(out.lists.clone(), meta);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("neighbours.parquet");
    table.write(&path).unwrap();
    let back = NeighbourTable::read(&path).unwrap();
    assert_eq!(back.lists, out.lists);
    assert_eq!(back.metadata["gps.knn.metric"], "cosine");
    assert_eq!(back.metadata["gps.knn.k"], "5");
    assert_eq!(back.metadata["gps.knn.method"], "exact");
    assert_eq!(back.metadata["gps.knn.recall_estimate"], "1.00000");
    assert!(back.check_dataset("fp-1", 200).is_ok());
    assert!(matches!(
        back.check_dataset("fp-2", 200),
        Err(Error::Mismatch { .. })
    ));
}

#[test]
fn bad_inputs_give_clear_errors() {
    let msg = |r: Result<_, Error>| {
        r.map(|_: gps_ssl::knn::NeighbourSearch<'_>| ())
            .unwrap_err()
            .to_string()
    };
    // dim mismatch
    let e = msg(NeighbourBuilder::new(&[1.0; 7], 3).k(1).build());
    assert!(e.contains("[n, 3]") && e.contains("7 values"), "{e}");
    // empty input
    let e = msg(NeighbourBuilder::new(&[], 3).k(1).build());
    assert!(e.contains("no points"), "{e}");
    // k >= n
    let e = msg(NeighbourBuilder::new(&[0.0, 1.0, 2.0], 1).k(3).build());
    assert!(e.contains("k=3") && e.contains("only 3 points"), "{e}");
    assert!(NeighbourBuilder::new(&[0.0, 1.0, 2.0], 1)
        .k(3)
        .include_self(true)
        .build()
        .is_ok());
    // NaN row is named
    let mut v = vec![0.5f32; 20];
    v[13] = f32::NAN;
    let e = NeighbourBuilder::new(&v, 4).k(2).build().unwrap_err();
    assert!(matches!(e, Error::NonFinite { row: 3, .. }), "{e}");
    assert!(e.to_string().contains("row 3"));
    // bad radius
    let e = msg(NeighbourBuilder::new(&[0.0, 1.0, 2.0], 1)
        .k(2)
        .radius(Radius::Adaptive {
            stat: AdaptiveTau::Mean,
            threshold_k: 5,
        })
        .build());
    assert!(e.contains("threshold_k"), "{e}");
}

#[test]
fn deterministic_hnsw_gives_identical_lists_for_any_thread_count() {
    let (v, _) = clustered(4_000, 16, 25, 0.4, 21);
    let run = |threads| {
        NeighbourBuilder::new(&v, 16)
            .k(8)
            .method(KnnMethod::Hnsw)
            .hnsw(HnswParams {
                m: 8,
                ef_construction: 40,
                ef_search: 16,
            })
            .recall_sample(0)
            .threads(threads)
            .deterministic(true)
            .build()
            .unwrap()
            .run()
            .unwrap()
    };
    let (a, b, c) = (run(1), run(2), run(2));
    assert_eq!(a.lists, b.lists, "1 vs 2 threads");
    assert_eq!(b.lists, c.lists, "two runs on 2 threads");
    assert_eq!(a.summary.insertion, gps_ssl::knn::Insertion::Sequential);
    assert!(a.summary.to_metadata()["gps.knn.params"].contains("\"insertion\":\"sequential\""));
}
