//! When blob files become durable: the checkpoint. One `syncfs` per filesystem
//! that honours it, else an fsync by name of every file and directory noted as
//! written since the last checkpoint ([`SyncMode::PerFile`]); and the lock that
//! keeps two checkpoints from overlapping.

use super::{BlobError, BlobStore, io_err};
use mv_home::{FsKind, SyncMode};
use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

/// Files and directories written since the last checkpoint ([`SyncMode::PerFile`]).
#[derive(Default)]
pub(super) struct Dirty {
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
    pub(super) fn classify(&mut self) -> Result<(), BlobError> {
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
}

fn sync_each(roots: &[PathBuf]) -> Result<(), BlobError> {
    for root in roots {
        mv_home::syncfs(root).map_err(io_err(root))?;
    }
    Ok(())
}

/// See [`BlobStore::sync_lock`]: a lock whose holding can move to the thread
/// that runs the syncs.
#[derive(Default)]
pub(super) struct SyncLock {
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
pub(super) fn start_writeback(f: &fs::File) {
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
    use mv_types::{ItemId, MailboxId};
    use std::os::unix::fs::MetadataExt;
    use std::sync::atomic::Ordering;

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
}
