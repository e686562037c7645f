//! The S3 target's own guarantees against a real S3-compatible server (s3s-fs on
//! loopback): objects, multipart uploads, session visibility, the lease lock.

mod common;

use common::Fx;
use common::s3::S3Server;
use mv_backup::{BackupError, S3Target, Target};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn target(fx: &Fx) -> S3Target {
    S3Target::open(&fx.s3.as_ref().unwrap().url("t"), fx.s3_settings()).unwrap()
}

fn server(fx: &Fx) -> &S3Server {
    fx.s3.as_ref().unwrap()
}

#[test]
fn objects_ranges_and_multipart_uploads() {
    let fx = Fx::new_s3();
    let t = target(&fx);
    t.put("packs/ab/x.idx", b"hello").unwrap();
    assert_eq!(t.get("packs/ab/x.idx").unwrap(), b"hello");
    assert_eq!(t.get_range("packs/ab/x.idx", 1, 3).unwrap(), b"ell");
    let e = t.get_range("packs/ab/x.idx", 3, 3).unwrap_err();
    assert!(matches!(e, BackupError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("truncated"), "{e}");
    assert!(matches!(t.get("nope"), Err(BackupError::NotFound(_))));
    assert_eq!(t.size("packs/ab/x.idx").unwrap(), Some(5));
    assert_eq!(t.size("packs/ab/none").unwrap(), None);
    assert!(t.get("../etc/passwd").is_err());

    // 2.1 parts: a multipart upload, streamed from the file, which is consumed.
    let data: Vec<u8> = (0..(common::TEST_PART_SIZE * 2 + 500_000) as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let local = fx.root.join("big.bin");
    std::fs::write(&local, &data).unwrap();
    t.put_file("packs/cd/big.zip", &local).unwrap();
    assert!(!local.exists());
    assert_eq!(t.get("packs/cd/big.zip").unwrap(), data);
    assert_eq!(
        std::fs::read(server(&fx).object_file("t/packs/cd/big.zip")).unwrap(),
        data
    );
    assert_eq!(
        t.get_range("packs/cd/big.zip", 6_000_000, 10).unwrap(),
        &data[6_000_000..6_000_010]
    );
    assert_eq!(t.bytes_written(), 5 + data.len() as u64);

    let l = t.list("packs/").unwrap();
    let paths: Vec<&str> = l.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(paths, ["packs/ab/x.idx", "packs/cd/big.zip"]);
    assert_eq!(l[1].size, data.len() as u64);
    assert_eq!(t.list("packs/ab/x").unwrap().len(), 1);
    t.delete("packs/ab/x.idx").unwrap();
    t.delete("packs/ab/x.idx").unwrap();
    assert_eq!(t.list("packs/").unwrap().len(), 1);
    assert_eq!(t.free_space().unwrap(), None);
    assert_eq!(t.local_path("packs/cd/big.zip"), None);
}

/// Given the caller's runtime (the server's), a target sends its requests there,
/// waited for from the caller's blocking threads, lock heartbeat and multipart
/// parts included; without one it keeps them on a runtime of its own. Both on a
/// multi-thread runtime (the server's kind) and a current-thread one.
#[test]
fn requests_run_on_the_callers_runtime() {
    let fx = Fx::new_s3();
    for multi in [true, false] {
        let rt = if multi {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }
        .unwrap();
        let data: Vec<u8> = (0..(common::TEST_PART_SIZE * 2 + 1000) as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        let (url, settings, root) = (
            server(&fx).url(&format!("rt-{multi}")),
            fx.s3_settings(),
            fx.root.clone(),
        );
        let handle = rt.handle().clone();
        let work = rt.spawn_blocking(move || {
            let tasks = || handle.metrics().num_alive_tasks();
            // Its own runtime: nothing runs on the caller's.
            let own = S3Target::open(&url, settings.clone()).unwrap();
            own.put("own", b"1").unwrap();
            assert_eq!(own.get("own").unwrap(), b"1");
            assert_eq!(
                tasks(),
                0,
                "a target without a runtime runs none on the caller's"
            );
            drop(own);

            let mut s = settings;
            s.runtime = Some(handle.clone());
            let t = S3Target::open(&url, s).unwrap();
            let lock = t.lock("Backup full-rt", Duration::ZERO).unwrap();
            t.put("small", b"hello").unwrap();
            let local = root.join(format!("big-{multi}.bin"));
            std::fs::write(&local, &data).unwrap();
            t.put_file("big", &local).unwrap();
            assert_eq!(t.get("big").unwrap(), data);
            assert_eq!(t.get_range("small", 1, 3).unwrap(), b"ell");
            // The HTTP client's connections are tasks of the caller's runtime.
            assert!(tasks() > 0, "the requests ran elsewhere");
            drop(lock);
            assert_eq!(t.lock_holder().unwrap(), None, "released");
        });
        rt.block_on(work).unwrap();
    }
}

#[test]
fn sessions_appear_with_session_xml_and_leftovers_are_cleaned() {
    let fx = Fx::new_s3();
    let t = target(&fx);
    let label = "full-20140605.080023.296";
    t.begin_session(label).unwrap();
    t.session_put(label, "ldap/ldap.bak", b"dn: x\n").unwrap();
    t.session_put(label, "accounts/a/b/c/meta.xml", b"<m/>")
        .unwrap();
    assert_eq!(t.pending_sessions().unwrap(), vec![label.to_string()]);
    assert!(t.session_names().unwrap().is_empty(), "not visible yet");
    t.session_remove(label, "accounts/a/b/c").unwrap();
    assert_eq!(t.list(&format!("sessions/{label}/")).unwrap().len(), 1);
    t.commit_session(label, b"<session/>").unwrap();
    assert!(t.pending_sessions().unwrap().is_empty());
    assert_eq!(t.session_names().unwrap(), vec![label.to_string()]);
    assert_eq!(
        t.get(&format!("sessions/{label}/ldap/ldap.bak")).unwrap(),
        b"dn: x\n"
    );
    assert!(t.commit_session(label, b"<session/>").is_err());

    // A crash between session.xml and the marker's removal: still committed, and
    // cleaning keeps it.
    let l2 = "incr-20140606.080023.296";
    t.begin_session(l2).unwrap();
    t.put(&format!("sessions/{l2}/session.xml"), b"<session/>")
        .unwrap();
    assert!(t.pending_sessions().unwrap().is_empty());
    // A crash in the middle of a session: pending, then cleaned.
    let l3 = "incr-20140607.080023.296";
    t.begin_session(l3).unwrap();
    t.session_put(l3, "ldap/ldap.bak", b"x").unwrap();
    t.put(&format!("tmp/{l3}.abort"), b"abort").unwrap();
    assert_eq!(t.pending_sessions().unwrap(), vec![l3.to_string()]);
    assert_eq!(t.clean_pending().unwrap(), vec![l3.to_string()]);
    assert!(t.list(&format!("sessions/{l3}/")).unwrap().is_empty());
    assert!(t.list("tmp/").unwrap().is_empty());
    assert_eq!(
        t.session_names().unwrap(),
        vec![label.to_string(), l2.to_string()]
    );

    // Retire: invisible at once; purge removes the files.
    t.retire_session(label).unwrap();
    assert_eq!(
        t.session_names().unwrap(),
        vec![format!("TO_DELETE-{label}"), l2.to_string()]
    );
    assert_eq!(t.purge_retired().unwrap(), vec![label.to_string()]);
    assert!(t.list(&format!("sessions/{label}/")).unwrap().is_empty());
    assert_eq!(t.session_names().unwrap(), vec![l2.to_string()]);
    assert!(t.retire_session("full-20000101.000000.000").is_err());
}

fn write_lease(fx: &Fx, what: &str, expires_in_ms: i64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let text = format!(
        "{what}\nholder dead-process\nhost elsewhere pid 1\nexpires {}\n",
        now + expires_in_ms
    );
    target(fx).put("backup.lock", text.as_bytes()).unwrap();
}

#[test]
fn lease_lock_waits_names_the_holder_and_outlives_a_crash() {
    let fx = Fx::new_s3();
    let a = target(&fx);
    let b = target(&fx);
    assert_eq!(a.lock_holder().unwrap(), None);
    let held = a
        .lock("Backup full-20140605.080023.296", Duration::ZERO)
        .unwrap();
    assert_eq!(
        b.lock_holder().unwrap().as_deref(),
        Some("Backup full-20140605.080023.296")
    );
    let started = Instant::now();
    let e = b
        .lock("Backup other", Duration::from_millis(300))
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        e.to_string(),
        "Backup full-20140605.080023.296 is still in progress"
    );
    held.describe("Backup full-20140605.080023.296 incr-x")
        .unwrap();
    assert_eq!(
        b.lock_holder().unwrap().as_deref(),
        Some("Backup full-20140605.080023.296 incr-x")
    );
    // Released on drop: the lease object is gone.
    drop(held);
    assert_eq!(b.lock_holder().unwrap(), None);
    assert!(!server(&fx).object_file("t/backup.lock").exists());

    // The lease object names what holds the lock and a holder id.
    let held = b.lock("Restore", Duration::ZERO).unwrap();
    let first = std::fs::read_to_string(server(&fx).object_file("t/backup.lock")).unwrap();
    assert!(first.starts_with("Restore\nholder "), "{first}");
    drop(held);

    // A holder that died: its lease blocks until it expires, then is taken over.
    write_lease(&fx, "Backup full-20990101.000000.000", 1500);
    assert_eq!(
        a.lock_holder().unwrap().as_deref(),
        Some("Backup full-20990101.000000.000")
    );
    let e = a.lock("Backup", Duration::from_millis(200)).unwrap_err();
    assert!(e.to_string().contains("full-20990101"), "{e}");
    let started = Instant::now();
    let taken = a.lock("Backup", Duration::from_secs(10)).unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    // An expired lease counts as free.
    drop(taken);
    write_lease(&fx, "Backup stale", -1000);
    assert_eq!(a.lock_holder().unwrap(), None);
    a.lock("Backup", Duration::ZERO).unwrap();
}

#[test]
fn two_contenders_never_hold_the_lock_together() {
    let fx = Fx::new_s3();
    let holders = std::sync::atomic::AtomicUsize::new(0);
    let max = std::sync::atomic::AtomicUsize::new(0);
    let wins = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for i in 0..4 {
            let (fx, holders, max, wins) = (&fx, &holders, &max, &wins);
            s.spawn(move || {
                let t = target(fx);
                for _ in 0..3 {
                    let l = t
                        .lock(&format!("Backup {i}"), Duration::from_secs(20))
                        .unwrap();
                    let now = holders.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    max.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(30));
                    holders.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    wins.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    drop(l);
                }
            });
        }
    });
    assert_eq!(wins.load(std::sync::atomic::Ordering::SeqCst), 12);
    assert_eq!(max.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// What an S3 target says when it cannot work: no credentials (never asking the
/// cloud's metadata service), a missing bucket, a store that does not answer
/// (retried for the configured budget, not a few seconds).
#[test]
fn no_credentials_missing_bucket_and_outages_are_said_plainly() {
    let fx = Fx::new_s3();
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        let mut s = fx.s3_settings();
        s.access_key = None;
        s.secret_key = None;
        let e = S3Target::open(&server(&fx).url("t"), s).unwrap_err();
        assert!(
            e.to_string()
                .contains("no S3 endpoint or credentials configured"),
            "{e}"
        );
    }

    let t = S3Target::open("s3://no-such-bucket/t", fx.s3_settings()).unwrap();
    let e = t.exists().unwrap_err().to_string();
    assert!(e.contains("bucket does not exist"), "{e}");

    // Nothing listens: retried with backoff for the whole budget.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut s = fx.s3_settings();
    s.endpoint = Some(format!("http://127.0.0.1:{port}"));
    s.retry_budget = Duration::from_secs(4);
    let t = S3Target::open(&server(&fx).url("t"), s).unwrap();
    let started = Instant::now();
    assert!(t.get("accounts.xml").is_err());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(40),
        "{took:?}"
    );
}

/// A lock whose lease cannot be renewed in time stops the run's requests at
/// once (not after the retry budget): another host may take the lock then.
#[test]
fn a_lease_that_cannot_be_renewed_stops_the_run() {
    let mut fx = Fx::new_s3();
    let mut s = fx.s3_settings();
    s.lease = Duration::from_secs(3);
    s.retry_budget = Duration::from_secs(120);
    let t = S3Target::open(&server(&fx).url("t"), s).unwrap();
    let _held = t.lock("Backup full-x", Duration::ZERO).unwrap();
    t.put("probe", b"1").unwrap();
    // The store goes away: renewals fail, retried, while the lease runs out.
    drop(fx.s3.take());
    let started = Instant::now();
    let e = t.put("probe", b"2").unwrap_err().to_string();
    assert!(e.contains("lease could not be renewed"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// Every file stored for the bucket, with its bytes.
fn stored_objects(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(stored_objects(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A backup to an object store leaves the server's secrets out by default:
/// no object holds the S3 keys, the admin token or the TLS key, and the local
/// config says what was left out. A restore of that local config keeps this
/// server's secrets. Asked for (`secrets`), they go with the backup.
#[test]
fn secrets_stay_out_of_an_s3_backup_unless_asked() {
    use common::s3::{ACCESS_KEY, SECRET_KEY};
    use mv_backup::SessionKind;
    let fx = Fx::new_s3();
    let mut cfg = mv_home::LocalConfig::load(&fx.home.localconfig_path()).unwrap();
    for (k, v) in server(&fx).local_config() {
        cfg.set(k, &v).unwrap();
    }
    cfg.set("zimbra_server_hostname_test_marker", "kept")
        .unwrap();
    cfg.save(&fx.home.localconfig_path()).unwrap();
    let conf = fx.home.conf_dir();
    std::fs::write(
        conf.join("imap.key"),
        "-----BEGIN PRIVATE KEY----- tls-secret-key",
    )
    .unwrap();
    std::fs::write(
        conf.join("imap.crt"),
        "-----BEGIN CERTIFICATE----- tls-cert",
    )
    .unwrap();
    let token = fx.home.admin_token().unwrap();
    assert!(token.len() >= 32);
    let a = fx.account("a@d.test");
    fx.deliver(&common::message("m", 2000), &[&a]);

    let r = fx.backup(SessionKind::Full);
    assert!(r.ok(), "{:?}", r.sessions);
    let label = r.sessions[0].label;
    let objects = stored_objects(&fx.target_dir);
    assert!(objects.len() > 5, "{objects:?}");
    for (path, bytes) in &objects {
        for secret in [
            SECRET_KEY.as_bytes(),
            ACCESS_KEY.as_bytes(),
            token.trim().as_bytes(),
            b"tls-secret-key",
        ] {
            assert!(
                !contains(bytes, secret),
                "{} holds a secret ({})",
                path.display(),
                String::from_utf8_lossy(secret)
            );
        }
    }
    let t = fx.target();
    let lc = String::from_utf8(
        t.get(&format!("sessions/{label}/sys/localconfig.conf"))
            .unwrap(),
    )
    .unwrap();
    assert!(
        lc.contains("s3_secret_access_key: a secret, left out")
            && lc.contains("zimbra_server_hostname_test_marker = kept")
            && lc.contains("s3_endpoint = "),
        "{lc}"
    );
    for name in ["admin.token", "imap.key", "imap.crt"] {
        assert!(
            matches!(
                t.get(&format!("sessions/{label}/sys/conf/{name}")),
                Err(BackupError::NotFound(_))
            ),
            "{name}"
        );
    }

    // Restoring that local config keeps this server's secrets; the rest is
    // the backup's.
    let mut changed = mv_home::LocalConfig::load(&fx.home.localconfig_path()).unwrap();
    changed
        .set("zimbra_server_hostname_test_marker", "changed")
        .unwrap();
    changed.save(&fx.home.localconfig_path()).unwrap();
    mv_backup::identity::restore(t.as_ref(), &label, &fx.home).unwrap();
    let now = mv_home::LocalConfig::load(&fx.home.localconfig_path()).unwrap();
    assert_eq!(now.get("s3_secret_access_key"), Some(SECRET_KEY));
    assert_eq!(now.get("s3_access_key_id"), Some(ACCESS_KEY));
    assert_eq!(now.get("zimbra_server_hostname_test_marker"), Some("kept"));
    assert_eq!(fx.home.admin_token().unwrap(), token);

    // Asked for: they go too.
    let mut opts = fx.opts(SessionKind::Incremental);
    opts.secrets = Some(true);
    let r = fx.backup_with(opts);
    assert!(r.ok(), "{:?}", r.sessions);
    let label = r.sessions[0].label;
    let lc = t
        .get(&format!("sessions/{label}/sys/localconfig.conf"))
        .unwrap();
    assert!(contains(&lc, SECRET_KEY.as_bytes()));
    let got = t
        .get(&format!("sessions/{label}/sys/conf/admin.token"))
        .unwrap();
    assert_eq!(String::from_utf8(got).unwrap().trim(), token.trim());

    // The local config key asks for them too.
    let mut cfg = mv_home::LocalConfig::load(&fx.home.localconfig_path()).unwrap();
    cfg.set("backup_object_store_secrets", "true").unwrap();
    cfg.save(&fx.home.localconfig_path()).unwrap();
    let r = fx.backup(SessionKind::Incremental);
    let label = r.sessions[0].label;
    assert!(
        t.get(&format!("sessions/{label}/sys/conf/imap.key"))
            .is_ok_and(|k| contains(&k, b"tls-secret-key"))
    );
}

/// Live DR's epochs need a create-only put: a conditional PUT
/// (`If-None-Match: *`), which the server refuses when the object exists.
#[test]
fn a_create_only_put_never_replaces_an_object() {
    let fx = Fx::new_s3();
    let t = target(&fx);
    assert!(t.put_new("live/epochs/0000000001.json", b"first").unwrap());
    assert!(!t.put_new("live/epochs/0000000001.json", b"second").unwrap());
    assert_eq!(t.get("live/epochs/0000000001.json").unwrap(), b"first");
    let e = mv_backup::live::epoch::claim(&t, "standby.example.com");
    // Epoch 1 holds no epoch JSON: claiming reads it first and says so.
    assert!(e.is_err());
    t.delete("live/epochs/0000000001.json").unwrap();
    let e = mv_backup::live::epoch::claim(&t, "standby.example.com").unwrap();
    assert_eq!(e.epoch, 1);
    assert_eq!(mv_backup::live::epoch::newest(&t).unwrap().unwrap(), e);
}
