//! The dumpster's writes: deletes keep messages there when the mailbox's
//! policy says so (`zimbraMailDumpsterLifetime`, read by the caller that sets
//! the policy); `recover_deleted` takes them back and `purge_dumpster` removes
//! those whose time ran out (`purge_dumpster_within`: and the oldest beyond a
//! size limit). Both are redo-logged ops through the one apply
//! path, so they replay.

use super::*;
use std::collections::HashMap;

/// How long (ms) a mailbox keeps deleted messages; None or 0: not at all.
pub type DumpsterPolicy = Box<dyn Fn(MailboxId) -> Option<i64> + Send + Sync>;

/// A message taken out of the dumpster: its item id (unchanged), where it went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Recovered {
    pub id: u32,
    pub folder_id: u32,
    pub imap_uid: u32,
}

impl Store {
    /// Sets how long each mailbox keeps its deleted messages (once per store;
    /// false if already set). Without a policy deletes remove at once.
    pub fn set_dumpster_policy(&self, policy: DumpsterPolicy) -> bool {
        self.dumpster.set(policy).is_ok()
    }

    /// Until when a delete planned now keeps the mailbox's messages, if at all.
    pub(crate) fn keep_until(&self, id: MailboxId) -> Option<i64> {
        let ms = (self.dumpster.get()?)(id)?;
        (ms > 0).then(|| UtcMillis::now().0.saturating_add(ms))
    }

    /// Takes messages back out of the dumpster (`zmmailbox recoverDeleted`):
    /// each into the folder it was deleted from if that still exists (and
    /// holds messages), else into Inbox, with a new IMAP UID there; its item
    /// id, bytes, flags (but \Deleted, the mark an EXPUNGE went by), tags and
    /// dates are kept. Ids not in the dumpster are `NotFound`.
    pub fn recover_deleted(
        &self,
        id: MailboxId,
        ids: &[u32],
    ) -> Result<Vec<Recovered>, StoreError> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        self.with_mailbox(id, |g| {
            let mut uid_next: HashMap<u32, u32> = HashMap::new();
            let mut out = Vec::new();
            for item in ids {
                let was: Option<u32> = q(
                    g,
                    g.conn()
                        .query_row(
                            "SELECT folder_id FROM dumpster WHERE id = ?1",
                            [item],
                            |r| r.get(0),
                        )
                        .optional(),
                )?;
                let Some(was) = was else {
                    return Err(StoreError::NotFound(format!(
                        "no item {item} in the dumpster of mailbox {}",
                        g.id
                    )));
                };
                let folder = match folder_row(g, was) {
                    Ok((_, view, _)) if view == "message" => was,
                    _ => folders::INBOX,
                };
                let uid = match uid_next.get(&folder) {
                    Some(u) => *u,
                    None => folder_row(g, folder)?.2,
                };
                uid_next.insert(folder, uid + 1);
                out.push(Recovered {
                    id: item,
                    folder_id: folder,
                    imap_uid: uid,
                });
            }
            let ops = if out.is_empty() {
                vec![]
            } else {
                vec![Op::RecoverDeleted(ops::RecoverDeleted {
                    items: out
                        .iter()
                        .map(|r| (r.id, r.folder_id, r.imap_uid))
                        .collect(),
                })]
            };
            Ok((ops, out))
        })
    }

    /// Removes for good the dumpster's messages whose time ran out by `now`
    /// (their blobs then go as a delete's do); returns how many.
    pub fn purge_dumpster(&self, id: MailboxId, now: UtcMillis) -> Result<usize, StoreError> {
        self.purge_dumpster_within(id, now, None)
    }

    /// [`Store::purge_dumpster`], and then, while what stays holds more than
    /// `quota` bytes (`zimbraDumpsterQuota`; None: no limit), the oldest deleted
    /// first (ties by item id) until it fits. One logged op, so a replay
    /// removes the same entries whatever the directory says then.
    pub fn purge_dumpster_within(
        &self,
        id: MailboxId,
        now: UtcMillis,
        quota: Option<u64>,
    ) -> Result<usize, StoreError> {
        self.with_mailbox(id, |g| {
            // (id, size, expired), oldest deleted first.
            let rows: Vec<(u32, i64, bool)> = {
                let mut st = q(
                    g,
                    g.conn().prepare(
                        "SELECT id, size, keep_until_ms <= ?1 FROM dumpster \
                         ORDER BY deleted_ms, id",
                    ),
                )?;
                q(
                    g,
                    st.query_map([now.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                        .and_then(|rows| rows.collect()),
                )?
            };
            let mut ids: Vec<u32> = rows.iter().filter(|r| r.2).map(|r| r.0).collect();
            if let Some(quota) = quota {
                let mut kept: u64 = rows
                    .iter()
                    .filter(|r| !r.2)
                    .map(|r| r.1.max(0) as u64)
                    .sum();
                for (item, size, expired) in &rows {
                    if kept <= quota {
                        break;
                    }
                    if !expired {
                        ids.push(*item);
                        kept -= (*size).max(0) as u64;
                    }
                }
            }
            ids.sort_unstable();
            let n = ids.len();
            let ops = if ids.is_empty() {
                vec![]
            } else {
                vec![Op::PurgeDumpster(ops::PurgeDumpster { ids })]
            };
            Ok((ops, n))
        })
    }
}
