//! The primary's directory as shipped (`live/ldap.bak`, with `live/ldap.json`
//! saying when), and how a standby makes its own directory match it.
//!
//! The redo log holds mailbox operations only: accounts created, renamed,
//! deleted, passwords, attributes and classes of service live in the
//! directory, so the primary puts its whole export whenever it changed. A
//! disaster restore takes it instead of the newest session's dump when it was
//! put after that session ended ([`newer_than`]); a standby applies it entry by
//! entry through the directory's own API ([`sync`], [`mirror`]): accounts,
//! classes of service, domains, distribution lists, global and server config.

use crate::error::{BackupError, Result};
use crate::target::Target;
use mv_directory::{AccountImport, Directory, Entry, Mirrored};
use std::collections::BTreeSet;

/// The directory export, LDIF, as `ldap/ldap.bak` of a session holds it.
pub const LDAP_PATH: &str = "live/ldap.bak";
/// When `live/ldap.bak` was put ([`DumpInfo`]); put right after it.
pub const LDAP_INFO_PATH: &str = "live/ldap.json";

/// What `live/ldap.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DumpInfo {
    /// When the dump was put (UTC milliseconds, the primary's clock).
    pub written_at: i64,
    pub server: String,
}

/// Puts the directory export, then when it was put. A primary that dies
/// between the two leaves a dump newer than `ldap.json` says, never older, so
/// a reader that trusts the time errs towards the session's dump.
pub fn put(target: &dyn Target, ldif: &[u8], server: &str) -> Result<()> {
    target.put(LDAP_PATH, ldif)?;
    let info = DumpInfo {
        written_at: mv_types::UtcMillis::now().0,
        server: server.to_string(),
    };
    let json = serde_json::to_vec(&info)
        .map_err(|e| BackupError::Invalid(format!("encoding {LDAP_INFO_PATH}: {e}")))?;
    target.put(LDAP_INFO_PATH, &json)
}

/// The shipped dump and when it was put, when it was put after `since` (UTC
/// milliseconds; `None`: whatever its time). `None` when the target holds no
/// dump with its time, or an older one.
pub fn newer_than(
    target: &dyn Target,
    since: Option<i64>,
) -> Result<Option<(DumpInfo, Vec<Entry>)>> {
    let info = match target.get(LDAP_INFO_PATH) {
        Ok(b) => serde_json::from_slice::<DumpInfo>(&b).map_err(|e| {
            BackupError::corrupt(format!("{}/{LDAP_INFO_PATH}", target.url()), e.to_string())
        })?,
        Err(BackupError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    if since.is_some_and(|s| info.written_at <= s) {
        return Ok(None);
    }
    let bytes = match target.get(LDAP_PATH) {
        Ok(b) => b,
        Err(BackupError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let shown = format!("{}/{LDAP_PATH}", target.url());
    Ok(Some((info, crate::ldap::parse_ldap(&shown, &bytes)?)))
}

/// Makes `dir` hold the primary's directory as shipped (`live/ldap.bak`, see
/// [`mirror`]). Returns the digest of the dump applied and what changed, or
/// `None` when the dump is absent or the one `last` names.
pub fn sync(
    target: &dyn Target,
    dir: &Directory,
    last: Option<&str>,
) -> Result<Option<(String, Vec<String>)>> {
    let bytes = match target.get(LDAP_PATH) {
        Ok(b) => b,
        Err(BackupError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let digest = blake3::hash(&bytes).to_hex().to_string();
    if last == Some(digest.as_str()) {
        return Ok(None);
    }
    let shown = format!("{}/{LDAP_PATH}", target.url());
    let entries = crate::ldap::parse_ldap(&shown, &bytes)?;
    Ok(Some((digest, mirror(dir, &entries)?)))
}

/// Global and server configuration attributes a standby keeps as its own
/// instead of following its primary's. Only paths into the home's own disk:
/// the standby's store holds its own redo log open where these say, and
/// promote continues that log after the target's history, so the primary's
/// paths (its disk's layout) must not move it. Everything else follows: the
/// listener ports and the certificate are not in the directory but in each
/// home's `conf/` (the standby keeps its own while it follows, promote takes
/// the primary's from the newest session); the shipping and schedule settings
/// do nothing on a standby (it neither ships nor runs the schedule) and are
/// what it needs once promoted, when it ships into the same target as the
/// primary did; the rest is policy the standby must serve as the primary did.
pub const KEPT_CONFIG: &[&str] = &["zimbraRedoLogLogPath", "zimbraRedoLogArchiveDir"];

/// Makes `dir` hold a whole directory export (`entries`), through the
/// directory's own API, each object by its identity (zimbraId; a domain and a
/// server by name): classes of service and distribution lists the export
/// lacks are deleted first (a new one of the same name may follow), then
/// classes of service and domains created or changed (accounts refer to
/// them), accounts created, renamed, replaced or deleted (their mailbox goes
/// by the redo log's own record), lists created or changed (members
/// included), domains the export lacks deleted, and the global and server
/// configuration set as exported except [`KEPT_CONFIG`]. A server entry the
/// export lacks stays: it is this home's own when it runs on another host.
/// Returns one line per change.
pub fn mirror(dir: &Directory, entries: &[Entry]) -> Result<Vec<String>> {
    let mut changes = Vec::new();
    let ids = |class: &str| -> BTreeSet<&str> {
        entries
            .iter()
            .filter(|e| is(e, class))
            .filter_map(|e| e.values("zimbraId").next())
            .collect()
    };
    let lists = ids("zimbraDistributionList");
    for l in dir.list_dls(None)? {
        if !lists.contains(l.id.as_str()) {
            dir.delete_dl(&l.id)?;
            changes.push(format!("deleted distribution list {}", l.email));
        }
    }
    let classes = ids("zimbraCOS");
    for c in dir.list_cos()? {
        if !classes.contains(c.id.as_str()) && c.name != mv_directory::DEFAULT_COS {
            // Its accounts go to the default class for a moment: their
            // shipped entries name their new class, applied below.
            dir.delete_cos(&c.id, true)?;
            changes.push(format!("deleted class of service {}", c.name));
        }
    }
    for class in ["zimbraCOS", "zimbraDomain"] {
        for e in entries.iter().filter(|e| is(e, class)) {
            put_entry(dir, e, &mut changes)?;
        }
    }
    changes.extend(sync_accounts(dir, entries)?);
    for e in entries.iter().filter(|e| is(e, "zimbraDistributionList")) {
        put_entry(dir, e, &mut changes)?;
    }
    let domains: BTreeSet<String> = entries
        .iter()
        .filter(|e| is(e, "zimbraDomain"))
        .filter_map(|e| e.values("zimbraDomainName").next())
        .map(|d| d.to_ascii_lowercase())
        .collect();
    for d in dir.list_domains()? {
        if !domains.contains(&d.name) {
            // Its accounts and lists are gone already (the export has none).
            dir.delete_domain(&d.name, true)?;
            changes.push(format!("deleted domain {}", d.name));
        }
    }
    for class in ["zimbraGlobalConfig", "zimbraServer"] {
        for e in entries.iter().filter(|e| is(e, class)) {
            put_entry(dir, e, &mut changes)?;
        }
    }
    Ok(changes)
}

/// One entry made to hold as exported; a line in `changes` when it changed.
fn put_entry(dir: &Directory, e: &Entry, changes: &mut Vec<String>) -> Result<()> {
    let (what, named) = match () {
        _ if is(e, "zimbraCOS") => ("class of service", "cn"),
        _ if is(e, "zimbraDomain") => ("domain", "zimbraDomainName"),
        _ if is(e, "zimbraDistributionList") => ("distribution list", "mail"),
        _ if is(e, "zimbraServer") => ("server", "cn"),
        _ => ("global config", ""),
    };
    let name = e.values(named).next().unwrap_or_default();
    let done = match dir.mirror_entry(e, KEPT_CONFIG)? {
        Mirrored::Created => "created",
        Mirrored::Updated => "updated",
        Mirrored::Unchanged => return Ok(()),
    };
    changes.push(format!("{done} {what} {name}").trim_end().to_string());
    Ok(())
}

fn is(e: &Entry, class: &str) -> bool {
    e.values("objectClass").any(|c| c == class)
}

fn sync_accounts(dir: &Directory, entries: &[Entry]) -> Result<Vec<String>> {
    let mut changes = Vec::new();
    let dumped: Vec<&Entry> = entries.iter().filter(|e| is(e, "zimbraAccount")).collect();
    let local = dir.list_accounts(None)?;
    for e in &dumped {
        let (Some(id), Some(mail)) = (e.values("zimbraId").next(), e.values("mail").next()) else {
            continue;
        };
        match local.iter().find(|a| a.id == id) {
            Some(a) => {
                if !a.email.eq_ignore_ascii_case(mail) {
                    dir.rename_account(&a.id, mail)?;
                    changes.push(format!("renamed {} to {mail}", a.email));
                }
                // Same export code on both sides: an equal entry is an equal account.
                if dir.account_entry(&a.id)? != **e {
                    // Replaced in place: same zimbraId and mailbox, list
                    // memberships kept; a new password hash also voids the
                    // IMAP login cache's entries for the old one.
                    let replace = AccountImport {
                        replace: true,
                        ..AccountImport::original()
                    };
                    dir.import_account_entry(e, &replace)?;
                    changes.push(format!("updated {mail}"));
                }
            }
            None => {
                let domain = mail.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
                if dir.get_domain(domain).is_err() {
                    dir.create_domain(domain, &[])?;
                }
                dir.import_account_entry(e, &AccountImport::original())?;
                changes.push(format!("created {mail}"));
            }
        }
    }
    for a in &local {
        if !dumped
            .iter()
            .any(|e| e.values("zimbraId").any(|i| i == a.id))
        {
            dir.delete_account(&a.id)?;
            changes.push(format!("deleted {}", a.email));
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::FsTarget;
    use mv_directory::Modification;

    fn primary() -> Directory {
        let d = Directory::open_in_memory().unwrap();
        d.create_domain("d.test", &[]).unwrap();
        d.create_account("a@d.test", Some("first-pw"), &[]).unwrap();
        d
    }

    fn ship(target: &dyn Target, d: &Directory) {
        put(target, d.export_ldif().unwrap().as_bytes(), "primary").unwrap();
    }

    #[test]
    fn a_dump_counts_as_newer_only_when_put_after_the_session() {
        let dir = tempfile::tempdir().unwrap();
        let target = FsTarget::open(dir.path()).unwrap();
        assert!(
            newer_than(&target, None).unwrap().is_none(),
            "nothing shipped"
        );
        let before = mv_types::UtcMillis::now().0 - 1;
        ship(&target, &primary());
        let (info, entries) = newer_than(&target, Some(before)).unwrap().unwrap();
        assert_eq!(info.server, "primary");
        assert!(
            entries
                .iter()
                .any(|e| e.values("mail").any(|m| m == "a@d.test"))
        );
        assert!(
            newer_than(&target, Some(info.written_at))
                .unwrap()
                .is_none(),
            "a session that ended when the dump was put is as new"
        );
    }

    #[test]
    fn a_standby_directory_takes_new_passwords_and_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let target = FsTarget::open(dir.path()).unwrap();
        let p = primary();
        let standby = Directory::open_in_memory().unwrap();
        ship(&target, &p);
        let (digest, changes) = sync(&target, &standby, None).unwrap().unwrap();
        // A fresh directory made its own default class: the shipped one's
        // id wins.
        assert_eq!(
            changes,
            [
                "updated class of service default",
                "created domain d.test",
                "created a@d.test"
            ]
        );
        assert_eq!(
            standby.default_cos().unwrap().id,
            p.default_cos().unwrap().id
        );
        assert!(standby.verify_password("a@d.test", "first-pw").unwrap());
        // The same dump again: nothing to do.
        assert!(sync(&target, &standby, Some(&digest)).unwrap().is_none());

        p.set_password("a@d.test", "second-pw").unwrap();
        p.modify_account(
            "a@d.test",
            &[Modification::set("displayName", "Alice Follows")],
        )
        .unwrap();
        ship(&target, &p);
        let (_, changes) = sync(&target, &standby, Some(&digest)).unwrap().unwrap();
        assert!(
            changes.contains(&"updated a@d.test".to_string()),
            "{changes:?}"
        );
        assert!(standby.verify_password("a@d.test", "second-pw").unwrap());
        assert!(!standby.verify_password("a@d.test", "first-pw").unwrap());
        let a = standby.get_account("a@d.test").unwrap();
        assert_eq!(a.attr("displayName"), ["Alice Follows".to_string()]);
        assert_eq!(a.id, p.get_account("a@d.test").unwrap().id);
    }

    #[test]
    fn a_standby_directory_follows_classes_domains_lists_and_config() {
        let p = primary();
        let standby = Directory::open_in_memory().unwrap();
        mirror(&standby, &p.export_entries().unwrap()).unwrap();

        let gold = p
            .create_cos("gold", &[Modification::set("zimbraMailQuota", "1024")])
            .unwrap();
        p.set_account_cos("a@d.test", &gold.id).unwrap();
        p.modify_domain("d.test", &[Modification::set("description", "main")])
            .unwrap();
        p.create_domain("e.test", &[]).unwrap();
        p.create_dl("team@d.test", &[]).unwrap();
        p.add_dl_members("team@d.test", &["a@d.test", "x@e.test"])
            .unwrap();
        p.modify_global(&[
            Modification::set("zimbraSmtpHostname", "mx.d.test"),
            Modification::set("zimbraRedoLogArchiveDir", "/primary/archive"),
        ])
        .unwrap();
        let changes = mirror(&standby, &p.export_entries().unwrap()).unwrap();
        for c in [
            "created class of service gold",
            "updated domain d.test",
            "created domain e.test",
            "updated a@d.test",
            "created distribution list team@d.test",
            "updated global config",
        ] {
            assert!(changes.contains(&c.to_string()), "{c}: {changes:?}");
        }
        assert_eq!(standby.get_cos("gold").unwrap().id, gold.id);
        assert_eq!(standby.get_account("a@d.test").unwrap().cos_id, gold.id);
        assert_eq!(
            standby.get_dl("team@d.test").unwrap().members,
            ["a@d.test", "x@e.test"]
        );
        let g = standby.global_explicit().unwrap();
        assert_eq!(
            mv_directory::attrs::get(&g, "zimbraSmtpHostname"),
            ["mx.d.test"]
        );
        assert!(
            mv_directory::attrs::get(&g, "zimbraRedoLogArchiveDir").is_empty(),
            "the standby's own redo log paths stay its own"
        );
        // The same export again: nothing to do.
        assert!(
            mirror(&standby, &p.export_entries().unwrap())
                .unwrap()
                .is_empty()
        );

        p.delete_dl("team@d.test").unwrap();
        p.delete_cos("gold", true).unwrap();
        p.delete_domain("e.test", false).unwrap();
        p.delete_account("a@d.test").unwrap();
        let changes = mirror(&standby, &p.export_entries().unwrap()).unwrap();
        assert_eq!(
            changes,
            [
                "deleted distribution list team@d.test",
                "deleted class of service gold",
                "deleted a@d.test",
                "deleted domain e.test",
            ],
        );
        assert!(standby.get_cos("gold").is_err());
        assert!(standby.get_domain("e.test").is_err());
        assert!(standby.get_dl("team@d.test").is_err());
        assert!(standby.get_account("a@d.test").is_err());
    }
}
