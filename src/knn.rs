//! k-nearest-neighbour lists in prior space: exact search and HNSW (optionally re-ranked exactly).
//!
//! Modelled on lance's `vector/flat` + `vector/hnsw`: both index kinds implement one trait,
//! [`KnnIndex`], and [`NeighbourBuilder`] runs the whole stage (validation, method choice,
//! optional refinement, measured recall, GPS radius) to produce a [`NeighbourLists`] table and
//! a [`KnnSummary`] stored as file metadata.
//!
//! ```
//! use gps_ssl::dataset::{open_source, DataSource};
//! use gps_ssl::knn::{label_purity, KnnMethod, NeighbourBuilder};
//!
//! // Raw pixels of 300 bundled Fashion-MNIST images as the prior space: [300, 784].
//! let data = open_source("data/fashion-mnist/train")?;
//! let (mut vectors, mut labels) = (Vec::new(), Vec::new());
//! for i in 0..300 {
//!     let s = data.get(i)?;
//!     vectors.extend(s.image.data.iter().map(|&p| p as f32 / 255.0));
//!     labels.push(s.label);
//! }
//! let out = NeighbourBuilder::new(&vectors, 784).k(5).method(KnnMethod::Exact).build()?.run()?;
//! assert_eq!((out.lists.len(), out.lists.k()), (300, 5));
//! assert!(!out.lists.neighbours(0).contains(&0)); // an image is not its own neighbour
//! let purity = label_purity(&out.lists, &labels, &[1, 5])?.expect("labelled data");
//! assert!(purity[0].purity > 0.5); // nearest pixel neighbours mostly share the class
//! # Ok::<(), gps_ssl::Error>(())
//! ```

mod exact;
mod graph;
mod hnsw;
mod hybrid;
mod index;
mod lists;
mod metric;
mod purity;
mod radius;
mod simd;
mod topk;

pub use exact::{ExactIndex, EXACT_TILE};
pub use hnsw::{
    HnswIndex, HnswParams, Insertion, DEFAULT_HNSW_EF_CONSTRUCTION, DEFAULT_HNSW_EF_SEARCH,
    DEFAULT_HNSW_M,
};
pub use hybrid::{
    estimate_seconds, KnnMethod, AUTO_EXACT_SECONDS, EXACT_FLOPS, HNSW_SECONDS_PER_POINT_DIM,
};
pub use index::{
    KnnIndex, KnnOutput, KnnSummary, NeighbourBuilder, NeighbourSearch, DEFAULT_KNN_INCLUDE_SELF,
    DEFAULT_KNN_K, DEFAULT_KNN_METHOD, DEFAULT_KNN_METRIC, DEFAULT_KNN_RECALL_SAMPLE,
    DEFAULT_KNN_REFINE_FACTOR, DEFAULT_KNN_SEED, DEFAULT_KNN_THREADS,
};
pub use lists::NeighbourLists;
pub use metric::Metric;
pub use purity::{default_purity_ks, label_purity, Purity};
pub use radius::{AdaptiveTau, Radius};
