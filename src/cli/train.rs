//! `gps-ssl train`: train an SSL method (plain or GPS) on a dataset, or resume a run.
//!
//! A new run saves its whole configuration in `--out/config.json`, the data side as typed fields
//! (dataset spec + fingerprint, neighbour file + content hash, augmentation recipe, size, batch
//! size, loader seed, workers). `--resume` rebuilds everything from that file: no flag at all
//! continues exactly the saved run. A flag given with `--resume` must agree with the saved value
//! (a conflict is an error naming the flag and both values); `--data` / `--neighbours` may name
//! another location of the same content (same fingerprint / hash). `--workers`,
//! `--checkpoint-every`, `--max-steps` and `--device` only change how the run is computed, not
//! its result, and may differ; `--skip-bad` may be added on resume.
//!
//! A sample that cannot be decoded stops the run with an error naming it; with `--skip-bad` it
//! is skipped (see [`gps_ssl::loader::PairLoaderBuilder::skip_bad`]) and listed in
//! `--out/skipped.json`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::tensor::Device;
use clap::Args;
use gps_ssl::device::DeviceChoice;
use gps_ssl::{
    dataset::open_source,
    ssl::{MethodKind, ResNetConfig},
    store::NeighbourTable,
    train::{
        OptimizerConfig, PairData, RemineConfig, TrainConfig, Trainer, CHECKPOINT_FILE, CONFIG_FILE,
    },
};

/// Augmentation of a new run when `--aug` is not given.
const DEFAULT_AUG: &str = "rhflip";
/// Backbone of a new run when `--backbone` is not given.
const DEFAULT_BACKBONE: &str = "small";
/// Epochs of a new run when `--epochs` is not given.
const DEFAULT_EPOCHS: usize = 1;
/// Pairs per batch of a new run when `--batch-size` is not given.
const DEFAULT_BATCH_SIZE: usize = 128;
/// Neighbours per re-mined list when `--remine-k` is not given and there is no neighbour table.
const DEFAULT_REMINE_K: usize = 5;
/// Loader workers when `--workers` is not given.
const DEFAULT_WORKERS: usize = 2;
/// Backbone presets, for naming a saved backbone in messages.
const BACKBONES: [&str; 3] = ["small", "resnet18", "resnet50"];

/// Arguments of `gps-ssl train`.
///
/// Settings default as documented for a new run; with `--resume` every setting not given is
/// taken from the run's `config.json`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// simclr | byol | barlow | vicreg | mocov3 | nnclr (required for a new run).
    #[arg(long)]
    method: Option<String>,
    /// Dataset source: IDX, CIFAR, image folder, Parquet; see `gps-ssl inspect` (required for
    /// a new run).
    #[arg(long)]
    data: Option<String>,
    /// neighbours.parquet: train GPS (partner = random prior-space neighbour). Omit for plain SSL
    /// (on --resume, omitting it continues the saved run, GPS or not).
    #[arg(long)]
    neighbours: Option<PathBuf>,
    /// rhflip (paper's RHFlipAug) | strong (SimCLR recipe). Default: rhflip.
    #[arg(long)]
    aug: Option<String>,
    /// Output side in pixels (default: the images' own size).
    #[arg(long)]
    size: Option<u32>,
    /// small | resnet18 | resnet50. Default: small.
    #[arg(long)]
    backbone: Option<String>,
    /// sgd | lars | adamw (default: the method's usual one).
    #[arg(long)]
    optimizer: Option<String>,
    /// Epochs. Default: 1.
    #[arg(long)]
    epochs: Option<usize>,
    /// Pairs per batch. Default: 128.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Peak learning rate. Default: the optimiser's (0.05 for SGD and LARS, 10⁻³ for AdamW).
    #[arg(long)]
    lr: Option<f64>,
    /// Warm-up epochs. Default: 1.
    #[arg(long)]
    warmup_epochs: Option<f64>,
    /// Seed (network initialisation and loader). Default: 0.
    #[arg(long)]
    seed: Option<u64>,
    /// Loader worker threads (batches are identical for any count). Default: 2.
    #[arg(long)]
    workers: Option<usize>,
    /// Skip images that fail to decode (their pairs are left out or their partner redrawn,
    /// the same for any worker count) and list them in `--out/skipped.json`, instead of
    /// stopping with an error naming the image.
    #[arg(long)]
    skip_bad: bool,
    /// Keep decoded images in memory, up to this many GiB of u8 pixels: the first epoch decodes
    /// them, later ones read them from memory (224-px pairs from memory: 2× StrongAug's and
    /// 2.8× RHFlip's rate from baseline JPEGs, benches/loader.md). Images are then decoded
    /// whole, at full size (no DCT-scaled or cropped decoding), which the run's recipe records;
    /// the batches do not depend on the budget (0 caches nothing, which resumes a cached run
    /// without the memory). Size it from the images: width × height × channels bytes each.
    #[arg(long, value_name = "GIB")]
    cache_decoded: Option<f64>,
    /// Mask in-batch false negatives (contrastive methods).
    #[arg(long)]
    mask_false_negatives: bool,
    /// Checkpoint every N steps (0: each epoch end). Default: 0.
    #[arg(long)]
    checkpoint_every: Option<u64>,
    /// Re-mine the neighbour lists every E epochs from the backbone being trained (its features
    /// of the whole training set, k-NN again); the lists are saved in --out as
    /// `remined-e<epoch>.parquet`. Works for GPS and plain runs alike.
    #[arg(long, value_name = "E")]
    remine_every: Option<usize>,
    /// Fraction of partners drawn from the re-mined lists (the rest from --neighbours, or the
    /// anchor itself for plain SSL). Default: 1.
    #[arg(long, value_name = "P")]
    remine_mix: Option<f64>,
    /// Neighbours per re-mined list. Default: the --neighbours table's k, else 5.
    #[arg(long, value_name = "K")]
    remine_k: Option<usize>,
    /// Stop after this many steps (the run can be resumed).
    #[arg(long)]
    max_steps: Option<u64>,
    /// Output directory (config.json, log.csv, checkpoint.bin).
    #[arg(long)]
    out: PathBuf,
    /// cpu (burn flex, the default for a new run) | wgpu[:N] | vulkan[:N] | cuda[:N] (builds
    /// with those features). A resumed run keeps its config.json's device unless this is given:
    /// checkpoints are device-independent.
    #[arg(long)]
    device: Option<DeviceChoice>,
    /// Resume the run in --out from its checkpoint and config.json (without it, an --out that
    /// already holds a checkpoint is refused rather than overwritten).
    #[arg(long)]
    resume: bool,
}

struct Bar(indicatif::ProgressBar);

impl gps_ssl::progress::Progress for Bar {
    fn start(&self, _stage: &str, total: u64) {
        self.0.set_length(total);
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn finish(&self) {
        self.0.finish();
    }
}

/// Runs `gps-ssl train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let (mut trainer, loader) = if args.resume {
        resume(&args)?
    } else {
        let choice = args.device.unwrap_or_default();
        start(&args, choice, &choice.open()?.autodiff())?
    };
    let bar = Bar(indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} steps {elapsed} eta {eta}")?,
    ));
    let fitted = trainer.fit_loader(&loader, args.max_steps, &bar);
    // The samples skipped so far are listed even when training stopped with an error.
    if loader.skips_bad() {
        let listed = gps_ssl::train::record_skipped(&args.out, &loader.skipped())
            .with_context(|| format!("listing skipped samples in {}", args.out.display()))?;
        if let Some((path, count)) = listed {
            eprintln!(
                "skipped {count} bad sample{} (undecodable), listed in {}",
                if count == 1 { "" } else { "s" },
                path.display()
            );
        }
    }
    let records = fitted?;
    if let Some(c) = loader.dataset().cache_use() {
        let gib = |b: u64| b as f64 / f64::from(1u32 << 30);
        // Full: no room for another image of the held ones' mean size (or a zero budget).
        // Images not held are then decoded every epoch; otherwise they were not read yet.
        let room = c.budget.saturating_sub(c.bytes);
        let full = c.samples < c.of
            && (c.budget == 0 || (c.samples > 0 && room < c.bytes / c.samples as u64));
        let past = if full {
            format!(
                "; the budget is full, so the other {} are decoded every epoch (a larger \
                 --cache-decoded holds them)",
                c.of - c.samples
            )
        } else {
            String::new()
        };
        eprintln!(
            "decoded cache: {} of {} images in memory, {:.2} of {:.2} GiB{past}",
            c.samples,
            c.of,
            gib(c.bytes),
            gib(c.budget)
        );
    }
    if let Some(last) = records.last() {
        let steps: f64 = records.iter().map(|r| r.seconds).sum();
        let waited: f64 = records.iter().filter_map(|r| r.data_seconds).sum();
        eprintln!(
            "{}: {} steps, last loss {:.4}, embedding std {:.4}; {:.1} s in steps, {:.1} s \
             waiting for batches ({:.1} %); outputs in {}",
            trainer.config().method.kind().name(),
            records.len(),
            last.loss,
            last.embedding_std,
            steps,
            waited,
            100.0 * waited / (steps + waited).max(1e-9),
            args.out.display()
        );
    }
    Ok(())
}

/// A new run from the flags.
fn start(
    args: &TrainArgs,
    choice: DeviceChoice,
    device: &Device,
) -> anyhow::Result<(Trainer, gps_ssl::loader::PairLoader)> {
    let for_new_run = |flag: &str| {
        format!(
            "{flag} is required for a new run (or pass --resume to continue the run in {})",
            args.out.display()
        )
    };
    let method = args
        .method
        .as_deref()
        .with_context(|| for_new_run("--method"))?;
    let kind = MethodKind::parse(method)?;
    let data = args.data.clone().with_context(|| for_new_run("--data"))?;
    // Never overwrite a run silently: its checkpoint and log are someone's hours.
    let existing = args.out.join(CHECKPOINT_FILE);
    if existing.is_file() {
        anyhow::bail!(
            "{} already holds a run (checkpoint {}); pass --resume to continue it, or choose \
             another --out",
            args.out.display(),
            existing.display()
        );
    }
    let batch_size = args.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
    let seed = args.seed.unwrap_or(0);
    let pairs = PairData {
        data,
        neighbours: args.neighbours.clone(),
        aug: args.aug.clone().unwrap_or_else(|| DEFAULT_AUG.into()),
        size: args.size,
        batch_size,
        seed,
        workers: args.workers.unwrap_or(DEFAULT_WORKERS),
        skip_bad: args.skip_bad,
        cache_gib: args.cache_decoded,
    };
    let (loader, data) = pairs
        .open_with_config()
        .with_context(|| format!("opening {}", pairs.describe()))?;
    let [channels, _, _] = loader.view_shape();
    let backbone = ResNetConfig::from_name(
        args.backbone.as_deref().unwrap_or(DEFAULT_BACKBONE),
        channels,
    )?;
    let mut config = TrainConfig::new(kind, backbone);
    if let Some(o) = &args.optimizer {
        config = config.with_optimizer(OptimizerConfig::parse(o)?);
    }
    if let Some(lr) = args.lr {
        config.lr = lr;
    }
    config.warmup_epochs = args
        .warmup_epochs
        .unwrap_or(gps_ssl::train::DEFAULT_WARMUP_EPOCHS);
    config.epochs = args.epochs.unwrap_or(DEFAULT_EPOCHS);
    config.batch_size = batch_size;
    config.seed = seed;
    config.mask_false_negatives = args.mask_false_negatives;
    config.checkpoint_every = args.checkpoint_every.unwrap_or(0);
    if let Some(every) = args.remine_every {
        let k = args.remine_k.unwrap_or_else(|| {
            data.neighbour_table
                .as_ref()
                .map_or(DEFAULT_REMINE_K, |t| t.k)
        });
        let mix = args
            .remine_mix
            .unwrap_or(gps_ssl::train::DEFAULT_REMINE_MIX);
        config.remine = Some(RemineConfig::new(every, k).with_mix(mix));
    } else if args.remine_mix.is_some() || args.remine_k.is_some() {
        anyhow::bail!("--remine-mix and --remine-k need --remine-every");
    }
    config.data = Some(data);
    config.device = choice;
    let trainer = Trainer::new(config, loader.num_batches(), device)?.with_output_dir(&args.out)?;
    Ok((trainer, loader))
}

/// The saved run in `--out`, continued; flags must agree with it.
fn resume(args: &TrainArgs) -> anyhow::Result<(Trainer, gps_ssl::loader::PairLoader)> {
    let config_path = args.out.join(CONFIG_FILE);
    if !args.out.join(CHECKPOINT_FILE).is_file() {
        anyhow::bail!(
            "--resume: {} holds no run to resume (no {CHECKPOINT_FILE}); start one without \
             --resume",
            args.out.display()
        );
    }
    let saved = TrainConfig::load(&config_path)?;
    let Some(saved_data) = saved.data.clone() else {
        anyhow::bail!(
            "{}: no typed `data` configuration (written by an older gps-ssl, or by a library \
             caller); this run cannot be resumed from the command line",
            config_path.display()
        );
    };
    let mut pairs = saved_data.pairs.clone();
    let mut conflicts = Vec::new();
    let mut conflict = |flag: &str, saved: String, given: String| {
        conflicts.push(format!("{flag} {given} (the saved run has {saved})"));
    };

    if let Some(m) = &args.method {
        let kind = MethodKind::parse(m)?;
        if kind != saved.method.kind() {
            conflict("--method", saved.method.kind().name().into(), m.clone());
        }
    }
    if let Some(spec) = &args.data {
        if *spec != pairs.data {
            // Another path to the same dataset is fine; other data is not.
            let fingerprint = open_source(spec)?.fingerprint();
            if fingerprint != saved_data.fingerprint {
                conflict(
                    "--data",
                    format!(
                        "{} with fingerprint {}",
                        pairs.data,
                        short(&saved_data.fingerprint)
                    ),
                    format!("{spec} with fingerprint {}", short(&fingerprint)),
                );
            } else {
                pairs.data = spec.clone();
            }
        }
    }
    if let Some(path) = &args.neighbours {
        let same_path = pairs.neighbours.as_deref() == Some(path.as_path());
        match &saved_data.neighbour_table {
            _ if same_path => {}
            Some(table) => {
                let hash = NeighbourTable::read(path)?.content_sha256();
                if hash != table.sha256 {
                    conflict(
                        "--neighbours",
                        format!(
                            "{} with content hash {}",
                            display_opt(pairs.neighbours.as_deref()),
                            short(&table.sha256)
                        ),
                        format!("{} with content hash {}", path.display(), short(&hash)),
                    );
                } else {
                    pairs.neighbours = Some(path.clone());
                }
            }
            None => conflict(
                "--neighbours",
                "no neighbours (plain SSL)".into(),
                path.display().to_string(),
            ),
        }
    }
    if let Some(aug) = &args.aug {
        if *aug != pairs.aug {
            conflict("--aug", pairs.aug.clone(), aug.clone());
        }
    }
    if let Some(size) = args.size {
        if Some(size) != pairs.size {
            let saved_size = pairs
                .size
                .map_or("the images' own size".into(), |s| s.to_string());
            conflict("--size", saved_size, size.to_string());
        }
    }
    if let Some(name) = &args.backbone {
        let given = ResNetConfig::from_name(name, saved_data.view_shape[0])?;
        if given != saved.network.backbone {
            conflict(
                "--backbone",
                backbone_name(&saved.network.backbone, saved_data.view_shape[0]),
                name.clone(),
            );
        }
    }
    if let Some(name) = &args.optimizer {
        if OptimizerConfig::parse(name)? != saved.optimizer {
            conflict(
                "--optimizer",
                optimizer_name(&saved.optimizer).into(),
                name.clone(),
            );
        }
    }
    let numbers: [(&str, Option<String>, String); 5] = [
        (
            "--epochs",
            args.epochs.map(|v| v.to_string()),
            saved.epochs.to_string(),
        ),
        (
            "--batch-size",
            args.batch_size.map(|v| v.to_string()),
            saved.batch_size.to_string(),
        ),
        ("--lr", args.lr.map(|v| v.to_string()), saved.lr.to_string()),
        (
            "--warmup-epochs",
            args.warmup_epochs.map(|v| v.to_string()),
            saved.warmup_epochs.to_string(),
        ),
        (
            "--seed",
            args.seed.map(|v| v.to_string()),
            saved.seed.to_string(),
        ),
    ];
    for (flag, given, saved_value) in numbers {
        if let Some(given) = given.filter(|g| *g != saved_value) {
            conflict(flag, saved_value, given);
        }
    }
    let saved_remine = saved.remine.as_ref();
    let remine_flags: [(&str, Option<String>, Option<String>); 3] = [
        (
            "--remine-every",
            args.remine_every.map(|v| v.to_string()),
            saved_remine.map(|r| r.every.to_string()),
        ),
        (
            "--remine-mix",
            args.remine_mix.map(|v| v.to_string()),
            saved_remine.map(|r| r.mix.to_string()),
        ),
        (
            "--remine-k",
            args.remine_k.map(|v| v.to_string()),
            saved_remine.map(|r| r.k.to_string()),
        ),
    ];
    for (flag, given, saved_value) in remine_flags {
        if let Some(given) = given.filter(|g| Some(g) != saved_value.as_ref()) {
            conflict(
                flag,
                saved_value.unwrap_or_else(|| "fixed lists (no re-mining)".into()),
                given,
            );
        }
    }
    if args.mask_false_negatives && !saved.mask_false_negatives {
        conflict(
            "--mask-false-negatives",
            "no masking".into(),
            "masking".into(),
        );
    }
    if let Some(gib) = args.cache_decoded {
        if pairs.cache_gib.is_some() {
            // Another budget: the same batches (the cache holds whole decodes either way).
            pairs.cache_gib = Some(gib);
        } else {
            conflict(
                "--cache-decoded",
                "no decoded cache, whose reduced and cropped decodes give other views".into(),
                format!("{gib} GiB"),
            );
        }
    }
    if !conflicts.is_empty() {
        anyhow::bail!(
            "--resume: {} conflicts with the saved run in {}: {}; omit the flag to continue the \
             saved run, or train into another --out",
            if conflicts.len() == 1 {
                "a flag"
            } else {
                "flags"
            },
            config_path.display(),
            conflicts.join("; ")
        );
    }

    if let Some(workers) = args.workers {
        pairs.workers = workers;
    }
    if args.skip_bad {
        pairs.skip_bad = true;
    }
    let (loader, data) = pairs.open_with_config().with_context(|| {
        format!(
            "resuming {}: opening {}",
            args.out.display(),
            pairs.describe()
        )
    })?;
    let mut config = saved;
    config.data = Some(data);
    if let Some(choice) = args.device {
        config.device = choice;
    }
    let device = config.device.open()?.autodiff();
    let device = &device;
    if let Some(every) = args.checkpoint_every {
        config.checkpoint_every = every;
    }
    let trainer = Trainer::resume_with(config, &args.out, loader.num_batches(), device)
        .with_context(|| format!("resuming from {}", args.out.display()))?;
    Ok((trainer, loader))
}

/// The preset name of `backbone` (or a description when it is none of them).
fn backbone_name(backbone: &ResNetConfig, channels: usize) -> String {
    BACKBONES
        .into_iter()
        .find(|name| ResNetConfig::from_name(name, channels).ok().as_ref() == Some(backbone))
        .map_or_else(|| "a custom backbone".into(), String::from)
}

fn optimizer_name(optimizer: &OptimizerConfig) -> &'static str {
    match optimizer {
        OptimizerConfig::Sgd { .. } => "sgd",
        OptimizerConfig::Lars { .. } => "lars",
        OptimizerConfig::AdamW { .. } => "adamw",
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn display_opt(path: Option<&Path>) -> String {
    path.map_or("<unknown>".into(), |p| p.display().to_string())
}
