//! The redo chain stays whole across the restores an administrator runs, through
//! the zm* names without a server: an offline restore on the home that took the
//! backups, an in-place restore, and a disaster recovery onto a fresh home right
//! after a full backup (also, with the server running, after a full during which
//! mail kept arriving: every moment of its run stays restorable). After each, the
//! next `zmbackup -i` into the same target exits 0 and
//! restores from backups taken before the event, to points before and after it,
//! need no `--ignoreRedoErrors`; a hole that really is one is still reported.

mod common;

use common::*;

#[path = "recovery_cli/all_at_a_point.rs"]
mod all_at_a_point;
#[path = "recovery_cli/during_a_full.rs"]
mod during_a_full;
use std::path::Path;

impl Env {
    fn deliver(&self, user: &str, subject: &str) {
        self.deliver_body(user, subject, &format!("body {subject}"));
    }

    fn deliver_body(&self, user: &str, subject: &str, body: &str) {
        let path = self.root.join(format!("{subject}.eml"));
        std::fs::write(
            &path,
            format!("From: x@y.test\r\nTo: {user}\r\nSubject: {subject}\r\n\r\n{body}\r\n"),
        )
        .unwrap();
        self.ok(
            "zmmailbox",
            &["-z", "-m", user, "am", "/Inbox", path.to_str().unwrap()],
        );
    }

    fn subjects(&self, user: &str) -> Vec<String> {
        let o = self.ok(
            "zmmailbox",
            &["-z", "-m", user, "s", "--json", "-l", "1000", "in:Inbox"],
        );
        let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
        let mut out: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["subject"].as_str().unwrap().to_string())
            .collect();
        out.sort();
        out
    }

    /// An incremental that must complete without errors; returns its label.
    fn incremental(&self, t: &str) -> String {
        // A restored account's new mailbox gets a full session first.
        let o = self.ok("zmbackup", &["-i", "-sync", "-t", t]);
        let labels: Vec<&str> = o.stdout.split_whitespace().collect();
        let label = labels.last().copied().unwrap_or_default().to_string();
        assert!(label.starts_with("incr-"), "{}{}", o.stdout, o.stderr);
        for l in labels {
            let q = self.ok("zmbackupquery", &["-lb", l, "-t", t]);
            assert!(
                !q.stdout.contains("with errors") && !q.stdout.contains("gap"),
                "{}",
                q.stdout
            );
        }
        label
    }

    fn verify(&self, t: &str) {
        let v = self.run(Path::new(BIN), &["backup", "verify", "-t", t]);
        assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    }
}

/// Now, as `-restoreToTime` takes it (the tests run in UTC), with a margin on
/// both sides so that it lies strictly between two operations.
fn moment() -> String {
    std::thread::sleep(std::time::Duration::from_millis(20));
    let t = chrono::Utc::now()
        .format("%Y/%m/%d %H:%M:%S%.3f")
        .to_string();
    std::thread::sleep(std::time::Duration::from_millis(20));
    t
}

fn no_jump(tool: &str, o: &Out) {
    for bad in ["redo.log is missing", "starting a new one", "continues"] {
        assert!(
            !o.stderr.contains(bad) && !o.stdout.contains(bad),
            "{tool} moved the redo sequence: {}{}",
            o.stdout,
            o.stderr
        );
    }
}

#[test]
fn an_offline_and_an_in_place_restore_keep_the_redo_chain_whole() {
    let env = Env::new();
    let t = env.root.join("target");
    let t = t.to_str().unwrap();
    let u = "u1@ex4.com";
    env.ok("zmprov", &["cd", "ex4.com"]);
    env.ok("zmprov", &["ca", u, "secret"]);
    env.deliver(u, "m0");
    let full = env.ok("zmbackup", &["-f", "-a", "all", "-sync", "-t", t]);
    let full = full.stdout.trim().to_string();
    assert!(full.starts_with("full-"), "{full}");

    let o = env.ok("zmrestoreoffline", &["-a", u, "-ca", "-pre", "r_", "-t", t]);
    no_jump("zmrestoreoffline", &o);
    assert_eq!(env.subjects("r_u1@ex4.com"), ["m0"]);
    // The next command opening the home starts no new log either.
    let o = env.ok("zmprov", &["ga", u, "mail"]);
    no_jump("zmprov", &o);

    env.deliver(u, "m1");
    let before_m2 = moment();
    env.deliver(u, "m2");
    let incr = env.incremental(t);

    // In place, from the full alone: the account has m0 again.
    let o = env.ok("zmrestore", &["-a", u, "-lb", &full, "-rf", "-t", t]);
    no_jump("zmrestore", &o);
    assert_eq!(env.subjects(u), ["m0"]);
    env.deliver(u, "m3");
    env.incremental(t);
    env.verify(t);

    // From the pre-restore full, to points before and after both restores, with
    // no --ignoreRedoErrors.
    let o = env.ok(
        "zmrestore",
        &[
            "-a",
            u,
            "-ca",
            "-pre",
            "a_",
            "-lb",
            &full,
            "-restoreToTime",
            &before_m2,
            "-t",
            t,
        ],
    );
    no_jump("zmrestore", &o);
    assert_eq!(env.subjects("a_u1@ex4.com"), ["m0", "m1"]);
    env.ok(
        "zmrestore",
        &[
            "-a",
            u,
            "-ca",
            "-pre",
            "b_",
            "-lb",
            &full,
            "-restoreToIncrLabel",
            &incr,
            "-t",
            t,
        ],
    );
    assert_eq!(env.subjects("b_u1@ex4.com"), ["m0", "m1", "m2"]);
    // The latest point: the account as it is now (from the full the incremental
    // took after the in-place restore).
    env.ok("zmrestore", &["-a", u, "-ca", "-pre", "c_", "-t", t]);
    assert_eq!(env.subjects("c_u1@ex4.com"), env.subjects(u));
    assert_eq!(env.subjects(u), ["m0", "m3"]);

    // An offline restore in place (no -ca), to the latest point: the chain goes
    // on, and the pre-restore full still reaches its points.
    let o = env.ok("zmrestoreoffline", &["-a", u, "-t", t]);
    no_jump("zmrestoreoffline", &o);
    assert_eq!(env.subjects(u), ["m0", "m3"]);
    env.deliver(u, "m4");
    env.incremental(t);
    env.verify(t);
    env.ok(
        "zmrestore",
        &[
            "-a",
            u,
            "-ca",
            "-pre",
            "d_",
            "-lb",
            &full,
            "-restoreToTime",
            &before_m2,
            "-t",
            t,
        ],
    );
    assert_eq!(env.subjects("d_u1@ex4.com"), ["m0", "m1"]);
    env.ok("zmrestore", &["-a", u, "-ca", "-pre", "e_", "-t", t]);
    assert_eq!(env.subjects("e_u1@ex4.com"), ["m0", "m3", "m4"]);
}

#[test]
fn a_rebuilt_home_after_a_full_continues_the_targets_redo_chain() {
    let env = Env::new();
    let t = env.root.join("target");
    let t = t.to_str().unwrap();
    let (a, b) = ("a@dr4.test", "b@dr4.test");
    env.ok("zmprov", &["cd", "dr4.test"]);
    env.ok("zmprov", &["ca", a, "secret"]);
    env.ok("zmprov", &["ca", b, "secret"]);
    env.ok("zmprov", &["mcf", "zimbraBackupTarget", t]);
    env.deliver(a, "a0");
    env.deliver(b, "b0");
    let f1 = env.ok("zmbackup", &["-f", "-a", "all", "-sync", "-t", t]);
    let f1 = f1.stdout.trim().to_string();
    env.deliver(a, "a1");
    let i1 = env.incremental(t);
    env.deliver(a, "a2");
    // The last backup before the disaster is a full: it holds the log archived
    // when it began (a2's); nothing was written during it, so the log it rolls
    // over at its end is empty and stays (the rebuilt home's first log takes its
    // number).
    let f2 = env.ok("zmbackup", &["-f", "-a", "all", "-sync", "-t", t]);
    let f2 = f2.stdout.trim().to_string();
    assert!(f2.starts_with("full-"), "{f2}");

    // The disk dies; the README's recovery onto a fresh home.
    std::fs::remove_dir_all(&env.home).unwrap();
    let o = env.ok("zmrestoreldap", &["-t", t]);
    assert!(
        !o.stderr.contains("redo.log is missing"),
        "{}{}",
        o.stdout,
        o.stderr
    );
    let o = env.ok("zmrestoreoffline", &["-a", "all", "-t", t]);
    no_jump("zmrestoreoffline", &o);
    assert_eq!(env.subjects(a), ["a0", "a1", "a2"]);
    let after_dr = moment();
    env.deliver(a, "a3");
    let o = env.ok("zmprov", &["ga", a, "mail"]);
    no_jump("zmprov", &o);

    // The next incremental into the same target: no gap.
    env.incremental(t);
    env.verify(t);

    // From the pre-disaster full to points before and after the recovery.
    env.ok(
        "zmrestore",
        &["-a", a, "-ca", "-pre", "x_", "-lb", &f2, "-t", t],
    );
    assert_eq!(env.subjects("x_a@dr4.test"), ["a0", "a1", "a2", "a3"]);
    env.ok(
        "zmrestore",
        &[
            "-a",
            a,
            "-ca",
            "-pre",
            "y_",
            "-lb",
            &f2,
            "-restoreToTime",
            &after_dr,
            "-t",
            t,
        ],
    );
    assert_eq!(env.subjects("y_a@dr4.test"), ["a0", "a1", "a2"]);
    env.ok(
        "zmrestore",
        &[
            "-a",
            a,
            "-ca",
            "-pre",
            "z_",
            "-lb",
            &f1,
            "-restoreToIncrLabel",
            &i1,
            "-t",
            t,
        ],
    );
    assert_eq!(env.subjects("z_a@dr4.test"), ["a0", "a1"]);
    // The first full rolls forward across the second one and the recovery.
    env.ok(
        "zmrestore",
        &["-a", a, "-ca", "-pre", "g_", "-lb", &f1, "-t", t],
    );
    assert_eq!(env.subjects("g_a@dr4.test"), ["a0", "a1", "a2", "a3"]);
}

/// A disaster right after a full, with no incremental since the previous full:
/// the second full holds the logs archived between the two, so the first one
/// still rolls forward to any point between them on the rebuilt home. A log
/// that really is lost is still a gap, for `mailvault check` and for a restore.
#[test]
fn a_disaster_right_after_a_full_keeps_the_points_between_the_fulls() {
    let env = Env::new();
    let t = env.root.join("target");
    let t = t.to_str().unwrap();
    let a = "a@dr5.test";
    env.ok("zmprov", &["cd", "dr5.test"]);
    env.ok("zmprov", &["ca", a, "secret"]);
    env.ok("zmprov", &["mcf", "zimbraBackupTarget", t]);
    // Each delivery fills a 1 KB log: the log rolls over after every one.
    env.ok(
        "zmprov",
        &[
            "mcf",
            "zimbraRedoLogRolloverFileSizeKB",
            "1",
            "zimbraRedoLogRolloverMinFileAge",
            "0",
        ],
    );
    let archive = env.home.join("redolog/archive");
    let archived = || std::fs::read_dir(&archive).map_or(0, |d| d.count());
    // Text that does not compress (the redo log stores message bytes
    // compressed when that pays), so each delivery really fills a log.
    let mut x: u32 = 0x9e37_79b9;
    let big: String = (0..1500)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (b'!' + (x % 90) as u8) as char
        })
        .collect();
    let deliver = |s: &str| env.deliver_body(a, s, &big);
    deliver("a0");
    let f1 = env.ok("zmbackup", &["-f", "-a", "all", "-sync", "-t", t]);
    let f1 = f1.stdout.trim().to_string();
    let after_f1 = archived();
    deliver("a1");
    let between = moment();
    deliver("a2");
    deliver("a3");
    // (A log rolls over before the next record goes in: a1's and a2's are
    // archived now.)
    assert!(
        archived() >= after_f1 + 2,
        "the deliveries rolled no log over"
    );
    let f2 = env.ok("zmbackup", &["-f", "-a", "all", "-sync", "-t", t]);
    assert!(!f2.stderr.contains("gap"), "{}", f2.stderr);
    let f2 = f2.stdout.trim().to_string();
    assert!(f2.starts_with("full-"), "{f2}");

    std::fs::remove_dir_all(&env.home).unwrap();
    env.ok("zmrestoreldap", &["-t", t]);
    let o = env.ok("zmrestoreoffline", &["-a", "all", "-t", t]);
    no_jump("zmrestoreoffline", &o);
    assert_eq!(env.subjects(a), ["a0", "a1", "a2", "a3"]);

    // From the first full to a point between the fulls, without
    // --ignoreRedoErrors: the state of that point, said plainly.
    let o = env.ok(
        "zmrestore",
        &[
            "-a",
            a,
            "-lb",
            &f1,
            "-restoreToTime",
            &between,
            "-ca",
            "-pre",
            "p_",
            "-t",
            t,
        ],
    );
    assert!(
        o.stdout
            .contains(&format!("{a}: restored as p_{a} (mailbox ")),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains(&format!("from {f1}: ")), "{}", o.stdout);
    for bad in ["warning", "gap", "skipped"] {
        assert!(
            !o.stderr.contains(bad) && !o.stdout.contains(bad),
            "{}{}",
            o.stdout,
            o.stderr
        );
    }
    assert_eq!(env.subjects(&format!("p_{a}")), ["a0", "a1"]);
    env.verify(t);

    // A log lost before any backup copied it is a real gap.
    let logs = || -> std::collections::BTreeSet<std::path::PathBuf> {
        std::fs::read_dir(&archive)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    };
    deliver("a4");
    let before_a5 = logs();
    deliver("a5");
    // a4's log: the one archived when a5 came (a log rolls over before the
    // next record goes in).
    let lost = logs()
        .difference(&before_a5)
        .next()
        .cloned()
        .expect("a4's archived log");
    std::fs::remove_file(&lost).unwrap();
    let check = env.run(Path::new(BIN), &["check"]);
    assert!(
        check.stdout.contains("redo chain: FAILED (")
            && check
                .stdout
                .contains("real gap: Found gap in redo log sequence"),
        "{}",
        check.stdout
    );
    // A full is the remedy: it completes, saying what older backups lost.
    let f3 = env.ok("zmbackup", &["-f", "-a", "all", "-sync", "-t", t]);
    assert!(
        f3.stderr.contains("Found gap in redo log sequence")
            && f3
                .stderr
                .contains("older backups cannot be rolled forward across it"),
        "{}",
        f3.stderr
    );
    let check = env.run(Path::new(BIN), &["check"]);
    assert!(
        check.stdout.contains("redo chain: OK ("),
        "{}",
        check.stdout
    );
    // The second full cannot be rolled forward across the hole.
    let o = env.zm(
        "zmrestore",
        &["-a", a, "-lb", &f2, "-ca", "-pre", "g_", "-t", t],
    );
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr.contains("Found gap in redo log sequence"),
        "{}",
        o.stderr
    );
}

#[test]
fn renamed_and_deleted_accounts_through_query_restore_and_disaster_recovery() {
    let env = Env::new();
    let t = env.root.join("target");
    let t = t.to_str().unwrap();
    let (dave, dave2, erin, carol) = (
        "dave@ex.test",
        "dave-renamed@ex.test",
        "erin@ex.test",
        "carol@ex.test",
    );
    env.ok("zmprov", &["cd", "ex.test"]);
    for u in [dave, erin, carol] {
        env.ok("zmprov", &["ca", u, "secret"]);
        env.deliver(u, &format!("{}-0", &u[..4]));
    }
    env.ok("zmprov", &["mcf", "zimbraBackupTarget", t]);
    let full = env.ok("zmbackup", &["-f", "-a", "all", "-sync"]);
    let full = full.stdout.trim().to_string();
    env.ok("zmprov", &["ra", dave, dave2]);
    env.ok("zmprov", &["da", erin]);
    env.deliver(dave2, "dave-1");
    let incr = env.incremental(t);
    let id = env.ok("zmprov", &["ga", dave2, "zimbraId"]).stdout;
    let id = id
        .lines()
        .find_map(|l| l.strip_prefix("zimbraId: "))
        .unwrap()
        .trim()
        .to_string();

    // The history under either address, saying which address it had when.
    for name in [dave, dave2] {
        let q = env.ok("zmbackupquery", &["-a", name]);
        assert!(
            !q.stdout.contains("No backup found"),
            "{name}: {}",
            q.stdout
        );
        assert!(
            q.stdout.contains(&full) && q.stdout.contains(&incr),
            "{}",
            q.stdout
        );
        assert_eq!(q.stdout.matches(&format!("Acct ID: {id}")).count(), 2);
        let other = if name == dave { dave2 } else { dave };
        assert!(
            q.stdout.contains(&format!("Address: {other} (at the time")),
            "{}",
            q.stdout
        );
    }
    // accounts.xml: the current address, the former one recorded.
    let xml = std::fs::read_to_string(Path::new(t).join("accounts.xml")).unwrap();
    let line = xml.lines().find(|l| l.contains(&id)).unwrap();
    assert!(
        line.contains(&format!("email=\"{dave2}\""))
            && line.contains(&format!("formerEmails=\"{dave}\"")),
        "{line}"
    );
    // Restores under the new address (in place) and the former one (new account).
    env.deliver(dave2, "dave-2");
    env.ok("zmrestore", &["-a", dave2, "-lb", &full, "-rf"]);
    assert_eq!(env.subjects(dave2), ["dave-0"]);
    env.ok(
        "zmrestore",
        &[
            "-a",
            dave,
            "-ca",
            "-pre",
            "old_",
            "-restoreToIncrLabel",
            &incr,
        ],
    );
    assert_eq!(env.subjects("old_dave@ex.test"), ["dave-0", "dave-1"]);

    // The README's recovery onto a fresh home: the deleted account is skipped and
    // listed, the renamed one comes back under its name, exit 0.
    env.incremental(t);
    std::fs::remove_dir_all(&env.home).unwrap();
    env.ok("zmrestoreldap", &["-t", t]);
    let o = env.ok("zmrestoreoffline", &["-a", "all", "-t", t]);
    assert!(
        o.stdout.contains(&format!("{erin}: skipped, deleted ")),
        "{}{}",
        o.stdout,
        o.stderr
    );
    assert!(
        !o.stdout.lines().any(|l| l.starts_with(&format!("{dave}:"))),
        "{}",
        o.stdout
    );
    assert_eq!(env.subjects(dave2), ["dave-0"]);
    assert_eq!(env.subjects(carol), ["caro-0"]);
    assert_eq!(env.subjects("old_dave@ex.test"), ["dave-0", "dave-1"]);
    assert_ne!(env.zm("zmprov", &["ga", erin]).code, 0);
    let o = env.ok("zmrestoreoffline", &["-a", "all", "-t", t, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["skipped_accounts"].as_array().unwrap().len(), 1, "{v}");
}

/// A free loopback port below the ephemeral range (probing from a per-process
/// offset in 20000-20999, so parallel tests rarely collide).
fn free_low_port(skip: &[u16]) -> u16 {
    let start = 20000 + (std::process::id() % 900) as u16;
    (start..21000)
        .chain(20000..start)
        .find(|p| !skip.contains(p) && std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port in 20000-20999")
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_rebuilt_home_keeps_the_servers_identity_and_its_backup_target() {
    let env = Env::new();
    let t = env.root.join("target");
    let t = t.to_str().unwrap();
    let mut ports = Vec::new();
    for key in [
        "admin_bind_port",
        "lmtp_bind_port",
        "imap_bind_port",
        "imaps_bind_port",
    ] {
        let p = free_low_port(&ports);
        ports.push(p);
        let o = env.run(
            Path::new(BIN),
            &["localconfig", "-e", &format!("{key}={p}")],
        );
        assert_eq!(o.code, 0, "{}", o.stderr);
    }
    env.ok("zmprov", &["cd", "id.test"]);
    env.ok("zmprov", &["ca", "u@id.test", "secret"]);
    env.deliver("u@id.test", "m0");
    // The first start makes the IMAP certificate.
    env.ok("zmcontrol", &["start"]);
    env.ok("zmcontrol", &["stop"]);
    let conf = |name: &str| std::fs::read(env.home.join("conf").join(name)).unwrap();
    let identity: Vec<(&str, Vec<u8>)> =
        ["imap.crt", "imap.key", "admin.token", "localconfig.conf"]
            .into_iter()
            .map(|n| (n, conf(n)))
            .collect();
    let full = env.ok("zmbackup", &["-f", "-a", "all", "-sync", "-t", t]);
    let full = full.stdout.trim().to_string();
    // The secrets are the owner's alone in the target too.
    let sys = Path::new(t).join("sessions").join(&full).join("sys");
    assert_eq!(mode(&sys.join("conf")), 0o700);
    for f in ["imap.key", "admin.token"] {
        assert_eq!(mode(&sys.join("conf").join(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&sys.join("localconfig.conf")), 0o600);

    // Without the identity (--skipConf), the fresh home keeps its own token.
    std::fs::remove_dir_all(&env.home).unwrap();
    env.ok("zmrestoreldap", &["-t", t, "--skipConf"]);
    assert_ne!(conf("admin.token"), identity[2].1);
    assert!(!env.home.join("conf/imap.key").exists());

    // The README's recovery: the same certificate, key, token and ports, and the
    // backups go on into the target the server was rebuilt from.
    std::fs::remove_dir_all(&env.home).unwrap();
    let o = env.ok("zmrestoreldap", &["-t", t]);
    assert!(o.stdout.contains("conf/imap.key"), "{}", o.stdout);
    assert!(
        o.stdout
            .contains(&format!("zimbraBackupTarget of this server is now {t}")),
        "{}",
        o.stdout
    );
    for (name, bytes) in &identity {
        assert!(
            conf(name) == *bytes,
            "conf/{name} differs after the rebuild"
        );
    }
    for f in ["imap.key", "admin.token", "localconfig.conf"] {
        assert_eq!(mode(&env.home.join("conf").join(f)), 0o600, "{f}");
    }
    env.ok("zmrestoreoffline", &["-a", "all"]);
    env.ok("zmcontrol", &["start"]);
    let listening: Vec<bool> = ports
        .iter()
        .map(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok())
        .collect();
    // mailvault check: the chain is whole, and a full is due after the recovery.
    let before = env.run(Path::new(BIN), &["check"]);
    let full = env.zm("zmbackup", &["-f", "-a", "all", "-sync"]);
    let after = env.run(Path::new(BIN), &["check"]);
    env.ok("zmcontrol", &["stop"]);
    assert_eq!(listening, [true; 4], "ports {ports:?}");
    assert_eq!(full.code, 0, "{}{}", full.stdout, full.stderr);
    let label = full.stdout.split_whitespace().last().unwrap().to_string();
    assert!(
        Path::new(t).join("sessions").join(&label).is_dir(),
        "{}",
        full.stdout
    );
    assert!(
        before.stdout.contains("redo chain: OK ("),
        "{}",
        before.stdout
    );
    assert!(
        before.stdout.contains(
            "full backup since the last restore: FAILED (no full backup since a restore or disaster recovery"
        ),
        "{}",
        before.stdout
    );
    assert!(
        after.stdout.contains("redo chain: OK ("),
        "{}",
        after.stdout
    );
    assert!(
        after
            .stdout
            .contains("full backup since the last restore: OK"),
        "{}",
        after.stdout
    );
}

#[test]
fn a_point_in_time_restore_after_an_in_place_restore_rebuilds_what_it_restored() {
    let env = Env::new();
    let t = env.root.join("target");
    let t = t.to_str().unwrap();
    let bob = "bob@pit.test";
    env.ok("zmprov", &["cd", "pit.test"]);
    env.ok("zmprov", &["ca", bob, "secret"]);
    env.deliver(bob, "b0");
    env.deliver(bob, "b1");
    let full = env.ok("zmbackup", &["-f", "-a", "all", "-sync", "-t", t]);
    let full = full.stdout.trim().to_string();
    for s in ["b2", "b3", "b4"] {
        env.deliver(bob, s);
    }
    let before_restore = moment();
    env.ok("zmrestore", &["-a", bob, "-lb", &full, "-rf", "-t", t]);
    assert_eq!(env.subjects(bob), ["b0", "b1"]);
    let after_restore = moment();
    env.deliver(bob, "b5");
    let after_b5 = moment();

    // zmredodump shows the restore and its source.
    let dump = env.ok("zmredodump", &[]).stdout;
    assert!(
        dump.lines().any(|l| l.contains("[DeleteMailbox]")
            && l.contains("replacedBy=")
            && l.contains(&format!("restoredFrom={full}"))),
        "{dump}"
    );
    let pit = |pre: &str, at: &str| {
        env.ok(
            "zmrestore",
            &["-a", bob, "-restoreToTime", at, "-ca", "-pre", pre, "-t", t],
        );
        env.subjects(&format!("{pre}{bob}"))
    };
    assert_eq!(pit("p1_", &after_restore), ["b0", "b1"]);
    assert_eq!(pit("p2_", &after_b5), ["b0", "b1", "b5"]);
    assert_eq!(pit("p0_", &before_restore), ["b0", "b1", "b2", "b3", "b4"]);

    // A second in-place restore, to a point before the first: the history follows
    // both.
    env.ok(
        "zmrestore",
        &["-a", bob, "-restoreToTime", &before_restore, "-t", t],
    );
    assert_eq!(env.subjects(bob), ["b0", "b1", "b2", "b3", "b4"]);
    env.deliver(bob, "b6");
    env.ok("zmrestore", &["-a", bob, "-ca", "-pre", "p3_", "-t", t]);
    assert_eq!(
        env.subjects(&format!("p3_{bob}")),
        ["b0", "b1", "b2", "b3", "b4", "b6"]
    );
    assert_eq!(pit("p4_", &after_b5), ["b0", "b1", "b5"]);
    // The next incremental takes the restored mailbox's full and chains on.
    env.incremental(t);
    env.verify(t);
}

/// One LMTP transaction to `rcpts` (every reply 250), on the server at `port`.
fn lmtp_deliver(port: u16, rcpts: &[&str], subject: &str, body: &str) {
    use std::io::{BufRead, BufReader, Write};
    fn reply(r: &mut impl BufRead) -> String {
        let mut all = String::new();
        loop {
            let mut l = String::new();
            assert!(r.read_line(&mut l).unwrap() > 0, "LMTP closed: {all}");
            all.push_str(&l);
            if l.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let mut send = |line: &str, code: &str, r: &mut BufReader<std::net::TcpStream>| {
        w.write_all(line.as_bytes()).unwrap();
        let got = reply(r);
        assert!(got.starts_with(code), "{line:?}: {got}");
    };
    assert!(reply(&mut r).starts_with("220"));
    send("LHLO test\r\n", "250", &mut r);
    send("MAIL FROM:<x@y.test>\r\n", "250", &mut r);
    for rcpt in rcpts {
        send(&format!("RCPT TO:<{rcpt}>\r\n"), "250", &mut r);
    }
    send("DATA\r\n", "354", &mut r);
    w.write_all(
        format!(
            "From: x@y.test\r\nTo: {}\r\nSubject: {subject}\r\n\r\n{body}\r\n.\r\n",
            rcpts[0]
        )
        .as_bytes(),
    )
    .unwrap();
    for rcpt in rcpts {
        let got = reply(&mut r);
        assert!(got.starts_with("250"), "{rcpt}: {got}");
    }
    let _ = w.write_all(b"QUIT\r\n");
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A time in milliseconds as `-restoreToTime` takes it (the tests run in UTC).
fn restore_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y/%m/%d %H:%M:%S%.3f")
        .to_string()
}
