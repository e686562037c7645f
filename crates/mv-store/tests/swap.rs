//! `Store::swap_in_mailbox`: a database built beside the store replaces a
//! mailbox's database; the other mailboxes are not touched.

use mv_home::Home;
use mv_store::{DeliverOptions, Store, StoreOptions};
use mv_types::MailboxId;

fn msg(n: usize) -> Vec<u8> {
    format!("From: a@b.test\r\nSubject: m{n}\r\n\r\nbody {n}\r\n").into_bytes()
}

#[test]
fn swap_in_replaces_one_mailbox_database() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let (store, _) = Store::open(&home, StoreOptions::for_home(&home)).unwrap();
    let (a, b) = (MailboxId(1), MailboxId(2));
    store.create_mailbox(a, "acct-a", "a@d.test").unwrap();
    store.create_mailbox(b, "acct-b", "b@d.test").unwrap();
    for n in 0..3 {
        store
            .deliver(&msg(n), &[a, b], &DeliverOptions::default())
            .unwrap();
    }
    // A copy of a's database at this point (closed first, so no -wal is left).
    let earlier = store.mailbox_state(a).unwrap();
    store.mailbox(a).close();
    let copy = home.mailbox_db_dir().join("a.sqlite.restoring");
    std::fs::copy(store.mailbox(a).db_path(), &copy).unwrap();
    for n in 3..5 {
        store
            .deliver(&msg(n), &[a, b], &DeliverOptions::default())
            .unwrap();
    }
    let b_state = store.mailbox_state(b).unwrap();
    assert_ne!(store.mailbox_state(a).unwrap(), earlier);

    store.swap_in_mailbox(a, &copy).unwrap();
    assert!(!copy.exists());
    assert_eq!(store.mailbox_state(a).unwrap(), earlier);
    assert_eq!(store.mailbox_state(b).unwrap(), b_state);
    // Reopened lazily and writable.
    store
        .deliver(&msg(9), &[a], &DeliverOptions::default())
        .unwrap();
    assert_eq!(store.mailbox(a).info().unwrap().unwrap().message_count, 4);

    // A missing file: an error, the mailbox untouched.
    assert!(store.swap_in_mailbox(a, &copy).is_err());
    assert_eq!(store.mailbox(a).info().unwrap().unwrap().message_count, 4);
}
