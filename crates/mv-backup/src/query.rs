//! `zmbackupquery`: the sessions of a target, in the original's layout or as JSON.
//!
//! ```text
//! Label:   full-20140605.080023.296
//! Type:    full
//! Status:  completed
//! Started: Thu, 2014/06/05 01:00:23.296 PDT
//! Ended:   Thu, 2014/06/05 01:01:02.144 PDT
//! Redo log sequence range: 53 .. 53
//! Number of accounts: 12
//! ```
//!
//! Sessions are listed newest first, separated by blank lines. With `-a`, per
//! account: `Account: u@d` and below it each backup that holds it (Label, Type,
//! Started, Ended, Acct ID). `-v` adds each session's accounts and errors.

use crate::catalog::{Catalog, EntryState};
use crate::error::Result;
use crate::label::{Label, SessionKind};
use crate::session::{AccountState, SessionError};
use crate::target::Target;
use mv_types::UtcMillis;
use serde::Serialize;
use std::fmt::Write as _;

/// `zmbackupquery` options.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// `-lb`
    pub label: Option<Label>,
    /// `-a` (addresses or zimbraIds; `all` for every account)
    pub accounts: Vec<String>,
    /// `--type`
    pub kind: Option<SessionKind>,
    /// `--from` / `--to`: sessions that started in this window.
    pub from: Option<UtcMillis>,
    pub to: Option<UtcMillis>,
    /// `-v`
    pub verbose: bool,
    /// (name, zimbraId) pairs the live directory gives for names in `accounts`: a
    /// renamed account's new address finds its backups under its older ones.
    pub resolved: Vec<(String, String)>,
}

/// An account of a session, as listed.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct AccountLine {
    pub email: String,
    pub zimbra_id: String,
    pub status: AccountState,
}

/// One session, as listed.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SessionLine {
    pub label: String,
    #[serde(rename = "type")]
    pub kind: SessionKind,
    pub status: String,
    pub started: UtcMillis,
    pub started_utc: String,
    pub ended: Option<UtcMillis>,
    pub ended_utc: Option<String>,
    pub redo_first: Option<u64>,
    pub redo_last: Option<u64>,
    pub number_of_accounts: Option<usize>,
    pub accounts: Vec<AccountLine>,
    pub errors: Vec<SessionError>,
    /// Why a session is "missing, incomplete, or invalid".
    pub problem: Option<String>,
    /// With `-a`: the address the account had in this backup (renames).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// An account's backups (`-a`).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct AccountBackups {
    pub account: String,
    pub zimbra_id: Option<String>,
    pub backups: Vec<SessionLine>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct QueryResult {
    pub target: String,
    pub sessions: Vec<SessionLine>,
    /// Filled with `-a`.
    pub accounts: Vec<AccountBackups>,
    /// What continuous redo shipping holds in the target (live DR), when it
    /// holds anything and no session filter was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping: Option<Shipping>,
}

/// The target's `live/`: what a restore can reach past the last session.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Shipping {
    pub logs: usize,
    /// Sequences held only as segments (the log that was open).
    pub segment_sequences: Vec<u64>,
    /// The shipper's last round (`live/state.json`).
    pub last_round: Option<crate::live::ShipState>,
    pub last_round_utc: Option<String>,
    pub last_record_utc: Option<String>,
}

fn shipping(target: &dyn Target) -> Result<Option<Shipping>> {
    let listing = crate::live::list(target)?;
    let state = crate::live::read_state(target)?;
    if listing.is_empty() && state.is_none() {
        return Ok(None);
    }
    let utc = |ms: i64| mv_types::UtcMillis(ms).rfc3339();
    Ok(Some(Shipping {
        logs: listing.logs.len(),
        segment_sequences: listing
            .segments
            .keys()
            .filter(|s| !listing.logs.contains_key(s))
            .copied()
            .collect(),
        last_round_utc: state.as_ref().map(|s| utc(s.written_at)),
        last_record_utc: state
            .as_ref()
            .filter(|s| s.record_time > 0)
            .map(|s| utc(s.record_time)),
        last_round: state,
    }))
}

pub const MISSING: &str = "missing, incomplete, or invalid";

fn line(e: &crate::catalog::CatalogEntry, verbose: bool) -> SessionLine {
    let base = SessionLine {
        label: e.name.clone(),
        kind: e.label.kind,
        status: MISSING.to_string(),
        started: e.label.start,
        started_utc: e.label.start.rfc3339(),
        ended: None,
        ended_utc: None,
        redo_first: None,
        redo_last: None,
        number_of_accounts: None,
        accounts: Vec::new(),
        errors: Vec::new(),
        problem: None,
        address: None,
    };
    match &e.state {
        EntryState::InProgress => SessionLine {
            status: "in progress".into(),
            ..base
        },
        EntryState::Invalid(reason) | EntryState::Leftover(reason) => SessionLine {
            problem: Some(reason.clone()),
            ..base
        },
        EntryState::Valid(s) => SessionLine {
            status: s.status.display().to_string(),
            started: s.started,
            started_utc: s.started.rfc3339(),
            ended: Some(s.ended),
            ended_utc: Some(s.ended.rfc3339()),
            redo_first: s.redo.map(|r| r.0),
            redo_last: s.redo.map(|r| r.1),
            number_of_accounts: Some(s.accounts.len()),
            accounts: if verbose {
                s.accounts
                    .iter()
                    .map(|a| AccountLine {
                        email: a.email.clone(),
                        zimbra_id: a.zimbra_id.clone(),
                        status: a.state,
                    })
                    .collect()
            } else {
                Vec::new()
            },
            errors: s.errors.clone(),
            ..base
        },
    }
}

/// Lists sessions (newest first).
pub fn query(target: &dyn Target, opts: &QueryOptions) -> Result<QueryResult> {
    let catalog = Catalog::load(target)?;
    let selected: Vec<&crate::catalog::CatalogEntry> = catalog
        .entries
        .iter()
        .rev()
        .filter(|e| opts.label.is_none_or(|l| l == e.label))
        .filter(|e| opts.kind.is_none_or(|k| k == e.label.kind))
        .filter(|e| opts.from.is_none_or(|f| e.label.start >= f))
        .filter(|e| opts.to.is_none_or(|t| e.label.start <= t))
        .collect();
    let mut result = QueryResult {
        target: target.url(),
        sessions: Vec::new(),
        accounts: Vec::new(),
        shipping: None,
    };
    if opts.label.is_none() && opts.kind.is_none() && opts.from.is_none() && opts.to.is_none() {
        result.shipping = shipping(target)?;
    }
    if opts.accounts.is_empty() {
        result.sessions = selected.iter().map(|e| line(e, opts.verbose)).collect();
        return Ok(result);
    }
    // Backups are keyed by zimbraId: a name is every account that ever had it
    // (a renamed account's current and former addresses find its whole history).
    let all = opts.accounts.iter().any(|a| a.eq_ignore_ascii_case("all"));
    let mut wanted: Vec<(String, Vec<String>)> = Vec::new();
    if all {
        let mut newest: Vec<(String, String)> = Vec::new();
        for s in catalog.sessions() {
            for a in &s.accounts {
                match newest.iter_mut().find(|(id, _)| *id == a.zimbra_id) {
                    Some(e) => e.1 = a.email.clone(),
                    None => newest.push((a.zimbra_id.clone(), a.email.clone())),
                }
            }
        }
        newest.sort_by(|a, b| a.1.cmp(&b.1));
        wanted.extend(newest.into_iter().map(|(id, email)| (email, vec![id])));
    } else {
        for name in &opts.accounts {
            let name = name.to_ascii_lowercase();
            if wanted.iter().any(|(n, _)| *n == name) {
                continue;
            }
            let mut ids: Vec<String> = opts
                .resolved
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(&name))
                .map(|(_, id)| id.clone())
                .collect();
            for s in catalog.sessions().rev() {
                for a in &s.accounts {
                    if (a.email.eq_ignore_ascii_case(&name) || a.zimbra_id == name)
                        && !ids.contains(&a.zimbra_id)
                    {
                        ids.push(a.zimbra_id.clone());
                    }
                }
            }
            wanted.push((name, ids));
        }
    }
    for (name, ids) in wanted {
        if ids.is_empty() {
            result.accounts.push(AccountBackups {
                account: name,
                zimbra_id: None,
                backups: Vec::new(),
            });
            continue;
        }
        for id in ids {
            let mut backups = Vec::new();
            for e in &selected {
                let Some(s) = e.session() else { continue };
                let Some(a) = s
                    .accounts
                    .iter()
                    .find(|a| a.state == AccountState::Completed && a.zimbra_id == id)
                else {
                    continue;
                };
                let mut l = line(e, opts.verbose);
                l.address = Some(a.email.clone());
                backups.push(l);
            }
            result.accounts.push(AccountBackups {
                account: name.clone(),
                zimbra_id: Some(id),
                backups,
            });
        }
    }
    Ok(result)
}

fn session_block(out: &mut String, s: &SessionLine, indent: &str, verbose: bool) {
    let _ = writeln!(out, "{indent}Label:   {}", s.label);
    let _ = writeln!(out, "{indent}Type:    {}", s.kind.as_str());
    let _ = writeln!(out, "{indent}Status:  {}", s.status);
    let _ = writeln!(
        out,
        "{indent}Started: {}",
        s.started.display_local_with_weekday()
    );
    if let Some(ended) = s.ended {
        let _ = writeln!(
            out,
            "{indent}Ended:   {}",
            ended.display_local_with_weekday()
        );
    }
    match (s.redo_first, s.redo_last) {
        (Some(a), Some(b)) => {
            let _ = writeln!(out, "{indent}Redo log sequence range: {a} .. {b}");
        }
        _ if s.ended.is_some() => {
            let _ = writeln!(out, "{indent}Redo log sequence range: (none)");
        }
        _ => {}
    }
    if let Some(n) = s.number_of_accounts {
        let _ = writeln!(out, "{indent}Number of accounts: {n}");
    }
    if !s.errors.is_empty() {
        let _ = writeln!(out, "{indent}Number of errors: {}", s.errors.len());
    }
    if verbose {
        if !s.accounts.is_empty() {
            let _ = writeln!(out, "{indent}Accounts:");
            for a in &s.accounts {
                let state = match a.status {
                    AccountState::Completed => "completed",
                    AccountState::Error => "error",
                    AccountState::Skipped => "skipped (aborted)",
                };
                let _ = writeln!(out, "{indent}  {} ({state})", a.email);
            }
        }
        if !s.errors.is_empty() {
            let _ = writeln!(out, "{indent}Errors:");
            for e in &s.errors {
                match &e.account {
                    Some(a) => {
                        let _ = writeln!(out, "{indent}  {a}: {}", e.message);
                    }
                    None => {
                        let _ = writeln!(out, "{indent}  {}", e.message);
                    }
                }
            }
        }
        if let Some(p) = &s.problem {
            let _ = writeln!(out, "{indent}Problem: {p}");
        }
    }
}

/// The original's text layout.
pub fn format_text(r: &QueryResult, verbose: bool) -> String {
    let mut out = String::new();
    if r.accounts.is_empty() {
        for (i, s) in r.sessions.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            session_block(&mut out, s, "", verbose);
        }
        if let Some(sh) = &r.shipping {
            if !out.is_empty() {
                out.push('\n');
            }
            shipping_block(&mut out, sh);
        }
        return out;
    }
    for (i, a) in r.accounts.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "Account: {}", a.account);
        if a.backups.is_empty() {
            let _ = writeln!(out, "\n  No backup found");
        }
        for s in &a.backups {
            out.push('\n');
            let _ = writeln!(out, "  Label:   {}", s.label);
            let _ = writeln!(out, "  Type:    {}", s.kind.as_str());
            let _ = writeln!(out, "  Started: {}", s.started.display_local_with_weekday());
            if let Some(e) = s.ended {
                let _ = writeln!(out, "  Ended:   {}", e.display_local_with_weekday());
            }
            if let Some(id) = &a.zimbra_id {
                let _ = writeln!(out, "  Acct ID: {id}");
            }
            if let Some(addr) = &s.address
                && !addr.eq_ignore_ascii_case(&a.account)
            {
                let _ = writeln!(out, "  Address: {addr} (at the time of this backup)");
            }
        }
    }
    out
}

/// The continuous shipping lines of the listing.
fn shipping_block(out: &mut String, sh: &Shipping) {
    let _ = writeln!(out, "Continuous redo shipping:");
    let _ = writeln!(
        out,
        "  Shipped: {} closed logs; segments of sequence {}",
        sh.logs,
        if sh.segment_sequences.is_empty() {
            "none".to_string()
        } else {
            sh.segment_sequences
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    if let Some(st) = &sh.last_round {
        let _ = writeln!(
            out,
            "  Through: sequence {}, LSN {}{}",
            st.sequence,
            st.lsn,
            sh.last_record_utc
                .as_deref()
                .map(|t| format!(" (record of {t})"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "  Lag:     {} records, {} bytes, {:.0}s behind at {} (server {})",
            st.lag.records,
            st.lag.bytes,
            st.lag.seconds,
            sh.last_round_utc.as_deref().unwrap_or("?"),
            st.server
        );
    }
}
