//! Recall@K for retrieval-style evaluation (Stanford Online Products, CUB-200, Cars-196).
//!
//! A query is a hit at K when at least one of its K most cosine-similar gallery items shares
//! its label. In the SOP / CUB protocol the test set is both query and gallery and a query never
//! retrieves itself ([`Gallery::SameAsQuery`]); other protocols use a separate gallery
//! ([`Gallery::Separate`]). Equal similarities rank by ascending gallery index.

use super::features::{l2_normalized, FeatureSet};
use super::topk::cosine_top_k;
use crate::{
    progress::{NoProgress, Progress},
    Error, Result,
};

/// What the queries are searched against.
#[derive(Debug, Clone, Copy)]
pub enum Gallery<'a> {
    /// The queries themselves, each query excluded from its own results (SOP / CUB protocol).
    SameAsQuery,
    /// A separate labelled gallery `[n_gallery, dim]`.
    Separate(FeatureSet<'a>),
}

/// Recall@K of `query` against `gallery` for every K in `ks`, as fractions in `[0, 1]`, in the
/// order of `ks`. Progress is reported in queries.
///
/// Fails when `ks` is empty or holds 0, the dimensions differ, or there is no gallery item to
/// retrieve. A K larger than the gallery counts the whole gallery.
pub fn recall_at_k(
    query: &FeatureSet<'_>,
    gallery: Gallery<'_>,
    ks: &[usize],
    progress: &dyn Progress,
) -> Result<Vec<f64>> {
    if ks.is_empty() || ks.contains(&0) {
        return Err(Error::invalid(
            "ks",
            format!("need one or more K ≥ 1, got {ks:?}"),
        ));
    }
    let (gallery_set, exclude_self) = match gallery {
        Gallery::SameAsQuery => (*query, true),
        Gallery::Separate(set) => {
            query.check_same_dim(&set, "query/gallery")?;
            (set, false)
        }
    };
    let candidates = gallery_set.len() - usize::from(exclude_self && !gallery_set.is_empty());
    if candidates == 0 {
        return Err(Error::invalid(
            "gallery",
            "there is no gallery item to retrieve",
        ));
    }
    let dim = query.dim();
    let q = l2_normalized(query.features(), dim);
    let g = if exclude_self {
        q.clone()
    } else {
        l2_normalized(gallery_set.features(), dim)
    };
    let max_k = ks.iter().copied().max().unwrap_or(1);
    let top = cosine_top_k(&q, &g, dim, max_k, exclude_self, progress);
    let labels = gallery_set.labels();
    // First rank (0-based) at which each query finds its label, if within max_k.
    let first_hit: Vec<Option<usize>> = (0..query.len())
        .map(|i| {
            let want = query.labels()[i];
            top.indices(i)
                .iter()
                .position(|&j| labels[j as usize] == want)
        })
        .collect();
    let n = query.len().max(1) as f64;
    Ok(ks
        .iter()
        .map(|&k| {
            first_hit
                .iter()
                .filter(|h| h.is_some_and(|r| r < k))
                .count() as f64
                / n
        })
        .collect())
}

/// Recall@1 of `query` against `gallery`: the fraction of queries whose most similar gallery
/// item shares their label.
pub fn recall_at_1(query: &FeatureSet<'_>, gallery: Gallery<'_>) -> Result<f64> {
    Ok(recall_at_k(query, gallery, &[1], &NoProgress)?[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_ks_and_galleries_without_candidates() {
        let one = FeatureSet::new(&[1.0, 0.0], &[0], 2).unwrap();
        assert!(recall_at_k(&one, Gallery::SameAsQuery, &[], &NoProgress).is_err());
        assert!(recall_at_k(&one, Gallery::SameAsQuery, &[0], &NoProgress).is_err());
        assert!(recall_at_1(&one, Gallery::SameAsQuery).is_err());
        let empty = FeatureSet::new(&[], &[], 2).unwrap();
        assert!(recall_at_1(&one, Gallery::Separate(empty)).is_err());
    }
}
