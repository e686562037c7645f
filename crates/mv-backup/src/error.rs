//! The one error type of the backup crate.

/// Everything that can go wrong taking, reading, deleting or verifying backups.
/// Texts that administrators of the original know are kept word for word: the redo
/// gap (from [`mv_redo::RedoError::Gap`]), "Unable to parse XML file", "Backup cannot
/// start because free space is less than", "... is still in progress".
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// An I/O failure on a file or object of the target (or a local file).
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// An object the format requires is not in the target.
    #[error("{0}: not found in the backup target")]
    NotFound(String),
    #[error("{0}")]
    Store(#[from] mv_store::StoreError),
    #[error("{0}")]
    Directory(#[from] mv_directory::DirectoryError),
    #[error("{0}")]
    Redo(#[from] mv_redo::RedoError),
    /// A damaged or truncated XML file (the original's text, so it can be searched).
    #[error("Unable to parse XML file {path}: {reason}")]
    Xml { path: String, reason: String },
    /// A damaged target object that is not XML (pack index, blob list, pack data).
    #[error("{path}: {reason}")]
    Corrupt { path: String, reason: String },
    /// Another backup, delete or restore holds the target.
    #[error("{0} is still in progress")]
    InProgress(String),
    #[error(
        "Backup cannot start because free space is less than {required} ({available} available on {target})"
    )]
    FreeSpace {
        required: String,
        available: String,
        target: String,
    },
    /// Wrong input (unknown account, bad label, bad -del argument, ...).
    #[error("{0}")]
    Invalid(String),
    /// Live DR fencing: the target belongs to a newer epoch (`live::epoch`).
    #[error("{0}")]
    Fenced(String),
    #[error("zip pack {path}: {reason}")]
    Zip { path: String, reason: String },
    #[error("{0}")]
    Unsupported(String),
    /// `-a all`: the account did not exist at the restore point (deleted before
    /// it, or no full holds it by then): listed as skipped, not a failure.
    #[error("{0}")]
    NotAtPoint(String),
    /// Auto-grouped mode: no account is due ("auto-grouped backup too soon").
    #[error("auto-grouped backup too soon: {0}")]
    TooSoon(String),
}

impl BackupError {
    pub(crate) fn io(path: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> BackupError {
        let path = path.to_string();
        move |source| BackupError::Io { path, source }
    }

    /// The error of copying `from` to `to`: a full disk or quota is the
    /// destination's, and is named as such (not the source's path, which only
    /// was read); other errors name both.
    pub(crate) fn copy(
        from: &std::path::Path,
        to: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> BackupError {
        let (from, to) = (from.display().to_string(), to.to_path_buf());
        move |source| {
            let full = source.kind() == std::io::ErrorKind::StorageFull
                || source.kind() == std::io::ErrorKind::QuotaExceeded;
            let dir = to.parent().unwrap_or(&to).display().to_string();
            BackupError::Io {
                path: if full {
                    format!(
                        "no space for {} on the filesystem of {dir} (copying {from})",
                        to.display()
                    )
                } else {
                    format!("copying {from} to {}", to.display())
                },
                source,
            }
        }
    }

    pub(crate) fn corrupt(path: impl std::fmt::Display, reason: impl Into<String>) -> BackupError {
        BackupError::Corrupt {
            path: path.to_string(),
            reason: reason.into(),
        }
    }

    /// True for a usage error (exit code 2 at the command line).
    pub fn is_usage(&self) -> bool {
        matches!(self, BackupError::Invalid(_))
    }
}

pub type Result<T, E = BackupError> = std::result::Result<T, E>;
