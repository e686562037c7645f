//! One shipper per server: each round puts the archived logs the target lacks,
//! then the open log's new whole records up to the durable LSN as a segment.
//!
//! It reads the log files, never the writer's state beyond the durable LSN, so
//! delivery never waits for it: what is not shipped yet simply stays in the
//! log, which is the queue (bounded by the log's own rollover and archive).
//! A round reads at most [`MAX_SEGMENT`] bytes of the open log (more only for a
//! single larger record), so its memory is bounded too; a target that fails
//! leaves the state where it was and the next round tries again from there.

use super::segment::{self, Walk};
use super::{Lag, ShipState, list, segment_path};
use crate::catalog::Catalog;
use crate::error::{BackupError, Result};
use crate::target::Target;
use mv_redo::RedoConfig;
use mv_redo::format::{HEADER_LEN, MAX_BODY_LEN, RECORD_PREFIX_LEN};
use mv_types::{Lsn, UtcMillis};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// The most a round reads of the open log into one segment.
pub const MAX_SEGMENT: usize = 16 << 20;

/// What one round did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Round {
    pub logs: u64,
    pub segments: u64,
    pub bytes: u64,
    pub lag: Lag,
    /// A repair this round began ([`super::repair`]): the open log's
    /// sequence and the offset it is shipped again from.
    pub repaired: Option<(u64, u64)>,
}

/// Ships one home's redo log into one target.
pub struct Shipper {
    target: Arc<dyn Target>,
    cfg: RedoConfig,
    server: String,
    /// Every sequence up to this is in the target whole.
    whole_through: u64,
    /// The open log being shipped as segments: sequence and bytes shipped.
    open: Option<(u64, u64)>,
    /// The last record shipped: LSN, sequence and time.
    last_lsn: u64,
    last_seq: u64,
    last_time: i64,
    /// When a round last ended with every durable record shipped.
    caught_up_at: UtcMillis,
    /// The epoch owner id this home keeps (`None`: it never promoted); see
    /// [`super::epoch`].
    owner: Option<String>,
    /// Segments of the open log found after a break when this shipper
    /// started, removed once the segments shipped again cover them.
    stale: Vec<super::SegmentObject>,
}

impl Shipper {
    /// Starts from what the target holds (its sessions' logs, `live/`). A target
    /// holding nothing of this history starts at `current_sequence` (the open
    /// log), or at the oldest sequence a full of the target needs.
    pub fn new(
        target: Arc<dyn Target>,
        cfg: RedoConfig,
        server: &str,
        current_sequence: u64,
    ) -> Result<Shipper> {
        let catalog = Catalog::load(target.as_ref())?;
        let listing = list(target.as_ref())?;
        let stored = catalog.stored_redo_sequences();
        let held = stored
            .last()
            .copied()
            .max(listing.logs.keys().next_back().copied());
        let whole_through = match held {
            Some(h) => h,
            None => catalog
                .oldest_full_redo_seq()
                .unwrap_or(current_sequence)
                .saturating_sub(1),
        };
        let mut open = None;
        let mut stale = Vec::new();
        let (mut last_lsn, mut last_seq, mut last_time) = (0, 0, 0);
        if let Some((seq, segs)) = listing.segments.iter().next_back()
            && *seq > whole_through
        {
            // Where the segments of the newest sequence end (a damaged one is
            // shipped over from its start again).
            let (end, last) = sound_end(target.as_ref(), segs);
            if let Some(l) = last {
                (last_lsn, last_seq, last_time) = l;
            }
            // After a break (a damaged or missing segment) this home ships
            // its open log again from there, up to what is durable, so the
            // segments after the break are stale: removed once the new ones
            // cover them (readers laying segments end to end would find them
            // overlapping). Only the home whose open log this is does: no one
            // else can ship those records again.
            if *seq == current_sequence {
                stale = segs.iter().filter(|s| s.start > end).cloned().collect();
            }
            open = Some((*seq, end));
        }
        Ok(Shipper {
            target,
            cfg,
            server: server.to_string(),
            whole_through,
            open,
            last_lsn,
            last_seq,
            last_time,
            caught_up_at: UtcMillis::now(),
            owner: None,
            stale,
        })
    }

    /// The epoch owner id of this home (see [`super::epoch::check`]).
    pub fn set_owner(&mut self, owner: Option<String>) {
        self.owner = owner;
    }

    pub fn target(&self) -> &Arc<dyn Target> {
        &self.target
    }

    /// Ships what is durable up to `durable` and not shipped yet.
    pub fn round(&mut self, durable: Lsn) -> Result<Round> {
        // Fenced: a newer epoch belongs to another server (a promoted
        // standby); nothing of this home's history may go in after it.
        super::epoch::check(self.target.as_ref(), self.owner.as_deref())?;
        let mut round = Round::default();
        let through = self.whole_through;
        let archive = archived(&self.cfg)?;
        for log in archive.iter().filter(|l| l.sequence > through) {
            let name = log
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            // Read through first: a damaged log is reported, not shipped.
            for r in mv_redo::RedoFileReader::open(&log.path)? {
                r?;
            }
            let scratch = self
                .target
                .scratch_dir()?
                .join(format!("ship-{}-{name}", uuid::Uuid::new_v4().simple()));
            std::fs::copy(&log.path, &scratch).map_err(BackupError::copy(&log.path, &scratch))?;
            let size = std::fs::metadata(&scratch).map(|m| m.len()).unwrap_or(0);
            let put = self
                .target
                .put_file(&format!("{}{name}", super::LOGS_PREFIX), &scratch);
            let _ = std::fs::remove_file(&scratch);
            put?;
            round.logs += 1;
            round.bytes += size;
            self.whole_through = log.sequence;
            if log.last_lsn.0 >= self.last_lsn && log.last_lsn.0 >= log.first_lsn.0 {
                (self.last_lsn, self.last_seq, self.last_time) =
                    (log.last_lsn.0, log.sequence, log.closed_at.0);
            }
            if self.open.is_some_and(|(s, _)| s <= log.sequence) {
                self.open = None;
            }
            // The whole log wins: its segments are no longer needed.
            if let Some(segs) = list(self.target.as_ref())?.segments.get(&log.sequence) {
                for s in segs {
                    self.target.delete(&s.path)?;
                }
            }
        }
        round.repaired = self.repair()?;
        self.ship_open(durable, &mut round)?;
        round.lag = self.lag(durable);
        if round.lag.records == 0 {
            self.caught_up_at = UtcMillis::now();
            round.lag.seconds = 0.0;
        }
        if round.logs + round.segments > 0 {
            self.write_state(round.lag)?;
        }
        Ok(round)
    }

    /// A standby asked for a repair (`live/repair-request.json`): reads the
    /// open log's segments back and, when the sound chain ends before what
    /// this shipper put, ships again from there (this round's segment
    /// replaces the damaged one, the later ones are stale until covered),
    /// from the log it still has open. A request about another sequence (a
    /// log closed since, shipped whole: the whole log wins) only goes away.
    /// Returns the sequence and offset shipped again from.
    fn repair(&mut self) -> Result<Option<(u64, u64)>> {
        let Some(req) = super::repair::read(self.target.as_ref())? else {
            return Ok(None);
        };
        let mut from = None;
        if let Some((seq, shipped)) = self.open
            && (req.sequence == seq || req.sequence == 0)
        {
            let segs = list(self.target.as_ref())?
                .segments
                .remove(&seq)
                .unwrap_or_default();
            let (end, _) = sound_end(self.target.as_ref(), &segs);
            if end < shipped {
                self.open = Some((seq, end));
                for s in segs.into_iter().filter(|s| s.start > end) {
                    if !self.stale.contains(&s) {
                        self.stale.push(s);
                    }
                }
                from = Some((seq, end));
            }
        }
        super::repair::done(self.target.as_ref())?;
        Ok(from)
    }

    /// The open log's new whole records up to `durable`, as one segment.
    fn ship_open(&mut self, durable: Lsn, round: &mut Round) -> Result<()> {
        let path = &self.cfg.log_path;
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(BackupError::io(path.display())(e)),
        };
        let len = file
            .metadata()
            .map_err(BackupError::io(path.display()))?
            .len();
        let mut head = [0u8; HEADER_LEN];
        if len < HEADER_LEN as u64 {
            return Ok(());
        }
        file.read_exact_at(&mut head, 0)
            .map_err(BackupError::io(path.display()))?;
        let header = mv_redo::FileHeader::decode(&head)
            .map_err(|e| BackupError::corrupt(path.display(), e))?;
        let seq = header.sequence;
        if seq <= self.whole_through {
            return Ok(());
        }
        let start = match self.open {
            Some((s, off)) if s == seq => off,
            _ => 0,
        };
        if len <= start.max(HEADER_LEN as u64) {
            return Ok(());
        }
        let mut want = ((len - start) as usize).min(MAX_SEGMENT);
        let mut data = read_at(&file, start, want, path)?;
        // A single record larger than the window: read exactly it.
        let rec_at = if start == 0 { HEADER_LEN } else { 0 };
        if data.len() >= rec_at + RECORD_PREFIX_LEN {
            let body = u32::from_le_bytes(data[rec_at..rec_at + 4].try_into().expect("4"));
            let need = rec_at + RECORD_PREFIX_LEN + (body as usize).min(MAX_BODY_LEN);
            if need > data.len() && (start + need as u64) <= len {
                want = need;
                data = read_at(&file, start, want, path)?;
            }
        }
        if start == 0 {
            segment::open_header(&mut data).map_err(|e| BackupError::corrupt(path.display(), e))?;
        }
        let w: Walk = segment::walk(&data, start, seq, durable.0, false)
            .map_err(|e| BackupError::corrupt(path.display(), e))?;
        if w.records == 0 {
            return Ok(());
        }
        data.truncate(w.len);
        let m = segment::manifest_for(seq, start, &data, &w);
        self.target
            .put(&segment_path(seq, start), &segment::encode(&m, &data))?;
        round.segments += 1;
        round.bytes += data.len() as u64;
        self.open = Some((seq, m.end()));
        let mut kept = Vec::new();
        for s in std::mem::take(&mut self.stale) {
            let end = s.start + s.size.saturating_sub(segment::MANIFEST_LEN as u64);
            if s.sequence == seq && end <= m.end() {
                self.target.delete(&s.path)?;
            } else if s.sequence == seq {
                kept.push(s);
            }
        }
        self.stale = kept;
        (self.last_lsn, self.last_seq, self.last_time) = (w.last_lsn, seq, w.last_time);
        Ok(())
    }

    /// How far behind `durable` shipping is now.
    pub fn lag(&self, durable: Lsn) -> Lag {
        let records = durable.0.saturating_sub(self.last_lsn);
        let mut bytes = 0;
        if let Ok(archive) = archived(&self.cfg) {
            for l in archive.iter().filter(|l| l.sequence > self.whole_through) {
                bytes += std::fs::metadata(&l.path).map(|m| m.len()).unwrap_or(0);
            }
        }
        if let Ok(m) = std::fs::metadata(&self.cfg.log_path) {
            let shipped = match self.open {
                Some((_, off)) => off.min(m.len()),
                None => 0,
            };
            if records > 0 {
                bytes += m.len() - shipped;
            }
        }
        let seconds = if records == 0 {
            0.0
        } else {
            (UtcMillis::now().0 - self.caught_up_at.0).max(0) as f64 / 1000.0
        };
        Lag {
            records,
            bytes,
            seconds,
        }
    }

    fn write_state(&self, lag: Lag) -> Result<()> {
        let state = ShipState {
            server: self.server.clone(),
            written_at: UtcMillis::now().0,
            sequence: self.last_seq,
            lsn: self.last_lsn,
            record_time: self.last_time,
            lag,
        };
        let json = serde_json::to_vec_pretty(&state)
            .map_err(|e| BackupError::Invalid(format!("live state: {e}")))?;
        self.target.put(super::STATE_PATH, &json)
    }
}

/// Where the sound chain of one sequence's segments ends: each read and
/// checked whole ([`segment::decode`]), each starting where the one before
/// ended, from offset 0; and the last record it holds (LSN, sequence, time).
fn sound_end(target: &dyn Target, segs: &[super::SegmentObject]) -> (u64, Option<(u64, u64, i64)>) {
    let mut end = 0;
    let mut last = None;
    for s in segs {
        let Ok(bytes) = target.get(&s.path) else {
            break;
        };
        let Ok((m, _)) = segment::decode(&bytes) else {
            break;
        };
        if m.start != end || m.start != s.start || m.sequence != s.sequence {
            break;
        }
        end = m.end();
        if m.records > 0 {
            last = Some((m.last_lsn, m.sequence, m.last_time.0));
        }
    }
    (end, last)
}

/// The home's archived logs (none before the first rollover made the directory).
fn archived(cfg: &RedoConfig) -> Result<Vec<mv_redo::ArchivedLog>> {
    if !cfg.archive_dir.is_dir() {
        return Ok(Vec::new());
    }
    Ok(mv_redo::list_archive(&cfg.archive_dir)?)
}

fn read_at(file: &std::fs::File, at: u64, n: usize, path: &std::path::Path) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    file.read_exact_at(&mut buf, at)
        .map_err(BackupError::io(path.display()))?;
    Ok(buf)
}
