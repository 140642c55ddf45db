//! The `gps-ssl` command line: a thin shell over the library.

use clap::{Parser, Subcommand};

mod cli {
    pub mod devices;
    pub mod embed;
    pub mod encode;
    pub mod eval;
    pub mod experiment;
    pub mod export;
    pub mod inspect;
    pub mod neighbours;
    pub mod progress;
    pub mod report;
    pub mod selftest;
    pub mod train;
}

/// Guided Positive Sampling for self-supervised learning.
#[derive(Debug, Parser)]
#[command(name = "gps-ssl", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Describe a dataset source (count, shape, labels, fingerprint).
    Inspect(cli::inspect::InspectArgs),
    /// The devices this build can train on (cpu, wgpu, vulkan, cuda) and their adapters.
    Devices(cli::devices::DevicesArgs),
    /// Embed a dataset with an ONNX prior into embeddings.parquet (resumable, shardable).
    Embed(cli::embed::EmbedArgs),
    /// Join the part files of a sharded `embed` run into one embeddings file.
    MergeEmbeddings(cli::embed::MergeArgs),
    /// Train an SSL method (plain, or GPS with --neighbours).
    Train(cli::train::TrainArgs),
    /// k-NN lists in prior space: embeddings.parquet → neighbours.parquet.
    Neighbours(cli::neighbours::NeighboursArgs),
    /// Export a run's encoder: safetensors (torchvision names), ONNX and a prior manifest.
    Export(cli::export::ExportArgs),
    /// Backbone features of a dataset with a trained encoder (run folder or encoder.toml).
    Encode(cli::encode::EncodeArgs),
    /// Evaluate two embeddings.parquet files: weighted kNN, 1-NN, linear probe, Recall@K.
    Eval(cli::eval::Args),
    /// Write the markdown table and PNG figure of a results.json.
    Report(cli::report::Args),
    /// The GPS demo: SimCLR vs GPS-SimCLR under RHFlipAug, evaluated, with a report.
    Demo(cli::experiment::DemoArgs),
    /// Run an experiment grid from a TOML config (methods × augs × baseline/GPS × seeds).
    Experiment(cli::experiment::ExperimentArgs),
    /// Check a GPU device against the CPU: every loss and gradient, a step of each method,
    /// resume across devices, a GPS-SimCLR run that learns.
    Selftest(cli::selftest::SelfTestArgs),
    /// Time a training step of each method on a device (small 28 px, ResNet-18 32 px).
    StepTime(cli::selftest::StepTimeArgs),
}

/// Exit status of a user error: a bad flag, file or value the message names.
const EXIT_USAGE: u8 = 2;
/// Exit status of an internal failure (a worker thread, ONNX Runtime, Arrow).
const EXIT_FAILURE: u8 = 1;

/// Installs the log subscriber, runs the subcommand and reports an error as one line: the
/// chain of causes joined by `: ` (`{:#}`), never a backtrace, whatever `RUST_BACKTRACE` says
/// (`anyhow`'s `Debug` output, which `fn main() -> anyhow::Result` prints, includes one).
fn main() -> std::process::ExitCode {
    use std::io::IsTerminal;
    // Before any large allocation: training steps reuse freed buffers instead of faulting in
    // fresh pages every step (see `gps_ssl::process::reuse_freed_memory`).
    gps_ssl::process::reuse_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a log file or CI output stays plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(exit_code(&e))
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Inspect(args) => cli::inspect::run(args),
        Command::Devices(args) => cli::devices::run(args),
        Command::Embed(args) => cli::embed::run(args),
        Command::MergeEmbeddings(args) => cli::embed::run_merge(args),
        Command::Train(args) => cli::train::run(args),
        Command::Neighbours(args) => cli::neighbours::run(args),
        Command::Export(args) => cli::export::run(args),
        Command::Encode(args) => cli::encode::run(args),
        Command::Eval(args) => cli::eval::run(args),
        Command::Report(args) => cli::report::run(args),
        Command::Demo(args) => cli::experiment::run_demo(args),
        Command::Experiment(args) => cli::experiment::run_grid(args),
        Command::Selftest(args) => cli::selftest::run(args),
        Command::StepTime(args) => cli::selftest::run_step_time(args),
    }
}

/// [`EXIT_FAILURE`] when the root cause is an internal failure, else [`EXIT_USAGE`].
fn exit_code(e: &anyhow::Error) -> u8 {
    let internal = e.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<gps_ssl::Error>(),
            Some(gps_ssl::Error::Worker(_) | gps_ssl::Error::Ort(_) | gps_ssl::Error::Arrow(_))
        )
    });
    if internal {
        EXIT_FAILURE
    } else {
        EXIT_USAGE
    }
}
