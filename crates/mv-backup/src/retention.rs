//! `zmbackup -del ARG`: deleting old sessions without breaking what is kept, and
//! garbage-collecting pack data no session references any more.
//!
//! `ARG` is a label (that session and every older one), a date
//! `YYYY/MM/DD[-hh:mm:ss]` (local time: sessions started before it), or a period
//! `Nd` / `Nm` (months, as in the original) / `Ny` before now.
//!
//! Safe semantics: a session the argument selects is still kept when
//! - it is the latest full backup of an account (the newest restorable point);
//! - it is the last full backup of an account before a kept incremental, or an
//!   incremental between that full and the kept incremental (the chain restore
//!   replays);
//! - it is an incremental needed to roll a kept full forward (up to the account's
//!   next full, which is kept too when it holds redo logs: those archived before
//!   it began).
//!
//! Kept sessions are listed with the reason. Deleted sessions are first renamed
//! `sessions/TO_DELETE-<label>` (so a crash never leaves half a session looking
//! valid), then removed; `accounts.xml` is rebuilt; then packs none of whose blobs
//! any remaining `blobs.lst` references are removed (index first, then the zip).
//! Before the packs, the pieces (account files of format 2 fulls and the
//! sessions' `ldap/ldap.bak`, under `pieces/<label>/`) that no remaining session
//! names go, a whole account's directory at a time, and with them the
//! directories they leave empty (up to `pieces/`). Empty directories earlier
//! versions left there are swept once (see `Target::sweep_empty_dirs_once`).
//! Packs that are only partly live are kept and reported: repacking them is not
//! implemented yet.

use crate::catalog::{Catalog, EntryState};
use crate::error::{BackupError, Result};
use crate::label::{Label, SessionKind};
use crate::pack::PackIndex;
use crate::session::{AccountState, Session, parse_blob_list};
use crate::target::{Target, pack_path};
use chrono::{Days, Local, Months, TimeZone};
use mv_types::{Digest, UtcMillis};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

/// What `-del` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteSpec {
    /// This session and every older one.
    UpTo(Label),
    /// Sessions started before this time.
    Before(UtcMillis),
}

/// Parses a `-del` argument; periods count back from `now` in local time.
pub fn parse_delete_arg(arg: &str, now: UtcMillis) -> Result<DeleteSpec> {
    let a = arg.trim();
    if let Some(l) = Label::parse(a) {
        return Ok(DeleteSpec::UpTo(l));
    }
    let bad = || {
        BackupError::Invalid(format!(
            "invalid -del argument {arg:?}: use a label (full-20140605.080023.296), a date \
             (2014/06/05 or 2014/06/05-01:00:00) or a period such as 30d, 1m (month) or 1y"
        ))
    };
    if let Some(unit) = a.chars().last().filter(|c| "dmyDMY".contains(*c)) {
        let n: u32 = a[..a.len() - 1].parse().map_err(|_| bad())?;
        let local = Local.timestamp_millis_opt(now.0).single().ok_or_else(bad)?;
        let t = match unit.to_ascii_lowercase() {
            'd' => local.checked_sub_days(Days::new(n as u64)),
            'm' => local.checked_sub_months(Months::new(n)),
            _ => n
                .checked_mul(12)
                .and_then(|m| local.checked_sub_months(Months::new(m))),
        }
        .ok_or_else(bad)?;
        return Ok(DeleteSpec::Before(UtcMillis(t.timestamp_millis())));
    }
    // 2014/06/05 or 2014/06/05-01:00:00 (local time)
    let full = if a.len() == 10 {
        format!("{a}-00:00:00")
    } else {
        a.to_string()
    };
    UtcMillis::parse_local(&full)
        .map(DeleteSpec::Before)
        .map_err(|_| bad())
}

/// A session kept although the argument selected it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Kept {
    pub label: String,
    pub reason: String,
}

/// What pack garbage collection did (or would do).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct GcReport {
    pub packs_removed: Vec<String>,
    pub bytes_freed: u64,
    /// Packs kept though partly dead: (pack, percent of bytes still referenced).
    pub partly_live: Vec<(String, u64)>,
    pub orphans_removed: Vec<String>,
    /// Pieces (account files under `pieces/`) no remaining session names.
    #[serde(default)]
    pub pieces_removed: u64,
    /// Why garbage collection did not run, if it did not.
    pub skipped: Option<String>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct DeleteReport {
    pub dry_run: bool,
    pub target: String,
    /// What the argument meant ("older than ...", "up to full-...").
    pub selection: String,
    pub deleted: Vec<String>,
    pub kept: Vec<Kept>,
    pub gc: GcReport,
}

/// Options of a delete.
#[derive(Debug, Clone)]
pub struct DeleteOptions {
    pub spec: DeleteSpec,
    pub dry_run: bool,
    pub lock_wait: Duration,
    /// Accounts whose latest full is protected; `None`: every account of the target.
    pub live_accounts: Option<HashSet<String>>,
    pub now: UtcMillis,
}

/// Decides what goes and what stays (with reasons), without changing anything.
pub fn plan(catalog: &Catalog, opts: &DeleteOptions) -> (Vec<String>, Vec<Kept>) {
    let selected = |l: &Label| match opts.spec {
        DeleteSpec::UpTo(u) => *l <= u,
        DeleteSpec::Before(t) => l.start < t,
    };
    let sessions: Vec<&Session> = catalog.sessions().collect();
    // Why each selected session stays: a reason ("{}" stands for the accounts) and
    // the accounts it applies to.
    let mut keep: BTreeMap<Label, (String, BTreeSet<String>)> = BTreeMap::new();
    let need = |keep: &mut BTreeMap<Label, (String, BTreeSet<String>)>,
                l: Label,
                why: String,
                email: &str| {
        if selected(&l) {
            let e = keep
                .entry(l)
                .or_insert_with(|| (why.clone(), BTreeSet::new()));
            if e.0 == why {
                e.1.insert(email.to_string());
            }
        }
    };
    // Newest full per account.
    let mut latest: BTreeMap<String, (Label, String)> = BTreeMap::new();
    for s in sessions.iter().filter(|s| s.kind() == SessionKind::Full) {
        for a in s.completed_accounts() {
            latest.insert(a.zimbra_id.clone(), (s.label, a.email.clone()));
        }
    }
    for (id, (label, email)) in &latest {
        if opts.live_accounts.as_ref().is_none_or(|l| l.contains(id)) {
            need(
                &mut keep,
                *label,
                "the latest full backup of {}".into(),
                email,
            );
        }
    }
    // Sessions that roll fulls forward: incrementals, and fulls that hold redo
    // logs (those archived since the target's newest one).
    let carries_redo =
        |s: &Session| s.kind() == SessionKind::Incremental || !s.redo_logs.is_empty();
    // Close over what kept sessions need.
    loop {
        let kept_now: Vec<&Session> = sessions
            .iter()
            .copied()
            .filter(|s| !selected(&s.label) || keep.contains_key(&s.label))
            .collect();
        let before: usize = keep.values().map(|(_, a)| a.len()).sum::<usize>() + keep.len();
        for k in kept_now {
            match k.kind() {
                SessionKind::Incremental => {
                    for a in k.completed_accounts() {
                        let full = sessions.iter().rfind(|s| {
                            s.kind() == SessionKind::Full
                                && s.label < k.label
                                && s.account(&a.zimbra_id)
                                    .is_some_and(|x| x.state == AccountState::Completed)
                        });
                        let Some(full) = full else { continue };
                        need(
                            &mut keep,
                            full.label,
                            format!(
                                "the last full backup of {{}} before {}, which is kept",
                                k.label
                            ),
                            &a.email,
                        );
                        for i in sessions.iter().filter(|s| {
                            carries_redo(s) && s.label > full.label && s.label < k.label
                        }) {
                            need(
                                &mut keep,
                                i.label,
                                format!(
                                    "in the redo chain from {} to {}, which is kept (accounts {{}})",
                                    full.label, k.label
                                ),
                                &a.email,
                            );
                        }
                    }
                }
                SessionKind::Full => {
                    for a in k.completed_accounts() {
                        let next_full = sessions
                            .iter()
                            .filter(|s| s.kind() == SessionKind::Full && s.label > k.label)
                            .find(|s| {
                                s.account(&a.zimbra_id)
                                    .is_some_and(|x| x.state == AccountState::Completed)
                            })
                            .map(|s| s.label);
                        // Up to the next full included: the logs a full holds are
                        // those archived before it began.
                        for i in sessions.iter().filter(|s| {
                            carries_redo(s)
                                && s.label > k.label
                                && next_full.is_none_or(|n| s.label <= n)
                        }) {
                            need(
                                &mut keep,
                                i.label,
                                format!("needed to roll {} (kept) forward for {{}}", k.label),
                                &a.email,
                            );
                        }
                    }
                }
            }
        }
        let after: usize = keep.values().map(|(_, a)| a.len()).sum::<usize>() + keep.len();
        if after == before {
            break;
        }
    }
    let keep: BTreeMap<Label, String> = keep
        .into_iter()
        .map(|(l, (why, accounts))| (l, why.replacen("{}", &name_list(&accounts), 1)))
        .collect();
    let mut deleted = Vec::new();
    let mut kept = Vec::new();
    for e in &catalog.entries {
        if !selected(&e.label)
            || matches!(e.state, EntryState::InProgress | EntryState::Leftover(_))
        {
            continue;
        }
        match keep.get(&e.label) {
            Some(reason) => kept.push(Kept {
                label: e.name.clone(),
                reason: reason.clone(),
            }),
            None => deleted.push(e.name.clone()),
        }
    }
    (deleted, kept)
}

/// `a@d, b@d and 3 more`
fn name_list(names: &BTreeSet<String>) -> String {
    let shown: Vec<&str> = names.iter().take(3).map(String::as_str).collect();
    match names.len() {
        0 => "no account".into(),
        n if n <= 3 => shown.join(", "),
        n => format!("{} and {} more", shown.join(", "), n - 3),
    }
}

/// Runs `-del` (or shows what it would do with `dry_run`).
pub fn delete(target: &dyn Target, opts: &DeleteOptions) -> Result<DeleteReport> {
    let _lock = if opts.dry_run {
        None
    } else {
        Some(target.lock("Deletion of backups", opts.lock_wait)?)
    };
    if !opts.dry_run {
        target.clean_pending()?;
        target.purge_retired()?;
    }
    let catalog = Catalog::load(target)?;
    if let DeleteSpec::UpTo(l) = opts.spec
        && catalog.get(&l).is_none()
    {
        return Err(BackupError::Invalid(format!(
            "no backup session {l} in {}",
            target.url()
        )));
    }
    let selection = match opts.spec {
        DeleteSpec::UpTo(l) => format!("{l} and older"),
        DeleteSpec::Before(t) => format!("started before {}", t.display_local()),
    };
    let (deleted, kept) = plan(&catalog, opts);
    if !opts.dry_run {
        for name in &deleted {
            target.retire_session(name)?;
        }
        target.purge_retired()?;
        crate::accounts_xml::rebuild_accounts_xml(target, opts.now)?;
    }
    let gone: HashSet<&str> = deleted.iter().map(String::as_str).collect();
    let gc = gc(target, &gone, opts.dry_run)?;
    Ok(DeleteReport {
        dry_run: opts.dry_run,
        target: target.url(),
        selection,
        deleted,
        kept,
        gc,
    })
}

/// Removes packs none of whose blobs a remaining session references. `gone`:
/// sessions about to be deleted (dry run). Takes no lock: call under one.
pub fn gc(target: &dyn Target, gone: &HashSet<&str>, dry_run: bool) -> Result<GcReport> {
    let mut report = GcReport::default();
    let live_pieces = gc_pieces(target, gone, dry_run, &mut report)?;
    if !dry_run {
        target.sweep_empty_dirs_once("pieces/")?;
    }
    // Liveness from every blobs.lst under sessions/, whatever the state of its
    // session.xml: a damaged session still protects its blobs.
    let mut live: HashSet<Digest> = HashSet::new();
    for o in target.list("pieces/")? {
        let named = live_pieces.as_ref().is_none_or(|l| l.contains(&o.path));
        if !o.path.ends_with("/blobs.lst") || !named {
            continue;
        }
        match target
            .get(&o.path)
            .and_then(|b| parse_blob_list(&o.path, &b))
        {
            Ok(list) => live.extend(list),
            Err(e) => {
                report.skipped = Some(format!(
                    "{e}: pack garbage collection skipped (it cannot tell which blobs are live)"
                ));
                return Ok(report);
            }
        }
    }
    for o in target.list("sessions/")? {
        if !o.path.ends_with("/blobs.lst") {
            continue;
        }
        let session = o.path.split('/').nth(1).unwrap_or("");
        if session.starts_with("TO_DELETE-") || gone.contains(session) {
            continue;
        }
        match target
            .get(&o.path)
            .and_then(|b| parse_blob_list(&o.path, &b))
        {
            Ok(list) => live.extend(list),
            Err(e) => {
                report.skipped = Some(format!(
                    "{e}: pack garbage collection skipped (it cannot tell which blobs are live)"
                ));
                return Ok(report);
            }
        }
    }
    let objects = target.list("packs/")?;
    let names: BTreeSet<&str> = objects.iter().map(|o| o.path.as_str()).collect();
    for o in &objects {
        if let Some(stem) = o.path.strip_suffix(".zip")
            && !names.contains(format!("{stem}.idx").as_str())
        {
            if !dry_run {
                target.delete(&o.path)?;
            }
            report.orphans_removed.push(o.path.clone());
            report.bytes_freed += o.size;
        }
    }
    for o in &objects {
        let Some(stem) = o.path.strip_suffix(".idx") else {
            continue;
        };
        let id = stem.rsplit('/').next().unwrap_or(stem).to_string();
        let index = match target
            .get(&o.path)
            .and_then(|b| PackIndex::decode(&o.path, &b))
        {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!("{e}: pack left alone");
                continue;
            }
        };
        let total: u64 = index.entries.iter().map(|e| e.stored_len).sum();
        let live_bytes: u64 = index
            .entries
            .iter()
            .filter(|e| live.contains(&e.digest))
            .map(|e| e.stored_len)
            .sum();
        let any_live = index.entries.iter().any(|e| live.contains(&e.digest));
        if !any_live {
            if !dry_run {
                target.delete(&pack_path(&id, "idx"))?;
                target.delete(&pack_path(&id, "zip"))?;
            }
            report.bytes_freed += index.zip_size;
            report.packs_removed.push(id);
        } else if live_bytes * 2 < total {
            report
                .partly_live
                .push((id, live_bytes * 100 / total.max(1)));
        }
    }
    Ok(report)
}

/// Removes the pieces no remaining session names (all of an account's pieces of
/// one full at once when none is named). Returns the pieces named, or `None`
/// when a session.xml could not be read: then every piece is kept (it may be
/// that session's) and counts as live.
fn gc_pieces(
    target: &dyn Target,
    gone: &HashSet<&str>,
    dry_run: bool,
    report: &mut GcReport,
) -> Result<Option<HashSet<String>>> {
    let mut named: HashSet<String> = HashSet::new();
    for name in target.session_names()? {
        if name.starts_with("TO_DELETE-") || gone.contains(name.as_str()) {
            continue;
        }
        let path = format!("sessions/{name}/session.xml");
        let session = match target.get(&path) {
            Ok(b) => Session::parse(&path, &b),
            // A directory without session.xml is not a session (an object
            // store's session being written has no session.xml yet either,
            // but no deletion runs beside a backup).
            Err(BackupError::NotFound(_)) => continue,
            Err(e) => Err(e),
        };
        match session {
            Ok(s) => named.extend(
                s.files
                    .iter()
                    .filter(|f| f.from.is_some())
                    .map(|f| f.object_path(&s.label)),
            ),
            Err(e) => {
                tracing::warn!("{e}: no piece removed");
                return Ok(None);
            }
        }
    }
    // pieces/<label>/accounts/<a>/<b>/<zimbraId>/...: grouped by account.
    let mut by_account: BTreeMap<String, Vec<crate::target::ObjectInfo>> = BTreeMap::new();
    for o in target.list("pieces/")? {
        let parts: Vec<&str> = o.path.splitn(7, '/').collect();
        let group = if parts.len() == 7 {
            parts[..6].join("/")
        } else {
            o.path.clone()
        };
        by_account.entry(group).or_default().push(o);
    }
    // What went, so that the directories it leaves empty go too.
    let mut removed: Vec<String> = Vec::new();
    for (group, objects) in by_account {
        if objects.iter().any(|o| named.contains(&o.path)) {
            for o in objects.iter().filter(|o| !named.contains(&o.path)) {
                if !dry_run {
                    target.delete(&o.path)?;
                    removed.push(o.path.clone());
                }
                report.pieces_removed += 1;
                report.bytes_freed += o.size;
            }
            continue;
        }
        if !dry_run {
            if objects.len() == 1 && objects[0].path == group {
                target.delete(&group)?;
            } else {
                target.delete_prefix(&format!("{group}/"))?;
            }
            removed.push(group);
        }
        report.pieces_removed += objects.len() as u64;
        report.bytes_freed += objects.iter().map(|o| o.size).sum::<u64>();
    }
    if !removed.is_empty() {
        target.remove_empty_dirs("pieces/", &removed)?;
    }
    Ok(Some(named))
}

/// The text `zmbackup -del` prints.
pub fn format_text(r: &DeleteReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let (del, keep) = if r.dry_run {
        ("would delete", "would keep  ")
    } else {
        ("deleted", "kept   ")
    };
    let _ = writeln!(out, "Backups {} in {}:", r.selection, r.target);
    if r.deleted.is_empty() && r.kept.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for d in &r.deleted {
        let _ = writeln!(out, "  {del} {d}");
    }
    for k in &r.kept {
        let _ = writeln!(out, "  {keep} {}: {}", k.label, k.reason);
    }
    let g = &r.gc;
    if let Some(s) = &g.skipped {
        let _ = writeln!(out, "Packs: {s}");
    } else {
        let _ = writeln!(
            out,
            "Packs: {} {} ({}){}",
            if r.dry_run { "would remove" } else { "removed" },
            g.packs_removed.len() + g.orphans_removed.len(),
            crate::space::human_bytes(g.bytes_freed),
            if g.orphans_removed.is_empty() {
                String::new()
            } else {
                format!(
                    ", {} of them orphans of interrupted backups",
                    g.orphans_removed.len()
                )
            }
        );
        for (id, pct) in &g.partly_live {
            let _ = writeln!(
                out,
                "  pack {id}: {pct}% of its data is still referenced; kept (repacking is not implemented yet)"
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_kinds_of_argument() {
        let now = UtcMillis::parse_local("2014/06/05 12:00:00").unwrap();
        assert_eq!(
            parse_delete_arg("full-20140605.080023.296", now).unwrap(),
            DeleteSpec::UpTo("full-20140605.080023.296".parse().unwrap())
        );
        assert_eq!(
            parse_delete_arg("2014/06/01", now).unwrap(),
            DeleteSpec::Before(UtcMillis::parse_local("2014/06/01 00:00:00").unwrap())
        );
        assert_eq!(
            parse_delete_arg("2014/06/01-13:14:15", now).unwrap(),
            DeleteSpec::Before(UtcMillis::parse_local("2014/06/01 13:14:15").unwrap())
        );
        assert_eq!(
            parse_delete_arg("1m", now).unwrap(),
            DeleteSpec::Before(UtcMillis::parse_local("2014/05/05 12:00:00").unwrap()),
            "m means months"
        );
        assert_eq!(
            parse_delete_arg("10d", now).unwrap(),
            DeleteSpec::Before(UtcMillis::parse_local("2014/05/26 12:00:00").unwrap())
        );
        assert_eq!(
            parse_delete_arg("1y", now).unwrap(),
            DeleteSpec::Before(UtcMillis::parse_local("2013/06/05 12:00:00").unwrap())
        );
        for bad in ["", "x", "1w", "d", "2014-06-01", "full-2014"] {
            assert!(parse_delete_arg(bad, now).is_err(), "{bad}");
        }
    }
}
