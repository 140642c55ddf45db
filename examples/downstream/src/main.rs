//! GPS pairs in a plain Burn loop, from a project that depends on gps-ssl's data path only.
//!
//! 1. Opens the bundled Fashion-MNIST test subset (2,000 images, IDX) with
//!    `gps_ssl::dataset::open_source`.
//! 2. Gets neighbour lists: reads the `neighbours.parquet` given as the first argument (made by
//!    `gps-ssl neighbours` for this dataset), or makes one here with `gps_ssl::knn` on raw pixels
//!    (exact search, k = 5, cosine) and writes it with `gps_ssl::store::NeighbourTable`, then
//!    reads it back, as a project that keeps its tables on disk would.
//! 3. Streams GPS pairs through `PairLoaderBuilder … .into_burn(device)` (burn's `DataLoader`)
//!    onto this project's own device (burn's Flex CPU backend with autodiff, chosen in its
//!    Cargo.toml), and trains its own tiny encoder (`src/lib.rs`) with NT-Xent for 4 steps.
//!
//! Every step checks that each partner is in its anchor's list (`anchor_ids` / `partner_ids`),
//! that the views are `[64, 1, 28, 28]` on the project's device, and that the loss is finite;
//! any failure exits non-zero.

use std::collections::BTreeMap;
use std::sync::Arc;

use burn::data::dataloader::DataLoader;
use burn::optim::AdamConfig;
use burn::tensor::Device;
use gps_ssl::knn::Metric;
use gps_ssl::loader::TensorPairBatch;
use gps_ssl::prelude::*;
use gps_ssl_downstream::{train_step, Net};

const K: usize = 5;
const BATCH: usize = 64;
const STEPS: usize = 4;

/// Raw pixels in [0, 1], one row per image: the hand-crafted prior.
fn pixel_vectors(data: &dyn DataSource) -> Result<(Vec<f32>, usize)> {
    let mut vectors = Vec::new();
    let mut dim = 0;
    for i in 0..data.len() {
        let image = data.get(i)?.image;
        dim = image.data.len();
        vectors.extend(image.data.iter().map(|&p| f32::from(p) / 255.0));
    }
    Ok((vectors, dim))
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    gps_ssl::process::reuse_freed_memory();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/fashion-mnist/t10k");
    let data: Arc<dyn DataSource> = Arc::from(open_source(root)?);

    let table = match std::env::args().nth(1) {
        Some(path) => NeighbourTable::read(&path)?,
        None => {
            let (vectors, dim) = pixel_vectors(data.as_ref())?;
            let found = NeighbourBuilder::new(&vectors, dim)
                .k(K)
                .metric(Metric::Cosine)
                .build()?
                .run()?;
            let mut metadata: BTreeMap<String, String> = found.summary.to_metadata();
            metadata.insert(
                gps_ssl::store::META_DATASET_FINGERPRINT.into(),
                data.fingerprint(),
            );
            metadata.insert(
                gps_ssl::store::META_DATASET_LEN.into(),
                data.len().to_string(),
            );
            let dir =
                std::env::temp_dir().join(format!("gps-ssl-downstream-{}", std::process::id()));
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let path = dir.join("neighbours.parquet");
            NeighbourTable::new(found.lists, metadata).write(&path)?;
            let table = NeighbourTable::read(&path)?;
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            table
        }
    };
    // Refuse lists made for other data.
    table.check_dataset(&data.fingerprint(), data.len())?;
    let lists: BTreeMap<u64, Vec<u64>> = table
        .ids()
        .iter()
        .map(|&id| {
            let row = table.neighbours_of(id).unwrap_or_default();
            (u64::from(id), row.iter().map(|&j| u64::from(j)).collect())
        })
        .collect();

    let device = Device::default().autodiff();
    device.seed(0); // the model's initial weights
    let loader: Arc<dyn DataLoader<TensorPairBatch>> = PairLoaderBuilder::new(data)
        .sampler(GpsSampler::from_table(table))
        .recipe(AugRecipe::simclr().with_output_size(28, 28))
        .batch_size(BATCH)
        .drop_last(true)
        .workers(2)
        .seed(0)
        .build()?
        .into_burn(device.clone());

    let mut model = Net::new(1, &device);
    let mut optim = AdamConfig::new().init();
    let mut it = loader.iter();
    for step in 0..STEPS {
        let batch = it.next().ok_or("the epoch ended before 4 steps")??;
        for (a, p) in batch.anchor_ids.iter().zip(&batch.partner_ids) {
            let list = lists.get(a).map(Vec::as_slice).unwrap_or_default();
            if !list.contains(p) {
                return Err(
                    format!("partner {p} of anchor {a} is not in its list {list:?}").into(),
                );
            }
        }
        let dims = batch.view_a.dims();
        if dims != [BATCH, 1, 28, 28] || batch.view_a.device() != device {
            return Err(format!("views {dims:?} on {:?}", batch.view_a.device()).into());
        }
        let pairs = batch.anchor_ids.len();
        let (next, value) = train_step(model, &mut optim, batch, 1e-3);
        model = next;
        if !value.is_finite() {
            return Err(format!("step {step}: loss {value}").into());
        }
        println!("step {step}: loss {value:.4}, {pairs} pairs, every partner in its anchor's list");
    }
    println!("ok: {STEPS} GPS steps on {device:?}");
    Ok(())
}
