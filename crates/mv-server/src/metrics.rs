//! `GET /metrics` (Prometheus text format 0.0.4) and `GET /health` on the admin
//! listener, both without the token: they carry counts, no mail and no names.
//!
//! Counters are process-local atomics, owned by the layer that counts
//! (deliveries here, connections in mv-lmtp / mv-imap, fsyncs in mv-redo); gauges
//! are read at scrape time. A restart starts counters at zero, as Prometheus
//! expects of a `_total`.

use crate::Service;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Messages stored, one per mailbox they went to.
pub static DELIVERIES: AtomicU64 = AtomicU64::new(0);
/// Log lines lost because log/mailbox.log could not be written (disk full).
pub static LOG_LINES_DROPPED: AtomicU64 = AtomicU64::new(0);
/// Restore runs by result (ok, failed).
pub static RESTORES_OK: AtomicU64 = AtomicU64::new(0);
pub static RESTORES_FAILED: AtomicU64 = AtomicU64::new(0);
/// IMAP logins by result.
pub static IMAP_LOGINS_OK: AtomicU64 = AtomicU64::new(0);
pub static IMAP_LOGINS_FAILED: AtomicU64 = AtomicU64::new(0);

/// Why LMTP refused a recipient.
#[derive(Clone, Copy)]
pub enum Rejection {
    UnknownUser = 0,
    OverQuota = 1,
    TempFail = 2,
    StorageFailure = 3,
}

const REJECTION_NAMES: [&str; 4] = ["unknown_user", "over_quota", "temp_fail", "storage_failure"];
static REJECTIONS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

pub fn rejected(why: Rejection) {
    REJECTIONS[why as usize].fetch_add(1, Ordering::Relaxed);
}

/// The last successful backup of each kind (full, incremental) in this process.
#[derive(Clone, Copy, Default)]
struct LastBackup {
    ended_ms: i64,
    duration_ms: i64,
    bytes: u64,
}

static BACKUPS: Mutex<[Option<LastBackup>; 2]> = Mutex::new([None, None]);
static BACKUPS_FAILED: AtomicU64 = AtomicU64::new(0);

/// Records a finished backup run.
pub fn backup_finished(result: Result<&mv_backup::BackupReport, &str>) {
    let Ok(report) = result else {
        BACKUPS_FAILED.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let mut last = BACKUPS.lock().unwrap_or_else(|p| p.into_inner());
    for s in &report.sessions {
        if s.status != mv_backup::session::SessionStatus::Completed {
            BACKUPS_FAILED.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let i = match s.kind {
            mv_backup::SessionKind::Full => 0,
            mv_backup::SessionKind::Incremental => 1,
        };
        last[i] = Some(LastBackup {
            ended_ms: s.ended.0,
            duration_ms: s.ended.0 - s.started.0,
            bytes: s.stats.bytes_written,
        });
    }
}

struct Out(String);

impl Out {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    fn one(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.head(name, kind, help);
        let _ = writeln!(self.0, "{name} {value}");
    }
}

/// The whole exposition.
pub fn render(service: &Service) -> String {
    let mut o = Out(String::with_capacity(4096));
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    o.one(
        "mailvault_lmtp_deliveries_total",
        "counter",
        "Messages stored over LMTP, one per mailbox.",
        n(&DELIVERIES),
    );
    o.head(
        "mailvault_lmtp_rejections_total",
        "counter",
        "LMTP recipients refused, by reason.",
    );
    for (name, c) in REJECTION_NAMES.iter().zip(&REJECTIONS) {
        let _ = writeln!(
            o.0,
            "mailvault_lmtp_rejections_total{{reason=\"{name}\"}} {}",
            n(c)
        );
    }
    o.one(
        "mailvault_lmtp_connections_total",
        "counter",
        "LMTP connections accepted.",
        n(&mv_lmtp::CONNECTIONS_TOTAL),
    );
    o.one(
        "mailvault_imap_connections_total",
        "counter",
        "IMAP and IMAPS connections accepted.",
        n(&mv_imap::CONNECTIONS_TOTAL),
    );
    o.head(
        "mailvault_imap_logins_total",
        "counter",
        "IMAP logins, by result.",
    );
    let _ = writeln!(
        o.0,
        "mailvault_imap_logins_total{{result=\"ok\"}} {}\nmailvault_imap_logins_total{{result=\"failed\"}} {}",
        n(&IMAP_LOGINS_OK),
        n(&IMAP_LOGINS_FAILED)
    );

    let (buckets, sum, count) = mv_redo::writer::FSYNC_SECONDS.snapshot();
    o.head(
        "mailvault_redo_fsync_seconds",
        "histogram",
        "Redo log fsync durations.",
    );
    for (le, c) in buckets {
        let le = le.map_or("+Inf".to_string(), |b| b.to_string());
        let _ = writeln!(
            o.0,
            "mailvault_redo_fsync_seconds_bucket{{le=\"{le}\"}} {c}"
        );
    }
    let _ = writeln!(
        o.0,
        "mailvault_redo_fsync_seconds_sum {sum}\nmailvault_redo_fsync_seconds_count {count}"
    );
    let redo = service.store().redo();
    o.one(
        "mailvault_redo_sequence",
        "gauge",
        "Sequence number of the current redo.log.",
        redo.position().sequence,
    );
    o.one(
        "mailvault_redo_lsn",
        "gauge",
        "The last redo record number assigned.",
        redo.position().lsn.0,
    );
    let redo_bytes = std::fs::metadata(&redo.config().log_path)
        .map(|m| m.len())
        .unwrap_or(0);
    o.one(
        "mailvault_redo_log_bytes",
        "gauge",
        "Size of the current redo.log.",
        redo_bytes,
    );

    let last = *BACKUPS.lock().unwrap_or_else(|p| p.into_inner());
    type Pick = fn(&LastBackup) -> f64;
    let rows: [(&str, &str, Pick); 3] = [
        (
            "mailvault_backup_last_success_timestamp_seconds",
            "When the last successful backup of each kind ended (Unix time).",
            |b: &LastBackup| b.ended_ms as f64 / 1000.0,
        ),
        (
            "mailvault_backup_last_duration_seconds",
            "How long the last successful backup of each kind took.",
            |b: &LastBackup| b.duration_ms as f64 / 1000.0,
        ),
        (
            "mailvault_backup_last_bytes",
            "Bytes the last successful backup of each kind wrote.",
            |b: &LastBackup| b.bytes as f64,
        ),
    ];
    for (metric, help, pick) in rows {
        o.head(metric, "gauge", help);
        for (kind, b) in ["full", "incremental"].iter().zip(last.iter()) {
            if let Some(b) = b {
                let _ = writeln!(o.0, "{metric}{{kind=\"{kind}\"}} {}", pick(b));
            }
        }
    }
    o.one(
        "mailvault_backup_failures_total",
        "counter",
        "Backup sessions that failed or were aborted.",
        n(&BACKUPS_FAILED),
    );
    o.head(
        "mailvault_restores_total",
        "counter",
        "Restore runs, by result.",
    );
    let _ = writeln!(
        o.0,
        "mailvault_restores_total{{result=\"ok\"}} {}\nmailvault_restores_total{{result=\"failed\"}} {}",
        n(&RESTORES_OK),
        n(&RESTORES_FAILED)
    );
    o.one(
        "mailvault_mailbox_handles",
        "gauge",
        "Mailbox databases open now (bounded by mailbox_open_handles).",
        service.store().open_mailbox_count(),
    );
    o.one(
        "mailvault_mailbox_handle_evictions_total",
        "counter",
        "Idle mailbox databases closed to stay within mailbox_open_handles.",
        service.store().mailbox_evictions(),
    );
    let lag = service.indexes().lag();
    o.one(
        "mailvault_search_index_lag_mailboxes",
        "gauge",
        "Mailboxes whose search index does not hold their latest changes yet (as the background indexer last saw them).",
        lag.mailboxes,
    );
    o.one(
        "mailvault_search_index_lag_changes",
        "gauge",
        "Changes not yet in the search indexes, summed over those mailboxes.",
        lag.changes,
    );
    o.one(
        "mailvault_search_index_lag_seconds",
        "gauge",
        "How long the longest-waiting mailbox has had changes its search index does not hold (0: none).",
        lag.oldest.as_secs_f64(),
    );
    if let Some(st) = crate::live::status().filter(|s| s.enabled) {
        o.one(
            "mailvault_redo_shipping_lag_records",
            "gauge",
            "Durable redo records not yet shipped to the backup target (continuous shipping).",
            st.lag.records,
        );
        o.one(
            "mailvault_redo_shipping_lag_bytes",
            "gauge",
            "Bytes of redo log not yet shipped to the backup target.",
            st.lag.bytes,
        );
        o.one(
            "mailvault_redo_shipping_lag_seconds",
            "gauge",
            "Seconds since shipping last held every durable redo record (0: caught up).",
            st.lag.seconds,
        );
        o.one(
            "mailvault_redo_shipped_bytes_total",
            "counter",
            "Bytes of redo log shipped to the backup target by this process.",
            st.bytes_shipped,
        );
    }
    if let Some(st) = crate::standby::status() {
        o.one(
            "mailvault_standby_lag_records",
            "gauge",
            "Redo records shipped by the primary and not yet applied by this standby.",
            st.lag.records,
        );
        o.one(
            "mailvault_standby_lag_seconds",
            "gauge",
            "How far this standby's last applied record is behind the last shipped one, in seconds of record time.",
            st.lag.seconds,
        );
        o.one(
            "mailvault_standby_applied_lsn",
            "gauge",
            "The LSN of the last redo record this standby applied.",
            st.position.lsn,
        );
    }
    if let Ok((_, _, free)) = crate::diskmon::statvfs(service.store().home().root()) {
        o.one(
            "mailvault_home_disk_free_bytes",
            "gauge",
            "Bytes available to the server on the home's filesystem.",
            free,
        );
    }
    o.one(
        "mailvault_log_lines_dropped_total",
        "counter",
        "Log lines lost because log/mailbox.log could not be written.",
        n(&LOG_LINES_DROPPED),
    );
    o.0
}
