//! k-nearest-neighbour lists in prior space: exact, HNSW and hybrid search.
//!
//! Modelled on lance's `vector/flat` + `vector/hnsw`: both index kinds implement one trait,
//! [`KnnIndex`], and [`NeighbourBuilder`] runs the whole stage (validation, method choice,
//! optional refinement, measured recall, GPS radius) to produce a [`NeighbourLists`] table and
//! a [`KnnSummary`] stored as file metadata.

mod exact;
mod hnsw;
mod hybrid;
mod index;
mod lists;
mod metric;
mod purity;
mod radius;
mod topk;

pub use exact::{ExactIndex, EXACT_TILE};
pub use hnsw::{
    HnswIndex, HnswParams, Insertion, DEFAULT_HNSW_EF_CONSTRUCTION, DEFAULT_HNSW_EF_SEARCH,
    DEFAULT_HNSW_M,
};
pub use hybrid::{estimate_seconds, KnnMethod, EXACT_FLOPS, HNSW_SECONDS_PER_POINT_DIM};
pub use index::{
    KnnIndex, KnnOutput, KnnSummary, NeighbourBuilder, NeighbourSearch, DEFAULT_KNN_INCLUDE_SELF,
    DEFAULT_KNN_K, DEFAULT_KNN_METHOD, DEFAULT_KNN_METRIC, DEFAULT_KNN_RECALL_SAMPLE,
    DEFAULT_KNN_REFINE_FACTOR, DEFAULT_KNN_SEED, DEFAULT_KNN_THREADS,
};
pub use lists::NeighbourLists;
pub use metric::Metric;
pub use purity::{default_purity_ks, label_purity, Purity};
pub use radius::{AdaptiveTau, Radius};
