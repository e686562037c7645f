//! Group-commit benchmark for the redo log.
//!
//! ```text
//! cargo run --release -p mv-redo --example redo_bench -- [--dir DIR] [--seconds S] [--reps N] [--json]
//! ```
//!
//! In a temporary directory under DIR (default: the current directory, so that the
//! numbers are for the disk the home would live on, not a tmpfs), it measures:
//! 1. the raw rate of `write 4 KB at the end of a file + fdatasync`, one thread;
//! 2. ops/s of 1, 8 and 64 writer threads, each op being `append` of a 4 KB message
//!    (a PutBlob with the content and the CreateMessage referring to it) +
//!    `wait_durable` + release.
//!
//! Each run lasts S seconds (default 3) and is repeated N times (default 3); the
//! medians are reported, with per-op latency percentiles of the median run. Goals:
//! 64 writers ≥ 10× the raw fsync rate (group commit works), 1 writer within 20% of
//! it (no added delay).

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use mv_redo::ops::{CreateMessage, Envelope, PutBlob};
use mv_redo::{NewRecord, Op, RedoConfig, RedoLog};
use mv_types::{ChangeNumber, Digest, MailboxId, UtcMillis};

struct Args {
    dir: PathBuf,
    seconds: f64,
    reps: usize,
    json: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        dir: PathBuf::from("."),
        seconds: 3.0,
        reps: 3,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--dir" => a.dir = PathBuf::from(value("--dir")),
            "--seconds" => {
                a.seconds = value("--seconds")
                    .parse()
                    .unwrap_or_else(|_| usage("--seconds takes a number"))
            }
            "--reps" => {
                a.reps = value("--reps")
                    .parse()
                    .unwrap_or_else(|_| usage("--reps takes a number"))
            }
            "--json" => a.json = true,
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    a
}

fn usage(msg: &str) -> ! {
    if !msg.is_empty() {
        eprintln!("redo_bench: {msg}");
    }
    eprintln!("usage: redo_bench [--dir DIR] [--seconds S] [--reps N] [--json]");
    std::process::exit(2)
}

/// One measured run.
#[derive(Clone, Copy)]
struct Run {
    ops_per_s: f64,
    p50_us: f64,
    p99_us: f64,
}

/// Raw: 4 KB pwrite at the end of a growing file, then fdatasync; one thread.
fn raw_fsync(dir: &Path, secs: f64) -> Run {
    let path = dir.join("raw.dat");
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let block = vec![0x5au8; 4096];
    let mut lat = Vec::new();
    let mut off = 0u64;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    while Instant::now() < deadline {
        let t = Instant::now();
        f.write_all_at(&block, off).unwrap();
        f.sync_data().unwrap();
        lat.push(t.elapsed().as_micros() as u32);
        off += 4096;
    }
    let el = start.elapsed().as_secs_f64();
    std::fs::remove_file(&path).unwrap();
    summarize(lat, el)
}

fn message_op(thread: usize, i: u64, content: &[u8]) -> Vec<NewRecord> {
    let digest = Digest::of(content).0;
    let ts = UtcMillis::now();
    vec![
        NewRecord {
            txn: mv_types::TxnId(i),
            timestamp: ts,
            mailbox: MailboxId(0),
            change: ChangeNumber(0),
            op: Op::PutBlob(PutBlob {
                digest,
                data: content.to_vec(),
            }),
        },
        NewRecord {
            txn: mv_types::TxnId(i),
            timestamp: ts,
            mailbox: MailboxId(thread as u32 + 1),
            change: ChangeNumber(i + 1),
            op: Op::CreateMessage(CreateMessage {
                id: 256 + i as u32,
                folder_id: 2,
                imap_uid: i as u32 + 1,
                digest,
                size: content.len() as u64,
                received_ms: ts.0,
                flags: 0,
                tags: vec![],
                envelope: Envelope {
                    subject: "benchmark message".into(),
                    from: "bench@example.com".into(),
                    ..Default::default()
                },
                prefix: None,
            }),
        },
    ]
}

fn redo_run(dir: &Path, writers: usize, secs: f64) -> Run {
    let redolog = dir.join(format!("redolog-{writers}"));
    let (log, _) = RedoLog::open(RedoConfig::for_dir(&redolog)).unwrap();
    let log = Arc::new(log);
    let barrier = Arc::new(Barrier::new(writers + 1));
    let handles: Vec<_> = (0..writers)
        .map(|t| {
            let (log, barrier) = (Arc::clone(&log), Arc::clone(&barrier));
            thread::spawn(move || {
                let content: Vec<u8> = (0..4096u32).map(|i| (i * 31 + t as u32) as u8).collect();
                let mut lat = Vec::new();
                barrier.wait();
                let deadline = Instant::now() + Duration::from_secs_f64(secs);
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let t0 = Instant::now();
                    let ticket = log.append(message_op(t, i, &content)).unwrap();
                    log.wait_durable(&ticket).unwrap();
                    drop(ticket);
                    lat.push(t0.elapsed().as_micros() as u32);
                    i += 1;
                }
                lat
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let lat: Vec<u32> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let el = start.elapsed().as_secs_f64();
    drop(log);
    std::fs::remove_dir_all(&redolog).unwrap();
    summarize(lat, el)
}

fn summarize(mut lat: Vec<u32>, secs: f64) -> Run {
    lat.sort_unstable();
    let pct = |p: f64| {
        if lat.is_empty() {
            0.0
        } else {
            lat[((lat.len() - 1) as f64 * p) as usize] as f64
        }
    };
    Run {
        ops_per_s: lat.len() as f64 / secs,
        p50_us: pct(0.5),
        p99_us: pct(0.99),
    }
}

/// The median run by ops/s.
fn median(mut runs: Vec<Run>) -> (Run, Vec<f64>) {
    runs.sort_by(|a, b| a.ops_per_s.total_cmp(&b.ops_per_s));
    let all = runs.iter().map(|r| r.ops_per_s).collect();
    (runs[runs.len() / 2], all)
}

fn fs_type(dir: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid NUL-terminated path and st a properly sized out-parameter.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return "unknown".into();
    }
    match st.f_type as i64 {
        0xEF53 => "ext4".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x0102_1994 => "tmpfs (fsync is free: numbers are meaningless)".into(),
        0x794C_7630 => "overlayfs".into(),
        0x2FC1_2FC1 => "zfs".into(),
        other => format!("{other:#x}"),
    }
}

fn main() {
    let args = parse_args();
    std::fs::create_dir_all(&args.dir).unwrap();
    let tmp = tempfile::Builder::new()
        .prefix(".redo_bench")
        .tempdir_in(&args.dir)
        .unwrap();
    let fs = fs_type(tmp.path());
    if !args.json {
        eprintln!(
            "redo_bench in {} ({fs}), {} s per run, {} runs each",
            tmp.path().display(),
            args.seconds,
            args.reps
        );
    }

    let (raw, raw_all) = median(
        (0..args.reps)
            .map(|_| raw_fsync(tmp.path(), args.seconds))
            .collect(),
    );
    let mut rows = vec![(
        "raw write 4 KB + fdatasync".to_string(),
        0usize,
        raw,
        raw_all,
    )];
    for writers in [1usize, 8, 64] {
        let (m, all) = median(
            (0..args.reps)
                .map(|_| redo_run(tmp.path(), writers, args.seconds))
                .collect(),
        );
        rows.push((format!("redo, {writers} writer(s)"), writers, m, all));
    }
    let ratio = |w: usize| {
        rows.iter()
            .find(|r| r.1 == w)
            .map_or(0.0, |r| r.2.ops_per_s / raw.ops_per_s)
    };
    let (r1, r64) = (ratio(1), ratio(64));

    if args.json {
        let items: Vec<String> = rows
            .iter()
            .map(|(name, w, m, all)| {
                format!(
                    "{{\"name\":\"{name}\",\"writers\":{w},\"median_ops_per_s\":{:.1},\"runs_ops_per_s\":[{}],\"p50_us\":{},\"p99_us\":{}}}",
                    m.ops_per_s,
                    all.iter().map(|x| format!("{x:.1}")).collect::<Vec<_>>().join(","),
                    m.p50_us,
                    m.p99_us
                )
            })
            .collect();
        println!(
            "{{\"filesystem\":\"{fs}\",\"seconds_per_run\":{},\"reps\":{},\"results\":[{}],\"ratio_1_writer_to_raw\":{r1:.3},\"ratio_64_writers_to_raw\":{r64:.2},\"goal_1_writer_within_20pct\":{},\"goal_64_writers_10x\":{}}}",
            args.seconds,
            args.reps,
            items.join(","),
            r1 >= 0.8,
            r64 >= 10.0
        );
        return;
    }
    println!("| run | median ops/s | runs (ops/s) | p50 latency | p99 latency | vs raw |");
    println!("|---|---:|---|---:|---:|---:|");
    for (name, _, m, all) in &rows {
        println!(
            "| {name} | {:.0} | {} | {:.2} ms | {:.2} ms | {:.2}× |",
            m.ops_per_s,
            all.iter()
                .map(|x| format!("{x:.0}"))
                .collect::<Vec<_>>()
                .join(" / "),
            m.p50_us / 1000.0,
            m.p99_us / 1000.0,
            m.ops_per_s / raw.ops_per_s
        );
    }
    println!();
    println!(
        "1 writer / raw = {r1:.2} (goal ≥ 0.80: {}); 64 writers / raw = {r64:.1}× (goal ≥ 10×: {})",
        if r1 >= 0.8 { "met" } else { "NOT met" },
        if r64 >= 10.0 { "met" } else { "NOT met" }
    );
}
