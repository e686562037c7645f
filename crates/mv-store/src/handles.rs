//! The bound on open mailbox databases: a least-recently-used set shared by
//! every user of the store (LMTP, IMAP, the indexer, backups, replay).
//!
//! Each open mailbox costs its SQLite connection (page cache, prepared
//! statements) and three descriptors (database, `-wal`, `-shm`). A server with
//! 10,000 mostly idle accounts must not hold them all: past the capacity, the
//! least recently used idle connections are closed. A handle ([`Mailbox`]) stays
//! in the store's map — a few hundred bytes — and reopens its database on next
//! use.
//!
//! A connection is closed only when nobody holds its lock, it is pinned by no
//! one (an IMAP session pins its account's mailbox: [`MailboxPin`]) and it has
//! no transaction open (a replay's batch). Closing goes back to the usual
//! `synchronous` level first, so SQLite's checkpoint at close syncs the
//! write-ahead log before it copies pages into the database file and syncs that
//! file before it deletes the log: nothing a later crash could need is lost.

//!
//! Closing a connection costs two fsyncs (the checkpoint at close) and the
//! removal of its side files. So that a delivery to a mailbox not open does
//! not wait for another mailbox's close, a closer thread keeps the open
//! connections a little under the capacity ([`OpenHandles::low_water`]) in the
//! background; a use that finds the cache over its capacity (the closer fell
//! behind) still closes a victim itself, so the bound holds at every moment.

use crate::mailbox::Mailbox;
use mv_types::MailboxId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;

/// Mailbox databases kept open at once unless the local config says otherwise
/// (`mailbox_open_handles`): about 1,000 descriptors and a few hundred MB at
/// most, for a server of 2 cores and a few GB.
pub const DEFAULT_OPEN_MAILBOXES: usize = 256;

pub(crate) type MailboxMap = Mutex<HashMap<MailboxId, Arc<Mailbox>>>;

pub(crate) struct OpenHandles {
    capacity: usize,
    /// What the closer thread brings the open connections down to: an eighth
    /// of the capacity under it, so that uses of mailboxes not open find room
    /// without closing one themselves. Equal to the capacity (no closer) when
    /// the capacity is under 8.
    low_water: usize,
    /// Wakes the closer thread (see [`OpenHandles::start_closer`]); taken by
    /// [`OpenHandles::stop_closer`], which ends the thread.
    closer: Mutex<Option<(SyncSender<()>, JoinHandle<()>)>>,
    lru: Mutex<Lru>,
    /// The store's map of handles, to find a victim by id (weak: the handles
    /// point back here).
    mailboxes: Weak<MailboxMap>,
    evictions: AtomicU64,
}

#[derive(Default)]
struct Lru {
    tick: u64,
    /// Mailboxes with an open connection, by last use.
    open: HashMap<MailboxId, u64>,
}

impl OpenHandles {
    pub(crate) fn new(capacity: usize, mailboxes: Weak<MailboxMap>) -> OpenHandles {
        let capacity = capacity.max(1);
        OpenHandles {
            capacity,
            low_water: capacity - capacity / 8,
            closer: Mutex::new(None),
            lru: Mutex::new(Lru::default()),
            mailboxes,
            evictions: AtomicU64::new(0),
        }
    }

    fn lru(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.lru.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Connections open now.
    pub(crate) fn open_count(&self) -> usize {
        self.lru().open.len()
    }

    /// Connections closed to stay within the capacity since the store opened.
    pub(crate) fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Starts the thread that closes idle connections past the low-water
    /// mark in the background. It holds no strong reference to the handles:
    /// it ends at [`OpenHandles::stop_closer`] (the store's drop) or when
    /// they are gone.
    pub(crate) fn start_closer(self: &Arc<Self>) {
        if self.low_water == self.capacity {
            return;
        }
        let (tx, rx) = sync_channel(1);
        let weak = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("mailbox-closer".into())
            .spawn(move || close_in_background(weak, rx));
        match spawned {
            Ok(thread) => *self.closer() = Some((tx, thread)),
            // Without it, uses past the capacity close victims themselves.
            Err(e) => tracing::warn!("no mailbox closer thread: {e}"),
        }
    }

    fn closer(&self) -> std::sync::MutexGuard<'_, Option<(SyncSender<()>, JoinHandle<()>)>> {
        self.closer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends the closer thread and waits for it: a store that closes has no
    /// connection closed behind its back once this returns.
    pub(crate) fn stop_closer(&self) {
        let closer = self.closer().take();
        if let Some((tx, thread)) = closer {
            drop(tx);
            let _ = thread.join();
        }
    }

    /// A mailbox with an open connection was locked: records the use, and
    /// makes room. Past the capacity, closes victims now (the caller waits);
    /// past the low-water mark, wakes the closer thread. `id`'s lock is held
    /// by the caller (never a victim).
    pub(crate) fn used(&self, id: MailboxId) {
        let open = {
            let mut lru = self.lru();
            lru.tick += 1;
            let tick = lru.tick;
            lru.open.insert(id, tick);
            lru.open.len()
        };
        if open > self.capacity {
            self.evict(Some(id), self.capacity);
        } else if open > self.low_water
            && let Some((tx, _)) = self.closer().as_ref()
        {
            // Full: a wake-up is pending already.
            let _ = tx.try_send(());
        }
    }

    /// A mailbox's connection was closed.
    pub(crate) fn closed(&self, id: MailboxId) {
        self.lru().open.remove(&id);
    }

    /// Closes the least recently used idle connections until no more than
    /// `target` are open. `current` is the mailbox whose lock the caller holds
    /// (never a victim). Victims are only tried (`try_lock`): one in use stays
    /// open, so this never waits for another mailbox's lock.
    fn evict(&self, current: Option<MailboxId>, target: usize) {
        let Some(map) = self.mailboxes.upgrade() else {
            return;
        };
        let (mut excess, candidates) = {
            let lru = self.lru();
            let excess = lru.open.len().saturating_sub(target);
            if excess == 0 {
                return;
            }
            let mut by_age: Vec<(u64, MailboxId)> = lru
                .open
                .iter()
                .filter(|(id, _)| Some(**id) != current)
                .map(|(id, tick)| (*tick, *id))
                .collect();
            by_age.sort_unstable();
            (excess, by_age)
        };
        for (_, id) in candidates {
            if excess == 0 {
                break;
            }
            let mbox = map
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&id)
                .cloned();
            let closed = match mbox {
                Some(m) => m.close_idle(),
                None => {
                    self.closed(id);
                    true
                }
            };
            if closed {
                excess -= 1;
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The closer thread: on each wake-up, closes idle connections down to the
/// low-water mark; ends when the handles are gone.
fn close_in_background(handles: Weak<OpenHandles>, wake: Receiver<()>) {
    while wake.recv().is_ok() {
        let Some(h) = handles.upgrade() else {
            return;
        };
        h.evict(None, h.low_water);
    }
}

/// Keeps a mailbox's database open while it lives (an IMAP session holds one
/// for its account): the handle cache never closes a pinned mailbox.
pub struct MailboxPin {
    mailbox: Arc<Mailbox>,
}

impl MailboxPin {
    pub(crate) fn new(mailbox: Arc<Mailbox>) -> MailboxPin {
        mailbox.pins.fetch_add(1, Ordering::AcqRel);
        MailboxPin { mailbox }
    }

    pub fn mailbox(&self) -> &Arc<Mailbox> {
        &self.mailbox
    }
}

impl Drop for MailboxPin {
    fn drop(&mut self) {
        self.mailbox.pins.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for MailboxPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailboxPin")
            .field("mailbox", &self.mailbox.id())
            .finish()
    }
}
