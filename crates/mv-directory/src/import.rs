//! LDIF → directory: whole-directory imports (`zmrestoreldap`, disaster recovery)
//! and single-account restores (`zmrestore -ra`, `-ca -pre PREFIX`).
//!
//! Imports are strict: an entry whose DN does not match its attributes, a value
//! that does not validate, or an unknown kind of entry stops the import with the
//! entry's DN and line, and nothing is written (one transaction).

use crate::account::{self, Account};
use crate::address;
use crate::attrs::{self, Attrs};
use crate::config::{self, Server};
use crate::cos::{self, Cos, DEFAULT_COS};
use crate::dl::{self, DistributionList};
use crate::domain::{self, Domain};
use crate::error::{DirectoryError, Result};
use crate::export::{
    CONFIG_DN, COS_BASE, CREATED, NEXT_MAILBOX_ID, OBJECT_CLASS, SERVERS_BASE, ZIMBRA_DN,
    ZIMBRA_ID, address_dn, cos_dn, domain_dn, parse_gentime, people_dn, server_dn,
};
use crate::ldif::{self, Entry};
use crate::{Directory, new_id};
use mv_types::{MailboxId, UtcMillis};
use rusqlite::{Connection, Transaction};
use std::collections::HashMap;

/// An entry split into the attributes its kind manages (by lowercase name) and
/// the free-form rest.
struct Split<'a> {
    entry: &'a Entry,
    managed: HashMap<String, Vec<&'a str>>,
    rest: Attrs,
}

impl<'a> Split<'a> {
    fn new(
        entry: &'a Entry,
        managed: &[&str],
        normalize: &dyn Fn(&str, &str) -> Result<String>,
    ) -> std::result::Result<Split<'a>, String> {
        let mut s = Split {
            entry,
            managed: HashMap::new(),
            rest: Attrs::new(),
        };
        for (name, value) in &entry.attrs {
            if managed.iter().any(|m| m.eq_ignore_ascii_case(name)) {
                s.managed
                    .entry(name.to_ascii_lowercase())
                    .or_default()
                    .push(value);
                continue;
            }
            if !attrs::is_attr_name(name) {
                return Err(format!("invalid attribute name {name:?}"));
            }
            if value.is_empty() {
                return Err(format!("empty value of {name}"));
            }
            let value = normalize(name, value).map_err(|e| e.to_string())?;
            let key = attrs::find_key(&s.rest, name).unwrap_or_else(|| name.clone());
            let values = s.rest.entry(key).or_default();
            if values.contains(&value) {
                return Err(format!("duplicate value {value:?} of {name}"));
            }
            values.push(value);
        }
        Ok(s)
    }

    fn all(&self, name: &str) -> &[&'a str] {
        self.managed
            .get(&name.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    fn optional(&self, name: &str) -> std::result::Result<Option<&'a str>, String> {
        match self.all(name) {
            [] => Ok(None),
            [v] => Ok(Some(v)),
            many => Err(format!("{name} has {} values, expected one", many.len())),
        }
    }

    fn one(&self, name: &str) -> std::result::Result<&'a str, String> {
        self.optional(name)?
            .ok_or_else(|| format!("{name} is missing"))
    }

    fn id(&self) -> std::result::Result<String, String> {
        let v = self.one(ZIMBRA_ID)?;
        uuid::Uuid::parse_str(v)
            .map(|u| u.to_string())
            .map_err(|_| format!("zimbraId {v:?} is not a UUID"))
    }

    fn created(&self) -> std::result::Result<UtcMillis, String> {
        let v = self.one(CREATED)?;
        parse_gentime(v)
            .ok_or_else(|| format!("{CREATED} {v:?} is not a time like 20240131235959.123Z"))
    }

    fn check_dn(&self, expected: &str) -> std::result::Result<(), String> {
        if self.entry.dn.eq_ignore_ascii_case(expected) {
            Ok(())
        } else {
            Err(format!(
                "the DN does not match the entry's name (expected {expected})"
            ))
        }
    }
}

pub(crate) fn import_err(e: &Entry, reason: impl ToString) -> DirectoryError {
    DirectoryError::Import {
        dn: e.dn.clone(),
        line: e.line,
        reason: reason.to_string(),
    }
}

const ACCOUNT_MANAGED: &[&str] = &[
    OBJECT_CLASS,
    ZIMBRA_ID,
    CREATED,
    "uid",
    "mail",
    "zimbraMailDeliveryAddress",
    "zimbraMailAlias",
    account::STATUS,
    account::COS_ID,
    account::PASSWORD,
    account::MAILBOX_ID,
];

struct ParsedAccount {
    account: Account,
    password_hash: Option<String>,
}

fn parse_account(e: &Entry) -> std::result::Result<ParsedAccount, String> {
    let s = Split::new(e, ACCOUNT_MANAGED, &attrs::normalize_entry_value)?;
    let email = address::normalize_address(s.one("mail")?).map_err(|e| e.to_string())?;
    s.check_dn(&address_dn(&email))?;
    let uid = s.one("uid")?;
    if !uid.eq_ignore_ascii_case(address::split(&email).0) {
        return Err(format!("uid {uid:?} does not match mail {email}"));
    }
    let mut aliases = s
        .all("zimbraMailAlias")
        .iter()
        .map(|a| address::normalize_address(a).map_err(|e| e.to_string()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    aliases.sort();
    aliases.dedup();
    let mailbox_id = s.one(account::MAILBOX_ID)?;
    let mailbox_id = match mailbox_id.parse::<u32>() {
        Ok(n) if n > 0 => MailboxId(n),
        _ => {
            return Err(format!(
                "{} {mailbox_id:?} is not a mailbox id",
                account::MAILBOX_ID
            ));
        }
    };
    let password_hash = s.optional(account::PASSWORD)?.map(str::to_string);
    if let Some(h) = &password_hash {
        account::check_password_hash(h)?;
    }
    Ok(ParsedAccount {
        account: Account {
            id: s.id()?,
            email,
            aliases,
            status: s
                .one(account::STATUS)?
                .parse()
                .map_err(|e: DirectoryError| e.to_string())?,
            cos_id: s.optional(account::COS_ID)?.unwrap_or_default().to_string(),
            mailbox_id,
            created: s.created()?,
            attrs: s.rest,
        },
        password_hash,
    })
}

pub(crate) fn parse_cos(e: &Entry) -> std::result::Result<Cos, String> {
    let s = Split::new(
        e,
        &[OBJECT_CLASS, ZIMBRA_ID, CREATED, "cn"],
        &attrs::normalize_entry_value,
    )?;
    let name = s.one("cn")?;
    cos::check_name(name).map_err(|e| e.to_string())?;
    s.check_dn(&cos_dn(name))?;
    Ok(Cos {
        id: s.id()?,
        name: name.to_string(),
        created: s.created()?,
        attrs: s.rest,
    })
}

pub(crate) fn parse_domain(e: &Entry) -> std::result::Result<Domain, String> {
    let managed = [
        OBJECT_CLASS,
        ZIMBRA_ID,
        CREATED,
        "dc",
        "o",
        "zimbraDomainName",
    ];
    let s = Split::new(e, &managed, &attrs::verbatim)?;
    let name = address::normalize_domain(s.one("zimbraDomainName")?).map_err(|e| e.to_string())?;
    s.check_dn(&domain_dn(&name))?;
    Ok(Domain {
        id: s.id()?,
        name,
        created: s.created()?,
        attrs: s.rest,
    })
}

pub(crate) fn parse_list(e: &Entry) -> std::result::Result<DistributionList, String> {
    let managed = [OBJECT_CLASS, ZIMBRA_ID, CREATED, "uid", "mail", dl::MEMBER];
    let s = Split::new(e, &managed, &attrs::verbatim)?;
    let email = address::normalize_address(s.one("mail")?).map_err(|e| e.to_string())?;
    s.check_dn(&address_dn(&email))?;
    Ok(DistributionList {
        id: s.id()?,
        members: dl::normalize_members(s.all(dl::MEMBER)).map_err(|e| e.to_string())?,
        email,
        created: s.created()?,
        attrs: s.rest,
    })
}

/// Config attributes of an imported global or server entry: known names take
/// their canonical spelling and are validated.
fn config_attrs(rest: Attrs) -> std::result::Result<Attrs, String> {
    let mut out = Attrs::new();
    for (name, values) in rest {
        let name = config::known(&name).map_or(name, |s| s.name.to_string());
        if let Some(spec) = config::known(&name)
            && !spec.multi
            && values.len() > 1
        {
            return Err(format!("{name} takes one value, got {}", values.len()));
        }
        out.insert(name, values);
    }
    Ok(out)
}

pub(crate) fn parse_global(e: &Entry) -> std::result::Result<(Attrs, Option<u32>), String> {
    let s = Split::new(
        e,
        &[OBJECT_CLASS, "cn", NEXT_MAILBOX_ID],
        &config::normalize_imported,
    )?;
    s.check_dn(CONFIG_DN)?;
    let next = s
        .optional(NEXT_MAILBOX_ID)?
        .map(|v| {
            v.parse::<u32>()
                .map_err(|_| format!("{NEXT_MAILBOX_ID} {v:?} is not a number"))
        })
        .transpose()?;
    Ok((config_attrs(s.rest)?, next))
}

pub(crate) fn parse_server(e: &Entry) -> std::result::Result<Server, String> {
    let s = Split::new(
        e,
        &[OBJECT_CLASS, ZIMBRA_ID, "cn"],
        &config::normalize_imported,
    )?;
    let name = config::normalize_server_name(s.one("cn")?).map_err(|e| e.to_string())?;
    s.check_dn(&server_dn(&name))?;
    Ok(Server {
        id: s.id()?,
        name,
        attrs: config_attrs(s.rest)?,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Container,
    Global,
    Cos,
    Server,
    Domain,
    Account,
    List,
}

pub(crate) fn classify(e: &Entry) -> Result<Kind> {
    let has = |oc: &str| e.values(OBJECT_CLASS).any(|v| v.eq_ignore_ascii_case(oc));
    let kind = [
        ("zimbraAccount", Kind::Account),
        ("zimbraDistributionList", Kind::List),
        ("zimbraDomain", Kind::Domain),
        ("zimbraCOS", Kind::Cos),
        ("zimbraGlobalConfig", Kind::Global),
        ("zimbraServer", Kind::Server),
        ("organizationalRole", Kind::Container),
        ("organizationalUnit", Kind::Container),
    ]
    .into_iter()
    .find(|(oc, _)| has(oc))
    .map(|(_, k)| k);
    kind.ok_or_else(|| {
        let ocs: Vec<&str> = e.values(OBJECT_CLASS).collect();
        import_err(
            e,
            format!("unknown kind of entry (objectClass: {})", ocs.join(", ")),
        )
    })
}

/// Refuses an import into a directory that holds anything but a fresh default COS.
fn check_empty(conn: &Connection) -> Result<()> {
    let count = |sql: &str| -> Result<i64> { Ok(conn.query_row(sql, [], |r| r.get(0))?) };
    let mut held = Vec::new();
    for (what, sql) in [
        ("domains", "SELECT count(*) FROM domains"),
        ("accounts", "SELECT count(*) FROM accounts"),
        ("distribution lists", "SELECT count(*) FROM lists"),
        ("servers", "SELECT count(*) FROM servers"),
        (
            "classes of service besides the default",
            "SELECT count(*) - 1 FROM cos",
        ),
        (
            "global config values",
            "SELECT count(*) FROM attrs WHERE owner = 'global'",
        ),
        (
            "default COS attributes",
            "SELECT count(*) FROM attrs WHERE owner IN (SELECT id FROM cos)",
        ),
    ] {
        let n = count(sql)?;
        if n > 0 {
            held.push(format!("{n} {what}"));
        }
    }
    if held.is_empty() {
        Ok(())
    } else {
        Err(DirectoryError::NotEmpty(held.join(", ")))
    }
}

/// What an import created.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImportSummary {
    pub domains: usize,
    pub cos: usize,
    pub servers: usize,
    pub accounts: usize,
    pub lists: usize,
}

fn import_all(tx: &Transaction<'_>, entries: &[Entry]) -> Result<ImportSummary> {
    check_empty(tx)?;
    let kinds = entries
        .iter()
        .map(|e| Ok((classify(e)?, e)))
        .collect::<Result<Vec<_>>>()?;
    let of = |k: Kind| {
        kinds
            .iter()
            .filter(move |(kind, _)| *kind == k)
            .map(|(_, e)| *e)
    };
    let mut summary = ImportSummary::default();

    // The fresh default COS makes way for the one in the file.
    tx.execute("DELETE FROM cos", [])?;
    let mut next_mailbox_id = None;
    for e in of(Kind::Global) {
        if next_mailbox_id.is_some() {
            return Err(import_err(e, "a second global config entry"));
        }
        let (explicit, next) = parse_global(e).map_err(|r| import_err(e, r))?;
        attrs::store(tx, config::GLOBAL, &explicit)?;
        next_mailbox_id = Some(next.unwrap_or(1));
    }
    for e in of(Kind::Cos) {
        let c = parse_cos(e).map_err(|r| import_err(e, r))?;
        cos::insert(tx, &c).map_err(|r| import_err(e, r))?;
        summary.cos += 1;
    }
    if cos::load(tx, DEFAULT_COS)?.is_none() {
        let c = Cos {
            id: new_id(),
            name: DEFAULT_COS.into(),
            created: crate::now(),
            attrs: Attrs::new(),
        };
        cos::insert(tx, &c)?;
    }
    for e in of(Kind::Server) {
        let s = parse_server(e).map_err(|r| import_err(e, r))?;
        if config::load_server(tx, &s.name)?.is_some() {
            return Err(import_err(e, format!("server {} appears twice", s.name)));
        }
        config::insert_server(tx, &s).map_err(|r| import_err(e, r))?;
        summary.servers += 1;
    }
    let mut containers = vec![ZIMBRA_DN.to_string(), COS_BASE.into(), SERVERS_BASE.into()];
    for e in of(Kind::Domain) {
        let d = parse_domain(e).map_err(|r| import_err(e, r))?;
        domain::insert(tx, &d).map_err(|r| import_err(e, r))?;
        containers.push(people_dn(&d.name));
        summary.domains += 1;
    }
    for e in of(Kind::Container) {
        if !containers.iter().any(|c| c.eq_ignore_ascii_case(&e.dn)) {
            return Err(import_err(e, "not a container mailvault knows"));
        }
    }
    for e in of(Kind::Account) {
        let p = parse_account(e).map_err(|r| import_err(e, r))?;
        let mut a = p.account;
        if a.cos_id.is_empty() {
            a.cos_id = cos::default_id(tx)?;
        }
        account::insert(tx, &a, p.password_hash.as_deref()).map_err(|r| import_err(e, r))?;
        summary.accounts += 1;
    }
    for e in of(Kind::List) {
        let l = parse_list(e).map_err(|r| import_err(e, r))?;
        dl::insert(tx, &l).map_err(|r| import_err(e, r))?;
        summary.lists += 1;
    }
    if let Some(next) = next_mailbox_id {
        account::bump_mailbox_counter(tx, MailboxId(next.saturating_sub(1)))?;
    }
    Ok(summary)
}

/// The mailbox id an account entry records (`mailvaultMailboxId`), if valid.
pub fn entry_mailbox_id(entry: &Entry) -> Option<MailboxId> {
    entry
        .values(account::MAILBOX_ID)
        .next()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|id| *id != 0)
        .map(MailboxId)
}

/// Which mailbox id a restored account gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MailboxIdChoice {
    /// The one in the entry (the original mailbox is recreated).
    #[default]
    Original,
    /// A fresh one from the counter.
    New,
    /// This one.
    Given(MailboxId),
}

/// How `import_account_entry` restores one account entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountImport {
    /// Restore under this address instead of the entry's (`zmrestore -ca -pre`).
    pub email: Option<String>,
    /// Give the account a new zimbraId (a new account beside the original).
    pub new_id: bool,
    pub mailbox_id: MailboxIdChoice,
    /// Leave out the entry's aliases (they still belong to the original account).
    pub drop_aliases: bool,
    /// Replace an existing account with the same zimbraId (`zmrestore -ra`); its
    /// list memberships stay.
    pub replace: bool,
}

impl AccountImport {
    /// The original account, ids and all (`-ra` of a deleted account).
    pub fn original() -> AccountImport {
        AccountImport::default()
    }

    /// A new account beside the original (`-ca -pre PREFIX`): new address, new
    /// zimbraId, new mailbox id, no aliases.
    pub fn new_account(email: &str) -> AccountImport {
        AccountImport {
            email: Some(email.to_string()),
            new_id: true,
            mailbox_id: MailboxIdChoice::New,
            drop_aliases: true,
            replace: false,
        }
    }
}

/// The result of `import_account_entry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedAccount {
    pub account: Account,
    /// The account it replaced (`replace`), whose mailbox the caller handles.
    pub replaced: Option<Account>,
}

impl Directory {
    /// Loads a whole-directory LDIF document into this directory, which must be
    /// empty (fresh). All or nothing.
    pub fn import_ldif(&self, text: &str) -> Result<ImportSummary> {
        let entries = ldif::parse(text.as_bytes())?;
        self.import_entries(&entries)
    }

    /// Like `import_ldif`, from parsed entries.
    pub fn import_entries(&self, entries: &[Entry]) -> Result<ImportSummary> {
        let mut w = self.writer();
        let tx = w.transaction()?;
        let summary = import_all(&tx, entries)?;
        tx.commit()?;
        Ok(summary)
    }

    /// Recreates an account from its entry (restore). Its domain must exist; a COS
    /// that no longer exists is replaced by the default COS.
    pub fn import_account_entry(
        &self,
        entry: &Entry,
        options: &AccountImport,
    ) -> Result<ImportedAccount> {
        if classify(entry)? != Kind::Account {
            return Err(import_err(
                entry,
                "not an account entry (objectClass zimbraAccount)",
            ));
        }
        let parsed = parse_account(entry).map_err(|r| import_err(entry, r))?;
        let mut a = parsed.account;
        if options.new_id {
            a.id = new_id();
        }
        if let Some(email) = &options.email {
            a.email = address::normalize_address(email)?;
        }
        if options.drop_aliases {
            a.aliases.clear();
        }
        let mut w = self.writer();
        let tx = w.transaction()?;
        let replaced = match account::load(&tx, &a.id)? {
            Some(existing) if options.replace => {
                Some(account::delete_keeping_memberships(&tx, &existing.id)?)
            }
            Some(existing) => {
                return Err(DirectoryError::AccountExists {
                    id: existing.id,
                    email: existing.email,
                });
            }
            None => None,
        };
        a.mailbox_id = match options.mailbox_id {
            MailboxIdChoice::Original => a.mailbox_id,
            MailboxIdChoice::Given(id) => id,
            MailboxIdChoice::New => account::allocate_mailbox_id(&tx)?,
        };
        if a.cos_id.is_empty() || cos::load(&tx, &a.cos_id)?.is_none() {
            a.cos_id = cos::default_id(&tx)?;
        }
        account::insert(&tx, &a, parsed.password_hash.as_deref())?;
        tx.commit()?;
        Ok(ImportedAccount {
            account: a,
            replaced,
        })
    }

    /// Parses a single-account LDIF document and imports its one entry.
    pub fn import_account_ldif(
        &self,
        text: &str,
        options: &AccountImport,
    ) -> Result<ImportedAccount> {
        let entries = ldif::parse(text.as_bytes())?;
        match entries.as_slice() {
            [entry] => self.import_account_entry(entry, options),
            _ => Err(DirectoryError::Import {
                dn: String::new(),
                line: entries.get(1).map_or(1, |e| e.line),
                reason: format!(
                    "expected exactly one account entry, found {}",
                    entries.len()
                ),
            }),
        }
    }
}
