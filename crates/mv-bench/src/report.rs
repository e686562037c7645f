//! Rendering: a markdown section per scenario, JSON for the whole run, and the
//! update of BENCHMARKS.md (one marked section per scenario, replaced in place when
//! that scenario is run again, so scenarios measured at different times coexist).

use crate::scenario::{PeerResult, ScenarioReport};
use crate::sysinfo::{Machine, human_bytes};
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Machine,
    /// The command line as the user typed it.
    pub command: String,
    /// The git revision of the workspace ("abc1234", "+ uncommitted changes").
    pub revision: String,
    pub started_utc: String,
    pub finished_utc: String,
    /// /proc/loadavg (1, 5, 15 min) when the run started and ended: the machine
    /// may be shared, and a busy one lowers every figure.
    pub load_before: String,
    pub load_after: String,
    pub scale: String,
    pub seed: u64,
    pub runs: usize,
    pub scenarios: Vec<ScenarioReport>,
}

fn fmt_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn fmt_runs(runs: &[f64]) -> String {
    runs.iter()
        .map(|r| fmt_value(*r))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The markdown section of one scenario (without the BENCHMARKS.md markers).
pub fn scenario_markdown(report: &Report, s: &ScenarioReport) -> String {
    let mut md = String::new();
    md.push_str(&format!("## {} (`{}`)\n\n", s.title, s.name));
    md.push_str(&s.description);
    md.push_str("\n\n");
    md.push_str(&format!(
        "- Measured: {} (UTC), revision {}\n",
        report.started_utc, report.revision
    ));
    md.push_str(&format!("- Machine: {}\n", report.machine.one_line()));
    md.push_str(&format!(
        "- Load average (1/5/15 min) at start: {}; at end: {}\n",
        report.load_before, report.load_after
    ));
    md.push_str(&format!("- Command: `{}`\n", report.command));
    for p in &s.peers {
        let status = match &p.availability {
            crate::peers::Availability::Available { version } => version.clone(),
            other => other.reason().unwrap_or_default(),
        };
        md.push_str(&format!("- Peer {}: {}\n", p.name, status));
    }
    md.push('\n');

    // Column set: the subject, each peer, each ratio, goal, verdict.
    let peer_names: Vec<String> = s
        .figures
        .iter()
        .flat_map(|f| f.peers.iter().map(|p| p.peer.clone()))
        .fold(Vec::new(), |mut v, p| {
            if !v.contains(&p) {
                v.push(p);
            }
            v
        });
    md.push_str(&format!("| figure | {} |", s.subject));
    for p in &peer_names {
        md.push_str(&format!(" {p} |"));
    }
    for p in &peer_names {
        md.push_str(&format!(" {} / {p} |", s.subject));
    }
    md.push_str(" goal | met |\n|---|---:|");
    for _ in &peer_names {
        md.push_str("---:|");
    }
    for _ in &peer_names {
        md.push_str("---:|");
    }
    md.push_str("---|---|\n");
    for f in &s.figures {
        let m = &f.subject;
        md.push_str(&format!(
            "| {} ({}) | **{}** (runs {}{}) |",
            cell(&f.name),
            f.unit,
            fmt_value(m.median),
            fmt_runs(&m.runs),
            m.detail
                .as_deref()
                .map(|d| format!("; {d}"))
                .unwrap_or_default()
        ));
        for p in &peer_names {
            let txt = match f.peers.iter().find(|x| &x.peer == p).map(|x| &x.result) {
                Some(PeerResult::Measured(pm)) => format!(
                    "**{}** (runs {}{})",
                    fmt_value(pm.median),
                    fmt_runs(&pm.runs),
                    pm.detail
                        .as_deref()
                        .map(|d| format!("; {d}"))
                        .unwrap_or_default()
                ),
                Some(PeerResult::Skipped { reason }) => format!("— ({})", cell(reason)),
                None => "—".into(),
            };
            md.push_str(&format!(" {txt} |"));
        }
        for p in &peer_names {
            let r = f
                .ratio_to(p)
                .map_or("—".to_string(), |r| format!("{r:.2}×"));
            md.push_str(&format!(" {r} |"));
        }
        let goals = if f.goals.is_empty() {
            ("—".to_string(), "—".to_string())
        } else {
            (
                f.goals
                    .iter()
                    .map(|g| g.text.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
                f.goals
                    .iter()
                    .map(|g| g.verdict())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        };
        md.push_str(&format!(" {} | {} |\n", cell(&goals.0), cell(&goals.1)));
    }

    // Server resources, where measured.
    let mut rows = Vec::new();
    for f in &s.figures {
        let mut add = |who: &str, m: &crate::scenario::Measurement| {
            if let Some(r) = &m.resources {
                rows.push(format!(
                    "| {} | {} | {} | {} | {} | {} |",
                    cell(&f.name),
                    who,
                    r.peak_rss_bytes.map_or("n/a".into(), human_bytes),
                    r.write_bytes.map_or("n/a".into(), human_bytes),
                    r.write_bytes_per_message.map_or("n/a".into(), human_bytes),
                    r.processes
                ));
            }
        };
        add(&s.subject, &f.subject);
        for p in &f.peers {
            if let PeerResult::Measured(m) = &p.result {
                add(&p.peer, m);
            }
        }
    }
    if !rows.is_empty() {
        md.push_str(
            "\nResources (median over runs): peak RSS summed over the measured processes, \
             bytes written to storage by them during the timed part.\n\n\
             | figure | system | peak RSS | bytes written | written per message | processes |\n\
             |---|---|---:|---:|---:|---:|\n",
        );
        for r in rows {
            md.push_str(&r);
            md.push('\n');
        }
    }
    for n in &s.notes {
        md.push_str(&format!("\nNote: {n}\n"));
    }
    md
}

/// The whole run as markdown (printed to stdout).
pub fn markdown(report: &Report) -> String {
    let mut md = String::new();
    for s in &report.scenarios {
        md.push_str(&scenario_markdown(report, s));
        md.push('\n');
    }
    md
}

const PREAMBLE: &str = "# Benchmarks

Figures measured by `mailvault-bench` (crate `crates/mv-bench`) on the machine named in each
section; nothing here is estimated or copied from elsewhere. Each section is written by a run of
the harness (`--write`) and replaced when that scenario is run again, so sections may come from
different runs: each names its own machine, revision and command.

Reproduce all of them with:

```sh
scripts/bench run --write            # builds release, installs missing Debian peers when root
scripts/bench run --scenarios lmtp   # one scenario; see `scripts/bench list`
scripts/bench run --scenarios backup # backup/restore/replay/verify vs tar, restic, borg
```

The corpus the scenarios draw from is deterministic from a seed
(`scripts/bench corpus --scale small|medium|large --seed N --out DIR` writes it as .eml files
and a manifest).
";

fn begin_marker(name: &str) -> String {
    format!("<!-- mailvault-bench:{name}:begin -->")
}

fn end_marker(name: &str) -> String {
    format!("<!-- mailvault-bench:{name}:end -->")
}

/// `existing` (or a fresh file) with each scenario's section replaced or appended.
pub fn update_benchmarks_md(existing: Option<&str>, report: &Report) -> String {
    let mut doc = existing.map_or_else(|| PREAMBLE.to_string(), str::to_string);
    for s in &report.scenarios {
        let (b, e) = (begin_marker(&s.name), end_marker(&s.name));
        let section = format!("{b}\n{}{e}\n", scenario_markdown(report, s));
        match (doc.find(&b), doc.find(&e)) {
            (Some(i), Some(j)) if j > i => {
                let end = j + e.len() + usize::from(doc[j + e.len()..].starts_with('\n'));
                doc.replace_range(i..end, &section);
            }
            _ => {
                if !doc.ends_with("\n\n") {
                    doc.push('\n');
                }
                doc.push_str(&section);
            }
        }
    }
    doc
}

pub fn write_benchmarks_md(path: &Path, report: &Report) -> anyhow::Result<()> {
    let existing = std::fs::read_to_string(path).ok();
    let doc = update_benchmarks_md(existing.as_deref(), report);
    let tmp = path.with_extension("md.tmp");
    std::fs::write(&tmp, doc)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Figure, Goal, Measurement, ScenarioReport};

    fn report(names: &[(&str, f64)]) -> Report {
        Report {
            machine: Machine::describe(Path::new(".")),
            command: "scripts/bench run".into(),
            revision: "abc".into(),
            started_utc: "2026-01-01 00:00".into(),
            finished_utc: "2026-01-01 00:01".into(),
            load_before: "0.00 0.00 0.00".into(),
            load_after: "0.00 0.00 0.00".into(),
            scale: "small".into(),
            seed: 1,
            runs: 3,
            scenarios: names
                .iter()
                .map(|(n, v)| ScenarioReport {
                    name: n.to_string(),
                    title: format!("Scenario {n}"),
                    description: "what".into(),
                    subject: "mailvault".into(),
                    peers: vec![],
                    figures: vec![Figure {
                        name: "f".into(),
                        unit: "ops/s".into(),
                        subject: Measurement::from_runs(vec![*v, *v, *v]),
                        peers: vec![],
                        goals: vec![Goal::evaluate("≥ 1", Some(*v), |x| x >= 1.0, None)],
                    }],
                    notes: vec![],
                })
                .collect(),
        }
    }

    #[test]
    fn sections_are_replaced_in_place_and_new_ones_appended() {
        let first = update_benchmarks_md(None, &report(&[("lmtp", 5.0), ("redo", 7.0)]));
        assert!(first.starts_with("# Benchmarks"));
        let second = update_benchmarks_md(Some(&first), &report(&[("lmtp", 9.0), ("backup", 2.0)]));
        assert_eq!(second.matches("mailvault-bench:lmtp:begin").count(), 1);
        assert!(second.contains("**9.00**") && !second.contains("**5.00**"));
        assert!(second.contains("**7.00**"), "other scenarios stay");
        let (l, r, b) = (
            second.find("lmtp:begin").unwrap(),
            second.find("redo:begin").unwrap(),
            second.find("backup:begin").unwrap(),
        );
        assert!(l < r && r < b, "order kept, new sections at the end");
        assert_eq!(
            update_benchmarks_md(Some(&second), &report(&[("lmtp", 9.0), ("backup", 2.0)])),
            second
        );
    }
}
