//! Restore points, by property: a random history of mailbox operations with full
//! and incremental backups, redo rollovers, account renames and in-place restores
//! (to an earlier op's time, or from a full alone) at random places; each in-place
//! restore gives the state of its point, and restoring an account (into a new
//! one, `-ca -pre`) to any op's time, to any redo sequence, to any incremental's
//! label, or to the latest state gives exactly the live state the account had at
//! that point — across the in-place restores, which are part of the history. A
//! point before every usable full is refused and leaves nothing behind.
//!
//! The suite runs 8 cases; `MV_RESTORE_PROPTEST_CASES=200 cargo test -p mv-backup
//! --test restore_points` runs a longer soak.
//!
//! Consecutive steps are kept in distinct milliseconds (each waits for the clock
//! to tick past the previous one), so a time cut between two ops is unambiguous.

mod common;

use common::Fx;
use mv_backup::{Label, RestoreOptions, SessionKind, restore_account};
use mv_directory::Account;
use mv_redo::ops::{flags, folders};
use mv_store::snapshot::MailboxState;
use mv_store::{DeliverOptions, FlagChange, Store};
use mv_types::{ItemId, MailboxId, UtcMillis};
use proptest::prelude::*;
use proptest::sample::Index;

// ---- the op generator (the shape of mv-store's tests/replay.rs) ---------------

fn message(n: usize, size: usize) -> Vec<u8> {
    let body: String = (0..size)
        .map(|i| (b'a' + ((i * 7 + n) % 26) as u8) as char)
        .collect();
    format!(
        "From: sender{n}@example.com\r\nTo: u@example.com\r\nSubject: message {n}\r\nMessage-ID: <{n}@x>\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

#[derive(Debug, Clone)]
enum Action {
    Deliver {
        to: Vec<usize>,
        size: usize,
    },
    CreateFolder {
        mbox: usize,
        parent: usize,
        name: u8,
    },
    RenameFolder {
        mbox: usize,
        folder: usize,
        name: u8,
    },
    DeleteFolder {
        mbox: usize,
        folder: usize,
    },
    CreateTag {
        mbox: usize,
        name: u8,
    },
    DeleteTag {
        mbox: usize,
        tag: usize,
    },
    Flag {
        mbox: usize,
        item: usize,
        bits: u32,
        add: bool,
    },
    Tag {
        mbox: usize,
        item: usize,
        tag: usize,
    },
    Move {
        mbox: usize,
        item: usize,
        folder: usize,
    },
    Copy {
        mbox: usize,
        item: usize,
        folder: usize,
    },
    Delete {
        mbox: usize,
        item: usize,
    },
    Empty {
        mbox: usize,
        folder: usize,
    },
    Expunge {
        mbox: usize,
        folder: usize,
    },
    Contact {
        mbox: usize,
        n: u8,
    },
    Calendar {
        mbox: usize,
        uid: u8,
        seq: u8,
    },
}

const ACCOUNTS: usize = 2;

fn action() -> impl Strategy<Value = Action> {
    let m = 0..ACCOUNTS;
    prop_oneof![
        4 => (proptest::collection::vec(0..ACCOUNTS, 1..3), 0..3000usize).prop_map(|(to, size)| Action::Deliver { to, size }),
        1 => (m.clone(), any::<usize>(), any::<u8>()).prop_map(|(mbox, parent, name)| Action::CreateFolder { mbox, parent, name }),
        1 => (m.clone(), any::<usize>(), any::<u8>()).prop_map(|(mbox, folder, name)| Action::RenameFolder { mbox, folder, name }),
        1 => (m.clone(), any::<usize>()).prop_map(|(mbox, folder)| Action::DeleteFolder { mbox, folder }),
        1 => (m.clone(), any::<u8>()).prop_map(|(mbox, name)| Action::CreateTag { mbox, name }),
        1 => (m.clone(), any::<usize>()).prop_map(|(mbox, tag)| Action::DeleteTag { mbox, tag }),
        2 => (m.clone(), any::<usize>(), 1..32u32, any::<bool>()).prop_map(|(mbox, item, bits, add)| Action::Flag { mbox, item, bits, add }),
        1 => (m.clone(), any::<usize>(), any::<usize>()).prop_map(|(mbox, item, tag)| Action::Tag { mbox, item, tag }),
        2 => (m.clone(), any::<usize>(), any::<usize>()).prop_map(|(mbox, item, folder)| Action::Move { mbox, item, folder }),
        1 => (m.clone(), any::<usize>(), any::<usize>()).prop_map(|(mbox, item, folder)| Action::Copy { mbox, item, folder }),
        1 => (m.clone(), any::<usize>()).prop_map(|(mbox, item)| Action::Delete { mbox, item }),
        1 => (m.clone(), any::<usize>()).prop_map(|(mbox, folder)| Action::Empty { mbox, folder }),
        1 => (m.clone(), any::<usize>()).prop_map(|(mbox, folder)| Action::Expunge { mbox, folder }),
        1 => (m.clone(), any::<u8>()).prop_map(|(mbox, n)| Action::Contact { mbox, n }),
        1 => (m, 0..4u8, 0..3u8).prop_map(|(mbox, uid, seq)| Action::Calendar { mbox, uid, seq }),
    ]
}

fn pick<T: Copy>(v: &[T], i: usize) -> Option<T> {
    if v.is_empty() {
        None
    } else {
        Some(v[i % v.len()])
    }
}

/// Runs an action against the live store. Actions that do not fit the current
/// state (a name clash, nothing to pick) are refused by the store and change nothing.
fn run(store: &Store, mboxes: &[MailboxId], a: &Action, n: usize) {
    let mb = |i: usize| mboxes[i % mboxes.len()];
    let mail_folders = |m: MailboxId| -> Vec<u32> {
        let all = store.mailbox(m).folders().unwrap().into_iter();
        all.filter(|f| f.view == "message").map(|f| f.id).collect()
    };
    let user_folders = |m: MailboxId| -> Vec<u32> {
        let all = store.mailbox(m).folders().unwrap().into_iter();
        all.filter(|f| f.id >= 256).map(|f| f.id).collect()
    };
    let messages = |m: MailboxId| -> Vec<u32> {
        let all = store.mailbox(m);
        let all = all.items(None, Some(mv_store::apply::TYPE_MESSAGE));
        all.unwrap().into_iter().map(|i| i.id).collect()
    };
    let tags = |m: MailboxId| -> Vec<u32> {
        let all = store.mailbox(m).tags().unwrap().into_iter();
        all.map(|t| t.id).collect()
    };
    let _ = match a {
        Action::Deliver { to, size } => {
            let rcpts: Vec<MailboxId> = to.iter().map(|i| mb(*i)).collect();
            store
                .deliver(&message(n, *size), &rcpts, &DeliverOptions::default())
                .map(|_| ())
        }
        Action::CreateFolder { mbox, parent, name } => {
            let m = mb(*mbox);
            let parent = pick(&mail_folders(m), *parent).unwrap_or(folders::ROOT);
            store
                .create_folder(m, parent, &format!("f{}", name % 8), "message")
                .map(|_| ())
        }
        Action::RenameFolder { mbox, folder, name } => {
            let m = mb(*mbox);
            match pick(&user_folders(m), *folder) {
                Some(f) => store.rename_folder(m, f, &format!("r{}", name % 8), folders::ROOT),
                None => Ok(()),
            }
        }
        Action::DeleteFolder { mbox, folder } => {
            let m = mb(*mbox);
            match pick(&user_folders(m), *folder) {
                Some(f) => store.delete_folder(m, f),
                None => Ok(()),
            }
        }
        Action::CreateTag { mbox, name } => store
            .create_tag(mb(*mbox), &format!("t{}", name % 6), 1)
            .map(|_| ()),
        Action::DeleteTag { mbox, tag } => match pick(&tags(mb(*mbox)), *tag) {
            Some(t) => store.delete_tag(mb(*mbox), t),
            None => Ok(()),
        },
        Action::Flag {
            mbox,
            item,
            bits,
            add,
        } => match pick(&messages(mb(*mbox)), *item) {
            Some(i) => {
                let change = if *add {
                    FlagChange::Add(*bits & flags::ALL)
                } else {
                    FlagChange::Remove(*bits & flags::ALL)
                };
                store.set_flags(mb(*mbox), &[ItemId(i)], change)
            }
            None => Ok(()),
        },
        Action::Tag { mbox, item, tag } => {
            let m = mb(*mbox);
            match (pick(&messages(m), *item), pick(&tags(m), *tag)) {
                (Some(i), Some(t)) => store.set_tags(m, &[ItemId(i)], &[t]),
                _ => Ok(()),
            }
        }
        Action::Move { mbox, item, folder } => {
            let m = mb(*mbox);
            match (pick(&messages(m), *item), pick(&mail_folders(m), *folder)) {
                (Some(i), Some(f)) => store.move_items(m, &[ItemId(i)], f).map(|_| ()),
                _ => Ok(()),
            }
        }
        Action::Copy { mbox, item, folder } => {
            let m = mb(*mbox);
            match (pick(&messages(m), *item), pick(&mail_folders(m), *folder)) {
                (Some(i), Some(f)) => store.copy_items(m, &[ItemId(i)], f).map(|_| ()),
                _ => Ok(()),
            }
        }
        Action::Delete { mbox, item } => match pick(&messages(mb(*mbox)), *item) {
            Some(i) => store.delete_items(mb(*mbox), &[ItemId(i)]),
            None => Ok(()),
        },
        Action::Empty { mbox, folder } => {
            let m = mb(*mbox);
            match pick(&mail_folders(m), *folder) {
                Some(f) => store.empty_folder(m, f).map(|_| ()),
                None => Ok(()),
            }
        }
        Action::Expunge { mbox, folder } => {
            let m = mb(*mbox);
            match pick(&mail_folders(m), *folder) {
                Some(f) => store.purge_imap_deleted(m, f, None).map(|_| ()),
                None => Ok(()),
            }
        }
        Action::Contact { mbox, n } => {
            let vcard = format!("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Person {n}\r\nEND:VCARD\r\n");
            store
                .put_contact(mb(*mbox), folders::CONTACTS, &vcard, None)
                .map(|_| ())
        }
        Action::Calendar { mbox, uid, seq } => {
            let ics = format!(
                "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:ev-{uid}\r\nSEQUENCE:{seq}\r\n\
                 DTSTAMP:20240101T000000Z\r\nSUMMARY:Event {uid}.{seq}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
            );
            store
                .import_calendar(mb(*mbox), folders::CALENDAR, &ics)
                .map(|_| ())
        }
    };
}

// ---- the history ----------------------------------------------------------------

#[derive(Debug, Clone)]
enum Step {
    Op(Action),
    Full,
    Incremental,
    Rollover,
    /// `zmprov ra`: the account gets a new address.
    Rename(usize),
    /// `zmrestore -a ACCOUNT` in place: to the time of an earlier op (the index
    /// picks it), or from a full alone (`-rf`, the index picks the full).
    InPlace {
        which: usize,
        to: Index,
        full_only: bool,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => action().prop_map(Step::Op),
        1 => Just(Step::Full),
        2 => Just(Step::Incremental),
        1 => Just(Step::Rollover),
        1 => (0..ACCOUNTS).prop_map(Step::Rename),
        2 => (0..ACCOUNTS, any::<Index>(), any::<bool>())
            .prop_map(|(which, to, full_only)| Step::InPlace { which, to, full_only }),
    ]
}

/// Where to restore to; the index picks among the candidates of its kind.
#[derive(Debug, Clone)]
enum Point {
    /// An op's commit time: the timestamp of its last redo record.
    OpTime(Index),
    /// The millisecond before the next op's first record.
    BeforeNextOp(Index),
    RedoSeq(Index),
    IncrLabel(Index),
}

fn point() -> impl Strategy<Value = Point> {
    prop_oneof![
        2 => any::<Index>().prop_map(Point::OpTime),
        1 => any::<Index>().prop_map(Point::BeforeNextOp),
        2 => any::<Index>().prop_map(Point::RedoSeq),
        2 => any::<Index>().prop_map(Point::IncrLabel),
    ]
}

/// What one step did, as the restore points see it.
struct Done {
    /// Timestamps of the first and last redo record the step wrote.
    records: Option<(UtcMillis, UtcMillis)>,
    /// The redo sequence current after the step: the one holding its records, or
    /// for a full the one its snapshots point at (a full does not roll over).
    seq: u64,
    /// When the step had returned (a full's snapshots were taken by then).
    end: UtcMillis,
    /// The full or incremental session the step made.
    session: Option<(SessionKind, Label)>,
}

/// The recorded history: `states[k]` is every account's state after `k` steps
/// (`states[0]` right after the accounts were created); `steps[k]` is step `k`.
struct History {
    states: Vec<Vec<MailboxState>>,
    steps: Vec<Done>,
}

impl History {
    /// The state after every step whose records are at or before `t`.
    fn at_time(&self, t: UtcMillis) -> usize {
        self.steps
            .iter()
            .take_while(|d| d.records.is_none_or(|(_, last)| last <= t))
            .count()
    }

    /// The state after every step whose records are in logs up to `n`.
    fn at_seq(&self, n: u64) -> usize {
        self.steps
            .iter()
            .take_while(|d| d.records.is_none() || d.seq <= n)
            .count()
    }

    fn fulls(&self) -> impl Iterator<Item = &Done> {
        self.steps
            .iter()
            .filter(|d| matches!(d.session, Some((SessionKind::Full, _))))
    }
}

/// A state without the fields that name the mailbox (a restore makes a new one).
fn content(mut s: MailboxState) -> MailboxState {
    s.info.mailbox_id = 0;
    s.info.account_id.clear();
    s.info.email.clear();
    s.info.created_ms = 0;
    s
}

fn state(store: &Store, id: MailboxId) -> MailboxState {
    content(store.mailbox_state(id).unwrap().unwrap())
}

/// Returns once the clock has moved past `t`: the next step starts in a later
/// millisecond than anything the last one stamped.
fn tick_past(t: UtcMillis) {
    while UtcMillis::now() <= t {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Timestamps of the records written after `after` (in the current log, or, for
/// an in-place restore that rolled the log over, the archive too).
fn records_since(fx: &Fx, after: mv_redo::RedoPosition) -> Option<(UtcMillis, UtcMillis)> {
    let now = fx.store.redo().position();
    if now.lsn <= after.lsn {
        return None;
    }
    let mut files: Vec<std::path::PathBuf> = mv_redo::list_archive(&fx.home.redo_archive_dir())
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

/// The accounts as the directory has them now (renames, restored mailboxes).
fn current(fx: &Fx, accounts: &[Account]) -> Vec<Account> {
    let d = fx.directory.lock().unwrap();
    accounts
        .iter()
        .map(|a| d.get_account(&a.id).unwrap())
        .collect()
}

/// An in-place restore of account `which` to a point of the history so far;
/// returns the step count whose state it must give (`None`: nothing to restore
/// to, and nothing done).
fn in_place(
    fx: &Fx,
    accounts: &[Account],
    h: &History,
    which: usize,
    to: &Index,
    full_only: bool,
) -> Option<usize> {
    let mut o = RestoreOptions::default();
    let expect = if full_only {
        let fulls: Vec<(usize, Label)> = (0..h.steps.len())
            .filter_map(|k| match h.steps[k].session {
                Some((SessionKind::Full, l)) => Some((k, l)),
                _ => None,
            })
            .collect();
        if fulls.is_empty() {
            return None;
        }
        let (k, l) = *to.get(&fulls);
        o.label = Some(l);
        o.full_only = true;
        k
    } else {
        let ops: Vec<usize> = (0..h.steps.len())
            .filter(|k| {
                h.steps[*k]
                    .records
                    .is_some_and(|(_, last)| h.fulls().any(|f| f.end <= last))
            })
            .collect();
        if ops.is_empty() {
            return None;
        }
        let (_, t) = h.steps[*to.get(&ops)].records.unwrap();
        o.to_time = Some(t);
        h.at_time(t)
    };
    let email = &current(fx, accounts)[which].email;
    let r = restore_account(&fx.source(), fx.target().as_ref(), email, &o)
        .unwrap_or_else(|e| panic!("in-place restore of {email} ({o:?}) failed: {e}"));
    assert_eq!(&r.restored_as, email);
    Some(expect)
}

fn play(fx: &Fx, accounts: &[Account], steps: &[Step]) -> History {
    let states_now = || {
        current(fx, accounts)
            .iter()
            .map(|a| state(&fx.store, a.mailbox_id))
            .collect::<Vec<_>>()
    };
    let mut h = History {
        states: vec![states_now()],
        steps: Vec::new(),
    };
    tick_past(UtcMillis::now());
    for (n, s) in steps.iter().enumerate() {
        let before = fx.store.redo().position();
        let mut session = None;
        let mut restored = None;
        match s {
            Step::Op(a) => {
                let ids: Vec<MailboxId> =
                    current(fx, accounts).iter().map(|a| a.mailbox_id).collect();
                run(&fx.store, &ids, a, n)
            }
            Step::Full | Step::Incremental => {
                let kind = match s {
                    Step::Full => SessionKind::Full,
                    _ => SessionKind::Incremental,
                };
                let r = fx.backup(kind);
                assert!(r.ok(), "{r:?}");
                // An incremental after an in-place restore takes that account's
                // full first: the incremental is the last session.
                session = r.sessions.last().map(|s| (kind, s.label));
            }
            Step::Rollover => {
                fx.store.redo().rollover().unwrap();
            }
            Step::Rename(which) => {
                let a = &current(fx, accounts)[*which];
                let new_email = format!("user{which}-{n}@d.test");
                let renamed = fx
                    .directory
                    .lock()
                    .unwrap()
                    .rename_account(&a.id, &new_email)
                    .unwrap();
                fx.store
                    .rename_mailbox(renamed.mailbox_id, &renamed.email)
                    .unwrap();
            }
            Step::InPlace {
                which,
                to,
                full_only,
            } => {
                restored = in_place(fx, accounts, &h, *which, to, *full_only).map(|k| (*which, k));
            }
        }
        let records = records_since(fx, before);
        assert!(
            records.is_none() || matches!(s, Step::Op(_) | Step::Rename(_) | Step::InPlace { .. }),
            "only ops, renames and restores write redo records"
        );
        let end = UtcMillis::now();
        h.steps.push(Done {
            records,
            seq: fx.store.redo().position().sequence,
            end,
            session,
        });
        let now = states_now();
        if let Some((which, k)) = restored {
            assert!(
                now[which] == h.states[k][which],
                "step {n}: the in-place restore of account {which} is not the state after \
                 step {k}\nrestored: {:#?}\nexpected: {:#?}",
                now[which],
                h.states[k][which]
            );
        }
        h.states.push(now);
        tick_past(end);
    }
    h
}

/// The restore options for a point and the step count whose state it must give,
/// or `None` for the step count when no full lies before the point.
fn resolve(h: &History, p: &Point) -> Option<(RestoreOptions, Option<usize>, String)> {
    let mut o = RestoreOptions::default();
    match p {
        Point::OpTime(i) | Point::BeforeNextOp(i) => {
            let ops: Vec<usize> = (0..h.steps.len())
                .filter(|k| h.steps[*k].records.is_some())
                .collect();
            if ops.is_empty() {
                return None;
            }
            let k = *i.get(&ops);
            let (_, last) = h.steps[k].records.unwrap();
            let t = match p {
                Point::OpTime(_) => last,
                _ => {
                    let next = h.steps[k + 1..].iter().find_map(|d| d.records)?;
                    UtcMillis(next.0.0 - 1)
                }
            };
            o.to_time = Some(t);
            // A full is usable when its snapshot was taken by then.
            let usable = h.fulls().any(|f| f.end <= t);
            Some((
                o,
                usable.then(|| h.at_time(t)),
                format!("{p:?} time {}", t.0),
            ))
        }
        Point::RedoSeq(i) => {
            // From one below the oldest full's sequence to one past the current.
            let lo = h.fulls().map(|f| f.seq).min()?.saturating_sub(1);
            let hi = h.steps.last()?.seq + 1;
            let seqs: Vec<u64> = (lo..=hi).collect();
            let n = *i.get(&seqs);
            o.to_redo_seq = Some(n);
            let usable = h.fulls().any(|f| f.seq <= n);
            Some((o, usable.then(|| h.at_seq(n)), format!("{p:?} seq {n}")))
        }
        Point::IncrLabel(i) => {
            let incrs: Vec<(usize, Label)> = (0..h.steps.len())
                .filter_map(|k| match h.steps[k].session {
                    Some((SessionKind::Incremental, l)) => Some((k, l)),
                    _ => None,
                })
                .collect();
            if incrs.is_empty() {
                return None;
            }
            let (k, l) = *i.get(&incrs);
            o.to_incr_label = Some(l);
            // Backups change no state: the state when the incremental started.
            Some((o, Some(k), format!("{p:?} label {l}")))
        }
    }
}

fn check(fx: &Fx, accounts: &[Account], h: &History, which: usize, n: usize, p: &Point) {
    let Some((mut o, expect, what)) = resolve(h, p) else {
        return;
    };
    let prefix = format!("r{n}_");
    o.new_account_prefix = Some(prefix.clone());
    let email = &current(fx, accounts)[which].email;
    let r = restore_account(&fx.source(), fx.target().as_ref(), email, &o);
    let new_email = format!("{prefix}{email}");
    match expect {
        Some(k) => {
            let r = r.unwrap_or_else(|e| panic!("{what}: restore of {email} failed: {e}"));
            assert_eq!(r.restored_as, new_email);
            let got = state(&fx.store, MailboxId(r.mailbox_id));
            assert!(
                got == h.states[k][which],
                "{what}: restored {email} is not the state after step {k}\n\
                 restored: {got:#?}\nexpected: {:#?}",
                h.states[k][which]
            );
        }
        None => {
            assert!(r.is_err(), "{what}: no full before the point, yet {r:?}");
            let left = fx.directory.lock().unwrap().get_account(&new_email);
            assert!(left.is_err(), "{what}: a refused restore left {new_email}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("MV_RESTORE_PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(8),
        // A case takes about a second: keep a failing run's shrinking bounded.
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    })]

    #[test]
    fn restoring_to_any_point_gives_the_live_state_of_that_point(
        before_full in proptest::collection::vec(action(), 0..6),
        after_full in proptest::collection::vec(step(), 1..36),
        points in proptest::collection::vec((point(), 0..ACCOUNTS), 4..8),
    ) {
        let fx = Fx::new();
        let accounts: Vec<Account> = (0..ACCOUNTS)
            .map(|i| fx.account(&format!("user{i}@d.test")))
            .collect();
        // The first backup is a full.
        let steps: Vec<Step> = before_full
            .into_iter()
            .map(Step::Op)
            .chain([Step::Full])
            .chain(after_full)
            .collect();
        let h = play(&fx, &accounts, &steps);
        let live = h.states.last().unwrap().clone();

        for (n, (p, which)) in points.iter().enumerate() {
            check(&fx, &accounts, &h, *which, n, p);
        }
        // No point: the latest state, for every account.
        for (which, a) in current(&fx, &accounts).iter().enumerate() {
            let o = RestoreOptions {
                new_account_prefix: Some("latest_".into()),
                ..Default::default()
            };
            let r = restore_account(&fx.source(), fx.target().as_ref(), &a.email, &o).unwrap();
            prop_assert_eq!(&state(&fx.store, MailboxId(r.mailbox_id)), &live[which]);
        }
        // The originals were not touched by any restore into a new account.
        for (which, a) in current(&fx, &accounts).iter().enumerate() {
            prop_assert_eq!(&state(&fx.store, a.mailbox_id), &live[which]);
        }
    }
}
