//! Continuous redo shipping (live DR) in `mailvault serve`: with
//! `zimbraBackupContinuousEnabled TRUE` a thread ships the redo log into the
//! backup target (`zimbraBackupTarget`) every `zimbraBackupContinuousIntervalSeconds`
//! (`mv_backup::live::ship`). It reads the log files after the fact, so delivery
//! never waits for it; a target that fails makes it fall behind (one WARN line
//! per outage, repeated every five minutes while it lasts) and it catches up from
//! where it stopped once the target answers again (one INFO line). A segment
//! damaged in the target is shipped again when a standby asks
//! (`mv_backup::live::repair`; one WARN line). Its lag is
//! on `/metrics` and in `mailvault check` (FAILED above
//! `zimbraBackupContinuousMaxLagSeconds`).

use crate::Service;
use mv_backup::live::Lag;
use mv_backup::live::ship::Shipper;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What the shipping thread last measured, for `/metrics` and `check`.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub enabled: bool,
    pub target: String,
    pub lag: Lag,
    /// The last round's failure, while it lasts.
    pub error: Option<String>,
    pub logs_shipped: u64,
    pub segments_shipped: u64,
    pub bytes_shipped: u64,
    /// The target belongs to a newer epoch (a standby was promoted): this
    /// server ships nothing into it.
    pub fenced: Option<String>,
}

static STATUS: Mutex<Option<Status>> = Mutex::new(None);

/// The shipping thread's status; `None` before its first round (or without a
/// server in this process).
pub fn status() -> Option<Status> {
    STATUS.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

fn set_status(f: impl FnOnce(&mut Status)) {
    let mut g = STATUS.lock().unwrap_or_else(|p| p.into_inner());
    f(g.get_or_insert_with(Status::default));
}

/// The settings in force (server over global config).
struct Settings {
    enabled: bool,
    interval: Duration,
}

fn settings(service: &Service) -> Settings {
    let dir = service.directory();
    let server = service.server_name();
    Settings {
        enabled: dir
            .effective_bool(server, "zimbraBackupContinuousEnabled")
            .unwrap_or(false),
        interval: Duration::from_secs(
            dir.effective_u64(server, "zimbraBackupContinuousIntervalSeconds")
                .unwrap_or(2)
                .max(1),
        ),
    }
}

/// `zimbraBackupContinuousMaxLagSeconds`.
pub fn max_lag_seconds(service: &Service) -> u64 {
    service
        .directory()
        .effective_u64(service.server_name(), "zimbraBackupContinuousMaxLagSeconds")
        .unwrap_or(60)
        .max(1)
}

pub fn spawn(
    service: Arc<Service>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("redo shipping".into())
        .spawn(move || run(&service, &stop))
}

fn run(service: &Service, stop: &AtomicBool) {
    let mut shipper: Option<(String, Shipper)> = None;
    // The directory dump last put (its BLAKE3), and when it was last compared.
    let mut directory: (Option<blake3::Hash>, Option<Instant>) = (None, None);
    // While failing: since when, and when the last WARN line went out.
    let mut failing: Option<(Instant, Instant)> = None;
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if Instant::now() < next {
            continue;
        }
        let s = settings(service);
        next = Instant::now() + s.interval;
        if !s.enabled {
            if shipper.take().is_some() {
                tracing::info!("continuous redo shipping stopped (zimbraBackupContinuousEnabled)");
            }
            set_status(|st| *st = Status::default());
            continue;
        }
        let durable = service.store().redo().durable_lsn();
        let result = round(service, &mut shipper, durable).and_then(|r| {
            ship_directory(service, &shipper, &mut directory)?;
            Ok(r)
        });
        match result {
            Ok(r) => {
                if let Some((seq, from)) = r.repaired {
                    tracing::warn!(
                        "continuous redo shipping: a standby found the shipped segments of redo \
                         sequence {seq} damaged in the target; shipped again from offset {from}"
                    );
                }
                if let Some((since, _)) = failing.take() {
                    tracing::info!(
                        "continuous redo shipping caught up after {}s behind",
                        since.elapsed().as_secs()
                    );
                }
                set_status(|st| {
                    st.enabled = true;
                    st.target = shipper.as_ref().map(|(t, _)| t.clone()).unwrap_or_default();
                    st.lag = r.lag;
                    st.error = None;
                    st.fenced = None;
                    st.logs_shipped += r.logs;
                    st.segments_shipped += r.segments;
                    st.bytes_shipped += r.bytes;
                });
            }
            Err(e) if e.fenced => {
                // Not an outage that passes: said as an error, once per five
                // minutes, and `check` fails until the home is rebuilt.
                let now = Instant::now();
                if failing
                    .is_none_or(|(_, last)| now.duration_since(last) >= Duration::from_secs(300))
                {
                    tracing::error!("continuous redo shipping refused: {}", e.text);
                    failing = Some((failing.map_or(now, |(s, _)| s), now));
                }
                set_status(|st| {
                    st.enabled = true;
                    st.fenced = Some(e.text.clone());
                    st.error = Some(e.text);
                });
            }
            Err(e) => {
                let e = e.text;
                let lag = shipper
                    .as_ref()
                    .map(|(_, sh)| sh.lag(durable))
                    .unwrap_or_default();
                let now = Instant::now();
                let warn = match &mut failing {
                    None => {
                        failing = Some((now, now));
                        true
                    }
                    Some((_, last)) if now.duration_since(*last) >= Duration::from_secs(300) => {
                        *last = now;
                        true
                    }
                    Some(_) => false,
                };
                if warn {
                    tracing::warn!(
                        records = lag.records,
                        bytes = lag.bytes,
                        seconds = lag.seconds,
                        "continuous redo shipping is falling behind (it catches up once the target answers): {e}"
                    );
                }
                set_status(|st| {
                    st.enabled = true;
                    st.lag = lag;
                    st.error = Some(e);
                });
            }
        }
    }
}

/// A failed round: its text, and whether the target fenced this server off.
struct RoundError {
    text: String,
    fenced: bool,
}

impl From<mv_backup::BackupError> for RoundError {
    fn from(e: mv_backup::BackupError) -> Self {
        RoundError {
            fenced: matches!(e, mv_backup::BackupError::Fenced(_)),
            text: e.to_string(),
        }
    }
}

impl From<crate::ServiceError> for RoundError {
    fn from(e: crate::ServiceError) -> Self {
        RoundError {
            text: e.to_string(),
            fenced: false,
        }
    }
}

/// How often the directory is exported and compared with the dump last put.
const DIRECTORY_EVERY: Duration = Duration::from_secs(10);

/// Puts the directory (`live/ldap.bak`) when it changed since the dump last
/// put, so that a standby follows accounts created, renamed, deleted and
/// changed, and a disaster restore gets them as of the last change.
fn ship_directory(
    service: &Service,
    shipper: &Option<(String, Shipper)>,
    last: &mut (Option<blake3::Hash>, Option<Instant>),
) -> Result<(), RoundError> {
    let Some((_, sh)) = shipper else {
        return Ok(());
    };
    if last.1.is_some_and(|t| t.elapsed() < DIRECTORY_EVERY) {
        return Ok(());
    }
    let ldif = service.directory().export_ldif().map_err(|e| RoundError {
        text: format!("exporting the directory: {e}"),
        fenced: false,
    })?;
    let hash = blake3::hash(ldif.as_bytes());
    if last.0 != Some(hash) {
        mv_backup::live::directory::put(
            sh.target().as_ref(),
            ldif.as_bytes(),
            service.server_name(),
        )?;
        last.0 = Some(hash);
    }
    last.1 = Some(Instant::now());
    Ok(())
}

fn round(
    service: &Service,
    shipper: &mut Option<(String, Shipper)>,
    durable: mv_types::Lsn,
) -> Result<mv_backup::live::ship::Round, RoundError> {
    let spec = mv_backup::default_target(
        service.directory(),
        service.server_name(),
        service.store().home(),
    );
    if shipper.as_ref().is_none_or(|(s, _)| *s != spec) {
        let target = crate::backup::target_for(service, None)?;
        let mut sh = Shipper::new(
            target,
            service.store().redo().config().clone(),
            service.server_name(),
            service.store().redo().position().sequence,
        )?;
        sh.set_owner(crate::standby::epoch_owner(service.store().home()));
        tracing::info!("continuous redo shipping into {spec}");
        *shipper = Some((spec, sh));
    }
    let (_, sh) = shipper.as_mut().expect("set above");
    Ok(sh.round(durable)?)
}

/// The `mailvault check` line.
pub fn check_item(service: &Service) -> Option<crate::check::CheckItem> {
    let enabled = service
        .directory()
        .effective_bool(service.server_name(), "zimbraBackupContinuousEnabled")
        .unwrap_or(false);
    if !enabled || crate::standby::is_following() {
        return None;
    }
    let max = max_lag_seconds(service);
    let name = "continuous redo shipping";
    Some(match status() {
        _ if !crate::run::is_serving() => crate::check::CheckItem {
            name: name.into(),
            ok: false,
            detail: "enabled, but no server runs to ship the redo log".into(),
        },
        None => crate::check::CheckItem {
            name: name.into(),
            ok: true,
            detail: "enabled, first round not done yet".into(),
        },
        Some(Status {
            fenced: Some(why), ..
        }) => crate::check::CheckItem {
            name: name.into(),
            ok: false,
            detail: format!("refused: {why}"),
        },
        Some(st) => {
            let lag = st.lag;
            let mut detail = format!(
                "{} records, {} bytes, {:.0}s behind (zimbraBackupContinuousMaxLagSeconds {max}) into {}",
                lag.records, lag.bytes, lag.seconds, st.target
            );
            if let Some(e) = &st.error {
                detail.push_str(&format!("; last round failed: {e}"));
            }
            crate::check::CheckItem {
                name: name.into(),
                ok: lag.seconds <= max as f64,
                detail,
            }
        }
    })
}
