//! Lookups of a session's accounts and files by id: a full or an incremental
//! asks a session about every account it backs up, so a linear scan per lookup
//! made a run cost the square of the number of accounts.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Positions of a session's accounts (by zimbraId) and files (by path), built
/// on first use. A session is not changed after it is built or parsed; the
/// lengths recorded with the maps still guard against a later push (a stale
/// map is then ignored in favour of a scan, never trusted).
#[derive(Default)]
pub struct Lookup {
    built: OnceLock<Maps>,
}

struct Maps {
    accounts: HashMap<String, usize>,
    accounts_len: usize,
    files: HashMap<String, usize>,
    files_len: usize,
}

/// What a lookup found: the position, absent, or "the map does not describe
/// the vectors any more, scan them".
pub enum Found {
    At(usize),
    Absent,
    Scan,
}

impl Lookup {
    fn maps<'a>(
        &self,
        accounts: impl Iterator<Item = &'a str>,
        files: impl Iterator<Item = &'a str>,
    ) -> &Maps {
        self.built.get_or_init(|| {
            // The first of duplicate ids wins, as with the linear `find` it replaces.
            let mut a = HashMap::new();
            let mut accounts_len = 0;
            for (i, id) in accounts.enumerate() {
                a.entry(id.to_string()).or_insert(i);
                accounts_len = i + 1;
            }
            let mut f = HashMap::new();
            let mut files_len = 0;
            for (i, path) in files.enumerate() {
                f.entry(path.to_string()).or_insert(i);
                files_len = i + 1;
            }
            Maps {
                accounts: a,
                accounts_len,
                files: f,
                files_len,
            }
        })
    }

    pub fn account<'a>(
        &self,
        id: &str,
        accounts: impl ExactSizeIterator<Item = &'a str>,
        files: impl Iterator<Item = &'a str>,
    ) -> Found {
        let len = accounts.len();
        let m = self.maps(accounts, files);
        if m.accounts_len != len {
            return Found::Scan;
        }
        m.accounts.get(id).map_or(Found::Absent, |&i| Found::At(i))
    }

    pub fn file<'a>(
        &self,
        rel: &str,
        accounts: impl Iterator<Item = &'a str>,
        files: impl ExactSizeIterator<Item = &'a str>,
    ) -> Found {
        let len = files.len();
        let m = self.maps(accounts, files);
        if m.files_len != len {
            return Found::Scan;
        }
        m.files.get(rel).map_or(Found::Absent, |&i| Found::At(i))
    }
}

/// A copy starts without maps: the copy's vectors may be changed before use.
impl Clone for Lookup {
    fn clone(&self) -> Self {
        Lookup::default()
    }
}

/// A cache, not part of what a session is.
impl PartialEq for Lookup {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Lookup {}

impl std::fmt::Debug for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lookup")
    }
}
