//! The trained encoder as a product (issue 13): `export` to safetensors / ONNX + prior manifest,
//! load it back, and `encode` datasets with it.
//!
//! Independent references: torchvision's ResNet (Debian `python3-torch` + `python3-torchvision`,
//! `tests/export/torch_features.py`) loading `encoder.safetensors` with one strict
//! `load_state_dict`, ONNX Runtime running `encoder.onnx` through the crate's `embed` stage, and
//! the onnx package's full checker (`tests/export/check_onnx.py`). Inputs are real images: the
//! bundled Fashion-MNIST test images and the CIFAR-10 fixture batch (foolbox's samples).
//! Networks get seeded random weights and batch-norm statistics (so folding and naming are
//! exercised with values far from their initialisation); the CLI tests train 4 real steps.
// The binary and the trainer: the default features.
#![cfg(feature = "cli")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use burn::tensor::{Device, Tensor, TensorData};
use gps_ssl::export::{
    export_encoder, load_encoder, EncoderManifest, ExportOptions, RunProvenance, TrainedEncoder,
    META_ENCODER_RUN_HASH, ONNX_PROJECTION,
};
use gps_ssl::{
    augment::AugRecipe,
    dataset::{open_source, DataSource},
    embed::{Embedder, PriorManifest},
    experiment::{RECORD_FILE, RUNS_DIR},
    loader::PairLoaderBuilder,
    progress::NoProgress,
    sampler::SelfSampler,
    ssl::{export_tensors, import_tensors, BlockKind, MlpConfig, ResNet, ResNetConfig, Stem},
    store::EmbeddingTable,
};
use rand::{Rng, SeedableRng};

mod common;
use common::tiny_idx;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The CIFAR-10 fixture batch (20 real 32×32 RGB images).
fn cifar() -> String {
    format!("cifar10:{ROOT}/data/fixtures/cifar10_test_batch.bin")
}

/// `config` with seeded random weights: every tensor scaled by U(0.5, 1.5) elementwise, 1-d
/// tensors (batch-norm γ, β, running mean and variance) shifted by U(−0.3, 0.3) too, so every
/// variance stays ≥ 0.2 and no statistic is at its initial 0 / 1.
fn random_backbone(config: &ResNetConfig, seed: u64, device: &Device) -> ResNet {
    let net = config.init(device).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut blobs = export_tensors(&net);
    for b in &mut blobs {
        let one_d = b.shape.len() == 1;
        for v in &mut b.values {
            *v *= rng.random_range(0.5..1.5f32);
            if one_d {
                *v += rng.random_range(-0.3..0.3f32);
            }
        }
    }
    import_tensors(net, blobs).unwrap()
}

fn provenance() -> RunProvenance {
    RunProvenance {
        hash: "0".repeat(64),
        dir: "tests/export".into(),
        method: "simclr".into(),
        step: 0,
        epoch: 0,
    }
}

/// An encoder for the images of `data` (recipe: their own size, ImageNet normalisation).
fn encoder(backbone: ResNet, config: ResNetConfig, data: &str) -> TrainedEncoder {
    let source = open_source(data).unwrap();
    let s = source.get(0).unwrap().image;
    TrainedEncoder {
        backbone,
        config,
        projector: None,
        recipe: AugRecipe::rhflip(),
        input_size: [s.height, s.width],
        name: "test".into(),
        run: provenance(),
    }
}

/// The first `n` images of `data` as the network sees them (`[n, C, H, W]`, normalised, no
/// augmentation).
fn inputs(data: &str, n: usize) -> (Vec<f32>, [usize; 4]) {
    let source: Arc<dyn DataSource> = Arc::from(open_source(data).unwrap());
    let mut recipe = AugRecipe::rhflip();
    recipe.view_a.flip_p = 0.0;
    recipe.view_b.flip_p = 0.0;
    let loader = PairLoaderBuilder::new(source)
        .recipe(recipe)
        .sampler(SelfSampler)
        .shuffle(false)
        .batch_size(n)
        .build()
        .unwrap();
    let batch = loader.iter_epoch(0).next().unwrap().unwrap();
    assert_eq!(batch.anchor_ids, (0..n as u64).collect::<Vec<_>>());
    (batch.view_a, batch.shape)
}

fn forward(net: &ResNet, x: &[f32], shape: [usize; 4], device: &Device) -> Vec<f32> {
    let x = Tensor::<4>::from_data(TensorData::new(x.to_vec(), shape), device);
    net.forward(x).into_data().try_to_vec::<f32>().unwrap()
}

/// Largest |a − b| relative to max(1, max |b|), asserted below `tol`.
fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
    let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        diff <= tol * scale,
        "{what}: max |diff| {diff} > {tol} × {scale}"
    );
}

fn python(interpreter: &str, args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(interpreter).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{interpreter} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// torchvision's `resnet18` (small-image stem: `conv1` 3×3/1, `maxpool = Identity`, 1 channel)
/// and `resnet50` (torchvision's own ImageNet stem, 3 channels) load `encoder.safetensors` with
/// one strict `load_state_dict` (fc = Identity) and give Burn's features within 1e-4 on real
/// images; `load_encoder` gives back the exact weights.
#[test]
fn torchvision_loads_the_safetensors_and_gives_the_same_features() {
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let fmnist = tiny_idx(tmp.path(), "fm", 0..8);
    let cases = [
        (
            "resnet18",
            "small",
            ResNetConfig::resnet18(1, Stem::Small),
            fmnist,
            8,
        ),
        (
            "resnet50",
            "imagenet",
            ResNetConfig::resnet50(3, Stem::ImageNet),
            cifar(),
            4,
        ),
    ];
    for (seed, (arch, stem, config, data, n)) in cases.into_iter().enumerate() {
        let net = random_backbone(&config, seed as u64, &device);
        let dir = tmp.path().join(arch);
        let options = ExportOptions {
            projector: false,
            onnx: false,
        };
        export_encoder(&encoder(net.clone(), config.clone(), &data), &dir, &options).unwrap();
        let (x, shape) = inputs(&data, n);
        let burn = forward(&net, &x, shape, &device);

        let reloaded = load_encoder(&dir, &device).unwrap();
        assert_eq!(export_tensors(&reloaded), export_tensors(&net), "{arch}");

        let (input, output) = (dir.join("input.f32"), dir.join("torch.f32"));
        let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(&input, bytes).unwrap();
        let [_, c, h, w] = shape.map(|d| d.to_string());
        let count = n.to_string();
        let script = Path::new(ROOT).join("tests/export/torch_features.py");
        let weights = dir.join("encoder.safetensors");
        let args: Vec<&std::ffi::OsStr> = vec![
            script.as_os_str(),
            weights.as_os_str(),
            arch.as_ref(),
            stem.as_ref(),
            c.as_ref(),
            input.as_os_str(),
            count.as_ref(),
            h.as_ref(),
            w.as_ref(),
            output.as_os_str(),
        ];
        python("/usr/bin/python3", &args);
        let torch: Vec<f32> = std::fs::read(&output)
            .unwrap()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(torch.len(), n * config.feature_dim(), "{arch}");
        assert_close(&torch, &burn, 1e-4, arch);
    }
}

/// `encoder.onnx` passes the onnx checker (opset 17, symbolic batch / height / width) and, run
/// by ONNX Runtime through `embed` with the exported prior manifest, gives Burn's features (and
/// projections) within 1e-4 on real images: a grey `small` encoder on Fashion-MNIST (its first
/// convolution spread over the three replicated planes) and a bottleneck encoder with the
/// ImageNet stem (max-pool, projection shortcuts) on CIFAR-10 colour images, with projector.
#[test]
fn onnx_export_runs_in_onnx_runtime_with_burn_features() {
    let device = Device::flex();
    let tmp = tempfile::tempdir().unwrap();
    let fmnist = tiny_idx(tmp.path(), "fm", 0..16);
    let bottleneck = ResNetConfig {
        in_channels: 3,
        block: BlockKind::Bottleneck,
        layers: [1, 2, 1, 1],
        widths: [8, 16, 16, 32],
        stem: Stem::ImageNet,
    };
    let cases = [
        ("small", ResNetConfig::small(1), fmnist, false),
        ("bottleneck", bottleneck, cifar(), true),
    ];
    for (seed, (name, config, data, with_projector)) in cases.into_iter().enumerate() {
        let net = random_backbone(&config, 10 + seed as u64, &device);
        let mut enc = encoder(net, config.clone(), &data);
        if with_projector {
            let mlp = MlpConfig::new(config.feature_dim(), 24, 8, 2).with_last_norm(true);
            let projector =
                gps_ssl::train::seeded_module(&device, 3, || mlp.init(&device)).unwrap();
            enc.projector = Some((projector, mlp));
        }
        let dir = tmp.path().join(name);
        let options = ExportOptions {
            projector: with_projector,
            onnx: true,
        };
        let manifest = export_encoder(&enc, &dir, &options).unwrap();
        assert_eq!(manifest.prior.as_deref(), Some(Path::new("prior.toml")));

        let checker = Path::new(ROOT).join("tests/export/check_onnx.py");
        let onnx = dir.join("encoder.onnx");
        let report = python(
            &format!("{ROOT}/.venv/bin/python"),
            &[checker.as_os_str(), onnx.as_os_str()],
        );
        let dim = config.feature_dim();
        let mut expected = format!("17 batch,3,height,width batch,{dim}");
        if with_projector {
            expected.push_str(" batch,8");
        }
        assert_eq!(report.trim(), expected, "{name}");

        let source: Arc<dyn DataSource> = Arc::from(open_source(&data).unwrap());
        let burn = enc.features(source.clone(), &device, &NoProgress).unwrap();
        let images: Vec<_> = (0..source.len())
            .map(|i| source.get(i).unwrap().image)
            .collect();
        let prior = PriorManifest::load(dir.join("prior.toml")).unwrap();
        let mut embedder = Embedder::builder(prior.clone())
            .normalize(false)
            .threads(1)
            .build()
            .unwrap();
        let ort = embedder.embed_images(&images).unwrap();
        assert_close(&ort, &burn, 1e-4, name);

        if let Some((mlp, _)) = &enc.projector {
            let x =
                Tensor::<2>::from_data(TensorData::new(burn.clone(), [images.len(), dim]), &device);
            let projected = mlp.forward(x).into_data().try_to_vec::<f32>().unwrap();
            let mut embedder = Embedder::builder(prior)
                .normalize(false)
                .output_name(ONNX_PROJECTION)
                .threads(1)
                .build()
                .unwrap();
            let ort = embedder.embed_images(&images).unwrap();
            assert_close(&ort, &projected, 1e-4, "projection");
            // The projector round-trips through its own safetensors file.
            let back = TrainedEncoder::from_manifest(&dir, &device).unwrap();
            let (mlp_back, _) = back.projector.unwrap();
            assert_eq!(export_tensors(&mlp_back), export_tensors(mlp));
        }
    }
}

macro_rules! args {
    ($($a:expr),* $(,)?) => { &[$(std::ffi::OsStr::new($a)),*] };
}

/// Runs `gps-ssl ARGS` quietly: whether it succeeded, and its stderr.
fn run_cli(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gps-ssl"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), err)
}

/// `gps-ssl ARGS`, which must succeed: its stderr.
fn cli(args: &[&std::ffi::OsStr]) -> String {
    let (ok, err) = run_cli(args);
    assert!(ok, "gps-ssl {args:?}:\n{err}");
    err
}

/// `gps-ssl ARGS`, which must fail with a one-line error: its stderr.
fn cli_fails(args: &[&std::ffi::OsStr]) -> String {
    let (ok, err) = run_cli(args);
    assert!(!ok, "gps-ssl {args:?} succeeded:\n{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    err
}

/// `gps-ssl eval --no-linear` of `dir/train.parquet` against `dir/test.parquet`: its JSON report.
fn eval(dir: &Path) -> serde_json::Value {
    let (train, test, json) = (
        dir.join("train.parquet"),
        dir.join("test.parquet"),
        dir.join("eval.json"),
    );
    cli(&[
        "eval".as_ref(),
        "--train-features".as_ref(),
        train.as_os_str(),
        "--test-features".as_ref(),
        test.as_os_str(),
        "--no-linear".as_ref(),
        "--json".as_ref(),
        json.as_os_str(),
    ]);
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

/// `gps-ssl encode <flag> <encoder> --data <data> --out <out>`.
fn encode(flag: &str, encoder: &str, data: &str, out: &str) {
    cli(args!["encode", flag, encoder, "--data", data, "--out", out]);
}

/// The README's three commands: `train` → `export` → `encode` + `eval`; the ONNX prior
/// reproduces the features through `embed`, `encode --model` equals `encode --run`, and
/// `neighbours` takes the features file.
#[test]
fn train_export_encode_eval_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).display().to_string();
    let train = tiny_idx(tmp.path(), "train", 0..64);
    let test = tiny_idx(tmp.path(), "test", 64..96);
    let (run, exported) = (p("run"), p("encoder"));
    cli(args![
        "train",
        "--method",
        "simclr",
        "--data",
        &train,
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--workers",
        "1",
        "--warmup-epochs",
        "0",
        "--out",
        &run
    ]);
    let log = cli(args![
        "export",
        "--run",
        &run,
        "--out",
        &exported,
        "--projector"
    ]);
    assert!(log.contains("exported simclr-rhflip-"), "{log}");
    let model = format!("{exported}/encoder.toml");
    // Each manifest passed where the other belongs: the error says what the file is and which
    // one to pass, not the parser's `invalid type: sequence, expected u32`.
    let err = cli_fails(args![
        "embed",
        "--data",
        &test,
        "--prior",
        &model,
        "--out",
        &p("wrong.parquet")
    ]);
    assert!(
        err.contains("this is an encoder manifest written by `gps-ssl export`"),
        "{err}"
    );
    assert!(err.contains(&format!("{exported}/prior.toml")), "{err}");
    assert!(!err.contains("invalid type"), "{err}");
    let err = cli_fails(args![
        "encode",
        "--model",
        &format!("{exported}/prior.toml"),
        "--data",
        &test,
        "--out",
        &p("wrong.parquet")
    ]);
    assert!(err.contains("this is a prior manifest"), "{err}");
    assert!(err.contains("encoder.toml"), "{err}");
    encode("--run", &run, &train, &p("train.parquet"));
    encode("--model", &model, &test, &p("test.parquet"));
    encode("--run", &run, &test, &p("test-run.parquet"));
    cli(args![
        "embed",
        "--data",
        &test,
        "--prior",
        &format!("{exported}/prior.toml"),
        "--no-normalize",
        "--out",
        &p("test-onnx.parquet"),
        "--workers",
        "1",
        "--threads",
        "1"
    ]);
    let report = eval(tmp.path());
    let acc = report["knn"]["weighted_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc), "{report}");
    cli(args![
        "neighbours",
        "--embeddings",
        &p("train.parquet"),
        "--k",
        "3",
        "--out",
        &p("nn.parquet")
    ]);

    let by_model = EmbeddingTable::read(p("test.parquet")).unwrap();
    let by_run = EmbeddingTable::read(p("test-run.parquet")).unwrap();
    let by_onnx = EmbeddingTable::read(p("test-onnx.parquet")).unwrap();
    assert_eq!(by_model.vectors, by_run.vectors);
    assert_eq!(by_model.labels, by_run.labels);
    assert_close(
        &by_onnx.vectors,
        &by_model.vectors,
        1e-4,
        "embed with prior.toml",
    );
    let manifest = EncoderManifest::load(&model).unwrap();
    assert_eq!(manifest.run.step, 4);
    assert_eq!(by_run.metadata[META_ENCODER_RUN_HASH], manifest.run.hash);
    assert_eq!(by_run.metadata["gps.prior.sha256"], manifest.tensors_sha256);
}

/// `encode --run` on an experiment's run folder gives the features the experiment evaluated:
/// `eval` on them reproduces the run's recorded weighted-kNN and 1-NN accuracy exactly, and the
/// provenance names the run hash of its `record.json`.
#[test]
fn encode_reproduces_the_experiment_evaluation() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).display().to_string();
    let train = tiny_idx(tmp.path(), "a", 0..64);
    let test = tiny_idx(tmp.path(), "t", 64..96);
    let config = format!(
        "name = \"tiny\"\ndata = \"{train}\"\ntest_data = \"{test}\"\npriors = [\"pixels\"]\n\
         k = [3]\nmethods = [\"simclr\"]\naugs = [\"rhflip\"]\nbaseline = false\ngps = true\n\
         seeds = [0]\nepochs = 1\nbatch_size = 16\nwarmup_epochs = 0.0\n\
         backbone = \"small\"\nworkers = 1\nlinear_probe = false\n"
    );
    std::fs::write(p("tiny.toml"), config).unwrap();
    cli(args!["experiment", &p("tiny.toml"), "--out", &p("out")]);
    let runs: Vec<PathBuf> = std::fs::read_dir(tmp.path().join("out").join(RUNS_DIR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1);
    let run = runs[0].display().to_string();
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs[0].join(RECORD_FILE)).unwrap()).unwrap();
    encode("--run", &run, &train, &p("train.parquet"));
    encode("--run", &run, &test, &p("test.parquet"));
    let report = eval(tmp.path());
    assert_eq!(
        report["knn"]["weighted_accuracy"], record["knn_acc"],
        "{report}"
    );
    assert_eq!(report["knn"]["nn1_accuracy"], record["nn1_acc"], "{report}");
    let features = EmbeddingTable::read(p("train.parquet")).unwrap();
    assert_eq!(features.metadata[META_ENCODER_RUN_HASH], record["run_hash"]);
}
