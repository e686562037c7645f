//! A real process delivering mail is killed with SIGKILL at random moments; after
//! reopening, every message it had acknowledged is present and byte-exact. A small
//! rollover size makes rollovers (and their checkpoints) happen during the run.

use mv_home::Home;
use mv_store::{DeliverOptions, Store, StoreOptions};
use mv_types::{ItemId, MailboxId};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "MV_STORE_CRASH_CHILD_HOME";

fn body(n: u64) -> Vec<u8> {
    let filler: String = (0..(200 + (n * 37) % 3000))
        .map(|i| (b'a' + ((i + n) % 26) as u8) as char)
        .collect();
    format!("Subject: crash {n}\r\nMessage-ID: <{n}@crash>\r\n\r\n{filler}\r\n").into_bytes()
}

/// Odd messages carry per-recipient header lines (trace headers) before the
/// shared body: those must survive a kill as well.
fn prefix(n: u64, m: u32) -> Vec<u8> {
    if n % 2 == 1 {
        format!("Delivered-To: u{m}@x\r\n").into_bytes()
    } else {
        Vec::new()
    }
}

fn open(home: &Home) -> Store {
    let mut opts = StoreOptions::for_home(home);
    opts.redo.rollover_size_bytes = 32 * 1024;
    Store::open(home, opts).unwrap().0
}

/// The child: delivers from 4 threads and prints "n item" per acknowledged message.
fn child(home: &Home) {
    let store = std::sync::Arc::new(open(home));
    for id in 1..=3u32 {
        if store.mailbox(MailboxId(id)).info().unwrap().is_none() {
            store
                .create_mailbox(MailboxId(id), &format!("a{id}"), &format!("u{id}@x"))
                .unwrap();
        }
    }
    let start = std::process::id() as u64 * 1_000_000;
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0.. {
                    let n = start + t * 100_000 + i;
                    let rcpts = [
                        MailboxId(1 + (n % 3) as u32),
                        MailboxId(1 + ((n + 1) % 3) as u32),
                    ];
                    let to: Vec<(MailboxId, Vec<u8>)> =
                        rcpts.iter().map(|m| (*m, prefix(n, m.0))).collect();
                    let ids = store
                        .deliver_with_prefixes(&body(n), &to, &DeliverOptions::default())
                        .unwrap();
                    let mut out = std::io::stdout().lock();
                    for (m, id) in rcpts.iter().zip(ids) {
                        writeln!(out, "{n} {} {}", m.0, id.0).unwrap();
                    }
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn sigkill_during_deliveries_loses_nothing_acknowledged() {
    if let Ok(home) = std::env::var(CHILD_ENV) {
        child(&Home::at(std::path::Path::new(&home)));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let exe = std::env::current_exe().unwrap();
    let mut acked: Vec<(u64, u32, u32)> = Vec::new();
    let started = Instant::now();
    let mut iterations = 0;
    let mut seed = 0x9e3779b97f4a7c15u64;
    while iterations < 30 && started.elapsed() < Duration::from_secs(90) {
        iterations += 1;
        let mut proc = Command::new(&exe)
            .args([
                "--exact",
                "sigkill_during_deliveries_loses_nothing_acknowledged",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = proc.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| {
                    let mut p = l.split(' ').map(|x| x.parse::<u64>());
                    match (p.next(), p.next(), p.next()) {
                        (Some(Ok(n)), Some(Ok(m)), Some(Ok(i))) => Some((n, m as u32, i as u32)),
                        _ => None,
                    }
                })
                .collect::<Vec<_>>()
        });
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(150 + seed % 400));
        proc.kill().unwrap();
        proc.wait().unwrap();
        acked.extend(reader.join().unwrap());
    }
    let store = open(&home);
    assert!(!acked.is_empty(), "the child acknowledged nothing");
    for (n, m, id) in &acked {
        let item = store
            .mailbox(MailboxId(*m))
            .item(ItemId(*id))
            .unwrap()
            .unwrap_or_else(|| {
                panic!("acknowledged message {n} (mailbox {m}, item {id}) is missing")
            });
        assert_eq!(
            store.read_blob(MailboxId(*m), &item).unwrap(),
            [prefix(*n, *m), body(*n)].concat(),
            "message {n} differs"
        );
    }
    let archived = mv_redo::list_archive(&home.redo_archive_dir())
        .unwrap()
        .len();
    assert!(
        archived > 0,
        "rollovers (with checkpoints) must have happened during the run"
    );
    eprintln!(
        "{iterations} kills, {} acknowledged deliveries verified, {archived} archived logs",
        acked.len()
    );
}
