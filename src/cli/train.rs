//! `gps-ssl train`: train an SSL method (plain or GPS) on a dataset.

use std::path::PathBuf;

use anyhow::Context;
use burn::tensor::Device;
use clap::Args;
use gps_ssl::{MethodKind, OptimizerConfig, PairData, ResNetConfig, TrainConfig, Trainer};

/// Arguments of `gps-ssl train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// simclr | byol | barlow | vicreg | mocov3 | nnclr.
    #[arg(long)]
    method: String,
    /// Dataset source (IDX, CIFAR, image folder, Parquet; see `gps-ssl inspect`).
    #[arg(long)]
    data: String,
    /// neighbours.parquet: train GPS (partner = random prior-space neighbour). Omit for plain SSL.
    #[arg(long)]
    neighbours: Option<PathBuf>,
    /// rhflip (paper's RHFlipAug) | strong (SimCLR recipe).
    #[arg(long, default_value = "rhflip")]
    aug: String,
    /// Output side in pixels (default: the images' own size).
    #[arg(long)]
    size: Option<u32>,
    /// small | resnet18 | resnet50.
    #[arg(long, default_value = "small")]
    backbone: String,
    /// sgd | lars | adamw (default: the method's usual one).
    #[arg(long)]
    optimizer: Option<String>,
    /// Epochs.
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Pairs per batch.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = gps_ssl::DEFAULT_LR)]
    lr: f64,
    /// Warm-up epochs.
    #[arg(long, default_value_t = gps_ssl::DEFAULT_WARMUP_EPOCHS)]
    warmup_epochs: f64,
    /// Seed (network initialisation and loader).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Loader worker threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Mask in-batch false negatives (contrastive methods).
    #[arg(long)]
    mask_false_negatives: bool,
    /// Checkpoint every N steps (0: each epoch end).
    #[arg(long, default_value_t = 0)]
    checkpoint_every: u64,
    /// Stop after this many steps (the run can be resumed).
    #[arg(long)]
    max_steps: Option<u64>,
    /// Output directory (config.json, log.csv, checkpoint.bin).
    #[arg(long)]
    out: PathBuf,
    /// cpu (burn flex) | cuda (needs the `cuda` feature).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Resume the run in --out from its checkpoint (without it, an --out that already holds a
    /// checkpoint is refused rather than overwritten).
    #[arg(long)]
    resume: bool,
}

struct Bar(indicatif::ProgressBar);

impl gps_ssl::Progress for Bar {
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
    let kind = MethodKind::parse(&args.method)?;
    let pairs = PairData {
        data: args.data.clone(),
        neighbours: args.neighbours.clone(),
        aug: args.aug.clone(),
        size: args.size,
        batch_size: args.batch_size,
        seed: args.seed,
        workers: args.workers,
    };
    let mut loader = pairs
        .open()
        .with_context(|| format!("opening {}", pairs.describe()))?;
    let [channels, _, _] = loader.view_shape();
    let backbone = ResNetConfig::from_name(&args.backbone, channels)?;
    let device = match args.device.as_str() {
        "cpu" => Device::flex().autodiff(),
        #[cfg(feature = "cuda")]
        "cuda" => Device::cuda(0).autodiff(),
        other => anyhow::bail!("--device {other}: expected cpu (or cuda with the `cuda` feature)"),
    };
    let batches = loader.num_batches();
    let mut trainer = if args.resume {
        Trainer::resume(&args.out, batches, &device)
            .with_context(|| format!("resuming from {}", args.out.display()))?
    } else {
        // Never overwrite a run silently: its checkpoint and log are someone's hours.
        let existing = args.out.join(gps_ssl::CHECKPOINT_FILE);
        if existing.is_file() {
            anyhow::bail!(
                "{} already holds a run (checkpoint {}); pass --resume to continue it, or choose \
                 another --out",
                args.out.display(),
                existing.display()
            );
        }
        let mut config = TrainConfig::new(kind, backbone);
        if let Some(o) = &args.optimizer {
            config.optimizer = OptimizerConfig::parse(o)?;
        }
        config.lr = args.lr;
        config.warmup_epochs = args.warmup_epochs;
        config.epochs = args.epochs;
        config.batch_size = args.batch_size;
        config.seed = args.seed;
        config.mask_false_negatives = args.mask_false_negatives;
        config.checkpoint_every = args.checkpoint_every;
        config.data = pairs.describe();
        Trainer::new(config, batches, &device)?.with_output_dir(&args.out)?
    };
    let bar = Bar(indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} steps {elapsed} eta {eta}")?,
    ));
    let records = trainer.fit(&mut loader, args.max_steps, &bar)?;
    if let Some(last) = records.last() {
        eprintln!(
            "{}: {} steps, last loss {:.4}, embedding std {:.4}; outputs in {}",
            kind.name(),
            records.len(),
            last.loss,
            last.embedding_std,
            args.out.display()
        );
    }
    Ok(())
}
