//! `gps-ssl experiment` (a grid of runs from a TOML file) and `gps-ssl demo` (the preset grid:
//! SimCLR vs GPS-SimCLR under RHFlipAug on the bundled data): end-to-end SSL vs GPS-SSL comparisons.

use std::path::PathBuf;

use clap::Args;
use gps_ssl::device::DeviceChoice;
use gps_ssl::experiment::{run_experiment, ExperimentConfig, ExperimentOutput};

use super::progress::StageBar;

/// The GPS demo: SimCLR vs GPS-SimCLR under RHFlipAug on the bundled data (or yours).
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Training set (any dataset source).
    #[arg(long, default_value = "data/fashion-mnist/train")]
    data: String,
    /// Test set for evaluation.
    #[arg(long, default_value = "data/fashion-mnist/t10k")]
    test_data: String,
    /// Prior manifest (or `pixels` for the raw-pixel prior).
    #[arg(long, default_value = "models/efficientnet_lite0.toml")]
    prior: String,
    /// Output folder (stages are cached there; a second run reuses them).
    #[arg(long, default_value = "runs/demo")]
    out: PathBuf,
    /// SSL method.
    #[arg(long, default_value = "simclr")]
    method: String,
    /// Training epochs per run.
    #[arg(long)]
    epochs: Option<usize>,
    /// Pairs per batch (default 256).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Seeds, comma-separated (e.g. `0,1,2` for mean ± std).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    seeds: Vec<u64>,
    /// GPS neighbourhood size.
    #[arg(long, default_value_t = 5)]
    k: usize,
    /// Prior input resolution.
    #[arg(long, default_value_t = 112)]
    resolution: u32,
    /// Iterated GPS: this many more rounds after the first, each training on lists mined from
    /// the previous round's encoder.
    #[arg(long, default_value_t = 0)]
    rounds: usize,
    /// Re-mining settings to compare, comma-separated epochs between re-minings (0: fixed
    /// lists), e.g. `0,1`.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    remine_every: Vec<usize>,
    /// Fraction of partners drawn from the re-mined lists.
    #[arg(long, default_value_t = gps_ssl::train::DEFAULT_REMINE_MIX)]
    remine_mix: f64,
    /// Device to train and encode on: cpu | wgpu[:N] | vulkan[:N] | cuda[:N].
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

/// A grid of runs described by a TOML file (examples in `examples/experiments/`).
#[derive(Debug, Args)]
pub struct ExperimentArgs {
    /// The experiment TOML (keys of `ExperimentConfig`; missing keys take the demo defaults).
    config: PathBuf,
    /// Output folder (default: `runs/<config name>`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Device to train and encode on, overriding the file's `device` (cpu | wgpu[:N] |
    /// vulkan[:N] | cuda[:N]).
    #[arg(long)]
    device: Option<DeviceChoice>,
}

/// Runs `gps-ssl demo`.
pub fn run_demo(args: DemoArgs) -> anyhow::Result<()> {
    let defaults = ExperimentConfig::default();
    let config = ExperimentConfig {
        data: args.data,
        test_data: args.test_data,
        priors: vec![args.prior],
        resolution: Some(args.resolution),
        k: vec![args.k],
        methods: vec![args.method],
        seeds: args.seeds,
        epochs: args.epochs.unwrap_or(defaults.epochs),
        batch_size: args.batch_size.unwrap_or(defaults.batch_size),
        rounds: args.rounds,
        remine_every: args.remine_every,
        remine_mix: args.remine_mix,
        device: args.device,
        ..defaults
    };
    execute(&config, &args.out)
}

/// Runs `gps-ssl experiment`.
pub fn run_grid(args: ExperimentArgs) -> anyhow::Result<()> {
    let mut config = ExperimentConfig::load(&args.config)?;
    if let Some(device) = args.device {
        config.device = device;
    }
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from("runs").join(&config.name));
    execute(&config, &out)
}

fn execute(config: &ExperimentConfig, out: &std::path::Path) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let bar = StageBar::new();
    let output = run_experiment(config, out, &bar)?;
    bar.clear();
    print_summary(&output, started.elapsed().as_secs_f64());
    Ok(())
}

#[allow(clippy::print_stdout)]
fn print_summary(output: &ExperimentOutput, seconds: f64) {
    for p in &output.priors {
        let acc = p
            .knn_acc
            .map_or("-".into(), |a| format!("{:.2}%", 100.0 * a));
        println!(
            "prior {}: its own features give weighted 20-NN accuracy {acc}",
            p.prior
        );
        for (k, purity) in &p.purity {
            if let Some(purity) = purity {
                let cells: Vec<String> = purity
                    .iter()
                    .map(|q| format!("@{} {:.3}", q.k, q.purity))
                    .collect();
                println!("  GPS lists k={k}: label purity {}", cells.join(", "));
            }
        }
    }
    println!(
        "\nWeighted kNN accuracy (k=20, T=0.07), %:\n\n{}\n",
        output.table
    );
    for r in &output.records {
        println!(
            "{:8} {:7} {:5} seed {}  kNN {:.2}%  1-NN {:.2}%  linear {}  ({:.0} s)",
            r.method,
            format!("{:?}", r.aug).to_lowercase(),
            if r.gps { "GPS" } else { "base" },
            r.seed,
            100.0 * r.knn_acc,
            100.0 * r.nn1_acc,
            r.linear_acc
                .map_or("-".into(), |a| format!("{:.2}%", 100.0 * a)),
            r.seconds
        );
    }
    println!(
        "\nresults: {}\nfigure:  {}",
        output.results.display(),
        output.figure.display(),
    );
    for montage in &output.montages {
        println!(
            "montage: {} (anchors and their prior neighbours)",
            montage.display()
        );
    }
    println!("wall time {seconds:.0} s");
}
