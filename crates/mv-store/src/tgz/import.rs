//! The second pass of an import: changes the mailbox as the checked archive
//! says.

use super::scan::{read_limited, scan, walk};
use super::*;
use crate::{DeliverOptions, FlagChange, Store};
use mv_redo::ops::folders;
use mv_types::{Digest, ItemId, MailboxId, UtcMillis};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};

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

/// Imports an archive that can be read only once (a request body, a pipe): it is
/// copied to an unnamed temporary file under the home's `db/` (mode 0600, gone
/// when closed, even after a crash), refusing more than `max_bytes`, then
/// imported from there like [`import`]. Memory stays bounded by the largest
/// entry whatever the archive's size.
pub fn import_stream<R: Read>(
    store: &Store,
    mbox: MailboxId,
    resolve: Resolve,
    input: R,
    max_bytes: u64,
) -> Result<ImportReport, TgzError> {
    let dir = store.home().db_dir();
    let io_err = |context: &str| {
        let context = context.to_string();
        move |source| TgzError::Io { context, source }
    };
    let mut spool =
        tempfile::tempfile_in(&dir).map_err(io_err("creating the archive's spool file"))?;
    let copied = std::io::copy(&mut input.take(max_bytes.saturating_add(1)), &mut spool)
        .map_err(io_err("receiving the archive"))?;
    if copied > max_bytes {
        return Err(TgzError::TooLarge { max_bytes });
    }
    spool
        .seek(SeekFrom::Start(0))
        .map_err(io_err("rewinding the archive's spool file"))?;
    import(store, mbox, resolve, spool)
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
            match item.kind.entry() {
                Some(ItemKind::Message) => messages.add(
                    item.id,
                    item.folder_id,
                    item.digest.as_deref().unwrap_or(""),
                    &item.message_id,
                ),
                Some(ItemKind::Contact) => {
                    let text = item.content.as_deref().unwrap_or("");
                    contacts.add(
                        item.id,
                        item.folder_id,
                        text,
                        &crate::pim::vcard_display_name(text).to_lowercase(),
                    );
                }
                Some(ItemKind::Appointment) => {
                    if let Some(uid) = &item.cal_uid {
                        appointments.insert(uid.clone(), item.id);
                    }
                }
                Some(ItemKind::Folder | ItemKind::Tag) | None => {}
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
