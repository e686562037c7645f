//! The mailvault mail store: mailboxes (one SQLite database each), blobs on
//! volumes, and the one apply path shared by live writes and redo replay.
//!
//! Every mutation is planned under the mailbox's write lock, logged in the redo log,
//! made durable, and applied by [`apply::apply`]; replay applies the same records
//! through the same function.

pub mod apply;
pub mod blob;
mod created;
mod handles;
mod kind;
pub mod mailbox;
pub mod mime;
mod pending;
pub mod pim;
mod prefix;
mod repair;
pub mod replay;
pub mod schema;
pub mod search;
pub mod snapshot;
pub mod snapshot_file;
mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tgz;
mod write;

#[cfg(test)]
mod sync_marks;

pub use blob::{BlobError, BlobStore, SyncInFlight, Volume};
pub use created::CREATED_FILE;
pub use handles::{DEFAULT_OPEN_MAILBOXES, MailboxPin};
pub use kind::ItemKind;
pub use mailbox::{Changes, DumpsterItem, Folder, Item, Mailbox, MailboxInfo, Tag, Tombstone};
pub use pending::{PENDING_FILE, Pending};
pub use prefix::MAX_PREFIX;
pub use replay::Replayer;
pub use snapshot_file::{BlobRef, SnapshotFile, SnapshotProblem, SnapshotSummary};
pub use store::{ChangeHook, GC_CLEAN, OpenReport, ReplayReport, Store, StoreOptions};
pub use write::{
    CalendarImport, DeliverOptions, DumpsterPolicy, FlagChange, NewMessage, Recovered,
};

use mv_types::{Digest, MailboxId};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Home(#[from] mv_home::HomeError),
    #[error("{0}")]
    Redo(#[from] mv_redo::RedoError),
    #[error("{0}")]
    Blob(#[from] BlobError),
    #[error("{0}")]
    Schema(#[from] schema::SchemaError),
    #[error("{0}")]
    Apply(#[from] apply::ApplyError),
    #[error("{0}")]
    Pim(#[from] pim::PimError),
    #[error("database {path}: {source}")]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("mailbox {mailbox}: database error: {source}")]
    SqlMailbox {
        mailbox: MailboxId,
        source: rusqlite::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mailbox {0} does not exist (or was deleted)")]
    NoMailbox(MailboxId),
    /// A live write on a warm standby ([`Store::set_read_only`]).
    #[error(
        "read-only: this server is a standby following its primary (mailvault promote makes it writable)"
    )]
    ReadOnly,
    #[error("mailbox {0} is not locked by this write (internal error)")]
    NotLocked(MailboxId),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Exists(String),
    #[error("{0}")]
    Invalid(String),
    #[error("item {item} of mailbox {mailbox} has no content")]
    NoContent { mailbox: MailboxId, item: u32 },
    #[error("redo record {lsn} carries content whose bytes do not match its digest {digest}")]
    CorruptContent { lsn: u64, digest: Digest },
    #[error(
        "redo records of mailbox {mailbox} skip from change {expected} to {found} (record {lsn}): a redo log is missing; \
         restore from a backup covering the gap, or use --ignoreRedoErrors"
    )]
    ChangeGap {
        mailbox: MailboxId,
        expected: u64,
        found: u64,
        lsn: u64,
    },
    #[error(
        "message {item} of mailbox {mailbox} lost its blob {path} and the redo log no longer holds its content"
    )]
    MissingBlob {
        mailbox: MailboxId,
        item: u32,
        path: PathBuf,
    },
}

impl StoreError {
    pub(crate) fn sql(path: &Path, source: rusqlite::Error) -> StoreError {
        StoreError::Sql {
            path: path.to_path_buf(),
            source,
        }
    }
    pub(crate) fn sql_msg(mailbox: MailboxId, source: rusqlite::Error) -> StoreError {
        StoreError::SqlMailbox { mailbox, source }
    }
    pub(crate) fn io(path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
