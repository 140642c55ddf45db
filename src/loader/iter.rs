//! The per-epoch iterator and its worker threads.
//!
//! The consumer keeps at most `prefetch` batches in flight: it dispatches batch indices on a
//! bounded job channel, workers send finished batches on a bounded result channel, and a
//! reorder buffer hands them out in order. Since no more than `prefetch` batches are ever
//! outstanding, neither channel can block a worker for good; on drop the iterator raises a stop
//! flag, closes both channels and joins every worker.

use super::builder::PARTNER_REDRAWS;
use super::{PairBatch, Plan};
use crate::augment::Augmenter;
use crate::{
    augment::ViewParams,
    dataset::{BadSample, DecodeAsk, Reduced, Region, Sample},
    Error, Result,
};
use crossbeam::channel::{bounded, Receiver, Sender};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

type Job = usize;
/// A finished batch and the bad samples skipped while making it.
type Made = (PairBatch, Vec<BadSample>);
type Done = (usize, Result<Made>);

/// Iterator over the batches of one epoch, in order. Yields `Err` (naming the sample key) when
/// a sample cannot be read — unless the loader skips bad samples — and then stops. Dropping it
/// stops and joins its worker threads.
pub struct PairIter {
    plan: Arc<Plan>,
    epoch: u64,
    next: usize,
    end: usize,
    dispatched: usize,
    jobs: Option<Sender<Job>>,
    results: Option<Receiver<Done>>,
    pending: BTreeMap<usize, Result<Made>>,
    handles: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    inline: Option<Box<BatchMaker>>,
    finished: bool,
}

impl std::fmt::Debug for PairIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairIter")
            .field("epoch", &self.epoch)
            .field("next", &self.next)
            .field("end", &self.end)
            .field("workers", &self.handles.len())
            .finish_non_exhaustive()
    }
}

impl PairIter {
    pub(crate) fn new(plan: Arc<Plan>, epoch: u64, first: usize) -> Self {
        let perm = Arc::new(plan.permutation(epoch));
        let end = plan.batches();
        let next = first.min(end);
        let stop = Arc::new(AtomicBool::new(false));
        let mut it = PairIter {
            plan: plan.clone(),
            epoch,
            next,
            end,
            dispatched: next,
            jobs: None,
            results: None,
            pending: BTreeMap::new(),
            handles: Vec::new(),
            stop: stop.clone(),
            inline: None,
            finished: false,
        };
        if plan.workers == 0 || next == end {
            it.inline = Some(Box::new(BatchMaker::new(plan, perm, epoch)));
            return it;
        }
        let (job_tx, job_rx) = bounded::<Job>(plan.prefetch);
        let (res_tx, res_rx) = bounded::<Done>(plan.prefetch);
        for w in 0..plan.workers.min(end - next) {
            let rx = job_rx.clone();
            let tx = res_tx.clone();
            let stop = stop.clone();
            let mut maker = BatchMaker::new(plan.clone(), perm.clone(), epoch);
            let spawned = std::thread::Builder::new()
                .name(format!("gps-loader-{w}"))
                .spawn(move || worker(&mut maker, rx, tx, stop));
            match spawned {
                Ok(h) => it.handles.push(h),
                Err(e) => {
                    tracing::warn!("cannot spawn loader worker {w}: {e}");
                    break;
                }
            }
        }
        if it.handles.is_empty() {
            it.inline = Some(Box::new(BatchMaker::new(plan, perm, epoch)));
            return it;
        }
        it.jobs = Some(job_tx);
        it.results = Some(res_rx);
        while it.dispatched < it.end && it.dispatched - it.next < it.plan.prefetch {
            it.dispatch();
        }
        it
    }

    fn dispatch(&mut self) {
        if let Some(tx) = &self.jobs {
            if self.dispatched < self.end && tx.send(self.dispatched).is_ok() {
                self.dispatched += 1;
            }
        }
    }

    /// Index of the next batch this iterator will yield.
    pub fn position(&self) -> usize {
        self.next
    }

    /// Batches this epoch has in total (including those skipped by a resume).
    pub fn total_batches(&self) -> usize {
        self.end
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.jobs = None;
        self.results = None;
        self.pending.clear();
        for h in self.handles.drain(..) {
            if h.join().is_err() {
                tracing::warn!("a loader worker panicked while stopping");
            }
        }
    }
}

impl Iterator for PairIter {
    type Item = Result<PairBatch>;

    fn next(&mut self) -> Option<Result<PairBatch>> {
        if self.finished || self.next >= self.end {
            return None;
        }
        let b = self.next;
        let out = if let Some(maker) = &mut self.inline {
            maker.make(b)
        } else {
            loop {
                if let Some(r) = self.pending.remove(&b) {
                    break r;
                }
                let Some(rx) = &self.results else {
                    break Err(Error::Worker("loader already stopped".into()));
                };
                match rx.recv() {
                    Ok((i, r)) => {
                        self.pending.insert(i, r);
                    }
                    Err(_) => break Err(Error::Worker("all loader workers stopped".into())),
                }
            }
        };
        self.next += 1;
        match out {
            Ok((batch, bad)) => {
                if !bad.is_empty() {
                    if let Ok(mut set) = self.plan.skipped.lock() {
                        for b in bad {
                            set.entry(b.id).or_insert(b);
                        }
                    }
                }
                self.dispatch();
                Some(Ok(batch))
            }
            Err(e) => {
                self.finished = true;
                self.shutdown();
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = if self.finished {
            0
        } else {
            self.end - self.next
        };
        (0, Some(left))
    }
}

impl Drop for PairIter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn worker(
    maker: &mut BatchMaker,
    jobs: Receiver<Job>,
    results: Sender<Done>,
    stop: Arc<AtomicBool>,
) {
    maker.stop = Some(stop.clone());
    while let Ok(b) = jobs.recv() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| maker.make(b)))
            .unwrap_or_else(|p| {
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Err(Error::Worker(format!("batch {b} panicked: {msg}")))
            });
        if results.send((b, r)).is_err() {
            return;
        }
    }
}

/// Assembles batches; one per worker (owns the augmentation scratch buffers).
pub(crate) struct BatchMaker {
    plan: Arc<Plan>,
    perm: Arc<Vec<u32>>,
    epoch: u64,
    aug: Option<Augmenter>,
    stop: Option<Arc<AtomicBool>>,
}

impl BatchMaker {
    pub(crate) fn new(plan: Arc<Plan>, perm: Arc<Vec<u32>>, epoch: u64) -> Self {
        BatchMaker {
            plan,
            perm,
            epoch,
            aug: None,
            stop: None,
        }
    }

    fn augmenter(&mut self) -> Result<&mut Augmenter> {
        if self.aug.is_none() {
            let p = &self.plan;
            self.aug = Some(Augmenter::new(
                p.recipe.clone(),
                p.channels,
                p.out_h,
                p.out_w,
            )?);
        }
        self.aug
            .as_mut()
            .ok_or_else(|| Error::Worker("augmenter missing".into()))
    }

    /// Builds batch `b` of the epoch; returns it with the bad samples skipped on the way
    /// (always empty without `skip_bad`, where a bad sample is an error).
    pub(crate) fn make(&mut self, b: usize) -> Result<Made> {
        let plan = self.plan.clone();
        let items = plan.batch_items(b);
        let n = items.len();
        let m = plan.sampler.positives_per_anchor();
        let view_len = plan.channels as usize * plan.out_h as usize * plan.out_w as usize;
        let mut view_a: Vec<f32> = Vec::with_capacity(n * view_len);
        let mut view_b: Vec<f32> = Vec::with_capacity(n * view_len);
        let mut anchor_ids = Vec::with_capacity(n);
        let mut partner_ids = Vec::with_capacity(n);
        let mut labels = Vec::with_capacity(n);
        let mut bad: Vec<BadSample> = Vec::new();
        let (seed, epoch) = (plan.seed, self.epoch);
        // The anchor's decode, reused by consecutive pairs of one anchor (several positives)
        // when they ask for the same reduction.
        // The previous anchor's decode, keyed by its dataset index (not `Sample::id`, which a
        // user's source may fill with its own ids).
        let mut cached: Option<(u32, Reduced, DecodeAsk)> = None;
        let mut bad_anchor: Option<u32> = None;
        self.augmenter()?;
        for t in items {
            if self
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::Relaxed))
            {
                return Err(Error::Worker("loader stopped".into()));
            }
            let pos = t / m;
            let anchor = self.perm[pos];
            if bad_anchor == Some(anchor) {
                continue;
            }
            let Some(aug) = self.aug.as_mut() else {
                return Err(Error::Worker("augmenter missing".into()));
            };
            // The sampler's first draw for slot t % m; the anchor itself means plain SSL, whose
            // two views share one decode, at the reduction both allow.
            let first = plan.sampler.partner(anchor, seed, epoch, pos as u64, t % m);
            let shared = first == anchor;
            let position = t as u64;
            // What the anchor's decode must hold: view A, and view B too for plain SSL.
            let wanted = |aug: &Augmenter, w: u32, h: u32| {
                let pa = aug.draw(0, w, h, seed, epoch, position);
                if shared {
                    let pb = aug.draw(1, w, h, seed, epoch, position);
                    ask(aug, &[&pa, &pb], (w, h))
                } else {
                    ask(aug, &[&pa], (w, h))
                }
            };
            let reuse = cached
                .take()
                .filter(|(index, r, asked)| {
                    *index == anchor && {
                        let want = wanted(aug, r.full.0, r.full.1);
                        (r.factor == want.factor || asked.factor == want.factor)
                            && holds(r, want.region)
                    }
                })
                .map(|(_, r, asked)| (r, asked));
            let (a, asked_a) = match reuse {
                Some(c) => c,
                None => {
                    let mut asked = DecodeAsk::whole(1);
                    let loaded = load(&plan, anchor, &mut |w, h| {
                        asked = wanted(aug, w, h);
                        asked
                    });
                    match loaded {
                        Ok(r) => (r, asked),
                        Err(e) if plan.skip_bad => {
                            note_bad(&mut bad, &*plan.dataset, anchor, &e);
                            bad_anchor = Some(anchor);
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            // The partner: the sampler's draw for slot t % m; a bad one is redrawn from
            // further slots, and after PARTNER_REDRAWS failures the anchor pairs with itself.
            let mut partner = anchor;
            let mut pb: Option<Reduced> = None;
            for r in 0..=PARTNER_REDRAWS {
                let p = if r == 0 {
                    first
                } else {
                    plan.sampler
                        .partner(anchor, seed, epoch, pos as u64, t % m + r * m)
                };
                if p as usize >= plan.dataset.len() {
                    return Err(Error::invalid(
                        "partner id",
                        format!("{p} for anchor {anchor} is outside the dataset"),
                    ));
                }
                if p == anchor {
                    break;
                }
                let loaded = load(&plan, p, &mut |w, h| {
                    let pp = aug.draw(1, w, h, seed, epoch, position);
                    ask(aug, &[&pp], (w, h))
                });
                match loaded {
                    Ok(s) => {
                        (partner, pb) = (p, Some(s));
                        break;
                    }
                    Err(e) if plan.skip_bad => note_bad(&mut bad, &*plan.dataset, p, &e),
                    Err(e) => return Err(e),
                }
            }
            // An anchor paired with itself after failed redraws: view B needs the anchor at a
            // reduction its own crop allows.
            if pb.is_none() && !shared {
                let pp = aug.draw(1, a.full.0, a.full.1, seed, epoch, position);
                let need = ask(aug, &[&pp], a.full);
                if a.factor > need.factor || !holds(&a, need.region) {
                    pb = Some(load(&plan, anchor, &mut |_, _| need)?);
                }
            }
            let i = anchor_ids.len();
            let (lo, hi) = (i * view_len, (i + 1) * view_len);
            let wrap = |key: &str, e: Error| Error::Decode {
                key: key.to_string(),
                detail: e.to_string(),
            };
            // The views are written straight into the batch's spare capacity (the first
            // `view_len` values past its length, `lo..hi`), not zero-filled first: zero-filling
            // was 8 % of an RHFlip pair's time at 224 px from JPEG, writing each value twice.
            debug_assert_eq!((view_a.len(), view_b.len()), (lo, lo));
            let va = &mut view_a.spare_capacity_mut()[..view_len];
            let vb = &mut view_b.spare_capacity_mut()[..view_len];
            let (s, f, o) = (&a.sample, a.factor, a.origin);
            let pa = aug.draw(0, a.full.0, a.full.1, seed, epoch, position);
            match &pb {
                // Both views from the anchor's one decode: a shared crop is resized once.
                None => {
                    let pp = aug.draw(1, a.full.0, a.full.1, seed, epoch, position);
                    aug.apply_pair(&pa, &pp, &s.image, f, o, va, vb)
                        .map_err(|e| wrap(&s.key, e))?;
                }
                Some(p) => {
                    aug.apply_part_into(&pa, &s.image, f, o, va)
                        .map_err(|e| wrap(&s.key, e))?;
                    let pp = aug.draw(1, p.full.0, p.full.1, seed, epoch, position);
                    let (im, pf, po) = (&p.sample.image, p.factor, p.origin);
                    aug.apply_part_into(&pp, im, pf, po, vb)
                        .map_err(|e| wrap(&p.sample.key, e))?;
                }
            }
            // SAFETY: both vectors had length `lo` and capacity `n · view_len ≥ hi` (reserved
            // above, one view each per kept item); the calls above returned `Ok`, so they wrote
            // every value of `lo..hi`.
            unsafe {
                view_a.set_len(hi);
                view_b.set_len(hi);
            }
            anchor_ids.push(anchor as u64);
            partner_ids.push(partner as u64);
            labels.push(a.sample.label);
            cached = Some((anchor, a, asked_a));
        }
        let kept = anchor_ids.len();
        view_a.truncate(kept * view_len);
        view_b.truncate(kept * view_len);
        let labels = labels.into_iter().collect::<Option<Vec<i64>>>();
        let [c, h, w] = [
            plan.channels as usize,
            plan.out_h as usize,
            plan.out_w as usize,
        ];
        let batch = PairBatch {
            view_a,
            view_b,
            shape: [kept, c, h, w],
            anchor_ids,
            partner_ids,
            labels,
        };
        Ok((batch, bad))
    }
}

/// The decode that views `views` of a `full`-size image need: the largest reduction all of them
/// allow, and the part of the image they read, or all of it when the recipe decodes whole images
/// ([`AugRecipe::reduced_decode`](crate::augment::AugRecipe::reduced_decode) off).
fn ask(aug: &Augmenter, views: &[&ViewParams], full: (u32, u32)) -> DecodeAsk {
    let factor = views.iter().map(|p| aug.reduction(p)).min().unwrap_or(1);
    let region = aug
        .recipe()
        .reduced_decode
        .then(|| aug.region(views, factor, full));
    DecodeAsk { factor, region }
}

/// Whether decode `r` holds `region` (the whole image when `None`).
fn holds(r: &Reduced, region: Option<Region>) -> bool {
    let d = r.factor.max(1);
    let (ox, oy) = r.origin;
    let (w, h) = (r.sample.image.width, r.sample.image.height);
    match region {
        None => r.origin == (0, 0) && (w, h) == (r.full.0.div_ceil(d), r.full.1.div_ceil(d)),
        Some(g) => {
            g.left / d >= ox
                && g.top / d >= oy
                && (g.left + g.width).div_ceil(d) <= ox + w
                && (g.top + g.height).div_ceil(d) <= oy + h
        }
    }
}

/// Reads sample `id` with the reduction and region `ask(width, height)` asks for and checks its
/// buffer (a bad sample is an error naming its key).
fn load(plan: &Plan, id: u32, ask: &mut dyn FnMut(u32, u32) -> DecodeAsk) -> Result<Reduced> {
    let r = plan.dataset.get_region(id as usize, ask)?;
    check_image(&r.sample)?;
    if r.sample.image.channels > plan.channels {
        return Err(Error::Decode {
            key: r.sample.key.clone(),
            detail: format!(
                "an image of {} channels in a source declared to have {} ({}); views are not \
                 converted to grey silently",
                r.sample.image.channels,
                plan.channels,
                plan.dataset.describe()
            ),
        });
    }
    if let Some((fw, fh)) = plan.fixed_size.filter(|&f| f != r.full) {
        return Err(Error::Decode {
            key: r.sample.key.clone(),
            detail: format!(
                "the image is {}x{}, the views are {fw}x{fh} (the first image's size): set an \
                 output size (AugRecipe::with_output_size, `--size`) to resize images of mixed \
                 sizes",
                r.full.0, r.full.1
            ),
        });
    }
    let (w, h) = r.full;
    let d = r.factor.max(1);
    let (pw, ph) = (w.div_ceil(d), h.div_ceil(d));
    let (ox, oy) = r.origin;
    let (iw, ih) = (r.sample.image.width, r.sample.image.height);
    if r.factor == 0
        || u64::from(ox) + u64::from(iw) > u64::from(pw)
        || u64::from(oy) + u64::from(ih) > u64::from(ph)
    {
        return Err(Error::Decode {
            key: r.sample.key.clone(),
            detail: format!(
                "decoded {iw}x{ih} at ({ox}, {oy}) of {w}x{h} at 1/{}, which is {pw}x{ph}",
                r.factor
            ),
        });
    }
    Ok(r)
}

/// Records bad sample `id` (once per batch) and logs it.
fn note_bad(
    bad: &mut Vec<BadSample>,
    dataset: &dyn crate::dataset::DataSource,
    id: u32,
    e: &Error,
) {
    if bad.iter().any(|b| b.id == id as u64) {
        return;
    }
    let key = dataset
        .key(id as usize)
        .unwrap_or_else(|_| format!("#{id}"));
    tracing::warn!(id, %key, error = %e, "skipping bad sample");
    bad.push(BadSample {
        id: id as u64,
        key,
        error: e.to_string(),
    });
}

fn check_image(s: &Sample) -> Result<()> {
    let im = &s.image;
    let expect = im.width as usize * im.height as usize * im.channels as usize;
    if im.width == 0
        || im.height == 0
        || im.data.len() != expect
        || !(im.channels == 1 || im.channels == 3)
    {
        return Err(Error::Decode {
            key: s.key.clone(),
            detail: format!(
                "image {}x{}x{} with {} bytes",
                im.width,
                im.height,
                im.channels,
                im.data.len()
            ),
        });
    }
    Ok(())
}
