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
    /// Wall time of the step in seconds.
    pub seconds: f64,
}

/// Header of `log.csv`.
pub const LOG_HEADER: &str = "step,epoch,batch,lr,momentum,loss,embedding_std,seconds";

/// Appends [`StepRecord`]s to a CSV file, one line per step, flushed each step.
#[derive(Debug)]
pub struct CsvLog {
    path: PathBuf,
    file: std::fs::File,
}

impl CsvLog {
    /// Opens `path`, keeping the rows of steps before `from_step` (a resumed run rewrites
    /// what came after its checkpoint).
    pub fn open(path: &Path, from_step: u64) -> Result<Self> {
        let mut kept = String::from(LOG_HEADER);
        kept.push('\n');
        if let Ok(old) = std::fs::read_to_string(path) {
            for line in old.lines().skip(1) {
                let step = line.split(',').next().and_then(|s| s.parse::<u64>().ok());
                if step.is_some_and(|s| s < from_step) {
                    kept.push_str(line);
                    kept.push('\n');
                }
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
        writeln!(
            self.file,
            "{},{},{},{:.6e},{:.6},{:.7},{:.6},{:.4}",
            r.step, r.epoch, r.batch, r.lr, r.momentum, r.loss, r.embedding_std, r.seconds
        )
        .map_err(|e| Error::io(&self.path, e))
    }
}
