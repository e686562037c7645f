//! Change notification per mailbox: the store's change hook (called by the
//! apply path after each record, and when a restore swaps a database in) bumps
//! a counter in a `tokio::sync::watch` channel of that mailbox, and whoever
//! waits on it (an IMAP session in IDLE) wakes and looks at the mailbox once.
//! Nothing is read while nothing changes: IDLE does not poll.
//!
//! A channel exists only while someone listens: the hook finds no channel for
//! a mailbox no one watches (one map lookup), and channels left without
//! receivers are dropped when the next subscription is made.

use mv_types::MailboxId;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::watch;

/// The channels of the mailboxes someone watches.
#[derive(Default)]
pub struct ChangeFeed {
    channels: Mutex<HashMap<MailboxId, watch::Sender<u64>>>,
}

impl ChangeFeed {
    /// A mailbox changed: every receiver of its channel wakes.
    pub fn notify(&self, id: MailboxId) {
        let channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = channels.get(&id) {
            // Works with no receiver left too (the entry goes at the next subscribe).
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// A receiver that sees the mailbox's changes from now on (take it before
    /// looking at the mailbox: a change between the two then still wakes it).
    pub fn subscribe(&self, id: MailboxId) -> watch::Receiver<u64> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.retain(|_, tx| tx.receiver_count() > 0);
        channels
            .entry(id)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Mailboxes with a channel (for tests: channels do not pile up).
    pub fn watched(&self) -> usize {
        self.channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_wakes_the_receivers_of_its_mailbox_only() {
        let feed = ChangeFeed::default();
        let mut a = feed.subscribe(MailboxId(1));
        let b = feed.subscribe(MailboxId(2));
        feed.notify(MailboxId(1));
        assert!(a.has_changed().unwrap());
        assert!(!b.has_changed().unwrap());
        a.mark_unchanged();
        // A mailbox no one watches costs a lookup and nothing else.
        feed.notify(MailboxId(3));
        assert_eq!(feed.watched(), 2);
        drop(b);
        let _c = feed.subscribe(MailboxId(1));
        assert_eq!(feed.watched(), 1, "a channel without receivers is dropped");
    }
}
