//! IMAP logins verified recently, so that a client that logs in again and again
//! (imaptest's stress clients, phones reconnecting, mail clients opening one
//! connection per folder) does not pay an Argon2 check each time.
//!
//! An entry is a keyed BLAKE3 digest of (account id, password) under a key drawn
//! at startup and never stored, so the table holds nothing a password could be
//! recovered or tested from without that key; it maps to the stored hash the
//! password was checked against, so a password change (a new stored hash)
//! makes the entry useless at once. Entries live [`TTL`]; the table is bounded.
//! Failed logins are never cached: they stay slow, and are throttled.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a verified login is taken on trust.
pub const TTL: Duration = Duration::from_secs(300);
/// Entries kept at most (about 100 bytes each).
const MAX_ENTRIES: usize = 10_000;

pub struct LoginCache {
    /// None when no random key could be had: nothing is cached then.
    key: Option<[u8; 32]>,
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

struct Entry {
    at: Instant,
    stored_hash: String,
}

impl Default for LoginCache {
    fn default() -> Self {
        let mut key = [0u8; 32];
        let key = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut key))
            .map(|()| key)
            .map_err(|e| tracing::warn!("no random key for the IMAP login cache: {e}"))
            .ok();
        LoginCache {
            key,
            entries: Mutex::default(),
        }
    }
}

impl LoginCache {
    fn digest(&self, account_id: &str, password: &str) -> Option<[u8; 32]> {
        let mut h = blake3::Hasher::new_keyed(self.key.as_ref()?);
        // Length-prefixed: no (id, password) pair reads as another.
        h.update(&(account_id.len() as u64).to_le_bytes());
        h.update(account_id.as_bytes());
        h.update(password.as_bytes());
        Some(*h.finalize().as_bytes())
    }

    /// Whether `password` was verified against `stored_hash` for the account
    /// within [`TTL`].
    pub fn verified(&self, account_id: &str, stored_hash: &str, password: &str) -> bool {
        let Some(d) = self.digest(account_id, password) else {
            return false;
        };
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(&d)
            .is_some_and(|e| e.at.elapsed() < TTL && e.stored_hash == stored_hash)
    }

    /// Remembers a login whose password Argon2 just accepted.
    pub fn remember(&self, account_id: &str, stored_hash: &str, password: &str) {
        let Some(d) = self.digest(account_id, password) else {
            return;
        };
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| e.at.elapsed() < TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            d,
            Entry {
                at: Instant::now(),
                stored_hash: stored_hash.to_string(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_password_and_hash_are_trusted() {
        let c = LoginCache::default();
        assert!(!c.verified("a1", "h1", "secret"));
        c.remember("a1", "h1", "secret");
        assert!(c.verified("a1", "h1", "secret"));
        assert!(!c.verified("a1", "h1", "Secret"));
        assert!(!c.verified("a2", "h1", "secret"));
        // A new stored hash (the password was changed): the entry is no use.
        assert!(!c.verified("a1", "h2", "secret"));
        // No (id, password) split reads as another.
        c.remember("a", "h", "1secret");
        assert!(!c.verified("a1", "h", "secret"));
    }

    #[test]
    fn bounded() {
        let c = LoginCache::default();
        for i in 0..MAX_ENTRIES + 10 {
            c.remember(&format!("a{i}"), "h", "p");
        }
        assert!(c.entries.lock().unwrap().len() <= MAX_ENTRIES);
        assert!(c.verified(&format!("a{}", MAX_ENTRIES + 9), "h", "p"));
    }
}
