//! Creating accounts, one (`zmprov ca`) or a batch of them (a `zmprov` reading
//! `ca` lines from stdin).
//!
//! Creation has two halves. [`Prepared::new`] checks the address and hashes the
//! password; it reads nothing and takes no lock, so a batch hashes on several
//! threads at once. [`Prepared::insert`] allocates the mailbox id and writes the
//! rows inside the caller's write transaction. A batch inserts all its accounts
//! in one transaction — one commit, so one WAL fsync, instead of one per account
//! — each under its own savepoint, so that one refused line (an address taken, an
//! unknown COS) leaves the others as they would have been alone.

use crate::account::{
    self, Account, AccountStatus, PASSWORD, allocate_mailbox_id, apply_mods, hash_password,
};
use crate::address;
use crate::attrs::{Attrs, Modification};
use crate::error::Result;
use crate::{Directory, cos, new_id, now};
use rusqlite::Connection;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Threads hashing passwords at most, whatever the number of cores: each
/// Argon2 hash (default parameters) holds a 19 MiB block while it runs.
pub const MAX_HASH_THREADS: usize = 4;

/// One account to create: `zmprov ca EMAIL PASSWORD [attr value ...]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewAccount {
    pub email: String,
    /// `None` (or an empty `''` on the command line): no password.
    pub password: Option<String>,
    pub mods: Vec<Modification>,
}

/// An account checked and hashed, not yet written.
pub(crate) struct Prepared {
    email: String,
    hash: Option<String>,
    /// The modifications but the password's, which `hash` already holds.
    mods: Vec<Modification>,
}

impl Prepared {
    /// Normalizes the address and hashes the password (a `userPassword` among
    /// the attributes wins over the positional one, as it did when applied in
    /// order). No database access.
    pub(crate) fn new(email: &str, password: Option<&str>, mods: &[Modification]) -> Result<Self> {
        let email = address::normalize_address(email)?;
        let mut hash = password.map(hash_password).transpose()?;
        let mut rest = Vec::with_capacity(mods.len());
        for m in mods {
            if m.name().eq_ignore_ascii_case(PASSWORD) {
                hash = account::single_value(m)?.map(hash_password).transpose()?;
            } else {
                rest.push(m.clone());
            }
        }
        Ok(Prepared {
            email,
            hash,
            mods: rest,
        })
    }

    /// Writes the account inside the caller's transaction: a new zimbraId, the
    /// default COS unless `zimbraCOSId` names another, the next mailbox id.
    pub(crate) fn insert(self, conn: &Connection) -> Result<Account> {
        address::check_free(conn, &self.email)?;
        let mut a = Account {
            id: new_id(),
            email: self.email,
            aliases: Vec::new(),
            status: AccountStatus::Active,
            cos_id: cos::default_id(conn)?,
            mailbox_id: allocate_mailbox_id(conn)?,
            created: now(),
            attrs: Attrs::new(),
        };
        let mut hash = self.hash;
        apply_mods(conn, &mut a, &mut hash, &self.mods)?;
        account::insert(conn, &a, hash.as_deref())?;
        Ok(a)
    }
}

/// Prepares every entry, hashing on up to `threads` threads; results in order.
fn prepare_all(items: &[NewAccount], threads: usize) -> Vec<Result<Prepared>> {
    let prepare =
        |n: &NewAccount| Prepared::new(&n.email, n.password.as_deref(), n.mods.as_slice());
    let hashing = items
        .iter()
        .filter(|n| {
            n.password.is_some()
                || n.mods
                    .iter()
                    .any(|m| m.name().eq_ignore_ascii_case(PASSWORD))
        })
        .count();
    let threads = threads.min(hashing).max(1);
    if threads == 1 {
        return items.iter().map(prepare).collect();
    }
    // Workers take the next index: the order of hashing does not matter, the
    // order of the results does.
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<Prepared>>>> =
        items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let out = prepare(item);
                    *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(out);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|s| {
            s.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .expect("every index was taken by a worker")
        })
        .collect()
}

/// Threads a batch hashes on: the cores there are, at most [`MAX_HASH_THREADS`].
pub fn hash_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_HASH_THREADS)
}

impl Directory {
    /// Creates several accounts (each as [`Directory::create_account`] would)
    /// in one write transaction, after hashing their passwords in parallel
    /// (at most [`hash_threads`] at once). Returns one result per entry, in
    /// order; an `Err` of the whole call means nothing was written (the commit
    /// failed). When it returns `Ok`, every created account is durable.
    pub fn create_accounts(&self, items: &[NewAccount]) -> Result<Vec<Result<Account>>> {
        let prepared = prepare_all(items, hash_threads());
        let mut w = self.writer();
        let mut tx = w.transaction()?;
        let mut out = Vec::with_capacity(items.len());
        for p in prepared {
            let result = p.and_then(|p| {
                let sp = tx.savepoint()?;
                let a = p.insert(&sp)?;
                sp.commit()?;
                Ok(a)
            });
            out.push(result);
        }
        tx.commit()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DirectoryError;

    fn new(email: &str, password: Option<&str>) -> NewAccount {
        NewAccount {
            email: email.into(),
            password: password.map(str::to_string),
            mods: Vec::new(),
        }
    }

    #[test]
    fn a_batch_creates_in_order_and_keeps_a_refused_line_alone() {
        let d = Directory::open_in_memory().unwrap();
        d.create_domain("example.com", &[]).unwrap();
        d.create_account("taken@example.com", None, &[]).unwrap();
        let items = vec![
            new("a@example.com", Some("pw-a")),
            new("taken@example.com", Some("pw-t")),
            new("b@example.com", Some("pw-b")),
            new("c@nosuchdomain.org", None),
            NewAccount {
                email: "d@example.com".into(),
                password: None,
                mods: vec![
                    Modification::set("displayName", "Dee"),
                    Modification::set("userPassword", "pw-d"),
                ],
            },
            new("e@example.com", None),
        ];
        let out = d.create_accounts(&items).unwrap();
        assert_eq!(out.len(), 6);
        let a = out[0].as_ref().unwrap();
        assert!(
            matches!(out[1], Err(DirectoryError::AddressTaken { .. })),
            "{:?}",
            out[1].as_ref().err()
        );
        let b = out[2].as_ref().unwrap();
        assert!(
            matches!(out[3], Err(DirectoryError::NoSuchDomain(_))),
            "{:?}",
            out[3].as_ref().err()
        );
        let dd = out[4].as_ref().unwrap();
        let e = out[5].as_ref().unwrap();
        // Mailbox ids as one by one: consecutive, the refused lines took none.
        let first = a.mailbox_id.0;
        assert_eq!(
            [b.mailbox_id.0, dd.mailbox_id.0, e.mailbox_id.0],
            [first + 1, first + 2, first + 3]
        );
        assert!(d.verify_password("a@example.com", "pw-a").unwrap());
        assert!(d.verify_password("b@example.com", "pw-b").unwrap());
        assert!(!d.verify_password("b@example.com", "pw-a").unwrap());
        assert!(d.verify_password("d@example.com", "pw-d").unwrap());
        assert_eq!(dd.attr("displayName"), ["Dee"]);
        assert!(!d.verify_password("e@example.com", "").unwrap_or(false));
        assert!(!d.verify_password("taken@example.com", "pw-t").unwrap());
        assert_eq!(d.list_accounts(None).unwrap().len(), 5);
    }

    #[test]
    fn a_batch_is_durable_and_visible_to_other_connections() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("directory.sqlite");
        let d = Directory::open(&path).unwrap();
        d.create_domain("example.com", &[]).unwrap();
        let items: Vec<_> = (0..20)
            .map(|i| new(&format!("u{i}@example.com"), (i % 2 == 0).then_some("pw")))
            .collect();
        let out = d.create_accounts(&items).unwrap();
        assert!(out.iter().all(Result::is_ok));
        // Another handle (another process, after this one is gone) sees them all.
        drop(d);
        let again = Directory::open(&path).unwrap();
        assert_eq!(again.list_accounts(None).unwrap().len(), 20);
        assert!(again.verify_password("u4@example.com", "pw").unwrap());
    }

    #[test]
    fn hashing_uses_several_threads_and_keeps_the_order() {
        let items: Vec<_> = (0..6)
            .map(|i| new(&format!("u{i}@example.com"), Some(&format!("pw{i}"))))
            .collect();
        let prepared = prepare_all(&items, 3);
        for (i, p) in prepared.into_iter().enumerate() {
            let p = p.unwrap();
            assert_eq!(p.email, format!("u{i}@example.com"));
            let hash = p.hash.unwrap();
            assert!(crate::account::password_matches(&p.email, &hash, &format!("pw{i}")).unwrap());
        }
    }
}
