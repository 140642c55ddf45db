//! Dataset-source throughput, side by side with a Python peer (numpy / Pillow / pyarrow).
//!
//! `cargo bench --bench datasets`. Uses the full Fashion-MNIST train split from
//! `/usr/share/datasets/fashion-mnist` (`scripts/install_full_fashion_mnist.sh`; falls back to the
//! 10k subset in `data/fashion-mnist`) and builds, in a temp dir, larger inputs from the
//! fixtures: a 50,000-record CIFAR-10 batch, a 1,000-PNG image folder and a 1,000-row Parquet
//! table (row groups of 100). Every side is single-threaded, best of 3 (2 for decoding).
//! Environment: `GPS_FASHION_DIR`, `GPS_PYTHON` (default `.venv/bin/python`, then `python3`),
//! `GPS_BENCH_QUICK=1` (skip the peer).

use gps_ssl::dataset::{
    CifarFormat, CifarSource, DataSource, Fingerprinter, IdxSource, ImageFolderSource,
    ParquetImageSource,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

fn best<T>(repeat: usize, mut f: impl FnMut() -> T) -> f64 {
    (0..repeat)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn get_all(src: &dyn DataSource, order: &[usize]) -> usize {
    order
        .iter()
        .map(|&i| src.get(i).expect("get").image.data.len())
        .sum()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fixtures")
}

fn build_inputs(tmp: &Path) -> (PathBuf, PathBuf, PathBuf) {
    // CIFAR: the 20-record fixture repeated to 50,000 records.
    let rec = std::fs::read(fixtures().join("cifar10_test_batch.bin")).expect("fixture");
    let cifar = tmp.join("data_batch_1.bin");
    std::fs::write(&cifar, rec.repeat(2500)).expect("write");
    // Folder: the 20 PNGs copied 50 times.
    let folder = tmp.join("folder");
    let src = ImageFolderSource::open(fixtures().join("cifar10_folder")).expect("fixture");
    let mut pngs = Vec::new();
    for i in 0..src.len() {
        let key = src.key(i).expect("key");
        let bytes = std::fs::read(src.path(i).expect("path")).expect("read");
        let (class, name) = key.split_once('/').expect("class/name");
        std::fs::create_dir_all(folder.join(class)).expect("mkdir");
        for r in 0..50 {
            std::fs::write(folder.join(class).join(format!("{r:03}_{name}")), &bytes)
                .expect("write");
        }
        pngs.push(bytes);
    }
    // Parquet: 1,000 rows in the HF layout, row groups of 100.
    use arrow_array::{ArrayRef, BinaryArray, Int64Array, StringArray, StructArray};
    use arrow_schema::{DataType, Field};
    let bytes: Vec<&[u8]> = (0..1000).map(|i| pngs[i % pngs.len()].as_slice()).collect();
    let paths: Vec<String> = (0..1000).map(|i| format!("{i}.png")).collect();
    let image = StructArray::from(vec![
        (
            Arc::new(Field::new("bytes", DataType::Binary, true)),
            Arc::new(BinaryArray::from_vec(bytes)) as ArrayRef,
        ),
        (
            Arc::new(Field::new("path", DataType::Utf8, true)),
            Arc::new(StringArray::from(paths)) as ArrayRef,
        ),
    ]);
    let labels = Int64Array::from((0..1000).map(|i| (i % 10) as i64).collect::<Vec<_>>());
    let batch = arrow_array::RecordBatch::try_from_iter(vec![
        ("image", Arc::new(image) as ArrayRef),
        ("label", Arc::new(labels) as ArrayRef),
    ])
    .expect("batch");
    let table = tmp.join("table.parquet");
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(100))
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&table).expect("create"),
        batch.schema(),
        Some(props),
    )
    .expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
    (cifar, folder, table)
}

fn shuffled(n: usize) -> Vec<usize> {
    // A fixed permutation (LCG) so runs are comparable.
    let mut v: Vec<usize> = (0..n).collect();
    let mut s = 0x2545_f491_4f6c_dd1du64;
    for i in (1..n).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        v.swap(i, (s >> 33) as usize % (i + 1));
    }
    v
}

fn python() -> Option<String> {
    if let Ok(p) = std::env::var("GPS_PYTHON") {
        return Some(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    if venv.exists() {
        return Some(venv.display().to_string());
    }
    Some("python3".to_string())
}

fn main() {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .ok();
    let fm_dir = std::env::var("GPS_FASHION_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let full = PathBuf::from("/usr/share/datasets/fashion-mnist");
            if full.join("train-images-idx3-ubyte.gz").exists() {
                full
            } else {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist")
            }
        });
    let idx_file = fm_dir.join("train-images-idx3-ubyte.gz");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (cifar, folder, table) = build_inputs(tmp.path());

    let mut rows: Vec<(String, f64, usize, Option<&'static str>)> = Vec::new();
    // IDX
    let t_idx = best(3, || {
        IdxSource::open_prefix(fm_dir.join("train")).expect("idx")
    });
    let idx = IdxSource::open_prefix(fm_dir.join("train")).expect("idx");
    let n = idx.len();
    rows.push((
        format!("idx_open/{n}x28x28 (gunzip+check+sha256)"),
        t_idx,
        n,
        Some("idx_load"),
    ));
    let t_fp = best(3, || {
        let mut f = Fingerprinter::new("idx", n);
        f.entry("x", idx.pixels());
        f.finish()
    });
    rows.push((
        format!("idx_fingerprint/{n}x28x28 (sha256 of 47 MB)"),
        t_fp,
        n,
        None,
    ));
    let seq: Vec<usize> = (0..n).collect();
    rows.push((
        format!("idx_get/{n} sequential"),
        best(3, || get_all(&idx, &seq)),
        n,
        None,
    ));
    // CIFAR
    let t_cifar = best(3, || {
        CifarSource::open(CifarFormat::Cifar10, &[&cifar]).expect("cifar")
    });
    rows.push((
        "cifar_open/50000x32x32x3 (read+check+sha256)".into(),
        t_cifar,
        50_000,
        None,
    ));
    let c = CifarSource::open(CifarFormat::Cifar10, &[&cifar]).expect("cifar");
    let cseq: Vec<usize> = (0..50_000).collect();
    let t_cget = best(3, || get_all(&c, &cseq));
    rows.push((
        "cifar_open+get/50000 (planar->HWC)".into(),
        t_cifar + t_cget,
        50_000,
        Some("cifar_load"),
    ));
    // Folder
    let t_fopen = best(3, || ImageFolderSource::open(&folder).expect("folder"));
    rows.push((
        "folder_open/1000 png (scan+sha256)".into(),
        t_fopen,
        1000,
        None,
    ));
    let f = ImageFolderSource::open(&folder).expect("folder");
    let fseq: Vec<usize> = (0..f.len()).collect();
    rows.push((
        "folder_get/1000 png32 decode".into(),
        best(2, || get_all(&f, &fseq)),
        1000,
        Some("folder_decode"),
    ));
    // Parquet
    let p = ParquetImageSource::open(&table).expect("parquet");
    let pseq: Vec<usize> = (0..p.len()).collect();
    let t_pseq = best(2, || {
        let p = ParquetImageSource::open(&table).expect("parquet");
        get_all(&p, &pseq)
    });
    rows.push((
        "parquet_open+get/1000 png32 sequential (rg 100)".into(),
        t_pseq,
        1000,
        Some("parquet_decode"),
    ));
    let shuf = shuffled(p.len());
    rows.push((
        "parquet_get/1000 png32 random (rg 100, cache 4)".into(),
        best(2, || get_all(&p, &shuf)),
        1000,
        None,
    ));

    let peer: Option<serde_json::Value> = if std::env::var("GPS_BENCH_QUICK").is_ok() {
        None
    } else {
        python().and_then(|py| {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/data_peer.py");
            let out = Command::new(&py)
                .arg(script)
                .arg(&idx_file)
                .arg(&cifar)
                .arg(&folder)
                .arg(&table)
                .output()
                .ok()?;
            if !out.status.success() {
                eprintln!("peer failed: {}", String::from_utf8_lossy(&out.stderr));
                return None;
            }
            serde_json::from_slice(&out.stdout).ok()
        })
    };

    println!(
        "{:<52} {:>10} {:>12} {:>12} {:>8}",
        "task (1 thread)", "rust ms", "items/s", "python ms", "py/rust"
    );
    for (name, secs, items, peer_key) in rows {
        let py = peer_key.and_then(|k| peer.as_ref()?.get(k)?.as_f64());
        let (py_ms, ratio) = match py {
            Some(p) => (format!("{:.1}", p * 1e3), format!("{:.2}", p / secs)),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{name:<52} {:>10.1} {:>12.0} {py_ms:>12} {ratio:>8}",
            secs * 1e3,
            items as f64 / secs
        );
    }
    println!("python peer: numpy gzip+frombuffer (no hash) / numpy reshape+transpose / Pillow open+convert+asarray / pyarrow read_table+Pillow");
}
