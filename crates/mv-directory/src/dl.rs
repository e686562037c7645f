//! Distribution lists (`zmprov cdl/gdl/gadl/adlm/rdlm/mdl/ddl`). Members are
//! addresses: accounts, aliases, other lists, or external addresses (which simply
//! do not resolve locally). A list's address shares the namespace of accounts and
//! aliases.

use crate::address::{self, Owner};
use crate::attrs::{self, Attrs, MANAGED_HINT, Modification};
use crate::error::{DirectoryError, Result};
use crate::{Directory, new_id, now};
use mv_types::UtcMillis;
use rusqlite::{Connection, OptionalExtension, params};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DistributionList {
    /// zimbraId (UUID).
    pub id: String,
    /// The list's address, lowercase.
    pub email: String,
    /// Member addresses, lowercase, sorted, no duplicates.
    pub members: Vec<String>,
    pub created: UtcMillis,
    pub attrs: Attrs,
}

pub(crate) const MEMBER: &str = "zimbraMailForwardingAddress";

pub(crate) const RESERVED: &[(&str, &str)] = &[
    ("objectClass", MANAGED_HINT),
    ("zimbraId", MANAGED_HINT),
    ("zimbraCreateTimestamp", MANAGED_HINT),
    ("uid", "lists cannot be renamed"),
    ("mail", "lists cannot be renamed"),
    ("zimbraMailAlias", "lists have no aliases"),
    (MEMBER, "add or remove members with zmprov adlm / rdlm"),
];

pub(crate) fn find_id(conn: &Connection, key: &str) -> Result<Option<String>> {
    let key = key.trim().to_ascii_lowercase();
    if let Some(Owner::List(id)) = address::owner_of(conn, &key)? {
        return Ok(Some(id));
    }
    Ok(conn
        .prepare_cached("SELECT id FROM lists WHERE id = ?1")?
        .query_row([&key], |r| r.get(0))
        .optional()?)
}

pub(crate) fn members(conn: &Connection, id: &str) -> Result<Vec<String>> {
    Ok(conn
        .prepare_cached("SELECT address FROM list_members WHERE list_id = ?1 ORDER BY address")?
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn load(conn: &Connection, id: &str) -> Result<Option<DistributionList>> {
    let row = conn
        .prepare_cached("SELECT email, created FROM lists WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .optional()?;
    let Some((email, created)) = row else {
        return Ok(None);
    };
    Ok(Some(DistributionList {
        id: id.to_string(),
        email,
        members: members(conn, id)?,
        created: UtcMillis(created),
        attrs: attrs::load(conn, id)?,
    }))
}

fn require(conn: &Connection, key: &str) -> Result<DistributionList> {
    let id = find_id(conn, key)?.ok_or_else(|| DirectoryError::NoSuchList(key.to_string()))?;
    load(conn, &id)?.ok_or_else(|| DirectoryError::NoSuchList(key.to_string()))
}

pub(crate) fn insert(conn: &Connection, l: &DistributionList) -> Result<()> {
    address::check_free(conn, &l.email)?;
    conn.execute(
        "INSERT INTO lists (id, email, created) VALUES (?1, ?2, ?3)",
        params![l.id, l.email, l.created.0],
    )?;
    address::claim(conn, &l.email, &Owner::List(l.id.clone()))?;
    add_members(conn, &l.id, &l.members)?;
    attrs::store(conn, &l.id, &l.attrs)
}

pub(crate) fn add_members(conn: &Connection, id: &str, members: &[String]) -> Result<()> {
    let mut stmt = conn
        .prepare_cached("INSERT OR IGNORE INTO list_members (list_id, address) VALUES (?1, ?2)")?;
    for m in members {
        stmt.execute(params![id, m])?;
    }
    Ok(())
}

pub(crate) fn delete(conn: &Connection, id: &str) -> Result<DistributionList> {
    let l = load(conn, id)?.ok_or_else(|| DirectoryError::NoSuchList(id.to_string()))?;
    address::update_memberships(conn, &l.email, None)?;
    address::release(conn, &l.email)?;
    attrs::delete(conn, id)?;
    conn.execute("DELETE FROM lists WHERE id = ?1", [id])?;
    Ok(l)
}

pub(crate) fn list(conn: &Connection, domain: Option<&str>) -> Result<Vec<DistributionList>> {
    let domain = domain.map(address::normalize_domain).transpose()?;
    if let Some(d) = &domain {
        crate::domain::require_domain(conn, d)?;
    }
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT l.id FROM lists l JOIN addresses ad ON ad.address = l.email
             WHERE ?1 IS NULL OR ad.domain = ?1 ORDER BY l.email",
        )?
        .query_map([&domain], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    ids.iter()
        .map(|id| load(conn, id)?.ok_or_else(|| DirectoryError::NoSuchList(id.clone())))
        .collect()
}

/// Members are addresses; their domain need not be local.
pub(crate) fn normalize_members<S: AsRef<str>>(members: &[S]) -> Result<Vec<String>> {
    let mut out: Vec<String> = members
        .iter()
        .map(|m| address::normalize_address(m.as_ref()))
        .collect::<Result<_>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

fn apply_mods(attrs: &mut Attrs, mods: &[Modification]) -> Result<()> {
    for m in mods {
        attrs::check_not_reserved(m.name(), RESERVED)?;
        attrs::apply(attrs, m, &attrs::verbatim)?;
    }
    Ok(())
}

impl Directory {
    /// `zmprov cdl EMAIL [attr value ...]`. The domain must exist.
    pub fn create_dl(&self, email: &str, mods: &[Modification]) -> Result<DistributionList> {
        let mut l = DistributionList {
            id: new_id(),
            email: address::normalize_address(email)?,
            members: Vec::new(),
            created: now(),
            attrs: Attrs::new(),
        };
        apply_mods(&mut l.attrs, mods)?;
        let mut w = self.writer();
        let tx = w.transaction()?;
        insert(&tx, &l)?;
        tx.commit()?;
        Ok(l)
    }

    /// `zmprov gdl EMAIL|ID`
    pub fn get_dl(&self, key: &str) -> Result<DistributionList> {
        self.read(|conn| require(conn, key))
    }

    /// `zmprov gadl [DOMAIN]`: lists sorted by address.
    pub fn list_dls(&self, domain: Option<&str>) -> Result<Vec<DistributionList>> {
        self.read(|conn| list(conn, domain))
    }

    /// `zmprov adlm LIST MEMBER...`. Adding a present member is a no-op.
    pub fn add_dl_members<S: AsRef<str>>(
        &self,
        key: &str,
        members: &[S],
    ) -> Result<DistributionList> {
        let members = normalize_members(members)?;
        let mut w = self.writer();
        let tx = w.transaction()?;
        let l = require(&tx, key)?;
        add_members(&tx, &l.id, &members)?;
        let l = load(&tx, &l.id)?.ok_or_else(|| DirectoryError::NoSuchList(key.to_string()))?;
        tx.commit()?;
        Ok(l)
    }

    /// `zmprov rdlm LIST MEMBER...`. Fails (changing nothing) if one is not a member.
    pub fn remove_dl_members<S: AsRef<str>>(
        &self,
        key: &str,
        members: &[S],
    ) -> Result<DistributionList> {
        let mut w = self.writer();
        let tx = w.transaction()?;
        let l = require(&tx, key)?;
        for m in members {
            let normalized = m.as_ref().trim().to_ascii_lowercase();
            let n = tx.execute(
                "DELETE FROM list_members WHERE list_id = ?1 AND address = ?2",
                params![l.id, normalized],
            )?;
            if n == 0 {
                return Err(DirectoryError::NotAMember {
                    list: l.email,
                    member: m.as_ref().to_string(),
                });
            }
        }
        let l = load(&tx, &l.id)?.ok_or_else(|| DirectoryError::NoSuchList(key.to_string()))?;
        tx.commit()?;
        Ok(l)
    }

    /// `zmprov mdl LIST attr value ...`
    pub fn modify_dl(&self, key: &str, mods: &[Modification]) -> Result<DistributionList> {
        let mut w = self.writer();
        let tx = w.transaction()?;
        let mut l = require(&tx, key)?;
        apply_mods(&mut l.attrs, mods)?;
        attrs::store(&tx, &l.id, &l.attrs)?;
        tx.commit()?;
        Ok(l)
    }

    /// `zmprov ddl LIST`. Lists that had it as a member drop it.
    pub fn delete_dl(&self, key: &str) -> Result<DistributionList> {
        let mut w = self.writer();
        let tx = w.transaction()?;
        let l = require(&tx, key)?;
        let l = delete(&tx, &l.id)?;
        tx.commit()?;
        Ok(l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dl_crud() {
        let d = Directory::open_in_memory().unwrap();
        d.create_domain("example.com", &[]).unwrap();
        let l = d
            .create_dl(
                "Team@Example.com",
                &[Modification::set("displayName", "The team")],
            )
            .unwrap();
        assert_eq!(l.email, "team@example.com");
        assert!(l.members.is_empty());
        assert_eq!(d.get_dl("TEAM@example.com").unwrap(), l);
        assert_eq!(d.get_dl(&l.id).unwrap(), l);
        assert!(matches!(
            d.create_dl("x@nowhere.org", &[]),
            Err(DirectoryError::NoSuchDomain(_))
        ));
        assert!(matches!(
            d.create_dl("team@example.com", &[]),
            Err(DirectoryError::AddressTaken { .. })
        ));

        let l = d
            .add_dl_members(
                "team@example.com",
                &[
                    "B@example.com",
                    "a@example.com",
                    "ext@other.org",
                    "a@example.com",
                ],
            )
            .unwrap();
        assert_eq!(
            l.members,
            ["a@example.com", "b@example.com", "ext@other.org"]
        );
        let l = d
            .add_dl_members("team@example.com", &["a@example.com"])
            .unwrap();
        assert_eq!(l.members.len(), 3);
        assert!(matches!(
            d.add_dl_members("team@example.com", &["not-an-address"]),
            Err(DirectoryError::InvalidAddress { .. })
        ));
        let l = d
            .remove_dl_members("team@example.com", &["A@example.com"])
            .unwrap();
        assert_eq!(l.members, ["b@example.com", "ext@other.org"]);
        let e = d
            .remove_dl_members("team@example.com", &["ext@other.org", "zz@example.com"])
            .unwrap_err();
        assert!(matches!(e, DirectoryError::NotAMember { .. }), "{e}");
        assert_eq!(
            d.get_dl("team@example.com").unwrap().members.len(),
            2,
            "a failed rdlm changes nothing"
        );

        let l = d
            .modify_dl(
                "team@example.com",
                &[Modification::add("description", "all of us")],
            )
            .unwrap();
        assert_eq!(attrs::get(&l.attrs, "description"), ["all of us"]);
        assert!(matches!(
            d.modify_dl("team@example.com", &[Modification::add(MEMBER, "x@y.z")]),
            Err(DirectoryError::ReadOnlyAttribute { .. })
        ));

        d.create_dl("all@example.com", &[]).unwrap();
        d.add_dl_members("all@example.com", &["team@example.com"])
            .unwrap();
        let names: Vec<_> = d
            .list_dls(None)
            .unwrap()
            .into_iter()
            .map(|l| l.email)
            .collect();
        assert_eq!(names, ["all@example.com", "team@example.com"]);
        assert_eq!(d.list_dls(Some("example.com")).unwrap().len(), 2);

        let deleted = d.delete_dl("team@example.com").unwrap();
        assert_eq!(deleted.id, l.id);
        assert!(matches!(
            d.get_dl("team@example.com"),
            Err(DirectoryError::NoSuchList(_))
        ));
        assert!(d.get_dl("all@example.com").unwrap().members.is_empty());
        // A list is not an account.
        assert!(d.find_account("all@example.com").unwrap().is_none());
        assert!(matches!(
            d.get_dl("nobody@example.com"),
            Err(DirectoryError::NoSuchList(_))
        ));
    }
}
