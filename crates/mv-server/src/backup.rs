//! Backup requests of the service (`zmbackup`, `zmbackupquery`, `zmbackupabort`,
//! `-del`, `verify`): argument types and their execution. The logic is in
//! `mv_backup`; this module resolves the target and options and, in the server,
//! runs backups on their own thread (asynchronous by default: the answer carries
//! the labels at once; `BackupStatus` follows the run).

use crate::response::{AbortRequested, BackupStarted, Response};
use crate::{Service, ServiceError};
use mv_backup::{AccountSelection, BackupError, BackupOptions, Compression, SessionKind, Target};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `zmbackup -f | -i`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupRequest {
    /// `full` or `incremental`.
    pub kind: String,
    /// Addresses, or `all` (empty: all).
    #[serde(default)]
    pub accounts: Vec<String>,
    /// A directory (default: zimbraBackupTarget, else <home>/backup).
    #[serde(default)]
    pub target: Option<String>,
    /// `stored` (default), `deflate` or `zstd`.
    #[serde(default)]
    pub compression: Option<String>,
    /// `SearchIndex`, `Blobs`, `HsmBlobs`, `Secrets`.
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub include: Vec<String>,
    /// Wait for the end and answer with the report (else: labels at once).
    #[serde(default)]
    pub sync: bool,
}

/// `zmbackupquery`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QueryRequest {
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub kind: Option<String>,
    /// Times in any of the nine formats (local time).
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub verbose: bool,
}

/// `zmbackup -del ARG`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteRequest {
    pub arg: String,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
}

/// `mailvault backup verify`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VerifyRequest {
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub read_data: bool,
    /// Percentage of blobs to read.
    #[serde(default)]
    pub read_data_subset: Option<f64>,
}

impl From<BackupError> for ServiceError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::Invalid(_) | BackupError::Unsupported(_) => {
                ServiceError::BadRequest(e.to_string())
            }
            BackupError::NotFound(_) => ServiceError::NotFound(e.to_string()),
            BackupError::Store(s) => ServiceError::Store(s),
            BackupError::Directory(d) => ServiceError::Directory(d),
            other => ServiceError::Io(other.to_string()),
        }
    }
}

/// Which target a backup means: an explicit one may be made by it (a new or
/// empty directory, see `mv_backup::target::open`).
pub fn target_for(
    service: &Service,
    explicit: Option<&str>,
) -> Result<Arc<dyn Target>, ServiceError> {
    let spec = match explicit_target(explicit)? {
        Some(t) => t.to_string(),
        None => default_spec(service),
    };
    let _runtime = service.enter_runtime();
    Ok(mv_backup::target::open(&spec, service.store().home())?)
}

/// Which target a reading or restoring request means (query, verify, abort,
/// delete, restore): an explicit one must already be a backup target; nothing
/// is created anywhere for it.
pub fn existing_target_for(
    service: &Service,
    explicit: Option<&str>,
) -> Result<Arc<dyn Target>, ServiceError> {
    let _runtime = service.enter_runtime();
    match explicit_target(explicit)? {
        Some(t) => Ok(mv_backup::target::open_existing(t, service.store().home())?),
        None => Ok(mv_backup::target::open(
            &default_spec(service),
            service.store().home(),
        )?),
    }
}

impl Service {
    /// Makes the server's runtime (when this service runs in `serve`) the
    /// calling thread's until the guard drops: a target opened meanwhile sends
    /// its requests there. The calling thread must not be one of its workers
    /// (targets are used from job threads and `spawn_blocking`).
    pub fn enter_runtime(&self) -> Option<tokio::runtime::EnterGuard<'_>> {
        self.runtime.get().map(|h| h.enter())
    }

    /// Gives the service the server's runtime (once).
    pub fn set_runtime(&self, handle: tokio::runtime::Handle) {
        let _ = self.runtime.set(handle);
    }
}

fn default_spec(service: &Service) -> String {
    mv_backup::default_target(
        service.directory(),
        service.server_name(),
        service.store().home(),
    )
}

/// An explicit target, refused when it is a relative path: the server's working
/// directory means nothing to its caller (the CLI sends absolute paths).
fn explicit_target(explicit: Option<&str>) -> Result<Option<&str>, ServiceError> {
    match explicit {
        Some(t) if !t.is_empty() => {
            if !t.starts_with("s3://") && !std::path::Path::new(t).is_absolute() {
                return Err(ServiceError::BadRequest(format!(
                    "backup target {t:?} is a relative path: give an absolute one (or s3://BUCKET/PREFIX)"
                )));
            }
            Ok(Some(t))
        }
        _ => Ok(None),
    }
}

/// Backup options from a request (validated: conflicting or unknown options are
/// refused, never silently ignored).
pub fn options(r: &BackupRequest) -> Result<BackupOptions, ServiceError> {
    let kind: SessionKind = r.kind.parse()?;
    let mut o = BackupOptions::new(kind);
    o.accounts = AccountSelection::from_args(&r.accounts);
    if let Some(c) = &r.compression {
        o.compression = Compression::parse(c).ok_or_else(|| {
            ServiceError::BadRequest(format!(
                "unknown compression {c:?}: stored, deflate or zstd"
            ))
        })?;
    }
    for (list, include) in [(&r.exclude, false), (&r.include, true)] {
        for what in list {
            match what.to_ascii_lowercase().as_str() {
                "searchindex" => o.search_index = include,
                "blobs" => o.blobs = include,
                "hsmblobs" => o.hsm_blobs = include,
                "secrets" => o.secrets = Some(include),
                _ => {
                    return Err(ServiceError::BadRequest(format!(
                        "cannot include or exclude {what:?}: use SearchIndex, Blobs, HsmBlobs or Secrets"
                    )));
                }
            }
        }
    }
    Ok(o)
}

impl Service {
    /// What a backup reads from this service.
    pub fn backup_source(&self) -> mv_backup::Source<'_> {
        mv_backup::Source {
            store: self.store(),
            directory: self.directory_mutex(),
            server_name: self.server_name(),
        }
    }

    /// Runs a backup here and now (the CLI without a server; `sync` requests).
    pub fn backup_sync(
        &self,
        r: &BackupRequest,
        progress: &dyn mv_backup::Progress,
    ) -> Result<mv_backup::BackupReport, ServiceError> {
        crate::standby::refuse_backup(self)?;
        let target = target_for(self, r.target.as_deref())?;
        let src = self.backup_source();
        Ok(mv_backup::backup(&src, target, options(r)?, progress)?)
    }
}

/// Starts a backup on its own thread and answers with its labels at once.
pub fn start_async(
    service: Arc<Service>,
    r: &BackupRequest,
) -> Result<BackupStarted, ServiceError> {
    start_async_noted(service, r, crate::report::Note::default())
}

/// [`start_async`] for the scheduler: the note goes into the run's report.
pub fn start_async_noted(
    service: Arc<Service>,
    r: &BackupRequest,
    note: crate::report::Note,
) -> Result<BackupStarted, ServiceError> {
    crate::standby::refuse_backup(&service)?;
    let target = target_for(&service, r.target.as_deref())?;
    let prepared = mv_backup::prepare(&service.backup_source(), target.clone(), options(r)?)?;
    let labels: Vec<String> = prepared.labels().iter().map(|l| l.to_string()).collect();
    tracing::info!(
        target: "audit",
        op = "backup",
        "backup started: {} to {}",
        labels.join(" "),
        target.url()
    );
    let worker = service.clone();
    std::thread::Builder::new()
        .name(format!("backup {}", labels.join(" ")))
        .spawn(move || {
            let src = worker.backup_source();
            let result = prepared.run(&src, &crate::account_log::BackupWatch::new());
            let error = result.as_ref().err().map(|e| e.to_string());
            let outcome = match (&result, &error) {
                (Ok(r), _) => Ok(r),
                (Err(_), Some(e)) => Err(e.as_str()),
                (Err(_), None) => Err("backup failed"),
            };
            crate::report::backup_finished(&worker, &note, outcome);
        })
        .map_err(|e| ServiceError::Io(format!("cannot start the backup thread: {e}")))?;
    Ok(BackupStarted {
        labels,
        target: target.url(),
        is_async: true,
    })
}

/// Answers the backup requests that do not start a backup.
pub fn execute(service: &Service, req: crate::Request) -> Result<Response, ServiceError> {
    use crate::Request;
    Ok(match req {
        // Without an `Arc<Service>` there is no thread to hand the run to: it runs
        // here (the CLI without a server). The server goes through
        // `Service::execute_shared`, which starts asynchronous runs on a thread.
        Request::Backup(r) => {
            let result = service.backup_sync(&r, &crate::account_log::BackupWatch::new());
            let error = result.as_ref().err().map(|e| e.to_string());
            let note = crate::report::Note::default();
            match (&result, &error) {
                (Ok(report), _) => crate::report::backup_finished(service, &note, Ok(report)),
                (Err(_), Some(e)) => crate::report::backup_failed(service, &note, e),
                _ => {}
            }
            result?.into()
        }
        Request::BackupStatus { label } => {
            let job = mv_backup::progress::job(&label).ok_or_else(|| {
                ServiceError::NotFound(format!("no backup {label} has run in this server"))
            })?;
            job.status().into()
        }
        Request::BackupAbort { label, target } => {
            let t = existing_target_for(service, target.as_deref())?;
            mv_backup::request_abort(t.as_ref(), &label)?;
            AbortRequested { ok: true, label }.into()
        }
        Request::BackupQuery(q) => {
            let t = existing_target_for(service, q.target.as_deref())?;
            mv_backup::query(t.as_ref(), &query_options(&q)?)?.into()
        }
        Request::BackupDelete(d) => {
            delete_noted(service, &d, &crate::report::Note::default())?.into()
        }
        Request::BackupVerify(v) => {
            let t = existing_target_for(service, v.target.as_deref())?;
            mv_backup::verify(t.as_ref(), &verify_options(&v)?)?.into()
        }
        other => {
            return Err(ServiceError::BadRequest(format!(
                "not a backup request: {other:?}"
            )));
        }
    })
}

/// `zmbackup -del`: deletes, then reports the run (dry runs are not reported).
pub fn delete_noted(
    service: &Service,
    d: &DeleteRequest,
    note: &crate::report::Note,
) -> Result<mv_backup::DeleteReport, ServiceError> {
    let run = || -> Result<mv_backup::DeleteReport, ServiceError> {
        let t = existing_target_for(service, d.target.as_deref())?;
        let live = service
            .directory()
            .list_accounts(None)?
            .into_iter()
            .map(|a| a.id)
            .collect();
        let now = mv_types::UtcMillis::now();
        Ok(mv_backup::delete(
            t.as_ref(),
            &mv_backup::DeleteOptions {
                spec: mv_backup::parse_delete_arg(&d.arg, now)?,
                dry_run: d.dry_run,
                lock_wait: std::time::Duration::from_secs(30),
                live_accounts: Some(live),
                now,
            },
        )?)
    };
    let result = run();
    if !d.dry_run {
        match crate::report::ReportConfig::of(service) {
            Ok(cfg) => {
                let error = result.as_ref().err().map(|e| e.to_string());
                let outcome = match (&result, &error) {
                    (Ok(r), _) => Ok(r),
                    (Err(_), Some(e)) => Err(e.as_str()),
                    (Err(_), None) => Err("delete failed"),
                };
                crate::report::record(
                    service.store().home(),
                    &cfg,
                    crate::report::delete_report(&cfg, note, &d.arg, outcome),
                );
            }
            Err(e) => tracing::error!("cannot report the delete: {e}"),
        }
    }
    result
}

/// Query options from a request.
pub fn query_options(q: &QueryRequest) -> Result<mv_backup::QueryOptions, ServiceError> {
    let time = |s: &Option<String>| -> Result<Option<mv_types::UtcMillis>, ServiceError> {
        s.as_deref()
            .map(mv_types::UtcMillis::parse_local)
            .transpose()
            .map_err(|e| ServiceError::BadRequest(e.to_string()))
    };
    Ok(mv_backup::QueryOptions {
        label: q.label.as_deref().map(str::parse).transpose()?,
        accounts: q.accounts.clone(),
        kind: q.kind.as_deref().map(str::parse).transpose()?,
        from: time(&q.from)?,
        to: time(&q.to)?,
        verbose: q.verbose,
        resolved: Vec::new(),
    })
}

/// Verify options from a request.
pub fn verify_options(v: &VerifyRequest) -> Result<mv_backup::VerifyOptions, ServiceError> {
    let read_data = match (v.read_data, v.read_data_subset) {
        (true, Some(_)) => {
            return Err(ServiceError::BadRequest(
                "--read-data and --read-data-subset exclude each other".into(),
            ));
        }
        (true, None) => mv_backup::ReadData::All,
        (false, Some(p)) => mv_backup::ReadData::Subset(p),
        (false, None) => mv_backup::ReadData::None,
    };
    Ok(mv_backup::VerifyOptions {
        label: v.label.as_deref().map(str::parse).transpose()?,
        read_data,
    })
}
