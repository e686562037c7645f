//! Scenario `redo`: redo-log group commit, from the mv-redo example `redo_bench`
//! (`cargo run --release -p mv-redo --example redo_bench -- --json`), run in the
//! bench directory so that it measures the same disk: ops/s of 1, 8 and 64 writers
//! (append a 4 KB message + wait until durable) against the raw rate of
//! `write 4 KB + fdatasync` on one thread.

use crate::corpus::Scale;
use crate::peers::Availability;
use crate::scenario::{
    Figure, Goal, Measurement, PeerFigure, PeerInfo, PeerResult, RunContext, Scenario,
    ScenarioReport,
};
use anyhow::{Context, bail};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

#[derive(Default)]
pub struct RedoScenario {
    /// The `redo_bench` executable to run; by default the one built next to
    /// this binary, else `cargo run --release` in the workspace.
    pub redo_bench: Option<PathBuf>,
}

const RAW: &str = "raw write 4 KB + fdatasync";

/// The prebuilt example next to the running executable (target/release/examples).
fn prebuilt() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.join("examples").join("redo_bench");
    p.is_file().then_some(p)
}

impl Scenario for RedoScenario {
    fn name(&self) -> &'static str {
        "redo"
    }

    fn summary(&self) -> &'static str {
        "redo log group commit: 1/8/64 writers vs raw write+fdatasync (mv-redo example redo_bench)"
    }

    fn run(&self, ctx: &RunContext) -> anyhow::Result<ScenarioReport> {
        let seconds = if ctx.scale == Scale::Small { "1" } else { "3" };
        let reps = ctx.runs.to_string();
        let dir = ctx.bench_dir.display().to_string();
        let args = [
            "--json",
            "--dir",
            &dir,
            "--seconds",
            seconds,
            "--reps",
            &reps,
        ];
        let (mut cmd, how) = match self.redo_bench.clone().or_else(prebuilt) {
            Some(bin) => {
                let how = format!(
                    "{} {}",
                    crate::sysinfo::shown(&bin),
                    args.join(" ")
                        .replace(&dir, &crate::sysinfo::shown(&ctx.bench_dir))
                );
                (Command::new(bin), how)
            }
            None => {
                let ws = ctx.workspace.as_ref().context(
                    "redo_bench is not built and the workspace is unknown (run from the repo)",
                )?;
                let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
                c.current_dir(ws).args([
                    "run",
                    "--release",
                    "-q",
                    "-p",
                    "mv-redo",
                    "--example",
                    "redo_bench",
                    "--",
                ]);
                (
                    c,
                    format!(
                        "cargo run --release -p mv-redo --example redo_bench -- {}",
                        args.join(" ")
                    ),
                )
            }
        };
        ctx.progress(&format!("redo: {how}"));
        let out = cmd.args(args).output().context("running redo_bench")?;
        if !out.status.success() {
            bail!(
                "redo_bench failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'))
            .context("redo_bench printed no JSON")?;
        let v: Value = serde_json::from_str(line).context("parsing redo_bench's JSON")?;
        let results = v["results"]
            .as_array()
            .context("redo_bench JSON: no results")?;
        let measurement = |r: &Value| -> Measurement {
            let runs: Vec<f64> = r["runs_ops_per_s"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default();
            let mut m = Measurement::from_runs(runs);
            if let Some(med) = r["median_ops_per_s"].as_f64() {
                m.median = med;
            }
            m.detail = Some(format!(
                "p50 {:.2} ms, p99 {:.2} ms",
                r["p50_us"].as_f64().unwrap_or(0.0) / 1000.0,
                r["p99_us"].as_f64().unwrap_or(0.0) / 1000.0
            ));
            m
        };
        let raw = results
            .iter()
            .find(|r| r["writers"].as_u64() == Some(0))
            .map(measurement)
            .context("redo_bench JSON: no raw fdatasync result")?;
        let mut figures = Vec::new();
        for r in results
            .iter()
            .filter(|r| r["writers"].as_u64().unwrap_or(0) > 0)
        {
            let w = r["writers"].as_u64().unwrap_or(0);
            let mut fig = Figure {
                name: format!(
                    "redo append 4 KB message + wait durable, {w} writer{}",
                    if w == 1 { "" } else { "s" }
                ),
                unit: "ops/s".into(),
                subject: measurement(r),
                peers: vec![PeerFigure {
                    peer: RAW.into(),
                    result: PeerResult::Measured(raw.clone()),
                }],
                goals: vec![],
            };
            let ratio = fig.ratio_to(RAW);
            match w {
                1 => fig.goals.push(Goal::evaluate(
                    "within 20% of raw (≥ 0.80×)",
                    ratio,
                    |r| r >= 0.8,
                    None,
                )),
                64 => fig
                    .goals
                    .push(Goal::evaluate("≥ 10× raw", ratio, |r| r >= 10.0, None)),
                _ => {}
            }
            figures.push(fig);
        }
        Ok(ScenarioReport {
            name: "redo".into(),
            title: "Redo log group commit".into(),
            description: format!(
                "From the mv-redo example `redo_bench`, run in the bench directory (filesystem: \
                 {}): operations per second of N writer threads, each op appending a 4 KB \
                 message (PutBlob + CreateMessage) to the redo log and waiting until it is \
                 durable, against one thread doing `write 4 KB + fdatasync` at the end of a \
                 file. {} s per run, median of {} runs. Group commit should make many writers \
                 far faster than raw fsyncs and add no delay for one writer.",
                v["filesystem"].as_str().unwrap_or("?"),
                seconds,
                ctx.runs
            ),
            subject: "mailvault redo".into(),
            peers: vec![PeerInfo {
                name: RAW.into(),
                availability: Availability::Available {
                    version: "same disk, same process".into(),
                },
            }],
            figures,
            notes: vec![format!("command: `{how}`")],
        })
    }
}
