//! Integration tests of the evaluation stage: constructed cases with known answers, a real-data
//! check on Fashion-MNIST raw pixels, and the report files (JSON, markdown, PNG).
// The binary and the trainer: the default features.
#![cfg(feature = "cli")]

use gps_ssl::{
    eval::{
        markdown_table, read_results_json, recall_at_1, recall_at_k, write_figure,
        write_figure_with_references, write_results_json, AugSetting, FeatureSet, Gallery,
        KnnClassifier, LinearProbe, Metric, Montage, ReferenceLine, RunRecord, ANCHOR_COLOUR,
        FIGURE_HEIGHT, FIGURE_WIDTH, MATCH_COLOUR, MISMATCH_COLOUR, REFERENCE_COLOUR,
    },
    progress::NoProgress,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Standard normal sample (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f32 = rng.random::<f32>().max(1e-7);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
}

/// `per_class` points per class around `10 · e_c` (orthogonal centres) with N(0, σ²) noise.
fn clusters(
    classes: usize,
    dim: usize,
    per_class: usize,
    sigma: f32,
    seed: u64,
) -> (Vec<f32>, Vec<i64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..classes * per_class {
        let c = i % classes;
        for j in 0..dim {
            let centre = if j == c { 10.0 } else { 0.0 };
            x.push(centre + sigma * normal(&mut rng));
        }
        y.push(c as i64 * 7 - 3); // arbitrary, non-contiguous label values
    }
    (x, y)
}

#[test]
fn separable_clusters_are_classified_perfectly_by_knn_and_linear_probe() {
    let (xtr, ytr) = clusters(5, 16, 40, 0.5, 1);
    let (xte, yte) = clusters(5, 16, 20, 0.5, 2);
    let train = FeatureSet::new(&xtr, &ytr, 16).unwrap();
    let test = FeatureSet::new(&xte, &yte, 16).unwrap();
    let knn = KnnClassifier::builder()
        .build()
        .unwrap()
        .evaluate(&train, &test)
        .unwrap();
    assert_eq!(knn.weighted_accuracy, 1.0);
    assert_eq!(knn.majority_accuracy, 1.0);
    assert_eq!(knn.nn1_accuracy, 1.0);
    assert_eq!((knn.k, knn.n_train, knn.n_test), (20, 200, 100));
    let probe = LinearProbe::builder()
        .build()
        .unwrap()
        .evaluate(&train, &test)
        .unwrap();
    assert_eq!(probe.accuracy, 1.0, "{probe:?}");
    assert_eq!(probe.train_accuracy, 1.0);
    assert_eq!(probe.validation.len(), LinearProbe::DEFAULT_L2_GRID.len());
}

#[test]
fn shuffled_labels_give_chance_accuracy() {
    // 5 classes, labels independent of the features: accuracy ~ Binomial(1000, 0.2) / 1000,
    // standard deviation 0.0126, so [0.14, 0.26] is a ±4.7σ band around chance.
    let (classes, dim, n) = (5, 32, 1000);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut gen = |n: usize| {
        let x: Vec<f32> = (0..n * dim).map(|_| normal(&mut rng)).collect();
        let y: Vec<i64> = (0..n)
            .map(|_| rng.random_range(0..classes as i64))
            .collect();
        (x, y)
    };
    let (xtr, ytr) = gen(n);
    let (xte, yte) = gen(n);
    let train = FeatureSet::new(&xtr, &ytr, dim).unwrap();
    let test = FeatureSet::new(&xte, &yte, dim).unwrap();
    let knn = KnnClassifier::builder()
        .build()
        .unwrap()
        .evaluate(&train, &test)
        .unwrap();
    let probe = LinearProbe::builder()
        .build()
        .unwrap()
        .evaluate(&train, &test)
        .unwrap();
    for (name, acc) in [
        ("weighted kNN", knn.weighted_accuracy),
        ("1-NN", knn.nn1_accuracy),
        ("linear", probe.accuracy),
    ] {
        assert!(
            (0.14..=0.26).contains(&acc),
            "{name} accuracy {acc} is not near chance 0.2"
        );
    }
}

// Reference (NumPy):
// train = np.array([[0.99, 0.14106736], [0.9, -0.43588989], [0.85, 0.52678269], [-0.5, 0.8660254]])
// labels = np.array([0, 1, 1, 0]); test = np.array([[1.0, 0.0]])
// sim = test @ (train / np.linalg.norm(train, axis=1, keepdims=True)).T   # [0.99, 0.9, 0.85, -0.5]
// idx = np.argsort(-sim, axis=1)[:, :3]                                  # [0, 1, 2]
// for T in (0.07, 1.0):
//     w = np.exp(sim[0, idx[0]] / T)
//     print(np.bincount(labels[idx[0]], weights=w, minlength=2).argmax())
// T=0.07: votes [1387282.2, 571266.6] -> 0;  T=1.0: votes [2.691, 4.799] -> 1
#[test]
fn weighted_vote_matches_a_hand_computed_example() {
    let train = [
        0.99,
        0.141_067_36,
        0.9,
        -0.435_889_9,
        0.85,
        0.526_782_7,
        -0.5,
        0.866_025_4,
    ];
    let labels = [0, 1, 1, 0];
    let train = FeatureSet::new(&train, &labels, 2).unwrap();
    let test = FeatureSet::new(&[1.0, 0.0], &[0], 2).unwrap();
    let sharp = KnnClassifier::builder()
        .k(3)
        .temperature(0.07)
        .build()
        .unwrap();
    let p = sharp.predict(&train, &test, &NoProgress).unwrap();
    assert_eq!((p.weighted[0], p.majority[0], p.nn1[0]), (0, 1, 0));
    let flat = KnnClassifier::builder()
        .k(3)
        .temperature(1.0)
        .build()
        .unwrap();
    let p = flat.predict(&train, &test, &NoProgress).unwrap();
    assert_eq!((p.weighted[0], p.majority[0], p.nn1[0]), (1, 1, 0));
}

// Reference (NumPy):
// g = np.array([[1, 0], [0.95, 0.31], [0, 1], [0.3, 0.95], [-1, 0]]); gl = np.array([0, 0, 1, 2, 2])
// gn = g / np.linalg.norm(g, axis=1, keepdims=True); s = gn @ gn.T; np.fill_diagonal(s, -np.inf)
// order = np.argsort(-s, axis=1, kind="stable")
// [np.mean([(gl[order[i, :K]] == gl[i]).any() for i in range(5)]) for K in (1, 2, 4)]
// -> [0.4, 0.6, 0.8]
#[test]
fn recall_at_k_on_a_hand_made_fixture() {
    let g = [1.0, 0.0, 0.95, 0.31, 0.0, 1.0, 0.3, 0.95, -1.0, 0.0];
    let labels = [0, 0, 1, 2, 2];
    let set = FeatureSet::new(&g, &labels, 2).unwrap();
    let r = recall_at_k(&set, Gallery::SameAsQuery, &[1, 2, 4], &NoProgress).unwrap();
    assert_eq!(r, vec![0.4, 0.6, 0.8]);
    assert_eq!(recall_at_1(&set, Gallery::SameAsQuery).unwrap(), 0.4);
    // A separate gallery: the query is not excluded, so the identical point is its own hit.
    let query = FeatureSet::new(&[0.0, 2.0, -0.5, -0.1], &[1, 0], 2).unwrap();
    // Query 0 = 2·g[2] → g[2] (label 1, hit); query 1 ≈ −e₀ → g[4] (label 2, miss).
    assert_eq!(recall_at_1(&query, Gallery::Separate(set)).unwrap(), 0.5);
}

/// Reads an IDX file (gzip) of u8 images or labels: returns (dims, bytes).
fn read_idx(path: &Path) -> (Vec<usize>, Vec<u8>) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut bytes)
        .unwrap();
    let ndim = bytes[3] as usize;
    let dims: Vec<usize> = (0..ndim)
        .map(|d| u32::from_be_bytes(bytes[4 + 4 * d..8 + 4 * d].try_into().unwrap()) as usize)
        .collect();
    (dims, bytes[4 + 4 * ndim..].to_vec())
}

/// The Fashion-MNIST directory: the repository's bundled subset when present, else Debian's
/// `dataset-fashion-mnist` package.
fn fashion_dir() -> PathBuf {
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist");
    if bundled.join("train-images-idx3-ubyte.gz").exists() {
        bundled
    } else {
        PathBuf::from("/usr/share/datasets/fashion-mnist")
    }
}

/// The first `n` images of a split as raw-pixel features in [0, 1] (`[n, 784]`) and labels.
fn fashion(split: &str, n: usize) -> (Vec<f32>, Vec<i64>) {
    let dir = fashion_dir();
    let (dims, pixels) = read_idx(&dir.join(format!("{split}-images-idx3-ubyte.gz")));
    let (_, labels) = read_idx(&dir.join(format!("{split}-labels-idx1-ubyte.gz")));
    assert!(dims[0] >= n, "{split} has only {} images", dims[0]);
    let x = pixels[..n * 784]
        .iter()
        .map(|&p| f32::from(p) / 255.0)
        .collect();
    let y = labels[..n].iter().map(|&l| i64::from(l)).collect();
    (x, y)
}

/// Raw pixels, 1000 train / 500 test images, against the same classifier in float64 NumPy
/// (weighted: 358/500 = 0.716; 1-NN: 381/500 = 0.762), computed with:
/// ```python
/// import gzip, numpy as np
/// d = "data/fashion-mnist/"
/// def imgs(f, n): return np.frombuffer(gzip.open(d + f).read(), np.uint8, offset=16)[: n * 784].reshape(n, 784) / 255.0
/// def labs(f, n): return np.frombuffer(gzip.open(d + f).read(), np.uint8, offset=8)[:n].astype(np.int64)
/// xtr, ytr = imgs("train-images-idx3-ubyte.gz", 1000), labs("train-labels-idx1-ubyte.gz", 1000)
/// xte, yte = imgs("t10k-images-idx3-ubyte.gz", 500), labs("t10k-labels-idx1-ubyte.gz", 500)
/// ntr = xtr / np.linalg.norm(xtr, axis=1, keepdims=True)
/// nte = xte / np.linalg.norm(xte, axis=1, keepdims=True)
/// s = nte @ ntr.T
/// idx = np.argsort(-s, axis=1, kind="stable")[:, :20]
/// w = np.exp(np.take_along_axis(s, idx, 1) / 0.07)
/// votes = np.zeros((500, 10))
/// for i in range(500):
///     np.add.at(votes[i], ytr[idx[i]], w[i])
/// print((votes.argmax(1) == yte).mean(), (ytr[idx[:, 0]] == yte).mean())  # 0.716 0.762
/// ```
/// The f32 search may order a near-tie differently: at most one test image apart.
#[test]
fn raw_pixel_knn_on_fashion_mnist_matches_numpy() {
    let (xtr, ytr) = fashion("train", 1000);
    let (xte, yte) = fashion("t10k", 500);
    let train = FeatureSet::new(&xtr, &ytr, 784).unwrap();
    let test = FeatureSet::new(&xte, &yte, 784).unwrap();
    let knn = KnnClassifier::builder()
        .build()
        .unwrap()
        .evaluate(&train, &test)
        .unwrap();
    let one_image = 1.0 / 500.0 + 1e-9;
    assert!(
        (knn.weighted_accuracy - 0.716).abs() <= one_image,
        "{knn:?}"
    );
    assert!((knn.nn1_accuracy - 0.762).abs() <= one_image, "{knn:?}");
}

fn records() -> Vec<RunRecord> {
    let mut out = Vec::new();
    for (method, base) in [("SimCLR", 0.70), ("BYOL", 0.66)] {
        for aug in AugSetting::ALL {
            for gps in [false, true] {
                for seed in 0..3u64 {
                    let gain = if gps { 0.12 } else { 0.0 }
                        + if aug == AugSetting::Strong { 0.08 } else { 0.0 };
                    let acc = base + gain + 0.01 * seed as f64;
                    out.push(RunRecord {
                        method: method.into(),
                        aug,
                        gps,
                        seed,
                        knn_acc: acc,
                        nn1_acc: acc - 0.02,
                        linear_acc: Some(acc + 0.01),
                        epochs: 10,
                        seconds: 123.5,
                        prior: gps.then(|| "lite0".to_string()),
                        k: gps.then_some(5),
                        round: 0,
                        purity_at_1: None,
                        purity_at_k: None,
                        loss_curve: (0..10)
                            .map(|e| 5.0 - 0.2 * e as f32 - 0.1 * f32::from(gps))
                            .collect(),
                    });
                }
            }
        }
    }
    out
}

#[test]
fn results_json_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.json");
    let mut recs = records();
    recs[0].linear_acc = None;
    recs[0].prior = None;
    write_results_json(&path, &recs).unwrap();
    assert_eq!(read_results_json(&path).unwrap(), recs);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("\"aug\": \"rhflip\"") && text.contains("\"aug\": \"strong\""),
        "{text}"
    );
    assert!(text.contains("\"linear_acc\": null"));
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "[{\"method\": 3}]").unwrap();
    let err = read_results_json(&bad).unwrap_err().to_string();
    assert!(err.contains("bad.json"), "{err}");
}

#[test]
fn markdown_table_has_the_paper_shape() {
    // SimCLR RHFlipAug baseline kNN: [0.70, 0.71, 0.72] → 71.00 ± 1.00 (np.std(ddof=1)).
    let table = markdown_table(&records(), Metric::Knn);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0],
        "| Method | RHFlipAug baseline | RHFlipAug GPS | StrongAug baseline | StrongAug GPS |"
    );
    assert_eq!(lines[1], "|---|---:|---:|---:|---:|");
    assert_eq!(
        lines[2],
        "| SimCLR | 71.00 ± 1.00 | 83.00 ± 1.00 | 79.00 ± 1.00 | 91.00 ± 1.00 |"
    );
    assert_eq!(
        lines[3],
        "| BYOL | 67.00 ± 1.00 | 79.00 ± 1.00 | 75.00 ± 1.00 | 87.00 ± 1.00 |"
    );
    assert_eq!(lines.len(), 4);
    let linear = markdown_table(&records(), Metric::Linear);
    assert!(linear.contains("| SimCLR | 72.00 ± 1.00 |"), "{linear}");
}

#[test]
fn figure_is_a_decodable_png_of_the_documented_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.png");
    write_figure(&path, &records(), Metric::Knn).unwrap();
    let img = image::open(&path).unwrap();
    assert_eq!((img.width(), img.height()), (FIGURE_WIDTH, FIGURE_HEIGHT));
    // Not blank: the bars' colours are present.
    let rgb = img.to_rgb8();
    let gps_blue = rgb.pixels().filter(|p| p.0 == [0, 114, 178]).count();
    assert!(
        gps_blue > 1000,
        "only {gps_blue} pixels of the StrongAug GPS colour"
    );
    // Records without loss curves (and a single run) still draw.
    let mut one = records();
    one.truncate(1);
    one[0].loss_curve.clear();
    write_figure(&path, &one, Metric::Linear).unwrap();
    assert!(image::open(&path).is_ok());
}

#[test]
fn bars_of_a_group_with_two_settings_are_centred_on_it() {
    // The demo's shape: one method, RHFlipAug only, baseline and GPS. The bar panel is the left
    // 11/20 of the figure; its one group spans the plot width, so the bars' pixels must be
    // centred in the panel (before the fix they sat in the group's left half, ~140 px off).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.png");
    let demo: Vec<RunRecord> = records()
        .into_iter()
        .filter(|r| r.method == "SimCLR" && r.aug == AugSetting::Rhflip)
        .collect();
    write_figure(&path, &demo, Metric::Knn).unwrap();
    let rgb = image::open(&path).unwrap().to_rgb8();
    let panel = FIGURE_WIDTH * 11 / 20;
    let (mut lo, mut hi) = (u32::MAX, 0);
    // A bar column has its colour in many rows of the lower part (the legend strip at the top
    // repeats the colours; anti-aliased text may hit a bar colour in a pixel or two).
    for x in 0..panel {
        let hits = (FIGURE_HEIGHT * 6 / 10..FIGURE_HEIGHT)
            .filter(|&y| {
                let p = rgb.get_pixel(x, y).0;
                p == [160, 160, 160] || p == [213, 94, 0]
            })
            .count();
        if hits > 50 {
            lo = lo.min(x);
            hi = hi.max(x);
        }
    }
    assert!(hi > lo, "no bar pixels found");
    let centre = (lo + hi) as f64 / 2.0;
    // Plot area: 52 px of y labels + 14 px margin on the left, 14 px margin on the right.
    let expected = (66.0 + (panel - 14) as f64) / 2.0;
    assert!(
        (centre - expected).abs() < 20.0,
        "bars span {lo}..{hi} (centre {centre}), panel centre {expected}"
    );
    // The two bars fill most of the group (0.8 of its width), not half of it.
    assert!(
        (hi - lo) as f64 > 0.6 * (panel - 80) as f64,
        "bars span only {lo}..{hi}"
    );
}

/// Writes an embeddings.parquet (DESIGN.md schema and metadata) with the given rows.
fn write_embeddings(path: &Path, x: &[f32], labels: &[Option<i64>], dim: usize) {
    write_embeddings_with(path, x, labels, dim, true);
}

/// [`write_embeddings`], with the `gps.*` metadata or without it (a file written by another tool:
/// no prior, no dataset recorded).
fn write_embeddings_with(
    path: &Path,
    x: &[f32],
    labels: &[Option<i64>],
    dim: usize,
    metadata: bool,
) {
    use arrow_array::{ArrayRef, FixedSizeListArray, Float32Array, Int64Array, StringArray};
    use arrow_array::{RecordBatch, UInt64Array};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::file::metadata::KeyValue;
    use parquet::file::properties::WriterProperties;
    use std::sync::Arc;
    let n = labels.len();
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("key", DataType::Utf8, false),
        Field::new("label", DataType::Int64, true),
        Field::new(
            "embedding",
            DataType::FixedSizeList(item.clone(), dim as i32),
            false,
        ),
    ]));
    let list = FixedSizeListArray::try_new(
        item,
        dim as i32,
        Arc::new(Float32Array::from(x.to_vec())),
        None,
    )
    .unwrap();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from((0..n as u64).collect::<Vec<_>>())),
        Arc::new(StringArray::from_iter_values(
            (0..n).map(|i| format!("row{i}")),
        )),
        Arc::new(Int64Array::from(labels.to_vec())),
        Arc::new(list),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let meta = [
        ("gps.prior.name", "test".to_string()),
        ("gps.prior.sha256", "0".repeat(64)),
        ("gps.prior.input_size", "1".to_string()),
        ("gps.prior.preprocess", "none".to_string()),
        ("gps.embedding.dim", dim.to_string()),
        ("gps.embedding.normalized", "false".to_string()),
        ("gps.dataset.fingerprint", "test".to_string()),
        ("gps.dataset.len", n.to_string()),
        ("gps.version", "0.1.0".to_string()),
    ];
    let kv = meta
        .iter()
        .map(|(k, v)| KeyValue::new(k.to_string(), v.clone()))
        .collect();
    let props = WriterProperties::builder()
        .set_key_value_metadata(metadata.then_some(kv))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[test]
fn eval_cli_scores_two_embedding_files_and_writes_json() {
    let dir = tempfile::tempdir().unwrap();
    let (xtr, ytr) = clusters(3, 8, 30, 0.5, 3);
    let (xte, yte) = clusters(3, 8, 10, 0.5, 4);
    let (train, test) = (
        dir.path().join("train.parquet"),
        dir.path().join("test.parquet"),
    );
    write_embeddings(
        &train,
        &xtr,
        &ytr.iter().map(|&l| Some(l)).collect::<Vec<_>>(),
        8,
    );
    write_embeddings(
        &test,
        &xte,
        &yte.iter().map(|&l| Some(l)).collect::<Vec<_>>(),
        8,
    );
    let json = dir.path().join("eval.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gps-ssl"))
        .args(["eval", "--train-features"])
        .arg(&train)
        .arg("--test-features")
        .arg(&test)
        .args(["--recall", "1,5", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("| weighted 20-NN (T=0.07) | 100.00 |"),
        "{stdout}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["knn"]["weighted_accuracy"], 1.0);
    assert_eq!(v["linear"]["accuracy"], 1.0);
    assert_eq!(v["recall"][0], serde_json::json!([1, 1.0]));

    // A test row without a label is refused, naming the file and the row.
    let mut labels: Vec<Option<i64>> = yte.iter().map(|&l| Some(l)).collect();
    labels[4] = None;
    write_embeddings(&test, &xte, &labels, 8);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gps-ssl"))
        .args(["eval", "--no-linear", "--train-features"])
        .arg(&train)
        .arg("--test-features")
        .arg(&test)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("test.parquet") && stderr.contains("row 4"),
        "{stderr}"
    );
}

#[test]
fn report_cli_writes_table_and_figure() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.json");
    write_results_json(&results, &records()).unwrap();
    let out_dir = dir.path().join("report");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gps-ssl"))
        .args(["report", "--metric", "linear", "--results"])
        .arg(&results)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = std::fs::read_to_string(out_dir.join("table.md")).unwrap();
    assert!(table.contains("| SimCLR | 72.00 ± 1.00 |"), "{table}");
    let img = image::open(out_dir.join("report.png")).unwrap();
    assert_eq!((img.width(), img.height()), (FIGURE_WIDTH, FIGURE_HEIGHT));
}

/// The demo's shape: SimCLR under RHFlipAug, baseline and GPS, one seed each.
fn demo_records() -> Vec<RunRecord> {
    records()
        .into_iter()
        .filter(|r| r.method == "SimCLR" && r.aug == AugSetting::Rhflip && r.seed == 0)
        .collect()
}

/// The columns and the top row of the bar of `colour` in the bar panel: `(x_lo, x_hi, top)`,
/// and its bottom row. Only vertical runs of at least 15 pixels count: anti-aliased text (a
/// value label, a legend) may hit a bar's colour in a few pixels.
fn bar_extent(rgb: &image::RgbImage, colour: [u8; 3]) -> ((u32, u32, u32), u32) {
    let panel = FIGURE_WIDTH * 11 / 20;
    let (mut lo, mut hi, mut top, mut bottom) = (u32::MAX, 0, u32::MAX, 0);
    for x in 0..panel {
        let mut run = 0;
        // Below the legend strip, which repeats the colours in 16-pixel squares.
        for y in FIGURE_HEIGHT / 4..FIGURE_HEIGHT {
            if rgb.get_pixel(x, y).0 == colour {
                run += 1;
                if run == 15 {
                    lo = lo.min(x);
                    hi = hi.max(x);
                    top = top.min(y + 1 - 15);
                }
                if run >= 15 {
                    bottom = bottom.max(y);
                }
            } else {
                run = 0;
            }
        }
    }
    assert!(hi > lo, "no bar of colour {colour:?}");
    ((lo, hi, top), bottom)
}

#[test]
fn figure_writes_each_bar_value_above_it() {
    // One seed: no error bar, so whatever is drawn just above a bar is its value label.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("values.png");
    write_figure(&path, &demo_records(), Metric::Knn).unwrap();
    let rgb = image::open(&path).unwrap().to_rgb8();
    for colour in [[160, 160, 160], [213, 94, 0]] {
        let ((lo, hi, top), _) = bar_extent(&rgb, colour);
        let dark = (top.saturating_sub(22)..top.saturating_sub(1))
            .flat_map(|y| (lo..=hi).map(move |x| (x, y)))
            .filter(|&(x, y)| rgb.get_pixel(x, y).0.iter().all(|&c| c < 90))
            .count();
        assert!(
            dark > 20,
            "bar {colour:?}: only {dark} dark pixels above it"
        );
    }
}

#[test]
fn figure_draws_the_reference_line_at_its_value() {
    // Baseline bar 70 %, GPS bar 82 % (demo_records, seed 0); the reference at 50 %.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reference.png");
    let reference = ReferenceLine {
        label: "prior".into(),
        value: 0.5,
    };
    write_figure_with_references(&path, &demo_records(), Metric::Knn, &[reference]).unwrap();
    let rgb = image::open(&path).unwrap().to_rgb8();
    let ((_, _, top), bottom) = bar_extent(&rgb, [160, 160, 160]);
    let panel = FIGURE_WIDTH * 11 / 20;
    let row = (0..FIGURE_HEIGHT)
        .max_by_key(|&y| {
            (0..panel)
                .filter(|&x| rgb.get_pixel(x, y).0 == [204, 121, 167])
                .count()
        })
        .unwrap();
    let wide = (0..panel)
        .filter(|&x| rgb.get_pixel(x, row).0 == [204, 121, 167])
        .count();
    assert_eq!(REFERENCE_COLOUR.0, 204);
    assert!(wide as u32 > panel / 2, "the line spans only {wide} px");
    // The axis is linear from the bars' common bottom (0 %) through the 70 % bar's top.
    let expected = bottom as f64 - (bottom - top) as f64 * 50.0 / 70.0;
    assert!(
        (row as f64 - expected).abs() <= 3.0,
        "line at row {row}, expected {expected:.1}"
    );
    // A value outside [0, 1] draws no line.
    let off = ReferenceLine {
        label: "off".into(),
        value: 1.5,
    };
    write_figure_with_references(&path, &demo_records(), Metric::Knn, &[off]).unwrap();
    let rgb = image::open(&path).unwrap().to_rgb8();
    assert!(!rgb.pixels().any(|p| p.0 == [204, 121, 167]));
}

#[test]
fn figure_grid_has_one_line_every_ten_percent_and_no_minor_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grid.png");
    write_figure(&path, &demo_records(), Metric::Knn).unwrap();
    let rgb = image::open(&path).unwrap().to_rgb8();
    let ((lo, _, _), _) = bar_extent(&rgb, [160, 160, 160]);
    // Between the y axis (52 + 14 px from the left) and the first bar: a grid row is one grey
    // across all of these columns.
    let columns = 75..lo - 5;
    let grid_rows = (0..FIGURE_HEIGHT)
        .filter(|&y| {
            let first = rgb.get_pixel(columns.start, y).0;
            first[0] == first[1]
                && first[1] == first[2]
                && (150..250).contains(&first[0])
                && columns.clone().all(|x| rgb.get_pixel(x, y).0 == first)
        })
        .count();
    assert!(
        (5..=11).contains(&grid_rows),
        "{grid_rows} grid lines (expected one per 10 %, at most 11)"
    );
}

/// The 28×28 grey image `id` of the bundled training set, read straight from the IDX file, as
/// RGB scaled to `tile × tile` by bilinear interpolation.
fn idx_tile(pixels: &[u8], id: u32, tile: u32) -> image::RgbImage {
    let grey = &pixels[id as usize * 784..(id as usize + 1) * 784];
    let rgb: Vec<u8> = grey.iter().flat_map(|&v| [v, v, v]).collect();
    let img = image::RgbImage::from_raw(28, 28, rgb).unwrap();
    image::imageops::resize(&img, tile, tile, image::imageops::FilterType::Triangle)
}

#[test]
fn montage_tiles_are_the_images_the_neighbour_table_names() {
    use gps_ssl::knn::{KnnMethod, Metric as Distance, NeighbourBuilder};
    use gps_ssl::store::NeighbourTable;
    let n = 300;
    let (x, labels) = fashion("train", n);
    let lists = NeighbourBuilder::new(&x, 784)
        .k(5)
        .metric(Distance::Cosine)
        .method(KnnMethod::Exact)
        .build()
        .unwrap()
        .run()
        .unwrap()
        .lists;
    let table = NeighbourTable::new(lists, Default::default());
    let source =
        gps_ssl::dataset::open_source(fashion_dir().join("train").to_str().unwrap()).unwrap();
    let (_, pixels) = read_idx(&fashion_dir().join("train-images-idx3-ubyte.gz"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("montage.png");
    let tile = 56;
    let montage = Montage::builder()
        .rows(4)
        .neighbours(5)
        .tile(tile)
        .seed(7)
        .build()
        .unwrap();
    let layout = montage.write(&path, &table, source.as_ref()).unwrap();
    let png = image::open(&path).unwrap().to_rgb8();
    // 10 px margins, cells of 56 + 2·3 px, 6 px gaps, 14 px after the anchor column; a 26 px
    // title and a 17 px label line under each tile.
    let width = 2 * 10 + 6 * (tile + 6) + 5 * 6 + 14;
    let height = 2 * 10 + 26 + 4 * (tile + 6 + 17) + 3 * 6;
    assert_eq!((png.width(), png.height()), (width, height));
    assert_eq!((layout.width, layout.height), (width, height));
    assert_eq!(layout.rows.len(), 4);
    assert!(layout.labelled);

    let crop = |r: usize, c: usize| {
        let (x0, y0) = layout.tile_origin(r, c);
        image::imageops::crop_imm(&png, x0, y0, tile, tile).to_image()
    };
    let mut matched = 0;
    for (r, row) in layout.rows.iter().enumerate() {
        // The row is the anchor's list, nearest first.
        assert_eq!(
            row.neighbours,
            table.neighbours_of(row.anchor).unwrap(),
            "row {r}"
        );
        let ids = std::iter::once(row.anchor).chain(row.neighbours.iter().copied());
        for (c, id) in ids.enumerate() {
            assert_eq!(
                crop(r, c),
                idx_tile(&pixels, id, tile),
                "row {r} column {c}"
            );
            assert_eq!(row.labels[c], Some(labels[id as usize]));
            let (x0, y0) = layout.tile_origin(r, c);
            let frame = png.get_pixel(x0 - 1, y0 - 1).0;
            let expected = match c {
                0 => ANCHOR_COLOUR,
                _ if labels[id as usize] == labels[row.anchor as usize] => {
                    matched += 1;
                    MATCH_COLOUR
                }
                _ => MISMATCH_COLOUR,
            };
            assert_eq!(frame, expected, "outline of row {r} column {c}");
        }
    }
    assert_eq!(layout.matches(), matched);
    assert_eq!(layout.matches() + layout.mismatches(), 4 * 5);
    // The comparison tells images apart: another anchor's image is not this tile.
    let other = layout.rows[1].anchor;
    assert_ne!(crop(0, 0), idx_tile(&pixels, other, tile));

    // Seeded: the same seed gives the same picture, another seed other anchors.
    let again = dir.path().join("again.png");
    montage.write(&again, &table, source.as_ref()).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(&again).unwrap()
    );
    let reseeded = Montage::builder()
        .rows(4)
        .seed(8)
        .build()
        .unwrap()
        .layout(&table, source.as_ref())
        .unwrap();
    let anchors = |l: &gps_ssl::eval::MontageLayout| -> Vec<u32> {
        l.rows.iter().map(|r| r.anchor).collect()
    };
    assert_ne!(anchors(&reseeded), anchors(&layout));

    // A table made for another dataset is refused.
    let mut meta = std::collections::BTreeMap::new();
    meta.insert("gps.dataset.fingerprint".to_string(), "other".to_string());
    let foreign = NeighbourTable::new(table.lists.clone(), meta);
    let err = montage
        .write(&dir.path().join("foreign.png"), &foreign, source.as_ref())
        .unwrap_err()
        .to_string();
    assert!(err.contains("fingerprint"), "{err}");
}

#[test]
fn neighbours_cli_draws_a_montage_of_the_lists_it_writes() {
    // Raw-pixel embeddings of the first 200 bundled training images, with their labels.
    let dir = tempfile::tempdir().unwrap();
    let n = 200;
    let (x, labels) = fashion("train", n);
    let emb = dir.path().join("emb.parquet");
    write_embeddings(
        &emb,
        &x,
        &labels.iter().map(|&l| Some(l)).collect::<Vec<_>>(),
        784,
    );
    let (nn, png) = (dir.path().join("nn.parquet"), dir.path().join("m.png"));
    let data = fashion_dir().join("train");
    let run = |emb: &Path, extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gps-ssl"))
            .args(["neighbours", "--k", "4", "--embeddings"])
            .arg(emb)
            .arg("--out")
            .arg(&nn)
            .args(extra)
            .output()
            .unwrap()
    };
    let (png_arg, data_arg) = (png.to_str().unwrap(), data.to_str().unwrap());
    // The embeddings record the fingerprint "test", so --data (another fingerprint) is
    // refused before anything is drawn; without --data, --montage is refused by the parser.
    let out = run(&emb, &["--montage", png_arg]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--data"));
    let out = run(&emb, &["--montage", png_arg, "--data", data_arg]);
    assert!(!out.status.success());
    assert!(!png.exists());
    // Embeddings without a recorded dataset: --data records it and the montage is drawn.
    let bare = dir.path().join("bare.parquet");
    let labels: Vec<Option<i64>> = labels.iter().map(|&l| Some(l)).collect();
    write_embeddings_with(&bare, &x, &labels, 784, false);
    let out = run(
        &bare,
        &[
            "--montage-rows",
            "3",
            "--data",
            data_arg,
            "--montage",
            png_arg,
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("montage    "), "{stdout}");
    assert!(
        stdout.contains("3 anchors × up to 4 neighbours"),
        "{stdout}"
    );
    let img = image::open(&png).unwrap();
    // 10 px margins, 5 cells of 96 + 6 px, 4 gaps of 6 px and 14 px after the anchor; 3 rows.
    assert_eq!(
        (img.width(), img.height()),
        (20 + 5 * 102 + 4 * 6 + 14, 20 + 26 + 3 * (102 + 17) + 2 * 6)
    );
}

#[test]
fn report_refuses_a_priors_json_passed_as_results_naming_the_right_file() {
    let dir = tempfile::tempdir().unwrap();
    let priors = dir.path().join("priors.json");
    std::fs::write(
        &priors,
        r#"[{"prior": "efficientnet_lite0", "knn_acc": 0.854, "purity": []}]"#,
    )
    .unwrap();
    let err = read_results_json(&priors).unwrap_err().to_string();
    assert!(err.contains("priors.json"), "{err}");
    assert!(
        err.contains("this is an experiment's priors.json") && err.contains("results.json"),
        "{err}"
    );
    assert!(!err.contains("invalid type"), "{err}");
}
