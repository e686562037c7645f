//! CI smoke test of the benchmark harness: the small corpus is deterministic and
//! realistic, the LMTP scenario runs end to end against mailvault (the real
//! binary) in a tiny configuration, with the Dovecot peer explicitly reported as
//! "peer not installed" (CI may lack it; this test never depends on it), and the
//! backup scenario runs every step once on the small corpus, checking that what
//! mailvault restores and replays equals the original byte for byte (tar, restic
//! and borg run too when installed; a missing one is printed as skipped); the redo
//! scenario runs the `redo_bench` example; the IMAP scenario appends a few hundred
//! messages and checks every FETCH and SEARCH answer (against Dovecot too when it
//! is installed); the live scenario kills a shipping primary once and finds
//! nothing acknowledged before its RPO goal missing. No timing assertions.

use mail_parser::{MessageParser, MimeHeaders};
use mv_bench::corpus::{self, AttachmentData, Corpus, Kind, Scale};
use mv_bench::peers::archivers::{self, Archiver};
use mv_bench::peers::dovecot::Dovecot;
use mv_bench::peers::{Availability, LmtpTarget};
use mv_bench::scenario::{PeerResult, RunContext, Scenario};
use mv_bench::scenarios::backup::{BackupParams, BackupScenario};
use mv_bench::scenarios::imap::{ImapParams, ImapScenario};
use mv_bench::scenarios::imap_stress::{ImapStressScenario, StressParams};
use mv_bench::scenarios::lmtp::{LmtpParams, LmtpScenario};
use mv_bench::scenarios::redo::RedoScenario;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn digests(c: &Corpus) -> Vec<[u8; 32]> {
    (0..c.messages.len())
        .map(|i| *blake3::hash(&c.message(i)).as_bytes())
        .collect()
}

/// One digest over every message, contact and appointment of a corpus.
fn corpus_digest(c: &Corpus, messages: &[[u8; 32]]) -> String {
    let mut h = blake3::Hasher::new();
    for d in messages {
        h.update(d);
    }
    for a in 0..c.accounts.len() {
        h.update(c.contacts_vcf(a).as_bytes());
        h.update(c.calendar_ics(a).as_bytes());
    }
    h.finalize().to_hex().to_string()
}

#[test]
fn small_corpus_is_deterministic() {
    let a = Corpus::generate(Scale::Small, 42);
    let b = Corpus::generate(Scale::Small, 42);
    let c = Corpus::generate(Scale::Small, 43);
    let (da, db, dc) = (digests(&a), digests(&b), digests(&c));
    assert_eq!(da, db, "same seed must give the same bytes");
    assert_eq!(corpus_digest(&a, &da), corpus_digest(&b, &db));
    let same = da.iter().zip(&dc).filter(|(x, y)| x == y).count();
    assert_eq!(same, 0, "a different seed must give different messages");
    assert_ne!(corpus_digest(&a, &da), corpus_digest(&c, &dc));
    // Pinned: the generator's output is part of the benchmark's definition (peers
    // and later runs must see the same bytes). If this changes on purpose, bump
    // corpus::FORMAT and update the value.
    assert_eq!(
        corpus_digest(&a, &da),
        "beb02f646d05abe98999133375c86625ce503d8cf8e6102e20340c20e916cc46",
        "the small corpus for seed 42 changed"
    );
    // Written to disk: the same bytes, and a manifest that names them.
    let dir = tempfile::tempdir().unwrap();
    let m = corpus::write_corpus(&a, dir.path()).unwrap();
    assert_eq!(m.totals.messages, a.messages.len());
    for (i, w) in m.messages.iter().enumerate().step_by(37) {
        let bytes = std::fs::read(dir.path().join(&w.file)).unwrap();
        assert_eq!(blake3::hash(&bytes).as_bytes(), &da[i]);
        assert_eq!(w.blake3, blake3::hash(&bytes).to_hex().to_string());
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["messages"].as_array().unwrap().len(), 500);
    assert!(dir.path().join(&m.accounts[0].contacts_file).is_file());
}

#[test]
fn small_corpus_has_a_realistic_mix() {
    let c = Corpus::generate(Scale::Small, 7);
    let n = c.messages.len();
    assert_eq!(c.accounts.len(), 20);
    let sizes: Vec<usize> = (0..n).map(|i| c.message(i).len()).collect();
    let total: usize = sizes.iter().sum();
    assert!(
        total < 50 << 20,
        "small corpus is {total} bytes, must stay under 50 MB"
    );
    let text = sizes
        .iter()
        .filter(|s| (2 << 10..=21 << 10).contains(*s))
        .count();
    let big = sizes
        .iter()
        .filter(|s| (95 << 10..=5 << 20).contains(*s))
        .count();
    assert!(text * 100 >= n * 80, "2-20 KB messages: {text} of {n}");
    assert!(big * 100 >= n * 4, "100 KB-5 MB messages: {big} of {n}");
    assert_eq!(
        text + big,
        n,
        "every message is in one of the two size classes"
    );
    assert!(
        sizes.iter().any(|s| *s > 1 << 20),
        "some messages over 1 MB"
    );

    let multi = c.messages.iter().filter(|m| m.rcpts.len() > 1).count();
    assert!(
        (n * 14..=n * 26).contains(&(multi * 100)),
        "multi-recipient share {multi}/{n}, expected ~20%"
    );
    assert!(c.messages.iter().all(|m| m.rcpts.len() <= 50));
    assert!(c.messages.iter().any(|m| m.rcpts.len() >= 10));
    let replies = c
        .messages
        .iter()
        .filter(|m| m.in_reply_to.is_some())
        .count();
    assert!(replies * 100 >= n * 20, "replies: {replies}/{n}");
    let datas: Vec<AttachmentData> = c
        .messages
        .iter()
        .flat_map(|m| m.attachments.iter().map(|a| a.data))
        .collect();
    assert!(datas.contains(&AttachmentData::Binary) && datas.contains(&AttachmentData::Text));
    assert!(c.messages.iter().any(|m| m.kind == Kind::Alternative));
    assert!(
        c.messages
            .iter()
            .flat_map(|m| &m.placements)
            .any(|p| p.folder != "Inbox" && !p.sent_copy)
    );
    assert!(
        c.messages
            .iter()
            .flat_map(|m| &m.placements)
            .any(|p| p.flags.contains('u'))
    );
    assert!(
        c.messages
            .iter()
            .flat_map(|m| &m.placements)
            .any(|p| !p.tags.is_empty())
    );
    assert!(
        c.accounts
            .iter()
            .all(|a| a.contacts > 0 && a.appointments > 0)
    );
    assert!(c.contacts_vcf(0).starts_with("BEGIN:VCARD\r\n"));
    assert!(c.calendar_ics(0).contains("BEGIN:VEVENT\r\n"));

    // Every message parses as MIME and says what the plan says.
    let parser = MessageParser::default();
    for (i, plan) in c.messages.iter().enumerate() {
        let raw = c.message(i);
        assert!(
            !raw.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'),
            "bare LF in {i}"
        );
        let msg = parser
            .parse(&raw[..])
            .unwrap_or_else(|| panic!("message {i} does not parse"));
        assert_eq!(
            msg.message_id(),
            Some(plan.message_id.as_str()),
            "message {i}"
        );
        assert!(
            msg.subject().is_some_and(|s| !s.is_empty()),
            "message {i}: subject"
        );
        assert!(msg.date().is_some(), "message {i}: date");
        let from = msg.from().and_then(|f| f.first()).and_then(|a| a.address());
        assert_eq!(from, Some(plan.from.as_str()), "message {i}: from");
        let shown =
            msg.to().map_or(0, |a| a.iter().count()) + msg.cc().map_or(0, |a| a.iter().count());
        assert_eq!(
            shown,
            plan.rcpts.len() + usize::from(plan.external_cc.is_some()),
            "message {i}: To + Cc"
        );
        if let Some(r) = &plan.in_reply_to {
            assert_eq!(
                msg.in_reply_to().as_text(),
                Some(r.as_str()),
                "message {i}: In-Reply-To"
            );
        }
        match plan.kind {
            Kind::Text => assert_eq!(msg.parts.len(), 1, "message {i}: one part"),
            Kind::Alternative => {
                assert!(
                    msg.html_body_count() > 0 && msg.text_body_count() > 0,
                    "message {i}"
                )
            }
            Kind::Attachments => {
                let atts: Vec<_> = msg.attachments().collect();
                assert_eq!(
                    atts.len(),
                    plan.attachments.len(),
                    "message {i}: attachments"
                );
                for (a, p) in atts.iter().zip(&plan.attachments) {
                    assert_eq!(a.attachment_name(), Some(p.filename.as_str()));
                    assert_eq!(
                        a.contents().len() as u64,
                        p.size,
                        "message {i}: decoded size"
                    );
                }
            }
        }
    }
}

/// The debug (or release) `mailvault` binary of this workspace, built if needed.
fn mailvault_binary() -> PathBuf {
    // target/<profile>/deps/smoke-HASH -> target/<profile>
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let mut args = vec!["-p", "mv-cli", "--bin", "mailvault"];
    if release {
        args.push("--release");
    }
    cargo_build(&args);
    let bin = profile_dir.join("mailvault");
    assert!(bin.is_file(), "{} missing after the build", bin.display());
    bin
}

/// `cargo build -q ARGS` in the workspace (the binaries the scenarios run).
fn cargo_build(args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = std::process::Command::new(cargo)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .args(["build", "-q"])
        .args(args)
        .status()
        .expect("running cargo build");
    assert!(st.success(), "cargo build {args:?} failed");
}

/// A small run context in a fresh bench directory.
fn small_context(bench: &Path, seed: u64) -> RunContext {
    RunContext {
        scale: Scale::Small,
        seed,
        runs: 1,
        bench_dir: bench.to_path_buf(),
        workspace: None,
        mailvault: mailvault_binary(),
        verbose: false,
        keep_work: false,
    }
}

#[test]
fn redo_scenario_measures_every_writer_count_against_raw_fdatasync() {
    cargo_build(&["-p", "mv-redo", "--example", "redo_bench"]);
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/redo_bench");
    assert!(example.is_file(), "{} missing", example.display());

    let bench = tempfile::tempdir().unwrap();
    let ctx = small_context(bench.path(), 1);
    let scenario = RedoScenario {
        redo_bench: Some(example),
    };
    let report = scenario.run(&ctx).expect("redo scenario");
    let writers: Vec<&str> = report.figures.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(writers.len(), 3, "{writers:?}");
    assert!(writers[0].ends_with(", 1 writer") && writers[2].ends_with(", 64 writers"));
    for f in &report.figures {
        assert!(f.subject.median > 0.0, "{}: no ops", f.name);
        assert!(
            f.ratio_to("raw write 4 KB + fdatasync").is_some(),
            "{}",
            f.name
        );
    }
    // The two goals are judged (met or not), never left open.
    let judged: Vec<_> = report.figures.iter().flat_map(|f| &f.goals).collect();
    assert_eq!(judged.len(), 2);
    assert!(judged.iter().all(|g| g.met.is_some()), "{judged:?}");
}

#[test]
fn imap_scenario_answers_every_fetch_and_search() {
    let bench = tempfile::tempdir().unwrap();
    let ctx = small_context(bench.path(), 1);
    let scenario = ImapScenario {
        params: Some(ImapParams {
            corpus_scale: Scale::Small,
            messages: 150,
            runs: 1,
        }),
    };
    // The scenario fails unless every message comes back, the bodies add up to
    // the appended bytes and both servers (when Dovecot runs) find the same.
    let report = scenario.run(&ctx).expect("imap scenario");
    assert_eq!(report.figures.len(), 3);
    assert!(report.figures[0].name.contains("BODY.PEEK[]"));
    assert!(report.figures[1].name.contains("ENVELOPE"));
    assert!(report.figures[2].name.starts_with("SEARCH BODY"));
    for f in &report.figures {
        assert!(f.subject.median > 0.0, "{}: nothing answered", f.name);
        match &f.peers[0].result {
            PeerResult::Measured(m) => assert!(m.median > 0.0),
            PeerResult::Skipped { reason } => assert!(!reason.is_empty()),
        }
        // One goal per peer: Dovecot, and Dovecot with fts-xapian.
        assert_eq!(f.peers.len(), 2, "{}", f.name);
        assert_eq!(f.goals.len(), 2, "{}", f.name);
    }
}

#[test]
fn imap_stress_scenario_counts_operations_and_errors() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if let Err(why) = mv_bench::peers::imaptest::find(Some(&workspace)) {
        eprintln!("SKIPPED imap-stress smoke: {why}");
        return;
    }
    let bench = tempfile::tempdir().unwrap();
    let mut ctx = small_context(bench.path(), 1);
    ctx.workspace = Some(workspace);
    let scenario = ImapStressScenario {
        params: Some(StressParams {
            clients: 3,
            accounts: 2,
            secs: 3,
            runs: 1,
        }),
    };
    let report = scenario.run(&ctx).expect("imap-stress scenario");
    let names: Vec<&str> = report.figures.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    // imaptest's clients did work, the probe logged in, and the goals on
    // mailvault alone (no protocol errors, bounded memory) are judged.
    assert!(report.figures[0].subject.median > 0.0, "no operations");
    assert!(report.figures[1].subject.median > 0.0, "no probe login");
    for f in &report.figures[2..] {
        assert_eq!(f.goals.len(), 1, "{}", f.name);
        assert!(f.goals[0].met.is_some(), "{}: {:?}", f.name, f.goals[0]);
    }
    assert_eq!(
        report.figures[2].goals[0].met,
        Some(true),
        "imaptest found protocol errors: {:?}",
        report.notes
    );
}

#[test]
fn lmtp_scenario_against_mailvault_only() {
    let bench = tempfile::tempdir().unwrap();
    let ctx = RunContext {
        scale: Scale::Small,
        seed: 5,
        runs: 1,
        bench_dir: bench.path().to_path_buf(),
        workspace: None,
        mailvault: mailvault_binary(),
        verbose: false,
        keep_work: false,
    };
    // Dovecot where it is certainly not installed: the explicit skip path.
    let absent = Dovecot::at(
        Path::new("/nonexistent/dovecot"),
        Path::new("/nonexistent/doveadm"),
    );
    assert!(matches!(
        absent.availability(),
        Availability::NotInstalled { .. }
    ));
    let scenario = LmtpScenario {
        params: Some(LmtpParams {
            accounts: 3,
            message_size: 10 * 1024,
            loads: vec![(1, 12), (16, 48)],
            runs: 1,
        }),
        peers: Some(vec![Box::new(absent)]),
    };
    // The scenario stops the server after each run and fails unless every
    // acknowledged message is stored exactly once in the right mailbox.
    let report = scenario.run(&ctx).expect("lmtp scenario against mailvault");
    assert_eq!(report.figures.len(), 2);
    for f in &report.figures {
        assert_eq!(f.subject.runs.len(), 1);
        assert!(f.subject.median > 0.0, "{}: no messages delivered", f.name);
        match &f.peers[0].result {
            PeerResult::Skipped { reason } => {
                assert!(reason.starts_with("peer not installed"), "{reason}")
            }
            PeerResult::Measured(_) => panic!("Dovecot cannot have been measured"),
        }
        assert_eq!(f.ratio_to("Dovecot"), None);
    }
    let goal = &report.figures[1].goals[0];
    assert_eq!(
        goal.met, None,
        "a goal against a missing peer is not evaluated, not met"
    );
    assert!(
        goal.verdict().contains("peer not installed"),
        "{}",
        goal.verdict()
    );

    let md = mv_bench::report::scenario_markdown(
        &mv_bench::report::Report {
            machine: mv_bench::sysinfo::Machine::describe(bench.path()),
            command: "smoke".into(),
            revision: "test".into(),
            started_utc: String::new(),
            finished_utc: String::new(),
            load_before: String::new(),
            load_after: String::new(),
            scale: "small".into(),
            seed: 5,
            runs: 1,
            scenarios: vec![],
        },
        &report,
    );
    assert!(md.contains("peer not installed"), "{md}");
    assert!(md.contains("| figure | mailvault | Dovecot |"), "{md}");
}

#[test]
fn backup_scenario_runs_every_step_and_restores_the_original() {
    let bench = tempfile::tempdir().unwrap();
    let ctx = RunContext {
        scale: Scale::Small,
        seed: 3,
        runs: 1,
        bench_dir: bench.path().to_path_buf(),
        workspace: None,
        mailvault: mailvault_binary(),
        verbose: true,
        keep_work: false,
    };
    // A peer that is not there is reported as such, never silently dropped.
    let absent = Archiver::at(archivers::Kind::Restic, Path::new("/nonexistent/restic"));
    assert!(
        absent
            .availability()
            .reason()
            .is_some_and(|r| r.starts_with("peer not installed") && r.contains("restic"))
    );
    let peers = Archiver::all();
    let installed: Vec<&str> = peers
        .iter()
        .filter(|a| a.availability().reason().is_none())
        .map(|a| a.name())
        .collect();
    for a in &peers {
        if let Some(why) = a.availability().reason() {
            eprintln!(
                "backup smoke: peer {} SKIPPED ({why}); mailvault's side is still checked",
                a.name()
            );
        }
    }
    let scenario = BackupScenario {
        params: Some(BackupParams {
            runs: 1,
            connections: 8,
            replay_threads: vec![1, 4],
            change_percents: vec![1, 10],
            replay_percent: 50,
        }),
        peers: None,
    };
    // The scenario fails unless the loaded corpus is stored exactly once per
    // recipient, every replayed home and every restored account holds the
    // original messages byte for byte (the mailbox-change replay: every message in
    // its folder with its UID, flags and tags), and every peer's restore equals
    // the source.
    let report = scenario.run(&ctx).expect("backup scenario");
    let names: Vec<&str> = report.figures.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "first full backup",
            "second full, unchanged data",
            "incremental after 1% change (5 new messages)",
            "incremental after 10% change (50 new messages)",
            "restore every account from the first full",
            "replay of the whole load (`playredo`), 1 thread",
            "replay of the whole load (`playredo`), 4 threads",
            "point-in-time replay (`playredo --toTime`, first 50% of the load), 1 thread",
            "point-in-time replay (`playredo --toTime`, first 50% of the load), 4 threads",
            "replay of mailbox changes from IMAP (flags, moves, deletes), 1 thread",
            "replay of mailbox changes from IMAP (flags, moves, deletes), 4 threads",
            "verify every byte of the backup (`backup verify --read-data`)",
        ]
    );
    for f in &report.figures {
        assert_eq!(f.subject.runs.len(), 1, "{}", f.name);
        assert!(f.subject.median > 0.0, "{}: nothing measured", f.name);
        let res = f.subject.resources.as_ref().unwrap();
        assert!(res.peak_rss_bytes.is_some_and(|r| r > 0), "{}", f.name);
        for pf in &f.peers {
            let installed = installed.contains(&pf.peer.as_str());
            match &pf.result {
                PeerResult::Measured(m) => {
                    assert!(installed && m.median > 0.0, "{}: {}", f.name, pf.peer)
                }
                PeerResult::Skipped { reason }
                    if pf.peer == "tar" && f.name.starts_with("verify") =>
                {
                    assert!(reason.contains("no checksums"), "{reason}")
                }
                PeerResult::Skipped { reason } => {
                    assert!(
                        !installed && reason.starts_with("peer not installed"),
                        "{}: {} skipped: {reason}",
                        f.name,
                        pf.peer
                    );
                    eprintln!("backup smoke: {}: {} skipped: {reason}", f.name, pf.peer);
                }
            }
        }
    }
    // The goals are evaluated (met or not: no timing assertions here).
    let full = &report.figures[0];
    assert!(full.goals.iter().any(|g| g.text.contains("tar")));
    let second = &report.figures[1];
    assert_eq!(second.goals.len(), 2);
    assert!(second.goals.iter().all(|g| g.met.is_some()));
    // Each incremental is judged on time and bytes against the size of its change.
    for incr in report
        .figures
        .iter()
        .filter(|f| f.name.starts_with("incremental"))
    {
        assert_eq!(incr.goals.len(), 2, "{}", incr.name);
        assert!(incr.goals.iter().all(|g| g.met.is_some()), "{}", incr.name);
        assert!(
            incr.goals[1].text.contains("new messages"),
            "{:?}",
            incr.goals
        );
    }
    // Every copy of every message came back, but those the IMAP changes deleted
    // (in each Inbox, the messages at sequence numbers 15, 35, 55...).
    let corpus = Corpus::generate(Scale::Small, 3);
    let mut per_account: BTreeMap<usize, usize> = BTreeMap::new();
    for r in corpus.messages.iter().flat_map(|m| &m.rcpts) {
        *per_account.entry(*r).or_default() += 1;
    }
    let kept: usize = per_account.values().map(|n| n - (n + 5) / 20).sum();
    assert!(
        report.notes[0].contains(&format!("restores {kept} messages in 20 accounts")),
        "{}",
        report.notes[0]
    );
    let md = mv_bench::report::markdown(&mv_bench::report::Report {
        machine: mv_bench::sysinfo::Machine::describe(bench.path()),
        command: "smoke".into(),
        revision: "test".into(),
        started_utc: String::new(),
        finished_utc: String::new(),
        load_before: String::new(),
        load_after: String::new(),
        scale: "small".into(),
        seed: 3,
        runs: 1,
        scenarios: vec![report],
    });
    assert!(
        md.contains("| figure | mailvault | tar | restic | borg |"),
        "{md}"
    );
    // Nothing is left behind in the bench directory.
    assert_eq!(std::fs::read_dir(bench.path()).unwrap().count(), 0);
}

#[test]
fn scale_scenario_keeps_open_files_bounded_and_zmprov_memory_flat() {
    use mv_bench::scenarios::scale::{self, ScaleParams, ScaleScenario};
    let bench = tempfile::tempdir().unwrap();
    let ctx = small_context(bench.path(), 9);

    // Flat memory, measured on the child's peak RSS (`wait4`'s `ru_maxrss`).
    // A loaded machine changes how the hashing threads overlap (each Argon2
    // hash holds a 19 MiB block while it runs), not what a batch keeps: so the
    // growth per account is measured with one password in both batches (one
    // block, never two at once), as the smaller peak of two runs, and the
    // password blocks separately, against what the hashing threads can hold
    // at once.
    let mut run = 0;
    let mut peak = |n: usize, passwords: usize| {
        run += 1;
        let home = bench.path().join(format!("flat-{run}"));
        let init = std::process::Command::new(&ctx.mailvault)
            .arg("--home")
            .arg(&home)
            .arg("init")
            .output()
            .unwrap();
        assert!(init.status.success());
        let accounts: Vec<String> = (0..n).map(scale::account).collect();
        let p = scale::batch_zmprov(
            &ctx.mailvault,
            &home,
            &scale::ca_lines(&accounts, passwords),
        )
        .unwrap()
        .peak_rss_bytes;
        std::fs::remove_dir_all(&home).unwrap();
        p
    };
    const MIB: u64 = 1024 * 1024;
    let (few, many) = (30, 600);
    let small = peak(few, 1).min(peak(few, 1));
    let large = peak(many, 1).min(peak(many, 1));
    // An account created keeps nothing: 16 KiB per line is what a directory
    // database that grows (its page cache) may take; one mailbox or one hash
    // block kept per account was 19 MiB.
    let per_line = large.saturating_sub(small) / (many - few) as u64;
    assert!(
        per_line <= 16 * 1024,
        "zmprov peak RSS grew with the batch: {small} B for {few} lines, {large} B for {many} \
         ({per_line} B per line)"
    );
    // Each password's block is given back: 12 hashes peak no higher than one
    // plus the blocks the hashing threads (at most 4) hold at once, where
    // blocks kept would add 11 of them.
    let hashed = peak(many, 12);
    eprintln!(
        "zmprov peak RSS: {small} B for {few} lines, {large} B for {many}, {hashed} B for {many} \
         with 12 passwords"
    );
    assert!(
        hashed <= large + 3 * 19 * MIB + 8 * MIB,
        "zmprov kept password hash blocks: {large} B with 1 password, {hashed} B with 12"
    );

    // Open files bounded by the handle cache, not by the number of accounts:
    // 300 accounts, each with mail, at most 32 mailbox databases open.
    let handles = 32;
    let scenario = ScaleScenario {
        params: Some(ScaleParams {
            accounts: 300,
            passwords: 10,
            messages: 300,
            connections: 8,
            message_size: 2 * 1024,
            idle: std::time::Duration::from_secs(2),
            open_handles: Some(handles),
        }),
        peers: Some(vec![Box::new(Dovecot::at(
            Path::new("/nonexistent/dovecot"),
            Path::new("/nonexistent/doveadm"),
        ))]),
        archivers: Some(vec![Archiver::at(
            archivers::Kind::Restic,
            Path::new("/nonexistent/restic"),
        )]),
    };
    let report = scenario
        .run(&ctx)
        .expect("scale scenario against mailvault");
    assert_eq!(report.figures.len(), 9);
    // The same batch without passwords is timed beside it, and the first
    // figure says what share of its time the hashing took.
    assert!(report.figures[1].name.contains("without a password"));
    assert!(report.figures[1].subject.median > 0.0);
    assert!(
        report.figures[0]
            .subject
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("hashing passwords")),
        "{:?}",
        report.figures[0].subject.detail
    );
    let files = report.figures[3].subject.median;
    assert!(
        files > 0.0 && files <= (handles * 3 + 80) as f64,
        "{files} files open, idle, with 300 accounts and {handles} handles"
    );
    assert!(
        report.figures[4].subject.median > 0.0,
        "no message delivered"
    );
    assert!(matches!(
        report.figures[2].peers[0].result,
        PeerResult::Skipped { .. }
    ));
    // The backups: an unchanged account costs a full under 2 KB and no file
    // of its own; an incremental after 1% changed writes less than the full;
    // one account restores.
    let [full, unchanged, incremental, restore] = [5, 6, 7, 8].map(|i| &report.figures[i]);
    assert!(full.subject.median > 0.0, "{:?}", full.subject);
    assert!(matches!(full.peers[0].result, PeerResult::Skipped { .. }));
    for g in &unchanged.goals[..2] {
        assert_eq!(g.met, Some(true), "{}: {:?}", g.text, unchanged.subject);
    }
    assert!(incremental.subject.median > 0.0);
    assert_eq!(incremental.goals[0].met, None, "set for 10,000 accounts");
    assert!(restore.subject.median > 0.0);
}

#[test]
fn live_scenario_loses_nothing_older_than_the_goal_over_a_kill() {
    use mv_bench::scenarios::live::{LiveParams, LiveScenario};
    use std::time::Duration;
    let bench = tempfile::tempdir().unwrap();
    let ctx = small_context(bench.path(), 26);
    let scenario = LiveScenario {
        params: Some(LiveParams {
            accounts: 5,
            message_size: 4 * 1024,
            connections: 4,
            messages: 100,
            runs: 1,
            kills: 1,
            kill_after: (Duration::from_secs(7), Duration::from_secs(8)),
        }),
    };
    // The scenario itself fails when the restarted primary lacks an
    // acknowledged message, or a run loses one.
    let report = scenario.run(&ctx).expect("live scenario");
    let figure = |prefix: &str| {
        report
            .figures
            .iter()
            .find(|f| f.name.starts_with(prefix))
            .unwrap_or_else(|| panic!("no figure {prefix}"))
    };
    for name in ["RPO, disaster restore", "RPO, promoted standby"] {
        let f = figure(name);
        // 0 acknowledged messages older than the goal lost (the second goal).
        assert_eq!(f.goals[1].met, Some(true), "{name}: {:?}", f.subject.detail);
    }
    let promote = figure("`mailvault promote`");
    assert!(promote.subject.median > 0.0);
    let tp = figure("4 KB messages");
    assert!(matches!(
        tp.peers[0].result,
        PeerResult::Measured(ref m) if m.median > 0.0
    ));
}
