//! mailvault backups: full and incremental sessions into a deduplicated,
//! verifiable target (`zmbackup`, `zmbackupquery`, `zmbackupabort`, `-del`,
//! `verify`).
//!
//! # Target layout (Zimbra-shaped outside)
//!
//! ```text
//! <target>/
//!   accounts.xml                          email → zimbraId → latest full (rebuildable)
//!   backup.lock                           one backup/delete/restore at a time (flock)
//!   sessions/<label>/
//!     session.xml                         label, type, status, times, redo range,
//!                                         accounts + status, errors, file checksums
//!     ldap/ldap.bak                       (older sessions) the whole directory (LDIF)
//!     sys/config.xml                      global and server config (explicit values)
//!     sys/localconfig.conf                the local configuration
//!     accounts/<id[0:3]>/<id[3:6]>/<zimbraId>/
//!       ldap.ldif                         (incremental) the account's directory entry,
//!                                         only if it changed since the target last
//!                                         recorded it
//!       meta.xml, ldap.ldif, db/, blobs.lst   (format 1 full) as in pieces/ below
//!   pieces/<label>/ldap/ldap.bak          the whole directory (LDIF) when session
//!                                         <label> found it changed (named by the
//!                                         sessions after it while it does not change)
//!   pieces/<label>/accounts/<id[0:3]>/<id[3:6]>/<zimbraId>/   (format 2 full <label>)
//!     ldap.ldif                           the account's directory entry
//!     db/mailbox.sqlite                   the mailbox database, consistent snapshot
//!     blobs.lst                           digests the snapshot references, sorted
//!                                         (named by later fulls while unchanged:
//!                                         session.xml `<file from="<label>">`)
//!     redologs/redo-<stamp>-seq<N>.log    (incremental) archived redo logs, as archived
//!   packs/<xx>/<pack id>.zip              blob pool: zip entries named by digest
//!   packs/<xx>/<pack id>.idx              where each blob's data is (see [`pack`])
//!   tmp/<label>/                          a session being written
//!   live/redologs/, live/segments/        the redo log shipped continuously
//!                                         (live DR, [`live`])
//! ```
//!
//! Labels are `full-YYYYMMDD.HHMMSS.mmm` / `incr-...` (UTC start). Every XML file
//! ends with a BLAKE3 trailer ([`xml`]); session.xml lists every other file of the
//! session with its size and BLAKE3; each pack index carries its own checksum and
//! the pack's. Restore needs, per account: the full's account metadata (`<meta>` in
//! session.xml, `meta.xml` in format 1), `db/`, `blobs.lst`
//! and `ldap.ldif`, the pool, and the redo logs from the metadata's redo sequence on
//! (incrementals' `redologs/`, then the server's archive and redo.log).
//!
//! # Choices
//!
//! - **Blob pool.** Content-addressed and shared across accounts and sessions: a
//!   blob already in the target is never written again, whichever account or
//!   session brought it. No hard links, so the target can be copied by any tool or
//!   kept on object storage. `backup_disable_shared_blobs=true`: an account's blobs
//!   are deduplicated only against its own previous full.
//! - **Compression.** `--zipStore` (default, as in the original): stored entries;
//!   `-z`/`--zip`: deflate, which every unzip reads; `--zstd` (mailvault): zstd.
//!   `--noZip` keeps its meaning of "no compression" but still writes packs: loose
//!   blob files would bring back the millions of small files the original's users
//!   suffered from (the CLI says so).
//! - **Online.** No mailbox is locked beyond starting its snapshot's read
//!   transaction; deliveries continue. A [`mv_store::blob::BlobHold`] keeps blobs
//!   deleted meanwhile until they are copied.
//! - **Commit points.** Packs are sealed (fsync, rename) and indexed before any
//!   session referencing them commits; a session appears only when
//!   `sessions/<label>/session.xml` exists (filesystem: `tmp/<label>` renamed after
//!   one `syncfs`). A crash leaves earlier sessions intact; the next operation
//!   removes `tmp/` leftovers and orphan packs.
//! - **`last_backup_at`** is set after the session commits, only for accounts that
//!   completed.
//! - **Asynchronous runs.** [`prepare`] takes the lock and chooses labels (they
//!   show as "in progress" at once); [`Prepared::run`] can then run on another
//!   thread (the server does). A CLI without a server runs in its own process, so it
//!   behaves as `-sync`.
//! - **Targets.** A directory ([`FsTarget`]) or `s3://bucket/prefix`
//!   ([`S3Target`], object_store): nothing relies on rename or conditional PUT.
//! - **Auto-grouped mode** ([`autogroup`]): a full of one group of accounts per run,
//!   carrying the redo logs since the previous run.
//! - **Not yet:** repacking partly-live packs, the search index (derived data;
//!   rebuilt).

pub mod abort;
pub mod accounts_xml;
pub mod autogroup;
pub mod catalog;
pub mod clock;
mod copier;
pub mod error;
mod full;
pub mod identity;
pub mod incr;
mod index_files;
pub mod items;
pub mod label;
pub mod ldap;
pub mod live;
pub mod pack;
pub mod playredo;
pub mod progress;
pub mod query;
pub mod restore;
pub mod retention;
pub mod run;
pub mod session;
pub mod space;
pub mod system;
pub mod target;
pub mod verify;
pub mod xml;

pub use abort::{request_abort, request_restore_abort, restore_abort_requested};
pub use accounts_xml::rebuild_accounts_xml;
pub use catalog::Catalog;
pub use clock::{Clock, FakeClock, SystemClock};
pub use error::{BackupError, Result};
pub use label::{Label, SessionKind};
pub use pack::{Compression, Pool};
pub use playredo::{PlayRedoOptions, PlayRedoReport, playredo};
pub use progress::{JobStatus, NoProgress, Progress};
pub use query::{QueryOptions, QueryResult, query};
pub use restore::{
    AccountRestoreReport, PointMailbox, RestoreOptions, RestoreRun, restore_account,
    restore_account_in,
};
pub use retention::{DeleteOptions, DeleteReport, DeleteSpec, delete, parse_delete_arg};
pub use run::{
    AccountSelection, BackupOptions, BackupReport, Prepared, SessionReport, Source, backup,
    default_target, prepare,
};
pub use session::{Session, SessionStatus};
pub use system::{SystemRestoreReport, restore_system};
pub use target::{FsTarget, S3Settings, S3Target, Target};
pub use verify::{ReadData, VerifyOptions, VerifyReport, verify};

/// `Backup::full(...)` / `Backup::incremental(...)`: the two kinds of run in one call.
pub struct Backup;

impl Backup {
    /// A full backup of the selected accounts.
    pub fn full(
        source: &Source,
        target: std::sync::Arc<dyn Target>,
        mut opts: BackupOptions,
        progress: &dyn Progress,
    ) -> Result<BackupReport> {
        opts.kind = SessionKind::Full;
        backup(source, target, opts, progress)
    }

    /// An incremental backup (plus a full session for accounts that have none).
    pub fn incremental(
        source: &Source,
        target: std::sync::Arc<dyn Target>,
        mut opts: BackupOptions,
        progress: &dyn Progress,
    ) -> Result<BackupReport> {
        opts.kind = SessionKind::Incremental;
        backup(source, target, opts, progress)
    }
}
