//! An ordinary Burn SimCLR-style training loop that switches to GPS pairs with one builder call.
//!
//! `cd examples/downstream && cargo run --release --bin burn_integration [-- --plain]`
//! (it was `cargo run --example burn_integration` in gps-ssl itself before 2026-12-06)
//!
//! The data is the repository's Fashion-MNIST subset (`data/fashion-mnist`). The prior for the
//! neighbour table is the raw pixels (a hand-crafted prior from the paper), searched exactly
//! here to stay self-contained; real runs load `neighbours.parquet` from the `knn` stage.
//! The loop prints the loss and how long it waited on the loader versus the step time.

use burn::data::dataloader::DataLoader;
use burn::optim::AdamConfig;
use burn::tensor::Device;
use flate2::read::GzDecoder;
use gps_ssl::{
    augment::AugRecipe,
    dataset::{DataSource, Image, Sample},
    knn::NeighbourLists,
    loader::PairLoaderBuilder,
    sampler::GpsSampler,
    Error, Result,
};
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gps_ssl_downstream::{train_step, Net};

type AnyResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const N: usize = 1024;
const K: usize = 4;
const BATCH: usize = 128;
const STEPS: usize = 8;

/// The project's own dataset type (here: the first `N` Fashion-MNIST test-subset images).
struct Fashion {
    pixels: Vec<u8>,
    labels: Vec<u8>,
}

impl DataSource for Fashion {
    fn len(&self) -> usize {
        N
    }
    fn get(&self, i: usize) -> Result<Sample> {
        if i >= N {
            return Err(Error::invalid("index", format!("{i} >= {N}")));
        }
        let image = Image::new(28, 28, 1, self.pixels[i * 784..(i + 1) * 784].to_vec());
        Ok(Sample {
            id: i as u64,
            key: format!("t10k:{i}"),
            label: Some(self.labels[i] as i64),
            image,
        })
    }
    fn key(&self, i: usize) -> Result<String> {
        Ok(format!("t10k:{i}"))
    }
    fn label(&self, i: usize) -> Result<Option<i64>> {
        Ok(self.labels.get(i).map(|&l| l as i64))
    }
    fn fingerprint(&self) -> String {
        "fashion-t10k-subset-1024".into()
    }
    fn describe(&self) -> String {
        format!("fashion-mnist t10k subset ({N} samples)")
    }
    // Every image is 28×28 grey: declared, so views stay 1-channel (undeclared sources get
    // RGB views, as torchvision's ImageFolder does).
    fn channels(&self) -> Option<u8> {
        Some(1)
    }
    fn image_size(&self) -> Option<(u32, u32)> {
        Some((28, 28))
    }
}

fn gunzip(path: &str) -> AnyResult<Vec<u8>> {
    let mut out = Vec::new();
    GzDecoder::new(std::fs::File::open(path)?).read_to_end(&mut out)?;
    Ok(out)
}

/// Exact k-NN on raw pixels (the hand-crafted prior), self excluded.
fn pixel_neighbours(data: &Fashion) -> AnyResult<NeighbourLists> {
    let v: Vec<f32> = data.pixels[..N * 784]
        .iter()
        .map(|&p| p as f32 / 255.0)
        .collect();
    let (mut ids, mut dists) = (Vec::with_capacity(N * K), Vec::with_capacity(N * K));
    for i in 0..N {
        let a = &v[i * 784..(i + 1) * 784];
        let mut d: Vec<(f32, u32)> = (0..N)
            .filter(|&j| j != i)
            .map(|j| {
                let b = &v[j * 784..(j + 1) * 784];
                (
                    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>(),
                    j as u32,
                )
            })
            .collect();
        d.select_nth_unstable_by(K, |x, y| x.0.total_cmp(&y.0));
        d[..K].sort_by(|x, y| x.0.total_cmp(&y.0));
        ids.extend(d[..K].iter().map(|x| x.1));
        dists.extend(d[..K].iter().map(|x| x.0));
    }
    Ok(NeighbourLists::new(K, ids, dists)?)
}

fn main() -> AnyResult<()> {
    gps_ssl::process::reuse_freed_memory();
    let plain = std::env::args().any(|a| a == "--plain");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/fashion-mnist");
    let pixels = gunzip(&format!("{root}/t10k-images-idx3-ubyte.gz"))?[16..].to_vec();
    let labels = gunzip(&format!("{root}/t10k-labels-idx1-ubyte.gz"))?[8..].to_vec();
    let fashion = Fashion { pixels, labels };
    let lists = Arc::new(pixel_neighbours(&fashion)?);
    let data: Arc<dyn DataSource> = Arc::new(fashion);

    // The existing loader configuration...
    let builder = PairLoaderBuilder::new(data)
        .recipe(AugRecipe::simclr().with_output_size(28, 28))
        .batch_size(BATCH)
        .drop_last(true)
        .workers(2)
        .seed(7);
    // ...and the one call that turns plain SSL into GPS-SSL.
    let builder = if plain {
        builder
    } else {
        builder.sampler(GpsSampler::new(lists))
    };

    let device = Device::default().autodiff();
    let loader: Arc<dyn DataLoader<gps_ssl::loader::TensorPairBatch>> =
        builder.build()?.into_burn(device.clone());

    let mut model = Net::new(1, &device);
    let mut optim = AdamConfig::new().init();
    let (mut waited, mut total, mut steps) = (Duration::ZERO, Duration::ZERO, 0);
    'outer: for epoch in 0.. {
        let mut it = loader.iter();
        loop {
            let t0 = Instant::now();
            let Some(batch) = it.next() else { break };
            let batch = batch?;
            let t1 = Instant::now();
            let (next, value) = train_step(model, &mut optim, batch, 1e-3);
            model = next;
            let t2 = Instant::now();
            waited += t1 - t0;
            total += t2 - t0;
            steps += 1;
            println!("epoch {epoch} step {steps}: loss {value:.4}");
            if steps == STEPS {
                break 'outer;
            }
        }
    }
    println!(
        "{} pairs: waited on the loader {:.1} ms of {:.1} ms total ({:.1}% of step time)",
        if plain { "plain SSL" } else { "GPS" },
        waited.as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3,
        100.0 * waited.as_secs_f64() / total.as_secs_f64()
    );
    Ok(())
}
