//! Classes of service (`zmprov cc/cpc/mc/gc/gac/dc/sac`). An account takes every
//! attribute it does not set itself from its COS (e.g. `zimbraMailQuota`).

use crate::attrs::{self, Attrs, MANAGED_HINT, Modification};
use crate::error::{DirectoryError, Result};
use crate::{Directory, new_id, now};
use mv_types::UtcMillis;
use rusqlite::{Connection, OptionalExtension, params};

/// The COS every directory has; accounts without another one use it.
pub const DEFAULT_COS: &str = "default";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cos {
    /// zimbraId (UUID).
    pub id: String,
    /// Unique, case-insensitive name.
    pub name: String,
    pub created: UtcMillis,
    pub attrs: Attrs,
}

pub(crate) const RESERVED: &[(&str, &str)] = &[
    ("objectClass", MANAGED_HINT),
    ("zimbraId", MANAGED_HINT),
    ("zimbraCreateTimestamp", MANAGED_HINT),
    ("cn", "it is the name of the class of service"),
];

pub(crate) fn check_name(name: &str) -> Result<()> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(DirectoryError::InvalidCosName(name.to_string()))
    }
}

pub(crate) fn load(conn: &Connection, key: &str) -> Result<Option<Cos>> {
    let row = conn
        .prepare_cached("SELECT id, name, created FROM cos WHERE id = ?1 OR name = ?1")?
        .query_row([key.trim()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .optional()?;
    row.map(|(id, name, created)| {
        Ok(Cos {
            attrs: attrs::load(conn, &id)?,
            id,
            name,
            created: UtcMillis(created),
        })
    })
    .transpose()
}

pub(crate) fn require(conn: &Connection, key: &str) -> Result<Cos> {
    load(conn, key)?.ok_or_else(|| DirectoryError::NoSuchCos(key.to_string()))
}

pub(crate) fn default_id(conn: &Connection) -> Result<String> {
    Ok(require(conn, DEFAULT_COS)?.id)
}

pub(crate) fn insert(conn: &Connection, c: &Cos) -> Result<()> {
    check_name(&c.name)?;
    if load(conn, &c.name)?.is_some() {
        return Err(DirectoryError::CosExists(c.name.clone()));
    }
    conn.execute(
        "INSERT INTO cos (id, name, created) VALUES (?1, ?2, ?3)",
        params![c.id, c.name, c.created.0],
    )?;
    attrs::store(conn, &c.id, &c.attrs)
}

pub(crate) fn list(conn: &Connection) -> Result<Vec<Cos>> {
    let ids: Vec<String> = conn
        .prepare_cached("SELECT id FROM cos ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    ids.iter().map(|id| require(conn, id)).collect()
}

fn apply_mods(attrs: &mut Attrs, mods: &[Modification]) -> Result<()> {
    for m in mods {
        attrs::check_not_reserved(m.name(), RESERVED)?;
        attrs::apply(attrs, m, &attrs::normalize_entry_value)?;
    }
    Ok(())
}

impl Directory {
    pub(crate) fn ensure_default_cos(&self) -> Result<()> {
        // Check before taking the write lock: every open does this.
        if self.read(|conn| load(conn, DEFAULT_COS))?.is_some() {
            return Ok(());
        }
        let mut w = self.writer();
        let tx = w.transaction()?;
        if load(&tx, DEFAULT_COS)?.is_none() {
            insert(
                &tx,
                &Cos {
                    id: new_id(),
                    name: DEFAULT_COS.to_string(),
                    created: now(),
                    attrs: Attrs::new(),
                },
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// `zmprov cc NAME [attr value ...]`
    pub fn create_cos(&self, name: &str, mods: &[Modification]) -> Result<Cos> {
        let mut c = Cos {
            id: new_id(),
            name: name.trim().to_string(),
            created: now(),
            attrs: Attrs::new(),
        };
        apply_mods(&mut c.attrs, mods)?;
        let mut w = self.writer();
        let tx = w.transaction()?;
        insert(&tx, &c)?;
        tx.commit()?;
        Ok(c)
    }

    /// `zmprov cpc SOURCE NEWNAME`: a new COS with the source's attributes.
    pub fn copy_cos(&self, source: &str, new_name: &str) -> Result<Cos> {
        let mut w = self.writer();
        let tx = w.transaction()?;
        let src = require(&tx, source)?;
        let c = Cos {
            id: new_id(),
            name: new_name.trim().to_string(),
            created: now(),
            attrs: src.attrs,
        };
        insert(&tx, &c)?;
        tx.commit()?;
        Ok(c)
    }

    /// `zmprov mc NAME attr value ...`
    pub fn modify_cos(&self, key: &str, mods: &[Modification]) -> Result<Cos> {
        let mut w = self.writer();
        let tx = w.transaction()?;
        let mut c = require(&tx, key)?;
        apply_mods(&mut c.attrs, mods)?;
        attrs::store(&tx, &c.id, &c.attrs)?;
        tx.commit()?;
        Ok(c)
    }

    /// `zmprov gc NAME|ID`
    pub fn get_cos(&self, key: &str) -> Result<Cos> {
        self.read(|conn| require(conn, key))
    }

    /// `zmprov gac`: every COS, by name.
    pub fn list_cos(&self) -> Result<Vec<Cos>> {
        self.read(list)
    }

    /// The COS named `default`.
    pub fn default_cos(&self) -> Result<Cos> {
        self.read(|conn| require(conn, DEFAULT_COS))
    }

    /// `zmprov dc NAME`. Refuses while accounts use it unless `force`, which moves
    /// them to the default COS. The default COS itself cannot be deleted.
    pub fn delete_cos(&self, key: &str, force: bool) -> Result<()> {
        let mut w = self.writer();
        let tx = w.transaction()?;
        let c = require(&tx, key)?;
        if c.name.eq_ignore_ascii_case(DEFAULT_COS) {
            return Err(DirectoryError::DefaultCos);
        }
        let count: i64 = tx.query_row(
            "SELECT count(*) FROM accounts WHERE cos_id = ?1",
            [&c.id],
            |r| r.get(0),
        )?;
        if count > 0 && !force {
            return Err(DirectoryError::CosInUse {
                name: c.name,
                count: count as u64,
            });
        }
        let default = default_id(&tx)?;
        tx.execute(
            "UPDATE accounts SET cos_id = ?1 WHERE cos_id = ?2",
            params![default, c.id],
        )?;
        attrs::delete(&tx, &c.id)?;
        tx.execute("DELETE FROM cos WHERE id = ?1", [&c.id])?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cos_crud_and_copy() {
        let dir = Directory::open_in_memory().unwrap();
        let default = dir.default_cos().unwrap();
        assert_eq!(default.name, DEFAULT_COS);
        assert_eq!(dir.get_cos(&default.id).unwrap(), default);

        let gold = dir
            .create_cos(
                "gold",
                &[
                    Modification::set("zimbraMailQuota", "1000"),
                    Modification::add("description", "big"),
                ],
            )
            .unwrap();
        assert_eq!(
            dir.get_cos("GOLD").unwrap(),
            gold,
            "names are case-insensitive"
        );
        assert!(matches!(
            dir.create_cos("Gold", &[]),
            Err(DirectoryError::CosExists(_))
        ));
        assert!(matches!(
            dir.create_cos("bad name", &[]),
            Err(DirectoryError::InvalidCosName(_))
        ));
        assert!(matches!(
            dir.create_cos("x", &[Modification::set("zimbraMailQuota", "-1")]),
            Err(DirectoryError::InvalidAttributeValue { .. })
        ));

        let copy = dir.copy_cos("gold", "gold-copy").unwrap();
        assert_ne!(copy.id, gold.id);
        assert_eq!(copy.attrs, gold.attrs);

        let gold2 = dir
            .modify_cos("gold", &[Modification::set("zimbraMailQuota", "2000")])
            .unwrap();
        assert_eq!(attrs::get(&gold2.attrs, "zimbraMailQuota"), ["2000"]);
        assert_eq!(
            attrs::get(&dir.get_cos("gold-copy").unwrap().attrs, "zimbraMailQuota"),
            ["1000"],
            "a copy is independent"
        );
        assert!(matches!(
            dir.modify_cos("gold", &[Modification::set("cn", "x")]),
            Err(DirectoryError::ReadOnlyAttribute { .. })
        ));
        let names: Vec<_> = dir
            .list_cos()
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, ["default", "gold", "gold-copy"]);

        dir.delete_cos("gold-copy", false).unwrap();
        assert!(matches!(
            dir.get_cos("gold-copy"),
            Err(DirectoryError::NoSuchCos(_))
        ));
        assert!(matches!(
            dir.delete_cos("default", true),
            Err(DirectoryError::DefaultCos)
        ));
    }

    #[test]
    fn delete_in_use_cos() {
        let dir = Directory::open_in_memory().unwrap();
        dir.create_domain("example.com", &[]).unwrap();
        dir.create_cos("gold", &[]).unwrap();
        let a = dir.create_account("u@example.com", None, &[]).unwrap();
        dir.set_account_cos("u@example.com", "gold").unwrap();
        let e = dir.delete_cos("gold", false).unwrap_err();
        assert!(
            matches!(e, DirectoryError::CosInUse { count: 1, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("zmprov sac"), "{e}");
        dir.delete_cos("gold", true).unwrap();
        assert_eq!(
            dir.get_account(&a.id).unwrap().cos_id,
            dir.default_cos().unwrap().id
        );
    }
}
