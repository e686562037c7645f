//! Scenario `scale`: a server of many accounts, most of them idle.
//!
//! mailvault: a fresh home provisioned through batch `zmprov` (`ca` lines with
//! passwords on stdin, the way administrators provision), timed, with its peak
//! RSS. Then, for mailvault and Dovecot (passwd-file users, Maildirs) alike:
//! the server started, one message delivered to every account, the server left
//! idle for a while, its resident memory and open files (summed over its
//! process tree) taken; then LMTP deliveries to recipients drawn at random
//! among all the accounts over 16 connections; then the server stopped and
//! every acknowledged message checked to be stored exactly once. Then
//! mailvault's home is backed up (`scenarios/scale_backup.rs`): a first full, an
//! unchanged full, an incremental after 1% of the accounts changed, the restore
//! of one account; the first full beside tar and restic of the same data.

use crate::corpus::{Scale, fixed_message_id, fixed_size_message};
use crate::lmtp_client::{self, Job};
use crate::peers::archivers::{Archiver, Kind};
use crate::peers::dovecot::Dovecot;
use crate::peers::mailvault::Mailvault;
use crate::peers::{LmtpTarget, RunningServer};
use crate::rng::SplitMix64;
use crate::scenario::{
    Figure, Goal, Measurement, PeerFigure, PeerInfo, PeerResult, RunContext, Scenario,
    ScenarioReport,
};
use crate::scenarios::scale_backup::{self, BackupFigures};
use crate::sysinfo::{human_bytes, process_tree};
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Goals (issue 22): provisioning 10,000 accounts.
pub const GOAL_PROVISION_S: f64 = 60.0;
pub const GOAL_PROVISION_RSS_MB: f64 = 100.0;
/// Idle server: RSS at most this, and at most this many times Dovecot's.
pub const GOAL_IDLE_RSS_MB: f64 = 150.0;
pub const GOAL_IDLE_RSS_RATIO: f64 = 2.0;
pub const GOAL_OPEN_FILES: f64 = 1000.0;
/// LMTP to random recipients: at least this many times Dovecot's rate.
pub const GOAL_LMTP_RATIO: f64 = 1.5;

const DOMAIN: &str = "scale.example";
const SENDER: &str = "bench.sender@partners.example";

#[derive(Debug, Clone)]
pub struct ScaleParams {
    pub accounts: usize,
    /// Accounts created with a password (the first ones).
    pub passwords: usize,
    /// Messages delivered to random recipients (after one to each account).
    pub messages: usize,
    pub connections: usize,
    pub message_size: usize,
    /// How long the server is left alone before its idle figures are taken.
    pub idle: Duration,
    /// mailvault's `mailbox_open_handles` (`None`: its default).
    pub open_handles: Option<usize>,
}

impl ScaleParams {
    pub fn for_scale(scale: Scale) -> ScaleParams {
        match scale {
            Scale::Small => ScaleParams {
                accounts: 300,
                passwords: 300,
                messages: 1_000,
                connections: 16,
                message_size: 4 * 1024,
                idle: Duration::from_secs(5),
                open_handles: None,
            },
            Scale::Medium | Scale::Large => ScaleParams {
                accounts: 10_000,
                passwords: 10_000,
                messages: 16_000,
                connections: 16,
                message_size: 4 * 1024,
                idle: Duration::from_secs(30),
                open_handles: None,
            },
        }
    }
}

#[derive(Default)]
pub struct ScaleScenario {
    pub params: Option<ScaleParams>,
    /// Overrides the peers (default: Dovecot, as found on this machine).
    pub peers: Option<Vec<Box<dyn LmtpTarget>>>,
    /// Overrides the tools the backups are compared with (default: tar and
    /// restic, as found on this machine).
    pub archivers: Option<Vec<Archiver>>,
}

/// What batch `zmprov` cost.
#[derive(Debug, Clone, Copy)]
pub struct Provisioning {
    pub seconds: f64,
    pub peak_rss_bytes: u64,
}

/// Batch `zmprov` of the scenario's accounts, and of the same accounts
/// without a password into another fresh home: the difference is what the
/// password hashes (Argon2id) cost, the rest what creating accounts costs.
#[derive(Debug, Clone, Copy)]
pub struct ProvisioningSplit {
    pub with_passwords: Provisioning,
    pub without_passwords: Provisioning,
}

impl ProvisioningSplit {
    /// The share of the batch's time spent hashing passwords (0 when the
    /// batch without them took as long).
    pub fn hashing_share(&self) -> f64 {
        let with = self.with_passwords.seconds;
        if with <= 0.0 {
            return 0.0;
        }
        ((with - self.without_passwords.seconds) / with).clamp(0.0, 1.0)
    }
}

/// What one server showed.
#[derive(Debug, Clone, Copy)]
pub struct ServerFigures {
    pub idle_rss_bytes: u64,
    pub idle_open_files: usize,
    pub messages_per_s: f64,
}

pub fn account(i: usize) -> String {
    format!("user{i:05}@{DOMAIN}")
}

/// Runs `mailvault --home HOME prov` with `input` on stdin; returns the time it
/// took and its peak RSS (from `wait4`).
// Reaped by wait4 below, which also gives its resource usage.
#[allow(clippy::zombie_processes)]
pub fn batch_zmprov(mailvault: &Path, home: &Path, input: &[u8]) -> anyhow::Result<Provisioning> {
    let started = Instant::now();
    let mut child = Command::new(mailvault)
        .arg("--home")
        .arg(home)
        .arg("prov")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", mailvault.display()))?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let mut stderr = child.stderr.take().context("stderr")?;
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child,
    // which it also reaps (so `child` is not waited for again).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let seconds = started.elapsed().as_secs_f64();
    let _ = writer.join();
    let errors = errors.join().unwrap_or_default();
    if pid != child.id() as i32 || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!(
            "zmprov failed: {}",
            errors.lines().take(3).collect::<Vec<_>>().join("; ")
        );
    }
    Ok(Provisioning {
        seconds,
        peak_rss_bytes: usage.ru_maxrss as u64 * 1024,
    })
}

/// The `zmprov` input: the domain, then one `ca` per account, the first
/// `with_password` of them with a password.
pub fn ca_lines(accounts: &[String], with_password: usize) -> Vec<u8> {
    let mut s = format!("cd {DOMAIN}\n");
    for (i, a) in accounts.iter().enumerate() {
        if i < with_password {
            s.push_str(&format!("ca {a} pw-{i}-secret\n"));
        } else {
            s.push_str(&format!("ca {a} ''\n"));
        }
    }
    s.into_bytes()
}

/// Resident memory now (VmRSS) summed over a process tree, in bytes.
pub fn tree_rss(root: u32) -> u64 {
    process_tree(root)
        .into_iter()
        .filter_map(|pid| {
            let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .sum::<u64>()
        * 1024
}

/// Open file descriptors summed over a process tree.
pub fn tree_open_files(root: u32) -> usize {
    process_tree(root)
        .into_iter()
        .map(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|d| d.count())
                .unwrap_or(0)
        })
        .sum()
}

fn job(seed: u64, index: u64, to: &str, size: usize) -> Job {
    let msg = fixed_size_message(seed, index, SENDER, to, size);
    Job {
        from: SENDER.into(),
        rcpts: vec![to.to_string()],
        data: Arc::new(lmtp_client::wire_data(&msg)),
    }
}

/// Index of the first random delivery (after one per account).
const RANDOM_BASE: u64 = 1 << 40;
/// Index of the first message to the accounts changed before the incremental.
const CHANGE_BASE: u64 = 1 << 41;

/// One message to each account, idle figures, random deliveries, then stops
/// the server and checks every acknowledged message.
pub fn exercise(
    ctx: &RunContext,
    server: Box<dyn RunningServer>,
    accounts: &[String],
    p: &ScaleParams,
    who: &str,
) -> anyhow::Result<ServerFigures> {
    let addr = server.lmtp_addr();
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let first: Vec<Job> = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            expected
                .entry(a.clone())
                .or_default()
                .push(fixed_message_id(ctx.seed, i as u64));
            job(ctx.seed, i as u64, a, p.message_size)
        })
        .collect();
    ctx.progress(&format!(
        "scale: {who}: one message to each of {} accounts",
        accounts.len()
    ));
    let w = lmtp_client::run_load(addr, p.connections, &first).context("first messages")?;
    anyhow::ensure!(
        w.failures.is_empty(),
        "{} first deliveries failed, e.g. {:?}",
        w.failures.len(),
        &w.failures[..w.failures.len().min(3)]
    );
    drop(first);
    ctx.progress(&format!("scale: {who}: idle for {} s", p.idle.as_secs()));
    std::thread::sleep(p.idle);
    let idle_rss_bytes = tree_rss(server.pid());
    let idle_open_files = tree_open_files(server.pid());
    let mut rng = SplitMix64::stream(ctx.seed, 22, 0);
    let jobs: Vec<Job> = (0..p.messages as u64)
        .map(|k| {
            let to = &accounts[rng.below(accounts.len() as u64) as usize];
            expected
                .entry(to.clone())
                .or_default()
                .push(fixed_message_id(ctx.seed, RANDOM_BASE + k));
            job(ctx.seed, RANDOM_BASE + k, to, p.message_size)
        })
        .collect();
    ctx.progress(&format!(
        "scale: {who}: {} messages to random recipients over {} connections",
        jobs.len(),
        p.connections
    ));
    let load = lmtp_client::run_load(addr, p.connections, &jobs)?;
    anyhow::ensure!(
        load.failures.is_empty(),
        "{} of {} deliveries failed, e.g. {:?}",
        load.failures.len(),
        jobs.len(),
        &load.failures[..load.failures.len().min(3)]
    );
    server
        .stop_and_verify(&expected)
        .context("checking that every acknowledged message is stored")?;
    Ok(ServerFigures {
        idle_rss_bytes,
        idle_open_files,
        messages_per_s: load.messages_per_s(),
    })
}

/// mailvault's part: provisioning through batch `zmprov`, then the server,
/// then the backups of what it stored.
pub fn run_mailvault(
    ctx: &RunContext,
    accounts: &[String],
    p: &ScaleParams,
    archivers: &[Archiver],
) -> anyhow::Result<(ProvisioningSplit, ServerFigures, BackupFigures)> {
    let dir = tempfile::Builder::new()
        .prefix("scale-mailvault-")
        .tempdir_in(&ctx.bench_dir)?;
    let home = mv_home::Home::at(&dir.path().join("home"));
    let mv = Mailvault::new(ctx.mailvault.clone());
    let st = mv.command(home.root()).arg("init").output()?;
    anyhow::ensure!(
        st.status.success(),
        "mailvault init: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    ctx.progress(&format!(
        "scale: mailvault: batch zmprov of {} accounts",
        accounts.len()
    ));
    let with_passwords = batch_zmprov(
        &ctx.mailvault,
        home.root(),
        &ca_lines(accounts, p.passwords),
    )?;
    ctx.progress(&format!(
        "scale: mailvault: provisioned in {:.1} s, peak RSS {}",
        with_passwords.seconds,
        human_bytes(with_passwords.peak_rss_bytes)
    ));
    let without_passwords = {
        let bare = mv_home::Home::at(&dir.path().join("home-no-passwords"));
        let st = mv.command(bare.root()).arg("init").output()?;
        anyhow::ensure!(
            st.status.success(),
            "mailvault init: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        let prov = batch_zmprov(&ctx.mailvault, bare.root(), &ca_lines(accounts, 0))?;
        std::fs::remove_dir_all(bare.root())
            .with_context(|| format!("removing {}", bare.root().display()))?;
        prov
    };
    ctx.progress(&format!(
        "scale: mailvault: the same accounts without passwords in {:.1} s",
        without_passwords.seconds
    ));
    let prov = ProvisioningSplit {
        with_passwords,
        without_passwords,
    };
    if let Some(n) = p.open_handles {
        let mut cfg = home.open()?;
        cfg.set("mailbox_open_handles", &n.to_string())?;
        cfg.save(&home.localconfig_path())?;
    }
    let server = mv.serve(&home, dir.path())?;
    let figures = exercise(ctx, Box::new(server), accounts, p, "mailvault")?;
    let backups = scale_backup::run_backups(
        ctx,
        &mv,
        &home,
        dir.path(),
        accounts,
        archivers,
        &|i, to| job(ctx.seed, CHANGE_BASE + i as u64, to, p.message_size),
    )?;
    if ctx.keep_work {
        let _ = dir.keep();
    }
    Ok((prov, figures, backups))
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl Scenario for ScaleScenario {
    fn name(&self) -> &'static str {
        "scale"
    }

    fn summary(&self) -> &'static str {
        "many accounts: batch zmprov time and memory, idle RSS and open files, LMTP to random recipients, mailvault vs Dovecot"
    }

    fn run(&self, ctx: &RunContext) -> anyhow::Result<ScenarioReport> {
        let p = self
            .params
            .clone()
            .unwrap_or_else(|| ScaleParams::for_scale(ctx.scale));
        let accounts: Vec<String> = (0..p.accounts).map(account).collect();
        let default_peers: Vec<Box<dyn LmtpTarget>> = vec![Box::new(Dovecot::detect())];
        let peers = self.peers.as_ref().unwrap_or(&default_peers);
        let archivers = self
            .archivers
            .clone()
            .unwrap_or_else(|| vec![Archiver::detect(Kind::Tar), Archiver::detect(Kind::Restic)]);
        let mut peer_info: Vec<PeerInfo> = peers
            .iter()
            .map(|t| PeerInfo {
                name: t.name().into(),
                availability: t.availability(),
            })
            .collect();
        peer_info.extend(archivers.iter().map(|a| PeerInfo {
            name: a.name().into(),
            availability: a.availability(),
        }));

        let (prov, mv, backups) = run_mailvault(ctx, &accounts, &p, &archivers)?;
        let mut peer_figures: Vec<Result<ServerFigures, String>> = Vec::new();
        for (peer, info) in peers.iter().zip(&peer_info) {
            if let Some(why) = info.availability.reason() {
                peer_figures.push(Err(why));
                continue;
            }
            let run = (|| {
                let dir = tempfile::Builder::new()
                    .prefix("scale-peer-")
                    .tempdir_in(&ctx.bench_dir)?;
                ctx.progress(&format!(
                    "scale: {}: starting with {} users",
                    peer.name(),
                    accounts.len()
                ));
                let server = peer.start(dir.path(), &accounts)?;
                exercise(ctx, server, &accounts, &p, peer.name())
            })();
            peer_figures.push(run.map_err(|e| format!("failed: {e:#}")));
        }

        let peer_result = |f: &dyn Fn(&ServerFigures) -> f64| -> Vec<PeerFigure> {
            peers
                .iter()
                .zip(&peer_figures)
                .map(|(peer, r)| PeerFigure {
                    peer: peer.name().into(),
                    result: match r {
                        Ok(s) => PeerResult::Measured(Measurement::from_runs(vec![f(s)])),
                        Err(reason) => PeerResult::Skipped {
                            reason: reason.clone(),
                        },
                    },
                })
                .collect()
        };
        let dovecot_missing = || {
            peer_figures
                .iter()
                .zip(peers.iter())
                .find(|(_, p)| p.name() == "Dovecot")
                .and_then(|(r, _)| r.as_ref().err().map(|e| format!("Dovecot {e}")))
        };
        let ten_thousand = p.accounts >= 10_000;
        let scaled = |goal: Goal| -> Goal {
            if ten_thousand {
                goal
            } else {
                Goal {
                    met: None,
                    why: Some(format!("set for 10,000 accounts, ran {}", p.accounts)),
                    ..goal
                }
            }
        };

        let split = prov;
        let prov = split.with_passwords;
        let mut provision = Measurement::from_runs(vec![prov.seconds]);
        provision.detail = Some(if p.passwords > 0 {
            format!(
                "peak RSS {}; {:.0}% of the time hashing passwords",
                human_bytes(prov.peak_rss_bytes),
                split.hashing_share() * 100.0
            )
        } else {
            format!("peak RSS {}", human_bytes(prov.peak_rss_bytes))
        });
        let mut bare = Measurement::from_runs(vec![split.without_passwords.seconds]);
        bare.detail = Some(format!(
            "peak RSS {}",
            human_bytes(split.without_passwords.peak_rss_bytes)
        ));
        let mut figures = vec![
            Figure {
                name: format!(
                    "batch zmprov, {} `ca` ({} with a password)",
                    p.accounts, p.passwords
                ),
                unit: "s".into(),
                subject: provision,
                peers: vec![],
                goals: vec![
                    scaled(Goal::evaluate(
                        format!("≤ {GOAL_PROVISION_S} s"),
                        Some(prov.seconds),
                        |s| s <= GOAL_PROVISION_S,
                        None,
                    )),
                    Goal::evaluate(
                        format!("peak RSS ≤ {GOAL_PROVISION_RSS_MB} MB"),
                        Some(mb(prov.peak_rss_bytes)),
                        |m| m <= GOAL_PROVISION_RSS_MB,
                        None,
                    ),
                ],
            },
            Figure {
                name: format!(
                    "batch zmprov, the same {} `ca` without a password",
                    p.accounts
                ),
                unit: "s".into(),
                subject: bare,
                peers: vec![],
                goals: vec![],
            },
            Figure {
                name: format!("idle RSS, {} accounts with one message each", p.accounts),
                unit: "MB".into(),
                subject: Measurement::from_runs(vec![mb(mv.idle_rss_bytes)]),
                peers: peer_result(&|s| mb(s.idle_rss_bytes)),
                goals: vec![],
            },
            Figure {
                name: format!("idle open files, {} accounts", p.accounts),
                unit: "files".into(),
                subject: Measurement::from_runs(vec![mv.idle_open_files as f64]),
                peers: peer_result(&|s| s.idle_open_files as f64),
                goals: vec![Goal::evaluate(
                    format!("≤ {GOAL_OPEN_FILES}"),
                    Some(mv.idle_open_files as f64),
                    |n| n <= GOAL_OPEN_FILES,
                    None,
                )],
            },
            Figure {
                name: format!(
                    "LMTP to random recipients among {}, {} connections ({} messages)",
                    p.accounts, p.connections, p.messages
                ),
                unit: "messages/s".into(),
                subject: Measurement::from_runs(vec![mv.messages_per_s]),
                peers: peer_result(&|s| s.messages_per_s),
                goals: vec![],
            },
        ];
        let idle = &mut figures[2];
        let ratio = idle.ratio_to("Dovecot");
        idle.goals.push(scaled(Goal::evaluate(
            format!("≤ {GOAL_IDLE_RSS_MB} MB"),
            Some(mb(mv.idle_rss_bytes)),
            |m| m <= GOAL_IDLE_RSS_MB,
            None,
        )));
        idle.goals.push(scaled(Goal::evaluate(
            format!("≤ {GOAL_IDLE_RSS_RATIO}× Dovecot"),
            ratio,
            |r| r <= GOAL_IDLE_RSS_RATIO,
            dovecot_missing(),
        )));
        let lmtp = &mut figures[4];
        let ratio = lmtp.ratio_to("Dovecot");
        lmtp.goals.push(scaled(Goal::evaluate(
            format!("≥ {GOAL_LMTP_RATIO}× Dovecot"),
            ratio,
            |r| r >= GOAL_LMTP_RATIO,
            dovecot_missing(),
        )));

        figures.extend(scale_backup::figures(&backups, p.accounts, &scaled));

        Ok(ScenarioReport {
            name: "scale".into(),
            title: "Many accounts".into(),
            description: format!(
                "{} accounts in one domain. mailvault: a fresh home provisioned by batch \
                 `zmprov` reading one `ca EMAIL PASSWORD` line per account on stdin (Argon2id \
                 hashes, default parameters), timed with its peak RSS (`wait4`); the same \
                 lines without passwords into another fresh home, timed too: the difference \
                 is the hashing (spread over at most 4 threads, one per core). Zimbra's \
                 default `userPassword` scheme is salted SHA-512 (SSHA512, microseconds per \
                 hash); Argon2id deliberately costs tens of milliseconds and 19 MiB per \
                 hash, and is kept. Then for \
                 each server (mailvault; Dovecot with passwd-file users and Maildirs): one \
                 {} KB message delivered to every account over LMTP, {} s idle, resident \
                 memory (VmRSS) and open descriptors summed over the server's process tree; \
                 then {} messages to recipients drawn at random among all accounts over {} \
                 connections; then the server is stopped and every acknowledged message is \
                 checked to be stored exactly once. Then, the server stopped, mailvault's \
                 home is backed up (`backup -f -a all -sync --zipStore` into a fresh target; \
                 the same again with nothing changed; one message to every hundredth \
                 account, then `backup -i`), each timed with the target's growth in bytes \
                 and in files and directories; one account is restored from it \
                 (`restore -a ADDR -ca -pre r_`, its redo replayed); tar and restic back up \
                 the same data (the home's db, index and store). One run per figure.",
                p.accounts,
                p.message_size / 1024,
                p.idle.as_secs(),
                p.messages,
                p.connections
            ),
            subject: "mailvault".into(),
            peers: peer_info,
            figures,
            notes: vec![],
        })
    }
}
