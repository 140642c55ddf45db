//! Parquet files between stages: `embeddings.parquet` and `neighbours.parquet`.

pub(crate) mod embeddings;
mod neighbours;

pub use neighbours::{
    NeighbourTable, META_DATASET_FINGERPRINT, META_EMBEDDINGS_SHA256, META_KNN_K,
};
