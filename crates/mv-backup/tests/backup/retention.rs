//! `-del` retention over a history of sessions made with a fake clock.

use super::*;

/// Delivers, rolls over and backs up with a fake clock: a history of sessions.
pub(super) fn history(fx: &Fx, clock: &Arc<FakeClock>, start: UtcMillis, days: i64) -> Vec<Label> {
    let a = fx.account("a@d.test");
    let b = fx.account("b@d.test");
    let mut labels = Vec::new();
    const DAY: i64 = 86_400_000;
    for day in 0..days {
        clock.set(UtcMillis(start.0 + day * DAY));
        // A message that lives for a week only: old packs become garbage.
        fx.deliver(&message(&format!("day-{day}"), 3000), &[&a, &b]);
        if day >= 7 {
            let old = Digest::of(&message(&format!("day-{}", day - 7), 3000));
            for acct in [&a, &b] {
                let items = fx.store.mailbox(acct.mailbox_id).messages(2).unwrap();
                let ids: Vec<ItemId> = items
                    .iter()
                    .filter(|i| i.digest.as_deref() == Some(old.to_hex().as_str()))
                    .map(|i| ItemId(i.id))
                    .collect();
                fx.store.delete_items(acct.mailbox_id, &ids).unwrap();
            }
        }
        let kind = if day % 7 == 0 {
            SessionKind::Full
        } else if day % 2 == 0 {
            SessionKind::Incremental
        } else {
            continue;
        };
        let mut opts = fx.opts(kind);
        opts.clock = clock.clone();
        let r = fx.backup_with(opts);
        assert!(r.ok(), "{:?}", r.sessions);
        labels.extend(r.labels());
    }
    labels
}

pub(super) fn delete_one_month_keeps_what_retained_sessions_need(fx: Fx) {
    let start = UtcMillis::parse_local("2014/01/01 01:00:00").unwrap();
    let clock = FakeClock::new(start);
    let labels = history(&fx, &clock, start, 64);
    assert!(labels.len() > 25, "{}", labels.len());
    let now = UtcMillis(start.0 + 64 * 86_400_000);
    let t = fx.target();
    let spec = mv_backup::parse_delete_arg("1m", now).unwrap();
    let mv_backup::DeleteSpec::Before(cutoff) = spec else {
        panic!()
    };
    let opts = DeleteOptions {
        spec,
        dry_run: true,
        lock_wait: Duration::from_secs(1),
        live_accounts: None,
        now,
    };
    let dry = mv_backup::delete(t.as_ref(), &opts).unwrap();
    assert_eq!(
        Catalog::load(t.as_ref()).unwrap().entries.len(),
        labels.len(),
        "dry run changes nothing"
    );
    let real = mv_backup::delete(
        t.as_ref(),
        &DeleteOptions {
            dry_run: false,
            ..opts
        },
    )
    .unwrap();
    assert_eq!(dry.deleted, real.deleted);
    assert_eq!(
        dry.kept.iter().map(|k| &k.label).collect::<Vec<_>>(),
        real.kept.iter().map(|k| &k.label).collect::<Vec<_>>()
    );
    eprintln!("{}", mv_backup::retention::format_text(&real));
    assert!(!real.deleted.is_empty());
    assert!(
        !real.kept.is_empty(),
        "the full before the oldest kept incremental stays"
    );
    for d in &real.deleted {
        assert!(d.parse::<Label>().unwrap().start < cutoff);
    }
    let catalog = Catalog::load(t.as_ref()).unwrap();
    let remaining: Vec<&mv_backup::Session> = catalog.sessions().collect();
    assert_eq!(remaining.len() + real.deleted.len(), labels.len());
    // Every remaining incremental has its full and an unbroken chain of
    // incrementals after it.
    for s in remaining
        .iter()
        .filter(|s| s.kind() == SessionKind::Incremental)
    {
        let full = remaining
            .iter()
            .rfind(|f| f.kind() == SessionKind::Full && f.label < s.label)
            .unwrap_or_else(|| panic!("{} lost its full", s.label));
        let between: Vec<Label> = labels
            .iter()
            .copied()
            .filter(|l| l.kind == SessionKind::Incremental && *l > full.label && *l < s.label)
            .collect();
        for l in between {
            assert!(catalog.get(&l).is_some(), "{l} is needed by {}", s.label);
        }
    }
    // The kept sessions older than the cutoff are exactly the one full and the
    // incrementals between it and the cutoff.
    let oldest_kept_incr = remaining
        .iter()
        .filter(|s| s.kind() == SessionKind::Incremental && s.started >= cutoff)
        .map(|s| s.label)
        .min()
        .unwrap();
    assert!(
        real.kept
            .iter()
            .any(|k| k.reason.contains(&oldest_kept_incr.to_string()))
    );
    // Pack data only the deleted sessions referenced is gone; the rest verifies.
    assert!(!real.gc.packs_removed.is_empty(), "{:?}", real.gc);
    let v = verify(&fx, ReadData::All);
    assert!(v.ok(), "{:?}", v.problems);
    // accounts.xml names a remaining full.
    let records = mv_backup::accounts_xml::parse("a", &t.get("accounts.xml").unwrap()).unwrap();
    assert_eq!(records.len(), 2);
    for r in records {
        assert!(catalog.get(&r.latest_full.parse().unwrap()).is_some());
    }
}

pub(super) fn delete_by_label_never_removes_the_latest_full_or_its_chain(fx: Fx) {
    let a = fx.account("a@d.test");
    fx.deliver(&message("1", 1000), &[&a]);
    let f1 = fx.backup(SessionKind::Full).labels()[0];
    fx.deliver(&message("2", 1000), &[&a]);
    let i1 = fx.backup(SessionKind::Incremental).labels()[0];
    let t = fx.target();
    let del = |upto: Label| {
        mv_backup::delete(
            t.as_ref(),
            &DeleteOptions {
                spec: mv_backup::DeleteSpec::UpTo(upto),
                dry_run: false,
                lock_wait: Duration::from_secs(1),
                live_accounts: None,
                now: UtcMillis::now(),
            },
        )
        .unwrap()
    };
    // f1 is the latest full, and i1 rolls it forward to now: both stay.
    let r = del(i1);
    assert!(r.deleted.is_empty(), "{r:?}");
    assert_eq!(r.kept.len(), 2);
    assert_eq!(r.kept[0].label, f1.to_string());
    assert!(
        r.kept[0].reason.contains("latest full backup of a@d.test"),
        "{:?}",
        r.kept
    );
    assert_eq!(r.kept[1].label, i1.to_string());
    assert!(
        r.kept[1]
            .reason
            .contains(&format!("roll {f1} (kept) forward")),
        "{:?}",
        r.kept
    );
    // With a newer full, they may go.
    let f2 = fx.backup(SessionKind::Full).labels()[0];
    let r = del(i1);
    assert_eq!(r.deleted, vec![f1.to_string(), i1.to_string()]);
    assert!(r.kept.is_empty());
    let left: Vec<Label> = Catalog::load(t.as_ref())
        .unwrap()
        .entries
        .iter()
        .map(|e| e.label)
        .collect();
    assert_eq!(left, vec![f2]);
    let v = verify(&fx, ReadData::All);
    assert!(v.ok(), "{:?}", v.problems);
}

/// Every piece a session names is in the target and every piece in the target
/// is named by a session (after backups that completed, and after `-del`), no
/// directory under `pieces/` is left empty, and the target verifies.
fn check_pieces(fx: &Fx, step: &str) {
    let t = fx.target();
    let catalog = Catalog::load(t.as_ref()).unwrap();
    let named: BTreeSet<String> = catalog
        .sessions()
        .flat_map(|s| {
            s.files
                .iter()
                .filter(|f| f.from.is_some())
                .map(|f| f.object_path(&s.label))
        })
        .collect();
    let held: BTreeSet<String> = t
        .list("pieces/")
        .unwrap()
        .into_iter()
        .map(|o| o.path)
        .collect();
    let missing: Vec<&String> = named.difference(&held).collect();
    assert!(missing.is_empty(), "{step}: named but gone: {missing:#?}");
    let unnamed: Vec<&String> = held.difference(&named).collect();
    assert!(unnamed.is_empty(), "{step}: left behind: {unnamed:#?}");
    if !fx.is_s3() {
        let top = fx.target_dir.join("pieces");
        let mut stack = vec![top.clone()];
        while let Some(d) = stack.pop() {
            let children: Vec<_> = std::fs::read_dir(&d)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            assert!(
                d == top || !children.is_empty(),
                "{step}: empty directory {}",
                d.display()
            );
            stack.extend(children.into_iter().filter(|c| c.is_dir()));
        }
    }
    let v = verify(fx, ReadData::All);
    assert!(v.ok(), "{step}: {:?}", v.problems);
}

/// Fulls over accounts that change at different times (so a full names pieces
/// of several earlier ones), a changed directory entry and an incremental, then
/// `-del` of the oldest fulls one at a time: what a kept session names stays,
/// the rest goes with the directories it leaves empty, and every account still
/// restores from its latest full.
pub(super) fn delete_keeps_every_named_piece_and_no_empty_directory(fx: Fx) {
    let accounts: Vec<mv_directory::Account> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| fx.account(&format!("{n}@d.test")))
        .collect();
    let [a, b, c, d] = [&accounts[0], &accounts[1], &accounts[2], &accounts[3]];
    for (i, acct) in accounts.iter().enumerate() {
        fx.deliver(&message(&format!("first-{i}"), 2000 + i), &[acct]);
    }
    let full = |step: &str| {
        let r = fx.backup(SessionKind::Full);
        assert!(r.ok(), "{step}: {:?}", r.sessions);
        check_pieces(&fx, step);
        r.labels()[0]
    };
    let f1 = full("first full");
    fx.deliver(&message("a-2", 2100), &[a]);
    let f2 = full("a changed");
    fx.deliver(&message("b-2", 2200), &[b]);
    // c's mailbox stays, its directory entry (and so the dump) changes.
    fx.directory
        .lock()
        .unwrap()
        .modify_account(
            &c.email,
            &[mv_directory::Modification::set("displayName", "C, renamed")],
        )
        .unwrap();
    let f3 = full("b and c's entry changed");
    fx.deliver(&message("d-2", 2300), &[d]);
    let i1 = fx.backup(SessionKind::Incremental);
    assert!(i1.ok(), "{:?}", i1.sessions);
    check_pieces(&fx, "incremental");
    fx.deliver(&message("a-3", 2400), &[a]);
    let f4 = full("a changed again");
    let catalog = Catalog::load(fx.target().as_ref()).unwrap();
    let s4 = catalog.get(&f4).unwrap().session().unwrap();
    let from = |acct: &mv_directory::Account, rel: &str| {
        s4.file(&format!("{}/{rel}", account_dir(&acct.id)))
            .unwrap()
            .from
    };
    // The fourth full names pieces of every earlier full.
    assert_eq!(from(a, "db/mailbox.sqlite"), Some(f4));
    assert_eq!(from(b, "db/mailbox.sqlite"), Some(f3));
    assert_eq!(from(c, "db/mailbox.sqlite"), Some(f1));
    assert_eq!(from(c, "ldap.ldif"), Some(f3));
    assert_eq!(from(d, "db/mailbox.sqlite"), Some(f4));
    assert_eq!(s4.file("ldap/ldap.bak").unwrap().from, Some(f3));

    let t = fx.target();
    let del = |upto: Label| {
        mv_backup::delete(
            t.as_ref(),
            &DeleteOptions {
                spec: mv_backup::DeleteSpec::UpTo(upto),
                dry_run: false,
                lock_wait: Duration::from_secs(1),
                live_accounts: None,
                now: UtcMillis::now(),
            },
        )
        .unwrap()
    };
    let r = del(f1);
    assert_eq!(r.deleted, vec![f1.to_string()], "{r:?}");
    // a's first pieces (db, blobs.lst, entry) went.
    assert_eq!(r.gc.pieces_removed, 3, "{r:?}");
    check_pieces(&fx, "-del of the first full");
    let r = del(f2);
    assert_eq!(r.deleted, vec![f2.to_string()], "{r:?}");
    check_pieces(&fx, "-del of the second full");
    // f3 goes; i1 (after it) stays, and with it nothing f3 wrote that f4 names.
    let r = del(i1.labels()[0]);
    assert_eq!(
        r.deleted,
        vec![f3.to_string(), i1.labels()[0].to_string()],
        "{r:?}"
    );
    check_pieces(&fx, "-del of the third full and the incremental");
    if !fx.is_s3() {
        // Nothing of the second full is named any more: its directory is gone.
        assert!(!fx.target_dir.join(format!("pieces/{f2}")).exists());
        assert!(fx.target_dir.join(format!("pieces/{f1}")).exists());
    }
    for (i, acct) in accounts.iter().enumerate() {
        let r = mv_backup::restore_account(
            &fx.source(),
            t.as_ref(),
            &acct.email,
            &mv_backup::RestoreOptions {
                label: Some(f4),
                new_account_prefix: Some(format!("r{i}_")),
                ..Default::default()
            },
        )
        .unwrap();
        let restored = fx.find_account(&r.restored_as);
        let n = fx
            .store
            .mailbox(restored.mailbox_id)
            .messages(2)
            .unwrap()
            .len();
        let want = fx.store.mailbox(acct.mailbox_id).messages(2).unwrap().len();
        assert_eq!(n, want, "{}", acct.email);
    }
    let (_, entries) = mv_backup::ldap::read_ldap(t.as_ref(), None).unwrap();
    let renamed = entries
        .iter()
        .find(|e| e.values("mail").any(|m| m == c.email))
        .unwrap();
    assert!(renamed.values("displayName").any(|v| v == "C, renamed"));
}
