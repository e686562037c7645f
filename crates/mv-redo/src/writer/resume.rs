//! Taking appends again after a failure: [`RedoLog::resume`](super::RedoLog::resume)
//! (see "Failures" in the module docs of the writer).

use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Shared, lock};
use crate::error::RedoError;
use crate::recovery;

/// How often `append` retries a failed log (see [`super::RedoLog::resume`]).
const RESUME_RETRY: Duration = Duration::from_secs(1);

/// The least room a resume asks of the disk (a failed fsync has no size).
const RESUME_PROBE_BYTES: u64 = 1 << 20;

impl Shared {
    /// [`Self::resume`], at most once per [`RESUME_RETRY`]: appends arriving at a
    /// stopped log must not each reread it.
    pub(super) fn resume_now_and_then(&self) -> Result<(), RedoError> {
        {
            let mut tried = lock(&self.resume_tried);
            if tried.is_some_and(|t| t.elapsed() < RESUME_RETRY) {
                return self.check_failed();
            }
            *tried = Some(Instant::now());
        }
        self.resume()
    }

    pub(super) fn resume(&self) -> Result<(), RedoError> {
        let mut g = lock(&self.log);
        let Some(reason) = lock(&self.failed).clone() else {
            return Ok(());
        };
        let not_yet = |why: String| RedoError::Failed {
            reason: format!("{reason}; not resumed yet: {why}"),
        };
        if g.rolling || g.outstanding > 0 {
            // A writer still holds a ticket: one whose records are durable is
            // applying them, one whose are not is about to learn it failed. Cutting
            // the file under either would be wrong.
            return Err(not_yet(format!(
                "{} appends not yet released",
                g.outstanding
            )));
        }
        let mut s = lock(&self.sync);
        if s.syncing {
            return Err(not_yet("an fsync is in flight".into()));
        }
        let (durable_seq, durable_size) = s.durable_end;
        let path = &self.cfg.log_path;
        // Room for what failed (a full disk that has some room again may not have
        // enough, and a delivery writes its content besides): a write past the
        // end, cut off again. Tried before the log is reread, so that a disk
        // still full costs a failed write, not a read of the whole log.
        let probe = self
            .failed_write_len
            .load(Ordering::Relaxed)
            .saturating_mul(2)
            .max(RESUME_PROBE_BYTES);
        let room = |file: &std::fs::File, end: u64| {
            let probed = file
                .write_all_at(&vec![0u8; probe as usize], end)
                .and_then(|()| file.set_len(end));
            probed.map_err(|e| {
                let _ = file.set_len(end);
                not_yet(format!(
                    "{} does not take {probe} bytes yet: {e}",
                    path.display()
                ))
            })
        };
        let current = durable_seq == g.sequence && g.size >= durable_size;
        if current {
            // Past this point nothing was acknowledged or applied.
            g.file
                .set_len(durable_size)
                .map_err(|e| not_yet(format!("cannot cut {}: {e}", path.display())))?;
            room(&g.file, durable_size)?;
        }
        let rec = recovery::recover(&self.cfg).map_err(|e| not_yet(e.to_string()))?;
        if !current {
            // A rollover failed part way: the file is the one reopened.
            room(&rec.file, rec.size)?;
        }
        let last_in_file = rec.report.records.last().map(|r| r.lsn.0);
        let found = rec.next_lsn - 1;
        if found < s.durable || last_in_file.is_some_and(|l| l > s.durable) {
            // Either a durable record is missing or one nobody saw durable is
            // there: only a restart's recovery (with its replay) may judge that.
            return Err(not_yet(format!(
                "reopened {} ends at LSN {found} (last record {last_in_file:?}), not at the durable LSN {}: restart the server",
                path.display(),
                s.durable
            )));
        }
        g.file = Arc::new(rec.file);
        g.sequence = rec.header.sequence;
        g.created_at = rec.header.created_at;
        g.first_lsn = rec.header.first_lsn.0;
        g.size = rec.size;
        g.next_lsn = rec.next_lsn;
        s.durable = found;
        s.durable_end = (g.sequence, g.size);
        self.durable.store(found, Ordering::Release);
        self.failed_write_len.store(0, Ordering::Relaxed);
        *lock(&self.failed) = None;
        drop(s);
        drop(g);
        self.log_cv.notify_all();
        tracing::warn!(
            sequence = rec.header.sequence,
            durable_lsn = found,
            "redo log resumed after an earlier failure ({reason}): taking records again"
        );
        Ok(())
    }
}
