//! One entry of another directory's export made to hold here as it holds
//! there: how a warm standby's directory follows its primary's, entry by
//! entry, without the whole-directory import (which wants an empty directory).
//!
//! Objects keep the identity the export gives them: a class of service and a
//! distribution list by zimbraId (accounts name their class by id), a domain
//! and a server by name (what everything else refers to them by). The entry is
//! parsed and validated exactly as an import does (`import.rs`), and written in
//! one transaction with the same table code as `zmprov`'s commands.

use crate::attrs::{self, Attrs};
use crate::config::{self, GLOBAL};
use crate::error::{DirectoryError, Result};
use crate::import::{self, Kind};
use crate::ldif::Entry;
use crate::{Directory, account, cos, dl, domain};
use mv_types::MailboxId;
use rusqlite::{Connection, params};

/// What [`Directory::mirror_entry`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mirrored {
    Created,
    Updated,
    Unchanged,
}

/// `want` with the values `have` holds for the names in `keep` (any case)
/// instead of its own.
fn keeping(mut want: Attrs, have: &Attrs, keep: &[&str]) -> Attrs {
    want.retain(|name, _| !keep.iter().any(|k| k.eq_ignore_ascii_case(name)));
    for (name, values) in have {
        if keep.iter().any(|k| k.eq_ignore_ascii_case(name)) {
            want.insert(name.clone(), values.clone());
        }
    }
    want
}

fn put_attrs(conn: &Connection, owner: &str, have: &Attrs, want: &Attrs) -> Result<Mirrored> {
    if have == want {
        return Ok(Mirrored::Unchanged);
    }
    attrs::store(conn, owner, want)?;
    Ok(Mirrored::Updated)
}

fn mirror(conn: &Connection, e: &Entry, kind: Kind, keep: &[&str]) -> Result<Mirrored> {
    let bad = |r: String| import::import_err(e, r);
    match kind {
        Kind::Cos => {
            let c = import::parse_cos(e).map_err(bad)?;
            let Some(have) = cos::load(conn, &c.id)?.filter(|h| h.id == c.id) else {
                if let Some(old) = cos::load(conn, &c.name)? {
                    // The same class under another id (each directory made
                    // its own `default`): the entry's id wins, and the
                    // accounts of the old one move to it.
                    conn.execute(
                        "UPDATE cos SET name = ?2 WHERE id = ?1",
                        params![old.id, format!("{}.{}", old.name, old.id)],
                    )?;
                    cos::insert(conn, &c)?;
                    conn.execute(
                        "UPDATE accounts SET cos_id = ?2 WHERE cos_id = ?1",
                        params![old.id, c.id],
                    )?;
                    attrs::delete(conn, &old.id)?;
                    conn.execute("DELETE FROM cos WHERE id = ?1", [&old.id])?;
                    return Ok(Mirrored::Updated);
                }
                cos::insert(conn, &c)?;
                return Ok(Mirrored::Created);
            };
            let mut done = Mirrored::Unchanged;
            if have.name != c.name {
                if cos::load(conn, &c.name)?.is_some_and(|o| o.id != c.id) {
                    return Err(DirectoryError::CosExists(c.name));
                }
                conn.execute(
                    "UPDATE cos SET name = ?2 WHERE id = ?1",
                    params![c.id, c.name],
                )?;
                done = Mirrored::Updated;
            }
            match put_attrs(conn, &c.id, &have.attrs, &c.attrs)? {
                Mirrored::Unchanged => Ok(done),
                other => Ok(other),
            }
        }
        Kind::Domain => {
            let d = import::parse_domain(e).map_err(bad)?;
            match domain::load(conn, &d.name)? {
                None => {
                    domain::insert(conn, &d)?;
                    Ok(Mirrored::Created)
                }
                Some(have) => put_attrs(conn, &have.id, &have.attrs, &d.attrs),
            }
        }
        Kind::List => {
            let l = import::parse_list(e).map_err(bad)?;
            let have = dl::load(conn, &l.id)?;
            match have {
                None => {
                    dl::insert(conn, &l)?;
                    Ok(Mirrored::Created)
                }
                // Lists cannot be renamed: one under another address is
                // another list as far as this directory goes.
                Some(h) if h.email != l.email => {
                    dl::delete(conn, &h.id)?;
                    dl::insert(conn, &l)?;
                    Ok(Mirrored::Updated)
                }
                Some(h) if h.members == l.members && h.attrs == l.attrs => Ok(Mirrored::Unchanged),
                Some(h) => {
                    conn.execute("DELETE FROM list_members WHERE list_id = ?1", [&h.id])?;
                    dl::add_members(conn, &h.id, &l.members)?;
                    attrs::store(conn, &h.id, &l.attrs)?;
                    Ok(Mirrored::Updated)
                }
            }
        }
        Kind::Global => {
            let (want, next) = import::parse_global(e).map_err(bad)?;
            if let Some(next) = next {
                // The counter only moves forward: an id the other directory
                // handed out is never handed out here.
                account::bump_mailbox_counter(conn, MailboxId(next.saturating_sub(1)))?;
            }
            let have = attrs::load(conn, GLOBAL)?;
            let want = keeping(want, &have, keep);
            put_attrs(conn, GLOBAL, &have, &want)
        }
        Kind::Server => {
            let s = import::parse_server(e).map_err(bad)?;
            match config::load_server(conn, &s.name)? {
                None => {
                    config::insert_server(conn, &s)?;
                    Ok(Mirrored::Created)
                }
                Some(have) => {
                    let want = keeping(s.attrs, &have.attrs, keep);
                    put_attrs(conn, &have.id, &have.attrs, &want)
                }
            }
        }
        Kind::Account | Kind::Container => Err(import::import_err(
            e,
            "not a class of service, domain, distribution list, global config or server entry \
             (an account is imported whole, a container holds nothing to mirror)",
        )),
    }
}

impl Directory {
    /// Makes this directory hold `entry` (one of another directory's export:
    /// a class of service, domain, distribution list, the global config or a
    /// server) as it is there: created when absent (with its zimbraId),
    /// replaced in place when it differs. Configuration attributes named in
    /// `keep` stay as this directory holds them. Nothing changes on an error,
    /// which names the entry and what is wrong with it.
    pub fn mirror_entry(&self, entry: &Entry, keep: &[&str]) -> Result<Mirrored> {
        let kind = import::classify(entry)?;
        let mut w = self.writer();
        let tx = w.transaction()?;
        let done = mirror(&tx, entry, kind, keep)?;
        tx.commit()?;
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Modification;

    fn entry(d: &Directory, dn_start: &str) -> Entry {
        d.export_entries()
            .unwrap()
            .into_iter()
            .find(|e| e.dn.starts_with(dn_start))
            .unwrap_or_else(|| panic!("no entry {dn_start}"))
    }

    #[test]
    fn entries_are_created_with_their_ids_and_replaced_in_place() {
        let a = Directory::open_in_memory().unwrap();
        let b = Directory::open_in_memory().unwrap();
        a.create_domain("d.test", &[Modification::set("description", "one")])
            .unwrap();
        let gold = a
            .create_cos("gold", &[Modification::set("zimbraMailQuota", "1024")])
            .unwrap();
        a.create_dl("team@d.test", &[]).unwrap();
        a.add_dl_members("team@d.test", &["x@d.test", "y@other.test"])
            .unwrap();
        for dn in ["dc=d,dc=test", "cn=gold,", "uid=team,"] {
            assert_eq!(
                b.mirror_entry(&entry(&a, dn), &[]).unwrap(),
                Mirrored::Created
            );
            assert_eq!(
                b.mirror_entry(&entry(&a, dn), &[]).unwrap(),
                Mirrored::Unchanged
            );
        }
        assert_eq!(b.get_cos("gold").unwrap().id, gold.id);
        assert_eq!(b.get_dl("team@d.test").unwrap().members.len(), 2);

        a.modify_domain("d.test", &[Modification::set("description", "two")])
            .unwrap();
        a.modify_cos("gold", &[Modification::set("zimbraMailQuota", "2048")])
            .unwrap();
        a.remove_dl_members("team@d.test", &["x@d.test"]).unwrap();
        for dn in ["dc=d,dc=test", "cn=gold,", "uid=team,"] {
            assert_eq!(
                b.mirror_entry(&entry(&a, dn), &[]).unwrap(),
                Mirrored::Updated
            );
        }
        assert_eq!(
            attrs::get(&b.get_domain("d.test").unwrap().attrs, "description"),
            ["two"]
        );
        assert_eq!(
            attrs::get(&b.get_cos(&gold.id).unwrap().attrs, "zimbraMailQuota"),
            ["2048"]
        );
        assert_eq!(
            b.get_dl("team@d.test").unwrap().members,
            ["y@other.test".to_string()]
        );
    }

    #[test]
    fn kept_config_attributes_stay_as_they_are() {
        let a = Directory::open_in_memory().unwrap();
        let b = Directory::open_in_memory().unwrap();
        a.modify_global(&[
            Modification::set("zimbraSmtpHostname", "mx.d.test"),
            Modification::set("zimbraRedoLogArchiveDir", "/primary/archive"),
        ])
        .unwrap();
        b.modify_global(&[Modification::set("zimbraRedoLogArchiveDir", "/own/archive")])
            .unwrap();
        let keep = ["zimbraRedoLogArchiveDir"];
        let g = entry(&a, "cn=config,");
        assert_eq!(b.mirror_entry(&g, &keep).unwrap(), Mirrored::Updated);
        assert_eq!(b.mirror_entry(&g, &keep).unwrap(), Mirrored::Unchanged);
        let have = b.global_explicit().unwrap();
        assert_eq!(attrs::get(&have, "zimbraSmtpHostname"), ["mx.d.test"]);
        assert_eq!(
            attrs::get(&have, "zimbraRedoLogArchiveDir"),
            ["/own/archive"]
        );

        a.ensure_server("mail.d.test").unwrap();
        a.modify_server(
            "mail.d.test",
            &[Modification::set("zimbraSmtpPort", "2525")],
        )
        .unwrap();
        let s = entry(&a, "cn=mail.d.test,");
        assert_eq!(b.mirror_entry(&s, &keep).unwrap(), Mirrored::Created);
        assert_eq!(
            attrs::get(
                &b.get_server("mail.d.test").unwrap().attrs,
                "zimbraSmtpPort"
            ),
            ["2525"]
        );
        let account = {
            a.create_domain("d.test", &[]).unwrap();
            a.create_account("u@d.test", None, &[]).unwrap();
            entry(&a, "uid=u,")
        };
        assert!(b.mirror_entry(&account, &keep).is_err());
    }
}
