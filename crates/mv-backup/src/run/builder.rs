//! The files of a session being written ([`SessionBuilder`]) and of an earlier
//! session, by path ([`FileIndex`]).

use crate::error::{BackupError, Result};
use crate::label::Label;
use crate::session::FileEntry;
use crate::target::Target;
use std::io::Read;
use std::path::Path;

/// A session's files by path, for lookups per account (a session lists a few
/// files per account: a linear search per account grows with the square).
pub(crate) struct FileIndex(Vec<(String, usize)>);

impl FileIndex {
    pub fn new(files: &[FileEntry]) -> FileIndex {
        let mut v: Vec<(String, usize)> = files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.path.clone(), i))
            .collect();
        v.sort();
        FileIndex(v)
    }

    /// The position in `files` of the file at `path`.
    pub fn get(&self, path: &str) -> Option<usize> {
        self.0
            .binary_search_by(|(p, _)| p.as_str().cmp(path))
            .ok()
            .map(|i| self.0[i].1)
    }

    /// Positions of the files whose path starts with `prefix`.
    pub fn under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = usize> + 'a {
        let start = self.0.partition_point(|(p, _)| p.as_str() < prefix);
        self.0[start..]
            .iter()
            .take_while(move |(p, _)| p.starts_with(prefix))
            .map(|(_, i)| *i)
    }
}

/// Collects the files of a session being written, with their checksums.
pub(crate) struct SessionBuilder<'t> {
    target: &'t dyn Target,
    pub label: Label,
    pub files: Vec<FileEntry>,
    written_at_start: u64,
}

impl<'t> SessionBuilder<'t> {
    pub fn new(target: &'t dyn Target, label: Label) -> SessionBuilder<'t> {
        SessionBuilder {
            target,
            label,
            files: Vec::new(),
            written_at_start: target.bytes_written(),
        }
    }

    pub fn put(&mut self, rel: &str, data: &[u8]) -> Result<()> {
        self.target
            .session_put(&self.label.to_string(), rel, data)?;
        self.record(rel, data);
        Ok(())
    }

    /// Like `put` for a secret ([`Target::session_put_private`]).
    pub fn put_private(&mut self, rel: &str, data: &[u8]) -> Result<()> {
        self.target
            .session_put_private(&self.label.to_string(), rel, data)?;
        self.record(rel, data);
        Ok(())
    }

    fn record(&mut self, rel: &str, data: &[u8]) {
        self.files.push(FileEntry {
            path: rel.to_string(),
            size: data.len() as u64,
            blake3: blake3::hash(data).to_hex().to_string(),
            from: None,
        });
    }

    /// Moves a local file into the session (hashing it first).
    pub fn put_file(&mut self, rel: &str, local: &Path) -> Result<u64> {
        let (size, hash) = hash_file(local)?;
        self.target
            .session_put_file(&self.label.to_string(), rel, local)?;
        self.files.push(FileEntry {
            path: rel.to_string(),
            size,
            blake3: hash,
            from: None,
        });
        Ok(size)
    }

    /// Writes an account file of this full into `pieces/<label>/<rel>`
    /// ([`Target::piece_put`]), where later fulls can refer to it.
    pub fn put_piece(&mut self, rel: &str, data: &[u8]) -> Result<()> {
        let label = self.label.to_string();
        self.target.piece_put(&label, rel, data)?;
        self.files.push(FileEntry {
            path: rel.to_string(),
            size: data.len() as u64,
            blake3: blake3::hash(data).to_hex().to_string(),
            from: Some(self.label),
        });
        Ok(())
    }

    /// Like `put_piece` from a local file, which may be moved.
    pub fn put_piece_file(&mut self, rel: &str, local: &Path) -> Result<u64> {
        let (size, hash) = hash_file(local)?;
        self.target
            .piece_put_file(&self.label.to_string(), rel, local)?;
        self.files.push(FileEntry {
            path: rel.to_string(),
            size,
            blake3: hash,
            from: Some(self.label),
        });
        Ok(size)
    }

    /// Names in this session an account file an earlier full wrote into
    /// `pieces/` and that did not change: nothing is written but the entry.
    pub fn keep_piece(&mut self, f: &FileEntry) {
        debug_assert!(f.from.is_some());
        self.files.push(f.clone());
    }

    /// Puts the target's object `from` (outside any session: a shipped redo
    /// log) into this session under `rel`, with its known size and BLAKE3
    /// (linked where the target can).
    pub fn copy_object(&mut self, rel: &str, from: &str, size: u64, blake3: &str) -> Result<u64> {
        let got = self
            .target
            .session_copy(&self.label.to_string(), rel, from)?;
        if got != size {
            return Err(BackupError::corrupt(
                from,
                format!("{got} bytes, {size} when it was checked"),
            ));
        }
        self.files.push(FileEntry {
            path: rel.to_string(),
            size,
            blake3: blake3.to_string(),
            from: None,
        });
        Ok(size)
    }

    /// Drops the files under `rel_prefix` (an account that failed).
    pub fn remove(&mut self, rel_prefix: &str) {
        let _ = self
            .target
            .session_remove(&self.label.to_string(), rel_prefix);
        self.files
            .retain(|f| !f.path.starts_with(&format!("{rel_prefix}/")));
    }

    pub fn bytes_written(&self) -> u64 {
        self.target
            .bytes_written()
            .saturating_sub(self.written_at_start)
    }
}

/// Size and BLAKE3 (hex) of a local file.
pub(crate) fn hash_file(path: &Path) -> Result<(u64, String)> {
    let mut f = std::fs::File::open(path).map_err(BackupError::io(path.display()))?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(BackupError::io(path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, h.finalize().to_hex().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_index_finds_by_path_and_by_prefix() {
        let files: Vec<FileEntry> = [
            "a/index/meta.json",
            "a/db/mailbox.sqlite",
            "ab/x",
            "a/index/segments.zip",
            "b/meta.xml",
        ]
        .iter()
        .map(|p| FileEntry {
            path: p.to_string(),
            size: 1,
            blake3: String::new(),
            from: None,
        })
        .collect();
        let ix = FileIndex::new(&files);
        assert_eq!(ix.get("a/db/mailbox.sqlite"), Some(1));
        assert_eq!(ix.get("a/db"), None);
        let mut under: Vec<usize> = ix.under("a/index/").collect();
        under.sort();
        assert_eq!(under, vec![0, 3]);
        assert_eq!(ix.under("c/").count(), 0);
        assert_eq!(ix.under("a").count(), 4);
    }
}
