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
//! (`gps_ssl::process::reuse_freed_memory` is not called).

use std::process::Command;

use gps_ssl::{
    selftest::{median, step_seconds, StepCase as Case},
    ssl::MethodKind,
};

fn rust_step_seconds(kind: MethodKind, case: Case, steps: usize) -> f64 {
    let device = std::env::var("SSL_STEP_DEVICE")
        .unwrap_or_else(|_| "cpu".into())
        .parse::<gps_ssl::device::DeviceChoice>()
        .and_then(|d| d.open())
        .expect("SSL_STEP_DEVICE")
        .autodiff();
    median(&step_seconds(kind, case, steps, &device).expect("training step"))
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
        gps_ssl::process::reuse_freed_memory();
    }
    let steps: usize = std::env::var("SSL_STEP_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let only = std::env::var("SSL_STEP_CASES").unwrap_or_default();
    let small = Case::small;
    let resnet18 = Case::resnet18(128);
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
        let label = case.label();
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
