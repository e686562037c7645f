//! Free loopback ports for listeners that the tools start themselves (the demo
//! server, benchmark peers, test servers).
//!
//! Linux hands out ports from 32768 up (`net.ipv4.ip_local_port_range`) to every
//! outgoing connection and to `bind(port 0)`. A listener placed there can collide
//! with a client's source port a moment later, so these ports come from below
//! that range instead: a random start, then the next free one.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};

/// Lowest port handed out.
pub const LOW: u16 = 20_000;
/// One past the highest port handed out: the start of Linux's ephemeral range.
pub const HIGH: u16 = 32_768;

/// The next candidate: a random first offset per process, then increasing, so
/// that ports released and handed out again within one process do not repeat at
/// once and two processes rarely probe the same sequence.
static NEXT: AtomicU16 = AtomicU16::new(0);

/// A port in `LOW..HIGH` that was free on 127.0.0.1 when probed (bound and
/// released; the caller binds it again).
pub fn free_loopback_port() -> std::io::Result<u16> {
    let span = HIGH - LOW;
    if NEXT.load(Ordering::Relaxed) == 0 {
        let start = rand::random::<u16>() % span + 1;
        let _ = NEXT.compare_exchange(0, start, Ordering::Relaxed, Ordering::Relaxed);
    }
    for _ in 0..span {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % span;
        let port = LOW + offset;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("no free port on 127.0.0.1 in {LOW}..{HIGH}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_free_and_below_the_ephemeral_range() {
        let a = free_loopback_port().unwrap();
        let held = TcpListener::bind(("127.0.0.1", a)).unwrap();
        let b = free_loopback_port().unwrap();
        assert_ne!(a, b, "a port held by a listener is not handed out");
        for p in [a, b] {
            assert!((LOW..HIGH).contains(&p), "{p} outside {LOW}..{HIGH}");
        }
        drop(held);
    }
}
