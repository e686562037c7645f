//! What a full writes per account: an unchanged account's fixed cost (bytes and
//! files created in the target by a second full), and sessions written in the
//! format 1 layout (account files and `meta.xml` inside the session) still
//! verify, restore and are deleted like before.

mod common;

use common::{Fx, message};
use mv_backup::session::{AccountMeta, FileEntry, account_dir};
use mv_backup::{
    Catalog, DeleteOptions, DeleteSpec, ReadData, RestoreOptions, Session, SessionKind,
    VerifyOptions, restore_account,
};
use mv_store::snapshot::MailboxState;
use mv_types::{MailboxId, UtcMillis};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every entry (file or directory) under `dir`: path → (inode, size).
fn entries(dir: &Path) -> HashMap<PathBuf, (u64, u64, bool)> {
    let mut out = HashMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(list) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in list.flatten() {
            let md = e.metadata().unwrap();
            if md.is_dir() {
                stack.push(e.path());
            }
            out.insert(e.path(), (md.ino(), md.len(), md.is_dir()));
        }
    }
    out
}

/// Entries created and bytes of new file content between two listings: a file
/// whose inode is new counts whole (accounts.xml, rewritten under its name), a
/// new name for an old inode (a hard link) counts as an entry only.
fn growth(
    before: &HashMap<PathBuf, (u64, u64, bool)>,
    after: &HashMap<PathBuf, (u64, u64, bool)>,
) -> (u64, u64) {
    let old_inodes: std::collections::HashSet<u64> = before.values().map(|v| v.0).collect();
    let mut created = 0;
    let mut bytes = 0;
    for (p, (ino, size, is_dir)) in after {
        if !before.contains_key(p) {
            created += 1;
        }
        if !is_dir && !old_inodes.contains(ino) {
            bytes += size;
        }
    }
    (created, bytes)
}

fn verify_all(fx: &Fx) -> mv_backup::VerifyReport {
    mv_backup::verify(
        fx.target().as_ref(),
        &VerifyOptions {
            label: None,
            read_data: ReadData::All,
        },
    )
    .unwrap()
}

/// A mailbox's state without the fields that name it.
fn content(store: &mv_store::Store, id: MailboxId) -> MailboxState {
    let mut s = store.mailbox_state(id).unwrap().unwrap();
    s.info.mailbox_id = 0;
    s.info.account_id.clear();
    s.info.email.clear();
    s.info.created_ms = 0;
    s
}

/// Accounts of the fixed-cost test; `FULL_LAYOUT_ACCOUNTS` measures another
/// size (the bounds are per account).
fn account_count() -> usize {
    std::env::var("FULL_LAYOUT_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

#[test]
fn an_unchanged_account_costs_a_full_under_2_kb_and_no_file() {
    let fx = Fx::new();
    let count = account_count();
    let accounts: Vec<_> = (0..count)
        .map(|i| fx.account(&format!("user{i:04}@d.test")))
        .collect();
    for (i, a) in accounts.iter().enumerate() {
        fx.deliver(&message(&format!("hello-{i}"), 1500), &[a]);
    }
    let before_first = entries(&fx.target_dir);
    let first = fx.backup(SessionKind::Full);
    assert!(first.ok(), "{:?}", first.sessions);
    let before = entries(&fx.target_dir);
    let (created1, bytes1) = growth(&before_first, &before);
    let second = fx.backup(SessionKind::Full);
    assert!(second.ok(), "{:?}", second.sessions);
    let after = entries(&fx.target_dir);
    let (created, bytes) = growth(&before, &after);
    let n = count as u64;
    eprintln!(
        "{count} accounts: first full created {created1} entries, {bytes1} bytes \
         ({} B/account); unchanged full created {created} entries, {bytes} bytes \
         ({} B/account, {:.2} entries/account)",
        bytes1 / n,
        bytes / n,
        created as f64 / n as f64
    );
    let s = &second.sessions[0];
    assert_eq!(s.accounts_completed, n);
    assert_eq!(s.stats.blobs_new, 0);
    // The bound per unchanged account, the session's own fixed files included.
    assert!(
        bytes <= 2048 * n,
        "an unchanged full wrote {bytes} bytes for {count} accounts"
    );
    assert!(
        created <= n,
        "an unchanged full created {created} files and directories for {count} accounts"
    );
    // No account file of its own: every one names the first full's.
    let catalog = Catalog::load(fx.target().as_ref()).unwrap();
    let s2 = catalog.get(&s.label).unwrap().session().unwrap();
    let l1 = first.sessions[0].label;
    assert!(
        s2.files
            .iter()
            .filter(|f| f.path.starts_with("accounts/"))
            .all(|f| f.from == Some(l1))
    );
    // Nor a directory dump: the directory did not change.
    assert_eq!(s2.file("ldap/ldap.bak").unwrap().from, Some(l1));
    // It restores and verifies as a session of its own.
    let v = verify_all(&fx);
    assert!(v.ok(), "{:?}", v.problems);
    let a = &accounts[17];
    let r = restore_account(
        &fx.source(),
        fx.target().as_ref(),
        &a.email,
        &RestoreOptions {
            label: Some(s.label),
            new_account_prefix: Some("r_".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.full_label, s.label.to_string());
    let restored = fx.find_account(&r.restored_as);
    assert_eq!(
        content(&fx.store, restored.mailbox_id),
        content(&fx.store, a.mailbox_id)
    );
}

/// Rewrites the full `label` in the format 1 layout (what the writer of
/// format 1 produced): account files inside the session, `meta.xml` per account,
/// no `from`, no `<meta>`; its pieces are removed.
fn to_format_1(fx: &Fx, label: &mv_backup::Label) {
    let t = fx.target();
    let catalog = Catalog::load(t.as_ref()).unwrap();
    let mut s: Session = catalog.get(label).unwrap().session().unwrap().clone();
    for f in &mut s.files {
        if f.from.take().is_some() {
            let bytes = t.get(&format!("pieces/{label}/{}", f.path)).unwrap();
            let to = fx.session_path(label, &f.path);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::write(&to, bytes).unwrap();
        }
    }
    let mut metas: Vec<AccountMeta> = Vec::new();
    for a in &mut s.accounts {
        metas.extend(a.meta.take());
    }
    for m in metas {
        let rel = format!("{}/meta.xml", account_dir(&m.zimbra_id));
        let xml = m.to_xml();
        std::fs::write(fx.session_path(label, &rel), &xml).unwrap();
        s.files.push(FileEntry {
            path: rel,
            size: xml.len() as u64,
            blake3: blake3::hash(&xml).to_hex().to_string(),
            from: None,
        });
    }
    let xml = s.to_xml();
    assert!(String::from_utf8_lossy(&xml).contains("formatVersion=\"1\""));
    std::fs::write(fx.session_path(label, "session.xml"), xml).unwrap();
    std::fs::remove_dir_all(fx.target_dir.join("pieces")).unwrap();
}

#[test]
fn a_format_1_session_still_verifies_restores_and_goes_with_del() {
    let fx = Fx::new();
    let a = fx.account("a@d.test");
    let b = fx.account("b@d.test");
    for i in 0..3 {
        fx.deliver(&message(&format!("m{i}"), 3000 + i), &[&a, &b]);
    }
    let f1 = fx.backup(SessionKind::Full);
    assert!(f1.ok(), "{:?}", f1.sessions);
    let l1 = f1.sessions[0].label;
    to_format_1(&fx, &l1);
    assert!(
        fx.session_path(&l1, &format!("{}/meta.xml", account_dir(&a.id)))
            .is_file()
    );
    let v = verify_all(&fx);
    assert!(v.ok(), "{:?}", v.problems);
    assert_eq!(v.accounts_checked, 2);
    let restore = |email: &str, label, prefix: &str| {
        let r = restore_account(
            &fx.source(),
            fx.target().as_ref(),
            email,
            &RestoreOptions {
                label: Some(label),
                new_account_prefix: Some(prefix.into()),
                ..Default::default()
            },
        )
        .unwrap();
        fx.find_account(&r.restored_as)
    };
    let r = restore("a@d.test", l1, "old_");
    assert_eq!(
        content(&fx.store, r.mailbox_id),
        content(&fx.store, a.mailbox_id)
    );
    // The next full cannot name format 1 files: it snapshots every account,
    // in format 2; the full after it names those.
    fx.deliver(&message("later", 2500), &[&b]);
    let f2 = fx.backup(SessionKind::Full);
    assert!(f2.ok(), "{:?}", f2.sessions);
    let l2 = f2.sessions[0].label;
    let f3 = fx.backup(SessionKind::Full);
    let l3 = f3.sessions[0].label;
    let catalog = Catalog::load(fx.target().as_ref()).unwrap();
    let s3 = catalog.get(&l3).unwrap().session().unwrap();
    let db = format!("{}/db/mailbox.sqlite", account_dir(&a.id));
    assert_eq!(s3.file(&db).unwrap().from, Some(l2));
    // -del of the format 1 full and the one after it: the third full's
    // pieces (written by the second) and blobs stay.
    let del = mv_backup::delete(
        fx.target().as_ref(),
        &DeleteOptions {
            spec: DeleteSpec::UpTo(l2),
            dry_run: false,
            lock_wait: Duration::from_secs(1),
            live_accounts: None,
            now: UtcMillis::now(),
        },
    )
    .unwrap();
    assert_eq!(del.deleted, vec![l1.to_string(), l2.to_string()], "{del:?}");
    assert_eq!(del.gc.pieces_removed, 0, "{del:?}");
    assert!(fx.target_dir.join(format!("pieces/{l2}")).is_dir());
    let v = verify_all(&fx);
    assert!(v.ok(), "{:?}", v.problems);
    let r = restore("b@d.test", l3, "new_");
    assert_eq!(
        content(&fx.store, r.mailbox_id),
        content(&fx.store, b.mailbox_id)
    );
    // Once no session names them, the pieces go.
    fx.deliver(&message("change-a", 2100), &[&a]);
    fx.deliver(&message("change-b", 2200), &[&b]);
    let f4 = fx.backup(SessionKind::Full);
    assert!(f4.ok());
    let del = mv_backup::delete(
        fx.target().as_ref(),
        &DeleteOptions {
            spec: DeleteSpec::UpTo(l3),
            dry_run: false,
            lock_wait: Duration::from_secs(1),
            live_accounts: None,
            now: UtcMillis::now(),
        },
    )
    .unwrap();
    assert_eq!(del.deleted, vec![l3.to_string()], "{del:?}");
    assert!(del.gc.pieces_removed >= 6, "{del:?}");
    assert!(
        !fx.target_dir
            .join(format!("pieces/{l2}/{}", account_dir(&a.id)))
            .exists()
    );
    let v = verify_all(&fx);
    assert!(v.ok(), "{:?}", v.problems);
}
