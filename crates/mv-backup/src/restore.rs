//! Restoring one account from a target (`zmrestore`, `zmrestoreoffline`): into a
//! new account beside the original (`-ca -pre PREFIX`), or in place of the original.
//!
//! 1. The full: `-lb`, else the newest full holding the account whose snapshot is
//!    at or before the restore point.
//! 2. The redo records of the original mailbox above the snapshot's change are read
//!    first (nothing is written before they are known to be readable), in order:
//!    incrementals' redo logs (sessions after the full), then (unless `-br`/`-rf`)
//!    the home's archive, after rolling the current redo.log over so that every
//!    change committed before the restore began is in a closed, immutable file;
//!    deduplicated by sequence; the chain from the snapshot's sequence is checked
//!    (the original's gap text; with `--ignoreRedoErrors` replay stops at the gap
//!    and the skipped range is reported); cut at the restore point; delete ops
//!    dropped with `--skipDeletes`; the mailbox's own deletion ends its history.
//!    Only the content records (`PutBlob`) the kept records use are kept.
//! 3. The mailbox is built at a mailbox id nobody uses: the snapshot database,
//!    its meta rewritten, the blobs it references written from the pool, then the
//!    records replayed through [`mv_store::Store::replay`] (the one apply path).
//! 4. It goes live:
//!    - `-ca`: a new directory entry (PREFIX+address, new zimbraId) owns it.
//!    - In place, when the account's mailbox exists: under the old mailbox's write
//!      lock (deliveries to it wait, then fail temporarily and are retried by the
//!      MTA), the changes committed since step 2 are replayed too (restore to the
//!      latest point only), the account is pointed at the new mailbox (and, with
//!      `-ra`, its directory entry replaced by the backup's), and the old mailbox's
//!      deletion is logged with what replaced it (the new mailbox, the full it was
//!      restored from and how far that full's records were replayed). Only this
//!      account is unavailable, and only for that moment. The old mailbox id's
//!      history ends there, so the next backup of the account is a full (see
//!      `run::prepare`); a point-in-time restore to a moment after it rebuilds the
//!      restore's source and goes on with the new mailbox's records ([`history`]).
//!    - In place, when the mailbox does not exist (a server rebuilt by
//!      `zmrestoreldap` + `zmrestoreoffline`, or `-ra` of a deleted account): it
//!      is built at the account's own mailbox id when that id was never used here,
//!      so later redo logs of the same id apply to it.
//!
//! A failure removes what was written (database, blobs, a directory entry it
//! created): the live store is never touched outside the new mailbox, and the
//! original account keeps working.

use crate::catalog::Catalog;
use crate::error::{BackupError, Result};
use crate::label::{Label, SessionKind};
use crate::pack::{Pool, read_at};
use crate::run::Source;
use crate::session::{AccountMeta, AccountState, Session, account_dir};
use crate::target::Target;
use mv_directory::{Account, AccountImport, MailboxIdChoice};
use mv_redo::{Op, Record};
use mv_types::{ChangeNumber, Digest, ItemId, MailboxId, TxnId, UtcMillis};
use std::collections::BTreeMap;
use std::path::PathBuf;

mod account;
mod blobs;
mod history;
mod mailbox;
mod point;
mod records;

pub use point::PointMailbox;

use account::{build_with_catalog, choose_full};
use mailbox::{build_mailbox, go_live};
use records::{Collector, collect_records};

/// What and how to restore one account.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub label: Option<Label>,
    pub full_only: bool,
    pub backup_redo_only: bool,
    pub to_time: Option<UtcMillis>,
    pub to_incr_label: Option<Label>,
    pub to_redo_seq: Option<u64>,
    pub ignore_redo_errors: bool,
    pub skip_deletes: bool,
    /// `-ca -pre PREFIX`: restore into PREFIX+address.
    pub new_account_prefix: Option<String>,
    /// `-ra`: also restore the account's directory entry (recreating a deleted
    /// account, or replacing the live entry with the backup's).
    pub restore_entry: bool,
    /// How many restore points the user gave in all (several of one kind count
    /// each): with more than one, the report says which time was used.
    pub restore_points: usize,
    /// The account is one of `-a all`: what existed at the restore point is
    /// restored. An account no full holds at or before the point did not exist
    /// yet (or had no full): [`BackupError::NotAtPoint`]. One that existed then
    /// and is missing from the directory now (deleted since) gets its entry back
    /// under the address it had at the point, as `-ra` would.
    pub all_accounts: bool,
    /// With `all_accounts`: an account deleted before the restore point is not
    /// restored ([`BackupError::NotAtPoint`]); without it, its state just before
    /// the deletion is (`-ra`, `-ca`).
    pub skip_deleted: bool,
}

impl RestoreOptions {
    /// No restore point: everything the backups and the server hold.
    pub fn to_latest(&self) -> bool {
        !self.full_only
            && !self.backup_redo_only
            && self.to_time.is_none()
            && self.to_incr_label.is_none()
            && self.to_redo_seq.is_none()
    }
}

/// What restoring one account did.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct AccountRestoreReport {
    pub email: String,
    pub restored_as: String,
    pub mailbox_id: u32,
    /// In place: the mailbox the restored one replaced (its deletion is logged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_mailbox_id: Option<u32>,
    pub full_label: String,
    pub redo_files: u64,
    pub applied: u64,
    pub skipped_deletes: u64,
    /// Redo ranges left out because of `--ignoreRedoErrors`.
    pub skipped: Vec<String>,
    /// "using restore to time of ..." when several restore points were given.
    pub notes: Vec<String>,
}

/// About how many bytes of restored content one background `syncfs` covers.
pub const SYNC_GROUP_BYTES: u64 = 64 << 20;

fn rel(label: &Label, path: &str) -> String {
    format!("sessions/{label}/{path}")
}

/// Where the restored mailbox goes live.
enum Destination {
    /// `-ca`: a new account (already created; removed again on failure).
    NewAccount(Account),
    /// In place of the account's live mailbox `old`.
    Replace { account: Account, old: MailboxId },
    /// The account has no mailbox (rebuilt server, or `-ra` of a deleted account).
    /// `created`: the entry was imported by this restore (removed on failure).
    Recreate { account: Account, created: bool },
    /// Nowhere: a mailbox rebuilt at a restore point to be read (item-level
    /// recovery, backup search) and thrown away; no account points at it.
    Scratch(Account),
}

impl Destination {
    fn account(&self) -> &Account {
        match self {
            Destination::NewAccount(a)
            | Destination::Replace { account: a, .. }
            | Destination::Recreate { account: a, .. }
            | Destination::Scratch(a) => a,
        }
    }
}

/// What the accounts of one restore run share: the target's catalog and blob pool
/// (read once, not once per account), the blob files already restored (a message
/// several accounts hold is written once and hard-linked into each, as delivery
/// stores it) and whether the redo log was already rolled over.
#[derive(Default)]
pub struct RestoreRun {
    catalog: Option<Catalog>,
    pool: Option<Pool>,
    /// digest → a blob file this run wrote.
    restored: std::collections::HashMap<Digest, PathBuf>,
    /// Accounts built by [`RestoreRun::restore_next`] and not being synced yet,
    /// with their bytes.
    building: Vec<Built>,
    building_bytes: u64,
    /// A group of built accounts whose sync is under way.
    syncing: Option<(Vec<Built>, mv_store::SyncInFlight)>,
    rolled_over: bool,
    /// Redo log files already checked against a session's checksum, and the
    /// outcome: every account of a run reads the same logs.
    checked_logs: std::collections::HashMap<(PathBuf, String), bool>,
    /// Shipped segments laid end to end into a log, by sequence: once per run,
    /// and kept until the run ends (an in-place restore's history reads its
    /// files again).
    assembled: std::collections::BTreeMap<u64, crate::live::Assembled>,
}

impl RestoreRun {
    pub fn new() -> RestoreRun {
        RestoreRun::default()
    }
}

/// Restores one account (by address) from `target` into the store of `source`.
pub fn restore_account(
    source: &Source,
    target: &dyn Target,
    email: &str,
    opts: &RestoreOptions,
) -> Result<AccountRestoreReport> {
    restore_account_in(&mut RestoreRun::new(), source, target, email, opts)
}

/// [`restore_account`] as one account of a run of several.
pub fn restore_account_in(
    run: &mut RestoreRun,
    source: &Source,
    target: &dyn Target,
    email: &str,
    opts: &RestoreOptions,
) -> Result<AccountRestoreReport> {
    let built = run.build(source, target, email, opts)?;
    publish(source, built, false)
}

impl RestoreRun {
    /// Restores `email` as the next account of a run of several. Built mailboxes
    /// are made durable in groups of about [`SYNC_GROUP_BYTES`], each group's
    /// `syncfs` running in the background while the next group is built, and go
    /// live once their group is durable (each account still either fully restored
    /// or untouched). One `syncfs` per account rewrote the filesystem's shared
    /// metadata blocks each time (10 % more device writes than `tar -xf` for a
    /// 200-account restore) and left the disk idle while the next account was read.
    /// Returns the accounts that ended in this call (made live, or failed).
    pub fn restore_next(
        &mut self,
        source: &Source,
        target: &dyn Target,
        email: &str,
        opts: &RestoreOptions,
    ) -> Vec<(String, Result<AccountRestoreReport>)> {
        let mut ended = Vec::new();
        match self.build(source, target, email, opts) {
            Ok(b) => {
                self.building_bytes += b.bytes;
                self.building.push(b);
            }
            Err(e) => ended.push((email.to_string(), Err(e))),
        }
        if self.building_bytes >= SYNC_GROUP_BYTES {
            ended.extend(self.publish_synced(source));
            self.start_sync(source);
        }
        ended
    }

    /// Makes every account [`Self::restore_next`] built live, once durable; call
    /// it after the last account (and before stopping early).
    pub fn finish(&mut self, source: &Source) -> Vec<(String, Result<AccountRestoreReport>)> {
        let mut ended = self.publish_synced(source);
        self.start_sync(source);
        ended.extend(self.publish_synced(source));
        ended
    }

    /// Starts making the accounts built since the last group durable.
    fn start_sync(&mut self, source: &Source) {
        if self.building.is_empty() {
            return;
        }
        let group = std::mem::take(&mut self.building);
        self.building_bytes = 0;
        self.syncing = Some((group, source.store.blobs().checkpoint_in_background()));
    }

    /// Waits for the group being synced and makes its accounts live.
    fn publish_synced(&mut self, source: &Source) -> Vec<(String, Result<AccountRestoreReport>)> {
        let Some((group, sync)) = self.syncing.take() else {
            return Vec::new();
        };
        let synced = sync.wait();
        group
            .into_iter()
            .map(|built| {
                let email = built.report.email.clone();
                let r = match &synced {
                    Ok(()) => publish(source, built, true),
                    Err(e) => {
                        built.discard(source);
                        Err(BackupError::Invalid(format!(
                            "the restored mailbox could not be made durable: {e}"
                        )))
                    }
                };
                (email, r)
            })
            .collect()
    }

    /// Builds an account's mailbox where nothing points at it yet.
    fn build(
        &mut self,
        source: &Source,
        target: &dyn Target,
        email: &str,
        opts: &RestoreOptions,
    ) -> Result<Built> {
        if self.catalog.is_none() {
            self.catalog = Some(Catalog::load(target)?);
        }
        let catalog = self.catalog.take().expect("loaded above");
        let r = build_with_catalog(self, &catalog, source, target, email, opts, false);
        self.catalog = Some(catalog);
        r
    }
}

/// An account's mailbox, built and not live yet.
struct Built {
    dest: Destination,
    entry: mv_directory::ldif::Entry,
    collector: Collector,
    report: AccountRestoreReport,
    /// Files written, removed if the account fails.
    written: Vec<PathBuf>,
    /// Content bytes written (what its sync has to write out).
    bytes: u64,
    /// A scratch build's replayed records ([`point::replayed`]): a later
    /// point of the same full goes on from them.
    replayed: Vec<point::Replayed>,
}

impl Built {
    /// Removes what building it wrote (and the entry it created).
    fn discard(self, source: &Source) {
        let to = self.dest.account().mailbox_id;
        source.store.mailbox(to).close();
        for p in &self.written {
            let _ = std::fs::remove_file(p);
        }
        // The mailbox is a new one (`destination`): its directory on each volume
        // holds only what this restore wrote, the blobs of replayed records too
        // (not in `written`). Nothing of a failed restore stays behind.
        let blobs = source.store.blobs();
        for v in blobs.volumes() {
            let one = blobs.blob_path(v.id, to, ItemId(0), 0);
            if let Some(mailbox_dir) = one.ancestors().nth(3) {
                let _ = std::fs::remove_dir_all(mailbox_dir);
            }
        }
        match &self.dest {
            Destination::NewAccount(a)
            | Destination::Recreate {
                account: a,
                created: true,
            } => {
                let _ = source.dir().delete_account(&a.id);
            }
            // Its database and index too, and its mark last.
            Destination::Scratch(a) => {
                if let Err(e) = source.store.remove_scratch(a.mailbox_id) {
                    tracing::warn!(mailbox = a.mailbox_id.0, error = %e,
                        "a scratch mailbox stays until the next start");
                }
            }
            _ => {}
        }
    }
}

/// Makes a built mailbox the account's (`synced`: it is durable already).
fn publish(source: &Source, mut built: Built, synced: bool) -> Result<AccountRestoreReport> {
    let live = if synced {
        Ok(())
    } else {
        source.store.checkpoint().map_err(BackupError::from)
    }
    .and_then(|()| {
        go_live(
            source,
            &built.dest,
            &built.entry,
            &mut built.collector,
            &mut built.report,
        )
    });
    built.report.skipped_deletes = built.collector.skipped_deletes;
    if let Err(e) = live {
        built.discard(source);
        return Err(e);
    }
    if let Some(t) = built.collector.note_time() {
        built
            .report
            .notes
            .push(format!("using restore to time of {}", t.display_local()));
    }
    Ok(built.report)
}
