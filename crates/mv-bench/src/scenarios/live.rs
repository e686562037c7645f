//! Scenario `live`: live disaster recovery (continuous redo shipping, a warm
//! standby, promote), on the lmtp scenario's load.
//!
//! - **Shipping's cost**: LMTP delivery over 16 connections into a home that
//!   ships its redo log every 2 s into a directory target, against the same
//!   home without shipping, alternating, same messages (each run checks every
//!   acknowledged message is stored).
//! - **RPO over kills**: per kill a fresh primary (accounts, a full backup into
//!   the target, shipping every 2 s: the defaults) and a warm standby following
//!   that target (`mailvault standby -t T`); the primary takes the 16-connection
//!   load and is killed with SIGKILL at a random moment. Then, on the target
//!   alone, a scratch home is rebuilt with `zmrestoreldap -t T` and
//!   `zmrestoreoffline -a all -t T`; the standby is promoted (`mailvault
//!   promote`, timed) once it has applied what was shipped. In both, every
//!   acknowledged message missing counts, and the RPO of the kill is how long
//!   before the kill the oldest missing one was acknowledged (0 when none is
//!   missing). The killed primary is then started again and must hold every
//!   acknowledged message (which also checks the bookkeeping of this scenario).
//! - **Standby lag** while the load runs, sampled from the standby's `/metrics`
//!   (`mailvault_standby_lag_records`, `mailvault_standby_lag_seconds`) every
//!   250 ms.

use crate::corpus::{self, Scale, fixed_message_id, fixed_size_message};
use crate::lmtp_client::{self, Connection, Job};
use crate::peers::RunningServer;
use crate::peers::mailvault::{Mailvault, message_digests};
use crate::peers::{Availability, LmtpTarget, free_port};
use crate::rng::SplitMix64;
use crate::scenario::{
    Figure, Goal, Measurement, PeerFigure, PeerInfo, PeerResult, ResourceSummary, RunContext,
    Scenario, ScenarioReport, median, median_u64,
};
use crate::sysinfo::{Resources, Sampler, human_bytes};
use anyhow::{Context, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Goals (issue 26): shipping costs at most 10% of LMTP throughput; RPO p99
/// ≤ 5 s (with 20 kills, p99 is the worst); promote ≤ 10 s.
pub const GOAL_SHIPPING_RATIO: f64 = 0.9;
pub const GOAL_RPO_S: f64 = 5.0;
pub const GOAL_PROMOTE_S: f64 = 10.0;

const SENDER: &str = "bench.sender@partners.example";
/// The shipping interval measured: the default of
/// `zimbraBackupContinuousIntervalSeconds`.
const INTERVAL_S: u64 = 2;
/// Index of the first warm-up message (far from the measured ones).
const WARMUP_BASE: u64 = 1 << 40;

#[derive(Debug, Clone)]
pub struct LiveParams {
    pub accounts: usize,
    pub message_size: usize,
    pub connections: usize,
    /// Messages per throughput run (shipping on, then off).
    pub messages: usize,
    /// Throughput runs per system.
    pub runs: usize,
    pub kills: usize,
    /// The kill comes this long after the load started, drawn uniformly.
    pub kill_after: (Duration, Duration),
}

impl LiveParams {
    pub fn for_scale(scale: Scale, runs: usize) -> LiveParams {
        let (accounts, messages, kills) = match scale {
            Scale::Small => (20, 2_000, 3),
            Scale::Medium | Scale::Large => (200, 16_000, 20),
        };
        LiveParams {
            accounts,
            message_size: 10 * 1024,
            connections: 16,
            messages,
            runs,
            kills,
            kill_after: (Duration::from_secs(6), Duration::from_secs(12)),
        }
    }
}

#[derive(Default)]
pub struct LiveScenario {
    /// Overrides the parameters derived from the scale.
    pub params: Option<LiveParams>,
}

fn job(seed: u64, accounts: &[String], idx: u64, size: usize) -> Job {
    let to = &accounts[(idx % accounts.len() as u64) as usize];
    let msg = fixed_size_message(seed, idx, SENDER, to, size);
    Job {
        from: SENDER.into(),
        rcpts: vec![to.clone()],
        data: Arc::new(lmtp_client::wire_data(&msg)),
    }
}

/// `mailvault --home HOME ARGS...`, which must succeed; its stdout.
fn run_ok(mv: &Mailvault, home: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = mv
        .command(home)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running mailvault {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "mailvault {} exited with {}: {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A fresh home in `dir` with the accounts, backing up into `dir/target`
/// (one full taken), shipping continuously when `shipping`.
fn primary(
    mv: &Mailvault,
    dir: &Path,
    accounts: &[String],
    shipping: bool,
) -> anyhow::Result<(mv_home::Home, PathBuf)> {
    let home = mv.provision(dir, accounts)?;
    let target = dir.join("target");
    let t = target.to_str().context("a non-UTF-8 bench directory")?;
    run_ok(mv, home.root(), &["prov", "mcf", "zimbraBackupTarget", t])?;
    if shipping {
        run_ok(
            mv,
            home.root(),
            &["prov", "mcf", "zimbraBackupContinuousEnabled", "TRUE"],
        )?;
    }
    run_ok(mv, home.root(), &["backup", "-f", "-a", "all", "-t", t])?;
    Ok((home, target))
}

/// One throughput run: warm-up, the timed load, the server stopped and every
/// acknowledged message checked.
struct Throughput {
    load: lmtp_client::LoadResult,
    resources: Resources,
}

fn throughput_run(
    ctx: &RunContext,
    mv: &Mailvault,
    p: &LiveParams,
    accounts: &[String],
    shipping: bool,
) -> anyhow::Result<Throughput> {
    let dir = tempfile::Builder::new()
        .prefix(if shipping { "live-on-" } else { "live-off-" })
        .tempdir_in(&ctx.bench_dir)?;
    let (home, _) = primary(mv, dir.path(), accounts, shipping)?;
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    let server = mv.serve(&home, dir.path())?;
    let addr = server.lmtp_addr();
    let warmup: Vec<Job> = (0..accounts.len() as u64)
        .map(|i| job(ctx.seed, accounts, WARMUP_BASE + i, p.message_size))
        .collect();
    let w = lmtp_client::run_load(addr, p.connections.min(warmup.len()), &warmup)?;
    anyhow::ensure!(w.failures.is_empty(), "warm-up failed: {:?}", w.failures);
    let jobs: Vec<Job> = (0..p.messages as u64)
        .map(|i| job(ctx.seed, accounts, i, p.message_size))
        .collect();
    let sampler = Sampler::start(server.pid());
    let load = lmtp_client::run_load(addr, p.connections, &jobs)?;
    let resources = sampler.finish();
    anyhow::ensure!(
        load.failures.is_empty(),
        "{} deliveries failed, e.g. {:?}",
        load.failures.len(),
        load.failures.first()
    );
    let mut want: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for i in (0..p.messages as u64).chain(WARMUP_BASE..WARMUP_BASE + accounts.len() as u64) {
        let to = &accounts[(i % accounts.len() as u64) as usize];
        want.entry(to.clone())
            .or_default()
            .push(fixed_message_id(ctx.seed, i));
    }
    Box::new(server).stop_and_verify(&want)?;
    Ok(Throughput { load, resources })
}

/// One acknowledged delivery: message index and when its 250 came.
type Ack = (u64, Instant);

/// Delivers messages (indices from `first`) over `connections` until `stop`,
/// or until the server goes; every acknowledged one is recorded.
fn continuous_load(
    addr: std::net::SocketAddr,
    connections: usize,
    make: &(dyn Fn(u64) -> Job + Sync),
    first: u64,
    stop: &AtomicBool,
) -> anyhow::Result<Vec<Ack>> {
    let conns: Vec<Connection> = (0..connections)
        .map(|_| Connection::open(addr))
        .collect::<anyhow::Result<_>>()?;
    let next = AtomicU64::new(first);
    let acks = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for mut c in conns {
            let (next, acks) = (&next, &acks);
            s.spawn(move || {
                let mut mine = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    match c.deliver(&make(i)) {
                        Ok(r) if r.iter().all(|x| x.starts_with('2')) => {
                            mine.push((i, Instant::now()))
                        }
                        // Refused (4xx while stopping) or the server is gone.
                        _ => break,
                    }
                }
                acks.lock().unwrap().extend(mine);
            });
        }
    });
    Ok(acks.into_inner().unwrap())
}

fn http_get(port: u16, path: &str) -> anyhow::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// The value of a metric on a server's `/metrics`.
fn metric(port: u16, name: &str) -> Option<f64> {
    http_get(port, "/metrics")
        .ok()?
        .lines()
        .find(|l| l.strip_prefix(name).is_some_and(|r| r.starts_with(' ')))
        .and_then(|l| l.rsplit(' ').next()?.trim().parse().ok())
}

fn admin_port(home: &Path) -> anyhow::Result<u16> {
    let cfg = mv_home::LocalConfig::load(&home.join("conf").join("localconfig.conf"))?;
    Ok(cfg.get_u64("admin_bind_port") as u16)
}

/// A warm standby serving (`mailvault standby -t T`) in a home of its own.
struct Standby {
    child: Child,
    home: PathBuf,
    admin: u16,
}

impl Standby {
    fn start(mv: &Mailvault, home: &Path, target: &Path, log: &Path) -> anyhow::Result<Standby> {
        run_ok(mv, home, &["init"])?;
        let admin = free_port()?;
        for (k, v) in [
            ("admin_bind_port", admin),
            ("lmtp_bind_port", free_port()?),
            ("imap_bind_port", free_port()?),
            ("imaps_bind_port", free_port()?),
        ] {
            run_ok(mv, home, &["localconfig", "-e", &format!("{k}={v}")])?;
        }
        let mut child = mv
            .command(home)
            .arg("standby")
            .arg("-t")
            .arg(target)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .spawn()?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        loop {
            match lines.next() {
                Some(Ok(l)) if l.starts_with("mailvault ready") => break,
                Some(Ok(_)) => {}
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!(
                        "the standby exited before it was ready: {}",
                        std::fs::read_to_string(log).unwrap_or_default().trim()
                    );
                }
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Ok(Standby {
            child,
            home: home.to_path_buf(),
            admin,
        })
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Account -> Message-IDs (no brackets) of a stopped home.
fn stored_ids(home: &Path) -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    Ok(message_digests(&mv_home::Home::at(home))?
        .into_iter()
        .map(|(a, v)| (a, v.into_iter().map(|(id, _)| id).collect()))
        .collect())
}

/// What a home holds of the acknowledged messages, seen from the kill.
#[derive(Debug, Clone, Copy, Default)]
struct Loss {
    missing: usize,
    /// How long before the kill the oldest missing message was acknowledged.
    rpo: Duration,
    /// Missing messages acknowledged more than [`GOAL_RPO_S`] before the kill.
    older_than_goal: usize,
}

fn loss(
    seed: u64,
    accounts: &[String],
    acks: &[Ack],
    killed: Instant,
    have: &BTreeMap<String, BTreeSet<String>>,
) -> Loss {
    let mut l = Loss::default();
    for &(i, at) in acks {
        let to = &accounts[(i % accounts.len() as u64) as usize];
        if have
            .get(to)
            .is_some_and(|ids| ids.contains(&fixed_message_id(seed, i)))
        {
            continue;
        }
        let age = killed.saturating_duration_since(at);
        l.missing += 1;
        l.rpo = l.rpo.max(age);
        if age.as_secs_f64() > GOAL_RPO_S {
            l.older_than_goal += 1;
        }
    }
    l
}

/// What one kill measured.
struct Kill {
    acknowledged: usize,
    restored: Loss,
    standby: Loss,
    promote: Duration,
    lag_records: Vec<f64>,
    lag_seconds: Vec<f64>,
    primary: Resources,
    standby_rss: Option<u64>,
    shipped_bytes: Option<f64>,
}

fn kill_round(
    ctx: &RunContext,
    mv: &Mailvault,
    p: &LiveParams,
    accounts: &[String],
    k: usize,
) -> anyhow::Result<Kill> {
    let dir = tempfile::Builder::new()
        .prefix("live-kill-")
        .tempdir_in(&ctx.bench_dir)?;
    let dir = dir.path();
    let (home, target) = primary(mv, dir, accounts, true)?;
    let standby = Standby::start(mv, &dir.join("standby"), &target, &dir.join("standby.log"))?;
    let server = mv.serve(&home, dir)?;
    let p_admin = admin_port(home.root())?;
    let addr = server.lmtp_addr();
    let make = |i: u64| job(ctx.seed, accounts, i, p.message_size);
    // One message per account first (its mailbox is made), acknowledged long
    // before the kill like any other.
    let mut acks: Vec<Ack> = Vec::new();
    {
        let warm: Vec<Job> = (0..accounts.len() as u64)
            .map(|i| make(WARMUP_BASE + i))
            .collect();
        let w = lmtp_client::run_load(addr, p.connections.min(warm.len()), &warm)?;
        anyhow::ensure!(w.failures.is_empty(), "warm-up failed: {:?}", w.failures);
        let now = Instant::now();
        acks.extend((0..accounts.len() as u64).map(|i| (WARMUP_BASE + i, now)));
    }
    let mut rng = SplitMix64::stream(ctx.seed, 26, k as u64);
    let (lo, hi) = (p.kill_after.0.as_millis(), p.kill_after.1.as_millis());
    let after = Duration::from_millis(rng.range(lo as u64, hi as u64));
    let stop = AtomicBool::new(false);
    let sampler = Sampler::start(server.pid());
    let standby_sampler = Sampler::start(standby.child.id());
    let first = k as u64 * 10_000_000;
    let (mut lag_records, mut lag_seconds) = (Vec::new(), Vec::new());
    let mut shipped_bytes = None;
    let (load, killed) = std::thread::scope(|s| {
        let load = s.spawn(|| continuous_load(addr, p.connections, &make, first, &stop));
        let began = Instant::now();
        while began.elapsed() < after {
            std::thread::sleep(Duration::from_millis(250));
            if let (Some(r), Some(sec)) = (
                metric(standby.admin, "mailvault_standby_lag_records"),
                metric(standby.admin, "mailvault_standby_lag_seconds"),
            ) {
                lag_records.push(r);
                lag_seconds.push(sec);
            }
            shipped_bytes = metric(p_admin, "mailvault_redo_shipped_bytes_total").or(shipped_bytes);
        }
        let primary = sampler.finish();
        let killed = Instant::now();
        let r = server.kill();
        stop.store(true, Ordering::Relaxed);
        let acked = load.join().expect("load thread panicked");
        (r.and(acked.map(|a| (a, primary))), killed)
    });
    let (more, primary_resources) = load?;
    acks.extend(more);
    ctx.progress(&format!(
        "live: kill {}/{}: {} messages acknowledged, killed {:.1} s into the load",
        k + 1,
        p.kills,
        acks.len(),
        after.as_secs_f64()
    ));

    // The target alone: a scratch home rebuilt the documented way.
    let scratch = dir.join("restored");
    let t = target.to_str().context("a non-UTF-8 bench directory")?;
    run_ok(mv, &scratch, &["restoreldap", "-t", t])?;
    run_ok(mv, &scratch, &["restoreoffline", "-a", "all", "-t", t])?;
    let restored = loss(ctx.seed, accounts, &acks, killed, &stored_ids(&scratch)?);

    // The standby: once it holds what was shipped, promoted.
    let settle = Instant::now();
    let mut last = (f64::NAN, Instant::now());
    loop {
        let lsn = metric(standby.admin, "mailvault_standby_applied_lsn").unwrap_or(f64::NAN);
        let behind = metric(standby.admin, "mailvault_standby_lag_records").unwrap_or(1.0);
        if lsn != last.0 {
            last = (lsn, Instant::now());
        } else if behind == 0.0 && last.1.elapsed() >= Duration::from_secs(3) {
            break;
        }
        if settle.elapsed() > Duration::from_secs(120) {
            bail!("the standby did not catch up within 120 s of the kill");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let standby_rss = standby_sampler.finish().peak_rss_bytes;
    let began = Instant::now();
    run_ok(mv, &standby.home, &["promote"])?;
    let promote = began.elapsed();
    run_ok(mv, &standby.home, &["control", "stop"])?;
    let sb_loss = loss(
        ctx.seed,
        accounts,
        &acks,
        killed,
        &stored_ids(&standby.home)?,
    );
    drop(standby);

    // The killed primary, started again, holds every acknowledged message.
    mv.serve(&home, dir)?.stop()?;
    let have = stored_ids(home.root())?;
    let lost = loss(ctx.seed, accounts, &acks, killed, &have);
    anyhow::ensure!(
        lost.missing == 0,
        "the restarted primary lacks {} acknowledged messages",
        lost.missing
    );
    Ok(Kill {
        acknowledged: acks.len(),
        restored,
        standby: sb_loss,
        promote,
        lag_records,
        lag_seconds,
        primary: primary_resources,
        standby_rss,
        shipped_bytes,
    })
}

fn percentile(xs: &[f64], p: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn max(xs: &[f64]) -> f64 {
    xs.iter().copied().fold(0.0, f64::max)
}

fn throughput_measurement(runs: &[Throughput]) -> Measurement {
    let mut m = Measurement::from_runs(runs.iter().map(|r| r.load.messages_per_s()).collect());
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
    m.resources = Some(ResourceSummary {
        peak_rss_bytes: (!rss.is_empty()).then(|| median_u64(&rss)),
        write_bytes: (!wb.is_empty()).then(|| median_u64(&wb)),
        write_bytes_per_message: {
            let per: Vec<u64> = runs
                .iter()
                .filter_map(|r| {
                    r.resources
                        .write_bytes
                        .map(|w| w / r.load.delivered.max(1) as u64)
                })
                .collect();
            (!per.is_empty()).then(|| median_u64(&per))
        },
        processes: runs
            .iter()
            .map(|r| r.resources.processes)
            .max()
            .unwrap_or(0),
    });
    m
}

/// A per-kill figure in seconds: median over kills, the worst in the detail.
fn rpo_figure(name: &str, kills: &[Kill], of: impl Fn(&Kill) -> Loss) -> Figure {
    let rpos: Vec<f64> = kills.iter().map(|k| of(k).rpo.as_secs_f64()).collect();
    let missing: usize = kills.iter().map(|k| of(k).missing).sum();
    let old: usize = kills.iter().map(|k| of(k).older_than_goal).sum();
    let acked: usize = kills.iter().map(|k| k.acknowledged).sum();
    let mut m = Measurement::from_runs(rpos.clone());
    m.detail = Some(format!(
        "p50 {:.2} s, max {:.2} s; {missing} of {acked} acknowledged messages missing, \
         {old} of them older than {GOAL_RPO_S} s",
        median(&rpos),
        max(&rpos)
    ));
    Figure {
        name: format!("RPO, {name} ({} kills)", kills.len()),
        unit: "s".into(),
        subject: m,
        peers: vec![],
        goals: vec![
            Goal::evaluate(
                format!("p99 (the worst of the kills) ≤ {GOAL_RPO_S} s"),
                Some(max(&rpos)),
                |v| v <= GOAL_RPO_S,
                None,
            ),
            Goal::evaluate(
                format!("0 acknowledged messages older than {GOAL_RPO_S} s lost"),
                Some(old as f64),
                |v| v == 0.0,
                None,
            ),
        ],
    }
}

impl Scenario for LiveScenario {
    fn name(&self) -> &'static str {
        "live"
    }

    fn summary(&self) -> &'static str {
        "live DR: shipping's cost on LMTP (16 connections), RPO over SIGKILLs, standby lag, promote time"
    }

    fn run(&self, ctx: &RunContext) -> anyhow::Result<ScenarioReport> {
        let p = self
            .params
            .clone()
            .unwrap_or_else(|| LiveParams::for_scale(ctx.scale, ctx.runs));
        let accounts: Vec<String> = (0..p.accounts).map(corpus::account_email).collect();
        let mv = Mailvault::new(ctx.mailvault.clone());
        if let Some(why) = mv.availability().reason() {
            bail!("mailvault: {why}");
        }
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for run in 0..p.runs {
            for shipping in [true, false] {
                let r = throughput_run(ctx, &mv, &p, &accounts, shipping)
                    .with_context(|| format!("throughput run {}, shipping {shipping}", run + 1))?;
                ctx.progress(&format!(
                    "live: run {}/{} shipping {}: {:.0} messages/s",
                    run + 1,
                    p.runs,
                    if shipping { "on" } else { "off" },
                    r.load.messages_per_s()
                ));
                if shipping { &mut on } else { &mut off }.push(r);
            }
        }
        let mut kills = Vec::new();
        for k in 0..p.kills {
            kills.push(
                kill_round(ctx, &mv, &p, &accounts, k)
                    .with_context(|| format!("kill {}", k + 1))?,
            );
        }

        let mut figures = Vec::new();
        let mut tp = Figure {
            name: format!(
                "{} KB messages, {} connections, shipping every {INTERVAL_S} s ({} per run)",
                p.message_size / 1024,
                p.connections,
                p.messages
            ),
            unit: "messages/s".into(),
            subject: throughput_measurement(&on),
            peers: vec![PeerFigure {
                peer: "shipping off".into(),
                result: PeerResult::Measured(throughput_measurement(&off)),
            }],
            goals: vec![],
        };
        let ratio = tp.ratio_to("shipping off");
        tp.goals.push(Goal::evaluate(
            format!("≥ {GOAL_SHIPPING_RATIO}× shipping off"),
            ratio,
            |r| r >= GOAL_SHIPPING_RATIO,
            None,
        ));
        figures.push(tp);
        let mut restored = rpo_figure("disaster restore from the target", &kills, |k| k.restored);
        let rss: Vec<u64> = kills
            .iter()
            .filter_map(|k| k.primary.peak_rss_bytes)
            .collect();
        let wb: Vec<u64> = kills.iter().filter_map(|k| k.primary.write_bytes).collect();
        restored.subject.resources = Some(ResourceSummary {
            peak_rss_bytes: (!rss.is_empty()).then(|| median_u64(&rss)),
            write_bytes: (!wb.is_empty()).then(|| median_u64(&wb)),
            write_bytes_per_message: None,
            processes: kills.iter().map(|k| k.primary.processes).max().unwrap_or(0),
        });
        figures.push(restored);
        figures.push(rpo_figure("promoted standby", &kills, |k| k.standby));
        let all_records: Vec<f64> = kills.iter().flat_map(|k| k.lag_records.clone()).collect();
        let all_seconds: Vec<f64> = kills.iter().flat_map(|k| k.lag_seconds.clone()).collect();
        let sb_rss: Vec<u64> = kills.iter().filter_map(|k| k.standby_rss).collect();
        let mut lag = Measurement::from_runs(
            kills
                .iter()
                .map(|k| percentile(&k.lag_seconds, 0.5))
                .collect(),
        );
        lag.detail = Some(format!(
            "over {} samples: p50 {:.2} s / {:.0} records, max {:.2} s / {:.0} records; \
             standby peak RSS {}",
            all_seconds.len(),
            percentile(&all_seconds, 0.5),
            percentile(&all_records, 0.5),
            max(&all_seconds),
            max(&all_records),
            if sb_rss.is_empty() {
                "n/a".into()
            } else {
                human_bytes(median_u64(&sb_rss))
            }
        ));
        figures.push(Figure {
            name: "standby replay lag under the load (p50 per kill)".into(),
            unit: "s".into(),
            subject: lag,
            peers: vec![],
            goals: vec![],
        });
        let promotes: Vec<f64> = kills.iter().map(|k| k.promote.as_secs_f64()).collect();
        let mut pm = Measurement::from_runs(promotes.clone());
        pm.detail = Some(format!("max {:.2} s", max(&promotes)));
        figures.push(Figure {
            name: "`mailvault promote` (until it serves)".into(),
            unit: "s".into(),
            subject: pm,
            peers: vec![],
            goals: vec![Goal::evaluate(
                format!("≤ {GOAL_PROMOTE_S} s (the worst)"),
                Some(max(&promotes)),
                |v| v <= GOAL_PROMOTE_S,
                None,
            )],
        });
        let shipped: Vec<f64> = kills.iter().filter_map(|k| k.shipped_bytes).collect();

        let mut notes = vec![format!(
            "redo bytes shipped to the target per kill (primary's \
             `mailvault_redo_shipped_bytes_total` at the kill): median {}",
            human_bytes(median(&shipped) as u64)
        )];
        if p.runs < 3 {
            notes.push(format!(
                "only {} throughput run(s) per figure: not a benchmark result",
                p.runs
            ));
        }
        Ok(ScenarioReport {
            name: "live".into(),
            title: "Live DR: shipping, RPO, standby, promote".into(),
            description: format!(
                "Continuous redo shipping into a directory target (`zimbraBackupContinuousEnabled \
                 TRUE`, every {INTERVAL_S} s, the default) under the lmtp scenario's load: {} KB \
                 messages (seed {}), round-robin over {} accounts, {} connections. Throughput: \
                 shipping on vs off, alternating, fresh home each run, {} messages, every \
                 acknowledged message checked after. RPO: {} kills; per kill a fresh primary \
                 (one full backup into the target) and a warm standby (`mailvault standby -t T`) \
                 following it; the primary is killed with SIGKILL {:.0}-{:.0} s into the load \
                 (uniform). Then a scratch home is rebuilt from the target alone \
                 (`zmrestoreldap -t T`, `zmrestoreoffline -a all -t T`), and the standby is \
                 promoted once it applied what was shipped (`mailvault promote`, timed until \
                 it serves); in each, the RPO of the kill is how long before the kill the \
                 oldest acknowledged message it lacks was acknowledged (0 when it lacks none). \
                 The killed primary is started again and must hold every acknowledged \
                 message. Standby lag: the standby's `/metrics` every 250 ms during the load \
                 (records by LSN, seconds by record time behind the last shipped record). \
                 Resources: the primary's process tree during the load.",
                p.message_size / 1024,
                ctx.seed,
                p.accounts,
                p.connections,
                p.messages,
                p.kills,
                p.kill_after.0.as_secs_f64(),
                p.kill_after.1.as_secs_f64(),
            ),
            subject: "mailvault".into(),
            peers: vec![PeerInfo {
                name: "shipping off".into(),
                availability: Availability::Available {
                    version: "the same binary, zimbraBackupContinuousEnabled FALSE".into(),
                },
            }],
            figures,
            notes,
        })
    }
}
