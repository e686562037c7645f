//! A snapshot file, what a backup keeps of a mailbox and a restore puts back:
//! what it says it holds is what the mailbox held, it is one file on its own,
//! a rebound copy opens as the new mailbox with every message readable, and
//! `check` tells a sound file from a damaged one.

use mv_home::Home;
use mv_store::{ItemKind, SnapshotFile, Store, StoreOptions};
use mv_types::{ItemId, MailboxId};

fn open(home: &Home) -> Store {
    Store::open(home, StoreOptions::for_home(home)).unwrap().0
}

fn message(n: u32) -> Vec<u8> {
    format!("From: a@example.com\r\nSubject: message {n}\r\n\r\nbody {n}\r\n").into_bytes()
}

const FROM: MailboxId = MailboxId(7);
const TO: MailboxId = MailboxId(42);

#[test]
fn a_snapshot_lists_its_blobs_and_rebinds_to_a_new_mailbox() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(&dir.path().join("home"));
    let store = open(&home);
    store.create_mailbox(FROM, "acct-7", "a@x").unwrap();
    for n in 0..5 {
        store
            .add_message(FROM, &message(n), &Default::default())
            .unwrap();
    }
    // Two items sharing one content: both are listed, with one digest.
    store
        .add_message(FROM, &message(0), &Default::default())
        .unwrap();
    store
        .put_contact(
            FROM,
            mv_redo::ops::folders::CONTACTS,
            "BEGIN:VCARD\r\nFN:Ann\r\nEND:VCARD\r\n",
            None,
        )
        .unwrap();

    let snap = dir.path().join("snap.sqlite");
    let point = store.snapshot_mailbox(FROM, &snap).unwrap();
    let file = SnapshotFile::open(&snap).unwrap();
    file.make_self_contained().unwrap();
    let summary = file.summary().unwrap();
    let items = store.mailbox(FROM).items(None, None).unwrap();
    assert_eq!(summary.items, items.len() as u64);
    assert_eq!(summary.messages, 6);
    assert_eq!(summary.applied_change, point.change);

    let refs = file.blob_refs().unwrap();
    let with_blobs: Vec<_> = items.iter().filter(|i| i.digest.is_some()).collect();
    assert_eq!(refs.len(), with_blobs.len());
    for (r, i) in refs.iter().zip(&with_blobs) {
        assert_eq!(r.item, ItemId(i.id));
        assert_eq!(Some(r.digest.to_hex()), i.digest);
        assert_eq!(r.volume, i.volume_id);
        assert_eq!(r.revision, i.mod_content);
        assert_eq!(r.size, i.size);
        assert_eq!(i.kind, ItemKind::Message);
        assert!(
            store
                .blobs()
                .blob_path(r.volume, FROM, r.item, r.revision)
                .is_file()
        );
    }
    assert_eq!(refs[0].digest, refs[5].digest);
    drop(file);
    // Self-contained: no log beside it holds part of the database.
    assert!(!dir.path().join("snap.sqlite-wal").exists());
    assert_eq!(SnapshotFile::check(&snap).unwrap(), point.change);

    // Put back as mailbox 42 of another account: rebind, blobs where the
    // references say, then the store opens it as that mailbox.
    let file = SnapshotFile::open(&snap).unwrap();
    file.rebind(TO, "acct-42", "b@x").unwrap();
    for r in file.blob_refs().unwrap() {
        let from = store.blobs().blob_path(r.volume, FROM, r.item, r.revision);
        let to = store.blobs().blob_path(r.volume, TO, r.item, r.revision);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
    drop(file);
    let db = store.mailbox(TO).db_path().to_path_buf();
    std::fs::rename(&snap, &db).unwrap();
    let info = store.mailbox(TO).info().unwrap().unwrap();
    assert_eq!(
        (
            info.mailbox_id,
            info.account_id.as_str(),
            info.email.as_str()
        ),
        (42, "acct-42", "b@x")
    );
    assert_eq!(info.applied_change, point.change);
    let restored = store.mailbox(TO).items(None, None).unwrap();
    assert_eq!(restored.len(), items.len());
    for item in restored.iter().filter(|i| i.kind == ItemKind::Message) {
        store.read_blob(TO, item).unwrap();
    }
}

#[test]
fn check_finds_a_damaged_or_foreign_file() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(&dir.path().join("home"));
    let store = open(&home);
    store.create_mailbox(FROM, "acct-7", "a@x").unwrap();
    for n in 0..200 {
        store
            .add_message(FROM, &message(n), &Default::default())
            .unwrap();
    }
    let snap = dir.path().join("snap.sqlite");
    store.snapshot_mailbox(FROM, &snap).unwrap();
    SnapshotFile::open(&snap)
        .unwrap()
        .make_self_contained()
        .unwrap();
    SnapshotFile::check(&snap).unwrap();

    // Not a database at all.
    let junk = dir.path().join("junk.sqlite");
    std::fs::write(&junk, vec![0x5a; 8192]).unwrap();
    let err = SnapshotFile::check(&junk).unwrap_err().to_string();
    assert!(err.contains("not a sound database"), "{err}");

    // A database, but not a mailbox.
    let other = dir.path().join("other.sqlite");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let err = SnapshotFile::check(&other).unwrap_err().to_string();
    assert!(err.contains("has no mailbox"), "{err}");

    // A mailbox whose pages were damaged past the header.
    let mut bytes = std::fs::read(&snap).unwrap();
    let len = bytes.len();
    assert!(len > 4 * 4096, "several pages");
    for b in &mut bytes[len - 3 * 4096..len - 4096] {
        *b ^= 0xa5;
    }
    std::fs::write(&snap, &bytes).unwrap();
    assert!(SnapshotFile::check(&snap).is_err());
}
