//! The directory's connections: one writer behind a lock, and a bounded pool of
//! read connections. SQLite in WAL mode lets readers run beside the writer (each
//! sees the last commit before its read began), so a lookup — LMTP recipient
//! resolution, an IMAP login, a backup listing accounts — never waits for another
//! lookup, nor for a write to finish; writes are serialized on the writer.

use crate::error::Result;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Read connections kept at most (each holds a few descriptors and its page
/// cache): more concurrent readers wait for one to come back.
pub(crate) const MAX_READERS: usize = 8;

/// How long a connection waits for a lock another process holds (a CLI tool
/// beside the server): long enough for a batch's transaction to commit.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct Conns {
    writer: Mutex<Connection>,
    /// `None` for an in-memory database, whose only connection is the writer.
    readers: Option<Readers>,
}

pub(crate) struct Readers {
    path: PathBuf,
    state: Mutex<PoolState>,
    returned: Condvar,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Connection>,
    /// Connections opened and not closed (idle or lent).
    open: usize,
}

/// A connection lent for one read; goes back to the pool when dropped.
pub(crate) enum ReadConn<'a> {
    Pooled {
        conn: Option<Connection>,
        readers: &'a Readers,
    },
    Writer(MutexGuard<'a, Connection>),
}

impl std::ops::Deref for ReadConn<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            ReadConn::Pooled { conn, .. } => conn.as_ref().expect("lent until dropped"),
            ReadConn::Writer(g) => g,
        }
    }
}

impl Drop for ReadConn<'_> {
    fn drop(&mut self) {
        if let ReadConn::Pooled { conn, readers } = self
            && let Some(conn) = conn.take()
        {
            let mut st = lock(&readers.state);
            st.idle.push(conn);
            drop(st);
            readers.returned.notify_one();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves nothing half-done here: every write
    // is a SQLite transaction, rolled back when its guard is dropped.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Conns {
    /// `path` is `None` for an in-memory database.
    pub(crate) fn new(writer: Connection, path: Option<&Path>) -> Conns {
        Conns {
            writer: Mutex::new(writer),
            readers: path.map(|p| Readers {
                path: p.to_path_buf(),
                state: Mutex::new(PoolState::default()),
                returned: Condvar::new(),
            }),
        }
    }

    pub(crate) fn writer(&self) -> MutexGuard<'_, Connection> {
        lock(&self.writer)
    }

    /// A connection to read with: an idle pooled one, a new one while fewer than
    /// [`MAX_READERS`] are open, else the next one given back.
    pub(crate) fn reader(&self) -> Result<ReadConn<'_>> {
        let Some(readers) = &self.readers else {
            return Ok(ReadConn::Writer(self.writer()));
        };
        let mut st = lock(&readers.state);
        loop {
            if let Some(conn) = st.idle.pop() {
                return Ok(ReadConn::Pooled {
                    conn: Some(conn),
                    readers,
                });
            }
            if st.open < MAX_READERS {
                st.open += 1;
                drop(st);
                return match open_reader(&readers.path) {
                    Ok(conn) => Ok(ReadConn::Pooled {
                        conn: Some(conn),
                        readers,
                    }),
                    Err(e) => {
                        lock(&readers.state).open -= 1;
                        readers.returned.notify_one();
                        Err(e)
                    }
                };
            }
            st = readers.returned.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Read connections open now (idle or lent).
    pub(crate) fn readers_open(&self) -> usize {
        self.readers.as_ref().map_or(0, |r| lock(&r.state).open)
    }
}

fn open_reader(path: &Path) -> Result<Connection> {
    // Read-write flags, made query-only: a read-only open cannot create the
    // `-shm` file WAL readers need when the writer has just closed it.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "query_only", "ON")?;
    Ok(conn)
}
