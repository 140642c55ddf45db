//! Which of gps-ssl's own files a TOML or JSON text is, so that a parse error on a file passed
//! in the wrong place says what the file is and which one to pass, instead of the parser's
//! `invalid type: sequence, expected u32`.

use std::path::Path;

use crate::Error;

/// Value of `export::EncoderManifest::format` (one string for the writer and for
/// recognising a misplaced encoder manifest, which needs no `train` feature).
pub(crate) const ENCODER_FORMAT: &str = "gps-ssl-encoder/1";

/// A gps-ssl file that users pass on the command line or in a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(any(feature = "train", test)), allow(dead_code))]
pub(crate) enum FileKind {
    /// A prior manifest (`models/*.toml`, an export's `prior.toml`).
    PriorManifest,
    /// An export's `encoder.toml`.
    EncoderManifest,
    /// An experiment TOML (`examples/experiments/*.toml`).
    ExperimentConfig,
    /// An experiment's `results.json`.
    Results,
    /// An experiment's `priors.json`.
    Priors,
    /// A run's `record.json`.
    RunRecord,
    /// An experiment's `experiment.json` (invocation log).
    ExperimentLog,
    /// A training run's `config.json`.
    TrainConfig,
}

impl FileKind {
    /// What the file is, for a sentence "this is …".
    pub(crate) fn describe(self) -> &'static str {
        match self {
            FileKind::PriorManifest => {
                "a prior manifest (`models/*.toml`, or the `prior.toml` of an export)"
            }
            FileKind::EncoderManifest => "an encoder manifest written by `gps-ssl export`",
            FileKind::ExperimentConfig => "an experiment config (`gps-ssl experiment FILE`)",
            FileKind::Results => "an experiment's results.json",
            FileKind::Priors => "an experiment's priors.json (the priors' own accuracy)",
            FileKind::RunRecord => "a run's record.json",
            FileKind::ExperimentLog => "an experiment's invocation log (experiment.json)",
            FileKind::TrainConfig => "a training run's config.json",
        }
    }

    /// The kind of a TOML text, from its keys; `None` when it is not TOML or not recognised.
    pub(crate) fn of_toml(text: &str) -> Option<Self> {
        let table: toml::Table = toml::from_str(text).ok()?;
        let has = |key: &str| table.contains_key(key);
        if table.get("format").and_then(|v| v.as_str()) == Some(ENCODER_FORMAT)
            || (has("backbone") && has("weights") && has("run"))
        {
            Some(FileKind::EncoderManifest)
        } else if has("onnx") && has("input_name") && has("output_name") {
            Some(FileKind::PriorManifest)
        } else if ["methods", "augs", "priors", "seeds", "test_data"]
            .iter()
            .any(|k| has(k))
        {
            Some(FileKind::ExperimentConfig)
        } else {
            None
        }
    }

    #[cfg(any(feature = "train", test))]
    /// The kind of a JSON text, from its keys; `None` when it is not JSON or not recognised.
    pub(crate) fn of_json(text: &str) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        let object = match &value {
            serde_json::Value::Array(items) => items.first()?.as_object()?,
            serde_json::Value::Object(o) => o,
            _ => return None,
        };
        let has = |key: &str| object.contains_key(key);
        let array = value.is_array();
        if array && has("gps_version") && has("config") {
            Some(FileKind::ExperimentLog)
        } else if array && has("prior") && has("purity") {
            Some(FileKind::Priors)
        } else if array && has("method") && has("knn_acc") {
            Some(FileKind::Results)
        } else if !array && has("run_hash") && has("evaluation") {
            Some(FileKind::RunRecord)
        } else if !array && has("method") && has("network") && has("optimizer") {
            Some(FileKind::TrainConfig)
        } else {
            None
        }
    }
}

/// The parse error of a file that should have been `expected`: when its text is another
/// gps-ssl file, "`path`: this is …, not …; `hint`", else the parser's message on one line
/// (`line L, column C: message`) — `hint(found)` says which file to pass instead.
pub(crate) fn toml_error(
    path: &Path,
    text: &str,
    error: &toml::de::Error,
    expected: FileKind,
    hint: impl Fn(FileKind) -> Option<String>,
) -> Error {
    let detail = match FileKind::of_toml(text).filter(|&k| k != expected) {
        Some(found) => wrong_file(found, expected, hint(found)),
        None => one_line_toml_error(text, error),
    };
    Error::Serde {
        path: path.to_path_buf(),
        detail,
    }
}

#[cfg(feature = "train")]
/// [`toml_error`] for a JSON file.
pub(crate) fn json_error(
    path: &Path,
    text: &str,
    error: &serde_json::Error,
    expected: FileKind,
    hint: impl Fn(FileKind) -> Option<String>,
) -> Error {
    let detail = match FileKind::of_json(text).filter(|&k| k != expected) {
        Some(found) => wrong_file(found, expected, hint(found)),
        None => error.to_string(),
    };
    Error::Serde {
        path: path.to_path_buf(),
        detail,
    }
}

fn wrong_file(found: FileKind, expected: FileKind, hint: Option<String>) -> String {
    let mut s = format!("this is {}, not {}", found.describe(), expected.describe());
    if let Some(hint) = hint {
        s.push_str("; ");
        s.push_str(&hint);
    }
    s
}

/// `line L, column C: message` for a TOML error (its `Display` draws a multi-line snippet).
pub(crate) fn one_line_toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_kinds_are_told_apart_by_their_keys() {
        let prior = "name = \"p\"\nonnx = \"p.onnx\"\ninput_name = \"x\"\noutput_name = \"y\"";
        assert_eq!(FileKind::of_toml(prior), Some(FileKind::PriorManifest));
        let encoder = "format = \"gps-ssl-encoder/1\"\ninput_size = [28, 28]";
        assert_eq!(FileKind::of_toml(encoder), Some(FileKind::EncoderManifest));
        assert_eq!(
            FileKind::of_toml("methods = [\"simclr\"]"),
            Some(FileKind::ExperimentConfig)
        );
        assert_eq!(FileKind::of_toml("a = 1"), None);
        assert_eq!(FileKind::of_toml("not toml ["), None);
    }

    #[test]
    fn json_kinds_are_told_apart_by_their_keys() {
        let kind = FileKind::of_json;
        assert_eq!(
            kind(r#"[{"method": "simclr", "knn_acc": 0.5}]"#),
            Some(FileKind::Results)
        );
        assert_eq!(
            kind(r#"[{"prior": "lite0", "knn_acc": 0.8, "purity": []}]"#),
            Some(FileKind::Priors)
        );
        assert_eq!(
            kind(r#"{"run_hash": "ab", "evaluation": {}}"#),
            Some(FileKind::RunRecord)
        );
        assert_eq!(
            kind(r#"[{"gps_version": "0.1.0", "config": {}}]"#),
            Some(FileKind::ExperimentLog)
        );
        assert_eq!(kind("[]"), None);
        assert_eq!(kind("{"), None);
    }

    #[test]
    fn a_toml_error_is_one_line_with_its_position() {
        let text = "a = 1\nb = [1, 2]\n";
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct T {
            a: u32,
            b: u32,
        }
        let e = toml::from_str::<T>(text).unwrap_err();
        let line = one_line_toml_error(text, &e);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with("line 2, column 5: "), "{line}");
        assert!(line.contains("expected u32"), "{line}");
    }
}
