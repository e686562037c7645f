//! Writing a mailbox as a tgz archive, streaming.

use super::*;
use crate::{Folder, Store};
use mv_redo::ops::folders;
use mv_types::{Digest, ItemId, MailboxId, UtcMillis};
use std::collections::{HashMap, HashSet};
use std::io::Write;

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
    let query = query.map(str::trim).filter(|q| !q.is_empty());
    let selected: Option<HashSet<u32>> = match query {
        Some(q) => Some(store.search(mbox, q)?.into_iter().map(|i| i.id).collect()),
        None => None,
    };
    export_from(
        store,
        mbox,
        Selected {
            messages: selected,
            pim: true,
            query,
        },
        &mut |item| store.read_blob(mbox, item),
        out,
    )
}

/// Which items an export holds.
pub struct Selected<'a> {
    /// The messages (by id); None: every message.
    pub messages: Option<HashSet<u32>>,
    /// Whether contacts and appointments go in too.
    pub pim: bool,
    /// The query that chose the messages, recorded in the manifest.
    pub query: Option<&'a str>,
}

/// [`export`] of the chosen items, each message's bytes (stored prefix
/// included) read by `read`: a mailbox rebuilt from a backup has no files for
/// its messages, whose contents come from the backup's pool instead.
pub fn export_from<W: Write>(
    store: &Store,
    mbox: MailboxId,
    selected: Selected<'_>,
    read: &mut dyn FnMut(&crate::Item) -> Result<Vec<u8>, StoreError>,
    out: W,
) -> Result<ExportReport, TgzError> {
    let mailbox = store.mailbox(mbox);
    let info = mailbox
        .info()?
        .filter(|i| !i.deleted)
        .ok_or(StoreError::NoMailbox(mbox))?;
    let Selected {
        messages: selected,
        pim,
        query,
    } = selected;
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
        let Some(kind) = item.kind.entry() else {
            continue;
        };
        if kind == ItemKind::Message && selected.as_ref().is_some_and(|s| !s.contains(&item.id)) {
            continue;
        }
        if kind != ItemKind::Message && !pim {
            continue;
        }
        // Read the content first: an item deleted since the listing is left out.
        let (item, content) = match kind {
            ItemKind::Message => match read(&item) {
                Ok(raw) => (item, raw),
                Err(e) => match mailbox.item(ItemId(item.id))? {
                    None => continue,
                    Some(fresh) if fresh.mod_content != item.mod_content => {
                        let raw = read(&fresh)?;
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
                (crate::pim::vcard_display_name(&text), "contact", now)
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
