//! Opening the pair stream of a run: dataset + (plain | GPS) sampler + augmentation → loader.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{
    open_source, AugRecipe, Error, GpsSampler, NeighbourTable, PairLoader, PairLoaderBuilder,
    Result, SelfSampler,
};

/// Where a run's pairs come from. Serialisable (saved in the run's `config.json` as text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairData {
    /// Dataset spec for [`open_source`] (IDX / CIFAR / image folder / Parquet).
    pub data: String,
    /// `neighbours.parquet` for GPS; `None` trains plain SSL (each image paired with itself).
    pub neighbours: Option<PathBuf>,
    /// Augmentation: `rhflip` (the paper's RHFlipAug) or `strong` (SimCLR recipe).
    pub aug: String,
    /// Output side length in pixels (`None`: the images' own size).
    pub size: Option<u32>,
    /// Pairs per batch.
    pub batch_size: usize,
    /// Loader seed (shuffle, partners, augmentation).
    pub seed: u64,
    /// Loader worker threads.
    pub workers: usize,
}

impl PairData {
    /// Opens the dataset, the sampler and builds the loader (last partial batch dropped).
    /// A neighbour file made for another dataset is refused.
    pub fn open(&self) -> Result<PairLoader> {
        let source: Arc<dyn crate::DataSource> = Arc::from(open_source(&self.data)?);
        let mut recipe = match self.aug.as_str() {
            "rhflip" => AugRecipe::rhflip(),
            "strong" => AugRecipe::simclr(),
            other => {
                return Err(Error::invalid(
                    "aug",
                    format!("`{other}`; expected rhflip|strong"),
                ))
            }
        };
        if let Some(s) = self.size {
            recipe = recipe.with_output_size(s, s);
        }
        let builder = PairLoaderBuilder::new(source.clone())
            .recipe(recipe)
            .batch_size(self.batch_size)
            .seed(self.seed)
            .workers(self.workers)
            .drop_last(true);
        let builder = match &self.neighbours {
            Some(path) => {
                let table = NeighbourTable::read(path)?;
                table.check_dataset(&source.fingerprint(), source.len())?;
                builder.sampler(GpsSampler::new(Arc::new(table.lists)))
            }
            None => builder.sampler(SelfSampler),
        };
        builder.build()
    }

    /// One line for the run's `config.json` `data` field.
    pub fn describe(&self) -> String {
        format!(
            "data={} neighbours={} aug={} size={:?} seed={}",
            self.data,
            self.neighbours
                .as_ref()
                .map_or("none (plain SSL)".into(), |p| p.display().to_string()),
            self.aug,
            self.size,
            self.seed
        )
    }
}
