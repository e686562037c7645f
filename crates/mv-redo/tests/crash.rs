//! Crash safety with a real process: a child appends from several threads and prints
//! each LSN only after `wait_durable` returned; the parent kills it with SIGKILL at a
//! random moment, reopens the log, and checks that every acknowledged record is there,
//! intact, and that files, sequences and LSNs still form one clean chain. The child is
//! this test binary itself, re-executed to run only `crash_child` (which does nothing
//! unless the environment variable names a directory).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mv_redo::ops::{CreateMessage, Envelope, PutBlob};
use mv_redo::{NewRecord, Op, RedoConfig, RedoLog, check_chain, list_archive, read_files};
use mv_types::{ChangeNumber, Digest, MailboxId, UtcMillis};
use rand::RngExt;

const CHILD_ENV: &str = "MV_REDO_CRASH_CHILD_DIR";
const ITERATIONS: usize = 60;

fn config(dir: &Path) -> RedoConfig {
    let mut c = RedoConfig::for_dir(dir);
    // Small, so that kills also land in the middle of rollovers.
    c.rollover_size_bytes = 24 * 1024;
    c
}

fn content(tag: &str, len: usize) -> Vec<u8> {
    tag.bytes().cycle().take(len).collect()
}

#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // not the child: nothing to do
    };
    let (log, _) = RedoLog::open(config(Path::new(&dir))).expect("child: open");
    let log = Arc::new(log);
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let pid = std::process::id();
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let (log, out) = (Arc::clone(&log), Arc::clone(&out));
            thread::spawn(move || {
                for i in 0u64.. {
                    let tag = format!("{pid}-{t}-{i}");
                    let data = content(&tag, (i as usize * 977 + t as usize * 131) % 5000);
                    let digest = Digest::of(&data).0;
                    let size = data.len() as u64;
                    let ts = UtcMillis::now();
                    let recs = vec![
                        NewRecord {
                            txn: log.next_txn_id(),
                            timestamp: ts,
                            mailbox: MailboxId(0),
                            change: ChangeNumber(0),
                            op: Op::PutBlob(PutBlob { digest, data }),
                        },
                        NewRecord {
                            txn: log.next_txn_id(),
                            timestamp: ts,
                            mailbox: MailboxId(t + 1),
                            change: ChangeNumber(i + 1),
                            op: Op::CreateMessage(CreateMessage {
                                id: 256 + i as u32,
                                folder_id: 2,
                                imap_uid: 1 + i as u32,
                                digest,
                                size,
                                received_ms: ts.0,
                                flags: 0,
                                tags: vec![],
                                envelope: Envelope {
                                    subject: tag.clone(),
                                    ..Default::default()
                                },
                                prefix: None,
                            }),
                        },
                    ];
                    let ticket = log.append(recs).expect("child: append");
                    log.wait_durable(&ticket).expect("child: durable");
                    let (a, b) = (ticket.lsns().start().0, ticket.lsns().end().0);
                    {
                        let mut o = out.lock().unwrap();
                        writeln!(o, "ACK {a} {b} {tag}").unwrap();
                        o.flush().unwrap();
                    }
                    drop(ticket); // applied
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// Everything on disk must be clean and contiguous; every acknowledged append present.
fn verify(dir: &Path, acked: &BTreeMap<u64, (u64, String)>) -> usize {
    let cfg = config(dir);
    let archives = list_archive(&cfg.archive_dir).expect("archive readable");
    let mut paths: Vec<PathBuf> = archives.iter().map(|a| a.path.clone()).collect();
    let mut seqs: Vec<u64> = archives.iter().map(|a| a.sequence).collect();
    paths.push(cfg.log_path.clone());
    seqs.push(
        mv_redo::RedoFileReader::open(&cfg.log_path)
            .unwrap()
            .header()
            .sequence,
    );
    check_chain(&seqs).expect("sequences contiguous");
    assert_eq!(seqs[0], 1);
    let mut by_lsn = BTreeMap::new();
    for (expect, item) in (1..).zip(read_files(&paths)) {
        let l = item.unwrap_or_else(|e| panic!("damaged after a crash: {e}"));
        assert_eq!(l.record.lsn.0, expect, "LSNs contiguous across files");
        by_lsn.insert(l.record.lsn.0, l.record.op);
    }
    for (first, (last, tag)) in acked {
        let (Some(Op::PutBlob(b)), Some(Op::CreateMessage(m))) =
            (by_lsn.get(first), by_lsn.get(last))
        else {
            panic!("acknowledged LSNs {first}..={last} ({tag}) missing or changed");
        };
        assert_eq!(Digest::of(&b.data).0, b.digest, "blob {tag} intact");
        assert_eq!(b.data, content(tag, b.data.len()));
        assert_eq!(m.envelope.subject, *tag);
        assert_eq!(m.digest, b.digest);
        assert_eq!(m.size, b.data.len() as u64);
    }
    by_lsn.len()
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_record() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::rng();
    let mut acked: BTreeMap<u64, (u64, String)> = BTreeMap::new();
    let mut truncations = 0;
    let start = Instant::now();
    for iteration in 0..ITERATIONS {
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<String>>()
        });
        thread::sleep(Duration::from_millis(rng.random_range(5..=100)));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "the child must have been killed, not exited"
        );
        let mut new = 0;
        for line in reader.join().unwrap() {
            // A line cut by the kill is not an acknowledgement: require all fields.
            let mut f = line.split(' ');
            if let (Some("ACK"), Some(a), Some(b), Some(tag), None) =
                (f.next(), f.next(), f.next(), f.next(), f.next())
                && let (Ok(a), Ok(b)) = (a.parse(), b.parse())
            {
                assert!(acked.insert(a, (b, tag.to_string())).is_none());
                new += 1;
            }
        }
        let (log, report) = RedoLog::open(config(dir.path()))
            .unwrap_or_else(|e| panic!("iteration {iteration}: recovery failed: {e}"));
        truncations += usize::from(report.truncated_at.is_some());
        drop(log);
        let total = verify(dir.path(), &acked);
        eprintln!(
            "iteration {iteration}: {new} acknowledged, {total} records on disk, truncated: {:?}",
            report.truncated_at
        );
    }
    let archives = list_archive(&config(dir.path()).archive_dir).unwrap().len();
    eprintln!(
        "{ITERATIONS} kills in {:?}: {} acknowledged appends, {archives} archived logs, {truncations} torn tails",
        start.elapsed(),
        acked.len()
    );
    assert!(
        acked.len() > ITERATIONS,
        "children barely ran: {}",
        acked.len()
    );
}
