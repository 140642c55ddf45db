//! Parquet files between stages: `embeddings.parquet` and `neighbours.parquet`.
//!
//! Both files carry their provenance as Parquet metadata (the dataset's fingerprint and length,
//! the prior's sha256, the search settings), and a reader checks it before use: lists made for
//! another dataset are refused with an error naming both fingerprints.
//!
//! ```
//! use gps_ssl::knn::NeighbourLists;
//! use gps_ssl::store::NeighbourTable;
//! use std::collections::BTreeMap;
//!
//! // Three points, k = 2: row i lists i's neighbours, nearest first.
//! let lists = NeighbourLists::new(2, vec![1, 2, 0, 2, 1, 0], vec![0.1, 0.3, 0.1, 0.2, 0.2, 0.3])?;
//! let table = NeighbourTable::new(lists, BTreeMap::new());
//! let path = std::env::temp_dir().join(format!("gps-ssl-doc-{}.parquet", std::process::id()));
//! table.write(&path)?; // temp file + rename: a crash never leaves half a file
//! let back = NeighbourTable::read(&path)?;
//! assert_eq!(back.neighbours_of(2), Some(&[1, 0][..]));
//! assert_eq!(back.content_sha256(), table.content_sha256());
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), gps_ssl::Error>(())
//! ```

pub(crate) mod columns;
pub(crate) mod embeddings;
mod neighbours;

pub use embeddings::{merge_embeddings, EmbeddingTable};
pub use neighbours::{
    NeighbourTable, CONTENT_METADATA_KEYS, META_DATASET_FINGERPRINT, META_DATASET_LEN,
    META_EMBEDDINGS_SHA256, META_EMBEDDINGS_VECTORS_SHA256, META_KNN_K,
};
