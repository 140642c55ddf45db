//! The HNSW graph itself: a hierarchical navigable small-world graph (Malkov & Yashunin, 2018)
//! over an owned `[n, dim]` copy of the vectors in graph space, stored as half floats.
//!
//! Written here rather than taken from `hnsw_rs` (0.3.5, used until 2026-12-04) because of a
//! measurement: on 20 000 × 512 it took 1.8× faiss's time. Its search keeps the visited set in a
//! `HashMap` of `Arc` clones (an atomic increment on a shared cache line per visited point) and
//! its neighbour lists are `Arc`s behind `RwLock`s; its distances were scalar. This module follows
//! hnswlib's design instead:
//!
//! - links as plain `u32` ids, one `Mutex` per node (held only to copy a list out or rewrite it);
//! - a per-thread visited table stamped with an epoch (no clearing, no hashing);
//! - the neighbour-selection heuristic (hnswlib `getNeighborsByHeuristic2`): a candidate is kept
//!   only if it is nearer to the new point than to every neighbour already kept; up to `m` links
//!   per node on layers ≥ 1 and `2m` on layer 0, for a new node as for an old one (faiss's rule;
//!   hnswlib gives a new node `m` on layer 0, which measured lower recall at the same search
//!   width: 0.914 against faiss's 0.935 at ef 64 on 1M × 512);
//! - rows stored as IEEE half floats (scaled so the largest |coordinate| is 1, which keeps the
//!   order of L2 and dot distances and every value in f16's range), compared with f32 queries
//!   through [`super::simd`] (AVX-512 or AVX2 when the CPU has them): half the memory traffic
//!   of f32 rows, which is what graph search at 10^6 points waits on. Candidates are re-scored
//!   exactly in f32 by the caller.
//!
//! Node levels are drawn from a hash of `(seed, id)`, not from a shared generator, so they do
//! not depend on insertion order. Inserting in id order on one thread therefore gives the same
//! graph for the same vectors on the same CPU whatever the thread count of the search; parallel
//! insertion races between threads on which links a node sees first, so its graph (and a few
//! neighbour lists) can differ between runs.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

use rayon::prelude::*;

use super::simd::{to_f16, Kernel};
use super::topk::Candidate;
use crate::seed::mix;

/// Highest level a node can get (levels are `0..=MAX_LEVEL`).
const MAX_LEVEL: usize = 16;
/// Points handed to a rayon task at a time during parallel insertion (one scratch each).
const INSERT_CHUNK: usize = 64;

/// How the graph measures distance in graph space (smaller is nearer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GraphDistance {
    /// `1 - a·b` over unit vectors.
    UnitDot,
    /// `||a - b||²`.
    SquaredL2,
}

/// A node's links above layer 0: `layers[l - 1]` for `l` in `1..=level`.
#[derive(Debug, Default)]
struct Links {
    layers: Vec<Vec<u32>>,
}

/// Every node's links above layer 0: behind one lock per node while the graph is built, plain
/// once it is frozen for searching.
enum LinkStore {
    Building(Vec<Mutex<Links>>),
    Frozen(Vec<Links>),
}

/// Reusable per-thread search state.
pub(crate) struct Scratch {
    /// `visited[i] == epoch` ⇔ node `i` was seen in the current search.
    visited: Vec<u32>,
    epoch: u32,
    /// Frontier, nearest first.
    frontier: BinaryHeap<Reverse<Candidate>>,
    /// Best `ef` found, farthest on top.
    best: BinaryHeap<Candidate>,
    /// A copy of one node's links.
    buf: Vec<u32>,
    /// One row converted to f32 (the point being inserted).
    query: Vec<f32>,
    /// The links not yet visited, and their distances.
    todo: Vec<u32>,
    dist: Vec<f32>,
}

impl Scratch {
    pub(crate) fn new(n: usize) -> Self {
        Scratch {
            visited: vec![0; n],
            epoch: 0,
            frontier: BinaryHeap::new(),
            best: BinaryHeap::new(),
            buf: Vec::new(),
            query: Vec::new(),
            todo: Vec::new(),
            dist: Vec::new(),
        }
    }

    fn next_epoch(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.visited.iter_mut().for_each(|v| *v = 0);
            self.epoch = 1;
        }
    }
}

/// Search scratches shared by the tasks of a parallel insertion: a task takes one (or makes
/// one) and gives it back, so a pass allocates about one per thread, not one per task.
struct ScratchPool {
    n: usize,
    free: Mutex<Vec<Scratch>>,
}

impl ScratchPool {
    /// A pool of scratches for graphs of `n` nodes.
    fn new(n: usize) -> Self {
        ScratchPool {
            n,
            free: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` with a scratch from the pool.
    fn with<R>(&self, f: impl FnOnce(&mut Scratch) -> R) -> R {
        let mut s = lock(&self.free)
            .pop()
            .unwrap_or_else(|| Scratch::new(self.n));
        let out = f(&mut s);
        lock(&self.free).push(s);
        out
    }
}

/// Entry point: the node on the highest level, and that level.
#[derive(Debug, Clone, Copy)]
struct Entry {
    node: u32,
    level: usize,
}

/// An HNSW graph over `n` vectors of `dim` floats (ids `0..n`).
pub(crate) struct Graph {
    /// `[n, dim]` half floats (f16 bits), scaled by `1 / max |x|`.
    data: Vec<u16>,
    dim: usize,
    n: usize,
    m: usize,
    m0: usize,
    ef_construction: usize,
    levels: Vec<u8>,
    /// Layer 0, flat: node `i` owns `l0[i·(1+m0)..]`, its link count then up to `m0` ids.
    /// Written only under `l0_locks[i]`; read without a lock (relaxed loads: a reader racing a
    /// rewrite sees valid ids, old or new, which is all a search needs), one cache miss a node.
    l0: Vec<AtomicU32>,
    l0_locks: Vec<Mutex<()>>,
    links: LinkStore,
    entry: RwLock<Option<Entry>>,
    /// Held for the whole insertion of a node that raises the top level.
    grow: Mutex<()>,
    distance: GraphDistance,
    kernel: Kernel,
}

/// Locks `m`, ignoring poisoning (a panicking holder never leaves a half-written list).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The level of node `id`: `floor(-ln(u) / ln(m))`, `u` uniform in `(0, 1]` from the SplitMix64
/// hash `mix(seed ^ id)`, capped.
fn level_of(id: usize, m: usize, seed: u64) -> u8 {
    let u = ((mix(seed ^ id as u64) >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let l = (-u.ln() / (m as f64).ln()).floor();
    l.clamp(0.0, MAX_LEVEL as f64) as u8
}

impl Graph {
    /// An empty graph over `data` (`[n, dim]`, row `i` is node `i`); nothing is linked until
    /// [`Graph::insert_all`].
    #[cfg(test)]
    pub(crate) fn new(
        data: Vec<f32>,
        dim: usize,
        m: usize,
        ef_construction: usize,
        distance: GraphDistance,
        seed: u64,
    ) -> Self {
        let n = data.len().checked_div(dim).unwrap_or(0);
        let row = |i: usize, out: &mut [f32]| out.copy_from_slice(&data[i * dim..(i + 1) * dim]);
        Self::from_rows(n, dim, &row, m, ef_construction, distance, seed)
    }

    /// An empty graph over `n` rows of `dim` floats that `row(i, out)` writes into `out` on
    /// demand (twice each: once for the largest |coordinate|, once to store the row as f16), so
    /// that no f32 copy of the whole data set is held next to the f16 rows; nothing is linked
    /// until [`Graph::insert_all`].
    pub(crate) fn from_rows(
        n: usize,
        dim: usize,
        row: &(dyn Fn(usize, &mut [f32]) + Sync),
        m: usize,
        ef_construction: usize,
        distance: GraphDistance,
        seed: u64,
    ) -> Self {
        let n = if dim == 0 { 0 } else { n };
        let max = (0..n)
            .into_par_iter()
            .map_init(
                || vec![0f32; dim],
                |buf, i| {
                    row(i, buf);
                    buf.iter().fold(0.0f32, |m, x| m.max(x.abs()))
                },
            )
            .reduce(|| 0.0, f32::max);
        let scale = if max > 0.0 && max.is_finite() {
            1.0 / max
        } else {
            1.0
        };
        let mut data = vec![0u16; n * dim];
        if n > 0 {
            data.par_chunks_exact_mut(dim).enumerate().for_each_init(
                || vec![0f32; dim],
                |buf, (i, out)| {
                    row(i, buf);
                    for (o, &x) in out.iter_mut().zip(buf.iter()) {
                        *o = to_f16(x * scale);
                    }
                },
            );
        }
        let levels: Vec<u8> = (0..n).map(|i| level_of(i, m, seed)).collect();
        let links = levels
            .iter()
            .map(|&l| {
                let layers = (0..l).map(|_| Vec::with_capacity(m)).collect();
                Mutex::new(Links { layers })
            })
            .collect();
        let links = LinkStore::Building(links);
        let l0 = (0..n * (1 + 2 * m)).map(|_| AtomicU32::new(0)).collect();
        let l0_locks = (0..n).map(|_| Mutex::new(())).collect();
        Graph {
            data,
            dim,
            n,
            m,
            m0: 2 * m,
            ef_construction,
            levels,
            l0,
            l0_locks,
            links,
            entry: RwLock::new(None),
            grow: Mutex::new(()),
            distance,
            kernel: Kernel::detect(),
        }
    }

    /// The stored rows, `[n, dim]` f16 bits.
    #[cfg(test)]
    pub(crate) fn data(&self) -> &[u16] {
        &self.data
    }

    /// Row `i` in graph space, f16 bits.
    fn vector(&self, i: usize) -> &[u16] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Row `i` in graph space as f32 (scaled, f16-rounded), into `out` (cleared): the query
    /// form of a node.
    pub(crate) fn row(&self, i: usize, out: &mut Vec<f32>) {
        self.kernel.widen(self.vector(i), out);
    }

    /// The graph distance between a query and a node.
    #[inline]
    fn dist(&self, q: &[f32], node: u32) -> f32 {
        let r = self.vector(node as usize);
        match self.distance {
            GraphDistance::UnitDot => 1.0 - self.kernel.dot4(q, [r; 4])[0],
            GraphDistance::SquaredL2 => self.kernel.l2_4(q, [r; 4])[0],
        }
    }

    /// The graph distances from `q` to `ids`, into `out` (cleared): four rows a pass, the next
    /// four prefetched while the current ones are summed.
    fn dists(&self, q: &[f32], ids: &[u32], out: &mut Vec<f32>) {
        out.clear();
        let mut groups = ids.chunks(4).peekable();
        if let Some(first) = groups.peek() {
            first
                .iter()
                .for_each(|&e| self.kernel.prefetch(self.vector(e as usize)));
        }
        while let Some(g) = groups.next() {
            if let Some(next) = groups.peek() {
                next.iter()
                    .for_each(|&e| self.kernel.prefetch(self.vector(e as usize)));
            }
            // A short last group repeats its first row (already in cache) to fill the four.
            let rows: [&[u16]; 4] =
                std::array::from_fn(|j| self.vector(*g.get(j).unwrap_or(&g[0]) as usize));
            let v = match self.distance {
                GraphDistance::UnitDot => self.kernel.dot4(q, rows).map(|x| 1.0 - x),
                GraphDistance::SquaredL2 => self.kernel.l2_4(q, rows),
            };
            out.extend_from_slice(&v[..g.len()]);
        }
    }

    /// Copies `node`'s links on `layer` into `buf` (cleared).
    fn copy_links(&self, node: u32, layer: usize, buf: &mut Vec<u32>) {
        buf.clear();
        if layer == 0 {
            let base = node as usize * (1 + self.m0);
            let count = (self.l0[base].load(Ordering::Acquire) as usize).min(self.m0);
            let ids = &self.l0[base + 1..base + 1 + count];
            buf.extend(ids.iter().map(|a| a.load(Ordering::Relaxed)));
            return;
        }
        match &self.links {
            LinkStore::Building(all) => {
                if let Some(l) = lock(&all[node as usize]).layers.get(layer - 1) {
                    buf.extend_from_slice(l);
                }
            }
            LinkStore::Frozen(all) => {
                if let Some(l) = all[node as usize].layers.get(layer - 1) {
                    buf.extend_from_slice(l);
                }
            }
        }
    }

    /// Replaces `node`'s layer-0 links (the caller holds `l0_locks[node]`): ids, then count.
    fn write_l0(&self, node: u32, ids: &[u32]) {
        let base = node as usize * (1 + self.m0);
        let ids = &ids[..ids.len().min(self.m0)];
        for (slot, &e) in self.l0[base + 1..].iter().zip(ids) {
            slot.store(e, Ordering::Relaxed);
        }
        self.l0[base].store(ids.len() as u32, Ordering::Release);
    }

    /// Sets `node`'s links on `layer` (while building).
    fn set_links(&self, node: u32, layer: usize, ids: &[u32]) {
        if layer == 0 {
            let _held = lock(&self.l0_locks[node as usize]);
            self.write_l0(node, ids);
        } else if let Some(mut links) = self.building(node) {
            links.layers[layer - 1].clear();
            links.layers[layer - 1].extend_from_slice(ids);
        }
    }

    /// The links of a node under construction (`None` once frozen: nothing is inserted then).
    fn building(&self, node: u32) -> Option<MutexGuard<'_, Links>> {
        match &self.links {
            LinkStore::Building(all) => Some(lock(&all[node as usize])),
            LinkStore::Frozen(_) => None,
        }
    }

    /// Ends construction: later searches read the upper layers without locking; inserting is a
    /// no-op.
    pub(crate) fn freeze(&mut self) {
        if let LinkStore::Building(all) = &mut self.links {
            let plain = std::mem::take(all)
                .into_iter()
                .map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner))
                .collect();
            self.links = LinkStore::Frozen(plain);
        }
    }

    /// Inserts every node in id order, node 0 first, then the rest in parallel on the current
    /// rayon pool or in order on this thread; `done(count)` is called as chunks finish.
    pub(crate) fn insert_all(&self, parallel: bool, done: &(dyn Fn(usize) + Sync)) {
        if self.n == 0 {
            return;
        }
        let pool = ScratchPool::new(self.n);
        pool.with(|s| self.insert(0, s));
        done(1);
        let chunks = (1..self.n as u32).step_by(INSERT_CHUNK);
        let insert_chunk = |start: u32, s: &mut Scratch| {
            let end = (start + INSERT_CHUNK as u32).min(self.n as u32);
            (start..end).for_each(|i| self.insert(i, s));
            done((end - start) as usize);
        };
        if parallel {
            chunks
                .collect::<Vec<_>>()
                .into_par_iter()
                .for_each(|start| pool.with(|s| insert_chunk(start, s)));
        } else {
            pool.with(|s| chunks.for_each(|start| insert_chunk(start, s)));
        }
    }

    /// Greedy descent from the entry point through layers `entry.level` down to `down_to`: the
    /// nearest node to `q` found on layer `down_to`.
    fn descend(&self, q: &[f32], entry: Entry, down_to: usize, s: &mut Scratch) -> Candidate {
        let mut cur = Candidate {
            dist: self.dist(q, entry.node),
            id: entry.node,
        };
        let (mut buf, mut dist) = (std::mem::take(&mut s.buf), std::mem::take(&mut s.dist));
        for layer in (down_to..=entry.level).rev() {
            loop {
                let mut moved = false;
                self.copy_links(cur.id, layer, &mut buf);
                self.dists(q, &buf, &mut dist);
                for (&e, &d) in buf.iter().zip(&dist) {
                    if d < cur.dist {
                        cur = Candidate { dist: d, id: e };
                        moved = true;
                    }
                }
                if !moved {
                    break;
                }
            }
        }
        (s.buf, s.dist) = (buf, dist);
        cur
    }

    /// Best-first search of one layer from `starts`; leaves the `ef` best in `s.best`.
    fn search_layer(
        &self,
        q: &[f32],
        starts: &[Candidate],
        ef: usize,
        layer: usize,
        s: &mut Scratch,
    ) {
        s.next_epoch();
        s.frontier.clear();
        s.best.clear();
        for &c in starts {
            s.visited[c.id as usize] = s.epoch;
            s.frontier.push(Reverse(c));
            s.best.push(c);
        }
        while s.best.len() > ef {
            s.best.pop();
        }
        let mut buf = std::mem::take(&mut s.buf);
        while let Some(Reverse(c)) = s.frontier.pop() {
            if s.best.len() >= ef && s.best.peek().is_some_and(|w| c.dist > w.dist) {
                break;
            }
            self.copy_links(c.id, layer, &mut buf);
            s.todo.clear();
            for &e in &buf {
                let slot = &mut s.visited[e as usize];
                if *slot != s.epoch {
                    *slot = s.epoch;
                    s.todo.push(e);
                }
            }
            let mut dist = std::mem::take(&mut s.dist);
            self.dists(q, &s.todo, &mut dist);
            for (&e, &d) in s.todo.iter().zip(&dist) {
                let worst = s.best.peek().map_or(f32::INFINITY, |w| w.dist);
                if s.best.len() < ef || d < worst {
                    let cand = Candidate { dist: d, id: e };
                    s.frontier.push(Reverse(cand));
                    s.best.push(cand);
                    if s.best.len() > ef {
                        s.best.pop();
                    }
                }
            }
            s.dist = dist;
        }
        s.buf = buf;
    }

    /// Drains `s.best` into `out`, nearest first.
    fn drain_sorted(s: &mut Scratch, out: &mut Vec<Candidate>) {
        out.clear();
        out.extend(s.best.drain());
        out.sort_unstable();
    }

    /// hnswlib's heuristic: from `cands` (nearest first, distances to the base point), keep a
    /// candidate only if it is nearer to the base point than to every one already kept; at most
    /// `max` are kept.
    fn select(&self, cands: &[Candidate], max: usize) -> Vec<u32> {
        let mut kept: Vec<u32> = Vec::with_capacity(max);
        let mut dist = Vec::with_capacity(max);
        let mut v = Vec::with_capacity(self.dim);
        for c in cands {
            if kept.len() >= max {
                break;
            }
            if kept.is_empty() {
                kept.push(c.id);
                continue;
            }
            self.row(c.id as usize, &mut v);
            self.dists(&v, &kept, &mut dist);
            if dist.iter().all(|&d| d >= c.dist) {
                kept.push(c.id);
            }
        }
        kept
    }

    fn insert(&self, id: u32, s: &mut Scratch) {
        if matches!(self.links, LinkStore::Frozen(_)) {
            return;
        }
        let level = usize::from(self.levels[id as usize]);
        let current = *self.entry.read().unwrap_or_else(PoisonError::into_inner);
        let _grow = match current {
            Some(e) if level <= e.level => None,
            _ => Some(lock(&self.grow)),
        };
        // Re-read: another thread may have raised the top level while this one waited.
        let Some(entry) = *self.entry.read().unwrap_or_else(PoisonError::into_inner) else {
            *self.entry.write().unwrap_or_else(PoisonError::into_inner) =
                Some(Entry { node: id, level });
            return;
        };
        let mut query = std::mem::take(&mut s.query);
        self.row(id as usize, &mut query);
        let q = &query[..];
        let mut starts = vec![if entry.level > level {
            self.descend(q, entry, level + 1, s)
        } else {
            Candidate {
                dist: self.dist(q, entry.node),
                id: entry.node,
            }
        }];
        let mut found = Vec::new();
        for layer in (0..=level.min(entry.level)).rev() {
            self.search_layer(q, &starts, self.ef_construction, layer, s);
            Self::drain_sorted(s, &mut found);
            let max = if layer == 0 { self.m0 } else { self.m };
            let chosen = self.select(&found, max);
            self.set_links(id, layer, &chosen);
            for &e in &chosen {
                self.link_back(e, id, layer, max);
            }
            std::mem::swap(&mut starts, &mut found);
        }
        s.query = query;
        if level > entry.level {
            *self.entry.write().unwrap_or_else(PoisonError::into_inner) =
                Some(Entry { node: id, level });
        }
    }

    /// Adds `new` to `node`'s links on `layer`, shrinking them with the heuristic when full.
    fn link_back(&self, node: u32, new: u32, layer: usize, max: usize) {
        let mut list = Vec::with_capacity(max + 1);
        let shrink = |list: &mut Vec<u32>| {
            list.push(new);
            let (mut dist, mut v) = (Vec::with_capacity(list.len()), Vec::with_capacity(self.dim));
            self.row(node as usize, &mut v);
            self.dists(&v, list, &mut dist);
            let mut cands: Vec<Candidate> = list
                .iter()
                .zip(&dist)
                .map(|(&id, &dist)| Candidate { dist, id })
                .collect();
            cands.sort_unstable();
            self.select(&cands, max)
        };
        if layer == 0 {
            let _held = lock(&self.l0_locks[node as usize]);
            self.copy_links(node, 0, &mut list);
            if list.contains(&new) {
                return;
            }
            if list.len() < max {
                let base = node as usize * (1 + self.m0);
                self.l0[base + 1 + list.len()].store(new, Ordering::Relaxed);
                self.l0[base].store(list.len() as u32 + 1, Ordering::Release);
            } else {
                let kept = shrink(&mut list);
                self.write_l0(node, &kept);
            }
            return;
        }
        let Some(mut links) = self.building(node) else {
            return;
        };
        let Some(list) = links.layers.get_mut(layer - 1) else {
            return;
        };
        if list.contains(&new) {
            return;
        }
        if list.len() < max {
            list.push(new);
            return;
        }
        *list = shrink(list);
    }

    /// The `k` nearest nodes to `q` (nearest first), searching layer 0 with width
    /// `max(ef, k)` from the end of the descent through the upper layers: the query of a point
    /// not in the graph (the tests' reference for [`Graph::search_from`]).
    #[cfg(test)]
    pub(crate) fn search(&self, q: &[f32], k: usize, ef: usize, s: &mut Scratch) -> Vec<Candidate> {
        let Some(entry) = *self.entry.read().unwrap_or_else(PoisonError::into_inner) else {
            return Vec::new();
        };
        let start = self.descend(q, entry, 1, s);
        self.nearest_from(q, start, k, ef, s)
    }

    /// The `k` nearest nodes to `q` (nearest first), searching layer 0 with width `max(ef, k)`
    /// from node `start` instead of from the descent through the upper layers: the query of an
    /// all-points neighbour graph, where the query's own node is already in the graph and is
    /// where the descent would have ended.
    pub(crate) fn search_from(
        &self,
        q: &[f32],
        start: u32,
        k: usize,
        ef: usize,
        s: &mut Scratch,
    ) -> Vec<Candidate> {
        if start as usize >= self.n {
            return Vec::new();
        }
        let start = Candidate {
            dist: self.dist(q, start),
            id: start,
        };
        self.nearest_from(q, start, k, ef, s)
    }

    /// The `k` nearest nodes to `q` (nearest first) found by a layer-0 search of width
    /// `max(ef, k)` from `start`.
    fn nearest_from(
        &self,
        q: &[f32],
        start: Candidate,
        k: usize,
        ef: usize,
        s: &mut Scratch,
    ) -> Vec<Candidate> {
        self.search_layer(q, &[start], ef.max(k), 0, s);
        let mut out = Vec::new();
        Self::drain_sorted(s, &mut out);
        out.truncate(k);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_geometric_law_and_ignore_order() {
        let m = 16;
        let levels: Vec<u8> = (0..100_000).map(|i| level_of(i, m, 7)).collect();
        let above0 = levels.iter().filter(|&&l| l >= 1).count() as f64 / 1e5;
        // P(level ≥ 1) = 1/m.
        assert!((above0 - 1.0 / 16.0).abs() < 0.005, "{above0}");
        assert_eq!(level_of(123, m, 7), levels[123]);
        assert_ne!(
            (0..64).map(|i| level_of(i, m, 7)).collect::<Vec<_>>(),
            (0..64).map(|i| level_of(i, m, 8)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn finds_every_point_itself_on_a_small_grid() {
        // 400 points on a 20 × 20 grid in 2-D: each point's nearest node is itself.
        let data: Vec<f32> = (0..400)
            .flat_map(|i| [(i % 20) as f32, (i / 20) as f32])
            .collect();
        let g = Graph::new(data, 2, 4, 32, GraphDistance::SquaredL2, 1);
        g.insert_all(false, &|_| {});
        let mut s = Scratch::new(400);
        let mut q = Vec::new();
        for i in 0..400 {
            g.row(i, &mut q);
            let hit = g.search(&q, 1, 16, &mut s);
            assert_eq!(hit[0].id as usize, i);
            assert_eq!(hit[0].dist, 0.0);
        }
    }

    #[test]
    fn a_search_from_the_node_finds_what_the_descent_finds() {
        use rand::{Rng, SeedableRng};
        // 3 000 points around 30 seeded centres in 24-D.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x0073_6661);
        let (n, dim, k) = (3_000, 24, 10);
        let centres: Vec<f32> = (0..30 * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
        let data: Vec<f32> = (0..n)
            .flat_map(|_| {
                let c = rng.random_range(0..30usize);
                (0..dim)
                    .map(|j| centres[c * dim + j] + rng.random_range(-0.4..0.4))
                    .collect::<Vec<f32>>()
            })
            .collect();
        let g = Graph::new(data, dim, 8, 40, GraphDistance::SquaredL2, 3);
        g.insert_all(false, &|_| {});
        // Brute force over the stored rows (as f32): the true `k` nearest other nodes.
        let rows: Vec<Vec<f32>> = (0..n)
            .map(|i| {
                let mut r = Vec::new();
                g.row(i, &mut r);
                r
            })
            .collect();
        let d2 = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
        let mut s = Scratch::new(n);
        let (mut from_node, mut from_descent) = (0, 0);
        for i in 0..n {
            let mut all: Vec<Candidate> = (0..n)
                .filter(|&j| j != i)
                .map(|j| Candidate {
                    dist: d2(&rows[i], &rows[j]),
                    id: j as u32,
                })
                .collect();
            all.sort_unstable();
            let truth: Vec<u32> = all[..k].iter().map(|c| c.id).collect();
            let hits = g.search_from(&rows[i], i as u32, k + 1, 16, &mut s);
            assert_eq!((hits[0].id, hits[0].dist), (i as u32, 0.0), "row {i}");
            from_node += hits.iter().filter(|h| truth.contains(&h.id)).count();
            let hits = g.search(&rows[i], k + 1, 16, &mut s);
            from_descent += hits.iter().filter(|h| truth.contains(&h.id)).count();
        }
        let recall = |hits: usize| hits as f64 / (n * k) as f64;
        let (a, b) = (recall(from_node), recall(from_descent));
        assert!(a >= 0.9, "recall@10 from the node {a}");
        assert!(a >= b - 0.005, "from the node {a}, from the descent {b}");
    }
}
