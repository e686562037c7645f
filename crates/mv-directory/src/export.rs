//! The directory as LDIF, Zimbra-shaped, for backups (`ldap/ldap.bak`, per-account
//! entries) and `zmrestoreldap`.
//!
//! ```text
//! cn=zimbra                               container
//! cn=config,cn=zimbra                     global config (+ mailvaultNextMailboxId)
//! cn=cos,cn=zimbra                        container
//! cn=NAME,cn=cos,cn=zimbra                class of service
//! cn=servers,cn=zimbra                    container
//! cn=HOST,cn=servers,cn=zimbra            server config
//! dc=example,dc=com                       domain
//! ou=people,dc=example,dc=com             container
//! uid=LOCAL,ou=people,dc=example,dc=com   account or distribution list
//! ```
//! Every model field is an attribute (mailbox ids as `mailvaultMailboxId`, times as
//! `zimbraCreateTimestamp` in generalized time with milliseconds), so export →
//! import → export is byte-identical, and the mailbox id counter travels with the
//! config entry: a restored directory never hands out an id again. The way back
//! is in `import.rs`.

use crate::Directory;
use crate::account::{self, Account};
use crate::address;
use crate::attrs::{self, Attrs};
use crate::config::{self, Server};
use crate::cos::{self, Cos};
use crate::dl::{self, DistributionList};
use crate::domain::{self, Domain};
use crate::error::Result;
use crate::ldif::{self, Entry, escape_rdn_value};
use mv_types::UtcMillis;
use rusqlite::Connection;

pub(crate) const OBJECT_CLASS: &str = "objectClass";
pub(crate) const ZIMBRA_ID: &str = "zimbraId";
pub(crate) const CREATED: &str = "zimbraCreateTimestamp";
pub(crate) const NEXT_MAILBOX_ID: &str = "mailvaultNextMailboxId";
pub(crate) const ZIMBRA_DN: &str = "cn=zimbra";
pub(crate) const CONFIG_DN: &str = "cn=config,cn=zimbra";
pub(crate) const COS_BASE: &str = "cn=cos,cn=zimbra";
pub(crate) const SERVERS_BASE: &str = "cn=servers,cn=zimbra";

// ------------------------------------------------------------------ DNs

pub(crate) fn domain_dn(name: &str) -> String {
    name.split('.')
        .map(|label| format!("dc={label}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn people_dn(domain: &str) -> String {
    format!("ou=people,{}", domain_dn(domain))
}

pub(crate) fn address_dn(email: &str) -> String {
    let (local, domain) = address::split(email);
    format!("uid={},{}", escape_rdn_value(local), people_dn(domain))
}

pub(crate) fn cos_dn(name: &str) -> String {
    format!("cn={name},{COS_BASE}")
}

pub(crate) fn server_dn(name: &str) -> String {
    format!("cn={name},{SERVERS_BASE}")
}

// ------------------------------------------------- generalized time (UTC)

/// `20240131235959.123Z`: LDAP generalized time, with the milliseconds we keep.
fn gentime(t: UtcMillis) -> String {
    let ms = t.0.rem_euclid(1000);
    let secs = t.0.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}.{ms:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Parses `YYYYMMDDhhmmss.fffZ` or `YYYYMMDDhhmmssZ` (Zimbra's own form).
pub(crate) fn parse_gentime(s: &str) -> Option<UtcMillis> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    let ms = match b.len() {
        15 if b[14] == b'Z' => 0,
        19 if b[14] == b'.' && b[18] == b'Z' => digits(15..18)?,
        _ => return None,
    };
    let (y, mo, d) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (h, mi, sec) = (digits(8..10)?, digits(10..12)?, digits(12..14)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let t = UtcMillis(((days * 86_400 + h * 3600 + mi * 60 + sec) * 1000) + ms);
    // Rejects impossible dates such as February 30th.
    (gentime(t)[..14] == s[..14]).then_some(t)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// ------------------------------------------------------------ model → LDIF

fn push_attrs(e: &mut Entry, attrs: &Attrs) {
    for (name, values) in attrs {
        for v in values {
            e.push(name, v.clone());
        }
    }
}

fn container(dn: &str, rdn_attr: &str, value: &str) -> Entry {
    let mut e = Entry::new(dn);
    e.push(OBJECT_CLASS, "organizationalRole");
    if rdn_attr != "cn" {
        e.push(rdn_attr, value);
    }
    e.push("cn", value);
    e
}

fn global_entry(explicit: &Attrs, next_mailbox_id: u32) -> Entry {
    let mut e = Entry::new(CONFIG_DN);
    e.push(OBJECT_CLASS, "zimbraGlobalConfig");
    e.push("cn", "config");
    e.push(NEXT_MAILBOX_ID, next_mailbox_id.to_string());
    push_attrs(&mut e, explicit);
    e
}

fn cos_entry(c: &Cos) -> Entry {
    let mut e = Entry::new(cos_dn(&c.name));
    e.push(OBJECT_CLASS, "zimbraCOS");
    e.push("cn", c.name.clone());
    e.push(ZIMBRA_ID, c.id.clone());
    e.push(CREATED, gentime(c.created));
    push_attrs(&mut e, &c.attrs);
    e
}

fn server_entry(s: &Server) -> Entry {
    let mut e = Entry::new(server_dn(&s.name));
    e.push(OBJECT_CLASS, "zimbraServer");
    e.push("cn", s.name.clone());
    e.push(ZIMBRA_ID, s.id.clone());
    push_attrs(&mut e, &s.attrs);
    e
}

fn domain_entry(d: &Domain) -> Entry {
    let mut e = Entry::new(domain_dn(&d.name));
    for oc in ["dcObject", "organization", "zimbraDomain"] {
        e.push(OBJECT_CLASS, oc);
    }
    e.push("dc", d.name.split('.').next().unwrap_or_default());
    e.push("o", d.name.clone());
    e.push("zimbraDomainName", d.name.clone());
    e.push(ZIMBRA_ID, d.id.clone());
    e.push(CREATED, gentime(d.created));
    push_attrs(&mut e, &d.attrs);
    e
}

pub(crate) fn account_entry(a: &Account, password_hash: Option<&str>) -> Entry {
    let mut e = Entry::new(address_dn(&a.email));
    e.push(OBJECT_CLASS, "inetOrgPerson");
    e.push(OBJECT_CLASS, "zimbraAccount");
    e.push("uid", a.local_part());
    e.push("mail", a.email.clone());
    e.push(ZIMBRA_ID, a.id.clone());
    for alias in &a.aliases {
        e.push("zimbraMailAlias", alias.clone());
    }
    e.push(account::STATUS, a.status.as_str());
    e.push(account::COS_ID, a.cos_id.clone());
    if let Some(h) = password_hash {
        e.push(account::PASSWORD, h);
    }
    e.push(account::MAILBOX_ID, a.mailbox_id.to_string());
    e.push(CREATED, gentime(a.created));
    push_attrs(&mut e, &a.attrs);
    e
}

fn list_entry(l: &DistributionList) -> Entry {
    let mut e = Entry::new(address_dn(&l.email));
    e.push(OBJECT_CLASS, "zimbraDistributionList");
    e.push("uid", address::split(&l.email).0);
    e.push("mail", l.email.clone());
    e.push(ZIMBRA_ID, l.id.clone());
    e.push(CREATED, gentime(l.created));
    for m in &l.members {
        e.push(dl::MEMBER, m.clone());
    }
    push_attrs(&mut e, &l.attrs);
    e
}

fn export(conn: &Connection) -> Result<Vec<Entry>> {
    let mut out = vec![
        container(ZIMBRA_DN, "cn", "zimbra"),
        global_entry(
            &attrs::load(conn, config::GLOBAL)?,
            account::next_mailbox_id(conn)?,
        ),
        container(COS_BASE, "cn", "cos"),
    ];
    out.extend(cos::list(conn)?.iter().map(cos_entry));
    out.push(container(SERVERS_BASE, "cn", "servers"));
    out.extend(config::list_servers(conn)?.iter().map(server_entry));
    for d in domain::list(conn)? {
        out.push(domain_entry(&d));
        out.push(container(&people_dn(&d.name), "ou", "people"));
        for a in account::list(conn, Some(&d.name))? {
            let hash = account::password_hash(conn, &a.id)?;
            out.push(account_entry(&a, hash.as_deref()));
        }
        out.extend(dl::list(conn, Some(&d.name))?.iter().map(list_entry));
    }
    Ok(out)
}

impl Directory {
    /// The whole directory as LDIF entries (a consistent snapshot).
    pub fn export_entries(&self) -> Result<Vec<Entry>> {
        self.read(export)
    }

    /// The whole directory as an LDIF document (what `ldap/ldap.bak` holds).
    pub fn export_ldif(&self) -> Result<String> {
        Ok(ldif::write(&self.export_entries()?))
    }

    /// One account's entry (what a backup stores per account).
    pub fn account_entry(&self, key: &str) -> Result<Entry> {
        self.read(|conn| {
            let a = account::require(conn, key)?;
            let hash = account::password_hash(conn, &a.id)?;
            Ok(account_entry(&a, hash.as_deref()))
        })
    }

    /// One account's entry as an LDIF document.
    pub fn export_account_ldif(&self, key: &str) -> Result<String> {
        Ok(self.account_entry(key)?.to_ldif())
    }

    /// [`Directory::export_account_ldif`] of an account already read (a backup
    /// lists every account it covers at its start, as `ldap/ldap.bak` does): only
    /// the password hash is read again. Reading the whole account again was a
    /// tenth of an unchanged full's time.
    pub fn account_ldif(&self, a: &Account) -> Result<String> {
        let hash = self.read(|conn| account::password_hash(conn, &a.id))?;
        Ok(account_entry(a, hash.as_deref()).to_ldif())
    }
}

#[cfg(test)]
mod tests;
