//! `gps-ssl neighbours`: k-NN lists from `embeddings.parquet` → `neighbours.parquet`.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use gps_ssl::{
    eval::Montage,
    knn::{
        default_purity_ks, label_purity, AdaptiveTau, HnswParams, KnnMethod, Metric,
        NeighbourBuilder, Radius,
    },
    progress::Progress,
    store::{
        EmbeddingTable, NeighbourTable, META_DATASET_FINGERPRINT, META_DATASET_LEN,
        META_EMBEDDINGS_SHA256,
    },
};
use indicatif::{ProgressBar, ProgressStyle};

/// Arguments of `gps-ssl neighbours`.
#[derive(Debug, Args)]
pub struct NeighboursArgs {
    /// Input embeddings (`embeddings.parquet`, or a folder of part files).
    #[arg(long)]
    embeddings: PathBuf,
    /// Output neighbour table.
    #[arg(long, default_value = "neighbours.parquet")]
    out: PathBuf,
    /// Neighbours per point.
    #[arg(long, default_value_t = gps_ssl::knn::DEFAULT_KNN_K)]
    k: usize,
    /// exact | hnsw | auto (cost model).
    #[arg(long, default_value = "auto")]
    method: KnnMethod,
    /// cosine | l2 (squared) | dot.
    #[arg(long, default_value = "cosine")]
    metric: Metric,
    /// Put each point itself in its own list (entry 0).
    #[arg(long)]
    include_self: bool,
    /// Fixed radius τ (metric distance units): positives are neighbours with distance <= τ.
    #[arg(long, conflicts_with = "adaptive_tau")]
    tau: Option<f32>,
    /// Adaptive τ per point: mean | mean+std | mean-std of its first --threshold-k distances.
    #[arg(long, requires = "threshold_k")]
    adaptive_tau: Option<AdaptiveTau>,
    /// Neighbours entering the adaptive τ statistic.
    #[arg(long)]
    threshold_k: Option<usize>,
    /// HNSW: re-rank refine·k graph candidates exactly.
    #[arg(long, default_value_t = gps_ssl::knn::DEFAULT_KNN_REFINE_FACTOR)]
    refine: usize,
    /// HNSW links per node.
    #[arg(long, default_value_t = gps_ssl::knn::DEFAULT_HNSW_M)]
    m: usize,
    /// HNSW build width.
    #[arg(long, default_value_t = gps_ssl::knn::DEFAULT_HNSW_EF_CONSTRUCTION)]
    ef_construction: usize,
    /// HNSW search width.
    #[arg(long, default_value_t = gps_ssl::knn::DEFAULT_HNSW_EF_SEARCH)]
    ef_search: usize,
    /// Queries checked against exact search to estimate recall (HNSW runs; 0 = skip).
    #[arg(long, default_value_t = gps_ssl::knn::DEFAULT_KNN_RECALL_SAMPLE)]
    recall_sample: usize,
    /// Seed of the recall sample.
    #[arg(long, default_value_t = gps_ssl::knn::DEFAULT_KNN_SEED)]
    seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long, default_value_t = gps_ssl::knn::DEFAULT_KNN_THREADS)]
    threads: usize,
    /// HNSW: build the graph reproducibly (sequential insertion in id order; the same input
    /// gives the same lists bit for bit). Slower build; search stays parallel.
    #[arg(long)]
    deterministic: bool,
    /// The dataset the embeddings are of: records its fingerprint and size in the table, so
    /// `train` takes it. Needed for embeddings written by another tool (they record no
    /// `gps.dataset.fingerprint`); refused when the embeddings record another dataset or have
    /// ids outside it.
    #[arg(long, value_name = "SPEC")]
    data: Option<String>,
    /// Also draw a PNG of sampled anchors, each followed by its neighbours (labels under the
    /// tiles; green outline: same label as the anchor, vermilion: another). Needs --data.
    #[arg(long, value_name = "FILE.png", requires = "data")]
    montage: Option<PathBuf>,
    /// Montage: anchors drawn (rows).
    #[arg(long, default_value_t = gps_ssl::eval::DEFAULT_MONTAGE_ROWS)]
    montage_rows: usize,
    /// Montage: neighbours shown per anchor (at most k).
    #[arg(long, default_value_t = gps_ssl::eval::DEFAULT_MONTAGE_NEIGHBOURS)]
    montage_neighbours: usize,
    /// Montage: seed of the anchor sample.
    #[arg(long, default_value_t = gps_ssl::eval::DEFAULT_MONTAGE_SEED)]
    montage_seed: u64,
}

/// Draws one indicatif bar per library stage.
struct Bars(Mutex<Option<ProgressBar>>);

impl Progress for Bars {
    fn start(&self, stage: &str, total: u64) {
        let bar = ProgressBar::new(total).with_message(stage.to_string());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:28} [{bar:40}] {pos}/{len} {elapsed_precise} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(bar);
        }
    }
    fn advance(&self, n: u64) {
        if let Ok(slot) = self.0.lock() {
            if let Some(bar) = slot.as_ref() {
                bar.inc(n);
            }
        }
    }
    fn finish(&self) {
        if let Ok(mut slot) = self.0.lock() {
            if let Some(bar) = slot.take() {
                bar.finish();
            }
        }
    }
}

/// Runs the subcommand.
pub fn run(args: NeighboursArgs) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let emb = EmbeddingTable::read(&args.embeddings)
        .with_context(|| format!("reading embeddings {}", args.embeddings.display()))?;
    let read_s = t0.elapsed().as_secs_f64();
    let radius = match (args.tau, args.adaptive_tau, args.threshold_k) {
        (Some(tau), _, _) => Radius::Fixed { tau },
        (None, Some(stat), Some(threshold_k)) => Radius::Adaptive { stat, threshold_k },
        (None, None, Some(_)) => anyhow::bail!("--threshold-k needs --adaptive-tau"),
        _ => Radius::None,
    };
    let search = NeighbourBuilder::new(&emb.vectors, emb.dim)
        .k(args.k)
        .metric(args.metric)
        .method(args.method)
        .include_self(args.include_self)
        .radius(radius)
        .hnsw(HnswParams {
            m: args.m,
            ef_construction: args.ef_construction,
            ef_search: args.ef_search,
        })
        .refine_factor(args.refine)
        .recall_sample(args.recall_sample)
        .seed(args.seed)
        .threads(args.threads)
        .deterministic(args.deterministic)
        .build()
        .with_context(|| format!("{}: invalid neighbour search", args.embeddings.display()))?;
    let out = search.run_with(&Bars(Mutex::new(None)))?;
    let purity = label_purity(&out.lists, &emb.labels, &default_purity_ks(args.k))?;

    let mut meta = out.summary.to_metadata();
    if args.embeddings.is_file() {
        meta.insert(
            META_EMBEDDINGS_SHA256.into(),
            gps_ssl::dataset::sha256_hex_file(&args.embeddings)?,
        );
    }
    if let Some(fp) = emb.metadata.get(META_DATASET_FINGERPRINT) {
        meta.insert(META_DATASET_FINGERPRINT.into(), fp.clone());
    }
    // The dataset's size: with rows skipped as bad (`embed --skip-bad`) the table has fewer
    // rows than the dataset, and the loader checks the table against the dataset by it.
    if let Some(len) = emb.metadata.get(META_DATASET_LEN) {
        meta.insert(META_DATASET_LEN.into(), len.clone());
    }
    let mut source = None;
    if let Some(spec) = &args.data {
        let data = gps_ssl::dataset::open_source(spec)?;
        let source = source.insert(data);
        let fingerprint = source.fingerprint();
        if let Some(recorded) = emb.metadata.get(META_DATASET_FINGERPRINT) {
            if *recorded != fingerprint {
                anyhow::bail!(
                    "{}: the embeddings record dataset fingerprint {recorded}, but --data {spec} \
                     has {fingerprint}",
                    args.embeddings.display()
                );
            }
        }
        if let Some((row, id)) = emb
            .ids
            .iter()
            .enumerate()
            .find(|(_, &id)| id as usize >= source.len())
        {
            anyhow::bail!(
                "{}: row {row} has id {id}, outside --data {spec} ({} samples)",
                args.embeddings.display(),
                source.len()
            );
        }
        meta.insert(META_DATASET_FINGERPRINT.into(), fingerprint);
        meta.insert(META_DATASET_LEN.into(), source.len().to_string());
    }
    if let Some(p) = &purity {
        meta.insert("gps.knn.purity".into(), serde_json::to_string(p)?);
    }
    meta.insert("gps.version".into(), env!("CARGO_PKG_VERSION").into());
    let fingerprint_line = meta
        .get(META_DATASET_FINGERPRINT)
        .cloned()
        .unwrap_or_else(|| "unknown (pass --data to record it)".into());
    // The search ran over row positions; the table stores dataset ids (gaps where bad
    // samples were skipped).
    let table = NeighbourTable::from_row_positions(out.lists, &emb.ids, meta)
        .with_context(|| format!("{}: column `id`", args.embeddings.display()))?;
    let gaps = table
        .ids()
        .last()
        .map_or(0, |&l| (l as usize + 1).saturating_sub(table.ids().len()));
    table
        .write(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let bytes = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    let montage = match (&args.montage, &source) {
        (Some(path), Some(source)) => {
            let layout = Montage::builder()
                .rows(args.montage_rows)
                .neighbours(args.montage_neighbours)
                .seed(args.montage_seed)
                .build()?
                .write(path, &table, source.as_ref())
                .with_context(|| format!("writing the montage {}", path.display()))?;
            Some((path, layout))
        }
        _ => None,
    };

    let s = &out.summary;
    println!(
        "neighbours: {} points × {} dims, k={} metric={} self={}{}",
        s.n,
        s.dim,
        s.k,
        s.metric,
        s.include_self,
        if gaps > 0 {
            format!(" ({gaps} dataset ids without an embedding, e.g. skipped as bad)")
        } else {
            String::new()
        }
    );
    let recorded = |key: &str| emb.metadata.get(key).map_or("unknown", String::as_str);
    println!(
        "  prior      {} (sha256 {}); dataset fingerprint {fingerprint_line}",
        recorded("gps.prior.name"),
        recorded("gps.prior.sha256"),
    );
    println!(
        "  method     {} (asked {}){}",
        s.method,
        s.requested,
        s.hnsw
            .map(|h| format!(
                " M={} ef_c={} ef_s={} refine={}",
                h.m, h.ef_construction, h.ef_search, s.refine_factor
            ))
            .unwrap_or_default()
    );
    println!(
        "  time       read {read_s:.2} s, search {:.2} s, recall check {:.2} s",
        s.search_seconds, s.recall_seconds
    );
    match s.recall_estimate {
        Some(r) if s.recall_queries > 0 => println!(
            "  recall@k   {r:.4} (on {} sampled queries)",
            s.recall_queries
        ),
        Some(r) => println!("  recall@k   {r:.4} (exact)"),
        None => println!("  recall@k   not measured"),
    }
    println!(
        "  radius     {} (mean {:.2} positives per point)",
        serde_json::to_string(&s.radius)?,
        s.mean_valid
    );
    match purity {
        Some(p) => {
            let cells: Vec<String> = p
                .iter()
                .map(|p| format!("@{}={:.4}", p.k, p.purity))
                .collect();
            println!("  purity     {}", cells.join(" "));
        }
        None => println!("  purity     (no labels)"),
    }
    println!(
        "  output     {} ({bytes} bytes, {:.1} bytes/point)",
        args.out.display(),
        bytes as f64 / s.n as f64
    );
    if let Some((path, layout)) = montage {
        let shown: usize = layout.rows.iter().map(|r| r.neighbours.len()).sum();
        let labels = if layout.labelled {
            format!(
                "; {} of {shown} neighbours share their anchor's label",
                layout.matches()
            )
        } else {
            String::new()
        };
        println!(
            "  montage    {} ({} anchors × up to {} neighbours{labels})",
            path.display(),
            layout.rows.len(),
            args.montage_neighbours.min(s.k),
        );
    }
    Ok(())
}
