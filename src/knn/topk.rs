//! A bounded "k smallest" collector with a deterministic total order `(distance, id)`.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// One candidate: its distance and id. Ordered by distance (`total_cmp`), then by id, so ties
/// are broken towards the smaller id whatever order candidates arrive in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    pub(crate) dist: f32,
    pub(crate) id: u32,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.dist
            .total_cmp(&other.dist)
            .then(self.id.cmp(&other.id))
    }
}

/// Keeps the `k` smallest candidates seen so far (a max-heap of size `k`).
#[derive(Debug, Clone)]
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Candidate>,
    /// Distance of the current worst kept candidate once full (`+inf` before).
    worst: f32,
}

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
            worst: f32::INFINITY,
        }
    }

    /// Offers a candidate; cheap rejection when it is farther than the current worst.
    #[inline]
    pub(crate) fn push(&mut self, dist: f32, id: u32) {
        if dist > self.worst || self.k == 0 {
            return;
        }
        let c = Candidate { dist, id };
        if self.heap.len() < self.k {
            self.heap.push(c);
            if self.heap.len() == self.k {
                self.worst = self.heap.peek().map_or(f32::INFINITY, |w| w.dist);
            }
        } else {
            let replaced = match self.heap.peek_mut() {
                Some(mut top) if c < *top => {
                    *top = c;
                    true
                }
                _ => false,
            };
            if replaced {
                self.worst = self.heap.peek().map_or(f32::INFINITY, |w| w.dist);
            }
        }
    }

    /// The kept candidates, nearest first.
    pub(crate) fn into_sorted(self) -> Vec<Candidate> {
        self.heap.into_sorted_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_k_smallest_with_ties_to_smaller_id() {
        let mut t = TopK::new(3);
        for (d, id) in [(5.0, 0), (1.0, 9), (1.0, 4), (3.0, 2), (1.0, 7), (0.5, 8)] {
            t.push(d, id);
        }
        let got: Vec<(f32, u32)> = t.into_sorted().iter().map(|c| (c.dist, c.id)).collect();
        assert_eq!(got, vec![(0.5, 8), (1.0, 4), (1.0, 7)]);
    }

    #[test]
    fn fewer_candidates_than_k_are_all_kept() {
        let mut t = TopK::new(4);
        t.push(2.0, 1);
        t.push(1.0, 0);
        let got: Vec<u32> = t.into_sorted().iter().map(|c| c.id).collect();
        assert_eq!(got, vec![0, 1]);
    }
}
