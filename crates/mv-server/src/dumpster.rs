//! The dumpster (`zmmailbox recoverDeleted`): how long each mailbox keeps its
//! deleted and expunged messages (`zimbraMailDumpsterLifetime`, the account's
//! or its COS's, default 30 days; `0` keeps none), listing and recovering
//! them, and the sweep that removes those whose time ran out. The store keeps
//! and recovers them through its one apply path (`mv_store::Store::
//! recover_deleted`, `purge_dumpster`), so every step is a redo-logged op.

use crate::{Service, ServiceError};
use mv_directory::Directory;
use mv_types::{MailboxId, UtcMillis};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The attribute, on an account or its COS.
pub const LIFETIME_ATTR: &str = "zimbraMailDumpsterLifetime";
/// Without the attribute: Zimbra's default.
pub const DEFAULT_LIFETIME_MS: i64 = 30 * 86_400_000;
/// The dumpster's size limit in bytes, on an account or its COS (0 or unset:
/// none). Beyond it the sweep removes the oldest deleted first.
pub const QUOTA_ATTR: &str = "zimbraDumpsterQuota";

/// An account's dumpster limit in bytes (its own value, else its COS's); None
/// without one. A value that cannot be read is no limit: keeping a deleted
/// message longer is the safe side.
pub fn quota_bytes(dir: &Directory, account: &mv_directory::Account) -> Option<u64> {
    let v = dir
        .effective_account_attr(account, QUOTA_ATTR)
        .ok()?
        .into_iter()
        .next()?;
    v.trim().parse::<u64>().ok().filter(|q| *q > 0)
}

/// A mailbox's dumpster lifetime in ms: None for a mailbox no account owns
/// (a mailbox rebuilt to read a backup keeps nothing). A value that cannot be
/// read falls back to the default: keeping a deleted message longer is the
/// safe side.
pub fn lifetime_ms(dir: &Directory, mailbox: MailboxId) -> Option<i64> {
    let account = dir.account_by_mailbox_id(mailbox).ok()??;
    let value = match dir.effective_account_attr(&account, LIFETIME_ATTR) {
        Ok(v) => v.into_iter().next(),
        Err(_) => None,
    };
    Some(match value {
        Some(v) => mv_directory::config::duration_ms(&v)
            .map(|ms| ms.min(i64::MAX as u64) as i64)
            .unwrap_or(DEFAULT_LIFETIME_MS),
        None => DEFAULT_LIFETIME_MS,
    })
}

/// One message in the dumpster, as `recoverDeleted --list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpsterEntry {
    pub id: u32,
    /// The folder it was deleted from (its path now, or empty when gone).
    pub folder: String,
    pub subject: String,
    pub from: String,
    pub size: u64,
    pub flags: u32,
    pub deleted_ms: i64,
    pub keep_until_ms: i64,
}

/// One recovered message and where it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveredEntry {
    pub id: u32,
    pub folder: String,
    pub subject: String,
}

/// `zmmailbox recoverDeleted`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpsterReport {
    /// With `--list`: the matching entries (nothing recovered).
    #[serde(default)]
    pub listed: Vec<DumpsterEntry>,
    #[serde(default)]
    pub recovered: Vec<RecoveredEntry>,
    /// Bytes in the dumpster after the request (counted apart from quota-used).
    pub dumpster_used: u64,
}

impl Service {
    /// `recoverDeleted [QUERY]` / `--list`: the dumpster's messages matching
    /// QUERY (the grammar of `zmmailbox s`; none: all), listed or recovered
    /// into the folder each was deleted from, else Inbox.
    pub fn recover_deleted(
        &self,
        account: &str,
        query: Option<&str>,
        list: bool,
    ) -> Result<DumpsterReport, ServiceError> {
        let mbox = self.mailbox_of(account)?;
        let terms = match query.map(str::trim).filter(|q| !q.is_empty()) {
            Some(q) => {
                mv_store::search::parse(q).map_err(|e| ServiceError::BadRequest(e.to_string()))?
            }
            None => Vec::new(),
        };
        let store = self.store();
        let m = store.mailbox(mbox);
        let entries = m.dumpster()?;
        let when: std::collections::HashMap<u32, (i64, i64)> = entries
            .iter()
            .map(|e| (e.item.id, (e.deleted_ms, e.keep_until_ms)))
            .collect();
        let items: Vec<mv_store::Item> = entries.into_iter().map(|e| e.item).collect();
        let chosen = m.search_among(&terms, items, &mut |i| store.message_text(mbox, i))?;
        let paths: std::collections::HashMap<u32, String> =
            m.folders()?.into_iter().map(|f| (f.id, f.path)).collect();
        let mut report = DumpsterReport::default();
        if list {
            report.listed = chosen
                .iter()
                .map(|i| DumpsterEntry {
                    id: i.id,
                    folder: paths.get(&i.folder_id).cloned().unwrap_or_default(),
                    subject: i.subject.clone(),
                    from: i.sender.clone(),
                    size: i.size,
                    flags: i.flags,
                    deleted_ms: when.get(&i.id).map_or(0, |w| w.0),
                    keep_until_ms: when.get(&i.id).map_or(0, |w| w.1),
                })
                .collect();
        } else if !chosen.is_empty() {
            let ids: Vec<u32> = chosen.iter().map(|i| i.id).collect();
            let subjects: std::collections::HashMap<u32, String> =
                chosen.iter().map(|i| (i.id, i.subject.clone())).collect();
            for r in store.recover_deleted(mbox, &ids)? {
                report.recovered.push(RecoveredEntry {
                    id: r.id,
                    folder: paths.get(&r.folder_id).cloned().unwrap_or_default(),
                    subject: subjects.get(&r.id).cloned().unwrap_or_default(),
                });
            }
        }
        report.dumpster_used = m.dumpster_used()?;
        Ok(report)
    }

    /// Removes every account's dumpster entries whose time ran out by `now`,
    /// then, where the dumpster holds more than `zimbraDumpsterQuota`, the
    /// oldest deleted until it fits; returns how many. A mailbox that fails is
    /// logged and passed over.
    pub fn sweep_dumpsters(&self, now: UtcMillis) -> Result<usize, ServiceError> {
        let mut purged = 0;
        for a in self.directory().list_accounts(None)? {
            let m = self.store().mailbox(a.mailbox_id);
            if !m.db_path().exists() {
                continue;
            }
            let quota = quota_bytes(self.directory(), &a);
            match self.store().purge_dumpster_within(a.mailbox_id, now, quota) {
                Ok(n) => purged += n,
                Err(e) => tracing::warn!("{}: dumpster sweep: {e}", a.email),
            }
        }
        Ok(purged)
    }
}

/// The dumpster sweep: every `dumpster_sweep_seconds` (local config), and once
/// at start, removes what ran out (logged ops, so a replay removes the same).
pub fn spawn(
    service: Arc<Service>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("dumpster sweep".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match service.sweep_dumpsters(UtcMillis::now()) {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!("dumpster sweep: removed {n} message(s) past their lifetime")
                    }
                    Err(e) => tracing::warn!("dumpster sweep: {e}"),
                }
                // Read, not `Home::open`: that would re-create a home removed
                // while the server runs, which the home watch must see gone.
                let secs = mv_home::LocalConfig::load(&service.store().home().localconfig_path())
                    .map(|c| c.get_u64("dumpster_sweep_seconds"))
                    .unwrap_or(300)
                    .max(1);
                let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
                while std::time::Instant::now() < until {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
            }
        })
}
