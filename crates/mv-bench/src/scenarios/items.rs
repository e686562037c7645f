//! Scenario `items`: item-level recovery in one large account, against the
//! procedure administrators use without it.
//!
//! One account of N messages (100,000 at medium and large scale) spread over a
//! year, about 1% of them in `/Projects`, backed up by a full and two
//! incrementals (each after more deliveries). Then one message (the only one
//! with the word "quokka") is deleted and `/Projects` is emptied, and both ways
//! of getting them back run on the same home and target, each from the state
//! right after the deletions:
//!
//! - the old way: `zmrestore -a A -ca -pre restore_ -restoreToTime T` (the
//!   whole account as it was before the loss, into a new one), then `zmmailbox -m restore_A s QUERY` to find, `getRestURL
//!   "//?fmt=tgz&query=..."` to export, `postRestURL` to put back;
//! - item-level: `mailvault backup search` (one word, a date range, a from:),
//!   `zmrestore --items quokka`, `zmrestore --folder /Projects`, `mailvault
//!   backup export --folder /Projects`.
//!
//! Every step is the `mailvault` binary as a user runs it (offline: no server),
//! measured by `measure::run` (wall time, peak RSS, bytes written). Figures are
//! the item-level step's time; the peer is the old way's steps for the same
//! result, so the ratio is the share of the old way's time it takes.

use crate::corpus::{Scale, fixed_size_message};
use crate::measure::{self, Measured};
use crate::peers::mailvault::Mailvault;
use crate::scenario::{
    Figure, Goal, Measurement, PeerFigure, PeerInfo, PeerResult, ResourceSummary, RunContext,
    Scenario, ScenarioReport,
};
use crate::sysinfo::human_bytes;
use anyhow::{Context, bail};
use mv_home::{Home, HomeLock};
use mv_server::Service;
use std::path::Path;
use std::time::Instant;

/// Goals (issue 25) for an account of 100,000 messages.
pub const GOAL_SEARCH_S: f64 = 1.0;
pub const GOAL_RESTORE_S: f64 = 2.0;
const GOAL_MESSAGES: usize = 100_000;

const ACCOUNT: &str = "archive@items.example";
const RESTORED: &str = "restore_archive@items.example";
const NEEDLE: &str = "quokka";
const FOLDER: &str = "/Projects";
/// Overrides `folder_every`: every this many messages, one goes to /Projects.
const FOLDER_EVERY_ENV: &str = "MAILVAULT_BENCH_ITEMS_FOLDER_EVERY";
/// The old way's name in the tables.
const OLD_WAY: &str = "whole-account restore";
/// Corpus dates: from 2025-01-01, spread over 365 days.
const START_MS: i64 = 1_735_689_600_000;
const SPAN_MS: i64 = 365 * 86_400_000;
const SENDERS: usize = 200;

#[derive(Debug, Clone)]
pub struct ItemsParams {
    pub messages: usize,
    /// Every this many messages, one goes to /Projects.
    pub folder_every: usize,
    pub message_size: usize,
    /// Delivery threads while loading.
    pub threads: usize,
}

impl ItemsParams {
    pub fn for_scale(scale: Scale) -> ItemsParams {
        match scale {
            Scale::Small => ItemsParams {
                messages: 3_000,
                folder_every: 30,
                message_size: 4 * 1024,
                threads: 4,
            },
            Scale::Medium | Scale::Large => ItemsParams {
                messages: GOAL_MESSAGES,
                folder_every: 100,
                message_size: 4 * 1024,
                threads: 8,
            },
        }
    }

    fn needle(&self) -> usize {
        self.messages / 2 + 1
    }

    fn in_folder(&self, i: usize) -> bool {
        i.is_multiple_of(self.folder_every) && i != self.needle()
    }

    fn folder_count(&self) -> usize {
        (0..self.messages).filter(|i| self.in_folder(*i)).count()
    }
}

#[derive(Default)]
pub struct ItemsScenario {
    pub params: Option<ItemsParams>,
}

fn sender(i: usize) -> String {
    format!("partner{:03}@supplier.example", i % SENDERS)
}

fn date_ms(i: usize, n: usize) -> i64 {
    START_MS + (i as i64 * SPAN_MS) / n as i64
}

/// Message `i` of `n`: a prose body of about `size` bytes, its own date, one of
/// 200 senders; the needle alone has the word "quokka".
pub fn message(seed: u64, i: usize, p: &ItemsParams) -> Vec<u8> {
    let raw = fixed_size_message(seed, i as u64, &sender(i), ACCOUNT, p.message_size);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("the corpus writes a header section");
    let date = chrono::DateTime::from_timestamp_millis(date_ms(i, p.messages))
        .expect("in range")
        .format("%a, %d %b %Y %H:%M:%S +0000");
    let extra = if i == p.needle() { " quokka" } else { "" };
    let mut out = format!(
        "Message-ID: <items-{seed}-{i}@supplier.example>\r\nDate: {date}\r\nFrom: <{}>\r\n\
         To: <{ACCOUNT}>\r\nSubject: order {i} status{extra}\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n",
        sender(i)
    )
    .into_bytes();
    out.extend_from_slice(&raw[split + 2..]);
    out
}

/// Opens the home in this process (no server runs).
fn open(home: &Home) -> anyhow::Result<(HomeLock, Service)> {
    let lock = HomeLock::acquire(home.root())?;
    let (svc, _) = Service::open(home).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((lock, svc))
}

/// Delivers messages `range` of the account (into /Projects or the Inbox).
fn load(
    home: &Home,
    seed: u64,
    p: &ItemsParams,
    range: std::ops::Range<usize>,
) -> anyhow::Result<()> {
    let (_lock, svc) = open(home)?;
    let account = svc
        .directory()
        .find_account(ACCOUNT)?
        .context("the account exists")?;
    let store = svc.store();
    let folder = match store.mailbox(account.mailbox_id).folder_by_path(FOLDER)? {
        Some(f) => f.id,
        None => store.create_folder_path(account.mailbox_id, FOLDER, "message")?,
    };
    let next = std::sync::atomic::AtomicUsize::new(range.start);
    std::thread::scope(|s| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..p.threads)
            .map(|_| {
                s.spawn(|| -> anyhow::Result<()> {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= range.end {
                            return Ok(());
                        }
                        let mut opts = mv_store::DeliverOptions::default();
                        if p.in_folder(i) {
                            opts.folder_id = folder;
                        }
                        store.deliver(&message(seed, i, p), &[account.mailbox_id], &opts)?;
                    }
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("a delivery thread panicked"))??;
        }
        Ok(())
    })?;
    store.checkpoint().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

/// The user's mistake: the needle deleted, /Projects emptied (whatever copies
/// an earlier step put back included). Returns how many messages went.
fn lose(home: &Home, seed: u64, p: &ItemsParams) -> anyhow::Result<usize> {
    let (_lock, svc) = open(home)?;
    let account = svc
        .directory()
        .find_account(ACCOUNT)?
        .context("the account exists")?;
    let store = svc.store();
    let mbox = store.mailbox(account.mailbox_id);
    let needle_id = format!("items-{seed}-{}@supplier.example", p.needle());
    let needles: Vec<_> = mbox
        .items(None, Some(mv_store::ItemKind::Message))?
        .into_iter()
        .filter(|m| m.message_id.trim_matches(|c| c == '<' || c == '>') == needle_id)
        .map(|m| mv_types::ItemId(m.id))
        .collect();
    let mut gone = needles.len();
    if !needles.is_empty() {
        store.delete_items(account.mailbox_id, &needles)?;
    }
    if let Some(f) = mbox.folder_by_path(FOLDER)? {
        gone += store.empty_folder(account.mailbox_id, f.id)?;
    }
    store.checkpoint().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(gone)
}

/// Runs one measured `mailvault` step.
fn step(mv: &Mailvault, home: &Home, args: &[&str], what: &str) -> anyhow::Result<Measured> {
    let mut c = mv.command(home.root());
    c.args(args);
    measure::run(&mut c, what, Some(home.root()))
}

/// `backup search` in its text form, which prints each hit as soon as it is
/// found: seconds from the start to the first hit line, and to the exit.
fn first_hit(mv: &Mailvault, home: &Home, args: &[&str]) -> anyhow::Result<(f64, f64)> {
    use std::io::BufRead;
    let mut c = mv.command(home.root());
    c.args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let start = Instant::now();
    let mut child = c.spawn().context("starting backup search")?;
    let out = child.stdout.take().context("backup search: no stdout")?;
    let mut first = None;
    for line in std::io::BufReader::new(out).lines() {
        if first.is_none() && line?.starts_with("  item ") {
            first = Some(start.elapsed().as_secs_f64());
        }
    }
    let status = child.wait()?;
    let total = start.elapsed().as_secs_f64();
    if !status.success() {
        bail!("backup search (text) failed: {status}");
    }
    Ok((first.context("backup search (text): no hit line")?, total))
}

fn json(m: &Measured, what: &str) -> anyhow::Result<serde_json::Value> {
    serde_json::from_str(&m.stdout).with_context(|| format!("{what}: not JSON: {}", m.stdout))
}

/// `backup search --json` hits, checked against what is expected.
fn search_hits(m: &Measured, what: &str) -> anyhow::Result<usize> {
    let v = json(m, what)?;
    let hits = v["accounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["hits"].as_array().map_or(0, |h| h.len()))
                .sum()
        })
        .unwrap_or(0);
    Ok(hits)
}

/// `zmmailbox s` hit count from its JSON.
fn mailbox_hits(m: &Measured, what: &str) -> anyhow::Result<usize> {
    let v = json(m, what)?;
    let arr = v
        .as_array()
        .or_else(|| v["hits"].as_array())
        .or_else(|| v["items"].as_array())
        .with_context(|| format!("{what}: no hits in {}", m.stdout))?;
    Ok(arr.len())
}

/// The measured steps of one way of working, summed: wall time, the largest
/// peak RSS, the bytes written.
#[derive(Debug, Clone, Default)]
struct Cost {
    secs: f64,
    rss: u64,
    written: u64,
}

impl Cost {
    fn of(steps: &[&Measured]) -> Cost {
        Cost {
            secs: steps.iter().map(|m| m.secs).sum(),
            rss: steps
                .iter()
                .filter_map(|m| m.peak_rss_bytes)
                .max()
                .unwrap_or(0),
            written: steps.iter().map(|m| m.write_bytes).sum(),
        }
    }

    fn measurement(&self, runs: Vec<f64>, detail: String) -> Measurement {
        let mut m = Measurement::from_runs(runs);
        m.detail = Some(format!(
            "{detail}; peak RSS {}, {} written",
            human_bytes(self.rss),
            human_bytes(self.written)
        ));
        m.resources = Some(ResourceSummary {
            peak_rss_bytes: Some(self.rss),
            write_bytes: Some(self.written),
            write_bytes_per_message: None,
            processes: 1,
        });
        m
    }
}

/// What the old way cost for each result.
struct OldWay {
    restore: Measured,
    searches: Vec<Measured>,
    export_needle: Measured,
    import_needle: Measured,
    export_folder: Measured,
    import_folder: Measured,
}

fn figure(
    name: String,
    new: Cost,
    runs: Vec<f64>,
    detail: String,
    old: Cost,
    old_detail: &str,
    goals: Vec<Goal>,
) -> Figure {
    let peer = old.measurement(vec![old.secs], old_detail.to_string());
    Figure {
        name,
        unit: "s".into(),
        subject: new.measurement(runs, detail),
        peers: vec![PeerFigure {
            peer: OLD_WAY.into(),
            result: PeerResult::Measured(peer),
        }],
        goals,
    }
}

impl Scenario for ItemsScenario {
    fn name(&self) -> &'static str {
        "items"
    }

    fn summary(&self) -> &'static str {
        "item-level recovery in one account of 100,000 messages: backup search, zmrestore --items/--folder, backup export, vs restoring the whole account and exporting"
    }

    fn run(&self, ctx: &RunContext) -> anyhow::Result<ScenarioReport> {
        let mut p = self
            .params
            .clone()
            .unwrap_or_else(|| ItemsParams::for_scale(ctx.scale));
        // A bigger /Projects at a small scale shows the per-message cost of
        // `--folder` (1 in N messages goes there).
        if let Ok(v) = std::env::var(FOLDER_EVERY_ENV) {
            p.folder_every = v
                .parse()
                .ok()
                .filter(|n: &usize| *n > 0)
                .with_context(|| format!("{FOLDER_EVERY_ENV}={v}: a positive number"))?;
        }
        let dir = tempfile::Builder::new()
            .prefix("items-")
            .tempdir_in(&ctx.bench_dir)?;
        let mv = Mailvault::new(ctx.mailvault.clone());
        let home = mv.provision(dir.path(), &[ACCOUNT.to_string()])?;
        let target = dir.path().join("target");
        let target_s = target.to_str().context("a UTF-8 path")?.to_string();
        let mut notes = Vec::new();

        // The history: 90% then a full, 5% then an incremental, 5% then another.
        let cuts = [p.messages * 9 / 10, p.messages * 19 / 20, p.messages];
        let mut from = 0;
        for (k, &to) in cuts.iter().enumerate() {
            ctx.progress(&format!("items: delivering messages {from}..{to}"));
            let t = Instant::now();
            load(&home, ctx.seed, &p, from..to)?;
            let loaded = t.elapsed().as_secs_f64();
            let kind = if k == 0 { "-f" } else { "-i" };
            if k == 0 {
                // A server's indexer keeps the index current; offline, the full
                // copies the index only if it is built first.
                let r = step(&mv, &home, &["prov", "rim", ACCOUNT, "start"], "zmprov rim")?;
                notes.push(format!(
                    "Setup: the search index built (`zmprov rim A start`) in {:.1} s.",
                    r.secs
                ));
            }
            let b = step(
                &mv,
                &home,
                &["backup", kind, "-a", "all", "-sync", "-t", &target_s],
                "zmbackup",
            )?;
            notes.push(format!(
                "Setup: {} messages delivered in {loaded:.1} s, then `zmbackup {kind}` in {:.1} s.",
                to - from,
                b.secs
            ));
            from = to;
        }
        let folder_n = p.folder_count();
        // The point the old way restores to: after the last backup, before the
        // loss (the account restored to the latest point would have lost them too).
        let before_loss = chrono::Utc::now();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let before_loss = before_loss.format("%Y/%m/%d %H:%M:%S%.3f").to_string();
        let lost = lose(&home, ctx.seed, &p)?;
        if lost != folder_n + 1 {
            bail!("deleted {lost} messages, expected {}", folder_n + 1);
        }

        // A date range of about a week in the middle of the year, and one sender.
        let week_from = chrono::DateTime::from_timestamp_millis(START_MS + SPAN_MS / 2)
            .expect("in range")
            .format("%m/%d/%Y")
            .to_string();
        let week_to =
            chrono::DateTime::from_timestamp_millis(START_MS + SPAN_MS / 2 + 7 * 86_400_000)
                .expect("in range")
                .format("%m/%d/%Y")
                .to_string();
        let range = format!("after:{week_from} before:{week_to}");
        let from_q = format!("from:{}", sender(7));
        let queries = [NEEDLE.to_string(), range.clone(), from_q.clone()];

        // ---- the old way -----------------------------------------------------
        ctx.progress("items: the old way: zmrestore -ca -pre restore_");
        let restore = step(
            &mv,
            &home,
            &[
                "restore",
                "-a",
                ACCOUNT,
                "-ca",
                "-pre",
                "restore_",
                "-restoreToTime",
                &before_loss,
                "-t",
                &target_s,
            ],
            "zmrestore -ca",
        )?;
        let mut searches = Vec::new();
        let mut expected_hits = Vec::new();
        for q in &queries {
            let m = step(
                &mv,
                &home,
                &[
                    "mailbox", "-z", "-m", RESTORED, "s", "-l", "1000000", "-v", q,
                ],
                "zmmailbox s",
            )?;
            expected_hits.push(mailbox_hits(&m, "zmmailbox s")?);
            searches.push(m);
        }
        if expected_hits[0] != 1 {
            bail!(
                "the restored account has {} messages with {NEEDLE}",
                expected_hits[0]
            );
        }
        let tgz_needle = dir.path().join("needle.tgz");
        let tgz_folder = dir.path().join("folder.tgz");
        let get = |q: &str, out: &Path, what: &str| -> anyhow::Result<Measured> {
            let url = format!("//?fmt=tgz&query={q}");
            step(
                &mv,
                &home,
                &[
                    "mailbox",
                    "-z",
                    "-m",
                    RESTORED,
                    "getRestURL",
                    "-o",
                    out.to_str().unwrap(),
                    &url,
                ],
                what,
            )
        };
        let put = |file: &Path, what: &str| -> anyhow::Result<Measured> {
            step(
                &mv,
                &home,
                &[
                    "mailbox",
                    "-z",
                    "-m",
                    ACCOUNT,
                    "postRestURL",
                    "//?fmt=tgz",
                    file.to_str().unwrap(),
                ],
                what,
            )
        };
        ctx.progress("items: the old way: getRestURL and postRestURL");
        let export_needle = get(NEEDLE, &tgz_needle, "getRestURL (one message)")?;
        let import_needle = put(&tgz_needle, "postRestURL (one message)")?;
        let export_folder = get(&format!("in:{FOLDER}"), &tgz_folder, "getRestURL (folder)")?;
        let import_folder = put(&tgz_folder, "postRestURL (folder)")?;
        let old = OldWay {
            restore,
            searches,
            export_needle,
            import_needle,
            export_folder,
            import_folder,
        };
        // The same loss again, for the item-level way.
        let lost = lose(&home, ctx.seed, &p)?;
        if lost != folder_n + 1 {
            bail!("the old way put back {} of {} messages", lost, folder_n + 1);
        }

        // ---- item-level ------------------------------------------------------
        let mut search_runs: Vec<(Vec<f64>, Measured, usize)> = Vec::new();
        for (q, want) in queries.iter().zip(&expected_hits) {
            ctx.progress(&format!("items: backup search {q}"));
            let mut runs = Vec::new();
            let mut last = None;
            for _ in 0..ctx.runs.max(1) {
                let m = step(
                    &mv,
                    &home,
                    &[
                        "backup", "search", "-a", ACCOUNT, "-t", &target_s, "--json", q,
                    ],
                    "backup search",
                )?;
                runs.push(m.secs);
                last = Some(m);
            }
            let m = last.expect("one run at least");
            let hits = search_hits(&m, "backup search")?;
            // A message is one hit however many sessions hold it; the backups
            // hold what the account had, which the restored copy shows.
            if hits != *want {
                bail!("backup search {q}: {hits} hits, the restored account has {want}");
            }
            search_runs.push((runs, m, hits));
        }
        // Time to the first result: the text form prints each hit as found.
        let mut first_runs = Vec::new();
        let mut first_totals = Vec::new();
        for _ in 0..ctx.runs.max(1) {
            let (first, total) = first_hit(
                &mv,
                &home,
                &["backup", "search", "-a", ACCOUNT, "-t", &target_s, NEEDLE],
            )?;
            first_runs.push(first);
            first_totals.push(total);
        }
        ctx.progress("items: zmrestore --items / --folder, backup export");
        let one = step(
            &mv,
            &home,
            &[
                "restore", "-a", ACCOUNT, "-t", &target_s, "--json", "--items", NEEDLE,
            ],
            "zmrestore --items",
        )?;
        let restored_one = json(&one, "zmrestore --items")?["restored"]
            .as_array()
            .map_or(0, |a| a.len());
        if restored_one != 1 {
            bail!("zmrestore --items {NEEDLE} restored {restored_one} messages");
        }
        let folder = step(
            &mv,
            &home,
            &[
                "restore", "-a", ACCOUNT, "-t", &target_s, "--json", "--folder", FOLDER,
            ],
            "zmrestore --folder",
        )?;
        let restored_folder = json(&folder, "zmrestore --folder")?["restored"]
            .as_array()
            .map_or(0, |a| a.len());
        if restored_folder != folder_n {
            bail!("zmrestore --folder {FOLDER} restored {restored_folder} of {folder_n} messages");
        }
        let out = dir.path().join("export.tgz");
        let export = step(
            &mv,
            &home,
            &[
                "backup",
                "export",
                "-a",
                ACCOUNT,
                "-t",
                &target_s,
                "--folder",
                FOLDER,
                "--json",
                "-o",
                out.to_str().unwrap(),
            ],
            "backup export",
        )?;
        let exported = json(&export, "backup export")?["messages"]
            .as_u64()
            .unwrap_or(0);
        if exported as usize != folder_n {
            bail!("backup export --folder {FOLDER} wrote {exported} of {folder_n} messages");
        }

        // ---- figures ---------------------------------------------------------
        let at_goal_size = p.messages >= GOAL_MESSAGES;
        let scaled = |g: Goal| -> Goal {
            if at_goal_size {
                g
            } else {
                Goal {
                    met: None,
                    why: Some(format!(
                        "set for {GOAL_MESSAGES} messages, ran {}",
                        p.messages
                    )),
                    ..g
                }
            }
        };
        let n = p.messages;
        let mut figures = Vec::new();
        let names = [
            format!("backup search, one word ({} hit)", search_runs[0].2),
            format!("backup search, a week ({range}, {} hits)", search_runs[1].2),
            format!("backup search, {from_q} ({} hits)", search_runs[2].2),
        ];
        let first_secs = median_of(&first_runs);
        figures.push(figure(
            format!("backup search, one word: time to the first result, {n} messages"),
            Cost::of(&[&search_runs[0].1]),
            first_runs,
            format!(
                "text output, the first hit line (the whole command: median {:.2} s)",
                median_of(&first_totals)
            ),
            Cost::of(&[&old.restore, &old.searches[0]]),
            "zmrestore -ca -pre restore_ + zmmailbox s",
            vec![scaled(Goal::evaluate(
                format!("≤ {GOAL_SEARCH_S} s"),
                Some(first_secs),
                |s| s <= GOAL_SEARCH_S,
                None,
            ))],
        ));
        for (k, ((runs, m, _), name)) in search_runs.into_iter().zip(names).enumerate() {
            let goals = vec![];
            figures.push(figure(
                format!("{name}, {n} messages"),
                Cost::of(&[&m]),
                runs,
                "every session of the target read".into(),
                Cost::of(&[&old.restore, &old.searches[k]]),
                "zmrestore -ca -pre restore_ + zmmailbox s",
                goals,
            ));
        }
        figures.push(figure(
            format!("zmrestore --items, 1 message of {n}"),
            Cost::of(&[&one]),
            vec![one.secs],
            "found and restored into the live account".into(),
            Cost::of(&[&old.restore, &old.export_needle, &old.import_needle]),
            "zmrestore -ca + getRestURL query + postRestURL",
            vec![scaled(Goal::evaluate(
                format!("≤ {GOAL_RESTORE_S} s"),
                Some(one.secs),
                |s| s <= GOAL_RESTORE_S,
                None,
            ))],
        ));
        figures.push(figure(
            format!("zmrestore --folder {FOLDER}, {folder_n} messages of {n}"),
            Cost::of(&[&folder]),
            vec![folder.secs],
            "restored into the live account".into(),
            Cost::of(&[&old.restore, &old.export_folder, &old.import_folder]),
            "zmrestore -ca + getRestURL in:/Projects + postRestURL",
            vec![],
        ));
        figures.push(figure(
            format!("backup export --folder {FOLDER} to tgz, {folder_n} messages"),
            Cost::of(&[&export]),
            vec![export.secs],
            "from the newest backup".into(),
            Cost::of(&[&old.restore, &old.export_folder]),
            "zmrestore -ca + getRestURL in:/Projects",
            vec![],
        ));
        notes.push(format!(
            "The old way's account restore alone (`zmrestore -a A -ca -pre restore_`): {:.2} s, \
             peak RSS {}, {} written.",
            old.restore.secs,
            human_bytes(old.restore.peak_rss_bytes.unwrap_or(0)),
            human_bytes(old.restore.write_bytes)
        ));
        notes.push(
            "Search times are until the command exits (its whole output, `--json`); the time \
             to the first result is to the first hit line of the text form, which prints \
             each hit as it is found (peak RSS and bytes written in that row: the `--json` \
             run's)."
                .into(),
        );
        if ctx.keep_work {
            let _ = dir.keep();
        }
        Ok(ScenarioReport {
            name: "items".into(),
            title: "Item-level recovery".into(),
            description: format!(
                "One account of {n} messages ({} KB each, dated over a year, from {SENDERS} \
                 senders, {folder_n} in `{FOLDER}`), backed up by a full after 90% of them \
                 and an incremental after each further 5%. Then the one message with the \
                 word \"{NEEDLE}\" is deleted and `{FOLDER}` is emptied. The old way, \
                 measured first: `zmrestore -a A -ca -pre restore_ -restoreToTime T` (the \
                 whole account as it was before the loss, into a new one), `zmmailbox -m restore_A s QUERY`, `getRestURL \
                 \"//?fmt=tgz&query=...\"` and `postRestURL` into the account. The same loss \
                 is made again, then item-level recovery: `mailvault backup search` (every \
                 session; {} runs, median), `zmrestore --items {NEEDLE}`, `zmrestore --folder \
                 {FOLDER}`, `mailvault backup export --folder {FOLDER}`. Each step is the \
                 `mailvault` binary, offline, timed with a syncfs of the home after it; peak \
                 RSS and bytes written from the kernel (`measure::run`). The peer column is \
                 the old way's steps giving the same result, summed (bytes summed, RSS the \
                 largest); each result is checked (hit counts equal to the restored \
                 account's, every lost message restored or exported).",
                p.message_size / 1024,
                ctx.runs.max(1)
            ),
            subject: "mailvault".into(),
            peers: vec![PeerInfo {
                name: OLD_WAY.into(),
                availability: crate::peers::Availability::Available {
                    version: "zmrestore -ca + zmmailbox getRestURL/postRestURL".into(),
                },
            }],
            figures,
            notes,
        })
    }
}

fn median_of(runs: &[f64]) -> f64 {
    crate::scenario::median(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_distinct_and_only_the_needle_has_the_word() {
        let p = ItemsParams::for_scale(Scale::Small);
        let a = message(1, 3, &p);
        let b = message(1, 4, &p);
        assert_ne!(a, b);
        let text = |m: &[u8]| String::from_utf8_lossy(m).to_lowercase();
        let with_word = (0..p.messages)
            .filter(|i| text(&message(1, *i, &p)).contains(NEEDLE))
            .count();
        assert_eq!(with_word, 1);
        assert!(text(&message(1, p.needle(), &p)).contains(NEEDLE));
        assert!(p.folder_count() >= 90, "{}", p.folder_count());
    }
}
