//! Blob files: message bodies on volumes, in Zimbra's layout
//! `<volume>/<(mbox>>12)&0xFF>/<mbox>/msg/<(item>>12)&0xFF>/<item>-<revision>.msg`.
//!
//! New content is first written to `store/incoming/` (the staging area), then
//! hard-linked to each recipient's path, so a message delivered to N local
//! recipients is one file with N links (a copy where the filesystem cannot link).
//!
//! Blob files are not fsynced one by one: the redo log holds every new blob's bytes
//! and is fsynced before anything is acknowledged. Recovery rewrites any blob that
//! a crash lost from the redo records after the last checkpoint, and
//! [`BlobStore::checkpoint`] makes all files durable before a checkpoint is
//! recorded: one `syncfs` per filesystem known to honour it, else an fsync of
//! every file and directory written since the last checkpoint
//! ([`mv_home::SyncMode`]).

mod durability;
mod header;

pub use durability::{SyncHeld, SyncInFlight};

use durability::{Dirty, SyncLock, start_writeback};
use mv_home::{FsKind, SyncMode};
use mv_types::{Digest, ItemId, MailboxId, UtcMillis};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A storage volume (`zmvolume -l`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Volume {
    pub id: u16,
    pub name: String,
    /// "primaryMessage" or "secondaryMessage" (HSM) or "index".
    pub kind: String,
    pub path: PathBuf,
    pub current: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob I/O on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "missing content for digest {0}: no staged copy and no stored blob (the redo log or backup lacks this message's bytes)"
    )]
    MissingContent(Digest),
    #[error("blob {path} is damaged: expected digest {expected}, found {found}")]
    Damaged {
        path: PathBuf,
        expected: Digest,
        found: Digest,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The blob store of a home: volumes, the staging area and deferred deletion.
pub struct BlobStore {
    store_dir: PathBuf,
    volumes: Vec<Volume>,
    staging_seq: AtomicU64,
    /// Start times of running backups: blobs deleted after the oldest of these must stay.
    holds: Mutex<Vec<(u64, UtcMillis)>>,
    next_hold: AtomicU64,
    /// Directories outside the store whose filesystems a checkpoint syncs too
    /// (the mailbox databases: a checkpoint must cover them wherever they live).
    synced_with: Vec<PathBuf>,
    /// One directory per filesystem the store uses, with its kind and mode.
    roots: Vec<(PathBuf, FsKind)>,
    /// Some root is not synced by `syncfs`: what is written is noted in `dirty`
    /// and fsynced by name at the next checkpoint.
    per_file: bool,
    dirty: Mutex<Dirty>,
    /// Held by every checkpoint from the moment it takes what is noted as
    /// unsynced (here and in the mailboxes) until its syncs have returned: a
    /// second checkpoint finds the notes already taken, and without this wait it
    /// would record a checkpoint over writes whose fsyncs were still running
    /// (a power cut then loses writes the record says are durable).
    sync_lock: Arc<SyncLock>,
}

impl BlobStore {
    /// Opens (creating if needed) the store directory with its two message volumes.
    pub fn open(store_dir: &Path) -> Result<BlobStore, BlobError> {
        let volumes = vec![
            Volume {
                id: 1,
                name: "message1".into(),
                kind: "primaryMessage".into(),
                path: store_dir.join("message1"),
                current: true,
            },
            Volume {
                id: 2,
                name: "hsm1".into(),
                kind: "secondaryMessage".into(),
                path: store_dir.join("hsm1"),
                current: true,
            },
        ];
        for dir in volumes
            .iter()
            .map(|v| v.path.clone())
            .chain([store_dir.join("incoming")])
        {
            mv_home::durable::create_dir_all_durable(&dir).map_err(io_err(&dir))?;
        }
        let mut bs = BlobStore {
            store_dir: store_dir.to_path_buf(),
            volumes,
            staging_seq: AtomicU64::new(0),
            holds: Mutex::new(Vec::new()),
            next_hold: AtomicU64::new(1),
            synced_with: Vec::new(),
            roots: Vec::new(),
            per_file: false,
            dirty: Mutex::new(Dirty::default()),
            sync_lock: Arc::new(SyncLock::default()),
        };
        bs.classify()?;
        Ok(bs)
    }

    /// Makes [`Self::checkpoint`] sync `dir`'s filesystem too (once, when it is
    /// not one the store's directories are on already).
    pub fn sync_with(mut self, dir: &Path) -> Result<BlobStore, BlobError> {
        self.synced_with.push(dir.to_path_buf());
        self.classify()?;
        Ok(self)
    }

    /// Makes every checkpoint fsync what was written file by file, whatever the
    /// filesystems are (tests of [`SyncMode::PerFile`] on a local filesystem).
    #[doc(hidden)]
    pub fn per_file_everywhere(mut self) -> BlobStore {
        for (_, kind) in &mut self.roots {
            kind.mode = SyncMode::PerFile;
        }
        self.per_file = true;
        self
    }

    pub fn volumes(&self) -> &[Volume] {
        &self.volumes
    }

    fn volume_path(&self, volume_id: u16) -> &Path {
        self.volumes
            .iter()
            .find(|v| v.id == volume_id)
            .map(|v| v.path.as_path())
            .unwrap_or(&self.volumes[0].path)
    }

    /// Where an item's blob lives.
    pub fn blob_path(
        &self,
        volume_id: u16,
        mailbox: MailboxId,
        item: ItemId,
        revision: u64,
    ) -> PathBuf {
        let m = mailbox.0;
        let i = item.0;
        self.volume_path(volume_id)
            .join(((m >> 12) & 0xff).to_string())
            .join(m.to_string())
            .join("msg")
            .join(((i >> 12) & 0xff).to_string())
            .join(format!("{i}-{revision}.msg"))
    }

    pub fn incoming_dir(&self) -> PathBuf {
        self.store_dir.join("incoming")
    }

    /// Writes new content to the staging area and returns its digest and path.
    pub fn stage(&self, bytes: &[u8]) -> Result<(Digest, PathBuf), BlobError> {
        self.stage_file(bytes)
            .map(|(digest, path, _)| (digest, path))
    }

    /// [`Self::stage`] for a replay, which makes its content durable with one sync
    /// at its end: the file's writing starts now, as a restore's blobs do
    /// ([`Self::write_unpublished`]). Left to that sync, a replay of 1.3 GB of
    /// deliveries wrote all of it at the end, with the disk idle until then.
    pub fn stage_for_replay(&self, bytes: &[u8]) -> Result<(Digest, PathBuf), BlobError> {
        let (digest, path, file) = self.stage_file(bytes)?;
        start_writeback(&file);
        Ok((digest, path))
    }

    fn stage_file(&self, bytes: &[u8]) -> Result<(Digest, PathBuf, fs::File), BlobError> {
        let digest = Digest::of(bytes);
        let n = self.staging_seq.fetch_add(1, Ordering::Relaxed);
        let path =
            self.incoming_dir()
                .join(format!("{}-{}-{n}", digest.to_hex(), std::process::id()));
        let mut f = fs::File::create(&path).map_err(io_err(&path))?;
        f.write_all(bytes).map_err(io_err(&path))?;
        Ok((digest, path, f))
    }

    /// Puts content at `dest` by hard-linking `source` (copying where links are
    /// impossible). An existing file at `dest` (left by a crash before its database
    /// commit) is replaced.
    pub fn link_or_copy(&self, source: &Path, dest: &Path) -> Result<(), BlobError> {
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        match fs::hard_link(source, dest) {
            Ok(()) => {
                self.note_written(dest);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                fs::remove_file(dest).map_err(io_err(dest))?;
                self.link_or_copy(source, dest)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(io_err(source)(e)),
            Err(_) => {
                // Cross-device or a filesystem without links: copy through a temp name.
                let tmp = dest.with_extension("msg.tmp");
                fs::copy(source, &tmp).map_err(io_err(&tmp))?;
                fs::rename(&tmp, dest).map_err(io_err(dest))?;
                self.note_written(dest);
                Ok(())
            }
        }
    }

    /// Writes `bytes` directly at `dest` (replay of content with no staged file).
    pub fn write_at(&self, dest: &Path, bytes: &[u8]) -> Result<(), BlobError> {
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let tmp = dest.with_extension("msg.tmp");
        fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
        fs::rename(&tmp, dest).map_err(io_err(dest))?;
        self.note_written(dest);
        Ok(())
    }

    /// Writes `bytes` at `dest`, whose directory exists, for a mailbox nothing points
    /// at yet (a restore builds it whole, syncs the filesystem, then makes it live; a
    /// failure removes it): no temporary name is needed. Writeback starts at once so
    /// that the sync before going live finds most of it on disk already.
    pub fn write_unpublished(&self, dest: &Path, bytes: &[u8]) -> Result<(), BlobError> {
        let mut f = fs::File::create(dest).map_err(io_err(dest))?;
        f.write_all(bytes).map_err(io_err(dest))?;
        start_writeback(&f);
        self.note_written(dest);
        Ok(())
    }

    /// Reads a blob and checks it against its digest.
    pub fn read_verified(&self, path: &Path, digest: &Digest) -> Result<Vec<u8>, BlobError> {
        let bytes = fs::read(path).map_err(io_err(path))?;
        let found = Digest::of(&bytes);
        if &found != digest {
            return Err(BlobError::Damaged {
                path: path.to_path_buf(),
                expected: *digest,
                found,
            });
        }
        Ok(bytes)
    }

    /// Registers a running backup: blobs deleted from now on are kept until the
    /// returned hold is released. (Invariant 4 of the design.)
    pub fn hold(&self) -> BlobHold<'_> {
        let id = self.next_hold.fetch_add(1, Ordering::Relaxed);
        self.holds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((id, UtcMillis::now()));
        BlobHold { store: self, id }
    }

    /// The start of the oldest running backup, if any.
    pub fn oldest_hold(&self) -> Option<UtcMillis> {
        self.holds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(_, t)| *t)
            .min()
    }

    /// Whether a blob deleted at `deleted_at` may be unlinked now.
    pub fn may_remove(&self, deleted_at: UtcMillis) -> bool {
        self.oldest_hold().is_none_or(|oldest| deleted_at < oldest)
    }

    /// Removes a blob file; a file already gone is fine (replay, repeated sweeps).
    pub fn remove(&self, path: &Path) -> Result<(), BlobError> {
        match fs::remove_file(path) {
            Ok(()) => {
                if let Some(dir) = path.parent() {
                    self.note_dir(dir);
                }
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(path)(e)),
        }
    }

    /// Empties the staging area (at start-up, and after a replay).
    pub fn clear_staging(&self) -> Result<(), BlobError> {
        let dir = self.incoming_dir();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            self.remove(&entry.path())?;
        }
        Ok(())
    }
}

/// A running backup's claim on deleted blobs; released on drop.
pub struct BlobHold<'a> {
    store: &'a BlobStore,
    id: u64,
}

impl Drop for BlobHold<'_> {
    fn drop(&mut self) {
        self.store
            .holds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(id, _)| *id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn zimbra_path_layout() {
        let dir = tempfile::tempdir().unwrap();
        let bs = BlobStore::open(dir.path()).unwrap();
        let p = bs.blob_path(1, MailboxId(5000), ItemId(4097), 12);
        assert!(
            p.ends_with("message1/1/5000/msg/1/4097-12.msg"),
            "{}",
            p.display()
        );
    }

    #[test]
    fn staged_content_links_into_several_mailboxes() {
        let dir = tempfile::tempdir().unwrap();
        let bs = BlobStore::open(dir.path()).unwrap();
        let (digest, staged) = bs.stage(b"hello").unwrap();
        assert_eq!(digest, Digest::of(b"hello"));
        let a = bs.blob_path(1, MailboxId(1), ItemId(256), 1);
        let b = bs.blob_path(1, MailboxId(2), ItemId(256), 1);
        bs.link_or_copy(&staged, &a).unwrap();
        bs.link_or_copy(&staged, &b).unwrap();
        bs.link_or_copy(&staged, &b).unwrap();
        assert_eq!(
            fs::metadata(&a).unwrap().ino(),
            fs::metadata(&b).unwrap().ino()
        );
        assert_eq!(bs.read_verified(&a, &digest).unwrap(), b"hello");
        bs.clear_staging().unwrap();
        assert_eq!(fs::metadata(&a).unwrap().nlink(), 2);
        bs.checkpoint().unwrap();
    }

    #[test]
    fn holds_defer_removal_of_later_deletions() {
        let dir = tempfile::tempdir().unwrap();
        let bs = BlobStore::open(dir.path()).unwrap();
        let before = UtcMillis(UtcMillis::now().0 - 1000);
        assert!(bs.may_remove(UtcMillis::now()));
        let hold = bs.hold();
        assert!(
            bs.may_remove(before),
            "deleted before the backup started: not needed by it"
        );
        assert!(!bs.may_remove(UtcMillis(UtcMillis::now().0 + 1)));
        drop(hold);
        assert!(bs.may_remove(UtcMillis::now()));
    }

    #[test]
    fn damaged_blob_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let bs = BlobStore::open(dir.path()).unwrap();
        let p = dir.path().join("x.msg");
        fs::write(&p, b"hellO").unwrap();
        assert!(matches!(
            bs.read_verified(&p, &Digest::of(b"hello")),
            Err(BlobError::Damaged { .. })
        ));
    }
}
