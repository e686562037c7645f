//! Random mailbox operations for property tests (behind the `testkit` feature,
//! used only as a dev-dependency): the deliveries and IMAP-style changes that
//! mv-store's replay test and mv-backup's restore-points test both play against
//! a live store, generated with indexes that pick among whatever exists when an
//! op runs (an op that does not fit, a name clash or nothing to pick, is refused
//! by the store and changes nothing).

use crate::{DeliverOptions, FlagChange, Store};
use mv_redo::ops::{flags, folders};
use mv_types::{ItemId, MailboxId};
use proptest::prelude::*;

/// A message of `size` body bytes, told apart by `n`.
pub fn message(n: usize, size: usize) -> Vec<u8> {
    let body: String = (0..size)
        .map(|i| (b'a' + ((i * 7 + n) % 26) as u8) as char)
        .collect();
    format!(
        "From: sender{n}@example.com\r\nTo: u@example.com\r\nSubject: message {n}\r\nMessage-ID: <{n}@x>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// One op; `mbox` is an account index taken modulo the accounts given to
/// [`Kit::run`], `item`/`folder`/`tag` pick among what the mailbox holds.
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

/// How the ops are generated and played.
#[derive(Debug, Clone, Copy)]
pub struct Kit {
    /// An op's account is an index below this.
    pub accounts: usize,
    /// A delivery has 1 to this many recipients (repeats possible).
    pub max_recipients: usize,
    /// Repeated recipients of one delivery get it once.
    pub distinct_recipients: bool,
}

impl Kit {
    pub fn action(&self) -> impl Strategy<Value = Action> + use<> {
        let m = 0..self.accounts;
        prop_oneof![
            4 => (proptest::collection::vec(0..self.accounts, 1..self.max_recipients + 1), 0..3000usize).prop_map(|(to, size)| Action::Deliver { to, size }),
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

    /// Runs op number `n` against the live store, on the accounts `mboxes`;
    /// `prefix` gives a delivery's per-recipient trace header lines, if any.
    pub fn run(
        &self,
        store: &Store,
        mboxes: &[MailboxId],
        a: &Action,
        n: usize,
        prefix: &dyn Fn(usize, MailboxId) -> Option<Vec<u8>>,
    ) {
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
            let all = all.items(None, Some(crate::ItemKind::Message));
            all.unwrap().into_iter().map(|i| i.id).collect()
        };
        let tags = |m: MailboxId| -> Vec<u32> {
            let all = store.mailbox(m).tags().unwrap().into_iter();
            all.map(|t| t.id).collect()
        };
        let _ = match a {
            Action::Deliver { to, size } => {
                let mut rcpts: Vec<(MailboxId, Vec<u8>)> = to
                    .iter()
                    .map(|i| (mb(*i), prefix(n, mb(*i)).unwrap_or_default()))
                    .collect();
                if self.distinct_recipients {
                    rcpts.sort();
                    rcpts.dedup_by_key(|r| r.0);
                }
                store
                    .deliver_with_prefixes(&message(n, *size), &rcpts, &DeliverOptions::default())
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
}

fn pick<T: Copy>(v: &[T], i: usize) -> Option<T> {
    if v.is_empty() {
        None
    } else {
        Some(v[i % v.len()])
    }
}
