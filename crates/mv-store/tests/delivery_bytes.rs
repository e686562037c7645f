//! What one delivery costs in bytes besides its blob: the redo log's records and
//! the mailbox database's write-ahead log. A 10 KB text message used to add
//! about 31 KB to them (its content plain in the log, six 4 KiB pages in the
//! WAL); the budget is a third of that, and every message still reads back
//! exactly.

use mv_home::Home;
use mv_store::{Store, StoreOptions};
use mv_types::MailboxId;
use std::path::Path;

const MESSAGES: u32 = 60;
const SIZE: usize = 10 * 1024;

fn message(n: u32) -> Vec<u8> {
    let words = [
        "mail", "vault", "restore", "backup", "delivery", "of", "the",
    ];
    let mut out = format!(
        "From: a@example.com\r\nTo: u@x\r\nSubject: message {n}\r\nMessage-ID: <{n}@x>\r\n\r\n"
    )
    .into_bytes();
    let mut i = n as usize + 1;
    while out.len() < SIZE {
        i = i.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        out.extend_from_slice(words[(i >> 33) % words.len()].as_bytes());
        out.extend_from_slice(if (i >> 20).is_multiple_of(13) {
            b"\r\n"
        } else {
            b" "
        });
    }
    out
}

fn size_of(dir: &Path, suffix: &str) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .map(|p| p.metadata().unwrap().len())
        .sum()
}

#[test]
fn a_delivery_writes_little_besides_its_blob_and_reads_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let store = Store::open(&home, StoreOptions::for_home(&home)).unwrap().0;
    let id = MailboxId(1);
    store.create_mailbox(id, "acct-1", "u@x").unwrap();
    store
        .add_message(id, &message(0), &Default::default())
        .unwrap();
    let (redo0, wal0) = (
        size_of(&home.redolog_dir(), "redo.log"),
        size_of(&home.mailbox_db_dir(), "-wal"),
    );
    let mut items = Vec::new();
    for n in 1..=MESSAGES {
        items.push(
            store
                .add_message(id, &message(n), &Default::default())
                .unwrap(),
        );
    }
    let redo = size_of(&home.redolog_dir(), "redo.log") - redo0;
    let wal = size_of(&home.mailbox_db_dir(), "-wal") - wal0;
    let per_message = (redo + wal) / u64::from(MESSAGES);
    assert!(
        per_message < 10 * 1024,
        "redo {} + WAL {} bytes per 10 KB message",
        redo / u64::from(MESSAGES),
        wal / u64::from(MESSAGES)
    );
    for (n, item) in (1..=MESSAGES).zip(&items) {
        let item = store.mailbox(id).item(*item).unwrap().unwrap();
        assert_eq!(
            store.read_blob(id, &item).unwrap(),
            message(n),
            "message {n}"
        );
    }
}
