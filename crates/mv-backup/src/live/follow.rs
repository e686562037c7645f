//! A warm standby's follower: the redo history a target holds, applied into a
//! store through the one apply path of replay ([`mv_store::Replayer`]), from a
//! remembered [`Position`] onwards.
//!
//! Per sequence, from the position's: a whole log (shipped in `live/redologs/`
//! or, once a backup adopted it, in a session's `redologs/`) is applied to its
//! end and the position moves to the next sequence; otherwise the sequence's
//! segments after the position's offset are applied and the position stays on
//! that sequence at the last segment's end (the primary's open log). Records at
//! or below the position's LSN are skipped, and a record applied twice is
//! skipped by the store anyway (each mailbox's change number), so starting from
//! an earlier position only costs reading.
//!
//! A step applies, then makes the store durable (`Store::checkpoint`), and only
//! then returns the new position, which the caller keeps durably: a standby
//! killed between the two applies the same records again, harmlessly.

use super::segment;
use super::{Lag, list};
use crate::catalog::Catalog;
use crate::error::{BackupError, Result};
use crate::target::Target;
use mv_redo::Record;
use mv_redo::format::HEADER_LEN;
use mv_store::Store;
use mv_store::apply::Staged;
use std::collections::BTreeMap;

/// How far a standby got.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    /// The redo sequence being followed.
    pub sequence: u64,
    /// Bytes of that sequence's log applied (the end of its last segment
    /// applied); 0 for a sequence not begun.
    pub offset: u64,
    /// The last record applied: LSN and time (UTC milliseconds).
    pub lsn: u64,
    pub record_time: i64,
}

/// What one step did.
#[derive(Debug, Clone, Default)]
pub struct Step {
    pub position: Position,
    pub read: u64,
    pub applied: u64,
    /// Records that failed to apply, one line each (the step goes on).
    pub errors: Vec<String>,
    /// [`replay_mailboxes`]: the mailboxes whose `CreateMailbox` was found,
    /// and so rebuilt.
    pub rebuilt: Vec<u32>,
    /// How far the position is behind what the shipper last reported
    /// (`live/state.json`): records by LSN and seconds by record time.
    pub lag: Lag,
}

/// Where a standby bootstrapped now starts following: the newest sequence the
/// target holds, from its start (the bootstrap restore applied it already; the
/// store skips what it has).
pub fn start_position(target: &dyn Target) -> Result<Position> {
    let sequence = match crate::ldap::redo_floor(target)? {
        Some((next, _)) => next.saturating_sub(1),
        None => 0,
    };
    Ok(Position {
        sequence,
        ..Default::default()
    })
}

/// Applies what the target holds past `from` (see the module docs).
pub fn step(target: &dyn Target, store: &Store, from: &Position) -> Result<Step> {
    step_only(target, store, from, None)
}

/// Rebuilds `mailboxes` from the redo history the target holds after its
/// sessions' (shipped logs and segments): a disaster restore's accounts that
/// were created after the last backup, so no session holds them, but whose
/// every record since their `CreateMailbox` was shipped. Only their records
/// are applied (all content is staged, then removed). The caller makes sure
/// those mailbox ids are theirs alone in the store (never used there).
pub fn replay_mailboxes(
    target: &dyn Target,
    store: &Store,
    mailboxes: &std::collections::BTreeSet<u32>,
) -> Result<Step> {
    let catalog = Catalog::load(target)?;
    let sequence = catalog
        .sessions()
        .flat_map(|s| s.redo_logs.iter().map(|l| l.seq))
        .max()
        .unwrap_or(0);
    let from = Position {
        sequence,
        ..Default::default()
    };
    step_only(target, store, &from, Some(mailboxes))
}

fn step_only(
    target: &dyn Target,
    store: &Store,
    from: &Position,
    only: Option<&std::collections::BTreeSet<u32>>,
) -> Result<Step> {
    let listing = list(target)?;
    let mut sessions: Option<BTreeMap<u64, String>> = None;
    let mut applier = Applier::new(store, only);
    let mut pos = from.clone();
    let mut read = 0;
    loop {
        let seq = pos.sequence;
        let whole = match listing.logs.get(&seq) {
            Some(l) => Some(l.path.clone()),
            None if listing.segments.contains_key(&seq) => None,
            None => session_logs(target, &mut sessions)?.get(&seq).cloned(),
        };
        if let Some(path) = whole {
            let Some(local) = crate::target::fetch_local(target, &path)? else {
                return Err(BackupError::NotFound(format!("{}/{path}", target.url())));
            };
            for r in mv_redo::RedoFileReader::open(local.path())? {
                let rec = r
                    .map_err(|e| {
                        BackupError::corrupt(format!("{}/{path}", target.url()), e.to_string())
                    })?
                    .record;
                read += 1;
                applier.record(rec, &mut pos);
            }
            pos.sequence = seq + 1;
            pos.offset = 0;
            continue;
        }
        if let Some(segs) = listing.segments.get(&seq) {
            for s in segs {
                // Where the object's range ends, from the listing (the
                // manifest has a fixed size): one that ends at or before the
                // position holds nothing new and is not read.
                let listed_end = s.start + s.size.saturating_sub(segment::MANIFEST_LEN as u64);
                if listed_end <= pos.offset {
                    continue;
                }
                let at = format!("{}/{}", target.url(), s.path);
                if s.start > pos.offset {
                    return Err(BackupError::corrupt(
                        &at,
                        format!(
                            "starts at offset {} of sequence {seq}, but the standby applied \
                             it up to offset {} (a segment is missing)",
                            s.start, pos.offset
                        ),
                    ));
                }
                // Read again each step: a damaged segment fails this step
                // only, and is read afresh once shipped again.
                let bytes = target.get(&s.path)?;
                let (m, data) =
                    segment::decode(&bytes).map_err(|e| BackupError::corrupt(&at, e))?;
                if m.sequence != seq || m.start != s.start {
                    return Err(BackupError::corrupt(
                        &at,
                        format!(
                            "manifest says sequence {} at offset {}, the name otherwise",
                            m.sequence, m.start
                        ),
                    ));
                }
                // A segment starting before the position was shipped again
                // from an earlier offset (its shipper restarted after a
                // damaged or missing one): the same bytes of the same log, so
                // its records up to the position are those applied already,
                // skipped by LSN.
                let mut off = if m.start == 0 { HEADER_LEN } else { 0 };
                while off < data.len() {
                    // Checked whole by `decode`: every record decodes.
                    let (rec, len) = mv_redo::format::decode_record(&data[off..])
                        .map_err(|e| BackupError::corrupt(&at, e.to_string()))?;
                    off += len;
                    read += 1;
                    applier.record(rec, &mut pos);
                }
                pos.offset = m.end();
            }
            break;
        }
        // Nothing of this sequence: go on at the next one held, if any (the
        // sequence a full's position names may have no log of its own).
        let sessions = session_logs(target, &mut sessions)?;
        let next = [
            listing.logs.range(seq + 1..).next().map(|(k, _)| *k),
            listing.segments.range(seq + 1..).next().map(|(k, _)| *k),
            sessions.range(seq + 1..).next().map(|(k, _)| *k),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(n) => {
                pos.sequence = n;
                pos.offset = 0;
            }
            None => break,
        }
    }
    let rebuilt: Vec<u32> = applier.begun.iter().copied().collect();
    let (applied, errors) = applier.finish()?;
    let lag = lag(target, &pos)?;
    Ok(Step {
        position: pos,
        read,
        applied,
        errors,
        rebuilt,
        lag,
    })
}

/// How far `pos` is behind what the shipper last reported (`live/state.json`):
/// records by LSN, seconds by record time.
pub fn lag(target: &dyn Target, pos: &Position) -> Result<Lag> {
    Ok(match super::read_state(target)? {
        Some(st) if st.lsn > pos.lsn => Lag {
            records: st.lsn - pos.lsn,
            bytes: 0,
            // By record time; a position that holds no record yet (a fresh
            // bootstrap, whose restore applied what came before) has no time
            // to measure from: its lag is in records only.
            seconds: if pos.record_time > 0 {
                ((st.record_time - pos.record_time).max(0) as f64) / 1000.0
            } else {
                0.0
            },
        },
        _ => Lag::default(),
    })
}

/// Every redo log the target's sessions hold, by sequence.
fn session_logs<'a>(
    target: &dyn Target,
    cache: &'a mut Option<BTreeMap<u64, String>>,
) -> Result<&'a BTreeMap<u64, String>> {
    if cache.is_none() {
        let catalog = Catalog::load(target)?;
        let mut out = BTreeMap::new();
        for s in catalog.sessions() {
            for l in &s.redo_logs {
                out.entry(l.seq)
                    .or_insert_with(|| format!("sessions/{}/redologs/{}", s.label, l.name));
            }
        }
        *cache = Some(out);
    }
    Ok(cache.as_ref().expect("set above"))
}

/// Records applied in log order through one replayer: content staged once per
/// digest, each mailbox record applied when it is the mailbox's next change.
struct Applier<'s> {
    store: &'s Store,
    /// Only these mailboxes' records (`None`: every mailbox), each from its
    /// `CreateMailbox` on: one whose history began before the records read
    /// is left alone.
    only: Option<&'s std::collections::BTreeSet<u32>>,
    begun: std::collections::BTreeSet<u32>,
    replayer: mv_store::Replayer<'s>,
    staged: Staged,
    errors: Vec<String>,
    /// A transaction whose record failed: the rest of it is skipped.
    failed: Option<(u32, mv_types::TxnId)>,
}

impl<'s> Applier<'s> {
    fn new(store: &'s Store, only: Option<&'s std::collections::BTreeSet<u32>>) -> Applier<'s> {
        Applier {
            store,
            only,
            begun: Default::default(),
            replayer: store.replayer(),
            staged: Staged::default(),
            errors: Vec::new(),
            failed: None,
        }
    }

    fn record(&mut self, rec: Record, pos: &mut Position) {
        if rec.lsn.0 <= pos.lsn {
            return;
        }
        pos.lsn = rec.lsn.0;
        pos.record_time = rec.timestamp.0;
        if rec.mailbox.0 != 0
            && let Some(only) = self.only
        {
            if !only.contains(&rec.mailbox.0) {
                return;
            }
            if matches!(rec.op, mv_redo::Op::CreateMailbox(_)) {
                self.begun.insert(rec.mailbox.0);
            } else if !self.begun.contains(&rec.mailbox.0) {
                return;
            }
        }
        let result = if rec.mailbox.0 == 0 {
            self.replayer.stage(&rec, &mut self.staged)
        } else if self.failed == Some((rec.mailbox.0, rec.txn)) {
            Ok(())
        } else {
            self.replayer.apply(&rec, &self.staged).inspect_err(|_| {
                self.failed = Some((rec.mailbox.0, rec.txn));
            })
        };
        if let Err(e) = result {
            self.errors.push(format!("LSN {}: {e}", rec.lsn));
        }
    }

    /// Commits, makes the store durable, removes the staged content.
    fn finish(self) -> Result<(u64, Vec<String>)> {
        let report = self.replayer.finish();
        for p in self.staged.paths() {
            let _ = self.store.blobs().remove(p);
        }
        let report = report?;
        self.store.checkpoint()?;
        Ok((report.applied, self.errors))
    }
}
