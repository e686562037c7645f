//! A warm standby (`mailvault standby`): a home bootstrapped from a target's
//! latest full that keeps applying what its primary ships into the target
//! (`mv_backup::live::follow`), serving IMAP read-only, until `mailvault
//! promote` makes it the primary.
//!
//! Its home keeps two small files in `conf/`:
//!
//! ```text
//! conf/standby.json      while it follows: the target, how far it got (redo
//!                        sequence, byte offset, LSN), the directory dump applied
//! conf/live-epoch.json   once promoted: the epoch it claimed in the target and
//!                        its owner id, which its shipper must match to ship
//! ```
//!
//! Both are written durably (temporary name, fsync, rename, directory fsync),
//! 0600. The position is saved only after the store made what it covers
//! durable, so a standby killed at any point continues from a position at or
//! before what it applied (re-applied records are skipped by the store).

use crate::Service;
use mv_backup::live::Lag;
use mv_backup::live::follow::{self, Position};
use mv_home::Home;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often the follower looks into the target.
pub const POLL: Duration = Duration::from_secs(1);

/// What `conf/standby.json` holds.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StandbyState {
    /// The target followed, as given to `mailvault standby -t`.
    pub target: String,
    pub position: Position,
    /// BLAKE3 of the directory dump (`live/ldap.bak`) last applied.
    #[serde(default)]
    pub directory: Option<String>,
}

pub fn state_path(home: &Home) -> PathBuf {
    home.conf_dir().join("standby.json")
}

/// The standby state of a home, `None` when it is not a standby.
pub fn load(home: &Home) -> Result<Option<StandbyState>, String> {
    let path = state_path(home);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

pub fn save(home: &Home, state: &StandbyState) -> Result<(), String> {
    let path = state_path(home);
    let json = serde_json::to_vec_pretty(state).map_err(|e| e.to_string())?;
    mv_home::durable::write_atomic_mode(&path, &json, 0o600)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Ends following (promote): the home is a primary from now on.
pub fn remove(home: &Home) -> Result<(), String> {
    let path = state_path(home);
    match std::fs::remove_file(&path) {
        Ok(()) => mv_home::durable::fsync_dir(&home.conf_dir())
            .map_err(|e| format!("{}: {e}", home.conf_dir().display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// A standby takes no backup: its directory names its primary's target, and
/// a session from a home that only follows would interleave with the
/// primary's chain.
pub fn refuse_backup(service: &Service) -> Result<(), crate::ServiceError> {
    if state_path(service.store().home()).exists() {
        return Err(crate::ServiceError::BadRequest(
            "this server is a warm standby: it takes no backup (its primary backs up \
             into the target it follows; mailvault promote first)"
                .into(),
        ));
    }
    Ok(())
}

/// What `conf/live-epoch.json` holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochFile {
    pub epoch: u64,
    pub owner: String,
}

pub fn epoch_path(home: &Home) -> PathBuf {
    home.conf_dir().join("live-epoch.json")
}

/// The epoch owner id this home keeps, `None` when it never promoted.
pub fn epoch_owner(home: &Home) -> Option<String> {
    let b = std::fs::read(epoch_path(home)).ok()?;
    serde_json::from_slice::<EpochFile>(&b)
        .ok()
        .map(|e| e.owner)
}

pub fn save_epoch(home: &Home, e: &EpochFile) -> Result<(), String> {
    let path = epoch_path(home);
    let json = serde_json::to_vec_pretty(e).map_err(|e| e.to_string())?;
    mv_home::durable::write_atomic_mode(&path, &json, 0o600)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// What the follower last measured, for `/metrics` and `check`.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub target: String,
    pub position: Position,
    pub lag: Lag,
    /// The last step's failure, while it lasts.
    pub error: Option<String>,
    /// Why the shipped directory did not apply, while it does not.
    pub directory_error: Option<String>,
    pub applied_total: u64,
}

static STATUS: Mutex<Option<Status>> = Mutex::new(None);
static FOLLOWING: AtomicBool = AtomicBool::new(false);

/// The follower's status; `None` when this process is not a standby.
pub fn status() -> Option<Status> {
    STATUS.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

fn set_status(f: impl FnOnce(&mut Status)) {
    let mut g = STATUS.lock().unwrap_or_else(|p| p.into_inner());
    f(g.get_or_insert_with(Status::default));
}

/// Whether this process serves a standby (no LMTP, no shipping, no schedule).
pub fn is_following() -> bool {
    FOLLOWING.load(Ordering::Relaxed)
}

/// One step: the directory as shipped, then the redo records past the
/// position; the new position saved once durable. Returns the step.
pub fn catch_up(service: &Service, state: &mut StandbyState) -> Result<follow::Step, String> {
    let home = service.store().home().clone();
    let target =
        mv_backup::target::open_existing(&state.target, &home).map_err(|e| e.to_string())?;
    // Accounts first: a mailbox created for a new account is then served as
    // soon as its records are in. A dump that does not apply (an entry this
    // directory refuses) holds up neither the mail nor a promote: it is said
    // (once per error), shown by `check`, and tried again next step.
    match mv_backup::live::directory::sync(
        target.as_ref(),
        service.directory(),
        state.directory.as_deref(),
    ) {
        Ok(Some((digest, changes))) => {
            for c in &changes {
                tracing::info!("standby: directory: {c}");
            }
            state.directory = Some(digest);
            save(&home, state)?;
            set_status(|st| st.directory_error = None);
        }
        Ok(None) => set_status(|st| st.directory_error = None),
        Err(e) => {
            let e = e.to_string();
            let said = status().and_then(|st| st.directory_error);
            if said.as_deref() != Some(e.as_str()) {
                tracing::warn!("standby: the primary's directory does not apply: {e}");
            }
            set_status(|st| st.directory_error = Some(e));
        }
    }
    let step = match follow::step(target.as_ref(), service.store(), &state.position) {
        Ok(step) => step,
        Err(e) => {
            // Still behind: the lag goes on growing while the step fails.
            if let Ok(lag) = follow::lag(target.as_ref(), &state.position) {
                set_status(|st| st.lag = lag);
            }
            if matches!(e, mv_backup::BackupError::Corrupt { .. }) {
                ask_for_repair(service, target.as_ref(), state, &e);
            }
            return Err(e.to_string());
        }
    };
    if let Some(first) = step.errors.first() {
        tracing::warn!(
            failed = step.errors.len(),
            "standby: {} records did not apply, the first: {first}",
            step.errors.len()
        );
    }
    if step.position != state.position {
        state.position = step.position.clone();
        save(&home, state)?;
    }
    Ok(step)
}

/// How long a standby waits before asking again for the same repair.
const ASK_AGAIN: Duration = Duration::from_secs(60);

/// A segment that does not read (damaged or missing in the target) can only
/// be shipped again by the primary, which still has the log open: the
/// standby asks with `live/repair-request.json` and keeps stepping; it goes
/// on by itself once the segment reads.
fn ask_for_repair(
    service: &Service,
    target: &dyn mv_backup::Target,
    state: &StandbyState,
    e: &mv_backup::BackupError,
) {
    // Once per position, again after a while: a request the primary cannot
    // act on (a damaged closed log) goes away each round, and asking every
    // second would only say the same thing again.
    static ASKED: Mutex<Option<(u64, u64, Instant)>> = Mutex::new(None);
    let mut asked = ASKED.lock().unwrap_or_else(|p| p.into_inner());
    let p = &state.position;
    if asked.is_some_and(|(seq, off, at)| {
        (seq, off) == (p.sequence, p.offset) && at.elapsed() < ASK_AGAIN
    }) {
        return;
    }
    let req = mv_backup::live::repair::RepairRequest {
        sequence: state.position.sequence,
        offset: state.position.offset,
        reason: e.to_string(),
        server: service.server_name().to_string(),
        written_at: mv_types::UtcMillis::now().0,
    };
    let result = mv_backup::live::repair::request(target, &req);
    if result.is_ok() {
        *asked = Some((p.sequence, p.offset, Instant::now()));
    }
    match result {
        Ok(true) => tracing::warn!(
            "standby: redo sequence {} does not read from offset {} in {} ({e}); asked the \
             primary to ship it again",
            req.sequence,
            req.offset,
            state.target
        ),
        Ok(false) => {}
        Err(err) => tracing::warn!(
            "standby: cannot ask for a repair in {}: {err}",
            state.target
        ),
    }
}

pub fn spawn(
    service: std::sync::Arc<Service>,
    stop: std::sync::Arc<AtomicBool>,
    mut state: StandbyState,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    FOLLOWING.store(true, Ordering::Relaxed);
    set_status(|st| {
        st.target = state.target.clone();
        st.position = state.position.clone();
    });
    std::thread::Builder::new()
        .name("standby follower".into())
        .spawn(move || {
            let mut failing: Option<Instant> = None;
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                if Instant::now() < next {
                    continue;
                }
                next = Instant::now() + POLL;
                match catch_up(&service, &mut state) {
                    Ok(step) => {
                        if let Some(since) = failing.take() {
                            tracing::info!(
                                "standby: following {} again after {}s",
                                state.target,
                                since.elapsed().as_secs()
                            );
                        }
                        set_status(|st| {
                            st.position = step.position.clone();
                            st.lag = step.lag;
                            st.error = None;
                            st.applied_total += step.applied;
                        });
                    }
                    Err(e) => {
                        if failing.is_none() {
                            failing = Some(Instant::now());
                            tracing::warn!("standby: cannot follow {}: {e}", state.target);
                        }
                        set_status(|st| st.error = Some(e));
                    }
                }
            }
        })
}

/// The `mailvault check` line of a standby.
pub fn check_item(service: &Service) -> Option<crate::check::CheckItem> {
    if !is_following() {
        // A standby's home with nothing following: it falls behind unseen.
        return state_path(service.store().home())
            .exists()
            .then(|| crate::check::CheckItem {
                name: "standby".into(),
                ok: false,
                detail: "this home is a standby, but no `mailvault standby` runs to follow \
                         its primary"
                    .into(),
            });
    }
    let st = status()?;
    let max = crate::live::max_lag_seconds(service);
    let p = &st.position;
    let mut detail = format!(
        "following {}: applied through redo sequence {} (offset {}, LSN {}); {} records, \
         {:.0}s behind what was shipped (zimbraBackupContinuousMaxLagSeconds {max})",
        st.target, p.sequence, p.offset, p.lsn, st.lag.records, st.lag.seconds
    );
    if let Some(e) = &st.error {
        detail.push_str(&format!("; last step failed: {e}"));
    }
    if let Some(e) = &st.directory_error {
        detail.push_str(&format!("; the primary's directory does not apply: {e}"));
    }
    Some(crate::check::CheckItem {
        name: "standby".into(),
        ok: st.error.is_none() && st.directory_error.is_none() && st.lag.seconds <= max as f64,
        detail,
    })
}
