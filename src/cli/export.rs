//! `gps-ssl export`: a training run's encoder as safetensors (torchvision key names), ONNX and a
//! prior manifest, ready for PyTorch, ONNX Runtime and `gps-ssl embed --prior`.

use std::path::PathBuf;

use anyhow::Context;
use burn::tensor::Device;
use clap::Args;
use gps_ssl::export::{export_encoder, ExportOptions, TrainedEncoder, ENCODER_MANIFEST};

/// Arguments of `gps-ssl export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The training run folder (config.json + checkpoint.bin of `gps-ssl train`, or a run
    /// folder of `gps-ssl experiment`).
    #[arg(long)]
    run: PathBuf,
    /// Output folder: encoder.toml, encoder.safetensors, encoder.onnx, prior.toml.
    #[arg(long)]
    out: PathBuf,
    /// Also export the projector (projector.safetensors and a `projection` ONNX output).
    #[arg(long)]
    projector: bool,
    /// Skip the ONNX graph and its prior manifest.
    #[arg(long)]
    no_onnx: bool,
}

/// Runs `gps-ssl export`.
pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let device = Device::flex();
    let encoder = TrainedEncoder::from_run(&args.run, &device)
        .with_context(|| format!("loading the run in {}", args.run.display()))?;
    let options = ExportOptions {
        projector: args.projector,
        onnx: !args.no_onnx,
    };
    let manifest = export_encoder(&encoder, &args.out, &options)
        .with_context(|| format!("exporting to {}", args.out.display()))?;
    eprintln!(
        "exported {} (run {}, step {}, {}-d features) to {}",
        manifest.name,
        &manifest.run.hash[..manifest.run.hash.len().min(12)],
        manifest.run.step,
        manifest.feature_dim,
        args.out.join(ENCODER_MANIFEST).display()
    );
    Ok(())
}
