//! The GPS pair loader: positive sampling + augmentation on worker threads, batched for Burn.

mod batch;

pub use batch::PairBatch;
