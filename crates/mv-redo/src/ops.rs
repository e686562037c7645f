//! The operations a redo record carries: every change the store can make.
//!
//! Principle: **log results, not intentions.** Each op holds every id, UID, flag
//! word and byte that applying it produced on the live server, so replay never
//! recomputes anything from today's settings or state and is deterministic.
//!
//! Payloads are CBOR maps (RFC 8949) with small integer keys (the `#[n(..)]`
//! indices below). The indices are the on-disk format: never renumber or reuse one;
//! add new optional fields with new indices, so old readers skip them and new
//! readers see them as absent.

use minicbor::{Decode, Encode};

/// Message flags, as stored in `Item::flags` and logged in flag ops.
pub mod flags {
    pub const SEEN: u32 = 1;
    pub const ANSWERED: u32 = 2;
    pub const FLAGGED: u32 = 4;
    pub const DELETED: u32 = 8;
    pub const DRAFT: u32 = 16;
    /// Every flag bit defined so far; other bits are rejected on input.
    pub const ALL: u32 = SEEN | ANSWERED | FLAGGED | DELETED | DRAFT;
}

/// New content: the bytes of a blob, logged once however many mailboxes refer to
/// it (by digest) in the same or later records. Mailbox id 0, change 0. On disk
/// the bytes are zstd-compressed when that pays ([`crate::content`]); here they
/// are always the blob's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutBlob {
    pub digest: [u8; 32],
    pub data: Vec<u8>,
}

impl<C> Encode<C> for PutBlob {
    fn encode<W: minicbor::encode::Write>(
        &self,
        e: &mut minicbor::Encoder<W>,
        _: &mut C,
    ) -> Result<(), minicbor::encode::Error<W::Error>> {
        crate::content::encode(e, &self.digest, &self.data)
    }
}

impl<'b, C> Decode<'b, C> for PutBlob {
    fn decode(d: &mut minicbor::Decoder<'b>, _: &mut C) -> Result<Self, minicbor::decode::Error> {
        let (digest, data) = crate::content::decode(d)?;
        Ok(PutBlob { digest, data })
    }
}

/// A mailbox came into being for an account, with its system folders.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct CreateMailbox {
    #[n(0)]
    pub account_id: String,
    #[n(1)]
    pub email: String,
    /// UIDVALIDITY given to every system folder.
    #[n(2)]
    pub uid_validity: u32,
}

/// A mailbox's history ends. When an in-place restore replaced it, the record
/// also says by what: the new mailbox and the restore's source (the full backup
/// and how far its records were replayed), so that a later point-in-time restore
/// to a moment after it rebuilds that source and goes on with the new mailbox's
/// records instead of the replaced mailbox's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct DeleteMailbox {
    #[n(0)]
    pub account_id: String,
    /// The mailbox that replaced this one (an in-place restore).
    #[n(1)]
    pub replaced_by: Option<u32>,
    /// The full backup the replacement was restored from.
    #[n(2)]
    pub restored_from: Option<String>,
    /// The mailbox (as its records name it) whose records the restore replayed
    /// last, and the last change of it replayed (the snapshot's when none).
    #[n(3)]
    pub restored_to_mailbox: Option<u32>,
    #[n(4)]
    pub restored_to_change: Option<u64>,
    /// The replacement's change number when it went live.
    #[n(5)]
    pub restored_change: Option<u64>,
    /// The restore left out delete ops (`--skipDeletes`).
    #[n(6)]
    pub skip_deletes: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct RenameMailbox {
    #[n(0)]
    pub new_email: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct CreateFolder {
    #[n(0)]
    pub id: u32,
    #[n(1)]
    pub parent_id: u32,
    #[n(2)]
    pub name: String,
    #[n(3)]
    pub uid_validity: u32,
    /// Default item view ("message", "contact", "appointment"): which items the folder holds.
    #[n(4)]
    pub view: String,
}

/// Rename and/or move a folder (Zimbra's RenameFolder / MoveItem on a folder).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct RenameFolder {
    #[n(0)]
    pub id: u32,
    #[n(1)]
    pub new_name: String,
    #[n(2)]
    pub new_parent_id: u32,
}

/// Delete a folder subtree and everything in it. `folder_ids` and `item_ids` are
/// the exact sets removed on the live server.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct DeleteFolder {
    #[n(0)]
    pub folder_ids: Vec<u32>,
    #[n(1)]
    pub item_ids: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct CreateTag {
    #[n(0)]
    pub id: u32,
    #[n(1)]
    pub name: String,
    #[n(2)]
    pub color: u32,
}

/// Rename a tag.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct RenameTag {
    #[n(0)]
    pub id: u32,
    #[n(1)]
    pub new_name: String,
}

/// Remove a tag, and it from every item carrying it.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct DeleteTag {
    #[n(0)]
    pub id: u32,
}

/// Header fields parsed from a message at delivery. Logged so that replay does not
/// depend on the parser version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct Envelope {
    #[n(0)]
    pub subject: String,
    #[n(1)]
    pub from: String,
    #[n(2)]
    pub to: String,
    #[n(3)]
    pub cc: String,
    #[n(4)]
    pub message_id: String,
    /// The Date header in UTC milliseconds, 0 when missing or unparsable.
    #[n(5)]
    pub date_ms: i64,
}

/// A message stored in a folder (delivery, APPEND, `zmmailbox am`, import, draft).
/// The content is found by digest: in an earlier `PutBlob` or in the blob store.
/// The stored message is `prefix` (the trace header lines delivery adds for this
/// recipient, absent otherwise and in records from before it existed) followed
/// by that content; `size` counts both.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct CreateMessage {
    #[n(0)]
    pub id: u32,
    #[n(1)]
    pub folder_id: u32,
    #[n(2)]
    pub imap_uid: u32,
    #[cbor(n(3), with = "minicbor::bytes")]
    pub digest: [u8; 32],
    #[n(4)]
    pub size: u64,
    /// Received (internal) date, UTC milliseconds.
    #[n(5)]
    pub received_ms: i64,
    #[n(6)]
    pub flags: u32,
    #[n(7)]
    pub tags: Vec<u32>,
    #[n(8)]
    pub envelope: Envelope,
    #[cbor(n(9), with = "minicbor::bytes")]
    pub prefix: Option<Vec<u8>>,
}

/// Flags of items after a flag change (Zimbra's AlterItemTag for flags).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct SetFlags {
    /// (item id, resulting flag word)
    #[n(0)]
    pub items: Vec<(u32, u32)>,
}

/// Tags of items after a tag change (Zimbra's SetItemTags).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct SetTags {
    /// (item id, resulting tag ids)
    #[n(0)]
    pub items: Vec<(u32, Vec<u32>)>,
}

/// Items moved into another folder, each with the IMAP UID it got there.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct MoveItems {
    #[n(0)]
    pub to_folder_id: u32,
    /// (item id, new IMAP UID in the target folder)
    #[n(1)]
    pub items: Vec<(u32, u32)>,
}

/// Items copied into a folder: each copy is a new item sharing the original's blob.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct CopyItems {
    #[n(0)]
    pub to_folder_id: u32,
    /// (source item id, new item id, new IMAP UID)
    #[n(1)]
    pub items: Vec<(u32, u32, u32)>,
}

/// Why items were deleted: all kinds remove the same way; the kind decides whether
/// `zmrestore --skipDeletes` skips the op and how dumps name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
#[cbor(index_only)]
pub enum DeleteKind {
    #[n(0)]
    DeleteItem,
    #[n(1)]
    EmptyFolder,
    #[n(2)]
    PurgeImapDeleted,
    #[n(3)]
    PurgeOldMessages,
}

/// Items (messages, contacts, appointments) removed; each leaves a tombstone.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct DeleteItems {
    #[n(0)]
    pub kind: DeleteKind,
    /// The folder emptied or purged, 0 for a plain DeleteItem.
    #[n(1)]
    pub folder_id: u32,
    #[n(2)]
    pub ids: Vec<u32>,
    /// Messages go to the mailbox's dumpster until this time (ms since the
    /// epoch), recoverable with [`RecoverDeleted`], their contents kept; None
    /// (and records written before the dumpster existed): removed at once.
    #[n(3)]
    pub keep_until_ms: Option<i64>,
}

/// Messages taken back out of the dumpster (`zmmailbox recoverDeleted`): each
/// keeps its item id and comes back into a folder with a new IMAP UID.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct RecoverDeleted {
    /// (item id, folder id, IMAP UID)
    #[n(0)]
    pub items: Vec<(u32, u32, u32)>,
}

/// Dumpster entries whose time ran out (or that were purged by hand): removed
/// for good, their contents queued for deletion.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct PurgeDumpster {
    #[n(0)]
    pub ids: Vec<u32>,
}

/// A contact created or replaced (vCard text as given).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct PutContact {
    #[n(0)]
    pub id: u32,
    #[n(1)]
    pub folder_id: u32,
    #[n(2)]
    pub vcard: String,
    /// Display name (FN), for listings.
    #[n(3)]
    pub name: String,
}

/// An appointment created or replaced, keyed by iCalendar UID. `replaces` is the item
/// id of the older version the import superseded (removed by this op), 0 if none.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct SetCalendarItem {
    #[n(0)]
    pub id: u32,
    #[n(1)]
    pub folder_id: u32,
    #[n(2)]
    pub uid: String,
    #[n(3)]
    pub ics: String,
    #[n(4)]
    pub sequence: i64,
    #[n(5)]
    pub dtstamp_ms: i64,
    #[n(6)]
    pub summary: String,
    #[n(7)]
    pub replaces: u32,
}

/// IMAP SUBSCRIBE / UNSUBSCRIBE of a mailbox name (RFC 3501 §6.3.6): the
/// account's subscription list, which may name mailboxes that do not exist.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct SetSubscription {
    #[n(0)]
    pub name: String,
    #[n(1)]
    pub subscribed: bool,
}

/// One redo operation. The numeric op type (see [`Op::op_type`]) is stored in the
/// record header; the variant's struct is the CBOR payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    PutBlob(PutBlob),
    CreateMailbox(CreateMailbox),
    DeleteMailbox(DeleteMailbox),
    RenameMailbox(RenameMailbox),
    CreateFolder(CreateFolder),
    RenameFolder(RenameFolder),
    DeleteFolder(DeleteFolder),
    CreateTag(CreateTag),
    RenameTag(RenameTag),
    DeleteTag(DeleteTag),
    CreateMessage(CreateMessage),
    SetFlags(SetFlags),
    SetTags(SetTags),
    MoveItems(MoveItems),
    CopyItems(CopyItems),
    DeleteItems(DeleteItems),
    PutContact(PutContact),
    SetCalendarItem(SetCalendarItem),
    SetSubscription(SetSubscription),
    RecoverDeleted(RecoverDeleted),
    PurgeDumpster(PurgeDumpster),
}

/// Errors decoding an op payload.
#[derive(Debug, thiserror::Error)]
pub enum OpDecodeError {
    #[error("unknown op type {0}")]
    UnknownType(u16),
    #[error("malformed {name} payload: {reason}")]
    Payload { name: &'static str, reason: String },
}

macro_rules! op_table {
    ($( $code:literal => $variant:ident ),* $(,)?) => {
        impl Op {
            /// The op type code stored in the record header. Never renumber.
            pub fn op_type(&self) -> u16 {
                match self { $( Op::$variant(_) => $code, )* }
            }

            /// The name of the op's type (`DeleteItems`).
            pub fn type_name(&self) -> &'static str {
                match self { $( Op::$variant(_) => stringify!($variant), )* }
            }

            /// The CBOR payload.
            pub fn encode_payload(&self) -> Vec<u8> {
                // Encoding into a Vec cannot fail.
                match self { $( Op::$variant(p) => minicbor::to_vec(p).expect("encoding to a Vec"), )* }
            }

            /// Decodes a payload for the given op type. Never panics on bad input.
            pub fn decode_payload(op_type: u16, payload: &[u8]) -> Result<Op, OpDecodeError> {
                match op_type {
                    $( $code => minicbor::decode(payload)
                        .map(Op::$variant)
                        .map_err(|e| OpDecodeError::Payload { name: stringify!($variant), reason: e.to_string() }), )*
                    other => Err(OpDecodeError::UnknownType(other)),
                }
            }
        }
    };
}

op_table! {
    1 => PutBlob,
    2 => CreateMailbox,
    3 => DeleteMailbox,
    4 => RenameMailbox,
    5 => CreateFolder,
    6 => RenameFolder,
    7 => DeleteFolder,
    8 => CreateTag,
    9 => RenameTag,
    10 => DeleteTag,
    11 => CreateMessage,
    12 => SetFlags,
    13 => SetTags,
    14 => MoveItems,
    15 => CopyItems,
    16 => DeleteItems,
    17 => PutContact,
    18 => SetCalendarItem,
    19 => SetSubscription,
    20 => RecoverDeleted,
    21 => PurgeDumpster,
}

/// Zimbra's system folder ids.
pub mod folders {
    pub const ROOT: u32 = 1;
    pub const INBOX: u32 = 2;
    pub const TRASH: u32 = 3;
    pub const JUNK: u32 = 4;
    pub const SENT: u32 = 5;
    pub const DRAFTS: u32 = 6;
    pub const CONTACTS: u32 = 7;
    pub const CALENDAR: u32 = 10;
    pub const EMAILED_CONTACTS: u32 = 13;
    pub const TASKS: u32 = 15;
    pub const BRIEFCASE: u32 = 16;
    /// The first id given to a user-created item.
    pub const FIRST_USER_ID: u32 = 256;
    /// (id, name, view) of every system folder under ROOT.
    pub const SYSTEM: &[(u32, &str, &str)] = &[
        (INBOX, "Inbox", "message"),
        (TRASH, "Trash", "message"),
        (JUNK, "Junk", "message"),
        (SENT, "Sent", "message"),
        (DRAFTS, "Drafts", "message"),
        (CONTACTS, "Contacts", "contact"),
        (CALENDAR, "Calendar", "appointment"),
        (EMAILED_CONTACTS, "Emailed Contacts", "contact"),
        (TASKS, "Tasks", "task"),
        (BRIEFCASE, "Briefcase", "document"),
    ];
}

impl Op {
    /// The op's name as dumps print it: delete ops by their kind (`[EmptyFolder]`).
    pub fn name(&self) -> &'static str {
        match self {
            Op::DeleteItems(d) => match d.kind {
                DeleteKind::DeleteItem => "DeleteItem",
                DeleteKind::EmptyFolder => "EmptyFolder",
                DeleteKind::PurgeImapDeleted => "PurgeImapDeleted",
                DeleteKind::PurgeOldMessages => "PurgeOldMessages",
            },
            other => other.type_name(),
        }
    }

    /// True for the delete ops `zmrestore --skipDeletes` leaves out: DeleteItem,
    /// DeleteMailbox, EmptyFolder, PurgeImapDeleted, PurgeOldMessages, a folder
    /// delete, and a move into Trash.
    pub fn is_delete(&self) -> bool {
        match self {
            Op::DeleteItems(_) | Op::DeleteMailbox(_) | Op::DeleteFolder(_) => true,
            Op::MoveItems(m) => m.to_folder_id == folders::TRASH,
            Op::RenameFolder(r) => r.new_parent_id == folders::TRASH,
            _ => false,
        }
    }

    /// Digests of content this op refers to (for replay: content must be found).
    pub fn referenced_digest(&self) -> Option<[u8; 32]> {
        match self {
            Op::CreateMessage(m) => Some(m.digest),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Op> {
        vec![
            Op::PutBlob(PutBlob {
                digest: [7; 32],
                data: b"Subject: x\r\n\r\nhi".to_vec(),
            }),
            Op::CreateMailbox(CreateMailbox {
                account_id: "a-b".into(),
                email: "u@d".into(),
                uid_validity: 9,
            }),
            Op::CreateMessage(CreateMessage {
                id: 256,
                folder_id: 2,
                imap_uid: 1,
                digest: [1; 32],
                size: 17,
                received_ms: 1_290_187_290_852,
                flags: flags::SEEN,
                tags: vec![300],
                envelope: Envelope {
                    subject: "hi".into(),
                    ..Default::default()
                },
                prefix: Some(b"Delivered-To: <u@d>\r\n".to_vec()),
            }),
            Op::DeleteItems(DeleteItems {
                kind: DeleteKind::EmptyFolder,
                folder_id: 3,
                ids: vec![304, 308],
                keep_until_ms: None,
            }),
            Op::DeleteItems(DeleteItems {
                kind: DeleteKind::PurgeImapDeleted,
                folder_id: 2,
                ids: vec![310],
                keep_until_ms: Some(1_800_000_000_000),
            }),
            Op::RecoverDeleted(RecoverDeleted {
                items: vec![(310, 2, 9)],
            }),
            Op::PurgeDumpster(PurgeDumpster { ids: vec![310] }),
            Op::MoveItems(MoveItems {
                to_folder_id: folders::TRASH,
                items: vec![(256, 1)],
            }),
        ]
    }

    #[test]
    fn payloads_round_trip() {
        for op in samples() {
            let bytes = op.encode_payload();
            assert_eq!(Op::decode_payload(op.op_type(), &bytes).unwrap(), op);
        }
    }

    #[test]
    fn bad_payloads_are_errors_not_panics() {
        assert!(matches!(
            Op::decode_payload(999, &[]),
            Err(OpDecodeError::UnknownType(999))
        ));
        for op in samples() {
            let bytes = op.encode_payload();
            for cut in 0..bytes.len() {
                let _ = Op::decode_payload(op.op_type(), &bytes[..cut]);
            }
            assert!(Op::decode_payload(op.op_type(), &bytes[..bytes.len() / 2]).is_err());
        }
    }

    #[test]
    fn delete_classification_matches_skip_deletes() {
        let s = samples();
        assert!(!s[2].is_delete());
        assert_eq!(s[3].name(), "EmptyFolder");
        assert!(s[3].is_delete());
        assert!(s[4].is_delete(), "a move into Trash is a delete op");
    }
}
