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

mod history;
mod point;
mod records;

pub use point::PointMailbox;

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
}

impl RestoreOptions {
    /// No restore point: everything the backups and the server hold.
    fn to_latest(&self) -> bool {
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

    /// Whether the file at `path` is the log `l` a session recorded: same size,
    /// same BLAKE3 (sessions from before checksums were recorded: size only).
    fn intact_log(&mut self, path: &std::path::Path, l: &crate::session::RedoLogFile) -> bool {
        let key = (path.to_path_buf(), l.blake3.clone());
        if let Some(ok) = self.checked_logs.get(&key) {
            return *ok;
        }
        let ok = std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == l.size)
            && (l.blake3.is_empty()
                || std::fs::File::open(path)
                    .and_then(|mut f| {
                        let mut h = blake3::Hasher::new();
                        std::io::copy(&mut f, &mut h)?;
                        Ok(h.finalize().to_hex().as_str() == l.blake3)
                    })
                    .unwrap_or(false));
        self.checked_logs.insert(key, ok);
        ok
    }

    fn pool(&mut self, target: &dyn Target) -> Result<&Pool> {
        if self.pool.is_none() {
            self.pool = Some(Pool::load(target)?);
        }
        Ok(self.pool.as_ref().expect("loaded above"))
    }

    /// Writes blobs this run has not restored yet from the pool, on worker threads
    /// in pack order, and remembers where each went. Returns the bytes written.
    fn write_blobs(
        &mut self,
        source: &Source,
        target: &dyn Target,
        blobs: &[(Digest, PathBuf)],
    ) -> Result<u64> {
        if blobs.is_empty() {
            return Ok(0);
        }
        let pool = self.pool(target)?;
        let mut jobs = Vec::with_capacity(blobs.len());
        for (digest, dest) in blobs {
            jobs.push((pool.find(digest)?, digest, dest));
        }
        // Packs are read front to back, as they were written.
        jobs.sort_by(|a, b| (&a.0.pack, a.0.offset).cmp(&(&b.0.pack, b.0.offset)));
        let dirs: std::collections::BTreeSet<&std::path::Path> =
            blobs.iter().filter_map(|(_, p)| p.parent()).collect();
        for dir in dirs {
            std::fs::create_dir_all(dir).map_err(BackupError::io(dir.display()))?;
        }
        let store = source.store.blobs();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let bytes = std::sync::atomic::AtomicU64::new(0);
        let failed = std::sync::Mutex::new(None);
        let workers = crate::copier::BlobCopier::default_workers().min(jobs.len());
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((loc, digest, dest)) = jobs.get(i) else {
                            return;
                        };
                        let written = read_at(target, loc, digest).and_then(|data| {
                            bytes
                                .fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
                            store
                                .write_unpublished(dest, &data)
                                .map_err(|e| mv_store::StoreError::from(e).into())
                        });
                        if let Err(e) = written {
                            failed.lock().expect("no panic holds it").get_or_insert(e);
                            // The others stop at their next blob.
                            next.store(jobs.len(), std::sync::atomic::Ordering::Relaxed);
                            return;
                        }
                    }
                });
            }
        });
        if let Some(e) = failed.into_inner().expect("no panic holds it") {
            return Err(e);
        }
        for (digest, dest) in blobs {
            self.restored.insert(*digest, dest.clone());
        }
        Ok(bytes.into_inner())
    }

    /// Puts the blob `digest` at `dest`: a hard link to a file this run already
    /// restored with that content, else written from the pool. Not synced here:
    /// the mailbox is made durable as a whole before it goes live.
    fn place_blob(
        &mut self,
        source: &Source,
        target: &dyn Target,
        digest: &Digest,
        dest: &std::path::Path,
    ) -> Result<()> {
        let blobs = source.store.blobs();
        if let Some(from) = self.restored.get(digest) {
            match blobs.link_or_copy(from, dest) {
                Ok(()) => return Ok(()),
                // Removed since (a failed account's cleanup): write it again.
                Err(e) => tracing::debug!("restore: no link from {}: {e}", from.display()),
            }
        }
        let data = self.pool(target)?.read(target, digest)?;
        blobs
            .write_at(dest, &data)
            .map_err(mv_store::StoreError::from)?;
        self.restored.insert(*digest, dest.to_path_buf());
        Ok(())
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

fn build_with_catalog(
    run: &mut RestoreRun,
    catalog: &Catalog,
    source: &Source,
    target: &dyn Target,
    email: &str,
    opts: &RestoreOptions,
    scratch: bool,
) -> Result<Built> {
    if let Some(l) = opts.label
        && let Some(e) = catalog.get(&l)
        && let crate::catalog::EntryState::Invalid(reason) = &e.state
    {
        return Err(BackupError::Invalid(format!(
            "{reason}; the session {l} cannot be restored from: choose another full with -lb"
        )));
    }
    let sessions: Vec<&Session> = catalog.sessions().collect();
    // The account is its zimbraId: a current address or zimbraId (the
    // directory's), else any address the target recorded for it (a former name,
    // or a deleted account), or its zimbraId (a deleted account whose address
    // another account has now). Given a zimbraId, the account is named by its
    // address (the live one, else the newest the target recorded): a new account
    // of `-ca -pre` is PREFIX+address.
    let current = source.dir().find_account(email)?;
    let (zimbra_id, email) = match &current {
        Some(a) if a.id == email => (a.id.clone(), a.email.clone()),
        Some(a) => (a.id.clone(), email.to_string()),
        None => sessions
            .iter()
            .rev()
            .find_map(|s| {
                s.accounts
                    .iter()
                    .find(|a| a.email.eq_ignore_ascii_case(email) || a.zimbra_id == email)
            })
            .map(|a| (a.zimbra_id.clone(), a.email.clone()))
            .ok_or_else(|| BackupError::Invalid(format!("{email}: no backup of this account")))?,
    };
    let email = email.as_str();
    // The live account, when restoring in place (found by its id: it may have been
    // renamed since the address given).
    let live = if opts.new_account_prefix.is_none() && !scratch {
        match current {
            Some(a) => Some(a),
            None => source.dir().find_account(&zimbra_id)?,
        }
    } else {
        None
    };
    let dir = account_dir(&zimbra_id);
    let mut report = AccountRestoreReport {
        email: email.to_string(),
        ..Default::default()
    };
    // 1. and 2.: the full and the redo records (read before anything is written),
    // through the in-place restores the restore point lies after.
    let history::Plan {
        full,
        meta,
        records,
        collector,
    } = history::plan(
        run,
        source,
        target,
        catalog,
        &sessions,
        &history::Account {
            zimbra_id: &zimbra_id,
            dir: &dir,
            email,
        },
        opts,
        None,
        &mut report,
    )?;
    report.full_label = full.label.to_string();
    // 3. Where it goes, and the directory entry of a new account.
    let ldif_path = full.object_path(&format!("{dir}/ldap.ldif"));
    let entry = {
        let ldif = target.get(&ldif_path)?;
        let entries = mv_directory::ldif::parse(&ldif).map_err(|e| {
            BackupError::corrupt(format!("{}/{ldif_path}", target.url()), e.to_string())
        })?;
        entries
            .into_iter()
            .next()
            .ok_or_else(|| BackupError::corrupt(&ldif_path, "no entry"))?
    };
    let dest = if scratch {
        Destination::Scratch(Account {
            id: zimbra_id.clone(),
            email: email.to_string(),
            aliases: Vec::new(),
            status: Default::default(),
            cos_id: String::new(),
            mailbox_id: source.dir().allocate_mailbox_id()?,
            created: UtcMillis(0),
            attrs: Default::default(),
        })
    } else {
        destination(source, email, opts, live, &entry)?
    };
    let to = dest.account().mailbox_id;
    report.restored_as = dest.account().email.clone();
    report.mailbox_id = to.0;
    let mut written: Vec<PathBuf> = Vec::new();
    let result = build_mailbox(
        run,
        source,
        target,
        full,
        &dir,
        &meta,
        dest.account(),
        records,
        !scratch,
        &mut written,
        &mut report,
    );
    let built = Built {
        dest,
        entry,
        collector,
        report,
        written,
        bytes: 0,
    };
    match result {
        Ok(bytes) => Ok(Built { bytes, ..built }),
        Err(e) => {
            built.discard(source);
            Err(e)
        }
    }
}

fn choose_full<'s>(
    target: &dyn Target,
    sessions: &[&'s Session],
    zimbra_id: &str,
    _dir: &str,
    email: &str,
    opts: &RestoreOptions,
) -> Result<(&'s Session, AccountMeta)> {
    for s in sessions.iter().rev() {
        if s.kind() != SessionKind::Full {
            continue;
        }
        if opts.label.is_some_and(|l| l != s.label) {
            continue;
        }
        let Some(entry) = s.account(zimbra_id) else {
            continue;
        };
        if entry.state != AccountState::Completed {
            if opts.label.is_some() {
                return Err(BackupError::Invalid(format!(
                    "{email}: not completed in {}",
                    s.label
                )));
            }
            continue;
        }
        let meta = s.account_meta(target, zimbra_id)?;
        // Without -lb: the newest full before every restore point given.
        if opts.label.is_none()
            && (opts.to_time.is_some_and(|t| meta.snapshot_at > t)
                || opts.to_redo_seq.is_some_and(|n| meta.redo_seq > n)
                || opts.to_incr_label.is_some_and(|l| s.label > l))
        {
            continue;
        }
        return Ok((s, meta));
    }
    Err(BackupError::Invalid(match opts.label {
        Some(l) => format!("{email}: {l} is not a full backup holding this account"),
        None => format!("{email}: no full backup before the restore point"),
    }))
}

/// Decides where the restored mailbox goes and creates the directory entry a new
/// account needs.
fn destination(
    source: &Source,
    email: &str,
    opts: &RestoreOptions,
    live: Option<Account>,
    entry: &mv_directory::ldif::Entry,
) -> Result<Destination> {
    let store = source.store;
    // A mailbox id is free for a rebuilt mailbox if no database was ever made for
    // it and no creation waits for its first use (an unknown answer: not free).
    let never_used = |id: MailboxId| {
        let m = store.mailbox(id);
        !m.db_path().exists() && !m.is_unopened().unwrap_or(true)
    };
    let dir = source.dir();
    if let Some(prefix) = &opts.new_account_prefix {
        let imported = dir.import_account_entry(
            entry,
            &AccountImport::new_account(&format!("{prefix}{email}")),
        )?;
        return Ok(Destination::NewAccount(imported.account));
    }
    match live {
        Some(account) => {
            let mbox = store.mailbox(account.mailbox_id);
            let created = mbox.db_path().exists() || mbox.is_unopened()?;
            let live_mailbox = created && mbox.info()?.is_some_and(|i| !i.deleted);
            if live_mailbox {
                let old = account.mailbox_id;
                let mut account = account;
                account.mailbox_id = dir.allocate_mailbox_id()?;
                return Ok(Destination::Replace { account, old });
            }
            let mut account = account;
            if !never_used(account.mailbox_id) {
                // A deleted mailbox's id has a history of its own: start a new one.
                account.mailbox_id = dir.allocate_mailbox_id()?;
            }
            Ok(Destination::Recreate {
                account,
                created: false,
            })
        }
        None if opts.restore_entry => {
            let original = mv_directory::entry_mailbox_id(entry);
            let choice = match original {
                Some(id) if never_used(id) && dir.account_by_mailbox_id(id)?.is_none() => {
                    MailboxIdChoice::Given(id)
                }
                _ => MailboxIdChoice::New,
            };
            let imported = dir.import_account_entry(
                entry,
                &AccountImport {
                    mailbox_id: choice,
                    ..AccountImport::original()
                },
            )?;
            Ok(Destination::Recreate {
                account: imported.account,
                created: true,
            })
        }
        None => Err(BackupError::Invalid(format!(
            "{email}: the account is not in the directory; restore it with -ra to recreate \
             its entry too, -ca -pre PREFIX to restore it as a new account, or run \
             zmrestoreldap first when rebuilding a server"
        ))),
    }
}

#[allow(clippy::too_many_arguments)]
fn build_mailbox(
    run: &mut RestoreRun,
    source: &Source,
    target: &dyn Target,
    full: &Session,
    dir: &str,
    meta: &AccountMeta,
    account: &Account,
    records: Vec<Record>,
    with_blobs: bool,
    written: &mut Vec<PathBuf>,
    report: &mut AccountRestoreReport,
) -> Result<u64> {
    let store = source.store;
    let to = account.mailbox_id;
    let db_rel = full.object_path(&format!("{dir}/db/mailbox.sqlite"));
    let bytes = target.get(&db_rel)?;
    let mbox = store.mailbox(to);
    let final_path = mbox.db_path().to_path_buf();
    if final_path.exists() {
        return Err(BackupError::Invalid(format!(
            "mailbox {to} already has a database {}",
            final_path.display()
        )));
    }
    if let Some(parent) = final_path.parent() {
        mv_home::durable::create_dir_all_durable(parent)
            .map_err(BackupError::io(parent.display()))?;
    }
    let tmp = final_path.with_extension("sqlite.restoring");
    written.push(tmp.clone());
    std::fs::write(&tmp, &bytes).map_err(BackupError::io(tmp.display()))?;
    // A file of our own under a temporary name, made durable with the rest of
    // the mailbox before anything points at it (go_live): adjusted without a
    // journal or fsyncs of its own (a failure removes it whole).
    let refs = {
        let file = mv_store::SnapshotFile::open(&tmp)?;
        file.rebind(to, &account.id, &account.email)?;
        file.blob_refs()?
    };
    // Blobs: each content this run has not written yet is written once, from the
    // pool, by several threads (reading packs and writing files overlap); every
    // other copy is a link to it.
    let mut fresh: Vec<(Digest, PathBuf)> = Vec::new();
    let mut copies: Vec<(Digest, PathBuf)> = Vec::new();
    let mut fresh_digests = std::collections::HashSet::new();
    for b in refs.into_iter().filter(|_| with_blobs) {
        let digest = b.digest;
        let path = store.blobs().blob_path(b.volume, to, b.item, b.revision);
        written.push(path.clone());
        if run.restored.contains_key(&digest) || !fresh_digests.insert(digest) {
            copies.push((digest, path));
        } else {
            fresh.push((digest, path));
        }
    }
    let blob_bytes = run.write_blobs(source, target, &fresh)?;
    for (digest, path) in &copies {
        run.place_blob(source, target, digest, path)?;
    }
    written.push(final_path.clone());
    std::fs::rename(&tmp, &final_path).map_err(BackupError::io(final_path.display()))?;
    report.applied += replay_into(source, records, MailboxId(meta.mailbox_id), to)?;
    // Where checkpoints fsync file by file, the sync before going live must
    // cover this database and the log its replay wrote (not synced by itself).
    let mut wal = final_path.clone().into_os_string();
    wal.push("-wal");
    store.blobs().note_written(&final_path);
    store.blobs().note_written(std::path::Path::new(&wal));
    Ok(bytes.len() as u64 + blob_bytes)
}

/// Replays the original mailbox's records into mailbox `to`.
fn replay_into(
    source: &Source,
    mut records: Vec<Record>,
    from: MailboxId,
    to: MailboxId,
) -> Result<u64> {
    if records.is_empty() {
        return Ok(0);
    }
    for r in &mut records {
        if r.mailbox == from {
            r.mailbox = to;
        }
    }
    let r = source.store.replay(records.iter(), &|m| m == to)?;
    Ok(r.applied)
}

/// Step 4: makes the built mailbox the account's.
#[allow(clippy::too_many_arguments)]
/// The rebuilt mailbox is durable before anything points at it: the caller has
/// synced it.
fn go_live(
    source: &Source,
    dest: &Destination,
    entry: &mv_directory::ldif::Entry,
    collector: &mut Collector,
    report: &mut AccountRestoreReport,
) -> Result<()> {
    let store = source.store;
    let opts = collector.opts.clone();
    let replace_entry = |id: MailboxId| -> Result<()> {
        source.dir().import_account_entry(
            entry,
            &AccountImport {
                mailbox_id: MailboxIdChoice::Given(id),
                replace: true,
                ..AccountImport::original()
            },
        )?;
        Ok(())
    };
    match dest {
        Destination::NewAccount(_)
        | Destination::Recreate { created: true, .. }
        | Destination::Scratch(_) => Ok(()),
        Destination::Recreate { account, .. } => {
            if opts.restore_entry {
                replace_entry(account.mailbox_id)
            } else {
                source
                    .dir()
                    .set_mailbox_id(&account.id, account.mailbox_id)?;
                Ok(())
            }
        }
        Destination::Replace { account, old } => {
            let new = account.mailbox_id;
            report.replaced_mailbox_id = Some(old.0);
            store.retire_mailbox(*old, || -> Result<((), mv_redo::ops::DeleteMailbox)> {
                if opts.to_latest() {
                    // Nothing can commit to the old mailbox now: what it got since
                    // the records were read is in the archive after this rollover.
                    store.redo().rollover()?;
                    let archive = store.home().redo_archive_dir();
                    let files: Vec<PathBuf> = mv_redo::list_archive(&archive)?
                        .into_iter()
                        .filter(|l| collector.last_seq.is_none_or(|s| l.sequence > s))
                        .map(|l| l.path)
                        .collect();
                    collector.read(&files, report)?;
                    let from = collector.from;
                    report.applied += replay_into(source, collector.take(), from, new)?;
                    store.checkpoint()?;
                }
                // What replaced the old mailbox, for the redo log: a later
                // point-in-time restore rebuilds this state from it.
                let restored_change = store.mailbox_point(new)?.map_or(0, |p| p.change);
                let deleted = mv_redo::ops::DeleteMailbox {
                    account_id: account.id.clone(),
                    replaced_by: Some(new.0),
                    restored_from: Some(report.full_label.clone()),
                    restored_to_mailbox: Some(collector.from.0),
                    restored_to_change: Some(collector.after_change),
                    restored_change: Some(restored_change),
                    skip_deletes: Some(opts.skip_deletes),
                };
                if opts.restore_entry {
                    replace_entry(new)?;
                } else {
                    source.dir().set_mailbox_id(&account.id, new)?;
                }
                Ok(((), deleted))
            })
        }
    }
}
