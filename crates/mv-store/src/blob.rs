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

use mv_home::{FsKind, SyncMode};
use mv_types::{Digest, ItemId, MailboxId, UtcMillis};
use std::collections::HashSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

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

/// Files and directories written since the last checkpoint ([`SyncMode::PerFile`]).
#[derive(Default)]
struct Dirty {
    files: HashSet<PathBuf>,
    dirs: HashSet<PathBuf>,
}

impl Dirty {
    fn merge(&mut self, other: Dirty) {
        self.files.extend(other.files);
        self.dirs.extend(other.dirs);
    }

    /// Files first, then their directories (a new name is durable only once its
    /// directory is, and only worth it once the file's bytes are).
    fn sync(&self) -> Result<(), BlobError> {
        for f in &self.files {
            mv_home::syncmode::fsync_path(f).map_err(io_err(f))?;
        }
        for d in &self.dirs {
            mv_home::syncmode::fsync_path(d).map_err(io_err(d))?;
        }
        Ok(())
    }
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

    fn classify(&mut self) -> Result<(), BlobError> {
        let mut roots = Vec::new();
        for root in self.filesystem_roots()? {
            let kind = mv_home::fs_kind(&root).map_err(io_err(&root))?;
            roots.push((root, kind));
        }
        self.per_file = roots.iter().any(|(_, k)| k.mode == SyncMode::PerFile);
        self.roots = roots;
        Ok(())
    }

    /// Each filesystem the store uses (one directory on it) and how checkpoints
    /// make it durable.
    pub fn durability(&self) -> &[(PathBuf, FsKind)] {
        &self.roots
    }

    /// Logs how each root is made durable (at start-up).
    pub fn log_durability(&self) {
        for (root, kind) in &self.roots {
            tracing::info!(
                root = %root.display(),
                filesystem = kind.name,
                mode = kind.mode.as_str(),
                "durability of the store's writes at checkpoints"
            );
        }
    }

    /// Whether checkpoints fsync file by file (see [`SyncMode::PerFile`]).
    pub fn per_file(&self) -> bool {
        self.per_file
    }

    /// Notes a file written since the last checkpoint (and, for the store's own
    /// files, every directory between it and the store, which it may have created):
    /// in [`SyncMode::PerFile`] the next checkpoint fsyncs them by name.
    pub fn note_written(&self, file: &Path) {
        if !self.per_file {
            return;
        }
        let mut d = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
        d.files.insert(file.to_path_buf());
        let mut dir = file.parent();
        while let Some(p) = dir {
            if !d.dirs.insert(p.to_path_buf())
                || !p.starts_with(&self.store_dir)
                || p == self.store_dir
            {
                break;
            }
            dir = p.parent();
        }
    }

    /// Notes a directory whose entries changed (a file removed or renamed).
    pub fn note_dir(&self, dir: &Path) {
        if self.per_file {
            let mut d = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
            d.dirs.insert(dir.to_path_buf());
        }
    }

    fn take_dirty(&self) -> Dirty {
        std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn put_back(&self, dirty: Dirty) {
        self.dirty
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .merge(dirty);
    }

    fn syncfs_roots(&self) -> Vec<PathBuf> {
        self.roots
            .iter()
            .filter(|(_, k)| k.mode == SyncMode::Syncfs)
            .map(|(r, _)| r.clone())
            .collect()
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

    /// The bytes of a blob up to and including the first empty line (CRLF CRLF or
    /// LF LF), read in chunks; the whole blob if there is none.
    pub fn read_header(&self, path: &Path) -> Result<Vec<u8>, BlobError> {
        use std::io::Read;
        let mut f = fs::File::open(path).map_err(io_err(path))?;
        let mut out = Vec::with_capacity(8192);
        let mut chunk = [0u8; 8192];
        loop {
            let n = f.read(&mut chunk).map_err(io_err(path))?;
            if n == 0 {
                return Ok(out);
            }
            // Search from a little before the new bytes: the empty line may span reads.
            let from = out.len().saturating_sub(3);
            out.extend_from_slice(&chunk[..n]);
            let found = if from == 0 {
                header_end(&out)
            } else {
                // Starts at a line end or before it: only "\n\n" / "\n\r\n" count.
                header_end_after(&out[from..])
            };
            if let Some(end) = found {
                out.truncate(from + end);
                return Ok(out);
            }
        }
    }

    /// Makes every file written so far durable: one `syncfs` per filesystem holding
    /// the store that honours it, and an fsync of each file and directory noted
    /// since the last checkpoint ([`Self::note_written`]) where one does not. On
    /// failure the noted files stay noted for the next checkpoint.
    pub fn checkpoint(&self) -> Result<(), BlobError> {
        let held = self.sync_lock();
        self.checkpoint_holding(&held)
    }

    /// Waits for any checkpoint's syncs under way and keeps others from
    /// starting: hold it from taking what is noted as unsynced (the files here,
    /// the mailbox databases' flags) until the syncs have returned, then call
    /// [`Self::checkpoint_holding`].
    pub fn sync_lock(&self) -> SyncHeld {
        SyncLock::acquire(&self.sync_lock)
    }

    /// [`Self::checkpoint`] for a caller holding [`Self::sync_lock`].
    pub fn checkpoint_holding(&self, _held: &SyncHeld) -> Result<(), BlobError> {
        let dirty = self.take_dirty();
        let res = dirty.sync().and_then(|()| sync_each(&self.syncfs_roots()));
        if res.is_err() {
            self.put_back(dirty);
        }
        res
    }

    /// [`Self::checkpoint`] on a thread of its own, so the caller can go on with
    /// other work meanwhile; [`SyncInFlight::wait`] says when it is done.
    pub fn checkpoint_in_background(&self) -> SyncInFlight {
        let roots = self.syncfs_roots();
        // Taken now, under the sync lock the thread keeps until its syncs are
        // done (see `sync_lock`): files noted later are the next checkpoint's.
        // A failure is reported to the waiter, who treats the whole work as not
        // durable.
        let held = self.sync_lock();
        let dirty = Arc::new(self.take_dirty());
        let run = |dirty: &Dirty, roots: &[PathBuf]| dirty.sync().and_then(|()| sync_each(roots));
        let spawned = std::thread::Builder::new()
            .name("store-sync".into())
            .spawn({
                let roots = roots.clone();
                let dirty = dirty.clone();
                move || {
                    let _held = held;
                    run(&dirty, &roots)
                }
            });
        match spawned {
            Ok(handle) => SyncInFlight::Running(handle),
            Err(_) => {
                let _held = self.sync_lock();
                SyncInFlight::Done(run(&dirty, &roots))
            }
        }
    }

    /// One directory per filesystem holding the store. Volumes usually share the
    /// store's filesystem: a second syncfs there would only cost another journal
    /// commit and disk cache flush.
    fn filesystem_roots(&self) -> Result<Vec<PathBuf>, BlobError> {
        use std::os::unix::fs::MetadataExt;
        let mut devices = Vec::new();
        let mut roots = Vec::new();
        for root in std::iter::once(self.store_dir.as_path())
            .chain(self.volumes.iter().map(|v| v.path.as_path()))
            .chain(self.synced_with.iter().map(|d| d.as_path()))
        {
            let dev = fs::metadata(root).map_err(io_err(root))?.dev();
            if !devices.contains(&dev) {
                devices.push(dev);
                roots.push(root.to_path_buf());
            }
        }
        Ok(roots)
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

fn syncfs(path: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = fs::File::open(path)?;
    // SAFETY: syncfs takes a valid open descriptor and has no memory effects.
    let rc = unsafe { libc::syncfs(f.as_raw_fd()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The length of the header section at the start of `b` (through the empty line).
/// `b` is searched from its start for an empty line after a line end; a message
/// that starts with an empty line has an empty header.
fn header_end(b: &[u8]) -> Option<usize> {
    if b.starts_with(b"\r\n") {
        return Some(2);
    }
    if b.starts_with(b"\n") {
        return Some(1);
    }
    header_end_after(b)
}

/// Like [`header_end`], without the empty-header case (for a slice that starts
/// inside the header).
fn header_end_after(b: &[u8]) -> Option<usize> {
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' {
            if b.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
            if b.get(i + 1) == Some(&b'\r') && b.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
    }
    None
}

fn sync_each(roots: &[PathBuf]) -> Result<(), BlobError> {
    for root in roots {
        syncfs(root).map_err(io_err(root))?;
    }
    Ok(())
}

/// See [`BlobStore::sync_lock`]: a lock whose holding can move to the thread
/// that runs the syncs.
#[derive(Default)]
struct SyncLock {
    busy: Mutex<bool>,
    freed: Condvar,
}

impl SyncLock {
    fn acquire(lock: &Arc<SyncLock>) -> SyncHeld {
        let mut busy = lock.busy.lock().unwrap_or_else(|p| p.into_inner());
        while *busy {
            busy = lock.freed.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
        *busy = true;
        SyncHeld(lock.clone())
    }
}

/// [`BlobStore::sync_lock`] held; released when dropped.
pub struct SyncHeld(Arc<SyncLock>);

impl Drop for SyncHeld {
    fn drop(&mut self) {
        *self.0.busy.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.0.freed.notify_one();
    }
}

/// A [`BlobStore::checkpoint_in_background`] under way.
pub enum SyncInFlight {
    Running(std::thread::JoinHandle<Result<(), BlobError>>),
    /// It could not start a thread, or failed before: ran (or failed) at once.
    Done(Result<(), BlobError>),
}

impl SyncInFlight {
    /// Waits for it: `Ok` once everything written before it began is durable.
    pub fn wait(self) -> Result<(), BlobError> {
        match self {
            SyncInFlight::Running(handle) => handle.join().unwrap_or_else(|_| {
                Err(BlobError::Io {
                    path: PathBuf::new(),
                    source: io::Error::other("the thread syncing the store panicked"),
                })
            }),
            SyncInFlight::Done(r) => r,
        }
    }
}

/// Asks the kernel to start writing a file's dirty pages now, without waiting: a
/// hint only (a later sync is what makes them durable), so its result is ignored.
fn start_writeback(f: &fs::File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid descriptor for the call's duration; no memory is passed.
        unsafe {
            libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = f;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A checkpoint syncs the filesystem of every directory it is told to sync
    /// with, once per filesystem: the mailbox databases on a filesystem of
    /// their own are synced too.
    #[test]
    fn checkpoint_covers_each_filesystem_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        fs::create_dir_all(&db).unwrap();
        let bs = BlobStore::open(&dir.path().join("store"))
            .unwrap()
            .sync_with(&db)
            .unwrap();
        assert_eq!(bs.filesystem_roots().unwrap().len(), 1, "one filesystem");
        // Linux's /dev/shm is a tmpfs: another filesystem than the temp dir's.
        let shm = Path::new("/dev/shm");
        let other = tempfile::tempdir_in(shm).unwrap();
        let bs = bs.sync_with(other.path()).unwrap();
        let roots = bs.filesystem_roots().unwrap();
        if fs::metadata(shm).unwrap().dev() != fs::metadata(dir.path()).unwrap().dev() {
            assert_eq!(roots.len(), 2, "{roots:?}");
            assert_eq!(roots[1], other.path());
        }
        bs.checkpoint().unwrap();
    }

    /// Where syncfs cannot be trusted, a checkpoint fsyncs by name every file
    /// written since the last one and every directory up to the store that may
    /// have gained an entry (new directories included), then forgets them.
    #[test]
    fn per_file_checkpoints_cover_each_written_file_and_its_new_directories() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let bs = BlobStore::open(&store).unwrap().per_file_everywhere();
        assert!(bs.per_file());
        let p = bs.blob_path(1, MailboxId(7), ItemId(300), 1);
        bs.write_at(&p, b"hello").unwrap();
        let removed = bs.blob_path(1, MailboxId(8), ItemId(1), 1);
        bs.remove(&removed).unwrap(); // never existed: nothing changed
        {
            let d = bs.dirty.lock().unwrap();
            assert_eq!(d.files.iter().collect::<Vec<_>>(), [&p]);
            let mut want: Vec<&Path> = p
                .ancestors()
                .skip(1)
                .take_while(|a| a.starts_with(&store))
                .collect();
            let mut got: Vec<&Path> = d.dirs.iter().map(|p| p.as_path()).collect();
            want.sort();
            got.sort();
            assert_eq!(got, want, "every directory from the blob's up to the store");
        }
        bs.checkpoint().unwrap();
        assert!(bs.dirty.lock().unwrap().files.is_empty());
        // A file gone before the checkpoint (removed, renamed) is no error.
        bs.write_at(&p, b"again").unwrap();
        bs.remove(&p).unwrap();
        bs.checkpoint().unwrap();
        // In syncfs mode nothing is noted.
        let fast = BlobStore::open(&dir.path().join("other")).unwrap();
        if !fast.per_file() {
            fast.write_at(&fast.blob_path(1, MailboxId(1), ItemId(1), 1), b"x")
                .unwrap();
            assert!(fast.dirty.lock().unwrap().files.is_empty());
        }
    }

    /// A checkpoint waits for one whose syncs are under way (it would find the
    /// notes of what is unsynced already taken and return before those fsyncs
    /// did), including one run in the background.
    #[test]
    fn a_checkpoint_waits_for_the_syncs_of_one_under_way() {
        let dir = tempfile::tempdir().unwrap();
        let bs = Arc::new(
            BlobStore::open(&dir.path().join("store"))
                .unwrap()
                .per_file_everywhere(),
        );
        let held = bs.sync_lock();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let t = std::thread::spawn({
            let (bs, done) = (bs.clone(), done.clone());
            move || {
                bs.checkpoint().unwrap();
                done.store(true, Ordering::SeqCst);
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(
            !done.load(Ordering::SeqCst),
            "returned during another's syncs"
        );
        drop(held);
        t.join().unwrap();
        assert!(done.load(Ordering::SeqCst));
        // The background one holds the lock until its syncs returned.
        let running = bs.checkpoint_in_background();
        running.wait().unwrap();
        let _again = bs.sync_lock();
    }

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
    fn header_is_read_up_to_the_empty_line() {
        let dir = tempfile::tempdir().unwrap();
        let bs = BlobStore::open(dir.path()).unwrap();
        let p = dir.path().join("m");
        let mut long = b"Subject: x\r\nX-Pad: ".to_vec();
        // The empty line straddles the first 8 KiB read.
        long.resize(8190, b'a');
        long.extend_from_slice(b"\r\n\r\nbody\r\n");
        for (raw, want) in [
            (&b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore"[..], 14),
            (b"A: 1\n\nbody", 6),
            (b"\r\nbody only\r\n\r\n", 2),
            (b"no empty line at all", 20),
            (&long[..], 8194),
        ] {
            std::fs::write(&p, raw).unwrap();
            assert_eq!(bs.read_header(&p).unwrap(), &raw[..want]);
        }
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
