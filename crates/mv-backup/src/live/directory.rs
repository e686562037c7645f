//! The primary's directory as shipped (`live/ldap.bak`, with `live/ldap.json`
//! saying when), and how a standby makes its own directory match it.
//!
//! The redo log holds mailbox operations only: accounts created, renamed,
//! deleted, passwords, attributes and classes of service live in the
//! directory, so the primary puts its whole export whenever it changed. A
//! disaster restore takes it instead of the newest session's dump when it was
//! put after that session ended ([`newer_than`]); a standby applies it entry by
//! entry through the directory's own API ([`sync`]), by zimbraId.

use crate::error::{BackupError, Result};
use crate::target::Target;
use mv_directory::{AccountImport, Directory, Entry, Modification};

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

/// Makes `dir` hold the accounts and classes of service of the primary's
/// directory as shipped (`live/ldap.bak`): accounts created there are imported
/// (their domain created first when missing), renamed ones renamed, changed
/// ones (password, status, class of service, aliases, attributes) replaced by
/// the shipped entry, deleted ones deleted (their mailbox goes by the redo
/// log's own record); a class of service's attributes follow its shipped
/// entry. Returns the digest of the dump applied and what changed, or `None`
/// when the dump is absent or the one `last` names.
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
    let mut changes = sync_cos(dir, &entries)?;
    changes.extend(sync_accounts(dir, &entries)?);
    Ok(Some((digest, changes)))
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

/// Names of a COS entry that are not its attributes.
const COS_ENTRY_ONLY: &[&str] = &["objectClass", "cn", "zimbraId", "zimbraCreateTimestamp"];

/// A class of service the standby holds (same zimbraId) takes the shipped
/// attributes. One the standby lacks is left to a rebuild: accounts name their
/// class by id, which the directory's API does not let a caller choose.
fn sync_cos(dir: &Directory, entries: &[Entry]) -> Result<Vec<String>> {
    let mut changes = Vec::new();
    let local = dir.list_cos()?;
    for e in entries.iter().filter(|e| is(e, "zimbraCOS")) {
        let Some(id) = e.values("zimbraId").next() else {
            continue;
        };
        let Some(have) = local.iter().find(|c| c.id == id) else {
            continue;
        };
        let mut want: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for (name, value) in &e.attrs {
            if !COS_ENTRY_ONLY.contains(&name.as_str()) {
                want.entry(name.as_str()).or_default().push(value.clone());
            }
        }
        let mut mods: Vec<Modification> = want
            .iter()
            .filter(|(name, values)| have.attrs.get(**name) != Some(*values))
            .map(|(name, values)| Modification::replace(*name, values.clone()))
            .collect();
        mods.extend(
            have.attrs
                .keys()
                .filter(|name| !want.contains_key(name.as_str()))
                .map(|name| Modification::unset(name.clone())),
        );
        if !mods.is_empty() {
            dir.modify_cos(&have.id, &mods)?;
            changes.push(format!("updated class of service {}", have.name));
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::FsTarget;

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
        assert_eq!(changes, vec!["created a@d.test".to_string()]);
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
}
