//! Full sessions: per account, an online snapshot of the mailbox database and every
//! blob it references (each stored once per target), plus the account's directory
//! entry.
//!
//! Per account: take a [`mv_store::blob::BlobHold`] (blobs deleted from now on
//! stay on disk), snapshot the database ([`mv_store::Store::snapshot_mailbox`]: the
//! mailbox's lock is held only while the read transaction starts), list the blobs
//! the snapshot references, copy those the pool lacks (each checked against its
//! digest: a damaged blob fails the account, naming the message), release the
//! hold, then write `db/mailbox.sqlite`, `blobs.lst` and `ldap.ldif` under
//! `pieces/<label>/accounts/<id[0:3]>/<id[3:6]>/<zimbraId>/` (format 2: beside
//! the sessions, so later fulls can name them) and what `meta.xml` held into the
//! account's element of session.xml. Accounts that completed get
//! `last_backup_at` once the session is committed.
//!
//! The session starts with a redo log rollover (see `docs/ARCHITECTURE.md`, Backups)
//! and ends with another; it holds the redo logs archived since the target's
//! newest one, as an incremental would, the log written during its own run
//! included ([`copy_redo_logs`]).
//! Blobs are read, checked and written into packs by worker threads ([`crate::copier`]).
//! An account whose mailbox did not change since its latest full in the target
//! names that full's pieces again ([`reuse_unchanged`]): no file is written.

use crate::copier::{CopyJob, CopyOutcome};
use crate::error::{BackupError, Result};
use crate::label::Label;
use crate::run::{FileIndex, Run, SessionBuilder, SessionReport};
use crate::session::{
    AccountMeta, AccountState, FileEntry, Session, SessionAccount, SessionError, SessionOptions,
    SessionStats, SessionStatus, account_dir, encode_blob_list, parse_blob_list,
};
use mv_directory::Account;
use mv_store::blob::BlobHold;
use mv_types::{Digest, MailboxId};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Why an account did not complete.
enum AccountEnd {
    /// Its own problem (recorded; other accounts go on).
    Failed(BackupError),
    /// The session was aborted while it was being copied.
    Aborted,
}

/// `redo_for`: in auto-grouped mode, every account of the server: the session also
/// holds the redo logs archived since the previous run, which roll those accounts'
/// latest fulls forward.
pub(crate) fn run_full(
    run: &mut Run,
    label: Label,
    accounts: &[Account],
    redo_for: Option<&[String]>,
) -> Result<SessionReport> {
    let mut sb = SessionBuilder::new(run.target, label);
    run.progress.session_started(&label, accounts.len() as u64);
    run.sealed.clear();
    // A fresh redo log from here on: the snapshots' positions then lie in logs that
    // hold only what follows the start of this session, so the next incremental
    // copies only changes made since (not the records before the full that the
    // current log may hold, up to its rollover size). Not fatal: without it the
    // next incremental copies more, nothing is lost.
    if let Err(e) = run.source.store.redo().rollover() {
        tracing::warn!("redo log rollover at the start of the full backup failed: {e}");
    }
    run.write_system(&mut sb)?;
    prefetch_account_files(run, accounts);
    let mut entries: Vec<SessionAccount> = accounts
        .iter()
        .map(|a| entry(a, AccountState::Skipped, None))
        .collect();
    let mut errors = Vec::new();
    let mut stats = SessionStats::default();
    let mut aborted = false;
    // How an account ended, recorded (and shown) as soon as it is known.
    let mut settle = |run: &mut Run, sb: &mut SessionBuilder, i: usize, end| {
        let a: &Account = &accounts[i];
        match end {
            Ok(e) => {
                run.progress.account_done(&a.email, true);
                entries[i] = e;
            }
            Err(AccountEnd::Failed(e)) => {
                sb.remove(&account_dir(&a.id));
                run.progress.account_done(&a.email, false);
                run.progress.note(&format!("{}: {e}", a.email));
                errors.push(SessionError {
                    account: Some(a.email.clone()),
                    message: e.to_string(),
                });
                entries[i] = entry(a, AccountState::Error, None);
            }
            Err(AccountEnd::Aborted) => sb.remove(&account_dir(&a.id)),
        }
    };
    // The account whose blobs were copied last, finished (database snapshot,
    // LDIF, search index, meta.xml written) while the next account's blobs copy.
    let mut copied: Option<(usize, Prepared, CopyOutcome)> = None;
    for (i, a) in accounts.iter().enumerate() {
        if aborted || run.aborter.requested_now() {
            aborted = true;
            break;
        }
        let (prep, jobs) = match prepare_account(run, &mut sb, label, a, &mut stats)? {
            Ok(Step::Done(e)) => {
                settle(run, &mut sb, i, Ok(e));
                continue;
            }
            Ok(Step::Copy(prep, jobs)) => (prep, jobs),
            Err(end) => {
                settle(run, &mut sb, i, Err(end));
                continue;
            }
        };
        run.submit_blobs(jobs)?;
        if let Some((j, p, out)) = copied.take() {
            let end = finish_account(run, &mut sb, label, &accounts[j], p, out, &mut stats)?;
            settle(run, &mut sb, j, end);
        }
        let out = run.wait_blobs()?;
        aborted |= out.aborted;
        if run.shared_blobs {
            copied = Some((i, prep, out));
        } else {
            // backup_disable_shared_blobs: each account's blobs in its own packs.
            let end = finish_account(run, &mut sb, label, a, prep, out, &mut stats)?;
            settle(run, &mut sb, i, end);
            run.seal()?;
        }
    }
    if let Some((j, p, out)) = copied.take() {
        let end = finish_account(run, &mut sb, label, &accounts[j], p, out, &mut stats)?;
        settle(run, &mut sb, j, end);
    }
    // Every blob the session references is sealed and indexed before it commits.
    run.seal()?;
    let mut copied = crate::incr::RedoCopy::default();
    if !aborted {
        copied = copy_redo_logs(run, &mut sb, label, accounts, redo_for)?;
        aborted = copied.aborted;
        errors.append(&mut copied.take_errors());
    }
    let seqs: Vec<u64> = entries.iter().filter_map(|e| e.redo_seq).collect();
    let redo = match (seqs.iter().min(), seqs.iter().max()) {
        (Some(a), Some(b)) => Some((*a, *b)),
        _ => {
            let s = run.source.store.redo().position().sequence;
            Some((s, s))
        }
    };
    let status = if aborted {
        SessionStatus::Aborted
    } else if errors.is_empty() {
        SessionStatus::Completed
    } else {
        SessionStatus::CompletedWithErrors
    };
    stats.packs = run.sealed.clone();
    stats.bytes_written = sb.bytes_written();
    let session = Session {
        label,
        status,
        started: label.start,
        ended: run.now(),
        server: run.source.server_name.to_string(),
        options: SessionOptions {
            compression: run.opts.compression,
            blobs: run.opts.blobs,
            hsm_blobs: run.opts.hsm_blobs,
            search_index: run.opts.search_index,
            shared_blobs: run.shared_blobs,
        },
        redo,
        redo_logs: std::mem::take(&mut copied.logs),
        accounts: entries,
        errors,
        files: std::mem::take(&mut sb.files),
        stats,
        lookup: Default::default(),
    };
    run.commit(sb, &session)?;
    crate::incr::remove_expired_archive(run, &copied.in_target);
    crate::incr::prune_live(run, &copied.in_target);
    // last_backup_at only now, and only for accounts that completed: one
    // transaction for the whole session.
    let completed: Vec<MailboxId> = session
        .completed_accounts()
        .map(|a| MailboxId(a.mailbox_id))
        .collect();
    if let Err(e) = run.source.dir().record_backups(&completed, session.ended.0) {
        tracing::warn!("cannot record the accounts' last backup time: {e}");
    }
    Ok(report(&session))
}

/// The redo logs a full session holds ([`crate::incr::copy_redo_logs`]): the log
/// is rolled over once more (after the last account's snapshot) and every log
/// archived since the target's newest one is copied, the one written during the
/// run included. So the session covers its own run: once the home is lost, older
/// fulls can still be rolled forward to any point before the end of this one, and
/// this one's snapshots to any point after them, from the target alone; the next
/// incremental starts after the last log copied here. Auto-grouped (`redo_for`:
/// every account of the server), the session also rolls those accounts' latest
/// fulls forward: a damaged log or a hole in their chain is an error of the
/// session, as in an incremental. A plain full needs none of the logs archived
/// before its start, so a problem there is a warning and the full, the remedy
/// for a broken chain, still completes.
fn copy_redo_logs(
    run: &mut Run,
    sb: &mut SessionBuilder,
    label: Label,
    accounts: &[Account],
    redo_for: Option<&[String]>,
) -> Result<crate::incr::RedoCopy> {
    if let Some(ids) = redo_for {
        run.source.store.redo().rollover()?;
        return crate::incr::copy_redo_logs(run, sb, label, ids);
    }
    // Not fatal, like the rollover the session began with: the log written
    // during the run then stays current and the next backup copies it.
    if let Err(e) = run.source.store.redo().rollover() {
        let line = format!(
            "redo log rollover at the end of the full backup failed: {e}; the changes made \
             during the backup are in the next backup's redo logs"
        );
        tracing::warn!("{label}: {line}");
        run.progress.note(&line);
    }
    let ids: Vec<String> = accounts.iter().map(|a| a.id.clone()).collect();
    let mut copied = crate::incr::copy_redo_logs(run, sb, label, &ids)?;
    for e in copied.take_errors() {
        let line = format!(
            "{}; older backups cannot be rolled forward across it, this full backup is \
             not affected",
            e.message
        );
        tracing::warn!("{label}: {line}");
        run.progress.note(&line);
    }
    Ok(copied)
}

pub(crate) fn report(s: &Session) -> SessionReport {
    let missing: Vec<String> = s
        .accounts
        .iter()
        .filter(|a| a.state == AccountState::Skipped)
        .map(|a| a.email.clone())
        .collect();
    let mut errors = s.errors.clone();
    // An aborted session is no success with nothing to say: it says what it
    // left out, in the report people and scripts read (session.xml keeps the
    // accounts' states).
    if s.status == SessionStatus::Aborted {
        errors.push(SessionError {
            account: None,
            message: if missing.is_empty() {
                "aborted by command".to_string()
            } else {
                format!(
                    "aborted by command: {} of {} accounts not backed up: {}",
                    missing.len(),
                    s.accounts.len(),
                    missing.join(", ")
                )
            },
        });
    }
    SessionReport {
        missing,
        label: s.label,
        kind: s.label.kind,
        status: s.status,
        status_text: s.status.display().to_string(),
        started: s.started,
        ended: s.ended,
        accounts: s.accounts.len() as u64,
        accounts_completed: s.completed_accounts().count() as u64,
        redo: s.redo,
        errors,
        stats: s.stats.clone(),
    }
}

pub(crate) fn entry(
    a: &Account,
    state: AccountState,
    snap: Option<(u64, u64, u64)>,
) -> SessionAccount {
    SessionAccount {
        email: a.email.clone(),
        zimbra_id: a.id.clone(),
        mailbox_id: a.mailbox_id.0,
        state,
        change: snap.map(|s| s.0),
        redo_seq: snap.map(|s| s.1),
        redo_lsn: snap.map(|s| s.2),
        meta: None,
    }
}

/// What the snapshot holds, read from the snapshot file itself.
struct SnapshotContents {
    items: u64,
    messages: u64,
    /// The blobs it references, each content once (the first item holding it).
    blobs: Vec<mv_store::BlobRef>,
}

/// Makes the snapshot a self-contained file (rollback journal, no -wal) and lists
/// the blobs it references.
fn read_snapshot(path: &Path) -> Result<SnapshotContents> {
    let file = mv_store::SnapshotFile::open(path)?;
    file.make_self_contained()?;
    let summary = file.summary()?;
    let mut seen = HashSet::new();
    let blobs = file
        .blob_refs()?
        .into_iter()
        .filter(|b| seen.insert(b.digest))
        .collect();
    Ok(SnapshotContents {
        items: summary.items,
        messages: summary.messages,
        blobs,
    })
}

/// Starts reading, ahead of the backup thread, what each account's turn begins
/// with: its mailbox database's first pages, its search index's `meta.json`, its
/// latest full's `blobs.lst` (which decides, with the change number, whether
/// the account's pieces can be named again).
/// From a cold cache each is a random read; issued ahead by a few threads, they
/// overlap instead of each waiting in turn (an unchanged full of 200 accounts
/// spent half its time in those waits).
fn prefetch_account_files(run: &Run, accounts: &[Account]) {
    /// With a previous full: the database's header page and its `meta` table's
    /// page, enough to tell whether the mailbox changed
    /// ([`mv_store::Store::mailbox_point`]). Without one the account's snapshot
    /// reads the whole file: all of it (0).
    const DB_HEAD: u64 = 8 << 10;
    /// The reads wait on the disk, not the CPU, and a (virtual) disk serves many
    /// at once: 16 threads finished an unchanged full's prefetch well ahead of
    /// its accounts where 4 did not.
    const THREADS: usize = 16;
    let store = run.source.store;
    let mut per_thread: Vec<Vec<(std::path::PathBuf, u64)>> = vec![Vec::new(); THREADS];
    for (i, a) in accounts.iter().enumerate() {
        let paths = &mut per_thread[i % THREADS];
        let db = store.mailbox(a.mailbox_id).db_path().to_path_buf();
        let mut wal = db.clone().into_os_string();
        wal.push("-wal");
        let previous = run.catalog.latest_full(&a.id);
        paths.push((db, if previous.is_some() { DB_HEAD } else { 0 }));
        paths.push((wal.into(), 0));
        let index = store.home().mailbox_index_dir(a.mailbox_id.0);
        paths.push((index.join("meta.json"), 0));
        // A format 2 full's pieces are only named again, never read but for
        // blobs.lst; a format 1 full is snapshotted again (its meta.xml and
        // files are not read).
        if let Some((s, _)) = previous {
            let rel = format!("{}/blobs.lst", account_dir(&a.id));
            if let Some(f) = s.file(&rel).filter(|f| f.from.is_some()) {
                let obj = f.object_path(&s.label);
                paths.extend(run.target.local_path(&obj).map(|p| (p, 0)));
            }
        }
    }
    for paths in per_thread {
        let spawned = std::thread::Builder::new()
            .name("backup-prefetch".into())
            .spawn(move || {
                for (path, len) in paths {
                    mv_home::durable::will_need(&path, len);
                }
            });
        if let Err(e) = spawned {
            tracing::debug!("no prefetch thread: {e}");
        }
    }
}

/// Digests of the account's latest full in this target (per-account dedup when
/// shared blobs are disabled).
fn previous_blobs(run: &mut Run, account: &Account) -> HashSet<Digest> {
    let Some((s, _)) = run.catalog.latest_full(&account.id) else {
        return HashSet::new();
    };
    let path = s.object_path(&format!("{}/blobs.lst", account_dir(&account.id)));
    run.target
        .get(&path)
        .and_then(|b| parse_blob_list(&path, &b))
        .map(|v| v.into_iter().collect())
        .unwrap_or_default()
}

/// An account whose snapshot is taken and whose blobs are being copied.
struct Prepared<'s> {
    scratch: PathBuf,
    point: mv_store::snapshot::SnapshotPoint,
    contents: SnapshotContents,
    /// Every blob the snapshot references (and the session includes).
    listed: Vec<Digest>,
    /// Bytes of the listed blobs the target held already.
    known_bytes: u64,
    started: mv_types::UtcMillis,
    /// Blobs deleted meanwhile stay on disk until the copy is done.
    _hold: BlobHold<'s>,
}

enum Step<'s> {
    /// Nothing to copy: the previous full's files were reused.
    Done(SessionAccount),
    Copy(Prepared<'s>, Vec<CopyJob>),
}

/// Removes a scratch snapshot and its side files.
fn cleanup(p: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
    }
}

/// First half of an account's backup: reuse of an unchanged previous full, or a
/// snapshot of its database and the list of blobs to copy. The outer error is
/// fatal to the session (the target failed); the inner one is the account's.
fn prepare_account<'s>(
    run: &mut Run<'s>,
    sb: &mut SessionBuilder,
    label: Label,
    a: &Account,
    stats: &mut crate::session::SessionStats,
) -> Result<Result<Step<'s>, AccountEnd>> {
    let started = run.now();
    let store: &'s mv_store::Store = run.source.store;
    let mbox = a.mailbox_id;
    let fail = |e: BackupError| Ok(Err(AccountEnd::Failed(e)));
    // Where the mailbox stands now: whether it changed since its latest full.
    let point = match store.mailbox_point(mbox) {
        Ok(Some(p)) => p,
        Ok(None) => {
            return fail(BackupError::Invalid(format!(
                "mailbox {mbox} of account {} does not exist",
                a.email
            )));
        }
        Err(e) => return fail(e.into()),
    };
    let catalog = std::mem::take(&mut run.catalog);
    let reused = match catalog.latest_full(&a.id) {
        Some(prev) => reuse_unchanged(run, sb, label, a, (started, point), stats, prev),
        None => Ok(None),
    };
    run.catalog = catalog;
    match reused {
        Ok(Some(e)) => return Ok(Ok(Step::Done(e))),
        Ok(None) => {}
        Err(e) => {
            // Whatever was linked goes; the account is backed up the normal way.
            tracing::info!("{}: previous full not reused: {e}", a.email);
            sb.remove(&account_dir(&a.id));
        }
    }
    let scratch = run
        .target
        .scratch_dir()?
        .join(format!("{label}-{}.sqlite", mbox.0));
    let hold = store.blobs().hold();
    let point = match store.snapshot_mailbox(mbox, &scratch) {
        Ok(p) => p,
        Err(e) => {
            cleanup(&scratch);
            return fail(e.into());
        }
    };
    let contents = match read_snapshot(&scratch) {
        Ok(c) => c,
        Err(e) => {
            cleanup(&scratch);
            return fail(e);
        }
    };
    let per_account: Option<HashSet<Digest>> = (!run.shared_blobs).then(|| previous_blobs(run, a));
    let mut listed = Vec::new();
    let mut known_bytes = 0u64;
    let mut jobs = Vec::new();
    if run.opts.blobs {
        // Blobs the pool lacks, in snapshot order (digests are distinct here).
        let email: std::sync::Arc<str> = a.email.as_str().into();
        for b in &contents.blobs {
            if b.volume == 2 && !run.opts.hsm_blobs {
                continue;
            }
            listed.push(b.digest);
            let known = match &per_account {
                None => run.have_blob(&b.digest),
                Some(prev) => prev.contains(&b.digest) && run.have_blob(&b.digest),
            };
            if known {
                stats.blobs_shared += 1;
                known_bytes += b.size;
                continue;
            }
            jobs.push(CopyJob {
                digest: b.digest,
                path: store.blobs().blob_path(b.volume, mbox, b.item, b.revision),
                item: b.item.0,
                email: email.clone(),
            });
        }
    }
    Ok(Ok(Step::Copy(
        Prepared {
            scratch,
            point,
            contents,
            listed,
            known_bytes,
            started,
            _hold: hold,
        },
        jobs,
    )))
}

/// Second half, once the account's blobs are copied: the database snapshot, the
/// blob list, the LDIF, the search index and `meta.xml` go into the session.
fn finish_account(
    run: &mut Run,
    sb: &mut SessionBuilder,
    label: Label,
    a: &Account,
    p: Prepared,
    copied: CopyOutcome,
    stats: &mut crate::session::SessionStats,
) -> Result<Result<SessionAccount, AccountEnd>> {
    // Every blob the snapshot needs is copied (or the account failed): deleted
    // blobs may go now.
    drop(p._hold);
    let scratch = p.scratch;
    let end = if copied.aborted {
        Some(AccountEnd::Aborted)
    } else {
        copied.failed.map(AccountEnd::Failed)
    };
    if let Some(end) = end {
        cleanup(&scratch);
        return Ok(Err(end));
    }
    stats.blobs_new += copied.blobs;
    stats.blob_bytes_new += copied.bytes;
    let ldif = match run.source.dir().account_ldif(a) {
        Ok(l) => l,
        Err(e) => {
            cleanup(&scratch);
            return Ok(Err(AccountEnd::Failed(e.into())));
        }
    };
    let mbox = a.mailbox_id;
    let dir = account_dir(&a.id);
    let db_bytes = sb.put_piece_file(&format!("{dir}/db/mailbox.sqlite"), &scratch);
    cleanup(&scratch);
    let db_bytes = db_bytes?;
    run.progress.bytes(db_bytes);
    sb.put_piece(&format!("{dir}/blobs.lst"), &encode_blob_list(&p.listed))?;
    sb.put_piece(&format!("{dir}/ldap.ldif"), ldif.as_bytes())?;
    if run.opts.search_index {
        let index = run.source.store.home().mailbox_index_dir(mbox.0);
        match crate::index_files::put_index(sb, &index, &format!("{dir}/index"))? {
            Ok(bytes) => run.progress.bytes(bytes),
            Err(note) => tracing::info!("{}: {note}", a.email),
        }
    }
    let meta = AccountMeta {
        email: a.email.clone(),
        zimbra_id: a.id.clone(),
        mailbox_id: mbox.0,
        label: label.to_string(),
        change: p.point.change,
        redo_seq: p.point.redo.sequence,
        redo_lsn: p.point.redo.lsn.0,
        snapshot_at: p.point.taken_at,
        started: p.started,
        ended: run.now(),
        items: p.contents.items,
        messages: p.contents.messages,
        blobs: p.listed.len() as u64,
        blob_bytes: p.known_bytes + copied.bytes,
        new_blobs: copied.blobs,
        new_blob_bytes: copied.bytes,
        db_bytes,
        blobs_included: run.opts.blobs,
        hsm_blobs_included: run.opts.blobs && run.opts.hsm_blobs,
    };
    let mut e = entry(
        a,
        AccountState::Completed,
        Some((p.point.change, p.point.redo.sequence, p.point.redo.lsn.0)),
    );
    e.meta = Some(meta);
    Ok(Ok(e))
}

/// An account whose mailbox did not change since its latest full in this target:
/// same mailbox, same change number (every change to a mailbox raises it), same
/// content options, and every blob of that full still in the pool. That full's
/// pieces (database snapshot, `blobs.lst`, `ldap.ldif` when the entry is the
/// same, search index files when the index did not change either) are named
/// again in this session's file list instead of being taken again: nothing is
/// written for the account but its entries in session.xml, whose `<meta>` has
/// the redo position of now (the content is the same, the restore point newer).
/// Only a format 2 full (pieces, metadata in session.xml) is reused this way; an
/// account whose latest full is of format 1 is snapshotted again.
/// `Ok(None)`: take a snapshot. An error leaves entries of the account in the
/// session for the caller to remove.
fn reuse_unchanged(
    run: &mut Run,
    sb: &mut SessionBuilder,
    label: Label,
    a: &Account,
    (started, point): (mv_types::UtcMillis, mv_store::snapshot::SnapshotPoint),
    stats: &mut SessionStats,
    (prev, pa): (&Session, &SessionAccount),
) -> Result<Option<SessionAccount>> {
    let o = &prev.options;
    if pa.mailbox_id != a.mailbox_id.0
        || o.blobs != run.opts.blobs
        || o.hsm_blobs != run.opts.hsm_blobs
        || o.shared_blobs != run.shared_blobs
        || o.search_index != run.opts.search_index
    {
        return Ok(None);
    }
    let Some(old) = pa.meta.clone() else {
        return Ok(None);
    };
    if pa.change != Some(point.change) || old.change != point.change {
        return Ok(None);
    }
    let dir = account_dir(&a.id);
    if run
        .prev_files
        .as_ref()
        .is_none_or(|(l, _)| *l != prev.label)
    {
        run.prev_files = Some((prev.label, FileIndex::new(&prev.files)));
    }
    let by_path = &run.prev_files.as_ref().expect("just set").1;
    let prev_file = |rel: &str| {
        by_path
            .get(rel)
            .map(|i| prev.files[i].clone())
            .filter(|f| f.from.is_some())
            .ok_or_else(|| BackupError::NotFound(format!("{rel} in session {}", prev.label)))
    };
    let lst_rel = format!("{dir}/blobs.lst");
    let db_rel = format!("{dir}/db/mailbox.sqlite");
    let lst = prev_file(&lst_rel)?;
    let lst_obj = lst.object_path(&prev.label);
    let listed = parse_blob_list(&lst_obj, &run.target.get(&lst_obj)?)?;
    if !listed.iter().all(|d| run.have_blob(d)) {
        return Ok(None);
    }
    let db = prev_file(&db_rel)?;
    let ldif = run.source.dir().account_ldif(a)?;
    sb.keep_piece(&db);
    sb.keep_piece(&lst);
    // The entry usually did not change either: named again when it is the same.
    let ldif_rel = format!("{dir}/ldap.ldif");
    match prev_file(&ldif_rel) {
        Ok(f)
            if f.size == ldif.len() as u64
                && f.blake3 == blake3::hash(ldif.as_bytes()).to_hex().as_str() =>
        {
            sb.keep_piece(&f);
        }
        _ => sb.put_piece(&ldif_rel, ldif.as_bytes())?,
    }
    if run.opts.search_index {
        reuse_or_put_index(run, sb, prev, by_path, &dir, a)?;
    }
    stats.blobs_shared += listed.len() as u64;
    let meta = AccountMeta {
        label: label.to_string(),
        redo_seq: point.redo.sequence,
        redo_lsn: point.redo.lsn.0,
        snapshot_at: point.taken_at,
        started,
        ended: run.now(),
        new_blobs: 0,
        new_blob_bytes: 0,
        email: a.email.clone(),
        ..old
    };
    let mut e = entry(
        a,
        AccountState::Completed,
        Some((point.change, point.redo.sequence, point.redo.lsn.0)),
    );
    e.meta = Some(meta);
    Ok(Some(e))
}

/// The search index of a reused account: the previous full's pieces when the
/// index's `meta.json` is unchanged (the indexer runs behind the mailbox, so the
/// index may have changed while the mailbox did not), else a fresh copy.
/// `prev_index`: `prev`'s files by path.
fn reuse_or_put_index(
    run: &Run,
    sb: &mut SessionBuilder,
    prev: &Session,
    prev_index: &FileIndex,
    dir: &str,
    a: &Account,
) -> Result<()> {
    let index_dir = run.source.store.home().mailbox_index_dir(a.mailbox_id.0);
    let prefix = format!("{dir}/index/");
    let meta_rel = format!("{prefix}meta.json");
    let prev_files: Vec<&FileEntry> = prev_index
        .under(&prefix)
        .map(|i| &prev.files[i])
        .filter(|f| f.from.is_some())
        .collect();
    let unchanged = match std::fs::read(index_dir.join("meta.json")) {
        Ok(now) => prev_files.iter().any(|f| {
            f.path == meta_rel
                && f.size == now.len() as u64
                && f.blake3 == blake3::hash(&now).to_hex().as_str()
        }),
        Err(_) => prev_files.is_empty(),
    };
    if unchanged {
        for f in prev_files {
            sb.keep_piece(f);
        }
        return Ok(());
    }
    match crate::index_files::put_index(sb, &index_dir, &format!("{dir}/index"))? {
        Ok(bytes) => run.progress.bytes(bytes),
        Err(note) => tracing::info!("{}: {note}", a.email),
    }
    Ok(())
}
