//! Writing a pack: blobs streamed into a zip in the scratch directory, then
//! sealed (finished, fsynced, moved into the target) and indexed.

use super::{Compression, IdxEntry, PackIndex};
use crate::error::{BackupError, Result};
use crate::target::{Target, pack_path};
use mv_types::Digest;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

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
