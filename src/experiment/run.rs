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
use crate::train::{
    read_losses, OptimizerConfig, PairData, TrainConfig, Trainer, CHECKPOINT_FILE, LOG_FILE,
};
use crate::{open_source, DataSource, Error, Progress, Purity, Result};

/// Folder of the training runs inside an experiment's output folder.
pub const RUNS_DIR: &str = "runs";
/// File name of a finished run's record inside its run folder.
pub const RECORD_FILE: &str = "record.json";
/// File name of the invocation log inside an experiment's output folder: a JSON array with one
/// entry (`gps_version`, `config`) per call of [`run_experiment`] on that folder, oldest first.
pub const EXPERIMENT_LOG_FILE: &str = "experiment.json";
/// Hex digits of the run hash in a run folder's name.
const RUN_DIR_HASH_LEN: usize = 12;

/// `record.json`: the run's identity, its full configuration, what it was evaluated on, and the
/// [`RunRecord`] (flattened, so the file also reads as a plain record).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FinishedRun {
    /// [`TrainConfig::run_hash`] of `config`.
    run_hash: String,
    /// The training configuration (`config.json` of the run).
    config: TrainConfig,
    /// The evaluation settings the record's accuracies come from.
    evaluation: Evaluation,
    #[serde(flatten)]
    record: RunRecord,
}

/// What a run's accuracies depend on besides the trained encoder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Evaluation {
    /// Fingerprint of the training set the features are fitted on.
    train_fingerprint: String,
    /// Fingerprint of the test set.
    test_fingerprint: String,
    /// Whether the linear probe ran.
    linear_probe: bool,
    /// The kNN classifier settings.
    knn: String,
}

/// One entry of [`EXPERIMENT_LOG_FILE`].
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Invocation {
    gps_version: String,
    config: serde_json::Value,
}

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
/// finished runs, and writes `results.json`, `table.md`, `figure.png` and `priors.json`; the
/// call's configuration is appended to [`EXPERIMENT_LOG_FILE`].
///
/// A run lives in `out/runs/<method>-<aug>-<base|gps-<prior>-k<k>>-s<seed>-<hash>/`, where
/// `<hash>` is the first 12 hex digits of its [`TrainConfig::run_hash`] (method, loss,
/// optimiser, schedule, epochs, batch size, backbone, augmentation, seed, dataset fingerprint and
/// neighbour table content). Its `record.json` carries the full hash and configuration and is
/// reused only when both the hash and the evaluation inputs (test set fingerprint, linear probe)
/// match; any other configuration gets its own folder and is trained anew. A folder holding a
/// checkpoint but no matching record (an interrupted run) is resumed.
pub fn run_experiment(
    config: &ExperimentConfig,
    out: &Path,
    progress: &dyn Progress,
) -> Result<ExperimentOutput> {
    config.validate()?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    append_invocation(&out.join(EXPERIMENT_LOG_FILE), config)?;
    let train: Arc<dyn DataSource> = Arc::from(open_source(&config.data)?);
    let test: Arc<dyn DataSource> = Arc::from(open_source(&config.test_data)?);
    let train_labels = labels_of(train.as_ref(), &config.data)?;
    let train_fingerprint = train.fingerprint();
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
                let (_, p) = ensure_neighbours(&vectors, k, &train_fingerprint, &path, progress)?;
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
        fingerprints: (train_fingerprint, test.fingerprint()),
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
    /// Fingerprints of the train and test sets.
    fingerprints: (String, String),
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
            ref fingerprints,
            out,
            progress,
        } = *self;
        let tag = match variant {
            None => "base".to_string(),
            Some(v) => format!("gps-{}-k{}", v.prior, v.k),
        };
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
            skip_bad: false,
        };
        let (mut loader, data) = pairs.open_with_config()?;
        let recipe = loader.recipe().clone();
        let [channels, _, _] = loader.view_shape();
        let mut tc = TrainConfig::new(kind, ResNetConfig::from_name(&config.backbone, channels)?);
        tc.epochs = config.epochs;
        tc.batch_size = config.batch_size;
        tc.seed = seed;
        tc.warmup_epochs = config.warmup_epochs;
        if let Some(o) = &config.optimizer {
            tc = tc.with_optimizer(OptimizerConfig::parse(o)?);
        }
        if let Some(lr) = config.lr {
            tc.lr = lr;
        }
        if let Some(t) = config.temperature {
            tc.method = tc.method.with_temperature(t)?;
        }
        tc.data = Some(data);
        let run_hash = tc.run_hash()?;
        let evaluation = Evaluation {
            train_fingerprint: fingerprints.0.clone(),
            test_fingerprint: fingerprints.1.clone(),
            linear_probe: config.linear_probe,
            knn: "weighted 20-NN, cosine, T=0.07".into(),
        };
        let short = run_hash.get(..RUN_DIR_HASH_LEN).unwrap_or(&run_hash);
        let dir = out
            .join(RUNS_DIR)
            .join(format!("{method}-{aug}-{tag}-s{seed}-{short}"));
        let record_path = dir.join(RECORD_FILE);
        if let Some(done) = read_finished(&record_path) {
            if done.run_hash == run_hash && done.evaluation == evaluation {
                tracing::info!(run = %dir.display(), "reusing finished run");
                return Ok(done.record);
            }
            tracing::info!(run = %dir.display(), "record is for other evaluation inputs: re-evaluating");
        }
        let device = Device::flex().autodiff();
        let batches = loader.num_batches();
        let mut trainer = if dir.join(CHECKPOINT_FILE).is_file() {
            tracing::info!(run = %dir.display(), "resuming");
            Trainer::resume_with(tc.clone(), &dir, batches, &device)?
        } else {
            tracing::info!(run = %dir.display(), "training");
            Trainer::new(tc.clone(), batches, &device)?.with_output_dir(&dir)?
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
        write_json(
            &record_path,
            &FinishedRun {
                run_hash,
                config: tc,
                evaluation,
                record: record.clone(),
            },
        )?;
        Ok(record)
    }
}

/// The finished run at `path`, when there is a readable one (a missing, older or damaged record
/// is not reused: the run is evaluated or trained again).
fn read_finished(path: &Path) -> Option<FinishedRun> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str::<FinishedRun>(&text) {
        Ok(done) => Some(done),
        Err(e) => {
            tracing::info!(path = %path.display(), error = %e, "not reusing run record");
            None
        }
    }
}

/// Appends `config` to the invocation log at `path` (a JSON array; a file holding one
/// configuration object, as older versions wrote, becomes the array's first entry).
fn append_invocation(path: &Path, config: &ExperimentConfig) -> Result<()> {
    let serde_err = |e: serde_json::Error| Error::Serde {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let mut entries: Vec<serde_json::Value> = match std::fs::read_to_string(path) {
        Ok(text) => match serde_json::from_str(&text).map_err(serde_err)? {
            serde_json::Value::Array(entries) => entries,
            old => vec![serde_json::to_value(Invocation {
                gps_version: "unknown".into(),
                config: old,
            })
            .map_err(serde_err)?],
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(path, e)),
    };
    entries.push(
        serde_json::to_value(Invocation {
            gps_version: env!("CARGO_PKG_VERSION").into(),
            config: serde_json::to_value(config).map_err(serde_err)?,
        })
        .map_err(serde_err)?,
    );
    write_json(path, &entries)
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
