//! `zmrestoreldap`: the directory from a session's `ldap/ldap.bak` (every session
//! holds the whole directory as LDIF, as a piece shared with the sessions after
//! it while the directory does not change), and the redo floor a rebuilt server must
//! continue after.

use crate::catalog::Catalog;
use crate::error::{BackupError, Result};
use crate::label::Label;
use crate::run::LDAP_DUMP;
use crate::session::Session;
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
    Ok(with_dump(target, &catalog)?
        .into_iter()
        .map(|s| LdapSession {
            label: s.label.to_string(),
            accounts: s.accounts.len(),
        })
        .collect())
}

/// The sessions of `catalog` whose dump is in the target, oldest first. A
/// session's dump is where its session.xml says: `pieces/<L>/ldap/ldap.bak` of
/// the session `L` that wrote it (the sessions after it name it again while the
/// directory does not change), or inside the session (older sessions).
fn with_dump<'c>(target: &dyn Target, catalog: &'c Catalog) -> Result<Vec<&'c Session>> {
    let mut out = Vec::new();
    for s in catalog.sessions() {
        if target.size(&s.object_path(LDAP_DUMP))?.is_some() {
            out.push(s);
        }
    }
    Ok(out)
}

/// The dump of session `label`, or of the newest session holding one.
pub fn read_ldap(target: &dyn Target, label: Option<Label>) -> Result<(String, Vec<Entry>)> {
    let catalog = Catalog::load(target)?;
    let session = match label {
        Some(l) => catalog.get(&l).and_then(|e| e.session()).ok_or_else(|| {
            BackupError::Invalid(format!(
                "no readable backup session {l} in {}",
                target.url()
            ))
        })?,
        None => with_dump(target, &catalog)?.pop().ok_or_else(|| {
            BackupError::Invalid(format!(
                "no session in {} holds a directory dump (ldap/ldap.bak)",
                target.url()
            ))
        })?,
    };
    let rel = session.object_path(LDAP_DUMP);
    let shown = format!("{}/{rel}", target.url());
    let entries = parse_ldap(&shown, &target.get(&rel)?)?;
    Ok((session.label.to_string(), entries))
}

/// The directory a disaster restore takes (`zmrestoreldap -t T` without
/// `-lb`): the newest session's dump, or the one continuous shipping put
/// (`live/ldap.bak`) when it was put after that session ended, so accounts
/// created, renamed, deleted or changed since the last backup come back as
/// they were at the last shipped change.
#[derive(Debug, Clone)]
pub struct LatestLdap {
    /// What was read, for people: a session label, or the shipped dump's path.
    pub source: String,
    /// The newest session holding a dump (its identity files go with a rebuilt
    /// server), `None` when only the shipped dump exists.
    pub session: Option<String>,
    pub entries: Vec<Entry>,
}

pub fn read_latest(target: &dyn Target) -> Result<LatestLdap> {
    let catalog = Catalog::load(target)?;
    let newest = with_dump(target, &catalog)?
        .pop()
        .map(|s| (s.label, s.ended.0));
    if let Some((info, entries)) =
        crate::live::directory::newer_than(target, newest.as_ref().map(|(_, ended)| *ended))?
    {
        return Ok(LatestLdap {
            source: format!(
                "{}/{} (shipped {})",
                target.url(),
                crate::live::LDAP_PATH,
                mv_types::UtcMillis(info.written_at)
            ),
            session: newest.map(|(l, _)| l.to_string()),
            entries,
        });
    }
    let (label, entries) = read_ldap(target, newest.map(|(l, _)| l))?;
    Ok(LatestLdap {
        source: label.clone(),
        session: Some(label),
        entries,
    })
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

/// Where a home restored from a target continues the target's redo history: the
/// sequence its next log must have and the highest LSN the target knows.
///
/// The sequence is one past the newest log the target holds, or the sequence a
/// full's snapshot position lies in when that is later: the target holds no copy
/// of the log that was live during that full (it held no record when the full
/// rolled the log over at its end, so there was nothing to copy, or that rollover
/// failed), so a rebuilt server's first log takes that number, and the
/// next incremental copies it after the logs the target holds, with no hole. The
/// home that took the backup is at or past that sequence already and is left alone
/// ([`mv_redo::continue_at`]). `None` when the target knows no redo history.
pub fn redo_floor(target: &dyn Target) -> Result<Option<(u64, u64)>> {
    let catalog = Catalog::load(target)?;
    let mut held = 0;
    let mut position = 0;
    let mut lsn = 0;
    let mut newest_log: Option<(u64, String)> = None;
    for s in catalog.sessions() {
        for a in &s.accounts {
            position = position.max(a.redo_seq.unwrap_or(0));
            lsn = lsn.max(a.redo_lsn.unwrap_or(0));
        }
        if s.redo_logs.is_empty()
            && let Some((_, last)) = s.redo
        {
            // A full's range of snapshot positions.
            position = position.max(last);
        }
        for l in &s.redo_logs {
            held = held.max(l.seq);
            if newest_log.as_ref().is_none_or(|(n, _)| l.seq > *n) {
                newest_log = Some((l.seq, format!("sessions/{}/redologs/{}", s.label, l.name)));
            }
        }
    }
    if let Some((_, rel)) = newest_log {
        let head = target.get_range(&rel, 0, mv_redo::format::HEADER_LEN as u64)?;
        let h = mv_redo::FileHeader::decode(&head)
            .map_err(|reason| BackupError::corrupt(format!("{}/{rel}", target.url()), reason))?;
        lsn = lsn.max(h.last_lsn.0);
    }
    // Shipped logs and segments (live DR) are part of the history: a home that
    // continues it starts after the last shipped sequence, even one held only
    // in segments (its records past them were lost with the server).
    let live = crate::live::list(target)?;
    for l in live.logs.values() {
        if l.sequence > held {
            held = l.sequence;
            let head = target.get_range(&l.path, 0, mv_redo::format::HEADER_LEN as u64)?;
            let h = mv_redo::FileHeader::decode(&head).map_err(|reason| {
                BackupError::corrupt(format!("{}/{}", target.url(), l.path), reason)
            })?;
            lsn = lsn.max(h.last_lsn.0);
        }
    }
    if let Some((seq, segs)) = live.segments.iter().next_back()
        && *seq > held
    {
        held = *seq;
        for s in segs {
            let bytes = target.get(&s.path)?;
            let (m, _) = crate::live::segment::decode(&bytes).map_err(|reason| {
                BackupError::corrupt(format!("{}/{}", target.url(), s.path), reason)
            })?;
            lsn = lsn.max(m.last_lsn);
        }
    }
    if held == 0 && position == 0 {
        return Ok(None);
    }
    Ok(Some(((held + 1).max(position), lsn)))
}
