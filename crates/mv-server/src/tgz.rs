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

use mv_redo::ops::{flags, folders};
use mv_store::{DeliverOptions, FlagChange, Folder, Store, StoreError};
use mv_types::{Digest, ItemId, MailboxId, UtcMillis};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};

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
const MAX_PATH_BYTES: usize = 4096;
/// Items deleted per operation when a reset empties the mailbox.
const DELETE_CHUNK: usize = 1000;

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
}

fn bad(entry: &str, msg: impl std::fmt::Display) -> TgzError {
    TgzError::Invalid(format!("entry {entry:?}: {msg}"))
}

fn damaged(after: &str, e: io::Error) -> TgzError {
    TgzError::Invalid(format!(
        "the archive is damaged or truncated (at or after entry {after:?}): {e}"
    ))
}

fn write_err(e: io::Error) -> TgzError {
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
pub use mv_store::ItemKind;

/// What the archive format says about the kinds it holds as entries: messages
/// (`.eml`), contacts (`.vcf`), appointments (`.ics`). Folders and tags are in
/// the manifest and have no entry (no extension) of their own.
trait ArchiveKind: Sized {
    fn ext(self) -> &'static str;
    fn from_ext(ext: &str) -> Option<Self>;
    /// Whether a folder of this view can hold the item.
    fn fits(self, view: &str) -> bool;
}

impl ArchiveKind for ItemKind {
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
fn encode_segment(name: &str) -> String {
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
fn folder_dir(path: &str) -> String {
    let mut out = String::new();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        out.push_str(&encode_segment(seg));
        out.push('/');
    }
    out
}

/// `<id>-<readable text>`: the text with unsafe characters replaced, ≤ 60 chars.
fn file_stem(id: u32, text: &str, fallback: &str) -> String {
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
fn valid_name(name: &str) -> bool {
    !name.trim().is_empty()
        && name.len() <= 128
        && !name.contains('/')
        && !name.chars().any(char::is_control)
        && name == name.trim()
}

// ------------------------------------------------------------------- export

/// Counts the bytes written through it.
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn header(kind: tar::EntryType, size: u64, mtime_ms: i64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_mtime((mtime_ms.max(0) / 1000) as u64);
    h
}

fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    data: &[u8],
    mtime_ms: i64,
) -> Result<(), TgzError> {
    let mut h = header(tar::EntryType::Regular, data.len() as u64, mtime_ms);
    tar.append_data(&mut h, path, data).map_err(write_err)
}

fn append_dir<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    mtime_ms: i64,
) -> Result<(), TgzError> {
    let mut h = header(tar::EntryType::Directory, 0, mtime_ms);
    let name = &mut h.as_old_mut().name;
    if path.len() < name.len() {
        // Written as is, to keep the trailing slash tar tools show for directories.
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        tar.append(&h, io::empty()).map_err(write_err)
    } else {
        tar.append_data(&mut h, path, io::empty())
            .map_err(write_err)
    }
}

fn to_json(v: &impl Serialize) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Writes the mailbox as a gzip'd tar to `out`, streaming: one message is held in
/// memory at a time. `query` (the search language of `zmmailbox s`) selects the
/// messages; folders, tags, contacts and appointments are always exported.
pub fn export<W: Write>(
    store: &Store,
    mbox: MailboxId,
    query: Option<&str>,
    out: W,
) -> Result<ExportReport, TgzError> {
    let mailbox = store.mailbox(mbox);
    let info = mailbox
        .info()?
        .filter(|i| !i.deleted)
        .ok_or(StoreError::NoMailbox(mbox))?;
    let query = query.map(str::trim).filter(|q| !q.is_empty());
    let selected: Option<HashSet<u32>> = match query {
        Some(q) => Some(store.search(mbox, q)?.into_iter().map(|i| i.id).collect()),
        None => None,
    };
    let mut all_folders = mailbox.folders()?;
    all_folders.sort_by(|a, b| a.path.cmp(&b.path));
    let tags = mailbox.tags()?;
    let tag_names: HashMap<u32, &str> = tags.iter().map(|t| (t.id, t.name.as_str())).collect();
    let folder_by_id: HashMap<u32, &Folder> = all_folders.iter().map(|f| (f.id, f)).collect();
    let now = UtcMillis::now().0;
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        account: info.email.clone(),
        exported_ms: now,
        query: query.map(str::to_string),
        folders: all_folders
            .iter()
            .filter(|f| f.id != folders::ROOT)
            .map(|f| ManifestFolder {
                path: f.path.clone(),
                view: f.view.clone(),
                id: f.id,
            })
            .collect(),
        tags: tags
            .iter()
            .map(|t| ManifestTag {
                name: t.name.clone(),
                color: t.color,
                id: t.id,
            })
            .collect(),
    };
    let mut report = ExportReport {
        folders: manifest.folders.len() as u64,
        tags: manifest.tags.len() as u64,
        ..Default::default()
    };
    let gz = flate2::write::GzEncoder::new(
        Counting {
            inner: out,
            written: 0,
        },
        flate2::Compression::default(),
    );
    let mut tar = tar::Builder::new(gz);
    append_file(&mut tar, MANIFEST, &to_json(&manifest), now)?;
    for f in &manifest.folders {
        append_dir(&mut tar, &folder_dir(&f.path), now)?;
    }

    let mut items = mailbox.items(None, None)?;
    items.sort_by(|a, b| {
        let pa = folder_by_id.get(&a.folder_id).map(|f| f.path.as_str());
        let pb = folder_by_id.get(&b.folder_id).map(|f| f.path.as_str());
        pa.cmp(&pb).then(a.id.cmp(&b.id))
    });
    for item in items {
        let kind = match item.kind {
            ItemKind::Folder | ItemKind::Tag => continue,
            k => k,
        };
        if kind == ItemKind::Message && selected.as_ref().is_some_and(|s| !s.contains(&item.id)) {
            continue;
        }
        // Read the content first: an item deleted since the listing is left out.
        let (item, content) = match kind {
            ItemKind::Message => match store.read_blob(mbox, &item) {
                Ok(raw) => (item, raw),
                Err(e) => match mailbox.item(ItemId(item.id))? {
                    None => continue,
                    Some(fresh) if fresh.mod_content != item.mod_content => {
                        let raw = store.read_blob(mbox, &fresh)?;
                        (fresh, raw)
                    }
                    Some(_) => return Err(e.into()),
                },
            },
            _ => {
                let text = item.content.clone().unwrap_or_default().into_bytes();
                (item, text)
            }
        };
        let Some(folder) = folder_by_id.get(&item.folder_id) else {
            // Moved into a folder created after the listing: left out like a new item.
            continue;
        };
        let mut meta = ItemMeta {
            kind,
            id: item.id,
            folder: folder.path.clone(),
            flags: item.flags,
            tags: item
                .tags
                .iter()
                .filter_map(|t| tag_names.get(t).map(|n| n.to_string()))
                .collect(),
            received_ms: None,
            date_ms: None,
            imap_uid: None,
            size: None,
            digest: None,
            message_id: None,
            subject: None,
            uid: None,
            sequence: None,
            dtstamp_ms: None,
        };
        let (title, fallback, mtime) = match kind {
            ItemKind::Message => {
                meta.received_ms = Some(item.received_ms);
                meta.date_ms = Some(item.date_ms);
                meta.imap_uid = Some(item.imap_uid);
                meta.size = Some(content.len() as u64);
                meta.digest = Some(Digest::of(&content).to_hex());
                meta.message_id = Some(item.message_id.clone());
                meta.subject = Some(item.subject.clone());
                report.messages += 1;
                (item.subject.clone(), "message", item.received_ms)
            }
            ItemKind::Contact => {
                report.contacts += 1;
                let text = String::from_utf8_lossy(&content);
                (mv_store::pim::vcard_display_name(&text), "contact", now)
            }
            ItemKind::Appointment => {
                meta.uid = item.cal_uid.clone();
                meta.sequence = Some(item.sequence);
                meta.dtstamp_ms = Some(item.dtstamp_ms);
                report.appointments += 1;
                (item.subject.clone(), "appointment", now)
            }
            ItemKind::Folder | ItemKind::Tag => continue,
        };
        let path = format!(
            "{}{}.{}",
            folder_dir(&folder.path),
            file_stem(item.id, &title, fallback),
            kind.ext()
        );
        append_file(&mut tar, &format!("{path}.meta"), &to_json(&meta), mtime)?;
        append_file(&mut tar, &path, &content, mtime)?;
    }
    let gz = tar.into_inner().map_err(write_err)?;
    let mut counting = gz.finish().map_err(write_err)?;
    counting.flush().map_err(write_err)?;
    report.bytes = counting.written;
    Ok(report)
}

// ------------------------------------------------------------------- reading

/// A checked entry path: relative, UTF-8, no `.`/`..`/empty components, no `\` or
/// control characters. `None` for the archive's own root (`./`).
fn entry_path(raw: &[u8], is_dir: bool) -> Result<Option<String>, TgzError> {
    let shown = String::from_utf8_lossy(raw).into_owned();
    let s = std::str::from_utf8(raw).map_err(|_| bad(&shown, "the path is not UTF-8"))?;
    if s.len() > MAX_PATH_BYTES {
        return Err(bad(
            &shown,
            format!("the path is longer than {MAX_PATH_BYTES} bytes"),
        ));
    }
    if s.starts_with('/') {
        return Err(bad(
            &shown,
            "absolute paths are not allowed in a mailbox archive",
        ));
    }
    let mut rest = s;
    while let Some(r) = rest.strip_prefix("./") {
        rest = r;
    }
    if is_dir {
        rest = rest.trim_end_matches('/');
    }
    if is_dir && (rest.is_empty() || rest == ".") {
        return Ok(None);
    }
    if rest.contains('\\') || rest.chars().any(char::is_control) {
        return Err(bad(
            &shown,
            "the path holds a backslash or control characters",
        ));
    }
    if rest
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(bad(
            &shown,
            "unsafe path: `..`, `.` and empty path components are not allowed",
        ));
    }
    Ok(Some(rest.to_string()))
}

/// Reads an entry's content, refusing more than `max` bytes.
fn read_limited(
    r: &mut dyn Read,
    path: &str,
    size: u64,
    max: u64,
    what: &str,
) -> Result<Vec<u8>, TgzError> {
    if size > max {
        return Err(bad(
            path,
            format!("{size} bytes is more than the {max} bytes allowed for {what}"),
        ));
    }
    let mut out = Vec::with_capacity(size as usize);
    r.take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| damaged(path, e))?;
    if out.len() as u64 > max {
        return Err(bad(
            path,
            format!("more than the {max} bytes allowed for {what}"),
        ));
    }
    Ok(out)
}

/// Calls `f(path, is_dir, size, content)` for every file and directory of a tgz,
/// then reads the gzip stream to its end so its checksum is verified.
fn walk<R: Read>(
    input: R,
    mut f: impl FnMut(&str, bool, u64, &mut dyn Read) -> Result<(), TgzError>,
) -> Result<(), TgzError> {
    let mut gz = flate2::read::GzDecoder::new(BufReader::new(input));
    let mut last = String::from("(the start)");
    {
        let mut archive = tar::Archive::new(&mut gz);
        let entries = archive.entries().map_err(|e| damaged(&last, e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| damaged(&last, e))?;
            let ty = entry.header().entry_type();
            if ty.is_pax_global_extensions() {
                continue;
            }
            let raw = entry.path_bytes().into_owned();
            let is_dir = ty.is_dir();
            if !is_dir && !ty.is_file() {
                return Err(bad(
                    &String::from_utf8_lossy(&raw),
                    format!(
                        "unsupported entry type {:?}: a mailbox archive holds only files and directories",
                        ty
                    ),
                ));
            }
            let Some(path) = entry_path(&raw, is_dir)? else {
                continue;
            };
            let size = entry.size();
            f(&path, is_dir, size, &mut entry)?;
            last = path;
        }
    }
    io::copy(&mut gz, &mut io::sink()).map_err(|e| damaged(&last, e))?;
    Ok(())
}

/// One item found by the first pass.
struct Scanned {
    /// The content entry's path.
    path: String,
    kind: ItemKind,
    digest: Digest,
    size: u64,
    message_id: String,
    contact_name: String,
    cal_uids: Vec<String>,
    meta: Option<ItemMeta>,
}

/// What the first pass learned: the manifest and every item, checked.
struct Scan {
    manifest: Manifest,
    items: Vec<Scanned>,
    by_path: HashMap<String, usize>,
}

fn split_name(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => path.split_at(i + 1),
        None => ("", path),
    }
}

/// The first pass: reads and checks the whole archive; changes nothing.
fn scan<R: Read>(input: R) -> Result<Scan, TgzError> {
    let mut manifest: Option<Manifest> = None;
    let mut items: Vec<Scanned> = Vec::new();
    let mut by_path: HashMap<String, usize> = HashMap::new();
    let mut metas: Vec<(String, String, ItemMeta)> = Vec::new(); // (meta path, content path, meta)
    let mut seen: HashSet<String> = HashSet::new();
    walk(input, |path, is_dir, size, r| {
        if is_dir {
            return Ok(());
        }
        if !seen.insert(path.to_string()) {
            return Err(bad(path, "appears twice in the archive"));
        }
        if path == MANIFEST {
            let bytes = read_limited(r, path, size, MAX_MANIFEST_BYTES, "the manifest")?;
            let m: Manifest =
                serde_json::from_slice(&bytes).map_err(|e| bad(path, format!("bad JSON: {e}")))?;
            manifest = Some(m);
            return Ok(());
        }
        if let Some(content) = path.strip_suffix(".meta") {
            let (_, name) = split_name(content);
            let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
            if ItemKind::from_ext(ext).is_none() {
                return Err(bad(
                    path,
                    "a .meta belongs beside a .eml, .vcf or .ics file",
                ));
            }
            let bytes = read_limited(r, path, size, MAX_META_BYTES, "a .meta")?;
            let meta: ItemMeta =
                serde_json::from_slice(&bytes).map_err(|e| bad(path, format!("bad JSON: {e}")))?;
            metas.push((path.to_string(), content.to_string(), meta));
            return Ok(());
        }
        let (_, name) = split_name(path);
        let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        let Some(kind) = ItemKind::from_ext(ext) else {
            return Err(bad(
                path,
                "unknown entry: a mailbox archive holds mailbox.json, folder directories, and .eml, .vcf \
                 and .ics files each with a .meta",
            ));
        };
        let (max, what) = match kind {
            ItemKind::Message => (MAX_MESSAGE_BYTES, "a message"),
            _ => (MAX_TEXT_BYTES, "a vCard or calendar"),
        };
        let bytes = read_limited(r, path, size, max, what)?;
        let mut s = Scanned {
            path: path.to_string(),
            kind,
            digest: Digest::of(&bytes),
            size: bytes.len() as u64,
            message_id: String::new(),
            contact_name: String::new(),
            cal_uids: Vec::new(),
            meta: None,
        };
        match kind {
            ItemKind::Message => {
                s.message_id = mv_store::mime::extract_envelope(&bytes).message_id;
            }
            ItemKind::Contact => {
                let text =
                    std::str::from_utf8(&bytes).map_err(|_| bad(path, "the vCard is not UTF-8"))?;
                if !text.to_ascii_uppercase().contains("BEGIN:VCARD") {
                    return Err(bad(path, "not a vCard: no BEGIN:VCARD"));
                }
                s.contact_name = mv_store::pim::vcard_display_name(text);
            }
            ItemKind::Appointment => {
                let text = std::str::from_utf8(&bytes)
                    .map_err(|_| bad(path, "the calendar is not UTF-8"))?;
                let events = mv_store::pim::split_calendar(text).map_err(|e| bad(path, e))?;
                s.cal_uids = events.into_iter().map(|e| e.uid).collect();
            }
            ItemKind::Folder | ItemKind::Tag => {}
        }
        by_path.insert(path.to_string(), items.len());
        items.push(s);
        Ok(())
    })?;

    let manifest = manifest.ok_or_else(|| {
        TgzError::Invalid(format!(
            "no {MANIFEST}: this is not a mailbox archive made by getRestURL \"//?fmt=tgz\""
        ))
    })?;
    check_manifest(&manifest)?;
    let folder_views: HashMap<&str, &str> = manifest
        .folders
        .iter()
        .map(|f| (f.path.as_str(), f.view.as_str()))
        .collect();
    let tag_names: HashSet<String> = manifest
        .tags
        .iter()
        .map(|t| t.name.to_lowercase())
        .collect();

    for (meta_path, content_path, meta) in metas {
        let Some(&i) = by_path.get(&content_path) else {
            return Err(bad(
                &meta_path,
                format!("its content {content_path:?} is missing"),
            ));
        };
        let item = &mut items[i];
        if meta.kind != item.kind {
            return Err(bad(
                &meta_path,
                format!(
                    "says kind {:?} but sits beside a .{} file",
                    meta.kind.name(),
                    item.kind.ext()
                ),
            ));
        }
        let view = if meta.folder == "/" {
            "unknown"
        } else {
            folder_views
                .get(meta.folder.as_str())
                .copied()
                .ok_or_else(|| {
                    bad(
                        &meta_path,
                        format!("its folder {:?} is not listed in {MANIFEST}", meta.folder),
                    )
                })?
        };
        if !meta.kind.fits(view) {
            return Err(bad(
                &meta_path,
                format!(
                    "a {} cannot go into {} (a {view} folder)",
                    meta.kind.name(),
                    meta.folder
                ),
            ));
        }
        let (dir, _) = split_name(&content_path);
        if dir != folder_dir(&meta.folder) {
            return Err(bad(
                &meta_path,
                format!(
                    "its folder is {:?} but it sits in directory {:?} (expected {:?})",
                    meta.folder,
                    dir,
                    folder_dir(&meta.folder)
                ),
            ));
        }
        if meta.flags & !flags::ALL != 0 {
            return Err(bad(
                &meta_path,
                format!("unknown flag bits {:#x}", meta.flags & !flags::ALL),
            ));
        }
        if let Some(t) = meta
            .tags
            .iter()
            .find(|t| !tag_names.contains(&t.to_lowercase()))
        {
            return Err(bad(
                &meta_path,
                format!("its tag {t:?} is not listed in {MANIFEST}"),
            ));
        }
        match meta.kind {
            ItemKind::Message => {
                if let Some(d) = &meta.digest
                    && !d.eq_ignore_ascii_case(&item.digest.to_hex())
                {
                    return Err(bad(
                        &content_path,
                        "its content does not match the digest in its .meta (the message was altered or damaged)",
                    ));
                }
                if let Some(size) = meta.size
                    && size != item.size
                {
                    return Err(bad(
                        &content_path,
                        format!("is {} bytes but its .meta says {size}", item.size),
                    ));
                }
            }
            ItemKind::Appointment => {
                let Some(uid) = meta.uid.as_deref() else {
                    return Err(bad(&meta_path, "an appointment's .meta needs its \"uid\""));
                };
                if item.cal_uids.len() != 1 || item.cal_uids[0] != uid {
                    return Err(bad(
                        &content_path,
                        format!(
                            "must hold exactly one event, with UID {uid:?} as its .meta says; it holds {:?}",
                            item.cal_uids
                        ),
                    ));
                }
            }
            ItemKind::Contact | ItemKind::Folder | ItemKind::Tag => {}
        }
        item.meta = Some(meta);
    }
    let mut uids = HashSet::new();
    for item in &items {
        let Some(meta) = &item.meta else {
            return Err(bad(
                &item.path,
                format!("has no {}.meta beside it", item.path),
            ));
        };
        if let Some(uid) = &meta.uid
            && meta.kind == ItemKind::Appointment
            && !uids.insert(uid.clone())
        {
            return Err(bad(
                &item.path,
                format!("a second appointment with UID {uid:?}"),
            ));
        }
    }
    Ok(Scan {
        manifest,
        items,
        by_path,
    })
}

fn check_manifest(m: &Manifest) -> Result<(), TgzError> {
    let e = |msg: String| bad(MANIFEST, msg);
    if m.format != FORMAT {
        return Err(e(format!(
            "format {:?} is not {FORMAT:?}: not a mailvault mailbox archive",
            m.format
        )));
    }
    if m.version != VERSION {
        return Err(e(format!(
            "format version {} is not one this mailvault reads (version {VERSION})",
            m.version
        )));
    }
    let mut paths = HashSet::new();
    for f in &m.folders {
        let segs: Vec<&str> = f.path.split('/').collect();
        let ok =
            f.path.starts_with('/') && segs.len() >= 2 && segs[1..].iter().all(|s| valid_name(s));
        if !ok {
            return Err(e(format!(
                "folder path {:?} is invalid: it must be /NAME[/NAME...], names of 1-128 characters \
                 without control characters or surrounding spaces",
                f.path
            )));
        }
        if !matches!(
            f.view.as_str(),
            "message" | "contact" | "appointment" | "task" | "document"
        ) {
            return Err(e(format!(
                "folder {} has unknown view {:?}",
                f.path, f.view
            )));
        }
        if !paths.insert(f.path.to_lowercase()) {
            return Err(e(format!("folder {} is listed twice", f.path)));
        }
    }
    for f in &m.folders {
        if let Some((parent, _)) = f.path.rsplit_once('/')
            && !parent.is_empty()
            && !paths.contains(&parent.to_lowercase())
        {
            return Err(e(format!(
                "folder {} is listed without its parent {parent}",
                f.path
            )));
        }
    }
    let mut names = HashSet::new();
    for t in &m.tags {
        if !valid_name(&t.name) {
            return Err(e(format!("tag name {:?} is invalid", t.name)));
        }
        if !names.insert(t.name.to_lowercase()) {
            return Err(e(format!("tag {} is listed twice", t.name)));
        }
    }
    Ok(())
}

// ------------------------------------------------------------------- import

/// Existing items that archived ones may match, each matched at most once.
#[derive(Default)]
struct Index {
    used: HashSet<u32>,
    /// (folder, key) -> item ids, for two keys tried in order.
    first: HashMap<(u32, String), Vec<u32>>,
    second: HashMap<(u32, String), Vec<u32>>,
}

impl Index {
    fn add(&mut self, id: u32, folder: u32, first: &str, second: &str) {
        if !first.is_empty() {
            self.first
                .entry((folder, first.to_string()))
                .or_default()
                .push(id);
        }
        if !second.is_empty() {
            self.second
                .entry((folder, second.to_string()))
                .or_default()
                .push(id);
        }
    }

    fn take(&mut self, folder: u32, first: &str, second: &str) -> Option<u32> {
        for (map, key) in [(&self.first, first), (&self.second, second)] {
            if key.is_empty() {
                continue;
            }
            if let Some(ids) = map.get(&(folder, key.to_string()))
                && let Some(&id) = ids.iter().find(|id| !self.used.contains(id))
            {
                self.used.insert(id);
                return Some(id);
            }
        }
        None
    }
}

/// Reads a tgz made by [`export`] into a mailbox. See the module documentation for
/// the checks (all done before the mailbox changes) and the `resolve` modes.
pub fn import<R: Read + Seek>(
    store: &Store,
    mbox: MailboxId,
    resolve: Resolve,
    mut input: R,
) -> Result<ImportReport, TgzError> {
    let rewind = |input: &mut R| {
        input.seek(SeekFrom::Start(0)).map_err(|e| TgzError::Io {
            context: "rewinding the archive".into(),
            source: e,
        })
    };
    let mut magic = [0u8; 2];
    let got = input.read(&mut magic).map_err(|e| TgzError::Io {
        context: "reading the archive".into(),
        source: e,
    })?;
    if got < 2 || magic != [0x1f, 0x8b] {
        return Err(TgzError::Invalid(
            "not a gzip file: expected a .tgz made by getRestURL \"//?fmt=tgz\"".into(),
        ));
    }
    rewind(&mut input)?;
    let mailbox = store.mailbox(mbox);
    mailbox
        .info()?
        .filter(|i| !i.deleted)
        .ok_or(StoreError::NoMailbox(mbox))?;

    // Pass 1: check everything; nothing changes.
    let scan = scan(&mut input)?;
    check_against_mailbox(store, mbox, &scan.manifest, resolve)?;

    // Pass 2: change the mailbox.
    let mut report = ImportReport {
        resolve,
        ..Default::default()
    };
    if resolve == Resolve::Reset {
        reset(store, mbox, &mut report)?;
    }
    let folder_ids = ensure_folders(store, mbox, &scan.manifest, &mut report)?;
    let tag_ids = ensure_tags(store, mbox, &scan.manifest, &mut report)?;

    let mut messages = Index::default();
    let mut contacts = Index::default();
    let mut appointments: HashMap<String, u32> = HashMap::new();
    if resolve != Resolve::Reset {
        for item in mailbox.items(None, None)? {
            match item.kind {
                ItemKind::Message => messages.add(
                    item.id,
                    item.folder_id,
                    item.digest.as_deref().unwrap_or(""),
                    &item.message_id,
                ),
                ItemKind::Contact => {
                    let text = item.content.as_deref().unwrap_or("");
                    contacts.add(
                        item.id,
                        item.folder_id,
                        text,
                        &mv_store::pim::vcard_display_name(text).to_lowercase(),
                    );
                }
                ItemKind::Appointment => {
                    if let Some(uid) = &item.cal_uid {
                        appointments.insert(uid.clone(), item.id);
                    }
                }
                _ => {}
            }
        }
    }

    rewind(&mut input)?;
    let mut done = vec![false; scan.items.len()];
    let ctx = Ctx {
        store,
        mbox,
        resolve,
        folder_ids: &folder_ids,
        tag_ids: &tag_ids,
    };
    walk(&mut input, |path, is_dir, size, r| {
        if is_dir {
            return Ok(());
        }
        let Some(&i) = scan.by_path.get(path) else {
            return Ok(());
        };
        let item = &scan.items[i];
        let bytes = read_limited(r, path, size, MAX_MESSAGE_BYTES, "an item")?;
        if Digest::of(&bytes) != item.digest || done[i] {
            return Err(changed(path));
        }
        done[i] = true;
        let meta = item.meta.as_ref().expect("checked by scan");
        match item.kind {
            ItemKind::Message => {
                let found = messages.take(
                    ctx.folder(&meta.folder),
                    &item.digest.to_hex(),
                    &item.message_id,
                );
                ctx.message(meta, &bytes, found, &mut report.messages)
            }
            ItemKind::Contact => {
                let text = String::from_utf8(bytes).map_err(|_| changed(path))?;
                let found = contacts.take(
                    ctx.folder(&meta.folder),
                    &text,
                    &item.contact_name.to_lowercase(),
                );
                ctx.contact(meta, &text, found, &mut report.contacts)
            }
            ItemKind::Appointment => {
                let text = String::from_utf8(bytes).map_err(|_| changed(path))?;
                let uid = meta.uid.as_deref().unwrap_or_default();
                let found = appointments.remove(uid);
                ctx.appointment(meta, &text, found, &mut report.appointments)
            }
            // The scan makes entries of the three kinds above only.
            ItemKind::Folder | ItemKind::Tag => Err(changed(path)),
        }
    })?;
    if let Some(i) = done.iter().position(|d| !d) {
        return Err(changed(&scan.items[i].path));
    }
    Ok(report)
}

fn changed(path: &str) -> TgzError {
    TgzError::Invalid(format!(
        "entry {path:?} changed between the check and the import (was the file modified while it was \
         being imported?); the import stopped part-way"
    ))
}

/// Folders the mailbox keeps must have the views the archive gives them.
fn check_against_mailbox(
    store: &Store,
    mbox: MailboxId,
    manifest: &Manifest,
    resolve: Resolve,
) -> Result<(), TgzError> {
    let existing = store.mailbox(mbox).folders()?;
    for f in &manifest.folders {
        let Some(have) = existing
            .iter()
            .find(|e| e.path.eq_ignore_ascii_case(&f.path))
        else {
            continue;
        };
        if resolve == Resolve::Reset && have.id >= folders::FIRST_USER_ID {
            continue; // deleted by the reset
        }
        if have.view != f.view {
            return Err(TgzError::Invalid(format!(
                "folder {} is a {} folder in the mailbox but a {} folder in the archive; rename one of \
                 them, or import with resolve=reset",
                have.path, have.view, f.view
            )));
        }
    }
    Ok(())
}

/// resolve=reset: removes every item, user folder and tag.
fn reset(store: &Store, mbox: MailboxId, report: &mut ImportReport) -> Result<(), TgzError> {
    let mailbox = store.mailbox(mbox);
    let before = mailbox.items(None, None)?.len() as u64;
    let all = mailbox.folders()?;
    for f in &all {
        if f.id >= folders::FIRST_USER_ID && f.parent_id < folders::FIRST_USER_ID {
            store.delete_folder(mbox, f.id)?;
        }
    }
    report.reset_folders_deleted = all
        .iter()
        .filter(|f| f.id >= folders::FIRST_USER_ID)
        .count() as u64;
    let left: Vec<ItemId> = mailbox
        .items(None, None)?
        .into_iter()
        .map(|i| ItemId(i.id))
        .collect();
    for chunk in left.chunks(DELETE_CHUNK) {
        store.delete_items(mbox, chunk)?;
    }
    report.reset_items_deleted = before;
    for t in mailbox.tags()? {
        store.delete_tag(mbox, t.id)?;
        report.reset_tags_deleted += 1;
    }
    Ok(())
}

/// Creates the archive's folders the mailbox lacks, parents first. Returns the id of
/// every archive folder by lower-cased path (the root as `/`).
fn ensure_folders(
    store: &Store,
    mbox: MailboxId,
    manifest: &Manifest,
    report: &mut ImportReport,
) -> Result<HashMap<String, u32>, TgzError> {
    let mut ids: HashMap<String, u32> = store
        .mailbox(mbox)
        .folders()?
        .into_iter()
        .map(|f| (f.path.to_lowercase(), f.id))
        .collect();
    let mut wanted: Vec<&ManifestFolder> = manifest.folders.iter().collect();
    wanted.sort_by_key(|f| (f.path.matches('/').count(), f.path.to_lowercase()));
    for f in wanted {
        let key = f.path.to_lowercase();
        if ids.contains_key(&key) {
            continue;
        }
        let (parent, name) = f.path.rsplit_once('/').expect("checked: starts with /");
        let parent_id = if parent.is_empty() {
            folders::ROOT
        } else {
            ids[&parent.to_lowercase()]
        };
        let id = store.create_folder(mbox, parent_id, name, &f.view)?;
        ids.insert(key, id);
        report.folders_created += 1;
    }
    Ok(ids)
}

/// Creates the archive's tags the mailbox lacks. Returns tag ids by lower-cased name.
fn ensure_tags(
    store: &Store,
    mbox: MailboxId,
    manifest: &Manifest,
    report: &mut ImportReport,
) -> Result<HashMap<String, u32>, TgzError> {
    let mut ids: HashMap<String, u32> = store
        .mailbox(mbox)
        .tags()?
        .into_iter()
        .map(|t| (t.name.to_lowercase(), t.id))
        .collect();
    for t in &manifest.tags {
        let key = t.name.to_lowercase();
        if let std::collections::hash_map::Entry::Vacant(slot) = ids.entry(key) {
            slot.insert(store.create_tag(mbox, &t.name, t.color)?);
            report.tags_created += 1;
        }
    }
    Ok(ids)
}

/// What the second pass needs to import one item.
struct Ctx<'a> {
    store: &'a Store,
    mbox: MailboxId,
    resolve: Resolve,
    folder_ids: &'a HashMap<String, u32>,
    tag_ids: &'a HashMap<String, u32>,
}

impl Ctx<'_> {
    fn folder(&self, path: &str) -> u32 {
        self.folder_ids
            .get(&path.to_lowercase())
            .copied()
            .unwrap_or(folders::ROOT)
    }

    fn tags(&self, meta: &ItemMeta) -> Vec<u32> {
        let mut ids: Vec<u32> = meta
            .tags
            .iter()
            .filter_map(|t| self.tag_ids.get(&t.to_lowercase()).copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Sets an item's flags and tags to the archive's.
    fn set_flags_tags(&self, id: u32, meta: &ItemMeta, fresh: bool) -> Result<(), TgzError> {
        let tags = self.tags(meta);
        if !fresh || meta.flags != 0 {
            self.store
                .set_flags(self.mbox, &[ItemId(id)], FlagChange::Replace(meta.flags))?;
        }
        if !fresh || !tags.is_empty() {
            self.store.set_tags(self.mbox, &[ItemId(id)], &tags)?;
        }
        Ok(())
    }

    fn message(
        &self,
        meta: &ItemMeta,
        raw: &[u8],
        existing: Option<u32>,
        counts: &mut Counts,
    ) -> Result<(), TgzError> {
        let add = || -> Result<(), TgzError> {
            let options = DeliverOptions {
                folder_id: self.folder(&meta.folder),
                flags: meta.flags,
                tags: self.tags(meta),
                received: meta.received_ms.map(UtcMillis),
            };
            self.store.add_message(self.mbox, raw, &options)?;
            Ok(())
        };
        match (existing, self.resolve) {
            (None, _) => {
                add()?;
                counts.added += 1;
            }
            (Some(_), Resolve::Skip) => counts.skipped += 1,
            (Some(old), Resolve::Modify) => {
                self.set_flags_tags(old, meta, false)?;
                counts.updated += 1;
            }
            (Some(old), Resolve::Replace | Resolve::Reset) => {
                // The new copy first: a failure never loses the old one.
                add()?;
                self.store.delete_items(self.mbox, &[ItemId(old)])?;
                counts.replaced += 1;
            }
        }
        Ok(())
    }

    fn contact(
        &self,
        meta: &ItemMeta,
        vcard: &str,
        existing: Option<u32>,
        counts: &mut Counts,
    ) -> Result<(), TgzError> {
        let folder = self.folder(&meta.folder);
        match (existing, self.resolve) {
            (None, _) => {
                let id = self.store.put_contact(self.mbox, folder, vcard, None)?;
                self.set_flags_tags(id, meta, true)?;
                counts.added += 1;
            }
            (Some(_), Resolve::Skip) => counts.skipped += 1,
            (Some(old), Resolve::Modify) => {
                self.set_flags_tags(old, meta, false)?;
                counts.updated += 1;
            }
            (Some(old), Resolve::Replace | Resolve::Reset) => {
                let id = self
                    .store
                    .put_contact(self.mbox, folder, vcard, Some(old))?;
                self.set_flags_tags(id, meta, false)?;
                counts.replaced += 1;
            }
        }
        Ok(())
    }

    fn appointment(
        &self,
        meta: &ItemMeta,
        ics: &str,
        existing: Option<u32>,
        counts: &mut Counts,
    ) -> Result<(), TgzError> {
        let folder = self.folder(&meta.folder);
        let import = || -> Result<u32, TgzError> {
            let r = self.store.import_calendar(self.mbox, folder, ics)?;
            r.created.first().copied().ok_or_else(|| {
                TgzError::Invalid(format!(
                    "appointment {:?} was not imported (the mailbox kept its own version)",
                    meta.uid.as_deref().unwrap_or_default()
                ))
            })
        };
        match (existing, self.resolve) {
            (None, _) => {
                let id = import()?;
                self.set_flags_tags(id, meta, true)?;
                counts.added += 1;
            }
            (Some(_), Resolve::Skip) => counts.skipped += 1,
            (Some(old), Resolve::Modify) => {
                self.set_flags_tags(old, meta, false)?;
                counts.updated += 1;
            }
            (Some(old), Resolve::Replace | Resolve::Reset) => {
                // The calendar import replaces the stored event in one step when the
                // archive's is as new; an older one replaces it only after a delete.
                let r = self.store.import_calendar(self.mbox, folder, ics)?;
                let id = match r.created.first() {
                    Some(id) => *id,
                    None => {
                        self.store.delete_items(self.mbox, &[ItemId(old)])?;
                        import()?
                    }
                };
                self.set_flags_tags(id, meta, false)?;
                counts.replaced += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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
