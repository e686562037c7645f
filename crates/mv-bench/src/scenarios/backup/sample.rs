//! One tool's measured runs and how they become a figure of the report: the
//! samples, the peers' series (or why a peer is out), the disk made quiet
//! before each run.

use crate::measure::Measured;
use crate::peers::archivers::Archiver;
use crate::scenario::{
    Figure, Goal, Measurement, PeerFigure, PeerResult, ResourceSummary, RunContext, median,
    median_u64,
};
use crate::sysinfo::human_bytes;
use std::process::Command;

/// One measured run of one tool.
#[derive(Debug, Clone)]
pub(super) struct Sample {
    /// The figure (MB/s, s or ops/s).
    pub(super) value: f64,
    pub(super) m: Measured,
    /// Growth of the target / repository.
    pub(super) growth: Option<u64>,
}

/// The runs of one tool for one figure, or why there are none.
pub(super) type Series = Result<Vec<Sample>, String>;

pub(super) const MB: f64 = 1_000_000.0;

/// Before each measured step: everything written is on disk and, when allowed
/// (root), nothing is cached, so that every tool reads the store from the disk as
/// a backup of a store larger than memory does. With a warm cache the order would
/// decide: the tool that runs first reads from the disk and leaves the data cached
/// for the next.
pub(super) fn quiet_disk() {
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    let _ = std::fs::write(DROP_CACHES, "3");
}

const DROP_CACHES: &str = "/proc/sys/vm/drop_caches";

/// Whether [`quiet_disk`] can empty the page cache here.
pub(super) fn can_drop_caches() -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open(DROP_CACHES)
        .is_ok()
}

/// Runs one peer step unless the peer is already out; a failure takes it out.
pub(super) fn peer_step(
    broken: &mut Option<String>,
    series: &mut Series,
    ctx: &RunContext,
    name: &str,
    f: impl FnOnce() -> anyhow::Result<Sample>,
) {
    if let Some(b) = broken {
        *series = Err(b.clone());
        return;
    }
    let Ok(runs) = series else { return };
    match f() {
        Ok(s) => {
            ctx.progress(&format!("backup:   {name}: {:.2} s", s.m.secs));
            runs.push(s);
        }
        Err(e) => {
            ctx.progress(&format!("backup:   {name} failed: {e:#}"));
            let why = format!("failed: {e:#}");
            *series = Err(why.clone());
            *broken = Some(format!("{name} failed earlier: {e:#}"));
        }
    }
}

pub(super) fn measurement(runs: &[Sample], unit_messages: usize) -> Measurement {
    let mut m = Measurement::from_runs(runs.iter().map(|s| s.value).collect());
    if let Some(s) = runs.iter().find(|s| s.value == m.median) {
        m.detail = Some(format!(
            "{:.2} s{}",
            s.m.secs,
            s.growth
                .map(|g| format!(", repository +{}", human_bytes(g)))
                .unwrap_or_default()
        ));
    }
    let rss: Vec<u64> = runs.iter().filter_map(|s| s.m.peak_rss_bytes).collect();
    let wb: Vec<u64> = runs.iter().map(|s| s.m.write_bytes).collect();
    m.resources = Some(ResourceSummary {
        peak_rss_bytes: (!rss.is_empty()).then(|| median_u64(&rss)),
        write_bytes: (!wb.is_empty()).then(|| median_u64(&wb)),
        write_bytes_per_message: (!wb.is_empty() && unit_messages > 0)
            .then(|| median_u64(&wb) / unit_messages as u64),
        processes: 1,
    });
    m
}

pub(super) fn median_secs(runs: &[Sample]) -> f64 {
    median(&runs.iter().map(|s| s.m.secs).collect::<Vec<_>>())
}

pub(super) fn command_line(c: &Command) -> String {
    let mut v = vec!["mailvault".to_string()];
    let args: Vec<String> = c
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // Leave out `--home DIR`: the reader's home is their own.
    let mut it = args.into_iter().peekable();
    while let Some(a) = it.next() {
        if a == "--home" {
            it.next();
            continue;
        }
        v.push(a);
    }
    v.join(" ")
}

pub(super) fn figure(
    name: &str,
    unit: &str,
    subject: &[Sample],
    peers: &[Archiver],
    series: &[Series],
    unit_messages: usize,
) -> Figure {
    Figure {
        name: name.into(),
        unit: unit.into(),
        subject: measurement(subject, unit_messages),
        peers: peers
            .iter()
            .zip(series)
            .map(|(a, s)| PeerFigure {
                peer: a.name().into(),
                result: match s {
                    Ok(runs) if !runs.is_empty() => {
                        PeerResult::Measured(measurement(runs, unit_messages))
                    }
                    Ok(_) => PeerResult::Skipped {
                        reason: "not run".into(),
                    },
                    Err(why) => PeerResult::Skipped {
                        reason: why.clone(),
                    },
                },
            })
            .collect(),
        goals: vec![],
    }
}

pub(super) fn ratio_goal(f: &Figure, peer: &str, at_least: f64, what: &str) -> Goal {
    let why = f
        .peers
        .iter()
        .find(|x| x.peer == peer)
        .and_then(|x| match &x.result {
            PeerResult::Skipped { reason } => Some(format!("{peer}: {reason}")),
            PeerResult::Measured(_) => None,
        });
    Goal::evaluate(
        format!("≥ {at_least}× {peer}'s {what}"),
        f.ratio_to(peer),
        |r| r >= at_least,
        why,
    )
}
