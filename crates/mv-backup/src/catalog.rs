//! What a target holds: its sessions (committed, running, or damaged), read from
//! `sessions/*/session.xml` and `tmp/*`.

use crate::error::{BackupError, Result};
use crate::label::{Label, SessionKind};
use crate::session::{AccountState, Session, SessionAccount};
use crate::target::Target;

/// The state of one entry of a target.
#[derive(Debug, Clone)]
pub enum EntryState {
    Valid(Box<Session>),
    /// Being written by the operation holding the target's lock.
    InProgress,
    /// `sessions/<label>` without a readable session.xml: "missing, incomplete, or
    /// invalid".
    Invalid(String),
    /// `tmp/<label>` left by an interrupted backup (shown as "missing, incomplete,
    /// or invalid"; the next operation removes it).
    Leftover(String),
}

/// A session (or what is left of one).
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    pub name: String,
    pub label: Label,
    pub state: EntryState,
}

impl CatalogEntry {
    pub fn session(&self) -> Option<&Session> {
        match &self.state {
            EntryState::Valid(s) => Some(s),
            _ => None,
        }
    }
}

/// Every session of a target, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub entries: Vec<CatalogEntry>,
}

impl Catalog {
    pub fn load(target: &dyn Target) -> Result<Catalog> {
        let mut entries = Vec::new();
        for name in target.session_names()? {
            let Some(label) = Label::parse(&name) else {
                continue; // TO_DELETE-*, stray directories
            };
            let path = format!("sessions/{name}/session.xml");
            let state = match target.get(&path) {
                Ok(bytes) => match Session::parse(&format!("{}/{path}", target.url()), &bytes) {
                    Ok(s) if s.label == label => EntryState::Valid(Box::new(s)),
                    Ok(s) => EntryState::Invalid(format!(
                        "{path} describes {} instead of {name}",
                        s.label
                    )),
                    Err(e) => EntryState::Invalid(e.to_string()),
                },
                Err(BackupError::NotFound(_)) => EntryState::Invalid(format!("{path} is missing")),
                Err(e) => EntryState::Invalid(e.to_string()),
            };
            entries.push(CatalogEntry { name, label, state });
        }
        let pending = target.pending_sessions()?;
        if !pending.is_empty() {
            let holder = target.lock_holder()?.unwrap_or_default();
            for name in pending {
                let Some(label) = Label::parse(&name) else {
                    continue;
                };
                let state = if holder
                    .split_whitespace()
                    .any(|w| w.trim_matches(',') == name)
                {
                    EntryState::InProgress
                } else {
                    EntryState::Leftover(format!(
                        "tmp/{name} was left by an interrupted backup (the next backup removes it)"
                    ))
                };
                entries.push(CatalogEntry { name, label, state });
            }
        }
        entries.sort_by_key(|e| e.label);
        Ok(Catalog { entries })
    }

    /// Records a session this process just committed (a catalog kept for a run
    /// stays what loading the target again would give).
    pub(crate) fn add_committed(&mut self, session: Session) {
        let entry = CatalogEntry {
            name: session.label.to_string(),
            label: session.label,
            state: EntryState::Valid(Box::new(session)),
        };
        let at = self.entries.partition_point(|e| e.label < entry.label);
        if self.entries.get(at).is_some_and(|e| e.label == entry.label) {
            self.entries[at] = entry;
        } else {
            self.entries.insert(at, entry);
        }
    }

    /// Valid sessions, oldest first.
    pub fn sessions(&self) -> impl DoubleEndedIterator<Item = &Session> {
        self.entries.iter().filter_map(|e| e.session())
    }

    pub fn get(&self, label: &Label) -> Option<&CatalogEntry> {
        self.entries.iter().find(|e| &e.label == label)
    }

    /// The newest full session in which the account completed, with its entry.
    pub fn latest_full(&self, zimbra_id: &str) -> Option<(&Session, &SessionAccount)> {
        self.sessions()
            .rev()
            .filter(|s| s.kind() == SessionKind::Full)
            .find_map(|s| {
                s.account(zimbra_id)
                    .filter(|a| a.state == AccountState::Completed)
                    .map(|a| (s, a))
            })
    }

    /// The oldest redo sequence a full of the target needs to be rolled forward:
    /// the lowest snapshot sequence of any completed account of any full (deleted
    /// accounts' and older fulls too: a restore to any point after any full the
    /// target keeps replays the logs from there).
    pub fn oldest_full_redo_seq(&self) -> Option<u64> {
        self.sessions()
            .filter(|s| s.kind() == SessionKind::Full)
            .flat_map(|s| s.completed_accounts())
            .filter_map(|a| a.redo_seq)
            .min()
    }

    /// Redo log sequences held by the sessions (incrementals and fulls).
    pub fn stored_redo_sequences(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .sessions()
            .flat_map(|s| s.redo_logs.iter().map(|l| l.seq))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}
