//! The blob pool: blobs stored once per target, keyed by digest, in zip packs.
//!
//! A pack is `packs/<xx>/<id>.zip` (`id`: 32 random hex digits, `xx` its first two):
//! a plain zip archive whose entries are named by the 64-hex-digit BLAKE3 digest of
//! their content, stored, deflated or zstd-compressed ([`Compression`]). `unzip -l`
//! lists it; stored and deflated entries extract with any unzip.
//!
//! Beside it, `packs/<xx>/<id>.idx` says where each entry's data is, so that one
//! blob is read with one ranged read (no zip parsing, which matters on S3). Little
//! endian, every field fixed-size:
//!
//! ```text
//! offset  size  field
//!      0     8  magic "MVPACKIX"
//!      8     4  format version (1)
//!     12     4  entry count N
//!     16     8  size of the .zip file in bytes
//!     24    32  BLAKE3 of the whole .zip file
//!     56  64*N  entries, sorted by digest:
//!                 32  digest (BLAKE3 of the raw blob)
//!                  8  offset of the entry's data in the .zip
//!                  8  stored (compressed) length
//!                  8  raw length
//!                  4  CRC-32 of the raw data (as in the zip header)
//!                  2  zip compression method (0 stored, 8 deflate, 93 zstd)
//!                  2  reserved (0)
//! 56+64N      32  BLAKE3 of every preceding byte of the .idx
//! ```
//!
//! Order of writing (design invariant 6): the zip is written to a scratch file,
//! finished, fsynced and moved to its final name (durably); its index is derived by
//! reading the sealed zip back and written atomically after it; a session that
//! references the pack's blobs commits only after both. A zip without an index (a
//! crash in between) is an orphan that the next operation removes; an index is
//! removed before its zip.
//!
//! In memory, [`Pool`] keeps one 48-byte record per blob (32-byte digest, pack
//! number, offset, length, method) in a sorted vector, and a table of where each
//! run of records sharing their digest's first bits starts (at most 4 bytes per
//! blob): 52 MB for a million blobs.
//!
//! Where each part lives: this file holds the index format and [`Compression`];
//! `pack/writer.rs` writes and seals a pack ([`PackWriter`]); `pack/pool.rs`
//! keeps every blob of a target in memory ([`Pool`]) and reads blobs back.

mod pool;
mod writer;

pub use pool::{BlobLocation, PackInfo, Pool, PoolProblem, read_at, remove_orphans};
pub use writer::PackWriter;

use crate::error::{BackupError, Result};
use mv_types::Digest;
use std::io::Read;

const MAGIC: &[u8; 8] = b"MVPACKIX";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 56;
const ENTRY_LEN: usize = 64;
const TRAILER_LEN: usize = 32;
/// Packs never exceed this much content (offsets are kept in 32 bits).
pub const MAX_PACK_SIZE: u64 = 1 << 30;
/// The default pack size: ~32 MB of content.
pub const DEFAULT_PACK_SIZE: u64 = 32 << 20;

/// How blobs are stored inside packs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// `--zipStore` (the default, as in the original) and `--noZip`.
    #[default]
    Stored,
    /// `-z` / `--zip`: deflate, readable by every unzip.
    Deflate,
    /// `--zstd` (mailvault): better and faster than deflate; needs a zstd-aware unzip.
    Zstd,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Stored => "stored",
            Compression::Deflate => "deflate",
            Compression::Zstd => "zstd",
        }
    }

    pub fn parse(s: &str) -> Option<Compression> {
        match s {
            "stored" => Some(Compression::Stored),
            "deflate" => Some(Compression::Deflate),
            "zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }

    fn zip_method(self) -> zip::CompressionMethod {
        match self {
            Compression::Stored => zip::CompressionMethod::Stored,
            Compression::Deflate => zip::CompressionMethod::Deflated,
            Compression::Zstd => zip::CompressionMethod::Zstd,
        }
    }

    /// The zip method code.
    pub fn code(self) -> u16 {
        match self {
            Compression::Stored => 0,
            Compression::Deflate => 8,
            Compression::Zstd => 93,
        }
    }

    pub fn from_code(code: u16) -> Option<Compression> {
        match code {
            0 => Some(Compression::Stored),
            8 => Some(Compression::Deflate),
            93 => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// Turns stored bytes back into the blob.
    pub fn decode(self, stored: Vec<u8>, raw_len_hint: usize) -> std::io::Result<Vec<u8>> {
        match self {
            Compression::Stored => Ok(stored),
            Compression::Deflate => {
                let mut out = Vec::with_capacity(raw_len_hint);
                flate2::read::DeflateDecoder::new(stored.as_slice())
                    .take(u32::MAX as u64)
                    .read_to_end(&mut out)?;
                Ok(out)
            }
            Compression::Zstd => zstd::stream::decode_all(stored.as_slice()),
        }
    }
}

/// One blob in a pack index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdxEntry {
    pub digest: Digest,
    pub offset: u64,
    pub stored_len: u64,
    pub raw_len: u64,
    pub crc32: u32,
    pub compression: Compression,
}

/// A pack index file, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackIndex {
    pub zip_size: u64,
    pub zip_blake3: [u8; 32],
    pub entries: Vec<IdxEntry>,
}

impl PackIndex {
    pub fn encode(&self) -> Vec<u8> {
        let mut entries = self.entries.clone();
        entries.sort_by_key(|e| e.digest);
        let mut b = Vec::with_capacity(HEADER_LEN + ENTRY_LEN * entries.len() + TRAILER_LEN);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&VERSION.to_le_bytes());
        b.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        b.extend_from_slice(&self.zip_size.to_le_bytes());
        b.extend_from_slice(&self.zip_blake3);
        for e in &entries {
            b.extend_from_slice(&e.digest.0);
            b.extend_from_slice(&e.offset.to_le_bytes());
            b.extend_from_slice(&e.stored_len.to_le_bytes());
            b.extend_from_slice(&e.raw_len.to_le_bytes());
            b.extend_from_slice(&e.crc32.to_le_bytes());
            b.extend_from_slice(&e.compression.code().to_le_bytes());
            b.extend_from_slice(&[0, 0]);
        }
        let sum = blake3::hash(&b);
        b.extend_from_slice(sum.as_bytes());
        b
    }

    /// Decodes and checks an index; `path` names it in errors.
    pub fn decode(path: &str, b: &[u8]) -> Result<PackIndex> {
        let bad = |r: String| BackupError::corrupt(path, r);
        if b.len() < HEADER_LEN + TRAILER_LEN {
            return Err(bad(format!(
                "pack index is truncated ({} bytes, at least {} expected)",
                b.len(),
                HEADER_LEN + TRAILER_LEN
            )));
        }
        let (body, sum) = b.split_at(b.len() - TRAILER_LEN);
        if blake3::hash(body).as_bytes() != sum {
            return Err(bad(
                "pack index checksum mismatch (damaged or truncated)".into()
            ));
        }
        if &body[..8] != MAGIC {
            return Err(bad("not a mailvault pack index (bad magic)".into()));
        }
        let u32_at = |o: usize| u32::from_le_bytes(body[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(body[o..o + 8].try_into().expect("8 bytes"));
        let version = u32_at(8);
        if version != VERSION {
            return Err(bad(format!(
                "pack index version {version} is not supported (this mailvault reads {VERSION})"
            )));
        }
        let n = u32_at(12) as usize;
        if body.len() != HEADER_LEN + n * ENTRY_LEN {
            return Err(bad(format!(
                "pack index length {} does not match its {n} entries",
                b.len()
            )));
        }
        let mut zip_blake3 = [0u8; 32];
        zip_blake3.copy_from_slice(&body[24..56]);
        let mut entries = Vec::with_capacity(n);
        for i in 0..n {
            let o = HEADER_LEN + i * ENTRY_LEN;
            let mut d = [0u8; 32];
            d.copy_from_slice(&body[o..o + 32]);
            let code = u16::from_le_bytes([body[o + 60], body[o + 61]]);
            let compression = Compression::from_code(code)
                .ok_or_else(|| bad(format!("entry {i}: unknown compression method {code}")))?;
            entries.push(IdxEntry {
                digest: Digest(d),
                offset: u64_at(o + 32),
                stored_len: u64_at(o + 40),
                raw_len: u64_at(o + 48),
                crc32: u32_at(o + 56),
                compression,
            });
        }
        Ok(PackIndex {
            zip_size: u64_at(16),
            zip_blake3,
            entries,
        })
    }
}
