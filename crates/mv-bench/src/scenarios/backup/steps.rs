//! Steps 2 to 6 of the backup scenario, each run by mailvault and then by every
//! peer still in: the first full backup, its verify, the restore of every
//! account, a second full of the unchanged data, and the incrementals.

use super::sample::{
    MB, Sample, Series, command_line, figure, median_secs, peer_step, quiet_disk, ratio_goal,
};
use super::setup::{Setup, deliver, first_diff, remove};
use super::{
    BackupParams, DATA_DIRS, GOAL_FULL_RSS_FIXED, GOAL_FULL_RSS_PER_BLOB, GOAL_FULL_TIME_VS_TAR,
    GOAL_FULL_VS_DEDUP, GOAL_INCR_BYTES_PER_NEW_BYTE, GOAL_SECOND_FULL_SHARE, restore_all,
    restored_digests,
};
use crate::corpus::Corpus;
use crate::measure::{self, tree_bytes, tree_digests};
use crate::peers::RunningServer;
use crate::peers::archivers::{Archiver, Kind};
use crate::scenario::{Figure, Goal, RunContext, median_u64};
use crate::sysinfo::human_bytes;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// What every step works with: the loaded home, the peers and the runs.
pub(super) struct Steps<'a> {
    pub(super) ctx: &'a RunContext,
    pub(super) s: &'a Setup,
    pub(super) peers: &'a [Archiver],
    pub(super) runs: usize,
    /// Messages the home holds after the load (the changes deleted some).
    pub(super) held: usize,
    home_root: PathBuf,
    data_mb: f64,
}

/// mailvault's runs of a step, and each peer's.
pub(super) type Runs = (Vec<Sample>, Vec<Series>);

/// The first full backup: its runs, and the target and repositories of its
/// last run, which the later steps use.
pub(super) struct FirstFull {
    pub(super) label: String,
    pub(super) mv: Vec<Sample>,
    pub(super) peers: Vec<Series>,
    /// The directory of the last run: `mailvault/` and one per peer.
    kept: PathBuf,
}

impl FirstFull {
    pub(super) fn target(&self) -> PathBuf {
        self.kept.join("mailvault")
    }

    fn repo(&self, a: &Archiver) -> PathBuf {
        self.kept.join(a.name())
    }
}

impl<'a> Steps<'a> {
    pub(super) fn new(
        ctx: &'a RunContext,
        s: &'a Setup,
        peers: &'a [Archiver],
        runs: usize,
    ) -> Steps<'a> {
        Steps {
            ctx,
            s,
            peers,
            runs,
            held: s.digests.values().map(Vec::len).sum(),
            home_root: s.home.root().to_path_buf(),
            data_mb: s.data_bytes as f64 / MB,
        }
    }

    /// `mailvault backup KIND -a all -sync --zipStore -t TARGET` (`-f` or `-i`)
    /// into an existing target, timed: its seconds and the target's growth.
    fn mv_backup(&self, target: &Path, kind: &str, what: &str) -> anyhow::Result<Sample> {
        quiet_disk();
        let before = tree_bytes(&[target]);
        let mut c = self.s.mv.command(&self.home_root);
        c.args(["backup", kind, "-a", "all", "-sync", "--zipStore", "-t"])
            .arg(target);
        let m = measure::run(&mut c, what, Some(target))?;
        self.ctx
            .progress(&format!("backup:   mailvault: {:.2} s", m.secs));
        Ok(Sample {
            value: m.secs,
            growth: Some(tree_bytes(&[target]).saturating_sub(before)),
            m,
        })
    }

    /// A peer's backup into its repository `repo` as snapshot `name`
    /// ([`Archiver::backup_cmd`]), timed: its seconds and the repository's growth.
    fn peer_backup(
        &self,
        a: &Archiver,
        repo: &Path,
        name: &str,
        incremental: bool,
        what: &str,
    ) -> anyhow::Result<Sample> {
        quiet_disk();
        let before = tree_bytes(&[repo]);
        let m = measure::run(
            &mut a.backup_cmd(repo, &self.home_root, &DATA_DIRS, name, incremental),
            what,
            Some(repo),
        )?;
        Ok(Sample {
            value: m.secs,
            growth: Some(tree_bytes(&[repo]).saturating_sub(before)),
            m,
        })
    }

    /// An empty series for every peer.
    fn fresh(&self) -> Vec<Series> {
        (0..self.peers.len()).map(|_| Ok(Vec::new())).collect()
    }

    /// Step 2: the first full backup, into a fresh target / repository in every run.
    pub(super) fn first_full(&self, broken: &mut [Option<String>]) -> anyhow::Result<FirstFull> {
        let (ctx, s, peers, runs) = (self.ctx, self.s, self.peers, self.runs);
        let (home_root, data_mb) = (&self.home_root, self.data_mb);
        let fresh = || self.fresh();
        let mut label = String::new();
        let mut mv_full: Vec<Sample> = Vec::new();
        let mut peer_full = fresh();
        let mut kept = PathBuf::new();
        for run in 0..runs {
            ctx.progress(&format!(
                "backup: first full backup, run {}/{runs}",
                run + 1
            ));
            let dir = s.work.join(format!("full-{run}"));
            std::fs::create_dir_all(&dir)?;
            let target = dir.join("mailvault");
            std::fs::create_dir_all(&target)?;
            quiet_disk();
            let mut c = s.mv.command(home_root);
            c.args(["backup", "-f", "-a", "all", "-sync", "--zipStore", "-t"])
                .arg(&target);
            let m = measure::run(&mut c, "mailvault backup -f", Some(&target))?;
            label = m
                .stdout
                .lines()
                .find(|l| l.starts_with("full-"))
                .unwrap_or("")
                .to_string();
            if label.is_empty() {
                bail!("mailvault backup -f printed no label: {:?}", m.stdout);
            }
            ctx.progress(&format!("backup:   mailvault: {:.2} s", m.secs));
            mv_full.push(Sample {
                value: data_mb / m.secs,
                growth: Some(tree_bytes(&[&target])),
                m,
            });
            for (i, a) in peers.iter().enumerate() {
                let repo = dir.join(a.name());
                peer_step(&mut broken[i], &mut peer_full[i], ctx, a.name(), || {
                    std::fs::create_dir_all(&repo)?;
                    if let Some(mut c) = a.init_cmd(&repo) {
                        if a.kind == Kind::Borg {
                            std::fs::remove_dir(&repo)?; // borg init wants to create it
                        }
                        measure::run(&mut c, &format!("{} init", a.name()), None)?;
                    }
                    quiet_disk();
                    let before = tree_bytes(&[&repo]);
                    let m = measure::run(
                        &mut a.backup_cmd(&repo, home_root, &DATA_DIRS, "first", true),
                        &format!("{} backup", a.name()),
                        Some(&repo),
                    )?;
                    Ok(Sample {
                        value: data_mb / m.secs,
                        growth: Some(tree_bytes(&[&repo]).saturating_sub(before)),
                        m,
                    })
                });
            }
            if run + 1 < runs {
                remove(&dir);
            } else {
                kept = dir;
            }
        }
        Ok(FirstFull {
            label,
            mv: mv_full,
            peers: peer_full,
            kept,
        })
    }

    /// The first full's figure, with its goals: speed against tar and the
    /// deduplicating peers, and memory.
    pub(super) fn first_full_figure(&self, full: &FirstFull) -> Figure {
        let (s, peers, held) = (self.s, self.peers, self.held);
        let (mv_full, peer_full) = (&full.mv, &full.peers);
        let mut f = figure("first full backup", "MB/s", mv_full, peers, peer_full, held);
        // "≤ 1.2× tar's wall time" is a speed at least 1/1.2 of tar's.
        if peers.iter().any(|a| a.name() == "tar") {
            let mut g = ratio_goal(&f, "tar", 1.0 / GOAL_FULL_TIME_VS_TAR, "speed");
            g.text = format!("wall time ≤ {GOAL_FULL_TIME_VS_TAR}× tar's");
            f.goals.push(g);
        }
        for peer in ["restic", "borg"] {
            if peers.iter().any(|a| a.name() == peer) {
                f.goals
                    .push(ratio_goal(&f, peer, GOAL_FULL_VS_DEDUP, "speed"));
            }
        }
        // Memory must not grow with the blobs beyond a small index entry each: a
        // fixed allowance for the pipeline's buffers plus a few dozen bytes per blob.
        let rss_limit = GOAL_FULL_RSS_FIXED + GOAL_FULL_RSS_PER_BLOB * s.messages as u64;
        let peak = mv_full.iter().filter_map(|x| x.m.peak_rss_bytes).max();
        f.goals.push(Goal::evaluate(
            format!(
                "peak RSS ≤ {} + {GOAL_FULL_RSS_PER_BLOB} B per blob ({} for {} blobs)",
                human_bytes(GOAL_FULL_RSS_FIXED),
                human_bytes(rss_limit),
                s.messages
            ),
            peak.map(|p| p as f64),
            |v| v <= rss_limit as f64,
            peak.is_none().then(|| "peak RSS not measured".to_string()),
        ));
        f
    }

    /// Step 3, verify: every byte of the first full read back, by mailvault and by
    /// each peer that keeps checksums.
    pub(super) fn verify(
        &self,
        broken: &[Option<String>],
        full: &FirstFull,
    ) -> anyhow::Result<Runs> {
        let (ctx, s, peers, runs) = (self.ctx, self.s, self.peers, self.runs);
        let target = full.target();
        let mut mv_verify = Vec::new();
        let mut peer_verify = self.fresh();
        for run in 0..runs {
            ctx.progress(&format!(
                "backup: verify --read-data, run {}/{runs}",
                run + 1
            ));
            quiet_disk();
            let mut c = s.mv.command(&self.home_root);
            c.args(["backup", "verify", "--read-data", "-t"])
                .arg(&target);
            let m = measure::run(&mut c, "mailvault backup verify --read-data", None)?;
            ctx.progress(&format!("backup:   mailvault: {:.2} s", m.secs));
            mv_verify.push(Sample {
                value: self.data_mb / m.secs,
                m,
                growth: None,
            });
            for (i, a) in peers.iter().enumerate() {
                let Some(mut c) = a.check_cmd(&full.repo(a)) else {
                    peer_verify[i] = Err(format!("{} keeps no checksums to verify", a.name()));
                    continue;
                };
                let mut b = broken[i].clone();
                peer_step(&mut b, &mut peer_verify[i], ctx, a.name(), || {
                    quiet_disk();
                    let m = measure::run(&mut c, &format!("{} check", a.name()), None)?;
                    Ok(Sample {
                        value: self.data_mb / m.secs,
                        m,
                        growth: None,
                    })
                });
            }
        }
        Ok((mv_verify, peer_verify))
    }

    /// Step 4: restore every account from the first full into an empty place; each
    /// result checked against what was backed up (`source_tree`: the peers'
    /// data directories). Returns the runs and mailvault's restore command.
    pub(super) fn restore(
        &self,
        broken: &[Option<String>],
        full: &FirstFull,
        corpus: &Corpus,
        source_tree: &[(String, String)],
    ) -> anyhow::Result<(Runs, String)> {
        let (ctx, s, peers, runs) = (self.ctx, self.s, self.peers, self.runs);
        let target = full.target();
        let accounts: Vec<String> = corpus.accounts.iter().map(|a| a.email.clone()).collect();
        let mut mv_restore = Vec::new();
        let mut peer_restore = self.fresh();
        let mut restore_how = String::new();
        for run in 0..runs {
            ctx.progress(&format!("backup: restore, run {}/{runs}", run + 1));
            let dest = s.work.join("restore-mailvault");
            remove(&dest);
            std::fs::create_dir_all(&dest)?;
            let (mut c, rhome) = restore_all(&s.mv, &target, &full.label, &dest, &accounts)?;
            restore_how = command_line(&c);
            quiet_disk();
            let m = measure::run(&mut c, "mailvault restore", Some(&dest))?;
            let got = restored_digests(&rhome)?;
            if got != s.digests {
                bail!(
                    "the restored accounts differ from the original: {}",
                    first_diff(&s.digests, &got)
                );
            }
            ctx.progress(&format!(
                "backup:   mailvault: {:.2} s (restored messages checked byte-exact)",
                m.secs
            ));
            mv_restore.push(Sample {
                value: self.data_mb / m.secs,
                m,
                growth: None,
            });
            remove(&dest);
            for (i, a) in peers.iter().enumerate() {
                let dest = s.work.join(format!("restore-{}", a.name()));
                let mut b = broken[i].clone();
                peer_step(&mut b, &mut peer_restore[i], ctx, a.name(), || {
                    remove(&dest);
                    std::fs::create_dir_all(&dest)?;
                    quiet_disk();
                    let m = measure::run(
                        &mut a.restore_cmd(&full.repo(a), "first", &dest),
                        &format!("{} restore", a.name()),
                        Some(&dest),
                    )?;
                    let got = tree_digests(&dest, &DATA_DIRS)?;
                    if got != source_tree {
                        bail!(
                            "{}'s restored tree differs from the source ({} files, {} expected)",
                            a.name(),
                            got.len(),
                            source_tree.len()
                        );
                    }
                    Ok(Sample {
                        value: self.data_mb / m.secs,
                        m,
                        growth: None,
                    })
                });
                remove(&dest);
            }
        }
        Ok(((mv_restore, peer_restore), restore_how))
    }

    /// Step 5: a second full of the unchanged data, into the same target / repositories.
    pub(super) fn second_full(
        &self,
        broken: &mut [Option<String>],
        full: &FirstFull,
    ) -> anyhow::Result<Runs> {
        let (ctx, peers, runs) = (self.ctx, self.peers, self.runs);
        let target = full.target();
        let mut mv_second = Vec::new();
        let mut peer_second = self.fresh();
        for run in 0..runs {
            ctx.progress(&format!(
                "backup: second full of unchanged data, run {}/{runs}",
                run + 1
            ));
            mv_second.push(self.mv_backup(&target, "-f", "mailvault backup -f (second)")?);
            for (i, a) in peers.iter().enumerate() {
                let r = full.repo(a);
                peer_step(&mut broken[i], &mut peer_second[i], ctx, a.name(), || {
                    let what = format!("{} backup (second)", a.name());
                    self.peer_backup(a, &r, &format!("second-{run}"), false, &what)
                });
            }
        }
        Ok((mv_second, peer_second))
    }

    /// The second full's figure, with its goals (time and bytes written, each a
    /// share of the first full's), and the note that states both shares.
    pub(super) fn second_full_figure(&self, second: &Runs, full: &FirstFull) -> (Figure, String) {
        let (mv_second, peer_second) = second;
        let mv_full = &full.mv;
        let mut f = figure(
            "second full, unchanged data",
            "s",
            mv_second,
            self.peers,
            peer_second,
            self.held,
        );
        let time_share = median_secs(mv_second) / median_secs(mv_full).max(1e-9);
        f.goals.push(Goal::evaluate(
            format!(
                "time ≤ {:.0}% of the first full's",
                GOAL_SECOND_FULL_SHARE * 100.0
            ),
            Some(time_share),
            |v| v <= GOAL_SECOND_FULL_SHARE,
            None,
        ));
        let wb = |v: &[Sample]| median_u64(&v.iter().map(|s| s.m.write_bytes).collect::<Vec<_>>());
        let bytes_share = wb(mv_second) as f64 / wb(mv_full).max(1) as f64;
        f.goals.push(Goal::evaluate(
            format!(
                "bytes written ≤ {:.0}% of the first full's",
                GOAL_SECOND_FULL_SHARE * 100.0
            ),
            Some(bytes_share),
            |v| v <= GOAL_SECOND_FULL_SHARE,
            None,
        ));
        let note = format!(
            "second full vs first full (mailvault): time {:.1}%, bytes written {:.1}%",
            time_share * 100.0,
            bytes_share * 100.0
        );
        (f, note)
    }

    /// Step 6: incrementals after each change of `p.change_percents` new messages
    /// (consecutive: each run delivers its own change, then every tool takes its
    /// incremental); one figure per change.
    pub(super) fn incrementals(
        &self,
        p: &BackupParams,
        broken: &mut [Option<String>],
        full: &FirstFull,
    ) -> anyhow::Result<Vec<Figure>> {
        let (ctx, s, peers, runs) = (self.ctx, self.s, self.peers, self.runs);
        let target = full.target();
        let mv_full = &full.mv;
        let change = Corpus::generate(ctx.scale, ctx.seed.wrapping_add(1));
        let mut next = 0usize;
        let mut incr_figures = Vec::new();
        for &pct in &p.change_percents {
            let n = (s.messages * pct / 100).max(1);
            let mut mv_incr = Vec::new();
            let mut peer_incr = self.fresh();
            // Bytes of the messages each run adds.
            let mut added: Vec<u64> = Vec::new();
            for run in 0..runs {
                ctx.progress(&format!(
                    "backup: incremental after {pct}% change ({n} new messages), run {}/{runs}",
                    run + 1
                ));
                let end = (next + n).min(change.messages.len());
                added.push(
                    (next..end)
                        .map(|i| change.message(i).len() as u64)
                        .sum::<u64>(),
                );
                let server = s.mv.serve(&s.home, &s.work)?;
                deliver(server.lmtp_addr(), &change, next..end, p.connections)
                    .context("delivering the change")?;
                server.stop()?;
                next = end;
                mv_incr.push(self.mv_backup(&target, "-i", "mailvault backup -i")?);
                for (i, a) in peers.iter().enumerate() {
                    let r = full.repo(a);
                    peer_step(&mut broken[i], &mut peer_incr[i], ctx, a.name(), || {
                        let what = format!("{} incremental", a.name());
                        self.peer_backup(a, &r, &format!("incr{pct}-{run}"), true, &what)
                    });
                }
            }
            let mut f = figure(
                &format!("incremental after {pct}% change ({n} new messages)"),
                "s",
                &mv_incr,
                peers,
                &peer_incr,
                n,
            );
            let allowed = pct as f64 / 100.0 + GOAL_SECOND_FULL_SHARE;
            f.goals.push(Goal::evaluate(
                format!("time ≤ {:.0}% of the first full's", allowed * 100.0),
                Some(median_secs(&mv_incr) / median_secs(mv_full).max(1e-9)),
                |v| v <= allowed,
                None,
            ));
            let written = median_u64(&mv_incr.iter().map(|s| s.m.write_bytes).collect::<Vec<_>>());
            f.goals.push(Goal::evaluate(
                format!("bytes written ≤ {GOAL_INCR_BYTES_PER_NEW_BYTE}× the new messages'"),
                Some(written as f64 / median_u64(&added).max(1) as f64),
                |v| v <= GOAL_INCR_BYTES_PER_NEW_BYTE,
                None,
            ));
            incr_figures.push(f);
        }
        Ok(incr_figures)
    }
}
