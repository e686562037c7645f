//! SIGKILL at random moments of backups: earlier sessions stay intact and
//! verifiable, nothing half-written appears under a final name, and the next
//! backup cleans up and succeeds.
//!
//! The child is this test binary re-executed with `MV_BACKUP_CRASH_CHILD` set: it
//! delivers mail and takes full and incremental backups in a loop until killed.

mod common;

use common::{Fx, message};
use mv_backup::{Catalog, ReadData, SessionKind, VerifyOptions};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD: &str = "MV_BACKUP_CRASH_CHILD";

fn emails() -> Vec<String> {
    (0..3).map(|i| format!("u{i}@d.test")).collect()
}

/// The child's loop (does nothing unless re-executed by the parent).
#[test]
fn crash_child() {
    let Ok(root) = std::env::var(CHILD) else {
        return;
    };
    let fx = Fx::open(Path::new(&root));
    let accounts: Vec<_> = emails().iter().map(|e| fx.find_account(e)).collect();
    for n in 0.. {
        let tag = format!("child-{}-{n}", std::process::id());
        fx.deliver(&message(&tag, 20_000), &[&accounts[n % 3]]);
        fx.deliver(
            &message(&format!("{tag}-all"), 15_000),
            &accounts.iter().collect::<Vec<_>>(),
        );
        let kind = if n % 2 == 0 {
            SessionKind::Full
        } else {
            SessionKind::Incremental
        };
        let mut opts = fx.opts(kind);
        opts.pack_size = 48 << 10; // many packs: more moments to die in
        let r = fx.backup_with(opts);
        assert!(r.ok(), "{:?}", r.sessions);
        println!("backup {:?}", r.labels());
    }
}

/// Files under a name that is not final (temp files of atomic writes).
fn temp_files(dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            temp_files(&p, out);
        } else if e.file_name().to_string_lossy().contains(".tmp-") {
            out.push(p.display().to_string());
        }
    }
}

#[test]
fn sigkill_during_backups_leaves_earlier_sessions_intact() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sys");
    {
        let fx = Fx::open(&root);
        fx.directory
            .lock()
            .unwrap()
            .create_domain("d.test", &[])
            .unwrap();
        let accounts: Vec<_> = emails().iter().map(|e| fx.account(e)).collect();
        for (i, a) in accounts.iter().enumerate() {
            for j in 0..20 {
                fx.deliver(&message(&format!("seed-{i}-{j}"), 10_000), &[a]);
            }
        }
        assert!(fx.backup(SessionKind::Full).ok());
    }
    let exe = std::env::current_exe().unwrap();
    let mut rand = common::kill_timer(0x9E37_79B9_7F4A_7C15);
    let mut interrupted = 0;
    let started = Instant::now();
    for round in 0..20 {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD, &root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100 + rand(700)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let fx = Fx::open(&root);
        let target = fx.target();
        if !target.pending_sessions().unwrap().is_empty() {
            interrupted += 1;
        }
        // Every committed session is intact and verifiable.
        let catalog = Catalog::load(target.as_ref()).unwrap();
        for e in &catalog.entries {
            assert!(
                !matches!(e.state, mv_backup::catalog::EntryState::Invalid(_)),
                "round {round}: session {} is invalid: {:?}",
                e.name,
                e.state
            );
        }
        // (A gap cannot come from a crash either: archived logs are removed only
        // after the session holding them commits.)
        let v = mv_backup::verify(
            target.as_ref(),
            &VerifyOptions {
                label: None,
                read_data: ReadData::All,
            },
        )
        .unwrap();
        assert!(v.ok(), "round {round}: {:?}", v.problems);
        assert!(v.sessions_checked as usize >= catalog.sessions().count());
        // Nothing half-written under a final name: every .idx and XML loads, and
        // only temp names can hold partial data.
        let pool = mv_backup::Pool::load(target.as_ref()).unwrap();
        assert!(
            pool.problems.is_empty(),
            "round {round}: {:?}",
            pool.problems
        );
        if fx.target_dir.join("accounts.xml").exists() {
            mv_backup::accounts_xml::parse("accounts.xml", &target.get("accounts.xml").unwrap())
                .unwrap();
        }
        // The next backup cleans up and succeeds.
        let accounts: Vec<_> = emails().iter().map(|e| fx.find_account(e)).collect();
        fx.deliver(
            &message(&format!("parent-{round}"), 12_000),
            &[&accounts[0]],
        );
        let kind = if round % 2 == 0 {
            SessionKind::Incremental
        } else {
            SessionKind::Full
        };
        let r = fx.backup(kind);
        assert!(r.ok(), "round {round}: {:?}", r.sessions);
        assert!(target.pending_sessions().unwrap().is_empty());
        let mut temps = Vec::new();
        temp_files(&fx.target_dir, &mut temps);
        assert!(temps.is_empty(), "round {round}: {temps:?}");
        assert!(
            std::fs::read_dir(fx.target_dir.join("tmp"))
                .unwrap()
                .all(|e| { e.unwrap().file_name() == ".scratch" }),
            "tmp/ is clean"
        );
    }
    eprintln!(
        "20 kills, {interrupted} in the middle of a backup, {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        interrupted >= 3,
        "only {interrupted} kills landed inside a backup"
    );
}
