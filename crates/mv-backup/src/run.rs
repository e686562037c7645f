//! Taking backups: [`prepare`] (lock, checks, labels), then [`Prepared::run`].
//!
//! Full sessions ([`crate::full`]) snapshot each mailbox online and copy the blobs
//! its snapshot references into the pool; incremental sessions ([`crate::incr`])
//! roll the redo log over and copy the archived logs since the last backup. Both
//! write `ldap/ldap.bak` (the whole directory) and `sys/` (configuration).

use crate::clock::Clock;
use crate::copier::{BlobCopier, CopyJob, CopyOutcome};
use crate::error::{BackupError, Result};
use crate::label::{Label, SessionKind};
use crate::pack::{Compression, DEFAULT_PACK_SIZE, MAX_PACK_SIZE, PackIndex, Pool};
use crate::progress::{Job, Progress, Tee};
use crate::session::{FileEntry, SessionError, SessionStats, SessionStatus};
use crate::target::{Target, TargetLock};
use crate::xml::XmlWriter;
use crate::{catalog::Catalog, progress};
use mv_directory::{Account, Directory};
use mv_store::Store;
use mv_types::{Digest, UtcMillis};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Where a session's directory dump is, relative to the session (or, as a
/// piece, to `pieces/<label>/`).
pub const LDAP_DUMP: &str = "ldap/ldap.bak";

/// What a backup reads: the store, its directory, and the server's name.
pub struct Source<'a> {
    pub store: &'a Store,
    pub directory: &'a Mutex<Directory>,
    pub server_name: &'a str,
}

impl Source<'_> {
    pub(crate) fn dir(&self) -> MutexGuard<'_, Directory> {
        self.directory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The effective value of a server attribute (global/default when the server
    /// entry does not exist).
    pub(crate) fn config(&self, key: &str) -> String {
        let d = self.dir();
        d.effective_str(self.server_name, key)
            .or_else(|_| {
                d.get_global().map(|g| {
                    g.get(key)
                        .and_then(|v| v.first().cloned())
                        .unwrap_or_default()
                })
            })
            .unwrap_or_default()
    }
}

/// `-a all` or a list of addresses (aliases and zimbraIds work too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AccountSelection {
    #[default]
    All,
    Named(Vec<String>),
}

impl AccountSelection {
    /// From `-a` values: nothing or `all` means every account.
    pub fn from_args(args: &[String]) -> AccountSelection {
        if args.is_empty() || args.iter().any(|a| a.eq_ignore_ascii_case("all")) {
            AccountSelection::All
        } else {
            AccountSelection::Named(args.to_vec())
        }
    }
}

/// How to take a backup.
#[derive(Clone, Debug)]
pub struct BackupOptions {
    pub kind: SessionKind,
    pub accounts: AccountSelection,
    pub compression: Compression,
    /// `--exclude Blobs` turns this off (metadata only).
    pub blobs: bool,
    /// `--exclude HsmBlobs`: blobs on the secondary volume are left out.
    pub hsm_blobs: bool,
    /// Full backups copy each account's search index unless `--exclude
    /// SearchIndex` (see `index_files`); restores rebuild the index.
    pub search_index: bool,
    /// Content bytes per pack before it is sealed.
    pub pack_size: u64,
    /// How long to wait for another operation on the target.
    pub lock_wait: Duration,
    pub clock: Arc<dyn Clock>,
    /// `backup_archived_redolog_keep_time`; `None`: from the local config.
    pub keep_time: Option<Duration>,
    /// `!backup_disable_shared_blobs`; `None`: from the local config.
    pub shared_blobs: Option<bool>,
    /// `zimbraBackupMinFreeSpace`; `None`: from the directory.
    pub min_free_space: Option<String>,
    /// Put the server's secrets (secret local config values, the admin token,
    /// the TLS key and its certificate) into `sys/` (`--include/--exclude
    /// Secrets`); `None`: yes on a filesystem target (owner-only files), on a
    /// target that cannot keep files to their owner (an object store) only with
    /// localconfig `backup_object_store_secrets`.
    pub secrets: Option<bool>,
}

impl BackupOptions {
    pub fn new(kind: SessionKind) -> BackupOptions {
        BackupOptions {
            kind,
            accounts: AccountSelection::All,
            compression: Compression::Stored,
            blobs: true,
            hsm_blobs: true,
            search_index: true,
            pack_size: DEFAULT_PACK_SIZE,
            lock_wait: Duration::from_secs(30),
            clock: crate::clock::system(),
            keep_time: None,
            shared_blobs: None,
            min_free_space: None,
            secrets: None,
        }
    }

    pub fn full() -> BackupOptions {
        Self::new(SessionKind::Full)
    }

    pub fn incremental() -> BackupOptions {
        Self::new(SessionKind::Incremental)
    }
}

/// The outcome of one session.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SessionReport {
    pub label: Label,
    #[serde(rename = "type")]
    pub kind: SessionKind,
    pub status: SessionStatus,
    pub status_text: String,
    pub started: UtcMillis,
    pub ended: UtcMillis,
    pub accounts: u64,
    pub accounts_completed: u64,
    pub redo: Option<(u64, u64)>,
    pub errors: Vec<SessionError>,
    /// Accounts the session did not back up because it was aborted.
    pub missing: Vec<String>,
    pub stats: SessionStats,
}

/// The outcome of a backup run (one or two sessions).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BackupReport {
    pub target: String,
    pub sessions: Vec<SessionReport>,
}

impl BackupReport {
    /// Every session completed without errors.
    pub fn ok(&self) -> bool {
        self.sessions
            .iter()
            .all(|s| s.status == SessionStatus::Completed)
    }

    pub fn labels(&self) -> Vec<Label> {
        self.sessions.iter().map(|s| s.label).collect()
    }
}

/// A backup ready to run: the target is locked, the labels are chosen and show
/// as "in progress".
pub struct Prepared {
    target: Arc<dyn Target>,
    _lock: TargetLock,
    opts: BackupOptions,
    pub(crate) full: Option<(Label, Vec<Account>)>,
    pub(crate) incr: Option<(Label, Vec<Account>)>,
    /// Auto-grouped run: every account of the server (the full session carries
    /// the redo logs that roll their fulls forward).
    autogroup_ids: Option<Vec<String>>,
    job: Arc<Job>,
    /// The target's sessions, read once under the lock: nothing else changes them
    /// until the run ends, and the run adds what it commits.
    catalog: Catalog,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("labels", &self.labels())
            .finish()
    }
}

/// Locks the target, checks free space, cleans what an interrupted operation left,
/// resolves the accounts and chooses the labels. An incremental run gives accounts
/// without a full backup of their current mailbox in this target a full session
/// first (two labels).
pub fn prepare(source: &Source, target: Arc<dyn Target>, opts: BackupOptions) -> Result<Prepared> {
    if opts.pack_size == 0 || opts.pack_size > MAX_PACK_SIZE {
        return Err(BackupError::Invalid(format!(
            "pack size must be between 1 byte and {MAX_PACK_SIZE} bytes"
        )));
    }
    let lock = target.lock("Backup", opts.lock_wait)?;
    let min_free = match &opts.min_free_space {
        Some(s) => s.clone(),
        None => source.config("zimbraBackupMinFreeSpace"),
    };
    crate::space::check(target.as_ref(), &min_free)?;
    for label in target.clean_pending()? {
        tracing::warn!("removed tmp/{label}, left by an interrupted backup");
    }
    target.purge_retired()?;
    for zip in crate::pack::remove_orphans(target.as_ref())? {
        tracing::warn!("removed {zip}, a pack without an index left by an interrupted backup");
    }
    let accounts = resolve_accounts(source, &opts.accounts)?;
    let catalog = Catalog::load(target.as_ref())?;
    let now = opts.clock.now();
    let unique = |kind: SessionKind, at: UtcMillis| {
        let mut l = Label::new(kind, at);
        while catalog.get(&l).is_some() {
            l.start = UtcMillis(l.start.0 + 1);
        }
        l
    };
    let mut autogroup_ids = None;
    let (full, incr) = match opts.kind {
        SessionKind::Full
            if opts.accounts == AccountSelection::All && crate::autogroup::enabled(source) =>
        {
            let cfg = crate::autogroup::AutoGroupConfig::from_source(source)?;
            let group = crate::autogroup::choose_group(&accounts, &catalog, &cfg, now)?;
            autogroup_ids = Some(accounts.iter().map(|a| a.id.clone()).collect());
            (Some((unique(SessionKind::Full, now), group)), None)
        }
        SessionKind::Full => (Some((unique(SessionKind::Full, now), accounts)), None),
        SessionKind::Incremental => {
            // Accounts without a full of their current mailbox: never backed up,
            // or restored in place since (the new mailbox's history starts there).
            let without: Vec<Account> = accounts
                .iter()
                .filter(|a| {
                    catalog
                        .latest_full(&a.id)
                        .is_none_or(|(_, f)| f.mailbox_id != a.mailbox_id.0)
                })
                .cloned()
                .collect();
            let full = (!without.is_empty()).then(|| (unique(SessionKind::Full, now), without));
            let incr_at = UtcMillis(now.0 + if full.is_some() { 1 } else { 0 });
            (
                full,
                Some((unique(SessionKind::Incremental, incr_at), accounts)),
            )
        }
    };
    let labels: Vec<Label> = full.iter().chain(incr.iter()).map(|(l, _)| *l).collect();
    let names: Vec<String> = labels.iter().map(Label::to_string).collect();
    lock.describe(&format!("Backup {}", names.join(" ")))?;
    for l in &labels {
        target.begin_session(&l.to_string())?;
    }
    let job = progress::register(&labels, target.url());
    Ok(Prepared {
        target,
        _lock: lock,
        opts,
        full,
        incr,
        autogroup_ids,
        job,
        catalog,
    })
}

fn resolve_accounts(source: &Source, sel: &AccountSelection) -> Result<Vec<Account>> {
    let d = source.dir();
    let mut out = match sel {
        AccountSelection::All => d.list_accounts(None)?,
        AccountSelection::Named(names) => {
            let mut v = Vec::new();
            for n in names {
                match d.find_account(n)? {
                    Some(a) => v.push(a),
                    None => return Err(BackupError::Invalid(format!("no such account: {n}"))),
                }
            }
            v
        }
    };
    out.sort_by(|a, b| a.email.cmp(&b.email));
    out.dedup_by(|a, b| a.id == b.id);
    Ok(out)
}

impl Prepared {
    /// The labels of the sessions this run writes (a full first, if any).
    pub fn labels(&self) -> Vec<Label> {
        self.full
            .iter()
            .chain(self.incr.iter())
            .map(|(l, _)| *l)
            .collect()
    }

    /// The registry entry of this run (status, abort).
    pub fn job(&self) -> Arc<Job> {
        self.job.clone()
    }

    pub fn target(&self) -> &Arc<dyn Target> {
        &self.target
    }

    /// Runs the sessions. A per-account failure is recorded in its session
    /// ("completed (with errors)"); an error writing the target stops the run,
    /// drops the uncommitted sessions and is returned.
    pub fn run(self, source: &Source, progress: &dyn Progress) -> Result<BackupReport> {
        let job = self.job.clone();
        let tee = Tee(job.as_ref(), progress);
        let result = self.run_inner(source, &tee);
        match &result {
            Ok(r) => job.finish(Some(r.clone()), None),
            Err(e) => job.finish(None, Some(e.to_string())),
        }
        result
    }

    fn run_inner(self, source: &Source, progress: &dyn Progress) -> Result<BackupReport> {
        let labels = self.labels();
        let total = self.full.as_ref().map_or(0, |(_, a)| a.len())
            + self.incr.as_ref().map_or(0, |(_, a)| a.len());
        progress.started(&labels, total as u64);
        let cfg = mv_home::LocalConfig::load(&source.store.home().localconfig_path())
            .unwrap_or_else(|_| mv_home::LocalConfig::defaults());
        let keep_time = self.opts.keep_time.unwrap_or_else(|| {
            Duration::from_secs(cfg.get_u64("backup_archived_redolog_keep_time"))
        });
        let shared_blobs = self
            .opts
            .shared_blobs
            .unwrap_or_else(|| !cfg.get_bool("backup_disable_shared_blobs"));
        let secrets = self.opts.secrets.unwrap_or_else(|| {
            self.target.keeps_files_private() || cfg.get_bool("backup_object_store_secrets")
        });
        let mut run = Run {
            source,
            target: self.target.as_ref(),
            shared_target: self.target.clone(),
            opts: &self.opts,
            progress,
            aborter: Aborter::new(self.job.clone(), self.target.clone(), &labels),
            pool: Pool::load(self.target.as_ref())?,
            copier: None,
            pending: HashSet::new(),
            sealed: Vec::new(),
            shared_blobs,
            keep_time,
            secrets,
            catalog: self.catalog,
            prev_files: None,
        };
        let mut reports = Vec::new();
        let result = (|| {
            if let Some((label, accounts)) = &self.full {
                let r = crate::full::run_full(
                    &mut run,
                    *label,
                    accounts,
                    self.autogroup_ids.as_deref(),
                )?;
                let aborted = r.status == SessionStatus::Aborted;
                reports.push(r);
                if aborted {
                    return Ok(());
                }
            }
            if let Some((label, accounts)) = &self.incr {
                reports.push(crate::incr::run_incremental(&mut run, *label, accounts)?);
            }
            Ok(())
        })();
        if let Err(e) = result {
            run.discard_writes();
            for l in &labels {
                let _ = self.target.discard_session(&l.to_string());
            }
            return Err(e);
        }
        for l in &labels {
            if !reports.iter().any(|r| r.label == *l) {
                let _ = self.target.discard_session(&l.to_string());
            }
        }
        Ok(BackupReport {
            target: self.target.url(),
            sessions: reports,
        })
    }
}

/// Prepares and runs a backup in one call.
pub fn backup(
    source: &Source,
    target: Arc<dyn Target>,
    opts: BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupReport> {
    prepare(source, target, opts)?.run(source, progress)
}

/// Decides when a running backup must stop: an in-process request (the job), or
/// `tmp/<label>.abort` in the target (checked at most twice a second).
pub(crate) struct Aborter {
    job: Arc<Job>,
    target: Arc<dyn Target>,
    flags: Vec<String>,
    last_check: Instant,
    hit: bool,
}

impl Aborter {
    fn new(job: Arc<Job>, target: Arc<dyn Target>, labels: &[Label]) -> Aborter {
        Aborter {
            job,
            target,
            flags: labels
                .iter()
                .map(|l| abort_flag_path(&l.to_string()))
                .collect(),
            last_check: Instant::now(),
            hit: false,
        }
    }

    pub(crate) fn requested(&mut self) -> bool {
        if self.hit || self.job.abort_requested() {
            self.hit = true;
            return true;
        }
        if self.last_check.elapsed() >= Duration::from_millis(500) {
            self.last_check = Instant::now();
            if self
                .flags
                .iter()
                .any(|f| matches!(self.target.size(f), Ok(Some(_))))
            {
                self.job.request_abort();
                self.hit = true;
            }
        }
        self.hit
    }

    /// Checks the flag file now (between accounts).
    pub(crate) fn requested_now(&mut self) -> bool {
        self.last_check = Instant::now()
            .checked_sub(Duration::from_secs(1))
            .unwrap_or_else(Instant::now);
        self.requested()
    }
}

/// Where an abort request for a running backup is left: `tmp/<label>.abort`.
pub fn abort_flag_path(label: &str) -> String {
    format!("tmp/{label}.abort")
}

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

/// A pack is sealed: its blobs move from pending to the pool.
fn add_sealed(
    pending: &mut HashSet<Digest>,
    pool: &mut Pool,
    sealed: &mut Vec<String>,
    id: String,
    index: &PackIndex,
) {
    for e in &index.entries {
        pending.remove(&e.digest);
    }
    pool.add_sealed(id.clone(), index);
    sealed.push(id);
}

/// State shared by the sessions of one run.
pub(crate) struct Run<'a> {
    pub source: &'a Source<'a>,
    pub target: &'a dyn Target,
    /// The same target, for the thread that seals packs.
    shared_target: Arc<dyn Target>,
    pub opts: &'a BackupOptions,
    pub progress: &'a dyn Progress,
    pub aborter: Aborter,
    pub pool: Pool,
    /// The threads copying blobs into packs (started on the first blob to copy).
    copier: Option<BlobCopier>,
    /// Blobs in the packs being written or sealed (not in the pool yet).
    pending: HashSet<Digest>,
    /// Packs sealed since the session began.
    pub sealed: Vec<String>,
    pub shared_blobs: bool,
    pub keep_time: Duration,
    /// `sys/` holds the server's secrets (see `BackupOptions::secrets`).
    pub secrets: bool,
    /// The target's sessions: as they were when the run started, plus those it
    /// committed.
    pub catalog: Catalog,
    /// The files of the session an unchanged account's files are reused from.
    pub prev_files: Option<(Label, FileIndex)>,
}

impl Run<'_> {
    pub fn now(&self) -> UtcMillis {
        self.opts.clock.now()
    }

    /// True if the blob is already in the target (or being written by this run).
    pub fn have_blob(&self, d: &Digest) -> bool {
        self.pending.contains(d) || self.pool.contains(d)
    }

    /// Queues one account's blobs (distinct digests the target lacks) for copying
    /// into packs; [`Run::wait_blobs`] collects the outcome.
    pub fn submit_blobs(&mut self, jobs: Vec<CopyJob>) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        if self.copier.is_none() {
            self.copier = Some(BlobCopier::start(
                self.shared_target.clone(),
                self.opts.compression,
                self.opts.pack_size,
                BlobCopier::default_workers(),
            )?);
        }
        self.copier.as_mut().expect("just started").submit(jobs)
    }

    /// Waits for the blobs submitted; each one copied counts as held from then on
    /// ([`Run::have_blob`]). The outer error is fatal (the target failed).
    pub fn wait_blobs(&mut self) -> Result<CopyOutcome> {
        let Some(copier) = self.copier.as_mut() else {
            return Ok(CopyOutcome::default());
        };
        let (pending, pool, sealed) = (&mut self.pending, &mut self.pool, &mut self.sealed);
        let aborter = &mut self.aborter;
        let out = copier.wait(self.progress, &mut || aborter.requested(), &mut |(
            id,
            index,
        )| {
            add_sealed(pending, pool, sealed, id, &index)
        })?;
        // (A blob whose pack was sealed already is in the pool too: harmless.)
        self.pending.extend(out.digests.iter().copied());
        Ok(out)
    }

    /// Seals every pack being written and waits for every seal (before a session
    /// that references their blobs commits).
    pub fn seal(&mut self) -> Result<()> {
        if let Some(copier) = self.copier.as_mut() {
            let (pending, pool, sealed) = (&mut self.pending, &mut self.pool, &mut self.sealed);
            copier.seal_all(&mut |(id, index)| add_sealed(pending, pool, sealed, id, &index))?;
        }
        self.pending.clear();
        Ok(())
    }

    /// After a fatal error: drops the packs being written and waits for those
    /// being sealed (a sealed pack no session references is garbage that
    /// `zmbackup -del` collects; a zip without its index is removed by the next
    /// operation).
    fn discard_writes(&mut self) {
        self.copier = None;
    }

    /// `ldap/ldap.bak` and `sys/` of a session.
    pub fn write_system(&self, sb: &mut SessionBuilder) -> Result<()> {
        let (ldif, global, server) = {
            let d = self.source.dir();
            (
                d.export_ldif()?,
                d.global_explicit()?,
                d.get_server(self.source.server_name).ok(),
            )
        };
        self.put_directory_dump(sb, ldif.as_bytes())?;
        let mut w = XmlWriter::new();
        w.open("config", &[]);
        w.open("global", &[]);
        for (k, vs) in &global {
            for v in vs {
                w.leaf("attr", &[("name", k.clone()), ("value", v.clone())]);
            }
        }
        w.close();
        if let Some(s) = server {
            w.open(
                "server",
                &[("name", s.name.clone()), ("zimbraId", s.id.clone())],
            );
            for (k, vs) in &s.attrs {
                for v in vs {
                    w.leaf("attr", &[("name", k.clone()), ("value", v.clone())]);
                }
            }
            w.close();
        }
        sb.put("sys/config.xml", &w.finish())?;
        crate::identity::back_up(self.source.store.home(), sb, self.secrets)
    }

    /// `ldap/ldap.bak`, a piece of the session that wrote it: the newest
    /// session's when the directory is the same (named again, nothing written:
    /// at 10,000 accounts the dump is ~3 MB, and most sessions find the
    /// directory unchanged), else a new piece of this session.
    fn put_directory_dump(&self, sb: &mut SessionBuilder, ldif: &[u8]) -> Result<()> {
        let newest = self
            .catalog
            .sessions()
            .rev()
            .find_map(|s| s.file(LDAP_DUMP))
            .filter(|f| {
                f.from.is_some()
                    && f.size == ldif.len() as u64
                    && f.blake3 == blake3::hash(ldif).to_hex().as_str()
            });
        match newest {
            Some(f) => {
                sb.keep_piece(f);
                Ok(())
            }
            None => sb.put_piece(LDAP_DUMP, ldif),
        }
    }

    /// Writes session.xml and makes the session visible, then updates accounts.xml.
    pub fn commit(&mut self, sb: SessionBuilder, session: &crate::Session) -> Result<()> {
        self.target
            .commit_session(&sb.label.to_string(), &session.to_xml())?;
        self.catalog.add_committed(session.clone());
        if let Err(e) =
            crate::accounts_xml::write_accounts_xml(self.target, &self.catalog, self.now())
        {
            tracing::error!("accounts.xml could not be rewritten (it is rebuilt later): {e}");
        }
        Ok(())
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

/// Reads the target default for a home: `zimbraBackupTarget` (relative paths are
/// relative to the home), else `<home>/backup`.
pub fn default_target(directory: &Directory, server: &str, home: &mv_home::Home) -> String {
    let configured = directory
        .effective_str(server, "zimbraBackupTarget")
        .or_else(|_| {
            directory.get_global().map(|g| {
                g.get("zimbraBackupTarget")
                    .and_then(|v| v.first().cloned())
                    .unwrap_or_default()
            })
        })
        .unwrap_or_default();
    if configured.trim().is_empty() {
        return home.backup_dir().display().to_string();
    }
    if configured.starts_with("s3://") || Path::new(&configured).is_absolute() {
        configured
    } else {
        home.root().join(configured).display().to_string()
    }
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
