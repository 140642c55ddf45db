//! Integration tests of the SSL methods and the trainer.
// The binary and the trainer: the default features.
#![cfg(feature = "cli")]

#[path = "common/fmnist.rs"]
mod fmnist;

use burn::tensor::{Device, Tensor, TensorData};
use gps_ssl::{
    progress::NoProgress,
    ssl::{
        barlow_twins_loss, byol_regression_loss, cosine_momentum, ema_update, info_nce_loss,
        nt_xent_loss, vicreg_loss, MethodKind, ResNetConfig, VicRegWeights,
    },
    train::{OptimizerConfig, StepRecord, TrainConfig, Trainer},
};

const B: usize = 4;
const D: usize = 3;

/// The fixed inputs of the reference snippet: `za = sin(0.7·k)`, `zb = cos(0.3·k + 1)` with
/// `k = arange(12).reshape(4, 3)`.
fn inputs(device: &Device) -> (Tensor<2>, Tensor<2>) {
    let za: Vec<f32> = (0..B * D)
        .map(|k| ((k as f64) * 0.7).sin() as f32)
        .collect();
    let zb: Vec<f32> = (0..B * D)
        .map(|k| ((k as f64) * 0.3 + 1.0).cos() as f32)
        .collect();
    (
        Tensor::from_data(TensorData::new(za, [B, D]), device).require_grad(),
        Tensor::from_data(TensorData::new(zb, [B, D]), device),
    )
}

/// Checks loss value and d loss / d za against the NumPy reference.
fn check(f: impl Fn(Tensor<2>, Tensor<2>) -> Tensor<1>, value: f32, grad: [f32; 12]) {
    let device = Device::flex().autodiff();
    let (za, zb) = inputs(&device);
    let loss = f(za.clone(), zb);
    let v: f32 = loss.clone().into_scalar();
    assert!(
        (v - value).abs() <= 1e-5 * value.abs().max(1.0),
        "loss {v} vs reference {value}"
    );
    let grads = loss.backward();
    let g = za
        .grad(&grads)
        .expect("gradient of za")
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    for (i, (a, b)) in g.iter().zip(grad).enumerate() {
        assert!((a - b).abs() < 2e-4, "grad[{i}] {a} vs reference {b}");
    }
}

// Reference values: NumPy (float64, central finite differences for the gradient), run with
// .venv/bin/python:
//
//   import numpy as np
//   B, D = 4, 3
//   k = np.arange(B * D, dtype=np.float64).reshape(B, D)
//   za = np.sin(k * 0.7); zb = np.cos(k * 0.3 + 1.0)
//   def norm(x): return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
//   def ce(logits, pos):
//       m = logits.max(1, keepdims=True); lse = np.log(np.exp(logits - m).sum(1)) + m[:, 0]
//       return np.mean(lse - logits[np.arange(len(pos)), pos])
//   def nt_xent(a, b, t, ids=None):
//       z = norm(np.concatenate([a, b])); n = len(z); l = z @ z.T / t
//       pos = (np.arange(n) + B) % n
//       mask = np.eye(n, dtype=bool)
//       if ids is not None:
//           for i in range(n):
//               for j in range(n):
//                   if j != pos[i] and (ids[j] == ids[i] or ids[j] == ids[pos[i]]): mask[i, j] = True
//       return ce(np.where(mask, -1e9, l), pos)
//   def info_nce(q, kk, t): return ce(norm(q) @ norm(kk).T / t, np.arange(B))
//   def byol(p, t): return np.mean(2 - 2 * (norm(p) * norm(t)).sum(1))
//   def barlow(a, b, lam):
//       sa = (a - a.mean(0)) / np.sqrt(a.var(0) + 1e-5); sb = (b - b.mean(0)) / np.sqrt(b.var(0) + 1e-5)
//       c = sa.T @ sb / B; off = c - np.diag(np.diag(c))
//       return ((np.diag(c) - 1) ** 2).sum() + lam * (off ** 2).sum()
//   def vicreg(a, b):
//       inv = ((a - b) ** 2).mean()
//       std = lambda x: np.maximum(0, 1 - np.sqrt(x.var(0, ddof=1) + 1e-4)).mean()
//       def cov(x):
//           xc = x - x.mean(0); c = xc.T @ xc / (B - 1); off = c - np.diag(np.diag(c))
//           return (off ** 2).sum() / D
//       return 25 * inv + 25 * (std(a) + std(b)) / 2 + cov(a) + cov(b)
//   def grad(f, x, h=1e-6):
//       g = np.zeros_like(x)
//       for idx in np.ndindex(x.shape):
//           xp = x.copy(); xp[idx] += h; xm = x.copy(); xm[idx] -= h
//           g[idx] = (f(xp) - f(xm)) / (2 * h)
//       return g
//   ids = [0, 1, 2, 3, 1, 0, 5, 6]
//   for name, f in {'nt_xent': lambda a: nt_xent(a, zb, 0.5),
//                   'nt_xent_masked': lambda a: nt_xent(a, zb, 0.5, ids),
//                   'info_nce': lambda a: info_nce(a, zb, 0.2), 'byol': lambda a: byol(a, zb),
//                   'barlow': lambda a: barlow(a, zb, 0.005), 'vicreg': lambda a: vicreg(a, zb)}.items():
//       print(name, round(f(za), 7), [round(v, 6) for v in grad(f, za).ravel()])

#[test]
fn nt_xent_matches_numpy() {
    check(
        |a, b| nt_xent_loss(a, b, 0.5, None),
        2.4927072,
        [
            -0.309004, -0.111331, 0.07278, 0.095876, 0.311588, 0.53349, -0.00061, -0.001502,
            0.003179, 0.374027, 0.122926, -0.088092,
        ],
    );
}

#[test]
fn nt_xent_masks_false_negatives_like_numpy() {
    let anchors = [0u64, 1, 2, 3];
    let partners = [1u64, 0, 5, 6];
    check(
        |a, b| nt_xent_loss(a, b, 0.5, Some((&anchors, &partners))),
        2.1676645,
        [
            -0.282995, -0.104469, 0.068294, 0.059756, 0.229146, 0.365876, 0.010388, -0.003088,
            -0.009536, 0.473602, 0.162988, -0.116421,
        ],
    );
}

#[test]
fn info_nce_matches_numpy() {
    check(
        |a, b| info_nce_loss(a, b, 0.2, None),
        2.71981,
        [
            -0.043347, -0.014859, 0.009714, 0.26902, 0.781668, 1.408477, -0.017199, 0.000374,
            0.023163, 1.674274, 0.568695, -0.406587,
        ],
    );
}

#[test]
fn byol_regression_matches_numpy() {
    check(
        byol_regression_loss,
        1.8097281,
        [
            -0.38015, -0.141267, 0.09235, 0.073158, 0.252078, 0.420756, -0.009867, -0.023984,
            0.05095, 0.308835, 0.096517, -0.069425,
        ],
    );
}

#[test]
fn barlow_twins_matches_numpy() {
    check(
        |a, b| barlow_twins_loss(a, b, 0.005),
        0.517474,
        [
            -0.815103, -0.271284, -0.019442, 0.203349, 0.087737, -0.001105, 0.209178, -0.015113,
            0.000947, 0.402575, 0.198661, 0.0196,
        ],
    );
}

#[test]
fn vicreg_matches_numpy() {
    check(
        |a, b| vicreg_loss(a, b, VicRegWeights::default()),
        26.41236,
        [
            -2.136224, 0.888928, 3.153493, 3.26152, 3.545017, 2.917008, 1.777192, 1.753087,
            2.506625, 3.688167, 4.760972, 4.712493,
        ],
    );
}

/// EMA: every tensor of the target becomes `m·t + (1 − m)·o`.
#[test]
fn ema_update_matches_formula() {
    let device = Device::flex();
    let cfg = gps_ssl::ssl::MlpConfig::new(4, 6, 2, 2);
    // Through `seeded`: a bare `device.seed` here reseeded burn's process-wide RNG while a
    // trainer in another test thread was initialising, which made the resume tests flaky.
    let online = gps_ssl::train::seeded_module(&device, 3, || cfg.init(&device)).unwrap();
    let target = gps_ssl::train::seeded_module(&device, 4, || cfg.init(&device)).unwrap();
    let m = cosine_momentum(0.9, 3, 10);
    let before_t = gps_ssl::ssl::export_tensors(&target);
    let before_o = gps_ssl::ssl::export_tensors(&online);
    let after = gps_ssl::ssl::export_tensors(&ema_update(target, &online, m));
    assert_eq!(after.len(), before_t.len());
    let mut changed = false;
    for ((a, t), o) in after.iter().zip(&before_t).zip(&before_o) {
        for ((&a, &t), &o) in a.values.iter().zip(&t.values).zip(&o.values) {
            let expected = m as f32 * t + (1.0 - m as f32) * o;
            assert!((a - expected).abs() < 1e-6, "{a} vs {expected}");
            changed |= (a - t).abs() > 1e-6;
        }
    }
    assert!(changed, "the target moved");
}

fn small_config(kind: MethodKind) -> TrainConfig {
    let mut c = TrainConfig::new(kind, ResNetConfig::small(1));
    c.network = kind.default_network(ResNetConfig::small(1), 128, 64);
    c.batch_size = 32;
    c.warmup_epochs = 0.0;
    c.final_lr_ratio = 1.0;
    c.optimizer = OptimizerConfig::sgd();
    c.lr = match kind {
        MethodKind::Vicreg | MethodKind::Barlow => 0.02,
        _ => 0.1,
    };
    if let gps_ssl::ssl::LossConfig::Nnclr { queue_size, .. } = &mut c.method {
        *queue_size = 256;
    }
    c
}

/// Each method's loss falls over 30 steps on real Fashion-MNIST pairs without collapsing.
fn loss_falls(kind: MethodKind) {
    let images = fmnist::load_images(256);
    let config = small_config(kind);
    let mut src = fmnist::flip_source(&images, 32, 30);
    let device = Device::flex().autodiff();
    let mut trainer = Trainer::new(config, 30, &device).unwrap();
    let rec = trainer.fit(&mut src, None, &NoProgress).unwrap();
    assert_eq!(rec.len(), 30);
    let mean = |r: &[StepRecord]| r.iter().map(|r| r.loss).sum::<f32>() / r.len() as f32;
    let (first, last) = (mean(&rec[..5]), mean(&rec[25..]));
    assert!(
        last < first,
        "{}: loss {first} → {last} did not fall",
        kind.name()
    );
    let std = rec[29].embedding_std;
    // 1/sqrt(64) = 0.125 is a perfectly spread embedding; a collapsed one is ~0.
    assert!(
        std > 0.02,
        "{}: embedding std {std} — collapse",
        kind.name()
    );
}

#[test]
fn simclr_loss_falls_on_fashion_mnist() {
    loss_falls(MethodKind::Simclr);
}

#[test]
fn byol_loss_falls_on_fashion_mnist() {
    loss_falls(MethodKind::Byol);
}

#[test]
fn barlow_loss_falls_on_fashion_mnist() {
    loss_falls(MethodKind::Barlow);
}

#[test]
fn vicreg_loss_falls_on_fashion_mnist() {
    loss_falls(MethodKind::Vicreg);
}

#[test]
fn mocov3_loss_falls_on_fashion_mnist() {
    loss_falls(MethodKind::Mocov3);
}

#[test]
fn nnclr_loss_falls_on_fashion_mnist() {
    loss_falls(MethodKind::Nnclr);
}

/// `f` on a rayon pool of `threads` threads (every parallel loop of the step runs there).
fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

/// Train n steps on 2 threads, checkpoint, resume in a new trainer on 1 thread, train m more ==
/// n + m straight on 2 threads, bit for bit: the losses of every step are the same f32.
fn resume_is_exact(kind: MethodKind, optimizer: OptimizerConfig) {
    let images = fmnist::load_images(64);
    let (n, m, per_epoch) = (3u64, 3u64, 4usize);
    let mut config = small_config(kind);
    config.optimizer = optimizer;
    config.epochs = 2;
    config.batch_size = 16;
    config.warmup_epochs = 0.5;
    config.final_lr_ratio = 0.1;
    let device = Device::flex().autodiff();

    let mut straight = Trainer::new(config.clone(), per_epoch, &device).unwrap();
    let all = on_threads(2, || {
        straight.fit(
            &mut fmnist::flip_source(&images, 16, per_epoch),
            Some(n + m),
            &NoProgress,
        )
    })
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut first = Trainer::new(config, per_epoch, &device)
        .unwrap()
        .with_output_dir(dir.path())
        .unwrap();
    let head = on_threads(2, || {
        first.fit(
            &mut fmnist::flip_source(&images, 16, per_epoch),
            Some(n),
            &NoProgress,
        )
    })
    .unwrap();
    drop(first);
    let mut resumed = Trainer::resume(dir.path(), per_epoch, &device).unwrap();
    assert_eq!(resumed.position().step, n);
    let tail = on_threads(1, || {
        resumed.fit(
            &mut fmnist::flip_source(&images, 16, per_epoch),
            Some(m),
            &NoProgress,
        )
    })
    .unwrap();

    let joined: Vec<_> = head.iter().chain(&tail).collect();
    assert_eq!(joined.len(), all.len());
    for (a, b) in joined.iter().zip(&all) {
        assert_eq!((a.step, a.epoch, a.batch), (b.step, b.epoch, b.batch));
        assert!(
            a.loss.to_bits() == b.loss.to_bits(),
            "{}: step {} {} vs {}",
            kind.name(),
            a.step,
            a.loss,
            b.loss
        );
    }
    let log = std::fs::read_to_string(dir.path().join("log.csv")).unwrap();
    assert_eq!(
        log.lines().count() as u64,
        1 + n + m,
        "log has one row per step"
    );
    assert!(dir.path().join("config.json").exists());
}

/// Two trainers never write into one run directory at once: while one trains, another
/// trainer's `with_output_dir` on it is refused (the lock is the OS's, so another process is
/// refused the same way); once `fit` returns, the directory is free again.
#[test]
fn a_run_directory_has_one_writer_at_a_time() {
    let images = fmnist::load_images(32);
    let per_epoch = 2;
    let mut config = small_config(MethodKind::Simclr);
    config.batch_size = 16;
    let device = Device::flex().autodiff();
    let dir = tempfile::tempdir().unwrap();
    let mut first = Trainer::new(config.clone(), per_epoch, &device)
        .unwrap()
        .with_output_dir(dir.path())
        .unwrap();
    let second = || {
        Trainer::new(config.clone(), per_epoch, &device)
            .unwrap()
            .with_output_dir(dir.path())
    };
    let mut during = None;
    let mut source = gps_ssl::train::FnSource::new(per_epoch, |_epoch, start| {
        // Asked for its batches by the first trainer's `fit`: the directory is taken.
        during.get_or_insert_with(|| second().map(|_| ()).map_err(|e| e.to_string()));
        (start..per_epoch).map(|b| Ok(fmnist::flip_batch(&images, 16, b)))
    });
    first.fit(&mut source, Some(1), &NoProgress).unwrap();
    let err = during.expect("fit asked for batches").unwrap_err();
    assert!(err.contains("another job"), "{err}");
    // Once `fit` has returned, the run can be resumed (also while `first` still exists).
    let resumed = Trainer::resume(dir.path(), per_epoch, &device).unwrap();
    assert_eq!(resumed.position().step, 1);
    drop(first);
}

#[test]
fn resume_is_exact_simclr_sgd() {
    resume_is_exact(MethodKind::Simclr, OptimizerConfig::sgd());
}

#[test]
fn resume_is_exact_byol_lars() {
    resume_is_exact(MethodKind::Byol, OptimizerConfig::lars());
}

#[test]
fn resume_is_exact_nnclr_adamw() {
    resume_is_exact(MethodKind::Nnclr, OptimizerConfig::adamw());
}

/// `gps-ssl train` end to end on real Fashion-MNIST: stops after `--max-steps`, resumes from its
/// checkpoint with the log continuing where it stopped, refuses to overwrite a run, and refuses an
/// unknown method by name.
#[test]
fn cli_train_stops_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data/fashion-mnist/t10k");
    let train = |method: &str, steps: &str, resume: bool| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gps-ssl"))
            .args(["train", "--method", method, "--data", data])
            .args(resume.then_some("--resume"))
            .args(["--batch-size", "32", "--max-steps", steps, "--out"])
            .arg(&out)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let logged_steps = || -> Vec<u64> {
        let rows = gps_ssl::train::read_log(&out.join(gps_ssl::train::LOG_FILE)).unwrap();
        rows.iter().map(|r| r.step).collect()
    };
    let first = train("byol", "2", false);
    assert!(first.status.success(), "{first:?}");
    assert!(out.join(gps_ssl::train::CHECKPOINT_FILE).is_file());
    assert_eq!(logged_steps(), vec![0, 1]);
    let second = train("byol", "1", true);
    assert!(second.status.success(), "{second:?}");
    assert_eq!(logged_steps(), vec![0, 1, 2]);
    let losses = gps_ssl::train::read_losses(&out.join(gps_ssl::train::LOG_FILE)).unwrap();
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    // Every step logs how long it waited for its batch, and the run's summary line the share.
    let rows = gps_ssl::train::read_log(&out.join(gps_ssl::train::LOG_FILE)).unwrap();
    assert!(
        rows.iter()
            .all(|r| r.data_seconds.is_some_and(|d| d.is_finite() && d >= 0.0)),
        "{rows:?}"
    );
    let summary = String::from_utf8_lossy(&second.stderr);
    assert!(summary.contains("waiting for batches ("), "{summary}");

    // Without --resume an existing run is refused, not overwritten.
    let again = train("byol", "1", false);
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("--resume"), "{stderr}");
    assert_eq!(logged_steps(), vec![0, 1, 2]);

    let bad = train("simsiam", "1", false);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("simsiam") && stderr.contains("simclr|byol"),
        "{stderr}"
    );
}
