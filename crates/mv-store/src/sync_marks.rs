//! Tests of which mailbox databases a checkpoint fsyncs where the store syncs
//! file by file: a write must be synced by the first checkpoint that claims its
//! redo record, whatever other checkpoint ran while its writer held the lock.

use crate::apply::Staged;
use crate::{Store, StoreOptions};
use mv_home::Home;
use mv_redo::ops::{self, Op};
use mv_types::MailboxId;

fn open(dir: &std::path::Path) -> Store {
    let home = Home::at(dir);
    Store::open(&home, StoreOptions::for_home(&home)).unwrap().0
}

#[test]
fn a_write_is_synced_by_the_next_checkpoint_even_when_one_ran_under_its_lock() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = MailboxId(7);
    let mbox = store.mailbox(id);
    let mut g = mbox.lock().unwrap();
    // A rollover's checkpoint run by this writer's own append: the lock is
    // held, nothing is written yet, the mark is taken.
    assert!(mbox.sync_if_written().unwrap());
    assert!(!mbox.sync_if_written().unwrap(), "the mark was taken");
    let op = Op::CreateMailbox(ops::CreateMailbox {
        account_id: "a".into(),
        email: "a@example.com".into(),
        uid_validity: 1,
    });
    store
        .commit(
            std::slice::from_mut(&mut g),
            vec![],
            vec![(id, op)],
            &Staged::default(),
        )
        .unwrap();
    // The write's redo ticket is released, the lock still held: a checkpoint
    // now (a backup's rollover) claims the record, so it must sync the database.
    assert!(
        mbox.sync_if_written().unwrap(),
        "a checkpoint claiming the write would skip its database"
    );
    drop(g);
}
