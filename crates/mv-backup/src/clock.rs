//! Where "now" comes from. Labels, keep-time decisions and `-del Nd` cutoffs all ask
//! a [`Clock`], so tests can build a history of sessions with past dates.

use mv_types::UtcMillis;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> UtcMillis;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UtcMillis {
        UtcMillis::now()
    }
}

/// A clock that says what it is told (tests). Each `now()` advances it by
/// `step_ms` so that consecutive labels differ.
#[derive(Debug)]
pub struct FakeClock {
    now: AtomicI64,
    step_ms: i64,
}

impl FakeClock {
    pub fn new(at: UtcMillis) -> Arc<FakeClock> {
        Arc::new(FakeClock {
            now: AtomicI64::new(at.0),
            step_ms: 1,
        })
    }

    pub fn set(&self, at: UtcMillis) {
        self.now.store(at.0, Ordering::SeqCst);
    }

    pub fn advance(&self, ms: i64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> UtcMillis {
        UtcMillis(self.now.fetch_add(self.step_ms, Ordering::SeqCst))
    }
}

/// The system clock, shared.
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}
