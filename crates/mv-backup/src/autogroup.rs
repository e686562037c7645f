//! Auto-Grouped mode (`zimbraBackupMode: Auto-Grouped`): each `zmbackup -f` (the
//! default schedule runs one a day) takes a full backup of one group of accounts —
//! about 1/`zimbraBackupAutoGroupedNumGroups` of them — and copies into that same
//! full session the redo logs archived since the previous run. Every account is
//! therefore restorable to any point: from its latest full (which holds the logs
//! since the run before it) plus the logs of every later session.
//!
//! Which accounts a run takes ([`choose_group`]):
//! 1. accounts with no completed full backup in the target (new ones), all of them
//!    — unless `zimbraBackupAutoGroupedThrottled` is TRUE, which caps them at one
//!    group so that provisioning many accounts at once does not make one huge run;
//! 2. then, up to the group size, accounts whose latest full is older than
//!    `zimbraBackupAutoGroupedInterval`, oldest first.
//!
//! The age is that of the account's latest full *in this target*, so switching
//! from Standard mode does not back up every account at once: the fulls Standard
//! took count. When nothing is due the run is refused with "auto-grouped backup too
//! soon". An explicit account list (`-a x y`) is a plain full of those accounts.

use crate::catalog::Catalog;
use crate::error::{BackupError, Result};
use mv_directory::Account;
use mv_types::UtcMillis;

/// The directory settings of the mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoGroupConfig {
    pub num_groups: u64,
    /// Milliseconds.
    pub interval_ms: i64,
    pub throttled: bool,
}

impl AutoGroupConfig {
    /// Reads the `zimbraBackupAutoGrouped*` attributes (values are validated when
    /// set, so a bad one here is a damaged directory: reported, not guessed).
    pub(crate) fn from_source(source: &crate::run::Source) -> Result<AutoGroupConfig> {
        let groups = source.config("zimbraBackupAutoGroupedNumGroups");
        let interval = source.config("zimbraBackupAutoGroupedInterval");
        let num_groups = groups
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                BackupError::Invalid(format!(
                    "zimbraBackupAutoGroupedNumGroups is {groups:?}: set a number of groups with \
                 zmprov mcf zimbraBackupAutoGroupedNumGroups 7"
                ))
            })?;
        let interval_ms = mv_directory::config::duration_ms(&interval).ok_or_else(|| {
            BackupError::Invalid(format!(
                "zimbraBackupAutoGroupedInterval is {interval:?}: set a duration with \
                 zmprov mcf zimbraBackupAutoGroupedInterval 1d"
            ))
        })?;
        Ok(AutoGroupConfig {
            num_groups,
            interval_ms: i64::try_from(interval_ms).unwrap_or(i64::MAX),
            throttled: source
                .config("zimbraBackupAutoGroupedThrottled")
                .eq_ignore_ascii_case("TRUE"),
        })
    }
}

/// True when the directory selects Auto-Grouped mode.
pub(crate) fn enabled(source: &crate::run::Source) -> bool {
    source
        .config("zimbraBackupMode")
        .eq_ignore_ascii_case("Auto-Grouped")
}

/// The accounts this run backs up fully, in the order chosen (new accounts first,
/// then the most overdue). `accounts`: every account of the server.
pub fn choose_group(
    accounts: &[Account],
    catalog: &Catalog,
    cfg: &AutoGroupConfig,
    now: UtcMillis,
) -> Result<Vec<Account>> {
    if accounts.is_empty() {
        return Ok(Vec::new());
    }
    let n = accounts.len() as u64;
    let group = n.div_ceil(cfg.num_groups).max(1) as usize;
    let mut new = Vec::new();
    let mut overdue: Vec<(UtcMillis, &Account)> = Vec::new();
    let mut newest_due: Option<UtcMillis> = None;
    for a in accounts {
        match catalog.latest_full(&a.id) {
            None => new.push(a.clone()),
            Some((s, _)) => {
                if now.0.saturating_sub(s.started.0) >= cfg.interval_ms {
                    overdue.push((s.started, a));
                } else {
                    let due = UtcMillis(s.started.0.saturating_add(cfg.interval_ms));
                    newest_due = Some(newest_due.map_or(due, |d: UtcMillis| d.min(due)));
                }
            }
        }
    }
    if cfg.throttled {
        new.truncate(group);
    }
    overdue.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.email.cmp(&b.1.email)));
    let room = group.saturating_sub(new.len());
    let mut out = new;
    out.extend(overdue.into_iter().take(room).map(|(_, a)| a.clone()));
    if out.is_empty() {
        let when = newest_due
            .map(|d| format!("; the next account is due at {}", d.display_local()))
            .unwrap_or_default();
        return Err(BackupError::TooSoon(format!(
            "every account had a full backup within zimbraBackupAutoGroupedInterval{when}"
        )));
    }
    Ok(out)
}
