//! Incremental sessions: every change committed before the session started, as
//! the archived redo logs since the last backup, plus the directory.
//!
//! The current redo log is rolled over first, so everything committed before the
//! start is in an archived log. Copied are the logs after the highest sequence any
//! session of the target holds (or, when no session holds logs yet, from the
//! oldest sequence any full of the target needs: an older full, or a deleted
//! account's, is rolled forward by the same logs). The chain from the oldest
//! sequence the accounts' latest fulls need through the newest is then checked;
//! a hole is reported with the original's text ("Found gap in redo log sequence;
//! missing A through B; ...") as an error of the session. Each copied log is read
//! through first (every record's CRC), so a damaged log is reported, not stored.
//! Full sessions copy the same way ([`copy_redo_logs`]), after a rollover at
//! their end, so they hold the log written during their own run too.
//!
//! After the session commits, archived logs the target holds and that are older
//! than `backup_archived_redolog_keep_time` are removed from `redolog/archive`
//! (moved); younger ones stay and a later run removes them.

use crate::catalog::Catalog;
use crate::error::{BackupError, Result};
use crate::label::Label;
use crate::run::{FileIndex, Run, SessionBuilder, SessionReport};
use crate::session::{
    AccountState, FileEntry, RedoLogFile, Session, SessionError, SessionOptions, SessionStats,
    SessionStatus, account_dir,
};
use mv_directory::Account;
use mv_redo::RedoFileReader;
use mv_types::UtcMillis;
use std::collections::{BTreeMap, BTreeSet};

/// The first hole in the chain of sequences `from..=upto` given the sequences
/// held (`seqs`; older ones do not matter). `upto` is the newest sequence that
/// must be there (the last archived one); without it, up to the newest held.
/// The hole is [`mv_redo::RedoError::Gap`], whose text is the original's.
pub fn chain_gap(from: u64, upto: Option<u64>, seqs: &[u64]) -> Option<mv_redo::RedoError> {
    let mut held: Vec<u64> = seqs.iter().copied().filter(|s| *s >= from).collect();
    held.sort_unstable();
    held.dedup();
    let gap = |a: u64, b: u64| mv_redo::RedoError::Gap {
        first_missing: a,
        last_missing: b,
    };
    let mut expect = from;
    for s in held {
        if s > expect {
            return Some(gap(expect, s - 1));
        }
        expect = s + 1;
    }
    match upto {
        Some(u) if expect <= u => Some(gap(expect, u)),
        _ => None,
    }
}

/// The oldest redo sequence the accounts' latest fulls need, if any has one.
pub(crate) fn needed_from(catalog: &Catalog, account_ids: &[String]) -> Option<u64> {
    account_ids
        .iter()
        .filter_map(|id| catalog.latest_full(id).and_then(|(_, a)| a.redo_seq))
        .min()
}

pub(crate) fn run_incremental(
    run: &mut Run,
    label: Label,
    accounts: &[Account],
) -> Result<SessionReport> {
    let mut sb = SessionBuilder::new(run.target, label);
    run.progress.session_started(&label, accounts.len() as u64);
    run.write_system(&mut sb)?;
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let mut aborted = false;
    let mut recorded = RecordedFiles::default();
    for a in accounts {
        if aborted || run.aborter.requested_now() {
            aborted = true;
            entries.push(crate::full::entry(a, AccountState::Skipped, None));
            continue;
        }
        match run.source.dir().account_ldif(a) {
            Ok(ldif) => {
                // Only an entry that changed since the target last recorded it is
                // written: an unchanged account costs an incremental nothing (the
                // whole directory is in ldap/ldap.bak all the same).
                let rel = format!("{}/ldap.ldif", account_dir(&a.id));
                let same = recorded.latest(&run.catalog, &rel).is_some_and(|f| {
                    f.size == ldif.len() as u64
                        && f.blake3 == blake3::hash(ldif.as_bytes()).to_hex().as_str()
                });
                if !same {
                    sb.put(&rel, ldif.as_bytes())?;
                }
                entries.push(crate::full::entry(a, AccountState::Completed, None));
                run.progress.account_done(&a.email, true);
            }
            Err(e) => {
                errors.push(SessionError {
                    account: Some(a.email.clone()),
                    message: e.to_string(),
                });
                entries.push(crate::full::entry(a, AccountState::Error, None));
                run.progress.account_done(&a.email, false);
            }
        }
    }

    let mut copied = RedoCopy::default();
    if !aborted {
        let ids: Vec<String> = accounts.iter().map(|a| a.id.clone()).collect();
        // Everything committed before the session started goes into an archived log.
        run.source.store.redo().rollover()?;
        copied = copy_redo_logs(run, &mut sb, label, &ids)?;
        aborted = copied.aborted;
        errors.append(&mut copied.take_errors());
    }
    let logs_copied = std::mem::take(&mut copied.logs);
    let redo = match (logs_copied.first(), logs_copied.last()) {
        (Some(a), Some(b)) => Some((a.seq, b.seq)),
        _ => None,
    };
    let status = if aborted {
        SessionStatus::Aborted
    } else if errors.is_empty() {
        SessionStatus::Completed
    } else {
        SessionStatus::CompletedWithErrors
    };
    let stats = SessionStats {
        bytes_written: sb.bytes_written(),
        ..Default::default()
    };
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
        redo_logs: logs_copied,
        accounts: entries,
        errors,
        files: std::mem::take(&mut sb.files),
        stats,
        lookup: Default::default(),
    };
    run.commit(sb, &session)?;
    remove_expired_archive(run, &copied.in_target);
    prune_live(run, &copied.in_target);
    Ok(crate::full::report(&session))
}

/// The files of the target's sessions, looked up by path, newest session first.
#[derive(Default)]
struct RecordedFiles {
    /// Per session (newest first), built when first needed.
    indexes: Vec<FileIndex>,
}

impl RecordedFiles {
    /// The newest session's copy of the file at `rel`.
    fn latest<'c>(&mut self, catalog: &'c Catalog, rel: &str) -> Option<&'c FileEntry> {
        for (i, s) in catalog.sessions().rev().enumerate() {
            if self.indexes.len() == i {
                self.indexes.push(FileIndex::new(&s.files));
            }
            if let Some(at) = self.indexes[i].get(rel) {
                return Some(&s.files[at]);
            }
        }
        None
    }
}

/// What [`copy_redo_logs`] did.
#[derive(Default)]
pub(crate) struct RedoCopy {
    pub logs: Vec<RedoLogFile>,
    /// Sequences the target holds now (those of committed sessions and these).
    pub in_target: BTreeSet<u64>,
    /// Logs that could not be copied (damaged).
    pub errors: Vec<SessionError>,
    /// The first hole in the chain the latest fulls of the accounts need.
    pub gap: Option<mv_redo::RedoError>,
    pub aborted: bool,
}

impl RedoCopy {
    /// The problems as errors of the session (incrementals and auto-grouped
    /// fulls: the chain is what they are for).
    pub(crate) fn take_errors(&mut self) -> Vec<SessionError> {
        let mut out = std::mem::take(&mut self.errors);
        out.extend(self.gap.take().map(|gap| SessionError {
            account: None,
            message: gap.to_string(),
        }));
        out
    }
}

/// Copies into the session's `redologs/` every archived log after the newest one
/// the target holds (or, when it holds none, from the oldest sequence any of its
/// fulls needs: [`Catalog::oldest_full_redo_seq`]), then checks the chain from
/// the oldest sequence the latest fulls of `account_ids` need. (A hole before
/// that, which only a disaster leaves, cuts off older fulls from later points: a
/// restore across it says so.) The caller rolls the log over first when what is
/// in the current log must go too.
///
/// Incremental sessions do this; so do full sessions, auto-grouped or not: a
/// full rolls the log over at its end and copies the logs archived since the last
/// backup, so that a disaster right after it (before the next incremental) still
/// leaves in the target every log needed to restore to a point up to its end.
pub(crate) fn copy_redo_logs(
    run: &mut Run,
    sb: &mut SessionBuilder,
    label: Label,
    account_ids: &[String],
) -> Result<RedoCopy> {
    let mut logs_copied = Vec::new();
    let mut in_target: BTreeSet<u64> = BTreeSet::new();
    let mut errors = Vec::new();
    let mut aborted = false;
    let store = run.source.store;
    // Everything before the current log is archived (or should be).
    let last_archived = store.redo().position().sequence.checked_sub(1);
    let archive_dir = store.redo().config().archive_dir.clone();
    let archive = mv_redo::list_archive(&archive_dir)?;
    let stored = run.catalog.stored_redo_sequences();
    in_target.extend(stored.iter().copied());
    let needed = needed_from(&run.catalog, account_ids);
    let start = match stored.last() {
        Some(last) => Some(last + 1),
        None => run.catalog.oldest_full_redo_seq(),
    };
    // Shipped logs and segments (live DR) count as held: a whole shipped log is
    // adopted into the session (linked where the target can, not copied again
    // from the home), and a sequence held only in segments that this home no
    // longer has (a server rebuilt after a disaster) becomes one log rebuilt
    // from them. `live/` keeps them until the session commits (`crate::live::prune`).
    let live = crate::live::list(run.target)?;
    let current = store.redo().position().sequence;
    if let Some(start) = start {
        let by_seq: BTreeMap<u64, &mv_redo::ArchivedLog> =
            archive.iter().map(|l| (l.sequence, l)).collect();
        let newest = by_seq
            .keys()
            .next_back()
            .copied()
            .max(live.newest_sequence())
            .unwrap_or(0);
        for seq in start..=newest {
            if run.aborter.requested() {
                aborted = true;
                break;
            }
            let outcome = if let Some(shipped) = live.logs.get(&seq) {
                adopt_shipped(run, sb, shipped)
            } else if let Some(log) = by_seq.get(&seq) {
                copy_archived(run, sb, label, log)
            } else if let Some(segs) = live.segments.get(&seq).filter(|_| seq < current) {
                adopt_segments(run, sb, segs)
            } else {
                continue;
            };
            match outcome? {
                Ok(l) => {
                    run.progress.bytes(l.size);
                    in_target.insert(l.seq);
                    logs_copied.push(l);
                }
                Err(message) => errors.push(SessionError {
                    account: None,
                    message,
                }),
            }
        }
    }
    let gap = needed.and_then(|from| {
        let all: Vec<u64> = in_target.iter().copied().collect();
        chain_gap(from, last_archived, &all)
    });
    Ok(RedoCopy {
        logs: logs_copied,
        in_target,
        errors,
        gap,
        aborted,
    })
}

/// Copies an archived log of the home into the session. `Err` is a damaged log
/// (not copied), as the session's error text; a failing target is fatal.
fn copy_archived(
    run: &mut Run,
    sb: &mut SessionBuilder,
    label: Label,
    log: &mv_redo::ArchivedLog,
) -> Result<std::result::Result<RedoLogFile, String>> {
    let name = log
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Err(e) = check_log(&log.path) {
        return Ok(Err(format!(
            "archived redo log {name} is damaged and was not copied: {e}"
        )));
    }
    let scratch = run.target.scratch_dir()?.join(format!("{label}-{name}"));
    std::fs::copy(&log.path, &scratch).map_err(BackupError::copy(&log.path, &scratch))?;
    let rel = format!("redologs/{name}");
    let size = sb.put_file(&rel, &scratch)?;
    let blake3 = sb
        .files
        .last()
        .map(|f| f.blake3.clone())
        .unwrap_or_default();
    Ok(Ok(RedoLogFile {
        seq: log.sequence,
        name,
        first_lsn: log.first_lsn.0,
        last_lsn: log.last_lsn.0,
        closed: log.closed_at,
        size,
        blake3,
    }))
}

/// Puts a log the shipper put whole into `live/` into the session, checked
/// first (every record, and its header against its name).
fn adopt_shipped(
    run: &mut Run,
    sb: &mut SessionBuilder,
    shipped: &crate::live::ShippedLog,
) -> Result<std::result::Result<RedoLogFile, String>> {
    let at = format!("{}/{}", run.target.url(), shipped.path);
    let mut go = || -> Result<std::result::Result<RedoLogFile, String>> {
        let Some(local) = crate::target::fetch_local(run.target, &shipped.path)? else {
            return Ok(Err(format!(
                "shipped redo log {at} vanished while being read"
            )));
        };
        let header = match mv_redo::archive::read_header(local.path()) {
            Ok(h) if h.sequence == shipped.sequence && h.closed => h,
            Ok(_) => {
                return Ok(Err(format!(
                    "shipped redo log {at} is not the closed log its name says"
                )));
            }
            Err(e) => return Ok(Err(format!("shipped redo log {at} is damaged: {e}"))),
        };
        if let Err(e) = check_log(local.path()) {
            return Ok(Err(format!("shipped redo log {at} is damaged: {e}")));
        }
        let (size, blake3) = crate::run::hash_file(local.path())?;
        let rel = format!("redologs/{}", shipped.name);
        sb.copy_object(&rel, &shipped.path, size, &blake3)?;
        Ok(Ok(RedoLogFile {
            seq: shipped.sequence,
            name: shipped.name.clone(),
            first_lsn: header.first_lsn.0,
            last_lsn: header.last_lsn.0,
            closed: header.closed_at,
            size,
            blake3,
        }))
    };
    go()
}

/// Puts into the session the log that a sequence's shipped segments make (the
/// log of a lost server, up to its last shipped record), named as an archived
/// log closed at its last record's time.
fn adopt_segments(
    run: &mut Run,
    sb: &mut SessionBuilder,
    segs: &[crate::live::SegmentObject],
) -> Result<std::result::Result<RedoLogFile, String>> {
    let mut go = || -> Result<RedoLogFile> {
        let a = crate::live::assemble(run.target, segs)?;
        let name = mv_redo::archive::archive_file_name(a.last_time, a.sequence);
        let scratch = run
            .target
            .scratch_dir()?
            .join(format!("adopt-{}", uuid::Uuid::new_v4().simple()));
        std::fs::copy(a.file.path(), &scratch)
            .map_err(BackupError::copy(a.file.path(), &scratch))?;
        let size = sb.put_file(&format!("redologs/{name}"), &scratch)?;
        let blake3 = sb
            .files
            .last()
            .map(|f| f.blake3.clone())
            .unwrap_or_default();
        Ok(RedoLogFile {
            seq: a.sequence,
            name,
            first_lsn: a.first_lsn,
            last_lsn: a.last_lsn,
            closed: a.last_time,
            size,
            blake3,
        })
    };
    match go() {
        Ok(l) => Ok(Ok(l)),
        Err(e @ BackupError::Corrupt { .. }) => Ok(Err(format!(
            "shipped segments of redo sequence {} were not adopted: {e}",
            segs.first().map_or(0, |s| s.sequence)
        ))),
        Err(e) => Err(e),
    }
}

/// Reads a whole redo log (every record's CRC and decoding).
fn check_log(path: &std::path::Path) -> Result<(), mv_redo::RedoError> {
    for r in RedoFileReader::open(path)? {
        r?;
    }
    Ok(())
}

/// Removes from the target's `live/` what its sessions now hold (shipped logs
/// and segments adopted by the session just committed, or older).
pub(crate) fn prune_live(run: &Run, in_target: &BTreeSet<u64>) {
    let Some(&held) = in_target.last() else {
        return;
    };
    if let Err(e) = crate::live::prune(run.target, held) {
        tracing::warn!(
            "cannot remove shipped redo logs the sessions of {} now hold: {e}",
            run.target.url()
        );
    }
}

/// Removes archived logs that the target holds and that are older than the keep
/// time.
pub(crate) fn remove_expired_archive(run: &Run, in_target: &BTreeSet<u64>) {
    let dir = run.source.store.redo().config().archive_dir.clone();
    let Ok(archive) = mv_redo::list_archive(&dir) else {
        return;
    };
    let cutoff = UtcMillis(run.now().0 - run.keep_time.as_millis() as i64);
    let mut removed = 0;
    for log in archive {
        if in_target.contains(&log.sequence) && log.closed_at <= cutoff {
            match std::fs::remove_file(&log.path) {
                Ok(()) => removed += 1,
                Err(e) => tracing::warn!("cannot remove {}: {e}", log.path.display()),
            }
        }
    }
    if removed > 0 {
        let _ = mv_home::fsync_dir(&dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_from_the_needed_start() {
        assert!(chain_gap(5, Some(7), &[5, 6, 7]).is_none());
        assert!(
            chain_gap(5, None, &[1, 2, 5, 6]).is_none(),
            "older logs do not matter"
        );
        assert!(chain_gap(5, None, &[]).is_none());
        assert!(
            chain_gap(5, Some(4), &[]).is_none(),
            "nothing archived since the full"
        );
        let e = chain_gap(5, None, &[7, 8]).unwrap();
        assert_eq!(
            e.to_string(),
            "Found gap in redo log sequence; missing 5 through 6; To avoid future restore problems, \
             discard all existing backups and take a full backup of all accounts; If this error \
             occurred during restore, try the --ignoreRedoErrors option"
        );
        let e = chain_gap(5, None, &[5, 6, 9]).unwrap();
        assert!(e.to_string().contains("missing 7 through 8"), "{e}");
        let e = chain_gap(5, Some(9), &[5, 6]).unwrap();
        assert!(e.to_string().contains("missing 7 through 9"), "{e}");
    }
}
