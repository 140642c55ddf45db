//! Decode + preprocess on worker threads, inference on one thread per replica, ordered output.
//!
//! ```text
//! caller ──batch index──▶ decode workers ──Prepared──▶ replica threads ──Embedded──▶ caller
//! ```
//!
//! The caller's thread hands out batch indices through a bounded channel and never has more
//! than `window` batches in flight, so memory stays bounded however large the dataset; the
//! replicas take prepared batches in any order, and the caller puts their results back in
//! order before the sink sees them.

use super::{Embedder, Preprocess, RunSpec};
use crate::store::embeddings::Rows;
use crate::{
    dataset::{BadSample, DataSource},
    Error, Result,
};
use crossbeam::channel;
use ort::session::Session;

use std::collections::BTreeMap;
use std::ops::Range;

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
/// `workers` threads decode and preprocess, each of the embedder's replicas runs on its own
/// thread, and at most `window` batches are in flight.
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
    let pre = embedder.preprocess().clone();
    let (sessions, spec) = embedder.parts();
    let window = (2 * (workers + sessions.len())).min(plan.len());
    let (job_tx, job_rx) = channel::bounded::<usize>(window);
    let (prep_tx, prep_rx) = channel::bounded::<(usize, Result<Prepared>)>(window);
    let (res_tx, res_rx) = channel::bounded::<(usize, Result<Embedded>)>(window);
    let mut dim = None;
    let result = std::thread::scope(|scope| {
        for w in 0..workers {
            let (job_rx, prep_tx, pre) = (job_rx.clone(), prep_tx.clone(), &pre);
            spawn(scope, format!("gps-embed-{w}"), move || {
                for index in job_rx {
                    let range = plan[index].clone();
                    let r = guarded("decode worker", index, || {
                        prepare(source, pre, index, range, skip_bad)
                    });
                    if prep_tx.send((index, r)).is_err() {
                        break;
                    }
                }
            })?;
        }
        for (r, session) in sessions.iter_mut().enumerate() {
            let (prep_rx, res_tx) = (prep_rx.clone(), res_tx.clone());
            spawn(scope, format!("gps-infer-{r}"), move || {
                for (index, prepared) in prep_rx {
                    let r = prepared.and_then(|p| {
                        guarded("inference replica", index, || infer(spec, session, p))
                    });
                    if res_tx.send((index, r)).is_err() {
                        break;
                    }
                }
            })?;
        }
        drop((prep_tx, prep_rx, res_tx, job_rx));
        let result = consume(plan, window, &job_tx, &res_rx, &mut |batch: Embedded| {
            if let Some(n) = std::num::NonZeroUsize::new(batch.rows.ids.len()) {
                dim = Some(batch.rows.vectors.len() / n);
            }
            sink(batch)
        });
        // Stop the threads: no more jobs, and drain what is in flight so none blocks on send.
        drop(job_tx);
        while res_rx.recv().is_ok() {}
        result
    });
    if let Some(dim) = dim {
        embedder.saw_dim(dim);
    }
    result
}

/// Spawns a named scoped thread.
fn spawn<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    name: String,
    f: impl FnOnce() + Send + 'scope,
) -> Result<()> {
    std::thread::Builder::new()
        .name(name.clone())
        .spawn_scoped(scope, f)
        .map(|_| ())
        .map_err(|e| Error::Worker(format!("cannot spawn thread {name}: {e}")))
}

/// Runs `f`, turning a panic into an error naming the batch.
fn guarded<T>(what: &str, index: usize, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(Error::Worker(format!("{what} panicked on batch {index}"))))
}

/// Runs a prepared batch on one replica.
fn infer(spec: RunSpec<'_>, session: &mut Session, prepared: Prepared) -> Result<Embedded> {
    let Prepared {
        index,
        mut rows,
        input,
        bad,
    } = prepared;
    let ids = &rows.ids;
    let vectors = spec.run(session, &input, ids.len(), |i| ids[i])?;
    rows.vectors = vectors;
    Ok(Embedded { index, rows, bad })
}

fn consume(
    plan: &[Range<usize>],
    window: usize,
    job_tx: &channel::Sender<usize>,
    res_rx: &channel::Receiver<(usize, Result<Embedded>)>,
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
    let mut pending: BTreeMap<usize, Result<Embedded>> = BTreeMap::new();
    for expected in 0..plan.len() {
        let embedded = loop {
            if let Some(e) = pending.remove(&expected) {
                break e;
            }
            // Batches are consumed in order, so the first bad sample in dataset order is the
            // one reported.
            let (index, r) = res_rx.recv().map_err(|_| {
                Error::Worker("an embedding thread stopped unexpectedly".to_string())
            })?;
            pending.insert(index, r);
        }?;
        if next_job < plan.len() {
            send(next_job)?;
            next_job += 1;
        }
        sink(embedded)?;
    }
    Ok(())
}
