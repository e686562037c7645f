//! Reports after every backup and delete run (and disk alerts): written under
//! `<home>/log/reports/` (JSON and text), and emailed through the SMTP relay
//! `zimbraSmtpHostname:zimbraSmtpPort` to `zimbraBackupReportEmailRecipients`.
//!
//! Email goes through a persisted outbox (`<home>/log/outbox/*.json`): a report is
//! queued durably first, then sent; a failed send is logged and retried with
//! exponential backoff (`backup_report_retry_seconds`, doubling, at most
//! [`MAX_ATTEMPTS`] tries, then moved to `outbox/failed/`). The server retries every
//! second; a restart picks the queue up again. A report never fails the run it
//! describes.
//!
//! Subject `<zimbraBackupReportEmailSubjectPrefix>: SUCCESS|FAIL`; the body has
//! `Server:`, then per session the zmbackupquery block (Label, Type, Status,
//! Started, Ended, Redo log sequence range, Number of accounts, Number of errors)
//! and up to 10 errors, as the original's report does.

use crate::Service;
use mv_backup::{BackupReport, DeleteReport};
use mv_directory::Directory;
use mv_home::Home;
use mv_types::UtcMillis;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Sends are tried this many times before the message moves to `outbox/failed/`.
pub const MAX_ATTEMPTS: u32 = 10;
/// The longest wait between two tries.
const MAX_BACKOFF_SECS: u64 = 6 * 3600;
/// Errors listed in a report body (the original lists 10).
const MAX_ERRORS: usize = 10;

/// Why a run happened, when the scheduler started it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Note {
    /// The schedule entry (`f 0 1 * * 6 -a all`).
    pub scheduled: Option<String>,
    /// The occurrence it ran for.
    pub due: Option<UtcMillis>,
    /// The occurrence passed while the server was down; it ran at start-up.
    pub missed: bool,
}

/// Where reports go (from the server's configuration).
#[derive(Debug, Clone, Serialize)]
pub struct ReportConfig {
    pub server: String,
    pub subject_prefix: String,
    pub sender: String,
    pub recipients: Vec<String>,
    pub smtp_host: String,
    pub smtp_port: u16,
}

impl ReportConfig {
    pub fn load(directory: &Directory, server: &str) -> Result<ReportConfig, crate::ServiceError> {
        let s = |k: &str| directory.effective_str(server, k);
        let sender = match s("zimbraBackupReportEmailSender")? {
            v if v.is_empty() => format!("mailvault@{server}"),
            v => v,
        };
        Ok(ReportConfig {
            server: server.to_string(),
            subject_prefix: s("zimbraBackupReportEmailSubjectPrefix")?,
            sender,
            recipients: directory.effective(server, "zimbraBackupReportEmailRecipients")?,
            smtp_host: match s("zimbraSmtpHostname")? {
                v if v.is_empty() => "localhost".into(),
                v => v,
            },
            smtp_port: directory
                .effective_u64(server, "zimbraSmtpPort")?
                .try_into()
                .unwrap_or(25),
        })
    }

    pub fn of(service: &Service) -> Result<ReportConfig, crate::ServiceError> {
        ReportConfig::load(&service.directory(), service.server_name())
    }
}

/// One report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub id: String,
    pub at: UtcMillis,
    /// `backup`, `delete` or `disk`.
    pub operation: String,
    pub ok: bool,
    pub subject: String,
    pub body: String,
    #[serde(default)]
    pub note: Note,
    /// The run's own report (BackupReport, DeleteReport) or the error.
    pub detail: Value,
    /// What happened to the email: `queued`, or why none was sent.
    pub email: String,
}

fn next_id(op: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{op}-{}-{}",
        UtcMillis::now().label_stamp(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn note_lines(out: &mut String, note: &Note) {
    if let Some(s) = &note.scheduled {
        let _ = writeln!(out, "Scheduled: {s}");
    }
    if note.missed {
        let due = note
            .due
            .map(|d| d.display_local_with_weekday())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "Note: the run due {due} was missed while the server was down; it ran at start-up"
        );
    }
}

/// The report of a backup run (`Ok`) or of one that could not run (`Err`).
pub fn backup_report(
    cfg: &ReportConfig,
    note: &Note,
    result: Result<&BackupReport, &str>,
) -> RunReport {
    let mut body = format!("Server: {}\n", cfg.server);
    note_lines(&mut body, note);
    let (ok, detail) = match result {
        Ok(r) => {
            for s in &r.sessions {
                body.push('\n');
                let _ = writeln!(body, "Label:   {}", s.label);
                let _ = writeln!(body, "Type:    {}", s.kind.as_str());
                let _ = writeln!(body, "Status:  {}", s.status_text);
                let _ = writeln!(body, "Started: {}", s.started.display_local_with_weekday());
                let _ = writeln!(body, "Ended:   {}", s.ended.display_local_with_weekday());
                match s.redo {
                    Some((a, b)) => {
                        let _ = writeln!(body, "Redo log sequence range: {a} .. {b}");
                    }
                    None => {
                        let _ = writeln!(body, "Redo log sequence range: (none)");
                    }
                }
                let _ = writeln!(body, "Number of accounts: {}", s.accounts);
                let _ = writeln!(body, "Number of errors: {}", s.errors.len());
                if !s.errors.is_empty() {
                    let _ = writeln!(body, "\nErrors:");
                    for e in s.errors.iter().take(MAX_ERRORS) {
                        match &e.account {
                            Some(a) => {
                                let _ = writeln!(body, "  {a}: {}", e.message);
                            }
                            None => {
                                let _ = writeln!(body, "  {}", e.message);
                            }
                        }
                    }
                    if s.errors.len() > MAX_ERRORS {
                        let _ = writeln!(
                            body,
                            "  ... and {} more (zmbackupquery -v -lb {})",
                            s.errors.len() - MAX_ERRORS,
                            s.label
                        );
                    }
                }
            }
            (r.ok(), serde_json::to_value(r).unwrap_or(Value::Null))
        }
        Err(e) => {
            let _ = writeln!(body, "\nError: {e}");
            (false, serde_json::json!({"error": e}))
        }
    };
    finish(cfg, "backup", ok, body, note, detail)
}

/// The report of a delete run.
pub fn delete_report(
    cfg: &ReportConfig,
    note: &Note,
    arg: &str,
    result: Result<&DeleteReport, &str>,
) -> RunReport {
    let mut body = format!("Server: {}\n", cfg.server);
    note_lines(&mut body, note);
    let _ = writeln!(body, "\nOperation: delete (-del {arg})");
    let (ok, detail) = match result {
        Ok(r) => {
            let _ = writeln!(body, "Target: {}", r.target);
            let _ = writeln!(body, "Selection: {}", r.selection);
            if r.deleted.is_empty() {
                let _ = writeln!(body, "Deleted: none");
            } else {
                let _ = writeln!(body, "Deleted: {}", r.deleted.join(", "));
            }
            for k in &r.kept {
                let _ = writeln!(body, "Kept:    {}: {}", k.label, k.reason);
            }
            let _ = writeln!(
                body,
                "Space freed: {}",
                mv_backup::space::human_bytes(r.gc.bytes_freed)
            );
            (true, serde_json::to_value(r).unwrap_or(Value::Null))
        }
        Err(e) => {
            let _ = writeln!(body, "Error: {e}");
            (false, serde_json::json!({"error": e}))
        }
    };
    finish(cfg, "delete", ok, body, note, detail)
}

fn finish(
    cfg: &ReportConfig,
    op: &str,
    ok: bool,
    body: String,
    note: &Note,
    detail: Value,
) -> RunReport {
    RunReport {
        id: next_id(op),
        at: UtcMillis::now(),
        operation: op.to_string(),
        ok,
        subject: format!(
            "{}: {}",
            cfg.subject_prefix,
            if ok { "SUCCESS" } else { "FAIL" }
        ),
        body,
        note: note.clone(),
        detail,
        email: String::new(),
    }
}

/// A report not about a run (disk alerts): subject and body as given.
pub fn custom_report(
    op: &str,
    ok: bool,
    subject: String,
    body: String,
    detail: Value,
) -> RunReport {
    RunReport {
        id: next_id(op),
        at: UtcMillis::now(),
        operation: op.to_string(),
        ok,
        subject,
        body,
        note: Note::default(),
        detail,
        email: String::new(),
    }
}

pub fn reports_dir(home: &Home) -> PathBuf {
    home.log_dir().join("reports")
}

fn outbox_dir(home: &Home) -> PathBuf {
    home.log_dir().join("outbox")
}

/// Writes the report under log/reports/, queues its email and tries to send it
/// once. Never fails: problems are logged (the run's outcome stands on its own).
pub fn record(home: &Home, cfg: &ReportConfig, mut report: RunReport) -> RunReport {
    report.email = if cfg.recipients.is_empty() {
        "not sent: zimbraBackupReportEmailRecipients is not set".into()
    } else {
        match enqueue(home, cfg, &report) {
            Ok(()) => "queued".into(),
            Err(e) => {
                tracing::error!("cannot queue the report email {}: {e}", report.id);
                format!("not sent: cannot queue it: {e}")
            }
        }
    };
    let dir = reports_dir(home);
    let written = mv_home::durable::create_dir_all_durable(&dir).and_then(|_| {
        mv_home::write_atomic(
            &dir.join(format!("{}.json", report.id)),
            &serde_json::to_vec_pretty(&report).unwrap_or_default(),
        )?;
        mv_home::write_atomic(
            &dir.join(format!("{}.txt", report.id)),
            format!("Subject: {}\n\n{}", report.subject, report.body).as_bytes(),
        )
    });
    if let Err(e) = written {
        tracing::error!(
            "cannot write report {} under {}: {e}",
            report.id,
            dir.display()
        );
    }
    if report.ok {
        tracing::info!("{}", report.subject);
    } else {
        tracing::warn!("{}", report.subject);
    }
    if !cfg.recipients.is_empty() {
        flush_outbox(home, cfg, base_backoff(home));
    }
    report
}

/// Reports a finished (or failed) backup run of a service.
pub fn backup_finished(service: &Service, note: &Note, result: Result<&BackupReport, &str>) {
    match ReportConfig::of(service) {
        Ok(cfg) => {
            record(
                service.store().home(),
                &cfg,
                backup_report(&cfg, note, result),
            );
        }
        Err(e) => tracing::error!("cannot report the backup: {e}"),
    }
}

/// Reports a backup that could not start.
pub fn backup_failed(service: &Service, note: &Note, error: &str) {
    backup_finished(service, note, Err(error));
}

/// The newest reports first (at most `limit`), each with the current state of
/// its email: `queued` becomes `sent` once the message left the outbox, or says
/// how the tries are going.
pub fn list_with_delivery(home: &Home, limit: usize) -> Vec<RunReport> {
    let outbox = outbox_status(home);
    let mut reports = list(home, limit);
    for r in reports.iter_mut().filter(|r| r.email == "queued") {
        let tries = |q: &Queued| {
            format!(
                "{} tries, last error: {}",
                q.attempts,
                q.last_error.clone().unwrap_or_default()
            )
        };
        r.email = if let Some(q) = outbox.pending.iter().find(|q| q.id == r.id) {
            if q.attempts == 0 {
                "queued".into()
            } else {
                format!("queued ({})", tries(q))
            }
        } else if let Some(q) = outbox.failed.iter().find(|q| q.id == r.id) {
            format!("not sent: gave up after {}", tries(q))
        } else {
            "sent".into()
        };
    }
    reports
}

/// The newest reports first (at most `limit`).
pub fn list(home: &Home, limit: usize) -> Vec<RunReport> {
    let dir = reports_dir(home);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
        .iter()
        .rev()
        .filter_map(|n| {
            let bytes = std::fs::read(dir.join(n)).ok()?;
            serde_json::from_slice(&bytes).ok()
        })
        .take(limit)
        .collect()
}

/// A queued email.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Queued {
    pub id: String,
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
    pub created: UtcMillis,
    pub attempts: u32,
    pub next_attempt: UtcMillis,
    pub last_error: Option<String>,
}

fn enqueue(home: &Home, cfg: &ReportConfig, r: &RunReport) -> std::io::Result<()> {
    let dir = outbox_dir(home);
    mv_home::durable::create_dir_all_durable(&dir)?;
    let q = Queued {
        id: r.id.clone(),
        from: cfg.sender.clone(),
        to: cfg.recipients.clone(),
        subject: r.subject.clone(),
        body: r.body.clone(),
        created: r.at,
        attempts: 0,
        next_attempt: r.at,
        last_error: None,
    };
    mv_home::write_atomic(
        &dir.join(format!("{}.json", q.id)),
        &serde_json::to_vec_pretty(&q).unwrap_or_default(),
    )
}

/// The first retry delay (local config `backup_report_retry_seconds`).
pub fn base_backoff(home: &Home) -> u64 {
    home.open()
        .map(|c| c.get_u64("backup_report_retry_seconds"))
        .unwrap_or(60)
        .max(1)
}

/// What is waiting in the outbox.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OutboxStatus {
    pub pending: Vec<Queued>,
    /// Given up after MAX_ATTEMPTS tries.
    pub failed: Vec<Queued>,
}

fn read_queue(dir: &Path) -> Vec<(PathBuf, Queued)> {
    let mut v: Vec<(PathBuf, Queued)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter_map(|p| {
            let q = serde_json::from_slice(&std::fs::read(&p).ok()?).ok()?;
            Some((p, q))
        })
        .collect();
    v.sort_by(|a, b| a.1.id.cmp(&b.1.id));
    v
}

pub fn outbox_status(home: &Home) -> OutboxStatus {
    let dir = outbox_dir(home);
    OutboxStatus {
        pending: read_queue(&dir).into_iter().map(|(_, q)| q).collect(),
        failed: read_queue(&dir.join("failed"))
            .into_iter()
            .map(|(_, q)| q)
            .collect(),
    }
}

/// Sends every due message of the outbox. One process at a time (a lock file):
/// the server and a CLI never send the same message twice.
pub fn flush_outbox(home: &Home, cfg: &ReportConfig, base_secs: u64) -> usize {
    let dir = outbox_dir(home);
    if !dir.is_dir() {
        return 0;
    }
    let Ok(lock) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))
    else {
        return 0;
    };
    if lock.try_lock().is_err() {
        return 0;
    }
    let mut sent = 0;
    let now = UtcMillis::now();
    for (path, mut q) in read_queue(&dir) {
        if q.next_attempt > now {
            continue;
        }
        match send(cfg, &q) {
            Ok(()) => {
                tracing::info!("report email {:?} sent to {}", q.subject, q.to.join(", "));
                if let Err(e) = std::fs::remove_file(&path).and_then(|_| mv_home::fsync_dir(&dir)) {
                    tracing::error!("cannot remove sent {}: {e}", path.display());
                }
                sent += 1;
            }
            Err(e) => {
                q.attempts += 1;
                q.last_error = Some(e.clone());
                let delay = base_secs
                    .saturating_mul(1u64 << (q.attempts - 1).min(20))
                    .min(MAX_BACKOFF_SECS);
                q.next_attempt = UtcMillis(now.0 + (delay as i64) * 1000);
                let bytes = serde_json::to_vec_pretty(&q).unwrap_or_default();
                if q.attempts >= MAX_ATTEMPTS {
                    tracing::error!(
                        "giving up on report email {:?} after {} tries: {e}",
                        q.subject,
                        q.attempts
                    );
                    let failed = dir.join("failed");
                    let moved = mv_home::durable::create_dir_all_durable(&failed)
                        .and_then(|_| {
                            mv_home::write_atomic(&failed.join(format!("{}.json", q.id)), &bytes)
                        })
                        .and_then(|_| std::fs::remove_file(&path))
                        .and_then(|_| mv_home::fsync_dir(&dir));
                    if let Err(e) = moved {
                        tracing::error!("cannot move {} to failed/: {e}", path.display());
                    }
                } else {
                    tracing::warn!(
                        "cannot send report email {:?} through {}:{} (try {} of {MAX_ATTEMPTS}, next in {delay} s): {e}",
                        q.subject,
                        cfg.smtp_host,
                        cfg.smtp_port,
                        q.attempts
                    );
                    if let Err(e) = mv_home::write_atomic(&path, &bytes) {
                        tracing::error!("cannot update {}: {e}", path.display());
                    }
                }
            }
        }
    }
    sent
}

/// One message through the relay (plain SMTP: the relay is local or trusted).
fn send(cfg: &ReportConfig, q: &Queued) -> Result<(), String> {
    use lettre::Transport;
    use lettre::message::header::ContentType;
    let mut b = lettre::Message::builder()
        .from(
            q.from
                .parse()
                .map_err(|e| format!("sender {:?}: {e}", q.from))?,
        )
        .subject(q.subject.clone())
        .header(ContentType::TEXT_PLAIN);
    for to in &q.to {
        b = b.to(to.parse().map_err(|e| format!("recipient {to:?}: {e}"))?);
    }
    let message = b.body(q.body.clone()).map_err(|e| e.to_string())?;
    let transport = lettre::SmtpTransport::builder_dangerous(cfg.smtp_host.clone())
        .port(cfg.smtp_port)
        .hello_name(lettre::transport::smtp::extension::ClientId::Domain(
            cfg.server.clone(),
        ))
        .timeout(Some(Duration::from_secs(20)))
        .build();
    transport
        .send(&message)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The server's outbox thread: sends due messages every second.
pub fn spawn_outbox(
    service: Arc<Service>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("report outbox".into())
        .spawn(move || {
            let home = service.store().home().clone();
            while !stop.load(Ordering::Relaxed) {
                // The settings are read only when something waits to be sent.
                let waiting = std::fs::read_dir(outbox_dir(&home)).is_ok_and(|d| {
                    d.flatten()
                        .any(|e| e.path().extension().is_some_and(|x| x == "json"))
                });
                if waiting {
                    match ReportConfig::of(&service) {
                        Ok(cfg) => {
                            flush_outbox(&home, &cfg, base_backoff(&home));
                        }
                        Err(e) => tracing::error!("cannot read the report settings: {e}"),
                    }
                }
                for _ in 0..10 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mv_backup::session::{SessionError, SessionStats};
    use mv_backup::{Label, SessionKind, SessionReport, SessionStatus};

    fn cfg() -> ReportConfig {
        ReportConfig {
            server: "mail.example.com".into(),
            subject_prefix: "ZCS Backup Report".into(),
            sender: "backup@example.com".into(),
            recipients: vec!["admin@example.com".into()],
            smtp_host: "localhost".into(),
            smtp_port: 25,
        }
    }

    #[test]
    fn backup_report_layout_and_error_limit() {
        let errors: Vec<SessionError> = (0..12)
            .map(|i| SessionError {
                account: Some(format!("u{i}@example.com")),
                message: "mailbox database unreadable".into(),
            })
            .collect();
        let report = BackupReport {
            target: "/backup".into(),
            sessions: vec![SessionReport {
                label: Label::parse("full-20261126.010000.000").unwrap(),
                kind: SessionKind::Full,
                status: SessionStatus::CompletedWithErrors,
                status_text: "completed (with errors)".into(),
                started: UtcMillis(1_795_654_800_000),
                ended: UtcMillis(1_795_654_860_000),
                accounts: 20,
                accounts_completed: 8,
                redo: Some((53, 57)),
                errors,
                stats: SessionStats::default(),
            }],
        };
        let note = Note {
            scheduled: Some("f 0 1 * * 6 -a all".into()),
            due: None,
            missed: false,
        };
        let r = backup_report(&cfg(), &note, Ok(&report));
        assert_eq!(r.subject, "ZCS Backup Report: FAIL");
        assert!(!r.ok);
        let lines: Vec<&str> = r.body.lines().collect();
        assert_eq!(lines[0], "Server: mail.example.com");
        assert_eq!(lines[1], "Scheduled: f 0 1 * * 6 -a all");
        assert_eq!(lines[3], "Label:   full-20261126.010000.000");
        assert_eq!(lines[4], "Type:    full");
        assert_eq!(lines[5], "Status:  completed (with errors)");
        assert!(lines[6].starts_with("Started: "));
        assert!(lines[7].starts_with("Ended:   "));
        assert_eq!(lines[8], "Redo log sequence range: 53 .. 57");
        assert_eq!(lines[9], "Number of accounts: 20");
        assert_eq!(lines[10], "Number of errors: 12");
        assert_eq!(lines[12], "Errors:");
        assert_eq!(
            r.body.matches(": mailbox database unreadable").count(),
            10,
            "at most 10 errors"
        );
        assert!(
            r.body
                .ends_with("  ... and 2 more (zmbackupquery -v -lb full-20261126.010000.000)\n"),
            "{}",
            r.body
        );
        let failed = backup_report(&cfg(), &Note::default(), Err("Backup cannot start"));
        assert_eq!(failed.subject, "ZCS Backup Report: FAIL");
        assert!(failed.body.ends_with("\nError: Backup cannot start\n"));
    }
}
