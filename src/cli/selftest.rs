//! `gps-ssl selftest` (a device against the CPU backend) and `gps-ssl step-time` (the training
//! step timed on a device): the GPU checks a machine without Rust can run from this binary
//! (`scripts/gpu_check.sh run`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use gps_ssl::device::DeviceChoice;
use gps_ssl::selftest::{median, step_seconds, Check, SelfTest, StepCase, CHECKS};
use gps_ssl::ssl::MethodKind;

/// The bundled Fashion-MNIST subset's training images, relative to the repository root.
const BUNDLED_IMAGES: &str = "data/fashion-mnist/train-images-idx3-ubyte.gz";
/// Debian's `dataset-fashion-mnist` (the full set), tried when the bundled file is not there.
const DEBIAN_IMAGES: &str = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";

/// Arguments of `gps-ssl selftest`.
#[derive(Debug, Args)]
pub struct SelfTestArgs {
    /// The device under test (wgpu[:N] | vulkan[:N] | cuda[:N]); the CPU is the reference.
    #[arg(long)]
    device: DeviceChoice,
    /// Fashion-MNIST training images (IDX, gzip or not); default: the repository's bundled
    /// subset (data/fashion-mnist/, from the current folder), else Debian's package.
    #[arg(long)]
    images: Option<PathBuf>,
    /// Checks to run, comma-separated: losses, one_step, resume, learns (default: all).
    #[arg(long, value_delimiter = ',')]
    checks: Vec<String>,
}

/// Runs the checks of [`SelfTest`], one line each; an error when any failed.
#[allow(clippy::print_stdout)]
pub fn run(args: SelfTestArgs) -> anyhow::Result<()> {
    let images = match args.images {
        Some(p) => p,
        None => [BUNDLED_IMAGES, DEBIAN_IMAGES]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .with_context(|| {
                format!(
                    "no Fashion-MNIST images at {BUNDLED_IMAGES} (run from the repository root) \
                     or {DEBIAN_IMAGES}; pass --images"
                )
            })?,
    };
    if let Some(bad) = args
        .checks
        .iter()
        .find(|c| !CHECKS.iter().any(|(name, _)| name == c))
    {
        bail!("--checks: `{bad}`; expected losses, one_step, resume or learns");
    }
    let checks: Vec<(&str, Check)> = CHECKS
        .into_iter()
        .filter(|(name, _)| args.checks.is_empty() || args.checks.iter().any(|c| c == name))
        .collect();
    let device = args.device.open()?;
    let test = SelfTest::new(device, &images)?;
    println!(
        "selftest: {} against cpu ({} images of {})",
        args.device,
        gps_ssl::selftest::IMAGES,
        images.display()
    );
    let mut failed = Vec::new();
    for (name, check) in &checks {
        let t0 = Instant::now();
        let outcome = check(&test);
        let secs = t0.elapsed().as_secs_f64();
        match outcome {
            Ok(summary) => println!("ok   {name:<9} {summary} ({secs:.1} s)"),
            Err(e) => {
                println!("FAIL {name:<9} {e} ({secs:.1} s)");
                failed.push(*name);
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} self-test checks failed on {}: {}",
            failed.len(),
            checks.len(),
            args.device,
            failed.join(", ")
        );
    }
    println!(
        "selftest: {} of {} checks passed on {}",
        checks.len(),
        checks.len(),
        args.device
    );
    Ok(())
}

/// Arguments of `gps-ssl step-time`.
#[derive(Debug, Args)]
pub struct StepTimeArgs {
    /// The device to time (cpu | wgpu[:N] | vulkan[:N] | cuda[:N]).
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// Pairs per step.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Timed steps per method and case (after one warm-up step).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Networks: `small` (28 px, 1 channel) and/or `resnet18` (32 px, 3 channels),
    /// comma-separated.
    #[arg(long, default_value = "small,resnet18", value_delimiter = ',')]
    cases: Vec<String>,
    /// Methods, comma-separated (simclr, byol, barlow, vicreg, mocov3, nnclr), or `all`.
    #[arg(long, default_value = "all", value_delimiter = ',')]
    methods: Vec<String>,
}

/// One line per method and case: `step <device> <method> <case> median <s> min <s>`.
#[allow(clippy::print_stdout)]
pub fn run_step_time(args: StepTimeArgs) -> anyhow::Result<()> {
    if args.batch < 2 || args.steps == 0 {
        bail!("--batch must be at least 2 and --steps at least 1");
    }
    let cases = args
        .cases
        .iter()
        .map(|c| match c.as_str() {
            "small" => Ok(StepCase::small(args.batch)),
            "resnet18" => Ok(StepCase::resnet18(args.batch)),
            other => bail!("--cases: `{other}`; expected small or resnet18"),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let methods = if args.methods.iter().any(|m| m == "all") {
        MethodKind::ALL.to_vec()
    } else {
        args.methods
            .iter()
            .map(|m| {
                MethodKind::ALL
                    .into_iter()
                    .find(|k| k.name() == m)
                    .with_context(|| {
                        let names: Vec<&str> = MethodKind::ALL.iter().map(|k| k.name()).collect();
                        format!("--methods: `{m}`; expected all or {}", names.join(", "))
                    })
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    let device = args.device.open()?.autodiff();
    println!(
        "step-time: {} steps after 1 warm-up on {} (seconds per training step; each step reads \
         its loss back)",
        args.steps, args.device
    );
    for case in cases {
        for &kind in &methods {
            let times = step_seconds(kind, case, args.steps, &device)
                .with_context(|| format!("{} on {}", kind.name(), case.label()))?;
            let min = times.iter().copied().fold(f64::INFINITY, f64::min);
            println!(
                "step {} {} {} median {:.6} min {:.6}",
                args.device,
                kind.name(),
                case.label(),
                median(&times),
                min
            );
        }
    }
    Ok(())
}
