//! Scenario `imap`: IMAP read throughput, mailvault vs Dovecot imapd, without and
//! with full-text search (Debian's dovecot-fts-xapian).
//!
//! Every server starts fresh with one account; the same messages of the corpus
//! generator are appended into its INBOX (APPEND stores the bytes as given, so both
//! hold identical messages). Then, on one connection with the same client
//! ([`crate::imap_client`]), each run times `FETCH 1:* (BODY.PEEK[])`,
//! `FETCH 1:* (ENVELOPE)` and `SEARCH BODY <word>`, from sending the command to
//! its tagged OK. One untimed pass of each comes first (caches, search index).
//! Every answer is checked: as many FETCH responses as messages, the bodies'
//! bytes equal the appended bytes, and the servers find the same messages (a
//! different count from the full-text index is reported in a note).

use crate::corpus::{self, Corpus, Scale};
use crate::imap_client::{ImapConnection, Reply};
use crate::peers::dovecot::Dovecot;
use crate::peers::mailvault::Mailvault;
use crate::peers::{Availability, LmtpTarget};
use crate::scenario::{
    Figure, Goal, Measurement, PeerFigure, PeerInfo, PeerResult, RunContext, Scenario,
    ScenarioReport,
};
use anyhow::Context;
use std::net::SocketAddr;
use std::time::Instant;

/// The goal: mailvault answers at least as fast as Dovecot.
pub const GOAL_RATIO: f64 = 1.0;

/// The SEARCH BODY word: a first name, so it is in the signature of some messages
/// (and never in the generated attachments).
pub const SEARCH_WORD: &str = "quentin";

const PASSWORD: &str = "x";
/// The peers' names in the tables.
pub const PEER: &str = "Dovecot";
pub const PEER_FTS: &str = "Dovecot + fts-xapian";
/// Connections appending the messages (not timed).
const APPEND_CONNECTIONS: usize = 4;

/// The timed operations, in the order they run.
const OPS: [&str; 3] = [
    "FETCH 1:* (BODY.PEEK[])",
    "FETCH 1:* (ENVELOPE)",
    "SEARCH BODY",
];

#[derive(Debug, Clone)]
pub struct ImapParams {
    pub corpus_scale: Scale,
    pub messages: usize,
    pub runs: usize,
}

impl ImapParams {
    pub fn for_scale(scale: Scale, runs: usize) -> ImapParams {
        match scale {
            Scale::Small => ImapParams {
                corpus_scale: Scale::Small,
                messages: 500,
                runs,
            },
            Scale::Medium | Scale::Large => ImapParams {
                corpus_scale: Scale::Medium,
                messages: 10_000,
                runs,
            },
        }
    }
}

#[derive(Default)]
pub struct ImapScenario {
    pub params: Option<ImapParams>,
}

/// One system's timings: per op, seconds per run; and the answers (checked equal).
struct Timings {
    secs: [Vec<f64>; 3],
    answers: [Reply; 3],
}

fn command_of(op: usize) -> String {
    match op {
        2 => format!("SEARCH BODY {SEARCH_WORD}"),
        _ => OPS[op].to_string(),
    }
}

/// Appends messages `0..n` of the corpus over a few connections; returns their bytes.
fn fill(addr: SocketAddr, user: &str, corpus: &Corpus, n: usize) -> anyhow::Result<u64> {
    let chunks: Vec<Vec<usize>> = (0..APPEND_CONNECTIONS)
        .map(|c| (c..n).step_by(APPEND_CONNECTIONS).collect())
        .collect();
    let results: Vec<anyhow::Result<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|idx| {
                s.spawn(move || -> anyhow::Result<u64> {
                    let mut c = ImapConnection::login(addr, user, PASSWORD)?;
                    let mut bytes = 0;
                    for &i in idx {
                        let m = corpus.message(i);
                        bytes += m.len() as u64;
                        c.append("INBOX", &m)
                            .with_context(|| format!("appending message {i}"))?;
                    }
                    c.logout();
                    Ok(bytes)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("append thread"))
            .collect()
    });
    results.into_iter().sum()
}

/// One untimed pass of every operation, then `runs` timed ones.
fn measure(
    ctx: &RunContext,
    who: &str,
    addr: SocketAddr,
    user: &str,
    runs: usize,
) -> anyhow::Result<Timings> {
    let mut c = ImapConnection::login(addr, user, PASSWORD)?;
    c.command("SELECT INBOX")?;
    let mut t = Timings {
        secs: Default::default(),
        answers: Default::default(),
    };
    for op in 0..OPS.len() {
        t.answers[op] = c
            .command(&command_of(op))
            .with_context(|| format!("{who}: {}", command_of(op)))?;
    }
    for run in 0..runs {
        for op in 0..OPS.len() {
            let cmd = command_of(op);
            let start = Instant::now();
            let r = c.command(&cmd).with_context(|| format!("{who}: {cmd}"))?;
            let secs = start.elapsed().as_secs_f64();
            anyhow::ensure!(
                r.fetches == t.answers[op].fetches
                    && r.search_hits == t.answers[op].search_hits
                    && r.literal_bytes == t.answers[op].literal_bytes,
                "{who}: {cmd} answered differently in run {}: {r:?} vs {:?}",
                run + 1,
                t.answers[op]
            );
            ctx.progress(&format!(
                "imap: run {}/{runs} {who} {cmd}: {secs:.3} s",
                run + 1
            ));
            t.secs[op].push(secs);
        }
    }
    c.logout();
    Ok(t)
}

/// The answers a server must give for `messages` appended messages of `bytes`.
fn check(who: &str, t: &Timings, messages: usize, bytes: u64) -> anyhow::Result<()> {
    let [body, envelope, _] = &t.answers;
    anyhow::ensure!(
        body.fetches == messages && envelope.fetches == messages,
        "{who}: FETCH 1:* gave {} bodies and {} envelopes for {messages} messages",
        body.fetches,
        envelope.fetches
    );
    anyhow::ensure!(
        body.literal_bytes == bytes,
        "{who}: FETCH 1:* (BODY.PEEK[]) returned {} bytes of messages, {bytes} were appended",
        body.literal_bytes
    );
    Ok(())
}

fn rate(messages: usize, secs: &[f64]) -> Measurement {
    Measurement::from_runs(secs.iter().map(|s| messages as f64 / s).collect())
}

impl Scenario for ImapScenario {
    fn name(&self) -> &'static str {
        "imap"
    }

    fn summary(&self) -> &'static str {
        "IMAP FETCH bodies/envelopes and SEARCH BODY over 10,000 messages, mailvault vs Dovecot imapd without and with fts-xapian"
    }

    fn run(&self, ctx: &RunContext) -> anyhow::Result<ScenarioReport> {
        let p = self
            .params
            .clone()
            .unwrap_or_else(|| ImapParams::for_scale(ctx.scale, ctx.runs));
        let corpus = Corpus::generate(p.corpus_scale, ctx.seed);
        let n = p.messages.min(corpus.messages.len());
        let user = corpus::account_email(0);
        let accounts = vec![user.clone()];
        let mailvault = Mailvault::new(ctx.mailvault.clone());
        if let Some(why) = mailvault.availability().reason() {
            anyhow::bail!("mailvault: {why}");
        }
        let dovecot = Dovecot::detect();
        let dovecot_avail = dovecot.imap_availability();

        // mailvault.
        let mv_dir = tempfile::Builder::new()
            .prefix("imap-mailvault-")
            .tempdir_in(&ctx.bench_dir)?;
        let home = mailvault.provision_with_password(mv_dir.path(), &accounts, Some(PASSWORD))?;
        let server = mailvault.serve(&home, mv_dir.path())?;
        ctx.progress(&format!("imap: appending {n} messages to mailvault"));
        let bytes = fill(server.imap_addr(), &user, &corpus, n).context("mailvault: APPEND")?;
        let mv = measure(ctx, "mailvault", server.imap_addr(), &user, p.runs)?;
        server.stop()?;
        check("mailvault", &mv, n, bytes)?;

        // Dovecot, then Dovecot with full-text search (fts-xapian).
        let variants = [
            (PEER, dovecot_avail.clone(), false),
            (PEER_FTS, dovecot.imap_fts_availability(), true),
        ];
        let mut peers: Vec<(&str, Result<Timings, String>)> = Vec::new();
        let mut notes = Vec::new();
        for (name, avail, fts) in &variants {
            let result = match avail.reason() {
                Some(why) => Err(why),
                None => {
                    let run = || -> anyhow::Result<Timings> {
                        let dir = tempfile::Builder::new()
                            .prefix("imap-dovecot-")
                            .tempdir_in(&ctx.bench_dir)?;
                        let mut server = if *fts {
                            dovecot.start_imap_fts(dir.path(), &accounts)?
                        } else {
                            dovecot.start_imap(dir.path(), &accounts)?
                        };
                        ctx.progress(&format!("imap: appending {n} messages to {name}"));
                        let b = fill(server.addr(), &user, &corpus, n)
                            .with_context(|| format!("{name}: APPEND"))?;
                        anyhow::ensure!(b == bytes, "the corpus rendered differently");
                        let t = measure(ctx, name, server.addr(), &user, p.runs)?;
                        server.stop()?;
                        check(name, &t, n, bytes)?;
                        Ok(t)
                    };
                    run().map_err(|e| format!("failed: {e:#}"))
                }
            };
            if let Ok(d) = &result {
                let (theirs, ours) = (d.answers[2].search_hits, mv.answers[2].search_hits);
                if *fts && theirs != ours {
                    // A full-text index may match words where SEARCH asks for
                    // substrings: say so rather than compare different answers.
                    notes.push(format!(
                        "SEARCH BODY {SEARCH_WORD}: {name} found {theirs} messages, mailvault {ours}"
                    ));
                } else {
                    anyhow::ensure!(
                        theirs == ours,
                        "SEARCH BODY {SEARCH_WORD}: mailvault found {ours} messages, {name} {theirs}"
                    );
                }
            }
            peers.push((*name, result));
        }

        let mut figures = Vec::new();
        for (op, name) in OPS.iter().enumerate() {
            let name = if op == 2 {
                format!(
                    "SEARCH BODY {SEARCH_WORD} ({} of {n} messages match)",
                    mv.answers[2].search_hits
                )
            } else {
                name.to_string()
            };
            let mut fig = Figure {
                name,
                unit: "messages/s".into(),
                subject: rate(n, &mv.secs[op]),
                peers: peers
                    .iter()
                    .map(|(peer, r)| PeerFigure {
                        peer: peer.to_string(),
                        result: match r {
                            Ok(d) => PeerResult::Measured(rate(n, &d.secs[op])),
                            Err(reason) => PeerResult::Skipped {
                                reason: reason.clone(),
                            },
                        },
                    })
                    .collect(),
                goals: vec![],
            };
            for (peer, r) in &peers {
                let ratio = fig.ratio_to(peer);
                fig.goals.push(Goal::evaluate(
                    format!("≥ {GOAL_RATIO}× {peer}"),
                    ratio,
                    |r| r >= GOAL_RATIO,
                    r.as_ref().err().map(|e| format!("{peer} {e}")),
                ));
            }
            figures.push(fig);
        }
        let version = match &dovecot_avail {
            Availability::Available { version } => format!(" ({version})"),
            _ => String::new(),
        };
        let fts_avail = variants[1].1.clone();
        Ok(ScenarioReport {
            name: "imap".into(),
            title: "IMAP FETCH and SEARCH".into(),
            description: format!(
                "Messages per second read over IMAP from one mailbox of {n} messages ({:.0} MB; \
                 the first {n} of the {} corpus, seed {}, appended with APPEND so both servers \
                 hold the same bytes). On one connection, with the same Rust client for both \
                 servers, each run times `FETCH 1:* (BODY.PEEK[])`, `FETCH 1:* (ENVELOPE)` and \
                 `SEARCH BODY {SEARCH_WORD}` from the command to its tagged OK, after one \
                 untimed pass of each (warm caches: the page cache, Dovecot's index cache and \
                 mailvault's parsed-message cache hold the envelopes; mailvault's search index \
                 is brought up to date). Checked: every message is returned, the bodies add up to the appended \
                 bytes, and both servers find the same messages. Dovecot{version} runs \
                 `peers/dovecot-imap.conf.in` (Maildir, no full-text-search plugin: SEARCH BODY \
                 reads the messages); \"{PEER_FTS}\" is the same with Debian's \
                 dovecot-fts-xapian added (`peers/dovecot-fts-xapian.conf.in`: messages \
                 indexed as they are appended, SEARCH BODY answered from the index, substrings \
                 of 3 letters and more). Figures are the median of {} runs; the machine is \
                 shared with other builds and tests (see the load average).",
                bytes as f64 / 1e6,
                p.corpus_scale.name(),
                ctx.seed,
                p.runs
            ),
            subject: "mailvault".into(),
            peers: vec![
                PeerInfo {
                    name: PEER.into(),
                    availability: dovecot_avail,
                },
                PeerInfo {
                    name: PEER_FTS.into(),
                    availability: fts_avail,
                },
            ],
            figures,
            notes: {
                if p.runs < 3 {
                    notes.push(format!(
                        "only {} run(s) per figure: not a benchmark result",
                        p.runs
                    ));
                }
                notes
            },
        })
    }
}
