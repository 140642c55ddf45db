//! `gps-ssl embed` and `gps-ssl merge-embeddings`.

use anyhow::Context;
use clap::Args;
use gps_ssl::{
    embed::{EmbedJob, Embedder, PriorManifest, ShardSpec},
    progress::Progress,
};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};

/// Arguments of `gps-ssl embed`.
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Dataset source: IDX file/prefix, image folder, CIFAR batch or Parquet table.
    #[arg(long)]
    data: String,
    /// Prior manifest (TOML).
    #[arg(long, default_value = "models/efficientnet_lite0.toml")]
    prior: PathBuf,
    /// Output embeddings file (`.parquet`). With `--shard i/n` the part file is
    /// `<stem>.part-<i>-of-<n>.parquet` next to it.
    #[arg(long, default_value = "embeddings.parquet")]
    out: PathBuf,
    /// Images per batch (decoded together and written in order; run in calls of
    /// --inference-batch).
    #[arg(long, default_value_t = gps_ssl::embed::DEFAULT_BATCH_SIZE)]
    batch_size: usize,
    /// ONNX Runtime threads in all (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// ONNX Runtime sessions running batches side by side, sharing the threads (default: 2,
    /// at most --threads; 1 with --ep cuda).
    #[arg(long)]
    replicas: Option<usize>,
    /// Images per ONNX Runtime call within a batch (default: 8 on the CPU, the batch size with
    /// --ep cuda).
    #[arg(long)]
    inference_batch: Option<usize>,
    /// Decode/preprocess worker threads (default: half the cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Input resolution in pixels (default: the prior's input_size).
    #[arg(long)]
    resolution: Option<u32>,
    /// Model output to store (default: the manifest's output_name).
    #[arg(long)]
    output: Option<String>,
    /// Store raw outputs instead of L2-normalised ones.
    #[arg(long)]
    no_normalize: bool,
    /// Embed only shard `i` of `n` (0-based), writing a part file.
    #[arg(long)]
    shard: Option<ShardSpec>,
    /// Rows per Parquet row group = unit of resumption after an interruption.
    #[arg(long, default_value_t = gps_ssl::embed::DEFAULT_ROW_GROUP_ROWS)]
    row_group_rows: usize,
    /// Skip images that fail to decode; list them in `<out>.bad.json`.
    #[arg(long)]
    skip_bad: bool,
    /// ONNX Runtime execution provider: cpu | cuda[:N]. `cuda` needs the onnxruntime-gpu
    /// library (`GPS_SSL_ORT=gpu bash scripts/setup.sh`), not a cargo feature; when it cannot
    /// register, the error says what is missing (never a silent CPU run).
    #[arg(long, default_value = "cpu")]
    ep: gps_ssl::embed::ExecutionProvider,
}

/// Arguments of `gps-ssl merge-embeddings`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The merged output file.
    #[arg(long)]
    out: PathBuf,
    /// Part files written with `embed --shard i/n`, or one directory holding them.
    #[arg(required = true)]
    parts: Vec<PathBuf>,
}

/// The part file name of shard `s` for output `out`.
fn part_path(out: &Path, s: ShardSpec) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!(
        "{stem}.part-{:05}-of-{:05}.parquet",
        s.index, s.count
    ))
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn start(&self, _stage: &str, total: u64) {
        self.0.set_length(total);
        self.0.reset_eta();
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn finish(&self) {
        self.0.finish();
    }
}

/// Runs `gps-ssl embed`.
pub fn run(args: EmbedArgs) -> anyhow::Result<()> {
    let source = gps_ssl::dataset::open_source(&args.data)
        .with_context(|| format!("opening dataset {}", args.data))?;
    let prior = PriorManifest::load(&args.prior)?;
    let mut builder = Embedder::builder(prior)
        .batch_size(args.batch_size)
        .normalize(!args.no_normalize);
    if let Some(t) = args.threads {
        builder = builder.threads(t);
    }
    if let Some(r) = args.replicas {
        builder = builder.replicas(r);
    }
    if let Some(b) = args.inference_batch {
        builder = builder.inference_batch(b);
    }
    if let Some(r) = args.resolution {
        builder = builder.resolution(r);
    }
    if let Some(o) = args.output {
        builder = builder.output_name(o);
    }
    builder = builder.execution_provider(args.ep);
    let mut embedder = builder.build()?;
    let out = match args.shard {
        Some(s) => part_path(&args.out, s),
        None => args.out.clone(),
    };
    let mut job = EmbedJob::new(&out)
        .skip_bad(args.skip_bad)
        .row_group_rows(args.row_group_rows);
    if let Some(s) = args.shard {
        job = job.shard(s);
    }
    if let Some(w) = args.workers {
        job = job.workers(w);
    }
    eprintln!(
        "embedding {} with {} at {}px -> {}",
        source.describe(),
        embedder.prior().name,
        embedder.preprocess().size,
        out.display()
    );
    let bar = ProgressBar::new(source.len() as u64);
    bar.set_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} images  {per_sec}  elapsed {elapsed_precise}  ETA {eta_precise}",
    )?);
    let summary = job.run(&mut embedder, &*source, &Bar(bar))?;
    let new_rows = summary.rows + summary.skipped.len() - summary.resumed_rows;
    eprintln!(
        "wrote {} rows x {} dims to {} in {:.1}s ({:.0} images/s{}){}",
        summary.rows,
        embedder.dim(),
        summary.out.display(),
        summary.seconds,
        new_rows as f64 / summary.seconds.max(1e-9),
        if summary.resumed_rows > 0 {
            format!(", {} rows resumed", summary.resumed_rows)
        } else {
            String::new()
        },
        match &summary.bad_report {
            Some(r) => format!(
                "; skipped {} bad images, see {}",
                summary.skipped.len(),
                r.display()
            ),
            None => String::new(),
        }
    );
    Ok(())
}

/// Runs `gps-ssl merge-embeddings`.
pub fn run_merge(args: MergeArgs) -> anyhow::Result<()> {
    let mut parts = Vec::new();
    for p in &args.parts {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|e| e == "parquet"))
                .collect();
            found.sort();
            parts.extend(found);
        } else {
            parts.push(p.clone());
        }
    }
    gps_ssl::store::merge_embeddings(&parts, &args.out)?;
    eprintln!(
        "merged {} part files into {}",
        parts.len(),
        args.out.display()
    );
    Ok(())
}
