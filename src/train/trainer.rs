//! The method-agnostic training loop.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;

use super::checkpoint::{Checkpoint, Position, Saved};
use super::config::TrainConfig;
use super::identity::differences;
use super::log::{CsvLog, StepRecord};
use super::optim::Optimizer;
use super::remine::{load_remined, mine_lists, remined_file, save_remined, RemineConfig};
use super::schedule::LrSchedule;
use super::source::PairSource;
use crate::ssl::{export_tensors, Method};
use crate::{
    knn::NeighbourLists,
    loader::PairLoader,
    progress::Progress,
    sampler::{GpsSampler, MixSampler, PositiveSampler},
    Error, Result,
};
use burn::module::Module;
use std::sync::Arc;

/// File name of the run configuration inside the output directory.
pub const CONFIG_FILE: &str = "config.json";
/// File name of the latest checkpoint inside the output directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.bin";
/// File name of the per-step log inside the output directory.
pub const LOG_FILE: &str = "log.csv";

/// The lock of the run directory `dir` (on `checkpoint.bin`), held by whoever writes into it.
fn lock_run_dir(dir: &Path) -> Result<crate::store::embeddings::OutputLock> {
    crate::store::embeddings::OutputLock::acquire(&dir.join(CHECKPOINT_FILE))
}

/// Whether `device` is burn's Flex CPU device (with or without autodiff).
fn on_host(device: &Device) -> bool {
    device.clone().without_autodiff() == Device::flex()
}

/// Serialises seeded network initialisation (burn's RNG is shared by the process).
static INIT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Seeds `device`'s RNG with `seed` and runs `build` while holding a process-wide lock, so the
/// random draws of `build` are reproducible even when other threads draw at the same time.
/// Burn's RNG is global to the process: a bare `device.seed(..)` followed by draws can
/// interleave with another thread's seed and draws. Burn also initialises parameters lazily
/// (on first use), so `build` must materialise them before returning — [`seeded_module`] does
/// that for a [`Module`]; [`Method::new`] does it itself, and [`Trainer::new`] builds through
/// this function.
pub fn seeded<R>(device: &Device, seed: u64, build: impl FnOnce() -> R) -> R {
    let _guard = INIT_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    device.seed(seed);
    build()
}

/// Builds a module with [`seeded`] and draws all its lazily initialised parameters before the
/// lock is released: the same `seed` gives the same weights whatever other threads do.
///
/// ```
/// use burn::tensor::Device;
/// let device = Device::flex();
/// let cfg = gps_ssl::ssl::MlpConfig::new(4, 6, 2, 2);
/// let a = gps_ssl::train::seeded_module(&device, 7, || cfg.init(&device)).unwrap();
/// let b = gps_ssl::train::seeded_module(&device, 7, || cfg.init(&device)).unwrap();
/// let c = gps_ssl::train::seeded_module(&device, 8, || cfg.init(&device)).unwrap();
/// assert_eq!(gps_ssl::ssl::export_tensors(&a), gps_ssl::ssl::export_tensors(&b));
/// assert_ne!(gps_ssl::ssl::export_tensors(&a), gps_ssl::ssl::export_tensors(&c));
/// ```
pub fn seeded_module<M: Module>(
    device: &Device,
    seed: u64,
    build: impl FnOnce() -> Result<M>,
) -> Result<M> {
    seeded(device, seed, || {
        let module = build()?;
        // Reading every tensor forces burn's lazy initialisation, inside the lock.
        let _ = export_tensors(&module);
        Ok(module)
    })
}

/// Trains one [`Method`] on batches from a [`PairSource`], with schedule, logging and
/// checkpoints. Create with [`Trainer::new`] or [`Trainer::resume`].
#[derive(Debug)]
pub struct Trainer {
    config: TrainConfig,
    /// `config.run_hash()`, recorded in every checkpoint.
    run_hash: String,
    method: Method,
    optimizer: Optimizer,
    schedule: LrSchedule,
    batches_per_epoch: usize,
    position: Position,
    out_dir: Option<PathBuf>,
    log: Option<CsvLog>,
    device: Device,
    /// The re-mined lists in force (`(epoch mined at, lists)`), see [`Trainer::fit_loader`].
    remined: Option<(usize, Arc<NeighbourLists>)>,
}

impl Trainer {
    /// A fresh run of `config` with `batches_per_epoch` batches per epoch on `device` (an
    /// autodiff device, e.g. `Device::flex().autodiff()`). The device is seeded with
    /// `config.seed` before the networks are built, through [`seeded`]; the initialisation is
    /// reproducible as long as other threads draw from burn's RNG only through [`seeded`] too.
    pub fn new(config: TrainConfig, batches_per_epoch: usize, device: &Device) -> Result<Self> {
        config.validate()?;
        let run_hash = config.run_hash()?;
        if batches_per_epoch == 0 {
            return Err(Error::invalid("source", "yields no batch per epoch"));
        }
        // The weights are drawn on the host, on burn's Flex device, whatever `device` is: each
        // backend has its own RNG, and drawing on the host gives every device the same initial
        // weights for a seed. Burn's RNG is process-global: seed and draw under one lock so two
        // trainers built on different threads cannot interleave their draws.
        let on_host = on_host(device);
        let host = if on_host {
            device.clone()
        } else {
            Device::flex().autodiff()
        };
        let drawn = seeded(&host, config.seed, || {
            Method::new(config.method.clone(), &config.network, &host)
        })?;
        let method = if on_host {
            drawn
        } else {
            // Built on `device` (its own draws are overwritten), then given the host's weights.
            Method::new(config.method.clone(), &config.network, device)?
                .load_state(drawn.state())?
        }
        .with_false_negative_masking(config.mask_false_negatives);
        let total_steps = (config.epochs * batches_per_epoch) as u64;
        let schedule = LrSchedule {
            base_lr: config.lr,
            warmup_steps: (config.warmup_epochs * batches_per_epoch as f64).round() as u64,
            total_steps,
            final_ratio: config.final_lr_ratio,
        };
        Ok(Self {
            optimizer: Optimizer::new(config.optimizer.clone()),
            config,
            run_hash,
            method,
            schedule,
            batches_per_epoch,
            position: Position::default(),
            out_dir: None,
            log: None,
            device: device.clone(),
            remined: None,
        })
    }

    /// Writes outputs (`config.json`, `log.csv`, `checkpoint.bin`) into `dir`, creating it.
    ///
    /// `dir` may be new or empty, or hold this same run ([`TrainConfig::run_hash`]) no further
    /// than the trainer stands: `log.csv` keeps the rows before the trainer's step and the
    /// rest is rewritten. Anything else is refused before a file is touched:
    /// - a `config.json` of another run: [`Error::Mismatch`] naming the first field that
    ///   differs (an unreadable one: its error);
    /// - a `checkpoint.bin` of another run ([`Checkpoint::run_hash`]): [`Error::Mismatch`];
    /// - a `checkpoint.bin` of this run further on than the trainer (e.g. a fresh
    ///   [`Trainer::new`] pointed at a run in progress): [`Error::InvalidInput`]; restore it
    ///   first ([`Trainer::with_checkpoint`], or [`Trainer::resume`]);
    /// - a directory another trainer is writing into (in this process or another: the lock
    ///   `checkpoint.bin.lock`, which [`fit`](Self::fit) holds while it trains and this call
    ///   while it writes): [`Error::InvalidInput`].
    pub fn with_output_dir(mut self, dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let _lock = lock_run_dir(&dir)?;
        self.check_output_dir(&dir)?;
        self.config.save(&dir.join(CONFIG_FILE))?;
        self.log = Some(CsvLog::open(&dir.join(LOG_FILE), self.position.step)?);
        self.out_dir = Some(dir);
        Ok(self)
    }

    /// Refuses an output directory that holds another run, or this run further on than the
    /// trainer stands (see [`with_output_dir`](Self::with_output_dir)).
    fn check_output_dir(&self, dir: &Path) -> Result<()> {
        let config = dir.join(CONFIG_FILE);
        if config.exists() {
            let saved = TrainConfig::load(&config)?;
            let diffs = differences(&saved.identity()?, &self.config.identity()?)?;
            if let Some((field, was, now)) = diffs.into_iter().next() {
                return Err(Error::mismatch(
                    format!(
                        "{}: the directory holds another run; run configuration `{field}`",
                        config.display()
                    ),
                    was,
                    now,
                ));
            }
        }
        let checkpoint = dir.join(CHECKPOINT_FILE);
        if checkpoint.exists() {
            let saved = Saved::read(&checkpoint)?;
            if let Some(hash) = saved.run_hash.filter(|h| *h != self.run_hash) {
                return Err(Error::mismatch(
                    format!(
                        "{}: the directory holds another run; run hash",
                        checkpoint.display()
                    ),
                    hash,
                    &self.run_hash,
                ));
            }
            if saved.position.step > self.position.step {
                return Err(Error::invalid(
                    "output directory",
                    format!(
                        "{} holds this run at step {}, the trainer is at step {}: restore the \
                         checkpoint first (Trainer::resume or with_checkpoint) or choose another \
                         directory",
                        checkpoint.display(),
                        saved.position.step,
                        self.position.step
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Resumes the run in `dir` from its `config.json` and `checkpoint.bin`.
    pub fn resume(
        dir: impl AsRef<Path>,
        batches_per_epoch: usize,
        device: &Device,
    ) -> Result<Self> {
        let dir = dir.as_ref();
        let config = TrainConfig::load(&dir.join(CONFIG_FILE))?;
        Self::resume_with(config, dir, batches_per_epoch, device)
    }

    /// Resumes the run in `dir` with `config`, which must be the same run as the saved
    /// `config.json`: the same [`TrainConfig::run_hash`]. Settings outside the identity (worker
    /// count, `checkpoint_every`, file locations) may differ and are saved as the new
    /// `config.json`. Otherwise errors with [`Error::Mismatch`] naming the first field that
    /// differs and both values.
    pub fn resume_with(
        config: TrainConfig,
        dir: impl AsRef<Path>,
        batches_per_epoch: usize,
        device: &Device,
    ) -> Result<Self> {
        let dir = dir.as_ref();
        let path = dir.join(CONFIG_FILE);
        let saved = TrainConfig::load(&path)?;
        let diffs = differences(&saved.identity()?, &config.identity()?)?;
        if let Some((field, was, now)) = diffs.into_iter().next() {
            return Err(Error::mismatch(
                format!("{}: run configuration `{field}`", path.display()),
                was,
                now,
            ));
        }
        Self::new(config, batches_per_epoch, device)?
            .with_checkpoint(&dir.join(CHECKPOINT_FILE))?
            .with_output_dir(dir)
    }

    /// The run configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Where the run writes its outputs, when it does.
    pub fn output_dir(&self) -> Option<&Path> {
        self.out_dir.as_deref()
    }

    /// The method being trained (its `online().backbone` is the learned encoder).
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// Where training stands.
    pub fn position(&self) -> Position {
        self.position
    }

    /// Total optimiser steps of the run.
    pub fn total_steps(&self) -> u64 {
        self.schedule.total_steps
    }

    /// The state needed to resume exactly.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            position: self.position,
            seed: self.config.seed,
            run_hash: Some(self.run_hash.clone()),
            method: self.method.state(),
            optimizer: self.optimizer.state(),
        }
    }

    /// Writes [`checkpoint`](Self::checkpoint) to `path`.
    pub fn save_checkpoint(&self, path: &Path) -> Result<()> {
        self.checkpoint().save(path)
    }

    /// Restores a checkpoint of a run with the same configuration. Draws no random numbers:
    /// the networks built by [`Trainer::new`] (under [`seeded`]) receive the saved tensors.
    ///
    /// A checkpoint of another run (its [`Checkpoint::run_hash`] is not this configuration's
    /// [`TrainConfig::run_hash`]) is refused with [`Error::Mismatch`]; one written before the
    /// hash was recorded is matched on its seed.
    pub fn with_checkpoint(mut self, path: &Path) -> Result<Self> {
        let ck = Checkpoint::load(path)?;
        if let Some(hash) = ck.run_hash.as_ref().filter(|h| **h != self.run_hash) {
            return Err(Error::mismatch(
                format!("{}: run hash (a checkpoint of another run)", path.display()),
                &self.run_hash,
                hash,
            ));
        }
        if ck.seed != self.config.seed {
            return Err(Error::mismatch(
                format!("{}: seed", path.display()),
                self.config.seed,
                ck.seed,
            ));
        }
        self.method = self
            .method
            .load_state(ck.method)?
            .with_false_negative_masking(self.config.mask_false_negatives);
        self.optimizer.load_state(ck.optimizer, &self.device)?;
        self.position = ck.position;
        Ok(self)
    }

    /// Trains until the run's last epoch ends or `max_steps` more steps were taken, whichever is
    /// first, and returns the records of the steps taken. Checkpoints (when an output directory
    /// is set) every `checkpoint_every` steps, at each epoch end and when stopping.
    pub fn fit(
        &mut self,
        source: &mut dyn PairSource,
        max_steps: Option<u64>,
        progress: &dyn Progress,
    ) -> Result<Vec<StepRecord>> {
        if source.batches_per_epoch() != self.batches_per_epoch {
            return Err(Error::mismatch(
                "batches per epoch",
                self.batches_per_epoch,
                source.batches_per_epoch(),
            ));
        }
        // One writer per run directory while training: another trainer's `fit` or
        // `with_output_dir` on it is refused until this returns.
        let _lock = self.out_dir.as_deref().map(lock_run_dir).transpose()?;
        let total = self.schedule.total_steps;
        let stop_at = max_steps.map_or(total, |m| (self.position.step + m).min(total));
        progress.start("train", stop_at.saturating_sub(self.position.step));
        let mut records = Vec::new();
        'epochs: while self.position.step < stop_at {
            let Position {
                epoch,
                batch: start,
                ..
            } = self.position;
            // When the step started waiting for its batch (the first one: for the loader's
            // start too): the loader's share of the step, `StepRecord::data_seconds`.
            let mut waiting = Instant::now();
            let batches = source.epoch(epoch, start)?;
            for (i, batch) in batches.enumerate() {
                let batch = batch?;
                let data_seconds = waiting.elapsed().as_secs_f64();
                if batch.len() < 2 {
                    return Err(Error::invalid(
                        "batch",
                        format!("epoch {epoch} batch {}: fewer than 2 pairs", start + i),
                    ));
                }
                let t0 = Instant::now();
                let step = self.position.step;
                let lr = self.schedule.lr(step);
                let stats = self
                    .method
                    .step(&batch, &mut self.optimizer, lr, step, total)?;
                let record = StepRecord {
                    step,
                    epoch,
                    batch: start + i,
                    lr,
                    momentum: stats.momentum,
                    loss: stats.loss,
                    embedding_std: stats.embedding_std,
                    seconds: t0.elapsed().as_secs_f64(),
                    data_seconds: Some(data_seconds),
                };
                tracing::debug!(step, loss = stats.loss, std = stats.embedding_std, "step");
                if let Some(log) = &mut self.log {
                    log.write(&record)?;
                }
                records.push(record);
                progress.advance(1);
                self.position.step += 1;
                self.position.batch = start + i + 1;
                if self.position.batch >= self.batches_per_epoch {
                    self.position.epoch += 1;
                    self.position.batch = 0;
                    self.autosave()?;
                    continue 'epochs;
                }
                let every = self.config.checkpoint_every;
                if every > 0 && self.position.step.is_multiple_of(every) {
                    self.autosave()?;
                }
                waiting = Instant::now();
                if self.position.step >= stop_at {
                    break 'epochs;
                }
            }
            // The source ended the epoch early: move on.
            self.position.epoch += 1;
            self.position.batch = 0;
        }
        self.autosave()?;
        progress.finish();
        Ok(records)
    }

    /// Trains on the batches of `loader` like [`fit`](Self::fit), re-mining the neighbour lists
    /// as the run's [`TrainConfig::remine`] says (see [`crate::train::RemineConfig`]; without
    /// it this is `fit`). Re-mined lists are written to the output directory before the epochs
    /// that use them and read back on resume, so a resumed run draws the same partners.
    pub fn fit_loader(
        &mut self,
        loader: &PairLoader,
        max_steps: Option<u64>,
        progress: &dyn Progress,
    ) -> Result<Vec<StepRecord>> {
        let Some(remine) = self.config.remine.clone() else {
            return self.fit(&mut loader.clone(), max_steps, progress);
        };
        let samples = loader.dataset().len();
        if loader.sampler().anchors().is_some_and(|ids| {
            ids.len() != samples || ids.iter().enumerate().any(|(i, &id)| id as usize != i)
        }) {
            return Err(Error::invalid(
                "re-mining",
                "needs a neighbour table with a row for every sample (this one has gaps: \
                 samples skipped when embedding)",
            ));
        }
        let total = self.schedule.total_steps;
        let stop_at = max_steps.map_or(total, |m| (self.position.step + m).min(total));
        let mut records = Vec::new();
        while self.position.step < stop_at {
            let mined_at = remine.mined_at(self.position.epoch);
            let mut source = if mined_at == 0 {
                loader.clone()
            } else {
                let lists = self.remined_lists(&remine, mined_at, loader, progress)?;
                let mixed = MixSampler::new(
                    Arc::new(GpsSampler::new(lists)),
                    loader.sampler().clone(),
                    remine.mix,
                )?;
                loader.with_sampler(Arc::new(mixed) as Arc<dyn PositiveSampler>)?
            };
            let left = (self.batches_per_epoch - self.position.batch) as u64;
            let steps = left.min(stop_at - self.position.step);
            records.extend(self.fit(&mut source, Some(steps), progress)?);
        }
        Ok(records)
    }

    /// The lists mined at the start of epoch `mined_at`: kept in memory, read from the run
    /// folder, or mined now from the online backbone (only at that epoch's first batch, when
    /// the weights are the ones they must come from).
    fn remined_lists(
        &mut self,
        remine: &RemineConfig,
        mined_at: usize,
        loader: &PairLoader,
        progress: &dyn Progress,
    ) -> Result<Arc<NeighbourLists>> {
        if let Some((at, lists)) = &self.remined {
            if *at == mined_at {
                return Ok(lists.clone());
            }
        }
        let dataset = loader.dataset().clone();
        let fingerprint = dataset.fingerprint();
        let samples = dataset.len();
        let run_hash = self.config.run_hash()?;
        let saved = self
            .out_dir
            .as_deref()
            .filter(|dir| remined_file(dir, mined_at).is_file());
        let lists = if let Some(dir) = saved {
            tracing::info!(epoch = mined_at, "reading the re-mined neighbour lists");
            load_remined(dir, mined_at, &run_hash, &fingerprint, samples)?
        } else {
            let at_boundary = self.position.epoch == mined_at && self.position.batch == 0;
            if !at_boundary {
                let missing = self.out_dir.as_deref().map_or_else(
                    || "they were not saved (no output directory)".to_string(),
                    |dir| format!("{} is missing", remined_file(dir, mined_at).display()),
                );
                return Err(Error::invalid(
                    "re-mining",
                    format!(
                        "continuing at epoch {} batch {} needs the lists re-mined at the start \
                         of epoch {mined_at}, and {missing}",
                        self.position.epoch, self.position.batch
                    ),
                ));
            }
            let mined = mine_lists(
                &self.method.online().backbone,
                dataset,
                loader.recipe(),
                remine.k,
                &self.device,
                progress,
            )?;
            tracing::info!(epoch = mined_at, purity = ?mined.purity, "re-mined the neighbour lists");
            if let Some(dir) = &self.out_dir {
                save_remined(dir, mined_at, &run_hash, &fingerprint, &mined)?;
            }
            mined.lists
        };
        let lists = Arc::new(lists);
        self.remined = Some((mined_at, lists.clone()));
        Ok(lists)
    }

    fn autosave(&self) -> Result<()> {
        match &self.out_dir {
            Some(dir) => self.save_checkpoint(&dir.join(CHECKPOINT_FILE)),
            None => Ok(()),
        }
    }
}
