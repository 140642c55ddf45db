//! Dataset sources against real fixtures.
//!
//! Expected values come from `data/fixtures/expected.json`, written by `data/make_fixtures.py`
//! which reads every image independently with Pillow/numpy, e.g. for a PNG:
//! ```python
//! arr = np.asarray(Image.open(path).convert("RGB"))          # H x W x 3
//! {"sum": int(arr.astype(np.int64).sum()), "pixels": [[x, y, c, int(arr[y, x, c])], ...]}
//! ```
//! and for the Fashion-MNIST subset, with numpy from the gzip IDX bytes:
//! ```python
//! images = np.frombuffer(gzip.open(f).read(), np.uint8, offset=16).reshape(n, 28, 28)
//! ```

use gps_ssl::{
    dataset::{
        open_source, CifarFormat, CifarSource, DataSource, IdxSource, ImageFolderSource,
        ParquetImageSource,
    },
    Error,
};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

fn fixtures() -> PathBuf {
    data_dir().join("fixtures")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn as_i64s(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

/// Checks every sample described in `exp["samples"]` (key, label, shape, pixels, sum or
/// per-channel means). `tol` is the per-pixel tolerance (0 = exact; JPEG decoders differ).
fn check_samples(src: &dyn DataSource, exp: &Value, tol: i64) {
    assert_eq!(
        src.len() as i64,
        exp["count"].as_i64().unwrap(),
        "{}",
        src.describe()
    );
    for (pos, s) in exp["samples"].as_array().unwrap().iter().enumerate() {
        let index = s.get("index").and_then(Value::as_u64).unwrap_or(pos as u64) as usize;
        let got = src.get(index).unwrap();
        assert_eq!(got.id, index as u64);
        assert_eq!(got.key, s["key"].as_str().unwrap(), "key of sample {index}");
        assert_eq!(got.label, s["label"].as_i64(), "label of {}", got.key);
        assert_eq!(src.key(index).unwrap(), got.key);
        assert_eq!(src.label(index).unwrap(), got.label);
        let shape = as_i64s(&s["shape"]);
        let img = &got.image;
        assert_eq!(
            [img.height as i64, img.width as i64, img.channels as i64],
            [shape[0], shape[1], shape[2]],
            "shape of {}",
            got.key
        );
        for p in s["pixels"].as_array().unwrap() {
            let p = as_i64s(p);
            let v = img.at(p[0] as u32, p[1] as u32, p[2] as u8) as i64;
            assert!(
                (v - p[3]).abs() <= tol,
                "{} pixel ({}, {}, {}): {v} vs {}",
                got.key,
                p[0],
                p[1],
                p[2],
                p[3]
            );
        }
        if let Some(sum) = s.get("sum") {
            let total: i64 = img.data.iter().map(|&b| b as i64).sum();
            assert_eq!(total, sum.as_i64().unwrap(), "pixel sum of {}", got.key);
        }
        if let Some(means) = s.get("channel_means") {
            let c = img.channels as usize;
            for (ch, m) in means.as_array().unwrap().iter().enumerate() {
                let vals: Vec<f64> = img
                    .data
                    .iter()
                    .skip(ch)
                    .step_by(c)
                    .map(|&b| b as f64)
                    .collect();
                let mean = vals.iter().sum::<f64>() / vals.len() as f64;
                assert!(
                    (mean - m.as_f64().unwrap()).abs() < 1.0,
                    "{} channel {ch} mean {mean} vs {m}",
                    got.key
                );
            }
        }
    }
}

fn labels_of(src: &dyn DataSource) -> Vec<i64> {
    (0..src.len())
        .map(|i| src.label(i).unwrap().unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Fashion-MNIST subset (IDX)

#[test]
fn fashion_mnist_subset_is_balanced_and_matches_numpy() {
    let exp = expected();
    for (split, per_class) in [("train", 1000), ("t10k", 200)] {
        let e = &exp[format!("fashion_mnist_{split}")];
        let src = IdxSource::open_prefix(data_dir().join("fashion-mnist").join(split)).unwrap();
        check_samples(&src, e, 0);
        let mut hist = [0usize; 10];
        for l in src.labels().unwrap() {
            hist[*l as usize] += 1;
        }
        assert_eq!(hist, [per_class; 10], "{split} class histogram");
        assert_eq!(
            hist.iter().map(|&h| h as i64).collect::<Vec<_>>(),
            as_i64s(&e["label_counts"])
        );
        let first: Vec<i64> = (0..20).map(|i| src.label(i).unwrap().unwrap()).collect();
        assert_eq!(first, as_i64s(&e["first_labels"]));
        assert_eq!((src.rows(), src.cols()), (28, 28));
    }
}

#[test]
fn idx_prefix_spec_and_file_spec_agree() {
    let prefix = data_dir().join("fashion-mnist/t10k");
    let a = open_source(prefix.to_str().unwrap()).unwrap();
    let file = data_dir().join("fashion-mnist/t10k-images-idx3-ubyte.gz");
    let b = open_source(file.to_str().unwrap()).unwrap();
    let c = open_source(&format!("idx:{}", prefix.display())).unwrap();
    assert_eq!(a.len(), 2000);
    assert!(a.describe().starts_with("idx:"), "{}", a.describe());
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_eq!(a.fingerprint(), c.fingerprint());
    assert_eq!(b.label(7).unwrap(), a.label(7).unwrap());
    assert!(
        b.label(7).unwrap().is_some(),
        "labels file found beside the images file"
    );
}

#[test]
fn idx_directory_with_two_splits_asks_which() {
    let err = open_source(data_dir().join("fashion-mnist").to_str().unwrap())
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("several IDX splits") && msg.contains("train") && msg.contains("t10k"),
        "{msg}"
    );
}

fn gunzip(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn idx_raw_and_gzip_read_the_same_and_fingerprint_follows_content() {
    let dir = tempfile::tempdir().unwrap();
    let fm = data_dir().join("fashion-mnist");
    let mut images = gunzip(&fm.join("t10k-images-idx3-ubyte.gz"));
    let labels = gunzip(&fm.join("t10k-labels-idx1-ubyte.gz"));
    let img_path = dir.path().join("t10k-images-idx3-ubyte");
    std::fs::write(&img_path, &images).unwrap();
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), &labels).unwrap();
    let raw = IdxSource::open_prefix(dir.path().join("t10k")).unwrap();
    let gz = IdxSource::open_prefix(fm.join("t10k")).unwrap();
    assert_eq!(raw.get(1999).unwrap(), gz.get(1999).unwrap());
    // Independent read: image 3 is bytes 16 + 3*784 .. of the raw file.
    assert_eq!(
        raw.get(3).unwrap().image.data,
        images[16 + 3 * 784..16 + 4 * 784]
    );
    assert_eq!(
        raw.fingerprint(),
        gz.fingerprint(),
        "fingerprint hashes content, not compression"
    );
    images[16 + 500] ^= 0x01;
    std::fs::write(&img_path, &images).unwrap();
    let flipped = IdxSource::open_prefix(dir.path().join("t10k")).unwrap();
    assert_ne!(flipped.fingerprint(), gz.fingerprint());
}

#[test]
fn idx_bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let fm = data_dir().join("fashion-mnist");
    let images = gunzip(&fm.join("t10k-images-idx3-ubyte.gz"));

    // Truncated raw file: expected vs found bytes.
    let p = dir.path().join("cut-images-idx3-ubyte");
    std::fs::write(&p, &images[..images.len() - 100]).unwrap();
    let msg = IdxSource::open(&p, None).unwrap_err().to_string();
    assert!(
        msg.contains("cut-images-idx3-ubyte") && msg.contains("truncated"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("need {} bytes", images.len())),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("found {} bytes", images.len() - 100)),
        "{msg}"
    );

    // Truncated gzip stream.
    let gz = std::fs::read(fm.join("t10k-images-idx3-ubyte.gz")).unwrap();
    let p = dir.path().join("half-images-idx3-ubyte.gz");
    std::fs::write(&p, &gz[..gz.len() / 2]).unwrap();
    let err = IdxSource::open(&p, None).unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("half-images-idx3-ubyte.gz") && msg.contains("gzip"),
        "{msg}"
    );

    // Wrong magic: a labels file given as images.
    let labels = fm.join("t10k-labels-idx1-ubyte.gz");
    let msg = IdxSource::open(&labels, None).unwrap_err().to_string();
    assert!(
        msg.contains("t10k-labels-idx1-ubyte.gz")
            && msg.contains("magic 0x00000801, expected 0x00000803"),
        "{msg}"
    );

    // Label count differs from image count.
    let msg = IdxSource::open(
        fm.join("t10k-images-idx3-ubyte.gz"),
        Some(&fm.join("train-labels-idx1-ubyte.gz")),
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains("train-labels-idx1-ubyte.gz")
            && msg.contains("label count 10000")
            && msg.contains("2000 images"),
        "{msg}"
    );

    // Missing file.
    let msg = IdxSource::open_prefix(dir.path().join("nothing"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("nothing-images-idx3-ubyte"), "{msg}");
}

// ---------------------------------------------------------------------------------------
// CIFAR binary

#[test]
fn cifar10_batch_matches_pillow() {
    let exp = &expected()["cifar10_test_batch"];
    let path = fixtures().join("cifar10_test_batch.bin");
    let src = CifarSource::open(CifarFormat::Cifar10, &[&path]).unwrap();
    check_samples(&src, exp, 0);
    assert_eq!(labels_of(&src), as_i64s(&exp["labels"]));
    let auto = open_source(path.to_str().unwrap()).unwrap();
    assert!(
        auto.describe().starts_with("cifar10:"),
        "{}",
        auto.describe()
    );
    assert_eq!(auto.fingerprint(), src.fingerprint());
}

#[test]
fn cifar100_batch_fine_and_coarse_labels() {
    let exp = &expected()["cifar100_test"];
    let path = fixtures().join("cifar100_test.bin");
    let fine = CifarSource::open(CifarFormat::Cifar100Fine, &[&path]).unwrap();
    check_samples(&fine, exp, 0);
    assert_eq!(labels_of(&fine), as_i64s(&exp["fine_labels"]));
    let coarse = open_source(&format!("cifar100:{}?label=coarse", path.display())).unwrap();
    assert_eq!(labels_of(&coarse), as_i64s(&exp["coarse_labels"]));
    assert_eq!(coarse.get(5).unwrap().image, fine.get(5).unwrap().image);
    assert_ne!(
        coarse.fingerprint(),
        fine.fingerprint(),
        "label choice is part of the fingerprint"
    );
    // 20 records of 3074 bytes are not a multiple of 3073: auto-detected as CIFAR-100.
    let auto = open_source(path.to_str().unwrap()).unwrap();
    assert_eq!(auto.fingerprint(), fine.fingerprint());
}

#[test]
fn cifar_wrong_length_names_file_and_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixtures().join("cifar10_test_batch.bin")).unwrap();
    let p = dir.path().join("data_batch_9.bin");
    std::fs::write(&p, &bytes[..bytes.len() - 1]).unwrap();
    let msg = CifarSource::open(CifarFormat::Cifar10, &[&p])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("data_batch_9.bin") && msg.contains("61459 bytes") && msg.contains("3073"),
        "{msg}"
    );
    let msg = open_source(&format!("cifar10:{}", p.display()))
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("data_batch_9.bin"), "{msg}");
    std::fs::write(&p, b"").unwrap();
    assert!(CifarSource::open(CifarFormat::Cifar10, &[&p]).is_err());
}

#[test]
fn cifar_fingerprint_changes_when_a_byte_flips() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(fixtures().join("cifar10_test_batch.bin")).unwrap();
    let p = dir.path().join("cifar10_test_batch.bin");
    std::fs::write(&p, &bytes).unwrap();
    let orig = CifarSource::open(
        CifarFormat::Cifar10,
        &[fixtures().join("cifar10_test_batch.bin")],
    )
    .unwrap();
    let copy = CifarSource::open(CifarFormat::Cifar10, &[&p]).unwrap();
    assert_eq!(
        orig.fingerprint(),
        copy.fingerprint(),
        "same content elsewhere, same fingerprint"
    );
    bytes[3073 * 7 + 100] ^= 0x80;
    std::fs::write(&p, &bytes).unwrap();
    let flipped = CifarSource::open(CifarFormat::Cifar10, &[&p]).unwrap();
    assert_ne!(orig.fingerprint(), flipped.fingerprint());
}

#[test]
fn cifar_directory_opens_its_batches() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixtures().join("cifar10_test_batch.bin")).unwrap();
    std::fs::write(dir.path().join("data_batch_1.bin"), &bytes).unwrap();
    std::fs::write(dir.path().join("data_batch_2.bin"), &bytes[..3073 * 5]).unwrap();
    std::fs::write(dir.path().join("test_batch.bin"), &bytes).unwrap();
    std::fs::write(dir.path().join("batches.meta.txt"), "airplane\n").unwrap();
    let src = open_source(dir.path().to_str().unwrap()).unwrap();
    assert_eq!(src.len(), 25, "training batches only: {}", src.describe());
    assert_eq!(src.key(24).unwrap(), "data_batch_2#4");
}

// ---------------------------------------------------------------------------------------
// Image folders

#[test]
fn cifar10_folder_matches_pillow() {
    let exp = &expected()["cifar10_folder"];
    let root = fixtures().join("cifar10_folder");
    let src = ImageFolderSource::open(&root).unwrap();
    let classes: Vec<&str> = exp["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(src.classes(), classes.as_slice());
    assert_eq!(src.class_names().unwrap(), classes);
    check_samples(&src, exp, 0);
    assert_eq!(labels_of(&src), as_i64s(&exp["labels"]));
    let auto = open_source(root.to_str().unwrap()).unwrap();
    assert!(
        auto.describe().starts_with("folder:"),
        "{}",
        auto.describe()
    );
    assert_eq!(auto.fingerprint(), src.fingerprint());
}

#[test]
fn jpeg_folder_matches_pillow_within_decoder_tolerance() {
    let exp = &expected()["imagenet_jpeg"];
    let src = open_source(&format!(
        "folder:{}",
        fixtures().join("imagenet_jpeg").display()
    ))
    .unwrap();
    // With the `turbojpeg` feature JPEGs decode with libjpeg-turbo, as Pillow's do: the same
    // bytes. Without it (`default-features = false`) `image`'s zune-jpeg decodes them, whose IDCT
    // and chroma upsampling differ: measured at most 1 level away at the fixture's checked pixels.
    let tol = if cfg!(feature = "turbojpeg") { 0 } else { 2 };
    check_samples(src.as_ref(), exp, tol);
    assert_eq!(labels_of(src.as_ref()), as_i64s(&exp["labels"]));
}

#[test]
fn png_modes_convert_to_grey_or_rgb_eight_bit() {
    let exp = &expected()["modes_folder"];
    let src = ImageFolderSource::open(fixtures().join("modes_folder")).unwrap();
    check_samples(&src, exp, 0);
}

#[test]
fn same_images_from_folder_batch_and_parquet() {
    let batch = CifarSource::open(
        CifarFormat::Cifar10,
        &[fixtures().join("cifar10_test_batch.bin")],
    )
    .unwrap();
    let table = ParquetImageSource::open(fixtures().join("cifar10_hf.parquet")).unwrap();
    let folder = ImageFolderSource::open(fixtures().join("cifar10_folder")).unwrap();
    for i in 0..20 {
        assert_eq!(
            batch.get(i).unwrap().image,
            table.get(i).unwrap().image,
            "row {i}"
        );
        assert_eq!(batch.label(i).unwrap(), table.label(i).unwrap());
    }
    // Folder key `ship/01.png` is foolbox sample 1 = batch record 1.
    let idx = (0..folder.len())
        .find(|&i| folder.key(i).unwrap() == "ship/01.png")
        .unwrap();
    assert_eq!(folder.get(idx).unwrap().image, batch.get(1).unwrap().image);
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

#[test]
fn folder_skips_non_images_and_reports_garbage_on_decode() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cifar");
    copy_dir(&fixtures().join("cifar10_folder"), &root);
    let orig = ImageFolderSource::open(&root).unwrap();
    std::fs::write(root.join("cat/notes.txt"), "not an image").unwrap();
    std::fs::write(root.join("README.md"), "top-level file").unwrap();
    let with_txt = ImageFolderSource::open(&root).unwrap();
    assert_eq!(with_txt.len(), 20, "notes.txt is skipped");
    assert_eq!(with_txt.fingerprint(), orig.fingerprint());

    std::fs::write(root.join("cat/zz_garbage.png"), b"this is not a png at all").unwrap();
    let src = ImageFolderSource::open(&root).unwrap();
    assert_eq!(src.len(), 21);
    let i = (0..src.len())
        .find(|&i| src.key(i).unwrap() == "cat/zz_garbage.png")
        .unwrap();
    let err = src.get(i).unwrap_err();
    match &err {
        Error::Decode { key, detail } => {
            assert_eq!(key, "cat/zz_garbage.png");
            assert!(detail.contains("zz_garbage.png"), "{detail}");
        }
        other => panic!("expected Error::Decode, got {other:?}"),
    }
    // The other images still decode.
    assert!(src.get(0).is_ok());
}

#[test]
fn folder_fingerprint_changes_when_a_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cifar");
    copy_dir(&fixtures().join("cifar10_folder"), &root);
    let orig = ImageFolderSource::open(fixtures().join("cifar10_folder")).unwrap();
    let copy = ImageFolderSource::open(&root).unwrap();
    assert_eq!(
        orig.fingerprint(),
        copy.fingerprint(),
        "fingerprint is independent of location"
    );
    let f = root.join("frog/04.png");
    let mut bytes = std::fs::read(&f).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&f, &bytes).unwrap();
    assert_ne!(
        ImageFolderSource::open(&root).unwrap().fingerprint(),
        orig.fingerprint()
    );
    // A renamed file changes it too.
    std::fs::rename(&f, root.join("frog/99.png")).unwrap();
    let renamed = ImageFolderSource::open(&root).unwrap();
    assert_ne!(renamed.fingerprint(), orig.fingerprint());
}

#[test]
fn empty_folders_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("empty_root");
    std::fs::create_dir(&root).unwrap();
    let msg = ImageFolderSource::open(&root).unwrap_err().to_string();
    assert!(
        msg.contains("empty_root") && msg.contains("no class sub-directory"),
        "{msg}"
    );
    std::fs::create_dir(root.join("cats")).unwrap();
    std::fs::write(root.join("cats/notes.txt"), "x").unwrap();
    let msg = ImageFolderSource::open(&root).unwrap_err().to_string();
    assert!(
        msg.contains("empty_root") && msg.contains("holds no image"),
        "{msg}"
    );
    let msg = open_source(&format!("folder:{}", root.display()))
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("holds no image"), "{msg}");
}

// ---------------------------------------------------------------------------------------
// Parquet

#[test]
fn parquet_table_matches_pillow_across_row_groups() {
    let exp = &expected()["cifar10_hf_parquet"];
    let path = fixtures().join("cifar10_hf.parquet");
    let src = ParquetImageSource::builder(&path)
        .cached_row_groups(1)
        .build()
        .unwrap();
    assert_eq!(src.num_row_groups(), 2);
    assert_eq!(labels_of(&src), as_i64s(&exp["labels"]));
    // Alternate between the two row groups (cache of one) and read backwards.
    let batch = CifarSource::open(
        CifarFormat::Cifar10,
        &[fixtures().join("cifar10_test_batch.bin")],
    )
    .unwrap();
    for i in [19, 0, 10, 9, 18, 1] {
        assert_eq!(
            src.get(i).unwrap().image,
            batch.get(i).unwrap().image,
            "row {i}"
        );
    }
    assert_eq!(src.key(13).unwrap(), "cifar10_hf#13");
    let cmp: Vec<Value> = exp["samples"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut s = s.clone();
            s["key"] = Value::from(format!("cifar10_hf#{i}"));
            s
        })
        .collect();
    let exp2 = serde_json::json!({"count": 20, "samples": cmp});
    check_samples(&src, &exp2, 0);
    let auto = open_source(path.to_str().unwrap()).unwrap();
    assert!(
        auto.describe().starts_with("parquet:"),
        "{}",
        auto.describe()
    );
    assert_eq!(auto.fingerprint(), src.fingerprint());
}

fn write_parquet(path: &Path, columns: Vec<(&str, arrow_array::ArrayRef)>, row_group: usize) {
    let batch = arrow_array::RecordBatch::try_from_iter(columns).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn parquet_without_image_column_lists_columns() {
    use arrow_array::{BinaryArray, Int64Array};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("no_image.parquet");
    let png = std::fs::read(fixtures().join("cifar10_folder/cat/00.png")).unwrap();
    write_parquet(
        &p,
        vec![
            ("img", Arc::new(BinaryArray::from_vec(vec![&png[..]])) as _),
            ("fine_label", Arc::new(Int64Array::from(vec![3])) as _),
        ],
        10,
    );
    let msg = ParquetImageSource::open(&p).unwrap_err().to_string();
    assert!(
        msg.contains("no_image.parquet") && msg.contains("no image column `image`"),
        "{msg}"
    );
    assert!(
        msg.contains("`img`") && msg.contains("`fine_label`"),
        "{msg}"
    );
    // Configured names: a plain binary image column and a named label column.
    let src = open_source(&format!(
        "parquet:{}?image=img&label=fine_label",
        p.display()
    ))
    .unwrap();
    assert_eq!(src.len(), 1);
    let s = src.get(0).unwrap();
    assert_eq!((s.label, s.image.width, s.image.channels), (Some(3), 32, 3));
    // An explicitly named label column must exist.
    let msg = ParquetImageSource::builder(&p)
        .image_column("img")
        .label_column(Some("label"))
        .build()
        .unwrap_err()
        .to_string();
    assert!(msg.contains("no label column `label`"), "{msg}");
    // The default label column is optional.
    let unl = ParquetImageSource::builder(&p)
        .image_column("img")
        .build()
        .unwrap();
    assert_eq!(unl.label(0).unwrap(), None);
}

#[test]
fn parquet_directory_and_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let src_file = fixtures().join("cifar10_hf.parquet");
    std::fs::copy(&src_file, dir.path().join("part-0.parquet")).unwrap();
    std::fs::copy(&src_file, dir.path().join("part-1.parquet")).unwrap();
    let both = open_source(dir.path().to_str().unwrap()).unwrap();
    assert_eq!(both.len(), 40);
    assert_eq!(both.key(25).unwrap(), "part-1#5");
    assert_eq!(both.get(25).unwrap().image, both.get(5).unwrap().image);
    let one = ParquetImageSource::open(dir.path().join("part-0.parquet")).unwrap();
    let orig = ParquetImageSource::open(&src_file).unwrap();
    assert_ne!(one.fingerprint(), both.fingerprint());
    // Flip one byte inside the first data page: the footer still parses, the hash changes.
    let p = dir.path().join("part-0.parquet");
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[200] ^= 0x01;
    std::fs::write(&p, &bytes).unwrap();
    let flipped = ParquetImageSource::open(&p).unwrap();
    assert_ne!(flipped.fingerprint(), one.fingerprint());
    let _ = orig;
}

#[test]
fn corrupt_image_bytes_in_parquet_are_a_decode_error() {
    use arrow_array::{BinaryArray, Int64Array};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.parquet");
    let png = std::fs::read(fixtures().join("cifar10_folder/cat/00.png")).unwrap();
    write_parquet(
        &p,
        vec![
            (
                "image",
                Arc::new(BinaryArray::from_vec(vec![&png[..], b"garbage bytes"])) as _,
            ),
            ("label", Arc::new(Int64Array::from(vec![3, 4])) as _),
        ],
        1,
    );
    let src = ParquetImageSource::open(&p).unwrap();
    assert!(src.get(0).is_ok());
    match src.get(1).unwrap_err() {
        Error::Decode { key, detail } => {
            assert_eq!(key, "bad#1");
            assert!(detail.contains("bad.parquet"), "{detail}");
        }
        other => panic!("expected Error::Decode, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// open_source

#[test]
fn open_source_rejects_paths_that_match_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("notes.txt");
    std::fs::write(&f, "hello").unwrap();
    let msg = open_source(f.to_str().unwrap()).err().unwrap().to_string();
    assert!(
        msg.contains("notes.txt") && msg.contains("matches no dataset layout"),
        "{msg}"
    );
    let msg = open_source(&format!(
        "cifar10:{}?label=coarse",
        fixtures().join("cifar10_test_batch.bin").display()
    ))
    .err()
    .unwrap()
    .to_string();
    assert!(msg.contains("option `label`"), "{msg}");
}

/// A PNG and a JPEG whose headers declare 13,400 × 13,400 pixels (179.6 M, just over
/// `MAX_IMAGE_PIXELS`; the files themselves are a few hundred bytes) are refused from their
/// headers with the same limit and an error naming the file. JPEG had no limit before (libjpeg-
/// turbo allocated whatever the header asked); PNG went through `image`'s own 512 MiB.
#[test]
fn forged_headers_over_the_pixel_limit_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let class = dir.path().join("a");
    std::fs::create_dir_all(&class).unwrap();
    let px = vec![100u8; 16 * 16 * 3];
    let img = image::RgbImage::from_raw(16, 16, px).unwrap();
    let side: u32 = 13_400;
    // PNG: IHDR's width and height, then its CRC over type + data.
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png[16..20].copy_from_slice(&side.to_be_bytes());
    png[20..24].copy_from_slice(&side.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&png[12..29]);
    png[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    std::fs::write(class.join("forged.png"), &png).unwrap();
    // JPEG: the baseline frame header (FF C0: length, precision, height, width).
    let mut jpg = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut jpg),
        image::ImageFormat::Jpeg,
    )
    .unwrap();
    let sof = jpg.windows(2).position(|m| m == [0xFF, 0xC0]).unwrap();
    jpg[sof + 5..sof + 7].copy_from_slice(&(side as u16).to_be_bytes());
    jpg[sof + 7..sof + 9].copy_from_slice(&(side as u16).to_be_bytes());
    std::fs::write(class.join("forged.jpg"), &jpg).unwrap();

    let src = ImageFolderSource::open(dir.path()).unwrap();
    assert_eq!(src.len(), 2);
    for i in 0..2 {
        let key = src.key(i).unwrap();
        let err = src.get(i).unwrap_err().to_string();
        assert!(
            err.contains(&key) && err.contains("13400x13400") && err.contains("MAX_IMAGE_PIXELS"),
            "{key}: {err}"
        );
    }
}
