//! The live redo log: appending, group commit and rollover.
//!
//! # Group commit
//!
//! [`RedoLog::append`] takes the append mutex, assigns consecutive LSNs and writes the
//! records with one `pwrite` at the end of the file (records are encoded before the
//! mutex is taken; inside it only the LSNs and CRCs are filled in). The records are
//! then written but not durable. [`RedoLog::wait_durable`] returns at once if the
//! durable LSN already covers the ticket; otherwise, if no fsync is in flight, the
//! caller becomes the leader: it notes the highest LSN written so far, calls
//! `fdatasync` *without* the append mutex (others keep appending), publishes the new
//! durable LSN and wakes every waiter; if an fsync is in flight, the caller waits for
//! it and checks again. There is no artificial delay: batches form from the writers
//! that arrive while an fsync is running, so one writer runs at the raw fdatasync
//! rate and many writers share each fsync.
//!
//! `fsync_interval` (`zimbraRedoLogFsyncIntervalMS`) is honoured as an upper bound,
//! not as a delay: a record waits at most for the fsync in flight when it was written
//! plus one more, so it is durable within two fsync durations. While the disk's
//! fsync is faster than half the interval, every record is durable within the
//! interval; we add no waiting to get there. If an fsync takes longer than the
//! interval, the bound cannot be met and the log says so (a warning, at most once a
//! minute).
//!
//! # Tickets and rollover
//!
//! `append` returns an [`AppendTicket`]. Dropping it tells the log that the caller has
//! applied those records to its database ("released"). A rollover is a barrier: it
//! stops new appends, fsyncs everything written (itself, so writers waiting for
//! durability proceed), waits until every ticket is released, then closes the file
//! (header rewritten with the closed flag, last LSN and close time, fsync), moves it
//! to `archive/redo-<yyyyMMdd.HHmmss.SSS>-seq<N>.log` (or deletes it), creates the next
//! `redo.log` and records the new sequence in the state file. Because of the barrier,
//! everything in an archived log has been applied; once the store's checkpoint (run
//! between the barrier and the close) has made its effects durable, the checkpoint
//! record says so ([`crate::checkpoint`]) and crash recovery starts after it.
//!
//! A size-triggered rollover runs at the start of an `append` (before LSNs are
//! assigned), on the appending thread. Hence the one rule for callers: **do not hold
//! an unreleased ticket (or anything a ticket holder needs in order to release its
//! ticket) while calling `append` or `rollover`**: the barrier would wait for that
//! ticket forever. (The rollover warns every 10 s while it waits, naming the count.)
//!
//! # Failures
//!
//! A failed write, fsync or rollover step leaves the log in a state we cannot vouch
//! for (after a failed fsync the kernel may have dropped the dirty pages), so the log
//! stops: every later `append`/`rollover`, and every `wait_durable` for a record not
//! yet durable, returns [`RedoError::Failed`]. Nothing past the last durable record
//! was acknowledged or applied (its writers got the error), so the log can resume
//! without a restart once the cause is gone (a full disk has room again):
//! [`RedoLog::resume`], tried by `append` at most once a second and by the server
//! every few seconds, waits for every ticket to be released, cuts the file back to
//! the end of the last durable record (a partial record a failed write left, and
//! records whose fsync failed, go), then reopens it the way `open` does (torn tail,
//! interrupted rollover), checks that it ends exactly at the durable LSN and that
//! the disk has room again — it takes a write of twice the one that failed, and
//! at least 1 MiB (written past the end, then cut off again; a delivery needs
//! room for its staged content as well as its record). Only then are appends taken again; the LSNs that were cut are assigned again, which is
//! safe because no caller ever saw them durable. Reopening after a restart does the
//! same.

use std::fs::File;
use std::ops::RangeInclusive;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use mv_types::{ChangeNumber, Lsn, MailboxId, TxnId, UtcMillis};

use crate::archive::{ArchivedLog, CURRENT_LOG_NAME};
use crate::checkpoint::{self, Checkpoint};
use crate::error::RedoError;
use crate::format::{self, FileHeader, HEADER_LEN, Record};
use crate::ops::Op;
use crate::recovery::{self, State, create_log_file, retire_closed_log, write_state};

mod resume;

/// Where the log lives and how it rolls over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedoConfig {
    /// `<home>/redolog/redo.log`
    pub log_path: PathBuf,
    /// `<home>/redolog/archive`
    pub archive_dir: PathBuf,
    /// `<home>/redolog/state`: sequence and an LSN floor, written atomically.
    pub state_path: PathBuf,
    /// `zimbraRedoLogRolloverFileSizeKB * 1024`.
    pub rollover_size_bytes: u64,
    /// A log younger than this is not rolled over by size.
    pub rollover_min_age: Duration,
    /// `zimbraRedoLogDeleteOnRollover`.
    pub delete_on_rollover: bool,
    /// `zimbraRedoLogFsyncIntervalMS`: an upper bound on how long a record waits for
    /// its fsync (see the module docs), not a delay.
    pub fsync_interval: Duration,
}

impl RedoConfig {
    /// The layout of `<home>/redolog` with the defaults: 100 MB rollover, no minimum
    /// age, keep archived logs, 10 ms fsync interval.
    pub fn for_dir(redolog_dir: &Path) -> RedoConfig {
        RedoConfig {
            log_path: redolog_dir.join(CURRENT_LOG_NAME),
            archive_dir: redolog_dir.join("archive"),
            state_path: redolog_dir.join("state"),
            rollover_size_bytes: 100 * 1024 * 1024,
            rollover_min_age: Duration::ZERO,
            delete_on_rollover: false,
            fsync_interval: Duration::from_millis(10),
        }
    }
}

/// A record to append; the log assigns its LSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    pub txn: TxnId,
    pub timestamp: UtcMillis,
    pub mailbox: MailboxId,
    pub change: ChangeNumber,
    pub op: Op,
}

/// Redo log fsync durations of this process (`mailvault_redo_fsync_seconds`).
pub static FSYNC_SECONDS: mv_types::metrics::Histogram =
    mv_types::metrics::Histogram::new(mv_types::metrics::FSYNC_BOUNDS);

/// Where the log is: the current file's sequence and the last LSN assigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RedoPosition {
    pub sequence: u64,
    pub lsn: Lsn,
}

/// What open() found and did.
#[derive(Debug, Clone)]
pub struct RecoveryReport {
    /// Sequence of the current redo.log.
    pub sequence: u64,
    /// Offset at which a torn tail was cut off, if there was one.
    pub truncated_at: Option<u64>,
    /// How many bytes were cut off.
    pub truncated_bytes: u64,
    /// Every record after the last recorded checkpoint (archived logs' and the
    /// current redo.log's; all of redo.log's without a checkpoint), all durable
    /// now, for the store to re-apply those it had not applied (change > applied
    /// change) and to repair the blobs they created.
    pub records: Vec<Record>,
}

/// Proof of an append: the LSNs it got. Dropping it releases the records (the caller
/// has applied them); a rollover waits for that.
pub struct AppendTicket {
    first: Lsn,
    last: Lsn,
    shared: Arc<Shared>,
}

impl AppendTicket {
    /// The LSNs assigned, in the order of the records given (empty for an empty
    /// append).
    pub fn lsns(&self) -> RangeInclusive<Lsn> {
        self.first..=self.last
    }

    pub fn first_lsn(&self) -> Lsn {
        self.first
    }

    pub fn last_lsn(&self) -> Lsn {
        self.last
    }

    fn is_empty(&self) -> bool {
        self.last < self.first
    }
}

impl std::fmt::Debug for AppendTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppendTicket")
            .field("first", &self.first)
            .field("last", &self.last)
            .finish()
    }
}

impl Drop for AppendTicket {
    fn drop(&mut self) {
        let mut g = lock(&self.shared.log);
        g.outstanding -= 1;
        let wake = g.outstanding == 0 && g.rolling;
        drop(g);
        if wake {
            self.shared.log_cv.notify_all();
        }
    }
}

/// The redo log. `Send + Sync`; share it with an `Arc`.
pub struct RedoLog {
    shared: Arc<Shared>,
}

struct Shared {
    cfg: RedoConfig,
    /// The append mutex: the current file and everything about it.
    log: Mutex<LogState>,
    /// Signalled when a rollover ends and when the last outstanding ticket goes.
    log_cv: Condvar,
    sync: Mutex<SyncState>,
    /// Signalled when an fsync completes (or fails).
    sync_cv: Condvar,
    /// Mirror of `SyncState::durable` for lock-free reads.
    durable: AtomicU64,
    /// Set by the first failure, cleared by a resume; see the module docs.
    failed: Mutex<Option<String>>,
    /// When `append` last tried to resume a failed log.
    resume_tried: Mutex<Option<Instant>>,
    /// The size of the write that failed, if one did: a resume first checks that
    /// the disk takes that much.
    failed_write_len: AtomicU64,
    next_txn: AtomicU64,
    slow_fsync_warned: Mutex<Option<Instant>>,
    /// Run before a log is archived: the store makes every write that the log
    /// could rebuild durable, then the checkpoint is recorded (see [`crate::checkpoint`]).
    checkpoint: Mutex<Option<CheckpointHook>>,
}

/// See [`RedoLog::set_checkpoint_hook`].
pub type CheckpointHook = Box<dyn Fn() -> std::io::Result<()> + Send + Sync>;

struct LogState {
    file: Arc<File>,
    sequence: u64,
    created_at: UtcMillis,
    first_lsn: u64,
    /// Bytes in the file; the next record goes here.
    size: u64,
    /// The next LSN to assign. Every record below it has been written.
    next_lsn: u64,
    /// Tickets not yet dropped.
    outstanding: u64,
    /// A rollover barrier is up: appends wait.
    rolling: bool,
}

impl LogState {
    fn has_records(&self) -> bool {
        self.next_lsn > self.first_lsn
    }
}

struct SyncState {
    syncing: bool,
    durable: u64,
    /// Where the last durable record ends: (sequence of the file, byte offset). A
    /// resume cuts the file back to it.
    durable_end: (u64, u64),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding a lock leaves consistent state here (every
    // critical section updates its fields after its I/O succeeded), so keep going.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn wait<'a, T>(cv: &Condvar, g: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cv.wait(g).unwrap_or_else(PoisonError::into_inner)
}

impl RedoLog {
    /// Opens (or creates) the log, recovering as described in [`crate::recovery`]:
    /// the sequence and LSNs continue after everything known, a torn tail is
    /// truncated, damage in the middle is an error naming the file and offset.
    pub fn open(cfg: RedoConfig) -> Result<(RedoLog, RecoveryReport), RedoError> {
        let mut rec = recovery::recover(&cfg)?;
        checkpoint::records_since_checkpoint(&cfg, &rec.header, &mut rec.report)?;
        // Transaction ids: milliseconds * 1000 + a counter, and above any id in the
        // current log, so they stay unique across restarts as long as the clock does
        // not go back and fewer than 1000 transactions per millisecond are started on
        // average.
        let now = u64::try_from(UtcMillis::now().0).unwrap_or(0);
        let txn_seed = now.saturating_mul(1000).max(rec.max_txn + 1);
        let durable = rec.next_lsn - 1;
        let shared = Shared {
            log: Mutex::new(LogState {
                file: Arc::new(rec.file),
                sequence: rec.header.sequence,
                created_at: rec.header.created_at,
                first_lsn: rec.header.first_lsn.0,
                size: rec.size,
                next_lsn: rec.next_lsn,
                outstanding: 0,
                rolling: false,
            }),
            log_cv: Condvar::new(),
            sync: Mutex::new(SyncState {
                syncing: false,
                durable,
                durable_end: (rec.header.sequence, rec.size),
            }),
            sync_cv: Condvar::new(),
            durable: AtomicU64::new(durable),
            failed: Mutex::new(None),
            resume_tried: Mutex::new(None),
            failed_write_len: AtomicU64::new(0),
            next_txn: AtomicU64::new(txn_seed),
            slow_fsync_warned: Mutex::new(None),
            checkpoint: Mutex::new(None),
            cfg,
        };
        Ok((
            RedoLog {
                shared: Arc::new(shared),
            },
            rec.report,
        ))
    }

    /// A new transaction id, unique across restarts (see `open`).
    pub fn next_txn_id(&self) -> TxnId {
        TxnId(self.shared.next_txn.fetch_add(1, Ordering::Relaxed))
    }

    /// Assigns consecutive LSNs to `recs` and writes them (one write). They are not
    /// durable until [`RedoLog::wait_durable`] returns. Must not be called while the
    /// caller holds an unreleased ticket (see the module docs).
    pub fn append(&self, recs: Vec<NewRecord>) -> Result<AppendTicket, RedoError> {
        self.shared.append(recs)
    }

    /// Returns when every record of the ticket is on disk (group commit).
    pub fn wait_durable(&self, t: &AppendTicket) -> Result<(), RedoError> {
        debug_assert!(
            Arc::ptr_eq(&t.shared, &self.shared),
            "ticket of another redo log"
        );
        if t.is_empty() || self.shared.durable.load(Ordering::Acquire) >= t.last.0 {
            return Ok(());
        }
        self.shared.sync_to(t.last.0)
    }

    /// The current sequence and the last LSN assigned.
    pub fn position(&self) -> RedoPosition {
        let g = lock(&self.shared.log);
        RedoPosition {
            sequence: g.sequence,
            lsn: Lsn(g.next_lsn - 1),
        }
    }

    /// Why the log stopped taking records (see "Failures" above), if it did.
    pub fn failure(&self) -> Option<String> {
        lock(&self.shared.failed).clone()
    }

    /// Takes appends again after a failure, once that is safe (see "Failures"
    /// above): `Ok` when the log is usable (it was, or it resumed), otherwise why
    /// not yet (the disk is still full, a ticket is still held). Call it again
    /// later; it changes nothing while it cannot succeed.
    pub fn resume(&self) -> Result<(), RedoError> {
        self.shared.resume()
    }

    /// Every record up to this LSN is on disk.
    pub fn durable_lsn(&self) -> Lsn {
        Lsn(self.shared.durable.load(Ordering::Acquire))
    }

    /// Rolls over now (incremental backups do). `None` if the current log has no
    /// records. Must not be called while the caller holds an unreleased ticket.
    pub fn rollover(&self) -> Result<Option<ArchivedLog>, RedoError> {
        self.shared.roll(true)
    }

    pub fn config(&self) -> &RedoConfig {
        &self.shared.cfg
    }

    /// Sets the checkpoint run at every rollover, after every record of the
    /// closing log is durable and applied and before the log is archived. Blobs
    /// and databases are written without per-operation fsyncs; the checkpoint
    /// (`syncfs`) makes them durable so the archived log is no longer needed for
    /// crash recovery. A failing checkpoint stops the rollover (the log stays
    /// current, nothing is lost) and is reported.
    pub fn set_checkpoint_hook(&self, hook: CheckpointHook) {
        *lock(&self.shared.checkpoint) = Some(hook);
    }

    /// The position a checkpoint starting now may claim: the last LSN assigned,
    /// if every record up to it is durable and applied (no append outstanding).
    /// `None` while an append is in flight or after a failure. Read it *before*
    /// the syncs, then [`Self::record_checkpoint`] it after they succeed.
    pub fn applied_position(&self) -> Option<RedoPosition> {
        if lock(&self.shared.failed).is_some() {
            return None;
        }
        let g = lock(&self.shared.log);
        let lsn = g.next_lsn - 1;
        (g.outstanding == 0 && self.shared.durable.load(Ordering::Acquire) >= lsn).then_some(
            RedoPosition {
                sequence: g.sequence,
                lsn: Lsn(lsn),
            },
        )
    }

    /// Records durably that every record up to `pos` is applied and its effects
    /// durable: crash recovery replays only what follows. Call only after the
    /// syncs covering everything applied when `pos` was read
    /// ([`Self::applied_position`]) have returned.
    pub fn record_checkpoint(&self, pos: RedoPosition) -> Result<(), RedoError> {
        let _one_at_a_time = lock(&self.shared.checkpoint);
        checkpoint::write_checkpoint(
            &self.shared.cfg,
            Checkpoint {
                sequence: pos.sequence,
                lsn: pos.lsn.0,
            },
        )
    }

    /// The last recorded checkpoint.
    pub fn last_checkpoint(&self) -> Result<Option<Checkpoint>, RedoError> {
        checkpoint::read_checkpoint(&self.shared.cfg)
    }

    /// Puts `file` in place of the current log's handle (a disk that refuses
    /// writes: `/dev/full`), returning the handle it replaced.
    #[cfg(test)]
    pub(crate) fn swap_file_for_test(&self, file: File) -> File {
        let mut g = lock(&self.shared.log);
        let old = std::mem::replace(&mut g.file, Arc::new(file));
        Arc::try_unwrap(old).expect("no fsync in flight")
    }
}

impl Shared {
    fn check_failed(&self) -> Result<(), RedoError> {
        match lock(&self.failed).as_ref() {
            Some(reason) => Err(RedoError::Failed {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn fail(&self, e: &RedoError) {
        let mut failed = lock(&self.failed);
        if failed.is_none() {
            tracing::error!("redo log stopped: {e}");
            *failed = Some(e.to_string());
        }
    }

    fn append(self: &Arc<Self>, recs: Vec<NewRecord>) -> Result<AppendTicket, RedoError> {
        // Encode outside the mutex; only LSNs and CRCs are filled in under it.
        let mut buf = Vec::new();
        let mut bounds = Vec::with_capacity(recs.len());
        for r in &recs {
            let start = buf.len();
            format::encode_unsealed(&mut buf, r.txn, r.timestamp, r.mailbox, r.change, &r.op)?;
            bounds.push(start..buf.len());
        }
        let n = recs.len() as u64;

        let mut g = self.lock_for_append()?;
        let first = g.next_lsn;
        for (i, b) in bounds.into_iter().enumerate() {
            format::seal_record(&mut buf[b], Lsn(first + i as u64));
        }
        if !buf.is_empty()
            && let Err(source) = g.file.write_all_at(&buf, g.size)
        {
            // Part of the buffer may be in the file: nothing may follow it.
            self.failed_write_len
                .fetch_max(buf.len() as u64, Ordering::Relaxed);
            let e = RedoError::Io {
                path: self.cfg.log_path.clone(),
                source,
            };
            self.fail(&e);
            return Err(e);
        }
        g.size += buf.len() as u64;
        g.next_lsn += n;
        g.outstanding += 1;
        drop(g);
        Ok(AppendTicket {
            first: Lsn(first),
            last: Lsn(first + n - 1),
            shared: Arc::clone(self),
        })
    }

    /// The append mutex, once no rollover is running and none is due.
    fn lock_for_append(&self) -> Result<MutexGuard<'_, LogState>, RedoError> {
        loop {
            let mut g = lock(&self.log);
            while g.rolling {
                g = wait(&self.log_cv, g);
            }
            if self.check_failed().is_err() {
                drop(g);
                self.resume_now_and_then()?;
                continue;
            }
            if !self.size_rollover_due(&g) {
                return Ok(g);
            }
            drop(g);
            self.roll(false)?;
        }
    }

    fn size_rollover_due(&self, g: &LogState) -> bool {
        if !g.has_records() || g.size < self.cfg.rollover_size_bytes {
            return false;
        }
        if self.cfg.rollover_min_age.is_zero() {
            return true;
        }
        let age_ms = UtcMillis::now().0.saturating_sub(g.created_at.0).max(0);
        Duration::from_millis(age_ms as u64) >= self.cfg.rollover_min_age
    }

    /// Makes every record up to `target` durable, leading an fsync or waiting for the
    /// one in flight.
    fn sync_to(&self, target: u64) -> Result<(), RedoError> {
        let mut s = lock(&self.sync);
        loop {
            if s.durable >= target {
                return Ok(());
            }
            // After a failure nothing more is ever reported durable: a second fsync
            // can "succeed" after the kernel dropped the pages the first one failed on.
            self.check_failed()?;
            if s.syncing {
                s = wait(&self.sync_cv, s);
                continue;
            }
            s.syncing = true;
            drop(s);
            let res = self.fsync_written();
            s = lock(&self.sync);
            s.syncing = false;
            let res = match res {
                Ok((upto, end)) => {
                    if upto > s.durable {
                        s.durable = upto;
                        s.durable_end = end;
                        self.durable.store(upto, Ordering::Release);
                    }
                    Ok(())
                }
                Err(e) => {
                    self.fail(&e);
                    Err(e)
                }
            };
            self.sync_cv.notify_all();
            res?;
        }
    }

    /// One fsync covering every record written so far; returns the LSN it covers
    /// and where its record ends (file sequence, offset).
    fn fsync_written(&self) -> Result<(u64, (u64, u64)), RedoError> {
        // Read the file, the LSN and the end together: a rollover may switch files,
        // and the LSN must be one written to the file we sync.
        let (file, upto, end) = {
            let g = lock(&self.log);
            (Arc::clone(&g.file), g.next_lsn - 1, (g.sequence, g.size))
        };
        let t0 = Instant::now();
        file.sync_data()
            .map_err(RedoError::io(&self.cfg.log_path))?;
        self.note_fsync_time(t0.elapsed());
        Ok((upto, end))
    }

    fn note_fsync_time(&self, took: Duration) {
        FSYNC_SECONDS.observe(took);
        // A disk that is briefly busy overshoots now and then; what an operator
        // must hear about is fsyncs several intervals long (rate-limited below).
        if took <= self.cfg.fsync_interval * 5 {
            if took > self.cfg.fsync_interval {
                tracing::debug!(took_ms = took.as_millis() as u64, "slow redo log fsync");
            }
            return;
        }
        let mut last = lock(&self.slow_fsync_warned);
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            *last = Some(Instant::now());
            tracing::warn!(
                took_ms = took.as_millis() as u64,
                interval_ms = self.cfg.fsync_interval.as_millis() as u64,
                "redo log fsync took over five times the fsync interval (zimbraRedoLogFsyncIntervalMS): the disk is slow or overloaded, and every delivery waits for it"
            );
        }
    }

    /// Rolls over if forced (and the log has records) or if due by size.
    fn roll(&self, forced: bool) -> Result<Option<ArchivedLog>, RedoError> {
        let last = {
            let mut g = lock(&self.log);
            loop {
                self.check_failed()?;
                if !g.rolling {
                    break;
                }
                g = wait(&self.log_cv, g);
            }
            let due = if forced {
                g.has_records()
            } else {
                self.size_rollover_due(&g)
            };
            if !due {
                return Ok(None);
            }
            g.rolling = true;
            g.next_lsn - 1
        };
        let res = self.roll_barrier(last);
        lock(&self.log).rolling = false;
        self.log_cv.notify_all();
        res.map(Some)
    }

    fn roll_barrier(&self, last: u64) -> Result<ArchivedLog, RedoError> {
        // 1. Durable: this also wakes every writer waiting in wait_durable, so that it
        //    can apply its records and release its ticket.
        self.sync_to(last)?;
        // 2. Released: every record of this file is applied by its writer.
        let mut g = lock(&self.log);
        let mut waited = Duration::ZERO;
        while g.outstanding > 0 {
            let step = Duration::from_secs(10);
            let (ng, t) = self
                .log_cv
                .wait_timeout(g, step)
                .unwrap_or_else(PoisonError::into_inner);
            g = ng;
            if t.timed_out() && g.outstanding > 0 {
                waited += step;
                tracing::warn!(
                    outstanding = g.outstanding,
                    waited_s = waited.as_secs(),
                    "redo log rollover is waiting for append tickets to be released \
                     (a caller holding a ticket while it appends or rolls over deadlocks)"
                );
            }
        }
        // 3. Checkpoint: what these records produced becomes durable on its own,
        //    and the record of it says recovery need not read this log again.
        {
            let hook = lock(&self.checkpoint);
            if let Some(hook) = hook.as_ref() {
                if let Err(e) = hook() {
                    return Err(RedoError::Failed {
                        reason: format!("checkpoint before rollover failed: {e}"),
                    });
                }
                let cp = Checkpoint {
                    sequence: g.sequence,
                    lsn: last,
                };
                if let Err(e) = checkpoint::write_checkpoint(&self.cfg, cp) {
                    self.fail(&e);
                    return Err(e);
                }
            }
        }
        // 4. Close and switch, under the mutex (appends are held off anyway).
        match self.close_and_switch(&mut g, last) {
            Ok(a) => Ok(a),
            Err(e) => {
                self.fail(&e);
                Err(e)
            }
        }
    }

    fn close_and_switch(&self, g: &mut LogState, last: u64) -> Result<ArchivedLog, RedoError> {
        debug_assert_eq!(g.next_lsn, last + 1);
        let cfg = &self.cfg;
        let closed = FileHeader {
            sequence: g.sequence,
            created_at: g.created_at,
            first_lsn: Lsn(g.first_lsn),
            closed: true,
            last_lsn: Lsn(last),
            closed_at: UtcMillis::now().max(g.created_at),
        };
        let io = RedoError::io(&cfg.log_path);
        g.file.write_all_at(&closed.encode(), 0).map_err(io)?;
        g.file.sync_data().map_err(RedoError::io(&cfg.log_path))?;
        let archived = retire_closed_log(cfg, &closed)?;

        let sequence = g.sequence + 1;
        let header = FileHeader::new(sequence, UtcMillis::now(), Lsn(last + 1));
        let file = create_log_file(&cfg.log_path, &header)?;
        write_state(
            &cfg.state_path,
            State {
                sequence,
                last_lsn: last,
            },
        )?;
        g.file = Arc::new(file);
        g.sequence = sequence;
        g.created_at = header.created_at;
        g.first_lsn = last + 1;
        g.size = HEADER_LEN as u64;
        // Every record up to `last` is durable (the barrier): the new file's
        // durable end is its header.
        lock(&self.sync).durable_end = (sequence, g.size);
        tracing::info!(
            sequence = archived.sequence,
            first_lsn = archived.first_lsn.0,
            last_lsn = last,
            to = %archived.path.display(),
            deleted = cfg.delete_on_rollover,
            "redo log rolled over"
        );
        Ok(archived)
    }
}
