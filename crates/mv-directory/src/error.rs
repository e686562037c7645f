//! The one error type of the directory. Every message says what was wrong and, where
//! there is one, what to do about it (usually the `zmprov` command that fixes it).

use crate::ldif::LdifError;
use std::path::PathBuf;

pub type Result<T, E = DirectoryError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error(
        "cannot open the directory database {path}: {source}; check that the home exists and is writable (mailvault init creates it)"
    )]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the directory database {path} has schema version {found}, but this mailvault knows versions up to {supported}; run a newer mailvault, or restore the directory from a backup made by this version"
    )]
    SchemaTooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("directory database error: {0}")]
    Db(#[from] rusqlite::Error),

    #[error("invalid domain name {name:?}: {reason}")]
    InvalidDomainName { name: String, reason: &'static str },
    #[error("no such domain: {0} (create the domain first: zmprov cd {0})")]
    NoSuchDomain(String),
    #[error("domain {0} already exists")]
    DomainExists(String),
    #[error(
        "domain {name} still holds {count} address(es) (accounts, aliases or lists); delete them first, or force the deletion"
    )]
    DomainNotEmpty { name: String, count: u64 },

    #[error("invalid address {address:?}: {reason}")]
    InvalidAddress {
        address: String,
        reason: &'static str,
    },
    #[error("address {address} is already used by {owner}; choose another address")]
    AddressTaken { address: String, owner: String },

    #[error("no such account: {0} (zmprov gaa lists the accounts)")]
    NoSuchAccount(String),
    #[error("invalid account status {0:?}: expected one of active, locked, maintenance, closed")]
    InvalidStatus(String),
    #[error(
        "{alias} is not an alias of {account} (zmprov ga {account} zimbraMailAlias lists them)"
    )]
    NoSuchAlias { account: String, alias: String },
    #[error(
        "an account with zimbraId {id} already exists ({email}); restore into a new account (-ca -pre PREFIX) or replace it (-ra)"
    )]
    AccountExists { id: String, email: String },
    #[error("password hashing failed: {0}")]
    Password(String),

    #[error("no such class of service: {0} (zmprov gac lists them)")]
    NoSuchCos(String),
    #[error("class of service {0} already exists")]
    CosExists(String),
    #[error(
        "invalid class of service name {0:?}: use letters, digits, '.', '_' or '-' (at most 64, starting with a letter or digit)"
    )]
    InvalidCosName(String),
    #[error(
        "class of service {name} is still assigned to {count} account(s); move them first (zmprov sac ACCOUNT OTHERCOS), or force the deletion to move them to the default class of service"
    )]
    CosInUse { name: String, count: u64 },
    #[error("the default class of service cannot be deleted: accounts fall back to it")]
    DefaultCos,

    #[error("no such distribution list: {0} (zmprov gadl lists them)")]
    NoSuchList(String),
    #[error("{member} is not a member of {list}")]
    NotAMember { list: String, member: String },

    #[error("no such server: {0} (zmprov gas lists the servers)")]
    NoSuchServer(String),
    #[error("invalid server name {0:?}: use a host name (lowercase letters, digits, '-' and dots)")]
    InvalidServerName(String),

    #[error("invalid attribute name {0:?}: use letters, digits and '-', starting with a letter")]
    InvalidAttributeName(String),
    #[error("invalid value {value:?} for {name}: {reason}")]
    InvalidAttributeValue {
        name: String,
        value: String,
        reason: String,
    },
    #[error("{name} takes one value, got {count}")]
    SingleValued { name: String, count: usize },
    #[error("attribute {name} cannot be changed this way; {hint}")]
    ReadOnlyAttribute { name: String, hint: &'static str },
    #[error(
        "unknown configuration attribute {0}; check the spelling (zmprov gacf lists the attributes)"
    )]
    UnknownConfigAttribute(String),
    #[error("invalid zmprov attribute list: {0}")]
    InvalidModificationArgs(String),

    #[error(
        "mailbox id {id} is already used by {email}; choose another id or restore into a new mailbox id"
    )]
    MailboxIdTaken { id: u32, email: String },
    #[error("mailbox id {0} is invalid: mailbox ids start at 1")]
    InvalidMailboxId(u32),
    #[error("no mailbox ids left: the counter reached {0}")]
    MailboxIdsExhausted(u32),

    #[error("{0}")]
    Ldif(#[from] LdifError),
    #[error("cannot import the LDIF entry {dn} (line {line}): {reason}")]
    Import {
        dn: String,
        line: usize,
        reason: String,
    },
    #[error(
        "the directory is not empty ({0}); import a full LDIF only into a fresh directory database"
    )]
    NotEmpty(String),
}
