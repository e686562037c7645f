//! The report email outbox: a report's email is queued durably in
//! `<home>/log/outbox/<id>.json` before any send; sends go through the SMTP relay
//! `zimbraSmtpHostname:zimbraSmtpPort` (lettre, plain SMTP: the relay is local or
//! trusted). A failed send is logged and retried after
//! `backup_report_retry_seconds`, doubling per try (at most 6 h), [`MAX_ATTEMPTS`]
//! tries, then the message moves to `outbox/failed/`. The server tries every
//! second, so a restart picks the queue up again.

use crate::Service;
use crate::report::{ReportConfig, RunReport};
use mv_home::Home;
use mv_types::UtcMillis;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Sends are tried this many times before the message moves to `outbox/failed/`.
pub const MAX_ATTEMPTS: u32 = 10;
/// The longest wait between two tries.
const MAX_BACKOFF_SECS: u64 = 6 * 3600;

pub(crate) fn outbox_dir(home: &Home) -> PathBuf {
    home.log_dir().join("outbox")
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

pub(crate) fn enqueue(home: &Home, cfg: &ReportConfig, r: &RunReport) -> std::io::Result<()> {
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
    // Read, not `Home::open`, which would re-create a vanished home.
    mv_home::LocalConfig::load(&home.localconfig_path())
        .map(|c| c.get_u64("backup_report_retry_seconds"))
        .unwrap_or(60)
        .max(1)
}

/// What is waiting in the outbox.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
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

pub fn status(home: &Home) -> OutboxStatus {
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
pub fn flush(home: &Home, cfg: &ReportConfig, base_secs: u64) -> usize {
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
pub fn spawn(
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
                            flush(&home, &cfg, base_backoff(&home));
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

    fn write(dir: &Path, q: &Queued) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join(format!("{}.json", q.id)),
            serde_json::to_vec(q).unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn failed_sends_back_off_then_give_up() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::at(tmp.path());
        // A port nobody listens on: connections are refused at once.
        let port = mv_home::ports::free_loopback_port().unwrap();
        let cfg = ReportConfig {
            server: "localhost".into(),
            subject_prefix: "ZCS Backup Report".into(),
            sender: "backup@example.com".into(),
            recipients: vec!["admin@example.com".into()],
            smtp_host: "127.0.0.1".into(),
            smtp_port: port,
        };
        let mut q = Queued {
            id: "20261126.010000.000-backup-1-0".into(),
            from: cfg.sender.clone(),
            to: cfg.recipients.clone(),
            subject: "ZCS Backup Report: SUCCESS".into(),
            body: "Server: localhost\n".into(),
            created: UtcMillis::now(),
            attempts: 0,
            next_attempt: UtcMillis(0),
            last_error: None,
        };
        write(&outbox_dir(&home), &q);
        assert_eq!(flush(&home, &cfg, 60), 0);
        let s = status(&home);
        assert_eq!(s.pending.len(), 1);
        assert_eq!(s.pending[0].attempts, 1);
        assert!(s.pending[0].last_error.is_some());
        let wait = s.pending[0].next_attempt.0 - UtcMillis::now().0;
        assert!(
            (55_000..=60_000).contains(&wait),
            "first retry after 60 s: {wait}"
        );
        // Not due yet: no new try.
        flush(&home, &cfg, 60);
        assert_eq!(status(&home).pending[0].attempts, 1);
        // The last try fails too: the message is given up, not retried forever.
        q.attempts = MAX_ATTEMPTS - 1;
        write(&outbox_dir(&home), &q);
        flush(&home, &cfg, 60);
        let s = status(&home);
        assert!(s.pending.is_empty());
        assert_eq!(s.failed.len(), 1);
        assert_eq!(s.failed[0].attempts, MAX_ATTEMPTS);
    }
}
