//! `gps-ssl eval`: evaluate any two `embeddings.parquet` files (train = memory bank / probe
//! training set, test = queries) with weighted kNN, 1-NN, the linear probe and optional
//! Recall@K; print a table and write JSON.

use anyhow::{bail, Context};
use gps_ssl::{
    eval::{
        recall_at_k, FeatureSet, Gallery, KnnClassifier, KnnReport, LinearProbe, LinearProbeReport,
    },
    progress::Progress,
    store::EmbeddingTable,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Evaluate frozen features: weighted kNN (cosine, k=20, T=0.07), 1-NN, linear probe, Recall@K.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `embeddings.parquet` of the labelled train set (kNN memory bank, probe training data).
    #[arg(long)]
    pub train_features: PathBuf,
    /// `embeddings.parquet` of the labelled test set.
    #[arg(long)]
    pub test_features: PathBuf,
    /// Neighbours that vote in the weighted kNN classifier.
    #[arg(long, default_value_t = KnnClassifier::DEFAULT_K)]
    pub k: usize,
    /// Temperature of the kNN vote weight exp(similarity / T).
    #[arg(long, default_value_t = KnnClassifier::DEFAULT_TEMPERATURE)]
    pub temperature: f32,
    /// Skip the linear probe.
    #[arg(long)]
    pub no_linear: bool,
    /// Seed of the linear probe's held-out split.
    #[arg(long, default_value_t = LinearProbe::DEFAULT_SEED)]
    pub seed: u64,
    /// Also report Recall@K of the test set against itself, self excluded (SOP / CUB
    /// protocol), for these K (comma-separated, e.g. `1,10,100`).
    #[arg(long, value_delimiter = ',')]
    pub recall: Vec<usize>,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// What `--json` writes.
#[derive(Debug, Serialize)]
struct Summary {
    train_features: PathBuf,
    test_features: PathBuf,
    dim: usize,
    knn: KnnReport,
    linear: Option<LinearProbeReport>,
    /// `(K, Recall@K)` pairs.
    recall: Vec<(usize, f64)>,
    seconds: f64,
}

/// Labelled features read from an embeddings file.
struct Labelled {
    dim: usize,
    vectors: Vec<f32>,
    labels: Vec<i64>,
}

/// Reads an embeddings file (or folder of shard parts) with the `store` reader; every row needs
/// a label.
fn read_labelled(path: &Path) -> anyhow::Result<Labelled> {
    let table = EmbeddingTable::read(path)?;
    let mut labels = Vec::with_capacity(table.labels.len());
    for (row, label) in table.labels.iter().enumerate() {
        match label {
            Some(l) => labels.push(*l),
            None => bail!(
                "{}: row {row} (key `{}`) has no label; evaluation needs labels",
                path.display(),
                table.keys.get(row).map(String::as_str).unwrap_or("?")
            ),
        }
    }
    if labels.is_empty() {
        bail!("{}: no rows", path.display());
    }
    Ok(Labelled {
        dim: table.dim,
        vectors: table.vectors,
        labels,
    })
}

/// An indicatif bar behind the library's [`Progress`] observer.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn start(&self, stage: &str, total: u64) {
        self.0.set_length(total);
        self.0.set_position(0);
        self.0.set_message(stage.to_string());
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

fn bar() -> Bar {
    let pb = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({eta})") {
        pb.set_style(style.progress_chars("=> "));
    }
    Bar(pb)
}

/// Runs `gps-ssl eval`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let train = read_labelled(&args.train_features)?;
    let test = read_labelled(&args.test_features)?;
    let train_set = FeatureSet::new(&train.vectors, &train.labels, train.dim)
        .with_context(|| format!("{}", args.train_features.display()))?;
    let test_set = FeatureSet::new(&test.vectors, &test.labels, test.dim)
        .with_context(|| format!("{}", args.test_features.display()))?;
    let knn = KnnClassifier::builder()
        .k(args.k)
        .temperature(args.temperature)
        .build()?;
    let knn = knn.evaluate_with_progress(&train_set, &test_set, &bar())?;
    let linear = if args.no_linear {
        None
    } else {
        let spinner = ProgressBar::new_spinner();
        spinner.set_message("linear probe (L-BFGS, L2 chosen on a held-out split)");
        spinner.enable_steady_tick(std::time::Duration::from_millis(120));
        let report = LinearProbe::builder()
            .seed(args.seed)
            .build()?
            .evaluate(&train_set, &test_set);
        spinner.finish_and_clear();
        Some(report?)
    };
    let recall = if args.recall.is_empty() {
        Vec::new()
    } else {
        let r = recall_at_k(&test_set, Gallery::SameAsQuery, &args.recall, &bar())?;
        args.recall.iter().copied().zip(r).collect()
    };
    let summary = Summary {
        train_features: args.train_features.clone(),
        test_features: args.test_features.clone(),
        dim: train.dim,
        knn,
        linear,
        recall,
        seconds: started.elapsed().as_secs_f64(),
    };
    print_table(&summary);
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&summary)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json).with_context(|| format!("{}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("{}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn print_table(s: &Summary) {
    let k = s.knn.k;
    println!(
        "train {} rows, test {} rows, dim {} ({:.1} s)",
        s.knn.n_train, s.knn.n_test, s.dim, s.seconds
    );
    println!("| metric | accuracy (%) |");
    println!("|---|---:|");
    println!(
        "| weighted {k}-NN (T={}) | {:.2} |",
        s.knn.temperature,
        100.0 * s.knn.weighted_accuracy
    );
    println!(
        "| majority {k}-NN | {:.2} |",
        100.0 * s.knn.majority_accuracy
    );
    println!("| 1-NN | {:.2} |", 100.0 * s.knn.nn1_accuracy);
    if let Some(l) = &s.linear {
        let note = if l.converged { "" } else { ", not converged" };
        println!(
            "| linear probe (λ={:.0e}{note}) | {:.2} |",
            l.l2,
            100.0 * l.accuracy
        );
    }
    for (k, r) in &s.recall {
        println!("| Recall@{k} (test vs test) | {:.2} |", 100.0 * r);
    }
}
