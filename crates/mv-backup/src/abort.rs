//! `zmbackupabort -lb LABEL`: stops a running backup cleanly.
//!
//! The request is left in the target as `tmp/<label>.abort` (and, when the backup
//! runs in this process, set on its job directly). The backup checks between
//! accounts and, while copying, at most twice a second; it then stops, seals the
//! pack being written and commits the session with the status "completed (aborted
//! by command)": the accounts it finished are listed as completed and are usable,
//! the others as skipped. An incremental run that also had a full session to take
//! stops after the aborted session (the second label never appears).

use crate::catalog::{Catalog, EntryState};
use crate::error::{BackupError, Result};
use crate::label::Label;
use crate::target::Target;

/// Asks the running backup `label` to stop.
pub fn request_abort(target: &dyn Target, label: &str) -> Result<()> {
    let l: Label = label.parse()?;
    if let Some(job) = crate::progress::job(label) {
        job.request_abort();
    }
    let catalog = Catalog::load(target)?;
    match catalog.get(&l).map(|e| &e.state) {
        Some(EntryState::InProgress) => {}
        Some(EntryState::Valid(_)) => {
            return Err(BackupError::Invalid(format!(
                "backup {label} is not running: it has completed"
            )));
        }
        _ => {
            return Err(BackupError::Invalid(format!(
                "no backup {label} is in progress in {}",
                target.url()
            )));
        }
    }
    target.put(
        &crate::run::abort_flag_path(label),
        format!(
            "abort requested at {}\n",
            mv_types::UtcMillis::now().rfc3339()
        )
        .as_bytes(),
    )
}

/// Where `zmbackupabort -r` leaves its request for the running restore.
pub const RESTORE_ABORT_FLAG: &str = "tmp/restore.abort";

/// What a restore writes as the target lock's holder (`zmbackupabort -r` looks
/// for it).
pub const RESTORE_LOCK_PREFIX: &str = "Restore";

/// Asks the restore running on `target` to stop after the account it is
/// restoring (`zmbackupabort -r`): every account is then either fully restored or
/// untouched.
pub fn request_restore_abort(target: &dyn Target) -> Result<String> {
    match target.lock_holder()? {
        Some(holder) if holder.starts_with(RESTORE_LOCK_PREFIX) => {
            target.put(
                RESTORE_ABORT_FLAG,
                format!(
                    "abort requested at {}\n",
                    mv_types::UtcMillis::now().rfc3339()
                )
                .as_bytes(),
            )?;
            Ok(holder)
        }
        Some(holder) => Err(BackupError::Invalid(format!(
            "no restore is in progress in {}: the target is held by {holder:?} \
             (use -lb LABEL to abort a backup)",
            target.url()
        ))),
        None => Err(BackupError::Invalid(format!(
            "no restore is in progress in {}",
            target.url()
        ))),
    }
}

/// Whether `zmbackupabort -r` asked the running restore to stop.
pub fn restore_abort_requested(target: &dyn Target) -> bool {
    matches!(target.size(RESTORE_ABORT_FLAG), Ok(Some(_)))
}
