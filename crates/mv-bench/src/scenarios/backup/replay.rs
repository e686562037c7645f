//! Step 1 of the backup scenario: `playredo` of the load's redo logs into a
//! copy of the home taken before it (whole, and to a point in time), and of the
//! mailbox changes' logs into a copy taken after the deliveries.

use super::sample::{Sample, measurement, quiet_disk};
use super::setup::{Setup, copy_home, copy_tree, first_diff, remove};
use super::{BackupParams, GOAL_REPLAY_OPS};
use crate::measure;
use crate::peers::mailvault::{MessageDigests, mailbox_states, message_digests};
use crate::scenario::{Figure, Goal, RunContext};
use anyhow::{Context, bail};
use mv_home::Home;
use std::path::{Path, PathBuf};

/// Every replay figure: the whole load and a point in time early in it, then
/// the mailbox changes; each with every thread count of `p`.
pub(super) fn replay_figures(
    ctx: &RunContext,
    p: &BackupParams,
    s: &Setup,
    runs: usize,
) -> anyhow::Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let logs = &s.delivery_logs;
    // Two kinds of replay: the whole load (the replay throughput the goal is
    // about), and a point in time early in the load (what a user's restore to a
    // time does: it still reads the logs past that time, applying nothing).
    let whole: (Option<&str>, &MessageDigests, usize) = (None, &s.delivered, s.messages);
    let early: (Option<&str>, &MessageDigests, usize) = (
        Some(s.replay_to.as_str()),
        &s.replay_digests,
        s.replay_messages,
    );
    for (to_time, expected, messages) in [whole, early] {
        for &threads in &p.replay_threads {
            let what = if to_time.is_some() {
                "to a time"
            } else {
                "whole load"
            };
            let replay = Replay {
                what,
                base: &s.pre_load,
                copy: copy_tree,
                logs,
                threads,
                to_time,
            };
            let samples = replay.measure(ctx, s, runs, "replayed home checked", |home| {
                let got = message_digests(home)?;
                if &got != expected {
                    bail!(
                        "the replayed home differs from the original at that point: {}",
                        first_diff(expected, &got)
                    );
                }
                Ok(())
            })?;
            let plural = if threads == 1 { "" } else { "s" };
            let name = match to_time {
                None => {
                    format!("replay of the whole load (`playredo`), {threads} thread{plural}")
                }
                Some(_) => format!(
                    "point-in-time replay (`playredo --toTime`, first {}% of the load), {threads} thread{plural}",
                    p.replay_percent
                ),
            };
            // The goal is replay throughput: judged on the loads where every
            // record read is applied.
            figures.push(replay_figure(name, &samples, messages, to_time.is_none()));
        }
    }

    // The mailbox changes (flags, moves, deletes) into a copy of the home as
    // the deliveries left it: records that carry no message, most of a real
    // server's redo log.
    for &threads in &p.replay_threads {
        let replay = Replay {
            what: "mailbox changes",
            base: &s.pre_changes,
            copy: copy_home,
            logs: &s.change_logs,
            threads,
            to_time: None,
        };
        let checked = "replayed flags, folders and messages checked";
        let samples = replay.measure(ctx, s, runs, checked, |home| {
            let got = mailbox_states(home)?;
            if let Some(account) = s
                .changed
                .keys()
                .chain(got.keys())
                .find(|a| got.get(*a) != s.changed.get(*a))
            {
                bail!("the replayed mailbox changes differ from the original's: {account}");
            }
            Ok(())
        })?;
        let plural = if threads == 1 { "" } else { "s" };
        figures.push(replay_figure(
            format!(
                "replay of mailbox changes from IMAP (flags, moves, deletes), {threads} thread{plural}"
            ),
            &samples,
            0,
            true,
        ));
    }
    Ok(figures)
}

/// A measured `playredo`: `base` copied (by `copy`) into a scratch home, `logs`
/// replayed there with `threads` threads (up to `to_time`), once per run.
struct Replay<'a> {
    /// For the progress lines.
    what: &'a str,
    base: &'a Path,
    copy: fn(&Path, &Path) -> anyhow::Result<()>,
    logs: &'a [PathBuf],
    threads: usize,
    to_time: Option<&'a str>,
}

impl Replay<'_> {
    /// Runs it `runs` times, each with an empty page cache, checks each result
    /// with `check`, and returns the records applied per second.
    fn measure(
        &self,
        ctx: &RunContext,
        s: &Setup,
        runs: usize,
        checked: &str,
        check: impl Fn(&Home) -> anyhow::Result<()>,
    ) -> anyhow::Result<Vec<Sample>> {
        (1..=runs)
            .map(|run| {
                ctx.progress(&format!(
                    "backup: replay ({}) with {} thread(s), run {run}/{runs}",
                    self.what, self.threads
                ));
                self.measure_once(ctx, s, checked, &check)
            })
            .collect()
    }

    fn measure_once(
        &self,
        ctx: &RunContext,
        s: &Setup,
        checked: &str,
        check: &impl Fn(&Home) -> anyhow::Result<()>,
    ) -> anyhow::Result<Sample> {
        let r = s.work.join("replay");
        remove(&r);
        (self.copy)(self.base, &r)?;
        quiet_disk();
        let mut c = s.mv.command(&r);
        c.args(["playredo", "--threads", &self.threads.to_string()]);
        if let Some(t) = self.to_time {
            c.arg("--toTime").arg(t);
        }
        c.arg("--json").arg("--logfiles").args(self.logs);
        let m = measure::run(&mut c, "mailvault playredo", Some(&r))?;
        let v: serde_json::Value =
            serde_json::from_str(&m.stdout).context("playredo --json output")?;
        let applied = v["applied"]
            .as_u64()
            .context("playredo: no applied count")?;
        check(&Home::at(&r))?;
        remove(&r);
        let ops = applied as f64 / m.secs;
        ctx.progress(&format!(
            "backup:   {applied} ops in {:.2} s: {ops:.0} ops/s ({checked})",
            m.secs
        ));
        Ok(Sample {
            value: ops,
            m,
            growth: None,
        })
    }
}

/// A replay figure in ops/s, judged against the replay goal when `judged`.
fn replay_figure(name: String, samples: &[Sample], messages: usize, judged: bool) -> Figure {
    let mut f = Figure {
        name,
        unit: "ops/s".into(),
        subject: measurement(samples, messages),
        peers: vec![],
        goals: vec![],
    };
    if judged {
        let med = f.subject.median;
        f.goals.push(Goal::evaluate(
            format!("≥ {GOAL_REPLAY_OPS:.0} ops/s"),
            Some(med),
            |v| v >= GOAL_REPLAY_OPS,
            None,
        ));
    }
    f
}
