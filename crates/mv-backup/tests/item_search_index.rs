//! `backup search` answers the same through a full's search index copy as by
//! reading every message: a message delivered after the index was last updated,
//! one delivered after the full (in an incremental), one deleted after the full;
//! a damaged index copy gives the same hits and says so in the notes.

mod common;

use common::Fx;
use mv_backup::items::{AccountSearch, SearchOptions};
use mv_backup::{RestoreRun, SessionKind};
use mv_types::ItemId;

const USER: &str = "user@d.test";

fn mail(subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: a@d.test\r\nTo: user@d.test\r\nSubject: {subject}\r\n\
         Message-ID: <{}@d.test>\r\n\r\n{body}\r\n",
        subject.replace(' ', ".")
    )
    .into_bytes()
}

fn search(fx: &Fx, q: &str) -> AccountSearch {
    mv_backup::items::search_account(
        &mut RestoreRun::new(),
        &fx.source(),
        fx.target().as_ref(),
        USER,
        q,
        &SearchOptions::default(),
    )
    .unwrap()
}

/// Subject, how many sessions hold it, whether the live mailbox still does.
fn summary(s: &AccountSearch) -> Vec<(String, usize, Option<bool>)> {
    let mut v: Vec<_> = s
        .hits
        .iter()
        .map(|h| (h.subject.clone(), h.labels.len(), h.present))
        .collect();
    v.sort();
    v
}

/// The same history, the full with or without its search index copy. Returns
/// the full's label.
fn history(fx: &Fx, with_index: bool) -> mv_backup::Label {
    let a = fx.account(USER);
    let m = a.mailbox_id;
    fx.deliver(&mail("kept report", "the quarterly ledger"), &[&a]);
    fx.deliver(&mail("lost report", "ledger draft"), &[&a]);
    fx.deliver(&mail("lunch", "nothing to see"), &[&a]);
    mv_index::Indexes::new(fx.store.home())
        .update(&fx.store, m)
        .unwrap();
    // After the index's change number: not in the copy, found all the same.
    fx.deliver(&mail("late report", "ledger too"), &[&a]);
    let mut o = fx.opts(SessionKind::Full);
    o.search_index = with_index;
    let full = fx.backup_with(o).sessions[0].label;
    let lost = fx
        .store
        .mailbox(m)
        .items(None, None)
        .unwrap()
        .into_iter()
        .find(|i| i.subject == "lost report")
        .unwrap();
    fx.store.delete_items(m, &[ItemId(lost.id)]).unwrap();
    fx.deliver(&mail("newer report", "ledger final"), &[&a]);
    fx.backup(SessionKind::Incremental);
    full
}

#[test]
fn index_copy_gives_the_same_hits_as_reading_every_message() {
    let (with, without) = (Fx::new(), Fx::new());
    let full = history(&with, true);
    history(&without, false);

    let expected = vec![
        ("kept report".to_string(), 2, Some(true)),
        ("late report".to_string(), 2, Some(true)),
        ("lost report".to_string(), 1, Some(false)),
        ("newer report".to_string(), 1, Some(true)),
    ];
    for q in ["ledger", "content:ledger", "subject:report ledger"] {
        let s = search(&with, q);
        assert_eq!(summary(&s), expected, "{q} with the index copy");
        assert!(s.notes.is_empty(), "{q}: {:?}", s.notes);
        let s = search(&without, q);
        assert_eq!(summary(&s), expected, "{q} without");
        assert!(
            s.notes.iter().any(|n| n.contains("no search index copy")),
            "{:?}",
            s.notes
        );
    }
    // Only other terms: the index narrows nothing.
    assert_eq!(search(&with, "in:inbox").hits.len(), 5);

    // A damaged copy: the same hits, and a note.
    let id = with.find_account(USER).id;
    let zip = with.file_of(
        &full,
        &format!(
            "{}/index/segments.zip",
            mv_backup::session::account_dir(&id)
        ),
    );
    let mut bytes = std::fs::read(&zip).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&zip, &bytes).unwrap();
    let s = search(&with, "ledger");
    assert_eq!(summary(&s), expected);
    assert!(
        s.notes
            .iter()
            .any(|n| n.contains("search index copy unusable")),
        "{:?}",
        s.notes
    );
}
