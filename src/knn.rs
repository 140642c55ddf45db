//! k-nearest-neighbour lists in prior space: exact, HNSW and hybrid search.

mod lists;

pub use lists::NeighbourLists;
