//! The crate's one error type.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in gps-ssl.
///
/// Variants carry what a user needs to fix the problem: the file, the row or key, and what was
/// expected versus found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A file whose content does not follow its format (bad magic, truncated, wrong schema...).
    #[error("{path}: {detail}")]
    Format {
        /// The offending file.
        path: PathBuf,
        /// What was expected and what was found.
        detail: String,
    },

    /// One image that could not be decoded.
    #[error("cannot decode image `{key}`: {detail}")]
    Decode {
        /// The sample key (relative path or row id).
        key: String,
        /// The decoder's message.
        detail: String,
    },

    /// Invalid argument or configuration supplied by the caller.
    #[error("invalid {what}: {detail}")]
    InvalidInput {
        /// Name of the parameter or input.
        what: &'static str,
        /// What is wrong and what would be accepted.
        detail: String,
    },

    /// A device that was asked for and is not available: this build lacks its backend, or the
    /// backend found no such adapter (`detail` lists the adapters it found).
    #[error("device `{asked}` is not available: {detail}")]
    DeviceUnavailable {
        /// The device as asked for (`wgpu:1`).
        asked: String,
        /// Why, and what was found instead.
        detail: String,
    },

    /// Two things that must agree do not (dimensions, fingerprints, sizes).
    #[error("{what} mismatch: expected {expected}, found {found}")]
    Mismatch {
        /// What is being compared.
        what: String,
        /// The expected value.
        expected: String,
        /// The value found.
        found: String,
    },

    /// A device's result differs from the CPU backend's, or a device check failed
    /// ([`crate::selftest`]).
    #[error("self-test `{check}` failed: {detail}")]
    SelfTest {
        /// The check that failed.
        check: String,
        /// What differed, with the values.
        detail: String,
    },

    /// A NaN or infinite value where finite numbers are required.
    #[error("{context}: non-finite value at row {row}")]
    NonFinite {
        /// The file or stage involved.
        context: String,
        /// The row (sample id) that holds it.
        row: u64,
    },

    /// The ONNX Runtime shared library could not be found or loaded.
    #[error("{0}")]
    OrtNotFound(String),

    /// An error from ONNX Runtime.
    #[error("onnx runtime: {0}")]
    Ort(String),

    /// An error reading or writing Parquet.
    #[error("{path}: parquet: {source}")]
    Parquet {
        /// The Parquet file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: parquet::errors::ParquetError,
    },

    /// An Arrow error (schema or array construction).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),

    /// A serialisation error (TOML / JSON config or metadata).
    #[error("{path}: {detail}")]
    Serde {
        /// The config or metadata file.
        path: PathBuf,
        /// The parser's message.
        detail: String,
    },

    /// A worker thread stopped unexpectedly (panicked or its channel closed).
    #[error("worker failed: {0}")]
    Worker(String),
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A format error for `path`.
    pub fn format(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            detail: detail.into(),
        }
    }

    /// An invalid-input error for the parameter `what`.
    pub fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        Error::InvalidInput {
            what,
            detail: detail.into(),
        }
    }

    /// A mismatch between an expected and a found value.
    pub fn mismatch(
        what: impl Into<String>,
        expected: impl std::fmt::Display,
        found: impl std::fmt::Display,
    ) -> Self {
        Error::Mismatch {
            what: what.into(),
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }

    /// A Parquet error on `path`.
    pub fn parquet(path: impl Into<PathBuf>, source: parquet::errors::ParquetError) -> Self {
        Error::Parquet {
            path: path.into(),
            source,
        }
    }
}
