//! Multi-valued attributes (`name → values`) as every directory entry carries them,
//! the modifications `zmprov ma/mc/mcf/ms` make to them, and their storage.
//!
//! Names are case-insensitive as in LDAP: a modification of `displayname` replaces
//! the values of `displayName`, and the spelling of the latest write is kept. Values
//! form a set per attribute (LDAP has no duplicate values), kept in insertion order.

use crate::error::{DirectoryError, Result};
use rusqlite::{Connection, params};
use std::collections::BTreeMap;

/// Attribute name → values (never an empty list, never an empty value).
pub type Attrs = BTreeMap<String, Vec<String>>;

/// One change to a multi-valued attribute.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Modification {
    /// Replaces every value; an empty list removes the attribute (`zmprov ma u attr ''`).
    Replace { name: String, values: Vec<String> },
    /// Adds one value (`zmprov ma u +attr value`).
    Add { name: String, value: String },
    /// Removes one value if present (`zmprov ma u -attr value`).
    Remove { name: String, value: String },
}

impl Modification {
    /// Sets a single value.
    pub fn set(name: impl Into<String>, value: impl Into<String>) -> Modification {
        Modification::Replace {
            name: name.into(),
            values: vec![value.into()],
        }
    }

    /// Replaces all values.
    pub fn replace(name: impl Into<String>, values: Vec<String>) -> Modification {
        Modification::Replace {
            name: name.into(),
            values,
        }
    }

    /// Removes the attribute.
    pub fn unset(name: impl Into<String>) -> Modification {
        Modification::Replace {
            name: name.into(),
            values: Vec::new(),
        }
    }

    pub fn add(name: impl Into<String>, value: impl Into<String>) -> Modification {
        Modification::Add {
            name: name.into(),
            value: value.into(),
        }
    }

    pub fn remove(name: impl Into<String>, value: impl Into<String>) -> Modification {
        Modification::Remove {
            name: name.into(),
            value: value.into(),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Modification::Replace { name, .. }
            | Modification::Add { name, .. }
            | Modification::Remove { name, .. } => name,
        }
    }

    /// Parses zmprov's `name value [name value ...]` list: `+name` adds a value,
    /// `-name` removes one, a plain name replaces; a name repeated without a sign
    /// collects all its values into one replacement (`zmprov ma u a x a y` sets both),
    /// and an empty value removes the attribute.
    pub fn parse_zmprov<S: AsRef<str>>(args: &[S]) -> Result<Vec<Modification>> {
        if !args.len().is_multiple_of(2) {
            return Err(DirectoryError::InvalidModificationArgs(format!(
                "attribute {} has no value; give name/value pairs (use '' to remove an attribute)",
                args[args.len() - 1].as_ref()
            )));
        }
        let mut mods: Vec<Modification> = Vec::new();
        for pair in args.chunks(2) {
            let (name, value) = (pair[0].as_ref(), pair[1].as_ref());
            if let Some(n) = name.strip_prefix('+') {
                mods.push(Modification::add(n, value));
            } else if let Some(n) = name.strip_prefix('-') {
                mods.push(Modification::remove(n, value));
            } else {
                let existing = mods.iter_mut().find_map(|m| match m {
                    Modification::Replace { name: n, values } if n.eq_ignore_ascii_case(name) => {
                        Some(values)
                    }
                    _ => None,
                });
                match existing {
                    Some(values) if !value.is_empty() => values.push(value.to_string()),
                    Some(_) => {}
                    None if value.is_empty() => mods.push(Modification::unset(name)),
                    None => mods.push(Modification::set(name, value)),
                }
            }
        }
        Ok(mods)
    }
}

/// True for an LDAP attribute type name: a letter, then letters, digits and '-'.
pub(crate) fn is_attr_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

pub(crate) fn check_attr_name(name: &str) -> Result<()> {
    if is_attr_name(name) {
        Ok(())
    } else {
        Err(DirectoryError::InvalidAttributeName(name.to_string()))
    }
}

/// The key under which `name` is stored in `attrs` (matching case-insensitively).
pub(crate) fn find_key(attrs: &Attrs, name: &str) -> Option<String> {
    attrs.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// The values of `name` (case-insensitive); empty if unset.
pub fn get<'a>(attrs: &'a Attrs, name: &str) -> &'a [String] {
    attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
        .unwrap_or(&[])
}

/// Applies one modification. `normalize` validates a value for the attribute (and
/// may rewrite it into its canonical spelling).
pub(crate) fn apply(
    attrs: &mut Attrs,
    m: &Modification,
    normalize: &dyn Fn(&str, &str) -> Result<String>,
) -> Result<()> {
    let name = m.name();
    check_attr_name(name)?;
    let existing = find_key(attrs, name);
    match m {
        Modification::Replace { values, .. } => {
            let mut new: Vec<String> = Vec::with_capacity(values.len());
            for v in values.iter().filter(|v| !v.is_empty()) {
                let v = normalize(name, v)?;
                if !new.contains(&v) {
                    new.push(v);
                }
            }
            if let Some(k) = existing {
                attrs.remove(&k);
            }
            if !new.is_empty() {
                attrs.insert(name.to_string(), new);
            }
        }
        Modification::Add { value, .. } => {
            if value.is_empty() {
                return Err(DirectoryError::InvalidAttributeValue {
                    name: name.to_string(),
                    value: String::new(),
                    reason: "an empty value cannot be added".into(),
                });
            }
            let v = normalize(name, value)?;
            let key = existing.unwrap_or_else(|| name.to_string());
            let values = attrs.entry(key).or_default();
            if !values.contains(&v) {
                values.push(v);
            }
        }
        Modification::Remove { value, .. } => {
            if let Some(k) = existing {
                // Compare in canonical form when the value is valid, verbatim if not
                // (so that a bad value stored by an older version can be removed).
                let v = normalize(name, value).unwrap_or_else(|_| value.clone());
                if let Some(values) = attrs.get_mut(&k) {
                    values.retain(|x| *x != v);
                    if values.is_empty() {
                        attrs.remove(&k);
                    }
                }
            }
        }
    }
    Ok(())
}

/// Values are stored as given: no normalization.
pub(crate) fn verbatim(_name: &str, value: &str) -> Result<String> {
    Ok(value.to_string())
}

pub(crate) fn load(conn: &Connection, owner: &str) -> Result<Attrs> {
    let mut stmt =
        conn.prepare_cached("SELECT name, value FROM attrs WHERE owner = ?1 ORDER BY name, idx")?;
    let rows = stmt.query_map([owner], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut attrs = Attrs::new();
    for row in rows {
        let (name, value) = row?;
        attrs.entry(name).or_default().push(value);
    }
    Ok(attrs)
}

/// Replaces everything stored for `owner` with `attrs`.
pub(crate) fn store(conn: &Connection, owner: &str, attrs: &Attrs) -> Result<()> {
    delete(conn, owner)?;
    let mut stmt =
        conn.prepare_cached("INSERT INTO attrs (owner, name, idx, value) VALUES (?1, ?2, ?3, ?4)")?;
    for (name, values) in attrs {
        for (idx, value) in values.iter().enumerate() {
            stmt.execute(params![owner, name, idx as i64, value])?;
        }
    }
    Ok(())
}

pub(crate) fn delete(conn: &Connection, owner: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM attrs WHERE owner = ?1")?
        .execute([owner])?;
    Ok(())
}

/// Refuses a modification of an attribute that mailvault manages itself.
pub(crate) fn check_not_reserved(
    name: &str,
    reserved: &[(&'static str, &'static str)],
) -> Result<()> {
    match reserved.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
        Some((n, hint)) => Err(DirectoryError::ReadOnlyAttribute {
            name: (*n).to_string(),
            hint,
        }),
        None => Ok(()),
    }
}

/// Attributes every entry kind manages itself.
pub(crate) const MANAGED_HINT: &str = "it is managed by mailvault";

/// Validates attributes shared by accounts and classes of service.
pub(crate) fn normalize_entry_value(name: &str, value: &str) -> Result<String> {
    if name.eq_ignore_ascii_case("zimbraMailQuota")
        || name.eq_ignore_ascii_case("zimbraDumpsterQuota")
    {
        return crate::config::normalize_value(
            crate::config::Syntax::Integer { min: 0 },
            name,
            value,
        );
    }
    if name.eq_ignore_ascii_case("zimbraMailDumpsterLifetime") {
        return crate::config::normalize_value(crate::config::Syntax::Duration, name, value);
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zmprov_args() {
        let m = Modification::parse_zmprov(&["a", "x", "+b", "y", "a", "z", "-c", "w", "d", ""])
            .unwrap();
        assert_eq!(
            m,
            vec![
                Modification::replace("a", vec!["x".into(), "z".into()]),
                Modification::add("b", "y"),
                Modification::remove("c", "w"),
                Modification::unset("d"),
            ]
        );
        let e = Modification::parse_zmprov(&["a", "x", "b"]).unwrap_err();
        assert!(e.to_string().contains("attribute b has no value"), "{e}");
    }

    #[test]
    fn apply_is_case_insensitive_and_set_like() {
        let mut a = Attrs::new();
        apply(&mut a, &Modification::add("displayName", "A"), &verbatim).unwrap();
        apply(&mut a, &Modification::add("DISPLAYNAME", "B"), &verbatim).unwrap();
        apply(&mut a, &Modification::add("displayname", "A"), &verbatim).unwrap();
        assert_eq!(get(&a, "displayName"), ["A", "B"]);
        apply(&mut a, &Modification::remove("displayName", "A"), &verbatim).unwrap();
        assert_eq!(get(&a, "displayname"), ["B"]);
        apply(&mut a, &Modification::set("displayname", "C"), &verbatim).unwrap();
        assert_eq!(a.keys().collect::<Vec<_>>(), ["displayname"]);
        apply(&mut a, &Modification::remove("displayName", "C"), &verbatim).unwrap();
        assert!(a.is_empty());
        assert!(apply(&mut a, &Modification::add("bad name", "x"), &verbatim).is_err());
        assert!(apply(&mut a, &Modification::add("ok", ""), &verbatim).is_err());
    }
}
