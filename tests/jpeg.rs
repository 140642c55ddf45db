//! JPEG decoding at full size and DCT-scaled, and the loader's reduced decodes.
//!
//! Independent reference: Pillow (the setup's venv), whose wheel decodes with its own build of
//! libjpeg-turbo. `Image.draft("RGB", (w // d, h // d))` asks libjpeg for the same `1/d` DCT
//! scaling, with the same defaults (accurate integer IDCT, fancy upsampling): our
//! `get_reduced` must give the same bytes, for baseline and progressive files, 4:2:0 and 4:4:4
//! chroma, grey, and sizes that are not multiples of 8.
//!
//! The loader: with `reduced_decode` off its views are those of a full-size decode; with it on,
//! each view equals the straightforward path (decode at the factor the crops allow, crop box /
//! factor, resize) and is close to the full-size view; the same seed gives the same bytes for
//! 0, 1 and 2 workers.
// The binary and the trainer: the default features.
#![cfg(feature = "cli")]

mod common;

use gps_ssl::{
    augment::{AugRecipe, Augmenter},
    dataset::{DataSource, DecodeAsk, ImageFolderSource},
    loader::PairLoaderBuilder,
};
use std::path::Path;
use std::sync::Arc;

/// Writes seeded, smooth-ish JPEGs with Pillow into `dir/cls/` and, for each file and factor,
/// Pillow's decode of it: `<name>.<d>.raw` plus `<name>.<d>.json` (`[width, height, channels]`).
const PILLOW_SCRIPT: &str = r#"
import json, os, sys
import numpy as np
from PIL import Image
out = sys.argv[1]
os.makedirs(os.path.join(out, "cls"), exist_ok=True)
rng = np.random.default_rng(20261204)
cases = [
    ("base420", (333, 250), "RGB", dict(quality=90, subsampling=2, progressive=False)),
    ("base444", (200, 157), "RGB", dict(quality=95, subsampling=0, progressive=False)),
    ("prog420", (256, 192), "RGB", dict(quality=85, subsampling=2, progressive=True)),
    ("grey", (145, 203), "L", dict(quality=90)),
]
for name, (w, h), mode, opts in cases:
    c = 3 if mode == "RGB" else 1
    coarse = rng.integers(0, 256, size=(h // 8 + 1, w // 8 + 1, c)).astype(np.float32)
    img = np.kron(coarse, np.ones((8, 8, 1)))[:h, :w] + rng.normal(0, 12, size=(h, w, c))
    img = np.clip(img, 0, 255).astype(np.uint8)
    pil = Image.fromarray(img[:, :, 0] if c == 1 else img, mode)
    path = os.path.join(out, "cls", name + ".jpg")
    pil.save(path, "JPEG", **opts)
    for d in (1, 2, 4, 8):
        im = Image.open(path)
        if d > 1:
            im.draft(mode, (w // d, h // d))
        im = im.convert(mode)
        arr = np.asarray(im)
        with open(os.path.join(out, f"{name}.{d}.raw"), "wb") as f:
            f.write(arr.tobytes())
        with open(os.path.join(out, f"{name}.{d}.json"), "w") as f:
            json.dump([im.size[0], im.size[1], c], f)
"#;

fn pillow_files(dir: &Path) {
    common::venv_python(PILLOW_SCRIPT, dir);
}

#[test]
fn reduced_decodes_are_pillows_draft_decodes_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    pillow_files(dir.path());
    let src = ImageFolderSource::open(dir.path()).unwrap();
    assert_eq!(src.len(), 4);
    let mut compared = 0;
    for i in 0..src.len() {
        let key = src.key(i).unwrap();
        let name = key.trim_start_matches("cls/").trim_end_matches(".jpg");
        for d in [1u32, 2, 4, 8] {
            let mut asked = None;
            let r = src
                .get_reduced(i, &mut |w, h| {
                    asked = Some((w, h));
                    d
                })
                .unwrap();
            let dims: [u32; 3] = serde_json::from_str(
                &std::fs::read_to_string(dir.path().join(format!("{name}.{d}.json"))).unwrap(),
            )
            .unwrap();
            let want = std::fs::read(dir.path().join(format!("{name}.{d}.raw"))).unwrap();
            let im = &r.sample.image;
            assert_eq!(asked, Some(r.full), "{key}: reduction() gets the full size");
            assert_eq!(r.factor, d, "{key}");
            assert_eq!(
                [im.width, im.height, im.channels as u32],
                dims,
                "{key} at 1/{d}"
            );
            assert_eq!(
                (im.width, im.height),
                (r.full.0.div_ceil(d), r.full.1.div_ceil(d))
            );
            let diff = im.data.iter().zip(&want).filter(|(a, b)| a != b).count();
            assert!(
                im.data == want,
                "{key} at 1/{d}: {diff} bytes differ from Pillow"
            );
            compared += 1;
        }
        // `get` is the full-size decode.
        let full = src.get(i).unwrap().image;
        let at1 = src.get_reduced(i, &mut |_, _| 1).unwrap().sample.image;
        assert_eq!(full, at1);
    }
    assert_eq!(compared, 16);
}

/// JPEGs with the `image` crate's encoder, large enough for 24-px views to take 1/2, 1/4 and
/// 1/8 decodes.
fn jpeg_folder(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir.join("a")).unwrap();
    for i in 0..n {
        let (w, h) = (180 + 16 * i as u32, 150 + 7 * i as u32);
        let px: Vec<u8> = (0..w * h)
            .flat_map(|p| {
                let (x, y) = (p % w, p / w);
                [
                    ((x * 255) / w) as u8,
                    ((y * 255) / h) as u8,
                    (((x / 9 + y / 13 + i as u32) % 2) * 200) as u8,
                ]
            })
            .collect();
        let f = std::fs::File::create(dir.join(format!("a/{i:02}.jpg"))).unwrap();
        let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(f, 92);
        image::ImageEncoder::write_image(enc, &px, w, h, image::ExtendedColorType::Rgb8).unwrap();
    }
}

fn views(src: Arc<dyn DataSource>, recipe: AugRecipe, workers: usize) -> Vec<(Vec<f32>, Vec<f32>)> {
    let loader = PairLoaderBuilder::new(src)
        .recipe(recipe)
        .batch_size(4)
        .workers(workers)
        .seed(11)
        .build()
        .unwrap();
    loader
        .iter_epoch(2)
        .map(|b| {
            let b = b.unwrap();
            (b.view_a, b.view_b)
        })
        .collect()
}

#[test]
fn loader_views_from_reduced_decodes_are_the_straightforward_ones() {
    let dir = tempfile::tempdir().unwrap();
    jpeg_folder(dir.path(), 10);
    let src: Arc<dyn DataSource> = Arc::new(ImageFolderSource::open(dir.path()).unwrap());
    let recipe = AugRecipe::simclr().with_output_size(24, 24);
    let full_recipe = recipe.clone().with_reduced_decode(false);

    // Off: the views of a full-size decode, as `Augmenter::augment` makes them.
    let off = views(src.clone(), full_recipe.clone(), 0);
    let on = views(src.clone(), recipe.clone(), 0);
    let loader = PairLoaderBuilder::new(src.clone())
        .recipe(recipe.clone())
        .batch_size(4)
        .seed(11)
        .build()
        .unwrap();
    let perm: Vec<u64> = loader
        .iter_epoch(2)
        .flat_map(|b| b.unwrap().anchor_ids)
        .collect();
    let mut aug_full = Augmenter::new(full_recipe, 3, 24, 24).unwrap();
    let mut aug = Augmenter::new(recipe.clone(), 3, 24, 24).unwrap();
    let n = aug.view_len();
    let (mut reduced_views, mut factors, mut partial) = (0, Vec::new(), 0);
    for (t, &id) in perm.iter().enumerate() {
        let (b, i) = (t / 4, t % 4);
        let image = src.get(id as usize).unwrap().image;
        let (w, h) = (image.width, image.height);
        for (view, (got_off, got_on)) in [(0, (&off[b].0, &on[b].0)), (1, (&off[b].1, &on[b].1))] {
            let mut want = vec![0.0; n];
            aug_full
                .augment(&image, view, 11, 2, t as u64, &mut want)
                .unwrap();
            assert_eq!(
                &got_off[i * n..(i + 1) * n],
                &want[..],
                "pair {t} view {view}"
            );
            // On: decode at the reduction both views allow (plain SSL: one decode per pair).
            let [pa, pb] = [0, 1].map(|v| aug.draw(v, w, h, 11, 2, t as u64));
            let d = aug.reduction(&pa).min(aug.reduction(&pb));
            let p = if view == 0 { pa } else { pb };
            let r = src.get_reduced(id as usize, &mut |_, _| d).unwrap();
            let mut want_on = vec![0.0; n];
            aug.apply_reduced(&p, &r.sample.image, r.factor, &mut want_on)
                .unwrap();
            let got = &got_on[i * n..(i + 1) * n];
            assert_eq!(got, &want_on[..], "pair {t} view {view} at 1/{d}");
            // What the loader decodes: only the part of the image both views read
            // (`get_region`), which gives the same view bit for bit.
            let ask = DecodeAsk {
                factor: d,
                region: Some(aug.region(&[&pa, &pb], d, (w, h))),
            };
            let part = src.get_region(id as usize, &mut |_, _| ask).unwrap();
            let mut from_part = vec![0.0; n];
            aug.apply_part(
                &p,
                &part.sample.image,
                part.factor,
                part.origin,
                &mut from_part,
            )
            .unwrap();
            assert_eq!(from_part, want_on, "pair {t} view {view} from {ask:?}");
            if part.sample.image.width * part.sample.image.height
                < r.sample.image.width * r.sample.image.height
            {
                partial += 1;
            }
            // And it shows the same crop as the full decode (the box maps to box / d): close to
            // the full-size view, and much closer than to the full-size view of the crop moved
            // by a quarter of its width.
            let mad = |x: &[f32], y: &[f32]| {
                x.iter().zip(y).map(|(a, b)| (a - b).abs()).sum::<f32>() / n as f32
            };
            let mut moved = p;
            let q = p.crop.width / 4;
            moved.crop.left = if p.crop.left + p.crop.width + q <= w {
                p.crop.left + q
            } else {
                p.crop.left - q.min(p.crop.left)
            };
            let mut away = vec![0.0; n];
            aug_full.apply(&moved, &image, &mut away).unwrap();
            let (near, far) = (mad(got, &want), mad(got, &away));
            assert!(
                near < 0.1 && near * 3.0 < far,
                "pair {t} view {view} at 1/{d}: mean |diff| {near} to the full-size view, {far} to a moved crop"
            );
            if d > 1 {
                reduced_views += 1;
            }
            factors.push(d);
        }
    }
    assert!(reduced_views >= 4, "{factors:?}");
    assert!(
        partial >= 4,
        "{partial} views decoded from a part of their image"
    );
    assert!(factors.contains(&4), "{factors:?}");

    // Any worker count, the same bytes.
    for workers in [1, 2] {
        assert_eq!(
            views(src.clone(), recipe.clone(), workers),
            on,
            "{workers} workers"
        );
    }
}

/// A `DecodedCache` over the JPEG folder gives the loader's batches of whole decodes
/// (`reduced_decode` off) bit for bit, whatever it holds: all of the folder, part of it (a
/// budget of four images, filled in whatever order the workers reach them), or nothing; for 0
/// and 2 workers, and again from the cache in a later epoch.
#[test]
fn a_decoded_cache_gives_the_batches_of_whole_decodes() {
    use gps_ssl::dataset::DecodedCache;
    let dir = tempfile::tempdir().unwrap();
    jpeg_folder(dir.path(), 10);
    let src: Arc<dyn DataSource> = Arc::new(ImageFolderSource::open(dir.path()).unwrap());
    let full = AugRecipe::simclr()
        .with_output_size(24, 24)
        .with_reduced_decode(false);
    let want = views(src.clone(), full.clone(), 0);
    let biggest = (0..src.len())
        .map(|i| src.get(i).unwrap().image.data.len() as u64)
        .max()
        .unwrap();
    for budget in [1 << 30, 4 * biggest, 0] {
        for workers in [0, 2] {
            let cache = Arc::new(DecodedCache::new(src.clone(), budget));
            let cached: Arc<dyn DataSource> = cache.clone();
            for pass in 0..2 {
                // The recipe as it is (reduced decoding on): the cache decodes whole images.
                let recipe = AugRecipe::simclr().with_output_size(24, 24);
                let got = views(cached.clone(), recipe, workers);
                assert!(
                    got == want,
                    "budget {budget}, {workers} workers, pass {pass}"
                );
            }
            let held = cache.cached_samples();
            match budget {
                0 => assert_eq!(held, 0),
                b if b == 1 << 30 => assert_eq!(held, 10),
                // Any four fit; all ten do not.
                _ => assert!((4..10).contains(&held), "{held} held"),
            }
            assert!(cache.cached_bytes() <= budget);
        }
    }
}

/// `PairData::cache_gib` (`gps-ssl train --cache-decoded`): the run's recipe records whole
/// decodes, the batches and the run's identity do not depend on the budget (0 included), and a
/// budget that is negative or not a number is refused, naming the flag.
#[test]
fn cache_decoded_runs_are_whole_decode_runs_whatever_the_budget() {
    use gps_ssl::train::PairData;
    let dir = tempfile::tempdir().unwrap();
    jpeg_folder(dir.path(), 10);
    let pairs = |cache_gib: Option<f64>| PairData {
        data: dir.path().display().to_string(),
        neighbours: None,
        aug: "strong".into(),
        size: Some(24),
        batch_size: 4,
        seed: 5,
        workers: 2,
        skip_bad: false,
        cache_gib,
    };
    let batches = |p: &PairData| {
        let (loader, config) = p.open_with_config().unwrap();
        let views: Vec<(Vec<f32>, Vec<f32>)> = loader
            .iter_epoch(1)
            .map(|b| {
                let b = b.unwrap();
                (b.view_a, b.view_b)
            })
            .collect();
        (views, config)
    };
    let (big, big_config) = batches(&pairs(Some(1.0)));
    let (tiny, tiny_config) = batches(&pairs(Some(1e-9)));
    assert!(!big_config.recipe.reduced_decode);
    assert!(big == tiny);
    assert_eq!(big_config.identity(), tiny_config.identity());
    let (plain, plain_config) = batches(&pairs(None));
    assert!(plain_config.recipe.reduced_decode);
    assert_ne!(plain_config.identity(), big_config.identity());
    assert!(plain != big, "reduced decodes give other views");
    // 0 keeps nothing and gives the same run.
    let (none, none_config) = batches(&pairs(Some(0.0)));
    assert!(none == big);
    assert_eq!(none_config.identity(), big_config.identity());
    for bad in [-1.0, f64::NAN, f64::INFINITY] {
        let e = pairs(Some(bad)).open_with_config().unwrap_err().to_string();
        assert!(e.contains("--cache-decoded"), "{bad}: {e}");
    }
}

/// `gps-ssl train --cache-decoded` says at the end how much of the dataset it held and, when the
/// budget is full, how many images it decodes every epoch.
#[test]
fn a_cached_training_run_reports_what_it_held() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    jpeg_folder(&data, 8);
    let train = |out: &str, gib: &str, steps: &str| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_gps-ssl"))
            .args(["train", "--method", "simclr", "--aug", "strong"])
            .args(["--size", "24", "--batch-size", "4", "--max-steps", steps])
            .args(["--cache-decoded", gib, "--data"])
            .arg(&data)
            .arg("--out")
            .arg(dir.path().join(out))
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(o.status.success(), "{err}");
        err
    };
    // Two steps of four pairs read all eight images.
    let all = train("all", "1", "2");
    assert!(
        all.contains("decoded cache: 8 of 8 images in memory"),
        "{all}"
    );
    assert!(!all.contains("decoded every epoch"), "{all}");
    let none = train("none", "0", "2");
    assert!(
        none.contains(
            "decoded cache: 0 of 8 images in memory, 0.00 of 0.00 GiB; the budget is full, so \
             the other 8 are decoded every epoch"
        ),
        "{none}"
    );
}
