//! Loading the home the backup scenario measures: the corpus delivered over
//! LMTP, the mailbox changes IMAP clients make, the copies the replays start
//! from, and what every replay and restore must give back.

use super::{BackupParams, BackupScenario, DATA_DIRS, PASSWORD};
use crate::corpus::Corpus;
use crate::imap_client::ImapConnection;
use crate::lmtp_client::{self, Job};
use crate::measure::tree_bytes;
use crate::peers::mailvault::{
    MailboxStates, Mailvault, MessageDigests, mailbox_states, message_digests,
};
use crate::peers::{LmtpTarget, RunningServer};
use crate::scenario::RunContext;
use crate::sysinfo::human_bytes;
use anyhow::{Context, bail};
use mv_home::Home;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// What the run has to work with once the home is loaded.
pub(super) struct Setup {
    pub(super) mv: Mailvault,
    pub(super) work: PathBuf,
    pub(super) home: Home,
    /// A copy of the home before the load (accounts only): the replay base.
    pub(super) pre_load: PathBuf,
    /// The point in time the replays go to (local time = UTC for the child).
    pub(super) replay_to: String,
    /// What a replay to that point must hold.
    pub(super) replay_digests: MessageDigests,
    pub(super) replay_messages: usize,
    /// What the load delivered (what a replay of the delivery logs must hold).
    pub(super) delivered: MessageDigests,
    /// The redo logs of the deliveries.
    pub(super) delivery_logs: Vec<PathBuf>,
    /// A copy of the home after the deliveries: the base of the mailbox-change
    /// replay.
    pub(super) pre_changes: PathBuf,
    /// The redo logs of the mailbox changes.
    pub(super) change_logs: Vec<PathBuf>,
    /// Where every message is and how it is marked after the changes.
    pub(super) changed: MailboxStates,
    /// The home's messages at the end of the load (deliveries and changes).
    pub(super) digests: MessageDigests,
    pub(super) data_bytes: u64,
    pub(super) copies: usize,
    pub(super) messages: usize,
}

impl BackupScenario {
    pub(super) fn load(
        &self,
        ctx: &RunContext,
        p: &BackupParams,
        corpus: &Corpus,
    ) -> anyhow::Result<Setup> {
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

pub(super) fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
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
pub(super) fn copy_home(from: &Path, to: &Path) -> anyhow::Result<()> {
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

pub(super) fn remove(p: &Path) {
    let _ = std::fs::remove_dir_all(p);
}

/// Delivers messages `range` of `corpus` (to their envelope recipients) over
/// LMTP, in chunks so that memory stays small; returns account -> Message-IDs.
pub(super) fn deliver(
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

pub(super) fn first_diff(a: &MessageDigests, b: &MessageDigests) -> String {
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
