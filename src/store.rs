//! Parquet files between stages: `embeddings.parquet` and `neighbours.parquet`.

pub(crate) mod embeddings;
