//! Parsed-message answers shared by every session of one server: the rendered
//! ENVELOPE, BODY and BODYSTRUCTURE of messages already fetched once.
//!
//! Clients ask for these on every (re)sync, and computing them means reading
//! and parsing the message; a second FETCH of the same message should cost no
//! more than a copy, as it does with Dovecot's cache file. A message's bytes
//! never change under its (mailbox, UIDVALIDITY, UID) — IMAP itself promises
//! that — so an entry never goes stale and needs no invalidation; the size is
//! part of the key as a second guard. The cache lives in memory only: the
//! server is one process, and an entry costs one parse to rebuild after a
//! restart. Its bytes are bounded; the oldest entries go first.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Which rendered answer an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rendered {
    Envelope,
    Body,
    BodyStructure,
    /// PREVIEW (RFC 8970).
    Preview,
}

/// One message of one mailbox, as IMAP names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageKey {
    pub account: u64,
    pub mailbox: u32,
    pub uid_validity: u32,
    pub uid: u32,
    pub size: u64,
}

/// What the cache is asked for: one answer of one message.
pub type CacheKey = (MessageKey, Rendered);

/// Bytes held by default: some 150,000 envelopes.
pub const DEFAULT_BUDGET: usize = 64 << 20;

/// Bookkeeping per entry besides its bytes (key, map and queue slots).
const ENTRY_OVERHEAD: usize = 96;

pub struct FetchCache {
    budget: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<CacheKey, Arc<[u8]>>,
    /// Insertion order, for eviction.
    order: VecDeque<CacheKey>,
    bytes: usize,
}

impl Default for FetchCache {
    fn default() -> Self {
        FetchCache::new(DEFAULT_BUDGET)
    }
}

impl FetchCache {
    pub fn new(budget: usize) -> FetchCache {
        FetchCache {
            budget,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Looks up several answers under one lock: `out[i]` for `keys[i]` (shared,
    /// not copied).
    pub fn get_many(&self, keys: &[CacheKey]) -> Vec<Option<Arc<[u8]>>> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter().map(|k| inner.map.get(k).cloned()).collect()
    }

    /// Stores answers, evicting the oldest entries beyond the budget. An answer
    /// larger than the whole budget is not kept.
    pub fn put_many(&self, entries: Vec<(CacheKey, Arc<[u8]>)>) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for (key, value) in entries {
            let cost = value.len() + ENTRY_OVERHEAD;
            if cost > self.budget {
                continue;
            }
            match inner.map.insert(key, value) {
                Some(old) => inner.bytes -= old.len() + ENTRY_OVERHEAD,
                None => inner.order.push_back(key),
            }
            inner.bytes += cost;
            while inner.bytes > self.budget {
                let Some(oldest) = inner.order.pop_front() else {
                    break;
                };
                if let Some(v) = inner.map.remove(&oldest) {
                    inner.bytes -= v.len() + ENTRY_OVERHEAD;
                }
            }
        }
    }

    /// Bytes held, bookkeeping included.
    pub fn bytes(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(uid: u32) -> CacheKey {
        (
            MessageKey {
                account: 1,
                mailbox: 2,
                uid_validity: 3,
                uid,
                size: 100,
            },
            Rendered::Envelope,
        )
    }

    #[test]
    fn answers_what_was_stored_and_misses_other_keys() {
        let c = FetchCache::default();
        c.put_many(vec![(key(1), b"(NIL)".to_vec().into())]);
        let got = c.get_many(&[key(1), key(2)]);
        assert_eq!(got[0].as_deref(), Some(&b"(NIL)"[..]));
        assert!(got[1].is_none());
        let mut other_size = key(1);
        other_size.0.size = 101;
        assert!(c.get_many(&[other_size])[0].is_none());
        let mut other_kind = key(1);
        other_kind.1 = Rendered::BodyStructure;
        assert!(c.get_many(&[other_kind])[0].is_none());
    }

    #[test]
    fn stays_within_its_budget_dropping_the_oldest() {
        let budget = 10 * (ENTRY_OVERHEAD + 100);
        let c = FetchCache::new(budget);
        for uid in 0..50 {
            c.put_many(vec![(key(uid), vec![b'x'; 100].into())]);
            assert!(c.bytes() <= budget);
        }
        let got = c.get_many(&[key(0), key(39), key(40), key(49)]);
        assert!(got[0].is_none() && got[1].is_none());
        assert!(got[2].is_some() && got[3].is_some());
        // Replacing an entry does not count it twice.
        c.put_many(vec![(key(49), vec![b'y'; 100].into())]);
        assert_eq!(c.bytes(), budget);
        // Too large for the whole cache: not kept, nothing else dropped.
        c.put_many(vec![(key(99), vec![b'z'; budget].into())]);
        assert!(c.get_many(&[key(99)])[0].is_none());
        assert!(c.get_many(&[key(40)])[0].is_some());
    }
}
