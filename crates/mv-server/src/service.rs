//! The service: a store and its directory, and the requests they answer.

//!
//! The requests are answered by concern: provisioning in `accounts.rs`,
//! mailbox contents in `mail.rs`, calendars and contacts in `pim.rs`, backups
//! in `backup.rs` and `restore.rs`, long ones as jobs in `jobs.rs`, streamed
//! bodies in `stream.rs`.

pub use crate::mail::flag_letters;
pub use crate::request::{ReindexAction, Request};
use crate::response::{Pong, Reply, Response};
use mv_directory::Directory;
use mv_home::Home;
use mv_store::tgz;
use mv_store::{Store, StoreOptions};
use mv_types::MailboxId;
use std::sync::Mutex;

/// Errors of the layers below pass through as they are (`transparent`): with
/// their own text as this error's text *and* as its source, `{:#}` printed
/// every such message twice.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Home(#[from] mv_home::HomeError),
    #[error(transparent)]
    Directory(#[from] mv_directory::DirectoryError),
    #[error(transparent)]
    Store(#[from] mv_store::StoreError),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Io(String),
    /// A body over the operation's limit.
    #[error("{0}")]
    TooLarge(String),
}

impl ServiceError {
    /// The HTTP status the admin API answers with.
    pub fn status(&self) -> u16 {
        use mv_directory::DirectoryError as D;
        use mv_store::StoreError as S;
        match self {
            ServiceError::BadRequest(_) => 400,
            ServiceError::NotFound(_) => 404,
            ServiceError::Io(_) => 500,
            ServiceError::TooLarge(_) => 413,
            ServiceError::Directory(D::NoSuchAccount(_) | D::NoSuchDomain(_)) => 404,
            ServiceError::Directory(D::Db(_) | D::Open { .. }) => 500,
            ServiceError::Directory(_) => 400,
            ServiceError::Store(S::NotFound(_) | S::NoMailbox(_)) => 404,
            ServiceError::Store(S::Invalid(_) | S::Exists(_) | S::Pim(_)) => 400,
            ServiceError::Store(S::ReadOnly) => 503,
            ServiceError::Store(_) => 500,
            ServiceError::Home(_) => 500,
        }
    }
}

/// A store with its directory: what a server (or an offline tool holding the home
/// lock) works on.
pub struct Service {
    pub(crate) store: Store,
    pub(crate) indexes: std::sync::Arc<mv_index::Indexes>,
    /// Shared by every request: lookups run in parallel on its read pool,
    /// writes are serialized inside it.
    pub(crate) directory: Directory,
    /// A handle on the same directory for backups, which take it behind a
    /// lock of their own (they serialize among themselves, not with requests).
    pub(crate) backup_directory: Mutex<Directory>,
    pub(crate) server_name: String,
    pub(crate) jobs: crate::jobs::Jobs,
    /// Per-mailbox change notification, fed by the store's apply path.
    pub(crate) changes: std::sync::Arc<crate::changes::ChangeFeed>,
    /// The server's runtime, once `serve` built it: S3 targets opened for the
    /// server's work send their requests on it (no runtime of their own).
    pub(crate) runtime: std::sync::OnceLock<tokio::runtime::Handle>,
}

impl Service {
    /// Opens the store and directory of a home. The caller holds the home lock.
    pub fn open(home: &Home) -> Result<(Service, mv_store::OpenReport), ServiceError> {
        // Implicit init on first use: a home that does not exist yet is created.
        home.init()?;
        let directory = Directory::open_home(home)?;
        let server_name = mv_directory::config::local_server_name();
        directory.ensure_server(&server_name)?;
        let mut options = StoreOptions::from_home(home)?;
        let kb = directory.effective_u64(&server_name, "zimbraRedoLogRolloverFileSizeKB")?;
        if kb > 0 {
            options.redo.rollover_size_bytes = kb * 1024;
        }
        options.redo.delete_on_rollover =
            directory.effective_bool(&server_name, "zimbraRedoLogDeleteOnRollover")?;
        let ms = directory.effective_u64(&server_name, "zimbraRedoLogFsyncIntervalMS")?;
        options.redo.fsync_interval = std::time::Duration::from_millis(ms);
        let (store, report) = Store::open(home, options)?;
        let changes = std::sync::Arc::new(crate::changes::ChangeFeed::default());
        let feed = changes.clone();
        store.on_change(Box::new(move |id| feed.notify(id)))?;
        let dir = directory.clone();
        store.set_dumpster_policy(Box::new(move |id| crate::dumpster::lifetime_ms(&dir, id)));
        Ok((
            Service {
                store,
                indexes: std::sync::Arc::new(mv_index::Indexes::new(home)),
                backup_directory: Mutex::new(directory.clone()),
                directory,
                server_name,
                jobs: Default::default(),
                runtime: std::sync::OnceLock::new(),
                changes,
            },
            report,
        ))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The search indexes (derived data; see `mv-index`).
    pub fn indexes(&self) -> &std::sync::Arc<mv_index::Indexes> {
        &self.indexes
    }

    /// The directory. Takes no process-wide lock: reads run concurrently on
    /// its pool of read connections, writes wait only for other writes.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The directory behind a lock of the backups' own (`mv_backup::Source`
    /// takes a `Mutex`); it does not hold up requests.
    pub fn directory_mutex(&self) -> &Mutex<Directory> {
        &self.backup_directory
    }

    /// The mailboxes' change notification (see [`crate::changes`]).
    pub fn changes(&self) -> &crate::changes::ChangeFeed {
        &self.changes
    }

    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// The mailbox id of an account (by address, alias or id).
    pub fn mailbox_of(&self, key: &str) -> Result<MailboxId, ServiceError> {
        Ok(self.directory().get_account(key)?.mailbox_id)
    }

    /// Writes an account's mailbox to `out` as a tgz archive, streaming (see
    /// [`mv_store::tgz`]); `query` selects the messages.
    pub fn export_tgz(
        &self,
        account: &str,
        query: Option<&str>,
        out: impl std::io::Write,
    ) -> Result<tgz::ExportReport, ServiceError> {
        let mbox = self.mailbox_of(account)?;
        Ok(tgz::export(&self.store, mbox, query, out)?)
    }

    /// Imports a tgz archive into an account's mailbox. The archive is read twice:
    /// checked whole first, so a bad one changes nothing.
    pub fn import_tgz(
        &self,
        account: &str,
        resolve: tgz::Resolve,
        input: impl std::io::Read + std::io::Seek,
    ) -> Result<tgz::ImportReport, ServiceError> {
        let mbox = self.mailbox_of(account)?;
        Ok(tgz::import(&self.store, mbox, resolve, input)?)
    }

    /// Runs a request for a shared service (the server): an asynchronous backup
    /// starts on its own thread and the answer carries its labels at once.
    pub fn execute_shared(
        self: &std::sync::Arc<Self>,
        req: Request,
    ) -> Result<Response, ServiceError> {
        match req {
            Request::Backup(r) if !r.sync => {
                Ok(crate::backup::start_async(self.clone(), &r)?.into())
            }
            Request::ReindexMailbox {
                account,
                action: ReindexAction::Start,
            } => {
                let mbox = self.mailbox_of(&account)?;
                let index = self.indexes.mailbox(mbox);
                // A rebuild already running is not started twice.
                if index.mark_running() {
                    let service = self.clone();
                    std::thread::Builder::new()
                        .name(format!("reindex-{mbox}"))
                        .spawn(move || {
                            if let Err(e) = service.indexes.rebuild(&service.store, mbox) {
                                tracing::error!("reindex of mailbox {mbox} failed: {e}");
                            }
                        })
                        .map_err(|e| ServiceError::Io(format!("cannot start the reindex: {e}")))?;
                }
                Ok(self.indexes.status(&self.store, mbox)?.into())
            }
            other => self.execute(other),
        }
    }

    /// Runs a request and returns its answer; changes leave audit lines.
    pub fn execute(&self, req: Request) -> Result<Response, ServiceError> {
        let audit = crate::audit::begin(&req);
        let result = self.execute_unaudited(req);
        audit.end(&result);
        result
    }

    /// Runs a request and takes its answer as the type `T` the caller expects
    /// (an answer of another type is a server-side error, not a guess).
    pub fn call<T: Reply>(&self, req: Request) -> Result<T, ServiceError> {
        let op = crate::jobs::op_of(&req);
        T::from_response(self.execute(req)?).map_err(|other| {
            ServiceError::Io(format!(
                "{op} answered with {} where {} was expected",
                other.kind(),
                std::any::type_name::<T>()
            ))
        })
    }

    fn execute_unaudited(&self, req: Request) -> Result<Response, ServiceError> {
        Ok(match req {
            Request::ReindexMailbox { account, action } => {
                // Here (a tool holding the home) the rebuild runs to its end.
                let mbox = self.mailbox_of(&account)?;
                if action == ReindexAction::Start {
                    self.indexes
                        .rebuild(&self.store, mbox)
                        .map_err(|e| ServiceError::Io(e.to_string()))?;
                }
                self.indexes.status(&self.store, mbox)?.into()
            }
            Request::Ping => Pong {
                ok: true,
                server: self.server_name.clone(),
            }
            .into(),
            r @ (Request::AddAccountLogger { .. }
            | Request::RemoveAccountLogger { .. }
            | Request::GetAccountLoggers { .. }) => crate::account_log::execute(self, r)?.into(),
            r @ (Request::Backup(_)
            | Request::BackupStatus { .. }
            | Request::BackupAbort { .. }
            | Request::BackupQuery(_)
            | Request::BackupDelete(_)
            | Request::BackupVerify(_)) => crate::backup::execute(self, r)?,
            Request::Restore(r) => self.restore(&r)?.into(),
            Request::BackupSearch(r) => self.backup_search_watched(&r, &|_, _, _| true)?.into(),
            Request::RestoreItems(r) => self.restore_items(&r)?.into(),
            Request::BackupExport(r) => self.backup_export(&r)?.into(),
            r @ (Request::Schedule(_)
            | Request::BackupReports { .. }
            | Request::DiskStatus
            | Request::Check) => crate::ops::execute(self, r)?,
            other => self.execute_accounts(other)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{:#}` (anyhow, the CLI's `error: ...`) prints the source chain: a
    /// wrapped error must not appear as its own source.
    #[test]
    fn an_error_from_below_is_printed_once() {
        let e = ServiceError::from(mv_directory::DirectoryError::AccountExists {
            id: "id-1".into(),
            email: "a@d.test".into(),
        });
        let mut chain = vec![e.to_string()];
        let mut next = std::error::Error::source(&e);
        while let Some(s) = next {
            chain.push(s.to_string());
            next = s.source();
        }
        assert_eq!(chain.len(), 1, "{chain:?}");
        assert!(chain[0].starts_with("an account with zimbraId id-1 already exists"));
    }
}
