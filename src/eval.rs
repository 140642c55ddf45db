//! Evaluation of frozen features: weighted kNN, linear probe, Recall@K, and the run report.
//!
//! Everything here works on plain labelled feature matrices ([`FeatureSet`]: `[n, dim]` `f32`
//! row-major plus `[n]` `i64` labels), so it evaluates any embedding — a trained encoder's
//! backbone features, a prior's embeddings, raw pixels — independently of Burn.
//!
//! - [`KnnClassifier`]: weighted k-NN (cosine, k = 20, T = 0.07, as solo-learn and the official
//!   GPS-SSL code), plus majority k-NN and 1-NN, from one exact tiled search.
//! - [`LinearProbe`]: multinomial logistic regression on standardised features, L2 strength
//!   chosen on a held-out split, trained to convergence by L-BFGS.
//! - [`recall_at_k`] / [`recall_at_1`]: retrieval metrics with the query set as its own gallery
//!   (self excluded) or a separate gallery.
//! - [`RunRecord`], [`write_results_json`], [`markdown_table`], [`write_figure`] (`plots`): the
//!   report of an experiment grid (JSON, a table shaped like the paper's Table 2, a PNG figure
//!   with the prior's own accuracy as a [`ReferenceLine`]).
//! - [`encode_features`]: a trained backbone's features of a whole dataset (what the experiment,
//!   re-mining and `gps-ssl encode` evaluate).
//! - [`Montage`] (`plots`): a picture of sampled anchors and their neighbours in prior space, to
//!   judge a prior's lists by eye before training on them.
//!
//! ```
//! use gps_ssl::eval::{FeatureSet, KnnClassifier, LinearProbe};
//! // Two well separated classes in 2-D.
//! let train = [1.0, 0.1, 0.9, 0.0, 0.0, 1.0, 0.1, 0.9];
//! let test = [0.95, 0.05, 0.05, 0.95];
//! let train = FeatureSet::new(&train, &[0, 0, 1, 1], 2)?;
//! let test = FeatureSet::new(&test, &[0, 1], 2)?;
//! let knn = KnnClassifier::builder().k(3).build()?.evaluate(&train, &test)?;
//! assert_eq!(knn.weighted_accuracy, 1.0);
//! let probe = LinearProbe::builder().l2_grid(vec![1e-3]).build()?.evaluate(&train, &test)?;
//! assert_eq!(probe.accuracy, 1.0);
//! # Ok::<(), gps_ssl::Error>(())
//! ```

mod encode;
mod features;
#[cfg(feature = "plots")]
mod figure;
mod knn;
mod lbfgs;
mod linear;
#[cfg(feature = "plots")]
mod montage;
mod report;
mod retrieval;
mod topk;

pub use encode::{encode_features, ENCODE_BATCH_SIZE};
pub use features::FeatureSet;
#[cfg(feature = "plots")]
#[cfg_attr(docsrs, doc(cfg(feature = "plots")))]
pub use figure::{
    write_figure, write_figure_with_references, ReferenceLine, FIGURE_HEIGHT, FIGURE_WIDTH,
    REFERENCE_COLOUR,
};
pub use knn::{KnnClassifier, KnnClassifierBuilder, KnnPredictions, KnnReport};
pub use linear::{L2Score, LinearModel, LinearProbe, LinearProbeBuilder, LinearProbeReport};
#[cfg(feature = "plots")]
#[cfg_attr(docsrs, doc(cfg(feature = "plots")))]
pub use montage::{
    tile_image, Montage, MontageBuilder, MontageLayout, MontageRow, ANCHOR_COLOUR,
    DEFAULT_MONTAGE_NEIGHBOURS, DEFAULT_MONTAGE_ROWS, DEFAULT_MONTAGE_SEED, DEFAULT_MONTAGE_TILE,
    MATCH_COLOUR, MISMATCH_COLOUR, MONTAGE_FILTER, UNKNOWN_COLOUR,
};
pub use report::{
    chain_label, markdown_table, mean_std, read_results_json, rounds_table, write_results_json,
    AugSetting, Metric, RunRecord,
};
pub use retrieval::{recall_at_1, recall_at_k, Gallery};
