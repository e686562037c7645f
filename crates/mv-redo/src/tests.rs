//! Behaviour of the live log: recovery, group commit, rollover, sequences.

use std::collections::BTreeSet;
use std::fs;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use mv_types::{Lsn, TxnId, UtcMillis};

use crate::format::{FileHeader, HEADER_LEN};
use crate::testutil::*;
use crate::*;

fn open(cfg: &RedoConfig) -> (RedoLog, RecoveryReport) {
    RedoLog::open(cfg.clone()).unwrap()
}

fn lsns(locs: &[Located]) -> Vec<u64> {
    locs.iter().map(|l| l.record.lsn.0).collect()
}

/// A log with five durable records (the last one a 300-byte blob); returns the file
/// bytes and the records' places.
fn five_records(cfg: &RedoConfig) -> (Vec<u8>, Vec<Located>) {
    let (log, report) = open(cfg);
    assert_eq!(report.sequence, 1);
    assert!(report.records.is_empty());
    for i in 0..4 {
        put(&log, vec![rec(17, i + 1, folder(&format!("f{i}")))]);
    }
    put(&log, vec![rec(0, 0, blob(&pattern(1, 300)))]);
    drop(log);
    let locs: Vec<Located> = RedoFileReader::open(&cfg.log_path)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(lsns(&locs), [1, 2, 3, 4, 5]);
    (fs::read(&cfg.log_path).unwrap(), locs)
}

#[test]
fn redo_log_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<RedoLog>();
    check::<AppendTicket>();
}

#[test]
fn records_survive_reopen_and_lsns_continue() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path());
    let (log, _) = open(&cfg);
    let ops = sample_ops();
    let recs: Vec<NewRecord> = ops.iter().map(|op| rec(17, 1, op.clone())).collect();
    let t = log.append(recs.clone()).unwrap();
    assert_eq!(t.lsns(), Lsn(1)..=Lsn(18));
    log.wait_durable(&t).unwrap();
    assert!(log.durable_lsn() >= Lsn(18));
    assert_eq!(
        log.position(),
        RedoPosition {
            sequence: 1,
            lsn: Lsn(18)
        }
    );
    drop(t);
    // An empty append is allowed and covers nothing.
    let t = log.append(vec![]).unwrap();
    assert!(t.lsns().is_empty());
    log.wait_durable(&t).unwrap();
    drop(t);
    drop(log);

    let (log, report) = open(&cfg);
    assert_eq!(report.sequence, 1);
    assert_eq!(report.truncated_at, None);
    let got: Vec<Op> = report.records.iter().map(|r| r.op.clone()).collect();
    assert_eq!(got, ops);
    assert_eq!(report.records[3].lsn, Lsn(4));
    assert_eq!(report.records[3].txn, TxnId(2544));
    assert_eq!(report.records[3].timestamp, UtcMillis(T0));
    assert_eq!(put(&log, vec![rec(17, 2, folder("x"))]), [Lsn(19)]);
}

#[test]
fn txn_ids_are_unique_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path());
    let (log, _) = open(&cfg);
    let a = log.next_txn_id();
    let b = log.next_txn_id();
    assert!(b > a);
    // A record with a txn id far in the future: the next run must start above it.
    let mut r = rec(1, 1, folder("x"));
    r.txn = TxnId(u64::MAX / 2);
    put(&log, vec![r]);
    drop(log);
    let (log, _) = open(&cfg);
    assert!(log.next_txn_id() > TxnId(u64::MAX / 2));
}

#[test]
fn a_torn_tail_at_every_byte_of_the_last_record_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path());
    let (full, locs) = five_records(&cfg);
    let last = locs.last().unwrap();
    let keep: Vec<Record> = locs[..4].iter().map(|l| l.record.clone()).collect();
    for cut in last.offset..last.offset + last.len {
        fs::write(&cfg.log_path, &full[..cut as usize]).unwrap();
        let (log, report) = open(&cfg);
        assert_eq!(report.records, keep, "cut at {cut}");
        if cut == last.offset {
            assert_eq!(report.truncated_at, None);
        } else {
            assert_eq!(report.truncated_at, Some(last.offset), "cut at {cut}");
            assert_eq!(report.truncated_bytes, cut - last.offset);
        }
        assert_eq!(fs::metadata(&cfg.log_path).unwrap().len(), last.offset);
        assert_eq!(log.position().lsn, Lsn(4));
    }
    // And the log goes on from there: the torn record's LSN is given again (it was
    // never durable, so never acknowledged).
    let (log, _) = open(&cfg);
    assert_eq!(put(&log, vec![rec(17, 9, folder("after"))]), [Lsn(5)]);
    drop(log);
    assert_eq!(lsns(&read_everything(&cfg)), [1, 2, 3, 4, 5]);
}

#[test]
fn a_bad_checksum_or_zeros_at_the_end_are_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path());
    let (full, locs) = five_records(&cfg);
    let last = locs.last().unwrap();
    // The last record's CRC fails and nothing follows it.
    let mut d = full.clone();
    d[(last.offset + 60) as usize] ^= 0x10;
    fs::write(&cfg.log_path, &d).unwrap();
    let (_, report) = open(&cfg);
    assert_eq!(report.truncated_at, Some(last.offset));
    assert_eq!(report.records.len(), 4);
    // A zero-filled tail (the file grew but the data never reached the disk).
    let mut d = full.clone();
    d.extend_from_slice(&[0; 4096]);
    fs::write(&cfg.log_path, &d).unwrap();
    let (_, report) = open(&cfg);
    assert_eq!(report.truncated_at, Some(full.len() as u64));
    assert_eq!(report.truncated_bytes, 4096);
    assert_eq!(report.records.len(), 5);
}

#[test]
fn a_flipped_byte_in_a_middle_record_is_reported_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path());
    let (full, locs) = five_records(&cfg);
    let mid = &locs[2];
    for i in 0..mid.len {
        let mut d = full.clone();
        d[(mid.offset + i) as usize] ^= 0xff;
        fs::write(&cfg.log_path, &d).unwrap();
        match RedoLog::open(cfg.clone()) {
            Err(RedoError::Corrupt {
                path,
                offset,
                reason,
            }) => {
                assert_eq!(path, cfg.log_path);
                assert_eq!(offset, mid.offset, "flip at +{i}: {reason}");
                assert!(reason.contains("not a torn tail"), "{reason}");
            }
            Err(e) => panic!("flip at +{i}: unexpected error {e}"),
            Ok(_) => panic!("flip at +{i}: damage in the middle was accepted"),
        }
        // Nothing was cut off.
        assert_eq!(fs::read(&cfg.log_path).unwrap(), d);
        // A reader (dump, replay) stops at the same place.
        let errs: Vec<RedoError> = RedoFileReader::open(&cfg.log_path)
            .unwrap()
            .filter_map(Result::err)
            .collect();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].offset(), Some(mid.offset));
        let text = errs[0].to_string();
        assert!(text.contains(&cfg.log_path.display().to_string()), "{text}");
    }
}

#[test]
fn a_checksummed_but_invalid_last_record_is_an_error_not_a_tear() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path());
    let (full, locs) = five_records(&cfg);
    let last = locs.last().unwrap();
    let mut d = full.clone();
    let at = last.offset as usize;
    d[at + 8..at + 10].copy_from_slice(&999u16.to_le_bytes());
    let crc = crc32c::crc32c(&d[at + 8..]);
    d[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
    fs::write(&cfg.log_path, &d).unwrap();
    let e = RedoLog::open(cfg.clone()).err().expect("must fail");
    assert!(
        matches!(e, RedoError::Corrupt { offset, .. } if offset == last.offset),
        "{e}"
    );
    assert!(e.to_string().contains("unknown op type 999"), "{e}");
    assert_eq!(fs::read(&cfg.log_path).unwrap(), d, "must not be truncated");
}

#[test]
fn a_bad_header_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path());
    let (mut full, _) = five_records(&cfg);
    full[20] ^= 1;
    fs::write(&cfg.log_path, &full).unwrap();
    let e = RedoLog::open(cfg.clone()).err().expect("must fail");
    assert!(
        matches!(&e, RedoError::BadHeader { path, .. } if *path == cfg.log_path),
        "{e}"
    );
    assert!(e.to_string().contains("redo.log"), "{e}");
    assert!(e.to_string().contains("checksum"), "{e}");
}

#[test]
fn forced_rollover_archives_with_zimbra_names() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path());
    let (log, _) = open(&cfg);
    assert!(log.rollover().unwrap().is_none(), "nothing to roll");
    put(&log, vec![rec(1, 1, folder("a")), rec(1, 2, folder("b"))]);
    let a = log.rollover().unwrap().unwrap();
    assert_eq!((a.sequence, a.first_lsn, a.last_lsn), (1, Lsn(1), Lsn(2)));
    let name = a.path.file_name().unwrap().to_str().unwrap().to_string();
    assert_eq!(name, format!("redo-{}-seq1.log", a.closed_at.label_stamp()));
    assert_eq!(a.path.parent().unwrap(), cfg.archive_dir);
    assert!(log.rollover().unwrap().is_none(), "the new log is empty");
    assert_eq!(
        log.position(),
        RedoPosition {
            sequence: 2,
            lsn: Lsn(2)
        }
    );
    put(&log, vec![rec(1, 3, folder("c"))]);
    let b = log.rollover().unwrap().unwrap();
    assert_eq!((b.sequence, b.first_lsn, b.last_lsn), (2, Lsn(3), Lsn(3)));

    let listed = list_archive(&cfg.archive_dir).unwrap();
    assert_eq!(listed, vec![a.clone(), b]);
    let h = RedoFileReader::open(&a.path).unwrap().header().to_owned();
    assert!(h.closed);
    assert_eq!(h.last_lsn, Lsn(2));
    assert_eq!(h.closed_at, a.closed_at);
    let current = RedoFileReader::open(&cfg.log_path)
        .unwrap()
        .header()
        .to_owned();
    assert_eq!(
        (current.sequence, current.first_lsn, current.closed),
        (3, Lsn(4), false)
    );
    drop(log);
    let (_, report) = open(&cfg);
    assert_eq!(report.sequence, 3);
    assert!(
        report.records.is_empty(),
        "archived records are applied; not re-offered"
    );
}

#[test]
fn sequences_are_never_reused_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path());
    let (log, r) = open(&cfg);
    assert_eq!(r.sequence, 1);
    put(&log, vec![rec(1, 1, folder("a"))]);
    log.rollover().unwrap().unwrap(); // seq 1 archived, 2 current
    put(&log, vec![rec(1, 2, folder("b"))]);
    drop(log);

    // Plain reopen: same log.
    let (log, r) = open(&cfg);
    assert_eq!(r.sequence, 2);
    assert_eq!(r.records.len(), 1);
    drop(log);

    // redo.log lost: a new sequence, never 2 again.
    fs::remove_file(&cfg.log_path).unwrap();
    let (log, r) = open(&cfg);
    assert_eq!(r.sequence, 3);
    assert!(log.position().lsn >= Lsn(1));
    drop(log);

    // State file lost, redo.log there: its header knows; the state is rewritten.
    fs::remove_file(&cfg.state_path).unwrap();
    let (log, r) = open(&cfg);
    assert_eq!(r.sequence, 3);
    drop(log);
    assert!(
        fs::read_to_string(&cfg.state_path)
            .unwrap()
            .contains("sequence=3")
    );

    // redo.log lost again, and the archive emptied too: the state file still knows.
    fs::remove_file(&cfg.log_path).unwrap();
    for a in list_archive(&cfg.archive_dir).unwrap() {
        fs::remove_file(a.path).unwrap();
    }
    let (log, r) = open(&cfg);
    assert_eq!(r.sequence, 4);
    // LSNs continue after everything known (LSN 1 archived, the state's floor).
    assert!(put(&log, vec![rec(1, 3, folder("c"))])[0] > Lsn(1));
    drop(log);

    // State and redo.log lost: the archive is all that is left to go by.
    let (log, _) = open(&cfg);
    put(&log, vec![rec(1, 4, folder("d"))]);
    log.rollover().unwrap().unwrap(); // seq 4 archived, 5 current
    drop(log);
    fs::remove_file(&cfg.log_path).unwrap();
    fs::remove_file(&cfg.state_path).unwrap();
    let (_, r) = open(&cfg);
    assert_eq!(r.sequence, 5);
}

#[test]
fn a_stale_redo_log_is_refused_rather_than_reusing_its_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path());
    let (log, _) = open(&cfg);
    put(&log, vec![rec(1, 1, folder("a"))]);
    let old = fs::read(&cfg.log_path).unwrap(); // sequence 1, open
    log.rollover().unwrap().unwrap();
    drop(log);
    fs::write(&cfg.log_path, &old).unwrap();
    let e = RedoLog::open(cfg.clone()).err().expect("must fail");
    assert!(matches!(e, RedoError::BadHeader { .. }), "{e}");
    assert!(e.to_string().contains("never reused"), "{e}");
}

#[test]
fn delete_on_rollover_keeps_no_archive_but_continues_sequence_and_lsns() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = cfg(dir.path());
    cfg.delete_on_rollover = true;
    let (log, _) = open(&cfg);
    put(&log, vec![rec(1, 1, folder("a")), rec(1, 2, folder("b"))]);
    let a = log.rollover().unwrap().unwrap();
    assert_eq!((a.sequence, a.last_lsn), (1, Lsn(2)));
    assert!(!a.path.exists(), "deleted, not archived");
    assert_eq!(fs::read_dir(&cfg.archive_dir).unwrap().count(), 0);
    put(&log, vec![rec(1, 3, folder("c"))]);
    log.rollover().unwrap().unwrap();
    drop(log);
    // Even with redo.log gone, the state file keeps sequence and LSN going.
    fs::remove_file(&cfg.log_path).unwrap();
    let (log, r) = open(&cfg);
    assert_eq!(r.sequence, 4);
    assert_eq!(put(&log, vec![rec(1, 4, folder("d"))]), [Lsn(4)]);
    assert_eq!(fs::read_dir(&cfg.archive_dir).unwrap().count(), 0);
}

#[test]
fn an_interrupted_rollover_is_completed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path());
    let (log, _) = open(&cfg);
    put(&log, vec![rec(1, 1, folder("a")), rec(1, 2, folder("b"))]);
    drop(log);
    // Crash after the closed header was written, before the rename.
    let mut bytes = fs::read(&cfg.log_path).unwrap();
    let mut h = FileHeader::decode(&bytes).unwrap();
    h.closed = true;
    h.last_lsn = Lsn(2);
    h.closed_at = UtcMillis(T0);
    bytes[..HEADER_LEN].copy_from_slice(&h.encode());
    fs::write(&cfg.log_path, &bytes).unwrap();
    // And a temporary file a crash in write_atomic left behind.
    fs::write(cfg.log_path.with_file_name(".redo.log.tmp99999"), b"x").unwrap();

    let (log, r) = open(&cfg);
    assert_eq!(r.sequence, 2);
    assert!(r.records.is_empty());
    let archived = list_archive(&cfg.archive_dir).unwrap();
    assert_eq!(archived.len(), 1);
    assert_eq!(archived[0].sequence, 1);
    assert_eq!(
        archived[0].path.file_name().unwrap(),
        "redo-20101119.172130.852-seq1.log"
    );
    assert_eq!(put(&log, vec![rec(1, 3, folder("c"))]), [Lsn(3)]);
    assert!(!cfg.log_path.with_file_name(".redo.log.tmp99999").exists());
}

#[test]
fn size_rollover_respects_the_minimum_age() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = cfg(dir.path());
    cfg.rollover_size_bytes = 200;
    cfg.rollover_min_age = Duration::from_secs(3600);
    let (log, _) = open(&cfg);
    for i in 0..10 {
        put(&log, vec![rec(1, i, folder("aaaaaaaaaaaaaaaaaaaaaaaa"))]);
    }
    assert_eq!(log.position().sequence, 1, "too young to roll");
    drop(log);
    cfg.rollover_min_age = Duration::ZERO;
    let (log, _) = open(&cfg);
    put(&log, vec![rec(1, 11, folder("b"))]);
    assert_eq!(
        log.position().sequence,
        2,
        "rolled at the start of the append"
    );
    assert_eq!(list_archive(&cfg.archive_dir).unwrap()[0].last_lsn, Lsn(10));
}

#[test]
fn rollover_waits_for_outstanding_tickets_and_does_not_deadlock_with_waiters() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path());
    let (log, _) = open(&cfg);
    let log = Arc::new(log);
    // Written, not yet durable, not yet applied.
    let held = log.append(vec![rec(1, 1, folder("held"))]).unwrap();
    let roller = {
        let log = Arc::clone(&log);
        thread::spawn(move || log.rollover())
    };
    thread::sleep(Duration::from_millis(100));
    assert!(
        !roller.is_finished(),
        "the barrier must wait for the ticket"
    );
    // An append arriving during the barrier waits for it and lands in the new log.
    let appender = {
        let log = Arc::clone(&log);
        thread::spawn(move || {
            let t = log.append(vec![rec(2, 1, folder("later"))]).unwrap();
            log.wait_durable(&t).unwrap();
            log.position().sequence
        })
    };
    thread::sleep(Duration::from_millis(50));
    assert!(
        !appender.is_finished(),
        "appends are held off during the barrier"
    );
    // The ticket holder can still wait for durability and release.
    log.wait_durable(&held).unwrap();
    drop(held);
    let archived = roller.join().unwrap().unwrap().unwrap();
    assert_eq!((archived.sequence, archived.last_lsn), (1, Lsn(1)));
    assert_eq!(appender.join().unwrap(), 2);
    let all = read_everything(&cfg);
    assert_eq!(lsns(&all), [1, 2]);
    assert_eq!(all[1].sequence, 2);
}

#[test]
fn rollover_under_16_concurrent_writers_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = cfg(dir.path());
    cfg.rollover_size_bytes = 8 * 1024;
    let (log, _) = open(&cfg);
    let log = Arc::new(log);
    const THREADS: usize = 16;
    const APPENDS: usize = 120;
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = Arc::clone(&log);
            thread::spawn(move || {
                let mut seen = Vec::new();
                for i in 0..APPENDS {
                    // 1..=3 records per append, sometimes with a blob.
                    let mut recs = Vec::new();
                    if i % 3 == 0 {
                        recs.push(rec(
                            0,
                            0,
                            blob(&pattern((t * 1000 + i) as u64, i * 7 % 1500)),
                        ));
                    }
                    for k in 0..=(i % 2) {
                        recs.push(rec(
                            t as u32 + 1,
                            i as u64,
                            folder(&format!("t{t}-{i}-{k}")),
                        ));
                    }
                    let n = recs.len() as u64;
                    let ticket = log.append(recs).unwrap();
                    let r = ticket.lsns();
                    assert_eq!(r.end().0 - r.start().0 + 1, n);
                    log.wait_durable(&ticket).unwrap();
                    assert!(log.durable_lsn() >= *r.end());
                    seen.extend(r.start().0..=r.end().0);
                    drop(ticket);
                }
                seen
            })
        })
        .collect();
    // Forced rollovers (incremental backups) racing with the size-triggered ones.
    let forcer = {
        let log = Arc::clone(&log);
        thread::spawn(move || {
            for _ in 0..20 {
                let _ = log.rollover().unwrap();
                thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut acked: Vec<u64> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    forcer.join().unwrap();
    drop(log);

    let all = read_everything(&cfg);
    let n = all.len() as u64;
    assert_eq!(
        lsns(&all),
        (1..=n).collect::<Vec<_>>(),
        "LSNs 1..=N, in order, once each"
    );
    acked.sort_unstable();
    assert_eq!(acked, (1..=n).collect::<Vec<_>>());
    let mut tags = BTreeSet::new();
    for l in &all {
        if let Op::CreateFolder(f) = &l.record.op {
            assert!(tags.insert(f.name.clone()), "duplicate {}", f.name);
        }
    }
    let expected: usize = (0..APPENDS).map(|i| 1 + i % 2).sum::<usize>() * THREADS;
    assert_eq!(tags.len(), expected);
    // Sequences form a chain, and each archive's header matches its records.
    let archives = list_archive(&cfg.archive_dir).unwrap();
    assert!(archives.len() > 10, "only {} rollovers", archives.len());
    let mut seqs: Vec<u64> = archives.iter().map(|a| a.sequence).collect();
    seqs.push(
        RedoFileReader::open(&cfg.log_path)
            .unwrap()
            .header()
            .sequence,
    );
    check_chain(&seqs).unwrap();
    assert_eq!(seqs[0], 1);
    for a in &archives {
        let in_file: Vec<u64> = all
            .iter()
            .filter(|l| l.sequence == a.sequence)
            .map(|l| l.record.lsn.0)
            .collect();
        if let (Some(first), Some(last)) = (in_file.first(), in_file.last()) {
            assert_eq!((Lsn(*first), Lsn(*last)), (a.first_lsn, a.last_lsn));
        }
    }
}

#[test]
fn a_rebuilt_home_continues_at_the_backups_next_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path());
    // A fresh home: opening it made an empty redo.log with sequence 1.
    drop(open(&cfg));
    assert_eq!(
        continue_at(&cfg, 58, 9_000).unwrap(),
        Continuation::Advanced { next_sequence: 58 }
    );
    // The log is there already: the next open starts no other (no hole at 58).
    let (log, report) = open(&cfg);
    assert_eq!(report.sequence, 58);
    let t = log.append(vec![rec(17, 1, folder("x"))]).unwrap();
    assert_eq!(t.lsns(), Lsn(9_001)..=Lsn(9_001));
    log.wait_durable(&t).unwrap();
    drop(t);
    drop(log);
    // The same history (an offline restore on the home that took the backup, whose
    // live log is the one the backup's position lies in): nothing changes.
    assert_eq!(
        continue_at(&cfg, 58, 9_000).unwrap(),
        Continuation::AlreadyPast { next_sequence: 58 }
    );
    assert_eq!(
        continue_at(&cfg, 40, 10).unwrap(),
        Continuation::AlreadyPast { next_sequence: 58 }
    );
    // Its own records are never renumbered.
    let err = continue_at(&cfg, 70, 0).unwrap_err().to_string();
    assert!(err.contains("holds records"), "{err}");
    assert_eq!(open(&cfg).1.sequence, 58);
}

/// A write the disk refuses stops the log; once the disk takes writes again,
/// `resume` (no reopen) cuts the file back to its last durable record — a
/// partial record and a record written but never made durable go — and the
/// log goes on from there, readable to its end.
#[test]
fn a_log_stopped_by_a_refused_write_resumes_at_its_durable_end() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg(dir.path());
    let (log, _) = open(&cfg);
    put(&log, vec![rec(17, 1, folder("a"))]);
    let durable_len = fs::metadata(&cfg.log_path).unwrap().len();
    // Written, not durable, not released: never acknowledged.
    let unacknowledged = log.append(vec![rec(17, 2, folder("b"))]).unwrap();
    // A partial record past the end, then a disk that refuses writes.
    let rw = fs::OpenOptions::new()
        .write(true)
        .open(&cfg.log_path)
        .unwrap();
    let end = fs::metadata(&cfg.log_path).unwrap().len();
    rw.write_all_at(&[0xA5; 40], end).unwrap();
    let good = log.swap_file_for_test(fs::File::open("/dev/full").unwrap());
    let e = log.append(vec![rec(17, 3, folder("c"))]).unwrap_err();
    assert!(e.to_string().contains("redo.log"), "{e}");
    assert!(log.failure().is_some());
    assert!(matches!(
        log.wait_durable(&unacknowledged),
        Err(RedoError::Failed { .. })
    ));
    // Not while a ticket is held, nor while the disk refuses.
    let e = log.resume().unwrap_err().to_string();
    assert!(e.contains("not yet released"), "{e}");
    drop(unacknowledged);
    assert!(log.resume().is_err());
    assert!(log.failure().is_some());

    // Room again.
    log.swap_file_for_test(good);
    log.resume().unwrap();
    assert!(log.failure().is_none());
    assert_eq!(fs::metadata(&cfg.log_path).unwrap().len(), durable_len);
    assert_eq!(put(&log, vec![rec(17, 2, folder("b2"))]), [Lsn(2)]);
    drop(log);
    let (_, report) = open(&cfg);
    assert_eq!(report.truncated_at, None);
    let all = read_everything(&cfg);
    assert_eq!(lsns(&all), [1, 2]);
    assert!(matches!(&all[1].record.op, Op::CreateFolder(f) if f.name == "b2"));
}
