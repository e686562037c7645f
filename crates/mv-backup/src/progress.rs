//! Progress reporting and the registry of running backups.
//!
//! A backup reports to a [`Progress`]: the CLI draws a bar from it; in the server,
//! each backup's [`Job`] records it so that `BackupStatus` requests (and a CLI
//! running `-sync` against the server) can follow it, and `zmbackupabort` can stop it.

use crate::label::Label;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// What a running backup tells its watcher.
pub trait Progress: Send + Sync {
    /// The sessions this run writes and how many accounts they cover in all.
    fn started(&self, _labels: &[Label], _accounts: u64) {}
    fn session_started(&self, _label: &Label, _accounts: u64) {}
    fn account_done(&self, _email: &str, _ok: bool) {}
    /// Bytes copied into the target (blobs, snapshots, redo logs).
    fn bytes(&self, _n: u64) {}
    /// A line worth showing (kept short).
    fn note(&self, _line: &str) {}
}

/// Reports nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// A snapshot of a job, for `BackupStatus`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct JobStatus {
    pub labels: Vec<String>,
    pub target: String,
    pub running: bool,
    pub accounts_total: u64,
    pub accounts_done: u64,
    pub accounts_failed: u64,
    /// The session being written (a run may write a full, then an incremental
    /// of the same accounts) and its own account counts: what a progress line
    /// shows.
    pub session: Option<String>,
    pub session_accounts_total: u64,
    pub session_accounts_done: u64,
    pub bytes: u64,
    pub abort_requested: bool,
    /// The final report once finished.
    pub report: Option<crate::BackupReport>,
    /// The error that stopped the backup, if one did.
    pub error: Option<String>,
}

/// One backup run, as the registry tracks it.
#[derive(Debug)]
pub struct Job {
    labels: Mutex<Vec<String>>,
    target: String,
    accounts_total: AtomicU64,
    accounts_done: AtomicU64,
    accounts_failed: AtomicU64,
    /// The current session: (label, accounts, accounts done).
    session: Mutex<Option<(String, u64, u64)>>,
    bytes: AtomicU64,
    abort: AtomicBool,
    running: AtomicBool,
    outcome: Mutex<(Option<crate::BackupReport>, Option<String>)>,
}

impl Job {
    fn new(labels: Vec<String>, target: String) -> Job {
        Job {
            labels: Mutex::new(labels),
            target,
            accounts_total: AtomicU64::new(0),
            accounts_done: AtomicU64::new(0),
            accounts_failed: AtomicU64::new(0),
            session: Mutex::new(None),
            bytes: AtomicU64::new(0),
            abort: AtomicBool::new(false),
            running: AtomicBool::new(true),
            outcome: Mutex::new((None, None)),
        }
    }

    pub fn abort_requested(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }

    pub fn request_abort(&self) {
        self.abort.store(true, Ordering::Relaxed);
    }

    /// Records the end of the run.
    pub fn finish(&self, report: Option<crate::BackupReport>, error: Option<String>) {
        *self.outcome.lock().unwrap_or_else(|p| p.into_inner()) = (report, error);
        self.running.store(false, Ordering::SeqCst);
    }

    pub fn status(&self) -> JobStatus {
        let (report, error) = self
            .outcome
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let session = self
            .session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        JobStatus {
            labels: self
                .labels
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            target: self.target.clone(),
            running: self.running.load(Ordering::SeqCst),
            accounts_total: self.accounts_total.load(Ordering::Relaxed),
            accounts_done: self.accounts_done.load(Ordering::Relaxed),
            accounts_failed: self.accounts_failed.load(Ordering::Relaxed),
            session: session.as_ref().map(|s| s.0.clone()),
            session_accounts_total: session.as_ref().map_or(0, |s| s.1),
            session_accounts_done: session.as_ref().map_or(0, |s| s.2),
            bytes: self.bytes.load(Ordering::Relaxed),
            abort_requested: self.abort_requested(),
            report,
            error,
        }
    }
}

impl Progress for Job {
    fn started(&self, _labels: &[Label], accounts: u64) {
        self.accounts_total.store(accounts, Ordering::Relaxed);
    }
    fn session_started(&self, label: &Label, accounts: u64) {
        *self.session.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((label.to_string(), accounts, 0));
    }
    fn account_done(&self, _email: &str, ok: bool) {
        if let Some(s) = self
            .session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            s.2 += 1;
        }
        self.accounts_done.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.accounts_failed.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }
}

/// Forwards to two watchers (the job registry and a caller's progress bar).
pub struct Tee<'a>(pub &'a dyn Progress, pub &'a dyn Progress);

impl Progress for Tee<'_> {
    fn started(&self, labels: &[Label], accounts: u64) {
        self.0.started(labels, accounts);
        self.1.started(labels, accounts);
    }
    fn session_started(&self, label: &Label, accounts: u64) {
        self.0.session_started(label, accounts);
        self.1.session_started(label, accounts);
    }
    fn account_done(&self, email: &str, ok: bool) {
        self.0.account_done(email, ok);
        self.1.account_done(email, ok);
    }
    fn bytes(&self, n: u64) {
        self.0.bytes(n);
        self.1.bytes(n);
    }
    fn note(&self, line: &str) {
        self.0.note(line);
        self.1.note(line);
    }
}

fn registry() -> &'static Mutex<HashMap<String, Arc<Job>>> {
    static JOBS: OnceLock<Mutex<HashMap<String, Arc<Job>>>> = OnceLock::new();
    JOBS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Registers a run under each of its labels (finished runs beyond the 50 newest
/// are forgotten).
pub(crate) fn register(labels: &[Label], target: String) -> Arc<Job> {
    let names: Vec<String> = labels.iter().map(Label::to_string).collect();
    let job = Arc::new(Job::new(names.clone(), target));
    let mut map = registry().lock().unwrap_or_else(|p| p.into_inner());
    if map.len() > 100 {
        let mut finished: Vec<String> = map
            .iter()
            .filter(|(_, j)| !j.running.load(Ordering::SeqCst))
            .map(|(k, _)| k.clone())
            .collect();
        finished.sort();
        let excess = finished.len().saturating_sub(50);
        for k in finished.into_iter().take(excess) {
            map.remove(&k);
        }
    }
    for n in names {
        map.insert(n, job.clone());
    }
    job
}

/// The job of a label, if this process runs (or ran) it.
pub fn job(label: &str) -> Option<Arc<Job>> {
    registry()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(label)
        .cloned()
}

/// Every job of this process that is still running.
pub fn running_jobs() -> Vec<Arc<Job>> {
    let map = registry().lock().unwrap_or_else(|p| p.into_inner());
    let mut seen = Vec::<Arc<Job>>::new();
    for j in map.values() {
        if j.running.load(Ordering::SeqCst) && !seen.iter().any(|s| Arc::ptr_eq(s, j)) {
            seen.push(j.clone());
        }
    }
    seen
}
