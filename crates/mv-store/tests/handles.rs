//! The handle cache: a store keeps at most `open_mailboxes` mailbox databases
//! open, closes the least recently used idle ones (never a pinned one or one
//! inside a transaction), and loses nothing by closing: every mailbox reads
//! back what was written, after a clean close and through a replay wider than
//! the cache.

use mv_home::Home;
use mv_redo::RedoConfig;
use mv_store::{Pending, Store, StoreOptions};
use mv_types::MailboxId;

const CAP: usize = 4;
const MAILBOXES: u32 = 20;

fn open(home: &Home) -> Store {
    let opts = StoreOptions {
        open_mailboxes: CAP,
        ..StoreOptions::for_home(home)
    };
    Store::open(home, opts).unwrap().0
}

fn message(n: u32) -> Vec<u8> {
    format!("From: a@example.com\r\nSubject: message {n}\r\n\r\nbody {n}\r\n").into_bytes()
}

/// Files below `/proc/self/fd` naming a mailbox database of `home` (not the
/// one database of mailboxes waiting for first use, `created.db`).
fn open_database_files(home: &Home) -> usize {
    let dir = home.mailbox_db_dir();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
        .filter(|p| p.starts_with(&dir))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(mv_store::CREATED_FILE))
        })
        .count()
}

fn fill(store: &Store) {
    for id in 1..=MAILBOXES {
        store
            .create_mailbox(MailboxId(id), &format!("acct-{id}"), &format!("u{id}@x"))
            .unwrap();
        store
            .add_message(MailboxId(id), &message(id), &Default::default())
            .unwrap();
        assert!(store.open_mailbox_count() <= CAP);
    }
}

fn check(store: &Store) {
    for id in 1..=MAILBOXES {
        let info = store.mailbox(MailboxId(id)).info().unwrap().unwrap();
        assert_eq!(info.message_count, 1, "mailbox {id}");
        assert_eq!(info.email, format!("u{id}@x"));
    }
}

#[test]
fn open_databases_stay_within_the_cache_and_pins_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let store = open(&home);
    fill(&store);
    assert!(store.mailbox_evictions() >= (MAILBOXES as u64) - CAP as u64);
    // Three files per open database at most (database, -wal, -shm).
    assert!(
        open_database_files(&home) <= CAP * 3,
        "{} database files open",
        open_database_files(&home)
    );

    // A pinned mailbox stays open however many others are used after it.
    let pin = store.pin(MailboxId(1));
    store.mailbox(MailboxId(1)).info().unwrap();
    for id in 2..=MAILBOXES {
        store.mailbox(MailboxId(id)).info().unwrap();
    }
    assert!(store.mailbox(MailboxId(1)).is_open(), "pinned, yet closed");
    drop(pin);
    for id in 2..=MAILBOXES {
        store.mailbox(MailboxId(id)).info().unwrap();
    }
    assert!(
        !store.mailbox(MailboxId(1)).is_open(),
        "unpinned, never closed"
    );
    check(&store);
    drop(store);

    let store = open(&home);
    check(&store);
    assert_eq!(
        store.take_pending(),
        Pending::Some((1..=MAILBOXES).map(MailboxId).collect()),
        "the changed mailboxes survive a clean close"
    );
}

#[test]
fn a_replay_wider_than_the_cache_stays_within_it() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let store = open(&home);
    fill(&store);
    drop(store);

    // The whole log replayed into an empty home: more mailboxes than the
    // cache, so batches are committed early to let the cache close them.
    let other = tempfile::tempdir().unwrap();
    let fresh = Home::at(other.path());
    let store = open(&fresh);
    let log = RedoConfig::for_dir(&home.redolog_dir()).log_path;
    let records: Vec<_> = mv_redo::read_files(&[log])
        .map(|r| r.unwrap().record)
        .collect();
    let report = store.replay(records.iter(), &|_| true).unwrap();
    assert_eq!(report.mailboxes.len(), MAILBOXES as usize);
    assert!(store.open_mailbox_count() <= CAP);
    assert!(open_database_files(&fresh) <= CAP * 3);
    check(&store);
}

/// After a crash the pending list is the one the last checkpoint wrote plus
/// the mailboxes of the records after it: the indexer's first round looks at
/// what changed, not at every mailbox.
#[test]
fn after_a_crash_the_pending_list_is_the_checkpoints_and_the_replayed_records() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    {
        let store = open(&home);
        fill(&store);
        // The indexer took everything, and finished all but mailbox 2.
        let taken = store.take_pending();
        assert_eq!(
            taken,
            Pending::Some((1..=MAILBOXES).map(MailboxId).collect())
        );
        // A checkpoint while it works keeps what it holds.
        store.checkpoint().unwrap();
        store.give_back_pending(Pending::Some(vec![MailboxId(2)]));
        store.checkpoint().unwrap();
        for id in [5, 3] {
            store
                .add_message(MailboxId(id), &message(100 + id), &Default::default())
                .unwrap();
        }
        // A crash: no clean close.
        std::mem::forget(store);
    }
    let (store, report) = Store::open(&home, StoreOptions::for_home(&home)).unwrap();
    assert_eq!(report.truncated_bytes, 0);
    assert_eq!(
        store.take_pending(),
        Pending::Some(vec![MailboxId(2), MailboxId(3), MailboxId(5)])
    );
    check_counts(&store, &[(3, 2), (5, 2), (2, 1)]);
}

fn check_counts(store: &Store, want: &[(u32, u64)]) {
    for (id, n) in want {
        let info = store.mailbox(MailboxId(*id)).info().unwrap().unwrap();
        assert_eq!(info.message_count, *n, "mailbox {id}");
    }
}

/// A checkpoint taken while the indexer holds "every mailbox" leaves no list:
/// a crash then means every mailbox again.
#[test]
fn a_crash_while_every_mailbox_is_being_checked_checks_every_mailbox_again() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    {
        let store = open(&home);
        fill(&store);
        store.checkpoint().unwrap();
        std::mem::forget(store);
    }
    std::fs::remove_file(home.mailbox_db_dir().join(mv_store::PENDING_FILE)).unwrap();
    {
        let store = open(&home);
        assert_eq!(store.take_pending(), Pending::All);
        store.checkpoint().unwrap();
        assert!(!home.mailbox_db_dir().join(mv_store::PENDING_FILE).exists());
        std::mem::forget(store);
    }
    let store = open(&home);
    assert_eq!(store.take_pending(), Pending::All);
}

/// With a capacity of 8 or more, a closer thread keeps the open databases an
/// eighth under it in the background, so a use of a mailbox not open finds
/// room without closing another itself; the capacity still holds at every
/// moment, and nothing is lost by the background closes.
#[test]
fn the_closer_keeps_room_under_the_capacity() {
    const CAP: usize = 16;
    const LOW_WATER: usize = CAP - CAP / 8;
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let opts = StoreOptions {
        open_mailboxes: CAP,
        ..StoreOptions::for_home(&home)
    };
    let store = Store::open(&home, opts.clone()).unwrap().0;
    for id in 1..=40 {
        store
            .create_mailbox(MailboxId(id), &format!("acct-{id}"), &format!("u{id}@x"))
            .unwrap();
        store
            .add_message(MailboxId(id), &message(id), &Default::default())
            .unwrap();
        assert!(store.open_mailbox_count() <= CAP);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while store.open_mailbox_count() > LOW_WATER {
        assert!(
            std::time::Instant::now() < deadline,
            "{} databases still open, the closer keeps {LOW_WATER}",
            store.open_mailbox_count()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(open_database_files(&home) <= LOW_WATER * 3);
    drop(store);
    let store = Store::open(&home, opts).unwrap().0;
    for id in 1..=40 {
        let info = store.mailbox(MailboxId(id)).info().unwrap().unwrap();
        assert_eq!(info.message_count, 1, "mailbox {id}");
    }
}
