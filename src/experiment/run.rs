//! Running an [`ExperimentConfig`]: stages, training runs, evaluation, report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::config::{ExperimentConfig, NO_PRIOR, PIXEL_PRIOR};
use super::stages::{
    ensure_embeddings, ensure_neighbours, pixel_embeddings, vectors_sha256, PriorVectors,
};
use crate::eval::encode_features;
use crate::eval::{
    markdown_table, rounds_table, write_figure_with_references, write_results_json, AugSetting,
    FeatureSet, KnnClassifier, LinearProbe, Metric, Montage, ReferenceLine, RunRecord,
};
use crate::export::{TrainedEncoder, META_ENCODER_RUN_HASH};
use crate::ssl::{MethodKind, ResNetConfig};
use crate::store::{NeighbourTable, META_DATASET_FINGERPRINT};
use crate::train::{
    read_losses, OptimizerConfig, PairData, RemineConfig, TrainConfig, Trainer, CHECKPOINT_FILE,
    LOG_FILE,
};
use crate::{
    dataset::{open_source, DataSource},
    knn::Purity,
    progress::Progress,
    store::EmbeddingTable,
    Error, Result,
};

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
#[non_exhaustive]
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
    /// The neighbour montage of each prior's lists, `montage-<prior>-k<k>.png` (see
    /// [`Montage`]), in the order of the priors and `k`s.
    pub montages: Vec<PathBuf>,
}

/// How good a prior's own features and its neighbour lists are, before any training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
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
    /// Label of the chain's start: the prior's label, or [`NO_PRIOR`].
    start: String,
    k: usize,
    /// The GPS lists; `None` for plain SSL (the [`NO_PRIOR`] chain's round 0).
    neighbours: Option<PathBuf>,
    /// Iterated-GPS round (0: the prior's lists).
    round: usize,
    /// Label purity of the lists at 1 / 5 / 10 / k.
    purity: Option<Vec<Purity>>,
}

impl Variant {
    /// The prior label of this variant's records: `<start>[+remine<E>][.r<round>]`.
    fn label(&self, remine_every: usize) -> String {
        let mut label = self.start.clone();
        if remine_every > 0 {
            label.push_str(&format!("+remine{remine_every}"));
        }
        if self.round > 0 {
            label.push_str(&format!(".r{}", self.round));
        }
        label
    }

    /// The purity of the lists at `j` neighbours, when measured.
    fn purity_at(&self, j: usize) -> Option<f64> {
        self.purity
            .as_ref()?
            .iter()
            .find(|p| p.k == j)
            .map(|p| p.purity)
    }
}

/// A finished round-0 run that starts an iterated-GPS chain.
struct ChainStart {
    start: String,
    k: usize,
    dir: PathBuf,
    remine_every: usize,
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
    let mut montages = Vec::new();
    if config.gps {
        for prior in &config.priors {
            let label = ExperimentConfig::prior_label(prior);
            if prior == NO_PRIOR {
                variants.extend(config.k.iter().map(|&k| Variant {
                    start: label.clone(),
                    k,
                    neighbours: None,
                    round: 0,
                    purity: None,
                }));
                continue;
            }
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
                let (lists, p) =
                    ensure_neighbours(&vectors, k, &train_fingerprint, &path, progress)?;
                tracing::info!(prior = %label, k, purity = ?p, "GPS neighbour lists ready");
                // A look at the lists before any training: anchors and their neighbours.
                let montage = out.join(format!("montage-{label}-k{k}.png"));
                let table = NeighbourTable::new(lists, Default::default());
                Montage::builder()
                    .build()?
                    .write(&montage, &table, train.as_ref())?;
                montages.push(montage);
                purity.push((k, p.clone()));
                variants.push(Variant {
                    start: label.clone(),
                    k,
                    neighbours: Some(path),
                    round: 0,
                    purity: p,
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
                    records.push(ctx.train_and_evaluate(method, aug, seed, None, 0)?.0);
                }
                let mut chains = Vec::new();
                for v in &variants {
                    for &remine_every in &config.remine_every {
                        let plain = v.neighbours.is_none() && remine_every == 0;
                        // The `none` chain's round 0 without re-mining is the baseline run.
                        let (record, dir) = if plain {
                            ctx.train_and_evaluate(method, aug, seed, None, 0)?
                        } else {
                            ctx.train_and_evaluate(method, aug, seed, Some(v), remine_every)?
                        };
                        if !(plain && config.baseline) {
                            records.push(record);
                        }
                        chains.push(ChainStart {
                            start: v.start.clone(),
                            k: v.k,
                            dir,
                            remine_every,
                        });
                    }
                }
                for chain in &chains {
                    let mut previous = chain.dir.clone();
                    for round in 1..=config.rounds {
                        let v = ctx.round_variant(chain, round, &previous)?;
                        let (record, dir) = ctx.train_and_evaluate(
                            method,
                            aug,
                            seed,
                            Some(&v),
                            chain.remine_every,
                        )?;
                        records.push(record);
                        previous = dir;
                    }
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
    if let Some(rounds) = rounds_table(&records) {
        table.push_str("\n\nIterated GPS, per round (lists purity, accuracy in %):\n\n");
        table.push_str(&rounds);
    }
    let table_path = out.join("table.md");
    std::fs::write(&table_path, &table).map_err(|e| Error::io(&table_path, e))?;
    let figure = out.join("figure.png");
    write_figure_with_references(&figure, &records, Metric::Knn, &reference_lines(&priors))?;
    Ok(ExperimentOutput {
        records,
        priors,
        table,
        results,
        figure,
        montages,
    })
}

/// One reference line per prior whose own weighted 20-NN accuracy was measured.
pub fn reference_lines(priors: &[PriorReport]) -> Vec<ReferenceLine> {
    priors
        .iter()
        .filter_map(|p| {
            Some(ReferenceLine {
                label: format!("{} prior, its own features", p.prior),
                value: p.knn_acc?,
            })
        })
        .collect()
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
    /// The round-`round` variant of `chain`: lists mined from the encoder trained in
    /// `previous` (round `round − 1`), its backbone features of the training set cached as
    /// `features-<run folder>.parquet` and the lists as `neighbours-<run folder>-k<k>.parquet`.
    fn round_variant(&self, chain: &ChainStart, round: usize, previous: &Path) -> Result<Variant> {
        let name = previous
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let device = self.config.device.open()?;
        let encoder = TrainedEncoder::from_run(previous, &device)?;
        let features = self.out.join(format!("features-{name}.parquet"));
        let vectors = round_vectors(&encoder, self.train, &features, &device, self.progress)?;
        let lists = self
            .out
            .join(format!("neighbours-{name}-k{}.parquet", chain.k));
        let (_, purity) = ensure_neighbours(
            &vectors,
            chain.k,
            &self.fingerprints.0,
            &lists,
            self.progress,
        )?;
        tracing::info!(start = %chain.start, round, purity = ?purity, "round lists ready");
        Ok(Variant {
            start: chain.start.clone(),
            k: chain.k,
            neighbours: Some(lists),
            round,
            purity,
        })
    }

    /// Trains one run (or reuses its finished record) and evaluates its backbone; returns the
    /// record and the run's folder.
    fn train_and_evaluate(
        &self,
        method: &str,
        aug: &str,
        seed: u64,
        variant: Option<&Variant>,
        remine_every: usize,
    ) -> Result<(RunRecord, PathBuf)> {
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
        let label = variant.map(|v| v.label(remine_every));
        let tag = match (variant, &label) {
            (Some(v), Some(label)) => format!("gps-{label}-k{}", v.k),
            _ => "base".to_string(),
        };
        let started = Instant::now();
        let kind = MethodKind::parse(method)?;
        let pairs = PairData {
            data: config.data.clone(),
            neighbours: variant.and_then(|v| v.neighbours.clone()),
            aug: aug.to_string(),
            size: None,
            batch_size: config.batch_size,
            seed,
            workers: config.workers,
            skip_bad: false,
            cache_gib: config.cache_decoded_gib,
        };
        let (loader, data) = pairs.open_with_config()?;
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
        if let Some(v) = variant.filter(|_| remine_every > 0) {
            tc.remine = Some(RemineConfig::new(remine_every, v.k).with_mix(config.remine_mix));
        }
        tc.data = Some(data);
        tc.device = config.device;
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
                return Ok((done.record, dir));
            }
            tracing::info!(run = %dir.display(), "record is for other evaluation inputs: re-evaluating");
        }
        let device = config.device.open()?.autodiff();
        let batches = loader.num_batches();
        let mut trainer = if dir.join(CHECKPOINT_FILE).is_file() {
            tracing::info!(run = %dir.display(), "resuming");
            Trainer::resume_with(tc.clone(), &dir, batches, &device)?
        } else {
            tracing::info!(run = %dir.display(), "training");
            Trainer::new(tc.clone(), batches, &device)?.with_output_dir(&dir)?
        };
        trainer.fit_loader(&loader, None, progress)?;
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
            prior: label,
            k: variant.map(|v| v.k),
            round: variant.map_or(0, |v| v.round),
            purity_at_1: variant.and_then(|v| v.purity_at(1)),
            purity_at_k: variant.and_then(|v| v.purity_at(v.k)),
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
        Ok((record, dir))
    }
}

/// The backbone features of `train` by `encoder`, as prior vectors for the next round: read
/// from `path` when it holds this encoder's features (same run hash) of this dataset, else
/// computed and written there.
fn round_vectors(
    encoder: &TrainedEncoder,
    train: &Arc<dyn DataSource>,
    path: &Path,
    device: &Device,
    progress: &dyn Progress,
) -> Result<PriorVectors> {
    let fingerprint = train.fingerprint();
    let cached = path
        .is_file()
        .then(|| EmbeddingTable::read(path).ok())
        .flatten()
        .filter(|t| {
            let meta = |key: &str| t.metadata.get(key).map(String::as_str);
            meta(META_ENCODER_RUN_HASH) == Some(encoder.run.hash.as_str())
                && meta(META_DATASET_FINGERPRINT) == Some(fingerprint.as_str())
                && t.len() == train.len()
        });
    let table = match cached {
        Some(t) => {
            tracing::info!(path = %path.display(), "reusing the encoder's features");
            t
        }
        None => {
            encoder.write_features(train.clone(), path, device, progress)?;
            EmbeddingTable::read(path)?
        }
    };
    Ok(PriorVectors {
        prior: encoder.name.clone(),
        dim: table.dim,
        vectors_sha256: vectors_sha256(table.dim, &table.vectors),
        vectors: table.vectors,
        labels: table.labels,
        prior_sha256: None,
        input_size: Some(encoder.input_size[0]),
        preprocess: format!(
            "trained encoder {} (run {})",
            encoder.name, encoder.run.hash
        ),
    })
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
