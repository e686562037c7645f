//! The store's mutations. Each plans its op(s) from the mailbox's current state
//! under the mailbox's write lock, then hands them to [`Store::commit`]: the
//! results (ids, UIDs, flag words) are decided here, logged, and applied.

use crate::ItemKind;
use crate::apply::{Staged, format_tags};
use crate::mailbox::{MailboxGuard, normalize_path};
use crate::{Store, StoreError, mime, pim};
use mv_redo::Op;
use mv_redo::ops::{self, DeleteKind, flags, folders};
use mv_types::{ItemId, MailboxId, UtcMillis};
use rusqlite::{OptionalExtension, params};

mod bulk;
mod deliver;
mod dumpster;
mod folder_ops;
mod pim_items;

pub use deliver::NewMessage;
pub use dumpster::{DumpsterPolicy, Recovered};

/// How a message is stored: folder, flags, tags, received date.
#[derive(Debug, Clone)]
pub struct DeliverOptions {
    pub folder_id: u32,
    pub flags: u32,
    pub tags: Vec<u32>,
    /// Received (internal) date; now when None.
    pub received: Option<UtcMillis>,
}

impl Default for DeliverOptions {
    fn default() -> Self {
        DeliverOptions {
            folder_id: folders::INBOX,
            flags: 0,
            tags: Vec::new(),
            received: None,
        }
    }
}

/// A flag change: bits to set and bits to clear (IMAP +FLAGS / -FLAGS), or a
/// replacement (FLAGS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagChange {
    Add(u32),
    Remove(u32),
    Replace(u32),
}

/// What a calendar import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CalendarImport {
    pub created: Vec<u32>,
    pub replaced: Vec<u32>,
    /// UIDs whose stored version is newer than the imported one.
    pub kept_existing: Vec<String>,
}

/// Names of folders and tags: not empty, no `/`, no control characters, ≤ 128 chars.
fn validate_name(what: &str, name: &str) -> Result<(), StoreError> {
    let bad = name.trim().is_empty()
        || name.len() > 128
        || name.contains('/')
        || name.chars().any(char::is_control)
        || name != name.trim();
    if bad {
        return Err(StoreError::Invalid(format!(
            "invalid {what} name {name:?}: it must be 1-128 characters, without '/', control characters or surrounding spaces"
        )));
    }
    Ok(())
}

fn q<T>(g: &MailboxGuard<'_>, r: rusqlite::Result<T>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::sql_msg(g.id, e))
}

fn require_live(g: &MailboxGuard<'_>) -> Result<(), StoreError> {
    let row: Option<i64> = q(
        g,
        g.conn()
            .query_row("SELECT deleted FROM meta", [], |r| r.get(0))
            .optional(),
    )?;
    match row {
        Some(0) => Ok(()),
        _ => Err(StoreError::NoMailbox(g.id)),
    }
}

/// Whether a mailbox was created (a database with its meta row, or a creation
/// waiting for first use).
fn exists(g: &MailboxGuard<'_>) -> Result<bool, StoreError> {
    if !g.has_conn() {
        return Ok(g.created().get(g.id)?.is_some());
    }
    Ok(q(
        g,
        g.conn()
            .query_row("SELECT 1 FROM meta", [], |_| Ok(()))
            .optional(),
    )?
    .is_some())
}

fn next_item_id(g: &MailboxGuard<'_>) -> Result<u32, StoreError> {
    q(
        g,
        g.conn()
            .query_row("SELECT next_item_id FROM meta", [], |r| r.get(0)),
    )
}

fn folder_row(g: &MailboxGuard<'_>, id: u32) -> Result<(u32, String, u32), StoreError> {
    let row = q(
        g,
        g.conn()
            .query_row(
                "SELECT parent_id, view, uid_next FROM folder WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional(),
    )?;
    row.ok_or_else(|| StoreError::NotFound(format!("no folder with id {id} in mailbox {}", g.id)))
}

/// Fails unless the tag exists in this mailbox.
fn require_tag(g: &MailboxGuard<'_>, tag: u32) -> Result<(), StoreError> {
    let found = q(
        g,
        g.conn()
            .query_row("SELECT 1 FROM tag WHERE id = ?1", [tag], |_| Ok(()))
            .optional(),
    )?;
    found.ok_or_else(|| StoreError::NotFound(format!("no tag with id {tag} in mailbox {}", g.id)))
}

fn item_exists(g: &MailboxGuard<'_>, id: u32) -> Result<(u32, ItemKind, u32), StoreError> {
    let row = q(
        g,
        g.conn()
            .query_row(
                "SELECT folder_id, type, flags FROM item WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional(),
    )?;
    row.ok_or_else(|| StoreError::NotFound(format!("no item with id {id} in mailbox {}", g.id)))
}

impl Store {
    /// Creates a mailbox with its system folders for an account.
    pub fn create_mailbox(
        &self,
        id: MailboxId,
        account_id: &str,
        email: &str,
    ) -> Result<(), StoreError> {
        if id.0 == 0 {
            return Err(StoreError::Invalid("mailbox id 0 is reserved".into()));
        }
        let mbox = self.mailbox(id);
        // No database is made: the creation waits for the first use.
        let mut g = mbox.lock_unopened()?;
        if exists(&g)? {
            return Err(StoreError::Invalid(format!("mailbox {id} already exists")));
        }
        let op = Op::CreateMailbox(ops::CreateMailbox {
            account_id: account_id.to_string(),
            email: email.to_string(),
            uid_validity: uid_validity_now(),
        });
        self.commit(
            std::slice::from_mut(&mut g),
            vec![],
            vec![(id, op)],
            &Staged::default(),
        )
    }

    /// Deletes a mailbox: its items go, its blobs are queued for removal.
    pub fn delete_mailbox(&self, id: MailboxId, account_id: &str) -> Result<(), StoreError> {
        let op = Op::DeleteMailbox(ops::DeleteMailbox {
            account_id: account_id.to_string(),
            ..Default::default()
        });
        self.with_mailbox(id, |_| Ok((vec![op], ())))
    }

    /// Replaces a mailbox by another one (an in-place restore). Under the old
    /// mailbox's write lock, so that nothing commits to it meanwhile (a delivery
    /// waits, then fails temporarily and is retried), runs `switch`, which
    /// catches the replacement up, points the account at it and says what
    /// replaced the old mailbox; then logs the old mailbox's deletion with that
    /// (the restore becomes part of the account's history). If `switch` fails,
    /// the old mailbox stays as it was. Once `switch` has succeeded the account
    /// uses the new mailbox: failing to log the old one's deletion only leaves it
    /// unreferenced, so that is a warning, not an error.
    pub fn retire_mailbox<T, E: From<StoreError>>(
        &self,
        id: MailboxId,
        switch: impl FnOnce() -> Result<(T, ops::DeleteMailbox), E>,
    ) -> Result<T, E> {
        let mbox = self.mailbox(id);
        let mut g = mbox.lock()?;
        require_live(&g)?;
        let (out, deleted) = switch()?;
        let op = Op::DeleteMailbox(deleted);
        if let Err(e) = self.commit(
            std::slice::from_mut(&mut g),
            vec![],
            vec![(id, op)],
            &Staged::default(),
        ) {
            tracing::warn!(
                mailbox = id.0,
                "the replaced mailbox stays, unreferenced: {e}"
            );
        }
        Ok(out)
    }

    /// Records an account's new address in its mailbox.
    pub fn rename_mailbox(&self, id: MailboxId, new_email: &str) -> Result<(), StoreError> {
        let op = Op::RenameMailbox(ops::RenameMailbox {
            new_email: new_email.to_string(),
        });
        self.with_mailbox(id, |_| Ok((vec![op], ())))
    }

    /// Runs `plan` under one mailbox's write lock and commits the ops it returns.
    fn with_mailbox<T>(
        &self,
        id: MailboxId,
        plan: impl FnOnce(&MailboxGuard<'_>) -> Result<(Vec<Op>, T), StoreError>,
    ) -> Result<T, StoreError> {
        let mbox = self.mailbox(id);
        let mut g = mbox.lock()?;
        require_live(&g)?;
        let (ops, out) = plan(&g)?;
        if !ops.is_empty() {
            let ops = ops.into_iter().map(|op| (id, op)).collect();
            self.commit(
                std::slice::from_mut(&mut g),
                vec![],
                ops,
                &Staged::default(),
            )?;
        }
        Ok(out)
    }

    pub fn rename_tag(&self, id: MailboxId, tag: u32, new_name: &str) -> Result<(), StoreError> {
        validate_name("tag", new_name)?;
        self.with_mailbox(id, |g| {
            require_tag(g, tag)?;
            let clash = q(
                g,
                g.conn()
                    .query_row(
                        "SELECT id FROM tag WHERE name = ?1 COLLATE NOCASE AND id != ?2",
                        params![new_name, tag],
                        |r| r.get::<_, u32>(0),
                    )
                    .optional(),
            )?;
            if clash.is_some() {
                return Err(StoreError::Exists(format!(
                    "a tag named {new_name:?} already exists"
                )));
            }
            Ok((
                vec![Op::RenameTag(ops::RenameTag {
                    id: tag,
                    new_name: new_name.to_string(),
                })],
                (),
            ))
        })
    }

    pub fn delete_tag(&self, id: MailboxId, tag: u32) -> Result<(), StoreError> {
        self.with_mailbox(id, |g| {
            require_tag(g, tag)?;
            Ok((vec![Op::DeleteTag(ops::DeleteTag { id: tag })], ()))
        })
    }

    /// Changes flags of items; items whose flags do not change are left out of the op.
    pub fn set_flags(
        &self,
        id: MailboxId,
        items: &[ItemId],
        change: FlagChange,
    ) -> Result<(), StoreError> {
        let bits = match change {
            FlagChange::Add(b) | FlagChange::Remove(b) | FlagChange::Replace(b) => b,
        };
        if bits & !flags::ALL != 0 {
            return Err(StoreError::Invalid(format!(
                "unknown flag bits {:#x}",
                bits & !flags::ALL
            )));
        }
        self.with_mailbox(id, |g| {
            let mut out = Vec::new();
            for item in items {
                let (_, _, old) = item_exists(g, item.0)?;
                let new = match change {
                    FlagChange::Add(b) => old | b,
                    FlagChange::Remove(b) => old & !b,
                    FlagChange::Replace(b) => b,
                };
                if new != old {
                    out.push((item.0, new));
                }
            }
            let ops = if out.is_empty() {
                vec![]
            } else {
                vec![Op::SetFlags(ops::SetFlags { items: out })]
            };
            Ok((ops, ()))
        })
    }

    /// Replaces the tags of items.
    pub fn set_tags(
        &self,
        id: MailboxId,
        items: &[ItemId],
        tags: &[u32],
    ) -> Result<(), StoreError> {
        self.with_mailbox(id, |g| {
            for t in tags {
                require_tag(g, *t)?;
            }
            let wanted = format_tags(tags);
            let mut out = Vec::new();
            for item in items {
                item_exists(g, item.0)?;
                let old: String = q(
                    g,
                    g.conn()
                        .query_row("SELECT tags FROM item WHERE id = ?1", [item.0], |r| {
                            r.get(0)
                        }),
                )?;
                if old != wanted {
                    out.push((item.0, crate::apply::parse_tags(&wanted)));
                }
            }
            let ops = if out.is_empty() {
                vec![]
            } else {
                vec![Op::SetTags(ops::SetTags { items: out })]
            };
            Ok((ops, ()))
        })
    }

    /// Moves items into a folder; each gets the next UID there.
    pub fn move_items(
        &self,
        id: MailboxId,
        items: &[ItemId],
        to_folder: u32,
    ) -> Result<Vec<u32>, StoreError> {
        self.move_items_with(id, items, to_folder, false)
    }

    /// Like [`Store::move_items`], but an item already in `to_folder` moves
    /// too: it gets the folder's next UID and its old UID is expunged (IMAP
    /// MOVE into the selected mailbox, RFC 6851 §3.3).
    pub fn move_items_renumbering(
        &self,
        id: MailboxId,
        items: &[ItemId],
        to_folder: u32,
    ) -> Result<Vec<u32>, StoreError> {
        self.move_items_with(id, items, to_folder, true)
    }

    fn move_items_with(
        &self,
        id: MailboxId,
        items: &[ItemId],
        to_folder: u32,
        renumber: bool,
    ) -> Result<Vec<u32>, StoreError> {
        self.with_mailbox(id, |g| {
            let (_, _, mut uid) = folder_row(g, to_folder)?;
            let mut moved = Vec::new();
            for item in items {
                let (from, _, _) = item_exists(g, item.0)?;
                if from == to_folder && !renumber {
                    continue;
                }
                moved.push((item.0, uid));
                uid += 1;
            }
            let uids = moved.iter().map(|(_, u)| *u).collect();
            let ops = if moved.is_empty() {
                vec![]
            } else {
                vec![Op::MoveItems(ops::MoveItems {
                    to_folder_id: to_folder,
                    items: moved,
                })]
            };
            Ok((ops, uids))
        })
    }

    /// Copies items into a folder; returns the new item ids.
    pub fn copy_items(
        &self,
        id: MailboxId,
        items: &[ItemId],
        to_folder: u32,
    ) -> Result<Vec<ItemId>, StoreError> {
        self.with_mailbox(id, |g| {
            let (_, _, mut uid) = folder_row(g, to_folder)?;
            let mut out = Vec::new();
            for (next, item) in (next_item_id(g)?..).zip(items) {
                item_exists(g, item.0)?;
                out.push((item.0, next, uid));
                uid += 1;
            }
            let new_ids = out.iter().map(|(_, n, _)| ItemId(*n)).collect();
            let ops = if out.is_empty() {
                vec![]
            } else {
                vec![Op::CopyItems(ops::CopyItems {
                    to_folder_id: to_folder,
                    items: out,
                })]
            };
            Ok((ops, new_ids))
        })
    }

    /// Deletes items (messages, contacts, appointments): messages go to the
    /// dumpster when the mailbox keeps deleted messages, the others for good.
    pub fn delete_items(&self, id: MailboxId, items: &[ItemId]) -> Result<(), StoreError> {
        self.with_mailbox(id, |g| {
            let mut ids = Vec::new();
            for item in items {
                item_exists(g, item.0)?;
                ids.push(item.0);
            }
            ids.sort_unstable();
            ids.dedup();
            let ops = if ids.is_empty() {
                vec![]
            } else {
                vec![Op::DeleteItems(ops::DeleteItems {
                    kind: DeleteKind::DeleteItem,
                    folder_id: 0,
                    ids,
                    keep_until_ms: self.keep_until(id),
                })]
            };
            Ok((ops, ()))
        })
    }

    /// IMAP EXPUNGE: removes the folder's messages flagged \Deleted (all of them,
    /// or only those among `only` for UID EXPUNGE). Returns the expunged UIDs.
    pub fn purge_imap_deleted(
        &self,
        id: MailboxId,
        folder: u32,
        only: Option<&[u32]>,
    ) -> Result<Vec<u32>, StoreError> {
        self.with_mailbox(id, |g| {
            folder_row(g, folder)?;
            let rows: Vec<(u32, u32)> = {
                let mut st = q(
                    g,
                    g.conn().prepare("SELECT id, imap_uid FROM item WHERE folder_id = ?1 AND (flags & ?2) != 0 ORDER BY imap_uid"),
                )?;
                q(g, st.query_map(params![folder, flags::DELETED], |r| Ok((r.get(0)?, r.get(1)?))).and_then(|r| r.collect()))?
            };
            let chosen: Vec<(u32, u32)> =
                rows.into_iter().filter(|(_, uid)| only.is_none_or(|set| set.contains(uid))).collect();
            let uids = chosen.iter().map(|(_, u)| *u).collect();
            let ids: Vec<u32> = chosen.iter().map(|(i, _)| *i).collect();
            let ops = if ids.is_empty() {
                vec![]
            } else {
                vec![Op::DeleteItems(ops::DeleteItems {
                    kind: DeleteKind::PurgeImapDeleted,
                    folder_id: folder,
                    ids,
                    keep_until_ms: self.keep_until(id),
                })]
            };
            Ok((ops, uids))
        })
    }
}

/// IMAP UIDVALIDITY for a new mailbox: seconds since the epoch, as most servers do.
fn uid_validity_now() -> u32 {
    (UtcMillis::now().0 / 1000).clamp(1, u32::MAX as i64) as u32
}
