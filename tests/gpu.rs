//! The GPU path (`--features wgpu`) against the CPU backend, on whatever adapter wgpu finds (in CI
//! Mesa's software Vulkan driver, lavapipe, installed by `scripts/setup.sh`).
//!
//! Both backends get identical host tensors: the devices' RNGs differ, so nothing here draws on
//! a device. Kept small, because lavapipe runs every shader on the CPU.
#![cfg(feature = "wgpu")]

mod common;
#[path = "common/fmnist.rs"]
mod fmnist;

use burn::tensor::{Device, Tensor, TensorData};
use gps_ssl::{
    device::DeviceChoice,
    loader::PairBatch,
    progress::NoProgress,
    ssl::{
        barlow_twins_loss, byol_regression_loss, info_nce_loss, nt_xent_loss, vicreg_loss,
        MethodKind, ResNetConfig, VicRegWeights,
    },
    train::{FnSource, OptimizerConfig, StepRecord, TrainConfig, Trainer},
};

/// The device under test: `wgpu` (the default), or `GPS_SSL_TEST_DEVICE` (`scripts/gpu_check.sh`
/// runs this suite on `vulkan` too).
fn gpu() -> Device {
    let name = std::env::var("GPS_SSL_TEST_DEVICE").unwrap_or_else(|_| "wgpu".into());
    let choice: DeviceChoice = name.parse().unwrap();
    assert!(
        !choice.is_cpu(),
        "GPS_SSL_TEST_DEVICE={name}: not a GPU device"
    );
    choice
        .open()
        .expect("a wgpu adapter (scripts/setup.sh installs lavapipe)")
}

fn cpu() -> Device {
    Device::flex()
}

/// `|a − b| ≤ rel · max(|b|_∞, floor)` element-wise, with the offending index in the message.
fn assert_close(what: &str, a: &[f32], b: &[f32], rel: f32) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= rel * scale,
            "{what}[{i}]: gpu {x} vs cpu {y} (scale {scale})"
        );
    }
}

fn host(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

const B: usize = 8;
const D: usize = 6;

/// Loss value and d loss / d za of `f` on `device`, from the same host inputs.
fn loss_and_grad(
    f: &dyn Fn(Tensor<2>, Tensor<2>) -> Tensor<1>,
    device: &Device,
) -> (f32, Vec<f32>) {
    let device = device.clone().autodiff();
    let za: Vec<f32> = (0..B * D).map(|k| (k as f32 * 0.7).sin()).collect();
    let zb: Vec<f32> = (0..B * D).map(|k| (k as f32 * 0.3 + 1.0).cos()).collect();
    let za = Tensor::<2>::from_data(TensorData::new(za, [B, D]), &device).require_grad();
    let zb = Tensor::<2>::from_data(TensorData::new(zb, [B, D]), &device);
    let loss = f(za.clone(), zb);
    let value: f32 = loss.clone().into_scalar();
    let grads = loss.backward();
    let g = za.grad(&grads).expect("gradient of za");
    (value, host(g))
}

#[test]
fn every_loss_and_its_gradient_match_the_cpu() {
    let losses: [(&str, Box<dyn Fn(Tensor<2>, Tensor<2>) -> Tensor<1>>); 6] = [
        ("nt_xent", Box::new(|a, b| nt_xent_loss(a, b, 0.2, None))),
        ("info_nce", Box::new(|a, b| info_nce_loss(a, b, 0.2, None))),
        ("byol", Box::new(byol_regression_loss)),
        ("barlow", Box::new(|a, b| barlow_twins_loss(a, b, 5e-3))),
        (
            "vicreg",
            Box::new(|a, b| vicreg_loss(a, b, VicRegWeights::default())),
        ),
        (
            "nt_xent masked",
            Box::new(|a, b| {
                let ids: Vec<u64> = (0..B as u64).map(|i| i / 2).collect();
                nt_xent_loss(a, b, 0.2, Some((&ids, &ids)))
            }),
        ),
    ];
    let (gpu, cpu) = (gpu(), cpu());
    for (name, f) in &losses {
        let (vg, gg) = loss_and_grad(f.as_ref(), &gpu);
        let (vc, gc) = loss_and_grad(f.as_ref(), &cpu);
        assert!(
            (vg - vc).abs() <= 1e-4 * vc.abs().max(1e-3),
            "{name}: loss gpu {vg} vs cpu {vc}"
        );
        assert_close(&format!("{name} gradient"), &gg, &gc, 1e-4);
    }
}

fn small_config(kind: MethodKind) -> TrainConfig {
    let mut c = TrainConfig::new(kind, ResNetConfig::small(1));
    c.network = kind.default_network(ResNetConfig::small(1), 64, 32);
    c.batch_size = 16;
    c.warmup_epochs = 0.0;
    c.final_lr_ratio = 1.0;
    if let gps_ssl::ssl::LossConfig::Nnclr { queue_size, .. } = &mut c.method {
        *queue_size = 64;
    }
    c
}

fn flips(images: &[f32], batch: usize, per_epoch: usize) -> impl gps_ssl::train::PairSource + '_ {
    FnSource::new(per_epoch, move |_epoch, start| {
        (start..per_epoch)
            .map(move |b| Ok::<PairBatch, gps_ssl::Error>(fmnist::flip_batch(images, batch, b)))
    })
}

/// Every parameter of the online network, flattened in visiting order.
fn weights(t: &Trainer) -> Vec<f32> {
    t.method()
        .state()
        .online
        .into_iter()
        .flat_map(|b| b.values)
        .collect()
}

#[test]
fn one_training_step_of_every_method_matches_the_cpu() {
    let images = fmnist::load_images(32);
    let (gpu, cpu) = (gpu().autodiff(), cpu().autodiff());
    for kind in MethodKind::ALL {
        // LARS for the methods that default to it: its trust ratio is computed on the device.
        let config = small_config(kind);
        let mut on_gpu = Trainer::new(config.clone(), 1, &gpu).unwrap();
        let mut on_cpu = Trainer::new(config, 1, &cpu).unwrap();
        assert_eq!(
            weights(&on_gpu),
            weights(&on_cpu),
            "{}: the same seed must give the same initial weights on both devices",
            kind.name()
        );
        let g = on_gpu
            .fit(&mut flips(&images, 16, 1), Some(1), &NoProgress)
            .unwrap();
        let c = on_cpu
            .fit(&mut flips(&images, 16, 1), Some(1), &NoProgress)
            .unwrap();
        let name = kind.name();
        assert!(
            (g[0].loss - c[0].loss).abs() <= 1e-3 * c[0].loss.abs().max(1e-3),
            "{name}: loss gpu {} vs cpu {}",
            g[0].loss,
            c[0].loss
        );
        assert!(
            (g[0].embedding_std - c[0].embedding_std).abs() <= 1e-3 * c[0].embedding_std,
            "{name}: embedding std gpu {} vs cpu {}",
            g[0].embedding_std,
            c[0].embedding_std
        );
        assert_close(
            &format!("{name} weights after one step"),
            &weights(&on_gpu),
            &weights(&on_cpu),
            1e-3,
        );
    }
}

#[test]
fn a_checkpoint_resumes_across_devices() {
    let images = fmnist::load_images(64);
    let per_epoch = 4;
    let mut config = small_config(MethodKind::Simclr);
    config.optimizer = OptimizerConfig::lars();
    let (gpu, cpu) = (gpu().autodiff(), cpu().autodiff());
    let close = |what: &str, a: &[StepRecord], b: &[StepRecord]| {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x.step, y.step);
            assert!(
                (x.loss - y.loss).abs() <= 1e-3 * y.loss.abs(),
                "{what}: step {} loss {} vs {}",
                x.step,
                x.loss,
                y.loss
            );
        }
    };
    // Straight through on the CPU: the reference.
    let mut straight = Trainer::new(config.clone(), per_epoch, &cpu).unwrap();
    let all = straight
        .fit(&mut flips(&images, 16, per_epoch), Some(4), &NoProgress)
        .unwrap();
    // Two steps on the GPU, then two on the CPU from the GPU's checkpoint.
    let dir = tempfile::tempdir().unwrap();
    let mut first = Trainer::new(config.clone(), per_epoch, &gpu)
        .unwrap()
        .with_output_dir(dir.path())
        .unwrap();
    let head = first
        .fit(&mut flips(&images, 16, per_epoch), Some(2), &NoProgress)
        .unwrap();
    drop(first);
    let mut resumed = Trainer::resume(dir.path(), per_epoch, &cpu).unwrap();
    assert_eq!(resumed.position().step, 2);
    let tail = resumed
        .fit(&mut flips(&images, 16, per_epoch), Some(2), &NoProgress)
        .unwrap();
    let joined: Vec<StepRecord> = head.into_iter().chain(tail).collect();
    close("gpu → cpu", &joined, &all);
    // And back: the CPU's checkpoint continues on the GPU.
    let mut back = Trainer::resume(dir.path(), per_epoch, &gpu).unwrap();
    assert_eq!(back.position().step, 4);
    let more = back
        .fit(&mut flips(&images, 16, per_epoch), Some(1), &NoProgress)
        .unwrap();
    let reference = straight
        .fit(&mut flips(&images, 16, per_epoch), Some(1), &NoProgress)
        .unwrap();
    close("cpu → gpu", &more, &reference);
}

/// GPS pairs of real Fashion-MNIST images: each anchor with one of its 4 nearest neighbours in
/// pixel space (exact cosine), the partner flipped.
#[test]
fn gps_simclr_on_fashion_mnist_learns_on_the_gpu() {
    let n = 256;
    let images = fmnist::load_images(n);
    let lists = common::exact_cosine_lists(&images, 256, 4);
    let batch = 32;
    let per_epoch = n / batch;
    let lists = &lists;
    let images = &images;
    let mut src = FnSource::new(per_epoch, move |epoch, start| {
        (start..per_epoch).map(move |b| {
            let anchors: Vec<u64> = (0..batch).map(|i| (b * batch + i) as u64).collect();
            let partners: Vec<u64> = anchors
                .iter()
                .map(|&a| lists.neighbours(a as usize)[(epoch + b) % 4] as u64)
                .collect();
            let pick = |ids: &[u64]| -> Vec<f32> {
                ids.iter()
                    .flat_map(|&i| images[i as usize * 256..(i as usize + 1) * 256].to_vec())
                    .collect()
            };
            Ok::<PairBatch, gps_ssl::Error>(PairBatch {
                view_a: pick(&anchors),
                view_b: fmnist::flip(&pick(&partners)),
                shape: [batch, 1, 16, 16],
                anchor_ids: anchors,
                partner_ids: partners,
                labels: None,
            })
        })
    });
    let mut config = small_config(MethodKind::Simclr);
    config.batch_size = batch;
    config.epochs = 3;
    let mut trainer = Trainer::new(config, per_epoch, &gpu().autodiff()).unwrap();
    let rec = trainer.fit(&mut src, Some(20), &NoProgress).unwrap();
    assert_eq!(rec.len(), 20);
    let mean = |r: &[StepRecord]| r.iter().map(|r| r.loss).sum::<f32>() / r.len() as f32;
    let (first, last) = (mean(&rec[..5]), mean(&rec[15..]));
    assert!(
        last < first,
        "GPS-SimCLR on wgpu: loss {first} → {last} did not fall"
    );
    assert!(
        rec[19].embedding_std > 0.02,
        "collapse: {}",
        rec[19].embedding_std
    );
}
