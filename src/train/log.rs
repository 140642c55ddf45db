//! Per-step training log (`log.csv`).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// One logged step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepRecord {
    /// 0-based optimiser step.
    pub step: u64,
    /// Epoch of the step.
    pub epoch: usize,
    /// Batch within the epoch.
    pub batch: usize,
    /// Learning rate used.
    pub lr: f64,
    /// EMA momentum used (0 without a target network).
    pub momentum: f64,
    /// Loss.
    pub loss: f32,
    /// Collapse indicator: mean per-dimension std of the L2-normalised projections.
    pub embedding_std: f32,
    /// Wall time of the step in seconds (forward, backward, optimiser update).
    pub seconds: f64,
    /// Wall time the step waited for its batch, in seconds: from the end of the previous step
    /// (or the start of the epoch's batches) until the loader handed the batch over. The loader's
    /// share of training is `data_seconds / (data_seconds + seconds)`; near 0 when its workers
    /// keep up. `None` for rows of logs written before the column existed.
    pub data_seconds: Option<f64>,
}

/// Header of `log.csv`. Logs written before `data_seconds` existed have the first eight
/// columns only; [`read_log`] reads both.
pub const LOG_HEADER: &str = "step,epoch,batch,lr,momentum,loss,embedding_std,seconds,data_seconds";

/// The header of logs written before the `data_seconds` column.
const LOG_HEADER_V1: &str = "step,epoch,batch,lr,momentum,loss,embedding_std,seconds";

/// Appends [`StepRecord`]s to a CSV file, one line per step, flushed each step.
#[derive(Debug)]
pub struct CsvLog {
    path: PathBuf,
    file: std::fs::File,
}

impl CsvLog {
    /// Opens `path`, keeping the rows of steps before `from_step` (a resumed run rewrites
    /// what came after its checkpoint). A log that exists but cannot be read (permissions, not
    /// UTF-8) is an error, and is left as it is.
    pub fn open(path: &Path, from_step: u64) -> Result<Self> {
        let mut kept = String::from(LOG_HEADER);
        kept.push('\n');
        let old = match std::fs::read_to_string(path) {
            Ok(old) => old,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            // Unreadable (permissions, not UTF-8, ...): refused rather than truncated.
            Err(e) => return Err(Error::io(path, e)),
        };
        for line in old.lines().skip(1) {
            let step = line.split(',').next().and_then(|s| s.parse::<u64>().ok());
            if step.is_some_and(|s| s < from_step) {
                kept.push_str(line);
                kept.push('\n');
            }
        }
        std::fs::write(path, kept).map_err(|e| Error::io(path, e))?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one record.
    pub fn write(&mut self, r: &StepRecord) -> Result<()> {
        let data = r.data_seconds.map_or(String::new(), |d| format!("{d:.4}"));
        writeln!(
            self.file,
            "{},{},{},{:.6e},{:.6},{:.7},{:.6},{:.4},{data}",
            r.step, r.epoch, r.batch, r.lr, r.momentum, r.loss, r.embedding_std, r.seconds
        )
        .map_err(|e| Error::io(&self.path, e))
    }
}

/// Reads back the rows of a `log.csv` written by [`CsvLog`], in step order: the whole run, also
/// after a resume (whose [`crate::train::Trainer::fit`] returns only the steps it took).
///
/// Errors name the file and the 1-based line of a row that is not the eight columns of
/// [`LOG_HEADER`] (integers for `step,epoch,batch`, numbers for the rest, `data_seconds` a
/// number or empty). A log of an older version (eight columns, [`StepRecord::data_seconds`]
/// `None`) reads too, also one a newer version resumed, whose rows before the resume have
/// eight columns.
pub fn read_log(path: &Path) -> Result<Vec<StepRecord>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut lines = text.lines();
    if !matches!(lines.next(), Some(LOG_HEADER | LOG_HEADER_V1)) {
        return Err(Error::format(
            path,
            format!("line 1: expected the header `{LOG_HEADER}`"),
        ));
    }
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let row = parse_row(line).ok_or_else(|| {
            Error::format(
                path,
                format!(
                    "line {}: expected `{LOG_HEADER}` (integer step, epoch and batch, then \
                     numbers), got `{line}`",
                    i + 2
                ),
            )
        })?;
        rows.push(row);
    }
    rows.sort_by_key(|r| r.step);
    Ok(rows)
}

/// The loss column of [`read_log`], in step order.
pub fn read_losses(path: &Path) -> Result<Vec<f32>> {
    Ok(read_log(path)?.into_iter().map(|r| r.loss).collect())
}

fn parse_row(line: &str) -> Option<StepRecord> {
    let f: Vec<&str> = line.split(',').collect();
    let data_seconds = match f.get(8) {
        _ if f.len() > 9 || f.len() < 8 => return None,
        None | Some(&"") => None,
        Some(d) => Some(d.parse().ok()?),
    };
    Some(StepRecord {
        step: f[0].parse().ok()?,
        epoch: f[1].parse().ok()?,
        batch: f[2].parse().ok()?,
        lr: f[3].parse().ok()?,
        momentum: f[4].parse().ok()?,
        loss: f[5].parse().ok()?,
        embedding_std: f[6].parse().ok()?,
        seconds: f[7].parse().ok()?,
        data_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(step: u64, loss: f32) -> StepRecord {
        StepRecord {
            step,
            epoch: 0,
            batch: step as usize,
            lr: 0.1,
            momentum: 0.0,
            loss,
            embedding_std: 0.1,
            seconds: 0.5,
            data_seconds: Some(0.125),
        }
    }

    #[test]
    fn a_resumed_log_keeps_the_earlier_steps_and_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.csv");
        let mut log = CsvLog::open(&path, 0).unwrap();
        for s in 0..4 {
            log.write(&record(s, 10.0 - s as f32)).unwrap();
        }
        drop(log);
        // Resume from a checkpoint at step 2: steps 2 and 3 are rewritten with new values.
        let mut log = CsvLog::open(&path, 2).unwrap();
        log.write(&record(2, 0.25)).unwrap();
        log.write(&record(3, 0.125)).unwrap();
        drop(log);
        assert_eq!(read_losses(&path).unwrap(), vec![10.0, 9.0, 0.25, 0.125]);
        let rows = read_log(&path).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.step).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        assert_eq!(rows[2], record(2, 0.25));
    }

    /// A log that cannot be read is an error and stays as it was: it used to be truncated to
    /// its header as if it did not exist.
    #[test]
    fn an_unreadable_log_is_refused_not_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.csv");
        let mut bytes = format!("{LOG_HEADER}\n0,0,0,0.1,0,1.5,0.1,0.2,\n").into_bytes();
        bytes.extend_from_slice(&[0xff, 0xfe, b'\n']);
        std::fs::write(&path, &bytes).unwrap();
        let err = CsvLog::open(&path, 5).unwrap_err().to_string();
        assert!(err.contains("log.csv"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn a_bad_row_is_named_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.csv");
        std::fs::write(
            &path,
            format!("{LOG_HEADER}\n0,0,0,0.1,0,1.5,0.1,0.2\n1,0,1,0.1,0,oops,0.1,0.2\n"),
        )
        .unwrap();
        let err = read_losses(&path).unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("log.csv"), "{err}");
        std::fs::write(&path, "step,loss\n").unwrap();
        let err = read_losses(&path).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
        std::fs::write(
            &path,
            format!("{LOG_HEADER}\n0,0,0,0.1,0,1.5,0.1,0.2,0.1,7\n"),
        )
        .unwrap();
        let err = read_losses(&path).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    /// A log of the version before `data_seconds` reads back with `None` in that column, and
    /// when this version resumes it, the old rows keep reading next to the new ones.
    #[test]
    fn a_log_without_data_seconds_reads_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.csv");
        std::fs::write(
            &path,
            format!("{LOG_HEADER_V1}\n0,0,0,1e-1,0,1.5,0.1,0.2\n1,0,1,1e-1,0,1.25,0.1,0.2\n"),
        )
        .unwrap();
        let rows = read_log(&path).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.data_seconds.is_none()));
        assert_eq!((rows[1].loss, rows[1].seconds), (1.25, 0.2));
        let mut log = CsvLog::open(&path, 1).unwrap();
        log.write(&record(1, 0.5)).unwrap();
        drop(log);
        let rows = read_log(&path).unwrap();
        assert_eq!(rows[0].data_seconds, None);
        assert_eq!(rows[1], record(1, 0.5));
    }
}
