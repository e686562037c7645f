//! Item-level recovery: searching inside backups (`mailvault backup search`) and
//! restoring single messages or a folder into the live account (`zmrestore
//! --items QUERY`, `zmrestore --folder /Path`), without restoring the account.
//!
//! Both read a mailbox rebuilt at a restore point ([`RestoreRun::build_point`]:
//! the full's snapshot database and the redo records up to the point, replayed by
//! the one apply path into a mailbox no account points at), evaluate the query
//! with the store's one evaluator ([`mv_store::Mailbox::search_with`], the grammar
//! of `zmmailbox s`), and throw the rebuilt mailbox away. A message's content is
//! read from the target's blob pool by digest (the snapshot's messages; their
//! files are not written) or from the file its replayed record wrote.
//!
//! Without a restore point, every session of the target holding the account is a
//! point of its own (a full: its snapshot; an incremental: the state at its end,
//! from the redo logs the target holds), so a message that lived between two
//! backups and was then deleted is found in the session that saw it. The points
//! are read chain by chain (a full and the incrementals after it), newest full
//! first, one rebuilt mailbox carried along each chain (`build_order`).
//!
//! Restored messages are written to the live mailbox by
//! [`mv_store::Store::add_messages`] (`items/apply.rs`): redo-logged and applied
//! like any delivery, a chunk per group commit, so they replay, are backed up and
//! are seen over IMAP at once. Their bytes (stored header prefix included), flags,
//! tags and received dates are the backup's; a message already in the destination
//! folder with the same digest and Message-ID is left alone, so running the same
//! restore twice restores once. Contacts and appointments the selection matches
//! come back through the store's contact and calendar paths, into their folder,
//! unless that folder holds the same text.

use crate::error::{BackupError, Result};
use crate::label::{Label, SessionKind};
use crate::restore::{PointMailbox, RestoreOptions, RestoreRun};
use crate::run::Source;
use crate::session::AccountState;
use crate::target::Target;
use mv_store::search::Term;
use mv_store::{Item, StoreError};
use mv_types::{Digest, ItemId, MailboxId, UtcMillis};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

mod apply;
mod export;
mod narrow;

use apply::{Chosen, ChosenPim};

pub use export::{ExportFormat, ExportOptions, ExportReport, export_account};

/// One message, contact or appointment found in a backup.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupHit {
    pub email: String,
    /// `message`, `contact` or `appointment`.
    #[serde(default = "message_kind")]
    pub kind: String,
    /// The sessions (or the restore point) holding it, oldest first.
    pub labels: Vec<String>,
    /// Its folder's path at the newest of those.
    pub folder: String,
    /// A message's Date header (else when it arrived), an appointment's start
    /// (0: a contact), ms since the epoch.
    pub date_ms: i64,
    pub from: String,
    /// A message's subject, a contact's name, an appointment's summary.
    pub subject: String,
    pub size: u64,
    pub item_id: u32,
    /// A message's content digest; a contact's or appointment's, of its vCard or
    /// iCalendar text.
    pub digest: String,
    /// A message's Message-ID; an appointment's UID.
    pub message_id: String,
    pub flags: u32,
    /// Whether the live mailbox holds an item of the same kind with the same
    /// content now (None: the account has no live mailbox here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
}

fn message_kind() -> String {
    "message".into()
}

/// A contact's or appointment's digest: of its stored text.
/// A hit of `kind` whose details the newest point that holds it fills in.
fn unfilled_hit(email: &str, kind: String, item_id: u32, digest: String) -> BackupHit {
    BackupHit {
        email: email.to_string(),
        kind,
        labels: Vec::new(),
        folder: String::new(),
        date_ms: 0,
        from: String::new(),
        subject: String::new(),
        size: 0,
        item_id,
        digest,
        message_id: String::new(),
        flags: 0,
        present: None,
    }
}

fn pim_digest(i: &Item) -> String {
    Digest::of(i.content.as_deref().unwrap_or("").as_bytes()).to_string()
}

/// What `backup search` looks at.
#[derive(Debug, Clone, Default)]
pub struct SearchOptions {
    /// One restore point (`-restoreToTime`, `-lb`); None: every session.
    pub point: Option<RestoreOptions>,
    /// Sessions started at or after this time only (without `point`).
    pub from: Option<UtcMillis>,
    /// Sessions started at or before this time only (without `point`).
    pub to: Option<UtcMillis>,
}

/// What `backup search` found for one account.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AccountSearch {
    pub email: String,
    /// How many restore points were read.
    pub points: usize,
    pub hits: Vec<BackupHit>,
    /// Points that could not be read, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// What to restore.
#[derive(Debug, Clone)]
pub enum Selection {
    /// `--items QUERY` (the grammar of `zmmailbox s`).
    Query(String),
    /// `--folder /Path`: the folder and its subfolders.
    Folder(String),
}

#[derive(Debug, Clone)]
pub struct ItemRestoreOptions {
    pub selection: Selection,
    /// One restore point; None: every session, each item in its newest version.
    pub point: Option<RestoreOptions>,
    /// `--into /Folder`: every item there (made when missing).
    pub into: Option<String>,
    pub dry_run: bool,
}

/// One restored (or, with `--dry-run`, restorable) message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoredItem {
    /// `message`, `contact` or `appointment`.
    #[serde(default = "message_kind")]
    pub kind: String,
    /// Its id in the backup.
    pub item_id: u32,
    /// Its id in the live mailbox (None: a dry run, or already present).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_item_id: Option<u32>,
    /// The session (or restore point) it was taken from.
    pub label: String,
    /// Its folder in the backup.
    pub from_folder: String,
    /// Where it is now.
    pub folder: String,
    pub date_ms: i64,
    pub from: String,
    pub subject: String,
    pub size: u64,
    pub digest: String,
    pub flags: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// What `zmrestore --items/--folder` did for one account.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ItemRestoreReport {
    pub email: String,
    pub dry_run: bool,
    pub restored: Vec<RestoredItem>,
    /// Already in their destination folder (same digest and Message-ID): left alone.
    pub already_present: Vec<RestoredItem>,
    /// Folders this restore created.
    pub folders_created: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Every account the target holds: (zimbraId, newest address), first seen first.
pub fn target_accounts(run: &mut RestoreRun, target: &dyn Target) -> Result<Vec<(String, String)>> {
    let mut ids: Vec<(String, String)> = Vec::new();
    for s in run.catalog(target)?.sessions() {
        for a in &s.accounts {
            match ids.iter_mut().find(|(id, _)| *id == a.zimbra_id) {
                Some(e) => e.1 = a.email.clone(),
                None => ids.push((a.zimbra_id.clone(), a.email.clone())),
            }
        }
    }
    Ok(ids)
}

/// The account's zimbraId: the directory's for a current address or id, else the
/// newest session that recorded the address (a former name, a deleted account).
fn zimbra_id(
    run: &mut RestoreRun,
    source: &Source,
    target: &dyn Target,
    email: &str,
) -> Result<String> {
    if let Some(a) = source.dir().find_account(email)? {
        return Ok(a.id);
    }
    run.catalog(target)?
        .sessions()
        .rev()
        .find_map(|s| {
            s.accounts
                .iter()
                .find(|a| a.email.eq_ignore_ascii_case(email) || a.zimbra_id == email)
        })
        .map(|a| a.zimbra_id.clone())
        .ok_or_else(|| BackupError::Invalid(format!("{email}: no backup of this account")))
}

/// The restore points of every session holding the account (completed), oldest
/// first, within `from..=to`: (the session's label, options rebuilding its state).
fn session_points(
    run: &mut RestoreRun,
    target: &dyn Target,
    zimbra_id: &str,
    from: Option<UtcMillis>,
    to: Option<UtcMillis>,
) -> Result<Vec<(String, RestoreOptions)>> {
    let mut out = Vec::new();
    let mut seen_full = false;
    for s in run.catalog(target)?.sessions() {
        let holds = s
            .account(zimbra_id)
            .is_some_and(|a| a.state == AccountState::Completed);
        if !holds {
            continue;
        }
        let full = s.label.kind == SessionKind::Full;
        seen_full |= full;
        if !seen_full
            || from.is_some_and(|t| s.label.start < t)
            || to.is_some_and(|t| s.label.start > t)
        {
            continue;
        }
        let opts = if full {
            RestoreOptions {
                label: Some(s.label),
                full_only: true,
                ..Default::default()
            }
        } else {
            RestoreOptions {
                to_incr_label: Some(s.label),
                backup_redo_only: true,
                restore_points: 1,
                ..Default::default()
            }
        };
        out.push((s.label.to_string(), opts));
    }
    Ok(out)
}

/// `-lb LABEL` for items: that session's own state (a full's snapshot, an
/// incremental's end).
pub fn point_of_label(label: Label) -> RestoreOptions {
    match label.kind {
        SessionKind::Full => RestoreOptions {
            label: Some(label),
            full_only: true,
            ..Default::default()
        },
        _ => RestoreOptions {
            to_incr_label: Some(label),
            backup_redo_only: true,
            restore_points: 1,
            ..Default::default()
        },
    }
}

/// A name for a restore point given by options, for the report.
fn point_name(opts: &RestoreOptions) -> String {
    if let Some(t) = opts.to_time {
        format!("at {}", t.display_local())
    } else if let Some(l) = opts.to_incr_label {
        l.to_string()
    } else if let Some(l) = opts.label {
        l.to_string()
    } else if let Some(n) = opts.to_redo_seq {
        format!("redo sequence {n}")
    } else {
        "latest".to_string()
    }
}

/// A message's content (without its stored header prefix), checked against its
/// digest: the file a replayed record wrote, else the pool's copy.
fn body(
    run: &mut RestoreRun,
    source: &Source,
    target: &dyn Target,
    mailbox: MailboxId,
    item: &Item,
) -> Result<Vec<u8>> {
    let digest: Digest =
        item.digest
            .as_deref()
            .and_then(|d| d.parse().ok())
            .ok_or(StoreError::NoContent {
                mailbox,
                item: item.id,
            })?;
    let path =
        source
            .store
            .blobs()
            .blob_path(item.volume_id, mailbox, ItemId(item.id), item.mod_content);
    if path.exists()
        && let Ok(b) = source.store.blobs().read_verified(&path, &digest)
    {
        return Ok(b);
    }
    run.read_pool_blob(target, &digest)
}

/// The contacts and appointments of a rebuilt mailbox matching `terms` (the
/// store's evaluator for them: their text, name or summary, folder, start).
fn matching_pim(source: &Source, pm: &PointMailbox, terms: &[Term]) -> Result<Vec<Item>> {
    match source.store.mailbox(pm.mailbox).search_pim(terms) {
        Ok(items) => Ok(items),
        Err(StoreError::NotFound(_)) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// Folder id → path in a mailbox.
fn folder_paths(source: &Source, mailbox: MailboxId) -> Result<HashMap<u32, String>> {
    Ok(source
        .store
        .mailbox(mailbox)
        .folders()?
        .into_iter()
        .map(|f| (f.id, f.path))
        .collect())
}

/// The account's live mailbox, if it has one.
fn live_mailbox(source: &Source, zimbra_id: &str) -> Result<Option<MailboxId>> {
    let Some(account) = source.dir().find_account(zimbra_id)? else {
        return Ok(None);
    };
    let mbox = source.store.mailbox(account.mailbox_id);
    let live = mbox.db_path().exists() && mbox.info()?.is_some_and(|i| !i.deleted);
    Ok(live.then_some(account.mailbox_id))
}

/// The order [`for_each_point`] reads `points` (given oldest first) in: the
/// chains of fulls newest first (a full's point and the incrementals after it),
/// each from its full forward, so that one rebuilt mailbox goes from one point
/// of a chain to the next by replaying only that session's records
/// ([`RestoreRun::advance_point`]) and the first answers come from the newest
/// full's snapshot, which needs no replay.
fn build_order(points: &[(String, RestoreOptions)]) -> Vec<usize> {
    let mut chains: Vec<Vec<usize>> = Vec::new();
    for (k, (_, opts)) in points.iter().enumerate() {
        match chains.last_mut() {
            Some(c) if !opts.full_only => c.push(k),
            _ => chains.push(vec![k]),
        }
    }
    chains.into_iter().rev().flatten().collect()
}

/// Builds each point (given oldest first, read in [`build_order`]), hands the
/// rebuilt mailbox to `each` with the point's name, and throws it away again
/// (also when `each` fails); a mailbox is carried forward to the next point of
/// its chain rather than rebuilt. A point that cannot be built is noted when
/// there are several (another session may still hold the items), an error when
/// it is the only one.
fn for_each_point(
    run: &mut RestoreRun,
    source: &Source,
    target: &dyn Target,
    email: &str,
    points: &[(String, RestoreOptions)],
    notes: &mut Vec<String>,
    each: &mut dyn FnMut(&mut RestoreRun, &str, &PointMailbox) -> Result<()>,
) -> Result<usize> {
    let mut read = 0;
    let mut current: Option<PointMailbox> = None;
    for k in build_order(points) {
        let (name, opts) = &points[k];
        let pm = match run.advance_point(source, target, email, opts, current.take()) {
            Ok(pm) => pm,
            Err(e) if points.len() > 1 => {
                notes.push(format!("{name}: not read: {e}"));
                continue;
            }
            Err(e) => return Err(e),
        };
        if let Err(e) = each(run, name, &pm) {
            pm.discard(source);
            return Err(e);
        }
        current = Some(pm);
        read += 1;
    }
    if let Some(pm) = current {
        pm.discard(source);
    }
    Ok(read)
}

fn points_for(
    run: &mut RestoreRun,
    target: &dyn Target,
    zimbra_id: &str,
    point: &Option<RestoreOptions>,
    from: Option<UtcMillis>,
    to: Option<UtcMillis>,
) -> Result<Vec<(String, RestoreOptions)>> {
    Ok(match point {
        Some(p) => vec![(point_name(p), p.clone())],
        None => session_points(run, target, zimbra_id, from, to)?,
    })
}

/// `mailvault backup search -a ACCOUNT QUERY`: every message matching `query` in
/// the account's backups, one hit per (digest, item id), newest first.
pub fn search_account(
    run: &mut RestoreRun,
    source: &Source,
    target: &dyn Target,
    email: &str,
    query: &str,
    opts: &SearchOptions,
) -> Result<AccountSearch> {
    search_account_streamed(run, source, target, email, query, opts, &mut |_| {})
}

/// A hit found so far: where it was seen (points by age, oldest 0) and which
/// point's details it holds.
struct Found {
    hit: BackupHit,
    seen: Vec<usize>,
    described_by: usize,
}

impl Found {
    /// Seen at point `rank`: the newest point describes it.
    fn seen_at(&mut self, rank: usize, describe: impl FnOnce(&mut BackupHit)) {
        self.seen.push(rank);
        if rank >= self.described_by {
            self.described_by = rank;
            describe(&mut self.hit);
        }
    }
}

/// [`search_account`], handing each hit to `on_hit` as soon as it is first
/// found (described by the point it was found at, its labels that point's),
/// before the search goes on: the points are read in `build_order`, so the
/// newest full's answers come first. The result holds every hit merged, as
/// [`search_account`] returns it.
pub fn search_account_streamed(
    run: &mut RestoreRun,
    source: &Source,
    target: &dyn Target,
    email: &str,
    query: &str,
    opts: &SearchOptions,
    on_hit: &mut dyn FnMut(&BackupHit),
) -> Result<AccountSearch> {
    let terms = mv_store::search::parse(query).map_err(|e| BackupError::Invalid(e.to_string()))?;
    let zid = zimbra_id(run, source, target, email)?;
    let points = points_for(run, target, &zid, &opts.point, opts.from, opts.to)?;
    let rank: HashMap<&str, usize> = points
        .iter()
        .enumerate()
        .map(|(k, (n, _))| (n.as_str(), k))
        .collect();
    let mut out = AccountSearch {
        email: email.to_string(),
        ..Default::default()
    };
    let mut hits: BTreeMap<(String, u32), Found> = BTreeMap::new();
    let mut narrowed = narrow::Narrowed::new(&terms);
    let mut index_notes = Vec::new();
    // What the live mailbox holds now, looked at from the first hit on.
    let mut live: Option<Option<Live>> = None;
    let mut present = |kind: &str, digest: &str| -> Result<Option<bool>> {
        if live.is_none() {
            live = Some(Live::of(source, &zid)?);
        }
        match live.as_mut().and_then(Option::as_mut) {
            Some(l) => l.holds(source, kind, digest).map(Some),
            None => Ok(None),
        }
    };
    out.points = for_each_point(
        run,
        source,
        target,
        email,
        &points,
        &mut out.notes,
        &mut |run, name, pm| {
            let r = rank.get(name).copied().unwrap_or(0);
            let folders = folder_paths(source, pm.mailbox)?;
            let mut new = Vec::new();
            for i in narrowed.matching(run, source, target, pm, &mut index_notes)? {
                let digest = i.digest.clone().unwrap_or_default();
                let key = (digest.clone(), i.id);
                let found = hits.entry(key.clone()).or_insert_with(|| {
                    new.push(key);
                    Found {
                        hit: unfilled_hit(email, message_kind(), i.id, digest),
                        seen: Vec::new(),
                        described_by: 0,
                    }
                });
                found.seen_at(r, |hit| {
                    hit.folder = folders.get(&i.folder_id).cloned().unwrap_or_default();
                    hit.date_ms = mv_store::search::effective_date(&i);
                    hit.from = i.sender.clone();
                    hit.subject = i.subject.clone();
                    hit.size = i.size;
                    hit.message_id = i.message_id.clone();
                    hit.flags = i.flags;
                });
            }
            for i in matching_pim(source, pm, &terms)? {
                let digest = pim_digest(&i);
                let key = (digest.clone(), i.id);
                let found = hits.entry(key.clone()).or_insert_with(|| {
                    new.push(key);
                    Found {
                        hit: unfilled_hit(email, i.kind.name().to_string(), i.id, digest),
                        seen: Vec::new(),
                        described_by: 0,
                    }
                });
                found.seen_at(r, |hit| {
                    hit.folder = folders.get(&i.folder_id).cloned().unwrap_or_default();
                    hit.date_ms = i.date_ms;
                    hit.subject = i.subject.clone();
                    hit.size = i.content.as_ref().map_or(0, |c| c.len() as u64);
                    hit.message_id = i.cal_uid.clone().unwrap_or_default();
                });
            }
            for key in new {
                let found = hits.get_mut(&key).expect("inserted above");
                found.hit.present = present(&found.hit.kind, &found.hit.digest)?;
                let mut first = found.hit.clone();
                first.labels = vec![name.to_string()];
                on_hit(&first);
            }
            Ok(())
        },
    )?;
    out.notes.append(&mut index_notes);
    out.hits = hits
        .into_values()
        .map(|mut f| {
            f.seen.sort_unstable();
            f.seen.dedup();
            f.hit.labels = f.seen.iter().map(|&k| points[k].0.clone()).collect();
            f.hit
        })
        .collect();
    out.hits
        .sort_by(|a, b| b.date_ms.cmp(&a.date_ms).then(b.item_id.cmp(&a.item_id)));
    Ok(out)
}

/// The account's live mailbox, asked whether it holds a hit's content now.
struct Live {
    mailbox: MailboxId,
    /// The digests of its contacts' and appointments' text, with their kind
    /// (read on first use: their digests are not stored).
    pim: Option<HashSet<(String, String)>>,
}

impl Live {
    /// None when the account has no live mailbox.
    fn of(source: &Source, zimbra_id: &str) -> Result<Option<Live>> {
        Ok(live_mailbox(source, zimbra_id)?.map(|mailbox| Live { mailbox, pim: None }))
    }

    /// Whether it holds an item of `kind` with this digest: a message by one
    /// lookup in the digest index (reading every item to check a few digests
    /// would read the whole mailbox), a contact or appointment by its text's
    /// digest.
    fn holds(&mut self, source: &Source, kind: &str, digest: &str) -> Result<bool> {
        let mbox = source.store.mailbox(self.mailbox);
        if kind == message_kind() {
            let Ok(d) = digest.parse::<Digest>() else {
                return Ok(false);
            };
            // Received at any time.
            return Ok(mbox.holds_message_since(&d, UtcMillis(i64::MIN))?);
        }
        if self.pim.is_none() {
            let mut pim = HashSet::new();
            for k in [mv_store::ItemKind::Contact, mv_store::ItemKind::Appointment] {
                for i in mbox.items(None, Some(k))? {
                    pim.insert((k.name().to_string(), pim_digest(&i)));
                }
            }
            self.pim = Some(pim);
        }
        Ok(self
            .pim
            .as_ref()
            .is_some_and(|p| p.contains(&(kind.to_string(), digest.to_string()))))
    }
}

/// `zmrestore -a ACCOUNT --items QUERY | --folder /Path`: restores the selected
/// messages into the account's live mailbox.
pub fn restore_items(
    run: &mut RestoreRun,
    source: &Source,
    target: &dyn Target,
    email: &str,
    opts: &ItemRestoreOptions,
) -> Result<ItemRestoreReport> {
    let terms = match &opts.selection {
        Selection::Query(q) => {
            mv_store::search::parse(q).map_err(|e| BackupError::Invalid(e.to_string()))?
        }
        Selection::Folder(p) => {
            if p.trim_matches('/').is_empty() {
                return Err(BackupError::Invalid(
                    "--folder needs a folder path such as /Inbox/Projects (for the whole \
                     account, restore the account)"
                        .into(),
                ));
            }
            vec![Term::Under(p.clone())]
        }
    };
    if let Some(into) = &opts.into
        && into.trim_matches('/').is_empty()
    {
        return Err(BackupError::Invalid(
            "--into needs a folder path such as /Restored".into(),
        ));
    }
    let zid = zimbra_id(run, source, target, email)?;
    let live = live_mailbox(source, &zid)?.ok_or_else(|| {
        BackupError::Invalid(format!(
            "{email}: no live mailbox to restore items into; restore the account \
             (zmrestore -a {email} -ra)"
        ))
    })?;
    let points = points_for(run, target, &zid, &opts.point, None, None)?;
    let mut report = ItemRestoreReport {
        email: email.to_string(),
        dry_run: opts.dry_run,
        ..Default::default()
    };
    // Each item is taken in its newest version: the newest point (by rank,
    // oldest 0) that holds it describes it; its content is the same at each.
    let mut chosen: BTreeMap<(String, u32), Chosen> = BTreeMap::new();
    let mut chosen_at: HashMap<(String, u32), usize> = HashMap::new();
    let mut chosen_pim: BTreeMap<(String, u32), ChosenPim> = BTreeMap::new();
    let mut chosen_pim_at: HashMap<(String, u32), usize> = HashMap::new();
    let rank: HashMap<String, usize> = points
        .iter()
        .enumerate()
        .map(|(k, (n, _))| (n.clone(), k))
        .collect();
    let mut narrowed = narrow::Narrowed::new(&terms);
    let mut index_notes = Vec::new();
    for_each_point(
        run,
        source,
        target,
        email,
        &points,
        &mut report.notes,
        &mut |run, name, pm| {
            let r = rank.get(name).copied().unwrap_or(0);
            let folders = folder_paths(source, pm.mailbox)?;
            let tags: HashMap<u32, (String, u32)> = source
                .store
                .mailbox(pm.mailbox)
                .tags()?
                .into_iter()
                .map(|t| (t.id, (t.name, t.color)))
                .collect();
            for i in narrowed.matching(run, source, target, pm, &mut index_notes)? {
                let key = (i.digest.clone().unwrap_or_default(), i.id);
                if chosen_at.get(&key).is_some_and(|&k| k > r) {
                    continue;
                }
                chosen_at.insert(key.clone(), r);
                let body = match chosen.remove(&key) {
                    Some(older) => older.body,
                    None => body(run, source, target, pm.mailbox, &i)?,
                };
                chosen.insert(
                    key,
                    Chosen {
                        label: name.to_string(),
                        folder: folders.get(&i.folder_id).cloned().unwrap_or_default(),
                        tags: i.tags.iter().filter_map(|t| tags.get(t).cloned()).collect(),
                        body,
                        item: i,
                    },
                );
            }
            for i in matching_pim(source, pm, &terms)? {
                let key = (pim_digest(&i), i.id);
                if chosen_pim_at.get(&key).is_some_and(|&k| k > r) {
                    continue;
                }
                chosen_pim_at.insert(key.clone(), r);
                chosen_pim.insert(
                    key,
                    ChosenPim {
                        label: name.to_string(),
                        folder: folders.get(&i.folder_id).cloned().unwrap_or_default(),
                        item: i,
                    },
                );
            }
            Ok(())
        },
    )?;
    // Which index copies were used changes only how fast the items were found.
    for n in index_notes {
        tracing::info!("{email}: {n}");
    }
    let mut chosen: Vec<Chosen> = chosen.into_values().collect();
    // Oldest first within each folder: IMAP UIDs follow the original order.
    chosen.sort_by(|a, b| {
        (&a.folder, a.item.received_ms, a.item.id).cmp(&(&b.folder, b.item.received_ms, b.item.id))
    });
    let mut pim: Vec<ChosenPim> = chosen_pim.into_values().collect();
    pim.sort_by(|a, b| (&a.folder, a.item.id).cmp(&(&b.folder, b.item.id)));
    let plan = apply::Plan {
        into: opts.into.as_deref(),
        dry_run: opts.dry_run,
        restored_folder: format!("/Restored {}", chrono::Local::now().format("%Y-%m-%d")),
    };
    apply::restore(source, live, chosen, pim, &plan, &mut report)?;
    Ok(report)
}
