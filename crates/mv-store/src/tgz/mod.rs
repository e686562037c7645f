//! Zimbra-style export and import of a whole mailbox as a gzip'd tar
//! (`zmmailbox -z -m USER getRestURL "//?fmt=tgz[&query=...]" > f.tgz` and
//! `zmmailbox -z -m USER postRestURL "//?fmt=tgz&resolve=skip|modify|replace|reset" f.tgz`).
//!
//! # Archive layout (format version 1)
//!
//! A gzip'd tar (GNU headers; long paths use GNU long-name records). Entries, in
//! this order:
//!
//! - `mailbox.json`: the manifest, first. `{"format": "mailvault-mailbox-tgz",
//!   "version": 1, "account": EMAIL, "exported_ms": MS, "query": QUERY|null,
//!   "folders": [{"path": "/Inbox/sub", "view": "message", "id": 257}, ...],
//!   "tags": [{"name": "work", "color": 3, "id": 260}, ...]}`. Folders are every
//!   folder but the root, parents before children; views are `message`, `contact`,
//!   `appointment`, `task` or `document`.
//! - One directory entry per folder, named by its path without the leading slash and
//!   with a trailing one (`Inbox/`, `Inbox/sub/`, `Contacts/`, `Calendar/`). In each
//!   name `%`, `\`, `:`, `*`, `?`, `"`, `<`, `>`, `|` and control characters are
//!   percent-encoded (`%25`, ...), and a name that is `.` or `..` is written `%2E`
//!   / `%2E%2E`, so no folder name can make an unsafe path.
//! - Per item, its metadata then its content, in its folder's directory:
//!   - a message: `DIR/<id>-<subject>.eml` holding the message byte for byte;
//!   - a contact: `DIR/<id>-<name>.vcf` holding the vCard as stored;
//!   - an appointment: `DIR/<id>-<summary>.ics` holding its VCALENDAR as stored;
//!
//!   each with a sidecar `<same name>.meta` (so `257-Hello.eml.meta`), JSON:
//!   `{"kind": "message"|"contact"|"appointment", "id": 257, "folder": "/Inbox/sub",
//!   "flags": 5, "tags": ["work"], ...}`; messages add `received_ms`, `date_ms`,
//!   `imap_uid`, `size`, `digest` (BLAKE3 of the .eml, hex), `message_id`,
//!   `subject`; appointments add `uid`, `sequence`, `dtstamp_ms`. `flags` are the
//!   store's bits: 1 seen, 2 answered, 4 flagged, 8 deleted, 16 draft. The
//!   `<subject>` part of a name is the subject (or name, or summary) with unsafe
//!   characters replaced by `_`, at most 60 characters; it is only for people.
//!
//! # Import
//!
//! Two passes over the archive (so the input must be seekable: a file, or bytes in
//! memory). The first reads and checks everything without touching the mailbox:
//! every path (relative, UTF-8, no `.`/`..`/empty component, no `\` or control
//! characters; a leading `./` is accepted), entry types (files and directories
//! only), sizes ([`MAX_MESSAGE_BYTES`], [`MAX_TEXT_BYTES`], [`MAX_META_BYTES`],
//! [`MAX_MANIFEST_BYTES`]), the manifest, every meta (JSON, kind matching the
//! extension, folder and tags listed in the manifest, folder views fitting the item,
//! the item sitting in its folder's directory, known flag bits), every content
//! (message digest and size as the meta says; vCards and calendars parse;
//! one event per .ics with the meta's UID), a meta for each content and a content
//! for each meta, and the gzip checksum at the end. It also checks that folders the
//! mailbox already has are of the same views. Any problem refuses the whole archive
//! with an error naming the entry, and the mailbox is unchanged.
//!
//! The second pass changes the mailbox: `reset` first empties it (every item, every
//! user folder, every tag); then missing folders (by path, case-insensitive) and tags
//! (by name) are created; then each item is imported according to `resolve`:
//!
//! | resolve | an item that already exists | a new item |
//! | --- | --- | --- |
//! | `skip` (default) | kept as it is | added |
//! | `modify` | its flags and tags set to the archive's | added |
//! | `replace` | replaced by the archive's (flags, tags, dates) | added |
//! | `reset` | (the mailbox was emptied) | added |
//!
//! "Already exists" means: a message in the same folder with the same content
//! (digest), else with the same Message-ID; a contact in the same folder with the
//! same vCard text, else with the same display name; an appointment with the same
//! UID anywhere in the mailbox (UIDs are unique per mailbox). Each existing item
//! matches at most one archived item. Flags, tags and received dates are restored
//! exactly; item ids, IMAP UIDs and change numbers are new.

use crate::StoreError;
use serde::{Deserialize, Serialize};
use std::io;

mod export;
mod import;
mod scan;

pub use export::{Selected, export, export_from};
pub use import::{import, import_stream};

/// The manifest's `format`.
pub const FORMAT: &str = "mailvault-mailbox-tgz";
/// The archive format version this code writes and reads.
pub const VERSION: u32 = 1;
/// The manifest's entry name.
pub const MANIFEST: &str = "mailbox.json";
/// Largest `.eml` accepted on import.
pub const MAX_MESSAGE_BYTES: u64 = 256 << 20;
/// Largest `.vcf` / `.ics` accepted on import.
pub const MAX_TEXT_BYTES: u64 = 16 << 20;
/// Largest `.meta` accepted on import.
pub const MAX_META_BYTES: u64 = 1 << 20;
/// Largest `mailbox.json` accepted on import.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;
/// Longest entry path accepted on import.
pub(super) const MAX_PATH_BYTES: usize = 4096;
/// Items deleted per operation when a reset empties the mailbox.
pub(super) const DELETE_CHUNK: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum TgzError {
    /// The archive (or the request) is unusable; nothing was changed when this
    /// comes from the first pass.
    #[error("invalid mailbox archive: {0}")]
    Invalid(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    /// The archive is larger than the operation allows (nothing was changed).
    #[error("the archive is larger than {max_bytes} bytes, the limit of an import")]
    TooLarge { max_bytes: u64 },
}

pub(super) fn bad(entry: &str, msg: impl std::fmt::Display) -> TgzError {
    TgzError::Invalid(format!("entry {entry:?}: {msg}"))
}

pub(super) fn damaged(after: &str, e: io::Error) -> TgzError {
    TgzError::Invalid(format!(
        "the archive is damaged or truncated (at or after entry {after:?}): {e}"
    ))
}

pub(super) fn write_err(e: io::Error) -> TgzError {
    TgzError::Io {
        context: "writing the archive".into(),
        source: e,
    }
}

/// How an import treats items that already exist (Zimbra's `resolve=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolve {
    #[default]
    Skip,
    Modify,
    Replace,
    Reset,
}

impl std::str::FromStr for Resolve {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "skip" => Ok(Resolve::Skip),
            "modify" => Ok(Resolve::Modify),
            "replace" => Ok(Resolve::Replace),
            "reset" => Ok(Resolve::Reset),
            _ => Err(format!(
                "unknown resolve={s:?}: use skip (keep existing items, the default), modify (update their \
                 flags and tags), replace (replace them) or reset (empty the mailbox first)"
            )),
        }
    }
}

// ------------------------------------------------------------------ documents

/// `mailbox.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub exported_ms: i64,
    #[serde(default)]
    pub query: Option<String>,
    pub folders: Vec<ManifestFolder>,
    pub tags: Vec<ManifestTag>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFolder {
    pub path: String,
    pub view: String,
    #[serde(default)]
    pub id: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestTag {
    pub name: String,
    #[serde(default)]
    pub color: u32,
    #[serde(default)]
    pub id: u32,
}

/// An item's kind: the store's, by the same names in a `.meta`.
pub use crate::ItemKind;

/// What the archive format says about the kinds it holds as entries: messages
/// (`.eml`), contacts (`.vcf`), appointments (`.ics`). Folders and tags are in
/// the manifest and have no entry of their own.
pub(super) trait ArchiveKind: Sized {
    /// The kind as an archive entry; `None` for kinds an archive does not
    /// carry as entries (folders, tags).
    fn entry(self) -> Option<Self>;
    fn ext(self) -> &'static str;
    fn from_ext(ext: &str) -> Option<Self>;
    /// Whether a folder of this view can hold the item.
    fn fits(self, view: &str) -> bool;
}

impl ArchiveKind for ItemKind {
    fn entry(self) -> Option<ItemKind> {
        match self {
            ItemKind::Message | ItemKind::Contact | ItemKind::Appointment => Some(self),
            ItemKind::Folder | ItemKind::Tag => None,
        }
    }
    fn ext(self) -> &'static str {
        match self {
            ItemKind::Message => "eml",
            ItemKind::Contact => "vcf",
            ItemKind::Appointment => "ics",
            ItemKind::Folder | ItemKind::Tag => "",
        }
    }
    fn from_ext(ext: &str) -> Option<ItemKind> {
        match ext {
            "eml" => Some(ItemKind::Message),
            "vcf" => Some(ItemKind::Contact),
            "ics" => Some(ItemKind::Appointment),
            _ => None,
        }
    }
    fn fits(self, view: &str) -> bool {
        match self {
            ItemKind::Message => view == "message" || view == "unknown",
            ItemKind::Contact => view == "contact",
            ItemKind::Appointment => view == "appointment" || view == "task",
            ItemKind::Folder | ItemKind::Tag => false,
        }
    }
}

/// A `.meta` sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemMeta {
    pub kind: ItemKind,
    #[serde(default)]
    pub id: u32,
    pub folder: String,
    #[serde(default)]
    pub flags: u32,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imap_uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtstamp_ms: Option<i64>,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportReport {
    pub folders: u64,
    pub tags: u64,
    pub messages: u64,
    pub contacts: u64,
    pub appointments: u64,
    /// Compressed size of the archive.
    pub bytes: u64,
}

/// What an import did with one kind of item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub added: u64,
    pub replaced: u64,
    /// Existing items whose flags and tags were set (resolve=modify).
    pub updated: u64,
    /// Existing items left alone (resolve=skip).
    pub skipped: u64,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    pub resolve: Resolve,
    /// resolve=reset: what was removed before importing.
    pub reset_items_deleted: u64,
    pub reset_folders_deleted: u64,
    pub reset_tags_deleted: u64,
    pub folders_created: u64,
    pub tags_created: u64,
    pub messages: Counts,
    pub contacts: Counts,
    pub appointments: Counts,
}

// ------------------------------------------------------------------- naming

/// Percent-encodes what must not appear in a path component.
pub(super) fn encode_segment(name: &str) -> String {
    if name == "." || name == ".." {
        return "%2E".repeat(name.len());
    }
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '%' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The archive directory of a folder path: `""` for the root, `Inbox/sub/` below it.
pub(super) fn folder_dir(path: &str) -> String {
    let mut out = String::new();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        out.push_str(&encode_segment(seg));
        out.push('/');
    }
    out
}

/// `<id>-<readable text>`: the text with unsafe characters replaced, ≤ 60 chars.
pub(super) fn file_stem(id: u32, text: &str, fallback: &str) -> String {
    let mut s = String::new();
    for c in text.chars().take(60) {
        let keep = c.is_alphanumeric()
            || matches!(
                c,
                '-' | '_' | '.' | ',' | '+' | '=' | '@' | '(' | ')' | '[' | ']'
            );
        let c = if keep { c } else { '_' };
        if c == '_' && s.ends_with('_') {
            continue;
        }
        s.push(c);
    }
    let s = s.trim_matches(|c| c == '_' || c == '.');
    format!("{id}-{}", if s.is_empty() { fallback } else { s })
}

/// Names of folders and tags, as the store accepts them.
pub(super) fn valid_name(name: &str) -> bool {
    !name.trim().is_empty()
        && name.len() <= 128
        && !name.contains('/')
        && !name.chars().any(char::is_control)
        && name == name.trim()
}

// ------------------------------------------------------------------- export

#[cfg(test)]
mod tests {
    use super::scan::entry_path;
    use super::*;

    #[test]
    fn names_are_safe() {
        assert_eq!(folder_dir("/"), "");
        assert_eq!(folder_dir("/Inbox/sub"), "Inbox/sub/");
        assert_eq!(folder_dir("/../a:b"), "%2E%2E/a%3Ab/");
        assert_eq!(folder_dir("/100%"), "100%25/");
        assert_eq!(
            file_stem(257, "Re: hello / world!", "message"),
            "257-Re_hello_world"
        );
        assert_eq!(file_stem(3, "...", "message"), "3-message");
        assert_eq!(file_stem(3, &"x".repeat(200), "m").len(), 62);
    }

    #[test]
    fn entry_paths() {
        assert_eq!(
            entry_path(b"Inbox/1-a.eml", false).unwrap().as_deref(),
            Some("Inbox/1-a.eml")
        );
        assert_eq!(
            entry_path(b"./Inbox/", true).unwrap().as_deref(),
            Some("Inbox")
        );
        assert_eq!(entry_path(b"./", true).unwrap(), None);
        for evil in [
            &b"../x.eml"[..],
            b"/etc/passwd",
            b"a/../../b",
            b"a//b",
            b"a\\b",
            b"a/./b",
            b"\xff",
        ] {
            assert!(
                entry_path(evil, false).is_err(),
                "{:?}",
                String::from_utf8_lossy(evil)
            );
        }
    }

    #[test]
    fn resolve_names() {
        assert_eq!("REPLACE".parse::<Resolve>(), Ok(Resolve::Replace));
        assert!("merge".parse::<Resolve>().unwrap_err().contains("skip"));
    }
}
