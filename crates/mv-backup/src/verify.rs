//! `mailvault backup verify`: proves that sessions can be restored.
//!
//! For each session (or the one `-lb` names): `session.xml` parses and its
//! checksum holds; every file it lists exists with the recorded size (and, with
//! `--read-data`, the recorded BLAKE3); for each account of a full session,
//! `meta.xml` parses, the snapshot opens and passes `PRAGMA integrity_check` and is
//! at the recorded change number, and every digest of `blobs.lst` is in a pack
//! whose index and size are sound; incremental sessions' redo logs are present
//! (and, with `--read-data`, read record by record). Across the target, the redo
//! chain from the oldest sequence the latest fulls need has no gap.
//!
//! `--read-data` reads, decompresses and hashes every blob the checked sessions
//! reference; `--read-data-subset N%` a deterministic sample: the blobs whose
//! digest, read as a number, falls in the first N% of the range (the same blobs on
//! every run, spread evenly over packs and sessions).
//!
//! Every problem names the session and the accounts it affects; nothing panics on
//! damaged input (zero-byte or truncated files are problems like any other).

use crate::catalog::{Catalog, EntryState};
use crate::error::{BackupError, Result};
use crate::label::{Label, SessionKind};
use crate::pack::Pool;
use crate::session::{AccountState, Session, account_dir, parse_blob_list};
use crate::target::Target;
use mv_types::Digest;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// How much blob data to read.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ReadData {
    /// Check presence and index entries only.
    #[default]
    None,
    /// Read every referenced blob.
    All,
    /// Read this percentage (0-100] of the referenced blobs.
    Subset(f64),
}

#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    pub label: Option<Label>,
    pub read_data: ReadData,
}

/// One problem found.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Problem {
    pub session: Option<String>,
    pub path: Option<String>,
    pub message: String,
    /// Accounts (email) whose restore it affects; empty when it cannot be told.
    pub accounts: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct VerifyReport {
    pub target: String,
    pub sessions_checked: u64,
    pub accounts_checked: u64,
    pub packs: u64,
    pub blobs_referenced: u64,
    pub blobs_read: u64,
    pub bytes_read: u64,
    pub redo_logs_checked: u64,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

fn sampled(d: &Digest, read: ReadData) -> bool {
    match read {
        ReadData::None => false,
        ReadData::All => true,
        ReadData::Subset(p) => {
            let x = u64::from_be_bytes(d.0[..8].try_into().expect("8 bytes"));
            (x as f64) < (p / 100.0) * (u64::MAX as f64)
        }
    }
}

struct Verifier<'a> {
    target: &'a dyn Target,
    opts: &'a VerifyOptions,
    pool: Pool,
    report: VerifyReport,
    /// Digests to read → where they are referenced (session, email).
    to_read: HashMap<Digest, Vec<(String, String)>>,
    /// Blob references found in no sound pack, over every session checked.
    missing_blobs: u64,
}

impl Verifier<'_> {
    fn problem(
        &mut self,
        session: Option<&str>,
        path: Option<String>,
        message: String,
        accounts: Vec<String>,
    ) {
        self.report.problems.push(Problem {
            session: session.map(str::to_string),
            path,
            message,
            accounts,
        });
    }

    fn email_for_path(s: &Session, path: &str) -> Vec<String> {
        s.accounts
            .iter()
            .filter(|a| path.starts_with(&format!("{}/", account_dir(&a.zimbra_id))))
            .map(|a| a.email.clone())
            .collect()
    }

    fn session_files(&mut self, s: &Session) -> Result<()> {
        let label = s.label.to_string();
        for f in &s.files {
            let path = f.object_path(&s.label);
            let who = Self::email_for_path(s, &f.path);
            match self.target.size(&path)? {
                None => {
                    self.problem(Some(&label), Some(path), "file is missing".into(), who);
                    continue;
                }
                Some(n) if n != f.size => {
                    self.problem(
                        Some(&label),
                        Some(path),
                        format!(
                            "file is {n} bytes, {} expected (truncated or damaged)",
                            f.size
                        ),
                        who,
                    );
                    continue;
                }
                Some(_) => {}
            }
            if self.opts.read_data != ReadData::None {
                let bytes = self.target.get(&path)?;
                self.report.bytes_read += bytes.len() as u64;
                if blake3::hash(&bytes).to_hex().as_str() != f.blake3 {
                    self.problem(
                        Some(&label),
                        Some(path),
                        "file content does not match its checksum (damaged)".into(),
                        who,
                    );
                }
            }
        }
        Ok(())
    }

    fn account(&mut self, s: &Session, a: &crate::session::SessionAccount) -> Result<()> {
        let label = s.label.to_string();
        let dir = account_dir(&a.zimbra_id);
        let who = vec![a.email.clone()];
        self.report.accounts_checked += 1;
        if s.kind() == SessionKind::Incremental {
            return Ok(());
        }
        // Format 2 keeps the account's metadata in session.xml itself.
        let meta_path = match &a.meta {
            Some(_) => format!("sessions/{label}/session.xml"),
            None => format!("sessions/{label}/{dir}/meta.xml"),
        };
        match s.account_meta(self.target, &a.zimbra_id) {
            Ok(m) => {
                if m.zimbra_id != a.zimbra_id || Some(m.change) != a.change {
                    self.problem(
                        Some(&label),
                        Some(meta_path),
                        "meta.xml disagrees with session.xml".into(),
                        who.clone(),
                    );
                }
            }
            Err(e) => self.problem(Some(&label), Some(meta_path), e.to_string(), who.clone()),
        }
        let db = s.object_path(&format!("{dir}/db/mailbox.sqlite"));
        if let Err(msg) = self.check_db(&db, a.change) {
            self.problem(Some(&label), Some(db), msg, who.clone());
        }
        let lst = s.object_path(&format!("{dir}/blobs.lst"));
        let list = match self
            .target
            .get(&lst)
            .and_then(|b| parse_blob_list(&lst, &b))
        {
            Ok(l) => l,
            Err(e) => {
                self.problem(Some(&label), Some(lst), e.to_string(), who);
                return Ok(());
            }
        };
        let mut missing = 0u64;
        let mut example = None;
        for d in list {
            self.report.blobs_referenced += 1;
            if !self.pool.contains(&d) {
                missing += 1;
                example.get_or_insert(d);
                continue;
            }
            if sampled(&d, self.opts.read_data) {
                self.to_read
                    .entry(d)
                    .or_default()
                    .push((label.clone(), a.email.clone()));
            }
        }
        if missing > 0 {
            self.missing_blobs += missing;
            self.problem(
                Some(&label),
                Some(lst),
                format!(
                    "{missing} blob(s) it references are in no sound pack (e.g. {})",
                    example.map(|d| d.to_hex()).unwrap_or_default()
                ),
                who,
            );
        }
        Ok(())
    }

    /// Opens a snapshot and runs `PRAGMA integrity_check`.
    fn check_db(&mut self, path: &str, change: Option<u64>) -> std::result::Result<(), String> {
        let (local, _scratch) = match self.target.local_path(path) {
            Some(p) => (p, None),
            None => {
                let bytes = self.target.get(path).map_err(|e| e.to_string())?;
                let dir = self.target.scratch_dir().map_err(|e| e.to_string())?;
                let p = dir.join(format!("verify-{}.sqlite", uuid::Uuid::new_v4().simple()));
                std::fs::write(&p, bytes).map_err(|e| e.to_string())?;
                (p.clone(), Some(TempFile(p)))
            }
        };
        let applied = mv_store::SnapshotFile::check(&local).map_err(|e| e.to_string())?;
        if change.is_some_and(|c| c != applied) {
            return Err(format!(
                "the snapshot is at change {applied}, session.xml says {}",
                change.unwrap_or_default()
            ));
        }
        Ok(())
    }

    fn redo_logs(&mut self, s: &Session) -> Result<()> {
        let label = s.label.to_string();
        let all: Vec<String> = s.accounts.iter().map(|a| a.email.clone()).collect();
        for l in &s.redo_logs {
            self.report.redo_logs_checked += 1;
            if self.opts.read_data == ReadData::None {
                continue; // presence and size: checked with the session's files
            }
            let path = format!("sessions/{label}/redologs/{}", l.name);
            let bytes = match self.target.get(&path) {
                Ok(b) => b,
                Err(_) => continue, // reported as a missing file
            };
            let reader = mv_redo::RedoFileReader::from_bytes(path.clone().into(), bytes);
            let result = reader.and_then(|r| {
                if r.header().sequence != l.seq {
                    return Err(mv_redo::RedoError::BadHeader {
                        path: path.clone().into(),
                        reason: format!("sequence {} instead of {}", r.header().sequence, l.seq),
                    });
                }
                for rec in r {
                    rec?;
                }
                Ok(())
            });
            if let Err(e) = result {
                self.problem(Some(&label), Some(path), e.to_string(), all.clone());
            }
        }
        Ok(())
    }

    fn read_blobs(&mut self) {
        let mut digests: Vec<Digest> = self.to_read.keys().copied().collect();
        // Pack order, then offset: sequential reads.
        digests.sort_by_key(|d| {
            self.pool
                .locate(d)
                .map(|l| (l.pack, l.offset))
                .unwrap_or_default()
        });
        let mut bad: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
        for d in digests {
            let Some(loc) = self.pool.locate(&d) else {
                continue;
            };
            self.report.blobs_read += 1;
            self.report.bytes_read += loc.stored_len;
            if let Err(e) = crate::pack::read_at(self.target, &loc, &d) {
                let refs = &self.to_read[&d];
                let mut accounts: Vec<String> = refs
                    .iter()
                    .map(|(s, email)| format!("{email} ({s})"))
                    .collect();
                accounts.sort();
                accounts.dedup();
                let key = format!("{}:{}", loc.path, d.to_hex());
                let message = match e {
                    BackupError::Corrupt { reason, .. } => reason,
                    other => other.to_string(),
                };
                bad.insert(key, (message, accounts));
            }
        }
        for (key, (message, accounts)) in bad {
            let path = key.split(':').next().map(str::to_string);
            let mut emails: Vec<String> = accounts
                .iter()
                .map(|a| a.split(" (").next().unwrap_or(a).to_string())
                .collect();
            emails.sort();
            emails.dedup();
            self.problem(
                None,
                path,
                format!("{message}; referenced by {}", accounts.join(", ")),
                emails,
            );
        }
    }
}

struct TempFile(std::path::PathBuf);
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Verifies a target (or one session of it).
pub fn verify(target: &dyn Target, opts: &VerifyOptions) -> Result<VerifyReport> {
    if let ReadData::Subset(p) = opts.read_data
        && !(p > 0.0 && p <= 100.0)
    {
        return Err(BackupError::Invalid(
            "--read-data-subset takes a percentage above 0 and at most 100".into(),
        ));
    }
    let catalog = Catalog::load(target)?;
    let pool = Pool::load(target)?;
    let mut v = Verifier {
        target,
        opts,
        report: VerifyReport {
            target: target.url(),
            packs: pool.packs().len() as u64,
            ..Default::default()
        },
        pool,
        to_read: HashMap::new(),
        missing_blobs: 0,
    };
    for p in v.pool.problems.clone() {
        v.problem(None, Some(p.path), p.message, Vec::new());
    }
    // accounts.xml is derived from the sessions, but it is what people and the
    // tools read first: damage to it is said, with what repairs it.
    match target.get(crate::accounts_xml::PATH) {
        Ok(bytes) => {
            if let Err(e) = crate::accounts_xml::parse(
                &format!("{}/{}", target.url(), crate::accounts_xml::PATH),
                &bytes,
            ) {
                v.problem(
                    None,
                    Some(crate::accounts_xml::PATH.to_string()),
                    format!("{e} (the next backup or zmbackup -del rewrites it from the sessions)"),
                    Vec::new(),
                );
            }
        }
        Err(BackupError::NotFound(_)) if catalog.sessions().next().is_some() => {
            v.problem(
                None,
                Some(crate::accounts_xml::PATH.to_string()),
                "accounts.xml is missing (the next backup or zmbackup -del rewrites it from the sessions)"
                    .to_string(),
                Vec::new(),
            );
        }
        Err(BackupError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    let entries: Vec<_> = catalog
        .entries
        .iter()
        .filter(|e| opts.label.is_none_or(|l| l == e.label))
        .collect();
    if let Some(l) = opts.label
        && entries.is_empty()
    {
        return Err(BackupError::Invalid(format!(
            "no backup session {l} in {}",
            target.url()
        )));
    }
    for e in entries {
        match &e.state {
            EntryState::InProgress | EntryState::Leftover(_) => continue,
            EntryState::Invalid(reason) => {
                v.report.sessions_checked += 1;
                v.problem(
                    Some(&e.name),
                    None,
                    format!("{}: {reason}", crate::query::MISSING),
                    Vec::new(),
                );
            }
            EntryState::Valid(s) => {
                v.report.sessions_checked += 1;
                v.session_files(s)?;
                for a in s
                    .accounts
                    .iter()
                    .filter(|a| a.state == AccountState::Completed)
                {
                    v.account(s, a)?;
                }
                v.redo_logs(s)?;
            }
        }
    }
    // The redo chain across the target, from the oldest sequence a latest full needs.
    let mut latest: HashMap<String, (u64, String)> = HashMap::new();
    for s in catalog.sessions().filter(|s| s.kind() == SessionKind::Full) {
        for a in s.completed_accounts() {
            if let Some(seq) = a.redo_seq {
                latest.insert(a.zimbra_id.clone(), (seq, a.email.clone()));
            }
        }
    }
    let mut stored = catalog.stored_redo_sequences();
    // Shipped logs and segments (live DR) continue the chain after the sessions.
    if opts.label.is_none() {
        let live = crate::live::list(target)?;
        v.report.redo_logs_checked += (live.logs.len() + live.segments.len()) as u64;
        stored.extend(live.logs.keys().chain(live.segments.keys()));
        stored.sort_unstable();
        stored.dedup();
        for p in crate::live::verify(target)? {
            v.problem(None, Some("live/".to_string()), p, Vec::new());
        }
    }
    if let Some(from) = latest.values().map(|(s, _)| *s).min()
        && !stored.is_empty()
        && let Some(gap) = crate::incr::chain_gap(from, None, &stored)
    {
        let first_missing = match &gap {
            mv_redo::RedoError::Gap { first_missing, .. } => *first_missing,
            _ => 0,
        };
        let mut who: Vec<String> = latest
            .values()
            .filter(|(s, _)| *s <= first_missing)
            .map(|(_, e)| e.clone())
            .collect();
        who.sort();
        v.problem(None, None, gap.to_string(), who);
    }
    // A pack without its index is what an interrupted backup leaves (the next
    // one removes it): harmless while every blob the sessions reference is
    // found. When some are not, the missing index is the likely cause: name it.
    if v.missing_blobs > 0 {
        for zip in v.pool.orphans.clone() {
            let idx = format!("{}.idx", zip.strip_suffix(".zip").unwrap_or(&zip));
            v.problem(
                None,
                Some(idx),
                format!(
                    "pack index is missing: the blobs of {zip} cannot be found (an interrupted \
                     backup leaves such a pack and the next one removes it; otherwise run a full \
                     backup, which writes the blobs again)"
                ),
                Vec::new(),
            );
        }
    }
    v.read_blobs();
    Ok(v.report)
}

/// The text `verify` prints.
pub fn format_text(r: &VerifyReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Verified {}: {} session(s), {} account backup(s), {} pack(s), {} blob reference(s), {} redo log(s)",
        r.target,
        r.sessions_checked,
        r.accounts_checked,
        r.packs,
        r.blobs_referenced,
        r.redo_logs_checked
    );
    if r.blobs_read > 0 || r.bytes_read > 0 {
        let _ = writeln!(
            out,
            "Read {} blob(s); {} read in all",
            r.blobs_read,
            crate::space::human_bytes(r.bytes_read)
        );
    }
    if r.problems.is_empty() {
        let _ = writeln!(out, "No problems found.");
        return out;
    }
    let _ = writeln!(out, "{} problem(s):", r.problems.len());
    for p in &r.problems {
        let mut line = String::from("  ");
        if let Some(s) = &p.session {
            let _ = write!(line, "[{s}] ");
        }
        if let Some(path) = &p.path {
            let _ = write!(line, "{path}: ");
        }
        line.push_str(&p.message);
        let _ = writeln!(out, "{line}");
        if !p.accounts.is_empty() {
            let _ = writeln!(out, "    affects: {}", p.accounts.join(", "));
        }
    }
    out
}
