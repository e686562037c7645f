//! Archived redo logs: their names (`redo-<yyyyMMdd.HHmmss.SSS>-seq<N>.log`, close time
//! in UTC, as in Zimbra), listing them, and checking that sequences form a chain.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use mv_types::{Lsn, UtcMillis};

use crate::error::RedoError;
use crate::format::{FileHeader, HEADER_LEN};

/// The name of the current log inside the redo log directory.
pub const CURRENT_LOG_NAME: &str = "redo.log";

/// A closed redo log in the archive directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedLog {
    /// Where the file is. For a rollover with `delete_on_rollover`, the name it would
    /// have had in the archive: that file does not exist (the log was deleted).
    pub path: PathBuf,
    pub sequence: u64,
    pub first_lsn: Lsn,
    /// LSN of the last record; `first_lsn - 1` for a file without records.
    pub last_lsn: Lsn,
    pub closed_at: UtcMillis,
}

/// `redo-20101119.135508.802-seq53.log`.
pub fn archive_file_name(closed_at: UtcMillis, sequence: u64) -> String {
    format!("redo-{}-seq{sequence}.log", closed_at.label_stamp())
}

/// Parses an archive file name into (close time, sequence); `None` for any other name
/// (temporary files, the current log, stray files).
pub fn parse_archive_name(name: &str) -> Option<(UtcMillis, u64)> {
    let rest = name.strip_prefix("redo-")?.strip_suffix(".log")?;
    let (stamp, seq) = rest.split_once("-seq")?;
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seq: u64 = seq.parse().ok()?;
    let closed = UtcMillis::from_label_stamp(stamp).ok()?;
    Some((closed, seq))
}

/// Reads and validates just the header of a file.
pub fn read_header(path: &Path) -> Result<FileHeader, RedoError> {
    let mut f = File::open(path).map_err(RedoError::io(path))?;
    let mut buf = Vec::with_capacity(HEADER_LEN);
    (&mut f)
        .take(HEADER_LEN as u64)
        .read_to_end(&mut buf)
        .map_err(RedoError::io(path))?;
    FileHeader::decode(&buf).map_err(|reason| RedoError::BadHeader {
        path: path.to_path_buf(),
        reason,
    })
}

/// Archive files named in `dir`, as (sequence, path), sorted by sequence, without
/// opening them. Duplicated sequences are an error: which one is real cannot be told.
pub(crate) fn archive_names(dir: &Path) -> Result<Vec<(u64, PathBuf)>, RedoError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(RedoError::io(dir))? {
        let entry = entry.map_err(RedoError::io(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some((_, seq)) = parse_archive_name(name) {
            out.push((seq, entry.path()));
        }
    }
    out.sort();
    for w in out.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(RedoError::BadHeader {
                path: w[1].1.clone(),
                reason: format!(
                    "sequence {} is also archived as {}",
                    w[0].0,
                    w[0].1.display()
                ),
            });
        }
    }
    Ok(out)
}

/// The archived logs in `dir`, sorted by sequence, from their names and headers. A
/// file whose header is bad, not closed, or disagrees with its name is an error naming
/// it.
pub fn list_archive(dir: &Path) -> Result<Vec<ArchivedLog>, RedoError> {
    let mut out = Vec::new();
    for (seq, path) in archive_names(dir)? {
        let h = read_header(&path)?;
        if h.sequence != seq {
            return Err(RedoError::BadHeader {
                path,
                reason: format!(
                    "header says sequence {} but the name says {seq}",
                    h.sequence
                ),
            });
        }
        if !h.closed {
            return Err(RedoError::BadHeader {
                path,
                reason: "archived log is not closed (copied while still in use?)".into(),
            });
        }
        out.push(ArchivedLog {
            path,
            sequence: seq,
            first_lsn: h.first_lsn,
            last_lsn: h.last_lsn,
            closed_at: h.closed_at,
        });
    }
    Ok(out)
}

/// Checks that sequences (in any order, duplicates allowed) have no hole between the
/// smallest and the largest. The first hole is reported as [`RedoError::Gap`].
pub fn check_chain(sequences: &[u64]) -> Result<(), RedoError> {
    let mut s = sequences.to_vec();
    s.sort_unstable();
    s.dedup();
    for w in s.windows(2) {
        if w[1] != w[0] + 1 {
            return Err(RedoError::Gap {
                first_missing: w[0] + 1,
                last_missing: w[1] - 1,
            });
        }
    }
    Ok(())
}

/// The log files of a directory in replay order: archived logs by sequence, then
/// `redo.log` if present. Works for `<home>/redolog` (its archive is a subdirectory,
/// not included) and for `<home>/redolog/archive`.
pub fn logs_in_dir(dir: &Path) -> Result<Vec<PathBuf>, RedoError> {
    let mut out: Vec<PathBuf> = archive_names(dir)?.into_iter().map(|(_, p)| p).collect();
    let current = dir.join(CURRENT_LOG_NAME);
    if current.is_file() {
        out.push(current);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_zimbra() {
        let t = UtcMillis(1_290_174_908_802);
        let n = archive_file_name(t, 53);
        assert_eq!(n, "redo-20101119.135508.802-seq53.log");
        assert_eq!(parse_archive_name(&n), Some((t, 53)));
        for bad in [
            "redo.log",
            "redo-20101119.135508.802-seq.log",
            "redo-20101119.135508.802-seq5x.log",
            "redo-2010.135508.802-seq5.log",
            ".redo.log.tmp1",
            "redo-20101119.135508.802-seq53.log.tmp",
        ] {
            assert_eq!(parse_archive_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn chain_gaps_are_reported_with_the_zimbra_text() {
        check_chain(&[]).unwrap();
        check_chain(&[7]).unwrap();
        check_chain(&[3, 1, 2, 2]).unwrap();
        let e = check_chain(&[1, 2, 5, 6, 9]).unwrap_err();
        assert!(matches!(
            e,
            RedoError::Gap {
                first_missing: 3,
                last_missing: 4
            }
        ));
        assert_eq!(
            e.to_string(),
            "Found gap in redo log sequence; missing 3 through 4; To avoid future restore \
             problems, discard all existing backups and take a full backup of all accounts; \
             If this error occurred during restore, try the --ignoreRedoErrors option"
        );
    }
}
