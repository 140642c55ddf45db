//! Dataset fingerprints: a SHA-256 over what a dataset *is*, not where it lives.
//!
//! A fingerprint hashes, in order and each length-prefixed so that no two inputs collide by
//! concatenation:
//! 1. the source kind (`"idx"`, `"cifar10"`, `"folder"`, ...),
//! 2. the sample count,
//! 3. one entry per file or sample group: its key (a relative name, never an absolute path),
//!    its byte length and the SHA-256 of its content.
//!
//! Modification times and absolute paths are deliberately left out: two clones of the same data
//! give the same fingerprint, and any change of content (even one byte) changes it.
//!
//! ```
//! use gps_ssl::dataset::Fingerprinter;
//! let mut a = Fingerprinter::new("idx", 2);
//! a.entry("train-images", b"\x00\x01");
//! let mut b = Fingerprinter::new("idx", 2);
//! b.entry("train-images", b"\x00\x02");
//! assert_ne!(a.finish(), b.finish());
//! ```

use sha2::{Digest, Sha256};

/// Version tag hashed first, bumped whenever the fingerprint recipe changes.
pub const FINGERPRINT_VERSION: &str = "gps-ssl-fingerprint-v1";

/// Incremental builder of a dataset fingerprint (hex SHA-256, 64 characters).
#[derive(Debug, Clone)]
pub struct Fingerprinter {
    hasher: Sha256,
}

impl Fingerprinter {
    /// Starts a fingerprint for a source of kind `kind` holding `count` samples.
    pub fn new(kind: &str, count: usize) -> Self {
        let mut f = Fingerprinter {
            hasher: Sha256::new(),
        };
        f.field(FINGERPRINT_VERSION.as_bytes());
        f.field(kind.as_bytes());
        f.hasher.update((count as u64).to_le_bytes());
        f
    }

    /// Adds one entry: `key`, the byte length of `content` and its SHA-256.
    pub fn entry(&mut self, key: &str, content: &[u8]) {
        self.entry_digest(key, content.len() as u64, &sha256(content));
    }

    /// Adds one entry whose content hash was computed elsewhere (e.g. in parallel, or
    /// streamed from disk): `key`, `len` in bytes and the 32-byte SHA-256 `digest`.
    pub fn entry_digest(&mut self, key: &str, len: u64, digest: &[u8; 32]) {
        self.field(key.as_bytes());
        self.hasher.update(len.to_le_bytes());
        self.hasher.update(digest);
    }

    /// Adds a free-form tagged value (an option that changes the samples, such as the label
    /// field used).
    pub fn option(&mut self, name: &str, value: &str) {
        self.field(name.as_bytes());
        self.field(value.as_bytes());
    }

    /// The lowercase hex digest (64 characters).
    pub fn finish(self) -> String {
        hex(&self.hasher.finalize())
    }

    fn field(&mut self, bytes: &[u8]) {
        self.hasher.update((bytes.len() as u64).to_le_bytes());
        self.hasher.update(bytes);
    }
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// SHA-256 of a file's content, streamed (bounded memory), and its length in bytes.
pub fn sha256_file(path: &std::path::Path) -> crate::Result<([u8; 32], u64)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| crate::Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| crate::Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((hasher.finalize().into(), len))
}

/// Lowercase hex SHA-256 of a file's content (streamed, as [`sha256_file`]): the form manifests
/// and Parquet metadata record.
pub fn sha256_hex_file(path: &std::path::Path) -> crate::Result<String> {
    Ok(hex(&sha256_file(path)?.0))
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_known_vector() {
        // python3 -c "import hashlib; print(hashlib.sha256(b'abc').hexdigest())"
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn fingerprint_changes_with_kind_count_key_and_content() {
        let base = {
            let mut f = Fingerprinter::new("idx", 3);
            f.entry("a", b"xyz");
            f.finish()
        };
        assert_eq!(base.len(), 64);
        let variants = [
            ("cifar10", 3, "a", &b"xyz"[..]),
            ("idx", 4, "a", b"xyz"),
            ("idx", 3, "b", b"xyz"),
            ("idx", 3, "a", b"xyZ"),
        ];
        for (kind, n, key, content) in variants {
            let mut f = Fingerprinter::new(kind, n);
            f.entry(key, content);
            assert_ne!(f.finish(), base, "{kind} {n} {key}");
        }
        let mut same = Fingerprinter::new("idx", 3);
        same.entry("a", b"xyz");
        assert_eq!(same.finish(), base);
    }

    #[test]
    fn length_prefix_prevents_concatenation_collisions() {
        let mut a = Fingerprinter::new("k", 1);
        a.option("ab", "c");
        let mut b = Fingerprinter::new("k", 1);
        b.option("a", "bc");
        assert_ne!(a.finish(), b.finish());
    }
}
