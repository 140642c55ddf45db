//! One indicatif bar that every library stage reports into.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

/// A [`gps_ssl::progress::Progress`] drawing one bar per stage, named after the stage.
pub struct StageBar(Mutex<Option<ProgressBar>>);

impl StageBar {
    /// No bar until the first stage starts.
    pub fn new() -> Self {
        StageBar(Mutex::new(None))
    }

    /// Removes the current bar.
    pub fn clear(&self) {
        if let Ok(mut g) = self.0.lock() {
            if let Some(b) = g.take() {
                b.finish_and_clear();
            }
        }
    }
}

impl gps_ssl::progress::Progress for StageBar {
    fn start(&self, stage: &str, total: u64) {
        let bar = ProgressBar::new(total).with_style(
            ProgressStyle::with_template(
                "{msg:>14} [{bar:36}] {pos}/{len} {per_sec} {elapsed_precise} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(stage.to_string());
        if let Ok(mut g) = self.0.lock() {
            if let Some(old) = g.replace(bar) {
                old.finish();
            }
        }
    }
    fn advance(&self, n: u64) {
        if let Ok(g) = self.0.lock() {
            if let Some(b) = g.as_ref() {
                b.inc(n);
            }
        }
    }
    fn finish(&self) {
        if let Ok(g) = self.0.lock() {
            if let Some(b) = g.as_ref() {
                b.finish();
            }
        }
    }
}
