//! The search index against the real store: the index path gives exactly the scan's
//! answers (fixed and generated queries), follows flag/tag/move/delete changes
//! incrementally, survives damaged segment files by rebuilding, and never stands in
//! the way of delivery.

use mv_home::Home;
use mv_index::{Indexes, TextField};
use mv_redo::ops::{flags, folders};
use mv_store::{DeliverOptions, FlagChange, Store, StoreOptions};
use mv_types::{ItemId, MailboxId};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

const MBOX: MailboxId = MailboxId(7);

const WORDS: &[&str] = &[
    "alpha",
    "budget",
    "Größe",
    "İstanbul",
    "quarterly",
    "report",
    "meeting",
    "zebra42",
    "déjà-vu",
    "naïve",
    "kitchen",
    "server",
    "backup",
    "restore",
    "invoice",
    "ünïcode",
    "lunch",
    "friday",
    "o'clock",
    "x-ray",
    "café",
    "東京",
    "plan",
    "release",
];

/// A small deterministic generator (no external data).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
    fn words(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| self.pick(WORDS))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Message `n`: plain, HTML, or multipart with a named attachment.
fn message(rng: &mut Rng, n: u32) -> Vec<u8> {
    let people = [
        "Alice <alice@example.com>",
        "bob@example.org",
        "Carol Ünver <carol@ex.net>",
        "dave@x.io",
    ];
    let from = rng.pick(&people);
    let to = rng.pick(&people);
    let cc = rng.pick(&people);
    let subject = rng.words(3);
    let body = rng.words(12);
    let head = format!(
        "From: {from}\r\nTo: {to}\r\nCc: {cc}\r\nSubject: {subject} #{n}\r\nMessage-ID: <{n}@gen>\r\n\
         Date: Mon, {day} Nov 2025 10:00:00 +0000\r\nX-Serial: serial{n}\r\nMIME-Version: 1.0\r\n",
        day = 1 + n % 28
    );
    let msg = match n % 3 {
        0 => format!("{head}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"),
        1 => format!(
            "{head}Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>{body}</p><b>bold{n}</b></body></html>\r\n"
        ),
        _ => format!(
            "{head}Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\
             --zz\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"{}-{n}.pdf\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--zz--\r\n",
            rng.pick(WORDS)
        ),
    };
    msg.into_bytes()
}

struct Fixture {
    _dir: tempfile::TempDir,
    home: Home,
    store: Store,
}

fn fixture(messages: u32) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(&dir.path().join("home"));
    let store = Store::open(&home, StoreOptions::for_home(&home)).unwrap().0;
    store
        .create_mailbox(MBOX, "acct-7", "u7@example.com")
        .unwrap();
    let work = store.create_folder_path(MBOX, "/Work", "message").unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for n in 0..messages {
        let opts = DeliverOptions {
            folder_id: if n % 4 == 0 { work } else { folders::INBOX },
            flags: if n % 5 == 0 {
                flags::SEEN | flags::FLAGGED
            } else {
                0
            },
            ..Default::default()
        };
        store
            .deliver(&message(&mut rng, n), &[MBOX], &opts)
            .unwrap();
    }
    Fixture {
        _dir: dir,
        home,
        store,
    }
}

fn ids(items: &[mv_store::Item]) -> Vec<u32> {
    items.iter().map(|i| i.id).collect()
}

fn assert_same(f: &Fixture, idx: &Indexes, query: &str) -> usize {
    let scan = f.store.search(MBOX, query).unwrap();
    let via = idx.search(&f.store, MBOX, query).unwrap();
    assert_eq!(ids(&via), ids(&scan), "query {query:?}");
    scan.len()
}

const QUERIES: &[&str] = &[
    "alpha",
    "lph",
    "GRÖSSE",
    "größe",
    "istanbul",
    "déjà-vu",
    "ja-v",
    "o'clock",
    "content:kitchen",
    "content:bold1",
    "content:\"quarterly report\"",
    "subject:\"report meeting\"",
    "from:alice",
    "from:@example",
    "to:ünver",
    "to:carol",
    "pdf",
    "invoice-1",
    "東京",
    "京",
    "a",
    "-",
    "@",
    "in:Work budget",
    "is:flagged zebra42",
    "is:unread after:2025/11/10 plan",
    "before:2025/11/05 content:lunch",
    "nosuchwordanywhere",
    "serial3",
];

#[test]
fn index_answers_exactly_like_the_scan() {
    let f = fixture(120);
    let idx = Indexes::new(&f.home);
    let change = idx.update(&f.store, MBOX).unwrap();
    let info = f.store.mailbox(MBOX).info().unwrap().unwrap();
    assert_eq!(change, info.applied_change);
    let (docs, _) = idx.mailbox(MBOX).documents(&f.store).unwrap();
    assert_eq!(docs.len(), 120);
    let mut nonempty = 0;
    for q in QUERIES {
        if assert_same(&f, &idx, q) > 0 {
            nonempty += 1;
        }
    }
    // The queries exercise real matches, not only empty answers.
    assert!(nonempty >= 20, "only {nonempty} queries matched anything");
    assert!(f.home.index_dir().join("7").join("meta.json").is_file());
}

#[test]
fn imap_text_keys_are_case_insensitive_substrings() {
    let f = fixture(30);
    let idx = Indexes::new(&f.home);
    let all: Vec<mv_store::Item> = f
        .store
        .mailbox(MBOX)
        .items(None, Some(mv_store::ItemKind::Message))
        .unwrap();
    let check = |field: TextField, needle: &str| {
        let got = idx
            .search_text(&f.store, MBOX, None, field, needle)
            .unwrap();
        let lower = needle.to_lowercase();
        let want: Vec<ItemId> = all
            .iter()
            .filter(|i| {
                let t = f.store.message_text(MBOX, i);
                let has = |s: &str| s.to_lowercase().contains(&lower);
                match field {
                    TextField::Subject => has(&i.subject),
                    TextField::From => has(&i.sender),
                    TextField::To => has(&i.recipients),
                    TextField::Cc => has(&i.cc),
                    TextField::Body => t.body.contains(&lower),
                    TextField::Text => {
                        has(&i.subject)
                            || has(&i.sender)
                            || has(&i.recipients)
                            || has(&i.cc)
                            || t.header.contains(&lower)
                            || t.body.contains(&lower)
                    }
                }
            })
            .map(|i| ItemId(i.id))
            .collect();
        assert_eq!(got, want, "{field:?} {needle:?}");
        got.len()
    };
    assert!(check(TextField::From, "LICE@EXAMPLE") > 0);
    assert!(check(TextField::Body, "UDGE") > 0);
    // A header the envelope does not keep is still found by TEXT.
    assert_eq!(check(TextField::Text, "serial17"), 1);
    assert_eq!(check(TextField::Body, "serial17"), 0);
    assert!(check(TextField::Subject, "#1") > 0);
    assert!(check(TextField::Cc, "ex.net") > 0);
    assert!(check(TextField::To, "example.org") > 0);
    check(TextField::Text, "größe");
    // One-token needles are answered from the term dictionary; a document with a
    // token too long to index (flagged) is still read and found.
    let long = format!("x{}needleinlongtoken{}", "a".repeat(150), "b".repeat(20));
    f.store
        .deliver(
            format!("Subject: long\r\n\r\n{long} tail\r\n").as_bytes(),
            &[MBOX],
            &DeliverOptions::default(),
        )
        .unwrap();
    let all: Vec<mv_store::Item> = f
        .store
        .mailbox(MBOX)
        .items(None, Some(mv_store::ItemKind::Message))
        .unwrap();
    let check = |field: TextField, needle: &str| {
        let got = idx
            .search_text(&f.store, MBOX, None, field, needle)
            .unwrap();
        let lower = needle.to_lowercase();
        let want: Vec<ItemId> = all
            .iter()
            .filter(|i| {
                let t = f.store.message_text(MBOX, i);
                match field {
                    TextField::Body => t.body.contains(&lower),
                    _ => {
                        [&i.subject, &i.sender, &i.recipients, &i.cc]
                            .iter()
                            .any(|s| s.to_lowercase().contains(&lower))
                            || t.header.contains(&lower)
                            || t.body.contains(&lower)
                    }
                }
            })
            .map(|i| ItemId(i.id))
            .collect();
        assert_eq!(got, want, "{field:?} {needle:?}");
        got.len()
    };
    assert_eq!(check(TextField::Body, "NeedleInLong"), 1);
    assert_eq!(check(TextField::Body, "tail"), 1);
    assert!(check(TextField::Body, "udge") > 0);
    assert_eq!(check(TextField::Text, "serial17"), 1);
    assert!(check(TextField::Text, "long") > 0);
    // Restricted to a folder.
    let work = f
        .store
        .mailbox(MBOX)
        .folder_by_path("/Work")
        .unwrap()
        .unwrap()
        .id;
    let in_work = idx
        .search_text(&f.store, MBOX, Some(work), TextField::Text, "example")
        .unwrap();
    assert!(!in_work.is_empty());
    for id in in_work {
        assert_eq!(
            f.store.mailbox(MBOX).item(id).unwrap().unwrap().folder_id,
            work
        );
    }
}

#[test]
fn incremental_updates_follow_flags_tags_moves_and_deletes() {
    let f = fixture(40);
    let idx = Indexes::new(&f.home);
    let m = idx.mailbox(MBOX);
    m.documents(&f.store).unwrap();
    let items = f.store.mailbox(MBOX).messages(folders::INBOX).unwrap();
    let (a, b, c) = (
        ItemId(items[0].id),
        ItemId(items[1].id),
        ItemId(items[2].id),
    );
    f.store
        .set_flags(MBOX, &[a], FlagChange::Add(flags::FLAGGED))
        .unwrap();
    let tag = f.store.create_tag(MBOX, "urgent", 1).unwrap();
    f.store.set_tags(MBOX, &[a], &[tag]).unwrap();
    let work = f
        .store
        .mailbox(MBOX)
        .folder_by_path("/Work")
        .unwrap()
        .unwrap()
        .id;
    f.store.move_items(MBOX, &[b], work).unwrap();
    f.store.delete_items(MBOX, &[c]).unwrap();
    let mut rng = Rng(42);
    let new = f
        .store
        .deliver(&message(&mut rng, 999), &[MBOX], &DeliverOptions::default())
        .unwrap()[0];
    let (docs, change) = m.documents(&f.store).unwrap();
    assert_eq!(
        change,
        f.store
            .mailbox(MBOX)
            .info()
            .unwrap()
            .unwrap()
            .applied_change
    );
    let doc = |id: ItemId| docs.iter().find(|d| d.id == id.0).copied();
    assert_ne!(doc(a).unwrap().flags & flags::FLAGGED, 0);
    assert_eq!(doc(b).unwrap().folder, work);
    assert!(doc(c).is_none(), "deleted message still indexed");
    assert!(doc(new).is_some(), "new message not indexed");
    assert_eq!(docs.len(), 40);
    assert_eq!(m.status().rebuilds, 0, "incremental, not rebuilt");
    for q in [
        "in:Work",
        "is:flagged",
        "tag:urgent",
        "serial999",
        "alpha",
        "in:Work alpha",
    ] {
        assert_same(&f, &idx, q);
    }
}

/// Segment files of the index (not meta.json or lock files).
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            !name.starts_with('.') && name != "meta.json" && name != "managed.json"
        })
        .collect();
    files.sort();
    files
}

#[test]
fn damaged_index_is_detected_and_rebuilt() {
    let f = fixture(40);
    let dir = Indexes::dir(&f.home, MBOX);
    for damage in ["garble", "truncate", "meta"] {
        {
            let idx = Indexes::new(&f.home);
            idx.update(&f.store, MBOX).unwrap();
        }
        let segs = segment_files(&dir);
        assert!(!segs.is_empty());
        for p in &segs {
            let mut bytes = std::fs::read(p).unwrap();
            match damage {
                "garble" => {
                    let mid = bytes.len() / 2;
                    bytes[mid] ^= 0xff;
                }
                "truncate" => bytes.truncate(bytes.len() / 3),
                _ => {}
            }
            std::fs::write(p, bytes).unwrap();
        }
        if damage == "meta" {
            std::fs::write(dir.join("meta.json"), b"{ not json").unwrap();
        }
        // A new process (new Indexes) finds the damage when opening.
        let idx = Indexes::new(&f.home);
        let n = assert_same(&f, &idx, "alpha");
        assert!(n > 0);
        let st = idx.status(&f.store, MBOX).unwrap();
        assert!(st.rebuilds >= 1, "{damage}: not rebuilt: {st:?}");
        assert!(
            st.last_error.is_some(),
            "{damage}: damage not reported: {st:?}"
        );
        let (docs, _) = idx.mailbox(MBOX).documents(&f.store).unwrap();
        assert_eq!(docs.len(), 40, "{damage}");
        assert_same(&f, &idx, "content:kitchen");
    }
}

#[test]
fn delivery_and_search_work_while_the_index_is_broken() {
    let f = fixture(10);
    let idx = Indexes::new(&f.home);
    idx.update(&f.store, MBOX).unwrap();
    // The index directory is replaced by a file: the index can be neither opened
    // nor rebuilt.
    let dir = Indexes::dir(&f.home, MBOX);
    drop(idx);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();
    let idx = Indexes::new(&f.home);
    assert!(idx.update(&f.store, MBOX).is_err());
    let mut rng = Rng(7);
    for n in 0..5 {
        f.store
            .deliver(
                &message(&mut rng, 500 + n),
                &[MBOX],
                &DeliverOptions::default(),
            )
            .unwrap();
    }
    // Search falls back to the scan and stays exact.
    assert_same(&f, &idx, "serial502");
    assert_same(&f, &idx, "alpha");
    idx.update_all(&f.store);
    // Once the obstacle is gone the index is rebuilt on next use.
    std::fs::remove_file(&dir).unwrap();
    idx.update(&f.store, MBOX).unwrap();
    let (docs, _) = idx.mailbox(MBOX).documents(&f.store).unwrap();
    assert_eq!(docs.len(), 15);
}

#[test]
fn rebuild_on_demand_and_after_the_mailbox_went_back() {
    let f = fixture(20);
    let idx = Indexes::new(&f.home);
    idx.update(&f.store, MBOX).unwrap();
    let before = idx.status(&f.store, MBOX).unwrap().rebuilds;
    idx.rebuild(&f.store, MBOX).unwrap();
    let st = idx.status(&f.store, MBOX).unwrap();
    assert_eq!(st.rebuilds, before + 1);
    assert_eq!(st.succeeded, 20);
    assert_eq!(st.remaining, 0);
    assert_eq!(st.state, mv_index::ReindexState::Idle);
    assert_same(&f, &idx, "alpha");
}

/// A window of `text` on char boundaries.
fn window(text: &str, start: usize, len: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return String::new();
    }
    let s = start % chars.len();
    chars[s..(s + len).min(chars.len())].iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any substring of any message's subject, sender or body, as a word, a
    /// `subject:`/`from:` term or a `content:` term: the index path equals the scan.
    #[test]
    fn random_substrings_match_the_scan(pick in 0usize..1000, start in 0usize..400, len in 1usize..14, field in 0u8..4) {
        use std::sync::OnceLock;
        static F: OnceLock<(Fixture, Indexes)> = OnceLock::new();
        let (f, idx) = F.get_or_init(|| {
            let f = fixture(60);
            let idx = Indexes::new(&f.home);
            (f, idx)
        });
        let items = f.store.mailbox(MBOX).items(None, Some(mv_store::ItemKind::Message)).unwrap();
        let item = &items[pick % items.len()];
        let (prefix, text) = match field {
            0 => ("subject:", item.subject.clone()),
            1 => ("from:", item.sender.clone()),
            2 => ("content:", f.store.message_text(MBOX, item).body),
            _ => ("", f.store.message_text(MBOX, item).body),
        };
        let needle: String = window(&text, start, len).replace('"', "");
        prop_assume!(!needle.trim().is_empty());
        let q = format!("{prefix}\"{needle}\"");
        let scan = f.store.search(MBOX, &q);
        prop_assume!(scan.is_ok());
        let scan = scan.unwrap();
        let via = idx.search(&f.store, MBOX, &q).unwrap();
        prop_assert!(scan.iter().any(|i| i.id == item.id), "{} does not find its own message", q);
        prop_assert_eq!(ids(&via), ids(&scan), "query {}", q);
    }
}

/// A shutdown stops the indexer between batches: nothing half-done is
/// committed, the index stays at its last commit, and the next run goes on.
#[test]
fn indexing_stops_between_batches_when_asked() {
    let f = fixture(250);
    let idx = Indexes::new(&f.home);
    let checks = std::sync::atomic::AtomicUsize::new(0);
    // Asked to stop after the first batch of 200.
    let stop = || checks.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= 1;
    let change = idx.mailbox(MBOX).update_until(&f.store, &stop).unwrap();
    assert_eq!(change, 0, "nothing committed");
    assert_eq!(checks.load(std::sync::atomic::Ordering::Relaxed), 2);
    assert_eq!(idx.mailbox(MBOX).disk_change().unwrap_or(0), 0);
    // Stopped before it started: no mailbox is looked at.
    idx.update_all_until(&f.store, &|| true);
    assert_eq!(idx.mailbox(MBOX).disk_change().unwrap_or(0), 0);
    assert_eq!(
        idx.lag(),
        mv_index::IndexLag::default(),
        "not looked at yet"
    );
    // Stopped inside the mailbox: the lag (/metrics) says it is behind.
    let checks = std::sync::atomic::AtomicUsize::new(0);
    idx.update_all_until(&f.store, &|| {
        checks.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= 1
    });
    let lag = idx.lag();
    assert_eq!(lag.mailboxes, 1, "{lag:?}");
    assert!(lag.changes >= 250, "{lag:?}");
    // The next run indexes everything, and the lag is gone.
    idx.update_all(&f.store);
    let (docs, _) = idx.mailbox(MBOX).documents(&f.store).unwrap();
    assert_eq!(docs.len(), 250);
    assert_eq!(idx.lag(), mv_index::IndexLag::default());
}
