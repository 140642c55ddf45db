//! NNCLR's FIFO support set of past projections.

use burn::tensor::{Int, Tensor, TensorData};

use crate::{Error, Result};

/// A first-in-first-out queue of L2-normalised projections `[capacity, dim]`, kept on the host.
/// New rows replace the oldest ones once the queue is full.
#[derive(Debug, Clone, PartialEq)]
pub struct SupportQueue {
    dim: usize,
    capacity: usize,
    /// Row-major `[len, dim]` storage, ring-ordered from `head`.
    rows: Vec<f32>,
    /// Index of the oldest row once full.
    head: usize,
}

impl SupportQueue {
    /// An empty queue of `capacity` rows of `dim` floats.
    pub fn new(capacity: usize, dim: usize) -> Result<Self> {
        if capacity == 0 || dim == 0 {
            return Err(Error::invalid("queue", "capacity and dim must be positive"));
        }
        Ok(Self {
            dim,
            capacity,
            rows: Vec::new(),
            head: 0,
        })
    }

    /// Rows currently held.
    pub fn len(&self) -> usize {
        self.rows.len() / self.dim
    }

    /// True when nothing has been pushed yet.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Maximum number of rows.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Row dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Pushes `rows` (`[n, dim]` row-major), dropping the oldest rows beyond capacity.
    pub fn push(&mut self, rows: &[f32]) -> Result<()> {
        if !rows.len().is_multiple_of(self.dim) {
            return Err(Error::mismatch("queue row length", self.dim, rows.len()));
        }
        for row in rows.chunks_exact(self.dim) {
            if self.len() < self.capacity {
                self.rows.extend_from_slice(row);
            } else {
                let at = self.head * self.dim;
                self.rows[at..at + self.dim].copy_from_slice(row);
                self.head = (self.head + 1) % self.capacity;
            }
        }
        Ok(())
    }

    /// The rows from oldest to newest, `[len, dim]` row-major.
    pub fn ordered(&self) -> Vec<f32> {
        let split = self.head * self.dim;
        let mut out = self.rows[split..].to_vec();
        out.extend_from_slice(&self.rows[..split]);
        out
    }

    /// Rebuilds a queue from [`ordered`](Self::ordered) rows (checkpoint restore).
    pub fn from_ordered(capacity: usize, dim: usize, rows: Vec<f32>) -> Result<Self> {
        let mut q = Self::new(capacity, dim)?;
        if !rows.len().is_multiple_of(dim) || rows.len() / dim > capacity {
            return Err(Error::mismatch(
                "queue rows",
                format!("≤ {capacity} × {dim}"),
                rows.len(),
            ));
        }
        q.rows = rows;
        if q.len() == capacity {
            q.head = 0;
        }
        Ok(q)
    }

    /// For each row of `z` (`[batch, dim]`, L2-normalised), its nearest queue row by cosine
    /// similarity, `[batch, dim]`, without autodiff. Returns `None` while the queue is empty.
    pub fn nearest(&self, z: Tensor<2>) -> Option<Tensor<2>> {
        if self.is_empty() {
            return None;
        }
        let device = z.device();
        let support = Tensor::<2>::from_data(
            TensorData::new(self.rows.clone(), [self.len(), self.dim]),
            &device,
        )
        .without_autodiff();
        let sim = z.without_autodiff().matmul(support.clone().transpose());
        let idx: Tensor<1, Int> = sim.argmax(1).flatten(0, 1);
        Some(support.select(0, idx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_is_first_in_first_out() {
        let mut q = SupportQueue::new(3, 2).unwrap();
        q.push(&[1., 1., 2., 2.]).unwrap();
        assert_eq!(q.ordered(), vec![1., 1., 2., 2.]);
        q.push(&[3., 3., 4., 4.]).unwrap();
        assert_eq!(q.len(), 3);
        assert_eq!(q.ordered(), vec![2., 2., 3., 3., 4., 4.]);
        q.push(&[5., 5.]).unwrap();
        assert_eq!(q.ordered(), vec![3., 3., 4., 4., 5., 5.]);
        let r = SupportQueue::from_ordered(3, 2, q.ordered()).unwrap();
        assert_eq!(r.ordered(), q.ordered());
        assert!(q.push(&[1.0]).is_err());
    }

    #[test]
    fn nearest_picks_the_most_similar_row() {
        let device = burn::tensor::Device::flex();
        let mut q = SupportQueue::new(4, 2).unwrap();
        q.push(&[1., 0., 0., 1., -1., 0.]).unwrap();
        let z = Tensor::<2>::from_data(
            TensorData::new(vec![0.1f32, 0.9, -0.8, 0.2], [2, 2]),
            &device,
        );
        let nn = q
            .nearest(z)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(nn, vec![0., 1., -1., 0.]);
    }
}
