//! The scheduler of `mailvault serve`: runs the backup schedule (see
//! [`crate::schedule`]) without crontab. Every 200 ms it compares each entry's
//! next occurrence with what it handled, persisted in
//! `<home>/log/schedule-state.json`, and submits the entry's request on a thread of
//! its own. A new entry starts from now; an occurrence that passed while the server
//! was down runs once at start-up, logged as missed and noted in its report.

use crate::Service;
use crate::report::Note;
use crate::schedule::{Entry, current, next_after};
use mv_types::UtcMillis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What the scheduler has handled: per entry line, the time up to which its
/// occurrences ran (or were taken as the starting point).
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    handled: BTreeMap<String, UtcMillis>,
}

fn state_path(service: &Service) -> std::path::PathBuf {
    service.store().home().log_dir().join("schedule-state.json")
}

fn load_state(service: &Service) -> State {
    let path = state_path(service);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
            tracing::warn!("ignoring unreadable {}: {e}", path.display());
            State::default()
        }),
        Err(_) => State::default(),
    }
}

fn save_state(service: &Service, state: &State) {
    let path = state_path(service);
    let result = std::fs::create_dir_all(service.store().home().log_dir()).and_then(|_| {
        mv_home::write_atomic(&path, &serde_json::to_vec_pretty(state).unwrap_or_default())
    });
    if let Err(e) = result {
        tracing::error!("cannot write {}: {e}", path.display());
    }
}

/// Occurrences more than this late count as missed (the server was down).
const LATE: i64 = 2_000;

/// Starts the scheduler thread; it stops when `stop` is set.
pub fn spawn(
    service: Arc<Service>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("scheduler".into())
        .spawn(move || run(service, stop))
}

fn run(service: Arc<Service>, stop: Arc<AtomicBool>) {
    let mut state = load_state(&service);
    let mut starting = true;
    let mut reported_invalid: Vec<String> = Vec::new();
    let mut loaded: Option<(std::time::Instant, Vec<Entry>, Vec<String>)> = None;
    while !stop.load(Ordering::Relaxed) {
        let now = UtcMillis::now();
        // The schedule is re-read once a second (a change by zmschedulebackup
        // applies within that); due times are compared every tick.
        if loaded
            .as_ref()
            .is_none_or(|(at, _, _)| at.elapsed() >= Duration::from_secs(1))
        {
            let (e, i) = current(&service).unwrap_or_else(|e| {
                tracing::error!("cannot read the backup schedule: {e}");
                (Vec::new(), Vec::new())
            });
            loaded = Some((std::time::Instant::now(), e, i));
        }
        let Some((_, entries, invalid)) = &loaded else {
            continue;
        };
        let invalid = invalid.clone();
        if invalid != reported_invalid {
            for i in &invalid {
                tracing::error!("skipping invalid schedule entry {i}");
            }
            reported_invalid = invalid;
        }
        let mut changed = false;
        let lines: Vec<String> = entries.iter().map(Entry::line).collect();
        let before = state.handled.len();
        state.handled.retain(|l, _| lines.contains(l));
        changed |= state.handled.len() != before;
        for (entry, line) in entries.iter().zip(&lines) {
            let Some(&last) = state.handled.get(line) else {
                // A new entry starts from now: nothing before it was missed.
                state.handled.insert(line.clone(), now);
                changed = true;
                continue;
            };
            let Ok(cron) = entry.cron() else { continue };
            let Some(next) = next_after(&cron, last) else {
                continue;
            };
            if next > now {
                continue;
            }
            let missed = starting && now.0 - next.0 > LATE;
            if missed {
                tracing::warn!(
                    "schedule entry \"{line}\" missed its run at {} while the server was down; running it now",
                    next.display_local()
                );
            } else {
                tracing::info!("schedule entry \"{line}\" due at {}", next.display_local());
            }
            state.handled.insert(line.clone(), now);
            changed = true;
            let note = Note {
                scheduled: Some(line.clone()),
                due: Some(next),
                missed,
            };
            fire(&service, entry, note, &stop);
        }
        // Saved after firing: a crash in between repeats the run at the next
        // start (as missed) instead of losing it; a backup too many is harmless.
        if changed {
            save_state(&service, &state);
        }
        starting = false;
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Submits an entry's request on its own thread, so a run waiting for the target
/// lock never delays the other entries.
fn fire(service: &Arc<Service>, entry: &Entry, note: Note, stop: &Arc<AtomicBool>) {
    let req = match entry.request() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("schedule entry \"{}\": {e}", entry.line());
            return;
        }
    };
    let service = service.clone();
    let stop = stop.clone();
    let spawned = std::thread::Builder::new()
        .name("scheduled run".into())
        .spawn(move || match req {
            // Shutting down: the backups still running are being aborted; start none.
            _ if stop.load(Ordering::Relaxed) => {
                tracing::warn!("server stopping: scheduled run not started");
            }
            crate::Request::Backup(r) => {
                match crate::backup::start_async_noted(service.clone(), &r, note.clone()) {
                    Ok(v) => tracing::info!("scheduled backup started: {}", v.labels.join(" ")),
                    Err(e) => {
                        tracing::error!("scheduled backup did not start: {e}");
                        crate::report::backup_failed(&service, &note, &e.to_string());
                    }
                }
            }
            crate::Request::BackupDelete(d) => {
                if let Err(e) = crate::backup::delete_noted(&service, &d, &note) {
                    tracing::error!("scheduled delete failed: {e}");
                }
            }
            _ => {}
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start a scheduled run: {e}");
    }
}
