//! A target on a local (or NFS-mounted) filesystem.
//!
//! ```text
//! <root>/backup.lock            flock: one backup/delete/restore at a time; holds what runs
//! <root>/accounts.xml
//! <root>/sessions/<label>/...    committed sessions
//! <root>/packs/<xx>/<id>.zip|idx blob packs and their indexes
//! <root>/tmp/<label>/...         sessions being written (renamed into sessions/ at commit)
//! <root>/tmp/<label>.abort       abort request for a running backup
//! <root>/tmp/.scratch/           snapshots and packs being written
//! <root>/pieces.swept            empty directories under pieces/ were swept once
//! ```
//!
//! Objects are written to `.<name>.tmp-<pid>-<n>` beside their final name, fsynced,
//! renamed, and the directory fsynced. Session files are written without fsync;
//! `commit_session` runs one `syncfs` on the target's filesystem before renaming
//! `tmp/<label>` to `sessions/<label>` (one sync instead of thousands of fsyncs),
//! or, on a filesystem whose `syncfs` cannot be trusted ([`mv_home::SyncMode`]),
//! fsyncs every file and directory of `tmp/<label>`.

mod files;
mod lock;

use super::{ObjectInfo, Space, Target, TargetLock};
use crate::error::{BackupError, Result};
use files::{
    dir_names, fsync_tree, remove_empty_subdirs, remove_file, remove_temp_files, remove_tree,
    write_private,
};
use mv_home::durable::{FILE_MODE, create_dir_all_durable, create_dir_all_private, fsync_dir};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const LOCK_FILE: &str = "backup.lock";
const SCRATCH: &str = ".scratch";
const RETIRED_PREFIX: &str = "TO_DELETE-";
/// Where a session being written keeps its pieces until commit.
const STAGED_PIECES: &str = "pieces";
/// Beside `<dir>` at the root once `<dir>`'s empty directories were swept
/// ([`Target::sweep_empty_dirs_once`]): `pieces.swept`.
const SWEPT_SUFFIX: &str = ".swept";

/// A target directory.
#[derive(Debug)]
pub struct FsTarget {
    root: PathBuf,
    written: AtomicU64,
    seq: AtomicU64,
    /// Directories of pending sessions this process made: a session's files go
    /// into a few directories per account, and asking the filesystem again for
    /// each file (a failed `mkdir` and a `stat`) cost an unchanged full a few
    /// percent of its time. Forgotten when part of a session is removed.
    made_dirs: std::sync::Mutex<std::collections::HashSet<PathBuf>>,
    /// How `commit_session` makes a session durable on this filesystem.
    sync_mode: mv_home::SyncMode,
}

impl FsTarget {
    /// Creates the directory a pending session's file goes into, unless this
    /// process made it already ([`FsTarget::made_dirs`]).
    fn make_parent(&self, file: &Path) -> Result<()> {
        let Some(parent) = file.parent() else {
            return Ok(());
        };
        let mut made = self.made_dirs.lock().unwrap_or_else(|p| p.into_inner());
        if !made.contains(parent) {
            create_dir_all_private(parent).map_err(BackupError::io(parent.display()))?;
            made.insert(parent.to_path_buf());
        }
        Ok(())
    }

    fn forget_made_dirs(&self) {
        self.made_dirs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Opens (creating if needed) a target directory.
    pub fn open(root: &Path) -> Result<FsTarget> {
        let root = if root.is_absolute() {
            root.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(BackupError::io(root.display()))?
                .join(root)
        };
        for dir in [
            root.clone(),
            root.join("sessions"),
            root.join("tmp"),
            root.join("packs"),
        ] {
            create_dir_all_durable(&dir).map_err(BackupError::io(dir.display()))?;
        }
        let kind = mv_home::fs_kind(&root).map_err(BackupError::io(root.display()))?;
        tracing::debug!(
            target_root = %root.display(),
            filesystem = kind.name,
            mode = kind.mode.as_str(),
            "durability of backup sessions"
        );
        Ok(FsTarget {
            root,
            written: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            made_dirs: Default::default(),
            sync_mode: kind.mode,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn full(&self, rel: &str) -> Result<PathBuf> {
        if rel.is_empty()
            || rel.starts_with('/')
            || rel
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(BackupError::Invalid(format!(
                "invalid path inside the backup target: {rel:?}"
            )));
        }
        Ok(self.root.join(rel))
    }

    fn session_dir(&self, label: &str) -> Result<PathBuf> {
        self.full(&format!("tmp/{label}"))
    }

    fn temp_beside(&self, path: &Path) -> PathBuf {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
    }

    /// Writes `data` durably as `full`: to a new private temp name beside it,
    /// fsynced, given its final name by `publish(temp, full)`, then the
    /// directory fsynced. The temp name is removed on failure.
    fn write_durable<T>(
        &self,
        full: &Path,
        data: &[u8],
        publish: impl FnOnce(&Path, &Path) -> io::Result<T>,
    ) -> Result<T> {
        let parent = full.parent().unwrap_or(&self.root);
        create_dir_all_durable(parent).map_err(BackupError::io(parent.display()))?;
        let tmp = self.temp_beside(full);
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(FILE_MODE)
                .open(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            drop(f);
            let published = publish(&tmp, full)?;
            fsync_dir(parent)?;
            Ok(published)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(BackupError::io(full.display()))
    }

    /// Renames the staged directory `from` to `<root>/<under>/<label>`, refusing
    /// to replace one there (`taken` says what exists), and fsyncs `<under>`.
    fn move_committed(
        &self,
        from: &Path,
        under: &str,
        label: &str,
        taken: impl FnOnce() -> String,
    ) -> Result<()> {
        let parent = self.root.join(under);
        create_dir_all_durable(&parent).map_err(BackupError::io(parent.display()))?;
        let to = parent.join(label);
        if to.exists() {
            return Err(BackupError::Invalid(format!(
                "{} in {}",
                taken(),
                self.url()
            )));
        }
        fs::rename(from, &to).map_err(BackupError::io(to.display()))?;
        fsync_dir(&parent).map_err(BackupError::io(parent.display()))
    }

    /// Moves a local file to `dest` (rename on the same filesystem, copy otherwise);
    /// `durable`: fsync the file and the directory.
    fn move_into(&self, local: &Path, dest: &Path, durable: bool) -> Result<()> {
        let parent = dest.parent().unwrap_or(&self.root);
        if durable {
            create_dir_all_durable(parent).map_err(BackupError::io(parent.display()))?;
            File::open(local)
                .and_then(|f| f.sync_all())
                .map_err(BackupError::io(local.display()))?;
        } else {
            self.make_parent(dest)?;
        }
        let meta = fs::metadata(local).map_err(BackupError::io(local.display()))?;
        let size = meta.len();
        // Snapshots, packs and redo logs are made elsewhere (a scratch directory,
        // the home): in the target they hold mail and hashes like everything else.
        if meta.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(local, fs::Permissions::from_mode(FILE_MODE))
                .map_err(BackupError::io(local.display()))?;
        }
        if fs::rename(local, dest).is_err() {
            // Another filesystem: copy through a temp name.
            let tmp = self.temp_beside(dest);
            let result = (|| {
                fs::copy(local, &tmp)?;
                if durable {
                    File::open(&tmp)?.sync_all()?;
                }
                fs::rename(&tmp, dest)?;
                fs::remove_file(local)
            })();
            if result.is_err() {
                let _ = fs::remove_file(&tmp);
            }
            result.map_err(BackupError::io(dest.display()))?;
        }
        if durable {
            fsync_dir(parent).map_err(BackupError::io(parent.display()))?;
        }
        self.written.fetch_add(size, Ordering::Relaxed);
        Ok(())
    }
}

impl Target for FsTarget {
    fn url(&self) -> String {
        self.root.display().to_string()
    }

    fn put(&self, path: &str, data: &[u8]) -> Result<()> {
        let full = self.full(path)?;
        self.write_durable(&full, data, |tmp, full| fs::rename(tmp, full))?;
        self.written.fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn put_file(&self, path: &str, local: &Path) -> Result<()> {
        let full = self.full(path)?;
        self.move_into(local, &full, true)
    }

    fn put_new(&self, path: &str, data: &[u8]) -> Result<bool> {
        let full = self.full(path)?;
        let created = self.write_durable(&full, data, |tmp, full| {
            // link(2), unlike rename(2), never replaces the name: the first
            // writer wins and every other one is told so.
            let created = match fs::hard_link(tmp, full) {
                Ok(()) => true,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
                Err(e) => return Err(e),
            };
            fs::remove_file(tmp)?;
            Ok(created)
        })?;
        if created {
            self.written.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        Ok(created)
    }

    fn get(&self, path: &str) -> Result<Vec<u8>> {
        let full = self.full(path)?;
        match fs::read(&full) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(BackupError::NotFound(path.to_string()))
            }
            Err(e) => Err(BackupError::io(full.display())(e)),
        }
    }

    fn get_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let full = self.full(path)?;
        let f = match File::open(&full) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(BackupError::NotFound(path.to_string()));
            }
            Err(e) => return Err(BackupError::io(full.display())(e)),
        };
        let size = f.metadata().map_err(BackupError::io(full.display()))?.len();
        let end = offset.checked_add(len);
        if end.is_none_or(|end| end > size) {
            return Err(BackupError::corrupt(
                path,
                format!(
                    "truncated: bytes {offset}..{} wanted, the file has {size}",
                    offset.saturating_add(len)
                ),
            ));
        }
        let len =
            usize::try_from(len).map_err(|_| BackupError::corrupt(path, "range too large"))?;
        let mut buf = vec![0u8; len];
        f.read_exact_at(&mut buf, offset)
            .map_err(BackupError::io(full.display()))?;
        Ok(buf)
    }

    fn size(&self, path: &str) -> Result<Option<u64>> {
        let full = self.full(path)?;
        match fs::metadata(&full) {
            Ok(md) if md.is_file() => Ok(Some(md.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BackupError::io(full.display())(e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        // Walk from the deepest directory the prefix names completely.
        let dir_rel = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let dir = if dir_rel.is_empty() {
            self.root.clone()
        } else {
            self.full(dir_rel)?
        };
        let mut out = Vec::new();
        files::walk(&dir, dir_rel, &mut out)?;
        out.retain(|o| o.path.starts_with(prefix));
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn delete(&self, path: &str) -> Result<()> {
        let full = self.full(path)?;
        remove_file(&full)?;
        if let Some(parent) = full.parent() {
            fsync_dir(parent).map_err(BackupError::io(parent.display()))?;
        }
        Ok(())
    }

    fn begin_session(&self, label: &str) -> Result<()> {
        let dir = self.session_dir(label)?;
        create_dir_all_private(&dir).map_err(BackupError::io(dir.display()))
    }

    fn session_put(&self, label: &str, rel: &str, data: &[u8]) -> Result<()> {
        let full = self.full(&format!("tmp/{label}/{rel}"))?;
        self.make_parent(&full)?;
        write_private(&full, data).map_err(BackupError::io(full.display()))?;
        self.written.fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn keeps_files_private(&self) -> bool {
        true
    }

    fn session_put_private(&self, label: &str, rel: &str, data: &[u8]) -> Result<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        let full = self.full(&format!("tmp/{label}/{rel}"))?;
        let parent = full.parent().unwrap_or(&self.root).to_path_buf();
        self.make_parent(&parent)?;
        match fs::DirBuilder::new().mode(0o700).create(&parent) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(BackupError::io(parent.display())(e)),
        }
        // Whatever the umask or an older directory said.
        fs::set_permissions(&parent, fs::Permissions::from_mode(0o700))
            .map_err(BackupError::io(parent.display()))?;
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&full)
            .map_err(BackupError::io(full.display()))?;
        f.write_all(data).map_err(BackupError::io(full.display()))?;
        self.written.fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn session_put_file(&self, label: &str, rel: &str, local: &Path) -> Result<()> {
        let full = self.full(&format!("tmp/{label}/{rel}"))?;
        self.move_into(local, &full, false)
    }

    fn session_copy(&self, label: &str, rel: &str, from: &str) -> Result<u64> {
        let src = self.full(from)?;
        let dest = self.full(&format!("tmp/{label}/{rel}"))?;
        self.make_parent(&dest)?;
        // Committed session files are never modified in place (sessions are only
        // ever removed whole), so the new session may share the inode. The link
        // becomes durable with the syncfs of commit_session.
        match fs::hard_link(&src, &dest) {
            Ok(()) => fs::metadata(&dest)
                .map(|m| m.len())
                .map_err(BackupError::io(dest.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(BackupError::NotFound(from.to_string()))
            }
            Err(_) => {
                // No hard links here (some network filesystems): copy.
                let data = self.get(from)?;
                self.session_put(label, rel, &data)?;
                Ok(data.len() as u64)
            }
        }
    }

    // Pieces wait in `tmp/<label>/pieces/` with the session's files (so a failed
    // account, a discarded session and `clean_pending` remove them with the rest)
    // and move to `pieces/<label>/` at commit, after the sync.
    fn piece_put(&self, label: &str, rel: &str, data: &[u8]) -> Result<()> {
        self.session_put(label, &format!("{STAGED_PIECES}/{rel}"), data)
    }

    fn piece_put_file(&self, label: &str, rel: &str, local: &Path) -> Result<()> {
        self.session_put_file(label, &format!("{STAGED_PIECES}/{rel}"), local)
    }

    fn delete_prefix(&self, prefix: &str) -> Result<()> {
        let full = self.full(prefix.trim_end_matches('/'))?;
        remove_tree(&full)?;
        if let Some(parent) = full.parent()
            && parent.exists()
        {
            fsync_dir(parent).map_err(BackupError::io(parent.display()))?;
        }
        Ok(())
    }

    fn remove_empty_dirs(&self, top: &str, removed: &[String]) -> Result<()> {
        let top = self.full(top.trim_end_matches('/'))?;
        let mut start: Vec<PathBuf> = Vec::new();
        for r in removed {
            if let Some(p) = self.full(r.trim_end_matches('/'))?.parent() {
                start.push(p.to_path_buf());
            }
        }
        // Deepest first: a directory is looked at after the ones below it.
        start.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        start.dedup();
        let mut emptied: std::collections::BTreeSet<PathBuf> = Default::default();
        for mut dir in start {
            while dir.starts_with(&top) && dir != top {
                let parent = dir.parent().unwrap_or(&top).to_path_buf();
                match fs::remove_dir(&dir) {
                    Ok(()) => {
                        emptied.remove(&dir);
                        emptied.insert(parent.clone());
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    // Not empty (ENOTEMPTY, or EEXIST on some systems): it stays,
                    // and so do the directories above it.
                    Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) => {
                        break;
                    }
                    Err(e) => return Err(BackupError::io(dir.display())(e)),
                }
                dir = parent;
            }
        }
        // The removals are durable once the directories that held them are.
        for dir in emptied.iter().rev() {
            fsync_dir(dir).map_err(BackupError::io(dir.display()))?;
        }
        Ok(())
    }

    fn sweep_empty_dirs_once(&self, top: &str) -> Result<u64> {
        let top = top.trim_end_matches('/');
        let marker = self.full(&format!("{top}{SWEPT_SUFFIX}"))?;
        match fs::symlink_metadata(&marker) {
            Ok(_) => return Ok(0),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(BackupError::io(marker.display())(e)),
        }
        let removed = remove_empty_subdirs(&self.full(top)?)?;
        // After the removals are durable: a crash before this sweeps again.
        self.put(&format!("{top}{SWEPT_SUFFIX}"), b"")?;
        if removed > 0 {
            tracing::info!(
                target_root = %self.root.display(),
                removed,
                "removed empty directories under {top}/ left by an earlier version"
            );
        }
        Ok(removed)
    }

    fn session_remove(&self, label: &str, rel_prefix: &str) -> Result<()> {
        self.forget_made_dirs();
        remove_tree(&self.full(&format!("tmp/{label}/{rel_prefix}"))?)?;
        remove_tree(&self.full(&format!("tmp/{label}/{STAGED_PIECES}/{rel_prefix}"))?)
    }

    fn commit_session(&self, label: &str, session_xml: &[u8]) -> Result<()> {
        self.forget_made_dirs();
        let dir = self.session_dir(label)?;
        create_dir_all_private(&dir).map_err(BackupError::io(dir.display()))?;
        let xml = dir.join("session.xml");
        write_private(&xml, session_xml).map_err(BackupError::io(xml.display()))?;
        self.written
            .fetch_add(session_xml.len() as u64, Ordering::Relaxed);
        // Everything written into tmp/<label> (and the packs) becomes durable here.
        match self.sync_mode {
            mv_home::SyncMode::Syncfs => {
                mv_home::syncfs(&self.root).map_err(BackupError::io(self.root.display()))?
            }
            mv_home::SyncMode::PerFile => fsync_tree(&dir)?,
        }
        // The session's pieces go to pieces/<label> before the session appears,
        // so no committed session names a piece that is not in place.
        let staged = dir.join(STAGED_PIECES);
        if staged.exists() {
            self.move_committed(&staged, "pieces", label, || {
                format!("pieces of session {label} already exist")
            })?;
        }
        self.move_committed(&dir, "sessions", label, || {
            format!("session {label} already exists")
        })?;
        let tmp = self.root.join("tmp");
        fsync_dir(&tmp).map_err(BackupError::io(tmp.display()))?;
        Ok(())
    }

    fn discard_session(&self, label: &str) -> Result<()> {
        self.forget_made_dirs();
        remove_tree(&self.session_dir(label)?)
    }

    fn pending_sessions(&self) -> Result<Vec<String>> {
        Ok(dir_names(&self.root.join("tmp"))?
            .into_iter()
            .filter(|n| crate::label::Label::parse(n).is_some())
            .collect())
    }

    fn session_names(&self) -> Result<Vec<String>> {
        dir_names(&self.root.join("sessions"))
    }

    fn retire_session(&self, label: &str) -> Result<()> {
        let sessions = self.root.join("sessions");
        let from = self.full(&format!("sessions/{label}"))?;
        let to = sessions.join(format!("{RETIRED_PREFIX}{label}"));
        remove_tree(&to)?;
        fs::rename(&from, &to).map_err(BackupError::io(from.display()))?;
        fsync_dir(&sessions).map_err(BackupError::io(sessions.display()))
    }

    fn purge_retired(&self) -> Result<Vec<String>> {
        let sessions = self.root.join("sessions");
        let mut out = Vec::new();
        for name in dir_names(&sessions)? {
            if let Some(label) = name.strip_prefix(RETIRED_PREFIX) {
                remove_tree(&sessions.join(&name))?;
                out.push(label.to_string());
            }
        }
        if !out.is_empty() {
            fsync_dir(&sessions).map_err(BackupError::io(sessions.display()))?;
        }
        Ok(out)
    }

    fn clean_pending(&self) -> Result<Vec<String>> {
        let tmp = self.root.join("tmp");
        let labels = self.pending_sessions()?;
        if let Ok(entries) = fs::read_dir(&tmp) {
            for entry in entries.flatten() {
                remove_tree(&entry.path())?;
            }
        }
        // Temp names appear where objects are put: packs/ and the root. Committed
        // sessions are never written in place (tmp/<label> is renamed whole), so
        // their trees, which grow with every session, are not walked.
        remove_temp_files(&self.root.join("packs"))?;
        for entry in fs::read_dir(&self.root).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.contains(".tmp-") {
                remove_file(&entry.path())?;
            }
        }
        let _ = fsync_dir(&tmp);
        Ok(labels)
    }

    fn lock(&self, what: &str, wait: Duration) -> Result<TargetLock> {
        self.take_lock(what, wait)
    }

    fn lock_holder(&self) -> Result<Option<String>> {
        self.read_lock_holder()
    }

    fn scratch_dir(&self) -> Result<PathBuf> {
        let dir = self.root.join("tmp").join(SCRATCH);
        create_dir_all_private(&dir).map_err(BackupError::io(dir.display()))?;
        Ok(dir)
    }

    fn free_space(&self) -> Result<Option<Space>> {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(self.root.as_os_str().as_bytes())
            .map_err(|_| BackupError::Invalid("target path contains NUL".into()))?;
        // SAFETY: statvfs fills the zeroed struct we pass; the path is NUL-terminated.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
        if rc != 0 {
            return Err(BackupError::io(self.root.display())(
                io::Error::last_os_error(),
            ));
        }
        let frsize = st.f_frsize as u64;
        Ok(Some(Space {
            available: st.f_bavail as u64 * frsize,
            total: st.f_blocks as u64 * frsize,
        }))
    }

    fn local_path(&self, path: &str) -> Option<PathBuf> {
        self.full(path).ok()
    }

    fn bytes_written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_and_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let t = FsTarget::open(dir.path()).unwrap();
        t.put("packs/ab/x.idx", b"hello").unwrap();
        assert_eq!(t.get("packs/ab/x.idx").unwrap(), b"hello");
        assert_eq!(t.get_range("packs/ab/x.idx", 1, 3).unwrap(), b"ell");
        assert!(matches!(
            t.get_range("packs/ab/x.idx", 3, 3),
            Err(BackupError::Corrupt { .. })
        ));
        assert!(matches!(t.get("nope"), Err(BackupError::NotFound(_))));
        assert_eq!(t.size("packs/ab/x.idx").unwrap(), Some(5));
        let l = t.list("packs/").unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].path, "packs/ab/x.idx");
        assert!(t.get("../etc/passwd").is_err());

        let label = "full-20140605.080023.296";
        t.session_put(label, "ldap/ldap.bak", b"dn: x\n").unwrap();
        assert_eq!(t.pending_sessions().unwrap(), vec![label.to_string()]);
        assert!(t.session_names().unwrap().is_empty());
        t.commit_session(label, b"<session/>").unwrap();
        assert!(t.pending_sessions().unwrap().is_empty());
        assert_eq!(t.session_names().unwrap(), vec![label.to_string()]);
        assert_eq!(
            t.get(&format!("sessions/{label}/ldap/ldap.bak")).unwrap(),
            b"dn: x\n"
        );
        t.retire_session(label).unwrap();
        assert_eq!(
            t.session_names().unwrap(),
            vec![format!("TO_DELETE-{label}")]
        );
        assert_eq!(t.purge_retired().unwrap(), vec![label.to_string()]);
        assert!(t.session_names().unwrap().is_empty());
    }
}
