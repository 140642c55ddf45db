//! `gps-ssl encode`: backbone features of a dataset with a trained encoder (a run folder or an
//! exported `encoder.toml`), written in the embeddings schema for `eval` and `neighbours`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use gps_ssl::dataset::DataSource;
use gps_ssl::export::TrainedEncoder;

use super::progress::StageBar;

/// Arguments of `gps-ssl encode`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("encoder").required(true).args(["run", "model"]))]
pub struct EncodeArgs {
    /// A training run folder (config.json + checkpoint.bin).
    #[arg(long)]
    run: Option<PathBuf>,
    /// An exported encoder: its encoder.toml (or the folder holding it).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Dataset source: IDX, CIFAR, image folder, Parquet; see `gps-ssl inspect`.
    #[arg(long)]
    data: String,
    /// Output features file (`.parquet`, embeddings schema).
    #[arg(long)]
    out: PathBuf,
    /// Device to encode on: cpu | wgpu[:N] | vulkan[:N] | cuda[:N].
    #[arg(long, default_value = "cpu")]
    device: gps_ssl::device::DeviceChoice,
}

/// Runs `gps-ssl encode`.
pub fn run(args: EncodeArgs) -> anyhow::Result<()> {
    let device = args.device.open()?;
    let encoder = match (&args.run, &args.model) {
        (Some(dir), _) => TrainedEncoder::from_run(dir, &device)
            .with_context(|| format!("loading the run in {}", dir.display()))?,
        (None, Some(path)) => TrainedEncoder::from_manifest(path, &device)
            .with_context(|| format!("loading the encoder {}", path.display()))?,
        (None, None) => anyhow::bail!("give --run or --model"),
    };
    let source: Arc<dyn DataSource> = Arc::from(
        gps_ssl::dataset::open_source(&args.data)
            .with_context(|| format!("opening dataset {}", args.data))?,
    );
    let bar = StageBar::new();
    let summary = encoder
        .write_features(source, &args.out, &device, &bar)
        .with_context(|| format!("writing {}", args.out.display()))?;
    bar.clear();
    eprintln!(
        "encoded {} samples with {} ({}-d) in {:.1} s -> {}",
        summary.rows,
        encoder.name,
        summary.dim,
        summary.seconds,
        args.out.display()
    );
    Ok(())
}
