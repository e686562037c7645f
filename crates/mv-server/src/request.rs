//! `Request`: every operation the CLI and the admin API offer, one serde enum
//! tagged by `op` (snake_case on the wire).

use serde::{Deserialize, Serialize};

/// Every operation the CLI and the admin API offer. Attribute lists are Zimbra's
/// `name value name value ...` (with `+name`/`-name` to add/remove values).
#[derive(Debug, Clone, Serialize, Deserialize, strum::IntoStaticStr, strum::VariantNames)]
#[serde(tag = "op", rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
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
    /// `zmmailbox recoverDeleted [QUERY]` / `--list`: the dumpster.
    RecoverDeleted {
        account: String,
        #[serde(default)]
        query: Option<String>,
        #[serde(default)]
        list: bool,
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
    /// `mailvault backup search`: messages matching a query in the backups.
    BackupSearch(crate::items::BackupSearchRequest),
    /// `zmrestore --items/--folder`: some messages back into the live account.
    RestoreItems(crate::items::ItemRestoreRequest),
    /// `mailvault backup export`: messages from a backup to a tgz, mbox or Maildir.
    BackupExport(crate::items::BackupExportRequest),
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

impl Request {
    /// The operation's name on the wire (its `op`), without serializing the
    /// request (which may carry a message).
    pub fn op(&self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReindexAction {
    Start,
    Status,
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::VariantNames;

    /// Each operation's name is the one serde reads: a request of that name
    /// is refused for its missing fields at most, never as an unknown op.
    #[test]
    fn op_names_are_the_wire_names() {
        for name in Request::VARIANTS {
            let e = serde_json::from_str::<Request>(&format!(r#"{{"op":"{name}"}}"#));
            if let Err(e) = e {
                assert!(!e.to_string().contains("unknown variant"), "{name}: {e}");
            }
        }
        let req = Request::GetAccount {
            key: "a@d.test".into(),
        };
        assert_eq!(req.op(), "get_account");
        let wire = serde_json::to_string(&Request::GetAllCos).unwrap();
        assert_eq!(wire, r#"{"op":"get_all_cos"}"#);
        assert_eq!(Request::GetAllCos.op(), "get_all_cos");
    }
}
