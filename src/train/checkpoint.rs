//! Checkpoint files: a JSON header followed by the raw little-endian f32 tensors.
//!
//! Layout: `b"GPSSSLC1"`, header length (u64 LE), header JSON, then the arrays in header order.
//! Values round-trip bit for bit, so a resumed run continues exactly.

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
    /// Networks and queue.
    pub method: MethodState,
    /// Optimiser buffers.
    pub optimizer: OptimizerState,
}

#[derive(Serialize, Deserialize)]
struct Header {
    position: Position,
    seed: u64,
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
        let tmp = path.with_extension("tmp");
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
    pub fn load(path: &Path) -> Result<Self> {
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| Error::io(path, e))?;
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err(Error::format(path, "not a gps-ssl checkpoint (bad magic)"));
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&bytes[8..16]);
        let hlen = u64::from_le_bytes(len) as usize;
        let body = bytes
            .get(16..16usize.saturating_add(hlen))
            .ok_or_else(|| Error::format(path, "truncated header"))?;
        let header: Header = serde_json::from_slice(body).map_err(|e| Error::Serde {
            path: path.into(),
            detail: e.to_string(),
        })?;
        let mut cursor = Cursor {
            data: &bytes[16 + hlen..],
            path,
        };
        let blobs = |c: &mut Cursor, shapes: Vec<Vec<usize>>| -> Result<Vec<TensorBlob>> {
            shapes
                .into_iter()
                .map(|shape| {
                    let values = c.take(shape.iter().product())?;
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

struct Cursor<'a> {
    data: &'a [u8],
    path: &'a Path,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<Vec<f32>> {
        let bytes = n * 4;
        if self.data.len() < bytes {
            return Err(Error::format(
                self.path,
                format!("truncated: need {bytes} more bytes"),
            ));
        }
        let (head, rest) = self.data.split_at(bytes);
        self.data = rest;
        Ok(head
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}
