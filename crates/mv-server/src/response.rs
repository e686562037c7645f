//! `Response`: what every request answers, one typed value per kind of answer.
//!
//! The server serializes a `Response` as the `result` of its answer
//! (`{"result": ...}`); the enum is untagged, so the wire carries the inner
//! type's own JSON. A client knows which request it sent and reads the answer
//! back as that request's type ([`Reply`]): in-process it takes the value out of
//! the enum, over HTTP it deserializes the same type, never a loose JSON value.
//!
//! The wire's convention is `snake_case` fields. The exception is kept on
//! purpose: [`MailboxInfo`] (`zmprov gmi`) names its fields as Zimbra's
//! attributes are named (`mailboxId`, `quotaUsed`), which scripts read.

use mv_directory::{Account, Attrs, Cos, DistributionList, Domain, Server};
/// `zmprov rim`'s answer, re-exported for clients (they need not depend on the index).
pub use mv_index::{ReindexState, ReindexStatus};
use serde::{Deserialize, Serialize};

/// A request that changed something and has nothing else to say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub ok: bool,
}

impl Ack {
    pub const OK: Ack = Ack { ok: true };
}

/// `ping`: the server's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    pub ok: bool,
    pub server: String,
}

/// The id of an item created or renamed (folder, message, tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemRef {
    pub id: u32,
}

/// How many items a request deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    pub deleted: u64,
}

/// How many items a request moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    pub moved: u64,
}

/// `getMessage`: the item and its raw message, base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageData {
    pub item: mv_store::Item,
    pub data: String,
}

/// `exportCalendar`: the folder as one iCalendar text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarText {
    pub ics: String,
}

/// `exportContacts`: the folder as vCards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactsText {
    pub vcf: String,
}

/// `importContacts`: the ids of the contacts created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactsImported {
    pub created: Vec<u32>,
}

/// `zmprov gmi`: a mailbox's size and quota, named as Zimbra names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailboxInfo {
    pub mailbox_id: u32,
    pub quota_used: u64,
    pub quota: u64,
    pub messages: u64,
    pub last_backup_at: Option<i64>,
}

/// `zmprov gs`: a server's effective configuration (its own attributes over
/// the global ones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerConfig {
    pub name: String,
    pub attrs: Attrs,
}

/// `zmbackup` without `-sync`: the sessions started, answered at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupStarted {
    pub labels: Vec<String>,
    pub target: String,
    #[serde(rename = "async")]
    pub is_async: bool,
}

/// `zmbackupabort -lb LABEL`: the abort was requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortRequested {
    pub ok: bool,
    pub label: String,
}

/// `mailvault backup report`: the newest reports, the email outbox and the
/// report settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reports {
    pub reports: Vec<crate::report::RunReport>,
    pub outbox: crate::outbox::OutboxStatus,
    pub email: crate::report::ReportConfig,
}

/// Defines [`Response`] with one variant per answer type, its `From`
/// conversions and each type's [`Reply`].
macro_rules! responses {
    ($($(#[$doc:meta])* $variant:ident($ty:ty),)*) => {
        /// Every answer the service gives; serialized untagged (the inner
        /// type's JSON is the wire form).
        #[derive(Debug, Clone, Serialize)]
        #[serde(untagged)]
        pub enum Response {
            $($(#[$doc])* $variant($ty),)*
        }

        impl Response {
            /// The variant's name, for messages.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Response::$variant(_) => stringify!($variant),)*
                }
            }
        }

        $(
            impl From<$ty> for Response {
                fn from(v: $ty) -> Response {
                    Response::$variant(v)
                }
            }

            impl Reply for $ty {
                fn from_response(r: Response) -> Result<Self, Box<Response>> {
                    match r {
                        Response::$variant(v) => Ok(v),
                        other => Err(Box::new(other)),
                    }
                }
            }
        )*
    };
}

responses! {
    Ack(Ack),
    Pong(Pong),
    Account(Account),
    Accounts(Vec<Account>),
    Created(Vec<crate::provision::Created>),
    Domain(Domain),
    Domains(Vec<Domain>),
    Cos(Cos),
    CosList(Vec<Cos>),
    /// Global or server attributes.
    Attrs(Attrs),
    Server(Server),
    Servers(Vec<Server>),
    ServerConfig(ServerConfig),
    MailboxInfo(MailboxInfo),
    DistributionList(DistributionList),
    DistributionLists(Vec<DistributionList>),
    /// Search hits.
    Items(Vec<mv_store::Item>),
    Folders(Vec<mv_store::Folder>),
    Tags(Vec<mv_store::Tag>),
    ItemRef(ItemRef),
    Deleted(Deleted),
    Moved(Moved),
    MessageData(MessageData),
    CalendarImport(mv_store::CalendarImport),
    CalendarText(CalendarText),
    ContactsImported(ContactsImported),
    ContactsText(ContactsText),
    BackupStarted(BackupStarted),
    BackupReport(mv_backup::BackupReport),
    BackupJob(mv_backup::progress::JobStatus),
    AbortRequested(AbortRequested),
    Query(mv_backup::QueryResult),
    DeleteReport(mv_backup::DeleteReport),
    VerifyReport(mv_backup::VerifyReport),
    Restore(crate::restore::RestoreReport),
    /// `backup search`: messages found in backups.
    BackupSearch(crate::items::BackupSearchReport),
    /// `zmrestore --items/--folder`: the messages restored.
    ItemRestore(mv_backup::items::ItemRestoreReport),
    /// `recoverDeleted`: the dumpster listed or recovered from.
    Dumpster(crate::dumpster::DumpsterReport),
    /// `backup export`: what was written.
    BackupExport(mv_backup::items::ExportReport),
    Schedule(crate::schedule::ScheduleAnswer),
    Reports(Reports),
    Disk(crate::diskmon::DiskStatus),
    Check(crate::check::CheckReport),
    Reindex(ReindexStatus),
    AccountLoggers(Vec<crate::account_log::AccountLogger>),
    /// What a streamed export wrote (kept as its job's result).
    Export(crate::stream::ExportResult),
    Import(crate::stream::ImportResult),
}

/// A request's answer type: taken out of a [`Response`] in-process, or
/// deserialized from the `result` of the server's answer.
pub trait Reply: Sized + serde::de::DeserializeOwned {
    /// The value, or the response given back when it is another kind.
    fn from_response(r: Response) -> Result<Self, Box<Response>>;
}

/// An answer of the admin API: `{"result": ...}` or `{"error": "..."}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Answer<T> {
    /// (A missing `Option` field reads as `None`; `default` would ask `T: Default`.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl<T> Answer<T> {
    pub fn ok(result: T) -> Answer<T> {
        Answer {
            result: Some(result),
            error: None,
        }
    }
}

impl Answer<()> {
    pub fn error(message: impl Into<String>) -> Answer<()> {
        Answer {
            result: None,
            error: Some(message.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The enum adds nothing on the wire: a client reading the inner type
    /// reads what the server wrote.
    #[test]
    fn the_wire_form_is_the_inner_type() {
        let r = Response::from(ItemRef { id: 7 });
        let text = serde_json::to_string(&Answer::ok(&r)).unwrap();
        assert_eq!(text, r#"{"result":{"id":7}}"#);
        let back: Answer<ItemRef> = serde_json::from_str(&text).unwrap();
        assert_eq!(back.result, Some(ItemRef { id: 7 }));
        let info = MailboxInfo {
            mailbox_id: 3,
            quota_used: 10,
            quota: 0,
            messages: 1,
            last_backup_at: None,
        };
        let v = serde_json::to_value(Response::from(info)).unwrap();
        assert_eq!(v["mailboxId"], 3);
        assert_eq!(v["quotaUsed"], 10);
    }

    #[test]
    fn another_kind_is_given_back() {
        let r = Response::from(Ack::OK);
        let back = ItemRef::from_response(r).unwrap_err();
        assert_eq!(back.kind(), "Ack");
        assert_eq!(Ack::from_response(*back).unwrap(), Ack::OK);
    }
}
