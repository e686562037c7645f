//! The first pass of an import: reads and checks a whole archive, changing
//! nothing.

use super::*;
use mv_redo::ops::flags;
use mv_types::Digest;
use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Read};

/// A checked entry path: relative, UTF-8, no `.`/`..`/empty components, no `\` or
/// control characters. `None` for the archive's own root (`./`).
pub(super) fn entry_path(raw: &[u8], is_dir: bool) -> Result<Option<String>, TgzError> {
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
pub(super) fn read_limited(
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
pub(super) fn walk<R: Read>(
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
pub(super) struct Scanned {
    /// The content entry's path.
    pub(super) path: String,
    pub(super) kind: ItemKind,
    pub(super) digest: Digest,
    pub(super) size: u64,
    pub(super) message_id: String,
    pub(super) contact_name: String,
    pub(super) cal_uids: Vec<String>,
    pub(super) meta: Option<ItemMeta>,
}

/// What the first pass learned: the manifest and every item, checked.
pub(super) struct Scan {
    pub(super) manifest: Manifest,
    pub(super) items: Vec<Scanned>,
    pub(super) by_path: HashMap<String, usize>,
}

pub(super) fn split_name(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => path.split_at(i + 1),
        None => ("", path),
    }
}

/// The first pass: reads and checks the whole archive; changes nothing.
pub(super) fn scan<R: Read>(input: R) -> Result<Scan, TgzError> {
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
                s.message_id = crate::mime::extract_envelope(&bytes).message_id;
            }
            ItemKind::Contact => {
                let text =
                    std::str::from_utf8(&bytes).map_err(|_| bad(path, "the vCard is not UTF-8"))?;
                if !text.to_ascii_uppercase().contains("BEGIN:VCARD") {
                    return Err(bad(path, "not a vCard: no BEGIN:VCARD"));
                }
                s.contact_name = crate::pim::vcard_display_name(text);
            }
            ItemKind::Appointment => {
                let text = std::str::from_utf8(&bytes)
                    .map_err(|_| bad(path, "the calendar is not UTF-8"))?;
                let events = crate::pim::split_calendar(text).map_err(|e| bad(path, e))?;
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

pub(super) fn check_manifest(m: &Manifest) -> Result<(), TgzError> {
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
