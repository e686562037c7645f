//! `zmrestoreldap`: the directory from a session's `ldap/ldap.bak` (every session
//! holds the whole directory as LDIF), and the redo floor a rebuilt server must
//! continue after.

use crate::catalog::Catalog;
use crate::error::{BackupError, Result};
use crate::label::Label;
use crate::target::Target;
use mv_directory::Entry;

/// A session that holds a directory dump.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LdapSession {
    pub label: String,
    pub accounts: usize,
}

/// An account entry of a dump.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LdapAccount {
    pub email: String,
    pub zimbra_id: String,
}

/// Sessions holding `ldap/ldap.bak`, oldest first (`zmrestoreldap -lbs`).
pub fn ldap_sessions(target: &dyn Target) -> Result<Vec<LdapSession>> {
    let catalog = Catalog::load(target)?;
    let mut out = Vec::new();
    for s in catalog.sessions() {
        if target.size(&ldap_path(&s.label))?.is_some() {
            out.push(LdapSession {
                label: s.label.to_string(),
                accounts: s.accounts.len(),
            });
        }
    }
    Ok(out)
}

fn ldap_path(label: &Label) -> String {
    format!("sessions/{label}/ldap/ldap.bak")
}

/// The dump of session `label`, or of the newest session holding one.
pub fn read_ldap(target: &dyn Target, label: Option<Label>) -> Result<(String, Vec<Entry>)> {
    let label = match label {
        Some(l) => l,
        None => {
            let newest = ldap_sessions(target)?.pop().ok_or_else(|| {
                BackupError::Invalid(format!(
                    "no session in {} holds a directory dump (ldap/ldap.bak)",
                    target.url()
                ))
            })?;
            newest.label.parse()?
        }
    };
    let rel = ldap_path(&label);
    let shown = format!("{}/{rel}", target.url());
    let entries = parse_ldap(&shown, &target.get(&rel)?)?;
    Ok((label.to_string(), entries))
}

/// Parses a dump, naming the file in errors.
pub fn parse_ldap(shown: &str, bytes: &[u8]) -> Result<Vec<Entry>> {
    if bytes.is_empty() {
        return Err(BackupError::corrupt(shown, "the file is empty"));
    }
    mv_directory::ldif::parse(bytes).map_err(|e| BackupError::corrupt(shown, e.to_string()))
}

/// The account entries of a dump (`zmrestoreldap -l`).
pub fn ldap_accounts(entries: &[Entry]) -> Vec<LdapAccount> {
    entries
        .iter()
        .filter(|e| e.values("objectClass").any(|c| c == "zimbraAccount"))
        .map(|e| LdapAccount {
            email: e.values("mail").next().unwrap_or("").to_string(),
            zimbra_id: e.values("zimbraId").next().unwrap_or("").to_string(),
        })
        .collect()
}

/// The highest redo sequence and LSN a target knows of: a server rebuilt from it
/// continues after them ([`mv_redo::continue_after`]), so the next incremental
/// finds neither a gap nor a sequence used twice.
pub fn redo_floor(target: &dyn Target) -> Result<(u64, u64)> {
    let catalog = Catalog::load(target)?;
    let mut seq = 0;
    let mut newest_log: Option<(u64, String)> = None;
    for s in catalog.sessions() {
        if let Some((_, last)) = s.redo {
            seq = seq.max(last);
        }
        for l in &s.redo_logs {
            seq = seq.max(l.seq);
            if newest_log.as_ref().is_none_or(|(n, _)| l.seq > *n) {
                newest_log = Some((l.seq, format!("sessions/{}/redologs/{}", s.label, l.name)));
            }
        }
    }
    let mut lsn = 0;
    if let Some((_, rel)) = newest_log {
        let head = target.get_range(&rel, 0, mv_redo::format::HEADER_LEN as u64)?;
        let h = mv_redo::FileHeader::decode(&head)
            .map_err(|reason| BackupError::corrupt(format!("{}/{rel}", target.url()), reason))?;
        lsn = h.last_lsn.0;
    }
    Ok((seq, lsn))
}
