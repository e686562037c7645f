//! The mailboxes with work pending for a background consumer (the search
//! indexer): every mailbox a record was applied to — live or replayed — since
//! the consumer last took the list. So a server with 10,000 idle accounts does
//! not look at each of them every round, nor at each start.
//!
//! Crash rules: the list lives in memory and is written to
//! `db/mbox/.pending` (temp name, fsync, rename, directory fsync) only at a
//! clean close. Opening the store reads that file and removes it durably
//! before anything can change, so a file seen at open always describes the
//! close just before it. Without one (a crash, a failed write, a home from
//! before the list) the list is "every mailbox" — unless there is no mailbox
//! database at all (a new home): the consumer checks each once (cheaply,
//! without keeping it open), and after that only what changed.

use crate::StoreError;
use mv_types::MailboxId;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// In the mailbox database directory: the pending list a clean close left.
pub const PENDING_FILE: &str = ".pending";

/// The first line of [`PENDING_FILE`].
const HEADER: &str = "mailvault pending-work v1";

/// Larger than any list a home can need (one line per mailbox); a bigger file is
/// not read, and every mailbox is checked instead.
const MAX_FILE: u64 = 64 << 20;

/// What a consumer should look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// Unknown (after a crash): every mailbox.
    All,
    /// These mailboxes (ascending).
    Some(Vec<MailboxId>),
}

#[derive(Default)]
struct State {
    all: bool,
    ids: BTreeSet<MailboxId>,
}

pub(crate) struct PendingWork {
    path: PathBuf,
    state: Mutex<State>,
}

impl PendingWork {
    /// Reads and removes (durably) the list a clean close left in `db_dir`;
    /// without one, the list is [`Pending::All`].
    pub(crate) fn load(db_dir: &Path) -> Result<PendingWork, StoreError> {
        let path = db_dir.join(PENDING_FILE);
        let found = match std::fs::metadata(&path) {
            Ok(md) if md.len() <= MAX_FILE => match std::fs::read_to_string(&path) {
                Ok(text) => parse(&text),
                Err(e) => {
                    tracing::warn!("{}: {e}; every mailbox will be checked", path.display());
                    None
                }
            },
            Ok(_) => {
                tracing::warn!(
                    "{}: too large; every mailbox will be checked",
                    path.display()
                );
                None
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        if path.exists() {
            std::fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
            mv_home::fsync_dir(db_dir).map_err(|e| StoreError::io(db_dir, e))?;
        }
        let state = match found {
            Some(ids) => State { all: false, ids },
            None if !has_mailboxes(db_dir)? => State::default(),
            None => State {
                all: true,
                ids: BTreeSet::new(),
            },
        };
        Ok(PendingWork {
            path,
            state: Mutex::new(state),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A record was applied to `id`.
    pub(crate) fn note(&self, id: MailboxId) {
        let mut st = self.state();
        if !st.all {
            st.ids.insert(id);
        }
    }

    /// Takes the list: the caller now owns that work (and gives back what it
    /// could not finish with [`PendingWork::give_back`]).
    pub(crate) fn take(&self) -> Pending {
        let mut st = self.state();
        if std::mem::take(&mut st.all) {
            st.ids.clear();
            Pending::All
        } else {
            Pending::Some(std::mem::take(&mut st.ids).into_iter().collect())
        }
    }

    /// Work taken but not done (a consumer stopping, a failure to retry).
    pub(crate) fn give_back(&self, pending: Pending) {
        let mut st = self.state();
        match pending {
            Pending::All => {
                st.all = true;
                st.ids.clear();
            }
            Pending::Some(ids) if !st.all => st.ids.extend(ids),
            Pending::Some(_) => {}
        }
    }

    /// At a clean close: writes the list for the next open (nothing when it is
    /// "every mailbox": the next open finds no file and says so again).
    pub(crate) fn save(&self) -> std::io::Result<()> {
        let st = self.state();
        if st.all {
            return Ok(());
        }
        let mut text = String::with_capacity(HEADER.len() + 1 + st.ids.len() * 8);
        text.push_str(HEADER);
        text.push('\n');
        for id in &st.ids {
            text.push_str(&id.0.to_string());
            text.push('\n');
        }
        mv_home::write_atomic(&self.path, text.as_bytes())
    }
}

/// Whether `db_dir` holds any mailbox database (a new home holds none, and
/// then nothing can be pending).
fn has_mailboxes(db_dir: &Path) -> Result<bool, StoreError> {
    let entries = std::fs::read_dir(db_dir).map_err(|e| StoreError::io(db_dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(db_dir, e))?;
        if entry.file_name().to_string_lossy().ends_with(".sqlite") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The ids of a pending file, or `None` (logged) when it is not one.
fn parse(text: &str) -> Option<BTreeSet<MailboxId>> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        tracing::warn!("{PENDING_FILE}: unknown format; every mailbox will be checked");
        return None;
    }
    let mut ids = BTreeSet::new();
    for line in lines {
        match line.parse::<u32>() {
            Ok(id) if id > 0 => {
                ids.insert(MailboxId(id));
            }
            _ => {
                tracing::warn!(
                    "{PENDING_FILE}: {line:?} is not a mailbox id; every mailbox will be checked"
                );
                return None;
            }
        }
    }
    Some(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_close_hands_its_list_to_the_next_open_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = PendingWork::load(dir.path()).unwrap();
        assert_eq!(p.take(), Pending::Some(vec![]), "no mailbox yet");
        std::fs::write(dir.path().join("3.sqlite"), b"").unwrap();
        let p = PendingWork::load(dir.path()).unwrap();
        assert_eq!(p.take(), Pending::All, "no file: unknown");
        assert_eq!(
            p.take(),
            Pending::Some(vec![]),
            "taken: only what changed since"
        );
        p.note(MailboxId(7));
        p.note(MailboxId(3));
        p.note(MailboxId(7));
        p.save().unwrap();
        let p = PendingWork::load(dir.path()).unwrap();
        assert!(!dir.path().join(PENDING_FILE).exists(), "removed at open");
        assert_eq!(p.take(), Pending::Some(vec![MailboxId(3), MailboxId(7)]));
        assert_eq!(p.take(), Pending::Some(vec![]));
        p.give_back(Pending::Some(vec![MailboxId(9)]));
        assert_eq!(p.take(), Pending::Some(vec![MailboxId(9)]));
        // A crash (no save): the next open checks everything.
        let p = PendingWork::load(dir.path()).unwrap();
        assert_eq!(p.take(), Pending::All);
    }

    #[test]
    fn a_damaged_file_means_every_mailbox() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("1.sqlite"), b"").unwrap();
        for text in ["", "mailvault pending-work v1\n12\nx\n", "other\n1\n"] {
            std::fs::write(dir.path().join(PENDING_FILE), text).unwrap();
            let p = PendingWork::load(dir.path()).unwrap();
            assert_eq!(p.take(), Pending::All, "{text:?}");
        }
        std::fs::write(dir.path().join(PENDING_FILE), "mailvault pending-work v1\n").unwrap();
        let p = PendingWork::load(dir.path()).unwrap();
        assert_eq!(p.take(), Pending::Some(vec![]));
    }
}
