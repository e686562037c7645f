//! The mailbox operations of the restore-points property test: deliveries and
//! IMAP-style changes (the shape of mv-store's tests/replay.rs), generated with
//! indexes that pick among whatever exists when the op runs.

use mv_redo::ops::{flags, folders};
use mv_store::{DeliverOptions, FlagChange, Store};
use mv_types::{ItemId, MailboxId};
use proptest::prelude::*;

fn message(n: usize, size: usize) -> Vec<u8> {
    let body: String = (0..size)
        .map(|i| (b'a' + ((i * 7 + n) % 26) as u8) as char)
        .collect();
    format!(
        "From: sender{n}@example.com\r\nTo: u@example.com\r\nSubject: message {n}\r\nMessage-ID: <{n}@x>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

#[derive(Debug, Clone)]
pub enum Action {
    Deliver {
        to: Vec<usize>,
        size: usize,
    },
    CreateFolder {
        mbox: usize,
        parent: usize,
        name: u8,
    },
    RenameFolder {
        mbox: usize,
        folder: usize,
        name: u8,
    },
    DeleteFolder {
        mbox: usize,
        folder: usize,
    },
    CreateTag {
        mbox: usize,
        name: u8,
    },
    DeleteTag {
        mbox: usize,
        tag: usize,
    },
    Flag {
        mbox: usize,
        item: usize,
        bits: u32,
        add: bool,
    },
    Tag {
        mbox: usize,
        item: usize,
        tag: usize,
    },
    Move {
        mbox: usize,
        item: usize,
        folder: usize,
    },
    Copy {
        mbox: usize,
        item: usize,
        folder: usize,
    },
    Delete {
        mbox: usize,
        item: usize,
    },
    Empty {
        mbox: usize,
        folder: usize,
    },
    Expunge {
        mbox: usize,
        folder: usize,
    },
    Contact {
        mbox: usize,
        n: u8,
    },
    Calendar {
        mbox: usize,
        uid: u8,
        seq: u8,
    },
}

/// An op's account is an index below this, taken modulo the live accounts.
pub const ACCOUNTS: usize = 4;

pub fn action() -> impl Strategy<Value = Action> {
    let m = 0..ACCOUNTS;
    prop_oneof![
        4 => (proptest::collection::vec(0..ACCOUNTS, 1..3), 0..3000usize).prop_map(|(to, size)| Action::Deliver { to, size }),
        1 => (m.clone(), any::<usize>(), any::<u8>()).prop_map(|(mbox, parent, name)| Action::CreateFolder { mbox, parent, name }),
        1 => (m.clone(), any::<usize>(), any::<u8>()).prop_map(|(mbox, folder, name)| Action::RenameFolder { mbox, folder, name }),
        1 => (m.clone(), any::<usize>()).prop_map(|(mbox, folder)| Action::DeleteFolder { mbox, folder }),
        1 => (m.clone(), any::<u8>()).prop_map(|(mbox, name)| Action::CreateTag { mbox, name }),
        1 => (m.clone(), any::<usize>()).prop_map(|(mbox, tag)| Action::DeleteTag { mbox, tag }),
        2 => (m.clone(), any::<usize>(), 1..32u32, any::<bool>()).prop_map(|(mbox, item, bits, add)| Action::Flag { mbox, item, bits, add }),
        1 => (m.clone(), any::<usize>(), any::<usize>()).prop_map(|(mbox, item, tag)| Action::Tag { mbox, item, tag }),
        2 => (m.clone(), any::<usize>(), any::<usize>()).prop_map(|(mbox, item, folder)| Action::Move { mbox, item, folder }),
        1 => (m.clone(), any::<usize>(), any::<usize>()).prop_map(|(mbox, item, folder)| Action::Copy { mbox, item, folder }),
        1 => (m.clone(), any::<usize>()).prop_map(|(mbox, item)| Action::Delete { mbox, item }),
        1 => (m.clone(), any::<usize>()).prop_map(|(mbox, folder)| Action::Empty { mbox, folder }),
        1 => (m.clone(), any::<usize>()).prop_map(|(mbox, folder)| Action::Expunge { mbox, folder }),
        1 => (m.clone(), any::<u8>()).prop_map(|(mbox, n)| Action::Contact { mbox, n }),
        1 => (m, 0..4u8, 0..3u8).prop_map(|(mbox, uid, seq)| Action::Calendar { mbox, uid, seq }),
    ]
}

fn pick<T: Copy>(v: &[T], i: usize) -> Option<T> {
    if v.is_empty() {
        None
    } else {
        Some(v[i % v.len()])
    }
}

/// Runs an action against the live store. Actions that do not fit the current
/// state (a name clash, nothing to pick) are refused by the store and change nothing.
pub fn run(store: &Store, mboxes: &[MailboxId], a: &Action, n: usize) {
    let mb = |i: usize| mboxes[i % mboxes.len()];
    let mail_folders = |m: MailboxId| -> Vec<u32> {
        let all = store.mailbox(m).folders().unwrap().into_iter();
        all.filter(|f| f.view == "message").map(|f| f.id).collect()
    };
    let user_folders = |m: MailboxId| -> Vec<u32> {
        let all = store.mailbox(m).folders().unwrap().into_iter();
        all.filter(|f| f.id >= 256).map(|f| f.id).collect()
    };
    let messages = |m: MailboxId| -> Vec<u32> {
        let all = store.mailbox(m);
        let all = all.items(None, Some(mv_store::ItemKind::Message));
        all.unwrap().into_iter().map(|i| i.id).collect()
    };
    let tags = |m: MailboxId| -> Vec<u32> {
        let all = store.mailbox(m).tags().unwrap().into_iter();
        all.map(|t| t.id).collect()
    };
    let _ = match a {
        Action::Deliver { to, size } => {
            let mut rcpts: Vec<MailboxId> = to.iter().map(|i| mb(*i)).collect();
            rcpts.sort();
            rcpts.dedup();
            store
                .deliver(&message(n, *size), &rcpts, &DeliverOptions::default())
                .map(|_| ())
        }
        Action::CreateFolder { mbox, parent, name } => {
            let m = mb(*mbox);
            let parent = pick(&mail_folders(m), *parent).unwrap_or(folders::ROOT);
            store
                .create_folder(m, parent, &format!("f{}", name % 8), "message")
                .map(|_| ())
        }
        Action::RenameFolder { mbox, folder, name } => {
            let m = mb(*mbox);
            match pick(&user_folders(m), *folder) {
                Some(f) => store.rename_folder(m, f, &format!("r{}", name % 8), folders::ROOT),
                None => Ok(()),
            }
        }
        Action::DeleteFolder { mbox, folder } => {
            let m = mb(*mbox);
            match pick(&user_folders(m), *folder) {
                Some(f) => store.delete_folder(m, f),
                None => Ok(()),
            }
        }
        Action::CreateTag { mbox, name } => store
            .create_tag(mb(*mbox), &format!("t{}", name % 6), 1)
            .map(|_| ()),
        Action::DeleteTag { mbox, tag } => match pick(&tags(mb(*mbox)), *tag) {
            Some(t) => store.delete_tag(mb(*mbox), t),
            None => Ok(()),
        },
        Action::Flag {
            mbox,
            item,
            bits,
            add,
        } => match pick(&messages(mb(*mbox)), *item) {
            Some(i) => {
                let change = if *add {
                    FlagChange::Add(*bits & flags::ALL)
                } else {
                    FlagChange::Remove(*bits & flags::ALL)
                };
                store.set_flags(mb(*mbox), &[ItemId(i)], change)
            }
            None => Ok(()),
        },
        Action::Tag { mbox, item, tag } => {
            let m = mb(*mbox);
            match (pick(&messages(m), *item), pick(&tags(m), *tag)) {
                (Some(i), Some(t)) => store.set_tags(m, &[ItemId(i)], &[t]),
                _ => Ok(()),
            }
        }
        Action::Move { mbox, item, folder } => {
            let m = mb(*mbox);
            match (pick(&messages(m), *item), pick(&mail_folders(m), *folder)) {
                (Some(i), Some(f)) => store.move_items(m, &[ItemId(i)], f).map(|_| ()),
                _ => Ok(()),
            }
        }
        Action::Copy { mbox, item, folder } => {
            let m = mb(*mbox);
            match (pick(&messages(m), *item), pick(&mail_folders(m), *folder)) {
                (Some(i), Some(f)) => store.copy_items(m, &[ItemId(i)], f).map(|_| ()),
                _ => Ok(()),
            }
        }
        Action::Delete { mbox, item } => match pick(&messages(mb(*mbox)), *item) {
            Some(i) => store.delete_items(mb(*mbox), &[ItemId(i)]),
            None => Ok(()),
        },
        Action::Empty { mbox, folder } => {
            let m = mb(*mbox);
            match pick(&mail_folders(m), *folder) {
                Some(f) => store.empty_folder(m, f).map(|_| ()),
                None => Ok(()),
            }
        }
        Action::Expunge { mbox, folder } => {
            let m = mb(*mbox);
            match pick(&mail_folders(m), *folder) {
                Some(f) => store.purge_imap_deleted(m, f, None).map(|_| ()),
                None => Ok(()),
            }
        }
        Action::Contact { mbox, n } => {
            let vcard = format!("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Person {n}\r\nEND:VCARD\r\n");
            store
                .put_contact(mb(*mbox), folders::CONTACTS, &vcard, None)
                .map(|_| ())
        }
        Action::Calendar { mbox, uid, seq } => {
            let ics = format!(
                "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:ev-{uid}\r\nSEQUENCE:{seq}\r\n\
                 DTSTAMP:20240101T000000Z\r\nSUMMARY:Event {uid}.{seq}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
            );
            store
                .import_calendar(mb(*mbox), folders::CALENDAR, &ics)
                .map(|_| ())
        }
    };
}
