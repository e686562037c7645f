//! What `RedoLog::open` does before the log accepts appends: find out the sequence and
//! LSN to continue from (state file, archive, redo.log: the maximum of all of them, so
//! neither is ever reused), finish a rollover a crash interrupted, and read redo.log,
//! truncating a torn tail but refusing damage in the middle.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use mv_home::durable::{create_dir_all_durable, fsync_dir, rename_durable, write_atomic};
use mv_types::{Lsn, UtcMillis};

use crate::archive::{ArchivedLog, archive_file_name, archive_names, read_header};
use crate::error::RedoError;
use crate::format::{self, FileHeader, HEADER_LEN, Record};
use crate::reader::RedoFileReader;
use crate::writer::{RecoveryReport, RedoConfig};

/// The small file that remembers the sequence and an LSN floor, so that losing
/// redo.log (or deleting logs on rollover) never makes us reuse either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct State {
    /// The current log's sequence (or the one just closed, during a rollover).
    pub sequence: u64,
    /// Every LSN up to this one has been used.
    pub last_lsn: u64,
}

/// The `key = number` lines of a small state file (`redolog/state`,
/// `redolog/checkpoint`); blank lines and `#` comments are skipped.
pub(crate) fn numeric_fields(
    text: &str,
    bad: impl Fn(String) -> RedoError,
) -> Result<Vec<(&str, u64)>, RedoError> {
    let mut fields = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| bad(format!("line {line:?} is not key=value")))?;
        let v: u64 = v
            .trim()
            .parse()
            .map_err(|_| bad(format!("{k}: {v:?} is not a number")))?;
        fields.push((k.trim(), v));
    }
    Ok(fields)
}

pub(crate) fn read_state(path: &Path) -> Result<Option<State>, RedoError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(RedoError::io(path)(e)),
    };
    let bad = |reason: String| RedoError::BadState {
        path: path.to_path_buf(),
        reason,
    };
    let (mut sequence, mut last_lsn) = (None, None);
    for (k, v) in numeric_fields(&text, bad)? {
        match k {
            "sequence" => sequence = Some(v),
            "last_lsn" => last_lsn = Some(v),
            // Unknown keys are from a newer version; what we need is there.
            _ => {}
        }
    }
    match (sequence, last_lsn) {
        (Some(sequence), Some(last_lsn)) => Ok(Some(State { sequence, last_lsn })),
        _ => Err(bad("sequence or last_lsn missing".into())),
    }
}

pub(crate) fn write_state(path: &Path, s: State) -> Result<(), RedoError> {
    let text = format!(
        "# mailvault redo log state (written atomically at open and rollover)\n\
         sequence={}\nlast_lsn={}\n",
        s.sequence, s.last_lsn
    );
    write_atomic(path, text.as_bytes()).map_err(RedoError::io(path))
}

/// Creates a new log file holding just `header`: written under a temporary name,
/// fsynced, renamed, directory fsynced, so redo.log never exists half-written.
pub(crate) fn create_log_file(path: &Path, header: &FileHeader) -> Result<File, RedoError> {
    write_atomic(path, &header.encode()).map_err(RedoError::io(path))?;
    open_rw(path)
}

fn open_rw(path: &Path) -> Result<File, RedoError> {
    // Not O_APPEND: the header is rewritten in place at rollover, and Linux pwrite()
    // ignores the offset on O_APPEND files. The writer tracks the end itself.
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(RedoError::io(path))
}

pub(crate) fn parent_dir(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The last step of a rollover, shared by the writer and by open() completing an
/// interrupted one: `closed` (already rewritten with its closed header and fsynced) is
/// moved to the archive, or deleted. The state file is updated first so that, if the
/// log is deleted, its last LSN is still known.
pub(crate) fn retire_closed_log(
    cfg: &RedoConfig,
    closed: &FileHeader,
) -> Result<ArchivedLog, RedoError> {
    write_state(
        &cfg.state_path,
        State {
            sequence: closed.sequence,
            last_lsn: closed.last_lsn.0,
        },
    )?;
    let to = cfg
        .archive_dir
        .join(archive_file_name(closed.closed_at, closed.sequence));
    if cfg.delete_on_rollover {
        fs::remove_file(&cfg.log_path).map_err(RedoError::io(&cfg.log_path))?;
        let dir = parent_dir(&cfg.log_path);
        fsync_dir(&dir).map_err(RedoError::io(&dir))?;
    } else {
        // rename() would silently replace an existing file: never lose an archive.
        if fs::symlink_metadata(&to).is_ok() {
            return Err(RedoError::Io {
                path: to,
                source: io::Error::new(io::ErrorKind::AlreadyExists, "archive file already exists"),
            });
        }
        rename_durable(&cfg.log_path, &to).map_err(RedoError::io(&to))?;
    }
    Ok(ArchivedLog {
        path: to,
        sequence: closed.sequence,
        first_lsn: closed.first_lsn,
        last_lsn: closed.last_lsn,
        closed_at: closed.closed_at,
    })
}

/// A crash during `write_atomic` (creating redo.log, writing the state file) leaves
/// its temporary file behind (`.<name>.tmp<pid>`). Only this process writes here (the
/// home lock), so any such file is stale.
fn remove_stale_temp_files(cfg: &RedoConfig) {
    for target in [&cfg.log_path, &cfg.state_path] {
        let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
            continue;
        };
        let prefix = format!(".{}.tmp", name.to_string_lossy());
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                tracing::info!(path = %e.path().display(), "removing a stale temporary file");
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// The log as open() leaves it for the writer.
pub(crate) struct Recovered {
    pub file: File,
    pub header: FileHeader,
    pub size: u64,
    pub next_lsn: u64,
    pub max_txn: u64,
    pub report: RecoveryReport,
}

pub(crate) fn recover(cfg: &RedoConfig) -> Result<Recovered, RedoError> {
    let log_dir = parent_dir(&cfg.log_path);
    create_dir_all_durable(&log_dir).map_err(RedoError::io(&log_dir))?;
    create_dir_all_durable(&cfg.archive_dir).map_err(RedoError::io(&cfg.archive_dir))?;
    remove_stale_temp_files(cfg);

    // Everything we know about sequences and LSNs used so far.
    let state = read_state(&cfg.state_path)?;
    let archives = archive_names(&cfg.archive_dir)?;
    let max_archived_seq = archives.last().map_or(0, |a| a.0);
    let mut max_seq = max_archived_seq.max(state.map_or(0, |s| s.sequence));
    let mut max_lsn = state.map_or(0, |s| s.last_lsn);
    if let Some((_, path)) = archives.last() {
        match read_header(path) {
            Ok(h) if h.closed => max_lsn = max_lsn.max(h.last_lsn.0),
            Ok(_) => tracing::warn!(path = %path.display(), "archived redo log is not closed"),
            Err(e) => tracing::warn!("cannot read the newest archived redo log's header: {e}"),
        }
    }

    match fs::read(&cfg.log_path) {
        Ok(bytes) => {
            let header = FileHeader::decode(&bytes).map_err(|reason| RedoError::BadHeader {
                path: cfg.log_path.clone(),
                reason,
            })?;
            if header.closed {
                // A crash hit a rollover after the barrier (every record durable and
                // applied) and the header rewrite: finish it, then start a new log.
                let archived = retire_closed_log(cfg, &header)?;
                tracing::warn!(
                    sequence = header.sequence,
                    to = %archived.path.display(),
                    "completed a redo log rollover interrupted by a crash"
                );
                max_seq = max_seq.max(header.sequence);
                max_lsn = max_lsn.max(header.last_lsn.0);
            } else {
                if header.sequence <= max_archived_seq {
                    return Err(RedoError::BadHeader {
                        path: cfg.log_path.clone(),
                        reason: format!(
                            "sequence {} is not after the archive's sequence {max_archived_seq}; \
                             sequences are never reused: move the stale file away and restart",
                            header.sequence
                        ),
                    });
                }
                if let Some(s) = state
                    && s.sequence > header.sequence
                {
                    return Err(RedoError::BadHeader {
                        path: cfg.log_path.clone(),
                        reason: format!(
                            "sequence {} is older than the state file's sequence {} ({}); \
                             sequences are never reused: move the stale file away and restart",
                            header.sequence,
                            s.sequence,
                            cfg.state_path.display()
                        ),
                    });
                }
                return recover_current(cfg, header, bytes, state, max_lsn);
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if max_seq > 0 {
                tracing::warn!(
                    path = %cfg.log_path.display(),
                    next_sequence = max_seq + 1,
                    "redo.log is missing; starting a new one"
                );
            }
        }
        Err(e) => return Err(RedoError::io(&cfg.log_path)(e)),
    }

    let sequence = max_seq + 1;
    let header = FileHeader::new(sequence, UtcMillis::now(), Lsn(max_lsn + 1));
    let file = create_log_file(&cfg.log_path, &header)?;
    write_state(
        &cfg.state_path,
        State {
            sequence,
            last_lsn: max_lsn,
        },
    )?;
    Ok(Recovered {
        file,
        header,
        size: HEADER_LEN as u64,
        next_lsn: max_lsn + 1,
        max_txn: 0,
        report: RecoveryReport {
            sequence,
            truncated_at: None,
            truncated_bytes: 0,
            records: Vec::new(),
        },
    })
}

/// Reads the existing, open redo.log: every record, and what to do about a bad end.
fn recover_current(
    cfg: &RedoConfig,
    header: FileHeader,
    bytes: Vec<u8>,
    state: Option<State>,
    known_lsn: u64,
) -> Result<Recovered, RedoError> {
    let path = &cfg.log_path;
    let mut reader = RedoFileReader::from_bytes(path.clone(), bytes)?;
    let mut records: Vec<Record> = Vec::new();
    let mut fault = None;
    while let Some(r) = reader.next_raw() {
        match r {
            Ok(l) => records.push(l.record),
            Err(f) => {
                fault = Some(f);
                break;
            }
        }
    }
    let good_end = reader.offset();
    let last_good_lsn = reader.last_lsn().map_or(header.first_lsn.0 - 1, |l| l.0);
    let file_len = reader.bytes().map_or(0, |b| b.len() as u64);

    let mut truncated_at = None;
    if let Some(f) = fault {
        let reason = f.kind.reason();
        if !f.kind.is_tear_candidate() {
            // The CRC matched (or the order is wrong): this was written like that. No
            // crash produces it, and dropping it could drop an acknowledged record.
            return Err(reader.to_error(f));
        }
        let bytes = reader.bytes().unwrap_or_default();
        let start = usize::try_from(f.offset)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        if let Some(p) = format::find_plausible_record(bytes, start, last_good_lsn) {
            return Err(RedoError::Corrupt {
                path: path.clone(),
                offset: f.offset,
                reason: format!(
                    "{reason}; a valid record follows at offset {p}, so this is damage, not a \
                     torn tail: not truncating (inspect with zmredodump, keep a copy, repair or \
                     move the file away, then restart)"
                ),
            });
        }
        debug_assert_eq!(f.offset, good_end);
        tracing::warn!(
            path = %path.display(),
            offset = good_end,
            bytes = file_len - good_end,
            "truncating torn tail of the redo log: {reason}"
        );
        truncated_at = Some(good_end);
    }
    drop(reader);

    let file = open_rw(path)?;
    if truncated_at.is_some() {
        file.set_len(good_end).map_err(RedoError::io(path))?;
    }
    // Records a killed process wrote may still be only in the page cache; the store
    // is about to re-apply them, so they must be durable first. (sync_all: the
    // truncation changed the size.)
    file.sync_all().map_err(RedoError::io(path))?;

    let next_lsn = known_lsn.max(last_good_lsn) + 1;
    // Keep the state file in step (missing, or from before the current log).
    let floor = header.first_lsn.0 - 1;
    let wanted = State {
        sequence: header.sequence,
        last_lsn: state.map_or(floor, |s| s.last_lsn.max(floor)),
    };
    if state != Some(wanted) {
        write_state(&cfg.state_path, wanted)?;
    }
    let max_txn = records.iter().map(|r| r.txn.0).max().unwrap_or(0);
    Ok(Recovered {
        file,
        header,
        size: good_end,
        next_lsn,
        max_txn,
        report: RecoveryReport {
            sequence: header.sequence,
            truncated_at,
            truncated_bytes: file_len - good_end,
            records,
        },
    })
}
