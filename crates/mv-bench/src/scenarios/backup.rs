//! Scenario `backup`: backup, restore, replay and verify, mailvault side by side
//! with tar, restic and borg on the same data in the same run.
//!
//! One home is loaded with the corpus (delivered over LMTP by the real server,
//! checked), then, with no server running:
//!
//! 1. replay: a copy of the home as it was before the load replays the load's redo
//!    logs with 1 and N threads, whole (`mailvault playredo`) and to a point in
//!    time early in the load (`--toTime`);
//! 2. first full backup into a fresh target / repository per run;
//! 3. `backup verify --read-data` vs `restic check --read-data` / `borg check --verify-data`;
//! 4. restore of every account from that full into an empty place ([`restore_all`]);
//! 5. a second full of the unchanged data into the same target / repositories;
//! 6. incrementals after 1% and 10% new messages (consecutive: each run adds its
//!    own change, then every tool takes its incremental).
//!
//! The peers back up the directories holding the bytes mailvault's backup reads:
//! the home's `db/` (directory and per-mailbox metadata) and `store/` (the message
//! blobs). Every restore and replay is checked: mailvault's restored accounts hold
//! the original messages byte for byte, each peer's restored tree equals the source.

mod replay;
mod sample;
mod setup;
mod steps;

use crate::corpus::{Corpus, Scale};
use crate::measure::tree_digests;
use crate::peers::archivers::Archiver;
use crate::peers::mailvault::{Mailvault, MessageDigests, message_digests};
use crate::scenario::{PeerInfo, RunContext, Scenario, ScenarioReport};
use crate::sysinfo::{human_bytes, shown};
use anyhow::{Context, bail};
use mv_home::Home;
use sample::{can_drop_caches, figure, ratio_goal};
use setup::{Setup, remove};
use std::path::Path;
use std::process::Command;
use steps::Steps;

/// The home's directories the peers back up: what mailvault's full backup reads
/// and copies (the search indexes too: a full backup carries them unless
/// `--exclude SearchIndex`, so the peers copy them as well).
pub const DATA_DIRS: [&str; 3] = ["db", "index", "store"];
/// Goals of issue 5 (backup) and issue 6 (restore).
/// The first full may take at most this many times tar's wall time.
pub const GOAL_FULL_TIME_VS_TAR: f64 = 1.2;
pub const GOAL_FULL_VS_DEDUP: f64 = 2.0;
pub const GOAL_SECOND_FULL_SHARE: f64 = 0.10;
pub const GOAL_RESTORE_VS_RESTIC: f64 = 1.5;
/// An incremental's cost proportional to the change, not to the store: its time
/// at most the change's share of the first full's time plus the allowance an
/// unchanged full gets ([`GOAL_SECOND_FULL_SHARE`]), and its bytes written at
/// most this many times the new messages' bytes.
pub const GOAL_INCR_BYTES_PER_NEW_BYTE: f64 = 2.0;
/// A full's memory: fixed buffers (reader queue, pack being written, SQLite)...
pub const GOAL_FULL_RSS_FIXED: u64 = 128 << 20;
/// ...plus an index entry per blob ("a few dozen bytes each").
pub const GOAL_FULL_RSS_PER_BLOB: u64 = 64;
pub const GOAL_REPLAY_OPS: f64 = 20_000.0;
/// The accounts' password (the mailbox-change load logs in over IMAP).
const PASSWORD: &str = "bench";
/// Prefix of the accounts a restore creates.
pub const RESTORE_PREFIX: &str = "r_";

#[derive(Debug, Clone)]
pub struct BackupParams {
    pub runs: usize,
    /// LMTP connections used to load the corpus (not measured).
    pub connections: usize,
    /// Replay threads measured (1 and N).
    pub replay_threads: Vec<usize>,
    /// Changes before the incrementals, in percent of the corpus's messages.
    pub change_percents: Vec<usize>,
    /// The replay's point in time: after this percentage of the corpus was delivered.
    pub replay_percent: usize,
}

impl BackupParams {
    pub fn for_scale(_scale: Scale, runs: usize) -> BackupParams {
        BackupParams {
            runs,
            connections: 8,
            replay_threads: vec![1, 16],
            change_percents: vec![1, 10],
            replay_percent: 10,
        }
    }
}

#[derive(Default)]
pub struct BackupScenario {
    pub params: Option<BackupParams>,
    /// Overrides the peers (default: tar, restic, borg as found on this machine).
    pub peers: Option<Vec<Archiver>>,
}

/// The restore measured: every account of `label` in `target` into `dest`, an
/// empty directory. Today that is a fresh home (the accounts' domain provisioned,
/// not timed) and `zmrestore -a all -lb LABEL -rf -ca -pre r_ -t TARGET`: each
/// account comes back as `r_<name>` from the full alone (no redo replay, which is
/// what restic's and borg's snapshot restores do too). When a whole-server restore
/// onto an empty home exists (`restoreoffline`), switch it here: the scenario
/// needs only [`restored_digests`] to map the result back to the original names.
pub fn restore_all(
    mv: &Mailvault,
    target: &Path,
    label: &str,
    dest: &Path,
    accounts: &[String],
) -> anyhow::Result<(Command, Home)> {
    let mut domains: Vec<String> = accounts
        .iter()
        .filter_map(|a| a.split_once('@').map(|x| x.1.to_string()))
        .collect();
    domains.sort();
    domains.dedup();
    let home = mv.provision(dest, &[])?;
    for d in &domains {
        let o = mv
            .command(home.root())
            .args(["prov", "cd", d])
            .output()
            .context("mailvault prov cd")?;
        if !o.status.success() {
            bail!(
                "creating domain {d} in the restore home: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
    }
    let mut c = mv.command(home.root());
    c.args(["restore", "-a", "all", "-lb", label, "-rf", "-ca", "-pre"])
        .arg(RESTORE_PREFIX)
        .arg("-t")
        .arg(target);
    Ok((c, home))
}

/// The restored home's messages under the original account names.
pub fn restored_digests(home: &Home) -> anyhow::Result<MessageDigests> {
    Ok(message_digests(home)?
        .into_iter()
        .map(|(k, v)| (k.strip_prefix(RESTORE_PREFIX).unwrap_or(&k).to_string(), v))
        .collect())
}

impl Scenario for BackupScenario {
    fn name(&self) -> &'static str {
        "backup"
    }

    fn summary(&self) -> &'static str {
        "full/second full/incremental backup, restore, replay, verify: mailvault vs tar, restic, borg"
    }

    fn run(&self, ctx: &RunContext) -> anyhow::Result<ScenarioReport> {
        let p = self
            .params
            .clone()
            .unwrap_or_else(|| BackupParams::for_scale(ctx.scale, ctx.runs));
        let runs = p.runs.max(1);
        let peers = self.peers.clone().unwrap_or_else(Archiver::all);
        let peer_info: Vec<PeerInfo> = peers
            .iter()
            .map(|a| PeerInfo {
                name: a.name().into(),
                availability: a.availability(),
            })
            .collect();
        let mut broken: Vec<Option<String>> = peer_info
            .iter()
            .map(|pi| pi.availability.reason())
            .collect();
        for (pi, b) in peer_info.iter().zip(&broken) {
            if let Some(why) = b {
                ctx.progress(&format!("backup: {}: {why}; skipped", pi.name));
            }
        }
        let corpus = Corpus::generate(ctx.scale, ctx.seed);
        let s = self.load(ctx, &p, &corpus)?;
        let result = self.measure(ctx, &p, runs, &peers, &peer_info, &mut broken, &corpus, &s);
        if ctx.keep_work {
            ctx.progress(&format!("backup: kept {}", s.work.display()));
        } else {
            remove(&s.work);
        }
        result
    }
}

impl BackupScenario {
    #[allow(clippy::too_many_arguments)]
    fn measure(
        &self,
        ctx: &RunContext,
        p: &BackupParams,
        runs: usize,
        peers: &[Archiver],
        peer_info: &[PeerInfo],
        broken: &mut [Option<String>],
        corpus: &Corpus,
        s: &Setup,
    ) -> anyhow::Result<ScenarioReport> {
        // 1. Point-in-time replay of the load's redo logs into the pre-load copy,
        // and of the mailbox changes.
        let replay = replay::replay_figures(ctx, p, s, runs)?;
        let steps = Steps::new(ctx, s, peers, runs);
        let held = steps.held;
        // 2. First full backup, fresh target / repository in every run.
        let full = steps.first_full(broken)?;
        let target = full.target();
        // What the peers saw (mailvault ran first in each run, so nothing changed after).
        let source_tree = tree_digests(s.home.root(), &DATA_DIRS)?;
        let first = steps.first_full_figure(&full);
        // 3. Verify: read every byte back.
        let (mv_verify, peer_verify) = steps.verify(broken, &full)?;
        // 4. Restore every account from the first full into an empty place.
        let ((mv_restore, peer_restore), restore_how) =
            steps.restore(broken, &full, corpus, &source_tree)?;
        // 5. Second full of the unchanged data, into the same target / repositories.
        let second = steps.second_full(broken, &full)?;
        // 6. Incrementals after 1% and 10% new messages.
        let incr_figures = steps.incrementals(p, broken, &full)?;

        // Figures in the order of the issue.
        let (second_figure, second_note) = steps.second_full_figure(&second, &full);
        let mut figures = vec![first, second_figure];
        figures.extend(incr_figures);
        let mut f = figure(
            "restore every account from the first full",
            "MB/s",
            &mv_restore,
            peers,
            &peer_restore,
            held,
        );
        if peers.iter().any(|a| a.name() == "restic") {
            f.goals
                .push(ratio_goal(&f, "restic", GOAL_RESTORE_VS_RESTIC, "speed"));
        }
        figures.push(f);
        // Replay figures (whole load, to a time, mailbox changes; each per thread
        // count) after the restore.
        figures.extend(replay);
        figures.push(figure(
            "verify every byte of the backup (`backup verify --read-data`)",
            "MB/s",
            &mv_verify,
            peers,
            &peer_verify,
            held,
        ));

        let settings: Vec<String> = peers
            .iter()
            .map(|a| format!("{}: {}", a.name(), a.settings()))
            .collect();
        Ok(ScenarioReport {
            name: "backup".into(),
            title: "Backup, restore, replay and verify".into(),
            description: format!(
                "The {scale} corpus (seed {seed}: {msgs} messages, {copies} copies once \
                 delivered to their recipients' Inbox) is delivered over LMTP into one home by \
                 `mailvault serve` and checked; then IMAP clients change the mailboxes \
                 (`mailvault serve` again, {connections} connections; in each Inbox, of every \
                 20 messages 12 are marked \\Seen, 2 \\Seen and \\Flagged, 1 is moved to a \
                 folder and 1 is deleted and expunged, one command each), in redo logs of \
                 their own (a one-account full backup rolls the log over before). \
                 Everything below then runs with no server. \
                 The data set is the home's `db/` (directory and per-mailbox metadata), \
                 `index/` (per-mailbox search indexes) and `store/` (message blobs): {bytes} in \
                 total, the bytes mailvault's full backup reads and copies; the peers back up \
                 exactly these three directories of the same home, in the same run, right \
                 after mailvault. MB/s = data set size / wall time (so ratios are \
                 ratios of speed: above 1× mailvault is faster); rows in s: lower is better, \
                 a ratio below 1× means mailvault took less time. Each time includes a \
                 `syncfs` of the destination after the tool exits (mailvault and borg fsync \
                 themselves; tar and restic do not), and `sync` runs before each step{cache}. \
                 Steps, in order: replay of the load's redo logs into a copy of the home \
                 taken before the load, whole (`mailvault playredo --threads N`) and to a \
                 point in time (`--toTime T`, T = the moment {rp}% of the corpus had been \
                 delivered; it still reads every delivery log to the end), and of the \
                 mailbox changes' redo logs into a copy of the home taken after the \
                 deliveries (checked: every message in the same folder, with the same UID, \
                 flags and tags); ops = redo records applied; first full backup into a fresh target or \
                 repository per run (`mailvault backup -f -a all -sync --zipStore -t DIR`); \
                 verify of that backup (`mailvault backup verify --read-data`); restore of \
                 every account from it into an empty place (see the note for the command); \
                 a second full of the unchanged data into the same target and repositories; \
                 then incrementals (`mailvault backup -i`) after 1% and 10% new messages \
                 (drawn from the same generator with seed {seed1}, delivered over LMTP; runs \
                 are consecutive, each after its own change). Every replayed and restored \
                 home is checked to hold every original message byte for byte; every peer's \
                 restored tree is checked to equal the source. Peer settings: {settings}. \
                 Figures are the median of {runs} runs; resources are the tool's process \
                 (peak RSS, `write_bytes` from the kernel's accounting of the child).",
                scale = ctx.scale.name(),
                seed = ctx.seed,
                seed1 = ctx.seed.wrapping_add(1),
                connections = p.connections,
                msgs = s.messages,
                copies = s.copies,
                bytes = human_bytes(s.data_bytes),
                settings = settings.join("; "),
                rp = p.replay_percent,
                cache = if can_drop_caches() {
                    " and the page cache is emptied (`/proc/sys/vm/drop_caches`): every \
                     tool reads from the disk, as a backup of a store larger than memory does"
                } else {
                    "; the page cache could not be emptied (not root), so it is warm and \
                     the tool that runs first in a step reads from the disk for the others"
                },
            ),
            subject: "mailvault".into(),
            peers: peer_info.to_vec(),
            figures,
            notes: vec![
                format!(
                    "restore command (one function, `restore_all` in \
                     crates/mv-bench/src/scenarios/backup.rs, to switch to a whole-server \
                     restore onto an empty home when one exists): `{}` in a fresh home with the \
                     domain provisioned; it restores {} messages in {} accounts, checked \
                     byte-exact against the originals",
                    restore_how
                        .replace(&target.display().to_string(), "TARGET")
                        .replace(&s.work.display().to_string(), "WORK"),
                    held,
                    s.digests.len()
                ),
                second_note,
                format!(
                    "bench directory for this scenario: {}",
                    shown(&ctx.bench_dir)
                ),
            ]
            .into_iter()
            .chain((runs < 3).then(|| {
                format!("only {runs} run(s) per figure: not a median of 3, read the figures as indicative")
            }))
            .collect(),
        })
    }
}
