//! SIGKILL at random moments of `zmplayredo`: whatever the killed runs left
//! committed, running the same replay again to its end gives exactly the live
//! store (every mailbox's folders, items, flags and tombstones, every message's
//! bytes checked against its digest), and nothing is applied twice.
//!
//! The replay batches write each mailbox's log without syncs and make the whole
//! replay durable once at its end; a killed process still hands its writes to the
//! kernel, so what this proves is the re-run: every batch is whole or absent, and
//! the next run goes on from each mailbox's applied change.
//!
//! The child is this test binary re-executed with `MV_PLAYREDO_CRASH_CHILD` set to
//! the replay home and the source's two redo directories, one per line.

mod common;

use common::{Fx, message};
use mv_backup::{PlayRedoOptions, playredo};
use mv_home::Home;
use mv_redo::ops::{flags, folders};
use mv_store::{DeliverOptions, FlagChange, Store, StoreOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const CHILD: &str = "MV_PLAYREDO_CRASH_CHILD";
const KILLS: usize = 10;

fn replay(home: &Path, logfiles: Vec<PathBuf>) -> mv_backup::PlayRedoReport {
    let home = Home::at(home);
    // As `zmplayredo` opens it: each database held by its one connection.
    let opts = StoreOptions {
        exclusive_databases: true,
        ..StoreOptions::for_home(&home)
    };
    let (store, _) = Store::open(&home, opts).unwrap();
    let r = playredo(
        &store,
        &PlayRedoOptions {
            logfiles,
            threads: 2,
            queue_capacity: 1,
            // Many commits per mailbox (each followed by a synced checkpoint),
            // so that kills leave replays half done.
            commit_every: 7,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    r
}

/// The child: one whole replay (does nothing unless re-executed by the parent).
#[test]
fn playredo_crash_child() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let mut lines = spec.lines();
    let home = PathBuf::from(lines.next().unwrap());
    replay(&home, lines.map(PathBuf::from).collect());
}

#[test]
fn sigkill_during_playredo_then_a_rerun_gives_the_live_state() {
    let fx = Fx::new();
    let accounts: Vec<_> = (0..4)
        .map(|i| fx.account(&format!("u{i}@d.test")))
        .collect();
    for round in 0..40 {
        let mut ids = Vec::new();
        for (i, a) in accounts.iter().enumerate() {
            let raw = message(&format!("r{round}-{i}"), 700 + i * 37);
            ids.push(
                fx.store
                    .deliver(&raw, &[a.mailbox_id], &DeliverOptions::default())
                    .unwrap()[0],
            );
        }
        fx.deliver(
            &message(&format!("shared-{round}"), 1100),
            &accounts.iter().collect::<Vec<_>>(),
        );
        // Changes of the kind IMAP clients make: flags, a move, a delete.
        for (a, id) in accounts.iter().zip(&ids) {
            let m = a.mailbox_id;
            match round % 4 {
                0 => fx.store.set_flags(m, &[*id], FlagChange::Add(flags::SEEN)),
                1 => fx.store.move_items(m, &[*id], folders::TRASH).map(drop),
                2 => fx.store.delete_items(m, &[*id]),
                _ => fx
                    .store
                    .set_flags(m, &[*id], FlagChange::Add(flags::SEEN | flags::FLAGGED)),
            }
            .unwrap();
        }
        if round % 10 == 9 {
            fx.store.redo().rollover().unwrap();
        }
    }
    let logs = vec![fx.home.redo_archive_dir(), fx.home.redolog_dir()];
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("replay");
    let spec = std::iter::once(home.clone())
        .chain(logs.iter().cloned())
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join("\n");

    let exe = std::env::current_exe().unwrap();
    let child = |spec: &str| {
        Command::new(&exe)
            .args(["--exact", "playredo_crash_child", "--test-threads=1"])
            .env(CHILD, spec)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // How long a whole run takes here (into a home of its own): the kills fall
    // anywhere in it.
    let timed = std::time::Instant::now();
    let scratch = spec.replacen(
        &home.display().to_string(),
        &dir.path().join("timed").display().to_string(),
        1,
    );
    assert!(child(&scratch).wait().unwrap().success());
    let whole_ms = (timed.elapsed().as_millis() as u64).max(20);
    let mut rand = common::kill_timer(0x2545_F491_4F6C_DD1D);
    let changes = |store: &Store| -> u64 {
        accounts
            .iter()
            .map(|a| {
                store
                    .mailbox_point(a.mailbox_id)
                    .unwrap()
                    .map_or(0, |p| p.change)
            })
            .sum()
    };
    let live = changes(&fx.store);
    let mbox_dir = Home::at(&home).mailbox_db_dir();
    // A mailbox database's WAL, not the list of mailboxes created and not used
    // yet (`created.db`), which the store opens before the replay begins.
    let any_wal = |dir: &Path| {
        std::fs::read_dir(dir).is_ok_and(|d| {
            d.flatten().any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.ends_with("-wal") && !name.starts_with(mv_store::CREATED_FILE)
            })
        })
    };
    let mut partial = 0;
    for round in 0..KILLS {
        // Each round interrupts a replay into an empty home (the kill lands in
        // the replay, not in a run with nothing left to do), then finishes it.
        let _ = std::fs::remove_dir_all(&home);
        let mut child = child(&spec);
        // Killed inside the replay: once it has opened a mailbox database (its
        // `-wal` appears), at a random moment within half a whole run.
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_millis(whole_ms) && !any_wal(&mbox_dir) {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(rand(whole_ms / 2)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // What the kill left: opening the home recovers it as a start would.
        {
            let h = Home::at(&home);
            let (store, _) = Store::open(&h, StoreOptions::for_home(&h)).unwrap();
            let done = changes(&store);
            assert!(
                done <= live,
                "round {round}: {done} changes applied, live {live}"
            );
            if done > 0 && done < live {
                partial += 1;
            }
        }
        let r = replay(&home, logs.clone());
        let h = Home::at(&home);
        let (store, _) = Store::open(&h, StoreOptions::for_home(&h)).unwrap();
        for a in &accounts {
            assert_eq!(
                store.mailbox_state(a.mailbox_id).unwrap(),
                fx.store.mailbox_state(a.mailbox_id).unwrap(),
                "round {round}: {} after the re-run ({r:?})",
                a.email
            );
        }
        drop(store);
        // And once more: everything is applied, nothing is applied twice.
        let again = replay(&home, logs.clone());
        assert_eq!(again.applied, 0, "round {round}: {again:?}");
    }
    // The kills must have landed inside replays for the test to mean anything.
    assert!(
        partial >= 2,
        "only {partial} of {KILLS} kills left a replay half done (a whole run: {whole_ms} ms)"
    );
}
