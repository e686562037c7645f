//! The dumpster: with a policy, an expunged or deleted message leaves the
//! mailbox (reads, quota-used) but stays recoverable with its bytes and flags
//! until its time runs out; recovery and the purge are logged ops, so a replay
//! of the redo log gives the same mailbox and the same dumpster.

use mv_home::Home;
use mv_redo::ops::{flags, folders};
use mv_redo::{Record, RedoConfig};
use mv_store::{DeliverOptions, FlagChange, Store, StoreOptions};
use mv_types::{ItemId, MailboxId, UtcMillis};
use std::path::PathBuf;

const HOUR: i64 = 3_600_000;

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

fn message(n: u32) -> Vec<u8> {
    format!("Subject: m{n}\r\nMessage-ID: <m{n}@x>\r\n\r\nbody {n}\r\n").into_bytes()
}

#[test]
fn expunged_messages_wait_in_the_dumpster_come_back_and_are_purged_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(&dir.path().join("live"));
    let store = open(&home);
    let mb = MailboxId(1);
    store.create_mailbox(mb, "a1", "u@d.test").unwrap();
    assert!(store.set_dumpster_policy(Box::new(|_| Some(HOUR))));
    store
        .create_folder(mb, folders::ROOT, "Work", "message")
        .unwrap();
    let work = store
        .mailbox(mb)
        .folder_by_path("/Work")
        .unwrap()
        .unwrap()
        .id;
    let opts = DeliverOptions {
        folder_id: work,
        flags: flags::FLAGGED,
        ..Default::default()
    };
    let kept = store.add_message(mb, &message(1), &opts).unwrap();
    let other = store.add_message(mb, &message(2), &opts).unwrap();
    let before = store.mailbox(mb).item(kept).unwrap().unwrap();
    let used = store.mailbox(mb).info().unwrap().unwrap().size_used;

    // IMAP-style: \Deleted, then EXPUNGE.
    store
        .set_flags(mb, &[kept], FlagChange::Add(flags::DELETED))
        .unwrap();
    store.purge_imap_deleted(mb, work, None).unwrap();
    let m = store.mailbox(mb);
    assert!(m.item(kept).unwrap().is_none(), "gone from the mailbox");
    assert_eq!(m.messages(work).unwrap().len(), 1);
    assert!(store.search(mb, "subject:m1").unwrap().is_empty());
    let dump = m.dumpster().unwrap();
    assert_eq!(dump.len(), 1);
    assert_eq!(dump[0].item.id, kept.0);
    assert!(dump[0].keep_until_ms > UtcMillis::now().0 + HOUR - 60_000);
    assert_eq!(m.dumpster_used().unwrap(), before.size);
    assert_eq!(
        m.info().unwrap().unwrap().size_used,
        used - before.size,
        "quota-used leaves the dumpster out"
    );
    let blob = store.blob_path(mb, &before);
    assert!(blob.exists(), "the content is kept");

    // Recovered into its folder, same id, bytes and flags (without the
    // \Deleted an EXPUNGE went by), a new UID.
    let back = store.recover_deleted(mb, &[kept.0]).unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].folder_id, work);
    let again = m.item(kept).unwrap().unwrap();
    assert_eq!(again.flags, before.flags);
    assert!(again.imap_uid > before.imap_uid);
    assert_eq!(store.read_blob(mb, &again).unwrap(), message(1));
    assert!(m.dumpster().unwrap().is_empty());
    assert_eq!(m.info().unwrap().unwrap().size_used, used);
    assert!(matches!(
        store.recover_deleted(mb, &[kept.0]),
        Err(mv_store::StoreError::NotFound(_))
    ));

    // A message whose folder is gone comes back into Inbox.
    store.delete_items(mb, &[other]).unwrap();
    let other_item = m.dumpster().unwrap()[0].item.clone();
    store.move_items(mb, &[kept], folders::INBOX).unwrap();
    store.delete_folder(mb, work).unwrap();
    let back = store.recover_deleted(mb, &[other.0]).unwrap();
    assert_eq!(back[0].folder_id, folders::INBOX);

    // Deleted again; the purge removes only what ran out, then the blob goes.
    store.delete_items(mb, &[other]).unwrap();
    assert_eq!(store.purge_dumpster(mb, UtcMillis::now()).unwrap(), 0);
    assert_eq!(m.dumpster().unwrap().len(), 1);
    let blob = store.blob_path(mb, &other_item);
    assert!(blob.exists());
    let later = UtcMillis(UtcMillis::now().0 + 2 * HOUR);
    assert_eq!(store.purge_dumpster(mb, later).unwrap(), 1);
    assert!(m.dumpster().unwrap().is_empty());
    assert!(!blob.exists(), "the purge's sweep removed the content");

    // One more in the dumpster, then a replay of the log into a new home gives
    // the same mailbox and the same dumpster.
    store.delete_items(mb, &[kept]).unwrap();
    let records = all_records(&home);
    let replay_home = Home::at(&dir.path().join("replay"));
    let replayed = open(&replay_home);
    replayed.replay(records.iter(), &|_| true).unwrap();
    assert_eq!(
        store.mailbox_state(mb).unwrap(),
        replayed.mailbox_state(mb).unwrap()
    );
    assert_eq!(
        m.dumpster().unwrap(),
        replayed.mailbox(mb).dumpster().unwrap()
    );
    // No policy in the replaying store: the records decide, not the store.
    let back = replayed.recover_deleted(mb, &[kept.0]).unwrap();
    let item = replayed
        .mailbox(mb)
        .item(ItemId(back[0].id))
        .unwrap()
        .unwrap();
    assert_eq!(replayed.read_blob(mb, &item).unwrap(), message(1));
}

#[test]
fn without_a_policy_deletes_remove_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let store = open(&home);
    let mb = MailboxId(1);
    store.create_mailbox(mb, "a1", "u@d.test").unwrap();
    let id = store
        .add_message(mb, &message(1), &DeliverOptions::default())
        .unwrap();
    store.delete_items(mb, &[id]).unwrap();
    assert!(store.mailbox(mb).dumpster().unwrap().is_empty());
    assert!(matches!(
        store.recover_deleted(mb, &[id.0]),
        Err(mv_store::StoreError::NotFound(_))
    ));
}

/// A message delivered and deleted into the dumpster since the last checkpoint,
/// whose blob a power cut left short, gets its blob back from the redo log at
/// the next open, as a live message's does: the dumpster keeps whole bytes.
#[test]
fn crash_repair_gives_a_dumpster_message_its_blob_back() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let mb = MailboxId(1);
    let (id, blob) = {
        let store = open(&home);
        store.create_mailbox(mb, "a1", "u@d.test").unwrap();
        assert!(store.set_dumpster_policy(Box::new(|_| Some(HOUR))));
        store.checkpoint().unwrap();
        let id = store
            .add_message(mb, &message(7), &DeliverOptions::default())
            .unwrap();
        let item = store.mailbox(mb).item(id).unwrap().unwrap();
        let blob = store
            .blobs()
            .blob_path(item.volume_id, mb, id, item.mod_content);
        store.delete_items(mb, &[id]).unwrap();
        // A crash: no clean close, no checkpoint since the delivery.
        std::mem::forget(store);
        (id, blob)
    };
    // What a power cut leaves of a file whose data never reached the disk.
    std::fs::write(&blob, b"").unwrap();
    let (store, report) = Store::open(&home, StoreOptions::for_home(&home)).unwrap();
    assert_eq!(report.blobs_repaired, 1, "{report:?}");
    let back = store.recover_deleted(mb, &[id.0]).unwrap();
    assert_eq!(back.len(), 1);
    let item = store.mailbox(mb).item(id).unwrap().unwrap();
    assert_eq!(store.read_blob(mb, &item).unwrap(), message(7));
}

/// `zimbraDumpsterQuota`: beyond the limit the sweep removes the oldest deleted
/// first until what stays fits, besides whatever ran out of time; without a
/// limit nothing within its lifetime goes. The purge is a logged op: a replay
/// keeps the same entries.
#[test]
fn a_dumpster_over_its_quota_loses_the_oldest_deleted_first() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(&dir.path().join("live"));
    let store = open(&home);
    let mb = MailboxId(1);
    store.create_mailbox(mb, "a1", "u@d.test").unwrap();
    assert!(store.set_dumpster_policy(Box::new(|_| Some(HOUR))));
    let mut ids = Vec::new();
    for n in 0..5 {
        let id = store
            .add_message(mb, &message(n), &DeliverOptions::default())
            .unwrap();
        ids.push(id);
    }
    // Deleted one by one, in an order other than their ids': 3, 0, 4, 1, 2.
    for k in [3, 0, 4, 1, 2] {
        store.delete_items(mb, &[ids[k]]).unwrap();
        let t = UtcMillis::now();
        while UtcMillis::now() <= t {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    let m = store.mailbox(mb);
    let size = |k: usize| -> u64 {
        m.dumpster()
            .unwrap()
            .into_iter()
            .find(|d| d.item.id == ids[k].0)
            .unwrap()
            .item
            .size
    };
    let sizes: Vec<u64> = (0..5).map(size).collect();
    let left = |m: &mv_store::Mailbox| -> Vec<u32> {
        let mut v: Vec<u32> = m
            .dumpster()
            .unwrap()
            .into_iter()
            .map(|d| d.item.id)
            .collect();
        v.sort();
        v
    };

    // No limit, nothing expired: nothing goes.
    assert_eq!(
        store
            .purge_dumpster_within(mb, UtcMillis::now(), None)
            .unwrap(),
        0
    );
    // A limit the whole dumpster fits in: nothing goes.
    let all: u64 = sizes.iter().sum();
    assert_eq!(
        store
            .purge_dumpster_within(mb, UtcMillis::now(), Some(all))
            .unwrap(),
        0
    );
    // Room for the two deleted last (1 and 2) and a byte less than one more.
    let quota = sizes[1] + sizes[2] + sizes[4] - 1;
    assert_eq!(
        store
            .purge_dumpster_within(mb, UtcMillis::now(), Some(quota))
            .unwrap(),
        3
    );
    assert_eq!(left(&m), vec![ids[1].0, ids[2].0]);
    assert_eq!(m.dumpster_used().unwrap(), sizes[1] + sizes[2]);
    // What the quota removed cannot come back.
    assert!(matches!(
        store.recover_deleted(mb, &[ids[3].0]),
        Err(mv_store::StoreError::NotFound(_))
    ));
    store.checkpoint().unwrap();
    drop(m);
    drop(store);

    // A replay of the same records into a fresh home keeps the same entries.
    let again = Home::at(&dir.path().join("again"));
    let replayed = open(&again);
    let records = all_records(&home);
    replayed.replay(records.iter(), &|_| true).unwrap();
    let r = replayed.mailbox(mb);
    assert_eq!(left(&r), vec![ids[1].0, ids[2].0]);
    // A quota of 0 empties it.
    assert_eq!(
        replayed
            .purge_dumpster_within(mb, UtcMillis::now(), Some(0))
            .unwrap(),
        2
    );
    assert!(left(&r).is_empty());
    assert_eq!(r.dumpster_used().unwrap(), 0);
}
