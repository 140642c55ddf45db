//! [`open_source`]: one string → the right [`DataSource`].
//!
//! # Spec syntax
//!
//! `[<kind>:]<path>[?<key>=<value>[&<key>=<value>...]]`
//!
//! Without a kind, the path decides:
//!
//! | path | source |
//! |---|---|
//! | a file whose name contains `idx3-ubyte` (gzip or raw) | [`IdxSource`]; the labels file `…-labels-idx1-ubyte[.gz]` beside it is used when present |
//! | a *prefix* `dir/train` such that `dir/train-images-idx3-ubyte[.gz]` exists | [`IdxSource`] of that split (+ its labels) |
//! | a directory holding exactly one `*-images-idx3-ubyte*` file | [`IdxSource`] of it (with several, the error lists the prefixes to choose from) |
//! | a `.bin` file | CIFAR batch; CIFAR-10 vs CIFAR-100 from the name (`data_batch_*`, `test_batch` → 10; `train`, `test` → 100), else from the length |
//! | a directory of `.bin` files | its CIFAR training batches (`data_batch_*.bin` for CIFAR-10, `train.bin` for CIFAR-100) |
//! | a `.parquet` file, or a directory of them | Parquet image table(s), Hugging Face layout |
//! | a directory with class sub-directories | image folder `root/<class>/<image>` |
//!
//! Explicit kinds skip detection: `idx:`, `cifar10:`, `cifar100:`, `parquet:`, `folder:`.
//! Options (after `?`):
//! - `parquet:` — `image=<column>` (default `image`), `label=<column>` (default `label`;
//!   `label=` with an empty value reads no labels);
//! - `cifar100:` — `label=fine` (default) or `label=coarse`.
//!
//! ```no_run
//! use gps_ssl::dataset::{open_source, DataSource};
//! let train = open_source("data/fashion-mnist/train")?; // IDX prefix
//! let cifar = open_source("cifar100:data/fixtures/cifar100_test.bin?label=coarse")?;
//! let hf = open_source("parquet:data/fixtures/cifar10_hf.parquet?image=img")?;
//! # Ok::<(), gps_ssl::Error>(())
//! ```

use super::cifar::{CifarFormat, CifarSource, CIFAR_PIXELS};
use super::folder::{file_name, read_dir_sorted, ImageFolderSource};
use super::idx::{find_with_suffix, IdxSource};
use super::parquet::{ParquetImageSource, DEFAULT_IMAGE_COLUMN, DEFAULT_LABEL_COLUMN};
use super::DataSource;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Opens the dataset described by `spec` (see the [module docs](self) for the syntax).
///
/// Errors with [`Error::InvalidInput`] when the spec names an unknown kind or option, or when the
/// path matches no known layout (the message lists what was looked for), and with the source's
/// own error when the file is found but malformed.
pub fn open_source(spec: &str) -> Result<Box<dyn DataSource>> {
    let parsed = Spec::parse(spec)?;
    let kind = match parsed.kind {
        Some(k) => k,
        None => detect(&parsed.path)?,
    };
    parsed.check_options(kind)?;
    let path = parsed.path.as_path();
    let src: Box<dyn DataSource> = match kind {
        Kind::Idx => Box::new(open_idx(path)?),
        Kind::Cifar10 => Box::new(CifarSource::open(
            CifarFormat::Cifar10,
            &cifar_files(path, kind)?,
        )?),
        Kind::Cifar100 => {
            let format = match parsed.option("label").unwrap_or("fine") {
                "fine" => CifarFormat::Cifar100Fine,
                "coarse" => CifarFormat::Cifar100Coarse,
                other => {
                    return Err(Error::invalid(
                        "dataset spec",
                        format!("`{spec}`: cifar100 label `{other}`; expected `fine` or `coarse`"),
                    ))
                }
            };
            Box::new(CifarSource::open(format, &cifar_files(path, kind)?)?)
        }
        Kind::Parquet => {
            let label = parsed.option("label").unwrap_or(DEFAULT_LABEL_COLUMN);
            let mut b = ParquetImageSource::builder(path)
                .image_column(parsed.option("image").unwrap_or(DEFAULT_IMAGE_COLUMN));
            if parsed.option("label").is_some() {
                b = b.label_column((!label.is_empty()).then_some(label));
            }
            Box::new(b.build()?)
        }
        Kind::Folder => Box::new(ImageFolderSource::open(path)?),
    };
    tracing::debug!(spec, source = %src.describe(), "opened dataset source");
    Ok(src)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Idx,
    Cifar10,
    Cifar100,
    Parquet,
    Folder,
}

impl Kind {
    fn from_prefix(s: &str) -> Option<Kind> {
        match s {
            "idx" => Some(Kind::Idx),
            "cifar10" => Some(Kind::Cifar10),
            "cifar100" => Some(Kind::Cifar100),
            "parquet" => Some(Kind::Parquet),
            "folder" => Some(Kind::Folder),
            _ => None,
        }
    }

    fn allowed_options(self) -> &'static [&'static str] {
        match self {
            Kind::Cifar100 => &["label"],
            Kind::Parquet => &["image", "label"],
            Kind::Idx | Kind::Cifar10 | Kind::Folder => &[],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Idx => "idx",
            Kind::Cifar10 => "cifar10",
            Kind::Cifar100 => "cifar100",
            Kind::Parquet => "parquet",
            Kind::Folder => "folder",
        }
    }
}

#[derive(Debug)]
struct Spec {
    kind: Option<Kind>,
    path: PathBuf,
    options: Vec<(String, String)>,
}

impl Spec {
    fn parse(spec: &str) -> Result<Spec> {
        if spec.trim().is_empty() {
            return Err(Error::invalid(
                "dataset spec",
                "empty; expected a path or `<kind>:<path>`",
            ));
        }
        let (kind, rest) = match spec.split_once(':') {
            Some((prefix, rest))
                if prefix.len() > 1 && prefix.chars().all(|c| c.is_ascii_alphanumeric()) =>
            {
                match Kind::from_prefix(prefix) {
                    Some(k) => (Some(k), rest),
                    None => {
                        return Err(Error::invalid(
                            "dataset spec",
                            format!(
                            "`{spec}`: unknown kind `{prefix}:`; expected one of idx:, cifar10:, \
                                 cifar100:, parquet:, folder: or a plain path"
                        ),
                        ))
                    }
                }
            }
            _ => (None, spec),
        };
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut options = Vec::new();
        for pair in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                Error::invalid(
                    "dataset spec",
                    format!("`{spec}`: option `{pair}` is not key=value"),
                )
            })?;
            options.push((k.to_string(), v.to_string()));
        }
        Ok(Spec {
            kind,
            path: PathBuf::from(path),
            options,
        })
    }

    fn option(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn check_options(&self, kind: Kind) -> Result<()> {
        let allowed = kind.allowed_options();
        for (k, _) in &self.options {
            if !allowed.contains(&k.as_str()) {
                return Err(Error::invalid(
                    "dataset spec",
                    format!(
                        "option `{k}` is not accepted by `{}:` sources (accepted: {})",
                        kind.name(),
                        if allowed.is_empty() {
                            "none".to_string()
                        } else {
                            allowed.join(", ")
                        }
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn has_ext(path: &Path, ext: &str) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

fn detect(path: &Path) -> Result<Kind> {
    if path.is_file() {
        let name = file_name(path);
        if name.contains("idx3-ubyte") {
            return Ok(Kind::Idx);
        }
        if has_ext(path, "parquet") {
            return Ok(Kind::Parquet);
        }
        if has_ext(path, "bin") {
            return cifar_kind(path);
        }
    } else if path.is_dir() {
        if !idx_prefixes(path)?.is_empty() {
            return Ok(Kind::Idx);
        }
        let entries = read_dir_sorted(path)?;
        let files: Vec<&PathBuf> = entries.iter().filter(|p| p.is_file()).collect();
        if files.iter().any(|p| has_ext(p, "parquet")) {
            return Ok(Kind::Parquet);
        }
        if let Some(first) = cifar_dir_files(path)?.first() {
            return cifar_kind(first);
        }
        let has_class_dirs = entries
            .iter()
            .any(|p| p.is_dir() && !file_name(p).starts_with('.'));
        if has_class_dirs {
            return Ok(Kind::Folder);
        }
    } else if find_with_suffix(path, "-images-idx3-ubyte").is_some() {
        return Ok(Kind::Idx);
    }
    Err(no_match(path))
}

/// CIFAR-10 or CIFAR-100 from the file name, else from the file length.
fn cifar_kind(path: &Path) -> Result<Kind> {
    let name = file_name(path);
    if name.starts_with("data_batch") || name.starts_with("test_batch") {
        return Ok(Kind::Cifar10);
    }
    if name == "train.bin" || name == "test.bin" {
        return Ok(Kind::Cifar100);
    }
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len() as usize;
    let (r10, r100) = (1 + CIFAR_PIXELS, 2 + CIFAR_PIXELS);
    match (len > 0 && len.is_multiple_of(r10), len > 0 && len.is_multiple_of(r100)) {
        (true, false) => Ok(Kind::Cifar10),
        (false, true) => Ok(Kind::Cifar100),
        (true, true) => Err(Error::invalid(
            "dataset spec",
            format!(
                "`{}` could be CIFAR-10 or CIFAR-100 ({len} bytes); prefix it with cifar10: or cifar100:",
                path.display()
            ),
        )),
        (false, false) => Err(Error::format(
            path,
            format!(
                "{len} bytes is a multiple of neither the CIFAR-10 record ({r10} bytes) nor the \
                 CIFAR-100 record ({r100} bytes)"
            ),
        )),
    }
}

/// The CIFAR training batches of a directory: `data_batch_*.bin` (CIFAR-10), else `train.bin`
/// (CIFAR-100), else every `.bin` file.
fn cifar_dir_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let bins: Vec<PathBuf> = read_dir_sorted(dir)?
        .into_iter()
        .filter(|p| p.is_file() && has_ext(p, "bin"))
        .collect();
    let batches: Vec<PathBuf> = bins
        .iter()
        .filter(|p| file_name(p).starts_with("data_batch"))
        .cloned()
        .collect();
    if !batches.is_empty() {
        return Ok(batches);
    }
    if let Some(train) = bins.iter().find(|p| file_name(p) == "train.bin") {
        return Ok(vec![train.clone()]);
    }
    Ok(bins)
}

fn cifar_files(path: &Path, kind: Kind) -> Result<Vec<PathBuf>> {
    if path.is_dir() {
        let files = cifar_dir_files(path)?;
        if files.is_empty() {
            return Err(Error::format(
                path,
                format!("directory holds no `.bin` {} batch", kind.name()),
            ));
        }
        Ok(files)
    } else {
        Ok(vec![path.to_path_buf()])
    }
}

fn no_match(path: &Path) -> Error {
    let what = if path.is_dir() {
        "directory"
    } else if path.is_file() {
        "file"
    } else {
        "path (does not exist)"
    };
    Error::invalid(
        "dataset spec",
        format!(
            "{what} `{}` matches no dataset layout: expected an IDX images file \
             (`*-images-idx3-ubyte[.gz]`) or prefix (`dir/train`), a CIFAR `.bin` batch or \
             directory of them, a `.parquet` file or directory, or an image folder \
             `root/<class>/<image>`; or prefix the path with idx:, cifar10:, cifar100:, \
             parquet:, folder:",
            path.display()
        ),
    )
}

/// The split prefixes (`dir/train`, `dir/t10k`) of the IDX images files in `dir`.
fn idx_prefixes(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = read_dir_sorted(dir)?
        .into_iter()
        .filter_map(|p| {
            let name = file_name(&p);
            let name = name.strip_suffix(".gz").unwrap_or(&name).to_string();
            name.strip_suffix("-images-idx3-ubyte")
                .map(|stem| dir.join(stem))
        })
        .collect();
    out.dedup();
    Ok(out)
}

fn open_idx(path: &Path) -> Result<IdxSource> {
    if path.is_file() {
        let name = file_name(path);
        let base = name.strip_suffix(".gz").unwrap_or(&name);
        let labels = base
            .strip_suffix("-images-idx3-ubyte")
            .and_then(|stem| find_with_suffix(&path.with_file_name(stem), "-labels-idx1-ubyte"));
        return IdxSource::open(path, labels.as_deref());
    }
    if path.is_dir() {
        let prefixes = idx_prefixes(path)?;
        return match prefixes.as_slice() {
            [one] => IdxSource::open_prefix(one),
            [] => Err(Error::format(
                path,
                "directory holds no `*-images-idx3-ubyte[.gz]` file",
            )),
            many => Err(Error::invalid(
                "dataset spec",
                format!(
                    "directory `{}` holds several IDX splits; name one of: {}",
                    path.display(),
                    many.iter()
                        .map(|p| format!("`{}`", p.display()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        };
    }
    IdxSource::open_prefix(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parses_kind_path_and_options() {
        let s = Spec::parse("idx:a/b?x=1&y=").unwrap();
        assert_eq!(s.kind, Some(Kind::Idx));
        assert_eq!(s.path, PathBuf::from("a/b"));
        assert_eq!(
            s.options,
            vec![("x".into(), "1".into()), ("y".into(), String::new())]
        );
        let s = Spec::parse("data/x").unwrap();
        assert_eq!(s.kind, None);
    }

    #[test]
    fn unknown_kind_and_bad_option_are_errors() {
        let msg = Spec::parse("zip:foo").unwrap_err().to_string();
        assert!(msg.contains("unknown kind `zip:`"), "{msg}");
        let msg = Spec::parse("idx:foo?novalue").unwrap_err().to_string();
        assert!(msg.contains("not key=value"), "{msg}");
        assert!(Spec::parse("").is_err());
    }

    #[test]
    fn missing_path_names_it_and_lists_layouts() {
        let err = open_source("/nonexistent/gps-ssl-data").err().unwrap();
        let msg = err.to_string();
        assert!(
            msg.contains("/nonexistent/gps-ssl-data") && msg.contains("does not exist"),
            "{msg}"
        );
        assert!(
            msg.contains("image folder") && msg.contains("parquet"),
            "{msg}"
        );
    }
}
