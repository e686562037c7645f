//! The restore-points test's record of what happened (every account's state
//! after each step, the sessions and in-place restores, and what a restore to a
//! point must give) and its world (the current home, the target, the accounts).

use crate::INITIAL_ACCOUNTS;
use crate::common::{Fx, SERVER};
use mv_backup::{FsTarget, Label, RestoreOptions, RestoreRun, SessionKind};
use mv_directory::{Account, Directory};
use mv_home::Home;
use mv_store::snapshot::MailboxState;
use mv_types::{MailboxId, UtcMillis};
use std::path::{Path, PathBuf};

/// What one step did, as the restore points see it.
pub struct Done {
    /// Timestamps of the first and last redo record the step wrote.
    pub records: Option<(UtcMillis, UtcMillis)>,
    /// The redo sequence current after the step: the one holding its records.
    pub seq: u64,
}

/// A backup session the history made.
pub struct Sess {
    pub label: Label,
    pub kind: SessionKind,
    /// The step that made it: the state it saw is `states[step]`.
    pub step: usize,
    /// When its step had returned (a full's snapshots were taken by then).
    pub end: UtcMillis,
    /// A full: the accounts (zimbraId) it holds and their snapshots' redo sequence.
    pub fulls: Vec<(String, u64)>,
    /// Removed by `-del`.
    pub deleted: bool,
}

/// An in-place restore: what a later restore across it must rebuild.
pub struct Restored {
    pub id: String,
    pub step: usize,
    pub full: Label,
    pub full_only: bool,
    /// The state (step count) it restored.
    pub upto: usize,
}

/// The recorded history: `states[k][e]` is account `e`'s state after `k` steps
/// (`None`: it did not exist then); `steps[k]` is step `k`.
pub struct History {
    pub states: Vec<Vec<Option<MailboxState>>>,
    pub steps: Vec<Done>,
    pub sessions: Vec<Sess>,
    pub restores: Vec<Restored>,
}

impl History {
    pub fn state(&self, k: usize, e: usize) -> Option<&MailboxState> {
        self.states[k].get(e).and_then(|s| s.as_ref())
    }

    /// The state after every step whose records are at or before `t`.
    pub fn at_time(&self, t: UtcMillis) -> usize {
        self.steps
            .iter()
            .take_while(|d| d.records.is_none_or(|(_, last)| last <= t))
            .count()
    }

    /// The state after every step whose records are in logs up to `n`.
    pub fn at_seq(&self, n: u64) -> usize {
        self.steps
            .iter()
            .take_while(|d| d.records.is_none() || d.seq <= n)
            .count()
    }

    pub fn session(&self, l: &Label) -> Option<&Sess> {
        self.sessions.iter().find(|s| s.label == *l)
    }

    /// The newest full of account `id` still in the target that `usable` accepts
    /// (given the full and the account's snapshot sequence in it).
    pub fn full_for(&self, id: &str, usable: &dyn Fn(&Sess, u64) -> bool) -> Option<&Sess> {
        self.sessions
            .iter()
            .rev()
            .find(|s| !s.deleted && s.fulls.iter().any(|(a, seq)| a == id && usable(s, *seq)))
    }

    /// Whether a restore of `id` from `full` to state `upto` can be built: every
    /// in-place restore on the way must be rebuildable from its own source.
    pub fn rebuildable(&self, id: &str, full: &Sess, upto: usize) -> bool {
        self.restores
            .iter()
            .filter(|r| r.id == id && full.step < r.step && r.step < upto)
            .all(|r| match self.session(&r.full) {
                Some(src) if !src.deleted => r.full_only || self.rebuildable(id, src, r.upto),
                _ => false,
            })
    }

    /// What restoring account `e` to the point whose state is `k` must give: the
    /// state after that many steps (a deleted account's as it was just before its
    /// deletion), `None` when it did not exist yet (not asked), `Some(Err)` when
    /// refused.
    pub fn expect(
        &self,
        ids: &[String],
        e: usize,
        k: usize,
        usable: &dyn Fn(&Sess, u64) -> bool,
    ) -> Option<Result<usize, ()>> {
        let k = (0..=k).rev().find(|j| self.state(*j, e).is_some())?;
        let id = &ids[e];
        Some(match self.full_for(id, usable) {
            Some(f) if self.rebuildable(id, f, k) => Ok(k),
            _ => Err(()),
        })
    }
}

// ---- the world: the current home, the target, the accounts ---------------------

pub struct World {
    /// Homes `h0`, `h1`, ... (one more per disaster recovery) and `target`.
    pub root: PathBuf,
    pub fx: Option<Fx>,
    pub homes: usize,
    /// Every account's zimbraId, in creation order (the account's index).
    pub ids: Vec<String>,
    /// Every address an account has had.
    pub names: Vec<String>,
}

impl World {
    pub fn new(root: &Path) -> World {
        let target = root.join("target");
        let mut fx = Fx::open(&root.join("h0"));
        fx.target_dir = target;
        fx.directory
            .lock()
            .unwrap()
            .create_domain("d.test", &[])
            .unwrap();
        let mut w = World {
            root: root.to_path_buf(),
            fx: Some(fx),
            homes: 0,
            ids: Vec::new(),
            names: Vec::new(),
        };
        for i in 0..INITIAL_ACCOUNTS {
            w.create(&format!("user{i}@d.test"));
        }
        w
    }

    pub fn fx(&self) -> &Fx {
        self.fx.as_ref().expect("a home is open")
    }

    pub fn target_dir(&self) -> PathBuf {
        self.root.join("target")
    }

    pub fn create(&mut self, email: &str) {
        let a = self.fx().account(email);
        self.ids.push(a.id);
        self.names.push(email.to_string());
    }

    /// The live accounts: (index, directory entry).
    pub fn live(&self) -> Vec<(usize, Account)> {
        let d = self.fx().directory.lock().unwrap();
        self.ids
            .iter()
            .enumerate()
            .filter_map(|(e, id)| d.find_account(id).unwrap().map(|a| (e, a)))
            .collect()
    }

    pub fn states_now(&self) -> Vec<Option<MailboxState>> {
        let mut out = vec![None; self.ids.len()];
        for (e, a) in self.live() {
            out[e] = Some(state(&self.fx().store, a.mailbox_id));
        }
        out
    }

    /// What to name account `e` by in a restore: its address while it lives,
    /// else its zimbraId (a deleted account's address may be someone else's now).
    pub fn key(&self, e: usize) -> String {
        match self.live().into_iter().find(|(i, _)| *i == e) {
            Some((_, a)) => a.email,
            None => self.ids[e].clone(),
        }
    }

    /// Stops the home's store and opens it again as a tool would (`zmrestoreoffline`):
    /// the redo log continues the target's history first.
    pub fn reopen(&mut self) {
        drop(self.fx.take());
        let root = self.root.join(format!("h{}", self.homes));
        continue_after_target(&Home::at(&root.join("home")), &self.target_dir());
        self.fx = Some(self.open(&root));
    }

    pub fn open(&self, root: &Path) -> Fx {
        let mut fx = Fx::open(root);
        fx.target_dir = self.target_dir();
        fx
    }

    /// The disaster: the home is gone. A fresh one gets the directory of the
    /// newest session (`zmrestoreldap -t T`), then every account in place from the
    /// target (`zmrestoreoffline -a all -t T`).
    pub fn rebuild(&mut self) {
        drop(self.fx.take());
        self.homes += 1;
        let root = self.root.join(format!("h{}", self.homes));
        let home = Home::at(&root.join("home"));
        home.init().unwrap();
        let target = FsTarget::open(&self.target_dir()).unwrap();
        let (_, entries) = mv_backup::ldap::read_ldap(&target, None).unwrap();
        {
            let d = Directory::open_home(&home).unwrap();
            d.import_entries(&entries).unwrap();
            d.ensure_server(SERVER).unwrap();
        }
        continue_after_target(&home, &self.target_dir());
        self.fx = Some(self.open(&root));
        let fx = self.fx();
        let accounts = fx.directory.lock().unwrap().list_accounts(None).unwrap();
        let mut run = RestoreRun::new();
        let mut ended = Vec::new();
        let o = RestoreOptions::default();
        for a in &accounts {
            ended.extend(run.restore_next(&fx.source(), fx.target().as_ref(), &a.email, &o));
        }
        ended.extend(run.finish(&fx.source()));
        assert_eq!(ended.len(), accounts.len());
        for (email, r) in ended {
            r.unwrap_or_else(|e| panic!("the rebuilt home's restore of {email} failed: {e}"));
        }
    }
}

/// `mv_redo::continue_at` at the target's redo floor, as `zmrestoreldap` and
/// `zmrestoreoffline` do with the store closed.
pub fn continue_after_target(home: &Home, target_dir: &Path) {
    let target = FsTarget::open(target_dir).unwrap();
    if let Some((next, lsn)) = mv_backup::ldap::redo_floor(&target).unwrap() {
        let cfg = mv_redo::RedoConfig::for_dir(&home.redolog_dir());
        mv_redo::continue_at(&cfg, next, lsn).unwrap();
    }
}

/// A state without the fields that name the mailbox (a restore makes a new one).
pub fn content(mut s: MailboxState) -> MailboxState {
    s.info.mailbox_id = 0;
    s.info.account_id.clear();
    s.info.email.clear();
    s.info.created_ms = 0;
    s
}

pub fn state(store: &mv_store::Store, id: MailboxId) -> MailboxState {
    content(store.mailbox_state(id).unwrap().unwrap())
}

/// Returns once the clock has moved past `t`: the next step starts in a later
/// millisecond than anything the last one stamped.
pub fn tick_past(t: UtcMillis) {
    while UtcMillis::now() <= t {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Timestamps of the records written after `after` (in the current log, or, for
/// a step that rolled the log over, the archive too).
pub fn records_since(fx: &Fx, after: mv_redo::RedoPosition) -> Option<(UtcMillis, UtcMillis)> {
    let now = fx.store.redo().position();
    if now.lsn <= after.lsn {
        return None;
    }
    let mut files: Vec<PathBuf> = mv_redo::list_archive(&fx.home.redo_archive_dir())
        .unwrap()
        .into_iter()
        .filter(|l| l.sequence >= after.sequence)
        .map(|l| l.path)
        .collect();
    files.push(
        fx.home
            .redolog_dir()
            .join(mv_redo::archive::CURRENT_LOG_NAME),
    );
    let times: Vec<UtcMillis> = mv_redo::read_files(&files)
        .map(|r| r.unwrap())
        .filter(|l| l.record.lsn > after.lsn)
        .map(|l| l.record.timestamp)
        .collect();
    assert_eq!(times.len() as u64, now.lsn.0 - after.lsn.0);
    Some((*times.iter().min()?, *times.iter().max()?))
}
