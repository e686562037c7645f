//! IMAP access to the store: accounts from the directory (argon2 password,
//! account status), message folders as mailboxes, tags as keywords. Every
//! change goes through the store's write API, so it is redo-logged and replays
//! exactly.
//!
//! Names: the store's `/Inbox` is IMAP's `INBOX` (its subfolders `INBOX/x`),
//! other folders keep their path without the leading `/`. Only folders that hold
//! messages are mailboxes; the account handle is the mailbox id.

use crate::Service;
use mv_directory::AccountStatus;
use mv_imap::{
    Account, BResult, Backend, BackendError, CopyResult, ErrorKind, FlagOp, LoginResult,
    MailboxEntry, MailboxState, MessageMeta, NewMessage, Quota, Snapshot, SpecialUse,
};
use mv_redo::ops::{flags, folders};
use mv_store::{DeliverOptions, FlagChange, Folder, StoreError};
use mv_types::{ItemId, MailboxId, UtcMillis};
use std::sync::Arc;
use std::sync::atomic::Ordering;

mod names;
use names::{imap_name, store_path};

// The IMAP layer's flag bits are the store's, so no translation table is needed.
const _: () = assert!(
    mv_imap::backend::flags::SEEN == flags::SEEN
        && mv_imap::backend::flags::ANSWERED == flags::ANSWERED
        && mv_imap::backend::flags::FLAGGED == flags::FLAGGED
        && mv_imap::backend::flags::DELETED == flags::DELETED
        && mv_imap::backend::flags::DRAFT == flags::DRAFT
);

pub struct ImapBackend {
    service: Arc<Service>,
    logins: crate::login_cache::LoginCache,
}

impl ImapBackend {
    /// The login's result and, when refused, why (for the log only: the client
    /// hears "invalid credentials" whatever the reason).
    fn check_login(&self, user: &str, password: &str) -> (LoginResult, Option<&'static str>) {
        // The lookup runs on one of the directory's read connections and the
        // Argon2 check below (tens of milliseconds) under no lock at all: LMTP
        // recipient checks and other logins go on meanwhile.
        let (account, hash) = {
            let dir = self.service.directory();
            let account = match dir.find_account(user) {
                Ok(Some(a)) => a,
                Ok(None) => return (LoginResult::Refused, Some("no such account")),
                Err(_) => return (LoginResult::Refused, Some("directory error")),
            };
            match dir.stored_password_hash(&account.id) {
                Ok(Some(h)) => (account, h),
                Ok(None) => return (LoginResult::Refused, Some("no password set")),
                Err(_) => return (LoginResult::Refused, Some("directory error")),
            }
        };
        // The password first: an account's status is no business of someone
        // who does not know its password.
        let matches = self.logins.verified(&account.id, &hash, password) || {
            let m = mv_directory::account::password_matches(&account.email, &hash, password)
                .unwrap_or(false);
            if m {
                self.logins.remember(&account.id, &hash, password);
            }
            m
        };
        if !matches {
            return (LoginResult::Refused, Some("wrong password"));
        }
        match account.status {
            AccountStatus::Active => (
                LoginResult::Ok(Account {
                    id: account.mailbox_id.0 as u64,
                    name: account.email,
                    // The session's mailbox stays open while it is logged in.
                    hold: mv_imap::Hold::new(self.service.store().pin(account.mailbox_id)),
                }),
                None,
            ),
            AccountStatus::Maintenance => (
                LoginResult::Unavailable(format!(
                    "{} is in maintenance; try again later",
                    account.email
                )),
                Some("account in maintenance"),
            ),
            AccountStatus::Locked => (LoginResult::Refused, Some("account locked")),
            AccountStatus::Closed => (LoginResult::Refused, Some("account closed")),
        }
    }

    pub fn new(service: Arc<Service>) -> ImapBackend {
        ImapBackend {
            service,
            logins: Default::default(),
        }
    }

    fn mbox(a: &Account) -> MailboxId {
        MailboxId(a.id as u32)
    }

    fn message_folders(&self, a: &Account) -> BResult<Vec<Folder>> {
        Ok(self
            .service
            .store()
            .mailbox(Self::mbox(a))
            .folders()
            .map_err(err)?
            .into_iter()
            .filter(|f| f.id != folders::ROOT && f.view == "message")
            .collect())
    }

    fn folder(&self, a: &Account, id: u32) -> BResult<Folder> {
        self.message_folders(a)?
            .into_iter()
            .find(|f| f.id == id)
            .ok_or_else(|| BackendError::new(ErrorKind::NotFound, "the mailbox no longer exists"))
    }

    fn folder_by_name(&self, a: &Account, name: &str) -> BResult<Option<Folder>> {
        let path = store_path(name);
        Ok(self
            .message_folders(a)?
            .into_iter()
            .find(|f| f.path.eq_ignore_ascii_case(&path)))
    }

    /// One attempt of a STORE: the outer error is the backend's, the inner one
    /// the store's write (a message gone meanwhile is retried by the caller).
    fn store_once(
        &self,
        a: &Account,
        mailbox: u32,
        uids: &[u32],
        op: FlagOp,
        flag_bits: u32,
        keywords: &[String],
    ) -> BResult<Result<(), StoreError>> {
        let m = Self::mbox(a);
        let items = self.items_of(a, mailbox, uids)?;
        if items.is_empty() {
            return Ok(Ok(()));
        }
        let ids: Vec<ItemId> = items.iter().map(|(_, i)| ItemId(i.id)).collect();
        let store = self.service.store();
        let change = match op {
            FlagOp::Add if flag_bits != 0 => Some(FlagChange::Add(flag_bits)),
            FlagOp::Remove if flag_bits != 0 => Some(FlagChange::Remove(flag_bits)),
            FlagOp::Replace => Some(FlagChange::Replace(flag_bits & flags::ALL)),
            _ => None,
        };
        if let Some(c) = change
            && let Err(e) = store.set_flags(m, &ids, c)
        {
            return Ok(Err(e));
        }
        if keywords.is_empty() && op != FlagOp::Replace {
            return Ok(Ok(()));
        }
        let given = self.tag_ids(a, keywords, op != FlagOp::Remove)?;
        // One set_tags per resulting tag set: items that end up alike share a write.
        let mut groups: std::collections::BTreeMap<Vec<u32>, Vec<ItemId>> = Default::default();
        for (_, item) in &items {
            let mut new: Vec<u32> = match op {
                FlagOp::Add => item.tags.iter().chain(&given).copied().collect(),
                FlagOp::Remove => item
                    .tags
                    .iter()
                    .filter(|t| !given.contains(t))
                    .copied()
                    .collect(),
                FlagOp::Replace => given.clone(),
            };
            new.sort_unstable();
            new.dedup();
            let mut old = item.tags.clone();
            old.sort_unstable();
            if new != old {
                groups.entry(new).or_default().push(ItemId(item.id));
            }
        }
        for (tags, ids) in groups {
            if let Err(e) = store.set_tags(m, &ids, &tags) {
                return Ok(Err(e));
            }
        }
        Ok(Ok(()))
    }

    /// Item ids of the given UIDs in a folder, in the order given; unknown UIDs are skipped.
    fn items_of(
        &self,
        a: &Account,
        folder: u32,
        uids: &[u32],
    ) -> BResult<Vec<(u32, mv_store::Item)>> {
        let msgs = self
            .service
            .store()
            .mailbox(Self::mbox(a))
            .messages_by_uid(folder)
            .map_err(err)?;
        Ok(uids
            .iter()
            .filter_map(|u| {
                msgs.binary_search_by_key(u, |m| m.imap_uid)
                    .ok()
                    .map(|i| (*u, msgs[i].clone()))
            })
            .collect())
    }

    /// Tag ids for keywords, creating missing tags when `create`.
    /// APPEND stays within zimbraMailQuota, as LMTP delivery does.
    fn check_quota(&self, a: &Account, adding: u64) -> BResult<()> {
        match self.quota(a)? {
            Some(q) if q.used.saturating_add(adding) > q.limit => Err(BackendError::new(
                ErrorKind::OverQuota,
                format!(
                    "the account's quota of {} bytes would be exceeded ({} used, {adding} more)",
                    q.limit, q.used
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Adds one message; its item id and IMAP UID.
    fn add_one(
        &self,
        a: &Account,
        mailbox: u32,
        raw: &[u8],
        flag_bits: u32,
        keywords: &[String],
        internal_date_ms: Option<i64>,
    ) -> BResult<(ItemId, u32)> {
        let tags = self.tag_ids(a, keywords, true)?;
        let m = Self::mbox(a);
        let id = self
            .service
            .store()
            .add_message(
                m,
                raw,
                &DeliverOptions {
                    folder_id: mailbox,
                    flags: flag_bits & flags::ALL,
                    tags,
                    received: internal_date_ms.map(UtcMillis),
                },
            )
            .map_err(err)?;
        let item = self
            .service
            .store()
            .mailbox(m)
            .item(id)
            .map_err(err)?
            .ok_or_else(|| BackendError::new(ErrorKind::Internal, "appended message vanished"))?;
        Ok((id, item.imap_uid))
    }

    fn tag_ids(&self, a: &Account, keywords: &[String], create: bool) -> BResult<Vec<u32>> {
        let m = Self::mbox(a);
        let store = self.service.store();
        let mut tags = store.mailbox(m).tags().map_err(err)?;
        let mut out = Vec::new();
        for k in keywords {
            match tags.iter().find(|t| t.name.eq_ignore_ascii_case(k)) {
                Some(t) => out.push(t.id),
                None if create => {
                    let id = store.create_tag(m, k, 0).map_err(err)?;
                    tags = store.mailbox(m).tags().map_err(err)?;
                    out.push(id);
                }
                None => {}
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

fn err(e: StoreError) -> BackendError {
    let kind = match &e {
        StoreError::NotFound(_) | StoreError::NoMailbox(_) => ErrorKind::NotFound,
        StoreError::Exists(_) => ErrorKind::Exists,
        StoreError::Invalid(_) | StoreError::ReadOnly => ErrorKind::Cannot,
        _ => ErrorKind::Internal,
    };
    if kind == ErrorKind::Internal {
        tracing::error!("imap: store error: {e}");
    }
    BackendError::new(kind, e.to_string())
}

fn cannot(msg: impl Into<String>) -> BackendError {
    BackendError::new(ErrorKind::Cannot, msg)
}

impl Backend for ImapBackend {
    fn login(&self, user: &str, password: &str) -> LoginResult {
        let (result, why) = self.check_login(user, password);
        // The name as typed, bounded: it comes from the client.
        let account: String = user.chars().take(256).collect();
        let name = match &result {
            LoginResult::Ok(a) => a.name.as_str(),
            _ => account.as_str(),
        };
        crate::account_log::debug(
            name,
            crate::account_log::Category::Imap,
            format_args!("imap login: {}", why.unwrap_or("ok")),
        );
        match why {
            None => {
                crate::metrics::IMAP_LOGINS_OK.fetch_add(1, Ordering::Relaxed);
                tracing::info!(target: "audit", account = %account, result = "ok", "imap login")
            }
            Some(why) => {
                crate::metrics::IMAP_LOGINS_FAILED.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                target: "audit",
                account = %account,
                result = %format!("failed: {why}"),
                "imap login"
                )
            }
        }
        result
    }

    fn vanished(&self, a: &Account, mailbox: u32, since: u64) -> BResult<Vec<u32>> {
        self.folder(a, mailbox)?;
        // Tombstones are kept for the mailbox's life: the answer is exact.
        let gone = self
            .service
            .store()
            .mailbox(Self::mbox(a))
            .tombstones_since(since)
            .map_err(err)?;
        let mut uids: Vec<u32> = gone
            .iter()
            .filter(|t| t.folder_id == mailbox && t.imap_uid != 0)
            .map(|t| t.imap_uid)
            .collect();
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// The mailbox's channel of the store's change feed: every change goes
    /// through the apply path, which feeds it, so IDLE needs no poll.
    fn watch_changes(&self, a: &Account) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.service.changes().subscribe(Self::mbox(a)))
    }

    fn change_marker(&self, a: &Account) -> BResult<u64> {
        self.service
            .store()
            .mailbox(Self::mbox(a))
            .change_number()
            .map_err(err)
    }

    fn mailboxes(&self, a: &Account) -> BResult<Vec<MailboxEntry>> {
        let all = self.message_folders(a)?;
        let mut out: Vec<MailboxEntry> = all
            .iter()
            .map(|f| MailboxEntry {
                id: f.id,
                name: imap_name(&f.path),
                special_use: match f.id {
                    folders::SENT => Some(SpecialUse::Sent),
                    folders::DRAFTS => Some(SpecialUse::Drafts),
                    folders::JUNK => Some(SpecialUse::Junk),
                    folders::TRASH => Some(SpecialUse::Trash),
                    _ => None,
                },
                has_children: all.iter().any(|c| c.parent_id == f.id),
            })
            .collect();
        out.sort_by(|x, y| x.name.cmp(&y.name));
        Ok(out)
    }

    /// NOTIFY's counters from the folder rows (one query, no message list).
    fn mailbox_states(&self, a: &Account) -> BResult<Vec<MailboxState>> {
        Ok(self
            .message_folders(a)?
            .into_iter()
            .map(|f| MailboxState {
                id: f.id,
                name: imap_name(&f.path),
                uid_validity: f.uid_validity,
                uid_next: f.uid_next,
                messages: f.item_count,
                unseen: f.unread_count,
                // Every change to a folder's messages raises its modseq.
                highest_modseq: f.modseq,
            })
            .collect())
    }

    fn snapshot(&self, a: &Account, mailbox: u32) -> BResult<Snapshot> {
        let f = self.folder(a, mailbox)?;
        let mb = self.service.store().mailbox(Self::mbox(a));
        let tags = mb.tags().map_err(err)?;
        let items = mb.messages_by_uid(mailbox).map_err(err)?;
        let name_of = |id: &u32| tags.iter().find(|t| t.id == *id).map(|t| t.name.clone());
        let messages: Vec<MessageMeta> = items
            .iter()
            .map(|i| MessageMeta {
                uid: i.imap_uid,
                flags: i.flags & flags::ALL,
                keywords: i.tags.iter().filter_map(name_of).collect(),
                modseq: i.change.max(1),
                size: i.size,
                internal_date_ms: i.received_ms,
            })
            .collect();
        let highest = messages
            .iter()
            .map(|m| m.modseq)
            .max()
            .unwrap_or(0)
            .max(f.modseq);
        Ok(Snapshot {
            uid_validity: f.uid_validity,
            uid_next: f.uid_next,
            highest_modseq: highest,
            messages,
        })
    }

    fn message(&self, a: &Account, mailbox: u32, uid: u32) -> BResult<Vec<u8>> {
        let m = Self::mbox(a);
        let item = self
            .service
            .store()
            .mailbox(m)
            .message_by_uid(mailbox, uid)
            .map_err(err)?
            .ok_or_else(|| BackendError::new(ErrorKind::NotFound, "the message was expunged"))?;
        self.service.store().read_blob(m, &item).map_err(err)
    }

    fn messages(
        &self,
        a: &Account,
        mailbox: u32,
        uids: &[u32],
        header_only: bool,
    ) -> BResult<Vec<(u32, Vec<u8>)>> {
        let (Some(&first), Some(&last)) = (uids.iter().min(), uids.iter().max()) else {
            return Ok(Vec::new());
        };
        let m = Self::mbox(a);
        let store = self.service.store();
        // One query for the batch instead of one per message.
        let items = store
            .mailbox(m)
            .messages_by_uid_range(mailbox, first, last)
            .map_err(err)?;
        let mut out = Vec::with_capacity(uids.len());
        for uid in uids {
            let Ok(k) = items.binary_search_by_key(uid, |i| i.imap_uid) else {
                continue;
            };
            let raw = if header_only {
                store.read_blob_header(m, &items[k])
            } else {
                store.read_blob(m, &items[k])
            };
            out.push((*uid, raw.map_err(err)?));
        }
        Ok(out)
    }

    fn quota(&self, a: &Account) -> BResult<Option<Quota>> {
        let m = Self::mbox(a);
        let limit = {
            let d = self.service.directory();
            match d.account_by_mailbox_id(m) {
                Ok(Some(acct)) => d
                    .effective_quota(&acct)
                    .map_err(|e| BackendError::new(ErrorKind::Internal, format!("quota: {e}")))?,
                _ => 0,
            }
        };
        if limit == 0 {
            return Ok(None);
        }
        let info = self.service.store().mailbox(m).info().map_err(err)?;
        Ok(Some(Quota {
            used: info.map_or(0, |i| i.size_used),
            limit,
        }))
    }

    fn subscriptions(&self, a: &Account) -> BResult<Vec<String>> {
        self.service
            .store()
            .mailbox(Self::mbox(a))
            .subscriptions()
            .map_err(err)
    }

    fn subscribe(&self, a: &Account, name: &str, on: bool) -> BResult<()> {
        self.service
            .store()
            .set_subscription(Self::mbox(a), name, on)
            .map_err(err)
    }

    fn create(&self, a: &Account, name: &str) -> BResult<()> {
        if self.folder_by_name(a, name)?.is_some() {
            return Err(BackendError::new(
                ErrorKind::Exists,
                format!("mailbox {name:?} already exists"),
            ));
        }
        let path = store_path(name);
        // A folder of another kind (Contacts, Calendar) on the way is not a mailbox parent.
        if let Some(f) = self
            .service
            .store()
            .mailbox(Self::mbox(a))
            .folder_by_path(&path)
            .map_err(err)?
        {
            return Err(cannot(format!("{} is a {} folder", f.path, f.view)));
        }
        self.service
            .store()
            .create_folder_path(Self::mbox(a), &path, "message")
            .map(|_| ())
            .map_err(err)
    }

    fn delete(&self, a: &Account, name: &str) -> BResult<()> {
        let f = self.folder_by_name(a, name)?.ok_or_else(|| {
            BackendError::new(ErrorKind::NotFound, format!("no mailbox {name:?}"))
        })?;
        if f.id < folders::FIRST_USER_ID {
            return Err(cannot(format!(
                "{name} is a system mailbox and cannot be deleted"
            )));
        }
        let all = self
            .service
            .store()
            .mailbox(Self::mbox(a))
            .folders()
            .map_err(err)?;
        if all.iter().any(|c| c.parent_id == f.id) {
            return Err(cannot(format!("{name} has subfolders; delete them first")));
        }
        self.service
            .store()
            .delete_folder(Self::mbox(a), f.id)
            .map_err(err)
    }

    fn rename(&self, a: &Account, from: &str, to: &str) -> BResult<()> {
        let f = self.folder_by_name(a, from)?.ok_or_else(|| {
            BackendError::new(ErrorKind::NotFound, format!("no mailbox {from:?}"))
        })?;
        if f.id < folders::FIRST_USER_ID {
            return Err(cannot(format!(
                "{from} is a system mailbox and cannot be renamed"
            )));
        }
        if self.folder_by_name(a, to)?.is_some() {
            return Err(BackendError::new(
                ErrorKind::Exists,
                format!("mailbox {to:?} already exists"),
            ));
        }
        let path = store_path(to);
        let (parent_path, leaf) = path.rsplit_once('/').unwrap_or(("", &path));
        let m = Self::mbox(a);
        let parent = if parent_path.is_empty() {
            folders::ROOT
        } else {
            self.service
                .store()
                .create_folder_path(m, parent_path, "message")
                .map_err(err)?
        };
        self.service
            .store()
            .rename_folder(m, f.id, leaf, parent)
            .map_err(err)
    }

    fn append(
        &self,
        a: &Account,
        mailbox: u32,
        raw: &[u8],
        flag_bits: u32,
        keywords: &[String],
        internal_date_ms: Option<i64>,
    ) -> BResult<(u32, u32)> {
        let f = self.folder(a, mailbox)?;
        self.check_quota(a, raw.len() as u64)?;
        let (_, uid) = self.add_one(a, mailbox, raw, flag_bits, keywords, internal_date_ms)?;
        Ok((f.uid_validity, uid))
    }

    fn append_many(
        &self,
        a: &Account,
        mailbox: u32,
        messages: &[NewMessage],
    ) -> BResult<(u32, Vec<u32>)> {
        let f = self.folder(a, mailbox)?;
        self.check_quota(a, messages.iter().map(|m| m.raw.len() as u64).sum())?;
        let mut added = Vec::with_capacity(messages.len());
        for msg in messages {
            match self.add_one(
                a,
                mailbox,
                &msg.raw,
                msg.flags,
                &msg.keywords,
                msg.internal_date_ms,
            ) {
                Ok(x) => added.push(x),
                Err(e) => {
                    // All or none: take back what this command added.
                    let ids: Vec<ItemId> = added.iter().map(|(id, _)| *id).collect();
                    if let Err(undo) = self.service.store().delete_items(Self::mbox(a), &ids) {
                        tracing::error!(
                            "APPEND of {} messages failed ({e}) and {} added ones could not be removed: {undo}",
                            messages.len(),
                            ids.len()
                        );
                    }
                    return Err(e);
                }
            }
        }
        Ok((
            f.uid_validity,
            added.into_iter().map(|(_, uid)| uid).collect(),
        ))
    }

    fn store(
        &self,
        a: &Account,
        mailbox: u32,
        uids: &[u32],
        op: FlagOp,
        flag_bits: u32,
        keywords: &[String],
    ) -> BResult<()> {
        // A message another session expunges between the read of the items and
        // the write is left out, as Dovecot does: this session learns of it by
        // its EXPUNGE. Each write is idempotent, so the retry, with the messages
        // that remain, redoes nothing wrong.
        let mut tries = 0;
        loop {
            match self.store_once(a, mailbox, uids, op, flag_bits, keywords)? {
                Err(StoreError::NotFound(_)) if tries < 3 => tries += 1,
                r => return r.map_err(err),
            }
        }
    }

    fn copy(&self, a: &Account, from: u32, uids: &[u32], to: u32) -> BResult<CopyResult> {
        let dest = self.folder(a, to)?;
        let m = Self::mbox(a);
        let items = self.items_of(a, from, uids)?;
        let ids: Vec<ItemId> = items.iter().map(|(_, i)| ItemId(i.id)).collect();
        let new_ids = self.service.store().copy_items(m, &ids, to).map_err(err)?;
        let mut pairs = Vec::new();
        for ((src_uid, _), new) in items.iter().zip(new_ids) {
            let item = self.service.store().mailbox(m).item(new).map_err(err)?;
            if let Some(i) = item {
                pairs.push((*src_uid, i.imap_uid));
            }
        }
        Ok(CopyResult {
            uid_validity: dest.uid_validity,
            pairs,
        })
    }

    fn move_messages(&self, a: &Account, from: u32, uids: &[u32], to: u32) -> BResult<CopyResult> {
        let dest = self.folder(a, to)?;
        let items = self.items_of(a, from, uids)?;
        let ids: Vec<ItemId> = items.iter().map(|(_, i)| ItemId(i.id)).collect();
        let new_uids = self
            .service
            .store()
            .move_items_renumbering(Self::mbox(a), &ids, to)
            .map_err(err)?;
        Ok(CopyResult {
            uid_validity: dest.uid_validity,
            pairs: items.iter().map(|(u, _)| *u).zip(new_uids).collect(),
        })
    }

    fn expunge(&self, a: &Account, mailbox: u32, only: Option<&[u32]>) -> BResult<Vec<u32>> {
        self.service
            .store()
            .purge_imap_deleted(Self::mbox(a), mailbox, only)
            .map_err(err)
    }

    fn search(
        &self,
        a: &Account,
        mailbox: u32,
        criteria: &[mv_imap::search::Criterion],
    ) -> BResult<Vec<u32>> {
        use mv_imap::search::Criterion;
        use mv_index::TextField;
        let snap = self.snapshot(a, mailbox)?;
        let m = Self::mbox(a);
        let store = self.service.store();
        // Item id -> UID of the folder, built on the first text key.
        let mut uid_of: Option<std::collections::HashMap<u32, u32>> = None;
        // Text keys go through the search index (exact: index hits are verified,
        // messages the index has not seen yet are checked directly, a damaged index
        // is rebuilt or bypassed); everything else is evaluated on the snapshot.
        let resolved = mv_imap::search::resolve::<BackendError>(criteria, &mut |c| {
            let (field, needle) = match c {
                Criterion::Text(s) => (TextField::Text, s),
                Criterion::Body(s) => (TextField::Body, s),
                // An empty value means "has the field", which the index does not
                // record: such keys are scanned.
                Criterion::Header(name, v) if !v.is_empty() => {
                    let f = match name.to_ascii_lowercase().as_str() {
                        "subject" => TextField::Subject,
                        "from" => TextField::From,
                        "to" => TextField::To,
                        "cc" => TextField::Cc,
                        _ => return Ok(None),
                    };
                    (f, v)
                }
                _ => return Ok(None),
            };
            let ids = self
                .service
                .indexes()
                .search_text(store, m, Some(mailbox), field, needle)
                .map_err(|e| {
                    tracing::error!("imap: search in mailbox {m}: {e}");
                    BackendError::new(ErrorKind::Internal, format!("search failed: {e}"))
                })?;
            if uid_of.is_none() {
                let items = store.mailbox(m).messages_by_uid(mailbox).map_err(err)?;
                uid_of = Some(items.iter().map(|i| (i.id, i.imap_uid)).collect());
            }
            let map = uid_of.as_ref().expect("filled above");
            // A message delivered after the map was built is not in the snapshot
            // either, so leaving it out changes nothing.
            Ok(Some(
                ids.iter()
                    .filter_map(|id| map.get(&id.0).copied())
                    .collect(),
            ))
        })?;
        Ok(mv_imap::search::scan(&resolved, &snap.messages, |uid| {
            self.message(a, mailbox, uid).ok()
        }))
    }
}
