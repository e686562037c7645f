//! Replaying the redo log into an empty home reproduces the live store exactly.

use mv_home::Home;
use mv_redo::ops::{flags, folders};
use mv_redo::{Record, RedoConfig};
use mv_store::testkit::{Action, Kit, message};
use mv_store::{DeliverOptions, FlagChange, Store, StoreOptions};
use mv_types::{ItemId, MailboxId};
use proptest::prelude::*;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

fn open(home: &Home, rollover_bytes: u64) -> Store {
    let mut opts = StoreOptions::for_home(home);
    opts.redo.rollover_size_bytes = rollover_bytes;
    Store::open(home, opts).unwrap().0
}

/// Every record of a home's redo log: archived files in sequence order, then redo.log.
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

/// The ops played: three accounts, a delivery to one to three of them (a
/// repeated recipient gets it twice).
const KIT: Kit = Kit {
    accounts: 3,
    max_recipients: 3,
    distinct_recipients: false,
};

fn action() -> impl Strategy<Value = Action> {
    KIT.action()
}

/// Runs an op against the live store; every other delivery carries
/// per-recipient trace headers.
fn run(store: &Store, mboxes: &[MailboxId], a: &Action, n: usize) {
    KIT.run(store, mboxes, a, n, &|n, to| {
        trace(n, to).filter(|_| n % 2 == 1)
    })
}

fn setup(store: &Store) -> Vec<MailboxId> {
    let ids: Vec<MailboxId> = (1..=3).map(MailboxId).collect();
    for id in &ids {
        store
            .create_mailbox(*id, &format!("acct-{id}"), &format!("user{id}@example.com"))
            .unwrap();
    }
    ids
}

/// Header lines of a delivery's own for one recipient.
fn trace(n: usize, to: MailboxId) -> Option<Vec<u8>> {
    Some(
        format!("Delivered-To: user{to}@example.com\r\nReceived: from x\r\n\tid {n}\r\n")
            .into_bytes(),
    )
}

fn assert_same(live: &Store, other: &Store, ids: &[MailboxId]) {
    for id in ids {
        let a = live.mailbox_state(*id).unwrap();
        let b = other.mailbox_state(*id).unwrap();
        assert_eq!(a, b, "mailbox {id} differs");
        // Byte for byte, trace headers included.
        for item in a
            .iter()
            .flat_map(|s| &s.items)
            .filter(|i| i.digest.is_some())
        {
            assert_eq!(
                live.read_blob(*id, item).unwrap(),
                other.read_blob(*id, item).unwrap(),
                "mailbox {id} item {} differs",
                item.id
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn replay_into_empty_home_reproduces_live_state(actions in proptest::collection::vec(action(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let live_home = Home::at(&dir.path().join("live"));
        // A small rollover size so that replay crosses archived logs too.
        let live = open(&live_home, 16 * 1024);
        let ids = setup(&live);
        for (n, a) in actions.iter().enumerate() {
            run(&live, &ids, a, n);
        }
        let records = all_records(&live_home);

        let replay_home = Home::at(&dir.path().join("replay"));
        let replayed = open(&replay_home, 100 << 20);
        replayed.replay(records.iter(), &|_| true).unwrap();
        assert_same(&live, &replayed, &ids);

        // Replaying again changes nothing.
        let again = replayed.replay(records.iter(), &|_| true).unwrap();
        prop_assert_eq!(again.applied, 0);
        assert_same(&live, &replayed, &ids);
    }

    /// A replay that dies in the middle — part of it committed, a batch applied but
    /// never committed — is finished by running the same replay again: the result
    /// equals the live store.
    #[test]
    fn replay_interrupted_then_rerun_reproduces_live_state(
        actions in proptest::collection::vec(action(), 1..60),
        cut in 0.0f64..1.0,
        lost in 0.0f64..1.0,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let live_home = Home::at(&dir.path().join("live"));
        let live = open(&live_home, 16 * 1024);
        let ids = setup(&live);
        for (n, a) in actions.iter().enumerate() {
            run(&live, &ids, a, n);
        }
        let records = all_records(&live_home);
        let committed = (records.len() as f64 * cut) as usize;
        let applied = committed + ((records.len() - committed) as f64 * lost) as usize;

        let replay_home = Home::at(&dir.path().join("replay"));
        {
            let replayed = open(&replay_home, 100 << 20);
            replayed.replay(records[..committed].iter(), &|_| true).unwrap();
            // The crash: these records are applied in open batch transactions that
            // are never committed (closing the databases rolls them back).
            let mut staged = mv_store::apply::Staged::default();
            let mut replayer = replayed.replayer();
            // (The cut may split a transaction: its content is staged either way.)
            for rec in records[..applied].iter().filter(|r| r.mailbox.0 == 0) {
                replayer.stage(rec, &mut staged).unwrap();
            }
            for rec in records[committed..applied].iter().filter(|r| r.mailbox.0 != 0) {
                replayer.apply(rec, &staged).unwrap();
            }
            std::mem::forget(replayer);
        }
        let replayed = open(&replay_home, 100 << 20);
        replayed.replay(records.iter(), &|_| true).unwrap();
        assert_same(&live, &replayed, &ids);
    }
}

#[test]
fn replaying_records_already_applied_stages_no_content() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let store = open(&home, 100 << 20);
    let ids = setup(&store);
    for n in 0..5 {
        store
            .deliver(&message(n, 2000), &ids, &DeliverOptions::default())
            .unwrap();
    }
    // What a start-up after a clean stop does with the current log: every record
    // is applied already, so no message is written again.
    let records = all_records(&home);
    let r = store.replay(records.iter(), &|_| true).unwrap();
    assert_eq!(r.applied, 0);
    assert!(r.skipped_already_applied >= 5, "{r:?}");
    assert_eq!(r.staged, 0, "{r:?}");
    // Into a fresh store the same records stage each message once.
    let dir2 = tempfile::tempdir().unwrap();
    let home2 = Home::at(dir2.path());
    let fresh = open(&home2, 100 << 20);
    let r = fresh.replay(records.iter(), &|_| true).unwrap();
    assert_eq!(r.staged, 5, "{r:?}");
    assert!(r.applied > 0);
}

#[test]
fn message_to_three_local_recipients_is_one_inode_with_three_links() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let store = open(&home, 100 << 20);
    let ids = setup(&store);
    let items = store
        .deliver(&message(1, 500), &ids, &DeliverOptions::default())
        .unwrap();
    let mut inodes = Vec::new();
    for (m, i) in ids.iter().zip(&items) {
        let item = store.mailbox(*m).item(*i).unwrap().unwrap();
        let md = std::fs::metadata(store.blob_path(*m, &item)).unwrap();
        assert_eq!(md.nlink(), 3);
        inodes.push(md.ino());
    }
    inodes.dedup();
    assert_eq!(inodes.len(), 1, "one file shared by all recipients");
    // The content is logged once however many recipients there are.
    let puts = all_records(&home)
        .iter()
        .filter(|r| matches!(r.op, mv_redo::Op::PutBlob(_)))
        .count();
    assert_eq!(puts, 1);
}

#[test]
fn trace_headers_per_recipient_share_one_blob_and_replay_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(&dir.path().join("live"));
    let store = open(&home, 100 << 20);
    let ids = setup(&store);
    // A message from before trace headers: no prefix, read as stored.
    let old = message(0, 300);
    let old_item = store
        .add_message(ids[0], &old, &DeliverOptions::default())
        .unwrap();
    let raw = message(1, 5000);
    let rcpts: Vec<(MailboxId, Vec<u8>)> =
        ids.iter().map(|m| (*m, trace(1, *m).unwrap())).collect();
    let items = store
        .deliver_with_prefixes(&raw, &rcpts, &DeliverOptions::default())
        .unwrap();
    let mut inodes = Vec::new();
    for ((m, prefix), i) in rcpts.iter().zip(&items) {
        let item = store.mailbox(*m).item(*i).unwrap().unwrap();
        // The stored message is the recipient's lines, then the received bytes.
        let bytes = store.read_blob(*m, &item).unwrap();
        assert_eq!(bytes, [prefix.as_slice(), &raw].concat());
        assert_eq!(item.size, bytes.len() as u64, "size counts the prefix");
        let header = store.read_blob_header(*m, &item).unwrap();
        assert!(header.starts_with(prefix) && bytes.starts_with(&header));
        assert!(header.ends_with(b"\r\n\r\n"));
        // ... while the blob file holds the received bytes, shared by all.
        let path = store.blob_path(*m, &item);
        assert_eq!(std::fs::read(&path).unwrap(), raw);
        let md = std::fs::metadata(&path).unwrap();
        assert_eq!(md.nlink(), 3);
        inodes.push(md.ino());
    }
    inodes.dedup();
    assert_eq!(inodes.len(), 1, "one file shared by all recipients");
    let item = store.mailbox(ids[0]).item(old_item).unwrap().unwrap();
    assert_eq!(store.read_blob(ids[0], &item).unwrap(), old);
    // Copies keep their prefix.
    let copied = store
        .copy_items(ids[0], &[items[0]], folders::TRASH)
        .unwrap();
    let copy = store.mailbox(ids[0]).item(copied[0]).unwrap().unwrap();
    assert_eq!(
        store.read_blob(ids[0], &copy).unwrap(),
        [rcpts[0].1.as_slice(), &raw].concat()
    );
    // The content is logged once; replay rebuilds the same bytes.
    let records = all_records(&home);
    let puts = records
        .iter()
        .filter(|r| matches!(r.op, mv_redo::Op::PutBlob(_)))
        .count();
    assert_eq!(puts, 2);
    let replayed = open(&Home::at(&dir.path().join("replay")), 100 << 20);
    replayed.replay(records.iter(), &|_| true).unwrap();
    assert_same(&store, &replayed, &ids);

    // A prefix must be whole header lines.
    for bad in [
        &b"X: no line end"[..],
        b"X: a\r\n\r\n",
        b"X: bare\nY: lf\r\n",
        b"X: bare\rcr\r\n",
        b" continued\r\n",
        b"X: \0\r\n",
    ] {
        let err = store
            .deliver_with_prefixes(&raw, &[(ids[0], bad.to_vec())], &DeliverOptions::default())
            .unwrap_err();
        assert!(err.to_string().contains("prefix"), "{err}");
    }
    let huge = format!("X: {}\r\n", "y".repeat(mv_store::MAX_PREFIX));
    assert!(
        store
            .deliver_with_prefixes(
                &raw,
                &[(ids[0], huge.into_bytes())],
                &DeliverOptions::default()
            )
            .is_err()
    );
}

/// Adds message `n` to `mbox` and deletes it while a backup holds blobs (released
/// right after): the removal of its blob file stays queued. Returns the file.
fn delete_during_backup(store: &Store, mbox: MailboxId, n: usize) -> PathBuf {
    let item = store
        .add_message(mbox, &message(n, 100), &DeliverOptions::default())
        .unwrap();
    let row = store.mailbox(mbox).item(item).unwrap().unwrap();
    let path = store.blob_path(mbox, &row);
    let hold = store.blobs().hold();
    std::thread::sleep(std::time::Duration::from_millis(5));
    store.delete_items(mbox, &[item]).unwrap();
    drop(hold);
    path
}

#[test]
fn deleted_blobs_wait_for_a_running_backup() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let store = open(&home, 100 << 20);
    let ids = setup(&store);
    let path = delete_during_backup(&store, ids[0], 2);
    assert!(
        path.exists(),
        "a backup that started before the delete may still need the blob"
    );
    store.sweep_all().unwrap();
    assert!(!path.exists());
}

#[test]
fn a_clean_close_spares_the_next_start_its_sweep_and_a_crash_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let marker = home.mailbox_db_dir().join(mv_store::GC_CLEAN);
    let (ids, path) = {
        let store = open(&home, 100 << 20);
        let ids = setup(&store);
        // Deleted while a backup holds blobs: the removal stays queued...
        let path = delete_during_backup(&store, ids[0], 3);
        assert!(path.exists());
        (ids, path)
        // ...until the close sweeps what this process used, then marks clean.
    };
    assert!(!path.exists(), "swept at close");
    assert!(marker.exists(), "nothing queued at close");
    {
        let store = open(&home, 100 << 20);
        // The start consumed the marker: removals may be queued from now on.
        assert!(!marker.exists());
        let path = delete_during_backup(&store, ids[1], 4);
        // A crash: no close, no marker; the queued removal is still there.
        std::mem::forget(store);
        assert!(path.exists());
        assert!(!marker.exists());
        // The next start sweeps every mailbox.
        let store = open(&home, 100 << 20);
        assert!(!path.exists(), "swept at the start after a crash");
        drop(store);
    }
}

#[test]
fn calendar_import_replaces_only_newer_versions() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let store = open(&home, 100 << 20);
    let ids = setup(&store);
    let ics = |seq: u32, summary: &str| {
        format!(
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:same\r\nSEQUENCE:{seq}\r\nDTSTAMP:20240101T000000Z\r\n\
             SUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )
    };
    let first = store
        .import_calendar(ids[0], folders::CALENDAR, &ics(1, "v1"))
        .unwrap();
    assert_eq!(first.created.len(), 1);
    let newer = store
        .import_calendar(ids[0], folders::CALENDAR, &ics(2, "v2"))
        .unwrap();
    assert_eq!(newer.replaced, first.created);
    let older = store
        .import_calendar(ids[0], folders::CALENDAR, &ics(1, "v1 again"))
        .unwrap();
    assert_eq!(older.kept_existing, vec!["same".to_string()]);
    let appts = store.mailbox(ids[0]).appointments().unwrap();
    assert_eq!(appts.len(), 1);
    assert_eq!(appts[0].subject, "v2");
}

#[test]
fn bad_requests_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let store = open(&home, 100 << 20);
    let ids = setup(&store);
    let before = store.mailbox_state(ids[0]).unwrap();
    assert!(
        store
            .create_folder(ids[0], folders::ROOT, "a/b", "message")
            .is_err()
    );
    assert!(
        store
            .create_folder(ids[0], folders::ROOT, "", "message")
            .is_err()
    );
    assert!(store.create_folder(ids[0], 9999, "x", "message").is_err());
    assert!(
        store
            .create_folder(ids[0], folders::ROOT, "Inbox", "message")
            .is_err(),
        "name clash, any case"
    );
    assert!(
        store
            .rename_folder(ids[0], folders::INBOX, "x", folders::ROOT)
            .is_err()
    );
    assert!(store.delete_folder(ids[0], folders::TRASH).is_err());
    assert!(store.delete_items(ids[0], &[ItemId(4242)]).is_err());
    assert!(
        store
            .set_flags(ids[0], &[ItemId(4242)], FlagChange::Add(flags::SEEN))
            .is_err()
    );
    assert!(
        store
            .put_contact(ids[0], folders::CONTACTS, "not a card", None)
            .is_err()
    );
    assert!(
        store
            .import_calendar(
                ids[0],
                folders::INBOX,
                "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
            )
            .is_err()
    );
    assert!(
        store
            .deliver(b"x", &[MailboxId(77)], &DeliverOptions::default())
            .is_err()
    );
    assert_eq!(store.mailbox_state(ids[0]).unwrap(), before);
}

#[test]
fn snapshot_taken_during_writes_matches_its_change_number() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let store = std::sync::Arc::new(open(&home, 100 << 20));
    let ids = setup(&store);
    let writer = {
        let store = store.clone();
        let m = ids[0];
        std::thread::spawn(move || {
            for n in 0..150 {
                store
                    .add_message(m, &message(n, 300), &DeliverOptions::default())
                    .unwrap();
            }
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(50));
    let snap_path = dir.path().join("snap.sqlite");
    let point = store.snapshot_mailbox(ids[0], &snap_path).unwrap();
    writer.join().unwrap();
    let conn = rusqlite_open(&snap_path);
    let (applied, count): (i64, i64) = conn
        .query_row(
            "SELECT applied_change, (SELECT COUNT(*) FROM item WHERE type = 5) FROM meta",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(applied as u64, point.change);
    // Change 1 created the mailbox; each later change delivered one message.
    assert_eq!(count as u64, point.change - 1);
    assert!(
        point.change < 151,
        "the snapshot was taken while writes continued"
    );
}

/// A backup asks every mailbox where it stands; one this process has not opened
/// is read without being opened for writing (no `-wal`/`-shm` created, nothing
/// swept at close), and still gives its true change number, also when a crash
/// left changes in a `-wal` that was never checkpointed.
#[test]
fn mailbox_point_of_a_closed_mailbox_is_exact_and_leaves_no_side_files() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let side = |id: MailboxId, suffix: &str| {
        home.mailbox_db_dir()
            .join(format!("{}.sqlite{suffix}", id.0))
    };
    let (ids, change) = {
        let store = open(&home, 100 << 20);
        let ids = setup(&store);
        for n in 0..5 {
            store
                .add_message(ids[0], &message(n, 300), &DeliverOptions::default())
                .unwrap();
        }
        let p = store.mailbox_point(ids[0]).unwrap().expect("live");
        // As a backup leaves it: the next start finds nothing to replay, so it
        // opens no mailbox.
        store.redo().rollover().unwrap();
        (ids, p.change)
    };
    assert!(!side(ids[0], "-wal").exists(), "a clean close checkpoints");
    {
        let store = open(&home, 100 << 20);
        let p = store.mailbox_point(ids[0]).unwrap().expect("live");
        assert_eq!(p.change, change);
        assert!(!side(ids[0], "-wal").exists());
        assert!(!side(ids[0], "-shm").exists());
        assert_eq!(store.mailbox_point(MailboxId(77)).unwrap(), None);
        for n in 0..3 {
            store
                .add_message(ids[0], &message(n, 300), &DeliverOptions::default())
                .unwrap();
        }
        // A crash: the last changes are only in the -wal.
        std::mem::forget(store);
    }
    assert!(side(ids[0], "-wal").exists());
    let store = open(&home, 100 << 20);
    let p = store.mailbox_point(ids[0]).unwrap().expect("live");
    assert_eq!(p.change, change + 3);
}

fn rusqlite_open(p: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(p).unwrap()
}

#[test]
fn emptying_the_root_keeps_system_folders() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let store = open(&home, 100 << 20);
    let ids = setup(&store);
    let f = store
        .create_folder(ids[0], folders::ROOT, "mine", "message")
        .unwrap();
    store
        .add_message(
            ids[0],
            &message(1, 10),
            &DeliverOptions {
                folder_id: f,
                ..Default::default()
            },
        )
        .unwrap();
    store.empty_folder(ids[0], folders::ROOT).unwrap();
    let names: Vec<String> = store
        .mailbox(ids[0])
        .folders()
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert!(
        names.contains(&"Inbox".to_string()) && names.contains(&"Trash".to_string()),
        "{names:?}"
    );
    assert!(!names.contains(&"mine".to_string()));
}

/// A live home under `dir` with the three mailboxes of [`setup`] and `count`
/// deliveries of `size`-byte messages, message `n` to the mailboxes `to(n, ids)`.
fn live_with_mail(
    dir: &std::path::Path,
    count: usize,
    size: usize,
    to: impl Fn(usize, &[MailboxId]) -> Vec<MailboxId>,
) -> (Home, Store, Vec<MailboxId>) {
    let home = Home::at(&dir.join("live"));
    let live = open(&home, 100 << 20);
    let ids = setup(&live);
    for n in 0..count {
        live.deliver(&message(n, size), &to(n, &ids), &DeliverOptions::default())
            .unwrap();
    }
    (home, live, ids)
}

/// A replay writes its batches without syncs and the close copies the logs into
/// the databases before its one syncfs: afterwards every mailbox connection is
/// back at its usual settings (a later checkpoint syncs the log first), the close
/// leaves no `-wal` behind, and the reopened store equals the live one.
#[test]
fn a_replayed_store_keeps_its_sync_settings_and_closes_without_logs() {
    let dir = tempfile::tempdir().unwrap();
    let (live_home, live, ids) =
        live_with_mail(dir.path(), 40, 500, |n, ids| vec![ids[n % ids.len()]]);
    let records = all_records(&live_home);
    let home = Home::at(&dir.path().join("replay"));
    {
        let replayed = open(&home, 100 << 20);
        let r = replayed.replay(records.iter(), &|_| true).unwrap();
        assert!(r.applied > 40, "{r:?}");
        for id in &ids {
            let (sync, autockpt): (i64, i64) = replayed
                .mailbox(*id)
                .read(|c| {
                    Ok((
                        c.query_row("PRAGMA synchronous", [], |r| r.get(0))?,
                        c.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))?,
                    ))
                })
                .unwrap();
            assert_eq!(
                (sync, autockpt),
                (1, 1000),
                "mailbox {id}: NORMAL, 1000 pages"
            );
        }
    }
    let mut left = side_files(&home, "-wal");
    left.extend(side_files(&home, "-shm"));
    assert!(left.is_empty(), "left after the close: {left:?}");
    let replayed = open(&home, 100 << 20);
    assert_same(&live, &replayed, &ids);
}

/// The side files of a home's mailbox databases (`-wal`, `-shm`), by suffix
/// (not those of `created.db`, the one database of unused mailboxes).
fn side_files(home: &Home, suffix: &str) -> Vec<String> {
    std::fs::read_dir(home.mailbox_db_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix) && !n.starts_with(mv_store::CREATED_FILE))
        .collect()
}

/// An offline replay's store (`exclusive_databases`, as `playredo` opens it)
/// writes each mailbox through its write-ahead log with the log's index in
/// memory: no `-shm` file while it runs, where the server's store has one per
/// open mailbox; it refuses a snapshot (a second connection could not read the
/// database) with an error that says so; and after its close a normal store
/// reads exactly the live state.
#[test]
fn an_exclusive_store_replays_without_shared_memory_files() {
    let dir = tempfile::tempdir().unwrap();
    let (live_home, live, ids) = live_with_mail(dir.path(), 30, 800, |n, ids| {
        vec![ids[n % ids.len()], ids[(n + 1) % ids.len()]]
    });
    let records = all_records(&live_home);
    // The server's store, for contrast: an open mailbox has its `-shm`.
    assert!(!side_files(&live_home, "-shm").is_empty());

    let home = Home::at(&dir.path().join("replay"));
    {
        let mut opts = StoreOptions::for_home(&home);
        opts.exclusive_databases = true;
        let replayed = Store::open(&home, opts).unwrap().0;
        let r = replayed.replay(records.iter(), &|_| true).unwrap();
        assert!(r.applied > 30, "{r:?}");
        assert_eq!(
            side_files(&home, "-wal").len(),
            ids.len(),
            "each written mailbox has its log open"
        );
        assert_eq!(side_files(&home, "-shm"), Vec::<String>::new());
        let err = replayed
            .snapshot_mailbox(ids[0], &dir.path().join("snap.sqlite"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("exclusively") && err.contains("through the server"),
            "{err}"
        );
    }
    assert_eq!(side_files(&home, "-wal"), Vec::<String>::new());
    let replayed = open(&home, 100 << 20);
    assert_same(&live, &replayed, &ids);
}

/// Copies a directory tree (files and directories only).
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A server that crashed leaves each open mailbox's `-wal` and `-shm`; the
/// offline replay that follows opens the databases exclusively, with the log's
/// index in memory, and never touches the stale `-shm`. The server opened after it
/// must then read the replayed state, not the stale index.
#[test]
fn an_exclusive_store_after_a_crashed_server_leaves_the_next_start_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (live_home, live, ids) =
        live_with_mail(dir.path(), 20, 600, |n, ids| vec![ids[n % ids.len()]]);
    // The files as a crash of the server would leave them: copied while open.
    let crashed = Home::at(&dir.path().join("crashed"));
    copy_tree(live_home.root(), crashed.root());
    assert!(!side_files(&crashed, "-shm").is_empty());
    let _ = std::fs::remove_file(crashed.root().join("mailvault.lock"));
    // More history on the live side, replayed offline into the crashed copy.
    for n in 20..40 {
        live.deliver(
            &message(n, 600),
            &[ids[n % ids.len()]],
            &DeliverOptions::default(),
        )
        .unwrap();
    }
    let id = ids[0];
    let newest = live
        .mailbox_state(id)
        .unwrap()
        .unwrap()
        .items
        .last()
        .unwrap()
        .id;
    live.set_flags(id, &[ItemId(newest)], FlagChange::Add(flags::SEEN))
        .unwrap();
    {
        let mut opts = StoreOptions::for_home(&crashed);
        opts.redo.rollover_size_bytes = 100 << 20;
        opts.exclusive_databases = true;
        let offline = Store::open(&crashed, opts).unwrap().0;
        offline
            .replay(all_records(&live_home).iter(), &|_| true)
            .unwrap();
    }
    // The stale index files are still there for the next start to meet.
    assert!(!side_files(&crashed, "-shm").is_empty());
    let started = open(&crashed, 100 << 20);
    assert_same(&live, &started, &ids);
}

/// A batch of messages (a restore of items) is the records single deliveries
/// would log, a chunk per commit: each message gets its own folder, flags,
/// tags, received date and prefix, UIDs in order per folder, the same content
/// twice is logged once per chunk; replay rebuilds the same mailbox.
#[test]
fn a_batch_of_messages_is_stored_in_few_commits_and_replays_identically() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(&dir.path().join("live"));
    let store = open(&home, 100 << 20);
    let ids = setup(&store);
    let m = ids[0];
    let other = store
        .create_folder(m, folders::ROOT, "Projects", "message")
        .unwrap();
    let tag = store.create_tag(m, "Red", 1).unwrap();
    // One delivery before: the batch continues its ids and the Inbox's UIDs.
    let before = store
        .add_message(m, &message(9_999, 200), &DeliverOptions::default())
        .unwrap();
    let commits_before = all_records(&home)
        .iter()
        .map(|r| r.txn)
        .collect::<std::collections::HashSet<_>>()
        .len();
    const N: usize = 600;
    let raws: Vec<Vec<u8>> = (0..N)
        .map(|n| message(if n == 7 { 3 } else { n }, 300))
        .collect();
    let prefixes: Vec<Vec<u8>> = (0..N)
        .map(|n| trace(n, m).filter(|_| n % 3 == 0).unwrap_or_default())
        .collect();
    let batch: Vec<mv_store::NewMessage> = (0..N)
        .map(|n| mv_store::NewMessage {
            raw: &raws[n],
            prefix: &prefixes[n],
            options: DeliverOptions {
                folder_id: if n % 2 == 0 { folders::INBOX } else { other },
                flags: if n % 5 == 0 { flags::SEEN } else { 0 },
                tags: if n % 4 == 0 { vec![tag] } else { vec![] },
                received: Some(mv_types::UtcMillis(1_700_000_000_000 + n as i64)),
            },
        })
        .collect();
    let got = store.add_messages(m, &batch).unwrap();
    assert_eq!(got.len(), N);
    let mbox = store.mailbox(m);
    let mut last_uid = std::collections::HashMap::new();
    for (n, id) in got.iter().enumerate() {
        assert_eq!(id.0, before.0 + 1 + n as u32, "ids follow each other");
        let item = mbox.item(*id).unwrap().unwrap();
        let o = &batch[n].options;
        assert_eq!(item.folder_id, o.folder_id);
        assert_eq!(item.flags, o.flags);
        assert_eq!(item.tags, o.tags);
        assert_eq!(item.received_ms, o.received.unwrap().0);
        assert_eq!(
            store.read_blob(m, &item).unwrap(),
            [prefixes[n].as_slice(), &raws[n]].concat()
        );
        let prev = last_uid.insert(item.folder_id, item.imap_uid);
        assert!(prev.is_none_or(|p| item.imap_uid == p + 1), "UIDs in order");
    }
    let records = all_records(&home);
    let commits = records
        .iter()
        .map(|r| r.txn)
        .collect::<std::collections::HashSet<_>>()
        .len()
        - commits_before;
    assert_eq!(commits, N.div_ceil(256), "one commit per chunk of 256");
    let puts = records
        .iter()
        .filter(|r| matches!(r.op, mv_redo::Op::PutBlob(_)))
        .count();
    assert_eq!(puts, 1 + N - 1, "message 7 repeats message 3: logged once");
    let replayed = open(&Home::at(&dir.path().join("replay")), 100 << 20);
    replayed.replay(records.iter(), &|_| true).unwrap();
    assert_same(&store, &replayed, &ids);

    // A bad entry is refused before anything is stored.
    let count = mbox.items(None, None).unwrap().len();
    let bad = [
        mv_store::NewMessage {
            raw: &raws[0],
            prefix: b"",
            options: DeliverOptions::default(),
        },
        mv_store::NewMessage {
            raw: &raws[1],
            prefix: b"",
            options: DeliverOptions {
                flags: 1 << 30,
                ..Default::default()
            },
        },
    ];
    assert!(store.add_messages(m, &bad).is_err());
    assert_eq!(mbox.items(None, None).unwrap().len(), count);
}
