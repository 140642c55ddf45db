//! Decode + preprocess on worker threads, inference on the calling thread, ordered output.
//!
//! The caller's thread hands out batch indices through a bounded channel and never has more
//! than `window` batches in flight, so memory stays bounded however large the dataset; results
//! come back in any order and are put back in order before inference.

use super::{Embedder, Preprocess};
use crate::store::embeddings::Rows;
use crate::{dataset::DataSource, Error, Result};
use crossbeam::channel;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Range;

/// A sample that could not be read or decoded and was skipped (`skip_bad`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadSample {
    /// The sample's id (dataset position).
    pub id: u64,
    /// Its key (or `#<id>` when even the key could not be read).
    pub key: String,
    /// The error message.
    pub error: String,
}

/// One embedded batch, in dataset order.
#[derive(Debug)]
pub(crate) struct Embedded {
    /// Index of the batch in the plan.
    pub index: usize,
    /// The good rows with their embeddings.
    pub rows: Rows,
    /// Samples skipped in this batch.
    pub bad: Vec<BadSample>,
}

/// A batch decoded and preprocessed by a worker.
struct Prepared {
    index: usize,
    rows: Rows,
    input: Vec<f32>,
    bad: Vec<BadSample>,
}

fn prepare(
    source: &dyn DataSource,
    pre: &Preprocess,
    index: usize,
    range: Range<usize>,
    skip_bad: bool,
) -> Result<Prepared> {
    let len = pre.sample_len();
    let mut rows = Rows::default();
    let mut input = Vec::with_capacity(range.len() * len);
    let mut bad = Vec::new();
    for i in range {
        let sample = source.get(i).and_then(|s| {
            let start = input.len();
            input.resize(start + len, 0.0);
            match pre.apply(&s.image, &s.key, &mut input[start..]) {
                Ok(()) => Ok(s),
                Err(e) => {
                    input.truncate(start);
                    Err(e)
                }
            }
        });
        match sample {
            Ok(s) => {
                rows.ids.push(i as u64);
                rows.keys.push(s.key);
                rows.labels.push(s.label);
            }
            Err(e) if skip_bad => {
                let key = source.key(i).unwrap_or_else(|_| format!("#{i}"));
                tracing::warn!(id = i, %key, error = %e, "skipping bad sample");
                bad.push(BadSample {
                    id: i as u64,
                    key,
                    error: e.to_string(),
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Prepared {
        index,
        rows,
        input,
        bad,
    })
}

/// Embeds the batches `plan` of `source` in order, calling `sink` once per batch.
///
/// `workers` threads decode and preprocess; at most `window` batches are in flight.
pub(crate) fn run(
    embedder: &mut Embedder,
    source: &dyn DataSource,
    plan: &[Range<usize>],
    workers: usize,
    skip_bad: bool,
    mut sink: impl FnMut(Embedded) -> Result<()>,
) -> Result<()> {
    if plan.is_empty() {
        return Ok(());
    }
    let workers = workers.max(1);
    let window = (2 * workers + 2).min(plan.len());
    let pre = embedder.preprocess().clone();
    let (job_tx, job_rx) = channel::bounded::<usize>(window);
    let (res_tx, res_rx) = channel::bounded::<(usize, Result<Prepared>)>(window);
    std::thread::scope(|scope| {
        for w in 0..workers {
            let (job_rx, res_tx, pre) = (job_rx.clone(), res_tx.clone(), &pre);
            std::thread::Builder::new()
                .name(format!("gps-embed-{w}"))
                .spawn_scoped(scope, move || {
                    for index in job_rx {
                        let range = plan[index].clone();
                        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            prepare(source, pre, index, range, skip_bad)
                        }))
                        .unwrap_or_else(|_| {
                            Err(Error::Worker(format!(
                                "decode worker panicked on batch {index}"
                            )))
                        });
                        if res_tx.send((index, r)).is_err() {
                            break;
                        }
                    }
                })
                .map_err(|e| Error::Worker(format!("cannot spawn decode worker: {e}")))?;
        }
        drop(res_tx);
        drop(job_rx);
        let result = consume(embedder, plan, window, &job_tx, &res_rx, &mut sink);
        // Stop the workers: no more jobs, and drain what is in flight so none blocks on send.
        drop(job_tx);
        while res_rx.recv().is_ok() {}
        result
    })
}

fn consume(
    embedder: &mut Embedder,
    plan: &[Range<usize>],
    window: usize,
    job_tx: &channel::Sender<usize>,
    res_rx: &channel::Receiver<(usize, Result<Prepared>)>,
    sink: &mut impl FnMut(Embedded) -> Result<()>,
) -> Result<()> {
    let send = |i: usize| {
        job_tx
            .send(i)
            .map_err(|_| Error::Worker("decode workers stopped".to_string()))
    };
    let mut next_job = 0;
    while next_job < window {
        send(next_job)?;
        next_job += 1;
    }
    let mut pending: BTreeMap<usize, Result<Prepared>> = BTreeMap::new();
    for expected in 0..plan.len() {
        let prepared = loop {
            if let Some(p) = pending.remove(&expected) {
                break p;
            }
            // Batches are consumed in order, so the first bad sample in dataset order is the
            // one reported.
            let (index, r) = res_rx
                .recv()
                .map_err(|_| Error::Worker("a decode worker stopped unexpectedly".to_string()))?;
            pending.insert(index, r);
        }?;
        if next_job < plan.len() {
            send(next_job)?;
            next_job += 1;
        }
        let Prepared {
            index,
            mut rows,
            input,
            bad,
        } = prepared;
        let ids = rows.ids.clone();
        rows.vectors = embedder.run_batch(&input, ids.len(), |i| ids[i])?;
        sink(Embedded { index, rows, bad })?;
    }
    Ok(())
}
