//! Maildir output (Maildir++ folders): `/Inbox` is the top directory, any
//! other folder `/A/B` the directory `.A.B` (in a name, `%`, `.` and `/` are
//! written `%25`, `%2E`, `%2F`), each with `cur`, `new` and `tmp`. A message is
//! written into `tmp`, fsynced and renamed into `cur` as
//! `<arrival secs>.I<item id>_<n>.mailvault:2,<flags>` (flags D draft, F
//! flagged, R answered, S seen, T deleted, in that order), its modification time
//! its arrival time; files 0600, directories 0700 whatever the umask. The whole
//! tree is made under a temporary name beside the output and renamed into place
//! when complete.

use super::{Exported, Item, Result, temp_beside};
use crate::error::BackupError;
use mv_redo::ops::flags;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub(super) fn write(
    output: &Path,
    list: &[Exported<'_>],
    read: &mut dyn FnMut(&Item) -> Result<Vec<u8>>,
) -> Result<()> {
    let tmp_root = temp_beside(output);
    let r = fill(&tmp_root, list, read).and_then(|()| {
        mv_home::durable::rename_durable(&tmp_root, output)
            .map_err(BackupError::io(output.display()))
    });
    if r.is_err() {
        let _ = std::fs::remove_dir_all(&tmp_root);
    }
    r
}

fn fill(
    root: &Path,
    list: &[Exported<'_>],
    read: &mut dyn FnMut(&Item) -> Result<Vec<u8>>,
) -> Result<()> {
    mkdir(root)?;
    make_maildir(root)?;
    let mut made: HashMap<&str, PathBuf> = HashMap::new();
    for (n, e) in list.iter().enumerate() {
        let dir = match made.get(e.folder) {
            Some(d) => d.clone(),
            None => {
                let d = root.join(folder_dir(e.folder));
                if d != root {
                    mkdir(&d)?;
                    make_maildir(&d)?;
                }
                made.insert(e.folder, d.clone());
                d
            }
        };
        let raw = read(e.item)?;
        let name = format!(
            "{}.I{}_{n}.mailvault",
            e.item.received_ms.max(0) / 1000,
            e.item.id
        );
        let tmp = dir.join("tmp").join(&name);
        let done = dir
            .join("cur")
            .join(format!("{name}:2,{}", info_flags(e.item.flags)));
        write_message(&tmp, &raw, e.item.received_ms)?;
        std::fs::rename(&tmp, &done).map_err(BackupError::io(done.display()))?;
    }
    // One fsync per directory that gained entries (the renames into `cur`).
    let mut dirs: Vec<&PathBuf> = made.values().collect();
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        mv_home::durable::fsync_dir(&d.join("cur")).map_err(BackupError::io(d.display()))?;
    }
    mv_home::durable::fsync_dir(root).map_err(BackupError::io(root.display()))
}

fn mkdir(dir: &Path) -> Result<()> {
    mv_home::durable::create_dir_private(dir).map_err(BackupError::io(dir.display()))
}

fn make_maildir(dir: &Path) -> Result<()> {
    for sub in ["cur", "new", "tmp"] {
        mkdir(&dir.join(sub))?;
    }
    mv_home::durable::fsync_dir(dir).map_err(BackupError::io(dir.display()))
}

fn write_message(path: &Path, raw: &[u8], received_ms: i64) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = BackupError::io(path.display());
    let r = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mv_home::durable::FILE_MODE)
            .open(path)?;
        f.write_all(raw)?;
        let when =
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(received_ms.max(0) as u64);
        f.set_modified(when)?;
        f.sync_all()
    })();
    r.map_err(err)
}

/// The Maildir++ directory of a folder path (`/Inbox`: the top one).
pub(super) fn folder_dir(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() || (parts.len() == 1 && parts[0].eq_ignore_ascii_case("inbox")) {
        return String::new();
    }
    let mut out = String::new();
    for p in parts {
        out.push('.');
        for c in p.chars() {
            match c {
                '%' => out.push_str("%25"),
                '.' => out.push_str("%2E"),
                '/' => out.push_str("%2F"),
                c => out.push(c),
            }
        }
    }
    out
}

/// The info part's flags, in ASCII order as the Maildir convention asks.
pub(super) fn info_flags(f: u32) -> String {
    [
        (flags::DRAFT, 'D'),
        (flags::FLAGGED, 'F'),
        (flags::ANSWERED, 'R'),
        (flags::SEEN, 'S'),
        (flags::DELETED, 'T'),
    ]
    .iter()
    .filter(|(bit, _)| f & bit != 0)
    .map(|(_, c)| *c)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_map_to_maildirplusplus_names() {
        assert_eq!(folder_dir("/Inbox"), "");
        assert_eq!(folder_dir("/Inbox/sub"), ".Inbox.sub");
        assert_eq!(folder_dir("/Sent"), ".Sent");
        assert_eq!(folder_dir("/a.b/100%"), ".a%2Eb.100%25");
    }

    #[test]
    fn flags_are_letters_in_ascii_order() {
        assert_eq!(info_flags(0), "");
        assert_eq!(
            info_flags(flags::SEEN | flags::FLAGGED | flags::DRAFT),
            "DFS"
        );
        assert_eq!(info_flags(flags::ANSWERED | flags::DELETED), "RT");
    }
}
