//! Reports after every backup and delete run (and disk alerts): written under
//! `<home>/log/reports/` (JSON and text), and emailed through the SMTP relay
//! `zimbraSmtpHostname:zimbraSmtpPort` to `zimbraBackupReportEmailRecipients`.
//!
//! Email goes through the persisted outbox of [`crate::outbox`] (queued durably,
//! then sent, retried with backoff). A report never fails the run it describes.
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
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

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
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
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
        ReportConfig::load(service.directory(), service.server_name())
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
    /// The run's own report (BackupReport, DeleteReport, the filesystem of a
    /// disk alert) or the error.
    pub detail: ReportDetail,
    /// What happened to the email: `queued`, or why none was sent.
    pub email: String,
}

/// What a report is about, in full. Untagged on the wire (`log/reports/*.json`
/// and `backup_reports` answers): the inner report's own JSON, or
/// `{"error": "..."}` for a run that could not run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReportDetail {
    Error { error: String },
    Backup(BackupReport),
    Delete(DeleteReport),
    Disk(crate::diskmon::FsUsage),
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
            (r.ok(), ReportDetail::Backup(r.clone()))
        }
        Err(e) => {
            let _ = writeln!(body, "\nError: {e}");
            (false, ReportDetail::Error { error: e.into() })
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
            (true, ReportDetail::Delete(r.clone()))
        }
        Err(e) => {
            let _ = writeln!(body, "Error: {e}");
            (false, ReportDetail::Error { error: e.into() })
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
    detail: ReportDetail,
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
    detail: ReportDetail,
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

/// Writes the report under log/reports/, queues its email and tries to send it
/// once. Never fails: problems are logged (the run's outcome stands on its own).
pub fn record(home: &Home, cfg: &ReportConfig, mut report: RunReport) -> RunReport {
    report.email = if cfg.recipients.is_empty() {
        "not sent: zimbraBackupReportEmailRecipients is not set".into()
    } else {
        match crate::outbox::enqueue(home, cfg, &report) {
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
        crate::outbox::flush(home, cfg, crate::outbox::base_backoff(home));
    }
    report
}

/// Reports a finished (or failed) backup run of a service.
pub fn backup_finished(service: &Service, note: &Note, result: Result<&BackupReport, &str>) {
    crate::metrics::backup_finished(result);
    audit_backup_end(result);
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

/// The audit line of a finished backup: each session's label, kind, accounts,
/// bytes written, duration and status.
fn audit_backup_end(result: Result<&BackupReport, &str>) {
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(target: "audit", op = "backup", "backup failed: {e}");
            return;
        }
    };
    for s in &report.sessions {
        let line = format!(
            "backup {} ({}) {}: {}/{} accounts, {} bytes written, {:.1} s, target {}",
            s.label,
            s.kind.as_str(),
            s.status_text,
            s.accounts_completed,
            s.accounts,
            s.stats.bytes_written,
            (s.ended.0 - s.started.0) as f64 / 1000.0,
            report.target
        );
        if s.status == mv_backup::session::SessionStatus::Completed {
            tracing::info!(target: "audit", op = "backup", "{line}");
        } else {
            tracing::warn!(target: "audit", op = "backup", "{line}");
        }
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
    let outbox = crate::outbox::status(home);
    let mut reports = list(home, limit);
    for r in reports.iter_mut().filter(|r| r.email == "queued") {
        let tries = |q: &crate::outbox::Queued| {
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
                missing: Vec::new(),
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
        // Read back from log/reports/*.json as what they are.
        for r in [r, failed] {
            let back: RunReport = serde_json::from_slice(&serde_json::to_vec(&r).unwrap()).unwrap();
            match &back.detail {
                ReportDetail::Backup(b) => assert_eq!(b.sessions[0].accounts, 20),
                ReportDetail::Error { error } => assert_eq!(error, "Backup cannot start"),
                other => panic!("read back as {other:?}"),
            }
        }
    }
}
