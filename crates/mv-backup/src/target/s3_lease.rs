//! The S3 target's lock: a lease object, `backup.lock`, never a conditional PUT
//! (many S3-compatible stores lack it, and the format must not need it).
//!
//! The object holds four lines: what holds the lock ("Backup full-..."), `holder
//! <random id>`, `host <name> pid <pid>`, `expires <unix ms>`. A holder's heartbeat
//! thread rewrites it every quarter of the lease, so a live holder's lease never
//! expires, and a crashed holder's lock is taken over once its lease has run out.
//!
//! Acquiring: read the lease; if it is live and someone else's, wait and read again
//! (until the caller's deadline: "... is still in progress"). If it is absent or
//! expired, write ours, wait `settle`, read it back: still ours means held;
//! someone else's means they won the race, so keep waiting.
//!
//! Why one contender wins. S3 is read-after-write consistent per key, and of
//! concurrent PUTs the last one stays. Let A and B both see the lease free and both
//! write. B read before A's PUT landed (else B would have seen A's live lease), so
//! B's PUT lands at most `d_B` after A's, where `d_B` is B's time from its read to
//! the end of its PUT. A reads back `settle` after its PUT: if `d_B < settle`, A sees
//! B's lease (or its own only if B's landed first), and symmetrically for B; so
//! exactly the last writer reads back its own lease. A contender measures its own
//! `d` and, when it exceeded half of `settle`, does not claim even if it reads its
//! lease back (it removes it and retries): it cannot know whether a rival read back
//! before its late PUT landed. What remains is a PUT the network or server delays
//! beyond `settle` after the client saw it end; the heartbeat of a holder whose
//! lease was overwritten sees a foreign lease, logs an error and stops refreshing.
//! Expiry compares wall clocks of different hosts: they must agree to well within
//! a lease (NTP does).

use super::LockHandle;
use super::s3_client::Client;
use crate::error::{BackupError, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub(super) const LEASE_OBJECT: &str = "backup.lock";

#[derive(Debug, Clone, PartialEq, Eq)]
struct LeaseInfo {
    what: String,
    holder: String,
    expires_ms: u64,
    /// The host and process that wrote it.
    host: Option<String>,
    pid: Option<u32>,
}

impl LeaseInfo {
    fn parse(text: &str) -> Option<LeaseInfo> {
        let mut lines = text.lines();
        let what = lines.next()?.trim().to_string();
        let mut holder = None;
        let mut expires = None;
        let (mut host, mut pid) = (None, None);
        for l in lines {
            if let Some(h) = l.strip_prefix("holder ") {
                holder = Some(h.trim().to_string());
            } else if let Some(e) = l.strip_prefix("expires ") {
                expires = e.trim().parse().ok();
            } else if let Some(rest) = l.strip_prefix("host ")
                && let Some((h, p)) = rest.rsplit_once(" pid ")
            {
                host = Some(h.trim().to_string());
                pid = p.trim().parse().ok();
            }
        }
        Some(LeaseInfo {
            what,
            holder: holder?,
            expires_ms: expires?,
            host,
            pid,
        })
    }

    /// Written by a process of this host that no longer exists: a run that died
    /// (killed, crashed) without releasing its lease. No need to wait for the
    /// lease to expire.
    fn owner_gone(&self) -> bool {
        let (Some(host), Some(pid)) = (&self.host, self.pid) else {
            return false;
        };
        if *host != hostname() || pid == 0 || pid == std::process::id() {
            return false;
        }
        let Ok(pid) = i32::try_from(pid) else {
            return false;
        };
        // SAFETY: signal 0 only checks that the process exists.
        let rc = unsafe { libc::kill(pid, 0) };
        rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    }

    /// Holds the lock: not expired, and its owner not known to be gone.
    fn holds(&self) -> bool {
        self.live() && !self.owner_gone()
    }

    fn render(&self) -> String {
        format!(
            "{}\nholder {}\nhost {} pid {}\nexpires {}\n",
            self.what.replace(['\n', '\r'], " "),
            self.holder,
            hostname(),
            std::process::id(),
            self.expires_ms
        )
    }

    fn live(&self) -> bool {
        self.expires_ms > now_ms()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// The lease as stored; an unreadable one counts as absent (it is overwritten).
fn read(client: &Client) -> Result<Option<LeaseInfo>> {
    Ok(client
        .get_opt(LEASE_OBJECT)?
        .and_then(|b| LeaseInfo::parse(&String::from_utf8_lossy(&b))))
}

/// Writes a lease; returns when it expires (UNIX milliseconds).
fn write(client: &Client, what: &str, holder: &str, lease: Duration) -> Result<u64> {
    let info = LeaseInfo {
        what: what.to_string(),
        holder: holder.to_string(),
        expires_ms: now_ms() + lease.as_millis() as u64,
        host: None,
        pid: None,
    };
    client.put(LEASE_OBJECT, info.render().into_bytes())?;
    Ok(info.expires_ms)
}

/// Until when this process may go on writing under a lease that expires at
/// `expires_ms`: a margin short of it, for clocks that differ between hosts.
fn hold_until(client: &Client, expires_ms: u64, lease: Duration) {
    let margin = (lease.as_millis() as u64 / 10).max(1000);
    client
        .lease_until
        .store(expires_ms.saturating_sub(margin).max(1), Ordering::Release);
}

/// What holds the lock now (a live lease), if anything.
pub(super) fn current_holder(client: &Client) -> Result<Option<String>> {
    Ok(read(client)?.filter(LeaseInfo::holds).map(|l| l.what))
}

fn in_progress(what: Option<String>) -> BackupError {
    BackupError::InProgress(
        what.filter(|w| !w.is_empty())
            .unwrap_or_else(|| "Another backup, restore or delete operation".into()),
    )
}

struct Shared {
    client: Arc<Client>,
    id: String,
    what: Mutex<String>,
    lease: Duration,
    stop: Mutex<bool>,
    wake: Condvar,
    lost: AtomicBool,
}

impl Shared {
    /// Rewrites our lease with a fresh expiry, unless it is no longer ours.
    fn refresh(&self) -> Result<()> {
        if self.lost.load(Ordering::Relaxed) {
            return Err(self.lost_error());
        }
        let current = read(&self.client)?;
        if current.as_ref().is_none_or(|l| l.holder != self.id) {
            self.lost.store(true, Ordering::Relaxed);
            tracing::error!(
                "the lock of the backup target was taken over (now: {}); another \
                 operation may be running on the same target",
                current.map(|l| l.what).unwrap_or_else(|| "nothing".into())
            );
            return Err(self.lost_error());
        }
        let what = self.what.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let expires = write(&self.client, &what, &self.id, self.lease)?;
        hold_until(&self.client, expires, self.lease);
        Ok(())
    }

    fn lost_error(&self) -> BackupError {
        BackupError::Invalid(
            "the lock of the backup target was lost (its lease was overwritten); check \
             that no other host uses the same target"
                .into(),
        )
    }
}

/// A held lease; its heartbeat runs until drop, which releases it.
/// Lifts the lease's bound on the client's requests when dropped.
struct Unbound<'a>(&'a Client);

impl Drop for Unbound<'_> {
    fn drop(&mut self) {
        self.0.lease_until.store(0, Ordering::Release);
    }
}

pub(super) struct Lease {
    shared: Arc<Shared>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

impl Lease {
    pub(super) fn acquire(
        client: Arc<Client>,
        what: &str,
        wait: Duration,
        lease: Duration,
        settle: Duration,
    ) -> Result<Lease> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let deadline = Instant::now() + wait;
        let give_up = |seen: Option<LeaseInfo>| in_progress(seen.map(|l| l.what));
        // Attempts whose own write was too slow to trust (no rival seen).
        let mut slow_attempts = 0;
        loop {
            let started = Instant::now();
            let current = read(&client)?;
            if let Some(l) = current.as_ref().filter(|l| l.live() && l.owner_gone()) {
                tracing::warn!(
                    "the backup target's lock was held by {} (pid {} on this host), which \
                     is gone without releasing it: taking the lock over",
                    l.what,
                    l.pid.unwrap_or(0)
                );
            }
            if let Some(l) = current.as_ref().filter(|l| l.holds() && l.holder != id) {
                if Instant::now() >= deadline {
                    return Err(give_up(Some(l.clone())));
                }
                std::thread::sleep(Duration::from_millis(200).min(deadline - Instant::now()));
                continue;
            }
            let expires = write(&client, what, &id, lease)?;
            let slow = started.elapsed() > settle / 2;
            std::thread::sleep(settle);
            let back = read(&client)?;
            let ours = back.as_ref().is_some_and(|l| l.holder == id);
            if ours && !slow {
                hold_until(&client, expires, lease);
                return Ok(Lease::start(client, id, what, lease));
            }
            let rival = back.filter(|l| l.holder != id && l.holds());
            if ours {
                // Too slow to be sure no rival read back before our PUT landed.
                client.delete(LEASE_OBJECT)?;
                slow_attempts += 1;
                if slow_attempts >= 5 {
                    return Err(BackupError::Invalid(format!(
                        "the S3 store answered too slowly to take the lock safely (a read \
                         and a write took over {} ms, half of s3_lock_settle_ms); raise \
                         s3_lock_settle_ms with mailvault localconfig -e",
                        settle.as_millis() / 2
                    )));
                }
            } else if Instant::now() >= deadline {
                return Err(give_up(rival));
            }
            // A little jitter so two losers do not collide again in step.
            let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]);
            std::thread::sleep(Duration::from_millis(50 + jitter));
        }
    }

    fn start(client: Arc<Client>, id: String, what: &str, lease: Duration) -> Lease {
        let shared = Arc::new(Shared {
            client,
            id,
            what: Mutex::new(what.to_string()),
            lease,
            stop: Mutex::new(false),
            wake: Condvar::new(),
            lost: AtomicBool::new(false),
        });
        let s = shared.clone();
        let heartbeat = std::thread::Builder::new()
            .name("mv-s3-lease".into())
            .spawn(move || {
                let period = s.lease / 4;
                let mut stop = s.stop.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    let (guard, _) = s
                        .wake
                        .wait_timeout(stop, period)
                        .unwrap_or_else(|p| p.into_inner());
                    stop = guard;
                    if *stop {
                        return;
                    }
                    drop(stop);
                    match s.refresh() {
                        Ok(()) => {}
                        Err(e) if s.lost.load(Ordering::Relaxed) => {
                            // Stop the run's requests now, not at the deadline.
                            s.client.lease_until.store(1, Ordering::Release);
                            tracing::error!("{e}");
                            return;
                        }
                        // A transient failure: the next beat (still well within the
                        // lease) tries again.
                        Err(e) => tracing::warn!("renewing the backup target lock: {e}"),
                    }
                    stop = s.stop.lock().unwrap_or_else(|p| p.into_inner());
                }
            })
            .ok();
        Lease { shared, heartbeat }
    }
}

impl LockHandle for Lease {
    fn describe(&self, what: &str) -> Result<()> {
        *self.shared.what.lock().unwrap_or_else(|p| p.into_inner()) = what.to_string();
        self.shared.refresh()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        *self.shared.stop.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.shared.wake.notify_all();
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
        // Requests made while releasing stay bounded by the lease; then none is.
        let _unbound = Unbound(&self.shared.client);
        if self.shared.lost.load(Ordering::Relaxed) {
            return;
        }
        // Release only our own lease (read, then delete: a rival can only have
        // written after ours expired, which the heartbeat prevented).
        match read(&self.shared.client) {
            Ok(Some(l)) if l.holder == self.shared.id => {
                if let Err(e) = self.shared.client.delete(LEASE_OBJECT) {
                    tracing::warn!("releasing the backup target lock: {e} (it expires by itself)");
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("releasing the backup target lock: {e} (it expires by itself)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_text_round_trips() {
        let l = LeaseInfo {
            what: "Backup full-20140605.080023.296".into(),
            holder: "abc".into(),
            expires_ms: 42,
            host: Some(hostname()),
            pid: Some(std::process::id()),
        };
        assert_eq!(LeaseInfo::parse(&l.render()), Some(l.clone()));
        assert!(!l.live());
        assert_eq!(LeaseInfo::parse("garbage"), None);
    }

    #[test]
    fn a_lease_of_a_process_gone_from_this_host_holds_nothing() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let mut l = LeaseInfo {
            what: "Backup full-20990101.000000.000".into(),
            holder: "abc".into(),
            expires_ms: now_ms() + 60_000,
            host: Some(hostname()),
            pid: Some(dead),
        };
        assert!(l.live() && l.owner_gone() && !l.holds());
        // Alive (this process), or on another host: it holds until it expires.
        l.pid = Some(std::process::id());
        assert!(l.holds());
        l.pid = Some(dead);
        l.host = Some("elsewhere.example".into());
        assert!(l.holds());
    }
}
