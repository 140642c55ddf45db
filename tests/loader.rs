//! Integration tests of the pair loader: determinism, resume, sampling, errors, shutdown.

mod common;

use common::{fashion, VecSource};
use gps_ssl::{
    augment::AugRecipe,
    dataset::{DataSource, Image, Sample},
    knn::NeighbourLists,
    loader::{PairBatch, PairLoader, PairLoaderBuilder},
    sampler::GpsSampler,
    store::NeighbourTable,
    Error,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A neighbour table over `n` points: row `i` = `i, i+1, …, i+k-1` (mod n), self first.
fn ring_lists(n: usize, k: usize) -> Arc<NeighbourLists> {
    let ids: Vec<u32> = (0..n)
        .flat_map(|i| (0..k).map(move |j| ((i + j) % n) as u32))
        .collect();
    let d = (0..n * k).map(|t| (t % k) as f32).collect();
    Arc::new(NeighbourLists::new(k, ids, d).unwrap())
}

fn loader(data: Arc<dyn DataSource>, workers: usize, recipe: AugRecipe) -> PairLoader {
    let n = data.len();
    PairLoaderBuilder::new(data)
        .sampler(GpsSampler::new(ring_lists(n, 5)))
        .recipe(recipe)
        .batch_size(24)
        .workers(workers)
        .seed(1234)
        .build()
        .unwrap()
}

fn collect(l: &PairLoader, epoch: u64) -> Vec<PairBatch> {
    l.iter_epoch(epoch).map(|b| b.unwrap()).collect()
}

#[test]
fn batches_are_bit_identical_for_1_2_and_8_workers() {
    let data: Arc<dyn DataSource> = Arc::new(fashion(200));
    for recipe in [
        AugRecipe::simclr(),
        AugRecipe::byol().with_output_size(32, 32),
    ] {
        let one = collect(&loader(data.clone(), 1, recipe.clone()), 3);
        assert_eq!(one.len(), 9); // ceil(200 / 24)
        assert_eq!(one[8].len(), 200 - 8 * 24);
        for w in [0, 2, 8] {
            let other = collect(&loader(data.clone(), w, recipe.clone()), 3);
            assert!(
                one == other,
                "{} workers differ from 1 ({})",
                w,
                recipe.name
            );
        }
    }
}

#[test]
fn resume_continues_the_identical_stream() {
    let data: Arc<dyn DataSource> = Arc::new(fashion(120));
    let full = collect(&loader(data.clone(), 2, AugRecipe::simclr()), 2);
    let resumed = PairLoaderBuilder::new(data.clone())
        .sampler(GpsSampler::new(ring_lists(120, 5)))
        .recipe(AugRecipe::simclr())
        .batch_size(24)
        .workers(3)
        .seed(1234)
        .start_at(2, 3)
        .build()
        .unwrap();
    let tail = collect(&resumed, 2);
    assert_eq!(tail.len(), full.len() - 3);
    assert!(tail == full[3..]);
    // The following epoch starts from batch 0 again and matches too.
    assert!(collect(&resumed, 3) == collect(&loader(data, 1, AugRecipe::simclr()), 3));
}

#[test]
fn epochs_differ_in_order_and_cover_every_anchor() {
    let data: Arc<dyn DataSource> = Arc::new(fashion(100));
    let l = loader(data, 2, AugRecipe::rhflip());
    let ids = |e| -> Vec<u64> {
        collect(&l, e)
            .iter()
            .flat_map(|b| b.anchor_ids.clone())
            .collect()
    };
    let (e0, e1) = (ids(0), ids(1));
    assert_ne!(e0, e1);
    for mut e in [e0, e1] {
        e.sort();
        assert_eq!(e, (0..100).collect::<Vec<u64>>());
    }
}

#[test]
fn partners_are_in_the_neighbourhood_and_uniform() {
    // 20 anchors with k = 5 (self first, excluded): 4 candidates each. Over 400 epochs every
    // anchor gets 400 draws; pooled chi-square over 20×4 cells with 60 degrees of freedom.
    let n = 20;
    let lists = ring_lists(n, 5);
    let images = (0..n)
        .map(|i| Image::new(2, 2, 1, vec![i as u8; 4]))
        .collect();
    let data: Arc<dyn DataSource> = Arc::new(VecSource::new(images, vec![0; n]));
    let l = PairLoaderBuilder::new(data)
        .sampler(GpsSampler::new(lists.clone()))
        .batch_size(n)
        .workers(0)
        .seed(99)
        .build()
        .unwrap();
    let mut counts = vec![[0u32; 4]; n];
    let epochs = 400;
    for e in 0..epochs {
        for b in l.iter_epoch(e) {
            let b = b.unwrap();
            for (&a, &p) in b.anchor_ids.iter().zip(&b.partner_ids) {
                let row = lists.neighbours(a as usize);
                let slot = row
                    .iter()
                    .position(|&x| x as u64 == p)
                    .expect("partner outside B(x)");
                assert!(slot >= 1, "self drawn although include_self is off");
                counts[a as usize][slot - 1] += 1;
            }
        }
    }
    let expect = epochs as f64 / 4.0;
    let chi2: f64 = counts
        .iter()
        .flatten()
        .map(|&c| (c as f64 - expect).powi(2) / expect)
        .sum();
    // scipy.stats.chi2.ppf(0.999, 60) = 99.6 (20 anchors × 3 dof).
    assert!(chi2 < 99.6, "chi-square {chi2:.1} too large: {counts:?}");
}

#[test]
fn several_positives_per_anchor_are_consecutive_pairs() {
    let data: Arc<dyn DataSource> = Arc::new(fashion(30));
    let l = PairLoaderBuilder::new(data)
        .sampler(GpsSampler::new(ring_lists(30, 4)).with_positives(3))
        .batch_size(9)
        .workers(2)
        .build()
        .unwrap();
    assert_eq!(l.num_items(), 90);
    let batches = collect(&l, 0);
    assert_eq!(batches.len(), 10);
    let b = &batches[0];
    assert!(b.anchor_ids[0] == b.anchor_ids[1] && b.anchor_ids[1] == b.anchor_ids[2]);
    assert_ne!(b.anchor_ids[2], b.anchor_ids[3]);
}

#[test]
fn mismatched_or_out_of_range_tables_are_refused() {
    let data: Arc<dyn DataSource> = Arc::new(fashion(10));
    let short = PairLoaderBuilder::new(data.clone())
        .sampler(GpsSampler::new(ring_lists(9, 3)))
        .build();
    assert!(matches!(short, Err(Error::Mismatch { .. })));
    let bad =
        Arc::new(NeighbourLists::new(1, (0..10).map(|i| i + 5).collect(), vec![0.0; 10]).unwrap());
    let err = PairLoaderBuilder::new(data)
        .sampler(GpsSampler::new(bad))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("outside the dataset"), "{err}");
}

#[test]
fn corrupt_image_surfaces_as_err_naming_the_key() {
    let mut src = fashion(64);
    src.corrupt = vec![37];
    let data: Arc<dyn DataSource> = Arc::new(src);
    for workers in [0, 4] {
        let l = PairLoaderBuilder::new(data.clone())
            .batch_size(8)
            .workers(workers)
            .build()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let l2 = l.clone();
        std::thread::spawn(move || {
            let results: Vec<_> = l2.iter_epoch(0).collect();
            tx.send(results).unwrap();
        });
        let results = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("loader hung on a bad image");
        let err = results
            .iter()
            .find_map(|r| r.as_ref().err())
            .expect("no error surfaced");
        assert!(err.to_string().contains("mem:37"), "{err}");
        // The iterator stops after the error.
        assert!(results.last().unwrap().is_err());
    }
}

/// Counts the threads other than `owner` (the test's, which the builder may read an image on)
/// that have called `get` and not yet exited: each registers a thread-local guard on its first
/// call, whose destructor (run when the thread exits, before a `join` of it returns) counts it
/// out.
struct ThreadCount {
    owner: std::thread::ThreadId,
    live: Arc<AtomicUsize>,
    seen: Arc<AtomicUsize>,
}

impl ThreadCount {
    fn register(&self) {
        if std::thread::current().id() == self.owner {
            return;
        }
        LIVE.with(|g| {
            let mut g = g.borrow_mut();
            if g.is_none() {
                self.live.fetch_add(1, Ordering::SeqCst);
                self.seen.fetch_add(1, Ordering::SeqCst);
                *g = Some(LiveGuard(self.live.clone()));
            }
        });
    }
}

struct LiveGuard(Arc<AtomicUsize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

thread_local! {
    static LIVE: std::cell::RefCell<Option<LiveGuard>> = const { std::cell::RefCell::new(None) };
}

/// A user's source over `inner`: with `shift_ids`, its `Sample::id` is its own (database) id
/// `(index + 1) % n`; it declares `channels`; with `threads`, it counts the threads that read.
struct Custom {
    inner: VecSource,
    shift_ids: bool,
    channels: Option<u8>,
    threads: Option<ThreadCount>,
}

impl DataSource for Custom {
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn get(&self, index: usize) -> gps_ssl::Result<Sample> {
        if let Some(t) = &self.threads {
            t.register();
        }
        let mut s = self.inner.get(index)?;
        if self.shift_ids {
            s.id = ((index + 1) % self.inner.len()) as u64;
        }
        Ok(s)
    }
    fn key(&self, index: usize) -> gps_ssl::Result<String> {
        self.inner.key(index)
    }
    fn label(&self, index: usize) -> gps_ssl::Result<Option<i64>> {
        self.inner.label(index)
    }
    fn fingerprint(&self) -> String {
        self.inner.fingerprint()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn channels(&self) -> Option<u8> {
        self.channels
    }
}

#[test]
fn dropping_mid_epoch_joins_all_workers() {
    let mut src = fashion(400);
    src.delay = Duration::from_millis(2);
    let live = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(AtomicUsize::new(0));
    let data: Arc<dyn DataSource> = Arc::new(Custom {
        inner: src,
        shift_ids: false,
        channels: Some(1),
        threads: Some(ThreadCount {
            owner: std::thread::current().id(),
            live: live.clone(),
            seen: seen.clone(),
        }),
    });
    let l = PairLoaderBuilder::new(data)
        .batch_size(16)
        .workers(8)
        .prefetch(16)
        .build()
        .unwrap();
    let mut it = l.iter_epoch(0);
    it.next().unwrap().unwrap();
    // Consumer is slow: workers fill the prefetch window meanwhile.
    std::thread::sleep(Duration::from_millis(50));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(it);
        tx.send(()).unwrap();
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("drop did not join the workers in time");
    // Workers decoded (several threads did), and every one of them has exited: its
    // thread-local guard was dropped by the time `drop(it)` returned.
    assert!(seen.load(Ordering::SeqCst) >= 2, "workers did not decode");
    assert_eq!(
        live.load(Ordering::SeqCst),
        0,
        "a worker thread is still running"
    );
}

/// A source whose `Sample::id` is its own (database) id, not the index: here
/// `(index + 1) % n`, so the id of sample `i` is the next sample's index. The loader keys its
/// reuse of the previous decode by index: its batches are those of the same source with
/// `id == index` (it used to hand anchor `i + 1` the image and label of anchor `i`).
#[test]
fn sample_ids_other_than_the_index_do_not_mix_up_images() {
    let batches = |data: Arc<dyn DataSource>| {
        let l = PairLoaderBuilder::new(data)
            .batch_size(20)
            .shuffle(false)
            .workers(0)
            .seed(5)
            .build()
            .unwrap();
        collect(&l, 0)
    };
    let plain = batches(Arc::new(fashion(60)));
    let own_ids = batches(Arc::new(Custom {
        inner: fashion(60),
        shift_ids: true,
        channels: Some(1),
        threads: None,
    }));
    assert_eq!(plain.len(), own_ids.len());
    for (i, (a, b)) in plain.iter().zip(&own_ids).enumerate() {
        assert_eq!(a.labels, b.labels, "batch {i}: labels");
        assert!(
            a.view_a == b.view_a && a.view_b == b.view_b,
            "batch {i}: views"
        );
    }
}

#[test]
fn false_negative_mask_flags_shared_images() {
    let data: Arc<dyn DataSource> = Arc::new(fashion(50));
    // k = 2 ring: partner of i is i+1, so pairs (i, i+1) share image i+1.
    let l = PairLoaderBuilder::new(data)
        .sampler(GpsSampler::new(ring_lists(50, 2)))
        .batch_size(50)
        .shuffle(false)
        .workers(0)
        .build()
        .unwrap();
    let b = collect(&l, 0).remove(0);
    let m = b.false_negative_mask();
    assert!(m[3 * 50 + 4] && m[4 * 50 + 3] && !m[3 * 50 + 5]);
    assert!(b.labels.as_ref().is_some_and(|l| l.len() == 50));
}

/// With `skip_bad`, undecodable samples are skipped the same way for any worker count: a bad
/// anchor's pair leaves its batch, a bad partner is redrawn, no bad id is ever handed out, and
/// the skipped samples are listed with their keys.
#[test]
fn skip_bad_is_deterministic_and_never_hands_out_a_bad_sample() {
    let mut src = fashion(96);
    src.corrupt = vec![5, 37, 38, 90];
    let data: Arc<dyn DataSource> = Arc::new(src);
    let lists = ring_lists(96, 5);
    let build = |workers: usize| {
        PairLoaderBuilder::new(data.clone())
            .sampler(GpsSampler::new(lists.clone()))
            .recipe(AugRecipe::simclr())
            .batch_size(16)
            .workers(workers)
            .seed(7)
            .skip_bad(true)
            .build()
            .unwrap()
    };
    let one = build(0);
    let reference = collect(&one, 1);
    for workers in [1, 3] {
        let other = build(workers);
        assert!(
            collect(&other, 1) == reference,
            "{workers} workers differ from 0"
        );
        assert_eq!(other.skipped(), one.skipped());
    }
    let bad = [5u64, 37, 38, 90];
    let mut anchors: Vec<u64> = reference
        .iter()
        .flat_map(|b| b.anchor_ids.clone())
        .collect();
    anchors.sort();
    let good: Vec<u64> = (0..96).filter(|i| !bad.contains(i)).collect();
    assert_eq!(anchors, good, "every good anchor once, no bad one");
    for b in &reference {
        assert_eq!(b.view_a.len(), b.len() * b.view_len());
        for (&a, &p) in b.anchor_ids.iter().zip(&b.partner_ids) {
            assert!(!bad.contains(&p), "bad partner {p} handed out");
            assert!(
                lists.neighbours(a as usize)[1..].contains(&(p as u32)),
                "partner {p} of {a} outside B(x)"
            );
        }
    }
    let skipped: Vec<(u64, String)> = one.skipped().into_iter().map(|b| (b.id, b.key)).collect();
    assert_eq!(
        skipped,
        bad.iter()
            .map(|&i| (i, format!("mem:{i}")))
            .collect::<Vec<_>>()
    );
}

/// A neighbour table with gaps (rows only for the samples that were embedded): only ids with
/// a row are drawn, as anchors and partners — the missing ones are not even decoded.
#[test]
fn table_with_gaps_never_draws_ids_without_a_row() {
    let mut src = fashion(40);
    let missing = [3u64, 17, 18];
    src.corrupt = missing.iter().map(|&i| i as usize).collect();
    let data: Arc<dyn DataSource> = Arc::new(src);
    let ids: Vec<u64> = (0..40).filter(|i| !missing.contains(i)).collect();
    // Ring over the 37 row positions (self first), mapped to dataset ids.
    let positional = Arc::try_unwrap(ring_lists(ids.len(), 4)).unwrap();
    let table = NeighbourTable::from_row_positions(positional, &ids, Default::default()).unwrap();
    let build = |workers: usize| {
        PairLoaderBuilder::new(data.clone())
            .sampler(GpsSampler::from_table(table.clone()))
            .batch_size(8)
            .workers(workers)
            .seed(3)
            .build()
            .unwrap()
    };
    let l = build(2);
    assert_eq!(l.num_items(), 37);
    let batches = collect(&l, 0);
    assert!(batches == collect(&build(0), 0));
    let mut anchors = Vec::new();
    for b in &batches {
        for (&a, &p) in b.anchor_ids.iter().zip(&b.partner_ids) {
            let row = table.neighbours_of(a as u32).expect("anchor without a row");
            assert!(
                row[1..].contains(&(p as u32)),
                "partner {p} of {a} not in {row:?}"
            );
            anchors.push(a);
        }
    }
    anchors.sort();
    assert_eq!(anchors, ids);
}

/// Two 28×28 images, a grey one first and an RGB one, in a source that declares no format.
fn grey_then_colour(second_side: u32) -> VecSource {
    let grey = Image::new(28, 28, 1, (0..28 * 28).map(|i| (i % 251) as u8).collect());
    let n = (second_side * second_side * 3) as usize;
    let colour = Image::new(
        second_side,
        second_side,
        3,
        (0..n).map(|i| (i * 7 % 253) as u8).collect(),
    );
    VecSource::new(vec![grey, colour], vec![0, 1])
}

/// The view channels do not depend on which image sorts first: a source that declares no
/// channel count gets RGB views (grey images replicated, as torchvision's ImageFolder
/// converts), so a grey first image no longer turns every colour image grey; a source that
/// declares grey (IDX) keeps 1-channel views.
#[test]
fn view_channels_come_from_the_recipe_or_the_source_not_the_first_image() {
    let l = PairLoaderBuilder::new(Arc::new(grey_then_colour(28)))
        .batch_size(2)
        .workers(0)
        .build()
        .unwrap();
    assert_eq!(l.view_shape(), [3, 28, 28]);
    let b = collect(&l, 0).remove(0);
    assert_eq!(b.shape, [2, 3, 28, 28]);
    // Declared grey: 1 channel; an RGB image in it is an error naming the image.
    let l = PairLoaderBuilder::new(Arc::new(Custom {
        inner: grey_then_colour(28),
        shift_ids: false,
        channels: Some(1),
        threads: None,
    }))
    .batch_size(2)
    .shuffle(false)
    .workers(0)
    .build()
    .unwrap();
    assert_eq!(l.view_shape(), [1, 28, 28]);
    let err = l.iter_epoch(0).find_map(|b| b.err()).unwrap().to_string();
    assert!(err.contains("mem:1") && err.contains("3 channels"), "{err}");
    // The recipe decides when it asks for RGB.
    let l = PairLoaderBuilder::new(Arc::new(Custom {
        inner: grey_then_colour(28),
        shift_ids: false,
        channels: Some(1),
        threads: None,
    }))
    .recipe(AugRecipe::rhflip().with_rgb(true))
    .workers(0)
    .build()
    .unwrap();
    assert_eq!(l.view_shape(), [3, 28, 28]);
}

/// Without an output size from the recipe or the source, an image whose size differs from the
/// first one's is an error naming it (it used to be resized to the first one's size silently);
/// with an output size, mixed sizes are resized.
#[test]
fn mixed_sizes_need_an_output_size() {
    let l = PairLoaderBuilder::new(Arc::new(grey_then_colour(30)))
        .batch_size(2)
        .shuffle(false)
        .workers(0)
        .build()
        .unwrap();
    let err = l.iter_epoch(0).find_map(|b| b.err()).unwrap().to_string();
    assert!(
        err.contains("mem:1") && err.contains("30x30") && err.contains("output size"),
        "{err}"
    );
    let l = PairLoaderBuilder::new(Arc::new(grey_then_colour(30)))
        .recipe(AugRecipe::rhflip().with_output_size(24, 24))
        .batch_size(2)
        .workers(0)
        .build()
        .unwrap();
    assert_eq!(collect(&l, 0)[0].shape, [2, 3, 24, 24]);
}

/// Normalisation statistics whose length fits neither 1 nor the channel count are refused
/// (they used to fall back to the first value).
#[test]
fn normalize_lengths_must_fit_the_channels() {
    use gps_ssl::augment::{Augmenter, Normalize};
    let mut recipe = AugRecipe::rhflip();
    recipe.normalize = Normalize {
        mean: vec![0.5, 0.4],
        std: vec![0.2, 0.2],
    };
    let err = Augmenter::new(recipe.clone(), 3, 8, 8)
        .unwrap_err()
        .to_string();
    assert!(err.contains("mean has 2 values for 3-channel"), "{err}");
    let err = PairLoaderBuilder::new(Arc::new(grey_then_colour(28)))
        .recipe(recipe)
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("normalize"), "{err}");
    // One value (broadcast), three on grey (their mean) and C values are fine.
    Augmenter::new(AugRecipe::rhflip(), 1, 8, 8).unwrap();
    let mut half = AugRecipe::rhflip();
    half.normalize = Normalize::half();
    Augmenter::new(half, 3, 8, 8).unwrap();
}
