//! A created mailbox gets its database on first use: until then it costs no
//! file, reads see an empty mailbox with the default folders, and replay,
//! snapshots and racing first uses give what an eager creation would have.

use mv_home::Home;
use mv_redo::ops::folders;
use mv_redo::{Record, RedoConfig};
use mv_store::testkit::message;
use mv_store::{DeliverOptions, SnapshotFile, Store, StoreOptions};
use mv_types::MailboxId;
use std::path::PathBuf;
use std::sync::Arc;

fn open(home: &Home) -> Store {
    Store::open(home, StoreOptions::for_home(home)).unwrap().0
}

fn all_records(home: &Home) -> Vec<Record> {
    let mut paths: Vec<PathBuf> = mv_redo::list_archive(&home.redo_archive_dir())
        .unwrap()
        .into_iter()
        .map(|a| a.path)
        .collect();
    paths.push(RedoConfig::for_dir(&home.redolog_dir()).log_path);
    mv_redo::read_files(&paths)
        .map(|r| r.unwrap().record)
        .collect()
}

/// Mailbox database files in `db/mbox` (side files left out).
fn database_files(home: &Home) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(home.mailbox_db_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(|c: char| c.is_ascii_digit()) && n.ends_with(".sqlite"))
        .collect();
    names.sort();
    names
}

#[test]
fn a_new_mailbox_has_no_database_and_reads_as_empty_with_the_default_folders() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let store = open(&home);
    let id = MailboxId(5);
    store
        .create_mailbox(id, "acct-5", "u5@example.com")
        .unwrap();
    assert_eq!(database_files(&home), Vec::<String>::new());
    assert_eq!(store.unopened_mailbox_count().unwrap(), 1);
    let mbox = store.mailbox(id);
    assert!(mbox.is_unopened().unwrap());

    let info = mbox.info().unwrap().expect("the mailbox exists");
    assert_eq!(
        (info.account_id.as_str(), info.email.as_str()),
        ("acct-5", "u5@example.com")
    );
    assert_eq!((info.applied_change, info.message_count), (1, 0));
    assert!(!info.deleted);
    assert_eq!(mbox.peek_info().unwrap(), Some(info.clone()));
    let names: Vec<String> = mbox
        .folders()
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    for want in ["/", "/Inbox", "/Trash", "/Junk", "/Sent", "/Drafts"] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    assert!(mbox.items(None, None).unwrap().is_empty());
    assert!(store.search(id, "hello").unwrap().is_empty());
    let point = store.mailbox_point(id).unwrap().expect("a live mailbox");
    assert_eq!(point.change, 1);
    // None of that made a database, nor a second creation is allowed.
    assert_eq!(database_files(&home), Vec::<String>::new());
    assert!(
        store
            .create_mailbox(id, "acct-5", "u5@example.com")
            .is_err()
    );
    let state_before = store.mailbox_state(id).unwrap().unwrap();

    // First use: a delivery makes the database, the same as read before.
    let uidv: Vec<u32> = mbox
        .folders()
        .unwrap()
        .iter()
        .map(|f| f.uid_validity)
        .collect();
    store
        .deliver(&message(1, 100), &[id], &DeliverOptions::default())
        .unwrap();
    assert_eq!(database_files(&home), ["5.sqlite"]);
    assert!(!mbox.is_unopened().unwrap());
    assert_eq!(store.unopened_mailbox_count().unwrap(), 0);
    let after: Vec<u32> = mbox
        .folders()
        .unwrap()
        .iter()
        .map(|f| f.uid_validity)
        .collect();
    assert_eq!(uidv, after, "UIDVALIDITY changed at first use");
    let state = store.mailbox_state(id).unwrap().unwrap();
    assert_eq!(state.items.len(), 1);
    assert_eq!(state.folders.len(), state_before.folders.len());
    assert_eq!(state.info.account_id, state_before.info.account_id);
    assert_eq!(
        mbox.items(Some(folders::INBOX), None).unwrap().len(),
        1,
        "delivered into the Inbox"
    );

    // Reopened: the state holds.
    drop(mbox);
    drop(store);
    let store = open(&home);
    assert_eq!(store.mailbox_state(id).unwrap().unwrap(), state);
}

#[test]
fn replay_makes_the_same_state_created_and_unused_then_first_used() {
    let dir = tempfile::tempdir().unwrap();
    let live_home = Home::at(&dir.path().join("live"));
    let live = open(&live_home);
    let ids: Vec<MailboxId> = (1..=4).map(MailboxId).collect();
    let entries: Vec<(MailboxId, String, String)> = ids
        .iter()
        .map(|id| (*id, format!("acct-{id}"), format!("u{id}@example.com")))
        .collect();
    let refs: Vec<(MailboxId, &str, &str)> = entries
        .iter()
        .map(|(id, a, e)| (*id, a.as_str(), e.as_str()))
        .collect();
    assert!(live.create_mailboxes(&refs).iter().all(|r| r.is_ok()));
    live.deliver(
        &message(1, 200),
        &[ids[1], ids[3]],
        &DeliverOptions::default(),
    )
    .unwrap();
    live.create_folder(ids[3], folders::ROOT, "work", "message")
        .unwrap();
    assert_eq!(database_files(&live_home), ["2.sqlite", "4.sqlite"]);

    let other_home = Home::at(&dir.path().join("other"));
    let other = open(&other_home);
    let records = all_records(&live_home);
    let report = other.replay(records.iter(), &|_| true).unwrap();
    assert!(report.applied >= 6, "{report:?}");
    other.checkpoint().unwrap();
    assert_eq!(database_files(&other_home), ["2.sqlite", "4.sqlite"]);
    for id in &ids {
        assert_eq!(
            live.mailbox_state(*id).unwrap(),
            other.mailbox_state(*id).unwrap(),
            "mailbox {id} differs"
        );
    }
    // A second replay applies nothing: the unused ones count as created.
    let again = other.replay(records.iter(), &|_| true).unwrap();
    assert_eq!(again.applied, 0, "{again:?}");
    assert_eq!(database_files(&other_home), ["2.sqlite", "4.sqlite"]);
    // First use after the replay, on both sides, stays equal.
    for s in [&live, &other] {
        s.deliver(&message(2, 50), &[ids[0]], &DeliverOptions::default())
            .unwrap();
    }
    let a = live.mailbox_state(ids[0]).unwrap().unwrap();
    let b = other.mailbox_state(ids[0]).unwrap().unwrap();
    assert_eq!(a.folders, b.folders);
    assert_eq!(a.info, b.info);
}

#[test]
fn a_lost_creation_row_is_rebuilt_by_crash_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let snapshot_before;
    {
        let store = open(&home);
        // A checkpoint first, so that the creation is past it in the log.
        store.checkpoint().unwrap();
        store
            .create_mailbox(MailboxId(9), "acct-9", "u9@example.com")
            .unwrap();
        snapshot_before = store.mailbox_state(MailboxId(9)).unwrap();
        // A crash: no clean close, and the unsynced row lost with the rest.
        std::mem::forget(store);
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(
            home.mailbox_db_dir()
                .join(format!("{}{suffix}", mv_store::CREATED_FILE)),
        );
    }
    let (store, report) = Store::open(&home, StoreOptions::for_home(&home)).unwrap();
    assert!(report.reapplied >= 1, "{report:?}");
    assert_eq!(store.mailbox_state(MailboxId(9)).unwrap(), snapshot_before);
    assert!(store.mailbox(MailboxId(9)).is_unopened().unwrap());
}

#[test]
fn a_snapshot_of_an_unused_mailbox_is_the_database_its_first_use_makes() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(&dir.path().join("h"));
    let store = open(&home);
    let id = MailboxId(3);
    store
        .create_mailbox(id, "acct-3", "u3@example.com")
        .unwrap();
    let snap = dir.path().join("snap.sqlite");
    let point = store.snapshot_mailbox(id, &snap).unwrap();
    assert_eq!(point.change, 1);
    assert_eq!(database_files(&home), Vec::<String>::new());
    let file = SnapshotFile::open(&snap).unwrap();
    let summary = file.summary().unwrap();
    assert_eq!(summary.messages, 0);
    assert!(file.blob_refs().unwrap().is_empty());
}

#[test]
fn two_first_uses_racing_make_one_database_with_both_messages() {
    for round in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let store = Arc::new(open(&home));
        let id = MailboxId(1);
        store
            .create_mailbox(id, "acct-1", "u1@example.com")
            .unwrap();
        let threads: Vec<_> = (0..2)
            .map(|n| {
                let store = store.clone();
                std::thread::spawn(move || {
                    if n == 0 {
                        store
                            .deliver(&message(round, 80), &[id], &DeliverOptions::default())
                            .unwrap();
                    } else {
                        store
                            .create_folder(id, folders::ROOT, "racing", "message")
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mbox = store.mailbox(id);
        assert_eq!(mbox.info().unwrap().unwrap().applied_change, 3);
        assert_eq!(mbox.items(None, None).unwrap().len(), 1);
        assert!(mbox.folder_by_path("/racing").unwrap().is_some());
        assert_eq!(
            database_files(&home).first().map(String::as_str),
            Some("1.sqlite")
        );
    }
}
