//! The mailvault directory: what Zimbra keeps in LDAP — domains, classes of service,
//! accounts (with their numeric mailbox ids), distribution lists, global and server
//! configuration — kept in one SQLite database (`<home>/db/directory.sqlite`), and
//! its LDIF form, which backups store (`ldap/ldap.bak`, per-account entries).
//!
//! The API is synchronous and follows `zmprov`: each method names the command it
//! implements. Addresses are case-insensitive and stored lowercase. Every write is
//! one SQLite transaction (WAL, `synchronous=FULL`), so a crash never leaves half an
//! account behind.

pub mod account;
pub mod address;
pub mod attrs;
mod backup_status;
pub mod config;
pub mod cos;
pub mod dl;
pub mod domain;
pub mod error;
mod export;
mod import;
pub mod ldif;
mod lookup;
mod mirror;
mod pool;
pub mod provision;
mod schema;

pub use account::{Account, AccountStatus};
pub use attrs::{Attrs, Modification};
pub use config::{Server, local_server_name};
pub use cos::{Cos, DEFAULT_COS};
pub use dl::DistributionList;
pub use domain::Domain;
pub use error::{DirectoryError, Result};
pub use import::{
    AccountImport, ImportSummary, ImportedAccount, MailboxIdChoice, entry_mailbox_id,
};
pub use ldif::{Entry, LdifError};
pub use mirror::Mirrored;
pub use provision::NewAccount;

use mv_home::Home;
use rusqlite::{Connection, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, MutexGuard};

/// An open directory database: a handle, cheap to clone and shared between
/// threads (every clone uses the same writer and read pool, see `pool.rs`).
#[derive(Clone)]
pub struct Directory {
    conns: Arc<pool::Conns>,
    path: PathBuf,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("path", &self.path)
            .finish()
    }
}

impl Directory {
    /// Opens (creating if needed) the directory database at `path`, normally
    /// `Home::directory_db_path()`, and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Directory> {
        let existed = path.exists();
        let open_err = |source| DirectoryError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        let dir = Self::init(conn, path).map_err(|e| match e {
            DirectoryError::Db(source) => open_err(source),
            other => other,
        })?;
        if !existed && let Some(parent) = path.parent() {
            // The database file is new: make its directory entry durable too.
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            let _ = mv_home::fsync_dir(parent);
        }
        Ok(dir)
    }

    /// Opens the directory of a home.
    pub fn open_home(home: &Home) -> Result<Directory> {
        Self::open(&home.directory_db_path())
    }

    /// A directory that lives in memory only (tests, dry runs).
    pub fn open_in_memory() -> Result<Directory> {
        Self::init(Connection::open_in_memory()?, Path::new(":memory:"))
    }

    fn init(mut conn: Connection, path: &Path) -> Result<Directory> {
        // Another process (the server, a CLI tool) may hold a write transaction.
        conn.busy_timeout(pool::BUSY_TIMEOUT)?;
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Writers take the lock up front: a deferred transaction that upgrades to a
        // write lock can fail with SQLITE_BUSY regardless of the busy timeout.
        conn.set_transaction_behavior(TransactionBehavior::Immediate);
        schema::migrate(&mut conn, path, schema::MIGRATIONS)?;
        let on_disk = (path != Path::new(":memory:")).then_some(path);
        let dir = Directory {
            conns: Arc::new(pool::Conns::new(conn, on_disk)),
            path: path.to_path_buf(),
        };
        dir.ensure_default_cos()?;
        Ok(dir)
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs several reads as one consistent snapshot (a deferred read
    /// transaction on a pooled connection), so that a concurrent writer cannot
    /// show half of its change. `f` must not call back into the directory: it
    /// would need a second connection while holding the first.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.conns.reader()?;
        let tx = rusqlite::Transaction::new_unchecked(&conn, TransactionBehavior::Deferred)?;
        let out = f(&tx)?;
        tx.finish()?;
        Ok(out)
    }

    /// The one connection that writes; held for the length of a write
    /// transaction, never while hashing a password.
    fn writer(&self) -> MutexGuard<'_, Connection> {
        self.conns.writer()
    }

    /// Read connections open now (at most 8; for tests and metrics).
    pub fn read_connections(&self) -> usize {
        self.conns.readers_open()
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<u32> {
        self.read(schema::version)
    }
}

/// A fresh zimbraId.
fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn now() -> mv_types::UtcMillis {
    mv_types::UtcMillis::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_sets_pragmas_and_version() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("directory.sqlite");
        let dir = Directory::open(&path).unwrap();
        let mode: String = dir
            .writer()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = dir
            .writer()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "FULL");
        let fk: i64 = dir
            .writer()
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        assert_eq!(
            dir.schema_version().unwrap(),
            schema::MIGRATIONS.len() as u32
        );
        drop(dir);
        // Reopening is a no-op migration and keeps the default COS.
        let dir = Directory::open(&path).unwrap();
        assert_eq!(dir.list_cos().unwrap().len(), 1);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("directory.sqlite");
        drop(Directory::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let e = Directory::open(&path).unwrap_err();
        assert!(
            matches!(e, DirectoryError::SchemaTooNew { found: 99, supported, .. } if supported == schema::MIGRATIONS.len() as u32),
            "{e}"
        );
        assert!(e.to_string().contains("newer mailvault"), "{e}");
    }

    #[test]
    fn migrations_apply_in_order_and_only_once() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("m.sqlite");
        let mut conn = Connection::open(&path).unwrap();
        let v2 = "CREATE TABLE extra (x INTEGER); INSERT INTO extra VALUES (1);";
        schema::migrate(&mut conn, &path, &[schema::MIGRATIONS[0]]).unwrap();
        assert_eq!(schema::version(&conn).unwrap(), 1);
        schema::migrate(&mut conn, &path, &[schema::MIGRATIONS[0], v2]).unwrap();
        schema::migrate(&mut conn, &path, &[schema::MIGRATIONS[0], v2]).unwrap();
        assert_eq!(schema::version(&conn).unwrap(), 2);
        let n: i64 = conn
            .query_row("SELECT count(*) FROM extra", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "migration 2 ran once");
        // The code of version 1 refuses the migrated database.
        let e = schema::migrate(&mut conn, &path, &[schema::MIGRATIONS[0]]).unwrap_err();
        assert!(matches!(
            e,
            DirectoryError::SchemaTooNew {
                found: 2,
                supported: 1,
                ..
            }
        ));
    }

    #[test]
    fn readers_do_not_wait_for_a_writer_and_the_pool_is_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let d = Directory::open(&tmp.path().join("directory.sqlite")).unwrap();
        d.create_domain("before.test", &[]).unwrap();
        // A write transaction held open (a batch in the middle of its inserts).
        let mut w = d.writer();
        let tx = w.transaction().unwrap();
        tx.execute(
            "INSERT INTO domains (id, name, created) VALUES ('x', 'during.test', 0)",
            [],
        )
        .unwrap();
        let reader = d.clone();
        let (send, recv) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let names: Vec<String> = reader
                .list_domains()
                .unwrap()
                .into_iter()
                .map(|d| d.name)
                .collect();
            send.send(names).unwrap();
        });
        let names = recv
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("a read waited for the writer");
        assert_eq!(names, ["before.test"], "the uncommitted domain is not seen");
        tx.commit().unwrap();
        drop(w);
        assert_eq!(d.list_domains().unwrap().len(), 2);

        // Many readers at once share at most MAX_READERS connections.
        std::thread::scope(|s| {
            for _ in 0..(pool::MAX_READERS * 3) {
                s.spawn(|| {
                    for _ in 0..20 {
                        assert_eq!(d.list_domains().unwrap().len(), 2);
                    }
                });
            }
        });
        let open = d.read_connections();
        assert!(
            (1..=pool::MAX_READERS).contains(&open),
            "{open} read connections"
        );
    }

    #[test]
    fn open_reports_a_missing_home() {
        let e = Directory::open(Path::new("/nonexistent/dir/directory.sqlite")).unwrap_err();
        assert!(matches!(e, DirectoryError::Open { .. }), "{e}");
        assert!(e.to_string().contains("mailvault init"), "{e}");
    }
}
