//! Shared test fixtures: one op of every type, a proptest strategy over all ops, and
//! small helpers around a log in a temporary directory.

use std::path::{Path, PathBuf};

use mv_types::{ChangeNumber, Digest, Lsn, MailboxId, TxnId, UtcMillis};
use proptest::prelude::*;

use crate::ops::*;
use crate::{Located, NewRecord, RedoConfig, RedoLog, list_archive, read_files};

pub const T0: i64 = 1_290_187_290_852;

pub fn blob(data: &[u8]) -> Op {
    Op::PutBlob(PutBlob {
        digest: Digest::of(data).0,
        data: data.to_vec(),
    })
}

pub fn folder(name: &str) -> Op {
    Op::CreateFolder(CreateFolder {
        id: 300,
        parent_id: folders::ROOT,
        name: name.into(),
        uid_validity: 7,
        view: "message".into(),
    })
}

/// One op of each of the 18 types.
pub fn sample_ops() -> Vec<Op> {
    let body = b"Subject: hi\r\nFrom: a@b\r\n\r\nhello\r\n".to_vec();
    let digest = Digest::of(&body).0;
    vec![
        Op::PutBlob(PutBlob {
            digest,
            data: body.clone(),
        }),
        Op::CreateMailbox(CreateMailbox {
            account_id: "5b2d-acct".into(),
            email: "user1@example.com".into(),
            uid_validity: 9,
        }),
        Op::DeleteMailbox(DeleteMailbox {
            account_id: "5b2d-acct".into(),
            ..Default::default()
        }),
        Op::RenameMailbox(RenameMailbox {
            new_email: "user2@example.com".into(),
        }),
        folder("Projects"),
        Op::RenameFolder(RenameFolder {
            id: 300,
            new_name: "Old projects".into(),
            new_parent_id: folders::INBOX,
        }),
        Op::DeleteFolder(DeleteFolder {
            folder_ids: vec![300, 301],
            item_ids: vec![400],
        }),
        Op::CreateTag(CreateTag {
            id: 64,
            name: "urgent".into(),
            color: 3,
        }),
        Op::RenameTag(RenameTag {
            id: 64,
            new_name: "later".into(),
        }),
        Op::DeleteTag(DeleteTag { id: 64 }),
        Op::CreateMessage(CreateMessage {
            id: 256,
            folder_id: folders::INBOX,
            imap_uid: 1,
            digest,
            size: (b"Return-Path: <a@b>\r\n".len() + body.len()) as u64,
            received_ms: T0,
            flags: flags::SEEN | flags::FLAGGED,
            tags: vec![64],
            envelope: Envelope {
                subject: "hi".into(),
                from: "a@b".into(),
                ..Default::default()
            },
            prefix: Some(b"Return-Path: <a@b>\r\n".to_vec()),
        }),
        Op::SetFlags(SetFlags {
            items: vec![(256, flags::SEEN), (257, 0)],
        }),
        Op::SetTags(SetTags {
            items: vec![(256, vec![64, 65]), (257, vec![])],
        }),
        Op::MoveItems(MoveItems {
            to_folder_id: folders::TRASH,
            items: vec![(256, 7)],
        }),
        Op::CopyItems(CopyItems {
            to_folder_id: folders::SENT,
            items: vec![(256, 258, 3)],
        }),
        Op::DeleteItems(DeleteItems {
            kind: DeleteKind::DeleteItem,
            folder_id: 0,
            ids: vec![304, 308],
            keep_until_ms: None,
        }),
        Op::PutContact(PutContact {
            id: 500,
            folder_id: folders::CONTACTS,
            vcard: "BEGIN:VCARD\r\nFN:Ann\r\nEND:VCARD\r\n".into(),
            name: "Ann".into(),
        }),
        Op::SetCalendarItem(SetCalendarItem {
            id: 600,
            folder_id: folders::CALENDAR,
            uid: "uid-1@x".into(),
            ics: "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".into(),
            sequence: 2,
            dtstamp_ms: T0,
            summary: "Lunch".into(),
            replaces: 0,
        }),
    ]
}

pub fn rec(mailbox: u32, change: u64, op: Op) -> NewRecord {
    NewRecord {
        txn: TxnId(2544),
        timestamp: UtcMillis(T0),
        mailbox: MailboxId(mailbox),
        change: ChangeNumber(change),
        op,
    }
}

pub fn cfg(dir: &Path) -> RedoConfig {
    RedoConfig::for_dir(&dir.join("redolog"))
}

/// Appends and waits for durability; returns the LSNs.
pub fn put(log: &RedoLog, recs: Vec<NewRecord>) -> Vec<Lsn> {
    let t = log.append(recs).unwrap();
    log.wait_durable(&t).unwrap();
    let r = t.lsns();
    (r.start().0..=r.end().0).map(Lsn).collect()
}

/// Every archived log, then redo.log.
pub fn all_files(cfg: &RedoConfig) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = list_archive(&cfg.archive_dir)
        .unwrap()
        .into_iter()
        .map(|a| a.path)
        .collect();
    if cfg.log_path.exists() {
        paths.push(cfg.log_path.clone());
    }
    paths
}

/// Every record of every file, panicking on any error.
pub fn read_everything(cfg: &RedoConfig) -> Vec<Located> {
    read_files(&all_files(cfg))
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// Bytes of a given size, cheap to make (no proptest shrinking over megabytes).
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn s() -> impl Strategy<Value = String> {
    // Any Unicode, including controls and quotes: dumps must escape them.
    proptest::string::string_regex("(?s).{0,24}").unwrap()
}

fn ids() -> impl Strategy<Value = Vec<u32>> {
    proptest::collection::vec(any::<u32>(), 0..12)
}

fn digest() -> impl Strategy<Value = [u8; 32]> {
    any::<[u8; 32]>()
}

/// Any op, PutBlob sometimes with a large blob (up to 2 MiB).
pub fn arb_op() -> impl Strategy<Value = Op> {
    let data = prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..64),
        1 => (any::<u64>(), 0usize..2 << 20).prop_map(|(seed, len)| pattern(seed, len)),
    ];
    let envelope = (s(), s(), s(), s(), s(), any::<i64>()).prop_map(
        |(subject, from, to, cc, message_id, date_ms)| Envelope {
            subject,
            from,
            to,
            cc,
            message_id,
            date_ms,
        },
    );
    let kind = prop_oneof![
        Just(DeleteKind::DeleteItem),
        Just(DeleteKind::EmptyFolder),
        Just(DeleteKind::PurgeImapDeleted),
        Just(DeleteKind::PurgeOldMessages),
    ];
    prop_oneof![
        (digest(), data).prop_map(|(digest, data)| Op::PutBlob(PutBlob { digest, data })),
        (s(), s(), any::<u32>()).prop_map(|(account_id, email, uid_validity)| {
            Op::CreateMailbox(CreateMailbox {
                account_id,
                email,
                uid_validity,
            })
        }),
        (
            s(),
            proptest::option::of((any::<u32>(), s(), any::<u32>(), any::<u64>(), any::<u64>())),
            proptest::option::of(any::<bool>()),
        )
            .prop_map(|(account_id, by, skip_deletes)| {
                Op::DeleteMailbox(DeleteMailbox {
                    account_id,
                    replaced_by: by.as_ref().map(|b| b.0),
                    restored_from: by.as_ref().map(|b| b.1.clone()),
                    restored_to_mailbox: by.as_ref().map(|b| b.2),
                    restored_to_change: by.as_ref().map(|b| b.3),
                    restored_change: by.as_ref().map(|b| b.4),
                    skip_deletes,
                })
            }),
        s().prop_map(|new_email| Op::RenameMailbox(RenameMailbox { new_email })),
        (any::<u32>(), any::<u32>(), s(), any::<u32>(), s()).prop_map(
            |(id, parent_id, name, uid_validity, view)| Op::CreateFolder(CreateFolder {
                id,
                parent_id,
                name,
                uid_validity,
                view
            })
        ),
        (any::<u32>(), s(), any::<u32>()).prop_map(|(id, new_name, new_parent_id)| {
            Op::RenameFolder(RenameFolder {
                id,
                new_name,
                new_parent_id,
            })
        }),
        (ids(), ids()).prop_map(|(folder_ids, item_ids)| Op::DeleteFolder(DeleteFolder {
            folder_ids,
            item_ids
        })),
        (any::<u32>(), s(), any::<u32>()).prop_map(|(id, name, color)| Op::CreateTag(CreateTag {
            id,
            name,
            color
        })),
        (any::<u32>(), s()).prop_map(|(id, new_name)| Op::RenameTag(RenameTag { id, new_name })),
        any::<u32>().prop_map(|id| Op::DeleteTag(DeleteTag { id })),
        (
            (any::<u32>(), any::<u32>(), any::<u32>(), digest()),
            (any::<u64>(), any::<i64>(), any::<u32>(), ids(), envelope),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64))
        )
            .prop_map(
                |(
                    (id, folder_id, imap_uid, digest),
                    (size, received_ms, flags, tags, envelope),
                    prefix,
                )| {
                    Op::CreateMessage(CreateMessage {
                        id,
                        folder_id,
                        imap_uid,
                        digest,
                        size,
                        received_ms,
                        flags,
                        tags,
                        envelope,
                        prefix,
                    })
                }
            ),
        proptest::collection::vec(any::<(u32, u32)>(), 0..8)
            .prop_map(|items| Op::SetFlags(SetFlags { items })),
        proptest::collection::vec((any::<u32>(), ids()), 0..8)
            .prop_map(|items| Op::SetTags(SetTags { items })),
        (
            any::<u32>(),
            proptest::collection::vec(any::<(u32, u32)>(), 0..8)
        )
            .prop_map(|(to_folder_id, items)| Op::MoveItems(MoveItems {
                to_folder_id,
                items
            })),
        (
            any::<u32>(),
            proptest::collection::vec(any::<(u32, u32, u32)>(), 0..8)
        )
            .prop_map(|(to_folder_id, items)| Op::CopyItems(CopyItems {
                to_folder_id,
                items
            })),
        (kind, any::<u32>(), ids(), any::<Option<i64>>()).prop_map(
            |(kind, folder_id, ids, keep_until_ms)| {
                Op::DeleteItems(DeleteItems {
                    kind,
                    folder_id,
                    ids,
                    keep_until_ms,
                })
            }
        ),
        (any::<u32>(), any::<u32>(), s(), s()).prop_map(|(id, folder_id, vcard, name)| {
            Op::PutContact(PutContact {
                id,
                folder_id,
                vcard,
                name,
            })
        }),
        (
            (any::<u32>(), any::<u32>(), s(), s()),
            (any::<i64>(), any::<i64>(), s(), any::<u32>())
        )
            .prop_map(
                |((id, folder_id, uid, ics), (sequence, dtstamp_ms, summary, replaces))| {
                    Op::SetCalendarItem(SetCalendarItem {
                        id,
                        folder_id,
                        uid,
                        ics,
                        sequence,
                        dtstamp_ms,
                        summary,
                        replaces,
                    })
                }
            ),
        (s(), any::<bool>()).prop_map(|(name, subscribed)| Op::SetSubscription(SetSubscription {
            name,
            subscribed
        })),
        prop::collection::vec((any::<u32>(), any::<u32>(), any::<u32>()), 0..4)
            .prop_map(|items| Op::RecoverDeleted(RecoverDeleted { items })),
        ids().prop_map(|ids| Op::PurgeDumpster(PurgeDumpster { ids })),
    ]
}
