//! The answers a mail transfer agent in front of mailvault asks for (Postfix's
//! `virtual_mailbox_domains`, `virtual_mailbox_maps` and `virtual_alias_maps`),
//! so it can refuse unknown recipients at RCPT time and expand lists itself.

use crate::account::{self, AccountStatus};
use crate::address::{self, Owner};
use crate::error::Result;
use crate::{Directory, dl};
use rusqlite::OptionalExtension;
use std::collections::HashSet;

impl Directory {
    /// Whether `name` is one of this directory's domains.
    pub fn has_domain(&self, name: &str) -> Result<bool> {
        let name = name.trim().to_ascii_lowercase();
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT 1 FROM domains WHERE name = ?1")?
                .query_row([&name], |_| Ok(()))
                .optional()?
                .is_some())
        })
    }

    /// The primary address of the mailbox `address` names (an account's
    /// primary address or one of its aliases), if its account can receive
    /// mail: closed accounts have none. Lists are not mailboxes (see
    /// [`Directory::expand_alias`]).
    pub fn mailbox_address(&self, address: &str) -> Result<Option<String>> {
        let address = address.trim().to_ascii_lowercase();
        self.read(|conn| match address::owner_of(conn, &address)? {
            Some(Owner::Account(id) | Owner::Alias(id)) => Ok(account::load(conn, &id)?
                .filter(|a| a.status != AccountStatus::Closed)
                .map(|a| a.email)),
            Some(Owner::List(_)) | None => Ok(None),
        })
    }

    /// What `address` is rewritten to before delivery, as Postfix's
    /// `virtual_alias_maps` wants it: an alias gives its account's primary
    /// address; a distribution list gives its members, nested lists expanded
    /// (each list once: cycles end), local members as primary addresses
    /// (closed accounts left out), external members as written, each address
    /// once in first-seen order. `None` for a primary address, an unknown
    /// address, an alias of a closed account and a list that reaches nobody.
    pub fn expand_alias(&self, address: &str) -> Result<Option<Vec<String>>> {
        let address = address.trim().to_ascii_lowercase();
        self.read(|conn| {
            let mut out = Vec::new();
            let mut seen_out = HashSet::new();
            let mut seen_lists = HashSet::new();
            match address::owner_of(conn, &address)? {
                Some(Owner::Account(_)) | None => return Ok(None),
                Some(Owner::Alias(id)) => {
                    return Ok(account::load(conn, &id)?
                        .filter(|a| a.status != AccountStatus::Closed)
                        .map(|a| vec![a.email]));
                }
                Some(Owner::List(id)) => {
                    seen_lists.insert(id.clone());
                    // Depth-first with an explicit stack: deep nesting cannot overflow it.
                    let mut stack: Vec<String> =
                        dl::members(conn, &id)?.into_iter().rev().collect();
                    while let Some(addr) = stack.pop() {
                        match address::owner_of(conn, &addr)? {
                            Some(Owner::Account(id) | Owner::Alias(id)) => {
                                if let Some(a) = account::load(conn, &id)?
                                    && a.status != AccountStatus::Closed
                                    && seen_out.insert(a.email.clone())
                                {
                                    out.push(a.email);
                                }
                            }
                            Some(Owner::List(id)) => {
                                if seen_lists.insert(id.clone()) {
                                    stack.extend(dl::members(conn, &id)?.into_iter().rev());
                                }
                            }
                            None => {
                                if seen_out.insert(addr.clone()) {
                                    out.push(addr);
                                }
                            }
                        }
                    }
                }
            }
            Ok((!out.is_empty()).then_some(out))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{AccountStatus, Directory, Modification};

    #[test]
    fn lookups_for_the_mta() {
        let d = Directory::open_in_memory().unwrap();
        d.create_domain("example.com", &[]).unwrap();
        for u in ["a", "b", "c", "gone"] {
            d.create_account(&format!("{u}@example.com"), None, &[])
                .unwrap();
        }
        d.add_account_alias("a@example.com", "alias-a@example.com")
            .unwrap();
        d.add_account_alias("gone@example.com", "alias-gone@example.com")
            .unwrap();
        d.modify_account(
            "gone@example.com",
            &[Modification::set("zimbraAccountStatus", "closed")],
        )
        .unwrap();
        assert_eq!(
            d.get_account("gone@example.com").unwrap().status,
            AccountStatus::Closed
        );
        d.create_dl("team@example.com", &[]).unwrap();
        d.create_dl("inner@example.com", &[]).unwrap();
        d.create_dl("empty@example.com", &[]).unwrap();
        d.add_dl_members(
            "team@example.com",
            &[
                "b@example.com",
                "inner@example.com",
                "alias-a@example.com",
                "gone@example.com",
            ],
        )
        .unwrap();
        d.add_dl_members(
            "inner@example.com",
            &[
                "team@example.com",
                "c@example.com",
                "Ext@Else.test",
                "b@example.com",
            ],
        )
        .unwrap();
        d.add_dl_members("empty@example.com", &["gone@example.com"])
            .unwrap();

        assert!(d.has_domain("Example.COM").unwrap());
        assert!(!d.has_domain("else.test").unwrap());
        let mb = |a: &str| d.mailbox_address(a).unwrap();
        assert_eq!(mb("A@example.com").as_deref(), Some("a@example.com"));
        assert_eq!(mb("alias-a@example.com").as_deref(), Some("a@example.com"));
        assert_eq!(
            mb("gone@example.com"),
            None,
            "closed accounts have no mailbox"
        );
        assert_eq!(mb("team@example.com"), None);
        assert_eq!(mb("nobody@example.com"), None);
        let ex = |a: &str| d.expand_alias(a).unwrap();
        assert_eq!(ex("a@example.com"), None);
        assert_eq!(
            ex("alias-a@example.com"),
            Some(vec!["a@example.com".into()])
        );
        assert_eq!(ex("alias-gone@example.com"), None);
        assert_eq!(ex("empty@example.com"), None);
        assert_eq!(ex("nobody@example.com"), None);
        // Nested, cycle-safe, each address once, closed members left out.
        assert_eq!(
            ex("TEAM@example.com"),
            Some(vec![
                "a@example.com".into(),
                "b@example.com".into(),
                "c@example.com".into(),
                "ext@else.test".into(),
            ])
        );
    }
}
