//! Running an [`ExperimentConfig`]: stages, training runs, evaluation, report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::config::{ExperimentConfig, PIXEL_PRIOR};
use super::encode::encode_features;
use super::stages::{ensure_embeddings, ensure_neighbours, pixel_embeddings, PriorVectors};
use crate::eval::{
    markdown_table, write_figure, write_results_json, AugSetting, FeatureSet, KnnClassifier,
    LinearProbe, Metric, RunRecord,
};
use crate::ssl::{MethodKind, ResNetConfig};
use crate::train::{read_losses, PairData, TrainConfig, Trainer, CHECKPOINT_FILE, LOG_FILE};
use crate::{open_source, DataSource, Error, Progress, Purity, Result};

/// What [`run_experiment`] produced.
#[derive(Debug, Clone)]
pub struct ExperimentOutput {
    /// One record per training run (also in `results.json`).
    pub records: Vec<RunRecord>,
    /// The prior reference rows: each prior's own features evaluated like a trained encoder.
    pub priors: Vec<PriorReport>,
    /// Markdown table of weighted-kNN accuracy (paper Table 2 layout).
    pub table: String,
    /// `results.json`.
    pub results: PathBuf,
    /// `figure.png`.
    pub figure: PathBuf,
}

/// How good a prior's own features and its neighbour lists are, before any training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriorReport {
    /// Prior name.
    pub prior: String,
    /// Weighted 20-NN accuracy of the prior's features (train → test), when computed.
    pub knn_acc: Option<f64>,
    /// Label purity of the GPS lists for each `k` of the experiment.
    pub purity: Vec<(usize, Option<Vec<Purity>>)>,
}

/// The stage files of one GPS variant.
struct Variant {
    prior: String,
    k: usize,
    neighbours: PathBuf,
}

/// Runs every stage and every training run of `config` under `out`, reusing cached stages and
/// finished runs, and writes `results.json`, `table.md`, `figure.png` and `priors.json`.
pub fn run_experiment(
    config: &ExperimentConfig,
    out: &Path,
    progress: &dyn Progress,
) -> Result<ExperimentOutput> {
    config.validate()?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    write_json(&out.join("experiment.json"), config)?;
    let train: Arc<dyn DataSource> = Arc::from(open_source(&config.data)?);
    let test: Arc<dyn DataSource> = Arc::from(open_source(&config.test_data)?);
    let train_labels = labels_of(train.as_ref(), &config.data)?;
    let test_labels = labels_of(test.as_ref(), &config.test_data)?;

    let mut variants = Vec::new();
    let mut priors = Vec::new();
    if config.gps {
        for prior in &config.priors {
            let label = ExperimentConfig::prior_label(prior);
            let vectors = prior_vectors(config, prior, &label, train.as_ref(), out, "", progress)?;
            let knn_acc =
                match prior_vectors(config, prior, &label, test.as_ref(), out, "-test", progress) {
                    Ok(test_vectors) => Some(knn_accuracy(
                        &vectors.vectors,
                        &train_labels,
                        &test_vectors.vectors,
                        &test_labels,
                        vectors.dim,
                    )?),
                    Err(e) => {
                        tracing::warn!(prior, error = %e, "prior reference evaluation skipped");
                        None
                    }
                };
            let mut purity = Vec::new();
            for &k in &config.k {
                let path = out.join(format!("neighbours-{label}-k{k}.parquet"));
                let (_, p) = ensure_neighbours(&vectors, k, &train.fingerprint(), &path, progress)?;
                tracing::info!(prior = %label, k, purity = ?p, "GPS neighbour lists ready");
                purity.push((k, p));
                variants.push(Variant {
                    prior: label.clone(),
                    k,
                    neighbours: path,
                });
            }
            priors.push(PriorReport {
                prior: label,
                knn_acc,
                purity,
            });
        }
    }
    write_json(&out.join("priors.json"), &priors)?;

    let ctx = RunContext {
        config,
        train: &train,
        test: &test,
        train_labels: &train_labels,
        test_labels: &test_labels,
        out,
        progress,
    };
    let mut records = Vec::new();
    for &seed in &config.seeds {
        for method in &config.methods {
            for aug in &config.augs {
                if config.baseline {
                    records.push(ctx.train_and_evaluate(method, aug, seed, None)?);
                }
                for v in &variants {
                    records.push(ctx.train_and_evaluate(method, aug, seed, Some(v))?);
                }
            }
        }
    }

    let results = out.join("results.json");
    write_results_json(&results, &records)?;
    let mut table = markdown_table(&records, Metric::Knn);
    if config.linear_probe {
        table.push_str("\n\nLinear probe accuracy:\n\n");
        table.push_str(&markdown_table(&records, Metric::Linear));
    }
    let table_path = out.join("table.md");
    std::fs::write(&table_path, &table).map_err(|e| Error::io(&table_path, e))?;
    let figure = out.join("figure.png");
    write_figure(&figure, &records, Metric::Knn)?;
    Ok(ExperimentOutput {
        records,
        priors,
        table,
        results,
        figure,
    })
}

fn labels_of(source: &dyn DataSource, spec: &str) -> Result<Vec<i64>> {
    (0..source.len())
        .map(|i| {
            source.label(i)?.ok_or_else(|| {
                Error::invalid(
                    "dataset",
                    format!("{spec}: sample {i} has no label; evaluation needs labels"),
                )
            })
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn prior_vectors(
    config: &ExperimentConfig,
    prior: &str,
    label: &str,
    source: &dyn DataSource,
    out: &Path,
    suffix: &str,
    progress: &dyn Progress,
) -> Result<PriorVectors> {
    if prior == PIXEL_PRIOR {
        return pixel_embeddings(source, progress);
    }
    let path = out.join(format!("embeddings-{label}{suffix}.parquet"));
    ensure_embeddings(source, Path::new(prior), config.resolution, &path, progress)
}

fn knn_accuracy(
    train: &[f32],
    train_labels: &[i64],
    test: &[f32],
    test_labels: &[i64],
    dim: usize,
) -> Result<f64> {
    let report = KnnClassifier::builder().build()?.evaluate(
        &FeatureSet::new(train, train_labels, dim)?,
        &FeatureSet::new(test, test_labels, dim)?,
    )?;
    Ok(report.weighted_accuracy)
}

/// What every training run of one experiment shares.
struct RunContext<'a> {
    config: &'a ExperimentConfig,
    train: &'a Arc<dyn DataSource>,
    test: &'a Arc<dyn DataSource>,
    train_labels: &'a [i64],
    test_labels: &'a [i64],
    out: &'a Path,
    progress: &'a dyn Progress,
}

impl RunContext<'_> {
    /// Trains one run (or reuses its finished record) and evaluates its backbone.
    fn train_and_evaluate(
        &self,
        method: &str,
        aug: &str,
        seed: u64,
        variant: Option<&Variant>,
    ) -> Result<RunRecord> {
        let RunContext {
            config,
            train,
            test,
            train_labels,
            test_labels,
            out,
            progress,
        } = *self;
        let tag = match variant {
            None => "base".to_string(),
            Some(v) => format!("gps-{}-k{}", v.prior, v.k),
        };
        let dir = out
            .join("runs")
            .join(format!("{method}-{aug}-{tag}-s{seed}"));
        let record_path = dir.join("record.json");
        if let Ok(text) = std::fs::read_to_string(&record_path) {
            if let Ok(record) = serde_json::from_str::<RunRecord>(&text) {
                if record.epochs == config.epochs && record.seed == seed {
                    tracing::info!(run = %dir.display(), "reusing finished run");
                    return Ok(record);
                }
            }
        }
        tracing::info!(run = %dir.display(), "training");
        let started = Instant::now();
        let kind = MethodKind::parse(method)?;
        let pairs = PairData {
            data: config.data.clone(),
            neighbours: variant.map(|v| v.neighbours.clone()),
            aug: aug.to_string(),
            size: None,
            batch_size: config.batch_size,
            seed,
            workers: config.workers,
        };
        let mut loader = pairs.open()?;
        let recipe = loader.recipe().clone();
        let [channels, _, _] = loader.view_shape();
        let device = Device::flex().autodiff();
        let batches = loader.num_batches();
        let mut trainer = if dir.join(CHECKPOINT_FILE).is_file() {
            Trainer::resume(&dir, batches, &device)?
        } else {
            let mut tc =
                TrainConfig::new(kind, ResNetConfig::from_name(&config.backbone, channels)?);
            tc.epochs = config.epochs;
            tc.batch_size = config.batch_size;
            tc.seed = seed;
            tc.warmup_epochs = config.warmup_epochs;
            if let Some(lr) = config.lr {
                tc.lr = lr;
            }
            tc.data = pairs.describe();
            Trainer::new(tc, batches, &device)?.with_output_dir(&dir)?
        };
        trainer.fit(&mut loader, None, progress)?;
        // The whole run's curve, also when this call resumed it part-way.
        let loss_curve = read_losses(&dir.join(LOG_FILE))?;
        let train_seconds = started.elapsed().as_secs_f64();

        let backbone = &trainer.method().online().backbone;
        let train_f = encode_features(backbone, train.clone(), &recipe, &device, progress)?;
        let test_f = encode_features(backbone, test.clone(), &recipe, &device, progress)?;
        let dim = backbone.feature_dim();
        let train_set = FeatureSet::new(&train_f, train_labels, dim)?;
        let test_set = FeatureSet::new(&test_f, test_labels, dim)?;
        let knn = KnnClassifier::builder()
            .build()?
            .evaluate(&train_set, &test_set)?;
        let linear_acc = if config.linear_probe {
            Some(
                LinearProbe::builder()
                    .seed(seed)
                    .build()?
                    .evaluate(&train_set, &test_set)?
                    .accuracy,
            )
        } else {
            None
        };
        let record = RunRecord {
            method: kind.name().to_string(),
            aug: if aug == "strong" {
                AugSetting::Strong
            } else {
                AugSetting::Rhflip
            },
            gps: variant.is_some(),
            seed,
            knn_acc: knn.weighted_accuracy,
            nn1_acc: knn.nn1_accuracy,
            linear_acc,
            epochs: config.epochs,
            seconds: started.elapsed().as_secs_f64(),
            prior: variant.map(|v| v.prior.clone()),
            k: variant.map(|v| v.k),
            loss_curve,
        };
        tracing::info!(
            run = %dir.display(),
            knn = record.knn_acc,
            linear = ?record.linear_acc,
            train_seconds,
            "run evaluated"
        );
        write_json(&record_path, &record)?;
        Ok(record)
    }
}

fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Serde {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
