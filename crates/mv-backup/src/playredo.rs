//! `zmplayredo`: replays redo logs into the store of a stopped server, through the
//! one apply path ([`mv_store::Store::replay`]).
//!
//! Input: `--logfiles` (files or directories), else the home's archive in sequence
//! order then `redo.log`. Records are grouped by transaction; the content records
//! (`PutBlob`) a transaction's selected records use are staged once, and each
//! mailbox's records go, with the staged files they use, to the worker owning the
//! mailbox (`mailbox % threads`), in batches of up to [`HAND_OVER_RECORDS`]
//! through a bounded queue (`--queueCapacity` batches). So mailboxes replay in
//! parallel and each mailbox serially, in log order, many records per database
//! transaction ([`mv_store::Replayer`]). Each mailbox's database is read ahead
//! (`posix_fadvise`) when the reader first meets it.

use crate::error::{BackupError, Result};
use mv_redo::{Op, Record};
use mv_store::Store;
use mv_store::apply::Staged;
use mv_types::{Digest, MailboxId, UtcMillis};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};

/// The options of `zmplayredo`.
#[derive(Debug, Clone)]
pub struct PlayRedoOptions {
    pub from_seq: Option<u64>,
    pub to_seq: Option<u64>,
    pub from_time: Option<UtcMillis>,
    pub to_time: Option<UtcMillis>,
    pub mailboxes: Option<Vec<u32>>,
    /// Files or directories; empty: the home's archive then redo.log.
    pub logfiles: Vec<PathBuf>,
    pub threads: usize,
    pub queue_capacity: usize,
    pub stop_on_error: bool,
    /// Records applied in one mailbox transaction before it commits (no
    /// `zmplayredo` option: the default, [`mv_store::replay::COMMIT_EVERY`],
    /// bounds what a crash makes the re-run apply again).
    pub commit_every: u32,
}

impl Default for PlayRedoOptions {
    fn default() -> Self {
        PlayRedoOptions {
            from_seq: None,
            to_seq: None,
            from_time: None,
            to_time: None,
            mailboxes: None,
            logfiles: Vec::new(),
            threads: 50,
            queue_capacity: 100,
            stop_on_error: false,
            commit_every: mv_store::replay::COMMIT_EVERY,
        }
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PlayRedoReport {
    pub files: Vec<String>,
    pub records_read: u64,
    pub applied: u64,
    pub skipped_already_applied: u64,
    pub skipped_filtered: u64,
    pub mailboxes: Vec<u32>,
    pub errors: Vec<String>,
}

/// The files to read, in replay order.
pub fn input_files(store: &Store, logfiles: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if logfiles.is_empty() {
        let home = store.home();
        let archive = home.redo_archive_dir();
        if archive.is_dir() {
            out.extend(mv_redo::logs_in_dir(&archive)?);
        }
        let current = home.redolog_dir().join(mv_redo::archive::CURRENT_LOG_NAME);
        if current.is_file() {
            out.push(current);
        }
    } else {
        for p in logfiles {
            if p.is_dir() {
                out.extend(mv_redo::logs_in_dir(p)?);
            } else {
                out.push(p.clone());
            }
        }
    }
    Ok(out)
}

/// Records for one worker, in log order, with the staged content they use.
#[derive(Default)]
struct Batch {
    records: Vec<Record>,
    content: Vec<(Digest, PathBuf)>,
}

/// Records gathered for a worker before they are handed over: most transactions
/// hold one record (a flag change, a move), and a hand-over per record cost a
/// thread wake-up on each side, about as much as applying the record.
const HAND_OVER_RECORDS: usize = 256;

/// Replays the selected records. With `stop_on_error` the first error ends the run
/// (and is returned); otherwise errors are collected in the report and replay goes on.
///
/// Content is staged once per digest by the reading thread (a message delivered to
/// several mailboxes is written once and linked into each); each worker keeps one
/// transaction per mailbox open across many records ([`mv_store::Replayer`]). The
/// workers are at most as many as the machine has CPUs: more only contend. Once
/// every worker has committed, the store is made durable (one `syncfs`) before the
/// report is returned.
pub fn playredo(store: &Store, opts: &PlayRedoOptions) -> Result<PlayRedoReport> {
    let files = input_files(store, &opts.logfiles)?;
    let mut report = PlayRedoReport {
        files: files.iter().map(|p| p.display().to_string()).collect(),
        ..Default::default()
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = opts.threads.clamp(1, cpus);
    let capacity = opts.queue_capacity.max(1);
    let stop = AtomicBool::new(false);
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let totals: Mutex<PlayRedoReport> = Mutex::new(PlayRedoReport::default());
    let selected = |r: &Record| -> bool {
        opts.from_time.is_none_or(|t| r.timestamp >= t)
            && opts.to_time.is_none_or(|t| r.timestamp <= t)
            && opts
                .mailboxes
                .as_ref()
                .is_none_or(|m| m.contains(&r.mailbox.0))
    };
    let fail = |msg: String| {
        errors.lock().unwrap_or_else(|p| p.into_inner()).push(msg);
        if opts.stop_on_error {
            stop.store(true, Ordering::SeqCst);
        }
    };
    // Staged content, by digest: kept until every worker is done with it.
    let mut staged = Staged::default();
    let stager = store.replayer();
    std::thread::scope(|scope| {
        let mut senders = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (tx, rx) = mpsc::sync_channel::<Batch>(capacity);
            senders.push(tx);
            let (stop, totals, fail) = (&stop, &totals, &fail);
            scope.spawn(move || {
                let mut replayer = store.replayer();
                replayer.set_commit_every(opts.commit_every);
                let mut staged = Staged::default();
                for batch in rx {
                    if stop.load(Ordering::SeqCst) {
                        continue; // drain
                    }
                    for (d, p) in batch.content {
                        staged.insert(d, p);
                    }
                    // A failed record skips the rest of its transaction in its
                    // mailbox; the batch's other transactions go on.
                    let mut failed: Option<(u32, mv_types::TxnId)> = None;
                    for rec in &batch.records {
                        if failed == Some((rec.mailbox.0, rec.txn)) {
                            continue;
                        }
                        if let Err(e) = replayer.apply(rec, &staged) {
                            fail(e.to_string());
                            failed = Some((rec.mailbox.0, rec.txn));
                        }
                    }
                }
                match replayer.finish() {
                    Ok(r) => {
                        let mut t = totals.lock().unwrap_or_else(|p| p.into_inner());
                        t.applied += r.applied;
                        t.skipped_already_applied += r.skipped_already_applied;
                        t.mailboxes.extend(r.mailboxes);
                    }
                    Err(e) => fail(e.to_string()),
                }
            });
        }
        let mut txn_records: Vec<Record> = Vec::new();
        let mut pending: Vec<Batch> = (0..threads).map(|_| Batch::default()).collect();
        let mut seen_mailboxes = std::collections::HashSet::new();
        let mut flush = |recs: &mut Vec<Record>, pending: &mut Vec<Batch>| {
            let all = std::mem::take(recs);
            let (content, ops): (Vec<Record>, Vec<Record>) =
                all.into_iter().partition(|r| r.mailbox.0 == 0);
            let mut by_mbox: Vec<(u32, Vec<Record>)> = Vec::new();
            for r in ops {
                match by_mbox.iter_mut().find(|(m, _)| *m == r.mailbox.0) {
                    Some((_, v)) => v.push(r),
                    None => by_mbox.push((r.mailbox.0, vec![r])),
                }
            }
            for (mbox, records) in by_mbox {
                if seen_mailboxes.insert(mbox) {
                    // The worker reads the mailbox's database page by page as its
                    // records need them: started now, the reads overlap.
                    mv_home::durable::will_need(store.mailbox(MailboxId(mbox)).db_path(), 0);
                }
                let mut used = Vec::new();
                let mut staged_all = true;
                for c in &content {
                    let Op::PutBlob(p) = &c.op else { continue };
                    let digest = Digest(p.digest);
                    if !records
                        .iter()
                        .any(|r| r.op.referenced_digest() == Some(p.digest))
                    {
                        continue;
                    }
                    if let Err(e) = stager.stage(c, &mut staged) {
                        fail(e.to_string());
                        staged_all = false;
                        continue;
                    }
                    if let Some(path) = staged.get(&digest) {
                        used.push((digest, path.clone()));
                    }
                }
                if !staged_all {
                    continue; // the records that needed it fail with it
                }
                let worker = mbox as usize % threads;
                let batch = &mut pending[worker];
                batch.records.extend(records);
                batch.content.extend(used);
                if batch.records.len() >= HAND_OVER_RECORDS {
                    let _ = senders[worker].send(std::mem::take(batch));
                }
            }
        };
        for item in mv_redo::read_files(&files) {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let located = match item {
                Ok(l) => l,
                Err(e) => {
                    fail(e.to_string());
                    continue;
                }
            };
            if opts.from_seq.is_some_and(|s| located.sequence < s)
                || opts.to_seq.is_some_and(|s| located.sequence > s)
            {
                continue;
            }
            let rec = located.record;
            report.records_read += 1;
            if rec.mailbox.0 != 0 && !selected(&rec) {
                report.skipped_filtered += 1;
                continue;
            }
            if txn_records.first().is_some_and(|f| f.txn != rec.txn) {
                flush(&mut txn_records, &mut pending);
            }
            txn_records.push(rec);
        }
        flush(&mut txn_records, &mut pending);
        for (worker, batch) in pending.into_iter().enumerate() {
            if !batch.records.is_empty() {
                let _ = senders[worker].send(batch);
            }
        }
        drop(senders);
    });
    drop(stager);
    for p in staged.paths() {
        let _ = store.blobs().remove(p);
    }
    // Done means durable: every replayed database and blob, in one sync.
    if let Err(e) = store.checkpoint() {
        errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("making the replayed store durable: {e}"));
    }
    let t = totals.into_inner().unwrap_or_else(|p| p.into_inner());
    report.applied = t.applied;
    report.skipped_already_applied = t.skipped_already_applied;
    report.mailboxes = t.mailboxes;
    report.mailboxes.sort_unstable();
    report.mailboxes.dedup();
    report.errors = errors.into_inner().unwrap_or_else(|p| p.into_inner());
    if opts.stop_on_error
        && let Some(first) = report.errors.first()
    {
        return Err(BackupError::Invalid(format!(
            "playredo stopped at the first error (--stopOnError): {first}"
        )));
    }
    Ok(report)
}
