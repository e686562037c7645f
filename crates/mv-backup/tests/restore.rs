//! Restore tools at the library level: a restore from a filesystem and from an
//! S3 target, and playredo (zmplayredo, in `restore/playredo.rs`).

mod common;

on_both_targets!(
    seed_scenario_restore_to_before_the_delete_into_a_new_account,
    unchanged_account_reuses_its_snapshot_and_restores_after_the_first_full_is_deleted,
    first_incremental_after_a_full_copies_only_what_followed_it,
    a_full_covers_the_changes_made_while_it_runs,
);

use common::{Fx, message};

#[path = "restore/playredo.rs"]
mod playredo;
use mv_home::Home;
use mv_store::{Store, StoreOptions};
use mv_types::MailboxId;

use mv_backup::{RestoreOptions, SessionKind, restore_account};
use mv_store::snapshot::MailboxState;

/// A state without the fields that name the mailbox.
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

fn inbox_ids(fx: &Fx, id: MailboxId) -> Vec<mv_types::ItemId> {
    fx.store
        .mailbox(id)
        .messages(mv_redo::ops::folders::INBOX)
        .unwrap()
        .iter()
        .map(|i| mv_types::ItemId(i.id))
        .collect()
}

fn pause() {
    std::thread::sleep(std::time::Duration::from_millis(5));
}

fn seed_scenario_restore_to_before_the_delete_into_a_new_account(fx: Fx) {
    let user = fx.account("user@d.test");
    let other = fx.account("other@d.test");
    let mb = user.mailbox_id;
    for i in 0..4 {
        fx.deliver(&message(&format!("a{i}"), 3000 + i), &[&user, &other]);
    }
    let full = fx.backup(SessionKind::Full).sessions[0].label;
    let full_state = state(&fx.store, mb);
    pause();
    for i in 0..3 {
        fx.deliver(&message(&format!("b{i}"), 2000 + i), &[&user]);
    }
    let ids = inbox_ids(&fx, mb);
    fx.store
        .set_flags(mb, &ids[..2], mv_store::FlagChange::Add(4))
        .ok();
    let tag = fx.store.create_tag(mb, "important", 3).unwrap();
    fx.store.set_tags(mb, &ids[1..3], &[tag]).unwrap();
    fx.backup(SessionKind::Incremental);
    fx.deliver(&message("c0", 2500), &[&user]);
    pause();
    let before = state(&fx.store, mb);
    let t = mv_types::UtcMillis::now();
    pause();
    // The user deletes messages and empties Trash.
    let ids = inbox_ids(&fx, mb);
    fx.store
        .move_items(mb, &ids[..4], mv_redo::ops::folders::TRASH)
        .unwrap();
    fx.store
        .empty_folder(mb, mv_redo::ops::folders::TRASH)
        .unwrap();
    fx.deliver(&message("d0", 1800), &[&user]);
    let live_after = state(&fx.store, mb);
    assert_ne!(before, live_after);

    let target = fx.target();
    let opts = RestoreOptions {
        label: Some(full),
        to_time: Some(t),
        new_account_prefix: Some("restore_".into()),
        ..Default::default()
    };
    let r = restore_account(&fx.source(), target.as_ref(), "user@d.test", &opts).unwrap();
    assert_eq!(r.restored_as, "restore_user@d.test");
    let restored = fx.find_account("restore_user@d.test");
    assert_ne!(restored.mailbox_id, mb);
    assert_ne!(restored.id, user.id);
    assert_eq!(state(&fx.store, restored.mailbox_id), before);
    // Byte-exact messages.
    let rm = fx.store.mailbox(restored.mailbox_id);
    for item in rm.items(None, Some(mv_store::ItemKind::Message)).unwrap() {
        let bytes = fx.store.read_blob(restored.mailbox_id, &item).unwrap();
        let orig = fx
            .store
            .mailbox(mb)
            .item(mv_types::ItemId(item.id))
            .unwrap();
        if let Some(o) = orig {
            assert_eq!(bytes, fx.store.read_blob(mb, &o).unwrap());
        }
    }
    // The original is untouched.
    assert_eq!(state(&fx.store, mb), live_after);
    assert_eq!(fx.find_account("user@d.test").id, user.id);

    // --skipDeletes: everything, deleted items kept.
    let r = restore_account(
        &fx.source(),
        target.as_ref(),
        "user@d.test",
        &RestoreOptions {
            skip_deletes: true,
            new_account_prefix: Some("keep_".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(r.skipped_deletes > 0);
    let kept = fx.find_account("keep_user@d.test");
    let n = |id| {
        fx.store
            .mailbox(id)
            .items(None, Some(mv_store::ItemKind::Message))
            .unwrap()
            .len()
    };
    assert_eq!(n(kept.mailbox_id), n(mb) + 4);

    // -rf: exactly the full.
    restore_account(
        &fx.source(),
        target.as_ref(),
        "user@d.test",
        &RestoreOptions {
            full_only: true,
            new_account_prefix: Some("full_".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let f = fx.find_account("full_user@d.test");
    assert_eq!(state(&fx.store, f.mailbox_id), full_state);

    // -br: only the incremental's logs (the home's archive and redo.log ignored).
    restore_account(
        &fx.source(),
        target.as_ref(),
        "user@d.test",
        &RestoreOptions {
            backup_redo_only: true,
            new_account_prefix: Some("br_".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let b = fx.find_account("br_user@d.test");
    let sb = state(&fx.store, b.mailbox_id);
    assert!(sb.info.applied_change < before.info.applied_change);
    assert!(sb.info.applied_change > full_state.info.applied_change);
}

/// Every file below `dir`, whatever its name.
fn all_files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(all_files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn files_under(dir: &std::path::Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p, ext));
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn a_failed_in_place_restore_leaves_the_account_as_it_was() {
    let fx = Fx::new();
    let user = fx.account("user@d.test");
    let mb = user.mailbox_id;
    for i in 0..5 {
        fx.deliver(&message(&format!("a{i}"), 4000 + i), &[&user]);
    }
    fx.backup(SessionKind::Full);
    for i in 0..3 {
        fx.deliver(&message(&format!("b{i}"), 3000 + i), &[&user]);
    }
    fx.backup(SessionKind::Incremental);
    fx.deliver(&message("c0", 2000), &[&user]);
    let live = state(&fx.store, mb);
    let target = fx.target();
    let in_place = RestoreOptions::default();
    let untouched = |why: &str| {
        assert_eq!(fx.find_account("user@d.test").mailbox_id, mb, "{why}");
        assert_eq!(state(&fx.store, mb), live, "{why}");
        fx.deliver(&message("still-works", 100), &[&user]);
        fx.store
            .delete_items(mb, &[*inbox_ids(&fx, mb).last().unwrap()])
            .unwrap();
    };

    // A truncated pack: the error names it, the account is as it was.
    let pack = files_under(&fx.target_dir.join("packs"), "zip")[0].clone();
    let bytes = std::fs::read(&pack).unwrap();
    std::fs::write(&pack, &bytes[..bytes.len() / 2]).unwrap();
    let err = restore_account(&fx.source(), target.as_ref(), "user@d.test", &in_place)
        .unwrap_err()
        .to_string();
    let name = pack.file_name().unwrap().to_str().unwrap();
    assert!(err.contains(name), "{err}");
    untouched("truncated pack");
    std::fs::write(&pack, &bytes).unwrap();
    let live = state(&fx.store, mb);

    // A damaged record in the incremental's redo log: named with its offset.
    let log = files_under(&fx.target_dir.join("sessions"), "log")[0].clone();
    let mut bytes = std::fs::read(&log).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&log, &bytes).unwrap();
    let err = restore_account(&fx.source(), target.as_ref(), "user@d.test", &in_place)
        .unwrap_err()
        .to_string();
    let name = log.file_name().unwrap().to_str().unwrap();
    assert!(err.contains(name), "{err}");
    assert_eq!(fx.find_account("user@d.test").mailbox_id, mb);
    assert_eq!(state(&fx.store, mb), live);

    // --ignoreRedoErrors: the rest is restored and what was skipped is reported.
    let r = restore_account(
        &fx.source(),
        target.as_ref(),
        "user@d.test",
        &RestoreOptions {
            ignore_redo_errors: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!r.skipped.is_empty(), "{r:?}");
    assert_eq!(r.replaced_mailbox_id, Some(mb.0));
    let now = fx.find_account("user@d.test");
    assert_ne!(now.mailbox_id, mb);
    let inbox = fx
        .store
        .mailbox(now.mailbox_id)
        .messages(mv_redo::ops::folders::INBOX)
        .unwrap();
    assert!(
        inbox.len() >= 5,
        "the full's messages at least: {}",
        inbox.len()
    );
    // The old mailbox is retired; new mail goes to the new one.
    assert!(fx.store.mailbox(mb).info().unwrap().unwrap().deleted);
    fx.deliver(&message("after", 100), &[&now]);
}

/// A second full links an unchanged account's snapshot from the first one (same
/// content, newer redo position); that full restores the account exactly even
/// once the first full is deleted, and the changed account gets a new snapshot.
fn unchanged_account_reuses_its_snapshot_and_restores_after_the_first_full_is_deleted(fx: Fx) {
    use mv_backup::session::account_dir;
    let a = fx.account("a@d.test");
    let b = fx.account("b@d.test");
    for i in 0..3 {
        fx.deliver(&message(&format!("m{i}"), 4000 + i), &[&a, &b]);
    }
    let f1 = fx.backup(SessionKind::Full);
    assert!(f1.ok(), "{:?}", f1.sessions);
    fx.deliver(&message("only-a", 3000), &[&a]);
    let t = fx.target();
    let f2 = mv_backup::backup(
        &fx.source(),
        t.clone(),
        fx.opts(SessionKind::Full),
        &mv_backup::NoProgress,
    )
    .unwrap();
    assert!(f2.ok(), "{:?}", f2.sessions);
    let (l1, l2) = (f1.sessions[0].label, f2.sessions[0].label);
    let catalog = mv_backup::Catalog::load(t.as_ref()).unwrap();
    let session = |l| catalog.get(&l).unwrap().session().unwrap().clone();
    let (s1, s2) = (session(l1), session(l2));
    let sum = |s: &mv_backup::Session, rel: &str| {
        s.files
            .iter()
            .find(|f| f.path == rel)
            .map(|f| (f.size, f.blake3.clone()))
            .unwrap_or_else(|| panic!("{rel} not in {}", s.label))
    };
    let db = |acc: &mv_directory::Account| format!("{}/db/mailbox.sqlite", account_dir(&acc.id));
    let lst = |acc: &mv_directory::Account| format!("{}/blobs.lst", account_dir(&acc.id));
    assert_eq!(
        sum(&s1, &db(&b)),
        sum(&s2, &db(&b)),
        "unchanged: same snapshot"
    );
    assert_eq!(sum(&s1, &lst(&b)), sum(&s2, &lst(&b)));
    assert_ne!(
        sum(&s1, &db(&a)),
        sum(&s2, &db(&a)),
        "changed: new snapshot"
    );
    let (b1, b2) = (s1.account(&b.id).unwrap(), s2.account(&b.id).unwrap());
    assert_eq!(b1.change, b2.change);
    assert!(
        (b2.redo_seq, b2.redo_lsn) > (b1.redo_seq, b1.redo_lsn),
        "the reused snapshot stands at the newer position: {b1:?} {b2:?}"
    );
    let from = |s: &mv_backup::Session, rel: &str| s.file(rel).unwrap().from;
    assert_eq!(from(&s2, &db(&b)), Some(l1), "named again, not copied");
    assert_eq!(from(&s2, &db(&a)), Some(l2));
    assert_eq!(f2.sessions[0].stats.blobs_new, 1);
    let v = mv_backup::verify(
        t.as_ref(),
        &mv_backup::VerifyOptions {
            label: None,
            read_data: mv_backup::ReadData::All,
        },
    )
    .unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);

    // The first full goes; the second still restores b byte for byte.
    let del = mv_backup::delete(
        t.as_ref(),
        &mv_backup::DeleteOptions {
            spec: mv_backup::DeleteSpec::UpTo(l1),
            dry_run: false,
            lock_wait: std::time::Duration::from_secs(1),
            live_accounts: None,
            now: mv_types::UtcMillis::now(),
        },
    )
    .unwrap();
    assert_eq!(del.deleted, vec![l1.to_string()], "{del:?}");
    let r = restore_account(
        &fx.source(),
        t.as_ref(),
        "b@d.test",
        &RestoreOptions {
            label: Some(l2),
            new_account_prefix: Some("r_".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let restored = fx.find_account(&r.restored_as);
    assert_eq!(
        state(&fx.store, restored.mailbox_id),
        state(&fx.store, b.mailbox_id)
    );
}

/// Records logged before a full are in its snapshots: the incremental after it
/// copies only the log of what followed (the full rolled the redo log over), and
/// the full plus that incremental restore the account to now.
fn first_incremental_after_a_full_copies_only_what_followed_it(fx: Fx) {
    let a = fx.account("a@d.test");
    for i in 0..5 {
        fx.deliver(&message(&format!("before-{i}"), 20_000), &[&a]);
    }
    let covered = fx.store.redo().position();
    let f = fx.backup(SessionKind::Full);
    assert!(f.ok(), "{:?}", f.sessions);
    fx.deliver(&message("after", 2000), &[&a]);
    let t = fx.target();
    let r = mv_backup::backup(
        &fx.source(),
        t.clone(),
        fx.opts(SessionKind::Incremental),
        &mv_backup::NoProgress,
    )
    .unwrap();
    assert!(r.ok(), "{:?}", r.sessions);
    let catalog = mv_backup::Catalog::load(t.as_ref()).unwrap();
    let incr = catalog
        .get(&r.sessions[0].label)
        .unwrap()
        .session()
        .unwrap()
        .clone();
    assert!(!incr.redo_logs.is_empty());
    for l in &incr.redo_logs {
        assert!(
            l.first_lsn > covered.lsn.0,
            "log {} starts at {} though the full covers up to {}",
            l.name,
            l.first_lsn,
            covered.lsn.0
        );
    }
    let copied: u64 = incr.redo_logs.iter().map(|l| l.size).sum();
    assert!(
        copied < 20_000,
        "{copied} bytes of redo log for one 2 KB message"
    );
    let r = restore_account(
        &fx.source(),
        t.as_ref(),
        "a@d.test",
        &RestoreOptions {
            new_account_prefix: Some("r_".into()),
            backup_redo_only: true,
            ..Default::default()
        },
    )
    .unwrap();
    let restored = fx.find_account(&r.restored_as);
    assert_eq!(
        state(&fx.store, restored.mailbox_id),
        state(&fx.store, a.mailbox_id)
    );
}

/// Delivers a message to one account each time the backup finishes an account,
/// and notes the moment after each delivery with the account's state then.
struct DeliverDuring<'a> {
    store: &'a Store,
    to: mv_directory::Account,
    seen: std::sync::Mutex<Vec<(mv_types::UtcMillis, MailboxState, u64)>>,
}

impl mv_backup::Progress for DeliverDuring<'_> {
    fn account_done(&self, _email: &str, _ok: bool) {
        let mut seen = self.seen.lock().unwrap();
        let n = seen.len();
        self.store
            .deliver(
                &message(&format!("during-{n}"), 3000),
                &[self.to.mailbox_id],
                &mv_store::DeliverOptions::default(),
            )
            .unwrap();
        pause();
        let at = mv_types::UtcMillis::now();
        let sequence = self.store.redo().position().sequence;
        seen.push((at, state(self.store, self.to.mailbox_id), sequence));
        pause();
    }
}

/// Mail keeps arriving while a full runs: the full rolls the redo log over at its
/// end and holds the log written during its run, so every moment up to its end
/// can be restored from the target alone (`-br`: the home's archive is not
/// read), from this full or from the one before; the next incremental copies
/// the logs after it, none twice, none skipped.
fn a_full_covers_the_changes_made_while_it_runs(fx: Fx) {
    let a = fx.account("a@d.test");
    let b = fx.account("b@d.test");
    let c = fx.account("c@d.test");
    fx.deliver(&message("m0", 3000), &[&a, &b, &c]);
    let t = fx.target();
    let f1 = fx.backup(SessionKind::Full).sessions[0].label;
    fx.deliver(&message("m1", 3000), &[&a]);
    let during = DeliverDuring {
        store: &fx.store,
        to: a.clone(),
        seen: Default::default(),
    };
    let r =
        mv_backup::backup(&fx.source(), t.clone(), fx.opts(SessionKind::Full), &during).unwrap();
    assert!(r.ok(), "{:?}", r.sessions);
    let f2 = r.sessions[0].label;
    let seen = during.seen.into_inner().unwrap();
    assert_eq!(seen.len(), 3, "one delivery per account");
    // The log that was current during the run is closed and in the session.
    let run_seq = seen[2].2;
    assert_eq!(fx.store.redo().position().sequence, run_seq + 1);
    let catalog = mv_backup::Catalog::load(t.as_ref()).unwrap();
    let logs_of = |c: &mv_backup::Catalog, l: &mv_backup::Label| -> Vec<u64> {
        c.get(l)
            .unwrap()
            .session()
            .unwrap()
            .redo_logs
            .iter()
            .map(|l| l.seq)
            .collect()
    };
    let held = logs_of(&catalog, &f2);
    assert_eq!(held.last(), Some(&run_seq), "{held:?}");

    let restore = |label: Option<mv_backup::Label>, at, prefix: &str| {
        let r = restore_account(
            &fx.source(),
            t.as_ref(),
            "a@d.test",
            &RestoreOptions {
                label,
                to_time: Some(at),
                new_account_prefix: Some(prefix.into()),
                backup_redo_only: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(r.skipped.is_empty(), "{r:?}");
        state(&fx.store, fx.find_account(&r.restored_as).mailbox_id)
    };
    for (i, (at, want, _)) in seen.iter().enumerate() {
        assert_eq!(&restore(None, *at, &format!("n{i}_")), want, "point {i}");
        assert_eq!(
            &restore(Some(f1), *at, &format!("o{i}_")),
            want,
            "point {i} from {f1}"
        );
    }

    // The next incremental (after a full of the accounts restored above, in the
    // same run): the logs after the full's last, none twice, none skipped.
    fx.deliver(&message("after", 3000), &[&a]);
    let r = mv_backup::backup(
        &fx.source(),
        t.clone(),
        fx.opts(SessionKind::Incremental),
        &mv_backup::NoProgress,
    )
    .unwrap();
    assert!(r.ok(), "{:?}", r.sessions);
    let catalog = mv_backup::Catalog::load(t.as_ref()).unwrap();
    let mut all: Vec<u64> = catalog
        .sessions()
        .flat_map(|s| s.redo_logs.iter().map(|l| l.seq))
        .collect();
    all.sort_unstable();
    assert!(all.windows(2).all(|w| w[1] == w[0] + 1), "{all:?}");
    assert!(all.contains(&(run_seq + 1)), "{all:?}");
    assert_eq!(all.last(), Some(&(fx.store.redo().position().sequence - 1)));
    let r = restore_account(
        &fx.source(),
        t.as_ref(),
        "a@d.test",
        &RestoreOptions {
            label: Some(f1),
            new_account_prefix: Some("latest_".into()),
            backup_redo_only: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        state(&fx.store, fx.find_account(&r.restored_as).mailbox_id),
        state(&fx.store, a.mailbox_id)
    );
}

/// A restore that fails on a damaged database after the blobs were written and
/// after its replay had already put content in place (a record with a message
/// applied, a later one failing) leaves no file behind: no blob, no database,
/// nothing under the new mailbox's id, nothing staged. Every file of the store,
/// whatever its name, is compared.
#[test]
fn a_restore_failing_on_a_damaged_database_leaves_no_orphan_file() {
    let fx = Fx::new();
    let user = fx.account("user@d.test");
    for i in 0..3 {
        fx.deliver(&message(&format!("a{i}"), 3000 + i), &[&user]);
    }
    let work = fx
        .store
        .create_folder_path(user.mailbox_id, "/Work", "message")
        .unwrap();
    fx.backup(SessionKind::Full);
    // Replayed on top of the full: the first delivery applies (its content is
    // linked into the new mailbox), then the move into /Work fails, because
    // the damaged database has lost that folder.
    fx.deliver(&message("b0", 2000), &[&user]);
    let b1 = fx
        .store
        .add_message(user.mailbox_id, &message("b1", 2001), &Default::default())
        .unwrap();
    fx.store.move_items(user.mailbox_id, &[b1], work).unwrap();
    let db = files_under(&fx.target_dir.join("pieces"), "sqlite")[0].clone();
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        let n = c
            .execute("DELETE FROM folder WHERE id = ?1", [work])
            .unwrap();
        assert_eq!(n, 1);
    }
    let everything = |dir: &std::path::Path| {
        let mut v = all_files_under(dir);
        v.sort();
        v
    };
    let before = (
        everything(&fx.home.store_dir()),
        everything(&fx.home.db_dir()),
    );
    assert_eq!(files_under(&fx.home.store_dir(), "msg").len(), 5);
    let err = restore_account(
        &fx.source(),
        fx.target().as_ref(),
        "user@d.test",
        &RestoreOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("folder"), "{err}");
    let after = (
        everything(&fx.home.store_dir()),
        everything(&fx.home.db_dir()),
    );
    assert_eq!(after, before, "files left by the failed restore");
}

/// One rule for an incremental's redo log in the target: the copy whose size
/// and checksum match session.xml is used. A target copy deleted and one
/// damaged are both replaced by the intact copy in the home's archive, and the
/// report says so; with no intact copy (or with -br, which reads only the
/// target) the restore fails naming the target's file and what is wrong.
#[test]
fn a_missing_or_damaged_redo_log_in_the_target_is_read_from_the_intact_copy_in_the_archive() {
    let fx = Fx::new();
    let a = fx.account("a@d.test");
    fx.deliver(&message("a0", 2000), &[&a]);
    fx.backup(SessionKind::Full);
    fx.deliver(&message("a1", 2100), &[&a]);
    fx.deliver(&message("a2", 2200), &[&a]);
    // The home keeps its archived logs for a while after they are copied.
    let mut opts = fx.opts(SessionKind::Incremental);
    opts.keep_time = Some(std::time::Duration::from_secs(3600));
    let r = fx.backup_with(opts);
    assert!(r.ok(), "{:?}", r.sessions);
    let label = r.sessions[0].label;
    let catalog = mv_backup::Catalog::load(fx.target().as_ref()).unwrap();
    let incr = catalog.get(&label).unwrap().session().unwrap().clone();
    let log = incr.redo_logs.last().unwrap().clone();
    let in_target = fx.session_path(&label, &format!("redologs/{}", log.name));
    let in_archive = fx.home.redo_archive_dir().join(&log.name);
    let intact = std::fs::read(&in_target).unwrap();
    assert_eq!(std::fs::read(&in_archive).unwrap(), intact);
    let mut damaged = intact.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x55;

    let restore = |prefix: &str, br: bool| {
        restore_account(
            &fx.source(),
            fx.target().as_ref(),
            "a@d.test",
            &RestoreOptions {
                new_account_prefix: Some(prefix.into()),
                backup_redo_only: br,
                ..Default::default()
            },
        )
    };
    let same = |r: &mv_backup::AccountRestoreReport| {
        let restored = fx.find_account(&r.restored_as);
        assert_eq!(
            state(&fx.store, restored.mailbox_id),
            state(&fx.store, a.mailbox_id)
        );
    };
    let used_archive = |r: &mv_backup::AccountRestoreReport, what: &str| {
        assert!(
            r.notes.iter().any(|n| n.contains(&log.name)
                && n.contains(what)
                && n.contains(&in_archive.display().to_string())),
            "{:?}",
            r.notes
        );
    };

    // Intact: the target's copy, nothing said.
    let r = restore("i_", false).unwrap();
    same(&r);
    assert!(
        !r.notes.iter().any(|n| n.contains("redo log")),
        "{:?}",
        r.notes
    );

    // Deleted from the target.
    std::fs::remove_file(&in_target).unwrap();
    let r = restore("d_", false).unwrap();
    same(&r);
    used_archive(&r, "missing");

    // Damaged in the target: handled alike.
    std::fs::write(&in_target, &damaged).unwrap();
    let r = restore("x_", false).unwrap();
    same(&r);
    used_archive(&r, "damaged");

    // -br reads the target only: the damage is an error naming the file.
    let e = restore("b_", true).unwrap_err().to_string();
    assert!(
        e.contains(&log.name) && e.contains("damaged") && e.contains("-br"),
        "{e}"
    );

    // No intact copy anywhere: an error naming the target's file.
    std::fs::write(&in_archive, &damaged).unwrap();
    let e = restore("n_", false).unwrap_err().to_string();
    assert!(
        e.contains(&log.name) && e.contains("damaged") && e.contains("no intact copy"),
        "{e}"
    );
    std::fs::write(&in_archive, &intact).unwrap();
    std::fs::write(&in_target, &intact).unwrap();
}
