//! Auto-Grouped mode: which accounts each run backs up, and point-in-time restores
//! from a series of auto-grouped runs (each account's latest full plus the redo
//! logs later runs copied into their own full sessions).

mod common;

use common::{Fx, message};
use mv_backup::{
    AccountSelection, BackupError, Catalog, FakeClock, NoProgress, ReadData, RestoreOptions,
    SessionKind, VerifyOptions, restore_account,
};
use mv_directory::Modification;
use mv_store::snapshot::MailboxState;
use mv_types::{MailboxId, UtcMillis};
use std::sync::Arc;

on_both_targets!(point_in_time_restore_from_an_auto_grouped_series);

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

fn auto_grouped(fx: &Fx, groups: u32, interval: &str, throttled: bool) {
    fx.directory
        .lock()
        .unwrap()
        .modify_global(&[
            Modification::set("zimbraBackupMode", "Auto-Grouped"),
            Modification::set("zimbraBackupAutoGroupedNumGroups", groups.to_string()),
            Modification::set("zimbraBackupAutoGroupedInterval", interval),
            Modification::set(
                "zimbraBackupAutoGroupedThrottled",
                if throttled { "TRUE" } else { "FALSE" },
            ),
        ])
        .unwrap();
}

/// Runs `zmbackup -f` at `at`; returns the emails the session backed up.
fn run_at(fx: &Fx, clock: &Arc<FakeClock>, at: i64) -> Result<Vec<String>, BackupError> {
    clock.set(UtcMillis(at));
    let mut opts = fx.opts(SessionKind::Full);
    opts.clock = clock.clone();
    let r = mv_backup::backup(&fx.source(), fx.target(), opts, &NoProgress)?;
    assert!(r.ok(), "{:?}", r.sessions);
    let catalog = Catalog::load(fx.target().as_ref()).unwrap();
    let s = catalog.get(&r.labels()[0]).unwrap().session().unwrap();
    Ok(s.accounts.iter().map(|a| a.email.clone()).collect())
}

fn emails(list: &[&str]) -> Vec<String> {
    list.iter().map(|e| format!("{e}@d.test")).collect()
}

#[test]
fn groups_rotate_new_accounts_first_and_a_run_with_nothing_due_is_too_soon() {
    let fx = Fx::new();
    for u in ["u0", "u1", "u2", "u3", "u4", "u5"] {
        let a = fx.account(&format!("{u}@d.test"));
        fx.deliver(&message(u, 1500), &[&a]);
    }
    let start = UtcMillis::parse_local("2014/06/01 01:00:00").unwrap().0;
    let clock = FakeClock::new(UtcMillis(start));
    // Standard mode: a full of everyone.
    assert_eq!(run_at(&fx, &clock, start).unwrap().len(), 6);

    // Switching to Auto-Grouped (3 groups, 1 day) does not back up everyone again:
    // one group, the oldest fulls first.
    auto_grouped(&fx, 3, "1d", false);
    assert_eq!(
        run_at(&fx, &clock, start + DAY).unwrap(),
        emails(&["u0", "u1"])
    );
    // A new account goes first; the group is now ceil(7 / 3) = 3.
    let n0 = fx.account("n0@d.test");
    fx.deliver(&message("n0", 1500), &[&n0]);
    assert_eq!(
        run_at(&fx, &clock, start + DAY + HOUR).unwrap(),
        emails(&["n0", "u2", "u3"])
    );
    // Only two are still overdue.
    assert_eq!(
        run_at(&fx, &clock, start + DAY + 2 * HOUR).unwrap(),
        emails(&["u4", "u5"])
    );
    // Everyone had a full within the interval.
    let e = run_at(&fx, &clock, start + DAY + 3 * HOUR).unwrap_err();
    assert!(matches!(e, BackupError::TooSoon(_)), "{e}");
    assert!(
        e.to_string().starts_with("auto-grouped backup too soon"),
        "{e}"
    );
    assert!(!e.is_usage());
    // The refused run left nothing behind.
    let catalog = Catalog::load(fx.target().as_ref()).unwrap();
    assert_eq!(catalog.entries.len(), 4);

    // Throttled: many new accounts at once are taken a group at a time.
    auto_grouped(&fx, 3, "1d", true);
    for i in 0..5 {
        fx.account(&format!("w{i}@d.test"));
    }
    // 12 accounts: groups of 4.
    assert_eq!(
        run_at(&fx, &clock, start + DAY + 4 * HOUR).unwrap(),
        emails(&["w0", "w1", "w2", "w3"])
    );
    assert_eq!(
        run_at(&fx, &clock, start + DAY + 5 * HOUR).unwrap(),
        emails(&["w4"])
    );
    // A day later, the oldest fulls again, one group.
    assert_eq!(
        run_at(&fx, &clock, start + 2 * DAY + HOUR).unwrap(),
        emails(&["u0", "u1", "n0", "u2"])
    );
    // An explicit account list is a plain full of those accounts.
    clock.set(UtcMillis(start + 2 * DAY + 2 * HOUR));
    let mut opts = fx.opts(SessionKind::Full);
    opts.clock = clock.clone();
    opts.accounts = AccountSelection::Named(vec!["u0@d.test".into()]);
    let r = mv_backup::backup(&fx.source(), fx.target(), opts, &NoProgress).unwrap();
    assert_eq!(r.sessions[0].accounts, 1);
}

/// A state without the fields that name the mailbox.
fn content(mut s: MailboxState) -> MailboxState {
    s.info.mailbox_id = 0;
    s.info.account_id.clear();
    s.info.email.clear();
    s.info.created_ms = 0;
    s
}

fn state(fx: &Fx, id: MailboxId) -> MailboxState {
    content(fx.store.mailbox_state(id).unwrap().unwrap())
}

fn pause() {
    std::thread::sleep(std::time::Duration::from_millis(5));
}

fn point_in_time_restore_from_an_auto_grouped_series(fx: Fx) {
    auto_grouped(&fx, 2, "1d", false);
    let accounts: Vec<_> = ["a", "b", "c", "d"]
        .iter()
        .map(|u| fx.account(&format!("{u}@d.test")))
        .collect();
    let a = &accounts[0];
    for (i, acct) in accounts.iter().enumerate() {
        fx.deliver(&message(&format!("first-{i}"), 2000), &[acct]);
    }
    let start = UtcMillis::parse_local("2014/06/01 01:00:00").unwrap().0;
    let clock = FakeClock::new(UtcMillis(start));
    // Run 1: every account is new.
    assert_eq!(run_at(&fx, &clock, start).unwrap().len(), 4);
    fx.deliver(&message("day0", 2500), &[a, &accounts[2]]);
    // Run 2: a and b.
    assert_eq!(
        run_at(&fx, &clock, start + DAY).unwrap(),
        emails(&["a", "b"])
    );
    // After a's latest full: changes only redo logs will bring back.
    fx.deliver(&message("after-1", 2200), &[a]);
    let inbox = fx
        .store
        .mailbox(a.mailbox_id)
        .messages(mv_redo::ops::folders::INBOX)
        .unwrap();
    fx.store
        .move_items(
            a.mailbox_id,
            &[mv_types::ItemId(inbox[0].id)],
            mv_redo::ops::folders::TRASH,
        )
        .unwrap();
    let at_t1 = state(&fx, a.mailbox_id);
    pause();
    let t1 = UtcMillis::now();
    pause();
    fx.store
        .empty_folder(a.mailbox_id, mv_redo::ops::folders::TRASH)
        .unwrap();
    fx.deliver(&message("after-2", 2300), &[a, &accounts[1]]);
    let before_run3 = state(&fx, a.mailbox_id);
    // Run 3: c and d, plus the redo logs since run 2 (a's changes among them),
    // although a is not in its account list.
    assert_eq!(
        run_at(&fx, &clock, start + 2 * DAY).unwrap(),
        emails(&["c", "d"])
    );
    let catalog = Catalog::load(fx.target().as_ref()).unwrap();
    let sessions: Vec<_> = catalog.sessions().collect();
    assert_eq!(sessions.len(), 3);
    assert!(sessions.iter().all(|s| s.kind() == SessionKind::Full));
    assert!(
        !sessions[2].redo_logs.is_empty(),
        "run 3 carries the logs since run 2"
    );
    // Only the home has this one (the -br restores below leave it out).
    fx.deliver(&message("after-3", 2100), &[a]);
    let live = state(&fx, a.mailbox_id);
    assert!(
        mv_backup::verify(
            fx.target().as_ref(),
            &VerifyOptions {
                label: None,
                read_data: ReadData::All,
            },
        )
        .unwrap()
        .ok()
    );

    let target = fx.target();
    let restore = |prefix: &str, opts: RestoreOptions| {
        let opts = RestoreOptions {
            new_account_prefix: Some(prefix.into()),
            ..opts
        };
        let r = restore_account(&fx.source(), target.as_ref(), "a@d.test", &opts).unwrap();
        (r, fx.find_account(&format!("{prefix}a@d.test")).mailbox_id)
    };
    // From the target alone: a's full of run 2, rolled forward by run 3's logs.
    let (r, m) = restore(
        "br_",
        RestoreOptions {
            backup_redo_only: true,
            ..Default::default()
        },
    );
    assert_eq!(r.full_label, sessions[1].label.to_string());
    assert!(r.redo_files > 0);
    assert_eq!(state(&fx, m), before_run3);
    // To a point in time between the runs.
    let (_, m) = restore(
        "t1_",
        RestoreOptions {
            to_time: Some(t1),
            ..Default::default()
        },
    );
    assert_eq!(state(&fx, m), at_t1);
    // Everything: the target, then the home's logs.
    let (_, m) = restore("all_", RestoreOptions::default());
    assert_eq!(state(&fx, m), live);
}
