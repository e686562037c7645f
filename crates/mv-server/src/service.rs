//! The service: a store and its directory, and the requests they answer.

use crate::tgz;
use base64::Engine;
use mv_directory::{Directory, Modification};
use mv_home::Home;
use mv_redo::ops::{flags, folders};
use mv_store::{DeliverOptions, FlagChange, Store, StoreOptions};
use mv_types::{ItemId, MailboxId, UtcMillis};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
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
            ServiceError::Directory(D::NoSuchAccount(_) | D::NoSuchDomain(_)) => 404,
            ServiceError::Directory(D::Db(_) | D::Open { .. }) => 500,
            ServiceError::Directory(_) => 400,
            ServiceError::Store(S::NotFound(_) | S::NoMailbox(_)) => 404,
            ServiceError::Store(S::Invalid(_) | S::Exists(_) | S::Pim(_)) => 400,
            ServiceError::Store(_) => 500,
            ServiceError::Home(_) => 500,
        }
    }
}

/// Every operation the CLI and the admin API offer. Attribute lists are Zimbra's
/// `name value name value ...` (with `+name`/`-name` to add/remove values).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    // --- provisioning (zmprov) ---
    CreateAccount {
        email: String,
        password: Option<String>,
        #[serde(default)]
        attrs: Vec<String>,
    },
    /// Several `ca` at once (a batch `zmprov`): one answer per entry.
    CreateAccounts {
        accounts: Vec<crate::provision::AccountSpec>,
    },
    GetAccount {
        key: String,
    },
    GetAllAccounts {
        domain: Option<String>,
    },
    ModifyAccount {
        key: String,
        attrs: Vec<String>,
    },
    RenameAccount {
        key: String,
        new_email: String,
    },
    DeleteAccount {
        key: String,
    },
    SetPassword {
        key: String,
        password: String,
    },
    AddAccountAlias {
        key: String,
        alias: String,
    },
    RemoveAccountAlias {
        key: String,
        alias: String,
    },
    CreateDomain {
        name: String,
        #[serde(default)]
        attrs: Vec<String>,
    },
    GetDomain {
        name: String,
    },
    GetAllDomains,
    ModifyDomain {
        name: String,
        attrs: Vec<String>,
    },
    DeleteDomain {
        name: String,
    },
    CreateCos {
        name: String,
        #[serde(default)]
        attrs: Vec<String>,
    },
    CopyCos {
        source: String,
        name: String,
    },
    GetCos {
        name: String,
    },
    GetAllCos,
    ModifyCos {
        name: String,
        attrs: Vec<String>,
    },
    DeleteCos {
        name: String,
    },
    SetAccountCos {
        key: String,
        cos: String,
    },
    GetMailboxInfo {
        key: String,
    },
    GetAllConfig,
    ModifyConfig {
        attrs: Vec<String>,
    },
    GetServer {
        name: Option<String>,
    },
    GetAllServers,
    ModifyServer {
        name: Option<String>,
        attrs: Vec<String>,
    },
    CreateDistributionList {
        email: String,
        #[serde(default)]
        attrs: Vec<String>,
    },
    GetDistributionList {
        email: String,
    },
    GetAllDistributionLists {
        domain: Option<String>,
    },
    AddDistributionListMembers {
        email: String,
        members: Vec<String>,
    },
    RemoveDistributionListMembers {
        email: String,
        members: Vec<String>,
    },
    DeleteDistributionList {
        email: String,
    },
    // --- mailbox (zmmailbox) ---
    Search {
        account: String,
        query: String,
        #[serde(default)]
        limit: Option<usize>,
    },
    GetAllFolders {
        account: String,
    },
    CreateFolder {
        account: String,
        path: String,
        #[serde(default)]
        view: Option<String>,
    },
    RenameFolder {
        account: String,
        path: String,
        new_path: String,
    },
    DeleteFolder {
        account: String,
        path: String,
    },
    EmptyFolder {
        account: String,
        path: String,
    },
    /// `data` is the raw message, base64.
    AddMessage {
        account: String,
        folder: String,
        data: String,
        #[serde(default)]
        flags: String,
        #[serde(default)]
        tags: Vec<String>,
        #[serde(default)]
        received_ms: Option<i64>,
    },
    GetMessage {
        account: String,
        id: u32,
    },
    DeleteMessages {
        account: String,
        ids: Vec<u32>,
    },
    MoveMessages {
        account: String,
        ids: Vec<u32>,
        folder: String,
    },
    FlagMessages {
        account: String,
        ids: Vec<u32>,
        flags: String,
        add: bool,
    },
    CreateTag {
        account: String,
        name: String,
        #[serde(default)]
        color: u32,
    },
    GetAllTags {
        account: String,
    },
    ImportCalendar {
        account: String,
        folder: String,
        ics: String,
    },
    ExportCalendar {
        account: String,
        folder: String,
    },
    ImportContacts {
        account: String,
        folder: String,
        vcf: String,
    },
    ExportContacts {
        account: String,
        folder: String,
    },
    /// `zmmailbox getRestURL "//?fmt=tgz[&query=...]"`: the whole mailbox as a
    /// gzip'd tar (see [`crate::tgz`]), answered as `{"data": BASE64, ...report}`.
    /// Local callers stream with [`Service::export_tgz`] instead.
    ExportTgz {
        account: String,
        #[serde(default)]
        query: Option<String>,
    },
    /// `zmmailbox postRestURL "//?fmt=tgz&resolve=..."`: `data` is the archive,
    /// base64; `resolve` is skip (default), modify, replace or reset. Local callers
    /// stream with [`Service::import_tgz`] instead.
    ImportTgz {
        account: String,
        data: String,
        #[serde(default)]
        resolve: Option<String>,
    },
    // --- backup (zmbackup, zmbackupquery, zmbackupabort; see crate::backup) ---
    /// `zmbackup -f | -i`: answers `{"labels": [...]}` at once unless `sync`.
    Backup(crate::backup::BackupRequest),
    /// How a backup started by this server is doing (or how it ended).
    BackupStatus {
        label: String,
    },
    /// `zmbackupabort -lb LABEL`
    BackupAbort {
        label: String,
        #[serde(default)]
        target: Option<String>,
    },
    /// `zmbackupquery`
    BackupQuery(crate::backup::QueryRequest),
    /// `zmbackup -del ARG`
    BackupDelete(crate::backup::DeleteRequest),
    /// `mailvault backup verify`
    BackupVerify(crate::backup::VerifyRequest),
    /// `zmrestore`: runs synchronously (in the server, on a blocking task, so the
    /// other accounts keep being served) and answers with the report.
    Restore(crate::restore::RestoreRequest),
    // --- schedule, reports, disk, health (crate::ops) ---
    /// `zmschedulebackup`
    Schedule(crate::schedule::ScheduleRequest),
    /// `mailvault backup report`: the newest reports and the email outbox.
    BackupReports {
        #[serde(default)]
        limit: Option<usize>,
    },
    /// `mailvault disk` (zmdisklog): usage, thresholds, trend.
    DiskStatus,
    /// `mailvault check`
    Check,
    /// `zmprov rim USER start|status` (reindexMailbox). `start` rebuilds the
    /// account's search index from the store (in the background when a server
    /// runs); `status` reports progress.
    ReindexMailbox {
        account: String,
        action: ReindexAction,
    },
    /// `zmprov aal ACCOUNT CATEGORY LEVEL`: an account logger (server memory only).
    AddAccountLogger {
        account: String,
        category: String,
        level: String,
    },
    /// `zmprov ral [ACCOUNT [CATEGORY]]`: removes account loggers.
    RemoveAccountLogger {
        account: Option<String>,
        category: Option<String>,
    },
    /// `zmprov gal ACCOUNT` / `zmprov gaal`: the account loggers set.
    GetAccountLoggers {
        account: Option<String>,
    },
    // --- health ---
    Ping,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReindexAction {
    Start,
    Status,
}

/// A store with its directory: what a server (or an offline tool holding the home
/// lock) works on.
pub struct Service {
    store: Store,
    indexes: std::sync::Arc<mv_index::Indexes>,
    /// Shared by every request: lookups run in parallel on its read pool,
    /// writes are serialized inside it.
    directory: Directory,
    /// A handle on the same directory for backups, which take it behind a
    /// lock of their own (they serialize among themselves, not with requests).
    backup_directory: Mutex<Directory>,
    server_name: String,
}

/// Zimbra's flag letters: u (unread), f (flagged), r (replied), d (draft), x (deleted).
fn parse_flag_letters(s: &str) -> Result<(u32, bool), ServiceError> {
    let mut bits = 0;
    let mut unread = false;
    for c in s.chars() {
        match c {
            'u' => unread = true,
            'f' => bits |= flags::FLAGGED,
            'r' => bits |= flags::ANSWERED,
            'd' => bits |= flags::DRAFT,
            'x' => bits |= flags::DELETED,
            's' => bits |= flags::SEEN,
            other => {
                return Err(ServiceError::BadRequest(format!(
                    "unknown flag {other:?}: use u (unread), f (flagged), r (replied), d (draft), x (deleted)"
                )));
            }
        }
    }
    Ok((bits, unread))
}

pub fn flag_letters(bits: u32) -> String {
    let mut s = String::new();
    if bits & flags::SEEN == 0 {
        s.push('u');
    }
    if bits & flags::FLAGGED != 0 {
        s.push('f');
    }
    if bits & flags::ANSWERED != 0 {
        s.push('r');
    }
    if bits & flags::DRAFT != 0 {
        s.push('d');
    }
    if bits & flags::DELETED != 0 {
        s.push('x');
    }
    s
}

fn mods(attrs: &[String]) -> Result<Vec<Modification>, ServiceError> {
    Ok(Modification::parse_zmprov(attrs)?)
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
        Ok((
            Service {
                store,
                indexes: std::sync::Arc::new(mv_index::Indexes::new(home)),
                backup_directory: Mutex::new(directory.clone()),
                directory,
                server_name,
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

    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// Creates an account and its mailbox; if the mailbox cannot be created the
    /// account is removed again, so the two never disagree.
    pub fn create_account(
        &self,
        email: &str,
        password: Option<&str>,
        attrs: &[String],
    ) -> Result<mv_directory::Account, ServiceError> {
        let m = mods(attrs)?;
        let account = self.directory().create_account(email, password, &m)?;
        if let Err(e) = self
            .store
            .create_mailbox(account.mailbox_id, &account.id, &account.email)
        {
            let _ = self.directory().delete_account(&account.id);
            return Err(e.into());
        }
        Ok(account)
    }

    /// The mailbox id of an account (by address, alias or id).
    pub fn mailbox_of(&self, key: &str) -> Result<MailboxId, ServiceError> {
        Ok(self.directory().get_account(key)?.mailbox_id)
    }

    fn folder_id(&self, mbox: MailboxId, path: &str) -> Result<u32, ServiceError> {
        if let Ok(id) = path.parse::<u32>() {
            return Ok(id);
        }
        self.store
            .mailbox(mbox)
            .folder_by_path(path)?
            .map(|f| f.id)
            .ok_or_else(|| ServiceError::NotFound(format!("no such folder: {path}")))
    }

    fn tag_ids(&self, mbox: MailboxId, names: &[String]) -> Result<Vec<u32>, ServiceError> {
        let tags = self.store.mailbox(mbox).tags()?;
        names
            .iter()
            .map(|n| {
                tags.iter()
                    .find(|t| t.name.eq_ignore_ascii_case(n) || t.id.to_string() == *n)
                    .map(|t| t.id)
                    .ok_or_else(|| ServiceError::NotFound(format!("no such tag: {n}")))
            })
            .collect()
    }

    /// Writes an account's mailbox to `out` as a tgz archive, streaming (see
    /// [`crate::tgz`]); `query` selects the messages.
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
    ) -> Result<Value, ServiceError> {
        match req {
            Request::Backup(r) if !r.sync => crate::backup::start_async(self.clone(), &r),
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
                serde_json::to_value(self.indexes.status(&self.store, mbox)?)
                    .map_err(|e| ServiceError::Io(e.to_string()))
            }
            other => self.execute(other),
        }
    }

    /// Runs a request and returns its JSON result; changes leave audit lines.
    pub fn execute(&self, req: Request) -> Result<Value, ServiceError> {
        let audit = crate::audit::begin(&req);
        let result = self.execute_unaudited(req);
        audit.end(&result);
        result
    }

    fn execute_unaudited(&self, req: Request) -> Result<Value, ServiceError> {
        let to = |v: &dyn erased::Ser| v.to_value();
        Ok(match req {
            Request::ReindexMailbox { account, action } => {
                // Here (a tool holding the home) the rebuild runs to its end.
                let mbox = self.mailbox_of(&account)?;
                if action == ReindexAction::Start {
                    self.indexes
                        .rebuild(&self.store, mbox)
                        .map_err(|e| ServiceError::Io(e.to_string()))?;
                }
                to(&self.indexes.status(&self.store, mbox)?)
            }
            Request::Ping => json!({"ok": true, "server": self.server_name}),
            r @ (Request::AddAccountLogger { .. }
            | Request::RemoveAccountLogger { .. }
            | Request::GetAccountLoggers { .. }) => crate::account_log::execute(self, r)?,
            r @ (Request::Backup(_)
            | Request::BackupStatus { .. }
            | Request::BackupAbort { .. }
            | Request::BackupQuery(_)
            | Request::BackupDelete(_)
            | Request::BackupVerify(_)) => crate::backup::execute(self, r)?,
            Request::Restore(r) => to(&self.restore(&r)?),
            r @ (Request::Schedule(_)
            | Request::BackupReports { .. }
            | Request::DiskStatus
            | Request::Check) => crate::ops::execute(self, r)?,
            Request::CreateAccount {
                email,
                password,
                attrs,
            } => to(&self.create_account(&email, password.as_deref(), &attrs)?),
            Request::CreateAccounts { accounts } => to(&self.create_accounts(&accounts)?),
            Request::GetAccount { key } => to(&self.directory().get_account(&key)?),
            Request::GetAllAccounts { domain } => {
                to(&self.directory().list_accounts(domain.as_deref())?)
            }
            Request::ModifyAccount { key, attrs } => {
                to(&self.directory().modify_account(&key, &mods(&attrs)?)?)
            }
            Request::RenameAccount { key, new_email } => {
                let account = self.directory().rename_account(&key, &new_email)?;
                self.store
                    .rename_mailbox(account.mailbox_id, &account.email)?;
                to(&account)
            }
            Request::DeleteAccount { key } => {
                let account = self.directory().delete_account(&key)?;
                self.store.delete_mailbox(account.mailbox_id, &account.id)?;
                to(&account)
            }
            Request::SetPassword { key, password } => {
                self.directory().set_password(&key, &password)?;
                json!({"ok": true})
            }
            Request::AddAccountAlias { key, alias } => {
                to(&self.directory().add_account_alias(&key, &alias)?)
            }
            Request::RemoveAccountAlias { key, alias } => {
                to(&self.directory().remove_account_alias(&key, &alias)?)
            }
            Request::CreateDomain { name, attrs } => {
                to(&self.directory().create_domain(&name, &mods(&attrs)?)?)
            }
            Request::GetDomain { name } => to(&self.directory().get_domain(&name)?),
            Request::GetAllDomains => to(&self.directory().list_domains()?),
            Request::ModifyDomain { name, attrs } => {
                to(&self.directory().modify_domain(&name, &mods(&attrs)?)?)
            }
            Request::DeleteDomain { name } => to(&self.directory().delete_domain(&name, false)?),
            Request::CreateCos { name, attrs } => {
                to(&self.directory().create_cos(&name, &mods(&attrs)?)?)
            }
            Request::CopyCos { source, name } => to(&self.directory().copy_cos(&source, &name)?),
            Request::GetCos { name } => to(&self.directory().get_cos(&name)?),
            Request::GetAllCos => to(&self.directory().list_cos()?),
            Request::ModifyCos { name, attrs } => {
                to(&self.directory().modify_cos(&name, &mods(&attrs)?)?)
            }
            Request::DeleteCos { name } => {
                self.directory().delete_cos(&name, false)?;
                json!({"ok": true})
            }
            Request::SetAccountCos { key, cos } => {
                to(&self.directory().set_account_cos(&key, &cos)?)
            }
            Request::GetMailboxInfo { key } => {
                let (account, quota, last_backup_at) = {
                    let d = self.directory();
                    let a = d.get_account(&key)?;
                    let q = d.effective_quota(&a)?;
                    let b = d.last_backup_at(a.mailbox_id)?;
                    (a, q, b)
                };
                let info = self.store.mailbox(account.mailbox_id).info()?;
                json!({
                    "mailboxId": account.mailbox_id.0,
                    "quotaUsed": info.as_ref().map(|i| i.size_used).unwrap_or(0),
                    "quota": quota,
                    "messages": info.as_ref().map(|i| i.message_count).unwrap_or(0),
                    "lastBackupAt": last_backup_at,
                })
            }
            Request::GetAllConfig => to(&self.directory().get_global()?),
            Request::ModifyConfig { attrs } => {
                to(&self.directory().modify_global(&mods(&attrs)?)?)
            }
            Request::GetServer { name } => {
                let name = name.unwrap_or_else(|| self.server_name.clone());
                let d = self.directory();
                let server = d.get_server(&name)?;
                let effective = d.server_config(&name)?;
                json!({"name": server.name, "attrs": effective})
            }
            Request::GetAllServers => to(&self.directory().list_servers()?),
            Request::ModifyServer { name, attrs } => {
                let name = name.unwrap_or_else(|| self.server_name.clone());
                to(&self.directory().modify_server(&name, &mods(&attrs)?)?)
            }
            Request::CreateDistributionList { email, attrs } => {
                to(&self.directory().create_dl(&email, &mods(&attrs)?)?)
            }
            Request::GetDistributionList { email } => to(&self.directory().get_dl(&email)?),
            Request::GetAllDistributionLists { domain } => {
                to(&self.directory().list_dls(domain.as_deref())?)
            }
            Request::AddDistributionListMembers { email, members } => {
                to(&self.directory().add_dl_members(&email, &members)?)
            }
            Request::RemoveDistributionListMembers { email, members } => {
                to(&self.directory().remove_dl_members(&email, &members)?)
            }
            Request::DeleteDistributionList { email } => to(&self.directory().delete_dl(&email)?),
            Request::Search {
                account,
                query,
                limit,
            } => {
                let mbox = self.mailbox_of(&account)?;
                let mut items = self.indexes.search(&self.store, mbox, &query)?;
                items.truncate(limit.unwrap_or(usize::MAX));
                to(&items)
            }
            Request::GetAllFolders { account } => {
                let mbox = self.mailbox_of(&account)?;
                to(&self.store.mailbox(mbox).folders()?)
            }
            Request::CreateFolder {
                account,
                path,
                view,
            } => {
                let mbox = self.mailbox_of(&account)?;
                let id = self.store.create_folder_path(
                    mbox,
                    &path,
                    view.as_deref().unwrap_or("message"),
                )?;
                json!({"id": id})
            }
            Request::RenameFolder {
                account,
                path,
                new_path,
            } => {
                let mbox = self.mailbox_of(&account)?;
                let id = self.folder_id(mbox, &path)?;
                let (parent_path, name) = match new_path.trim_end_matches('/').rsplit_once('/') {
                    Some((p, n)) => (
                        if p.is_empty() {
                            "/".to_string()
                        } else {
                            p.to_string()
                        },
                        n.to_string(),
                    ),
                    None => ("/".to_string(), new_path.clone()),
                };
                let parent = if parent_path == "/" {
                    folders::ROOT
                } else {
                    self.folder_id(mbox, &parent_path)?
                };
                self.store.rename_folder(mbox, id, &name, parent)?;
                json!({"id": id})
            }
            Request::DeleteFolder { account, path } => {
                let mbox = self.mailbox_of(&account)?;
                let id = self.folder_id(mbox, &path)?;
                self.store.delete_folder(mbox, id)?;
                json!({"ok": true})
            }
            Request::EmptyFolder { account, path } => {
                let mbox = self.mailbox_of(&account)?;
                let id = self.folder_id(mbox, &path)?;
                json!({"deleted": self.store.empty_folder(mbox, id)?})
            }
            Request::AddMessage {
                account,
                folder,
                data,
                flags: letters,
                tags,
                received_ms,
            } => {
                let mbox = self.mailbox_of(&account)?;
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(data.as_bytes())
                    .map_err(|e| {
                        ServiceError::BadRequest(format!("message data is not base64: {e}"))
                    })?;
                let (mut bits, unread) = parse_flag_letters(&letters)?;
                if !unread {
                    bits |= flags::SEEN;
                }
                let options = DeliverOptions {
                    folder_id: self.folder_id(mbox, &folder)?,
                    flags: bits,
                    tags: self.tag_ids(mbox, &tags)?,
                    received: received_ms.map(UtcMillis),
                };
                let id = self.store.add_message(mbox, &raw, &options)?;
                json!({"id": id.0})
            }
            Request::GetMessage { account, id } => {
                let mbox = self.mailbox_of(&account)?;
                let item = self
                    .store
                    .mailbox(mbox)
                    .item(ItemId(id))?
                    .ok_or_else(|| ServiceError::NotFound(format!("no such message: {id}")))?;
                let raw = self.store.read_blob(mbox, &item)?;
                json!({"item": item, "data": base64::engine::general_purpose::STANDARD.encode(raw)})
            }
            Request::DeleteMessages { account, ids } => {
                let mbox = self.mailbox_of(&account)?;
                let ids: Vec<ItemId> = ids.into_iter().map(ItemId).collect();
                self.store.delete_items(mbox, &ids)?;
                json!({"deleted": ids.len()})
            }
            Request::MoveMessages {
                account,
                ids,
                folder,
            } => {
                let mbox = self.mailbox_of(&account)?;
                let to_folder = self.folder_id(mbox, &folder)?;
                let ids: Vec<ItemId> = ids.into_iter().map(ItemId).collect();
                self.store.move_items(mbox, &ids, to_folder)?;
                json!({"moved": ids.len()})
            }
            Request::FlagMessages {
                account,
                ids,
                flags: letters,
                add,
            } => {
                let mbox = self.mailbox_of(&account)?;
                let (bits, unread) = parse_flag_letters(&letters)?;
                let ids: Vec<ItemId> = ids.into_iter().map(ItemId).collect();
                // "unread" is the absence of \Seen.
                let (set, clear) = match (add, unread) {
                    (true, true) => (bits, flags::SEEN),
                    (true, false) => (bits, 0),
                    (false, true) => (flags::SEEN, bits),
                    (false, false) => (0, bits),
                };
                if set != 0 {
                    self.store.set_flags(mbox, &ids, FlagChange::Add(set))?;
                }
                if clear != 0 {
                    self.store
                        .set_flags(mbox, &ids, FlagChange::Remove(clear))?;
                }
                json!({"ok": true})
            }
            Request::CreateTag {
                account,
                name,
                color,
            } => {
                let mbox = self.mailbox_of(&account)?;
                json!({"id": self.store.create_tag(mbox, &name, color)?})
            }
            Request::GetAllTags { account } => {
                let mbox = self.mailbox_of(&account)?;
                to(&self.store.mailbox(mbox).tags()?)
            }
            Request::ImportCalendar {
                account,
                folder,
                ics,
            } => {
                let mbox = self.mailbox_of(&account)?;
                let f = self.folder_id(mbox, &folder)?;
                to(&self.store.import_calendar(mbox, f, &ics)?)
            }
            Request::ExportCalendar { account, folder } => {
                let mbox = self.mailbox_of(&account)?;
                let f = self.folder_id(mbox, &folder)?;
                let items = self
                    .store
                    .mailbox(mbox)
                    .items(Some(f), Some(mv_store::ItemKind::Appointment))?;
                json!({"ics": mv_store::pim::merge_calendars(items.iter().filter_map(|i| i.content.as_deref()))})
            }
            Request::ImportContacts {
                account,
                folder,
                vcf,
            } => {
                let mbox = self.mailbox_of(&account)?;
                let f = self.folder_id(mbox, &folder)?;
                let cards = mv_store::pim::split_vcards(&vcf);
                if cards.is_empty() {
                    return Err(ServiceError::BadRequest(
                        "no BEGIN:VCARD ... END:VCARD found in the input".into(),
                    ));
                }
                let mut ids = Vec::new();
                for card in cards {
                    ids.push(self.store.put_contact(mbox, f, &card, None)?);
                }
                json!({"created": ids})
            }
            Request::ExportTgz { account, query } => {
                let mut data = Vec::new();
                let report = self.export_tgz(&account, query.as_deref(), &mut data)?;
                let mut v = to(&report);
                v["data"] = json!(base64::engine::general_purpose::STANDARD.encode(data));
                v
            }
            Request::ImportTgz {
                account,
                data,
                resolve,
            } => {
                let resolve = match resolve.as_deref() {
                    None | Some("") => tgz::Resolve::default(),
                    Some(r) => r.parse().map_err(ServiceError::BadRequest)?,
                };
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(data.as_bytes())
                    .map_err(|e| {
                        ServiceError::BadRequest(format!("archive data is not base64: {e}"))
                    })?;
                to(&self.import_tgz(&account, resolve, std::io::Cursor::new(raw))?)
            }
            Request::ExportContacts { account, folder } => {
                let mbox = self.mailbox_of(&account)?;
                let f = self.folder_id(mbox, &folder)?;
                let items = self
                    .store
                    .mailbox(mbox)
                    .items(Some(f), Some(mv_store::ItemKind::Contact))?;
                let vcf: String = items.iter().filter_map(|i| i.content.clone()).collect();
                json!({"vcf": vcf})
            }
        })
    }
}

impl From<tgz::TgzError> for ServiceError {
    fn from(e: tgz::TgzError) -> Self {
        match e {
            tgz::TgzError::Invalid(_) => ServiceError::BadRequest(e.to_string()),
            tgz::TgzError::Store(e) => ServiceError::Store(e),
            tgz::TgzError::Io { .. } => ServiceError::Io(e.to_string()),
        }
    }
}

/// Object-safe serialization to JSON values (so `execute` can convert results of
/// many types with one helper).
mod erased {
    pub trait Ser {
        fn to_value(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Ser for T {
        fn to_value(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
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
