//! The read queries IMAP sessions use: messages in UID order, lookup by UID,
//! and the change number that moves with every write.

use mv_home::Home;
use mv_redo::ops::folders;
use mv_store::{DeliverOptions, FlagChange, Store, StoreOptions};
use mv_types::MailboxId;

#[test]
fn uid_order_lookup_and_change_number() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let store = Store::open(&home, StoreOptions::for_home(&home)).unwrap().0;
    let m = MailboxId(1);
    store.create_mailbox(m, "acct", "u@example.com").unwrap();
    let c0 = store.mailbox(m).change_number().unwrap();
    let a = store
        .add_message(m, b"Subject: a\r\n\r\na\r\n", &DeliverOptions::default())
        .unwrap();
    let b = store
        .add_message(m, b"Subject: b\r\n\r\nb\r\n", &DeliverOptions::default())
        .unwrap();
    let c1 = store.mailbox(m).change_number().unwrap();
    assert!(c1 > c0);
    // Moving `a` out and back gives it a higher UID than `b`: UID order is not id order.
    store.move_items(m, &[a], folders::TRASH).unwrap();
    store.move_items(m, &[a], folders::INBOX).unwrap();
    let by_uid: Vec<u32> = store
        .mailbox(m)
        .messages_by_uid(folders::INBOX)
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(by_uid, vec![b.0, a.0]);
    let first = store.mailbox(m).messages_by_uid(folders::INBOX).unwrap()[1].clone();
    assert_eq!(
        store
            .mailbox(m)
            .message_by_uid(folders::INBOX, first.imap_uid)
            .unwrap()
            .map(|i| i.id),
        Some(a.0)
    );
    assert_eq!(
        store
            .mailbox(m)
            .message_by_uid(folders::TRASH, first.imap_uid)
            .unwrap(),
        None
    );
    let c2 = store.mailbox(m).change_number().unwrap();
    store.set_flags(m, &[a], FlagChange::Add(1)).unwrap();
    assert!(store.mailbox(m).change_number().unwrap() > c2);
}
