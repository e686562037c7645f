//! The per-mailbox metadata database: schema and migrations.
//!
//! One SQLite file per mailbox (`db/mbox/<id>.sqlite`), WAL mode. One file per
//! mailbox because the mailbox is the unit of backup, restore and replay: a
//! snapshot is one consistent file copy, a restore swaps one file, and writers of
//! different mailboxes never contend on one database lock.
//!
//! `synchronous = NORMAL`: commits are not fsynced one by one. The redo log is the
//! durability point; a database that lost its last commits in a crash is brought
//! forward by re-applying the current redo log (apply iff change > applied_change),
//! and the store checkpoints (syncfs) before a redo log is archived.

use rusqlite::Connection;

/// Schema versions, applied in order. Never edit a released step: add one.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    "
    CREATE TABLE meta (
        mailbox_id     INTEGER NOT NULL,
        account_id     TEXT    NOT NULL,
        email          TEXT    NOT NULL,
        applied_change INTEGER NOT NULL,
        next_item_id   INTEGER NOT NULL,
        size_used      INTEGER NOT NULL DEFAULT 0,
        created_ms     INTEGER NOT NULL,
        last_backup_at INTEGER, -- unused: the directory keeps it (backup_status)
        deleted        INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE folder (
        id           INTEGER PRIMARY KEY,
        parent_id    INTEGER NOT NULL,
        name         TEXT    NOT NULL,
        view         TEXT    NOT NULL,
        uid_validity INTEGER NOT NULL,
        uid_next     INTEGER NOT NULL,
        modseq       INTEGER NOT NULL,
        change       INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX folder_name ON folder(parent_id, name COLLATE NOCASE);
    CREATE TABLE tag (
        id     INTEGER PRIMARY KEY,
        name   TEXT    NOT NULL,
        color  INTEGER NOT NULL,
        change INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX tag_name ON tag(name COLLATE NOCASE);
    CREATE TABLE item (
        id          INTEGER PRIMARY KEY,
        type        INTEGER NOT NULL,
        folder_id   INTEGER NOT NULL,
        imap_uid    INTEGER NOT NULL,
        digest      BLOB,
        size        INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        flags       INTEGER NOT NULL,
        tags        TEXT    NOT NULL DEFAULT '',
        subject     TEXT    NOT NULL DEFAULT '',
        sender      TEXT    NOT NULL DEFAULT '',
        recipients  TEXT    NOT NULL DEFAULT '',
        cc          TEXT    NOT NULL DEFAULT '',
        message_id  TEXT    NOT NULL DEFAULT '',
        date_ms     INTEGER NOT NULL DEFAULT 0,
        content     TEXT,
        cal_uid     TEXT,
        sequence    INTEGER NOT NULL DEFAULT 0,
        dtstamp_ms  INTEGER NOT NULL DEFAULT 0,
        volume_id   INTEGER NOT NULL DEFAULT 1,
        mod_content INTEGER NOT NULL,
        change      INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX item_uid ON item(folder_id, imap_uid);
    CREATE INDEX item_digest ON item(digest);
    CREATE INDEX item_cal_uid ON item(cal_uid) WHERE cal_uid IS NOT NULL;
    CREATE TABLE tombstone (
        change    INTEGER NOT NULL,
        id        INTEGER NOT NULL,
        type      INTEGER NOT NULL,
        folder_id INTEGER NOT NULL,
        imap_uid  INTEGER NOT NULL
    );
    CREATE INDEX tombstone_change ON tombstone(change);
    CREATE TABLE blob_gc (
        path       TEXT PRIMARY KEY,
        deleted_ms INTEGER NOT NULL
    );
    ",
    // 2: IMAP subscriptions (names, which need not exist as folders).
    "
    CREATE TABLE subscription (
        name   TEXT PRIMARY KEY,
        change INTEGER NOT NULL
    );
    ",
    // 3: the per-recipient header lines a delivery puts before the shared blob
    // (NULL for every message stored before, and for messages without them).
    "
    ALTER TABLE item ADD COLUMN prefix BLOB;
    ",
    // 4: the dumpster: messages deleted or expunged, kept (row as it was, blob
    // file not queued for removal) until `keep_until_ms`, invisible to every
    // read of `item`. Its columns are the item's (see `apply::ITEM_ROW`) and
    // the deletion's time and limit.
    "
    CREATE TABLE dumpster (
        id            INTEGER PRIMARY KEY,
        type          INTEGER NOT NULL,
        folder_id     INTEGER NOT NULL,
        imap_uid      INTEGER NOT NULL,
        digest        BLOB,
        size          INTEGER NOT NULL,
        received_ms   INTEGER NOT NULL,
        flags         INTEGER NOT NULL,
        tags          TEXT    NOT NULL DEFAULT '',
        subject       TEXT    NOT NULL DEFAULT '',
        sender        TEXT    NOT NULL DEFAULT '',
        recipients    TEXT    NOT NULL DEFAULT '',
        cc            TEXT    NOT NULL DEFAULT '',
        message_id    TEXT    NOT NULL DEFAULT '',
        date_ms       INTEGER NOT NULL DEFAULT 0,
        content       TEXT,
        cal_uid       TEXT,
        sequence      INTEGER NOT NULL DEFAULT 0,
        dtstamp_ms    INTEGER NOT NULL DEFAULT 0,
        volume_id     INTEGER NOT NULL DEFAULT 1,
        mod_content   INTEGER NOT NULL,
        change        INTEGER NOT NULL,
        prefix        BLOB,
        deleted_ms    INTEGER NOT NULL,
        keep_until_ms INTEGER NOT NULL
    );
    CREATE INDEX dumpster_until ON dumpster(keep_until_ms);
    ",
];

/// Prepared statements kept per mailbox connection: more than the apply path and
/// the protocol reads use.
const STATEMENT_CACHE: usize = 96;

/// A mailbox connection's usual `synchronous` level (see the module
/// documentation); replay batches and the close leave it for a while and come
/// back to it.
pub(crate) const SYNCHRONOUS: &str = "NORMAL";

/// The page size of a new mailbox database. A delivery changes about six
/// pages (the item's row, its two index entries, the folder's and the
/// mailbox's counters) and SQLite writes each whole into the write-ahead log:
/// at SQLite's default of 4 KiB that was 21 KB per message, twice the message
/// itself; at 1 KiB it is about 6.5 KB. A mailbox's rows are small, so the
/// smaller pages cost nothing measurable on reads. A database keeps the page
/// size it was created with (in WAL mode SQLite cannot change it): those made
/// before keep 4 KiB, and so does a restored one (a snapshot's pages are copied
/// as they are); nothing depends on the size.
pub const PAGE_SIZE: u32 = 1024;

/// The most a mailbox connection keeps in its page cache, in KiB (SQLite's
/// default is 2,000 KiB). Up to `mailbox_open_handles` (256) connections are
/// open at once, so this bounds the caches together to 128 MiB rather than
/// half a GiB; the pages of a small mailbox fit whole, a large one reads the
/// rest from the system's page cache.
pub const CACHE_KIB: u32 = 512;

/// The schema version this code writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "mailbox database {path} has schema version {found}, newer than this mailvault understands ({known}); upgrade mailvault"
    )]
    TooNew {
        path: String,
        found: u32,
        known: u32,
    },
    #[error("mailbox database {path}: {source}")]
    Sql {
        path: String,
        source: rusqlite::Error,
    },
}

/// A read-only connection to a database file that nothing writes to while it is
/// open: SQLite's `immutable` URI parameter (no locks, no `-wal`/`-shm`). `None`
/// when it cannot be opened (a missing file, say): the caller opens it the normal
/// way and reports any error from there.
pub fn open_immutable(path: &std::path::Path) -> Option<Connection> {
    try_open_immutable(path).ok()
}

/// [`open_immutable`], with the reason it could not be opened.
pub(crate) fn try_open_immutable(path: &std::path::Path) -> rusqlite::Result<Connection> {
    use rusqlite::OpenFlags;
    use std::os::unix::ffi::OsStrExt;
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/._-~".contains(&b) {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(uri, flags)
}

/// Sets the connection up and brings the schema to the current version.
pub fn prepare(conn: &mut Connection, path: &str) -> Result<(), SchemaError> {
    let sql = |source| SchemaError::Sql {
        path: path.to_string(),
        source,
    };
    // Before anything creates the file: on an existing database this is a no-op.
    conn.pragma_update(None, "page_size", PAGE_SIZE)
        .map_err(sql)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sql)?;
    conn.pragma_update(None, "synchronous", SYNCHRONOUS)
        .map_err(sql)?;
    conn.pragma_update(None, "cache_size", -i64::from(CACHE_KIB))
        .map_err(sql)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(sql)?;
    // Every statement of the apply path stays prepared (see `apply::Cached`).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let found: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql)?;
    if found > SCHEMA_VERSION {
        return Err(SchemaError::TooNew {
            path: path.to_string(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction().map_err(sql)?;
        tx.execute_batch(step).map_err(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as u32)
            .map_err(sql)?;
        tx.commit().map_err(sql)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_fresh_and_refuses_newer() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.sqlite");
        let mut c = Connection::open(&p).unwrap();
        prepare(&mut c, "m").unwrap();
        prepare(&mut c, "m").unwrap();
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = prepare(&mut c, "m").unwrap_err();
        assert!(err.to_string().contains("upgrade mailvault"), "{err}");
    }

    /// New databases get the small pages; one made with SQLite's default
    /// keeps its own and still opens and migrates.
    #[test]
    fn new_databases_get_small_pages_and_old_ones_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let page_size = |c: &Connection| -> u32 {
            c.pragma_query_value(None, "page_size", |r| r.get(0))
                .unwrap()
        };
        let mut fresh = Connection::open(dir.path().join("new.sqlite")).unwrap();
        prepare(&mut fresh, "new").unwrap();
        assert_eq!(page_size(&fresh), PAGE_SIZE);
        let old_path = dir.path().join("old.sqlite");
        let old = Connection::open(&old_path).unwrap();
        old.pragma_update(None, "page_size", 4096).unwrap();
        old.execute_batch("CREATE TABLE t (x); PRAGMA journal_mode = WAL;")
            .unwrap();
        drop(old);
        let mut old = Connection::open(&old_path).unwrap();
        prepare(&mut old, "old").unwrap();
        assert_eq!(page_size(&old), 4096);
    }

    /// A database from before trace headers keeps its messages: they get no
    /// prefix (NULL), so they read as they were stored.
    #[test]
    fn messages_from_schema_2_get_no_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let c = Connection::open(dir.path().join("old.sqlite")).unwrap();
        c.execute_batch(MIGRATIONS[0]).unwrap();
        c.execute_batch(MIGRATIONS[1]).unwrap();
        c.pragma_update(None, "user_version", 2).unwrap();
        c.execute(
            "INSERT INTO item (id, type, folder_id, imap_uid, digest, size, received_ms, flags, \
             mod_content, change) VALUES (256, 5, 2, 1, x'00', 10, 0, 0, 1, 1)",
            [],
        )
        .unwrap();
        let mut c = c;
        prepare(&mut c, "old").unwrap();
        let (version, prefix, size): (u32, Option<Vec<u8>>, i64) = c
            .query_row(
                "SELECT (SELECT user_version FROM pragma_user_version), prefix, size FROM item",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((version, prefix, size), (SCHEMA_VERSION, None, 10));
    }
}
