//! The one error type of the redo log crate.

use std::io;
use std::path::{Path, PathBuf};

use crate::format::DecodeError;

/// Everything that can go wrong opening, writing or reading redo logs. Every variant
/// that concerns a file names it (and, for damage, the byte offset), because the
/// operator is the one who has to act on it.
#[derive(Debug, thiserror::Error)]
pub enum RedoError {
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Damage inside a file that is not a torn tail (or a file being read for dump /
    /// replay). Never silently skipped.
    #[error("corrupt redo log {} at offset {offset} (0x{offset:08x}): {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },

    #[error("bad redo log header in {}: {reason}", path.display())]
    BadHeader { path: PathBuf, reason: String },

    #[error("bad redo log state file {}: {reason}", path.display())]
    BadState { path: PathBuf, reason: String },

    /// A hole in a chain of sequences. The text is the one Zimbra administrators know.
    #[error(
        "Found gap in redo log sequence; missing {first_missing} through {last_missing}; \
         To avoid future restore problems, discard all existing backups and take a full \
         backup of all accounts; If this error occurred during restore, try the \
         --ignoreRedoErrors option"
    )]
    Gap {
        first_missing: u64,
        last_missing: u64,
    },

    /// A record given to `append` that would exceed the maximum record size.
    #[error("redo record too large: {size} bytes of body (at most {max})")]
    TooLarge { size: u64, max: u64 },

    /// A record decoded from bytes with no file around it (see
    /// [`crate::format::decode_record`]).
    #[error("undecodable redo record: {0}")]
    Decode(#[from] DecodeError),

    /// An earlier write, fsync or rollover failed; after that nothing past the last
    /// durable record can be vouched for, so the log refuses further work until it
    /// resumes (`RedoLog::resume`: cut back to the durable end and reopened, tried
    /// every few seconds) or is reopened by a restart.
    #[error(
        "redo log stopped after a failure ({reason}); it resumes by itself once the cause (a full disk) is gone"
    )]
    Failed { reason: String },
}

impl RedoError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(io::Error) -> RedoError + '_ {
        move |source| RedoError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The byte offset of the damage, for errors that have one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            RedoError::Corrupt { offset, .. } => Some(*offset),
            RedoError::BadHeader { .. } => Some(0),
            _ => None,
        }
    }

    /// The file the error is about, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            RedoError::Io { path, .. }
            | RedoError::Corrupt { path, .. }
            | RedoError::BadHeader { path, .. }
            | RedoError::BadState { path, .. } => Some(path),
            _ => None,
        }
    }
}
