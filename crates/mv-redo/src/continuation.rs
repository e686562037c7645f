//! Making a home's redo log continue another history's sequence numbers (a server
//! rebuilt from a backup target, or an offline restore from one), without leaving a
//! hole in the chain the target sees.
//!
//! The caller says which sequence the target's history needs next: one past the
//! newest log the target holds, or the sequence a full backup's snapshot position
//! lies in when the target does not hold that log (the live log of the server at the
//! time of the backup). A home already at or past that sequence is the same history
//! (or a later one) and is left alone: moving it on would skip a sequence nobody
//! wrote, and the next incremental would report it as a gap. A fresh home, whose
//! log holds nothing yet, is moved to exactly that sequence.

use std::fs;
use std::io;

use mv_home::durable::create_dir_all_durable;
use mv_types::{Lsn, UtcMillis};

use crate::archive::archive_names;
use crate::error::RedoError;
use crate::format::{FileHeader, HEADER_LEN};
use crate::recovery::{State, create_log_file, parent_dir, read_state, write_state};
use crate::writer::RedoConfig;

/// What [`continue_at`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuation {
    /// This home's log is already at or past the wanted sequence: nothing changed.
    AlreadyPast { next_sequence: u64 },
    /// A new, empty redo.log with this sequence replaced the fresh home's empty one.
    Advanced { next_sequence: u64 },
}

/// Makes the next record this home logs go to a log with sequence
/// `next_sequence` or later and get an LSN above `lsn`.
///
/// The log must not be open (the caller holds the home lock). When the home is
/// behind, its redo.log must hold nothing (only its header, as a fresh home's
/// does): it is replaced by an empty log with exactly `next_sequence` (written
/// under a temporary name, fsynced, renamed, directory fsynced), then the state
/// file follows, so the next open finds that log and starts no other. A redo.log
/// holding records of this home's own history cannot be renumbered: that is an
/// error.
pub fn continue_at(
    cfg: &RedoConfig,
    next_sequence: u64,
    lsn: u64,
) -> Result<Continuation, RedoError> {
    let state = read_state(&cfg.state_path)?;
    let archives = if cfg.archive_dir.is_dir() {
        archive_names(&cfg.archive_dir)?
    } else {
        Vec::new()
    };
    let own_seq = archives
        .last()
        .map_or(0, |a| a.0)
        .max(state.map_or(0, |s| s.sequence));
    let mut own_lsn = state.map_or(0, |s| s.last_lsn);
    match fs::read(&cfg.log_path) {
        Ok(bytes) => {
            let header = FileHeader::decode(&bytes).map_err(|reason| RedoError::BadHeader {
                path: cfg.log_path.clone(),
                reason,
            })?;
            if header.sequence >= next_sequence {
                return Ok(Continuation::AlreadyPast {
                    next_sequence: header.sequence,
                });
            }
            if bytes.len() > HEADER_LEN || header.closed {
                return Err(RedoError::BadHeader {
                    path: cfg.log_path.clone(),
                    reason: format!(
                        "this home's redo log (sequence {}) holds records and is behind \
                         sequence {next_sequence}, where the backup's history continues; \
                         restore onto a fresh home (mailvault init)",
                        header.sequence
                    ),
                });
            }
            own_lsn = own_lsn.max(header.first_lsn.0.saturating_sub(1));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if own_seq >= next_sequence {
                // The next open starts own_seq + 1: past it already.
                return Ok(Continuation::AlreadyPast {
                    next_sequence: own_seq + 1,
                });
            }
        }
        Err(e) => return Err(RedoError::io(&cfg.log_path)(e)),
    }
    if own_seq >= next_sequence {
        return Ok(Continuation::AlreadyPast {
            next_sequence: own_seq + 1,
        });
    }
    let last_lsn = own_lsn.max(lsn);
    let dir = parent_dir(&cfg.log_path);
    create_dir_all_durable(&dir).map_err(RedoError::io(&dir))?;
    // The log first: if the state file were written first and a crash followed,
    // the next open would find no redo.log and start the sequence after it.
    let header = FileHeader::new(next_sequence, UtcMillis::now(), Lsn(last_lsn + 1));
    drop(create_log_file(&cfg.log_path, &header)?);
    write_state(
        &cfg.state_path,
        State {
            sequence: next_sequence,
            last_lsn,
        },
    )?;
    // The LSNs skipped were never this home's: recovery must not look for them.
    crate::checkpoint::skip_to(cfg, next_sequence - 1, last_lsn)?;
    Ok(Continuation::Advanced { next_sequence })
}
