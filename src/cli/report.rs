//! `gps-ssl report`: turn a `results.json` (one record per run) into the markdown table and the
//! PNG figure, e.g. after adding runs by hand or to re-draw with another metric.

use anyhow::Context;
use gps_ssl::eval::{markdown_table, read_results_json, write_figure_with_references, Metric};
use gps_ssl::experiment::{reference_lines, PriorReport};
use std::path::PathBuf;

/// Which accuracy the table and figure show.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum MetricArg {
    /// Weighted kNN accuracy (cosine, k=20, T=0.07).
    Knn,
    /// 1-NN accuracy.
    Nn1,
    /// Linear-probe accuracy.
    Linear,
}

/// Write `table.md` and `report.png` from a `results.json` (with the priors' own kNN accuracy
/// as reference lines when a `priors.json` lies beside it).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The `results.json` to read (a JSON array of run records).
    #[arg(long)]
    pub results: PathBuf,
    /// Output folder (created if missing); gets `table.md` and `report.png`.
    #[arg(long)]
    pub out: PathBuf,
    /// Accuracy shown in the table and the bars.
    #[arg(long, value_enum, default_value = "knn")]
    pub metric: MetricArg,
}

/// Runs `gps-ssl report`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let records = read_results_json(&args.results)?;
    let metric = match args.metric {
        MetricArg::Knn => Metric::Knn,
        MetricArg::Nn1 => Metric::Nn1,
        MetricArg::Linear => Metric::Linear,
    };
    std::fs::create_dir_all(&args.out).with_context(|| format!("{}", args.out.display()))?;
    let table = format!(
        "{} (%), mean ± std over seeds\n\n{}",
        metric.title(),
        markdown_table(&records, metric)
    );
    let table_path = args.out.join("table.md");
    std::fs::write(&table_path, &table).with_context(|| format!("{}", table_path.display()))?;
    // The priors' own kNN accuracy, from the experiment's priors.json beside results.json.
    let priors_path = args.results.with_file_name("priors.json");
    let references = if matches!(metric, Metric::Knn) && priors_path.is_file() {
        let text = std::fs::read_to_string(&priors_path)
            .with_context(|| format!("reading {}", priors_path.display()))?;
        let priors: Vec<PriorReport> = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: not the priors.json of an experiment (move it away to draw without the \
                 priors' reference lines)",
                priors_path.display()
            )
        })?;
        reference_lines(&priors)
    } else {
        Vec::new()
    };
    let png = args.out.join("report.png");
    write_figure_with_references(&png, &records, metric, &references)?;
    println!("{table}");
    eprintln!("wrote {} and {}", table_path.display(), png.display());
    Ok(())
}
