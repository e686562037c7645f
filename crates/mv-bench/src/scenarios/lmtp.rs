//! Scenario `lmtp`: LMTP delivery throughput, mailvault vs Dovecot.
//!
//! Each run starts a fresh server (mailvault: `mailvault serve` in a new home;
//! Dovecot: the shared config in a new directory) with the same accounts,
//! delivers one warm-up message per account (creating mailboxes/Maildirs), then
//! the same fixed-size messages over 1 and 16 connections with the same client
//! ([`crate::lmtp_client`]), timed from the first command to the last reply. It then
//! stops the server and checks that every acknowledged message is stored exactly
//! once. Runs alternate between the systems so background noise hits both alike.

use crate::corpus::{self, Scale, fixed_message_id, fixed_size_message};
use crate::lmtp_client::{self, Job, LoadResult};
use crate::peers::dovecot::Dovecot;
use crate::peers::mailvault::Mailvault;
use crate::peers::{Availability, LmtpTarget};
use crate::scenario::{
    Figure, Goal, Measurement, PeerFigure, PeerInfo, PeerResult, ResourceSummary, RunContext,
    Scenario, ScenarioReport, median_u64,
};
use crate::sysinfo::{Resources, Sampler};
use anyhow::Context;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The goal: with 16 connections, mailvault delivers ≥ 1.5× Dovecot's messages/s.
pub const GOAL_RATIO_16: f64 = 1.5;

#[derive(Debug, Clone)]
pub struct LmtpParams {
    pub accounts: usize,
    pub message_size: usize,
    /// (connections, messages per run).
    pub loads: Vec<(usize, usize)>,
    pub runs: usize,
}

impl LmtpParams {
    pub fn for_scale(scale: Scale, runs: usize) -> LmtpParams {
        let (accounts, loads) = match scale {
            Scale::Small => (20, vec![(1, 300), (16, 2_000)]),
            Scale::Medium | Scale::Large => (200, vec![(1, 2_000), (16, 16_000)]),
        };
        LmtpParams {
            accounts,
            message_size: 10 * 1024,
            loads,
            runs,
        }
    }
}

#[derive(Default)]
pub struct LmtpScenario {
    /// Overrides the parameters derived from the scale.
    pub params: Option<LmtpParams>,
    /// Overrides the peers (default: Dovecot, as found on this machine).
    pub peers: Option<Vec<Box<dyn LmtpTarget>>>,
}

/// One run of one system.
struct RunFigures {
    load: LoadResult,
    resources: Resources,
}

const SENDER: &str = "bench.sender@partners.example";

fn jobs(seed: u64, accounts: &[String], first: u64, count: usize, size: usize) -> Vec<Job> {
    (0..count as u64)
        .map(|k| {
            let idx = first + k;
            let to = &accounts[(idx % accounts.len() as u64) as usize];
            let msg = fixed_size_message(seed, idx, SENDER, to, size);
            Job {
                from: SENDER.into(),
                rcpts: vec![to.clone()],
                data: Arc::new(lmtp_client::wire_data(&msg)),
            }
        })
        .collect()
}

fn expected(
    seed: u64,
    accounts: &[String],
    sets: &[(u64, usize)],
) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> =
        accounts.iter().map(|a| (a.clone(), Vec::new())).collect();
    for &(first, count) in sets {
        for idx in first..first + count as u64 {
            let to = &accounts[(idx % accounts.len() as u64) as usize];
            m.get_mut(to).unwrap().push(fixed_message_id(seed, idx));
        }
    }
    m
}

/// Index of the first warm-up message (far from the measured ones).
const WARMUP_BASE: u64 = 1 << 40;

/// One timed load: `jobs` (message indices from `first`) over `connections`.
struct Load {
    connections: usize,
    first: u64,
    jobs: Vec<Job>,
}

fn one_run(
    ctx: &RunContext,
    target: &dyn LmtpTarget,
    accounts: &[String],
    warmup: &[Job],
    load: &Load,
    tag: &str,
) -> anyhow::Result<RunFigures> {
    let (jobs, job_first, connections) = (&load.jobs[..], load.first, load.connections);
    let dir = tempfile::Builder::new()
        .prefix(&format!("{tag}-"))
        .tempdir_in(&ctx.bench_dir)
        .with_context(|| format!("creating a run directory in {}", ctx.bench_dir.display()))?;
    // Start from a quiet disk: no writeback of the previous run in this one.
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    let server = target.start(dir.path(), accounts)?;
    let addr = server.lmtp_addr();
    let w = lmtp_client::run_load(addr, connections.min(warmup.len()).max(1), warmup)
        .context("warm-up")?;
    anyhow::ensure!(
        w.failures.is_empty(),
        "warm-up failed: {:?}",
        &w.failures[..w.failures.len().min(3)]
    );
    let sampler = Sampler::start(server.pid());
    let load = lmtp_client::run_load(addr, connections, jobs)?;
    let resources = sampler.finish();
    anyhow::ensure!(
        load.failures.is_empty(),
        "{} of {} deliveries failed, e.g. {:?}",
        load.failures.len(),
        jobs.len(),
        &load.failures[..load.failures.len().min(3)]
    );
    let want = expected(
        ctx.seed,
        accounts,
        &[(WARMUP_BASE, warmup.len()), (job_first, jobs.len())],
    );
    server
        .stop_and_verify(&want)
        .context("checking that every acknowledged message is stored")?;
    Ok(RunFigures { load, resources })
}

fn summarize(runs: &[RunFigures]) -> Measurement {
    let rates: Vec<f64> = runs.iter().map(|r| r.load.messages_per_s()).collect();
    let mut m = Measurement::from_runs(rates);
    // Latency of the median run.
    if let Some(r) = runs.iter().find(|r| r.load.messages_per_s() == m.median) {
        m.detail = Some(format!(
            "p50 {:.2} ms, p99 {:.2} ms",
            r.load.latency_percentile_ms(0.5),
            r.load.latency_percentile_ms(0.99)
        ));
    }
    let rss: Vec<u64> = runs
        .iter()
        .filter_map(|r| r.resources.peak_rss_bytes)
        .collect();
    let wb: Vec<u64> = runs
        .iter()
        .filter_map(|r| r.resources.write_bytes)
        .collect();
    let per_msg: Vec<u64> = runs
        .iter()
        .filter_map(|r| {
            r.resources
                .write_bytes
                .map(|w| w / r.load.delivered.max(1) as u64)
        })
        .collect();
    m.resources = Some(ResourceSummary {
        peak_rss_bytes: (!rss.is_empty()).then(|| median_u64(&rss)),
        write_bytes: (!wb.is_empty()).then(|| median_u64(&wb)),
        write_bytes_per_message: (!per_msg.is_empty()).then(|| median_u64(&per_msg)),
        processes: runs
            .iter()
            .map(|r| r.resources.processes)
            .max()
            .unwrap_or(0),
    });
    m
}

impl Scenario for LmtpScenario {
    fn name(&self) -> &'static str {
        "lmtp"
    }

    fn summary(&self) -> &'static str {
        "LMTP delivery messages/s (10 KB, 1 and 16 connections), mailvault vs Dovecot LMTP"
    }

    fn run(&self, ctx: &RunContext) -> anyhow::Result<ScenarioReport> {
        let p = self
            .params
            .clone()
            .unwrap_or_else(|| LmtpParams::for_scale(ctx.scale, ctx.runs));
        let accounts: Vec<String> = (0..p.accounts).map(corpus::account_email).collect();
        let mailvault = Mailvault::new(ctx.mailvault.clone());
        if let Some(why) = mailvault.availability().reason() {
            anyhow::bail!("mailvault: {why}");
        }
        let default_peers: Vec<Box<dyn LmtpTarget>> = vec![Box::new(Dovecot::detect())];
        let peers = self.peers.as_ref().unwrap_or(&default_peers);
        let peer_info: Vec<PeerInfo> = peers
            .iter()
            .map(|t| PeerInfo {
                name: t.name().into(),
                availability: t.availability(),
            })
            .collect();
        for pi in &peer_info {
            if let Some(why) = pi.availability.reason() {
                ctx.progress(&format!(
                    "lmtp: {}: {why}; measuring mailvault alone",
                    pi.name
                ));
            }
        }

        let warmup = jobs(
            ctx.seed,
            &accounts,
            WARMUP_BASE,
            accounts.len(),
            p.message_size,
        );
        // Per load: the jobs, and per system the runs so far (or the peer's failure).
        let mut first = 0u64;
        let loads: Vec<Load> = p
            .loads
            .iter()
            .map(|&(connections, n)| {
                let load = Load {
                    connections,
                    first,
                    jobs: jobs(ctx.seed, &accounts, first, n, p.message_size),
                };
                first += n as u64;
                load
            })
            .collect();
        let mut mv_runs: Vec<Vec<RunFigures>> = loads.iter().map(|_| Vec::new()).collect();
        let mut peer_runs: Vec<Vec<Result<Vec<RunFigures>, String>>> = peers
            .iter()
            .map(|_| loads.iter().map(|_| Ok(Vec::new())).collect())
            .collect();

        for run in 0..p.runs {
            for (li, load) in loads.iter().enumerate() {
                let (conns, js) = (load.connections, &load.jobs);
                ctx.progress(&format!(
                    "lmtp: run {}/{} with {conns} connection(s), {} messages: mailvault",
                    run + 1,
                    p.runs,
                    js.len()
                ));
                let r = one_run(ctx, &mailvault, &accounts, &warmup, load, "mailvault")
                    .with_context(|| {
                        format!("mailvault, {conns} connection(s), run {}", run + 1)
                    })?;
                ctx.progress(&format!(
                    "lmtp:   mailvault {:.0} messages/s",
                    r.load.messages_per_s()
                ));
                mv_runs[li].push(r);
                for (pi, peer) in peers.iter().enumerate() {
                    if peer_info[pi].availability.reason().is_some() {
                        continue;
                    }
                    let slot = &mut peer_runs[pi][li];
                    let Ok(done) = slot else { continue };
                    ctx.progress(&format!("lmtp:   {}", peer.name()));
                    match one_run(ctx, peer.as_ref(), &accounts, &warmup, load, "peer") {
                        Ok(r) => {
                            ctx.progress(&format!(
                                "lmtp:   {} {:.0} messages/s",
                                peer.name(),
                                r.load.messages_per_s()
                            ));
                            done.push(r);
                        }
                        Err(e) => {
                            ctx.progress(&format!("lmtp:   {} failed: {e:#}", peer.name()));
                            *slot = Err(format!("failed: {e:#}"));
                        }
                    }
                }
            }
        }

        let mut figures = Vec::new();
        for (li, load) in loads.iter().enumerate() {
            let (conns, js) = (load.connections, &load.jobs);
            let subject = summarize(&mv_runs[li]);
            let pf: Vec<PeerFigure> = peers
                .iter()
                .enumerate()
                .map(|(pi, peer)| PeerFigure {
                    peer: peer.name().into(),
                    result: match (&peer_info[pi].availability, &peer_runs[pi][li]) {
                        (a, _) if a.reason().is_some() => PeerResult::Skipped {
                            reason: a.reason().unwrap(),
                        },
                        (_, Err(e)) => PeerResult::Skipped { reason: e.clone() },
                        (_, Ok(runs)) => PeerResult::Measured(summarize(runs)),
                    },
                })
                .collect();
            let mut fig = Figure {
                name: format!(
                    "{} KB messages, {conns} connection{} ({} per run)",
                    p.message_size / 1024,
                    if conns == 1 { "" } else { "s" },
                    js.len()
                ),
                unit: "messages/s".into(),
                subject,
                peers: pf,
                goals: vec![],
            };
            if conns == 16 {
                let why = fig
                    .peers
                    .iter()
                    .find(|x| x.peer == "Dovecot")
                    .and_then(|x| match &x.result {
                        PeerResult::Skipped { reason } => Some(format!("Dovecot {reason}")),
                        PeerResult::Measured(_) => None,
                    });
                let ratio = fig.ratio_to("Dovecot");
                fig.goals.push(Goal::evaluate(
                    format!("≥ {GOAL_RATIO_16}× Dovecot"),
                    ratio,
                    |r| r >= GOAL_RATIO_16,
                    why,
                ));
            }
            figures.push(fig);
        }

        let dovecot_version = peer_info.iter().find_map(|p| match &p.availability {
            Availability::Available { version } if p.name == "Dovecot" => Some(version.clone()),
            _ => None,
        });
        Ok(ScenarioReport {
            name: "lmtp".into(),
            title: "LMTP delivery".into(),
            description: format!(
                "Messages per second delivered over LMTP: {} KB text messages (generated from \
                 the corpus generator, seed {}), one recipient each, round-robin over {} accounts, \
                 with 1 and 16 concurrent connections. Every run starts a fresh server with the \
                 accounts provisioned and one warm-up message per account delivered; the clock \
                 runs from the first command to the last reply. Same client for all servers \
                 (Rust, one thread per connection, MAIL/RCPT/DATA pipelined). Durability on: \
                 mailvault answers 250 only after its redo log is fsynced; Dovecot{} runs the \
                 shared config (Maildir, default `mail_fsync = optimized`: the message file is \
                 fsynced before the reply). After each run the server is stopped and every \
                 acknowledged message is checked to be stored exactly once. Figures are the \
                 median of {} runs; resources are the server's process tree (peak RSS summed \
                 over its processes, `write_bytes` from /proc/PID/io during the timed part).",
                p.message_size / 1024,
                ctx.seed,
                p.accounts,
                dovecot_version
                    .map(|v| format!(" ({v})"))
                    .unwrap_or_default(),
                p.runs
            ),
            subject: "mailvault".into(),
            peers: peer_info,
            figures,
            notes: if p.runs < 3 {
                vec![format!(
                    "only {} run(s) per figure: not a benchmark result",
                    p.runs
                )]
            } else {
                vec![]
            },
        })
    }
}
