//! The mailboxes with work pending for a background consumer (the search
//! indexer): every mailbox a record was applied to — live or replayed — since
//! the consumer last took the list. So a server with 10,000 idle accounts does
//! not look at each of them every round, nor at each start.
//!
//! Crash rules: the list lives in memory and is written to
//! `db/mbox/.pending` (temp name, fsync, rename, directory fsync) by every
//! checkpoint of the store, before the checkpoint is recorded (a clean close
//! ends with one): what is pending then, with what the consumer has taken and
//! not yet given back. So the file holds every mailbox changed up to the
//! recorded checkpoint and not yet done, and crash recovery notes every
//! mailbox of the records after it (applied again or not): together, every
//! mailbox a crash may have left behind, without looking at the others. While
//! the list is "every mailbox" (taken or not), a checkpoint removes the file
//! instead. Without a file (a crash before any checkpoint wrote one, a failed
//! write, a home from before the list) the list is "every mailbox" — unless
//! there is no mailbox database at all (a new home): the consumer checks each
//! once (cheaply, without keeping it open), and after that only what changed.

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
    /// Taken by the consumer and not given back yet: still pending for a
    /// checkpoint (the consumer may not finish it before a crash).
    taken: Option<Taken>,
}

enum Taken {
    All,
    Some(BTreeSet<MailboxId>),
}

pub(crate) struct PendingWork {
    path: PathBuf,
    state: Mutex<State>,
}

impl PendingWork {
    /// Reads the list the last checkpoint left in `db_dir` (kept: it stays
    /// true until the next checkpoint rewrites it); without one, the list is
    /// [`Pending::All`].
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
        let state = match found {
            Some(ids) => State {
                ids,
                ..State::default()
            },
            None if !has_mailboxes(db_dir)? => State::default(),
            None => State {
                all: true,
                ..State::default()
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
            st.taken = Some(Taken::All);
            Pending::All
        } else {
            let ids = std::mem::take(&mut st.ids);
            match &mut st.taken {
                Some(Taken::All) => {}
                Some(Taken::Some(taken)) => taken.extend(ids.iter().copied()),
                None => st.taken = Some(Taken::Some(ids.clone())),
            }
            Pending::Some(ids.into_iter().collect())
        }
    }

    /// Ends the consumer's round: `pending` is the work it took and did not
    /// do (a consumer stopping, a failure to retry), the rest is done.
    pub(crate) fn give_back(&self, pending: Pending) {
        let mut st = self.state();
        st.taken = None;
        match pending {
            Pending::All => {
                st.all = true;
                st.ids.clear();
            }
            Pending::Some(ids) if !st.all => st.ids.extend(ids),
            Pending::Some(_) => {}
        }
    }

    /// At each checkpoint, before it is recorded: writes the list, with what
    /// the consumer holds, for an open after a crash or a clean close; while
    /// the list is "every mailbox", removes the file instead (the next open
    /// finds none and says so again).
    pub(crate) fn save(&self) -> std::io::Result<()> {
        let (all, ids) = {
            let st = self.state();
            let mut ids = st.ids.clone();
            let all = st.all
                || match &st.taken {
                    Some(Taken::All) => true,
                    Some(Taken::Some(taken)) => {
                        ids.extend(taken.iter().copied());
                        false
                    }
                    None => false,
                };
            (all, ids)
        };
        if all {
            return match std::fs::remove_file(&self.path) {
                Ok(()) => match self.path.parent() {
                    Some(dir) => mv_home::fsync_dir(dir),
                    None => Ok(()),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            };
        }
        let mut text = String::with_capacity(HEADER.len() + 1 + ids.len() * 8);
        text.push_str(HEADER);
        text.push('\n');
        for id in &ids {
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
    fn a_checkpoint_keeps_what_the_consumer_took_until_it_gives_it_back() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("1.sqlite"), b"").unwrap();
        let p = PendingWork::load(dir.path()).unwrap();
        // Every mailbox, taken or not: a checkpoint leaves no file.
        std::fs::write(
            dir.path().join(PENDING_FILE),
            "mailvault pending-work v1\n4\n",
        )
        .unwrap();
        let p2 = PendingWork::load(dir.path()).unwrap();
        assert_eq!(p2.take(), Pending::Some(vec![MailboxId(4)]));
        assert_eq!(p.take(), Pending::All);
        p.save().unwrap();
        assert!(!dir.path().join(PENDING_FILE).exists());
        p.give_back(Pending::Some(vec![]));
        // Taken and not given back: still written.
        p.note(MailboxId(5));
        assert_eq!(p.take(), Pending::Some(vec![MailboxId(5)]));
        p.note(MailboxId(6));
        p.save().unwrap();
        assert_eq!(
            PendingWork::load(dir.path()).unwrap().take(),
            Pending::Some(vec![MailboxId(5), MailboxId(6)])
        );
        // Given back done (5) and not done (none): only 6 is left.
        p.give_back(Pending::Some(vec![]));
        p.save().unwrap();
        let again = PendingWork::load(dir.path()).unwrap();
        assert_eq!(again.take(), Pending::Some(vec![MailboxId(6)]));
        // The file stays for the next open until a checkpoint rewrites it.
        assert!(dir.path().join(PENDING_FILE).exists());
    }

    #[test]
    fn a_clean_close_hands_its_list_to_the_next_open() {
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
        // The round over, all done.
        p.give_back(Pending::Some(vec![]));
        p.note(MailboxId(7));
        p.note(MailboxId(3));
        p.note(MailboxId(7));
        p.save().unwrap();
        let p = PendingWork::load(dir.path()).unwrap();
        assert_eq!(p.take(), Pending::Some(vec![MailboxId(3), MailboxId(7)]));
        assert_eq!(p.take(), Pending::Some(vec![]));
        p.give_back(Pending::Some(vec![MailboxId(9)]));
        assert_eq!(p.take(), Pending::Some(vec![MailboxId(9)]));
        // No file (a crash before any checkpoint wrote one): every mailbox.
        std::fs::remove_file(dir.path().join(PENDING_FILE)).unwrap();
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
