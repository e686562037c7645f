//! The backup part of scenario `scale`: the home that served N accounts (one
//! message each, then the random deliveries), backed up with the server
//! stopped: a first full into a fresh target (time, bytes, files and
//! directories created), a second full of the unchanged data, an incremental
//! after 1% of the accounts received a message, and the restore of one account
//! out of N; the first full side by side with tar and restic of the same data
//! (the home's `db`, `index` and `store`).

use crate::lmtp_client::{self, Job};
use crate::measure::{self, tree_bytes};
use crate::peers::RunningServer;
use crate::peers::archivers::{Archiver, Kind};
use crate::peers::mailvault::Mailvault;
use crate::scenario::{Figure, Goal, Measurement, PeerFigure, PeerResult, RunContext};
use crate::scenarios::backup::DATA_DIRS;
use crate::sysinfo::human_bytes;
use anyhow::Context;
use std::path::Path;

/// Goals (issue 22) of a server of 10,000 accounts.
pub const GOAL_UNCHANGED_BYTES_PER_ACCOUNT: f64 = 2048.0;
/// An unchanged full's time, at most this share of the first full's.
pub const GOAL_UNCHANGED_TIME_SHARE: f64 = 0.10;
/// An incremental after 1% of the accounts changed: at most this share of the
/// first full's time and bytes.
pub const GOAL_INCREMENTAL_SHARE: f64 = 0.05;
pub const GOAL_RESTORE_ONE_S: f64 = 2.0;

/// One measured backup step.
#[derive(Debug, Clone, Copy, Default)]
pub struct Step {
    pub secs: f64,
    /// Growth of the target or repository.
    pub bytes: u64,
    /// Files and directories that appeared in it.
    pub entries: u64,
}

/// What the backups of the scale home cost.
#[derive(Debug, Clone)]
pub struct BackupFigures {
    pub full: Step,
    pub unchanged: Step,
    pub incremental: Step,
    /// Accounts that received a message before the incremental.
    pub changed: usize,
    pub restore_one_secs: f64,
    /// Each archiver's first full of the same data, or why it did not run.
    pub peers: Vec<(&'static str, Result<Step, String>)>,
}

/// Files and directories under `dir`.
pub fn count_entries(dir: &Path) -> u64 {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(list) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in list.flatten() {
            n += 1;
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    n
}

/// Runs `cmd` as a measured step whose output lands in `dir`.
fn step(cmd: &mut std::process::Command, what: &str, dir: &Path) -> anyhow::Result<Step> {
    let (bytes, entries) = (tree_bytes(&[dir]), count_entries(dir));
    let m = measure::run(cmd, what, Some(dir))?;
    Ok(Step {
        secs: m.secs,
        bytes: tree_bytes(&[dir]).saturating_sub(bytes),
        entries: count_entries(dir).saturating_sub(entries),
    })
}

/// The backups of `home` (its server stopped): see the module docs. `deliver`
/// gives the message the `i`th changed account receives.
pub fn run_backups(
    ctx: &RunContext,
    mv: &Mailvault,
    home: &mv_home::Home,
    work: &Path,
    accounts: &[String],
    archivers: &[Archiver],
    deliver: &dyn Fn(usize, &str) -> Job,
) -> anyhow::Result<BackupFigures> {
    let target = work.join("backup-target");
    std::fs::create_dir_all(&target)?;
    let backup = |kind: &str| {
        let mut c = mv.command(home.root());
        c.args(["backup", kind, "-a", "all", "-sync", "--zipStore", "-t"])
            .arg(&target);
        c
    };
    ctx.progress(&format!(
        "scale: mailvault: full backup of {} accounts",
        accounts.len()
    ));
    let full = step(&mut backup("-f"), "mailvault backup -f", &target)?;
    ctx.progress(&format!("scale: mailvault: full in {:.1} s", full.secs));
    let unchanged = step(
        &mut backup("-f"),
        "mailvault backup -f (unchanged)",
        &target,
    )?;
    ctx.progress(&format!(
        "scale: mailvault: unchanged full in {:.1} s",
        unchanged.secs
    ));

    // 1% of the accounts (every hundredth) receive a message, over LMTP.
    let changed: Vec<&String> = accounts.iter().step_by(100).collect();
    let server = mv.serve(home, work)?;
    let jobs: Vec<Job> = changed
        .iter()
        .enumerate()
        .map(|(i, a)| deliver(i, a))
        .collect();
    let load = lmtp_client::run_load(server.lmtp_addr(), 4, &jobs)
        .context("messages to 1% of the accounts")?;
    anyhow::ensure!(
        load.failures.is_empty(),
        "{} deliveries to 1% of the accounts failed",
        load.failures.len()
    );
    server.stop()?;
    let incremental = step(&mut backup("-i"), "mailvault backup -i", &target)?;
    ctx.progress(&format!(
        "scale: mailvault: incremental in {:.1} s",
        incremental.secs
    ));

    // One account back, under a new name, with its redo replayed.
    let one = &accounts[accounts.len() / 2];
    let mut c = mv.command(home.root());
    c.args(["restore", "-a", one, "-ca", "-pre", "r_", "-t"])
        .arg(&target);
    let restore = measure::run(&mut c, "mailvault restore -a (one account)", None)?;

    let mut peers = Vec::new();
    for a in archivers {
        if let Some(why) = a.availability().reason() {
            peers.push((a.name(), Err(why)));
            continue;
        }
        ctx.progress(&format!("scale: {}: backup of the same data", a.name()));
        let repo = work.join(format!("repo-{}", a.name()));
        let run = (|| {
            std::fs::create_dir_all(&repo)?;
            if let Some(mut c) = a.init_cmd(&repo) {
                if a.kind == Kind::Borg {
                    std::fs::remove_dir(&repo)?; // borg init wants to create it
                }
                measure::run(&mut c, &format!("{} init", a.name()), None)?;
            }
            step(
                &mut a.backup_cmd(&repo, home.root(), &DATA_DIRS, "first", true),
                &format!("{} backup", a.name()),
                &repo,
            )
        })();
        peers.push((a.name(), run.map_err(|e| format!("failed: {e:#}"))));
    }
    Ok(BackupFigures {
        full,
        unchanged,
        incremental,
        changed: changed.len(),
        restore_one_secs: restore.secs,
        peers,
    })
}

fn step_detail(s: &Step, accounts: usize) -> String {
    format!(
        "{:.2} s, +{} ({} per account), {} files and directories created",
        s.secs,
        human_bytes(s.bytes),
        human_bytes(s.bytes / accounts.max(1) as u64),
        s.entries
    )
}

/// The report's figures. `scaled`: a goal set for 10,000 accounts, left
/// unevaluated at other sizes.
pub fn figures(b: &BackupFigures, accounts: usize, scaled: &dyn Fn(Goal) -> Goal) -> Vec<Figure> {
    let n = accounts.max(1) as f64;
    let measured = |value: f64, detail: String| {
        let mut m = Measurement::from_runs(vec![value]);
        m.detail = Some(detail);
        m
    };
    let peers = b
        .peers
        .iter()
        .map(|(name, r)| PeerFigure {
            peer: (*name).into(),
            result: match r {
                Ok(s) => PeerResult::Measured(measured(s.secs, step_detail(s, accounts))),
                Err(reason) => PeerResult::Skipped {
                    reason: reason.clone(),
                },
            },
        })
        .collect();
    let share = |part: f64, whole: f64| (whole > 0.0).then(|| part / whole);
    let unchanged_per_account = b.unchanged.bytes as f64 / n;
    vec![
        Figure {
            name: format!("first full backup, {accounts} accounts"),
            unit: "s".into(),
            subject: measured(b.full.secs, step_detail(&b.full, accounts)),
            peers,
            goals: vec![],
        },
        Figure {
            name: format!("unchanged full backup, {accounts} accounts: bytes per account"),
            unit: "B/account".into(),
            subject: measured(unchanged_per_account, step_detail(&b.unchanged, accounts)),
            peers: vec![],
            goals: vec![
                Goal::evaluate(
                    format!("≤ {GOAL_UNCHANGED_BYTES_PER_ACCOUNT} B per account"),
                    Some(unchanged_per_account),
                    |v| v <= GOAL_UNCHANGED_BYTES_PER_ACCOUNT,
                    None,
                ),
                Goal::evaluate(
                    "≤ 1 file or directory created per account",
                    Some(b.unchanged.entries as f64 / n),
                    |v| v <= 1.0,
                    None,
                ),
                scaled(Goal::evaluate(
                    format!(
                        "time ≤ {:.0}% of the first full's",
                        GOAL_UNCHANGED_TIME_SHARE * 100.0
                    ),
                    share(b.unchanged.secs, b.full.secs),
                    |r| r <= GOAL_UNCHANGED_TIME_SHARE,
                    None,
                )),
            ],
        },
        Figure {
            name: format!(
                "incremental backup after {} of {accounts} accounts received a message",
                b.changed
            ),
            unit: "s".into(),
            subject: measured(b.incremental.secs, step_detail(&b.incremental, accounts)),
            peers: vec![],
            goals: vec![
                scaled(Goal::evaluate(
                    format!(
                        "time ≤ {:.0}% of the first full's",
                        GOAL_INCREMENTAL_SHARE * 100.0
                    ),
                    share(b.incremental.secs, b.full.secs),
                    |r| r <= GOAL_INCREMENTAL_SHARE,
                    None,
                )),
                scaled(Goal::evaluate(
                    format!(
                        "bytes ≤ {:.0}% of the first full's",
                        GOAL_INCREMENTAL_SHARE * 100.0
                    ),
                    share(b.incremental.bytes as f64, b.full.bytes as f64),
                    |r| r <= GOAL_INCREMENTAL_SHARE,
                    None,
                )),
            ],
        },
        Figure {
            name: format!("restore of one account out of {accounts}"),
            unit: "s".into(),
            subject: Measurement::from_runs(vec![b.restore_one_secs]),
            peers: vec![],
            goals: vec![scaled(Goal::evaluate(
                format!("≤ {GOAL_RESTORE_ONE_S} s"),
                Some(b.restore_one_secs),
                |s| s <= GOAL_RESTORE_ONE_S,
                None,
            ))],
        },
    ]
}
