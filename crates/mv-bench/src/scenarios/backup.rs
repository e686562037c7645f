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

use crate::corpus::{Corpus, Scale};
use crate::imap_client::ImapConnection;
use crate::lmtp_client::{self, Job};
use crate::measure::{self, Measured, tree_bytes, tree_digests};
use crate::peers::archivers::{Archiver, Kind};
use crate::peers::mailvault::{
    MailboxStates, Mailvault, MessageDigests, mailbox_states, message_digests,
};
use crate::peers::{LmtpTarget, RunningServer};
use crate::scenario::{
    Figure, Goal, Measurement, PeerFigure, PeerInfo, PeerResult, ResourceSummary, RunContext,
    Scenario, ScenarioReport, median, median_u64,
};
use crate::sysinfo::{human_bytes, shown};
use anyhow::{Context, bail};
use mv_home::Home;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

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

/// One measured run of one tool.
#[derive(Debug, Clone)]
struct Sample {
    /// The figure (MB/s, s or ops/s).
    value: f64,
    m: Measured,
    /// Growth of the target / repository.
    growth: Option<u64>,
}

/// The runs of one tool for one figure, or why there are none.
type Series = Result<Vec<Sample>, String>;

const MB: f64 = 1_000_000.0;

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .context("cp -a")?;
    if !st.success() {
        bail!("cp -a {} {} failed", from.display(), to.display());
    }
    Ok(())
}

/// The home's archived redo logs (`redolog/archive/redo-<time>-seq<N>.log`), in
/// sequence order.
fn archived_redo_logs(home: &Path) -> anyhow::Result<Vec<(u64, PathBuf)>> {
    let dir = home.join("redolog/archive");
    let mut logs = Vec::new();
    for e in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = e?.path();
        let seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.rsplit_once("-seq"))
            .and_then(|(_, seq)| seq.parse::<u64>().ok());
        if let Some(seq) = seq {
            logs.push((seq, path));
        }
    }
    logs.sort();
    Ok(logs)
}

/// A copy of a stopped home whose message files are hard links to the original's:
/// the store never changes a message file in place (new content gets a new file,
/// a deletion removes only the copy's link), and copying 1 GiB for each replay run
/// would cost more than the replay.
fn copy_home(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let link = e.file_name() == "store";
        let st = Command::new("cp")
            .arg(if link { "-al" } else { "-a" })
            .arg(e.path())
            .arg(to)
            .status()
            .context("cp")?;
        if !st.success() {
            bail!(
                "copying {} into {} failed",
                e.path().display(),
                to.display()
            );
        }
    }
    Ok(())
}

/// What IMAP clients do to delivered mail, in every account's INBOX from the last
/// message down (so that the sequence numbers still to visit do not move): of
/// every 20 messages, 12 are marked \Seen, 2 \Seen and \Flagged, 1 is moved to
/// "Archive", 1 is deleted (\Deleted, then EXPUNGE), 4 stay untouched. Each
/// command is one commit (one redo record) on the server, as when a user reads
/// mail. Returns the number of commands that changed something.
fn mailbox_changes(
    addr: std::net::SocketAddr,
    accounts: &[String],
    connections: usize,
) -> anyhow::Result<u64> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let counts: Vec<anyhow::Result<u64>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..connections.max(1))
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<u64> {
                    let mut commands = 0;
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(user) = accounts.get(i) else {
                            return Ok(commands);
                        };
                        let mut c = ImapConnection::login(addr, user, PASSWORD)?;
                        c.command("CREATE Archive")?;
                        c.command("SELECT INBOX")?;
                        let n = c.command("SEARCH ALL")?.search_hits;
                        for seq in (1..=n).rev() {
                            let cmds: Vec<String> = match seq % 20 {
                                0..=11 => vec![format!("STORE {seq} +FLAGS (\\Seen)")],
                                12 | 13 => vec![format!("STORE {seq} +FLAGS (\\Seen \\Flagged)")],
                                14 => vec![format!("MOVE {seq} Archive")],
                                15 => vec![
                                    format!("STORE {seq} +FLAGS (\\Deleted)"),
                                    "EXPUNGE".to_string(),
                                ],
                                _ => vec![],
                            };
                            for cmd in &cmds {
                                c.command(cmd).with_context(|| format!("{user}: {cmd}"))?;
                                commands += 1;
                            }
                        }
                        c.logout();
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("an IMAP worker panicked")))
            })
            .collect()
    });
    counts.into_iter().sum()
}

fn remove(p: &Path) {
    let _ = std::fs::remove_dir_all(p);
}

/// Before each measured step: everything written is on disk and, when allowed
/// (root), nothing is cached, so that every tool reads the store from the disk as
/// a backup of a store larger than memory does. With a warm cache the order would
/// decide: the tool that runs first reads from the disk and leaves the data cached
/// for the next.
fn quiet_disk() {
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    let _ = std::fs::write(DROP_CACHES, "3");
}

const DROP_CACHES: &str = "/proc/sys/vm/drop_caches";

/// Whether [`quiet_disk`] can empty the page cache here.
fn can_drop_caches() -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open(DROP_CACHES)
        .is_ok()
}

/// Delivers messages `range` of `corpus` (to their envelope recipients) over
/// LMTP, in chunks so that memory stays small; returns account -> Message-IDs.
fn deliver(
    addr: std::net::SocketAddr,
    corpus: &Corpus,
    range: std::ops::Range<usize>,
    connections: usize,
) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let idx: Vec<usize> = range.collect();
    for chunk in idx.chunks(500) {
        let jobs: Vec<Job> = chunk
            .iter()
            .map(|&i| {
                let p = &corpus.messages[i];
                let rcpts: Vec<String> = p
                    .rcpts
                    .iter()
                    .map(|&a| corpus.accounts[a].email.clone())
                    .collect();
                for r in &rcpts {
                    expected
                        .entry(r.clone())
                        .or_default()
                        .push(p.message_id.clone());
                }
                Job {
                    from: p.from.clone(),
                    rcpts,
                    data: Arc::new(lmtp_client::wire_data(&corpus.message(i))),
                }
            })
            .collect();
        let r = lmtp_client::run_load(addr, connections.min(jobs.len()).max(1), &jobs)?;
        if !r.failures.is_empty() {
            bail!(
                "{} of {} deliveries failed, e.g. {:?}",
                r.failures.len(),
                jobs.len(),
                &r.failures[..r.failures.len().min(3)]
            );
        }
    }
    Ok(expected)
}

/// What the run has to work with once the home is loaded.
struct Setup {
    mv: Mailvault,
    work: PathBuf,
    home: Home,
    /// A copy of the home before the load (accounts only): the replay base.
    pre_load: PathBuf,
    /// The point in time the replays go to (local time = UTC for the child).
    replay_to: String,
    /// What a replay to that point must hold.
    replay_digests: MessageDigests,
    replay_messages: usize,
    /// What the load delivered (what a replay of the delivery logs must hold).
    delivered: MessageDigests,
    /// The redo logs of the deliveries.
    delivery_logs: Vec<PathBuf>,
    /// A copy of the home after the deliveries: the base of the mailbox-change
    /// replay.
    pre_changes: PathBuf,
    /// The redo logs of the mailbox changes.
    change_logs: Vec<PathBuf>,
    /// Where every message is and how it is marked after the changes.
    changed: MailboxStates,
    /// The home's messages at the end of the load (deliveries and changes).
    digests: MessageDigests,
    data_bytes: u64,
    copies: usize,
    messages: usize,
}

fn first_diff(a: &MessageDigests, b: &MessageDigests) -> String {
    for (k, v) in a {
        match b.get(k) {
            None => return format!("account {k} missing"),
            Some(w) if w != v => {
                return format!(
                    "account {k}: {} messages, {} expected{}",
                    w.len(),
                    v.len(),
                    v.iter()
                        .zip(w)
                        .find(|(x, y)| x != y)
                        .map(|(x, y)| format!("; first difference {} vs {}", x.0, y.0))
                        .unwrap_or_default()
                );
            }
            _ => {}
        }
    }
    if let Some(k) = b.keys().find(|k| !a.contains_key(*k)) {
        return format!("unexpected account {k}");
    }
    "equal".into()
}

impl BackupScenario {
    fn load(&self, ctx: &RunContext, p: &BackupParams, corpus: &Corpus) -> anyhow::Result<Setup> {
        let mv = Mailvault::new(ctx.mailvault.clone());
        if let Some(why) = LmtpTarget::availability(&mv).reason() {
            bail!("mailvault: {why}");
        }
        let work = tempfile::Builder::new()
            .prefix("backup-")
            .tempdir_in(&ctx.bench_dir)?
            .keep();
        let accounts: Vec<String> = corpus.accounts.iter().map(|a| a.email.clone()).collect();
        let src = work.join("src");
        std::fs::create_dir_all(&src)?;
        let home = mv.provision_with_password(&src, &accounts, Some(PASSWORD))?;
        let pre_load = work.join("pre-load");
        copy_tree(home.root(), &pre_load)?;
        ctx.progress(&format!(
            "backup: loading {} messages into {} accounts over LMTP",
            corpus.messages.len(),
            accounts.len()
        ));
        let t = std::time::Instant::now();
        let server = mv.serve(&home, &src)?;
        // The replay's point in time lies between two parts of the load.
        let n = corpus.messages.len();
        let k = (n * p.replay_percent / 100).clamp(1, n);
        let mut expected = deliver(server.lmtp_addr(), corpus, 0..k, p.connections)
            .context("loading the corpus")?;
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let replay_to = chrono::Utc::now().format("%Y/%m/%d %H:%M:%S").to_string();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        for (a, ids) in deliver(server.lmtp_addr(), corpus, k..n, p.connections)
            .context("loading the corpus")?
        {
            expected.entry(a).or_default().extend(ids);
        }
        let copies = Box::new(server)
            .stop_and_verify(&expected)
            .context("checking the loaded corpus")?;
        let digests = message_digests(&home)?;
        // The mailbox changes IMAP clients make, in redo logs of their own: a full
        // backup of one account rolls the redo log over first.
        std::fs::create_dir_all(work.join("rollover"))?;
        let o = mv
            .command(home.root())
            .args(["backup", "-f", "-sync", "-a", &accounts[0], "-t"])
            .arg(work.join("rollover"))
            .output()
            .context("mailvault backup (to roll the redo log over)")?;
        if !o.status.success() {
            bail!(
                "rolling the redo log over: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
        remove(&work.join("rollover"));
        let delivery_logs: Vec<(u64, PathBuf)> = archived_redo_logs(home.root())?;
        let pre_changes = work.join("pre-changes");
        copy_home(home.root(), &pre_changes)?;
        let changing = std::time::Instant::now();
        let server = mv.serve(&home, &src)?;
        let commands = mailbox_changes(server.imap_addr(), &accounts, p.connections)
            .context("changing the mailboxes over IMAP")?;
        server.stop()?;
        let last_delivery_log = delivery_logs.last().map_or(0, |(seq, _)| *seq);
        let mut change_logs: Vec<PathBuf> = archived_redo_logs(home.root())?
            .into_iter()
            .filter(|(seq, _)| *seq > last_delivery_log)
            .map(|(_, p)| p)
            .collect();
        change_logs.push(home.root().join("redolog/redo.log"));
        let delivery_logs: Vec<PathBuf> = delivery_logs.into_iter().map(|(_, p)| p).collect();
        let changed = mailbox_states(&home)?;
        ctx.progress(&format!(
            "backup: {commands} IMAP commands changed flags, folders and messages in {:.1} s",
            changing.elapsed().as_secs_f64()
        ));
        let delivered = digests;
        let digests = message_digests(&home)?;
        let early: std::collections::HashSet<&str> = corpus.messages[..k]
            .iter()
            .map(|m| m.message_id.as_str())
            .collect();
        let replay_digests: MessageDigests = delivered
            .iter()
            .map(|(a, v)| {
                let v: Vec<(String, String)> = v
                    .iter()
                    .filter(|(id, _)| early.contains(id.as_str()))
                    .cloned()
                    .collect();
                (a.clone(), v)
            })
            .collect();
        let data_paths: Vec<PathBuf> = DATA_DIRS.iter().map(|d| home.root().join(d)).collect();
        let data_bytes = tree_bytes(&data_paths.iter().map(|p| p.as_path()).collect::<Vec<_>>());
        ctx.progress(&format!(
            "backup: loaded {copies} message copies in {:.1} s; data set {} ({})",
            t.elapsed().as_secs_f64(),
            human_bytes(data_bytes),
            DATA_DIRS.join(" + ")
        ));
        Ok(Setup {
            mv,
            work,
            home,
            pre_load,
            replay_to,
            replay_digests,
            replay_messages: k,
            delivered,
            delivery_logs,
            pre_changes,
            change_logs,
            changed,
            digests,
            data_bytes,
            copies,
            messages: corpus.messages.len(),
        })
    }
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

/// Runs one peer step unless the peer is already out; a failure takes it out.
fn peer_step(
    broken: &mut Option<String>,
    series: &mut Series,
    ctx: &RunContext,
    name: &str,
    f: impl FnOnce() -> anyhow::Result<Sample>,
) {
    if let Some(b) = broken {
        *series = Err(b.clone());
        return;
    }
    let Ok(runs) = series else { return };
    match f() {
        Ok(s) => {
            ctx.progress(&format!("backup:   {name}: {:.2} s", s.m.secs));
            runs.push(s);
        }
        Err(e) => {
            ctx.progress(&format!("backup:   {name} failed: {e:#}"));
            let why = format!("failed: {e:#}");
            *series = Err(why.clone());
            *broken = Some(format!("{name} failed earlier: {e:#}"));
        }
    }
}

fn measurement(runs: &[Sample], unit_messages: usize) -> Measurement {
    let mut m = Measurement::from_runs(runs.iter().map(|s| s.value).collect());
    if let Some(s) = runs.iter().find(|s| s.value == m.median) {
        m.detail = Some(format!(
            "{:.2} s{}",
            s.m.secs,
            s.growth
                .map(|g| format!(", repository +{}", human_bytes(g)))
                .unwrap_or_default()
        ));
    }
    let rss: Vec<u64> = runs.iter().filter_map(|s| s.m.peak_rss_bytes).collect();
    let wb: Vec<u64> = runs.iter().map(|s| s.m.write_bytes).collect();
    m.resources = Some(ResourceSummary {
        peak_rss_bytes: (!rss.is_empty()).then(|| median_u64(&rss)),
        write_bytes: (!wb.is_empty()).then(|| median_u64(&wb)),
        write_bytes_per_message: (!wb.is_empty() && unit_messages > 0)
            .then(|| median_u64(&wb) / unit_messages as u64),
        processes: 1,
    });
    m
}

fn median_secs(runs: &[Sample]) -> f64 {
    median(&runs.iter().map(|s| s.m.secs).collect::<Vec<_>>())
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
        let home_root = s.home.root().to_path_buf();
        let data_mb = s.data_bytes as f64 / MB;
        // Messages the home holds after the load (the changes deleted some).
        let held: usize = s.digests.values().map(Vec::len).sum();
        let np = peers.len();
        let fresh = || -> Vec<Series> { (0..np).map(|_| Ok(Vec::new())).collect() };
        let mut figures = Vec::new();

        // 1. Point-in-time replay of the load's redo logs into the pre-load copy.
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

        // 2. First full backup, fresh target / repository in every run.
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
            let mut c = s.mv.command(&home_root);
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
                        &mut a.backup_cmd(&repo, &home_root, &DATA_DIRS, "first", true),
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
        let target = kept.join("mailvault");
        let repo = |a: &Archiver| kept.join(a.name());
        // What the peers saw (mailvault ran first in each run, so nothing changed after).
        let source_tree = tree_digests(&home_root, &DATA_DIRS)?;
        let mut f = figure(
            "first full backup",
            "MB/s",
            &mv_full,
            peers,
            &peer_full,
            held,
        );
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
        figures.push(f);

        // 3. Verify: read every byte back.
        let mut mv_verify = Vec::new();
        let mut peer_verify = fresh();
        for run in 0..runs {
            ctx.progress(&format!(
                "backup: verify --read-data, run {}/{runs}",
                run + 1
            ));
            quiet_disk();
            let mut c = s.mv.command(&home_root);
            c.args(["backup", "verify", "--read-data", "-t"])
                .arg(&target);
            let m = measure::run(&mut c, "mailvault backup verify --read-data", None)?;
            ctx.progress(&format!("backup:   mailvault: {:.2} s", m.secs));
            mv_verify.push(Sample {
                value: data_mb / m.secs,
                m,
                growth: None,
            });
            for (i, a) in peers.iter().enumerate() {
                let Some(mut c) = a.check_cmd(&repo(a)) else {
                    peer_verify[i] = Err(format!("{} keeps no checksums to verify", a.name()));
                    continue;
                };
                let mut b = broken[i].clone();
                peer_step(&mut b, &mut peer_verify[i], ctx, a.name(), || {
                    quiet_disk();
                    let m = measure::run(&mut c, &format!("{} check", a.name()), None)?;
                    Ok(Sample {
                        value: data_mb / m.secs,
                        m,
                        growth: None,
                    })
                });
            }
        }

        // 4. Restore every account from the first full into an empty place.
        let accounts: Vec<String> = corpus.accounts.iter().map(|a| a.email.clone()).collect();
        let mut mv_restore = Vec::new();
        let mut peer_restore = fresh();
        let mut restore_how = String::new();
        for run in 0..runs {
            ctx.progress(&format!("backup: restore, run {}/{runs}", run + 1));
            let dest = s.work.join("restore-mailvault");
            remove(&dest);
            std::fs::create_dir_all(&dest)?;
            let (mut c, rhome) = restore_all(&s.mv, &target, &label, &dest, &accounts)?;
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
                value: data_mb / m.secs,
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
                        &mut a.restore_cmd(&repo(a), "first", &dest),
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
                        value: data_mb / m.secs,
                        m,
                        growth: None,
                    })
                });
                remove(&dest);
            }
        }

        // 5. Second full of the unchanged data, into the same target / repositories.
        let mut mv_second = Vec::new();
        let mut peer_second = fresh();
        for run in 0..runs {
            ctx.progress(&format!(
                "backup: second full of unchanged data, run {}/{runs}",
                run + 1
            ));
            quiet_disk();
            let before = tree_bytes(&[&target]);
            let mut c = s.mv.command(&home_root);
            c.args(["backup", "-f", "-a", "all", "-sync", "--zipStore", "-t"])
                .arg(&target);
            let m = measure::run(&mut c, "mailvault backup -f (second)", Some(&target))?;
            ctx.progress(&format!("backup:   mailvault: {:.2} s", m.secs));
            mv_second.push(Sample {
                value: m.secs,
                growth: Some(tree_bytes(&[&target]).saturating_sub(before)),
                m,
            });
            for (i, a) in peers.iter().enumerate() {
                let r = repo(a);
                peer_step(&mut broken[i], &mut peer_second[i], ctx, a.name(), || {
                    quiet_disk();
                    let before = tree_bytes(&[&r]);
                    let name = format!("second-{run}");
                    let m = measure::run(
                        &mut a.backup_cmd(&r, &home_root, &DATA_DIRS, &name, false),
                        &format!("{} backup (second)", a.name()),
                        Some(&r),
                    )?;
                    Ok(Sample {
                        value: m.secs,
                        growth: Some(tree_bytes(&[&r]).saturating_sub(before)),
                        m,
                    })
                });
            }
        }

        // 6. Incrementals after 1% and 10% new messages.
        let change = Corpus::generate(ctx.scale, ctx.seed.wrapping_add(1));
        let mut next = 0usize;
        let mut incr_figures = Vec::new();
        for &pct in &p.change_percents {
            let n = (s.messages * pct / 100).max(1);
            let mut mv_incr = Vec::new();
            let mut peer_incr = fresh();
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
                quiet_disk();
                let before = tree_bytes(&[&target]);
                let mut c = s.mv.command(&home_root);
                c.args(["backup", "-i", "-a", "all", "-sync", "--zipStore", "-t"])
                    .arg(&target);
                let m = measure::run(&mut c, "mailvault backup -i", Some(&target))?;
                ctx.progress(&format!("backup:   mailvault: {:.2} s", m.secs));
                mv_incr.push(Sample {
                    value: m.secs,
                    growth: Some(tree_bytes(&[&target]).saturating_sub(before)),
                    m,
                });
                for (i, a) in peers.iter().enumerate() {
                    let r = repo(a);
                    peer_step(&mut broken[i], &mut peer_incr[i], ctx, a.name(), || {
                        quiet_disk();
                        let before = tree_bytes(&[&r]);
                        let name = format!("incr{pct}-{run}");
                        let m = measure::run(
                            &mut a.backup_cmd(&r, &home_root, &DATA_DIRS, &name, true),
                            &format!("{} incremental", a.name()),
                            Some(&r),
                        )?;
                        Ok(Sample {
                            value: m.secs,
                            growth: Some(tree_bytes(&[&r]).saturating_sub(before)),
                            m,
                        })
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
                Some(median_secs(&mv_incr) / median_secs(&mv_full).max(1e-9)),
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

        // Figures in the order of the issue.
        let mut f = figure(
            "second full, unchanged data",
            "s",
            &mv_second,
            peers,
            &peer_second,
            held,
        );
        let time_share = median_secs(&mv_second) / median_secs(&mv_full).max(1e-9);
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
        let bytes_share = wb(&mv_second) as f64 / wb(&mv_full).max(1) as f64;
        f.goals.push(Goal::evaluate(
            format!(
                "bytes written ≤ {:.0}% of the first full's",
                GOAL_SECOND_FULL_SHARE * 100.0
            ),
            Some(bytes_share),
            |v| v <= GOAL_SECOND_FULL_SHARE,
            None,
        ));
        let second_note = format!(
            "second full vs first full (mailvault): time {:.1}%, bytes written {:.1}%",
            time_share * 100.0,
            bytes_share * 100.0
        );
        figures.push(f);
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
        // count) were pushed first; move them after the restore.
        let replay: Vec<Figure> = figures.drain(..3 * p.replay_threads.len()).collect();
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

fn command_line(c: &Command) -> String {
    let mut v = vec!["mailvault".to_string()];
    let args: Vec<String> = c
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // Leave out `--home DIR`: the reader's home is their own.
    let mut it = args.into_iter().peekable();
    while let Some(a) = it.next() {
        if a == "--home" {
            it.next();
            continue;
        }
        v.push(a);
    }
    v.join(" ")
}

fn figure(
    name: &str,
    unit: &str,
    subject: &[Sample],
    peers: &[Archiver],
    series: &[Series],
    unit_messages: usize,
) -> Figure {
    Figure {
        name: name.into(),
        unit: unit.into(),
        subject: measurement(subject, unit_messages),
        peers: peers
            .iter()
            .zip(series)
            .map(|(a, s)| PeerFigure {
                peer: a.name().into(),
                result: match s {
                    Ok(runs) if !runs.is_empty() => {
                        PeerResult::Measured(measurement(runs, unit_messages))
                    }
                    Ok(_) => PeerResult::Skipped {
                        reason: "not run".into(),
                    },
                    Err(why) => PeerResult::Skipped {
                        reason: why.clone(),
                    },
                },
            })
            .collect(),
        goals: vec![],
    }
}

fn ratio_goal(f: &Figure, peer: &str, at_least: f64, what: &str) -> Goal {
    let why = f
        .peers
        .iter()
        .find(|x| x.peer == peer)
        .and_then(|x| match &x.result {
            PeerResult::Skipped { reason } => Some(format!("{peer}: {reason}")),
            PeerResult::Measured(_) => None,
        });
    Goal::evaluate(
        format!("≥ {at_least}× {peer}'s {what}"),
        f.ratio_to(peer),
        |r| r >= at_least,
        why,
    )
}
