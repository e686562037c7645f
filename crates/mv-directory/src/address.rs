//! Domain names and email addresses: syntax, normalization (lowercase, as Zimbra
//! stores them) and the one namespace of local addresses (accounts, aliases, lists).

use crate::error::{DirectoryError, Result};
use rusqlite::{Connection, OptionalExtension, params};

/// Lowercases and validates a domain name: dot-separated labels of ASCII letters,
/// digits and '-', each 1–63 long and not starting or ending with '-'.
pub fn normalize_domain(name: &str) -> Result<String> {
    let lower = name.trim().to_ascii_lowercase();
    let bad = |reason| DirectoryError::InvalidDomainName {
        name: name.to_string(),
        reason,
    };
    if lower.is_empty() {
        return Err(bad("it is empty"));
    }
    if lower.len() > 253 {
        return Err(bad("it is longer than 253 characters"));
    }
    for label in lower.split('.') {
        if label.is_empty() {
            return Err(bad(
                "it has an empty label (two dots, or a leading or trailing dot)",
            ));
        }
        if label.len() > 63 {
            return Err(bad("a label is longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(bad("use only ASCII letters, digits, '-' and dots"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("a label starts or ends with '-'"));
        }
    }
    Ok(lower)
}

/// Lowercases and validates `local@domain`. The local part takes RFC 5322 atext
/// characters and dots (no leading, trailing or double dot), at most 64.
pub fn normalize_address(address: &str) -> Result<String> {
    let lower = address.trim().to_ascii_lowercase();
    let bad = |reason| DirectoryError::InvalidAddress {
        address: address.to_string(),
        reason,
    };
    let Some((local, domain)) = lower.split_once('@') else {
        return Err(bad("expected local@domain"));
    };
    if local.is_empty() {
        return Err(bad("the part before '@' is empty"));
    }
    if local.len() > 64 {
        return Err(bad("the part before '@' is longer than 64 characters"));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(bad(
            "the part before '@' has a leading, trailing or double dot",
        ));
    }
    if !local.bytes().all(is_local_char) {
        return Err(bad(
            "the part before '@' may hold only letters, digits and . ! # $ % & ' * + - / = ? ^ _ ` { | } ~",
        ));
    }
    let domain = normalize_domain(domain)
        .map_err(|_| bad("the domain after '@' is not a valid domain name"))?;
    Ok(format!("{local}@{domain}"))
}

fn is_local_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b)
}

/// Splits a normalized address into (local part, domain).
pub fn split(address: &str) -> (&str, &str) {
    address.split_once('@').unwrap_or((address, ""))
}

/// What a local address names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Owner {
    Account(String),
    Alias(String),
    List(String),
}

pub(crate) fn owner_of(conn: &Connection, address: &str) -> Result<Option<Owner>> {
    let row = conn
        .prepare_cached("SELECT kind, account_id, list_id FROM addresses WHERE address = ?1")?
        .query_row([address], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })
        .optional()?;
    // The CHECK constraint guarantees the id column that matches the kind is set.
    Ok(row.map(|(kind, account, list)| match kind.as_str() {
        "account" => Owner::Account(account.unwrap_or_default()),
        "alias" => Owner::Alias(account.unwrap_or_default()),
        _ => Owner::List(list.unwrap_or_default()),
    }))
}

/// Describes who holds `address`, for error messages.
fn describe(conn: &Connection, owner: &Owner) -> String {
    let email = |table: &str, id: &str| -> String {
        conn.query_row(
            &format!("SELECT email FROM {table} WHERE id = ?1"),
            [id],
            |r| r.get::<_, String>(0),
        )
        .unwrap_or_else(|_| id.to_string())
    };
    match owner {
        Owner::Account(id) => format!("account {}", email("accounts", id)),
        Owner::Alias(id) => format!("an alias of account {}", email("accounts", id)),
        Owner::List(id) => format!("distribution list {}", email("lists", id)),
    }
}

/// Fails unless `address` (normalized) is free and its domain exists.
pub(crate) fn check_free(conn: &Connection, address: &str) -> Result<()> {
    let (_, domain) = split(address);
    crate::domain::require_domain(conn, domain)?;
    match owner_of(conn, address)? {
        Some(existing) => Err(DirectoryError::AddressTaken {
            address: address.to_string(),
            owner: describe(conn, &existing),
        }),
        None => Ok(()),
    }
}

/// Claims a normalized address for `owner`; fails if it is taken or its domain does
/// not exist.
pub(crate) fn claim(conn: &Connection, address: &str, owner: &Owner) -> Result<()> {
    check_free(conn, address)?;
    let (_, domain) = split(address);
    let (kind, account, list) = match owner {
        Owner::Account(id) => ("account", Some(id), None),
        Owner::Alias(id) => ("alias", Some(id), None),
        Owner::List(id) => ("list", None, Some(id)),
    };
    conn.prepare_cached(
        "INSERT INTO addresses (address, domain, kind, account_id, list_id) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![address, domain, kind, account, list])?;
    Ok(())
}

pub(crate) fn release(conn: &Connection, address: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM addresses WHERE address = ?1")?
        .execute([address])?;
    Ok(())
}

/// Rewrites every list membership of `old` to `new` (after a rename), or removes
/// them when `new` is None (after a delete), as Zimbra does.
pub(crate) fn update_memberships(conn: &Connection, old: &str, new: Option<&str>) -> Result<()> {
    match new {
        Some(new) => {
            // A list that already holds `new` keeps one membership.
            conn.execute(
                "DELETE FROM list_members WHERE address = ?1 AND list_id IN
                   (SELECT list_id FROM list_members WHERE address = ?2)",
                params![old, new],
            )?;
            conn.execute(
                "UPDATE list_members SET address = ?2 WHERE address = ?1",
                params![old, new],
            )?;
        }
        None => {
            conn.execute("DELETE FROM list_members WHERE address = ?1", [old])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        assert_eq!(normalize_domain("Example.COM").unwrap(), "example.com");
        assert_eq!(normalize_domain("localhost").unwrap(), "localhost");
        assert_eq!(normalize_domain("a-b.c1.org").unwrap(), "a-b.c1.org");
        for bad in [
            "",
            "a..b",
            ".a",
            "a.",
            "-a.b",
            "a-.b",
            "a_b.c",
            "ex ample.com",
            "é.com",
        ] {
            assert!(normalize_domain(bad).is_err(), "{bad}");
        }
        assert!(normalize_domain(&format!("{}.com", "a".repeat(64))).is_err());
    }

    #[test]
    fn addresses() {
        assert_eq!(
            normalize_address(" Bob.Smith@Example.com ").unwrap(),
            "bob.smith@example.com"
        );
        assert_eq!(normalize_address("a+tag=x@b.c").unwrap(), "a+tag=x@b.c");
        for bad in [
            "nobody", "@a.b", "a@", "a@@b", ".a@b.c", "a.@b.c", "a..b@c.d", "a b@c.d", "a,b@c.d",
            "é@a.b", "a@b_c",
        ] {
            assert!(normalize_address(bad).is_err(), "{bad}");
        }
        let e = normalize_address("nobody").unwrap_err().to_string();
        assert!(e.contains("expected local@domain"), "{e}");
    }
}
