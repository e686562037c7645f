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

use crate::error::{BackupError, Result};
use crate::target::{Target, pack_path};
use mv_types::Digest;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::PathBuf;

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

/// A pack being written (in the target's scratch directory).
pub struct PackWriter {
    id: String,
    scratch: PathBuf,
    /// Written as a stream (sizes in data descriptors after each entry), so every
    /// byte goes out once, in order, and is hashed on the way: sealing needs no
    /// read-back of the pack.
    zip: zip::ZipWriter<zip::write::StreamWriter<Hashing<BufWriter<File>>>>,
    compression: Compression,
    added: Vec<(Digest, u64)>,
    raw_bytes: u64,
}

fn zip_err(path: &str) -> impl FnOnce(zip::result::ZipError) -> BackupError + '_ {
    move |e| BackupError::Zip {
        path: path.to_string(),
        reason: e.to_string(),
    }
}

impl PackWriter {
    pub fn new(target: &dyn Target, compression: Compression) -> Result<PackWriter> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let scratch = target.scratch_dir()?.join(format!("pack-{id}.zip"));
        let file = File::create(&scratch).map_err(BackupError::io(scratch.display()))?;
        Ok(PackWriter {
            id,
            scratch,
            zip: zip::ZipWriter::new_stream(Hashing::new(BufWriter::with_capacity(1 << 20, file))),
            compression,
            added: Vec::new(),
            raw_bytes: 0,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Content bytes added so far.
    pub fn raw_bytes(&self) -> u64 {
        self.raw_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
    }

    /// Adds a blob whose digest the caller has checked.
    pub fn add(&mut self, digest: Digest, data: &[u8]) -> Result<()> {
        use std::io::Write;
        if data.len() as u64 > u32::MAX as u64 {
            return Err(BackupError::Invalid(format!(
                "blob {digest} is {} bytes: blobs of 4 GiB or more cannot be backed up",
                data.len()
            )));
        }
        let path = self.scratch.display().to_string();
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(self.compression.zip_method())
            .large_file(false);
        self.zip
            .start_file(digest.to_hex(), options)
            .map_err(zip_err(&path))?;
        self.zip.write_all(data).map_err(BackupError::io(&path))?;
        self.added.push((digest, data.len() as u64));
        self.raw_bytes += data.len() as u64;
        Ok(())
    }

    /// Finishes the zip, makes it durable under its final name, then writes its
    /// index. Returns the index (for the in-memory pool).
    pub fn seal(self, target: &dyn Target) -> Result<(String, PackIndex)> {
        let path = self.scratch.display().to_string();
        let hashing = self.zip.finish().map_err(zip_err(&path))?.into_inner();
        let (zip_size, zip_blake3) = (hashing.len, *hashing.hasher.finalize().as_bytes());
        let file = hashing
            .inner
            .into_inner()
            .map_err(|e| BackupError::io(&path)(e.into_error()))?;
        file.sync_all().map_err(BackupError::io(&path))?;
        drop(file);
        let index = index_zip(&self.scratch, &self.added, zip_size, zip_blake3)?;
        target.put_file(&pack_path(&self.id, "zip"), &self.scratch)?;
        target.put(&pack_path(&self.id, "idx"), &index.encode())?;
        Ok((self.id, index))
    }

    /// Drops the pack being written.
    pub fn discard(self) {
        drop(self.zip);
        let _ = std::fs::remove_file(&self.scratch);
    }
}

/// Passes writes through to `inner`, counting and hashing them.
struct Hashing<W> {
    inner: W,
    hasher: blake3::Hasher,
    len: u64,
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Hashing<W> {
        Hashing {
            inner,
            hasher: blake3::Hasher::new(),
            len: 0,
        }
    }
}

impl<W: std::io::Write> std::io::Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Reads a finished zip's directory back and derives its index, checking that it
/// holds exactly the blobs added and has the size written.
fn index_zip(
    path: &std::path::Path,
    added: &[(Digest, u64)],
    zip_size: u64,
    zip_blake3: [u8; 32],
) -> Result<PackIndex> {
    let p = path.display().to_string();
    let file = File::open(path).map_err(BackupError::io(&p))?;
    let on_disk = file.metadata().map_err(BackupError::io(&p))?.len();
    if on_disk != zip_size {
        return Err(BackupError::Zip {
            path: p,
            reason: format!("{zip_size} bytes written, {on_disk} on disk"),
        });
    }
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(zip_err(&p))?;
    if archive.len() != added.len() {
        return Err(BackupError::Zip {
            path: p,
            reason: format!(
                "{} entries written, {} read back",
                added.len(),
                archive.len()
            ),
        });
    }
    let mut entries = Vec::with_capacity(added.len());
    for (i, (digest, raw_len)) in added.iter().enumerate() {
        let f = archive.by_index_raw(i).map_err(zip_err(&p))?;
        let offset = f.data_start().ok_or_else(|| BackupError::Zip {
            path: p.clone(),
            reason: format!("entry {i} has no data offset"),
        })?;
        let compression =
            Compression::from_code(compression_code(f.compression())).ok_or_else(|| {
                BackupError::Zip {
                    path: p.clone(),
                    reason: format!("entry {i}: unexpected compression {:?}", f.compression()),
                }
            })?;
        let name = f.name().map(|n| n.into_owned()).unwrap_or_default();
        if name != digest.to_hex() || f.size() != *raw_len {
            return Err(BackupError::Zip {
                path: p,
                reason: format!("entry {i} ({name}) does not match what was written"),
            });
        }
        entries.push(IdxEntry {
            digest: *digest,
            offset,
            stored_len: f.compressed_size(),
            raw_len: f.size(),
            crc32: f.crc32(),
            compression,
        });
    }
    Ok(PackIndex {
        zip_size,
        zip_blake3,
        entries,
    })
}

fn compression_code(m: zip::CompressionMethod) -> u16 {
    match m {
        zip::CompressionMethod::Stored => 0,
        zip::CompressionMethod::Deflated => 8,
        zip::CompressionMethod::Zstd => 93,
        _ => u16::MAX,
    }
}

/// Where one blob is, in memory: 16 bytes (48 with its digest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loc {
    pack: u32,
    offset: u32,
    len: u32,
    method: u8,
}

/// A pack of the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackInfo {
    pub id: String,
    pub zip_size: u64,
    pub zip_blake3: [u8; 32],
    pub entries: u32,
}

/// Something wrong with the pool noticed while loading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolProblem {
    pub path: String,
    pub message: String,
}

/// Where a blob is, for reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobLocation {
    pub pack: String,
    pub path: String,
    pub offset: u64,
    pub stored_len: u64,
    pub compression: Compression,
}

/// Every blob of a target: digest → (pack, offset, length, method).
#[derive(Debug, Default)]
pub struct Pool {
    packs: Vec<PackInfo>,
    sorted: Vec<(Digest, Loc)>,
    /// Where in `sorted` the digests with each value of their first
    /// `bucket_bits` bits start ([`Pool::index_buckets`]).
    buckets: Vec<u32>,
    bucket_bits: u32,
    added: HashMap<Digest, Loc>,
    /// Damaged or dangling indexes (their blobs count as absent).
    pub problems: Vec<PoolProblem>,
    /// Pack files without an index (a crash between the two; removable).
    pub orphans: Vec<String>,
}

impl Pool {
    /// Loads every pack index of the target. Damaged indexes, indexes without a
    /// pack and packs whose size disagrees with their index are listed in
    /// `problems` and their blobs treated as absent (a new backup writes them again).
    pub fn load(target: &dyn Target) -> Result<Pool> {
        let objects = target.list("packs/")?;
        let sizes: HashMap<&str, u64> = objects.iter().map(|o| (o.path.as_str(), o.size)).collect();
        let mut pool = Pool::default();
        for o in &objects {
            if let Some(stem) = o.path.strip_suffix(".zip") {
                if !sizes.contains_key(format!("{stem}.idx").as_str()) {
                    pool.orphans.push(o.path.clone());
                }
                continue;
            }
            let Some(stem) = o.path.strip_suffix(".idx") else {
                continue;
            };
            let id = stem.rsplit('/').next().unwrap_or(stem).to_string();
            let index = match target
                .get(&o.path)
                .and_then(|b| PackIndex::decode(&o.path, &b))
            {
                Ok(i) => i,
                Err(e) => {
                    pool.problems.push(PoolProblem {
                        path: o.path.clone(),
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            let zip = format!("{stem}.zip");
            match sizes.get(zip.as_str()) {
                None => {
                    pool.problems.push(PoolProblem {
                        path: zip,
                        message: format!(
                            "pack file is missing ({} blobs listed by its index)",
                            index.entries.len()
                        ),
                    });
                    continue;
                }
                Some(&size) if size != index.zip_size => {
                    pool.problems.push(PoolProblem {
                        path: zip,
                        message: format!(
                            "pack file is {size} bytes, its index says {} (truncated or damaged)",
                            index.zip_size
                        ),
                    });
                    continue;
                }
                Some(_) => {}
            }
            pool.insert_pack(id, &index, false);
        }
        pool.sorted.sort_unstable_by_key(|(d, _)| *d);
        pool.sorted.dedup_by_key(|(d, _)| *d);
        pool.sorted.shrink_to_fit();
        pool.index_buckets();
        Ok(pool)
    }

    /// Digests are uniformly distributed, so their first bits split `sorted` into
    /// runs of about one record each. A lookup reads the run's bounds and the
    /// record or two in it instead of binary-searching the whole vector: an
    /// unchanged full looks up every blob of every account, and the cache misses
    /// of 16 probes each took a tenth of its time.
    fn index_buckets(&mut self) {
        let n = self.sorted.len();
        // At most one bucket per record: 4 bytes per blob at most.
        self.bucket_bits = n.checked_ilog2().unwrap_or(0);
        let buckets = 1usize << self.bucket_bits;
        self.buckets = Vec::with_capacity(buckets + 1);
        let mut i = 0;
        for b in 0..buckets {
            while i < n && Self::bucket_of(&self.sorted[i].0, self.bucket_bits) < b {
                i += 1;
            }
            self.buckets.push(i as u32);
        }
        self.buckets.push(n as u32);
    }

    fn bucket_of(d: &Digest, bits: u32) -> usize {
        let head = u64::from_be_bytes(d.0[..8].try_into().expect("8 bytes"));
        head.checked_shr(64 - bits).unwrap_or(0) as usize
    }

    fn insert_pack(&mut self, id: String, index: &PackIndex, into_added: bool) {
        let n = self.packs.len() as u32;
        self.packs.push(PackInfo {
            id,
            zip_size: index.zip_size,
            zip_blake3: index.zip_blake3,
            entries: index.entries.len() as u32,
        });
        for e in &index.entries {
            let loc = Loc {
                pack: n,
                offset: e.offset.min(u32::MAX as u64) as u32,
                len: e.stored_len.min(u32::MAX as u64) as u32,
                method: e.compression.code().min(255) as u8,
            };
            if into_added {
                self.added.entry(e.digest).or_insert(loc);
            } else {
                self.sorted.push((e.digest, loc));
            }
        }
    }

    /// Records a pack sealed by this process.
    pub fn add_sealed(&mut self, id: String, index: &PackIndex) {
        self.insert_pack(id, index, true);
    }

    fn loc(&self, d: &Digest) -> Option<Loc> {
        let b = Self::bucket_of(d, self.bucket_bits);
        if let (Some(&start), Some(&end)) = (self.buckets.get(b), self.buckets.get(b + 1)) {
            let run = &self.sorted[start as usize..end as usize];
            if let Ok(i) = run.binary_search_by_key(d, |(k, _)| *k) {
                return Some(run[i].1);
            }
        }
        self.added.get(d).copied()
    }

    pub fn contains(&self, d: &Digest) -> bool {
        self.loc(d).is_some()
    }

    /// Number of distinct blobs.
    pub fn len(&self) -> usize {
        self.sorted.len() + self.added.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn packs(&self) -> &[PackInfo] {
        &self.packs
    }

    pub fn locate(&self, d: &Digest) -> Option<BlobLocation> {
        let loc = self.loc(d)?;
        let pack = &self.packs[loc.pack as usize];
        Some(BlobLocation {
            pack: pack.id.clone(),
            path: pack_path(&pack.id, "zip"),
            offset: loc.offset as u64,
            stored_len: loc.len as u64,
            compression: Compression::from_code(loc.method as u16).unwrap_or(Compression::Stored),
        })
    }

    /// Reads a blob and checks it against its digest.
    pub fn read(&self, target: &dyn Target, d: &Digest) -> Result<Vec<u8>> {
        read_at(target, &self.find(d)?, d)
    }

    /// Where a blob is; an error saying why when no pack of the pool holds it.
    pub fn find(&self, d: &Digest) -> Result<BlobLocation> {
        self.locate(d).ok_or_else(|| {
            // Most likely in a pack the pool had to leave out: say which.
            match self.problems.first() {
                Some(p) => BackupError::corrupt(
                    &p.path,
                    format!(
                        "{}; blob {d} is not readable from any other pack \
                         (mailvault backup verify lists every damaged object)",
                        p.message
                    ),
                ),
                None => BackupError::NotFound(format!("blob {d}")),
            }
        })
    }
}

/// Removes the pack files without an index: a backup writes a pack's zip, then
/// its index ([`PackWriter::seal`]), so a zip alone was left by a backup
/// interrupted between the two (or by a power cut that kept the one and not the
/// other) and no session refers to its blobs. Call with the target's lock held,
/// before writing packs. Returns the removed paths.
pub fn remove_orphans(target: &dyn Target) -> Result<Vec<String>> {
    let objects = target.list("packs/")?;
    let names: std::collections::HashSet<&str> = objects.iter().map(|o| o.path.as_str()).collect();
    let mut removed = Vec::new();
    for o in &objects {
        if let Some(stem) = o.path.strip_suffix(".zip")
            && !names.contains(format!("{stem}.idx").as_str())
        {
            target.delete(&o.path)?;
            removed.push(o.path.clone());
        }
    }
    Ok(removed)
}

/// Reads, decompresses and checks one blob at a known location.
pub fn read_at(target: &dyn Target, loc: &BlobLocation, d: &Digest) -> Result<Vec<u8>> {
    let stored = target.get_range(&loc.path, loc.offset, loc.stored_len)?;
    let raw = loc
        .compression
        .decode(stored, loc.stored_len as usize)
        .map_err(|e| {
            BackupError::corrupt(
                &loc.path,
                format!("blob {d} at offset {} does not decompress: {e}", loc.offset),
            )
        })?;
    let found = Digest::of(&raw);
    if &found != d {
        return Err(BackupError::corrupt(
            &loc.path,
            format!(
                "blob {d} at offset {} is damaged (its content hashes to {found})",
                loc.offset
            ),
        ));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::FsTarget;

    #[test]
    fn memory_per_blob_is_48_bytes() {
        assert_eq!(std::mem::size_of::<(Digest, Loc)>(), 48);
    }

    /// The bucket table finds every digest the pool holds, and none it does not,
    /// whatever the count (powers of two and their neighbours) and however the
    /// digests cluster (all sharing their first bytes, as no real digest does).
    #[test]
    fn every_blob_is_found_through_the_bucket_table() {
        fn pool_of(digests: &[Digest]) -> Pool {
            let index = PackIndex {
                zip_size: 0,
                zip_blake3: [0; 32],
                entries: digests
                    .iter()
                    .enumerate()
                    .map(|(i, d)| IdxEntry {
                        digest: *d,
                        offset: i as u64,
                        stored_len: 1,
                        raw_len: 1,
                        crc32: 0,
                        compression: Compression::Stored,
                    })
                    .collect(),
            };
            let mut pool = Pool::default();
            pool.insert_pack("p".into(), &index, false);
            pool.sorted.sort_unstable_by_key(|(d, _)| *d);
            pool.index_buckets();
            pool
        }
        for n in [0usize, 1, 2, 3, 4, 5, 127, 128, 129, 1000] {
            let spread: Vec<Digest> = (0..n).map(|i| Digest::of(&i.to_le_bytes())).collect();
            let clustered: Vec<Digest> = (0..n)
                .map(|i| {
                    let mut d = [0xAB; 32];
                    d[24..].copy_from_slice(&(i as u64).to_be_bytes());
                    Digest(d)
                })
                .collect();
            for digests in [spread, clustered] {
                let pool = pool_of(&digests);
                assert!(pool.buckets.len() <= n.max(1) + 1, "n = {n}");
                for (i, d) in digests.iter().enumerate() {
                    let loc = pool
                        .loc(d)
                        .unwrap_or_else(|| panic!("n = {n}: #{i} not found"));
                    assert_eq!(loc.offset as usize, i);
                }
                for i in n..n + 50 {
                    assert!(!pool.contains(&Digest::of(&i.to_le_bytes())), "n = {n}");
                }
                assert!(!pool.contains(&Digest([0xAB; 32])));
                assert!(!pool.contains(&Digest([0xFF; 32])));
            }
        }
    }

    #[test]
    fn packs_round_trip_in_every_compression() {
        let dir = tempfile::tempdir().unwrap();
        let t = FsTarget::open(dir.path()).unwrap();
        let blobs: Vec<Vec<u8>> = (0..20)
            .map(|i| format!("message {i} ").repeat(100 + i).into_bytes())
            .collect();
        for c in [Compression::Stored, Compression::Deflate, Compression::Zstd] {
            let mut w = PackWriter::new(&t, c).unwrap();
            for b in &blobs {
                w.add(Digest::of(b), b).unwrap();
            }
            let (id, index) = w.seal(&t).unwrap();
            let back = PackIndex::decode("x", &index.encode()).unwrap();
            assert_eq!(back.entries.len(), 20);
            assert!(t.size(&pack_path(&id, "idx")).unwrap().is_some());
        }
        let pool = Pool::load(&t).unwrap();
        assert!(pool.problems.is_empty(), "{:?}", pool.problems);
        assert_eq!(pool.packs().len(), 3);
        assert_eq!(pool.len(), 20);
        for b in &blobs {
            assert_eq!(&pool.read(&t, &Digest::of(b)).unwrap(), b);
        }
    }

    #[test]
    fn damaged_index_and_truncated_pack_are_problems_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let t = FsTarget::open(dir.path()).unwrap();
        let mut w = PackWriter::new(&t, Compression::Stored).unwrap();
        w.add(Digest::of(b"abc"), b"abc").unwrap();
        let (id, _) = w.seal(&t).unwrap();
        let idx = t.local_path(&pack_path(&id, "idx")).unwrap();
        let good = std::fs::read(&idx).unwrap();
        for cut in [0, 10, good.len() - 1] {
            std::fs::write(&idx, &good[..cut]).unwrap();
            let pool = Pool::load(&t).unwrap();
            assert_eq!(pool.problems.len(), 1);
            assert!(!pool.contains(&Digest::of(b"abc")));
        }
        std::fs::write(&idx, &good).unwrap();
        let zip = t.local_path(&pack_path(&id, "zip")).unwrap();
        let z = std::fs::read(&zip).unwrap();
        std::fs::write(&zip, &z[..z.len() - 5]).unwrap();
        let pool = Pool::load(&t).unwrap();
        assert_eq!(pool.problems.len(), 1, "{:?}", pool.problems);
    }
}
