//! Domains (`zmprov cd/gd/gad/md/dd`). An address can only be created in an
//! existing domain, as in Zimbra.

use crate::account::Account;
use crate::attrs::{self, Attrs, MANAGED_HINT, Modification};
use crate::error::{DirectoryError, Result};
use crate::{Directory, address, new_id, now};
use mv_types::UtcMillis;
use rusqlite::{Connection, OptionalExtension, params};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Domain {
    /// zimbraId (UUID).
    pub id: String,
    /// Lowercase name, e.g. `example.com`.
    pub name: String,
    pub created: UtcMillis,
    pub attrs: Attrs,
}

/// Attributes a domain's LDIF entry derives from the model.
pub(crate) const RESERVED: &[(&str, &str)] = &[
    ("objectClass", MANAGED_HINT),
    ("zimbraId", MANAGED_HINT),
    ("zimbraCreateTimestamp", MANAGED_HINT),
    ("dc", "it follows the domain name"),
    ("o", "it follows the domain name"),
    ("zimbraDomainName", "domains cannot be renamed"),
];

pub(crate) fn require_domain(conn: &Connection, name: &str) -> Result<()> {
    let found = conn
        .prepare_cached("SELECT 1 FROM domains WHERE name = ?1")?
        .query_row([name], |_| Ok(()))
        .optional()?;
    found.ok_or_else(|| DirectoryError::NoSuchDomain(name.to_string()))
}

pub(crate) fn load(conn: &Connection, key: &str) -> Result<Option<Domain>> {
    let key = key.trim().to_ascii_lowercase();
    let row = conn
        .prepare_cached("SELECT id, name, created FROM domains WHERE name = ?1 OR id = ?1")?
        .query_row([&key], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .optional()?;
    row.map(|(id, name, created)| {
        Ok(Domain {
            attrs: attrs::load(conn, &id)?,
            id,
            name,
            created: UtcMillis(created),
        })
    })
    .transpose()
}

pub(crate) fn insert(conn: &Connection, d: &Domain) -> Result<()> {
    if load(conn, &d.name)?.is_some() {
        return Err(DirectoryError::DomainExists(d.name.clone()));
    }
    conn.execute(
        "INSERT INTO domains (id, name, created) VALUES (?1, ?2, ?3)",
        params![d.id, d.name, d.created.0],
    )?;
    attrs::store(conn, &d.id, &d.attrs)
}

pub(crate) fn list(conn: &Connection) -> Result<Vec<Domain>> {
    let names: Vec<String> = conn
        .prepare_cached("SELECT name FROM domains ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    names
        .iter()
        .map(|n| load(conn, n)?.ok_or_else(|| DirectoryError::NoSuchDomain(n.clone())))
        .collect()
}

fn apply_mods(attrs: &mut Attrs, mods: &[Modification]) -> Result<()> {
    for m in mods {
        attrs::check_not_reserved(m.name(), RESERVED)?;
        attrs::apply(attrs, m, &attrs::verbatim)?;
    }
    Ok(())
}

impl Directory {
    /// `zmprov cd NAME [attr value ...]`
    pub fn create_domain(&self, name: &str, mods: &[Modification]) -> Result<Domain> {
        let mut d = Domain {
            id: new_id(),
            name: address::normalize_domain(name)?,
            created: now(),
            attrs: Attrs::new(),
        };
        apply_mods(&mut d.attrs, mods)?;
        let mut w = self.writer();
        let tx = w.transaction()?;
        insert(&tx, &d)?;
        tx.commit()?;
        Ok(d)
    }

    /// `zmprov gd NAME|ID`
    pub fn get_domain(&self, key: &str) -> Result<Domain> {
        self.read(|conn| load(conn, key))?
            .ok_or_else(|| DirectoryError::NoSuchDomain(key.to_string()))
    }

    /// `zmprov gad`: every domain, by name.
    pub fn list_domains(&self) -> Result<Vec<Domain>> {
        self.read(list)
    }

    /// `zmprov md NAME attr value ...`
    pub fn modify_domain(&self, key: &str, mods: &[Modification]) -> Result<Domain> {
        let mut w = self.writer();
        let tx = w.transaction()?;
        let mut d = load(&tx, key)?.ok_or_else(|| DirectoryError::NoSuchDomain(key.to_string()))?;
        apply_mods(&mut d.attrs, mods)?;
        attrs::store(&tx, &d.id, &d.attrs)?;
        tx.commit()?;
        Ok(d)
    }

    /// `zmprov dd NAME`. Refuses while the domain holds addresses unless `force`,
    /// which deletes its accounts, lists and aliases too. Returns the deleted
    /// accounts so that the caller can delete their mailboxes.
    pub fn delete_domain(&self, key: &str, force: bool) -> Result<Vec<Account>> {
        let mut w = self.writer();
        let tx = w.transaction()?;
        let d = load(&tx, key)?.ok_or_else(|| DirectoryError::NoSuchDomain(key.to_string()))?;
        let count: i64 = tx.query_row(
            "SELECT count(*) FROM addresses WHERE domain = ?1",
            [&d.name],
            |r| r.get(0),
        )?;
        if count > 0 && !force {
            return Err(DirectoryError::DomainNotEmpty {
                name: d.name,
                count: count as u64,
            });
        }
        let mut deleted = Vec::new();
        let accounts: Vec<String> = tx
            .prepare("SELECT account_id FROM addresses WHERE domain = ?1 AND kind = 'account'")?
            .query_map([&d.name], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for id in accounts {
            deleted.push(crate::account::delete(&tx, &id)?);
        }
        let lists: Vec<String> = tx
            .prepare("SELECT list_id FROM addresses WHERE domain = ?1 AND kind = 'list'")?
            .query_map([&d.name], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for id in lists {
            crate::dl::delete(&tx, &id)?;
        }
        // Aliases in this domain of accounts elsewhere.
        let aliases: Vec<String> = tx
            .prepare("SELECT address FROM addresses WHERE domain = ?1")?
            .query_map([&d.name], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for a in aliases {
            address::release(&tx, &a)?;
            address::update_memberships(&tx, &a, None)?;
        }
        attrs::delete(&tx, &d.id)?;
        tx.execute("DELETE FROM domains WHERE id = ?1", [&d.id])?;
        tx.commit()?;
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_crud() {
        let dir = Directory::open_in_memory().unwrap();
        let d = dir
            .create_domain(
                "Example.COM",
                &[Modification::set("zimbraDomainStatus", "active")],
            )
            .unwrap();
        assert_eq!(d.name, "example.com");
        assert_eq!(uuid::Uuid::parse_str(&d.id).unwrap().get_version_num(), 4);
        assert_eq!(dir.get_domain("example.com").unwrap(), d);
        assert_eq!(dir.get_domain(&d.id).unwrap(), d);
        assert!(matches!(
            dir.create_domain("example.com", &[]),
            Err(DirectoryError::DomainExists(_))
        ));
        assert!(matches!(
            dir.create_domain("bad_domain", &[]),
            Err(DirectoryError::InvalidDomainName { .. })
        ));
        dir.create_domain("a.org", &[]).unwrap();
        let names: Vec<_> = dir
            .list_domains()
            .unwrap()
            .into_iter()
            .map(|d| d.name)
            .collect();
        assert_eq!(names, ["a.org", "example.com"]);

        let d = dir
            .modify_domain("example.com", &[Modification::add("description", "main")])
            .unwrap();
        assert_eq!(attrs::get(&d.attrs, "description"), ["main"]);
        assert!(matches!(
            dir.modify_domain(
                "example.com",
                &[Modification::set("zimbraDomainName", "x.org")]
            ),
            Err(DirectoryError::ReadOnlyAttribute { .. })
        ));

        assert!(dir.delete_domain("a.org", false).unwrap().is_empty());
        assert!(matches!(
            dir.get_domain("a.org"),
            Err(DirectoryError::NoSuchDomain(_))
        ));
        let e = dir.delete_domain("a.org", false).unwrap_err();
        assert!(e.to_string().contains("zmprov cd a.org"), "{e}");
    }

    #[test]
    fn delete_refuses_a_non_empty_domain_unless_forced() {
        let dir = Directory::open_in_memory().unwrap();
        dir.create_domain("example.com", &[]).unwrap();
        dir.create_domain("other.org", &[]).unwrap();
        let a = dir.create_account("user@example.com", None, &[]).unwrap();
        let keep = dir.create_account("keep@other.org", None, &[]).unwrap();
        dir.add_account_alias("keep@other.org", "keepalias@example.com")
            .unwrap();
        dir.create_dl("list@example.com", &[]).unwrap();
        dir.create_dl("outer@other.org", &[]).unwrap();
        dir.add_dl_members("outer@other.org", &["user@example.com", "keep@other.org"])
            .unwrap();

        let e = dir.delete_domain("example.com", false).unwrap_err();
        assert!(
            matches!(e, DirectoryError::DomainNotEmpty { count: 3, .. }),
            "{e}"
        );
        let deleted = dir.delete_domain("example.com", true).unwrap();
        assert_eq!(deleted, vec![a]);
        assert!(dir.get_domain("example.com").is_err());
        assert!(dir.get_dl("list@example.com").is_err());
        let keep_now = dir.get_account("keep@other.org").unwrap();
        assert!(keep_now.aliases.is_empty());
        assert_eq!(keep_now.id, keep.id);
        assert_eq!(
            dir.get_dl("outer@other.org").unwrap().members,
            ["keep@other.org"]
        );
    }
}
