//! Scenario `imap-stress`: Dovecot's imaptest in stress mode against mailvault and
//! Dovecot imapd in the same run.
//!
//! Each run starts a fresh server with the same accounts, then imaptest's clients
//! log in, select, fetch, store flags and keywords, expunge, append (from an mbox
//! drawn by [`imaptest::stress_mbox`]) and log out at random for a fixed time,
//! checking every reply. Meanwhile a probe connection of our own client logs in
//! and out every 200 ms: its LOGIN times (command to tagged OK) give the latency
//! percentiles imaptest does not print. Measured: operations per second (the
//! "Totals:" row of imaptest over the run time), LOGIN p50, imaptest's "Error:"
//! lines, and the server's resident memory before and after the run.

use crate::imap_client::ImapConnection;
use crate::peers::dovecot::Dovecot;
use crate::peers::imaptest::{self, StressOutput, StressRun};
use crate::peers::mailvault::Mailvault;
use crate::peers::{Availability, LmtpTarget};
use crate::scenario::{
    Figure, Goal, Measurement, PeerFigure, PeerInfo, PeerResult, RunContext, Scenario,
    ScenarioReport, median,
};
use crate::sysinfo::{human_bytes, tree_rss};
use anyhow::Context;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Goals: at least Dovecot's operation rate; LOGIN p50 at most twice Dovecot's;
/// mailvault's RSS after the run at most twice its RSS before.
pub const RATE_GOAL: f64 = 1.0;
pub const LOGIN_GOAL: f64 = 2.0;
pub const RSS_GOAL: f64 = 2.0;

const PASSWORD: &str = "x";
const USER_TEMPLATE: &str = "stress%d@bench.test";
/// Messages in the mbox imaptest appends from.
const MBOX_MESSAGES: usize = 300;
const PROBE_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub struct StressParams {
    pub clients: usize,
    pub accounts: usize,
    pub secs: u64,
    pub runs: usize,
}

impl StressParams {
    pub fn for_scale(scale: crate::corpus::Scale, runs: usize) -> StressParams {
        use crate::corpus::Scale;
        StressParams {
            clients: 10,
            accounts: 10,
            secs: match scale {
                Scale::Small => 15,
                Scale::Medium | Scale::Large => 60,
            },
            runs,
        }
    }
}

#[derive(Default)]
pub struct ImapStressScenario {
    pub params: Option<StressParams>,
}

/// One system's run.
struct RunFigures {
    ops_per_sec: f64,
    login_p50_ms: f64,
    login_p99_ms: f64,
    probes: usize,
    output: StressOutput,
    rss_before: u64,
    rss_after: u64,
}

/// Per system: every run's figures.
#[derive(Default)]
struct Runs(Vec<RunFigures>);

impl Runs {
    fn ops(&self) -> Measurement {
        let mut m = Measurement::from_runs(self.0.iter().map(|r| r.ops_per_sec).collect());
        if let Some(r) = self.median_run(|r| r.ops_per_sec) {
            let logins = r.output.total_of("Logi").unwrap_or(0);
            m.detail = Some(format!(
                "{} operations, {logins} LOGINs in the median run",
                r.output.operations()
            ));
        }
        m
    }

    fn login(&self) -> Measurement {
        let mut m = Measurement::from_runs(self.0.iter().map(|r| r.login_p50_ms).collect());
        if let Some(r) = self.median_run(|r| r.login_p50_ms) {
            let avg = r
                .output
                .login_avg_ms
                .map(|a| format!("; imaptest's LOGIN average {a:.0} ms"))
                .unwrap_or_default();
            m.detail = Some(format!(
                "p99 {:.1} ms over {} probe logins{avg}",
                r.login_p99_ms, r.probes
            ));
        }
        m
    }

    fn errors(&self) -> Measurement {
        Measurement::from_runs(
            self.0
                .iter()
                .map(|r| r.output.errors.len() as f64)
                .collect(),
        )
    }

    fn rss_growth(&self) -> Measurement {
        let mut m = Measurement::from_runs(
            self.0
                .iter()
                .map(|r| r.rss_after as f64 / r.rss_before.max(1) as f64)
                .collect(),
        );
        if let Some(r) = self.median_run(|r| r.rss_after as f64 / r.rss_before.max(1) as f64) {
            m.detail = Some(format!(
                "{} before, {} after",
                human_bytes(r.rss_before),
                human_bytes(r.rss_after)
            ));
        }
        m
    }

    /// The run whose `key` is the median (the one the detail describes).
    fn median_run(&self, key: impl Fn(&RunFigures) -> f64) -> Option<&RunFigures> {
        let m = median(&self.0.iter().map(&key).collect::<Vec<_>>());
        self.0.iter().find(|r| key(r) == m)
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// Logs in and out every [`PROBE_INTERVAL`] until `stop`; LOGIN times in ms.
fn probe(addr: SocketAddr, user: String, stop: Arc<AtomicBool>) -> Vec<f64> {
    let mut times = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let next = Instant::now() + PROBE_INTERVAL;
        if let Ok(mut c) = ImapConnection::connect(addr) {
            let start = Instant::now();
            let cmd = format!("LOGIN \"{user}\" \"{PASSWORD}\"");
            if c.command(&cmd).is_ok() {
                times.push(start.elapsed().as_secs_f64() * 1000.0);
            }
            c.logout();
        }
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    times
}

/// One stress run against a started server (`root`: its main process).
#[allow(clippy::too_many_arguments)]
fn stress(
    ctx: &RunContext,
    who: &str,
    p: &StressParams,
    it: &Path,
    mbox: &Path,
    addr: SocketAddr,
    root: u32,
    log: &Path,
) -> anyhow::Result<RunFigures> {
    let rss_before = tree_rss(root).context("reading the server's RSS")?;
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let (stop, user) = (stop.clone(), USER_TEMPLATE.replace("%d", "1"));
        std::thread::spawn(move || probe(addr, user, stop))
    };
    ctx.progress(&format!(
        "imap-stress: {who}: {} clients for {} s",
        p.clients, p.secs
    ));
    let output = imaptest::run(&StressRun {
        binary: it,
        addr,
        user_template: USER_TEMPLATE,
        users: p.accounts,
        password: PASSWORD,
        mbox,
        clients: p.clients,
        secs: p.secs,
        log,
    });
    stop.store(true, Ordering::Relaxed);
    let mut probes = prober.join().expect("probe thread");
    let output = output.with_context(|| format!("{who}: imaptest"))?;
    // Connections closing are the server's to finish: give it a moment.
    std::thread::sleep(Duration::from_secs(1));
    let rss_after = tree_rss(root).context("reading the server's RSS")?;
    probes.sort_by(f64::total_cmp);
    let r = RunFigures {
        ops_per_sec: output.operations() as f64 / p.secs as f64,
        login_p50_ms: percentile(&probes, 0.5),
        login_p99_ms: percentile(&probes, 0.99),
        probes: probes.len(),
        output,
        rss_before,
        rss_after,
    };
    ctx.progress(&format!(
        "imap-stress: {who}: {:.0} ops/s, LOGIN p50 {:.1} ms, {} Error: lines, RSS {} -> {}",
        r.ops_per_sec,
        r.login_p50_ms,
        r.output.errors.len(),
        human_bytes(r.rss_before),
        human_bytes(r.rss_after)
    ));
    Ok(r)
}

fn accounts(n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| USER_TEMPLATE.replace("%d", &i.to_string()))
        .collect()
}

impl Scenario for ImapStressScenario {
    fn name(&self) -> &'static str {
        "imap-stress"
    }

    fn summary(&self) -> &'static str {
        "imaptest stress (10 clients, random IMAP commands checked for protocol errors), mailvault vs Dovecot imapd"
    }

    fn run(&self, ctx: &RunContext) -> anyhow::Result<ScenarioReport> {
        let p = self
            .params
            .clone()
            .unwrap_or_else(|| StressParams::for_scale(ctx.scale, ctx.runs));
        let it = imaptest::find(ctx.workspace.as_deref()).map_err(|e| anyhow::anyhow!(e))?;
        let mailvault = Mailvault::new(ctx.mailvault.clone());
        if let Some(why) = mailvault.availability().reason() {
            anyhow::bail!("mailvault: {why}");
        }
        let dovecot = Dovecot::detect();
        let dovecot_avail = dovecot.imap_availability();
        let work = tempfile::Builder::new()
            .prefix("imap-stress-")
            .tempdir_in(&ctx.bench_dir)?;
        let mbox = work.path().join("stress.mbox");
        std::fs::write(&mbox, imaptest::stress_mbox(MBOX_MESSAGES, ctx.seed))?;
        let accts = accounts(p.accounts);

        let mut mv = Runs::default();
        let mut dc = Runs::default();
        let mut dc_err: Option<String> = dovecot_avail.reason();
        for run in 0..p.runs {
            // mailvault.
            let dir = work.path().join(format!("mailvault-{run}"));
            std::fs::create_dir_all(&dir)?;
            let home = mailvault.provision_with_password(&dir, &accts, Some(PASSWORD))?;
            let server = mailvault.serve(&home, &dir)?;
            let r = stress(
                ctx,
                "mailvault",
                &p,
                &it,
                &mbox,
                server.imap_addr(),
                server.pid(),
                &dir.join("imaptest.log"),
            );
            server.stop()?;
            mv.0.push(r?);

            // Dovecot.
            if dc_err.is_none() {
                let dir = work.path().join(format!("dovecot-{run}"));
                std::fs::create_dir_all(&dir)?;
                let r = (|| -> anyhow::Result<RunFigures> {
                    let mut server = dovecot.start_imap(&dir, &accts)?;
                    let r = stress(
                        ctx,
                        "Dovecot",
                        &p,
                        &it,
                        &mbox,
                        server.addr(),
                        server.master_pid(),
                        &dir.join("imaptest.log"),
                    );
                    server.stop()?;
                    r
                })();
                match r {
                    Ok(r) => dc.0.push(r),
                    Err(e) => dc_err = Some(format!("failed: {e:#}")),
                }
            }
        }

        let peer = |m: Measurement| match &dc_err {
            None => PeerResult::Measured(m),
            Some(reason) => PeerResult::Skipped {
                reason: reason.clone(),
            },
        };
        let not_measured = dc_err.as_ref().map(|e| format!("Dovecot {e}"));
        let mut figures = Vec::new();

        let mut ops = Figure {
            name: format!("imaptest operations, {} clients", p.clients),
            unit: "operations/s".into(),
            subject: mv.ops(),
            peers: vec![PeerFigure {
                peer: "Dovecot".into(),
                result: peer(dc.ops()),
            }],
            goals: vec![],
        };
        let ratio = ops.ratio_to("Dovecot");
        ops.goals.push(Goal::evaluate(
            format!("≥ {RATE_GOAL}× Dovecot"),
            ratio,
            |r| r >= RATE_GOAL,
            not_measured.clone(),
        ));
        figures.push(ops);

        let mut login = Figure {
            name: "LOGIN latency p50 under the load (probe connection)".into(),
            unit: "ms".into(),
            subject: mv.login(),
            peers: vec![PeerFigure {
                peer: "Dovecot".into(),
                result: peer(dc.login()),
            }],
            goals: vec![],
        };
        let ratio = login.ratio_to("Dovecot");
        login.goals.push(Goal::evaluate(
            format!("≤ {LOGIN_GOAL}× Dovecot"),
            ratio,
            |r| r <= LOGIN_GOAL,
            not_measured.clone(),
        ));
        figures.push(login);

        let errors = mv.errors();
        let worst = errors.runs.iter().cloned().fold(0.0, f64::max);
        figures.push(Figure {
            name: "imaptest \"Error:\" lines".into(),
            unit: "lines".into(),
            subject: errors,
            peers: vec![PeerFigure {
                peer: "Dovecot".into(),
                result: peer(dc.errors()),
            }],
            goals: vec![Goal::evaluate(
                "none, in every run",
                Some(worst),
                |w| w == 0.0,
                None,
            )],
        });

        let growth = mv.rss_growth();
        let worst = growth.runs.iter().cloned().fold(0.0, f64::max);
        figures.push(Figure {
            name: "server RSS after the run / before it".into(),
            unit: "×".into(),
            subject: growth,
            peers: vec![PeerFigure {
                peer: "Dovecot".into(),
                result: peer(dc.rss_growth()),
            }],
            goals: vec![Goal::evaluate(
                format!("≤ {RSS_GOAL}× (mailvault, every run)"),
                Some(worst),
                |w| w <= RSS_GOAL,
                None,
            )],
        });

        let mut notes = Vec::new();
        for (who, runs) in [("mailvault", &mv), ("Dovecot", &dc)] {
            let errs: Vec<&String> = runs.0.iter().flat_map(|r| &r.output.errors).collect();
            if !errs.is_empty() {
                let first: Vec<String> = errs.iter().take(5).map(|e| format!("`{e}`")).collect();
                notes.push(format!(
                    "{who}: {} \"Error:\" lines; the first: {}",
                    errs.len(),
                    first.join("; ")
                ));
            }
        }
        if p.runs < 3 {
            notes.push(format!(
                "only {} run(s) per figure: not a benchmark result",
                p.runs
            ));
        }
        if ctx.keep_work {
            let kept = work.keep();
            notes.push(format!(
                "imaptest's output kept in {}",
                crate::sysinfo::shown(&kept)
            ));
        }
        let version = match &dovecot_avail {
            Availability::Available { version } => format!(" ({version})"),
            _ => String::new(),
        };
        Ok(ScenarioReport {
            name: "imap-stress".into(),
            title: "IMAP under imaptest stress".into(),
            description: format!(
                "Dovecot's imaptest in stress mode (`imaptest user={USER_TEMPLATE} users=1-{a} \
                 pass=… mbox=… clients={c} secs={s}`): {c} clients over {a} accounts log in, \
                 LIST, STATUS, SELECT, FETCH, STORE flags and keywords, EXPUNGE, APPEND (from a \
                 generated mbox of {MBOX_MESSAGES} messages, seed {seed}, every fifth with an \
                 attachment) and log out at random for {s} s, checking every reply for \
                 protocol violations (its \"Error:\" lines). Each run starts a fresh server with \
                 the accounts provisioned; both servers get the same load in the same run. \
                 Operations/s is the sum of imaptest's \"Totals:\" row divided by {s} s. LOGIN \
                 latency comes from a probe connection of the bench's own client logging in and \
                 out every {probe} ms during the run (command to tagged OK; imaptest itself \
                 prints only averages, given beside it). RSS is the server's resident memory \
                 (summed over its processes) when it is ready, before the load, and 1 s after \
                 imaptest ends. Dovecot{version} runs `peers/dovecot-imap.conf.in` (Maildir). \
                 Figures are the median of {runs} runs; the machine is shared with other \
                 builds and tests, which lowers and scatters every figure (see the load \
                 average).",
                a = p.accounts,
                c = p.clients,
                s = p.secs,
                seed = ctx.seed,
                probe = PROBE_INTERVAL.as_millis(),
                runs = p.runs,
            ),
            subject: "mailvault".into(),
            peers: vec![PeerInfo {
                name: "Dovecot".into(),
                availability: dovecot_avail,
            }],
            figures,
            notes,
        })
    }
}
