//! Power cuts under load: the home (and its backup target) on LazyFS, a FUSE
//! filesystem that keeps every write in its own cache until an fsync and drops
//! what was not fsynced on command — what a power cut does to the page cache.
//! Each round starts the real server, checks every acknowledged delivery and
//! every IMAP change answered OK (byte for byte), drives LMTP deliveries, IMAP
//! flag/move/expunge traffic and sometimes a backup or a retention delete
//! (`-del`) on the target, kills the server with
//! SIGKILL at a random moment (sometimes while it closes after SIGTERM), then
//! cuts the power. Small redo rollovers put cuts inside rollovers and
//! checkpoints. After a cut that hit a backup or a `-del` the target verifies
//! clean or names the damage; at the end the redo logs dump clean, the next
//! backups succeed and the target verifies with every pack read.
//!
//! Needs root and /dev/fuse; LazyFS is built from `../shared/tools/lazyfs` into
//! the target directory (`scripts/install-test-deps` does it first) and the
//! tests skip, saying why, where neither is available. A watchdog ends any
//! step LazyFS stops answering in (it kills LazyFS and unmounts it, and the
//! test fails naming the step) rather than letting it hang.
//!
//! LazyFS's cache shows a file it takes in at the first access after a cut or
//! a start before it has filled in the file's size: a read racing that first
//! access comes back empty, and an fsync by name racing it truncates the file
//! on LazyFS's disk (`the_first_access_after_a_cut_races_nothing`). So every
//! cut and restart looks up every file, one at a time, before the server
//! starts ([`LazyFs::warm`]). A failed check must still survive a restart of
//! LazyFS before it fails the test; it lists the files whose size on LazyFS's
//! disk is 0 or differs from what LazyFS shows, and with
//! `MAILVAULT_POWERCUT_KEEP=<dir>` LazyFS's logs of that round and the one
//! before are kept there.
//!
//! 20 randomized rounds run in the suite (the whole file: 101 s on 2 cores
//! loaded by other builds, load average about 20). More with
//! `MAILVAULT_POWERCUT_ROUNDS=N` — a soak:
//! `MAILVAULT_POWERCUT_ROUNDS=200 cargo test -p mv-cli --test powercut -- --nocapture`;
//! a failure prints its `MAILVAULT_POWERCUT_SEED`, which repeats the run's
//! timings (kill moments, backups, closes; not the threads' interleaving).
//! When the server does not start, the checkpoint and state files printed are
//! those recovery started from (a failed start records none).

mod common;
mod lazyfs;
mod mailclients;

use common::{BIN, free_port};
use lazyfs::{LazyFs, lazyfs_binary};
use mailclients::{Ledger, check, deliver, fetch_all, imap_worker, lmtp_worker};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---- the server ----------------------------------------------------------------

struct Ports {
    lmtp: u16,
    imap: u16,
}

struct Server {
    child: Child,
    /// The server's "recovered from a crash: ..." line, if it printed one.
    recovered: Option<String>,
    /// What it printed on stderr (the start of it).
    stderr: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The number before `word` in the recovery line ("re-applied 12 operations").
fn recovered(server: &Server, word: &str) -> u64 {
    let Some(line) = &server.recovered else {
        return 0;
    };
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[1].starts_with(word))
        .and_then(|w| w[0].parse().ok())
        .unwrap_or(0)
}

fn mailvault(home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--home")
        .arg(home)
        .args(args)
        .env("TZ", "UTC")
        .output()
        .unwrap()
}

fn ok(home: &Path, args: &[&str]) -> String {
    let o = mailvault(home, args);
    assert!(
        o.status.success(),
        "mailvault {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn setup(home: &Path, rollover_kb: u32) -> Ports {
    let ports = Ports {
        lmtp: free_port(),
        imap: free_port(),
    };
    ok(home, &["init"]);
    ok(
        home,
        &[
            "localconfig",
            "-e",
            &format!("lmtp_bind_port={}", ports.lmtp),
            "-e",
            &format!("admin_bind_port={}", free_port()),
            "-e",
            &format!("imap_bind_port={}", ports.imap),
            "-e",
            &format!("imaps_bind_port={}", free_port()),
            "-e",
            "imap_cleartext_login_enabled=true",
        ],
    );
    ok(home, &["prov", "cd", "example.com"]);
    ok(home, &["prov", "ca", "alice@example.com", "secret"]);
    ok(
        home,
        &[
            "prov",
            "mcf",
            "zimbraRedoLogRolloverFileSizeKB",
            &rollover_kb.to_string(),
            "zimbraRedoLogRolloverMinFileAge",
            "0",
        ],
    );
    ok(
        home,
        &["mailbox", "-z", "-m", "alice@example.com", "cf", "/Archive"],
    );
    ports
}

/// Starts the server; it must come up (after any cut).
fn start(home: &Path) -> Server {
    let mut child = Command::new(BIN)
        .arg("--home")
        .arg(home)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let err = Arc::new(Mutex::new(String::new()));
    std::thread::spawn({
        let err = err.clone();
        move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                // (Poisoned by a failure that printed it: go on collecting.)
                let mut e = err.lock().unwrap_or_else(|p| p.into_inner());
                if e.len() < 20_000 {
                    e.push_str(&l);
                    e.push('\n');
                }
            }
        }
    });
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut recovered = None;
    loop {
        assert!(Instant::now() < deadline, "server did not start");
        match lines.next() {
            Some(Ok(l)) if l.starts_with("mailvault ready") => break,
            Some(Ok(l)) if l.starts_with("recovered from a crash") => recovered = Some(l),
            Some(Ok(_)) => continue,
            _ => {
                let _ = child.wait();
                let redolog = home.join("redolog");
                let mut logs: Vec<String> = std::fs::read_dir(redolog.join("archive"))
                    .map(|d| {
                        d.flatten()
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                logs.sort();
                panic!(
                    "the server did not start after a power cut:\n{}\ncheckpoint: {:?}\nstate: {:?}\narchive: {logs:?}",
                    err.lock().unwrap(),
                    std::fs::read_to_string(redolog.join("checkpoint")),
                    std::fs::read_to_string(redolog.join("state")),
                );
            }
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        recovered,
        stderr: err,
    }
}

/// A small deterministic generator (the seed is printed to replay a failure).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// `MAILVAULT_POWERCUT_ROUNDS`, 20 unset (0 skips the rounds).
fn rounds() -> usize {
    std::env::var("MAILVAULT_POWERCUT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

/// LazyFS hangs and crashes a run of `rounds` may recover from (one round in
/// 15 to 60 has one): past that, too little of the run tested the store.
fn max_failures(rounds: usize) -> usize {
    3 + rounds / 20
}

/// What a round may take before the watchdog ends it (a round takes 2 to 3 s;
/// a loaded CI machine may take many times that).
const ROUND_LIMIT: Duration = Duration::from_secs(180);

#[test]
fn power_cuts_under_load_lose_nothing_acknowledged() {
    let rounds = rounds();
    if rounds == 0 {
        eprintln!("SKIPPED: MAILVAULT_POWERCUT_ROUNDS=0");
        return;
    }
    let Some(bin) = lazyfs_binary() else {
        return;
    };
    let mut fs = LazyFs::mount(&bin);
    let home = fs.mnt.join("home");
    let ports = setup(&home, 16);
    let seed = std::env::var("MAILVAULT_POWERCUT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!(
        "power-cut rounds: {}, MAILVAULT_POWERCUT_SEED={seed}",
        rounds
    );
    let mut rng = Rng(seed);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let t0 = Instant::now();
    let (mut reapplied, mut repaired) = (0, 0);
    let mut failures = 0;
    // The last round's cut may have hit the target.
    let mut target_cut = false;
    for round in 0..rounds {
        fs.watch(&format!("round {round}"), ROUND_LIMIT);
        fs.rotate_log();
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let server = start(&home);
            reapplied += recovered(&server, "operations");
            repaired += recovered(&server, "blobs");
            let seen = fetch_all(ports.imap, &server.stderr);
            check(&ledger.lock().unwrap(), &seen, round);
            // What a cut inside a backup or a `-del` did to the target: it
            // verifies clean or names the damage, never a crash.
            if target_cut {
                let v = mailvault(&home, &["backup", "verify"]);
                let text = String::from_utf8_lossy(&v.stdout).into_owned()
                    + &String::from_utf8_lossy(&v.stderr);
                assert!(
                    v.status.code() == Some(0) || (v.status.code() == Some(1) && !text.is_empty()),
                    "round {round}: verify after a cut: {text}"
                );
                if v.status.code() == Some(1) {
                    eprintln!("round {round}: verify named damage: {text}");
                }
            }
            let stop = Arc::new(AtomicBool::new(false));
            let mut workers = Vec::new();
            for t in 0..2 {
                let (ledger, stop) = (ledger.clone(), stop.clone());
                let tag = format!("r{round}t{t}");
                workers.push(std::thread::spawn(move || {
                    lmtp_worker(ports.lmtp, tag, ledger, stop)
                }));
            }
            {
                let (ledger, stop) = (ledger.clone(), stop.clone());
                workers.push(std::thread::spawn(move || {
                    imap_worker(ports.imap, ledger, stop)
                }));
            }
            // A full or incremental backup, or retention (`-del 0d`: every session
            // but the latest full and what it needs, and the packs only they used).
            let backup: Option<&[&str]> = match rng.below(5) {
                0 => Some(&["backup", "-f", "-a", "all", "-sync"]),
                1 => Some(&["backup", "-i", "-sync"]),
                2 => Some(&["backup", "-del", "0d"]),
                _ => None,
            };
            target_cut = backup.is_some();
            // Killed with the server: `-del` runs in its own process, on the target.
            let mut backup = backup.map(|args| {
                Command::new(BIN)
                    .arg("--home")
                    .arg(&home)
                    .args(args)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            });
            std::thread::sleep(Duration::from_millis(200 + rng.below(1200)));
            let mut server = server;
            let closing = rng.below(4) == 0;
            if closing {
                eprintln!("round {round}: SIGTERM, then SIGKILL while it closes");
                // SAFETY: a child process of ours.
                unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
                std::thread::sleep(Duration::from_millis(rng.below(300)));
            }
            let _ = server.child.kill();
            if let Some(b) = backup.as_mut() {
                let _ = b.kill();
                let _ = b.wait();
            }
            let _ = server.child.wait();
            stop.store(true, Ordering::Relaxed);
            for w in workers {
                w.join().unwrap();
            }
            fs.cut();
            let l = ledger.lock().unwrap();
            eprintln!(
                "round {round}: {} acknowledged, {} IMAP changes, {:.1}s",
                l.acked.len(),
                l.done.values().filter(|d| d.0.is_some()).count(),
                t0.elapsed().as_secs_f64()
            );
        }));
        if let Err(panic) = ran {
            ledger.clear_poison();
            if failures >= max_failures(rounds) {
                std::panic::resume_unwind(panic);
            }
            failures += 1;
            // LazyFS hung and was killed, or crashed: its unsynced writes are
            // gone, as at a power cut, so the next round starts as after one.
            if let Some(what) = fs.recover_from_failure() {
                eprintln!("round {round}: taken as a power cut: {what}");
                continue;
            }
            // LazyFS runs. Its cache has served reads its disk does not hold (a
            // message read back empty that was whole after a restart of LazyFS),
            // so the failure must survive one: a restart of LazyFS (a cut: it
            // keeps only what was fsynced) and the same checks again. A loss
            // of the store's would still be there.
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            eprintln!("round {round}: checked again after a restart of LazyFS: {why}");
            for f in fs.suspect_files(&home.join("store")) {
                eprintln!("round {round}: suspect: {f}");
            }
            fs.keep_logs(&format!("round-{round}"));
            fs.remount();
            for f in fs.suspect_files(&home.join("store")) {
                eprintln!("round {round}: suspect after the restart: {f}");
            }
            let server = start(&home);
            let seen = fetch_all(ports.imap, &server.stderr);
            check(&ledger.lock().unwrap(), &seen, round);
            eprintln!("round {round}: gone after a restart of LazyFS: taken for LazyFS's");
        }
    }
    // After the last cut: up, everything there, then backups succeed and verify,
    // and every redo log reads clean.
    fs.watch("the checks after the last cut", ROUND_LIMIT);
    let server = start(&home);
    let l = ledger.lock().unwrap();
    check(&l, &fetch_all(ports.imap, &server.stderr), rounds);
    let archived = std::fs::read_dir(home.join("redolog/archive"))
        .unwrap()
        .count();
    eprintln!(
        "{} rounds: {} deliveries acknowledged, {} IMAP changes answered OK, all there; \
         recoveries re-applied {reapplied} operations and repaired {repaired} blobs; \
         {archived} redo logs archived; LazyFS failed {failures} times",
        rounds,
        l.acked.len(),
        l.done.values().filter(|d| d.0.is_some()).count(),
    );
    assert!(
        archived > 1,
        "the rollovers this test relies on did not happen"
    );
    assert!(
        l.acked.len() > rounds,
        "too little traffic to prove anything"
    );
    ok(&home, &["backup", "-f", "-a", "all", "-sync"]);
    ok(&home, &["backup", "-i", "-sync"]);
    ok(&home, &["backup", "verify", "--read-data"]);
    drop(server);
    let dumped = mailvault(&home, &["redodump", "-q"]);
    assert!(
        dumped.status.success(),
        "redo logs after the cuts: {}{}",
        String::from_utf8_lossy(&dumped.stdout),
        String::from_utf8_lossy(&dumped.stderr)
    );
    fs.check_watchdog();
}

/// A torn write (LazyFS persists part of one write, drops the rest and every
/// unsynced write, and stops) to `file` (relative to the home) while deliveries
/// go on — and, with `close`, while the server closes after them (SIGTERM: the
/// close copies each mailbox's log into its database): the server starts
/// again, every acknowledged delivery is there, byte for byte, a full backup
/// of it verifies (each mailbox database passes SQLite's integrity check) and
/// the redo logs read clean.
fn torn_write(bin: &Path, file: &dyn Fn(&Path) -> PathBuf, close: bool) -> (u64, u64, Server) {
    let mut fs = LazyFs::mount(bin);
    fs.watch("the torn-write test", ROUND_LIMIT);
    let home = fs.mnt.join("home");
    let ports = setup(&home, 1024);
    let ledger = Mutex::new(Ledger::default());
    let mut server = start(&home);
    deliver(ports.lmtp, "before", &ledger, &|i| i < 20);
    assert_eq!(ledger.lock().unwrap().acked.len(), 20);
    let torn = file(&home);
    let on_disk = fs.root.join(torn.strip_prefix(&fs.mnt).unwrap());
    let size = || std::fs::metadata(&on_disk).map_or(0, |m| m.len());
    fs.fault(&format!(
        "lazyfs::torn-op::file={}::parts=3::persist=1",
        on_disk.display()
    ));
    std::thread::sleep(Duration::from_millis(200));
    deliver(ports.lmtp, "during", &ledger, &|i| i < 200);
    if close {
        // SAFETY: a child process of ours.
        unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = server.child.kill();
    let _ = server.child.wait();
    assert!(
        fs.exit_status().is_some(),
        "LazyFS did not tear a write to {}",
        torn.display()
    );
    let torn_size = size();
    fs.remount();
    let server = start(&home);
    let l = ledger.lock().unwrap();
    check(&l, &fetch_all(ports.imap, &server.stderr), 0);
    drop(l);
    // Every database reads whole: a full backup snapshots each and its
    // verify runs SQLite's integrity check on the snapshots.
    ok(&home, &["backup", "-f", "-a", "all", "-sync"]);
    ok(&home, &["backup", "verify"]);
    let mut server = server;
    let _ = server.child.kill();
    let _ = server.child.wait();
    let dumped = mailvault(&home, &["redodump", "-q"]);
    assert!(
        dumped.status.success(),
        "redo logs after a torn write: {}{}",
        String::from_utf8_lossy(&dumped.stdout),
        String::from_utf8_lossy(&dumped.stderr)
    );
    (torn_size, size(), server)
}

#[test]
fn a_torn_redo_log_write_is_cut_off_and_nothing_acknowledged_is_lost() {
    let Some(bin) = lazyfs_binary() else {
        return;
    };
    let (torn, after, server) = torn_write(&bin, &|home| home.join("redolog/redo.log"), false);
    assert!(recovered(&server, "torn") > 0, "{:?}", server.recovered);
    // The torn record was there, and recovery cut it off.
    assert!(
        after < torn,
        "redo.log {torn} bytes after the tear, {after} after recovery"
    );
}

#[test]
fn a_torn_mailbox_database_write_is_repaired_from_the_redo_log() {
    let Some(bin) = lazyfs_binary() else {
        return;
    };
    let (_, _, server) = torn_write(&bin, &alices_wal, false);
    // The acknowledged deliveries' database commits were lost with the torn
    // write: they came back from the redo log.
    assert!(
        recovered(&server, "operations") > 0,
        "{:?}",
        server.recovered
    );
}

/// Alice's mailbox's write-ahead log: the one database log the deliveries
/// write to.
fn alices_wal(home: &Path) -> PathBuf {
    let dir = home.join("db/mbox");
    std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".sqlite-wal"))
        .max_by_key(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .expect("a mailbox write-ahead log")
}

/// A torn write to the mailbox database itself, not its log: the first write
/// into it copies log frames in (SQLite's own checkpoint, or the close's
/// copy). The frames stay in the log, durable before the copy began, so the
/// torn page is read from the log again and nothing acknowledged is lost.
#[test]
fn a_torn_write_into_a_mailbox_database_file_is_read_past_from_its_log() {
    let Some(bin) = lazyfs_binary() else {
        return;
    };
    let database = |home: &Path| {
        let wal = alices_wal(home);
        PathBuf::from(wal.to_string_lossy().trim_end_matches("-wal"))
    };
    let (_, _, server) = torn_write(&bin, &database, true);
    drop(server);
}

/// The watchdog: LazyFS stopped (it answers no request, as when it hung) does
/// not hang the test. Found by a child's thread waiting for it or by a lookup
/// unanswered, LazyFS is killed and mounted again (what the rounds take as a
/// power cut); a step past its limit is ended and named.
#[test]
fn a_hung_lazyfs_is_killed_and_named_not_waited_for() {
    let Some(bin) = lazyfs_binary() else {
        return;
    };
    let mut fs = LazyFs::mount(&bin);
    let stop = |fs: &LazyFs| {
        let pid = fs.child.id();
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
        // Each thread stops on its own time: one running may still answer.
        let stopped = || {
            std::fs::read_dir(format!("/proc/{pid}/task"))
                .unwrap()
                .flatten()
                .all(|t| {
                    let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
                    let state = stat.rsplit_once(')').map(|(_, r)| r.trim_start());
                    state.is_some_and(|r| r.starts_with('T'))
                })
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !stopped() {
            assert!(Instant::now() < deadline, "LazyFS did not stop");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let works = |fs: &LazyFs, name: &str| {
        std::fs::write(fs.mnt.join(name), name).unwrap();
        assert_eq!(std::fs::read(fs.mnt.join(name)).unwrap(), name.as_bytes());
    };
    works(&fs, "before");
    let t = Instant::now();

    // A child process waits for it (new names: the kernel must ask LazyFS).
    fs.set_probe(Duration::from_secs(2), false);
    stop(&fs);
    // (Each call below returns once LazyFS is killed: failed, or done in the
    // directory under the detached mount.)
    let _ = Command::new("touch")
        .arg(fs.mnt.join("by-a-child"))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let what = fs.recover_from_failure().expect("no hang found");
    assert!(what.contains("waited") && what.contains("touch"), "{what}");
    works(&fs, "after-a-child");

    // The test itself waits: the lookups find it.
    fs.set_probe(Duration::from_secs(2), true);
    stop(&fs);
    let _ = std::fs::write(fs.mnt.join("by-the-test"), b"never answered");
    let what = fs.recover_from_failure().expect("no hang found");
    assert!(what.contains("answered no request"), "{what}");
    works(&fs, "after-the-test");

    // A step past its limit: ended and named; not taken for a LazyFS hang.
    fs.watch("creating a file", Duration::from_secs(2));
    stop(&fs);
    let _ = std::fs::write(fs.mnt.join("during-a-step"), b"never answered");
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fs.check_watchdog()));
    let message = failed
        .expect_err("the watchdog did not report the hang")
        .downcast::<String>()
        .unwrap();
    assert!(
        message.contains("creating a file did not finish in time"),
        "{message}"
    );
    assert!(fs.recover_from_failure().is_none());
    // Three hangs of 2 s, each found within a second or two.
    assert!(t.elapsed() < Duration::from_secs(40), "{:?}", t.elapsed());
}

/// LazyFS's first access race, and what the rounds do about it: files made
/// durable, a cut, then each file read by two threads while a third fsyncs it
/// by name — what a server does when it reads old messages while a checkpoint
/// fsyncs the ones it linked. Without [`LazyFs::warm`] LazyFS shows a file's
/// cache entry before it has filled in its size: some reads come back empty
/// and some fsyncs truncate durable files to nothing on LazyFS's disk (here,
/// with [`LazyFs::cut_cold`] and 2,000 files: 31 of 4,000 reads short, 8 files
/// truncated). Every file looked up first, one at a time (each cut and restart
/// of the rounds does it), none is harmed.
#[test]
fn the_first_access_after_a_cut_races_nothing() {
    let Some(bin) = lazyfs_binary() else {
        return;
    };
    let mut fs = LazyFs::mount(&bin);
    fs.watch("the first-access test", ROUND_LIMIT);
    const FILES: usize = 1000;
    let body = vec![b'x'; 3000];
    let dir = fs.mnt.join("files");
    std::fs::create_dir(&dir).unwrap();
    for i in 0..FILES {
        let mut f = std::fs::File::create(dir.join(i.to_string())).unwrap();
        std::io::Write::write_all(&mut f, &body).unwrap();
        f.sync_all().unwrap();
    }
    fs.cut();
    let short = std::sync::atomic::AtomicUsize::new(0);
    for i in 0..FILES {
        let path = dir.join(i.to_string());
        std::thread::scope(|s| {
            for reader in [true, false, true] {
                let (path, short, len) = (&path, &short, body.len());
                s.spawn(move || {
                    if reader {
                        if std::fs::read(path).unwrap().len() != len {
                            short.fetch_add(1, Ordering::Relaxed);
                        }
                    } else {
                        std::fs::File::open(path).unwrap().sync_all().unwrap();
                    }
                });
            }
        });
    }
    let on_disk = fs.root.join("files");
    let harmed: Vec<usize> = (0..FILES)
        .filter(|i| {
            std::fs::metadata(on_disk.join(i.to_string()))
                .unwrap()
                .len()
                != 3000
        })
        .collect();
    let short = short.load(Ordering::Relaxed);
    assert!(
        short == 0 && harmed.is_empty(),
        "after a cut, {short} reads came back short and {} durable files were \
         truncated by an fsync: {harmed:?}",
        harmed.len()
    );
    fs.check_watchdog();
}
