//! Step time per SSL method at batch 128 on the small ResNet preset (28 px, 1 channel), and the
//! same network's SimCLR step in PyTorch CPU (`/usr/bin/python3`, Debian `python3-torch`), in
//! one run: `cargo bench --bench ssl_step`.

use std::process::Command;
use std::time::Instant;

use burn::tensor::Device;
use gps_ssl::{
    Method, MethodKind, Optimizer, OptimizerConfig, PairBatch, ResNetConfig, TrainConfig,
};
use rand::{Rng, SeedableRng};

const BATCH: usize = 128;
const SIZE: usize = 28;
const STEPS: u64 = 3;

fn batch() -> PairBatch {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let n = BATCH * SIZE * SIZE;
    let mut view = || {
        (0..n)
            .map(|_| rng.random::<f32>() * 2.0 - 1.0)
            .collect::<Vec<f32>>()
    };
    let (view_a, view_b) = (view(), view());
    let ids: Vec<u64> = (0..BATCH as u64).collect();
    PairBatch {
        view_a,
        view_b,
        shape: [BATCH, 1, SIZE, SIZE],
        anchor_ids: ids.clone(),
        partner_ids: ids,
        labels: None,
    }
}

fn rust_step_seconds(kind: MethodKind, batch: &PairBatch) -> f64 {
    let device = Device::flex().autodiff();
    let config = TrainConfig::new(kind, ResNetConfig::small(1));
    let mut method = gps_ssl::seeded(&device, 0, || {
        Method::new(config.method, &config.network, &device)
    })
    .expect("method");
    let mut opt = Optimizer::new(OptimizerConfig::sgd());
    method
        .step(batch, &mut opt, 0.05, 0, 100)
        .expect("warm-up step");
    let t0 = Instant::now();
    for s in 1..=STEPS {
        method.step(batch, &mut opt, 0.05, s, 100).expect("step");
    }
    t0.elapsed().as_secs_f64() / STEPS as f64
}

fn torch_step_seconds() -> Option<f64> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let out = Command::new("/usr/bin/python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/peers/ssl_step_peer.py"
        ))
        .args([BATCH, SIZE, STEPS as usize, threads].map(|v| v.to_string()))
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "torch peer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
}

fn main() {
    let batch = batch();
    println!("ssl_step: batch {BATCH} pairs, {SIZE}x{SIZE}x1, small ResNet [16,32,64,128], mean of {STEPS} steps after 1 warm-up");
    println!("{:<28} {:>12}", "case", "s/step");
    let mut simclr = 0.0;
    for kind in MethodKind::ALL {
        let s = rust_step_seconds(kind, &batch);
        if kind == MethodKind::Simclr {
            simclr = s;
        }
        println!(
            "{:<28} {:>12.3}",
            format!("burn-flex/{}/b{BATCH}", kind.name()),
            s
        );
    }
    match torch_step_seconds() {
        Some(t) => {
            println!("{:<28} {:>12.3}", format!("pytorch-cpu/simclr/b{BATCH}"), t);
            println!(
                "ratio burn/pytorch (simclr): {:.2}x (>1 means burn is slower)",
                simclr / t
            );
        }
        None => println!("pytorch peer unavailable: run scripts/install_bench_peers.sh"),
    }
}
