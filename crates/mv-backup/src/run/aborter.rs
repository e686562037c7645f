//! Stopping a running backup: `zmbackupabort` (a flag file in the target) or an
//! in-process request.

use crate::label::Label;
use crate::progress::Job;
use crate::target::Target;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Decides when a running backup must stop: an in-process request (the job), or
/// `tmp/<label>.abort` in the target (checked at most twice a second).
pub(crate) struct Aborter {
    job: Arc<Job>,
    target: Arc<dyn Target>,
    flags: Vec<String>,
    last_check: Instant,
    hit: bool,
}

impl Aborter {
    pub(super) fn new(job: Arc<Job>, target: Arc<dyn Target>, labels: &[Label]) -> Aborter {
        Aborter {
            job,
            target,
            flags: labels
                .iter()
                .map(|l| abort_flag_path(&l.to_string()))
                .collect(),
            last_check: Instant::now(),
            hit: false,
        }
    }

    pub(crate) fn requested(&mut self) -> bool {
        if self.hit || self.job.abort_requested() {
            self.hit = true;
            return true;
        }
        if self.last_check.elapsed() >= Duration::from_millis(500) {
            self.last_check = Instant::now();
            if self
                .flags
                .iter()
                .any(|f| matches!(self.target.size(f), Ok(Some(_))))
            {
                self.job.request_abort();
                self.hit = true;
            }
        }
        self.hit
    }

    /// Checks the flag file now (between accounts).
    pub(crate) fn requested_now(&mut self) -> bool {
        self.last_check = Instant::now()
            .checked_sub(Duration::from_secs(1))
            .unwrap_or_else(Instant::now);
        self.requested()
    }
}

/// Where an abort request for a running backup is left: `tmp/<label>.abort`.
pub fn abort_flag_path(label: &str) -> String {
    format!("tmp/{label}.abort")
}
