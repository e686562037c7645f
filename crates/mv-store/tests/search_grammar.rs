//! `zmmailbox s` queries in Zimbra's grammar on a fixture mailbox: fields with a
//! space after the colon, AND/OR/NOT, parentheses, relative dates, sizes,
//! attachments, cc, under:, is:anywhere; and errors for what does not parse.

use mv_home::Home;
use mv_redo::ops::flags;
use mv_store::{DeliverOptions, Store, StoreError, StoreOptions};
use mv_types::MailboxId;

fn fixture() -> (tempfile::TempDir, Store, MailboxId) {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let store = Store::open(&home, StoreOptions::for_home(&home)).unwrap().0;
    let m = MailboxId(1);
    store.create_mailbox(m, "acct", "alice@d.test").unwrap();
    let inbox = DeliverOptions::default();
    store
        .add_message(
            m,
            b"From: bob@d.test\r\nTo: alice@d.test\r\nCc: carol@d.test\r\nSubject: batch2 report\r\n\r\nnumbers\r\n",
            &DeliverOptions {
                flags: flags::FLAGGED,
                ..inbox.clone()
            },
        )
        .unwrap();
    let sub = store
        .create_folder_path(m, "/Projects/Sub", "message")
        .unwrap();
    let big = format!(
        "From: dave@d.test\r\nTo: alice@d.test\r\nSubject: batch1\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n{}\r\n\
         --b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=plan.pdf\r\n\r\nJVBERi0=\r\n--b--\r\n",
        "x".repeat(20_000)
    );
    store
        .add_message(
            m,
            big.as_bytes(),
            &DeliverOptions {
                folder_id: sub,
                ..inbox.clone()
            },
        )
        .unwrap();
    store
        .add_message(
            m,
            b"From: eve@d.test\r\nTo: alice@d.test\r\nDate: Wed, 1 Jan 2020 10:00:00 +0000\r\nSubject: old news\r\n\r\nold\r\n",
            &DeliverOptions {
                flags: flags::SEEN,
                ..inbox
            },
        )
        .unwrap();
    (dir, store, m)
}

fn subjects(store: &Store, m: MailboxId, q: &str) -> Vec<String> {
    let mut s: Vec<String> = store
        .search(m, q)
        .unwrap_or_else(|e| panic!("{q}: {e}"))
        .into_iter()
        .map(|i| i.subject)
        .collect();
    s.sort();
    s
}

#[test]
fn zimbra_queries_on_a_fixture_mailbox() {
    let (_dir, store, m) = fixture();
    let all = ["batch1", "batch2 report", "old news"];
    for (q, want) in [
        ("Subject: batch2", &["batch2 report"][..]),
        (
            "subject:batch AND after:01/01/2025",
            &["batch1", "batch2 report"],
        ),
        (
            "subject:batch and after:2025/01/01",
            &["batch1", "batch2 report"],
        ),
        ("from:bob OR from:dave", &["batch1", "batch2 report"]),
        (
            "(from:bob OR from:dave) -subject:batch1",
            &["batch2 report"],
        ),
        ("(from:bob OR from:eve) AND NOT is:read", &["batch2 report"]),
        ("NOT is:flagged", &["batch1", "old news"]),
        ("is:unread", &["batch1", "batch2 report"]),
        ("under:Projects", &["batch1"]),
        ("in:Projects", &[]),
        ("in:Projects/Sub", &["batch1"]),
        ("has:attachment", &["batch1"]),
        ("plan.pdf", &["batch1"]),
        ("larger:10kb", &["batch1"]),
        ("smaller:10kb", &["batch2 report", "old news"]),
        ("cc:carol", &["batch2 report"]),
        ("to:carol", &["batch2 report"]),
        ("after:-1day", &["batch1", "batch2 report"]),
        ("after:yesterday", &["batch1", "batch2 report"]),
        ("before:-1day", &["old news"]),
        ("date:today", &["batch1", "batch2 report"]),
        ("date:01/01/2020", &["old news"]),
        ("is:anywhere", &all),
        ("is:anywhere in:inbox", &["batch2 report", "old news"]),
        ("\"and\"", &[]),
    ] {
        assert_eq!(subjects(&store, m, q), want, "{q}");
    }
    for q in [
        "subject:",
        "color:red",
        "(from:bob",
        "from:bob)",
        "from:bob OR",
        "after:someday",
        "in:Nowhere",
    ] {
        let e = store.search(m, q).unwrap_err();
        assert!(
            matches!(e, StoreError::Invalid(_) | StoreError::NotFound(_)),
            "{q}: {e}"
        );
    }
}
