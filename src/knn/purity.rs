//! Neighbour label purity: how often a neighbour shares its anchor's class. GPS positives
//! inherit this, so it is worth seeing before training.

use serde::{Deserialize, Serialize};

use super::lists::NeighbourLists;
use crate::{Error, Result};

/// Purity of the first `k` non-self neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Purity {
    /// How many non-self neighbours per row were counted.
    pub k: usize,
    /// Share of (anchor, neighbour) pairs with the same label, in `[0, 1]`.
    pub purity: f64,
    /// Number of labelled pairs counted.
    pub pairs: u64,
}

/// The cut-offs reported by default: 1, 5, 10 and `k` (those ≤ `k`, without duplicates).
pub fn default_purity_ks(k: usize) -> Vec<usize> {
    let mut ks: Vec<usize> = [1, 5, 10, k]
        .into_iter()
        .filter(|&j| j >= 1 && j <= k)
        .collect();
    ks.sort_unstable();
    ks.dedup();
    ks
}

/// Label purity at each cut-off in `ks`, over the first `j` neighbours of each row that are
/// not the row itself. `labels` is `[n]`; pairs where either label is unknown are skipped.
/// Returns `None` when no pair is labelled at all.
pub fn label_purity(
    lists: &NeighbourLists,
    labels: &[Option<i64>],
    ks: &[usize],
) -> Result<Option<Vec<Purity>>> {
    if labels.len() != lists.len() {
        return Err(Error::mismatch("label count", lists.len(), labels.len()));
    }
    let mut out = Vec::with_capacity(ks.len());
    for &j in ks {
        let (mut same, mut pairs) = (0u64, 0u64);
        for (row, anchor) in labels.iter().enumerate() {
            let Some(anchor) = anchor else { continue };
            let others = lists
                .neighbours(row)
                .iter()
                .filter(|&&id| id as usize != row);
            for &id in others.take(j) {
                if let Some(Some(l)) = labels.get(id as usize) {
                    pairs += 1;
                    same += u64::from(l == anchor);
                }
            }
        }
        if pairs == 0 {
            return Ok(None);
        }
        out.push(Purity {
            k: j,
            purity: same as f64 / pairs as f64,
            pairs,
        });
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purity_on_hand_made_case() {
        // 4 points, labels a a b b; k = 3 with self first.
        let lists = NeighbourLists::new(3, vec![0, 1, 2, 1, 0, 3, 2, 3, 0, 3, 1, 2], vec![0.0; 12])
            .unwrap();
        let labels = [Some(0), Some(0), Some(1), Some(1)];
        let p = label_purity(&lists, &labels, &[1, 2]).unwrap().unwrap();
        // k=1: nearest others 1,0,3,1 -> same: yes, yes, yes, no = 3/4
        assert_eq!(
            p[0],
            Purity {
                k: 1,
                purity: 0.75,
                pairs: 4
            }
        );
        // k=2: + 2,3,0,2 -> no, no, no, yes => 4/8
        assert_eq!(
            p[1],
            Purity {
                k: 2,
                purity: 0.5,
                pairs: 8
            }
        );
    }

    #[test]
    fn unlabelled_data_has_no_purity() {
        let lists = NeighbourLists::new(1, vec![1, 0], vec![0.0, 0.0]).unwrap();
        assert_eq!(label_purity(&lists, &[None, None], &[1]).unwrap(), None);
        assert!(label_purity(&lists, &[None], &[1]).is_err());
        assert_eq!(default_purity_ks(20), vec![1, 5, 10, 20]);
        assert_eq!(default_purity_ks(4), vec![1, 4]);
    }
}
