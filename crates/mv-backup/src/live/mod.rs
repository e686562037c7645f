//! Live DR: the redo log shipped continuously into a backup target, beside its
//! sessions.
//!
//! ```text
//! <target>/live/redologs/redo-<stamp>-seq<N>.log    closed logs, as archived
//! <target>/live/segments/<seq, 10 digits>/<start offset, 12 digits>.seg
//!                                                   ranges of the log that was
//!                                                   open ([`segment`])
//! <target>/live/state.json                          the shipper's last round
//! <target>/live/ldap.bak                            the directory, when it changed
//! <target>/live/ldap.json                           when it was put ([`directory`])
//! <target>/live/epochs/<epoch>.json                 who may ship ([`epoch`])
//! <target>/live/repair-request.json                 a standby found a segment
//!                                                   damaged ([`repair`])
//! ```
//!
//! A warm standby follows the same objects ([`follow`]).
//!
//! The shipper ([`ship::Shipper`], run by the server) puts each closed log as
//! soon as it is archived and the open log's new whole records as segments.
//! A sequence held whole (here or in a session) wins over its segments, which
//! the shipper removes once the whole log is in. Readers take, per sequence:
//! a session's copy, else the whole shipped log, else (restore: the home's
//! archive, then) the segments laid end to end ([`assemble`]) — a prefix of the
//! log, so a restore reaches the last shipped record. The next backup session
//! adopts shipped logs into its `redologs/` (linked, not copied again) and the
//! segments of a sequence the home no longer holds as one log rebuilt from them,
//! then removes from `live/` what the sessions now hold ([`prune`]).

pub mod directory;
pub mod epoch;
pub mod follow;
pub mod repair;
pub mod segment;
pub mod ship;

use crate::error::{BackupError, Result};
use crate::target::{LocalFile, Target};
use std::collections::BTreeMap;

pub const LOGS_PREFIX: &str = "live/redologs/";
pub const SEGMENTS_PREFIX: &str = "live/segments/";
pub const STATE_PATH: &str = "live/state.json";
pub use directory::LDAP_PATH;

/// The object name of the segment of `sequence` starting at `start`.
pub fn segment_path(sequence: u64, start: u64) -> String {
    format!("{SEGMENTS_PREFIX}{sequence:010}/{start:012}.seg")
}

/// A closed log shipped whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippedLog {
    pub sequence: u64,
    pub name: String,
    pub path: String,
    pub size: u64,
}

/// A segment object as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentObject {
    pub sequence: u64,
    pub start: u64,
    pub path: String,
    pub size: u64,
}

/// What `live/` holds.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub logs: BTreeMap<u64, ShippedLog>,
    /// Per sequence, by start offset.
    pub segments: BTreeMap<u64, Vec<SegmentObject>>,
}

impl Listing {
    /// The newest sequence held in any form.
    pub fn newest_sequence(&self) -> Option<u64> {
        let a = self.logs.keys().next_back().copied();
        let b = self.segments.keys().next_back().copied();
        a.max(b)
    }

    pub fn is_empty(&self) -> bool {
        self.logs.is_empty() && self.segments.is_empty()
    }
}

/// Lists `live/`; names that are neither a log nor a segment are left out.
pub fn list(target: &dyn Target) -> Result<Listing> {
    let mut out = Listing::default();
    for o in target.list("live/")? {
        if let Some(name) = o.path.strip_prefix(LOGS_PREFIX) {
            if let Some((_, seq)) = mv_redo::archive::parse_archive_name(name) {
                out.logs.insert(
                    seq,
                    ShippedLog {
                        sequence: seq,
                        name: name.to_string(),
                        path: o.path.clone(),
                        size: o.size,
                    },
                );
            }
        } else if let Some(rest) = o.path.strip_prefix(SEGMENTS_PREFIX) {
            let Some((seq, file)) = rest.split_once('/') else {
                continue;
            };
            let (Ok(seq), Some(Ok(start))) = (
                seq.parse::<u64>(),
                file.strip_suffix(".seg").map(str::parse::<u64>),
            ) else {
                continue;
            };
            out.segments.entry(seq).or_default().push(SegmentObject {
                sequence: seq,
                start,
                path: o.path.clone(),
                size: o.size,
            });
        }
    }
    for v in out.segments.values_mut() {
        v.sort_by_key(|s| s.start);
    }
    Ok(out)
}

/// A sequence's segments laid end to end: an open redo log holding every
/// shipped record of it.
#[derive(Debug)]
pub struct Assembled {
    pub file: LocalFile,
    pub sequence: u64,
    pub first_lsn: u64,
    pub last_lsn: u64,
    pub records: u64,
    pub last_time: mv_types::UtcMillis,
    pub size: u64,
}

/// Reads and checks every segment of `sequence` (see [`segment::decode`]) and
/// their continuity (the first starts at 0, each starts where the one before
/// ended), and writes the log they make into the target's scratch directory.
/// The error names the segment and what is wrong with it.
pub fn assemble(target: &dyn Target, segs: &[SegmentObject]) -> Result<Assembled> {
    let sequence = segs.first().map(|s| s.sequence).unwrap_or(0);
    let (bytes, first_lsn, last_lsn, records, last_time) = read_chain(target, segs)?;
    let path = target.scratch_dir()?.join(format!(
        "live-seq{sequence}-{}.log",
        uuid::Uuid::new_v4().simple()
    ));
    let file = LocalFile::temporary(path.clone());
    std::fs::write(&path, &bytes).map_err(BackupError::io(path.display()))?;
    Ok(Assembled {
        file,
        sequence,
        first_lsn,
        last_lsn,
        records,
        last_time,
        size: bytes.len() as u64,
    })
}

type Chain = (Vec<u8>, u64, u64, u64, mv_types::UtcMillis);

fn read_chain(target: &dyn Target, segs: &[SegmentObject]) -> Result<Chain> {
    let mut out = Vec::new();
    let (mut first, mut last, mut records, mut time) = (0, 0, 0u64, mv_types::UtcMillis(0));
    for s in segs {
        let at = || format!("{}/{}", target.url(), s.path);
        let bytes = target.get(&s.path)?;
        let (m, data) = segment::decode(&bytes).map_err(|e| BackupError::corrupt(at(), e))?;
        if m.sequence != s.sequence || m.start != s.start {
            return Err(BackupError::corrupt(
                at(),
                format!(
                    "manifest says sequence {} at offset {}, the name otherwise",
                    m.sequence, m.start
                ),
            ));
        }
        if m.start != out.len() as u64 {
            return Err(BackupError::corrupt(
                at(),
                format!(
                    "starts at offset {} of sequence {}, but the segments before end at {} \
                     (a segment is missing)",
                    m.start,
                    m.sequence,
                    out.len()
                ),
            ));
        }
        if m.records > 0 {
            if m.first_lsn <= last {
                return Err(BackupError::corrupt(
                    at(),
                    format!("first LSN {} is not after LSN {last}", m.first_lsn),
                ));
            }
            if first == 0 {
                first = m.first_lsn;
            }
            last = m.last_lsn;
            time = m.last_time;
        }
        records += u64::from(m.records);
        out.extend_from_slice(data);
    }
    Ok((out, first, last, records, time))
}

/// Checks everything `live/` holds: each shipped log read whole (every
/// record's CRC), each sequence's segments (manifests, checksums, records,
/// continuity). Returns one line per damaged object, naming it.
pub fn verify(target: &dyn Target) -> Result<Vec<String>> {
    let listing = list(target)?;
    let mut problems = Vec::new();
    for log in listing.logs.values() {
        problems.extend(check_shipped_log(target, log)?);
    }
    for (seq, segs) in &listing.segments {
        if listing.logs.contains_key(seq) {
            // The whole log wins; its segments are leftovers for the shipper.
            continue;
        }
        problems.extend(check_segments(target, *seq, segs)?);
    }
    Ok(problems)
}

/// One shipped log read whole; `None` when it is sound or gone (pruned).
fn check_shipped_log(target: &dyn Target, log: &ShippedLog) -> Result<Option<String>> {
    let Some(local) = crate::target::fetch_local(target, &log.path)? else {
        return Ok(None);
    };
    let bad = match mv_redo::RedoFileReader::open(local.path()) {
        Ok(r) if r.header().sequence != log.sequence => Some(format!(
            "header says sequence {}, the name {}",
            r.header().sequence,
            log.sequence
        )),
        Ok(r) if !r.header().closed => Some("not closed".to_string()),
        Ok(r) => r.filter_map(|x| x.err()).next().map(|e| e.to_string()),
        Err(e) => Some(e.to_string()),
    };
    Ok(bad.map(|why| {
        format!(
            "shipped redo log {}/{} is damaged: {why}",
            target.url(),
            log.path
        )
    }))
}

/// One sequence's segments read as a chain. A running server keeps shipping
/// while this reads: when the sequence's log closes, the shipper puts it whole
/// and removes its segments, and an incremental removes what its session now
/// holds. A segment that vanished between the listing and its read is that,
/// not damage, so a failed read looks again and checks what is there now; only
/// a chain that fails twice over the same objects is reported.
fn check_segments(
    target: &dyn Target,
    seq: u64,
    listed: &[SegmentObject],
) -> Result<Option<String>> {
    // Bounded: a shipper adds a segment every few seconds at most.
    const LOOKS: usize = 5;
    let mut segs = listed.to_vec();
    let mut looks = 0;
    loop {
        let Err(e) = read_chain(target, &segs) else {
            return Ok(None);
        };
        looks += 1;
        let now = list(target)?;
        if let Some(log) = now.logs.get(&seq) {
            return check_shipped_log(target, log);
        }
        match now.segments.get(&seq) {
            None => return Ok(None),
            Some(again) if *again != segs && looks < LOOKS => segs = again.clone(),
            Some(_) => {
                return Ok(Some(format!(
                    "shipped segments of redo sequence {seq}: {e}"
                )));
            }
        }
    }
}

/// Removes from `live/` what the target's sessions hold now (sequences up to
/// `held_through`), and the segments of sequences held whole in `live/`.
pub fn prune(target: &dyn Target, held_through: u64) -> Result<usize> {
    let listing = list(target)?;
    let mut removed = 0;
    for log in listing.logs.values() {
        if log.sequence <= held_through {
            target.delete(&log.path)?;
            removed += 1;
        }
    }
    for (seq, segs) in &listing.segments {
        if *seq <= held_through || listing.logs.contains_key(seq) {
            for s in segs {
                target.delete(&s.path)?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// The shipper's last round as it wrote it (`live/state.json`), for
/// `zmbackupquery` and `mailvault check` to read from the target alone.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ShipState {
    pub server: String,
    /// When the round ended (UTC milliseconds).
    pub written_at: i64,
    /// The last shipped record: sequence, LSN and its time.
    pub sequence: u64,
    pub lsn: u64,
    pub record_time: i64,
    pub lag: Lag,
}

/// How far shipping is behind the durable redo log.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Lag {
    /// Durable records not shipped yet (by LSN).
    pub records: u64,
    /// Bytes of redo log not shipped yet.
    pub bytes: u64,
    /// How long since shipping last held every durable record (0: caught up).
    pub seconds: f64,
}

/// Reads `live/state.json`, `None` when absent.
pub fn read_state(target: &dyn Target) -> Result<Option<ShipState>> {
    match target.get(STATE_PATH) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
            BackupError::corrupt(format!("{}/{STATE_PATH}", target.url()), e.to_string())
        }),
        Err(BackupError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
