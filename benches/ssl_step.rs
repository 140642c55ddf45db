//! Training-step time of the Burn trainer against PyTorch CPU on the same network, batch and
//! thread count, in one run: `cargo bench --bench ssl_step`.
//!
//! Cases: the `small` ResNet preset (28 px, 1 channel) at batch 256 and 128 (every method at 256,
//! SimCLR at 128), and ResNet-18 with the small-image stem at 32 px, 3 channels, batch 128
//! (SimCLR). The PyTorch peer is `benches/peers/ssl_step_peer.py` on Debian's `python3-torch`
//! (`/usr/bin/python3`; `scripts/install_bench_peers.sh` installs it). Each side: one warm-up
//! step, then the median of `SSL_STEP_STEPS` (default 3) timed steps. `SSL_STEP_CASES=small`
//! or `=resnet18` runs one group only; `SSL_STEP_METHODS=simclr` times SimCLR only.
//! `GPS_SSL_KERNELS=burn` gives the baseline (burn's own convolution and batch norm);
//! `SSL_STEP_DEVICE=wgpu` (or `vulkan`, `cuda`; built with that feature) times the steps on that
//! device instead of the CPU (each step reads its loss back, so the time includes the work).
//! `SSL_STEP_MALLOC=default` leaves glibc's allocator thresholds as they are
//! (`gps_ssl::train::reuse_freed_memory` is not called).

use std::process::Command;
use std::time::Instant;

use gps_ssl::{
    loader::PairBatch,
    ssl::{Method, MethodKind, ResNetConfig, Stem},
    train::{Optimizer, OptimizerConfig, TrainConfig},
};
use rand::{Rng, SeedableRng};

/// One benchmark case: network, image size, channels, batch.
#[derive(Clone, Copy)]
struct Case {
    arch: &'static str,
    size: usize,
    channels: usize,
    batch: usize,
}

impl Case {
    fn backbone(&self) -> ResNetConfig {
        match self.arch {
            "resnet18" => ResNetConfig::resnet18(self.channels, Stem::Small),
            _ => ResNetConfig::small(self.channels),
        }
    }

    fn pairs(&self) -> PairBatch {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let n = self.batch * self.channels * self.size * self.size;
        let mut view = || {
            (0..n)
                .map(|_| rng.random::<f32>() * 2.0 - 1.0)
                .collect::<Vec<f32>>()
        };
        let (view_a, view_b) = (view(), view());
        let ids: Vec<u64> = (0..self.batch as u64).collect();
        PairBatch {
            view_a,
            view_b,
            shape: [self.batch, self.channels, self.size, self.size],
            anchor_ids: ids.clone(),
            partner_ids: ids,
            labels: None,
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn rust_step_seconds(kind: MethodKind, case: Case, steps: usize) -> f64 {
    let batch = case.pairs();
    let device = std::env::var("SSL_STEP_DEVICE")
        .unwrap_or_else(|_| "cpu".into())
        .parse::<gps_ssl::device::DeviceChoice>()
        .and_then(|d| d.open())
        .expect("SSL_STEP_DEVICE")
        .autodiff();
    let config = TrainConfig::new(kind, case.backbone());
    let mut method = gps_ssl::train::seeded(&device, 0, || {
        Method::new(config.method, &config.network, &device)
    })
    .expect("method");
    let mut opt = Optimizer::new(OptimizerConfig::sgd());
    method
        .step(&batch, &mut opt, 0.05, 0, 100)
        .expect("warm-up step");
    let times = (1..=steps as u64)
        .map(|s| {
            let t0 = Instant::now();
            method.step(&batch, &mut opt, 0.05, s, 100).expect("step");
            t0.elapsed().as_secs_f64()
        })
        .collect();
    median(times)
}

fn torch_step_seconds(case: Case, steps: usize) -> Option<f64> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let out = Command::new("/usr/bin/python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/peers/ssl_step_peer.py"
        ))
        .args([case.batch, case.size, steps, threads].map(|v| v.to_string()))
        .args([case.arch.to_string(), case.channels.to_string()])
        // On a GPU machine (SSL_STEP_DEVICE other than cpu) PyTorch runs on its CUDA device.
        .arg(match std::env::var("SSL_STEP_DEVICE").as_deref() {
            Ok("cpu") | Err(_) => "cpu",
            Ok(_) => "cuda",
        })
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
    // As the `gps-ssl` binary does: freed step buffers are reused, not unmapped
    // (`SSL_STEP_MALLOC=default` keeps glibc's defaults, for the before/after figure).
    if std::env::var("SSL_STEP_MALLOC").as_deref() != Ok("default") {
        gps_ssl::train::reuse_freed_memory();
    }
    let steps: usize = std::env::var("SSL_STEP_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let only = std::env::var("SSL_STEP_CASES").unwrap_or_default();
    let small = |batch| Case {
        arch: "small",
        size: 28,
        channels: 1,
        batch,
    };
    let resnet18 = Case {
        arch: "resnet18",
        size: 32,
        channels: 3,
        batch: 128,
    };
    // (case, methods timed on the Burn side)
    let mut plan: Vec<(Case, Vec<MethodKind>)> = Vec::new();
    let all_methods = std::env::var("SSL_STEP_METHODS").map_or(true, |m| m != "simclr");
    if only.is_empty() || only == "small" {
        let kinds = if all_methods {
            MethodKind::ALL.to_vec()
        } else {
            vec![MethodKind::Simclr]
        };
        plan.push((small(256), kinds));
        plan.push((small(128), vec![MethodKind::Simclr]));
    }
    if only.is_empty() || only == "resnet18" {
        plan.push((resnet18, vec![MethodKind::Simclr]));
    }
    println!(
        "ssl_step: median of {steps} steps after 1 warm-up, {} threads",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("{:<40} {:>10}", "case", "s/step");
    for (case, kinds) in plan {
        let label = format!(
            "{}/{}px/{}ch/b{}",
            case.arch, case.size, case.channels, case.batch
        );
        let mut simclr = None;
        for kind in kinds {
            let s = rust_step_seconds(kind, case, steps);
            if kind == MethodKind::Simclr {
                simclr = Some(s);
            }
            println!(
                "{:<40} {:>10.3}",
                format!("burn-flex/{}/{label}", kind.name()),
                s
            );
        }
        match (torch_step_seconds(case, steps), simclr) {
            (Some(t), Some(b)) => {
                println!("{:<40} {:>10.3}", format!("pytorch-cpu/simclr/{label}"), t);
                println!(
                    "{:<40} {:>9.2}x (burn / pytorch; > 1 means burn is slower)",
                    format!("ratio/simclr/{label}"),
                    b / t
                );
            }
            _ => println!("pytorch peer unavailable: run scripts/install_bench_peers.sh"),
        }
    }
}
