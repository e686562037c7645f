//! The checkpoint record, `redolog/checkpoint`: the redo position up to which every
//! record's effects (blobs and mailbox databases) are known to be durable.
//!
//! It is written (temp name, fsync, rename, directory fsync) only after the syncs
//! the checkpoint relies on have returned, and only for a position at which every
//! record appended so far was durable and applied. Recovery replays from it: the
//! records after it, from archived logs where it lies before the current
//! `redo.log` (a checkpoint whose syncs did not complete before a crash never got
//! recorded, so the one before it still counts), then redo.log's. A home without
//! the file (from before it existed) replays the current redo.log, as it always did.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use mv_home::durable::write_atomic;

use crate::archive::list_archive;
use crate::error::RedoError;
use crate::format::FileHeader;
use crate::reader::RedoFileReader;
use crate::writer::{RecoveryReport, RedoConfig};

/// A proven checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The sequence of the log holding `lsn` when the checkpoint was taken.
    pub sequence: u64,
    /// Every record up to this LSN is applied and its effects are durable.
    pub lsn: u64,
}

/// `<redolog>/checkpoint`, beside the state file.
pub(crate) fn checkpoint_path(cfg: &RedoConfig) -> PathBuf {
    cfg.state_path.with_file_name("checkpoint")
}

/// The recorded checkpoint, if any.
pub fn read_checkpoint(cfg: &RedoConfig) -> Result<Option<Checkpoint>, RedoError> {
    let path = checkpoint_path(cfg);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(RedoError::io(&path)(e)),
    };
    parse(&path, &text).map(Some)
}

fn parse(path: &Path, text: &str) -> Result<Checkpoint, RedoError> {
    let bad = |reason: String| RedoError::BadState {
        path: path.to_path_buf(),
        reason,
    };
    let (mut sequence, mut lsn) = (None, None);
    for (k, v) in crate::recovery::numeric_fields(text, bad)? {
        match k {
            "sequence" => sequence = Some(v),
            "lsn" => lsn = Some(v),
            _ => {}
        }
    }
    match (sequence, lsn) {
        (Some(sequence), Some(lsn)) => Ok(Checkpoint { sequence, lsn }),
        _ => Err(bad(
            "sequence or lsn missing (the file is written atomically: it was edited by hand; \
             remove it to replay the whole current redo.log)"
                .into(),
        )),
    }
}

/// Records `cp` durably unless a later checkpoint is recorded already.
pub(crate) fn write_checkpoint(cfg: &RedoConfig, cp: Checkpoint) -> Result<(), RedoError> {
    if read_checkpoint(cfg)?.is_some_and(|old| old.lsn >= cp.lsn) {
        return Ok(());
    }
    let path = checkpoint_path(cfg);
    let text = format!(
        "# mailvault redo checkpoint: every record up to this LSN is applied and durable\n\
         sequence={}\nlsn={}\n",
        cp.sequence, cp.lsn
    );
    write_atomic(&path, text.as_bytes()).map_err(RedoError::io(&path))
}

/// After an intentional jump of the LSNs (the home continues after another
/// history, [`crate::continue_at`]): the LSNs skipped were never this home's,
/// so recovery must not look for them. Every record this home wrote is in its
/// archive, checkpointed when it was archived (its redo.log holds none).
pub(crate) fn skip_to(cfg: &RedoConfig, sequence: u64, lsn: u64) -> Result<(), RedoError> {
    if read_checkpoint(cfg)?.is_none() {
        // Nothing recorded: recovery starts at the next redo.log anyway.
        return Ok(());
    }
    write_checkpoint(cfg, Checkpoint { sequence, lsn })
}

/// Makes `report.records` the records recovery must replay: those after the last
/// checkpoint, read from the archive when the checkpoint lies before the current
/// log (`header`). Without a recorded checkpoint, the current log's records.
pub(crate) fn records_since_checkpoint(
    cfg: &RedoConfig,
    header: &FileHeader,
    report: &mut RecoveryReport,
) -> Result<(), RedoError> {
    let Some(cp) = read_checkpoint(cfg)? else {
        return Ok(());
    };
    report.records.retain(|r| r.lsn.0 > cp.lsn);
    let first = header.first_lsn.0;
    if cp.lsn + 1 >= first {
        return Ok(());
    }
    // LSNs cp.lsn+1 .. first-1 are in archived logs; every one of them is needed.
    let mut expected = cp.lsn + 1;
    let mut older = Vec::new();
    let missing = |from: u64, to: u64| RedoError::Corrupt {
        path: cfg.archive_dir.clone(),
        offset: 0,
        reason: format!(
            "recovery replays from the last checkpoint (sequence {}, LSN {}), but no archived \
             redo log holds LSNs {from} to {to}; put the archived logs back (a backup target \
             holds copies under redologs/) and restart",
            cp.sequence, cp.lsn
        ),
    };
    for log in list_archive(&cfg.archive_dir)? {
        if log.last_lsn.0 < expected || log.first_lsn.0 >= first {
            continue;
        }
        if log.first_lsn.0 > expected {
            return Err(missing(expected, log.first_lsn.0 - 1));
        }
        for r in RedoFileReader::open(&log.path)? {
            let r = r?.record;
            if r.lsn.0 >= expected && r.lsn.0 < first {
                older.push(r);
            }
        }
        expected = log.last_lsn.0 + 1;
    }
    if expected < first {
        return Err(missing(expected, first - 1));
    }
    if !older.is_empty() {
        tracing::warn!(
            checkpoint_sequence = cp.sequence,
            checkpoint_lsn = cp.lsn,
            records = older.len(),
            "the last checkpoint is before the current redo log: replaying archived logs too"
        );
    }
    older.append(&mut report.records);
    report.records = older;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use crate::{RedoLog, RedoPosition};
    use mv_types::Lsn;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A log whose rollovers checkpoint (counted) and record a checkpoint.
    fn open_with_hook(cfg: &RedoConfig) -> (RedoLog, RecoveryReport, Arc<AtomicU32>) {
        let (log, report) = RedoLog::open(cfg.clone()).unwrap();
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        log.set_checkpoint_hook(Box::new(move || {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }));
        (log, report, calls)
    }

    fn lsns(report: &RecoveryReport) -> Vec<u64> {
        report.records.iter().map(|r| r.lsn.0).collect()
    }

    #[test]
    fn a_rollover_records_its_checkpoint_and_recovery_starts_there() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = cfg(dir.path());
        let (log, _, calls) = open_with_hook(&cfg);
        for i in 1..=3 {
            put(&log, vec![rec(5, i, folder(&format!("f{i}")))]);
        }
        log.rollover().unwrap().unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            log.last_checkpoint().unwrap(),
            Some(Checkpoint {
                sequence: 1,
                lsn: 3
            })
        );
        put(&log, vec![rec(5, 4, folder("f4"))]);
        drop(log);
        let (_, report, _) = open_with_hook(&cfg);
        assert_eq!(lsns(&report), [4]);
    }

    #[test]
    fn a_checkpoint_before_the_current_log_replays_the_archive_from_it() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = cfg(dir.path());
        let (log, _, _) = open_with_hook(&cfg);
        for i in 1..=6 {
            put(&log, vec![rec(5, i, folder(&format!("f{i}")))]);
            if i % 2 == 0 {
                log.rollover().unwrap().unwrap();
            }
        }
        put(&log, vec![rec(5, 7, folder("f7"))]);
        drop(log);
        // The syncs of the last two rollovers did not reach the disk: their
        // records were never proven, so the checkpoint on disk is the first one.
        fs::write(checkpoint_path(&cfg), "sequence=1\nlsn=2\n").unwrap();
        let (_, report, _) = open_with_hook(&cfg);
        assert_eq!(lsns(&report), [3, 4, 5, 6, 7]);
        // With no checkpoint recorded (a home from before them): the current log.
        fs::remove_file(checkpoint_path(&cfg)).unwrap();
        let (_, report, _) = open_with_hook(&cfg);
        assert_eq!(lsns(&report), [7]);
    }

    #[test]
    fn an_archived_log_missing_after_the_checkpoint_is_an_error_naming_the_lsns() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = cfg(dir.path());
        let (log, _, _) = open_with_hook(&cfg);
        let mut archived = Vec::new();
        for i in 1..=4 {
            put(&log, vec![rec(5, i, folder(&format!("f{i}")))]);
            archived.push(log.rollover().unwrap().unwrap());
        }
        drop(log);
        fs::write(checkpoint_path(&cfg), "sequence=1\nlsn=1\n").unwrap();
        fs::remove_file(&archived[2].path).unwrap();
        let err = RedoLog::open(cfg.clone()).err().unwrap().to_string();
        assert!(err.contains("LSNs 3 to 3"), "{err}");
        assert!(err.contains("sequence 1, LSN 1"), "{err}");
    }

    #[test]
    fn checkpoints_are_recorded_only_when_every_append_is_applied() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = cfg(dir.path());
        let (log, _, _) = open_with_hook(&cfg);
        put(&log, vec![rec(5, 1, folder("a"))]);
        let t = log.append(vec![rec(5, 2, folder("b"))]).unwrap();
        log.wait_durable(&t).unwrap();
        assert_eq!(log.applied_position(), None, "a ticket is outstanding");
        drop(t);
        let pos = log.applied_position().unwrap();
        assert_eq!(
            pos,
            RedoPosition {
                sequence: 1,
                lsn: Lsn(2)
            }
        );
        log.record_checkpoint(pos).unwrap();
        // An older position never moves the record back.
        log.record_checkpoint(RedoPosition {
            sequence: 1,
            lsn: Lsn(1),
        })
        .unwrap();
        assert_eq!(log.last_checkpoint().unwrap().unwrap().lsn, 2);
        fs::write(checkpoint_path(&cfg), "lsn=x\n").unwrap();
        assert!(log.last_checkpoint().is_err());
    }
}
