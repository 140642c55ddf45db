//! Burn integration: one tensor per view per batch, and a [`DataLoader`] adapter.

use super::{PairBatch, PairIter, PairLoader};
use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::DatasetError;
use burn::tensor::{Device, Tensor, TensorData};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A [`PairBatch`] on a Burn device.
#[derive(Debug, Clone)]
pub struct TensorPairBatch {
    /// First views (anchors), `[batch, C, H, W]`.
    pub view_a: Tensor<4>,
    /// Second views (partners), `[batch, C, H, W]`.
    pub view_b: Tensor<4>,
    /// Dataset ids of the anchors, `[batch]`.
    pub anchor_ids: Vec<u64>,
    /// Dataset ids of the partners, `[batch]`.
    pub partner_ids: Vec<u64>,
    /// Anchor labels when known (online evaluation only), `[batch]`.
    pub labels: Option<Vec<i64>>,
}

impl PairBatch {
    /// Moves the batch to `device`: one tensor creation per view from its contiguous buffer.
    pub fn to_tensors(self, device: &Device) -> TensorPairBatch {
        let shape = self.shape;
        let view_a = Tensor::<4>::from_data(TensorData::new(self.view_a, shape), device);
        let view_b = Tensor::<4>::from_data(TensorData::new(self.view_b, shape), device);
        TensorPairBatch {
            view_a,
            view_b,
            anchor_ids: self.anchor_ids,
            partner_ids: self.partner_ids,
            labels: self.labels,
        }
    }
}

/// A [`PairLoader`] as Burn's [`DataLoader`]`<TensorPairBatch>`: pass it wherever Burn takes a
/// data loader. Each call to `iter()` is the next epoch (a fresh permutation and fresh draws,
/// starting at the loader's resume epoch), unlike a loader that repeats one shuffle.
#[derive(Debug, Clone)]
pub struct BurnPairLoader {
    loader: PairLoader,
    device: Device,
    epoch: Arc<AtomicU64>,
}

impl BurnPairLoader {
    /// Wraps `loader`; batches are created on `device`.
    pub fn new(loader: PairLoader, device: Device) -> Self {
        let epoch = Arc::new(AtomicU64::new(loader.start_epoch()));
        BurnPairLoader {
            loader,
            device,
            epoch,
        }
    }

    /// The epoch the next `iter()` call will produce.
    pub fn next_epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// The wrapped loader.
    pub fn loader(&self) -> &PairLoader {
        &self.loader
    }
}

impl PairLoader {
    /// This loader as a Burn [`DataLoader`] producing batches on `device`.
    pub fn into_burn(self, device: Device) -> Arc<dyn DataLoader<TensorPairBatch>> {
        Arc::new(BurnPairLoader::new(self, device))
    }
}

struct BurnIter {
    inner: PairIter,
    device: Device,
    processed: usize,
    total: usize,
}

impl Iterator for BurnIter {
    type Item = Result<TensorPairBatch, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        let r = self.inner.next()?;
        Some(match r {
            Ok(b) => {
                self.processed += b.len();
                Ok(b.to_tensors(&self.device))
            }
            Err(e) => Err(DatasetError::new(e)),
        })
    }
}

impl DataLoaderIterator<TensorPairBatch> for BurnIter {
    fn progress(&self) -> Progress {
        Progress::new(self.processed, self.total, Some("pairs".into()))
    }
}

impl DataLoader<TensorPairBatch> for BurnPairLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<TensorPairBatch> + 'a> {
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst);
        let inner = self.loader.iter_epoch(epoch);
        let done = inner.position() * self.loader.batch_size();
        Box::new(BurnIter {
            inner,
            device: self.device.clone(),
            processed: done.min(self.loader.num_items()),
            total: self.loader.num_items(),
        })
    }

    fn num_items(&self) -> usize {
        self.loader.num_items()
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<TensorPairBatch>> {
        Arc::new(BurnPairLoader {
            loader: self.loader.clone(),
            device: device.clone(),
            epoch: self.epoch.clone(),
        })
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<TensorPairBatch>> {
        Arc::new(BurnPairLoader {
            loader: self.loader.slice(start, end),
            device: self.device.clone(),
            epoch: Arc::new(AtomicU64::new(self.next_epoch())),
        })
    }
}
