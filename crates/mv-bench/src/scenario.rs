//! What a scenario is and what it reports.
//!
//! A scenario measures one thing (LMTP delivery, redo group commit, and later full
//! backup, incremental backup, restore of one account, ...) for mailvault and, side
//! by side in the same run, for its peers. It returns a [`ScenarioReport`]: figures
//! (each a median of several runs), the ratio to each peer, and goals that are met,
//! not met, or not evaluated (with the reason, e.g. "peer not installed").
//! To add a scenario: implement [`Scenario`] in `scenarios/` and list it in
//! [`crate::scenarios::registry`].

use crate::corpus::Scale;
use crate::peers::Availability;
use serde::Serialize;
use std::path::PathBuf;

/// Everything a scenario may need from the command line and the environment.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub scale: Scale,
    pub seed: u64,
    /// Runs per figure; figures are medians.
    pub runs: usize,
    /// Where scenarios make their temporary directories (the disk measured).
    pub bench_dir: PathBuf,
    /// The workspace root, when known (for `cargo run` of examples).
    pub workspace: Option<PathBuf>,
    /// The `mailvault` binary under test.
    pub mailvault: PathBuf,
    /// Print progress on stderr.
    pub verbose: bool,
    /// Leave the working directories in place (`run --keep`).
    pub keep_work: bool,
}

impl RunContext {
    pub fn progress(&self, msg: &str) {
        if self.verbose {
            eprintln!("[bench] {msg}");
        }
    }
}

pub trait Scenario {
    /// The name used on the command line (`--scenarios lmtp,redo`).
    fn name(&self) -> &'static str;
    /// One line for `mailvault-bench list`.
    fn summary(&self) -> &'static str;
    fn run(&self, ctx: &RunContext) -> anyhow::Result<ScenarioReport>;
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    pub name: String,
    pub title: String,
    /// Markdown: what is measured and how.
    pub description: String,
    /// The name of the system under test in the tables ("mailvault").
    pub subject: String,
    pub peers: Vec<PeerInfo>,
    pub figures: Vec<Figure>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeerInfo {
    pub name: String,
    pub availability: Availability,
}

#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// "10 KB messages, 16 connections".
    pub name: String,
    /// "messages/s".
    pub unit: String,
    pub subject: Measurement,
    pub peers: Vec<PeerFigure>,
    pub goals: Vec<Goal>,
}

impl Figure {
    /// subject / peer, when the peer was measured.
    pub fn ratio_to(&self, peer: &str) -> Option<f64> {
        self.peers
            .iter()
            .find(|p| p.peer == peer)
            .and_then(|p| match &p.result {
                PeerResult::Measured(m) if m.median > 0.0 => Some(self.subject.median / m.median),
                _ => None,
            })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PeerFigure {
    pub peer: String,
    pub result: PeerResult,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PeerResult {
    Measured(Measurement),
    /// Not run, and why ("peer not installed (apt-get install ...)", "failed: ...").
    Skipped {
        reason: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub median: f64,
    /// Every run's figure, in run order.
    pub runs: Vec<f64>,
    /// Latency and the like, of the median run ("p50 1.2 ms, p99 4.0 ms").
    pub detail: Option<String>,
    /// Server resources per run (medians), where measured.
    pub resources: Option<ResourceSummary>,
}

impl Measurement {
    /// The median of `runs` (upper median for an even count).
    pub fn from_runs(runs: Vec<f64>) -> Measurement {
        Measurement {
            median: median(&runs),
            runs,
            detail: None,
            resources: None,
        }
    }
}

pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn median_u64(xs: &[u64]) -> u64 {
    if xs.is_empty() {
        return 0;
    }
    let mut v = xs.to_vec();
    v.sort_unstable();
    v[v.len() / 2]
}

#[derive(Debug, Clone, Serialize)]
pub struct ResourceSummary {
    /// Median over runs of the peak RSS (summed over the server's processes).
    pub peak_rss_bytes: Option<u64>,
    /// Median over runs of the bytes written by the server's processes.
    pub write_bytes: Option<u64>,
    /// `write_bytes` divided by the messages of the run.
    pub write_bytes_per_message: Option<u64>,
    pub processes: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    /// "≥ 1.5× Dovecot".
    pub text: String,
    /// `None`: not evaluated (see `why`).
    pub met: Option<bool>,
    pub why: Option<String>,
}

impl Goal {
    pub fn evaluate(
        text: impl Into<String>,
        value: Option<f64>,
        ok: impl Fn(f64) -> bool,
        why_not: Option<String>,
    ) -> Goal {
        match value {
            Some(v) => Goal {
                text: text.into(),
                met: Some(ok(v)),
                why: None,
            },
            None => Goal {
                text: text.into(),
                met: None,
                why: Some(why_not.unwrap_or_else(|| "not measured".into())),
            },
        }
    }

    pub fn verdict(&self) -> String {
        match (self.met, &self.why) {
            (Some(true), _) => "met".into(),
            (Some(false), _) => "**not met**".into(),
            (None, Some(w)) => format!("not evaluated: {w}"),
            (None, None) => "not evaluated".into(),
        }
    }
}
