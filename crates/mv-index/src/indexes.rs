//! The indexes of a home: one per mailbox, the searches that go through them, and
//! the deferred background indexer.

use crate::fields::TextKey;
use crate::mailbox_index::MailboxIndex;
use crate::query::{candidates, exact_token, flagged, text_query};
use crate::{IndexError, ReindexStatus};
use mv_home::Home;
use mv_store::search::Candidates;
use mv_store::{Item, Pending, Store, StoreError};
use mv_types::{ItemId, MailboxId};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The field of an IMAP `SEARCH` text key (RFC 3501 6.4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextField {
    /// `TEXT`: the header or the body.
    Text,
    /// `BODY`: the body (decoded text parts, HTML without tags).
    Body,
    Subject,
    From,
    To,
    Cc,
}

pub struct Indexes {
    home: Home,
    open: Mutex<HashMap<MailboxId, Arc<MailboxIndex>>>,
    wake: (Mutex<bool>, Condvar),
    /// Mailboxes the indexer found behind their mailbox: changes not yet
    /// indexed, and since when it has seen them behind.
    behind: Mutex<HashMap<MailboxId, (u64, Instant)>>,
}

/// How far the search indexes trail the mailboxes, as the background indexer
/// last saw it (`/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexLag {
    /// Mailboxes with changes their index does not hold yet.
    pub mailboxes: u64,
    /// Those changes, summed over the mailboxes (change numbers behind).
    pub changes: u64,
    /// How long the longest-waiting of them has been behind.
    pub oldest: Duration,
}

impl Indexes {
    pub fn new(home: &Home) -> Indexes {
        Indexes {
            home: home.clone(),
            open: Mutex::new(HashMap::new()),
            wake: (Mutex::new(false), Condvar::new()),
            behind: Mutex::new(HashMap::new()),
        }
    }

    /// Where a mailbox's index lives: `<home>/index/<mailbox id>/`.
    pub fn dir(home: &Home, mailbox: MailboxId) -> PathBuf {
        home.mailbox_index_dir(mailbox.0)
    }

    pub fn mailbox(&self, id: MailboxId) -> Arc<MailboxIndex> {
        let mut map = self.open.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id)
            .or_insert_with(|| Arc::new(MailboxIndex::new(id, Indexes::dir(&self.home, id))))
            .clone()
    }

    /// Brings a mailbox's index up to date.
    pub fn update(&self, store: &Store, id: MailboxId) -> Result<u64, IndexError> {
        self.mailbox(id).update(store)
    }

    /// Rebuilds a mailbox's index from scratch (`zmprov rim USER start`).
    pub fn rebuild(&self, store: &Store, id: MailboxId) -> Result<u64, IndexError> {
        self.mailbox(id).rebuild(store)
    }

    /// Progress of the current or latest run, with the change numbers of the index
    /// on disk and of the mailbox.
    pub fn status(&self, store: &Store, id: MailboxId) -> Result<ReindexStatus, StoreError> {
        let m = self.mailbox(id);
        let mut st = m.status();
        if st.state == crate::ReindexState::Idle {
            st.indexed_change = m.disk_change().unwrap_or(0);
        }
        st.mailbox_change = store
            .mailbox(id)
            .info()?
            .map(|i| i.applied_change)
            .unwrap_or(0);
        Ok(st)
    }

    /// `zmmailbox s`: the same messages as [`Store::search`], found through the
    /// index. If the index cannot be used at all, the answer comes from a scan
    /// (logged): search never fails because of derived data.
    pub fn search(
        &self,
        store: &Store,
        id: MailboxId,
        query: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let terms =
            mv_store::search::parse(query).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let f = crate::fields::Fields::new();
        let query = text_query(&f, &terms);
        let mailbox = store.mailbox(id);
        let mut text = |i: &Item| store.message_text(id, i);
        let Some(query) = query else {
            // Nothing textual: the store's own filters are all there is.
            return mailbox.search_with(&terms, None, &mut text);
        };
        match self.mailbox(id).candidates(store, query.as_ref()) {
            Ok((items, indexed_change)) => mailbox.search_with(
                &terms,
                Some(Candidates {
                    items: &items,
                    indexed_change,
                }),
                &mut text,
            ),
            Err(IndexError::Store(e)) => Err(e),
            Err(e) => {
                tracing::error!("mailbox {id}: search index unusable, scanning instead: {e}");
                mailbox.search_with(&terms, None, &mut text)
            }
        }
    }

    /// IMAP `SEARCH` text keys: ids of the messages (of `folder`, or all) whose
    /// `field` contains `needle`, case-insensitively (RFC 3501: substring match),
    /// ascending. Exact: index hits are verified against the message, except for
    /// a one-token needle, which the index answers exactly on its own.
    pub fn search_text(
        &self,
        store: &Store,
        id: MailboxId,
        folder: Option<u32>,
        field: TextField,
        needle: &str,
    ) -> Result<Vec<ItemId>, IndexError> {
        let needle = needle.to_lowercase();
        let keys: &[TextKey] = match field {
            TextField::Text => &[
                TextKey::Header,
                TextKey::Subject,
                TextKey::From,
                TextKey::To,
                TextKey::Cc,
                TextKey::Body,
            ],
            TextField::Body => &[TextKey::Body],
            TextField::Subject => &[TextKey::Subject],
            TextField::From => &[TextKey::From],
            TextField::To => &[TextKey::To],
            TextField::Cc => &[TextKey::Cc],
        };
        let f = crate::fields::Fields::new();
        let broad = candidates(&f, keys, &needle);
        // A one-token needle is answered by the index alone (see `exact_token`):
        // only flagged documents and messages newer than the index are read.
        let exact = exact_token(&f, keys, &needle);
        let flag = flagged(&f);
        let queries: Vec<&dyn tantivy::query::Query> = match &exact {
            Some(q) => vec![q.as_ref(), flag.as_ref()],
            None => vec![broad.as_ref()],
        };
        let (sets, indexed_change) = match self.mailbox(id).candidates_many(store, &queries) {
            Ok(r) => r,
            Err(IndexError::Store(e)) => return Err(e.into()),
            Err(e) => {
                tracing::error!("mailbox {id}: search index unusable, scanning instead: {e}");
                (Vec::new(), 0)
            }
        };
        let mut sets = sets.into_iter();
        let (hits, exact_flagged) = match (&exact, sets.next(), sets.next()) {
            (Some(_), Some(h), Some(fl)) => (h, Some(fl)),
            (_, h, _) => (h.unwrap_or_default(), None),
        };
        let items = store
            .mailbox(id)
            .items(folder, Some(mv_store::ItemKind::Message))?;
        let lower = |s: &str| s.to_lowercase().contains(&needle);
        let mut out = Vec::new();
        for i in items {
            let indexed = i.change <= indexed_change;
            if let Some(fl) = &exact_flagged
                && indexed
                && !fl.contains(&i.id)
            {
                if hits.contains(&i.id) {
                    out.push(ItemId(i.id));
                }
                continue;
            }
            // Else the index narrows; flagged documents (exact mode) and messages
            // newer than the index are always read.
            if exact_flagged.is_none() && indexed && !hits.contains(&i.id) {
                continue;
            }
            let found = match field {
                TextField::Subject => lower(&i.subject),
                TextField::From => lower(&i.sender),
                TextField::To => lower(&i.recipients),
                TextField::Cc => lower(&i.cc),
                TextField::Body => store.message_text(id, &i).body.contains(&needle),
                TextField::Text => {
                    lower(&i.subject)
                        || lower(&i.sender)
                        || lower(&i.recipients)
                        || lower(&i.cc)
                        || {
                            let t = store.message_text(id, &i);
                            t.header.contains(&needle) || t.body.contains(&needle)
                        }
                }
            };
            if found {
                out.push(ItemId(i.id));
            }
        }
        Ok(out)
    }

    /// Asks the background indexer to look for new changes now (cheap; callers on
    /// the delivery path only signal, they never index).
    pub fn wake(&self) {
        let (lock, cv) = &self.wake;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_one();
    }

    /// The deferred indexer: brings the index of every mailbox changed since the
    /// last round up to date (every mailbox the first time after a crash: see
    /// [`Store::take_pending`]), closes the indexes idle for a while, then waits
    /// for [`Indexes::wake`] or `interval`, until `stop` returns true. Failures
    /// are logged and retried on the next round; mail delivery never waits on
    /// this.
    pub fn run_background(&self, store: &Store, interval: Duration, stop: &dyn Fn() -> bool) {
        while !stop() {
            self.update_all_until(store, stop);
            self.close_idle(IDLE_CLOSE);
            let (lock, cv) = &self.wake;
            let mut woken = lock.lock().unwrap_or_else(|p| p.into_inner());
            if !*woken {
                woken = cv
                    .wait_timeout(woken, interval)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            *woken = false;
        }
    }

    /// One round of the background indexer over the mailboxes with changes
    /// pending.
    pub fn update_all(&self, store: &Store) {
        self.update_all_until(store, &|| false)
    }

    /// [`Indexes::update_all`] that stops between mailboxes and between batches
    /// once `stop` says so (see `MailboxIndex::update_until`). What it does not
    /// finish — stopped, or failed — goes back on the store's pending list.
    pub fn update_all_until(&self, store: &Store, stop: &dyn Fn() -> bool) {
        let ids = match store.take_pending() {
            Pending::Some(ids) => ids,
            Pending::All => match store.mailbox_ids() {
                Ok(ids) => ids,
                Err(e) => {
                    tracing::warn!("search indexer: cannot list mailboxes: {e}");
                    store.give_back_pending(Pending::All);
                    return;
                }
            },
        };
        let mut left = Vec::new();
        for (n, id) in ids.iter().enumerate() {
            if stop() {
                left.extend_from_slice(&ids[n..]);
                break;
            }
            match self.update_if_behind(store, *id, stop) {
                Ok(true) => {}
                Ok(false) => left.push(*id),
                Err(e) => {
                    tracing::warn!("search indexer: mailbox {id}: {e}");
                    left.push(*id);
                }
            }
        }
        // Always: the round is over, and the store keeps what it took for its
        // checkpoints until then.
        store.give_back_pending(Pending::Some(left));
    }

    /// Brings one mailbox's index up to date if it is behind, looking first
    /// without opening the mailbox or its index; an index the update had to open
    /// is closed again. A mailbox without messages and without an index gets
    /// none yet (a search or its first message makes it). Returns false when
    /// `stop` cut the update short.
    fn update_if_behind(
        &self,
        store: &Store,
        id: MailboxId,
        stop: &dyn Fn() -> bool,
    ) -> Result<bool, IndexError> {
        let info = match store.mailbox(id).peek_info()? {
            Some(i) if !i.deleted => i,
            _ => {
                self.note_lag(id, 0);
                return Ok(true);
            }
        };
        let dir = Indexes::dir(&self.home, id);
        let on_disk = crate::mailbox_index::disk_change(&dir, id);
        match on_disk {
            Some(c) if c == info.applied_change => {
                self.note_lag(id, 0);
                return Ok(true);
            }
            None if info.message_count == 0 && !dir.exists() => {
                self.note_lag(id, 0);
                return Ok(true);
            }
            _ => {}
        }
        self.note_lag(id, info.applied_change.saturating_sub(on_disk.unwrap_or(0)));
        let index = self.mailbox(id);
        let was_open = index.is_open();
        let now = index.update_until(store, stop)?;
        self.note_lag(id, info.applied_change.saturating_sub(now));
        if !was_open {
            index.close();
        }
        Ok(!stop())
    }

    /// Closes the indexes no search or update used for `idle` (each holds a
    /// reader and its mapped segments); they reopen on next use.
    pub fn close_idle(&self, idle: Duration) {
        let now = mv_types::UtcMillis::now().0.max(0) as u64;
        let limit = idle.as_millis() as u64;
        let open: Vec<Arc<MailboxIndex>> = self
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for index in open {
            if now.saturating_sub(index.last_used()) >= limit {
                index.close();
            }
        }
    }

    /// Records how many changes a mailbox's index trails by (0: none).
    fn note_lag(&self, id: MailboxId, changes: u64) {
        let mut behind = self.behind.lock().unwrap_or_else(|p| p.into_inner());
        if changes == 0 {
            behind.remove(&id);
        } else {
            behind
                .entry(id)
                .and_modify(|e| e.0 = changes)
                .or_insert((changes, Instant::now()));
        }
    }

    /// The indexes' lag as the background indexer last measured it.
    pub fn lag(&self) -> IndexLag {
        let behind = self.behind.lock().unwrap_or_else(|p| p.into_inner());
        IndexLag {
            mailboxes: behind.len() as u64,
            changes: behind.values().map(|(c, _)| c).sum(),
            oldest: behind
                .values()
                .map(|(_, since)| since.elapsed())
                .max()
                .unwrap_or_default(),
        }
    }

    /// How many indexes are open now.
    pub fn open_count(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|i| i.is_open())
            .count()
    }
}

/// An index no search or update used for this long is closed by the background
/// indexer.
const IDLE_CLOSE: Duration = Duration::from_secs(60);
