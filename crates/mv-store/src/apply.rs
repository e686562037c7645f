//! The one apply path. Live writes and redo replay both change a mailbox only by
//! calling [`apply`] with a redo record, inside one SQLite transaction that also
//! records the record's change number as `applied_change`. Replay is therefore
//! idempotent: a record is applied iff its change number is above the mailbox's
//! `applied_change`.
//!
//! [`apply`] takes a connection inside a transaction the caller opened: a live
//! write's own transaction, or a savepoint nested in a replay's batch transaction
//! (many records per commit, see [`crate::Replayer`]). Either way the record's
//! changes and its `applied_change` commit together.

use crate::ItemKind;
use crate::blob::{BlobError, BlobStore};
use mv_redo::ops::{self, DeleteKind, Op};
use mv_types::{ChangeNumber, Digest, ItemId, MailboxId, UtcMillis};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::PathBuf;

mod dumpster;

/// The apply path's statements, prepared once per connection and reused
/// (rusqlite's `execute`/`query_row` parse the SQL on every call: for a replayed
/// flag change, parsing its five statements cost more than running them).
/// [`crate::schema::prepare`] sizes the connection's cache for all of them.
trait Cached {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn row<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("{0}")]
    Blob(#[from] BlobError),
    #[error("{op} (change {change}) does not fit mailbox {mailbox}: {reason}")]
    Inconsistent {
        op: &'static str,
        change: u64,
        mailbox: u32,
        reason: String,
    },
}

/// Content staged for the records being applied: digest → a file holding the bytes
/// (a fresh delivery in `store/incoming`, or a `PutBlob` replayed from the log).
#[derive(Debug, Default)]
pub struct Staged {
    files: HashMap<Digest, PathBuf>,
}

impl Staged {
    pub fn insert(&mut self, digest: Digest, path: PathBuf) {
        self.files.insert(digest, path);
    }
    pub fn get(&self, digest: &Digest) -> Option<&PathBuf> {
        self.files.get(digest)
    }
    pub fn contains(&self, digest: &Digest) -> bool {
        self.files.contains_key(digest)
    }
    pub fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.files.values()
    }
}

/// What applying needs besides the transaction.
pub struct ApplyCtx<'a> {
    pub mailbox: MailboxId,
    pub change: ChangeNumber,
    pub timestamp: UtcMillis,
    pub blobs: &'a BlobStore,
    pub staged: &'a Staged,
}

impl ApplyCtx<'_> {
    fn inconsistent(&self, op: &Op, reason: impl Into<String>) -> ApplyError {
        ApplyError::Inconsistent {
            op: op.name(),
            change: self.change.0,
            mailbox: self.mailbox.0,
            reason: reason.into(),
        }
    }
}

/// The change number a mailbox database has applied, or None for a mailbox whose
/// database holds no mailbox yet.
pub fn applied_change(tx: &Connection) -> rusqlite::Result<Option<u64>> {
    tx.row("SELECT applied_change FROM meta", [], |r| {
        r.get::<_, i64>(0)
    })
    .optional()
    .map(|v| v.map(|c| c as u64))
}

/// Applies one mailbox record. The caller has checked `change > applied_change`
/// and commits the transaction afterwards.
pub fn apply(tx: &Connection, ctx: &ApplyCtx, op: &Op) -> Result<(), ApplyError> {
    let change = ctx.change.0 as i64;
    match op {
        Op::PutBlob(_) => return Err(ctx.inconsistent(op, "content records belong to no mailbox")),
        Op::CreateMailbox(c) => {
            if applied_change(tx)?.is_some() {
                return Err(ctx.inconsistent(op, "the mailbox already exists"));
            }
            tx.exec(
                "INSERT INTO meta (mailbox_id, account_id, email, applied_change, next_item_id, created_ms) \
                 VALUES (?1, ?2, ?3, 0, ?4, ?5)",
                params![ctx.mailbox.0, c.account_id, c.email, ops::folders::FIRST_USER_ID, ctx.timestamp.0],
            )?;
            insert_folder(
                tx,
                ops::folders::ROOT,
                0,
                "",
                "unknown",
                c.uid_validity,
                change,
            )?;
            for (id, name, view) in ops::folders::SYSTEM {
                insert_folder(
                    tx,
                    *id,
                    ops::folders::ROOT,
                    name,
                    view,
                    c.uid_validity,
                    change,
                )?;
            }
        }
        Op::DeleteMailbox(_) => {
            // The mailbox's database file is removed by the store after commit; here
            // its blobs are queued for removal.
            let paths = item_blob_paths(tx, ctx, None)?;
            for p in paths {
                queue_blob_removal(tx, &p, ctx.timestamp)?;
            }
            dumpster::drop_all(tx, ctx)?;
            tx.exec("DELETE FROM item", [])?;
            tx.exec("UPDATE meta SET deleted = 1, size_used = 0", [])?;
        }
        Op::RenameMailbox(r) => {
            tx.exec("UPDATE meta SET email = ?1", [&r.new_email])?;
        }
        Op::CreateFolder(f) => {
            require_folder(tx, ctx, op, f.parent_id)?;
            insert_folder(
                tx,
                f.id,
                f.parent_id,
                &f.name,
                &f.view,
                f.uid_validity,
                change,
            )?;
            bump_next_id(tx, f.id)?;
            // The root folder remembers the highest UIDVALIDITY given out, so
            // that it outlives the folder that had it (see write.rs,
            // next_uid_validity).
            tx.exec(
                "UPDATE folder SET uid_validity = MAX(uid_validity, ?1) WHERE id = ?2",
                params![f.uid_validity, ops::folders::ROOT],
            )?;
        }
        Op::RenameFolder(r) => {
            require_folder(tx, ctx, op, r.id)?;
            require_folder(tx, ctx, op, r.new_parent_id)?;
            tx.exec(
                "UPDATE folder SET name = ?1, parent_id = ?2, change = ?3, modseq = ?3 WHERE id = ?4",
                params![r.new_name, r.new_parent_id, change, r.id],
            )?;
        }
        Op::DeleteFolder(d) => {
            remove_items(tx, ctx, &d.item_ids, None)?;
            for id in &d.folder_ids {
                tx.exec("DELETE FROM folder WHERE id = ?1", [id])?;
                tx.exec(
                    "INSERT INTO tombstone (change, id, type, folder_id, imap_uid) VALUES (?1, ?2, ?3, 0, 0)",
                    params![change, id, ItemKind::Folder],
                )?;
            }
        }
        Op::CreateTag(t) => {
            tx.exec(
                "INSERT INTO tag (id, name, color, change) VALUES (?1, ?2, ?3, ?4)",
                params![t.id, t.name, t.color, change],
            )?;
            bump_next_id(tx, t.id)?;
        }
        Op::SetSubscription(sub) => {
            if sub.subscribed {
                tx.exec(
                    "INSERT OR REPLACE INTO subscription (name, change) VALUES (?1, ?2)",
                    params![sub.name, change],
                )?;
            } else {
                tx.exec("DELETE FROM subscription WHERE name = ?1", [&sub.name])?;
            }
        }
        Op::RenameTag(t) => {
            let n = tx.exec(
                "UPDATE tag SET name = ?1, change = ?2 WHERE id = ?3",
                params![t.new_name, change, t.id],
            )?;
            if n == 0 {
                return Err(ctx.inconsistent(op, format!("no tag {}", t.id)));
            }
        }
        Op::DeleteTag(t) => {
            tx.exec("DELETE FROM tag WHERE id = ?1", [t.id])?;
            let tagged: Vec<(i64, String, u32)> = {
                let mut st =
                    tx.prepare_cached("SELECT id, tags, folder_id FROM item WHERE tags != ''")?;
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<Result<_, _>>()?
            };
            for (id, tags, folder) in tagged {
                let mut list = parse_tags(&tags);
                if list.contains(&t.id) {
                    list.retain(|x| *x != t.id);
                    tx.exec(
                        "UPDATE item SET tags = ?1, change = ?2 WHERE id = ?3",
                        params![format_tags(&list), change, id],
                    )?;
                    touch_folder(tx, folder, change)?;
                }
            }
            tx.exec(
                "INSERT INTO tombstone (change, id, type, folder_id, imap_uid) VALUES (?1, ?2, ?3, 0, 0)",
                params![change, t.id, ItemKind::Tag],
            )?;
        }
        Op::CreateMessage(m) => {
            require_folder(tx, ctx, op, m.folder_id)?;
            let digest = Digest(m.digest);
            let dest = ctx
                .blobs
                .blob_path(1, ctx.mailbox, ItemId(m.id), change as u64);
            let source = match ctx.staged.get(&digest) {
                Some(p) => p.clone(),
                None => {
                    existing_blob(tx, ctx, &digest)?.ok_or(BlobError::MissingContent(digest))?
                }
            };
            ctx.blobs.link_or_copy(&source, &dest)?;
            tx.exec(
                "INSERT INTO item (id, type, folder_id, imap_uid, digest, size, received_ms, flags, tags, subject, \
                 sender, recipients, cc, message_id, date_ms, volume_id, mod_content, change, prefix) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, 1, ?16, ?16, ?17)",
                params![
                    m.id,
                    ItemKind::Message,
                    m.folder_id,
                    m.imap_uid,
                    &m.digest[..],
                    m.size as i64,
                    m.received_ms,
                    m.flags,
                    format_tags(&m.tags),
                    m.envelope.subject,
                    m.envelope.from,
                    m.envelope.to,
                    m.envelope.cc,
                    m.envelope.message_id,
                    m.envelope.date_ms,
                    change,
                    m.prefix.as_deref().filter(|p| !p.is_empty()),
                ],
            )?;
            take_uid(tx, m.folder_id, m.imap_uid, change)?;
            bump_next_id(tx, m.id)?;
            tx.exec(
                "UPDATE meta SET size_used = size_used + ?1",
                [m.size as i64],
            )?;
        }
        Op::SetFlags(s) => {
            for (id, flags) in &s.items {
                let folder = require_item(tx, ctx, op, *id)?;
                tx.exec(
                    "UPDATE item SET flags = ?1, change = ?2 WHERE id = ?3",
                    params![flags, change, id],
                )?;
                touch_folder(tx, folder, change)?;
            }
        }
        Op::SetTags(s) => {
            for (id, tags) in &s.items {
                let folder = require_item(tx, ctx, op, *id)?;
                tx.exec(
                    "UPDATE item SET tags = ?1, change = ?2 WHERE id = ?3",
                    params![format_tags(tags), change, id],
                )?;
                touch_folder(tx, folder, change)?;
            }
        }
        Op::MoveItems(m) => {
            require_folder(tx, ctx, op, m.to_folder_id)?;
            for (id, uid) in &m.items {
                let from = require_item(tx, ctx, op, *id)?;
                // The old folder sees an expunge of the old UID.
                tx.exec(
                    "INSERT INTO tombstone (change, id, type, folder_id, imap_uid) \
                     SELECT ?1, id, type, folder_id, imap_uid FROM item WHERE id = ?2",
                    params![change, id],
                )?;
                touch_folder(tx, from, change)?;
                tx.exec(
                    "UPDATE item SET folder_id = ?1, imap_uid = ?2, change = ?3 WHERE id = ?4",
                    params![m.to_folder_id, uid, change, id],
                )?;
                take_uid(tx, m.to_folder_id, *uid, change)?;
            }
        }
        Op::CopyItems(c) => {
            require_folder(tx, ctx, op, c.to_folder_id)?;
            for (src, new_id, uid) in &c.items {
                require_item(tx, ctx, op, *src)?;
                let (digest, mod_content, volume): (Option<Vec<u8>>, i64, i64) = tx.row(
                    "SELECT digest, mod_content, volume_id FROM item WHERE id = ?1",
                    [src],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?;
                tx.exec(
                    "INSERT INTO item (id, type, folder_id, imap_uid, digest, size, received_ms, flags, tags, subject, \
                     sender, recipients, cc, message_id, date_ms, content, cal_uid, sequence, dtstamp_ms, volume_id, \
                     mod_content, change, prefix) \
                     SELECT ?1, type, ?2, ?3, digest, size, received_ms, flags, tags, subject, sender, recipients, cc, \
                     message_id, date_ms, content, cal_uid, sequence, dtstamp_ms, 1, ?4, ?4, prefix FROM item WHERE id = ?5",
                    params![new_id, c.to_folder_id, uid, change, src],
                )?;
                if digest.is_some() {
                    let from = ctx.blobs.blob_path(
                        volume as u16,
                        ctx.mailbox,
                        ItemId(*src),
                        mod_content as u64,
                    );
                    let to = ctx
                        .blobs
                        .blob_path(1, ctx.mailbox, ItemId(*new_id), change as u64);
                    ctx.blobs.link_or_copy(&from, &to)?;
                    let size: i64 =
                        tx.row("SELECT size FROM item WHERE id = ?1", [new_id], |r| {
                            r.get(0)
                        })?;
                    tx.exec("UPDATE meta SET size_used = size_used + ?1", [size])?;
                }
                take_uid(tx, c.to_folder_id, *uid, change)?;
                bump_next_id(tx, *new_id)?;
            }
        }
        Op::DeleteItems(d) => {
            if d.kind != DeleteKind::DeleteItem {
                require_folder(tx, ctx, op, d.folder_id)?;
            }
            remove_items(tx, ctx, &d.ids, d.keep_until_ms)?;
        }
        Op::RecoverDeleted(r) => dumpster::recover(tx, ctx, op, r)?,
        Op::PurgeDumpster(p) => dumpster::purge(tx, ctx, p)?,
        Op::PutContact(c) => {
            require_folder(tx, ctx, op, c.folder_id)?;
            upsert_pim_item(
                tx,
                c.id,
                ItemKind::Contact,
                c.folder_id,
                &c.name,
                &c.vcard,
                None,
                0,
                0,
                change,
            )?;
        }
        Op::SetCalendarItem(s) => {
            require_folder(tx, ctx, op, s.folder_id)?;
            if s.replaces != 0 {
                remove_items(tx, ctx, &[s.replaces], None)?;
            }
            upsert_pim_item(
                tx,
                s.id,
                ItemKind::Appointment,
                s.folder_id,
                &s.summary,
                &s.ics,
                Some(&s.uid),
                s.sequence,
                s.dtstamp_ms,
                change,
            )?;
        }
    }
    tx.exec("UPDATE meta SET applied_change = ?1", [change])?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn upsert_pim_item(
    tx: &Connection,
    id: u32,
    kind: ItemKind,
    folder: u32,
    name: &str,
    content: &str,
    cal_uid: Option<&str>,
    sequence: i64,
    dtstamp: i64,
    change: i64,
) -> Result<(), ApplyError> {
    let existing: Option<i64> = tx
        .row("SELECT folder_id FROM item WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?;
    let size = content.len() as i64;
    match existing {
        Some(old_folder) => {
            tx.exec(
                "UPDATE item SET subject = ?1, content = ?2, size = ?3, sequence = ?4, dtstamp_ms = ?5, \
                 mod_content = ?6, change = ?6 WHERE id = ?7",
                params![name, content, size, sequence, dtstamp, change, id],
            )?;
            touch_folder(tx, old_folder as u32, change)?;
        }
        None => {
            let uid: i64 = tx.row("SELECT uid_next FROM folder WHERE id = ?1", [folder], |r| {
                r.get(0)
            })?;
            tx.exec(
                "INSERT INTO item (id, type, folder_id, imap_uid, size, received_ms, flags, subject, content, cal_uid, \
                 sequence, dtstamp_ms, mod_content, change) VALUES (?1, ?2, ?3, ?4, ?5, 0, 0, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
                params![id, kind, folder, uid, size, name, content, cal_uid, sequence, dtstamp, change],
            )?;
            take_uid(tx, folder, uid as u32, change)?;
            bump_next_id(tx, id)?;
        }
    }
    Ok(())
}

fn insert_folder(
    tx: &Connection,
    id: u32,
    parent: u32,
    name: &str,
    view: &str,
    uid_validity: u32,
    change: i64,
) -> rusqlite::Result<()> {
    tx.exec(
        "INSERT INTO folder (id, parent_id, name, view, uid_validity, uid_next, modseq, change) \
         VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6)",
        params![id, parent, name, view, uid_validity, change],
    )?;
    Ok(())
}

fn require_folder(tx: &Connection, ctx: &ApplyCtx, op: &Op, id: u32) -> Result<(), ApplyError> {
    let found: Option<i64> = tx
        .row("SELECT id FROM folder WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    found
        .map(|_| ())
        .ok_or_else(|| ctx.inconsistent(op, format!("no folder {id}")))
}

/// Checks the item exists and returns its folder.
fn require_item(tx: &Connection, ctx: &ApplyCtx, op: &Op, id: u32) -> Result<u32, ApplyError> {
    let found: Option<i64> = tx
        .row("SELECT folder_id FROM item WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?;
    found
        .map(|f| f as u32)
        .ok_or_else(|| ctx.inconsistent(op, format!("no item {id}")))
}

fn bump_next_id(tx: &Connection, used: u32) -> rusqlite::Result<()> {
    tx.exec(
        "UPDATE meta SET next_item_id = MAX(next_item_id, ?1)",
        [used as i64 + 1],
    )?;
    Ok(())
}

/// Records that `uid` is taken in `folder`: UIDs only grow.
fn take_uid(tx: &Connection, folder: u32, uid: u32, change: i64) -> rusqlite::Result<()> {
    tx.exec(
        "UPDATE folder SET uid_next = MAX(uid_next, ?1), modseq = MAX(modseq, ?2) WHERE id = ?3",
        params![uid as i64 + 1, change, folder],
    )?;
    Ok(())
}

fn touch_folder(tx: &Connection, folder: u32, change: i64) -> rusqlite::Result<()> {
    tx.exec(
        "UPDATE folder SET modseq = MAX(modseq, ?1) WHERE id = ?2",
        params![change, folder],
    )?;
    Ok(())
}

/// What removing an item needs to know about it.
struct Removed {
    kind: ItemKind,
    folder: i64,
    uid: i64,
    digest: Option<Vec<u8>>,
    size: i64,
    rev: i64,
    volume: i64,
}

/// Removes items: tombstones, quota, and their blobs queued for deferred
/// deletion; with `keep_until_ms`, messages go to the dumpster instead, their
/// blobs kept.
fn remove_items(
    tx: &Connection,
    ctx: &ApplyCtx,
    ids: &[u32],
    keep_until_ms: Option<i64>,
) -> Result<(), ApplyError> {
    let change = ctx.change.0 as i64;
    for id in ids {
        let row: Option<Removed> = tx
            .row(
                "SELECT type, folder_id, imap_uid, digest, size, mod_content, volume_id FROM item WHERE id = ?1",
                [id],
                |r| {
                    Ok(Removed {
                        kind: r.get(0)?,
                        folder: r.get(1)?,
                        uid: r.get(2)?,
                        digest: r.get(3)?,
                        size: r.get(4)?,
                        rev: r.get(5)?,
                        volume: r.get(6)?,
                    })
                },
            )
            .optional()?;
        let Some(Removed {
            kind,
            folder,
            uid,
            digest,
            size,
            rev,
            volume,
        }) = row
        else {
            return Err(ApplyError::Inconsistent {
                op: "delete",
                change: ctx.change.0,
                mailbox: ctx.mailbox.0,
                reason: format!("no item {id}"),
            });
        };
        tx.exec(
            "INSERT INTO tombstone (change, id, type, folder_id, imap_uid) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![change, id, kind, folder, uid],
        )?;
        let kept = match keep_until_ms {
            Some(until) if digest.is_some() && kind == ItemKind::Message => {
                dumpster::keep(tx, ctx, *id, until)?;
                true
            }
            _ => false,
        };
        tx.exec("DELETE FROM item WHERE id = ?1", [id])?;
        touch_folder(tx, folder as u32, change)?;
        if digest.is_some() {
            // Quota-used counts live items only, the dumpster's apart.
            tx.exec("UPDATE meta SET size_used = size_used - ?1", [size])?;
        }
        if digest.is_some() && !kept {
            let path = ctx
                .blobs
                .blob_path(volume as u16, ctx.mailbox, ItemId(*id), rev as u64);
            queue_blob_removal(tx, &path, ctx.timestamp)?;
        }
    }
    Ok(())
}

fn queue_blob_removal(
    tx: &Connection,
    path: &std::path::Path,
    at: UtcMillis,
) -> rusqlite::Result<()> {
    tx.exec(
        "INSERT OR REPLACE INTO blob_gc (path, deleted_ms) VALUES (?1, ?2)",
        params![path.to_string_lossy(), at.0],
    )?;
    Ok(())
}

/// Blob paths of all items (or of one folder's items).
fn item_blob_paths(
    tx: &Connection,
    ctx: &ApplyCtx,
    folder: Option<u32>,
) -> rusqlite::Result<Vec<PathBuf>> {
    let refs = crate::snapshot_file::blob_refs(tx, folder)?;
    Ok(refs
        .into_iter()
        .map(|b| {
            ctx.blobs
                .blob_path(b.volume, ctx.mailbox, b.item, b.revision)
        })
        .collect())
}

/// A stored blob of this mailbox with the given digest (copies, and content whose
/// staged file is gone), if its file is still there.
fn existing_blob(
    tx: &Connection,
    ctx: &ApplyCtx,
    digest: &Digest,
) -> rusqlite::Result<Option<PathBuf>> {
    let mut st =
        tx.prepare_cached("SELECT id, mod_content, volume_id FROM item WHERE digest = ?1")?;
    let rows = st.query_map([&digest.0[..]], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (id, rev, vol) = row?;
        let p = ctx
            .blobs
            .blob_path(vol as u16, ctx.mailbox, ItemId(id as u32), rev as u64);
        if p.is_file() {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

pub fn parse_tags(s: &str) -> Vec<u32> {
    s.split(',').filter_map(|t| t.parse().ok()).collect()
}

pub fn format_tags(tags: &[u32]) -> String {
    let mut sorted = tags.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
