//! Long operations as jobs: a request started with `POST /v1/jobs` runs on its
//! own thread in the server and answers at once with the job's id; `GET
//! /v1/jobs/{id}` tells its state (and, when it ended, its result or error);
//! `DELETE /v1/jobs/{id}` cancels it. A client follows a job by polling, so
//! nothing depends on one HTTP request living as long as the work, and a
//! client that loses its connection picks the job up again by id.
//!
//! The server keeps the newest [`KEEP_FINISHED`] finished jobs (results and
//! log lines included) besides every running one; older ones are forgotten.
//!
//! A job's log lines are numbered from 0 as they are logged; the newest
//! [`KEEP_LOG`] are kept. A follower asks for the lines since the first one it
//! has not seen (`GET /v1/jobs/{id}?since=N`) and learns from `log_start`
//! whether lines it did not see were dropped meanwhile ([`LogCursor`]).

use crate::{Request, Response, Service, ServiceError};
use mv_types::UtcMillis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Finished jobs kept for `GET /v1/jobs/{id}`.
pub const KEEP_FINISHED: usize = 64;
/// Log lines kept per job (the newest).
pub const KEEP_LOG: usize = 200;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn is_finished(self) -> bool {
        self != JobState::Running
    }
}

/// A job as `GET /v1/jobs/{id}` answers it. The server holds its result as a
/// [`Response`]; a client reads it as the type its request answers with
/// (`JobStatus<RestoreReport>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatus<R = Response> {
    pub id: u64,
    /// The request's operation (`restore`, `backup_verify`, ...).
    pub op: String,
    pub state: JobState,
    pub started_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<i64>,
    /// Units done and to do, when the operation counts them (0/0 otherwise).
    #[serde(default)]
    pub done: u64,
    #[serde(default)]
    pub total: u64,
    /// The operation's answer, once it succeeded: the same JSON its request
    /// answers with through `POST /v1/op`.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub result: Option<R>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The HTTP status the error would have had as a direct request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_status: Option<u16>,
    /// The newest log lines (all those kept, or those asked for with
    /// `since`), oldest first.
    #[serde(default)]
    pub log: Vec<String>,
    /// The number of the first line of `log` (lines are numbered from 0 as
    /// they are logged); the next line logged is `log_start + log.len()`.
    #[serde(default)]
    pub log_start: u64,
}

impl<R> JobStatus<R> {
    /// The same status with only the log lines numbered `since` and after
    /// (those still kept).
    pub fn since(mut self, since: u64) -> JobStatus<R> {
        let skip = since
            .saturating_sub(self.log_start)
            .min(self.log.len() as u64);
        self.log.drain(..skip as usize);
        self.log_start += skip;
        self
    }
}

/// Where a follower of a job's log is: the number of the next line it wants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogCursor {
    next: u64,
}

/// What a follower gets from one status: lines it had not seen, and how many
/// lines before them the server no longer kept.
#[derive(Debug, PartialEq, Eq)]
pub struct LogNews<'a> {
    pub dropped: u64,
    pub lines: &'a [String],
}

impl LogCursor {
    /// The number of the next line to ask for (`?since=`).
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Takes what is new in `status` (which may hold lines already seen: an
    /// answer to a plain `GET`, or the status `POST` answered with) and moves
    /// past it.
    pub fn take<'a, R>(&mut self, status: &'a JobStatus<R>) -> LogNews<'a> {
        let seen = self
            .next
            .saturating_sub(status.log_start)
            .min(status.log.len() as u64) as usize;
        let dropped = status.log_start.saturating_sub(self.next);
        self.next = self.next.max(status.log_start + status.log.len() as u64);
        LogNews {
            dropped,
            lines: &status.log[seen..],
        }
    }
}

/// `None` whatever `R` is (serde's `default` would ask `R: Default`).
fn none<R>() -> Option<R> {
    None
}

/// One job: its status behind a lock, and its cancel flag.
pub struct Job {
    status: Mutex<JobStatus>,
    cancel: AtomicBool,
}

impl Job {
    pub fn status(&self) -> JobStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The status with the log lines numbered `since` and after only.
    pub fn status_since(&self, since: u64) -> JobStatus {
        self.status().since(since)
    }

    fn update(&self, f: impl FnOnce(&mut JobStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Whether a cancel was asked for.
    pub fn cancel_requested(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// Records progress: `done` of `total` units.
    pub fn progress(&self, done: u64, total: u64) {
        self.update(|s| {
            s.done = done;
            s.total = total;
        })
    }

    /// Appends a log line (the oldest go beyond [`KEEP_LOG`]).
    pub fn log(&self, line: impl Into<String>) {
        self.update(|s| {
            if s.log.len() >= KEEP_LOG {
                s.log.remove(0);
                s.log_start += 1;
            }
            s.log.push(line.into());
        })
    }

    pub(crate) fn finish(&self, result: Result<Response, ServiceError>) {
        let cancelled = self.cancel_requested();
        self.update(|s| {
            s.ended_ms = Some(UtcMillis::now().0);
            match result {
                Ok(v) => {
                    // A run stopped by its cancel still answers with what it did.
                    s.state = if cancelled {
                        JobState::Cancelled
                    } else {
                        JobState::Succeeded
                    };
                    s.result = Some(v);
                }
                Err(e) => {
                    s.state = if cancelled {
                        JobState::Cancelled
                    } else {
                        JobState::Failed
                    };
                    s.error_status = Some(e.status());
                    s.error = Some(e.to_string());
                }
            }
        })
    }
}

/// The jobs of one server.
#[derive(Default)]
pub struct Jobs {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    jobs: BTreeMap<u64, Arc<Job>>,
}

impl Jobs {
    /// Registers a running job for `op`.
    pub fn register(&self, op: &str) -> Arc<Job> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.next += 1;
        let id = inner.next;
        let job = Arc::new(Job {
            status: Mutex::new(JobStatus {
                id,
                op: op.to_string(),
                state: JobState::Running,
                started_ms: UtcMillis::now().0,
                ended_ms: None,
                done: 0,
                total: 0,
                result: None,
                error: None,
                error_status: None,
                log: Vec::new(),
                log_start: 0,
            }),
            cancel: AtomicBool::new(false),
        });
        inner.jobs.insert(id, job.clone());
        // Forget the oldest finished jobs beyond the bound; running ones stay.
        let finished: Vec<u64> = inner
            .jobs
            .iter()
            .filter(|(_, j)| j.status().state.is_finished())
            .map(|(id, _)| *id)
            .collect();
        for id in finished
            .iter()
            .take(finished.len().saturating_sub(KEEP_FINISHED))
        {
            inner.jobs.remove(id);
        }
        job
    }

    pub fn get(&self, id: u64) -> Option<Arc<Job>> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.jobs.get(&id).cloned()
    }

    /// Every job kept, oldest first.
    pub fn list(&self) -> Vec<JobStatus> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.jobs.values().map(|j| j.status()).collect()
    }
}

/// The operation name of a request (its `op` on the wire).
pub fn op_of(req: &Request) -> String {
    req.op().to_string()
}

/// Whether a request may run as a job: the long ones.
pub fn is_long(req: &Request) -> bool {
    matches!(
        req,
        Request::Backup(_)
            | Request::Restore(_)
            | Request::BackupSearch(_)
            | Request::RestoreItems(_)
            | Request::BackupExport(_)
            | Request::BackupVerify(_)
            | Request::BackupDelete(_)
            | Request::ReindexMailbox { .. }
    )
}

impl Service {
    /// The server's jobs.
    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    /// Starts a long request as a job on its own thread; answers with its
    /// status (running) at once.
    pub fn start_job(self: &Arc<Self>, req: Request) -> Result<JobStatus, ServiceError> {
        if !is_long(&req) {
            return Err(ServiceError::BadRequest(format!(
                "{} is not a long operation: POST it to /v1/op (jobs run backup, restore, backup_search, backup_export, restore_items, \
                 backup_verify, backup_delete and reindex_mailbox)",
                op_of(&req)
            )));
        }
        let job = self.jobs.register(&op_of(&req));
        let service = self.clone();
        let worker = job.clone();
        std::thread::Builder::new()
            .name(format!("job-{}", job.status().id))
            .spawn(move || {
                let result = service.execute_job(req, &worker);
                worker.finish(result);
            })
            .map_err(|e| ServiceError::Io(format!("cannot start the job: {e}")))?;
        Ok(job.status())
    }

    /// Asks a job to stop. A job that already ended is left as it is.
    pub fn cancel_job(&self, id: u64) -> Result<JobStatus, ServiceError> {
        let job = self
            .jobs
            .get(id)
            .ok_or_else(|| ServiceError::NotFound(format!("no job {id} in this server")))?;
        if !job.status().state.is_finished() {
            job.cancel.store(true, Ordering::SeqCst);
            job.log("cancel requested");
        }
        Ok(job.status())
    }

    fn execute_job(self: &Arc<Self>, req: Request, job: &Job) -> Result<Response, ServiceError> {
        // The operations run here rather than through `execute` leave their
        // audit lines here.
        let audit = matches!(
            req,
            Request::Restore(_) | Request::Backup(_) | Request::BackupSearch(_)
        )
        .then(|| crate::audit::begin(&req));
        // A cancel that came first is seen by the operation at its first
        // step (before its first account), so it ends as a cancelled run does.
        let result = match req {
            Request::Restore(r) => self
                .restore_watched(&r, &|done, total, line| {
                    job.progress(done, total);
                    if let Some(line) = line {
                        job.log(line);
                    }
                    !job.cancel_requested()
                })
                .map(Response::from),
            Request::BackupSearch(r) => self
                .backup_search_watched(&r, &|done, total, line| {
                    job.progress(done, total);
                    if let Some(line) = line {
                        job.log(line);
                    }
                    !job.cancel_requested()
                })
                .map(Response::from),
            Request::Backup(r) => self.backup_job(&r, job),
            other => self.execute(other),
        };
        if let Some(audit) = audit {
            audit.end(&result);
        }
        result
    }

    /// A backup as a job: its cancel is `zmbackupabort` of its sessions, so a
    /// cancelled backup leaves what an aborted one leaves: it stops between
    /// accounts, and its session keeps the accounts completed whole, listed as
    /// "completed (aborted by command)" with the missing ones named.
    fn backup_job(
        &self,
        r: &crate::backup::BackupRequest,
        job: &Job,
    ) -> Result<Response, ServiceError> {
        let target = crate::backup::target_for(self, r.target.as_deref())?;
        let src = self.backup_source();
        let prepared = mv_backup::prepare(&src, target.clone(), crate::backup::options(r)?)?;
        let labels: Vec<String> = prepared.labels().iter().map(|l| l.to_string()).collect();
        job.log(format!("backup {} to {}", labels.join(" "), target.url()));
        let watch = JobWatch {
            job,
            target: target.as_ref(),
            labels: &labels,
            aborted: AtomicBool::new(false),
            done: std::sync::atomic::AtomicU64::new(0),
            total: std::sync::atomic::AtomicU64::new(0),
        };
        let account_log = crate::account_log::BackupWatch::new();
        let result = prepared.run(&src, &mv_backup::progress::Tee(&account_log, &watch));
        let note = crate::report::Note::default();
        match &result {
            Ok(report) => crate::report::backup_finished(self, &note, Ok(report)),
            Err(e) => crate::report::backup_failed(self, &note, &e.to_string()),
        }
        Ok(result?.into())
    }
}

/// How a backup job's log announces a session: `session LABEL: N accounts`.
pub const SESSION_LINE: &str = "session ";

/// A backup's progress into its job, and the job's cancel into the backup.
struct JobWatch<'a> {
    job: &'a Job,
    target: &'a dyn mv_backup::Target,
    labels: &'a [String],
    aborted: AtomicBool,
    done: std::sync::atomic::AtomicU64,
    total: std::sync::atomic::AtomicU64,
}

impl JobWatch<'_> {
    /// Passes a cancel on once, as `zmbackupabort -lb LABEL` for each session.
    fn check_cancel(&self) {
        if self.job.cancel_requested() && !self.aborted.swap(true, Ordering::SeqCst) {
            for label in self.labels {
                if let Err(e) = mv_backup::request_abort(self.target, label) {
                    self.job.log(format!("aborting {label}: {e}"));
                }
            }
        }
    }
}

impl mv_backup::Progress for JobWatch<'_> {
    fn started(&self, _labels: &[mv_backup::Label], accounts: u64) {
        self.total.store(accounts, Ordering::SeqCst);
        self.job.progress(0, accounts);
        self.check_cancel();
    }
    /// A run may write a full, then an incremental: `done`/`total` count the
    /// session being written, as zmbackup's progress does.
    fn session_started(&self, label: &mv_backup::Label, accounts: u64) {
        self.done.store(0, Ordering::SeqCst);
        self.total.store(accounts, Ordering::SeqCst);
        self.job.progress(0, accounts);
        self.job
            .log(format!("{SESSION_LINE}{label}: {accounts} accounts"));
        self.check_cancel();
    }
    fn account_done(&self, email: &str, ok: bool) {
        let done = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        self.job.progress(done, self.total.load(Ordering::SeqCst));
        self.job.log(format!(
            "{email}: {}",
            if ok { "backed up" } else { "failed" }
        ));
        self.check_cancel();
    }
    fn bytes(&self, _n: u64) {
        self.check_cancel();
    }
    fn note(&self, line: &str) {
        self.job.log(line);
        self.check_cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(from: u64, to: u64) -> Vec<String> {
        (from..to).map(|i| format!("line {i}")).collect()
    }

    #[test]
    fn a_follower_is_told_of_lines_logged_past_the_cap_between_two_polls() {
        let jobs = Jobs::default();
        let job = jobs.register("restore");
        let mut cursor = LogCursor::default();
        for l in lines(0, 5) {
            job.log(l);
        }
        let st = job.status_since(cursor.next());
        let news = cursor.take(&st);
        assert_eq!((news.dropped, news.lines), (0, &lines(0, 5)[..]));

        // More lines than the server keeps, between two polls.
        let end = 5 + KEEP_LOG as u64 + 50;
        for l in lines(5, end) {
            job.log(l);
        }
        let st = job.status_since(cursor.next());
        assert_eq!(st.log_start, 55);
        assert_eq!(st.log.len(), KEEP_LOG);
        let news = cursor.take(&st);
        assert_eq!(news.dropped, 50, "lines 5..55 went by unseen");
        assert_eq!(news.lines, &lines(55, end)[..]);

        // Nothing new: nothing, and nothing dropped.
        let st = job.status_since(cursor.next());
        assert!(st.log.is_empty());
        assert_eq!(st.log_start, end);
        let news = cursor.take(&st);
        assert_eq!((news.dropped, news.lines.len()), (0, 0));

        // A whole status (what POST answers, a plain GET) gives only the new.
        job.log("last");
        let st = job.status();
        assert_eq!(st.log_start, end + 1 - KEEP_LOG as u64);
        let news = cursor.take(&st);
        assert_eq!((news.dropped, news.lines), (0, &["last".to_string()][..]));
        assert_eq!(cursor.next(), end + 1);

        // On the wire the numbering travels with the lines.
        let wire: JobStatus<crate::response::Ack> =
            serde_json::from_slice(&serde_json::to_vec(&job.status_since(end)).unwrap()).unwrap();
        assert_eq!((wire.log_start, wire.log), (end, vec!["last".to_string()]));
    }
}
