//! State the server's sessions share: the parsed-message cache, which messages
//! some session has already seen (`\Recent`), and login failure counts (the
//! login throttle). Memory only: a restart forgets it, which costs a re-parse,
//! makes the messages of a mailbox recent once more, and forgives failures.

use crate::cache::FetchCache;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Shared {
    pub cache: FetchCache,
    /// (account, mailbox, UIDVALIDITY) → the highest UID some session has been
    /// told about as recent.
    recent: Mutex<HashMap<(u64, u32, u32), u32>>,
    pub throttle: Throttle,
}

impl Shared {
    pub fn new(throttle: ThrottleConfig) -> Shared {
        Shared {
            throttle: Throttle::new(throttle),
            ..Default::default()
        }
    }

    /// Claims the messages up to `max_uid` for the calling session: returns the
    /// highest UID claimed before (its messages above that are recent to it,
    /// RFC 3501 §2.3.2: recent in exactly one session).
    pub fn claim_recent(&self, key: (u64, u32, u32), max_uid: u32) -> u32 {
        let mut m = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: forgetting makes messages recent once more, nothing worse.
        if m.len() >= MAX_ENTRIES && !m.contains_key(&key) {
            m.clear();
        }
        let e = m.entry(key).or_insert(0);
        let before = *e;
        *e = before.max(max_uid);
        before
    }

    /// The highest UID claimed so far, without claiming (EXAMINE, STATUS).
    pub fn recent_floor(&self, key: (u64, u32, u32)) -> u32 {
        let m = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        m.get(&key).copied().unwrap_or(0)
    }
}

/// Login throttling: after `free_failures` failed logins from one address or
/// for one account, each further attempt waits `base_delay`, doubling per
/// failure up to `max_delay`, before its password is even checked. A failure
/// is forgotten `window` after the last one; a success clears both counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleConfig {
    pub free_failures: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    pub window: Duration,
    /// Failed logins one connection may make before it is closed.
    pub failures_per_connection: u32,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            free_failures: 3,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15),
            window: Duration::from_secs(600),
            failures_per_connection: 3,
        }
    }
}

/// Whose failures a count is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Ip(IpAddr),
    Account(String),
}

/// Entries kept at most in each map: past it, failure counts lose expired
/// entries, then the older half; \Recent claims are forgotten.
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub struct Throttle {
    cfg: ThrottleConfig,
    failures: Mutex<HashMap<Key, (u32, Instant)>>,
}

impl Throttle {
    pub fn new(cfg: ThrottleConfig) -> Throttle {
        Throttle {
            cfg,
            failures: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &ThrottleConfig {
        &self.cfg
    }

    fn keys(ip: Option<IpAddr>, user: &str) -> Vec<Key> {
        let mut k = vec![Key::Account(user.to_ascii_lowercase())];
        k.extend(ip.map(Key::Ip));
        k
    }

    /// How long an attempt from `ip` for `user` waits before its password is
    /// checked, and the failure count behind it.
    pub fn delay(&self, ip: Option<IpAddr>, user: &str) -> (Duration, u32) {
        let m = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let n = Self::keys(ip, user)
            .iter()
            .filter_map(|k| m.get(k))
            .filter(|(_, at)| now.duration_since(*at) < self.cfg.window)
            .map(|(n, _)| *n)
            .max()
            .unwrap_or(0);
        if n < self.cfg.free_failures {
            return (Duration::ZERO, n);
        }
        let steps = (n - self.cfg.free_failures).min(20);
        let d = self.cfg.base_delay.saturating_mul(1 << steps);
        (d.min(self.cfg.max_delay), n)
    }

    pub fn failed(&self, ip: Option<IpAddr>, user: &str) {
        let mut m = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if m.len() >= MAX_ENTRIES {
            let window = self.cfg.window;
            m.retain(|_, (_, at)| now.duration_since(*at) < window);
            if m.len() >= MAX_ENTRIES {
                let mut ages: Vec<Instant> = m.values().map(|(_, at)| *at).collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 2];
                m.retain(|_, (_, at)| *at > cut);
            }
        }
        for k in Self::keys(ip, user) {
            let e = m.entry(k).or_insert((0, now));
            if now.duration_since(e.1) >= self.cfg.window {
                e.0 = 0;
            }
            e.0 = e.0.saturating_add(1);
            e.1 = now;
        }
    }

    pub fn succeeded(&self, ip: Option<IpAddr>, user: &str) {
        let mut m = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for k in Self::keys(ip, user) {
            m.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_failure_and_is_capped_and_cleared() {
        let t = Throttle::new(ThrottleConfig {
            free_failures: 2,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            window: Duration::from_secs(60),
            failures_per_connection: 3,
        });
        let ip: Option<IpAddr> = Some("192.0.2.1".parse().unwrap());
        let other: Option<IpAddr> = Some("192.0.2.2".parse().unwrap());
        let mut delays = Vec::new();
        for _ in 0..5 {
            delays.push(t.delay(ip, "bob").0.as_millis());
            t.failed(ip, "bob");
        }
        assert_eq!(delays, [0, 0, 100, 200, 350]);
        // The account is throttled from any address, the address for any account.
        assert_eq!(t.delay(other, "BOB").0.as_millis(), 350);
        assert_eq!(t.delay(ip, "carol").0.as_millis(), 350);
        assert_eq!(t.delay(other, "carol").0, Duration::ZERO);
        t.succeeded(ip, "bob");
        assert_eq!(t.delay(ip, "bob").0, Duration::ZERO);
    }

    #[test]
    fn recent_is_claimed_once() {
        let s = Shared::default();
        let k = (1, 2, 3);
        assert_eq!(s.recent_floor(k), 0);
        assert_eq!(s.claim_recent(k, 5), 0);
        assert_eq!(s.claim_recent(k, 7), 5);
        assert_eq!(s.recent_floor(k), 7);
        assert_eq!(s.claim_recent(k, 6), 7);
    }
}
