//! Lock-free counters for `GET /metrics`: the layer that measures something owns
//! the static, the server renders them all. Atomics only, no I/O here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A latency histogram with fixed bucket bounds (seconds), Prometheus-style:
/// cumulative at render time, so an observation touches one bucket.
pub struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, then the +Inf bucket.
    counts: [AtomicU64; 16],
    /// The sum of observations in microseconds.
    sum_micros: AtomicU64,
}

/// Fsync-scale bounds: 0.5 ms to 5 s.
pub const FSYNC_BOUNDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

impl Histogram {
    /// `bounds` ascending, at most 15 of them.
    pub const fn new(bounds: &'static [f64]) -> Histogram {
        assert!(bounds.len() < 16);
        Histogram {
            bounds,
            counts: [const { AtomicU64::new(0) }; 16],
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// (upper bound, cumulative count) per bucket, `+Inf` last as `None`; the
    /// sum in seconds; the total count.
    pub fn snapshot(&self) -> (Vec<(Option<f64>, u64)>, f64, u64) {
        let mut out = Vec::with_capacity(self.bounds.len() + 1);
        let mut total = 0;
        for i in 0..=self.bounds.len() {
            total += self.counts[i].load(Ordering::Relaxed);
            out.push((self.bounds.get(i).copied(), total));
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (out, sum, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative() {
        static H: Histogram = Histogram::new(&[0.001, 0.01]);
        H.observe(Duration::from_micros(500));
        H.observe(Duration::from_millis(5));
        H.observe(Duration::from_secs(1));
        let (buckets, sum, count) = H.snapshot();
        assert_eq!(buckets, vec![(Some(0.001), 1), (Some(0.01), 2), (None, 3)]);
        assert_eq!(count, 3);
        assert!((sum - 1.0055).abs() < 1e-9);
    }
}
