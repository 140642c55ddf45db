//! Is this device right, and how fast is it? A device checked against the CPU backend, and the
//! training step timed, from the `gps-ssl` binary alone (`gps-ssl selftest`, `gps-ssl
//! step-time`), so a GPU machine without Rust can run them (`scripts/gpu_check.sh`).
//!
//! [`SelfTest`] runs, on the device under test and on burn's Flex CPU backend from the same host
//! tensors and the same initial weights (the devices' RNGs differ, so nothing is drawn on a
//! device):
//!
//! | check | compares | tolerance |
//! |---|---|---|
//! | [`losses`](SelfTest::losses) | every loss and its gradient on `[8, 6]` embeddings | 1e-4 relative |
//! | [`one_step`](SelfTest::one_step) | one training step of every method (`small` ResNet, 16 px, batch 16): loss, embedding std, every weight | 1e-3 relative |
//! | [`resume`](SelfTest::resume) | 2 steps on the device + 2 on the CPU from its checkpoint, and back, against 4 + 1 on the CPU | 1e-3 relative per step |
//! | [`learns`](SelfTest::learns) | GPS-SimCLR on 256 Fashion-MNIST images (pixel-space neighbours), 20 steps on the device | loss falls, no collapse |
//!
//! The images are the first 256 of the bundled Fashion-MNIST subset, 2×2-average-pooled to
//! 14 px and zero-padded to 16 px (`[n, 1, 16, 16]`), small enough for a CPU Vulkan driver.
//!
//! [`step_seconds`] times one training step ([`crate::ssl::Method::step`], which reads its loss
//! back, so the time includes the device's work) on synthetic views.
//!
//! ```no_run
//! use gps_ssl::{device::DeviceChoice, selftest::SelfTest};
//! let device = "wgpu".parse::<DeviceChoice>()?.open()?;
//! let test = SelfTest::new(device, "data/fashion-mnist/train-images-idx3-ubyte.gz")?;
//! for (name, outcome) in test.run_all() {
//!     println!("{name}: {}", outcome.map_or_else(|e| format!("FAILED {e}"), |s| s));
//! }
//! # Ok::<(), gps_ssl::Error>(())
//! ```

use std::path::Path;
use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};

use crate::dataset::IdxSource;
use crate::knn::{KnnMethod, Metric, NeighbourBuilder};
use crate::loader::PairBatch;
use crate::progress::NoProgress;
use crate::ssl::{
    barlow_twins_loss, byol_regression_loss, info_nce_loss, nt_xent_loss, vicreg_loss, LossConfig,
    Method, MethodKind, ResNetConfig, Stem, VicRegWeights,
};
use crate::train::{
    seeded, FnSource, Optimizer, OptimizerConfig, PairSource, StepRecord, TrainConfig, Trainer,
};
use crate::{Error, Result};

/// Side of the self-test images (Fashion-MNIST pooled to 14 px, padded to 16).
pub const IMAGE_SIDE: usize = 16;

/// Images the self-test reads from the IDX file.
pub const IMAGES: usize = 256;

const PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;

/// A device under test, the CPU reference and the self-test images.
#[derive(Debug)]
pub struct SelfTest {
    device: Device,
    cpu: Device,
    images: Vec<f32>,
}

/// The name and outcome (a one-line summary of what was measured, or the failure) of each
/// check, in the order [`SelfTest::run_all`] runs them.
pub type Outcomes = Vec<(&'static str, Result<String>)>;

/// One check: a one-line summary of what it measured, or the failure.
pub type Check = fn(&SelfTest) -> Result<String>;

/// Every check by name, in the order of the [module](self) table (what `gps-ssl selftest
/// --checks` names).
pub const CHECKS: [(&str, Check); 4] = [
    ("losses", SelfTest::losses),
    ("one_step", SelfTest::one_step),
    ("resume", SelfTest::resume),
    ("learns", SelfTest::learns),
];

impl SelfTest {
    /// The checks of `device` (without autodiff; the training checks add it) on the first
    /// [`IMAGES`] images of the IDX file `fashion_mnist_images` (28×28 grey, gzip or not).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for the CPU device (there is nothing to compare), the IDX
    /// reader's errors for the images file, and [`Error::Mismatch`] when it holds fewer than
    /// [`IMAGES`] images of 28×28.
    pub fn new(device: Device, fashion_mnist_images: impl AsRef<Path>) -> Result<Self> {
        let path = fashion_mnist_images.as_ref();
        if device == Device::flex() {
            return Err(Error::invalid(
                "self-test device",
                "the CPU is the reference; name a GPU device (wgpu, vulkan, cuda)",
            ));
        }
        let idx = IdxSource::open(path, None)?;
        let shape = (idx.rows(), idx.cols());
        if shape != (28, 28) || idx.pixels().len() < IMAGES * 784 {
            return Err(Error::Mismatch {
                what: format!("{}: self-test images", path.display()),
                expected: format!("at least {IMAGES} images of 28x28"),
                found: format!(
                    "{} images of {}x{}",
                    idx.pixels().len() / (shape.0 as usize * shape.1 as usize).max(1),
                    shape.0,
                    shape.1
                ),
            });
        }
        Ok(SelfTest {
            device,
            cpu: Device::flex(),
            images: pooled(&idx.pixels()[..IMAGES * 784]),
        })
    }

    /// Every check, in the order of the [module](self) table.
    pub fn run_all(&self) -> Outcomes {
        CHECKS
            .iter()
            .map(|&(name, check)| (name, check(self)))
            .collect()
    }

    /// Every loss (NT-Xent, InfoNCE, BYOL, Barlow Twins, VICReg, masked NT-Xent) and its
    /// gradient with respect to the first embedding, device against CPU.
    ///
    /// # Errors
    /// [`Error::SelfTest`] naming the loss and the first element off by more than 1e-4.
    pub fn losses(&self) -> Result<String> {
        type LossFn = Box<dyn Fn(Tensor<2>, Tensor<2>) -> Tensor<1>>;
        let losses: [(&str, LossFn); 6] = [
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
                    let ids: Vec<u64> = (0..8u64).map(|i| i / 2).collect();
                    nt_xent_loss(a, b, 0.2, Some((&ids, &ids)))
                }),
            ),
        ];
        let mut worst = 0f32;
        for (name, f) in &losses {
            let (vd, gd) = loss_and_grad(f.as_ref(), &self.device)?;
            let (vc, gc) = loss_and_grad(f.as_ref(), &self.cpu)?;
            worst = worst.max(close(
                "losses",
                &format!("{name} loss"),
                &[vd],
                &[vc],
                1e-4,
            )?);
            worst = worst.max(close(
                "losses",
                &format!("{name} gradient"),
                &gd,
                &gc,
                1e-4,
            )?);
        }
        Ok(format!(
            "6 losses and gradients, worst relative difference {worst:.1e} (limit 1e-4)"
        ))
    }

    /// One training step of every method on both devices from the same initial weights.
    ///
    /// # Errors
    /// [`Error::SelfTest`] naming the method and what differs; the trainer's errors.
    pub fn one_step(&self) -> Result<String> {
        let (dev, cpu) = (self.device.clone().autodiff(), self.cpu.clone().autodiff());
        let mut worst = 0f32;
        for kind in MethodKind::ALL {
            let name = kind.name();
            let config = small_config(kind);
            let mut on_dev = Trainer::new(config.clone(), 1, &dev)?;
            let mut on_cpu = Trainer::new(config, 1, &cpu)?;
            if weights(&on_dev) != weights(&on_cpu) {
                return Err(failed(
                    "one_step",
                    format!("{name}: the same seed gave other initial weights on the device"),
                ));
            }
            let d = on_dev.fit(&mut flips(&self.images, 16, 1), Some(1), &NoProgress)?;
            let c = on_cpu.fit(&mut flips(&self.images, 16, 1), Some(1), &NoProgress)?;
            let (d, c) = (&d[0], &c[0]);
            worst = worst.max(close(
                "one_step",
                &format!("{name} loss"),
                &[d.loss],
                &[c.loss],
                1e-3,
            )?);
            worst = worst.max(close(
                "one_step",
                &format!("{name} embedding std"),
                &[d.embedding_std],
                &[c.embedding_std],
                1e-3,
            )?);
            worst = worst.max(close(
                "one_step",
                &format!("{name} weights after one step"),
                &weights(&on_dev),
                &weights(&on_cpu),
                1e-3,
            )?);
        }
        Ok(format!(
            "{} methods, worst relative difference {worst:.1e} (limit 1e-3)",
            MethodKind::ALL.len()
        ))
    }

    /// A checkpoint written on the device resumes on the CPU, and the CPU's on the device, each
    /// continuing the run the CPU makes straight through (SimCLR with LARS, whose trust ratio is
    /// computed on the device).
    ///
    /// # Errors
    /// [`Error::SelfTest`] naming the step whose loss differs; the trainer's and checkpoint's
    /// errors.
    pub fn resume(&self) -> Result<String> {
        let per_epoch = 4;
        let mut config = small_config(MethodKind::Simclr);
        config.optimizer = OptimizerConfig::lars();
        let (dev, cpu) = (self.device.clone().autodiff(), self.cpu.clone().autodiff());
        let src = || flips(&self.images[..64 * PIXELS], 16, per_epoch);
        let mut straight = Trainer::new(config.clone(), per_epoch, &cpu)?;
        let all = straight.fit(&mut src(), Some(4), &NoProgress)?;
        let dir = tempdir()?;
        let mut first =
            Trainer::new(config.clone(), per_epoch, &dev)?.with_output_dir(dir.path())?;
        let head = first.fit(&mut src(), Some(2), &NoProgress)?;
        drop(first);
        let mut resumed = Trainer::resume(dir.path(), per_epoch, &cpu)?;
        let tail = resumed.fit(&mut src(), Some(2), &NoProgress)?;
        drop(resumed);
        let joined: Vec<StepRecord> = head.into_iter().chain(tail).collect();
        let mut worst = steps_close("device → cpu", &joined, &all)?;
        let mut back = Trainer::resume(dir.path(), per_epoch, &dev)?;
        let more = back.fit(&mut src(), Some(1), &NoProgress)?;
        let reference = straight.fit(&mut src(), Some(1), &NoProgress)?;
        worst = worst.max(steps_close("cpu → device", &more, &reference)?);
        Ok(format!(
            "device → cpu → device over 5 steps, worst loss difference {worst:.1e} (limit 1e-3)"
        ))
    }

    /// GPS-SimCLR on the self-test images: each anchor paired with one of its 4 nearest
    /// neighbours in pixel space (exact cosine), the partner flipped; 20 steps of batch 32 on
    /// the device must lower the loss (mean of the last 5 steps below the first 5) without
    /// collapsing (embedding std > 0.02).
    ///
    /// # Errors
    /// [`Error::SelfTest`] when the loss does not fall or the embeddings collapse.
    pub fn learns(&self) -> Result<String> {
        let lists = NeighbourBuilder::new(&self.images, PIXELS)
            .k(4)
            .metric(Metric::Cosine)
            .method(KnnMethod::Exact)
            .include_self(false)
            .build()?
            .run()?
            .lists;
        let (batch, n) = (32, IMAGES);
        let per_epoch = n / batch;
        let (lists, images) = (&lists, &self.images);
        let mut src = FnSource::new(per_epoch, move |epoch, start| {
            (start..per_epoch).map(move |b| {
                let anchors: Vec<u64> = (0..batch).map(|i| (b * batch + i) as u64).collect();
                let partners: Vec<u64> = anchors
                    .iter()
                    .map(|&a| u64::from(lists.neighbours(a as usize)[(epoch + b) % 4]))
                    .collect();
                Ok::<PairBatch, Error>(PairBatch {
                    view_a: gather(images, &anchors),
                    view_b: flip(&gather(images, &partners)),
                    shape: [batch, 1, IMAGE_SIDE, IMAGE_SIDE],
                    anchor_ids: anchors,
                    partner_ids: partners,
                    labels: None,
                })
            })
        });
        let mut config = small_config(MethodKind::Simclr);
        config.batch_size = batch;
        config.epochs = 3;
        let mut trainer = Trainer::new(config, per_epoch, &self.device.clone().autodiff())?;
        let rec = trainer.fit(&mut src, Some(20), &NoProgress)?;
        if rec.len() != 20 {
            return Err(failed("learns", format!("{} steps run, not 20", rec.len())));
        }
        let mean = |r: &[StepRecord]| r.iter().map(|r| r.loss).sum::<f32>() / r.len() as f32;
        let (first, last) = (mean(&rec[..5]), mean(&rec[15..]));
        let std = rec[19].embedding_std;
        if last.partial_cmp(&first) != Some(std::cmp::Ordering::Less) {
            return Err(failed(
                "learns",
                format!("loss {first:.4} → {last:.4} did not fall"),
            ));
        }
        if std.is_nan() || std <= 0.02 {
            return Err(failed("learns", format!("collapse: embedding std {std}")));
        }
        Ok(format!(
            "loss {first:.4} → {last:.4} over 20 steps, embedding std {std:.3}"
        ))
    }
}

/// `[n, 1, 16, 16]` normalised f32 from `n` 28×28 u8 images: 2×2 mean-pooled to 14 px, padded
/// by one pixel of zero, then `(v − 0.2860) / 0.3530` (Fashion-MNIST's mean and std).
fn pooled(pixels: &[u8]) -> Vec<f32> {
    let n = pixels.len() / 784;
    let (mean, std) = (0.2860f32, 0.3530f32);
    let mut out = vec![0f32; n * PIXELS];
    for (img, dst) in pixels.chunks_exact(784).zip(out.chunks_exact_mut(PIXELS)) {
        for y in 0..IMAGE_SIDE {
            for x in 0..IMAGE_SIDE {
                let v = if (1..15).contains(&y) && (1..15).contains(&x) {
                    let (sy, sx) = (2 * (y - 1), 2 * (x - 1));
                    let s: u32 = [(0, 0), (0, 1), (1, 0), (1, 1)]
                        .iter()
                        .map(|(dy, dx)| u32::from(img[(sy + dy) * 28 + sx + dx]))
                        .sum();
                    s as f32 / (4.0 * 255.0)
                } else {
                    0.0
                };
                dst[y * IMAGE_SIDE + x] = (v - mean) / std;
            }
        }
    }
    out
}

/// Horizontal flip of `[n, 1, 16, 16]`.
fn flip(images: &[f32]) -> Vec<f32> {
    let mut out = images.to_vec();
    for (o, i) in out
        .chunks_exact_mut(IMAGE_SIDE)
        .zip(images.chunks_exact(IMAGE_SIDE))
    {
        for x in 0..IMAGE_SIDE {
            o[x] = i[IMAGE_SIDE - 1 - x];
        }
    }
    out
}

/// The images `ids` of `images`, in order.
fn gather(images: &[f32], ids: &[u64]) -> Vec<f32> {
    ids.iter()
        .flat_map(|&i| &images[i as usize * PIXELS..(i as usize + 1) * PIXELS])
        .copied()
        .collect()
}

/// Batches `0..per_epoch` of every epoch: view a the image, view b its flip, ids positions
/// (wrapping around the images).
fn flips(images: &[f32], batch: usize, per_epoch: usize) -> impl PairSource + '_ {
    let n = images.len() / PIXELS;
    FnSource::new(per_epoch, move |_epoch, start| {
        (start..per_epoch).map(move |b| {
            let ids: Vec<u64> = (0..batch).map(|i| ((b * batch + i) % n) as u64).collect();
            let view_a = gather(images, &ids);
            Ok::<PairBatch, Error>(PairBatch {
                view_b: flip(&view_a),
                view_a,
                shape: [batch, 1, IMAGE_SIDE, IMAGE_SIDE],
                anchor_ids: ids.clone(),
                partner_ids: ids,
                labels: None,
            })
        })
    })
}

/// The self-test's training recipe: the `small` ResNet on 1 channel, the method's default
/// head at width 64 → 32, batch 16, constant learning rate.
fn small_config(kind: MethodKind) -> TrainConfig {
    let mut c = TrainConfig::new(kind, ResNetConfig::small(1));
    c.network = kind.default_network(ResNetConfig::small(1), 64, 32);
    c.batch_size = 16;
    c.warmup_epochs = 0.0;
    c.final_lr_ratio = 1.0;
    if let LossConfig::Nnclr { queue_size, .. } = &mut c.method {
        *queue_size = 64;
    }
    c
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

/// Loss value and d loss / d za of `f` on `device`, from the same host inputs (`[8, 6]`).
fn loss_and_grad(
    f: &dyn Fn(Tensor<2>, Tensor<2>) -> Tensor<1>,
    device: &Device,
) -> Result<(f32, Vec<f32>)> {
    const B: usize = 8;
    const D: usize = 6;
    let device = device.clone().autodiff();
    let za: Vec<f32> = (0..B * D).map(|k| (k as f32 * 0.7).sin()).collect();
    let zb: Vec<f32> = (0..B * D).map(|k| (k as f32 * 0.3 + 1.0).cos()).collect();
    let za = Tensor::<2>::from_data(TensorData::new(za, [B, D]), &device).require_grad();
    let zb = Tensor::<2>::from_data(TensorData::new(zb, [B, D]), &device);
    let loss = f(za.clone(), zb);
    let value: f32 = loss.clone().into_scalar();
    let grads = loss.backward();
    let g = za
        .grad(&grads)
        .ok_or_else(|| failed("losses", "no gradient reached the first embedding"))?;
    let g = g
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| failed("losses", format!("gradient read back: {e:?}")))?;
    Ok((value, g))
}

/// `|a − b| ≤ rel · max(|b|_∞, 1e-3)` element-wise; the worst `|a − b| / scale` when it holds.
fn close(check: &str, what: &str, a: &[f32], b: &[f32], rel: f32) -> Result<f32> {
    if a.len() != b.len() {
        return Err(failed(
            check,
            format!(
                "{what}: {} values on the device, {} on the cpu",
                a.len(),
                b.len()
            ),
        ));
    }
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
    let mut worst = 0f32;
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let d = (x - y).abs() / scale;
        if d.is_nan() || d > rel {
            return Err(failed(
                check,
                format!("{what}[{i}]: device {x} vs cpu {y} (scale {scale}, limit {rel:e})"),
            ));
        }
        worst = worst.max(d);
    }
    Ok(worst)
}

/// Same steps, losses within 1e-3 relative; the worst relative difference.
fn steps_close(what: &str, a: &[StepRecord], b: &[StepRecord]) -> Result<f32> {
    if a.len() != b.len() || a.iter().zip(b).any(|(x, y)| x.step != y.step) {
        let steps = |r: &[StepRecord]| r.iter().map(|r| r.step).collect::<Vec<_>>();
        return Err(failed(
            "resume",
            format!("{what}: steps {:?} vs {:?}", steps(a), steps(b)),
        ));
    }
    let mut worst = 0f32;
    for (x, y) in a.iter().zip(b) {
        worst = worst.max(close(
            "resume",
            &format!("{what}: step {} loss", x.step),
            &[x.loss],
            &[y.loss],
            1e-3,
        )?);
    }
    Ok(worst)
}

fn failed(check: &str, detail: impl Into<String>) -> Error {
    Error::SelfTest {
        check: check.to_string(),
        detail: detail.into(),
    }
}

/// A temporary folder removed when dropped (the resume check's run directory).
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> Result<TempDir> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "gps-ssl-selftest-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    Ok(TempDir(dir))
}

/// A network and input for [`step_seconds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepCase {
    /// `small` (widths 16–128, one block per stage) or `resnet18`; both with the small-image
    /// stem (3×3, stride 1, no max-pool).
    pub arch: &'static str,
    /// Image side in pixels.
    pub size: usize,
    /// Image channels.
    pub channels: usize,
    /// Pairs per step.
    pub batch: usize,
}

impl StepCase {
    /// The `small` preset on 28-px grey images (Fashion-MNIST's shape).
    pub fn small(batch: usize) -> Self {
        StepCase {
            arch: "small",
            size: 28,
            channels: 1,
            batch,
        }
    }

    /// ResNet-18 on 32-px colour images (CIFAR's shape).
    pub fn resnet18(batch: usize) -> Self {
        StepCase {
            arch: "resnet18",
            size: 32,
            channels: 3,
            batch,
        }
    }

    /// `arch/<size>px/<channels>ch/b<batch>`.
    pub fn label(&self) -> String {
        format!(
            "{}/{}px/{}ch/b{}",
            self.arch, self.size, self.channels, self.batch
        )
    }

    fn backbone(&self) -> ResNetConfig {
        match self.arch {
            "resnet18" => ResNetConfig::resnet18(self.channels, Stem::Small),
            _ => ResNetConfig::small(self.channels),
        }
    }

    /// Two views of uniform noise in [−1, 1) (seeded), ids `0..batch`.
    fn pairs(&self) -> PairBatch {
        use rand::{Rng, SeedableRng};
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

/// Seconds of each of `steps` training steps of `kind` on `case` (SGD, after one warm-up step
/// that also compiles the device's kernels) on `device` (with autodiff).
///
/// # Errors
/// The method's errors (a batch the network cannot take, a device failure).
pub fn step_seconds(
    kind: MethodKind,
    case: StepCase,
    steps: usize,
    device: &Device,
) -> Result<Vec<f64>> {
    let batch = case.pairs();
    let config = TrainConfig::new(kind, case.backbone());
    let mut method = seeded(device, 0, || {
        Method::new(config.method, &config.network, device)
    })?;
    let mut opt = Optimizer::new(OptimizerConfig::sgd());
    method.step(&batch, &mut opt, 0.05, 0, 100)?;
    (1..=steps as u64)
        .map(|s| {
            let t0 = Instant::now();
            method.step(&batch, &mut opt, 0.05, s, 100)?;
            Ok(t0.elapsed().as_secs_f64())
        })
        .collect()
}

/// The median of `v` (the upper one of an even count); `NaN` for none.
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_and_flip_match_a_hand_computed_image() {
        // One 28×28 image whose pixel (y, x) is y + x: the pooled pixel (1 + i, 1 + j) is the
        // mean of 4 pixels, (2i + 2j + 1) / 255, and the border is zero before normalising.
        let img: Vec<u8> = (0..784).map(|k| ((k / 28) + (k % 28)) as u8).collect();
        let p = pooled(&img);
        let norm = |v: f32| (v - 0.2860) / 0.3530;
        assert_eq!(p.len(), PIXELS);
        assert_eq!(p[0], norm(0.0));
        for (i, j) in [(0usize, 0usize), (3, 7), (13, 13)] {
            let want = norm((2 * i + 2 * j + 1) as f32 / 255.0);
            assert!((p[(1 + i) * 16 + 1 + j] - want).abs() < 1e-6, "({i}, {j})");
        }
        let f = flip(&p);
        assert_eq!(f[16 + 1], p[16 + 14]);
        assert_eq!(flip(&f), p);
    }

    #[test]
    fn the_cpu_is_refused_as_the_device_under_test() {
        let err = SelfTest::new(Device::flex(), "unused").unwrap_err();
        assert!(
            err.to_string().contains("the CPU is the reference"),
            "{err}"
        );
    }

    #[test]
    fn close_reports_the_first_element_over_the_limit() {
        assert_eq!(
            close("c", "w", &[1.0, 2.0], &[1.0, 2.0], 1e-4).unwrap(),
            0.0
        );
        let err = close("c", "w", &[1.0, 2.1], &[1.0, 2.0], 1e-3).unwrap_err();
        assert!(
            err.to_string().contains("w[1]: device 2.1 vs cpu 2"),
            "{err}"
        );
        assert!(close("c", "w", &[f32::NAN], &[1.0], 1e-3).is_err());
        assert!(close("c", "w", &[1.0], &[1.0, 2.0], 1e-3).is_err());
    }

    #[test]
    fn median_takes_the_middle_value() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 3.0);
        assert!(median(&[]).is_nan());
    }
}
