//! Accounts (`zmprov ca/ga/gaa/ma/ra/da/aaa/raa/sac/sp`), their mailbox ids and
//! recipient resolution.
//!
//! Mailbox ids come from a counter kept in the database that only moves forward:
//! a deleted account's id is never handed out again, because its mailbox may still
//! exist in backups and redo logs that name it by number.

use crate::address::{self, Owner};
use crate::attrs::{self, Attrs, MANAGED_HINT, Modification};
use crate::error::{DirectoryError, Result};
use crate::provision::Prepared;
use crate::{Directory, cos};
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use mv_types::{MailboxId, UtcMillis};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

/// `zimbraAccountStatus`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    #[default]
    Active,
    Locked,
    Maintenance,
    Closed,
}

impl AccountStatus {
    pub const ALL: [AccountStatus; 4] = [
        AccountStatus::Active,
        AccountStatus::Locked,
        AccountStatus::Maintenance,
        AccountStatus::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Locked => "locked",
            AccountStatus::Maintenance => "maintenance",
            AccountStatus::Closed => "closed",
        }
    }
}

impl fmt::Display for AccountStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AccountStatus {
    type Err = DirectoryError;

    /// Case-insensitive.
    fn from_str(s: &str) -> Result<Self> {
        AccountStatus::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| DirectoryError::InvalidStatus(s.to_string()))
    }
}

/// An account. The password hash is deliberately not part of it, so that an
/// account can be returned as JSON without leaking it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Account {
    /// zimbraId (UUID v4); never changes, even on rename.
    pub id: String,
    /// Primary address, lowercase.
    pub email: String,
    /// Other addresses that deliver here, sorted.
    pub aliases: Vec<String>,
    pub status: AccountStatus,
    /// zimbraCOSId.
    pub cos_id: String,
    /// The account's mailbox (metadata database, blobs, redo ops).
    pub mailbox_id: MailboxId,
    pub created: UtcMillis,
    /// Every other attribute (displayName, zimbraMailQuota, ...).
    pub attrs: Attrs,
}

impl Account {
    pub fn local_part(&self) -> &str {
        address::split(&self.email).0
    }

    pub fn domain(&self) -> &str {
        address::split(&self.email).1
    }

    /// The account's own values of `name` (not inherited from its COS).
    pub fn attr(&self, name: &str) -> &[String] {
        attrs::get(&self.attrs, name)
    }
}

pub(crate) const STATUS: &str = "zimbraAccountStatus";
pub(crate) const PASSWORD: &str = "userPassword";
pub(crate) const COS_ID: &str = "zimbraCOSId";
pub(crate) const MAILBOX_ID: &str = "mailvaultMailboxId";
pub(crate) const QUOTA: &str = "zimbraMailQuota";

/// Attributes an account's LDIF entry derives from the model; `ma` cannot set them.
pub(crate) const RESERVED: &[(&str, &str)] = &[
    ("objectClass", MANAGED_HINT),
    ("zimbraId", MANAGED_HINT),
    ("zimbraCreateTimestamp", MANAGED_HINT),
    ("uid", "rename the account instead (zmprov ra)"),
    ("mail", "rename the account instead (zmprov ra)"),
    (
        "zimbraMailDeliveryAddress",
        "rename the account instead (zmprov ra)",
    ),
    (
        "zimbraMailAlias",
        "add or remove aliases with zmprov aaa / raa",
    ),
    (
        MAILBOX_ID,
        "mailbox ids are assigned at creation and changed only by restores",
    ),
];

// ------------------------------------------------------------ storage helpers

/// The id of the account `key` names: its address, an alias, or its zimbraId.
pub(crate) fn find_id(conn: &Connection, key: &str) -> Result<Option<String>> {
    let key = key.trim().to_ascii_lowercase();
    match address::owner_of(conn, &key)? {
        Some(Owner::Account(id) | Owner::Alias(id)) => return Ok(Some(id)),
        Some(Owner::List(_)) => return Ok(None),
        None => {}
    }
    Ok(conn
        .prepare_cached("SELECT id FROM accounts WHERE id = ?1")?
        .query_row([&key], |r| r.get(0))
        .optional()?)
}

pub(crate) fn load(conn: &Connection, id: &str) -> Result<Option<Account>> {
    let row = conn
        .prepare_cached(
            "SELECT email, status, cos_id, mailbox_id, created FROM accounts WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, u32>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .optional()?;
    let Some((email, status, cos_id, mailbox_id, created)) = row else {
        return Ok(None);
    };
    let aliases = conn
        .prepare_cached(
            "SELECT address FROM addresses WHERE account_id = ?1 AND kind = 'alias' ORDER BY address",
        )?
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(Account {
        id: id.to_string(),
        email,
        aliases,
        status: status.parse()?,
        cos_id,
        mailbox_id: MailboxId(mailbox_id),
        created: UtcMillis(created),
        attrs: attrs::load(conn, id)?,
    }))
}

pub(crate) fn require(conn: &Connection, key: &str) -> Result<Account> {
    let id = find_id(conn, key)?.ok_or_else(|| DirectoryError::NoSuchAccount(key.to_string()))?;
    load(conn, &id)?.ok_or_else(|| DirectoryError::NoSuchAccount(key.to_string()))
}

pub(crate) fn password_hash(conn: &Connection, id: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT password_hash FROM accounts WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .flatten())
}

fn check_mailbox_id_free(conn: &Connection, id: MailboxId, except: Option<&str>) -> Result<()> {
    if id.0 == 0 {
        return Err(DirectoryError::InvalidMailboxId(0));
    }
    let holder: Option<(String, String)> = conn
        .prepare_cached("SELECT id, email FROM accounts WHERE mailbox_id = ?1")?
        .query_row([id.0], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match holder {
        Some((holder, email)) if Some(holder.as_str()) != except => {
            Err(DirectoryError::MailboxIdTaken { id: id.0, email })
        }
        _ => Ok(()),
    }
}

/// Inserts a complete account (addresses, attributes) and moves the mailbox id
/// counter past its mailbox id.
pub(crate) fn insert(conn: &Connection, a: &Account, password_hash: Option<&str>) -> Result<()> {
    address::check_free(conn, &a.email)?;
    for alias in &a.aliases {
        address::check_free(conn, alias)?;
    }
    check_mailbox_id_free(conn, a.mailbox_id, None)?;
    cos::require(conn, &a.cos_id)?;
    conn.execute(
        "INSERT INTO accounts (id, email, status, cos_id, password_hash, mailbox_id, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            a.id,
            a.email,
            a.status.as_str(),
            a.cos_id,
            password_hash,
            a.mailbox_id.0,
            a.created.0
        ],
    )?;
    address::claim(conn, &a.email, &Owner::Account(a.id.clone()))?;
    for alias in &a.aliases {
        address::claim(conn, alias, &Owner::Alias(a.id.clone()))?;
    }
    attrs::store(conn, &a.id, &a.attrs)?;
    bump_mailbox_counter(conn, a.mailbox_id)
}

/// Writes the row fields and attributes of an existing account.
fn update(conn: &Connection, a: &Account, password_hash: Option<&str>) -> Result<()> {
    conn.execute(
        "UPDATE accounts SET status = ?2, cos_id = ?3, password_hash = ?4 WHERE id = ?1",
        params![a.id, a.status.as_str(), a.cos_id, password_hash],
    )?;
    attrs::store(conn, &a.id, &a.attrs)
}

/// Deletes an account, its addresses and its list memberships.
pub(crate) fn delete(conn: &Connection, id: &str) -> Result<Account> {
    delete_inner(conn, id, true)
}

/// Deletes an account that is about to be replaced by a restored copy of itself:
/// lists keep naming its addresses.
pub(crate) fn delete_keeping_memberships(conn: &Connection, id: &str) -> Result<Account> {
    delete_inner(conn, id, false)
}

fn delete_inner(conn: &Connection, id: &str, drop_memberships: bool) -> Result<Account> {
    let a = load(conn, id)?.ok_or_else(|| DirectoryError::NoSuchAccount(id.to_string()))?;
    for addr in std::iter::once(&a.email).chain(&a.aliases) {
        if drop_memberships {
            address::update_memberships(conn, addr, None)?;
        }
        address::release(conn, addr)?;
    }
    attrs::delete(conn, id)?;
    conn.execute("DELETE FROM accounts WHERE id = ?1", [id])?;
    Ok(a)
}

pub(crate) fn list(conn: &Connection, domain: Option<&str>) -> Result<Vec<Account>> {
    let domain = domain.map(address::normalize_domain).transpose()?;
    if let Some(d) = &domain {
        crate::domain::require_domain(conn, d)?;
    }
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT a.id FROM accounts a JOIN addresses ad ON ad.address = a.email
             WHERE ?1 IS NULL OR ad.domain = ?1 ORDER BY a.email",
        )?
        .query_map([&domain], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    ids.iter()
        .map(|id| load(conn, id)?.ok_or_else(|| DirectoryError::NoSuchAccount(id.clone())))
        .collect()
}

pub(crate) fn next_mailbox_id(conn: &Connection) -> Result<u32> {
    let next: i64 = conn
        .prepare_cached("SELECT value FROM counters WHERE name = 'next_mailbox_id'")?
        .query_row([], |r| r.get(0))?;
    Ok(u32::try_from(next).unwrap_or(u32::MAX))
}

/// Makes sure the counter never hands out `id` (or anything below it) again.
pub(crate) fn bump_mailbox_counter(conn: &Connection, id: MailboxId) -> Result<()> {
    conn.prepare_cached(
        "UPDATE counters SET value = max(value, ?1 + 1) WHERE name = 'next_mailbox_id'",
    )?
    .execute([i64::from(id.0)])?;
    Ok(())
}

pub(crate) fn allocate_mailbox_id(conn: &Connection) -> Result<MailboxId> {
    let next = next_mailbox_id(conn)?;
    if next == u32::MAX {
        return Err(DirectoryError::MailboxIdsExhausted(next));
    }
    let id = MailboxId(next);
    bump_mailbox_counter(conn, id)?;
    Ok(id)
}

pub(crate) fn hash_password(password: &str) -> Result<String> {
    if password.is_empty() {
        return Err(DirectoryError::InvalidAttributeValue {
            name: PASSWORD.into(),
            value: String::new(),
            reason: "a password cannot be empty".into(),
        });
    }
    let hash: PasswordHash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| DirectoryError::Password(e.to_string()))?;
    Ok(hash.to_string())
}

/// Checks that an imported hash is a PHC string we can verify against.
pub(crate) fn check_password_hash(hash: &str) -> std::result::Result<(), String> {
    PasswordHash::new(hash)
        .map(|_| ())
        .map_err(|e| format!("userPassword is not a PHC password hash: {e}"))
}

/// The single value a modification sets, for single-valued attributes: `None` when
/// it removes the attribute.
pub(crate) fn single_value(m: &Modification) -> Result<Option<&str>> {
    match m {
        Modification::Replace { name, values } => {
            let values: Vec<&String> = values.iter().filter(|v| !v.is_empty()).collect();
            match values.as_slice() {
                [] => Ok(None),
                [v] => Ok(Some(v.as_str())),
                _ => Err(DirectoryError::SingleValued {
                    name: name.clone(),
                    count: values.len(),
                }),
            }
        }
        Modification::Add { name, value } | Modification::Remove { name, value } => {
            Err(DirectoryError::InvalidAttributeValue {
                name: name.clone(),
                value: value.clone(),
                reason: "it is single-valued: set it without '+' or '-'".into(),
            })
        }
    }
}

/// Applies `ma`-style modifications in memory; the caller writes the result.
pub(crate) fn apply_mods(
    conn: &Connection,
    a: &mut Account,
    hash: &mut Option<String>,
    mods: &[Modification],
) -> Result<()> {
    for m in mods {
        let name = m.name();
        if name.eq_ignore_ascii_case(STATUS) {
            a.status = single_value(m)?
                .ok_or_else(|| DirectoryError::InvalidStatus(String::new()))?
                .parse()?;
        } else if name.eq_ignore_ascii_case(PASSWORD) {
            *hash = single_value(m)?.map(hash_password).transpose()?;
        } else if name.eq_ignore_ascii_case(COS_ID) {
            a.cos_id = match single_value(m)? {
                Some(key) => cos::require(conn, key)?.id,
                None => cos::default_id(conn)?,
            };
        } else {
            attrs::check_not_reserved(name, RESERVED)?;
            attrs::apply(&mut a.attrs, m, &attrs::normalize_entry_value)?;
        }
    }
    Ok(())
}

fn parse_u64(name: &str, v: &str) -> Result<u64> {
    v.trim()
        .parse()
        .map_err(|_| DirectoryError::InvalidAttributeValue {
            name: name.to_string(),
            value: v.to_string(),
            reason: "expected a non-negative integer".into(),
        })
}

impl Directory {
    /// `zmprov ca EMAIL PASSWORD [attr value ...]`. The domain must exist. The
    /// account gets a new zimbraId, the default COS (unless `zimbraCOSId` is given)
    /// and the next mailbox id.
    ///
    /// The password is hashed before the directory's write lock is taken: a
    /// 19 MiB, tens-of-milliseconds Argon2 computation holds up no one.
    pub fn create_account(
        &self,
        email: &str,
        password: Option<&str>,
        mods: &[Modification],
    ) -> Result<Account> {
        let prepared = Prepared::new(email, password, mods)?;
        let mut w = self.writer();
        let tx = w.transaction()?;
        let a = prepared.insert(&tx)?;
        tx.commit()?;
        Ok(a)
    }

    /// `zmprov ga KEY`: by address, alias or zimbraId (case-insensitive).
    pub fn get_account(&self, key: &str) -> Result<Account> {
        self.read(|conn| require(conn, key))
    }

    /// Like `get_account`, but `None` when nothing matches.
    pub fn find_account(&self, key: &str) -> Result<Option<Account>> {
        self.read(|conn| match find_id(conn, key)? {
            Some(id) => load(conn, &id),
            None => Ok(None),
        })
    }

    /// The account owning mailbox `id`, if any.
    pub fn account_by_mailbox_id(&self, id: MailboxId) -> Result<Option<Account>> {
        self.read(|conn| {
            let found: Option<String> = conn
                .prepare_cached("SELECT id FROM accounts WHERE mailbox_id = ?1")?
                .query_row([id.0], |r| r.get(0))
                .optional()?;
            match found {
                Some(account) => load(conn, &account),
                None => Ok(None),
            }
        })
    }

    /// `zmprov gaa [DOMAIN]`: accounts sorted by address.
    pub fn list_accounts(&self, domain: Option<&str>) -> Result<Vec<Account>> {
        self.read(|conn| list(conn, domain))
    }

    /// `zmprov ma KEY attr value ...`. `zimbraAccountStatus` sets the status
    /// (validated), `userPassword` the password (stored hashed), `zimbraCOSId` the
    /// COS (id or name); `zimbraMailQuota` must be a byte count.
    pub fn modify_account(&self, key: &str, mods: &[Modification]) -> Result<Account> {
        let mut w = self.writer();
        let tx = w.transaction()?;
        let mut a = require(&tx, key)?;
        let mut hash = password_hash(&tx, &a.id)?;
        apply_mods(&tx, &mut a, &mut hash, mods)?;
        update(&tx, &a, hash.as_deref())?;
        tx.commit()?;
        Ok(a)
    }

    /// `zmprov ma KEY zimbraAccountStatus STATUS`.
    pub fn set_account_status(&self, key: &str, status: AccountStatus) -> Result<Account> {
        self.modify_account(key, &[Modification::set(STATUS, status.as_str())])
    }

    /// `zmprov sac KEY COS`.
    pub fn set_account_cos(&self, key: &str, cos: &str) -> Result<Account> {
        self.modify_account(key, &[Modification::set(COS_ID, cos)])
    }

    /// `zmprov sp KEY PASSWORD`: stores an argon2id hash.
    pub fn set_password(&self, key: &str, password: &str) -> Result<()> {
        // An empty value in a modification removes the attribute; here it is a
        // mistake, not a request to remove the password.
        if password.is_empty() {
            hash_password(password)?;
        }
        self.modify_account(key, &[Modification::set(PASSWORD, password)])
            .map(|_| ())
    }

    /// True if `password` matches; false if not or if the account has none.
    pub fn verify_password(&self, key: &str, password: &str) -> Result<bool> {
        let a = self.get_account(key)?;
        match self.stored_password_hash(&a.id)? {
            Some(hash) => password_matches(&a.email, &hash, password),
            None => Ok(false),
        }
    }

    /// The account's stored password hash (PHC string), if it has a password:
    /// read under the directory's lock, checked with [`password_matches`]
    /// outside it, so one slow Argon2 check does not hold up other lookups.
    pub fn stored_password_hash(&self, account_id: &str) -> Result<Option<String>> {
        self.read(|conn| password_hash(conn, account_id))
    }

    /// `zmprov ra OLD NEW`: changes the primary address; zimbraId, mailbox id and
    /// aliases stay, and list memberships follow the new address.
    pub fn rename_account(&self, key: &str, new_email: &str) -> Result<Account> {
        let new_email = address::normalize_address(new_email)?;
        let mut w = self.writer();
        let tx = w.transaction()?;
        let a = require(&tx, key)?;
        if a.email != new_email {
            address::check_free(&tx, &new_email)?;
            tx.execute(
                "UPDATE accounts SET email = ?2 WHERE id = ?1",
                params![a.id, new_email],
            )?;
            address::release(&tx, &a.email)?;
            address::claim(&tx, &new_email, &Owner::Account(a.id.clone()))?;
            address::update_memberships(&tx, &a.email, Some(&new_email))?;
        }
        let renamed =
            load(&tx, &a.id)?.ok_or_else(|| DirectoryError::NoSuchAccount(a.id.clone()))?;
        tx.commit()?;
        Ok(renamed)
    }

    /// `zmprov da KEY`. Returns the deleted account so that the caller can delete
    /// its mailbox. Its mailbox id is never reused.
    pub fn delete_account(&self, key: &str) -> Result<Account> {
        let mut w = self.writer();
        let tx = w.transaction()?;
        let a = require(&tx, key)?;
        let deleted = delete(&tx, &a.id)?;
        tx.commit()?;
        Ok(deleted)
    }

    /// `zmprov aaa KEY ALIAS`. The alias's domain must exist and the address be
    /// free (not an account, alias or list).
    pub fn add_account_alias(&self, key: &str, alias: &str) -> Result<Account> {
        let alias = address::normalize_address(alias)?;
        let mut w = self.writer();
        let tx = w.transaction()?;
        let a = require(&tx, key)?;
        address::claim(&tx, &alias, &Owner::Alias(a.id.clone()))?;
        let a = load(&tx, &a.id)?.ok_or_else(|| DirectoryError::NoSuchAccount(a.id.clone()))?;
        tx.commit()?;
        Ok(a)
    }

    /// `zmprov raa KEY ALIAS`. Lists that named the alias drop it.
    pub fn remove_account_alias(&self, key: &str, alias: &str) -> Result<Account> {
        let normalized = alias.trim().to_ascii_lowercase();
        let mut w = self.writer();
        let tx = w.transaction()?;
        let a = require(&tx, key)?;
        if !a.aliases.contains(&normalized) {
            return Err(DirectoryError::NoSuchAlias {
                account: a.email,
                alias: alias.to_string(),
            });
        }
        address::release(&tx, &normalized)?;
        address::update_memberships(&tx, &normalized, None)?;
        let a = load(&tx, &a.id)?.ok_or_else(|| DirectoryError::NoSuchAccount(a.id.clone()))?;
        tx.commit()?;
        Ok(a)
    }

    /// The account's values of `name`, or else its COS's (Zimbra inheritance).
    pub fn effective_account_attr(&self, account: &Account, name: &str) -> Result<Vec<String>> {
        let own = account.attr(name);
        if !own.is_empty() {
            return Ok(own.to_vec());
        }
        let cos = self.read(|conn| cos::load(conn, &account.cos_id))?;
        Ok(cos
            .map(|c| attrs::get(&c.attrs, name).to_vec())
            .unwrap_or_default())
    }

    /// `zimbraMailQuota` in bytes, the account's own value or else its COS's;
    /// 0 means unlimited.
    pub fn effective_quota(&self, account: &Account) -> Result<u64> {
        match self.effective_account_attr(account, QUOTA)?.first() {
            Some(v) => parse_u64(QUOTA, v),
            None => Ok(0),
        }
    }

    /// Gives the account mailbox id `id` (a restore recreating the original
    /// mailbox). Fails if another account holds it; the counter moves past it.
    pub fn set_mailbox_id(&self, key: &str, id: MailboxId) -> Result<Account> {
        let mut w = self.writer();
        let tx = w.transaction()?;
        let a = require(&tx, key)?;
        check_mailbox_id_free(&tx, id, Some(&a.id))?;
        tx.execute(
            "UPDATE accounts SET mailbox_id = ?2 WHERE id = ?1",
            params![a.id, id.0],
        )?;
        bump_mailbox_counter(&tx, id)?;
        let a = load(&tx, &a.id)?.ok_or_else(|| DirectoryError::NoSuchAccount(a.id.clone()))?;
        tx.commit()?;
        Ok(a)
    }

    /// The highest mailbox id ever handed out or reserved (0 if none).
    pub fn max_mailbox_id(&self) -> Result<MailboxId> {
        Ok(MailboxId(self.read(next_mailbox_id)?.saturating_sub(1)))
    }

    /// Marks every mailbox id up to `id` as used, so that new accounts get higher
    /// ones (a restore that will recreate mailbox `id`).
    pub fn reserve_mailbox_id(&self, id: MailboxId) -> Result<()> {
        let mut w = self.writer();
        let tx = w.transaction()?;
        bump_mailbox_counter(&tx, id)?;
        tx.commit()?;
        Ok(())
    }

    /// Hands out a fresh mailbox id without creating an account.
    pub fn allocate_mailbox_id(&self) -> Result<MailboxId> {
        let mut w = self.writer();
        let tx = w.transaction()?;
        let id = allocate_mailbox_id(&tx)?;
        tx.commit()?;
        Ok(id)
    }

    /// The local accounts that mail to `address` reaches: the account it names
    /// (primary address or alias), or the members of the distribution list it
    /// names, expanded recursively (cycles are safe; each account once, in first
    /// seen order). Case-insensitive. External members and unknown addresses yield
    /// nothing. Status is not checked: the caller decides what a closed account gets.
    pub fn resolve_recipient(&self, address: &str) -> Result<Vec<Account>> {
        self.read(|conn| {
            let mut out = Vec::new();
            let mut seen_accounts = HashSet::new();
            let mut seen_lists = HashSet::new();
            // Depth-first with an explicit stack: deep nesting cannot overflow it.
            let mut stack = vec![address.trim().to_ascii_lowercase()];
            while let Some(addr) = stack.pop() {
                match address::owner_of(conn, &addr)? {
                    Some(Owner::Account(id) | Owner::Alias(id)) => {
                        if seen_accounts.insert(id.clone())
                            && let Some(a) = load(conn, &id)?
                        {
                            out.push(a);
                        }
                    }
                    Some(Owner::List(id)) if seen_lists.insert(id.clone()) => {
                        let members = crate::dl::members(conn, &id)?;
                        stack.extend(members.into_iter().rev());
                    }
                    Some(Owner::List(_)) | None => {}
                }
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests;

/// Whether `password` matches a stored hash of `email`'s account (Argon2,
/// parameters as stored). Takes no lock: callers read the hash first.
pub fn password_matches(email: &str, hash: &str, password: &str) -> Result<bool> {
    let parsed = PasswordHash::new(hash).map_err(|e| {
        DirectoryError::Password(format!(
            "the stored password hash of {email} is unreadable ({e}); set a new password (zmprov sp)"
        ))
    })?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}
