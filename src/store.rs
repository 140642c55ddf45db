//! Parquet files between stages: `embeddings.parquet` and `neighbours.parquet`.

pub(crate) mod embeddings;
mod neighbours;

pub use neighbours::{
    NeighbourTable, CONTENT_METADATA_KEYS, META_DATASET_FINGERPRINT, META_DATASET_LEN,
    META_EMBEDDINGS_SHA256, META_EMBEDDINGS_VECTORS_SHA256, META_KNN_K,
};
