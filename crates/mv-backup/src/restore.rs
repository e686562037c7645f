//! Restoring one account from a target (`zmrestore`), into a new account beside the
//! original (`-ca -pre PREFIX`).
//!
//! 1. The full: `-lb`, else the newest full holding the account whose snapshot is
//!    at or before the restore point.
//! 2. The snapshot database is copied next to the target mailbox's database, its
//!    meta rewritten for the target mailbox, and every blob it references is
//!    written from the pool to its store path for the target mailbox.
//! 3. Redo records of the original mailbox above the snapshot's change, in order:
//!    incrementals' redo logs (sessions after the full), then (unless `-br`/`-rf`)
//!    the home's archive and redo.log; deduplicated by sequence; the chain from the
//!    snapshot's sequence is checked (the original's gap text; with
//!    `--ignoreRedoErrors` replay stops at the gap and the skipped range is
//!    reported); cut at the restore point; delete ops dropped with `--skipDeletes`.
//! 4. They are replayed, remapped to the target mailbox, with the content records
//!    of the same files, through [`mv_store::Store::replay`] (the one apply path).
//!
//! A failure removes what was written (database, blobs, directory entry): the live
//! store is never touched outside the new mailbox.
//!
//! Not yet: replacing the original account in place (without `-ca`), `-ra`.

use crate::catalog::Catalog;
use crate::error::{BackupError, Result};
use crate::label::{Label, SessionKind};
use crate::pack::Pool;
use crate::run::Source;
use crate::session::{AccountMeta, AccountState, Session, account_dir};
use crate::target::Target;
use mv_directory::AccountImport;
use mv_redo::Record;
use mv_types::{ChangeNumber, Digest, ItemId, MailboxId, UtcMillis};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What and how to restore one account.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub label: Option<Label>,
    pub full_only: bool,
    pub backup_redo_only: bool,
    pub to_time: Option<UtcMillis>,
    pub to_incr_label: Option<Label>,
    pub to_redo_seq: Option<u64>,
    pub ignore_redo_errors: bool,
    pub skip_deletes: bool,
    /// `-ca -pre PREFIX`: restore into PREFIX+address.
    pub new_account_prefix: Option<String>,
    /// How many restore points the user gave in all (several of one kind count
    /// each): with more than one, the report says which time was used.
    pub restore_points: usize,
}

/// What restoring one account did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AccountRestoreReport {
    pub email: String,
    pub restored_as: String,
    pub mailbox_id: u32,
    pub full_label: String,
    pub redo_files: u64,
    pub applied: u64,
    pub skipped_deletes: u64,
    /// Redo ranges left out because of `--ignoreRedoErrors`.
    pub skipped: Vec<String>,
    /// "using restore to time of ..." when several restore points were given.
    pub notes: Vec<String>,
}

fn rel(label: &Label, path: &str) -> String {
    format!("sessions/{label}/{path}")
}

/// Restores one account (by address) from `target` into the store of `source`.
pub fn restore_account(
    source: &Source,
    target: &dyn Target,
    email: &str,
    opts: &RestoreOptions,
) -> Result<AccountRestoreReport> {
    let Some(prefix) = &opts.new_account_prefix else {
        return Err(BackupError::Unsupported(
            "restoring over the original account is not implemented yet; use -ca -pre PREFIX"
                .into(),
        ));
    };
    let catalog = Catalog::load(target)?;
    if let Some(l) = opts.label
        && let Some(e) = catalog.get(&l)
        && let crate::catalog::EntryState::Invalid(reason) = &e.state
    {
        return Err(BackupError::Invalid(format!(
            "{reason}; the session {l} cannot be restored from: choose another full with -lb"
        )));
    }
    let sessions: Vec<&Session> = catalog.sessions().collect();
    let zimbra_id = sessions
        .iter()
        .rev()
        .find_map(|s| {
            s.accounts
                .iter()
                .find(|a| a.email.eq_ignore_ascii_case(email))
        })
        .map(|a| a.zimbra_id.clone())
        .ok_or_else(|| BackupError::Invalid(format!("{email}: no backup of this account")))?;
    let dir = account_dir(&zimbra_id);
    // 1. The full.
    let point_time = opts.to_time;
    let mut chosen: Option<(&Session, AccountMeta)> = None;
    for s in sessions.iter().rev() {
        if s.kind() != SessionKind::Full {
            continue;
        }
        if opts.label.is_some_and(|l| l != s.label) {
            continue;
        }
        let Some(entry) = s.account(&zimbra_id) else {
            continue;
        };
        if entry.state != AccountState::Completed {
            if opts.label.is_some() {
                return Err(BackupError::Invalid(format!(
                    "{email}: not completed in {}",
                    s.label
                )));
            }
            continue;
        }
        let path = rel(&s.label, &format!("{dir}/meta.xml"));
        let meta = AccountMeta::parse(&format!("{}/{path}", target.url()), &target.get(&path)?)?;
        if opts.label.is_none() && point_time.is_some_and(|t| meta.snapshot_at > t) {
            continue;
        }
        chosen = Some((s, meta));
        break;
    }
    let Some((full, meta)) = chosen else {
        return Err(BackupError::Invalid(match opts.label {
            Some(l) => format!("{email}: {l} is not a full backup holding this account"),
            None => format!("{email}: no full backup before the restore point"),
        }));
    };
    let mut report = AccountRestoreReport {
        email: email.to_string(),
        full_label: full.label.to_string(),
        ..Default::default()
    };
    // A damaged session after the full: its redo logs cannot be read.
    if !opts.full_only {
        for e in catalog.entries.iter().filter(|e| e.label > full.label) {
            if let crate::catalog::EntryState::Invalid(reason) = &e.state {
                if !opts.ignore_redo_errors {
                    return Err(BackupError::Invalid(format!(
                        "{reason}; restore with --ignoreRedoErrors to skip its redo logs, \
                         or -rf to restore the full {} only",
                        full.label
                    )));
                }
                report
                    .skipped
                    .push(format!("{reason}; its redo logs were skipped"));
            }
        }
    }
    // 3. The redo records (read before anything is written).
    let records = if opts.full_only {
        Vec::new()
    } else {
        collect_records(source, target, &sessions, full, &meta, opts, &mut report)?
    };
    // Directory entry of the new account (gives the new mailbox id).
    let ldif_path = rel(&full.label, &format!("{dir}/ldap.ldif"));
    let ldif = target.get(&ldif_path)?;
    let entries = mv_directory::ldif::parse(&ldif).map_err(|e| {
        BackupError::corrupt(format!("{}/{ldif_path}", target.url()), e.to_string())
    })?;
    let entry = entries
        .first()
        .ok_or_else(|| BackupError::corrupt(&ldif_path, "no entry"))?;
    let new_email = format!("{prefix}{email}");
    let imported = source
        .directory
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .import_account_entry(entry, &AccountImport::new_account(&new_email))?;
    let account = imported.account;
    report.restored_as = account.email.clone();
    report.mailbox_id = account.mailbox_id.0;
    let mut written: Vec<PathBuf> = Vec::new();
    let result = build_mailbox(
        source,
        target,
        full,
        &dir,
        &meta,
        &account,
        records,
        &mut written,
        &mut report,
    );
    if let Err(e) = result {
        let store = source.store;
        store.mailbox(account.mailbox_id).close();
        for p in &written {
            let _ = std::fs::remove_file(p);
        }
        let _ = source
            .directory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .delete_account(&account.id);
        return Err(e);
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn build_mailbox(
    source: &Source,
    target: &dyn Target,
    full: &Session,
    dir: &str,
    meta: &AccountMeta,
    account: &mv_directory::Account,
    records: Vec<Record>,
    written: &mut Vec<PathBuf>,
    report: &mut AccountRestoreReport,
) -> Result<()> {
    let store = source.store;
    let to = account.mailbox_id;
    let db_rel = rel(&full.label, &format!("{dir}/db/mailbox.sqlite"));
    let bytes = target.get(&db_rel)?;
    let mbox = store.mailbox(to);
    let final_path = mbox.db_path().to_path_buf();
    if final_path.exists() {
        return Err(BackupError::Invalid(format!(
            "mailbox {to} already has a database {}",
            final_path.display()
        )));
    }
    let tmp = final_path.with_extension("sqlite.restoring");
    written.push(tmp.clone());
    std::fs::write(&tmp, &bytes).map_err(BackupError::io(tmp.display()))?;
    let rows: Vec<(u32, Vec<u8>, u16, i64)> = {
        let conn = rusqlite::Connection::open(&tmp).map_err(BackupError::sql(&tmp))?;
        conn.execute(
            "UPDATE meta SET mailbox_id = ?1, account_id = ?2, email = ?3",
            rusqlite::params![to.0, account.id, account.email],
        )
        .map_err(BackupError::sql(&tmp))?;
        let mut st = conn
            .prepare("SELECT id, digest, volume_id, mod_content FROM item WHERE digest IS NOT NULL")
            .map_err(BackupError::sql(&tmp))?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .and_then(|rows| rows.collect())
            .map_err(BackupError::sql(&tmp))?
    };
    // 2. Blobs from the pool.
    let pool = Pool::load(target)?;
    for (item, d, volume, rev) in rows {
        let digest = <[u8; 32]>::try_from(d.as_slice())
            .map(Digest)
            .map_err(|_| BackupError::corrupt(&db_rel, format!("item {item}: bad digest")))?;
        let data = pool.read(target, &digest)?;
        let path = store
            .blobs()
            .blob_path(volume, to, ItemId(item), rev as u64);
        written.push(path.clone());
        store
            .blobs()
            .write_at(&path, &data)
            .map_err(mv_store::StoreError::from)?;
    }
    written.push(final_path.clone());
    std::fs::rename(&tmp, &final_path).map_err(BackupError::io(final_path.display()))?;
    // 4. Replay, remapped to the target mailbox.
    let from = MailboxId(meta.mailbox_id);
    let remapped: Vec<Record> = records
        .into_iter()
        .map(|mut r| {
            if r.mailbox == from {
                r.mailbox = to;
            }
            r
        })
        .collect();
    let r = store.replay(remapped.iter(), &|m| m == to)?;
    report.applied = r.applied;
    store.checkpoint()?;
    Ok(())
}

fn collect_records(
    source: &Source,
    target: &dyn Target,
    sessions: &[&Session],
    full: &Session,
    meta: &AccountMeta,
    opts: &RestoreOptions,
    report: &mut AccountRestoreReport,
) -> Result<Vec<Record>> {
    // sequence → file, first source wins.
    let mut files: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let mut incr_last: BTreeMap<Label, u64> = BTreeMap::new();
    // Redo logs a session lists that are not in the target.
    let mut missing: Vec<String> = Vec::new();
    // Downloaded copies (object-store targets), kept until the logs are read.
    let mut fetched = Vec::new();
    // Incrementals hold redo logs; so do auto-grouped fulls, the full itself
    // included (logs archived after its snapshots).
    for s in sessions.iter().filter(|s| s.label >= full.label) {
        for l in &s.redo_logs {
            let r = rel(&s.label, &format!("redologs/{}", l.name));
            let Some(local) = crate::target::fetch_local(target, &r)? else {
                missing.push(format!("{}/{r}", target.url()));
                continue;
            };
            files.entry(l.seq).or_insert(local.path().to_path_buf());
            fetched.push(local);
            let e = incr_last.entry(s.label).or_insert(l.seq);
            *e = (*e).max(l.seq);
        }
    }
    if !opts.backup_redo_only {
        let home = source.store.home();
        let archive = home.redo_archive_dir();
        if archive.is_dir() {
            for l in mv_redo::list_archive(&archive)? {
                files.entry(l.sequence).or_insert(l.path);
            }
        }
        let current = home.redolog_dir().join(mv_redo::archive::CURRENT_LOG_NAME);
        if current.is_file() {
            let h = mv_redo::archive::read_header(&current)?;
            files.entry(h.sequence).or_insert(current);
        }
    }
    files.retain(|s, _| *s >= meta.redo_seq);
    // The chain from the snapshot's sequence.
    // The snapshot's own log holds the records right after it: it must be there too
    // (unless there is nothing to replay at all).
    let seqs: Vec<u64> = files.keys().copied().collect();
    let chain = match seqs.first() {
        Some(&first) if first > meta.redo_seq => Err(mv_redo::RedoError::Gap {
            first_missing: meta.redo_seq,
            last_missing: first - 1,
        }),
        _ => mv_redo::check_chain(&seqs),
    };
    if let Err(e) = chain {
        if !opts.ignore_redo_errors {
            if let Some(first) = missing.first() {
                return Err(BackupError::Corrupt {
                    path: first.clone(),
                    reason: format!(
                        "missing from the backup target; {e} \
                         (restore with --ignoreRedoErrors to skip the missing range)"
                    ),
                });
            }
            return Err(e.into());
        }
        if let mv_redo::RedoError::Gap {
            first_missing,
            last_missing,
        } = e
        {
            report.skipped.push(format!(
                "redo log sequences {first_missing} through {last_missing} are missing; \
                 records from sequence {first_missing} on were not replayed"
            ));
            files.retain(|s, _| *s < first_missing);
        }
    }
    // Restore points: the earliest wins.
    let mut seq_limit = opts.to_redo_seq;
    if let Some(l) = opts.to_incr_label {
        let last = incr_last.get(&l).copied().ok_or_else(|| {
            BackupError::Invalid(format!("{l}: not an incremental after {}", full.label))
        })?;
        seq_limit = Some(seq_limit.map_or(last, |s| s.min(last)));
    }
    let points = [
        opts.to_time.is_some(),
        opts.to_redo_seq.is_some(),
        opts.to_incr_label.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count()
    .max(opts.restore_points);
    let paths: Vec<PathBuf> = files
        .iter()
        .filter(|(s, _)| seq_limit.is_none_or(|l| **s <= l))
        .map(|(_, p)| p.clone())
        .collect();
    report.redo_files = paths.len() as u64;
    let from = MailboxId(meta.mailbox_id);
    let mut out = Vec::new();
    let mut last_time: Option<UtcMillis> = None;
    let mut renumber: u64 = 0;
    for item in mv_redo::read_files(&paths) {
        let l = match item {
            Ok(l) => l,
            Err(e) if opts.ignore_redo_errors => {
                report.skipped.push(e.to_string());
                break;
            }
            Err(e) => return Err(e.into()),
        };
        let mut r = l.record;
        if opts.to_time.is_some_and(|t| r.timestamp > t) {
            break;
        }
        if r.mailbox.0 == 0 {
            out.push(r);
            continue;
        }
        if r.mailbox != from || r.change.0 <= meta.change {
            continue;
        }
        if opts.skip_deletes && r.op.is_delete() {
            report.skipped_deletes += 1;
            renumber += 1;
            continue;
        }
        // Changes stay consecutive when deletes are left out.
        r.change = ChangeNumber(r.change.0 - renumber);
        last_time = Some(r.timestamp);
        out.push(r);
    }
    if points > 1 {
        let t = opts
            .to_time
            .into_iter()
            .chain(last_time)
            .min()
            .unwrap_or(UtcMillis(0));
        report
            .notes
            .push(format!("using restore to time of {}", t.display_local()));
    }
    Ok(out)
}
