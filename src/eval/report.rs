//! The record of one training run and the tables built from many: `results.json` and a markdown
//! table shaped like the GPS-SSL paper's Table 2.

use crate::file_kind::{json_error, FileKind};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// The augmentation setting of a run, as in the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AugSetting {
    /// RHFlipAug: random horizontal flip only (`"rhflip"`).
    Rhflip,
    /// StrongAug: SimCLR / BYOL recipe (`"strong"`).
    Strong,
}

impl AugSetting {
    /// Both settings, in table order.
    pub const ALL: [AugSetting; 2] = [AugSetting::Rhflip, AugSetting::Strong];

    /// The paper's name: `RHFlipAug` or `StrongAug`.
    pub fn paper_name(self) -> &'static str {
        match self {
            AugSetting::Rhflip => "RHFlipAug",
            AugSetting::Strong => "StrongAug",
        }
    }
}

/// One training run and its evaluation: one element of `results.json`.
///
/// Accuracies are fractions in `[0, 1]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// SSL method name as shown in tables (`"SimCLR"`, `"BYOL"`, ...).
    pub method: String,
    /// Augmentation setting.
    pub aug: AugSetting,
    /// Whether positives came from GPS neighbours (true) or augmentation only (false).
    pub gps: bool,
    /// Training seed.
    pub seed: u64,
    /// Weighted k-NN accuracy (cosine, k = 20, T = 0.07 unless stated otherwise).
    pub knn_acc: f64,
    /// 1-NN accuracy.
    pub nn1_acc: f64,
    /// Linear-probe accuracy; `null` when the probe was not run.
    pub linear_acc: Option<f64>,
    /// Training epochs.
    pub epochs: usize,
    /// Wall time of training plus evaluation, in seconds.
    pub seconds: f64,
    /// Name of the GPS prior (`"lite0"`, `"pixels"`), for GPS runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior: Option<String>,
    /// Neighbours a GPS partner is drawn from, for GPS runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    /// Iterated-GPS round: 0 for a run whose lists come from the experiment's prior (or for
    /// plain SSL); `r` for a run whose lists come from round `r − 1`'s trained encoder.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub round: usize,
    /// Label purity of the GPS lists at 1 neighbour (the share of lists' first neighbours with
    /// the anchor's label), when the labels are known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purity_at_1: Option<f64>,
    /// Label purity of the GPS lists over all `k` neighbours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purity_at_k: Option<f64>,
    /// Mean training loss per epoch, in order (may be empty).
    #[serde(default)]
    pub loss_curve: Vec<f32>,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

/// Which accuracy a table or figure shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// [`RunRecord::knn_acc`].
    Knn,
    /// [`RunRecord::nn1_acc`].
    Nn1,
    /// [`RunRecord::linear_acc`].
    Linear,
}

impl Metric {
    /// The metric's value in `record`, if it was measured.
    pub fn value(self, record: &RunRecord) -> Option<f64> {
        match self {
            Metric::Knn => Some(record.knn_acc),
            Metric::Nn1 => Some(record.nn1_acc),
            Metric::Linear => record.linear_acc,
        }
    }

    /// A human-readable name (`"weighted 20-NN accuracy"`).
    pub fn title(self) -> &'static str {
        match self {
            Metric::Knn => "weighted kNN accuracy",
            Metric::Nn1 => "1-NN accuracy",
            Metric::Linear => "linear-probe accuracy",
        }
    }
}

/// Writes `records` to `path` as a pretty-printed JSON array (through a temporary file renamed
/// into place, so a reader never sees half a file).
pub fn write_results_json(path: &Path, records: &[RunRecord]) -> Result<()> {
    let json = serde_json::to_string_pretty(records).map_err(|e| Error::Serde {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    write_atomically(path, json.as_bytes())
}

/// Reads a JSON array of [`RunRecord`]s written by [`write_results_json`].
pub fn read_results_json(path: &Path) -> Result<Vec<RunRecord>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| {
        json_error(path, &text, &e, FileKind::Results, |_| {
            Some("pass the results.json of an experiment's output folder".to_string())
        })
    })
}

/// Writes `bytes` to `path` via `path.tmp` + rename.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// `dir/.name.tmp` next to `path`.
pub(crate) fn temp_path(path: &Path) -> std::path::PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Mean and sample standard deviation (`n − 1`; 0 for a single value) of `values`.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// How a record's method is shown in tables and figures: the paper's spelling for a known
/// command-line name (`barlow` → `Barlow Twins`), the name as recorded otherwise.
pub(crate) fn method_label(method: &str) -> String {
    crate::ssl::MethodKind::parse(method)
        .map(|k| k.display_name().to_string())
        .unwrap_or_else(|_| method.to_string())
}

/// One table row: a method, optionally one GPS variant (prior, k) of it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub label: String,
    pub method: String,
    /// `None`: every GPS record of the method; `Some`: only this (prior, k).
    pub variant: Option<(Option<String>, Option<usize>)>,
}

/// Rows in first-appearance order of methods. A method whose GPS runs used several
/// (prior, k) combinations gets one row per combination, labelled `Method (prior, k=K)`.
pub(crate) fn rows(records: &[RunRecord]) -> Vec<Row> {
    let mut methods: Vec<&str> = Vec::new();
    for r in records {
        if !methods.contains(&r.method.as_str()) {
            methods.push(&r.method);
        }
    }
    let mut out = Vec::new();
    for method in methods {
        let mut variants: Vec<(Option<String>, Option<usize>)> = Vec::new();
        for r in records.iter().filter(|r| r.method == method && r.gps) {
            let v = (r.prior.clone(), r.k);
            if !variants.contains(&v) {
                variants.push(v);
            }
        }
        if variants.len() <= 1 {
            out.push(Row {
                label: method_label(method),
                method: method.to_string(),
                variant: None,
            });
            continue;
        }
        for v in variants {
            let mut parts = Vec::new();
            if let Some(p) = &v.0 {
                parts.push(p.clone());
            }
            if let Some(k) = v.1 {
                parts.push(format!("k={k}"));
            }
            let label = format!("{} ({})", method_label(method), parts.join(", "));
            out.push(Row {
                label,
                method: method.to_string(),
                variant: Some(v),
            });
        }
    }
    out
}

/// The metric values of one table cell.
pub(crate) fn cell(
    records: &[RunRecord],
    row: &Row,
    aug: AugSetting,
    gps: bool,
    metric: Metric,
) -> Vec<f64> {
    records
        .iter()
        .filter(|r| r.method == row.method && r.aug == aug && r.gps == gps)
        .filter(|r| match (&row.variant, gps) {
            (Some(v), true) => r.prior == v.0 && r.k == v.1,
            _ => true,
        })
        .filter_map(|r| metric.value(r))
        .collect()
}

/// A markdown table shaped like the paper's Table 2: one row per method, columns
/// `RHFlipAug baseline | RHFlipAug GPS | StrongAug baseline | StrongAug GPS`, each cell the
/// metric in percent as `mean ± std` over the seeds found (`—` when there is no run; just the
/// mean for a single run).
///
/// ```
/// use gps_ssl::eval::{markdown_table, AugSetting, Metric, RunRecord};
/// let run = |gps: bool, seed: u64, acc: f64| RunRecord {
///     method: "SimCLR".into(), aug: AugSetting::Rhflip, gps, seed, knn_acc: acc,
///     nn1_acc: acc, linear_acc: None, epochs: 10, seconds: 60.0, prior: None, k: None,
///     round: 0, purity_at_1: None, purity_at_k: None, loss_curve: vec![],
/// };
/// let table = markdown_table(&[run(false, 0, 0.74), run(true, 0, 0.85), run(true, 1, 0.86)],
///     Metric::Knn);
/// assert!(table.contains("| SimCLR | 74.00 | 85.50 ± 0.71 | — | — |"));
/// ```
pub fn markdown_table(records: &[RunRecord], metric: Metric) -> String {
    let mut out = String::from("| Method |");
    for aug in AugSetting::ALL {
        let name = aug.paper_name();
        let _ = write!(out, " {name} baseline | {name} GPS |");
    }
    out.push_str("\n|---|---:|---:|---:|---:|\n");
    for row in rows(records) {
        let _ = write!(out, "| {} |", row.label);
        for aug in AugSetting::ALL {
            for gps in [false, true] {
                let values = cell(records, &row, aug, gps, metric);
                let text = match values.len() {
                    0 => "—".to_string(),
                    1 => format!("{:.2}", 100.0 * values[0]),
                    _ => {
                        let (m, s) = mean_std(&values);
                        format!("{:.2} ± {:.2}", 100.0 * m, 100.0 * s)
                    }
                };
                let _ = write!(out, " {text} |");
            }
        }
        out.push('\n');
    }
    out
}

/// The iterated-GPS chain a record belongs to: its prior label without the `.r<round>` suffix
/// of later rounds (`"none"` for plain SSL).
pub fn chain_label(record: &RunRecord) -> String {
    let prior = record.prior.as_deref().unwrap_or("none");
    let suffix = format!(".r{}", record.round);
    match prior.strip_suffix(&suffix) {
        Some(start) if record.round > 0 => start.to_string(),
        _ => prior.to_string(),
    }
}

/// A markdown table of iterated GPS, one row per (method, augmentation, chain start, round):
/// label purity of the lists used (@1, @k), weighted kNN and linear accuracy (%, mean ± std over
/// seeds) and wall time per run (s, mean). `None` when no record is of a later round.
///
/// ```
/// use gps_ssl::eval::{rounds_table, AugSetting, RunRecord};
/// let run = |round: usize, prior: &str, acc: f64| RunRecord {
///     method: "SimCLR".into(), aug: AugSetting::Rhflip, gps: true, seed: 0, knn_acc: acc,
///     nn1_acc: acc, linear_acc: None, epochs: 8, seconds: 300.0, prior: Some(prior.into()),
///     k: Some(5), round, purity_at_1: Some(0.8), purity_at_k: Some(0.75), loss_curve: vec![],
/// };
/// let table = rounds_table(&[run(0, "pixels", 0.80), run(1, "pixels.r1", 0.83)]).unwrap();
/// assert!(table.contains("| SimCLR | RHFlipAug | pixels | 1 | 80.0 | 75.0 | 83.00 | — | 300 |"));
/// ```
pub fn rounds_table(records: &[RunRecord]) -> Option<String> {
    if records.iter().all(|r| r.round == 0) {
        return None;
    }
    let mut keys: Vec<(String, AugSetting, String, usize)> = Vec::new();
    for r in records {
        let key = (r.method.clone(), r.aug, chain_label(r), r.round);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    // Chains in first-appearance order, each chain's rounds ascending.
    let chains: Vec<(String, AugSetting, String)> = keys.iter().fold(Vec::new(), |mut acc, k| {
        let c = (k.0.clone(), k.1, k.2.clone());
        if !acc.contains(&c) {
            acc.push(c);
        }
        acc
    });
    let mut out = String::from(
        "| Method | Aug | Start | Round | purity @1 | purity @k | kNN | linear | s / run |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    let pct = |values: &[f64], digits: usize| match values.len() {
        0 => "—".to_string(),
        1 => format!("{:.*}", digits, 100.0 * values[0]),
        _ => {
            let (m, s) = mean_std(values);
            format!("{:.*} ± {:.*}", digits, 100.0 * m, digits, 100.0 * s)
        }
    };
    for (method, aug, chain) in chains {
        let mut rounds: Vec<usize> = keys
            .iter()
            .filter(|k| k.0 == method && k.1 == aug && k.2 == chain)
            .map(|k| k.3)
            .collect();
        rounds.sort_unstable();
        for round in rounds {
            let runs: Vec<&RunRecord> = records
                .iter()
                .filter(|r| {
                    r.method == method
                        && r.aug == aug
                        && chain_label(r) == chain
                        && r.round == round
                })
                .collect();
            let take = |f: fn(&RunRecord) -> Option<f64>| -> Vec<f64> {
                runs.iter().filter_map(|r| f(r)).collect()
            };
            let seconds: Vec<f64> = runs.iter().map(|r| r.seconds).collect();
            let _ = writeln!(
                out,
                "| {} | {} | {chain} | {round} | {} | {} | {} | {} | {:.0} |",
                method_label(&method),
                aug.paper_name(),
                pct(&take(|r| r.purity_at_1), 1),
                pct(&take(|r| r.purity_at_k), 1),
                pct(&take(|r| Some(r.knn_acc)), 2),
                pct(&take(|r| r.linear_acc), 2),
                mean_std(&seconds).0,
            );
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(method: &str, gps: bool, prior: Option<&str>, k: Option<usize>, acc: f64) -> RunRecord {
        RunRecord {
            method: method.into(),
            aug: AugSetting::Strong,
            gps,
            seed: 0,
            knn_acc: acc,
            nn1_acc: acc,
            linear_acc: Some(acc),
            epochs: 1,
            seconds: 1.0,
            prior: prior.map(str::to_string),
            k,
            round: 0,
            purity_at_1: None,
            purity_at_k: None,
            loss_curve: vec![],
        }
    }

    #[test]
    fn mean_std_uses_the_sample_deviation() {
        // numpy: np.mean([1, 2, 3, 4]) = 2.5, np.std([1, 2, 3, 4], ddof=1) = 1.2909944487358056
        let (m, s) = mean_std(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        assert!((s - 1.2909944487358056).abs() < 1e-12);
        assert_eq!(mean_std(&[0.3]), (0.3, 0.0));
    }

    #[test]
    fn known_methods_are_shown_with_their_paper_names() {
        let records = [
            rec("barlow", false, None, None, 0.5),
            rec("mocov3", true, Some("lite0"), Some(5), 0.6),
            rec("my-method", true, Some("lite0"), Some(5), 0.7),
        ];
        let table = markdown_table(&records, Metric::Knn);
        for row in ["| Barlow Twins |", "| MoCo v3 |", "| my-method |"] {
            assert!(table.contains(row), "{row} missing from\n{table}");
        }
        assert!(!table.contains("| barlow |"), "{table}");
    }

    #[test]
    fn gps_variants_get_their_own_rows_and_share_the_baseline() {
        let records = [
            rec("BYOL", false, None, None, 0.5),
            rec("BYOL", true, Some("lite0"), Some(4), 0.8),
            rec("BYOL", true, Some("pixels"), Some(4), 0.7),
        ];
        let table = markdown_table(&records, Metric::Linear);
        assert!(
            table.contains("| BYOL (lite0, k=4) | — | — | 50.00 | 80.00 |"),
            "{table}"
        );
        assert!(
            table.contains("| BYOL (pixels, k=4) | — | — | 50.00 | 70.00 |"),
            "{table}"
        );
    }
}
