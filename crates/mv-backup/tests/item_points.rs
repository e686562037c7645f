//! Item restore by property: a random history of one mailbox (deliveries into
//! random folders, flag changes, moves, deletions, with fulls and incrementals at
//! random places), then `zmrestore --items QUERY -restoreToTime T` for a random
//! query and a random time T after the first full. Compared with a model of the
//! mailbox: the restore gives exactly the messages that matched the query at T
//! and are not in their folder of that time now, each once, byte for byte, with
//! the flags and the folder they had at T; the messages already there are
//! reported as present; a second run restores nothing and changes nothing.
//!
//! Runs through `mv_backup::items::restore_items`, the function the
//! `restore_items` request calls, on a store without a server process.
//!
//! 16 cases by default (10-20 s); `MV_ITEMS_PROPTEST_CASES=200 cargo test -p mv-backup
//! --test item_points` runs a longer soak.

mod common;

use common::Fx;
use mv_backup::items::{ItemRestoreOptions, Selection};
use mv_backup::{RestoreOptions, RestoreRun, SessionKind};
use mv_redo::ops::{flags, folders};
use mv_store::FlagChange;
use mv_types::{ItemId, MailboxId, UtcMillis};
use proptest::prelude::*;
use proptest::sample::Index;
use std::collections::BTreeMap;

/// The mail folders messages go to; all exist for the whole history.
const FOLDERS: [&str; 3] = ["/Inbox", "/A", "/B"];
const WORDS: [&str; 2] = ["alpha", "beta"];

#[derive(Debug, Clone)]
enum Step {
    /// A new message (its number is the step's) with subject word `word`.
    Deliver {
        folder: usize,
        word: usize,
    },
    Flag {
        item: Index,
        bits: u32,
        add: bool,
    },
    Move {
        item: Index,
        folder: usize,
    },
    Delete {
        item: Index,
    },
    Full,
    Incremental,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..FOLDERS.len(), 0..WORDS.len())
            .prop_map(|(folder, word)| Step::Deliver { folder, word }),
        3 => (any::<Index>(), 0u32..32, any::<bool>())
            .prop_map(|(item, bits, add)| Step::Flag { item, bits, add }),
        2 => (any::<Index>(), 0..FOLDERS.len()).prop_map(|(item, folder)| Step::Move { item, folder }),
        2 => any::<Index>().prop_map(|item| Step::Delete { item }),
        1 => Just(Step::Full),
        1 => Just(Step::Incremental),
    ]
}

/// A query and the model's reading of it.
#[derive(Debug, Clone, Copy)]
enum Query {
    All,
    In(usize),
    Subject(usize),
    Flagged,
    Unread,
    InUnread(usize),
    SubjectFlagged(usize),
}

impl Query {
    fn text(&self) -> String {
        match *self {
            Query::All => "is:anywhere".into(),
            Query::In(f) => format!("in:{}", FOLDERS[f]),
            Query::Subject(w) => format!("subject:{}", WORDS[w]),
            Query::Flagged => "is:flagged".into(),
            Query::Unread => "is:unread".into(),
            Query::InUnread(f) => format!("in:{} is:unread", FOLDERS[f]),
            Query::SubjectFlagged(w) => format!("subject:{} is:flagged", WORDS[w]),
        }
    }

    fn matches(&self, m: &Msg) -> bool {
        let flagged = m.flags & flags::FLAGGED != 0;
        let unread = m.flags & flags::SEEN == 0;
        match *self {
            Query::All => true,
            Query::In(f) => m.folder == f,
            Query::Subject(w) => m.word == w,
            Query::Flagged => flagged,
            Query::Unread => unread,
            Query::InUnread(f) => m.folder == f && unread,
            Query::SubjectFlagged(w) => m.word == w && flagged,
        }
    }
}

fn query() -> impl Strategy<Value = Query> {
    prop_oneof![
        Just(Query::All),
        (0..FOLDERS.len()).prop_map(Query::In),
        (0..WORDS.len()).prop_map(Query::Subject),
        Just(Query::Flagged),
        Just(Query::Unread),
        (0..FOLDERS.len()).prop_map(Query::InUnread),
        (0..WORDS.len()).prop_map(Query::SubjectFlagged),
    ]
}

/// One message of the model: what the mailbox says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Msg {
    folder: usize,
    word: usize,
    flags: u32,
}

/// Message number → its state; the live mailbox's messages are the keys.
type Model = BTreeMap<usize, Msg>;

fn raw(n: usize, word: usize) -> Vec<u8> {
    let body: String = (0..200 + (n * 37) % 500)
        .map(|i| (b'a' + ((i * 11 + n) % 26) as u8) as char)
        .collect();
    format!(
        "From: sender{n}@example.com\r\nTo: u@d.test\r\nSubject: note {n} {}\r\n\
         Message-ID: <m{n}@example.com>\r\nDate: Thu, 05 Jun 2014 01:00:23 -0700\r\n\r\n{body}\r\n",
        WORDS[word]
    )
    .into_bytes()
}

/// The message number of a live message, from its Message-ID.
fn number(message_id: &str) -> usize {
    let id = message_id.trim_matches(|c| c == '<' || c == '>');
    id.strip_prefix('m')
        .and_then(|s| s.strip_suffix("@example.com"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a test message: {message_id}"))
}

/// Every live message as (number, folder index, flags), sorted; each checked
/// byte for byte against what was delivered.
fn live(
    fx: &Fx,
    mbox: MailboxId,
    folder_ids: &[u32],
    words: &BTreeMap<usize, usize>,
) -> Vec<(usize, usize, u32)> {
    let m = fx.store.mailbox(mbox);
    let mut out = Vec::new();
    for (f, id) in folder_ids.iter().enumerate() {
        for i in m.messages(*id).unwrap() {
            let n = number(&i.message_id);
            let bytes = fx.store.read_blob(mbox, &i).unwrap();
            assert!(bytes == raw(n, words[&n]), "message {n} is not byte-exact");
            out.push((n, f, i.flags & flags::ALL));
        }
    }
    out.sort();
    out
}

fn run_case(steps: &[Step], full_at: usize, at: Index, q: Query) {
    let fx = Fx::new();
    let account = fx.account("user@d.test");
    let mbox = account.mailbox_id;
    let mut folder_ids = vec![folders::INBOX];
    for name in &FOLDERS[1..] {
        folder_ids.push(
            fx.store
                .create_folder(mbox, folders::ROOT, name.trim_start_matches('/'), "message")
                .unwrap(),
        );
    }
    let mut model: Model = BTreeMap::new();
    let mut ids: BTreeMap<usize, ItemId> = BTreeMap::new();
    let mut words: BTreeMap<usize, usize> = BTreeMap::new();
    // (the time just after a step, the model then); only after the first full.
    let mut times: Vec<(UtcMillis, Model)> = Vec::new();
    let mut full_done = false;
    let mut all: Vec<Step> = steps.to_vec();
    all.insert(full_at.min(all.len()), Step::Full);
    for (n, s) in all.iter().enumerate() {
        let pick = |i: &Index| -> Option<usize> {
            (!model.is_empty()).then(|| *model.keys().nth(i.index(model.len())).unwrap())
        };
        match s {
            Step::Deliver { folder, word } => {
                let opts = mv_store::DeliverOptions {
                    folder_id: folder_ids[*folder],
                    ..Default::default()
                };
                let id = fx.store.deliver(&raw(n, *word), &[mbox], &opts).unwrap()[0];
                ids.insert(n, id);
                words.insert(n, *word);
                model.insert(
                    n,
                    Msg {
                        folder: *folder,
                        word: *word,
                        flags: 0,
                    },
                );
            }
            Step::Flag { item, bits, add } => {
                if let Some(k) = pick(item) {
                    let bits = bits & flags::ALL;
                    let change = if *add {
                        FlagChange::Add(bits)
                    } else {
                        FlagChange::Remove(bits)
                    };
                    fx.store.set_flags(mbox, &[ids[&k]], change).unwrap();
                    let m = model.get_mut(&k).unwrap();
                    if *add {
                        m.flags |= bits;
                    } else {
                        m.flags &= !bits;
                    }
                }
            }
            Step::Move { item, folder } => {
                if let Some(k) = pick(item) {
                    fx.store
                        .move_items(mbox, &[ids[&k]], folder_ids[*folder])
                        .unwrap();
                    model.get_mut(&k).unwrap().folder = *folder;
                }
            }
            Step::Delete { item } => {
                if let Some(k) = pick(item) {
                    fx.store.delete_items(mbox, &[ids[&k]]).unwrap();
                    model.remove(&k);
                }
            }
            Step::Full => {
                fx.backup(SessionKind::Full);
                full_done = true;
            }
            Step::Incremental => {
                if full_done {
                    fx.backup(SessionKind::Incremental);
                }
            }
        }
        // Every record of this step is at or before `t`, every later one after it.
        let t = UtcMillis::now();
        while UtcMillis::now() <= t {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        if full_done {
            times.push((t, model.clone()));
        }
    }
    let (t, at_t) = &times[at.index(times.len())];
    let before = live(&fx, mbox, &folder_ids, &words);

    // What must come back: matched at T, and not in its folder of T now.
    let now_in = |n: usize, f: usize| model.get(&n).is_some_and(|m| m.folder == f);
    let matched: Vec<(usize, &Msg)> = at_t
        .iter()
        .filter(|(_, m)| q.matches(m))
        .map(|(n, m)| (*n, m))
        .collect();
    let mut want_restored: Vec<usize> = matched
        .iter()
        .filter(|(n, m)| !now_in(*n, m.folder))
        .map(|(n, _)| *n)
        .collect();
    want_restored.sort();
    let mut want_present: Vec<usize> = matched
        .iter()
        .filter(|(n, m)| now_in(*n, m.folder))
        .map(|(n, _)| *n)
        .collect();
    want_present.sort();
    let mut want_after = before.clone();
    for (n, m) in &matched {
        if !now_in(*n, m.folder) {
            want_after.push((*n, m.folder, m.flags));
        }
    }
    want_after.sort();

    let opts = ItemRestoreOptions {
        selection: Selection::Query(q.text()),
        point: Some(RestoreOptions {
            to_time: Some(*t),
            ..Default::default()
        }),
        into: None,
        dry_run: false,
    };
    let restore = || {
        let mut run = RestoreRun::new();
        mv_backup::items::restore_items(
            &mut run,
            &fx.source(),
            fx.target().as_ref(),
            "user@d.test",
            &opts,
        )
        .unwrap()
    };
    let numbers = |items: &[mv_backup::items::RestoredItem]| -> Vec<usize> {
        let mut v: Vec<usize> = items
            .iter()
            .map(|i| i.subject.split(' ').nth(1).unwrap().parse().unwrap())
            .collect();
        v.sort();
        v
    };

    let first = restore();
    assert_eq!(
        numbers(&first.restored),
        want_restored,
        "restored by {:?}",
        q.text()
    );
    assert_eq!(
        numbers(&first.already_present),
        want_present,
        "already present for {:?}",
        q.text()
    );
    assert!(
        first.folders_created.is_empty(),
        "every folder exists: {:?}",
        first.folders_created
    );
    for r in &first.restored {
        let n: usize = r.subject.split(' ').nth(1).unwrap().parse().unwrap();
        assert_eq!(r.folder, FOLDERS[at_t[&n].folder]);
        assert_eq!(r.flags & flags::ALL, at_t[&n].flags);
    }
    let after = live(&fx, mbox, &folder_ids, &words);
    assert_eq!(
        after,
        want_after,
        "the live mailbox after restoring {:?}",
        q.text()
    );

    let second = restore();
    assert!(
        second.restored.is_empty(),
        "a second run restored {:?}",
        second.restored
    );
    assert_eq!(numbers(&second.already_present), {
        let mut v: Vec<usize> = matched.iter().map(|(n, _)| *n).collect();
        v.sort();
        v
    });
    assert_eq!(
        live(&fx, mbox, &folder_ids, &words),
        want_after,
        "a second run changed the mailbox"
    );
}

fn cases() -> u32 {
    std::env::var("MV_ITEMS_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 64, ..ProptestConfig::default() })]

    #[test]
    fn items_restore_what_matched_at_the_point(
        steps in proptest::collection::vec(step(), 4..22),
        full_at in 0usize..8,
        at in any::<Index>(),
        q in query(),
    ) {
        run_case(&steps, full_at, at, q);
    }
}
