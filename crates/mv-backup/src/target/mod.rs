//! Where backups go: the [`Target`] trait, and its local-filesystem implementation
//! [`FsTarget`].
//!
//! Paths are relative, `/`-separated (`packs/ab/<id>.zip`, `sessions/<label>/session.xml`).
//! The format relies on nothing an object store lacks: no hard links, no atomic
//! directory rename, no conditional PUT. What the trait promises instead:
//!
//! - [`Target::put`] / [`Target::put_file`] are atomic and durable: a reader sees the
//!   whole object or none of it, and it survives a crash once the call returns
//!   (filesystem: temp name, fsync, rename, fsync dir; S3: a single PUT).
//! - Session files ([`Target::session_put`]) are invisible until
//!   [`Target::commit_session`], which makes them durable and then makes the session
//!   visible by the existence of `sessions/<label>/session.xml` (filesystem: build in
//!   `tmp/<label>/`, `syncfs`, rename the directory; S3: write the files under
//!   `sessions/<label>/`, then `session.xml` last). A session directory without a
//!   session.xml is not a session.
//! - [`Target::lock`] gives one operation (backup, delete, restore) the target at a
//!   time. Filesystem: `flock` on `<target>/backup.lock`, released by the kernel if the
//!   process dies. S3 ([`S3Target`]): a lease object with a heartbeat, never a
//!   conditional PUT (see `s3_lease` for the race analysis).

mod fs;
mod s3;
mod s3_client;
mod s3_config;
mod s3_lease;
mod s3_upload;

pub use fs::FsTarget;
pub use s3::S3Target;
pub use s3_config::{MIN_PART_SIZE, S3Settings};
/// This machine's name (a lease's holder, an export's temporary's owner).
pub(crate) use s3_lease::hostname;

use crate::error::Result;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// An object in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Relative path (`packs/ab/<id>.idx`).
    pub path: String,
    pub size: u64,
}

/// Free and total space where the target lives, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    pub available: u64,
    pub total: u64,
}

/// What a target's lock implementation keeps while it is held.
pub trait LockHandle: Send + Sync {
    /// Replaces the description of what holds the lock (shown to waiters and by
    /// `zmbackupquery` to tell a running session from a leftover).
    fn describe(&self, what: &str) -> Result<()>;
}

/// Holds a target for one operation; released on drop.
pub struct TargetLock(Box<dyn LockHandle>);

impl TargetLock {
    pub fn new(inner: Box<dyn LockHandle>) -> TargetLock {
        TargetLock(inner)
    }

    pub fn describe(&self, what: &str) -> Result<()> {
        self.0.describe(what)
    }
}

impl std::fmt::Debug for TargetLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TargetLock")
    }
}

/// A backup target. See the module docs for what each operation guarantees.
pub trait Target: Send + Sync {
    /// A human-readable location (`/var/backup`, `s3://bucket/prefix`).
    fn url(&self) -> String;

    // ---- objects ---------------------------------------------------------

    /// Writes an object atomically and durably (replacing any previous one).
    fn put(&self, path: &str, data: &[u8]) -> Result<()>;
    /// Like `put`, from a local file, which the target may move (it is consumed).
    fn put_file(&self, path: &str, local: &Path) -> Result<()>;
    /// Writes an object only if none is at `path`, durably: of two writers
    /// racing for the same path exactly one creates it (filesystem: a hard link
    /// of the fsynced temporary file, which fails when the name exists; S3: a
    /// conditional PUT, `If-None-Match: *`). `Ok(false)` when one exists.
    fn put_new(&self, path: &str, data: &[u8]) -> Result<bool>;
    /// Reads a whole object; [`crate::BackupError::NotFound`] if absent.
    fn get(&self, path: &str) -> Result<Vec<u8>>;
    /// Reads `len` bytes at `offset`; an object shorter than that is an error
    /// (a truncated pack), never a short read.
    fn get_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>>;
    /// The size of an object, `None` if absent.
    fn size(&self, path: &str) -> Result<Option<u64>>;
    /// Every object whose path starts with `prefix` (recursive), sorted by path.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>>;
    /// Removes an object; an absent one is fine.
    fn delete(&self, path: &str) -> Result<()>;

    // ---- sessions ----------------------------------------------------------

    /// Starts an uncommitted session (filesystem: creates `tmp/<label>/`), so that
    /// it shows as "in progress" at once.
    fn begin_session(&self, label: &str) -> Result<()>;
    /// Writes a file of the uncommitted session `label` (`rel` is relative to the
    /// session root, e.g. `accounts/abc/def/<id>/meta.xml`).
    fn session_put(&self, label: &str, rel: &str, data: &[u8]) -> Result<()>;
    /// Like `session_put` for a secret (the server's TLS key, its admin token): a
    /// filesystem target makes the file readable by its owner only (0600) in a
    /// directory only its owner can enter (0700), so the target never becomes the
    /// easy place to steal them. An object store relies on its own access control.
    fn session_put_private(&self, label: &str, rel: &str, data: &[u8]) -> Result<()> {
        self.session_put(label, rel, data)
    }
    /// Whether [`Target::session_put_private`] keeps a file to its owner (a
    /// filesystem target). Where it cannot (an object store, whose access is
    /// the bucket's policy), a backup leaves the server's secrets out unless
    /// asked (`BackupOptions::secrets`).
    fn keeps_files_private(&self) -> bool {
        false
    }
    /// Like `session_put` from a local file, which may be moved.
    fn session_put_file(&self, label: &str, rel: &str, local: &Path) -> Result<()>;
    /// Puts into the uncommitted session `label`, under `rel`, the committed object
    /// `from` (a file of an earlier session that did not change), returning its
    /// size. Content-wise the same as `get` + `session_put`; a filesystem target
    /// links instead of copying (nothing is written).
    fn session_copy(&self, label: &str, rel: &str, from: &str) -> Result<u64> {
        let data = self.get(from)?;
        self.session_put(label, rel, &data)?;
        Ok(data.len() as u64)
    }
    /// Writes an account file of the uncommitted full `label` at
    /// `pieces/<label>/<rel>`, where later fulls refer to it while it does not
    /// change. Durable once [`Target::commit_session`] returns; until then a
    /// reader may or may not see it (an object store writes it at once: a piece
    /// no committed session names is garbage that `-del` removes).
    fn piece_put(&self, label: &str, rel: &str, data: &[u8]) -> Result<()> {
        self.put(&format!("pieces/{label}/{rel}"), data)
    }
    /// Like `piece_put` from a local file, which may be moved.
    fn piece_put_file(&self, label: &str, rel: &str, local: &Path) -> Result<()> {
        self.put_file(&format!("pieces/{label}/{rel}"), local)
    }
    /// Removes every object whose path starts with `prefix` (a directory's worth:
    /// `prefix` ends with `/`).
    fn delete_prefix(&self, prefix: &str) -> Result<()> {
        for o in self.list(prefix)? {
            self.delete(&o.path)?;
        }
        Ok(())
    }
    /// Removes the directories that held `removed` (objects or `delete_prefix`
    /// prefixes just deleted) and are empty now, up to but not including `top`
    /// (`pieces/`), each removal made durable in its parent. An object store has
    /// no directories: nothing to do.
    fn remove_empty_dirs(&self, top: &str, removed: &[String]) -> Result<()> {
        let _ = (top, removed);
        Ok(())
    }
    /// Once per target: removes every empty directory under `top` (`pieces/`)
    /// that earlier versions, which did not remove the directories their
    /// deletions emptied, left behind, fsyncing each parent; then records that
    /// it was done, so later calls cost one `stat`. Returns how many went. An
    /// object store has no directories: nothing to do.
    fn sweep_empty_dirs_once(&self, top: &str) -> Result<u64> {
        let _ = top;
        Ok(0)
    }
    /// Removes the files of an uncommitted session under `rel_prefix` (an account
    /// that failed), its pieces included.
    fn session_remove(&self, label: &str, rel_prefix: &str) -> Result<()>;
    /// Makes every file of the session durable, writes `session.xml` and makes the
    /// session visible under `sessions/<label>/`.
    fn commit_session(&self, label: &str, session_xml: &[u8]) -> Result<()>;
    /// Drops an uncommitted session.
    fn discard_session(&self, label: &str) -> Result<()>;
    /// Labels of uncommitted sessions (running, or left by a crash).
    fn pending_sessions(&self) -> Result<Vec<String>>;
    /// Names of the entries under `sessions/` (committed sessions, and
    /// `TO_DELETE-*` leftovers), whether or not they hold a valid session.xml.
    fn session_names(&self) -> Result<Vec<String>>;
    /// Makes a committed session invisible, first step of deleting it
    /// (filesystem: rename to `sessions/TO_DELETE-<label>`).
    fn retire_session(&self, label: &str) -> Result<()>;
    /// Removes what retired sessions left; returns their labels.
    fn purge_retired(&self) -> Result<Vec<String>>;
    /// Removes everything an interrupted operation left behind: uncommitted
    /// sessions, scratch files, abort flags. Call with the lock held.
    fn clean_pending(&self) -> Result<Vec<String>>;

    // ---- coordination and local help ----------------------------------------

    /// Takes the target for one operation, waiting up to `wait` for another to end.
    /// `what` ("Backup full-...") is what a waiting operation's error names:
    /// "`what` is still in progress".
    fn lock(&self, what: &str, wait: Duration) -> Result<TargetLock>;
    /// What holds the lock now, if anything (never waits).
    fn lock_holder(&self) -> Result<Option<String>>;
    /// A local directory for temporary files (snapshots, packs being written).
    fn scratch_dir(&self) -> Result<PathBuf>;
    /// Free space where the target lives, when that can be known.
    fn free_space(&self) -> Result<Option<Space>>;
    /// The local file behind an object, when the target is a local filesystem.
    fn local_path(&self, path: &str) -> Option<PathBuf>;
    /// Bytes written to the target by this handle so far.
    fn bytes_written(&self) -> u64;
}

/// Opens a target from a command-line spelling: a directory path, or
/// `s3://bucket/prefix` (reached with the home's `s3_*` local config keys, else the
/// standard `AWS_*` environment variables; its requests run on the runtime of the
/// calling context when there is one, see [`S3Settings::runtime`]).
pub fn open(spec: &str, home: &mv_home::Home) -> Result<Arc<dyn Target>> {
    if spec.starts_with("s3://") {
        return Ok(Arc::new(open_s3(spec, home)?));
    }
    let path = Path::new(spec);
    if !path.join("sessions").is_dir() {
        may_become_target(path, home)?;
    }
    Ok(Arc::new(FsTarget::open(path)?))
}

/// Whether a backup may make a new local target at `path` (the only operation
/// that makes one; [`open_existing`] for the others): a new or empty directory,
/// under one of `backup_target_roots` when that key is set (the home's own
/// `backup/` always). So no request can scatter a target skeleton into `/etc`.
fn may_become_target(path: &Path, home: &mv_home::Home) -> Result<()> {
    let abs = resolve_existing_prefix(path).map_err(crate::BackupError::io(path.display()))?;
    if abs == resolve_existing_prefix(&home.backup_dir()).unwrap_or_else(|_| home.backup_dir()) {
        return Ok(());
    }
    match std::fs::read_dir(&abs) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(crate::BackupError::Invalid(format!(
                    "{} is not a backup target (no sessions/ directory) and is not empty: a backup makes a new target only in a new or empty directory",
                    abs.display()
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(crate::BackupError::io(abs.display())(e)),
    }
    let cfg = mv_home::LocalConfig::load(&home.localconfig_path()).ok();
    let roots: Vec<PathBuf> = cfg
        .as_ref()
        .and_then(|c| c.get("backup_target_roots"))
        .unwrap_or("")
        .split(':')
        .filter(|r| !r.trim().is_empty())
        .map(|r| resolve_existing_prefix(Path::new(r.trim())).unwrap_or_else(|_| r.into()))
        .collect();
    if !roots.is_empty() && !roots.iter().any(|r| abs.starts_with(r)) {
        return Err(crate::BackupError::Invalid(format!(
            "{} is outside backup_target_roots ({}): a backup makes a new target only under one of them (zmlocalconfig -e backup_target_roots=...)",
            abs.display(),
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        )));
    }
    Ok(())
}

/// `path` made absolute with its longest existing ancestor canonicalized (links
/// and `..` resolved) and the rest, which must hold no `..`, appended.
fn resolve_existing_prefix(path: &Path) -> std::io::Result<PathBuf> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let mut rest = Vec::new();
    let mut cur = abs.as_path();
    loop {
        match cur.canonicalize() {
            Ok(mut c) => {
                for part in rest.iter().rev() {
                    c.push(part);
                }
                return Ok(c);
            }
            Err(_) => {
                let (Some(parent), Some(name)) = (cur.parent(), cur.file_name()) else {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "no existing directory on the path (or a '..' after one that does not exist)",
                    ));
                };
                rest.push(name.to_os_string());
                cur = parent;
            }
        }
    }
}

fn open_s3(spec: &str, home: &mv_home::Home) -> Result<S3Target> {
    let cfg = match mv_home::LocalConfig::load(&home.localconfig_path()) {
        Ok(c) => c,
        Err(_) if !home.localconfig_path().exists() => mv_home::LocalConfig::defaults(),
        Err(e) => return Err(crate::BackupError::Invalid(e.to_string())),
    };
    // Snapshots and packs wait here before upload: local disk, inside the home.
    let scratch = home.root().join("tmp");
    let mut settings = S3Settings::from_local_config(&cfg, scratch)?;
    // The caller's runtime when it runs inside one (the server enters its own
    // before it opens a target); else the target makes a small one.
    settings.runtime = tokio::runtime::Handle::try_current().ok();
    S3Target::open(spec, settings)
}

/// Opens a target that must exist already (query, verify, abort, delete: a
/// mistyped path is an error, not a new empty target).
pub fn open_existing(spec: &str, home: &mv_home::Home) -> Result<Arc<dyn Target>> {
    if spec.starts_with("s3://") {
        let t = open_s3(spec, home)?;
        if !t.exists()? {
            return Err(crate::BackupError::Invalid(format!(
                "no backup target at {spec} (no accounts.xml and no sessions there)"
            )));
        }
        return Ok(Arc::new(t));
    }
    if !Path::new(spec).join("sessions").is_dir() {
        return Err(crate::BackupError::Invalid(format!(
            "no backup target at {spec} (no sessions/ directory there)"
        )));
    }
    open(spec, home)
}

/// A target object as a local file: the file itself on a filesystem target, else a
/// copy downloaded into the scratch directory (removed on drop).
#[derive(Debug)]
pub struct LocalFile {
    path: PathBuf,
    temporary: bool,
}

impl LocalFile {
    /// A scratch file of ours, removed on drop.
    pub(crate) fn temporary(path: PathBuf) -> LocalFile {
        LocalFile {
            path,
            temporary: true,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LocalFile {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The object `path` as a local file, `None` if the target does not hold it.
pub fn fetch_local(target: &dyn Target, path: &str) -> Result<Option<LocalFile>> {
    if let Some(p) = target.local_path(path) {
        return Ok(p.is_file().then_some(LocalFile {
            path: p,
            temporary: false,
        }));
    }
    let bytes = match target.get(path) {
        Ok(b) => b,
        Err(crate::BackupError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let name = path.rsplit('/').next().unwrap_or("object");
    let local = target
        .scratch_dir()?
        .join(format!("fetch-{}-{name}", uuid::Uuid::new_v4().simple()));
    let file = LocalFile {
        path: local,
        temporary: true,
    };
    std::fs::write(&file.path, bytes).map_err(crate::BackupError::io(file.path.display()))?;
    Ok(Some(file))
}

/// `packs/<first two hex digits>/<pack id>.<ext>`
pub fn pack_path(id: &str, ext: &str) -> String {
    format!("packs/{}/{id}.{ext}", &id[..2.min(id.len())])
}
