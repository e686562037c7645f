//! Taking backups: [`prepare`] (lock, checks, labels), then [`Prepared::run`].
//!
//! Full sessions ([`crate::full`]) snapshot each mailbox online and copy the blobs
//! its snapshot references into the pool; incremental sessions ([`crate::incr`])
//! roll the redo log over and copy the archived logs since the last backup. Both
//! hold `ldap/ldap.bak` (the whole directory: a piece, named again while it does
//! not change) and `sys/` (configuration).
//!
//! This file holds the options, the reports and the preparation of a run;
//! `run/state.rs` what the sessions of a run share ([`Run`]), `run/builder.rs`
//! the files of a session being written ([`SessionBuilder`]), `run/aborter.rs`
//! how a running backup is told to stop.

mod aborter;
mod builder;
mod state;

pub(crate) use aborter::Aborter;
pub use aborter::abort_flag_path;
pub(crate) use builder::{FileIndex, SessionBuilder, hash_file};
pub(crate) use state::Run;

use crate::clock::Clock;
use crate::error::{BackupError, Result};
use crate::label::{Label, SessionKind};
use crate::pack::{Compression, DEFAULT_PACK_SIZE, MAX_PACK_SIZE, Pool};
use crate::progress::{Job, Progress, Tee};
use crate::session::{SessionError, SessionStats, SessionStatus};
use crate::target::{Target, TargetLock};
use crate::{catalog::Catalog, progress};
use mv_directory::{Account, Directory};
use mv_store::Store;
use mv_types::UtcMillis;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

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
                // Committed: a failure here costs the session nothing, so it
                // is only logged (the next full or `-del` tries again).
                if let Err(e) = run.target.sweep_empty_dirs_once("pieces/") {
                    tracing::warn!("sweeping empty directories under pieces/: {e}");
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
