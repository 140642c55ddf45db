//! Parquet files between stages: `embeddings.parquet` and `neighbours.parquet`.
