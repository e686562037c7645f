//! playredo (zmplayredo): every mailbox of a redo log rebuilt, in parallel, with
//! filters, and past a failing mailbox.

use super::*;
use mv_backup::{PlayRedoOptions, playredo};

fn fresh_store(dir: &std::path::Path) -> (Home, Store) {
    let home = Home::at(dir);
    let (store, _) = Store::open(&home, StoreOptions::for_home(&home)).unwrap();
    (home, store)
}

#[test]
fn playredo_rebuilds_every_mailbox_in_parallel_and_filters() {
    let fx = Fx::new();
    let accounts: Vec<_> = (0..5)
        .map(|i| fx.account(&format!("u{i}@d.test")))
        .collect();
    for round in 0..6 {
        for (i, a) in accounts.iter().enumerate() {
            fx.deliver(&message(&format!("r{round}-{i}"), 1500 + i * 13), &[a]);
        }
        fx.deliver(
            &message(&format!("shared-{round}"), 2200),
            &accounts.iter().collect::<Vec<_>>(),
        );
        if round % 2 == 1 {
            fx.store.redo().rollover().unwrap();
        }
    }
    let logs = vec![fx.home.redo_archive_dir(), fx.home.redolog_dir()];

    // Everything, 3 threads with tiny queues: equal to the live store.
    let dir = tempfile::tempdir().unwrap();
    let (_h, store) = fresh_store(dir.path());
    let opts = PlayRedoOptions {
        logfiles: logs.clone(),
        threads: 3,
        queue_capacity: 1,
        ..Default::default()
    };
    let r = playredo(&store, &opts).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.mailboxes.len(), 5);
    for a in &accounts {
        assert_eq!(
            store.mailbox_state(a.mailbox_id).unwrap(),
            fx.store.mailbox_state(a.mailbox_id).unwrap(),
            "{}",
            a.email
        );
    }
    // Replaying again applies nothing.
    let again = playredo(&store, &opts).unwrap();
    assert_eq!(again.applied, 0);
    assert!(again.skipped_already_applied > 0);

    // --mailboxId: only that mailbox.
    let dir2 = tempfile::tempdir().unwrap();
    let (_h2, store2) = fresh_store(dir2.path());
    let only = accounts[2].mailbox_id.0;
    let r = playredo(
        &store2,
        &PlayRedoOptions {
            logfiles: logs.clone(),
            mailboxes: Some(vec![only]),
            threads: 2,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.mailboxes, vec![only]);
    assert_eq!(
        store2.mailbox_state(MailboxId(only)).unwrap(),
        fx.store.mailbox_state(MailboxId(only)).unwrap()
    );

    // --toSeq: only the first archived sequence; then the rest from there.
    let archive = mv_redo::list_archive(&fx.home.redo_archive_dir()).unwrap();
    let first = archive[0].sequence;
    let dir3 = tempfile::tempdir().unwrap();
    let (_h3, store3) = fresh_store(dir3.path());
    let part = playredo(
        &store3,
        &PlayRedoOptions {
            logfiles: logs.clone(),
            to_seq: Some(first),
            threads: 1,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(part.applied > 0 && part.errors.is_empty());
    let a0 = accounts[0].mailbox_id;
    assert_ne!(
        store3.mailbox_state(a0).unwrap(),
        fx.store.mailbox_state(a0).unwrap()
    );
    let rest = playredo(
        &store3,
        &PlayRedoOptions {
            logfiles: logs.clone(),
            from_seq: Some(first + 1),
            threads: 4,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(rest.errors.is_empty(), "{:?}", rest.errors);
    assert_eq!(
        store3.mailbox_state(a0).unwrap(),
        fx.store.mailbox_state(a0).unwrap()
    );

    // A gap (skipping a sequence) is an error: reported, or fatal with stopOnError.
    let dir4 = tempfile::tempdir().unwrap();
    let (_h4, store4) = fresh_store(dir4.path());
    let r = playredo(
        &store4,
        &PlayRedoOptions {
            logfiles: logs.clone(),
            from_seq: Some(first + 1),
            threads: 2,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!r.errors.is_empty());
    let e = playredo(
        &store4,
        &PlayRedoOptions {
            logfiles: logs,
            from_seq: Some(first + 1),
            threads: 2,
            stop_on_error: true,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("--stopOnError"), "{e}");
}

/// One worker, so every hand-over batch mixes the mailboxes' records: a mailbox
/// whose records all fail (its database file is not a database) is reported, and
/// every other mailbox is still replayed whole.
#[test]
fn playredo_goes_on_past_a_failing_mailbox_in_the_same_batch() {
    let fx = Fx::new();
    let accounts: Vec<_> = (0..3)
        .map(|i| fx.account(&format!("u{i}@d.test")))
        .collect();
    for round in 0..4 {
        for (i, a) in accounts.iter().enumerate() {
            fx.deliver(&message(&format!("r{round}-{i}"), 1500 + i * 13), &[a]);
        }
    }
    let logs = vec![fx.home.redo_archive_dir(), fx.home.redolog_dir()];
    let dir = tempfile::tempdir().unwrap();
    let (home, store) = fresh_store(dir.path());
    let broken = accounts[1].mailbox_id;
    std::fs::write(
        home.mailbox_db_dir().join(format!("{}.sqlite", broken.0)),
        vec![0x55; 8192],
    )
    .unwrap();
    let r = playredo(
        &store,
        &PlayRedoOptions {
            logfiles: logs,
            threads: 1,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        r.errors.iter().any(|e| e.contains("not a database")),
        "{:?}",
        r.errors
    );
    for a in accounts.iter().filter(|a| a.mailbox_id != broken) {
        assert_eq!(
            store.mailbox_state(a.mailbox_id).unwrap(),
            fx.store.mailbox_state(a.mailbox_id).unwrap(),
            "{}",
            a.email
        );
    }
}
