//! The directory database's schema and its migrations.
//!
//! The schema version is SQLite's `PRAGMA user_version`. `MIGRATIONS[i]` takes a
//! database from version `i` to `i + 1`; open applies the missing ones in order, each
//! in its own transaction, so a crash leaves the database at some whole version. A
//! database newer than the code is refused: an old binary must not write into a
//! schema it does not understand (e.g. after a restore made by a newer version).
//!
//! Never edit a released migration: append a new one.

use crate::error::{DirectoryError, Result};
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;

pub(crate) const MIGRATIONS: &[&str] = &[V1, V2];

/// Version 1. Every local address (primary, alias, list) lives in one table, so an
/// address can name one thing only. Attributes of every kind of entry share one
/// table keyed by the entry's id ("global" for the global config).
const V1: &str = r#"
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
INSERT INTO counters (name, value) VALUES ('next_mailbox_id', 1);

CREATE TABLE domains (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL
) STRICT;

CREATE TABLE cos (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created INTEGER NOT NULL
) STRICT;

CREATE TABLE accounts (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    status        TEXT NOT NULL CHECK (status IN ('active', 'locked', 'maintenance', 'closed')),
    cos_id        TEXT NOT NULL REFERENCES cos(id),
    password_hash TEXT,
    mailbox_id    INTEGER NOT NULL UNIQUE CHECK (mailbox_id > 0),
    created       INTEGER NOT NULL
) STRICT;

CREATE TABLE lists (
    id      TEXT PRIMARY KEY,
    email   TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL
) STRICT;

CREATE TABLE list_members (
    list_id TEXT NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    PRIMARY KEY (list_id, address)
) STRICT;
CREATE INDEX list_members_by_address ON list_members(address);

CREATE TABLE addresses (
    address    TEXT PRIMARY KEY,
    domain     TEXT NOT NULL REFERENCES domains(name),
    kind       TEXT NOT NULL CHECK (kind IN ('account', 'alias', 'list')),
    account_id TEXT REFERENCES accounts(id) ON DELETE CASCADE,
    list_id    TEXT REFERENCES lists(id) ON DELETE CASCADE,
    CHECK ((account_id IS NULL) <> (list_id IS NULL))
) STRICT;
CREATE INDEX addresses_by_account ON addresses(account_id);
CREATE INDEX addresses_by_list ON addresses(list_id);
CREATE INDEX addresses_by_domain ON addresses(domain);

CREATE TABLE servers (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
) STRICT;

CREATE TABLE attrs (
    owner TEXT NOT NULL,
    name  TEXT NOT NULL,
    idx   INTEGER NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (owner, name, idx)
) STRICT;
"#;

/// Version 2. When each mailbox's last completed backup ended (see
/// `backup_status.rs`); before, a column of each mailbox's own database.
const V2: &str = r#"
CREATE TABLE backup_status (
    mailbox_id     INTEGER PRIMARY KEY CHECK (mailbox_id > 0),
    last_backup_at INTEGER NOT NULL
) STRICT;
"#;

pub(crate) fn version(conn: &Connection) -> Result<u32> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

/// Brings the database to the newest of `migrations`, or refuses a newer one.
pub(crate) fn migrate(conn: &mut Connection, path: &Path, migrations: &[&str]) -> Result<()> {
    let supported = migrations.len() as u32;
    loop {
        // IMMEDIATE: two processes opening a new database at once must not both
        // run the same migration; the second waits, then sees the new version.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found = version(&tx)?;
        if found > supported {
            return Err(DirectoryError::SchemaTooNew {
                path: path.to_path_buf(),
                found,
                supported,
            });
        }
        if found == supported {
            return Ok(());
        }
        tx.execute_batch(migrations[found as usize])?;
        tx.pragma_update(None, "user_version", found + 1)?;
        tx.commit()?;
    }
}
