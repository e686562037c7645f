//! Backups against a real store: online consistency, dedup, verify, incrementals,
//! retention, abort, locking, free space.

mod common;

// Each test body runs against a filesystem target (fs::NAME) and an S3 target on
// an in-process S3-compatible server (s3::NAME).
on_both_targets!(
    full_backup_during_delivery_is_consistent_per_account,
    unchanged_second_full_writes_under_five_percent,
    message_to_fifty_accounts_is_stored_once,
    verify_read_data_finds_a_flipped_byte_and_names_the_account,
    damaged_blob_in_the_store_fails_only_its_account,
    incremental_copies_exactly_the_new_logs_and_reports_gaps,
    delete_one_month_keeps_what_retained_sessions_need,
    delete_by_label_never_removes_the_latest_full_or_its_chain,
    delete_keeps_every_named_piece_and_no_empty_directory,
    abort_stops_between_accounts_and_keeps_what_completed,
    a_second_operation_waits_then_reports_still_in_progress,
    query_prints_the_original_layout_and_json,
    compression_options_and_shared_blobs_off,
);

use common::{Fx, du, message};

#[path = "backup/retention.rs"]
mod retention;
use mv_backup::session::{AccountState, account_dir, parse_blob_list};
use mv_backup::{
    BackupError, Catalog, DeleteOptions, FakeClock, Label, NoProgress, Pool, Progress,
    QueryOptions, ReadData, SessionKind, SessionStatus, Target, VerifyOptions,
};
use mv_types::{Digest, ItemId, MailboxId, UtcMillis};
use retention::{
    delete_by_label_never_removes_the_latest_full_or_its_chain,
    delete_keeps_every_named_piece_and_no_empty_directory,
    delete_one_month_keeps_what_retained_sessions_need,
};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

fn verify(fx: &Fx, read: ReadData) -> mv_backup::VerifyReport {
    mv_backup::verify(
        fx.target().as_ref(),
        &VerifyOptions {
            label: None,
            read_data: read,
        },
    )
    .unwrap()
}

/// Rows of a table, as text, for comparing two databases.
fn dump(conn: &rusqlite::Connection, sql: &str) -> Vec<String> {
    let mut st = conn.prepare(sql).unwrap();
    let n = st.column_count();
    st.query_map([], |r| {
        let mut row = Vec::new();
        for i in 0..n {
            let v: rusqlite::types::Value = r.get(i)?;
            row.push(format!("{v:?}"));
        }
        Ok(row.join("|"))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn mailbox_dump(path: &std::path::Path) -> Vec<Vec<String>> {
    let c = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    vec![
        dump(
            &c,
            "SELECT mailbox_id, account_id, email, applied_change, next_item_id, size_used, created_ms, deleted FROM meta",
        ),
        dump(&c, "SELECT * FROM folder ORDER BY id"),
        dump(&c, "SELECT * FROM tag ORDER BY id"),
        dump(&c, "SELECT * FROM item ORDER BY id"),
        dump(&c, "SELECT * FROM tombstone ORDER BY change, id"),
    ]
}

fn full_backup_during_delivery_is_consistent_per_account(fx: Fx) {
    let accounts: Vec<_> = (0..4)
        .map(|i| fx.account(&format!("u{i}@d.test")))
        .collect();
    for (i, a) in accounts.iter().enumerate() {
        for j in 0..5 {
            fx.deliver(&message(&format!("pre-{i}-{j}"), 3000), &[a]);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicUsize::new(0));
    let report = std::thread::scope(|s| {
        for t in 0..4 {
            let stop = stop.clone();
            let delivered = delivered.clone();
            let fx = &fx;
            let accounts = &accounts;
            s.spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let to: Vec<&mv_directory::Account> = if n % 3 == 0 {
                        accounts.iter().collect()
                    } else {
                        vec![&accounts[(t + n) % 4]]
                    };
                    fx.deliver(&message(&format!("live-{t}-{n}"), 2000 + n * 7), &to);
                    if n % 5 == 4 {
                        // Delete something too: its blob must stay until copied.
                        let mbox = accounts[t].mailbox_id;
                        let items = fx.store.mailbox(mbox).messages(2).unwrap();
                        if let Some(first) = items.first() {
                            fx.store.delete_items(mbox, &[ItemId(first.id)]).unwrap();
                        }
                    }
                    n += 1;
                    delivered.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        while delivered.load(Ordering::Relaxed) < 20 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut opts = fx.opts(SessionKind::Full);
        opts.pack_size = 16 << 10; // many packs
        let r = fx.backup_with(opts);
        // Deliveries kept going during the backup.
        let after = delivered.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(50));
        stop.store(true, Ordering::Relaxed);
        (r, after)
    });
    let (report, _) = report;
    assert!(report.ok(), "{report:?}");
    let session = &report.sessions[0];
    assert_eq!(session.accounts_completed, 4);
    assert!(delivered.load(Ordering::Relaxed) > 20);

    // Each snapshot equals a replay of the redo log up to its recorded change.
    let redo_dir = fx.home.redolog_dir();
    let mut paths = mv_redo::logs_in_dir(&redo_dir.join("archive")).unwrap();
    paths.extend(mv_redo::logs_in_dir(&redo_dir).unwrap());
    let records: Vec<mv_redo::Record> = mv_redo::read_files(&paths)
        .map(|r| r.unwrap().record)
        .collect();
    let catalog = Catalog::load(fx.target().as_ref()).unwrap();
    let s = catalog.sessions().next().unwrap();
    for a in &accounts {
        let entry = s.account(&a.id).unwrap();
        assert_eq!(entry.state, AccountState::Completed);
        let change = entry.change.unwrap();
        let snap = fx
            .target_dir
            .join(s.object_path(&format!("{}/db/mailbox.sqlite", account_dir(&a.id))));
        let replay_dir = tempfile::tempdir().unwrap();
        let home2 = mv_home::Home::at(replay_dir.path());
        let (store2, _) =
            mv_store::Store::open(&home2, mv_store::StoreOptions::for_home(&home2)).unwrap();
        let mine: Vec<&mv_redo::Record> = records
            .iter()
            .filter(|r| r.mailbox.0 == 0 || (r.mailbox == a.mailbox_id && r.change.0 <= change))
            .collect();
        store2.replay(mine, &|_| true).unwrap();
        drop(store2);
        let replayed = home2
            .mailbox_db_dir()
            .join(format!("{}.sqlite", a.mailbox_id.0));
        let got = mailbox_dump(&snap);
        assert_eq!(
            got[0][0].split('|').nth(3).unwrap(),
            format!("Integer({change})")
        );
        assert_eq!(got, mailbox_dump(&replayed), "account {}", a.email);
    }
    // Every blob of every snapshot is in the target, intact.
    let v = verify(&fx, ReadData::All);
    assert!(v.ok(), "{:?}", v.problems);
    assert!(v.blobs_read > 20);
    // last_backup_at was set at the end.
    for a in &accounts {
        let at = fx
            .directory
            .lock()
            .unwrap()
            .last_backup_at(a.mailbox_id)
            .unwrap();
        assert_eq!(at, Some(session.ended.0));
    }
}

fn unchanged_second_full_writes_under_five_percent(fx: Fx) {
    let accounts: Vec<_> = (0..4)
        .map(|i| fx.account(&format!("u{i}@d.test")))
        .collect();
    for (i, a) in accounts.iter().enumerate() {
        // 50 KB: a typical average message size (attachments included).
        for j in 0..40 {
            fx.deliver(&message(&format!("m-{i}-{j}"), 50_000), &[a]);
        }
    }
    let t1 = fx.target();
    let r1 = mv_backup::backup(
        &fx.source(),
        t1.clone(),
        fx.opts(SessionKind::Full),
        &NoProgress,
    )
    .unwrap();
    assert!(r1.ok());
    let first = t1.bytes_written();
    let size1 = du(&fx.target_dir);
    let t2 = fx.target();
    let r2 = mv_backup::backup(
        &fx.source(),
        t2.clone(),
        fx.opts(SessionKind::Full),
        &NoProgress,
    )
    .unwrap();
    assert!(r2.ok());
    let second = t2.bytes_written();
    let grown = du(&fx.target_dir) - size1;
    eprintln!("first full wrote {first} bytes, second {second} ({grown} on disk)");
    assert!(first > 4_000_000);
    assert!(second * 20 < first, "second full wrote {second} of {first}");
    assert!(grown * 20 < first, "target grew by {grown}");
    assert_eq!(r2.sessions[0].stats.blobs_new, 0);
    assert_eq!(r2.sessions[0].stats.blobs_shared, 160);
}

fn message_to_fifty_accounts_is_stored_once(fx: Fx) {
    let accounts: Vec<_> = (0..50)
        .map(|i| fx.account(&format!("r{i:02}@d.test")))
        .collect();
    let big = message("to-everyone", 200_000);
    fx.deliver(&big, &accounts.iter().collect::<Vec<_>>());
    let report = fx.backup(SessionKind::Full);
    assert!(report.ok());
    assert_eq!(report.sessions[0].accounts_completed, 50);
    let t = fx.target();
    let pool = Pool::load(t.as_ref()).unwrap();
    assert_eq!(pool.len(), 1);
    let d = Digest::of(&big);
    let mut copies = 0;
    for p in pool.packs() {
        let idx = t.get(&mv_backup::target::pack_path(&p.id, "idx")).unwrap();
        let idx = mv_backup::pack::PackIndex::decode("idx", &idx).unwrap();
        copies += idx.entries.iter().filter(|e| e.digest == d).count();
    }
    assert_eq!(copies, 1);
    let packs_bytes = du(&fx.target_dir.join("packs"));
    assert!(packs_bytes < 250_000, "{packs_bytes}");
    // Every account lists it.
    let catalog = Catalog::load(t.as_ref()).unwrap();
    let s = catalog.sessions().next().unwrap();
    for a in &accounts {
        let p = s.object_path(&format!("{}/blobs.lst", account_dir(&a.id)));
        assert_eq!(parse_blob_list(&p, &t.get(&p).unwrap()).unwrap(), vec![d]);
    }
}

fn verify_read_data_finds_a_flipped_byte_and_names_the_account(fx: Fx) {
    let a = fx.account("alice@d.test");
    let b = fx.account("bob@d.test");
    let c = fx.account("carol@d.test");
    fx.deliver(&message("shared", 5000), &[&a, &b, &c]);
    for (who, acct) in [("a", &a), ("b", &b), ("c", &c)] {
        for j in 0..3 {
            fx.deliver(&message(&format!("{who}-{j}"), 4000), &[acct]);
        }
    }
    let report = fx.backup(SessionKind::Full);
    assert!(report.ok());
    let v = verify(&fx, ReadData::All);
    assert!(v.ok(), "{:?}", v.problems);
    assert_eq!(v.blobs_read, 10);

    let t = fx.target();
    let pool = Pool::load(t.as_ref()).unwrap();
    let victim = Digest::of(&message("b-1", 4000));
    let loc = pool.locate(&victim).unwrap();
    let zip = fx.object_file(&loc.path);
    let mut bytes = std::fs::read(&zip).unwrap();
    bytes[loc.offset as usize + 100] ^= 0x20;
    std::fs::write(&zip, &bytes).unwrap();

    // Sizes are unchanged: only reading the data can tell.
    assert!(verify(&fx, ReadData::None).ok());
    let v = verify(&fx, ReadData::All);
    assert_eq!(v.problems.len(), 1, "{:?}", v.problems);
    let p = &v.problems[0];
    assert_eq!(p.accounts, vec!["bob@d.test".to_string()]);
    assert!(p.message.contains(&victim.to_hex()), "{}", p.message);
    assert!(p.message.contains("damaged"), "{}", p.message);
    let text = mv_backup::verify::format_text(&v);
    assert!(text.contains("affects: bob@d.test"), "{text}");
    // The subset that contains it finds it; an empty-ish subset is deterministic.
    let s1 = verify(&fx, ReadData::Subset(30.0));
    let s2 = verify(&fx, ReadData::Subset(30.0));
    assert_eq!(s1.blobs_read, s2.blobs_read);
    assert_eq!(s1.problems, s2.problems);

    // Truncated and zero-byte files are problems naming the account, never panics.
    bytes[loc.offset as usize + 100] ^= 0x20;
    std::fs::write(&zip, &bytes).unwrap();
    let label = report.sessions[0].label;
    let db = fx.file_of(&label, &format!("{}/db/mailbox.sqlite", account_dir(&c.id)));
    std::fs::write(&db, b"").unwrap();
    // a's metadata is in session.xml (format 2): its blob list is damaged instead.
    let lst = fx.file_of(&label, &format!("{}/blobs.lst", account_dir(&a.id)));
    let m = std::fs::read(&lst).unwrap();
    std::fs::write(&lst, &m[..m.len() / 2 - 1]).unwrap();
    let v = verify(&fx, ReadData::None);
    let who: BTreeSet<String> = v.problems.iter().flat_map(|p| p.accounts.clone()).collect();
    assert_eq!(
        who,
        ["alice@d.test", "carol@d.test"]
            .map(String::from)
            .into_iter()
            .collect(),
        "{:?}",
        v.problems
    );
    assert!(
        v.problems
            .iter()
            .any(|p| p.message.contains("truncated (no newline at the end)")),
        "{:?}",
        v.problems
    );
    // A damaged session.xml makes the session "missing, incomplete, or invalid".
    std::fs::write(fx.session_path(&label, "session.xml"), b"").unwrap();
    let q = mv_backup::query(t.as_ref(), &QueryOptions::default()).unwrap();
    assert_eq!(q.sessions[0].status, "missing, incomplete, or invalid");
    assert!(!verify(&fx, ReadData::None).ok());
}

fn damaged_blob_in_the_store_fails_only_its_account(fx: Fx) {
    let a = fx.account("a@d.test");
    let b = fx.account("b@d.test");
    fx.deliver(&message("a-1", 3000), &[&a]);
    fx.deliver(&message("b-1", 3000), &[&b]);
    let item = fx.store.mailbox(b.mailbox_id).messages(2).unwrap()[0].clone();
    let path = fx.store.blob_path(b.mailbox_id, &item);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let r = fx.backup(SessionKind::Full);
    let s = &r.sessions[0];
    assert_eq!(s.status, SessionStatus::CompletedWithErrors);
    assert_eq!(s.status_text, "completed (with errors)");
    assert_eq!(s.accounts_completed, 1);
    assert_eq!(s.errors.len(), 1);
    assert_eq!(s.errors[0].account.as_deref(), Some("b@d.test"));
    let msg = &s.errors[0].message;
    assert!(
        msg.contains(&format!("message {}", item.id)) && msg.contains("damaged"),
        "{msg}"
    );
    assert!(
        fx.directory
            .lock()
            .unwrap()
            .last_backup_at(a.mailbox_id)
            .unwrap()
            .is_some()
    );
    assert!(
        fx.directory
            .lock()
            .unwrap()
            .last_backup_at(b.mailbox_id)
            .unwrap()
            .is_none()
    );
    // The failed account left nothing in the session; the session verifies.
    assert!(!fx.session_path(&s.label, &account_dir(&b.id)).exists());
    let v = verify(&fx, ReadData::All);
    assert!(v.ok(), "{:?}", v.problems);
}

fn archive_seqs(fx: &Fx) -> Vec<u64> {
    mv_redo::list_archive(&fx.home.redo_archive_dir())
        .unwrap()
        .iter()
        .map(|l| l.sequence)
        .collect()
}

fn incremental_copies_exactly_the_new_logs_and_reports_gaps(fx: Fx) {
    let a = fx.account("a@d.test");
    let b = fx.account("b@d.test");
    fx.deliver(&message("1", 2000), &[&a, &b]);
    fx.store.redo().rollover().unwrap();
    let full = fx.backup(SessionKind::Full);
    let full_seq = full.sessions[0].redo.unwrap().0;
    for i in 0..3 {
        fx.deliver(&message(&format!("x{i}"), 2000), &[&a]);
        fx.store.redo().rollover().unwrap();
    }
    fx.deliver(&message("last", 2000), &[&b]);
    let before: Vec<u64> = archive_seqs(&fx)
        .into_iter()
        .filter(|s| *s >= full_seq)
        .collect();
    let current = fx.store.redo().position().sequence;
    // keep time: an hour; copied logs stay in the archive.
    let mut opts = fx.opts(SessionKind::Incremental);
    opts.keep_time = Some(Duration::from_secs(3600));
    let r = fx.backup_with(opts);
    assert!(r.ok(), "{:?}", r.sessions);
    assert_eq!(r.sessions.len(), 1, "every account has a full");
    let catalog = Catalog::load(fx.target().as_ref()).unwrap();
    let incr = catalog
        .get(&r.sessions[0].label)
        .unwrap()
        .session()
        .unwrap()
        .clone();
    let copied: Vec<u64> = incr.redo_logs.iter().map(|l| l.seq).collect();
    let mut want = before.clone();
    want.push(current);
    assert_eq!(copied, want);
    assert_eq!(incr.redo, Some((full_seq, current)));
    assert!(
        archive_seqs(&fx).contains(&current),
        "younger than keep time: copied, not moved"
    );
    // Neither entry changed since the full: no account file.
    for acct in [&a, &b] {
        assert!(
            !fx.session_path(&incr.label, &account_dir(&acct.id))
                .exists()
        );
    }
    // The directory did not change since the full either: the incremental
    // names the full's dump instead of writing it again.
    let catalog = Catalog::load(fx.target().as_ref()).unwrap();
    let dump = catalog
        .get(&incr.label)
        .unwrap()
        .session()
        .unwrap()
        .file("ldap/ldap.bak")
        .unwrap()
        .clone();
    assert!(dump.from.is_some_and(|l| l < incr.label), "{dump:?}");
    assert!(fx.file_of(&incr.label, "ldap/ldap.bak").is_file());
    assert!(!fx.session_path(&incr.label, "ldap/ldap.bak").exists());

    // Nothing new: nothing copied, and the later run removes what is now expired.
    // b's entry changed: the run records it, and only it.
    fx.directory
        .lock()
        .unwrap()
        .modify_account(
            &b.email,
            &[mv_directory::Modification::set("displayName", "B, renamed")],
        )
        .unwrap();
    let r = fx.backup(SessionKind::Incremental);
    assert!(r.ok());
    assert_eq!(r.sessions[0].redo, None);
    let entry_of = |acct: &mv_directory::Account| {
        fx.session_path(
            &r.sessions[0].label,
            &format!("{}/ldap.ldif", account_dir(&acct.id)),
        )
    };
    assert!(!entry_of(&a).exists());
    let recorded = std::fs::read_to_string(entry_of(&b)).unwrap();
    assert!(recorded.contains("displayName: B, renamed"), "{recorded}");
    assert!(
        archive_seqs(&fx).iter().all(|s| *s < full_seq),
        "{:?}",
        archive_seqs(&fx)
    );

    // A log lost before the next incremental: the original's gap text.
    fx.deliver(&message("gap-1", 2000), &[&a]);
    let lost = fx.store.redo().rollover().unwrap().unwrap();
    std::fs::remove_file(&lost.path).unwrap();
    fx.deliver(&message("gap-2", 2000), &[&a]);
    let r = fx.backup(SessionKind::Incremental);
    let s = &r.sessions[0];
    assert_eq!(s.status, SessionStatus::CompletedWithErrors);
    let want = format!(
        "Found gap in redo log sequence; missing {0} through {0}; To avoid future restore problems, \
         discard all existing backups and take a full backup of all accounts; If this error occurred \
         during restore, try the --ignoreRedoErrors option",
        lost.sequence
    );
    assert_eq!(s.errors.len(), 1, "{:?}", s.errors);
    assert_eq!(s.errors[0].message, want);
    let v = verify(&fx, ReadData::All);
    assert!(
        v.problems.iter().any(|p| p.message == want),
        "{:?}",
        v.problems
    );

    // A new account gets a full session in the same run.
    let c = fx.account("c@d.test");
    fx.deliver(&message("c", 2000), &[&c]);
    let r = fx.backup(SessionKind::Incremental);
    assert_eq!(r.sessions.len(), 2);
    assert_eq!(r.sessions[0].kind, SessionKind::Full);
    assert_eq!(r.sessions[0].accounts, 1);
    assert_eq!(r.sessions[1].kind, SessionKind::Incremental);
    assert_eq!(r.sessions[1].accounts, 3);
    assert!(r.sessions[0].label < r.sessions[1].label);
}

struct AbortAfterFirst(Arc<mv_backup::progress::Job>);
impl Progress for AbortAfterFirst {
    fn account_done(&self, _: &str, _: bool) {
        self.0.request_abort();
    }
}

fn abort_stops_between_accounts_and_keeps_what_completed(fx: Fx) {
    for i in 0..3 {
        let a = fx.account(&format!("u{i}@d.test"));
        fx.deliver(&message(&format!("{i}"), 2000), &[&a]);
    }
    let t: Arc<dyn Target> = fx.target();
    let prepared = mv_backup::prepare(&fx.source(), t.clone(), fx.opts(SessionKind::Full)).unwrap();
    let label = prepared.labels()[0];
    // It shows as in progress while prepared.
    let q = mv_backup::query(t.as_ref(), &QueryOptions::default()).unwrap();
    assert_eq!(q.sessions[0].status, "in progress");
    assert_eq!(q.sessions[0].label, label.to_string());
    let progress = AbortAfterFirst(prepared.job());
    let r = prepared.run(&fx.source(), &progress).unwrap();
    let s = &r.sessions[0];
    assert_eq!(s.status, SessionStatus::Aborted);
    assert_eq!(s.status_text, "completed (aborted by command)");
    assert_eq!(s.accounts_completed, 1);
    // Unmistakable for scripts: the accounts left out, and an error naming them.
    assert_eq!(s.missing.len(), 2, "{:?}", s.missing);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["sessions"][0]["status"], "aborted");
    let msg = json["sessions"][0]["errors"][0]["message"]
        .as_str()
        .unwrap();
    assert!(msg.contains("2 of 3 accounts not backed up"), "{msg}");
    assert!(!r.ok());
    let v = verify(&fx, ReadData::All);
    assert!(v.ok(), "{:?}", v.problems);
    let text = mv_backup::query::format_text(
        &mv_backup::query(t.as_ref(), &QueryOptions::default()).unwrap(),
        false,
    );
    assert!(
        text.contains("Status:  completed (aborted by command)"),
        "{text}"
    );

    // Through the flag file, as zmbackupabort from another process does it.
    let prepared = mv_backup::prepare(&fx.source(), t.clone(), fx.opts(SessionKind::Full)).unwrap();
    let label = prepared.labels()[0];
    mv_backup::request_abort(t.as_ref(), &label.to_string()).unwrap();
    let r = prepared.run(&fx.source(), &NoProgress).unwrap();
    assert_eq!(r.sessions[0].status, SessionStatus::Aborted);
    assert_eq!(r.sessions[0].accounts_completed, 0);
    let e = mv_backup::request_abort(t.as_ref(), &label.to_string()).unwrap_err();
    assert!(e.to_string().contains("not running"), "{e}");
}

fn a_second_operation_waits_then_reports_still_in_progress(fx: Fx) {
    fx.account("a@d.test");
    let t: Arc<dyn Target> = fx.target();
    let prepared = mv_backup::prepare(&fx.source(), t.clone(), fx.opts(SessionKind::Full)).unwrap();
    let label = prepared.labels()[0];
    let mut opts = fx.opts(SessionKind::Full);
    opts.lock_wait = Duration::from_millis(500);
    let started = std::time::Instant::now();
    let e = mv_backup::backup(&fx.source(), fx.target(), opts, &NoProgress).unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(450));
    assert!(matches!(e, BackupError::InProgress(_)));
    assert_eq!(
        e.to_string(),
        format!("Backup {label} is still in progress")
    );
    let e = mv_backup::delete(
        fx.target().as_ref(),
        &DeleteOptions {
            spec: mv_backup::DeleteSpec::Before(UtcMillis::now()),
            dry_run: false,
            lock_wait: Duration::from_millis(200),
            live_accounts: None,
            now: UtcMillis::now(),
        },
    )
    .unwrap_err();
    assert!(e.to_string().ends_with("is still in progress"), "{e}");
    prepared.run(&fx.source(), &NoProgress).unwrap();
    fx.backup(SessionKind::Full);
}

fn require_all_free_space(fx: &Fx) -> mv_backup::BackupOptions {
    fx.account("a@d.test");
    fx.directory
        .lock()
        .unwrap()
        .modify_global(&[mv_directory::Modification::set(
            "zimbraBackupMinFreeSpace",
            "100%",
        )])
        .unwrap();
    let mut opts = fx.opts(SessionKind::Full);
    opts.min_free_space = None; // from the directory
    opts
}

#[test]
fn free_space_below_the_minimum_refuses_to_start() {
    let fx = Fx::new();
    let opts = require_all_free_space(&fx);
    let e = mv_backup::backup(&fx.source(), fx.target(), opts, &NoProgress).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("Backup cannot start because free space is less than 100%"),
        "{e}"
    );
    assert!(
        Catalog::load(fx.target().as_ref())
            .unwrap()
            .entries
            .is_empty()
    );
}

/// An object store has no free space to measure: the minimum never stops it.
#[test]
fn s3_target_has_no_free_space_minimum() {
    let fx = Fx::new_s3();
    let opts = require_all_free_space(&fx);
    let r = mv_backup::backup(&fx.source(), fx.target(), opts, &NoProgress).unwrap();
    assert!(r.ok(), "{r:?}");
}

fn query_prints_the_original_layout_and_json(fx: Fx) {
    let a = fx.account("a@d.test");
    fx.deliver(&message("1", 1000), &[&a]);
    let full = fx.backup(SessionKind::Full).labels()[0];
    fx.deliver(&message("2", 1000), &[&a]);
    let incr = fx.backup(SessionKind::Incremental).labels()[0];
    let t = fx.target();
    let r = mv_backup::query(t.as_ref(), &QueryOptions::default()).unwrap();
    let text = mv_backup::query::format_text(&r, false);
    let blocks: Vec<&str> = text.split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "{text}");
    let lines: Vec<&str> = blocks[1].lines().collect();
    assert_eq!(lines[0], format!("Label:   {full}"));
    assert_eq!(lines[1], "Type:    full");
    assert_eq!(lines[2], "Status:  completed");
    assert!(
        lines[3].starts_with("Started: ") && lines[3].contains(", 20"),
        "{}",
        lines[3]
    );
    assert!(lines[4].starts_with("Ended:   "));
    assert!(lines[5].starts_with("Redo log sequence range: ") && lines[5].contains(" .. "));
    assert_eq!(lines[6], "Number of accounts: 1");
    assert!(blocks[0].starts_with(&format!("Label:   {incr}\nType:    incremental\n")));
    // Filters.
    let only_full = mv_backup::query(
        t.as_ref(),
        &QueryOptions {
            kind: Some(SessionKind::Full),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(only_full.sessions.len(), 1);
    let from = mv_backup::query(
        t.as_ref(),
        &QueryOptions {
            from: Some(incr.start),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(from.sessions.len(), 1);
    assert_eq!(from.sessions[0].label, incr.to_string());
    let by_account = mv_backup::query(
        t.as_ref(),
        &QueryOptions {
            accounts: vec!["a@d.test".into()],
            ..Default::default()
        },
    )
    .unwrap();
    let text = mv_backup::query::format_text(&by_account, false);
    assert!(text.starts_with("Account: a@d.test\n"), "{text}");
    assert!(text.contains(&format!("  Acct ID: {}", a.id)), "{text}");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["sessions"][1]["status"], "completed");
    assert_eq!(json["sessions"][1]["type"], "full");
    // accounts.xml is rebuildable.
    std::fs::remove_file(fx.object_file("accounts.xml")).unwrap();
    let rebuilt = mv_backup::rebuild_accounts_xml(t.as_ref(), UtcMillis::now()).unwrap();
    assert_eq!(rebuilt[0].latest_full, full.to_string());
    let _ = MailboxId(0);
}

fn compression_options_and_shared_blobs_off(fx: Fx) {
    let a = fx.account("a@d.test");
    let b = fx.account("b@d.test");
    let shared = message("shared", 30_000);
    fx.deliver(&shared, &[&a, &b]);
    for c in [
        mv_backup::Compression::Deflate,
        mv_backup::Compression::Zstd,
    ] {
        let mut opts = fx.opts(SessionKind::Full);
        opts.compression = c;
        opts.shared_blobs = Some(false);
        let r = fx.backup_with(opts);
        assert!(r.ok());
    }
    let t = fx.target();
    let pool = Pool::load(t.as_ref()).unwrap();
    // Not shared across accounts: the first run wrote it twice (one per account).
    let mut copies = 0;
    for p in pool.packs() {
        let idx = t.get(&mv_backup::target::pack_path(&p.id, "idx")).unwrap();
        let idx = mv_backup::pack::PackIndex::decode("idx", &idx).unwrap();
        copies += idx
            .entries
            .iter()
            .filter(|e| e.digest == Digest::of(&shared))
            .count();
        // Compressed: much smaller than the raw message.
        assert!(idx.entries.iter().all(|e| e.stored_len < e.raw_len / 2));
    }
    assert_eq!(
        copies, 2,
        "once per account, and not again by the second run"
    );
    let v = verify(&fx, ReadData::All);
    assert!(v.ok(), "{:?}", v.problems);
}

/// `verify` names a pack whose index went missing, and a damaged or missing
/// accounts.xml, each with what repairs it.
#[test]
fn verify_names_a_missing_pack_index_and_a_damaged_accounts_xml() {
    let fx = Fx::new();
    let a = fx.account("alice@d.test");
    fx.deliver(&message("one", 3000), &[&a]);
    fx.backup(SessionKind::Full);
    assert!(verify(&fx, ReadData::None).ok());

    let idx: Vec<std::path::PathBuf> = std::fs::read_dir(fx.target_dir.join("packs"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "idx"))
        .collect();
    assert_eq!(idx.len(), 1, "{idx:?}");
    let saved = std::fs::read(&idx[0]).unwrap();
    std::fs::remove_file(&idx[0]).unwrap();
    let v = verify(&fx, ReadData::None);
    let name = idx[0].file_name().unwrap().to_str().unwrap();
    assert!(
        v.problems
            .iter()
            .any(|p| p.path.as_deref().is_some_and(|x| x.ends_with(name))
                && p.message.contains("pack index is missing")),
        "{:?}",
        v.problems
    );
    std::fs::write(&idx[0], saved).unwrap();
    assert!(verify(&fx, ReadData::None).ok());

    let xml = fx.target_dir.join("accounts.xml");
    let bytes = std::fs::read(&xml).unwrap();
    std::fs::write(&xml, &bytes[..bytes.len() / 2]).unwrap();
    let v = verify(&fx, ReadData::None);
    assert!(
        v.problems.iter().any(|p| p.path.as_deref() == Some("accounts.xml")
            && p.message.contains("rewrites it")),
        "{:?}",
        v.problems
    );
    std::fs::remove_file(&xml).unwrap();
    let v = verify(&fx, ReadData::None);
    assert!(
        v.problems
            .iter()
            .any(|p| p.message.contains("accounts.xml is missing")),
        "{:?}",
        v.problems
    );
}

/// Empty directories an earlier version left under `pieces/` (its `-del`
/// removed pieces but not the directories they emptied) go at the next full,
/// and at the next `-del` of a target no full swept; directories holding
/// pieces stay, and so does everything the sessions name.
#[test]
fn empty_piece_directories_of_earlier_versions_are_swept_once() {
    let leave_empty_dirs = |fx: &Fx| -> Vec<std::path::PathBuf> {
        let pieces = fx.target_dir.join("pieces");
        let dirs = [
            "full-20140101.000000.000/accounts/abc/def/abcdef-1/db",
            "full-20140101.000000.000/ldap",
            "full-20140102.000000.000",
        ]
        .map(|d| pieces.join(d));
        for d in &dirs {
            std::fs::create_dir_all(d).unwrap();
        }
        dirs.to_vec()
    };
    let is_gone = |fx: &Fx, dirs: &[std::path::PathBuf]| {
        for d in dirs {
            assert!(!d.exists(), "{} is still there", d.display());
        }
        assert!(
            !fx.target_dir
                .join("pieces/full-20140101.000000.000")
                .exists()
        );
    };

    // At a full.
    let fx = Fx::new();
    let a = fx.account("a@d.test");
    fx.deliver(&message("one", 2000), &[&a]);
    let first = fx.backup(SessionKind::Full);
    assert!(first.ok(), "{:?}", first.sessions);
    // A target written by an earlier version: no record of a sweep.
    std::fs::remove_file(fx.target_dir.join("pieces.swept")).unwrap();
    let dirs = leave_empty_dirs(&fx);
    let second = fx.backup(SessionKind::Full);
    assert!(second.ok(), "{:?}", second.sessions);
    is_gone(&fx, &dirs);
    assert!(fx.target_dir.join("pieces.swept").exists());
    // The sessions' pieces are all in place and the target verifies.
    let held = fx.target().list("pieces/").unwrap();
    assert!(!held.is_empty());
    let v = verify(&fx, ReadData::All);
    assert!(v.ok(), "{:?}", v.problems);
    // Once done, never again: a later empty directory is not looked for.
    let later = fx.target_dir.join("pieces/full-20140103.000000.000");
    std::fs::create_dir_all(&later).unwrap();
    let third = fx.backup(SessionKind::Full);
    assert!(third.ok(), "{:?}", third.sessions);
    assert!(later.exists());

    // At a `-del` (which deletes nothing here: one full, the latest).
    let fx = Fx::new();
    let a = fx.account("a@d.test");
    fx.deliver(&message("one", 2000), &[&a]);
    let full = fx.backup(SessionKind::Full);
    assert!(full.ok(), "{:?}", full.sessions);
    std::fs::remove_file(fx.target_dir.join("pieces.swept")).unwrap();
    let dirs = leave_empty_dirs(&fx);
    let r = mv_backup::delete(
        fx.target().as_ref(),
        &DeleteOptions {
            spec: mv_backup::DeleteSpec::UpTo(full.labels()[0]),
            dry_run: false,
            lock_wait: Duration::from_secs(1),
            live_accounts: None,
            now: UtcMillis::now(),
        },
    )
    .unwrap();
    assert!(r.deleted.is_empty(), "{r:?}");
    is_gone(&fx, &dirs);
    let v = verify(&fx, ReadData::All);
    assert!(v.ok(), "{:?}", v.problems);
}
