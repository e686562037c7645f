//! The dumpster in the apply path: messages a delete keeps (their row moved to
//! the `dumpster` table, their blob file left where it is, since item ids are
//! never reused and the path stays theirs), taken back by `RecoverDeleted`,
//! removed for good by `PurgeDumpster`. Quota-used (`meta.size_used`) counts
//! the mailbox's items only; the dumpster's size is summed from its rows.

use super::{ApplyCtx, ApplyError, Cached, queue_blob_removal, take_uid, touch_folder};
use mv_redo::Op;
use mv_redo::ops::{PurgeDumpster, RecoverDeleted, flags};
use mv_types::ItemId;
use rusqlite::{Connection, OptionalExtension, params};

/// The columns an item row and a dumpster row share.
const ROW: &str = "id, type, folder_id, imap_uid, digest, size, received_ms, flags, tags, subject, \
     sender, recipients, cc, message_id, date_ms, content, cal_uid, sequence, dtstamp_ms, volume_id, \
     mod_content, change, prefix";

/// Copies item `id` into the dumpster (before the caller deletes its row).
pub(super) fn keep(
    tx: &Connection,
    ctx: &ApplyCtx,
    id: u32,
    keep_until_ms: i64,
) -> rusqlite::Result<()> {
    tx.exec(
        &format!(
            "INSERT OR REPLACE INTO dumpster ({ROW}, deleted_ms, keep_until_ms) \
             SELECT {ROW}, ?2, ?3 FROM item WHERE id = ?1"
        ),
        params![id, ctx.timestamp.0, keep_until_ms],
    )?;
    Ok(())
}

/// Puts dumpster entries back into folders, with the UIDs the op gives.
pub(super) fn recover(
    tx: &Connection,
    ctx: &ApplyCtx,
    op: &Op,
    r: &RecoverDeleted,
) -> Result<(), ApplyError> {
    let change = ctx.change.0 as i64;
    for (id, folder, uid) in &r.items {
        super::require_folder(tx, ctx, op, *folder)?;
        let size: Option<i64> = tx
            .row("SELECT size FROM dumpster WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(size) = size else {
            return Err(ctx.inconsistent(op, format!("no item {id} in the dumpster")));
        };
        // \Deleted was the mark an EXPUNGE removed it by: a recovered
        // message comes back without it, else the next EXPUNGE takes it again.
        let cols = ROW
            .replace("folder_id, imap_uid", "?2, ?3")
            .replace("received_ms, flags", "received_ms, flags & ?5")
            .replace("mod_content, change", "mod_content, ?4");
        tx.exec(
            &format!("INSERT INTO item ({ROW}) SELECT {cols} FROM dumpster WHERE id = ?1"),
            params![id, folder, uid, change, !flags::DELETED],
        )?;
        tx.exec("DELETE FROM dumpster WHERE id = ?1", [id])?;
        tx.exec("UPDATE meta SET size_used = size_used + ?1", [size])?;
        take_uid(tx, *folder, *uid, change)?;
        touch_folder(tx, *folder, change)?;
    }
    Ok(())
}

/// Removes dumpster entries for good; their blobs wait for the store's sweep.
/// An id no longer there (recovered meanwhile) is passed over.
pub(super) fn purge(tx: &Connection, ctx: &ApplyCtx, p: &PurgeDumpster) -> rusqlite::Result<()> {
    for id in &p.ids {
        let row: Option<(i64, i64)> = tx
            .row(
                "SELECT volume_id, mod_content FROM dumpster WHERE id = ?1 AND digest IS NOT NULL",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        tx.exec("DELETE FROM dumpster WHERE id = ?1", [id])?;
        if let Some((volume, rev)) = row {
            let path = ctx
                .blobs
                .blob_path(volume as u16, ctx.mailbox, ItemId(*id), rev as u64);
            queue_blob_removal(tx, &path, ctx.timestamp)?;
        }
    }
    Ok(())
}

/// A deleted mailbox's dumpster: every blob queued, every row gone.
pub(super) fn drop_all(tx: &Connection, ctx: &ApplyCtx) -> rusqlite::Result<()> {
    let ids: Vec<u32> = {
        let mut st = tx.prepare("SELECT id FROM dumpster")?;
        st.query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    purge(tx, ctx, &PurgeDumpster { ids })
}
