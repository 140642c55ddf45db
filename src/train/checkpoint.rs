//! Checkpoint files: a JSON header followed by the raw little-endian f32 tensors.
//!
//! Layout: `b"GPSSSLC1"`, header length (u64 LE), header JSON, then the arrays in header order.
//! Values round-trip bit for bit, so a resumed run continues exactly: on the same machine, with
//! any rayon thread count (the CPU convolution's weight-gradient sum has a fixed split and order,
//! `tests/ssl.rs` `resume_is_exact_*` trains on 2 threads and resumes on 1). Across CPUs with
//! different SIMD widths (AVX2 against AVX-512) the last digits may differ: the GEMM crate picks
//! its kernels by instruction set. See `docs/reproducibility.md`.

use std::io::{Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::optim::OptimizerState;
use crate::ssl::{MethodState, TensorBlob};
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"GPSSSLC1";

/// Where training stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Position {
    /// Optimiser steps taken (the schedules' clock).
    pub step: u64,
    /// Current epoch (0-based).
    pub epoch: usize,
    /// Next batch within the epoch.
    pub batch: usize,
}

/// Everything needed to resume a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Loader / schedule position.
    pub position: Position,
    /// Seed of the run (the trainer draws no random numbers after initialisation; the loader's
    /// stream is a function of seed and position).
    pub seed: u64,
    /// The run's identity, [`crate::train::TrainConfig::run_hash`]: a checkpoint is only ever
    /// restored into a trainer of the same run. `None` in checkpoints written before it was
    /// recorded (they are matched on the seed and the saved `config.json` alone).
    pub run_hash: Option<String>,
    /// Networks and queue.
    pub method: MethodState,
    /// Optimiser buffers.
    pub optimizer: OptimizerState,
}

#[derive(Serialize, Deserialize)]
struct Header {
    position: Position,
    seed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run_hash: Option<String>,
    online: Vec<Vec<usize>>,
    target: Option<Vec<Vec<usize>>>,
    queue: Option<usize>,
    optimizer_steps: u64,
    first: Vec<Option<usize>>,
    second: Vec<Option<usize>>,
}

fn shapes(blobs: &[TensorBlob]) -> Vec<Vec<usize>> {
    blobs.iter().map(|b| b.shape.clone()).collect()
}

impl Checkpoint {
    /// Writes the checkpoint to `path` (via a temporary file and a rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let header = Header {
            position: self.position,
            seed: self.seed,
            run_hash: self.run_hash.clone(),
            online: shapes(&self.method.online),
            target: self.method.target.as_deref().map(shapes),
            queue: self.method.queue.as_ref().map(Vec::len),
            optimizer_steps: self.optimizer.steps,
            first: self
                .optimizer
                .first
                .iter()
                .map(|v| v.as_ref().map(Vec::len))
                .collect(),
            second: self
                .optimizer
                .second
                .iter()
                .map(|v| v.as_ref().map(Vec::len))
                .collect(),
        };
        let json = serde_json::to_vec(&header).map_err(|e| Error::Serde {
            path: path.into(),
            detail: e.to_string(),
        })?;
        let tmp = crate::store::embeddings::tmp_path(path);
        let file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut w = std::io::BufWriter::new(file);
        let mut put = |bytes: &[u8]| w.write_all(bytes).map_err(|e| Error::io(&tmp, e));
        put(MAGIC)?;
        put(&(json.len() as u64).to_le_bytes())?;
        put(&json)?;
        let mut arrays: Vec<&[f32]> = self
            .method
            .online
            .iter()
            .map(|b| b.values.as_slice())
            .collect();
        if let Some(t) = &self.method.target {
            arrays.extend(t.iter().map(|b| b.values.as_slice()));
        }
        if let Some(q) = &self.method.queue {
            arrays.push(q);
        }
        arrays.extend(self.optimizer.first.iter().flatten().map(Vec::as_slice));
        arrays.extend(self.optimizer.second.iter().flatten().map(Vec::as_slice));
        for a in arrays {
            put(bytemuck::cast_slice(a))?;
        }
        let file = w
            .into_inner()
            .map_err(|e| Error::io(&tmp, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    }

    /// Reads a checkpoint written by [`save`](Self::save).
    ///
    /// Sizes come from the file's header and are checked before anything is allocated: a
    /// shape whose product overflows, or one the file holds fewer bytes for, is an error naming
    /// the file.
    pub fn load(path: &Path) -> Result<Self> {
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| Error::io(path, e))?;
        let (header, hlen) = parse_header(&bytes, path)?;
        let mut cursor = Cursor {
            data: &bytes[16 + hlen..],
            path,
        };
        let blobs = |c: &mut Cursor, shapes: Vec<Vec<usize>>| -> Result<Vec<TensorBlob>> {
            shapes
                .into_iter()
                .map(|shape| {
                    let n = shape
                        .iter()
                        .try_fold(1usize, |n, &d| n.checked_mul(d))
                        .ok_or_else(|| {
                            Error::format(path, format!("tensor shape {shape:?} overflows"))
                        })?;
                    let values = c.take(n)?;
                    Ok(TensorBlob { shape, values })
                })
                .collect()
        };
        let online = blobs(&mut cursor, header.online)?;
        let target = header.target.map(|s| blobs(&mut cursor, s)).transpose()?;
        let queue = header.queue.map(|n| cursor.take(n)).transpose()?;
        let first = header
            .first
            .into_iter()
            .map(|n| n.map(|n| cursor.take(n)).transpose())
            .collect::<Result<_>>()?;
        let second = header
            .second
            .into_iter()
            .map(|n| n.map(|n| cursor.take(n)).transpose())
            .collect::<Result<_>>()?;
        if !cursor.data.is_empty() {
            return Err(Error::format(
                path,
                format!("{} trailing bytes", cursor.data.len()),
            ));
        }
        Ok(Checkpoint {
            position: header.position,
            seed: header.seed,
            run_hash: header.run_hash,
            method: MethodState {
                online,
                target,
                queue,
            },
            optimizer: OptimizerState {
                steps: header.optimizer_steps,
                first,
                second,
            },
        })
    }
}

/// Where a saved checkpoint stands and which run it belongs to, read from its header alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Saved {
    pub position: Position,
    pub run_hash: Option<String>,
}

impl Saved {
    /// Reads the header of the checkpoint at `path` (not its tensors).
    pub fn read(path: &Path) -> Result<Self> {
        let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut head = [0u8; 16];
        file.read_exact(&mut head)
            .map_err(|_| Error::format(path, "not a gps-ssl checkpoint (bad magic)"))?;
        let hlen = header_len(&head, path)?;
        if hlen > size.saturating_sub(16) {
            return Err(Error::format(path, "truncated header"));
        }
        let mut bytes = head.to_vec();
        bytes.resize(16 + hlen as usize, 0);
        file.read_exact(&mut bytes[16..])
            .map_err(|e| Error::io(path, e))?;
        let (header, _) = parse_header(&bytes, path)?;
        Ok(Self {
            position: header.position,
            run_hash: header.run_hash,
        })
    }
}

/// The header length the 16 bytes `head` (magic, length) declare.
fn header_len(head: &[u8], path: &Path) -> Result<u64> {
    if head.len() < 16 || &head[..8] != MAGIC {
        return Err(Error::format(path, "not a gps-ssl checkpoint (bad magic)"));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&head[8..16]);
    Ok(u64::from_le_bytes(len))
}

/// The header at the start of `bytes` and its length in bytes.
fn parse_header(bytes: &[u8], path: &Path) -> Result<(Header, usize)> {
    let hlen = usize::try_from(header_len(bytes, path)?)
        .ok()
        .filter(|&h| h <= bytes.len() - 16)
        .ok_or_else(|| Error::format(path, "truncated header"))?;
    let header = serde_json::from_slice(&bytes[16..16 + hlen]).map_err(|e| Error::Serde {
        path: path.into(),
        detail: e.to_string(),
    })?;
    Ok((header, hlen))
}

struct Cursor<'a> {
    data: &'a [u8],
    path: &'a Path,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<Vec<f32>> {
        let bytes = match n.checked_mul(4) {
            Some(b) if b <= self.data.len() => b,
            _ => {
                return Err(Error::format(
                    self.path,
                    format!(
                        "truncated: an array of {n} values needs {} bytes, {} are left",
                        n as u128 * 4,
                        self.data.len()
                    ),
                ))
            }
        };
        let (head, rest) = self.data.split_at(bytes);
        self.data = rest;
        Ok(head
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkpoint file with `header` (JSON) and `body` bytes after it.
    fn forged(dir: &Path, header: &str, body: &[u8]) -> std::path::PathBuf {
        let path = dir.join("checkpoint.bin");
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(body);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    const POSITION: &str = r#""position":{"step":0,"epoch":0,"batch":0},"seed":1"#;

    /// Sizes from a header are multiplied with overflow checks: a shape whose product wraps
    /// (and would then pass the length check) or an array length whose byte count overflows is
    /// an error naming the file, not a panic or a wrapped size.
    #[test]
    fn overflowing_sizes_in_a_header_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let huge = usize::MAX / 2 + 1;
        for (header, expect) in [
            (
                format!(
                    r#"{{{POSITION},"online":[[{huge},2]],"target":null,"queue":null,"optimizer_steps":0,"first":[],"second":[]}}"#
                ),
                "overflows",
            ),
            (
                format!(
                    r#"{{{POSITION},"online":[],"target":null,"queue":{huge},"optimizer_steps":0,"first":[],"second":[]}}"#
                ),
                "truncated",
            ),
        ] {
            let path = forged(dir.path(), &header, &[0; 8]);
            let err = Checkpoint::load(&path).unwrap_err().to_string();
            assert!(
                err.contains("checkpoint.bin") && err.contains(expect),
                "{err}"
            );
        }
    }

    /// A header length past the end of the file is "truncated header", read or peeked.
    #[test]
    fn a_header_longer_than_the_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint.bin");
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        bytes.extend_from_slice(b"{}");
        std::fs::write(&path, bytes).unwrap();
        for err in [
            Checkpoint::load(&path).unwrap_err(),
            Saved::read(&path).unwrap_err(),
        ] {
            assert!(err.to_string().contains("truncated header"), "{err}");
        }
    }

    /// The run hash round-trips, and a checkpoint without one (older files) reads as `None`.
    #[test]
    fn run_hash_round_trips_and_is_optional() {
        let dir = tempfile::tempdir().unwrap();
        let empty = format!(
            r#"{{{POSITION},"online":[],"target":null,"queue":null,"optimizer_steps":0,"first":[],"second":[]}}"#
        );
        let path = forged(dir.path(), &empty, &[]);
        let mut ck = Checkpoint::load(&path).unwrap();
        assert_eq!(ck.run_hash, None);
        ck.run_hash = Some("abc".into());
        ck.save(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), ck);
        assert_eq!(Saved::read(&path).unwrap().run_hash.as_deref(), Some("abc"));
    }
}
