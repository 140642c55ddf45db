//! Shared body of the method examples: train one SSL method on the bundled Fashion-MNIST
//! subset, plain or GPS.
//!
//! Flags: `--gps <neighbours.parquet>` (omit for plain SSL), `--data <spec>` (default
//! `data/fashion-mnist/train`), `--steps <n>` (default 50), `--batch-size <n>` (default 64),
//! `--out <dir>` (default `target/examples/<method>[-gps]`), `--device <name>` (default `cpu`;
//! `wgpu`, `vulkan`, `cuda` with the matching cargo feature).

use gps_ssl::{
    device::DeviceChoice,
    progress::NoProgress,
    ssl::{MethodKind, ResNetConfig},
    train::{PairData, TrainConfig, Trainer},
};

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Trains `kind` per the command-line flags and prints the loss curve's ends.
pub fn run(kind: MethodKind) -> anyhow::Result<()> {
    gps_ssl::process::reuse_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let neighbours = flag(&args, "--gps").map(Into::into);
    let steps: u64 = flag(&args, "--steps").map_or(Ok(50), |s| s.parse())?;
    let batch_size: usize = flag(&args, "--batch-size").map_or(Ok(64), |s| s.parse())?;
    let suffix = if neighbours.is_some() { "-gps" } else { "" };
    let out = flag(&args, "--out").unwrap_or(format!("target/examples/{}{suffix}", kind.name()));
    let pairs = PairData {
        data: flag(&args, "--data").unwrap_or("data/fashion-mnist/train".into()),
        neighbours,
        aug: "rhflip".into(),
        size: None,
        batch_size,
        seed: 0,
        workers: 2,
        skip_bad: false,
        cache_gib: None,
    };
    let (mut loader, data) = pairs.open_with_config()?;
    let [channels, _, _] = loader.view_shape();
    let mut config = TrainConfig::new(kind, ResNetConfig::small(channels));
    config.batch_size = batch_size;
    config.warmup_epochs = 0.05;
    config.data = Some(data);
    config.device = flag(&args, "--device").map_or(Ok(DeviceChoice::Cpu), |s| s.parse())?;
    let device = config.device.open()?.autodiff();
    let mut trainer = Trainer::new(config, loader.num_batches(), &device)?.with_output_dir(&out)?;
    let log = trainer.fit(&mut loader, Some(steps), &NoProgress)?;
    if let (Some(first), Some(last)) = (log.first(), log.last()) {
        println!(
            "{}{suffix}: {} steps, loss {:.4} -> {:.4}, embedding std {:.4}; log in {out}/log.csv",
            kind.name(),
            log.len(),
            first.loss,
            last.loss,
            last.embedding_std
        );
    }
    Ok(())
}
