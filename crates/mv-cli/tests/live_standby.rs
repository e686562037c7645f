//! Live DR failover through the real binaries: a primary ships its redo log
//! into a local target (`zimbraBackupContinuousEnabled TRUE`, 2 s) while mail
//! arrives over LMTP and IMAP changes flags and moves; a warm standby
//! (`mailvault standby -t T`) follows the target, read-only. The primary is
//! killed with SIGKILL, `mailvault promote` makes the standby the primary:
//! every message acknowledged more than 5 s before the kill is there byte for
//! byte, in its folder, with its flags; it takes new mail; the next incremental
//! into the same target continues the chain; the old primary, restarted, ships
//! nothing (fenced by the epoch the promote claimed). Another test changes the
//! directory on the primary (a password, attributes, classes of service,
//! a domain, the global config, a list, accounts) and finds it all on the
//! standby and after promote. Another damages a segment in the target while
//! the primary runs: the standby asks, the primary ships it again, the
//! standby catches up. Another takes the
//! target away for a while: shipping falls behind with one WARN and catches up
//! with one INFO.

mod common;
#[path = "../../mv-backup/tests/common/s3.rs"]
mod s3;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RPO: Duration = Duration::from_secs(5);

fn message(rcpt: &str, i: usize) -> String {
    numbered_message(rcpt, i, "standby test")
}

/// `mailvault --home HOME ARGS` (zm* tools through `mailvault <tool>`).
fn run_in(home: &Path, args: &[&str]) -> Out {
    Command::new(BIN)
        .arg("--home")
        .arg(home)
        .env("TZ", "UTC")
        .args(args)
        .output()
        .unwrap()
        .into()
}

fn ok_in(home: &Path, args: &[&str]) -> Out {
    let o = run_in(home, args);
    assert_eq!(o.code, 0, "{args:?}: {}{}", o.stdout, o.stderr);
    o
}

struct Ports {
    lmtp: u16,
    admin: u16,
    imap: u16,
}

/// Fresh listener ports in a home's local config.
fn set_ports(home: &Path) -> Ports {
    let p = Ports {
        lmtp: free_port(),
        admin: free_port(),
        imap: free_port(),
    };
    for kv in [
        format!("admin_bind_port={}", p.admin),
        format!("lmtp_bind_port={}", p.lmtp),
        format!("imap_bind_port={}", p.imap),
        format!("imaps_bind_port={}", free_port()),
        "imap_cleartext_login_enabled=true".to_string(),
    ] {
        ok_in(home, &["localconfig", "-e", &kv]);
    }
    p
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// A minimal IMAP client: tagged commands, every line up to the tagged one.
struct Imap {
    r: BufReader<TcpStream>,
    w: TcpStream,
    n: u32,
}

impl Imap {
    fn login(port: u16, user: &str) -> Imap {
        let w = TcpStream::connect(("127.0.0.1", port)).unwrap();
        w.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut i = Imap {
            r: BufReader::new(w.try_clone().unwrap()),
            w,
            n: 0,
        };
        let mut greeting = String::new();
        i.r.read_line(&mut greeting).unwrap();
        let o = i.cmd(&format!("LOGIN {user} secret"));
        assert!(o.contains(" OK"), "{o}");
        i
    }

    fn cmd(&mut self, c: &str) -> String {
        self.n += 1;
        let tag = format!("t{}", self.n);
        self.w
            .write_all(format!("{tag} {c}\r\n").as_bytes())
            .unwrap();
        let mut all = String::new();
        loop {
            let mut line = String::new();
            assert!(self.r.read_line(&mut line).unwrap() > 0, "IMAP closed");
            all.push_str(&line);
            if line.starts_with(&format!("{tag} ")) {
                return all;
            }
        }
    }
}

/// `mailvault --home H standby -t T`, returned once it serves.
fn spawn_standby(home: &Path, target: &str) -> Child {
    let mut child = Command::new(BIN)
        .arg("--home")
        .arg(home)
        .args(["standby", "-t", target])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "the standby did not start");
        match lines.next() {
            Some(Ok(l)) if l.starts_with("mailvault ready") => break,
            Some(Ok(_)) => continue,
            _ => panic!("the standby exited before it was ready"),
        }
    }
    std::thread::spawn(move || for _ in lines {});
    child
}

/// Subjects of the messages a search finds in `home`'s running server.
fn subjects(home: &Path, user: &str, query: &str) -> Vec<(String, String)> {
    let o = ok_in(
        home,
        &[
            "mailbox", "-z", "-m", user, "s", "--json", "-l", "1000", query,
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].to_string(), m["subject"].as_str().unwrap().into()))
        .collect()
}

/// The value of a metric line on `/metrics`.
fn metric(port: u16, name: &str) -> Option<f64> {
    http_get(port, "/metrics")
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.trim().parse().ok())
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A primary with two accounts, shipping continuously into `target`, after
/// its first full.
fn primary(env: &Env, target: &str) -> Ports {
    let ports = set_ports(&env.home);
    env.ok("zmprov", &["cd", "d.test"]);
    for u in ["a@d.test", "b@d.test"] {
        env.ok("zmprov", &["ca", u, "secret"]);
    }
    env.ok("zmprov", &["mcf", "zimbraBackupTarget", target]);
    env.ok("zmprov", &["mcf", "zimbraBackupContinuousEnabled", "TRUE"]);
    // Small logs: closed logs are shipped whole, the open one as segments.
    env.ok("zmprov", &["mcf", "zimbraRedoLogRolloverFileSizeKB", "24"]);
    let full = env.ok("zmbackup", &["-f", "-a", "all", "-t", target]);
    assert!(full.stdout.contains("full-"), "{}", full.stdout);
    ports
}

#[test]
fn a_standby_follows_and_takes_over_when_the_primary_is_killed() {
    failover(false);
}

/// The same through an S3 target (s3s-fs in this process, on loopback): the
/// epoch is a conditional PUT there.
#[test]
fn a_standby_follows_an_s3_target_and_takes_over() {
    failover(true);
}

fn failover(on_s3: bool) {
    let env = Env::new();
    let server = on_s3.then(|| s3::S3Server::start(&env.root.join("s3")));
    let t = match &server {
        Some(s) => s.url("mail/backups"),
        None => env.root.join("target").to_str().unwrap().to_string(),
    };
    // The S3 endpoint and credentials, in each home's local config.
    let s3_config = |home: &Path| {
        for (k, v) in server.iter().flat_map(|s| s.local_config()) {
            ok_in(home, &["localconfig", "-e", &format!("{k}={v}")]);
        }
    };
    s3_config(&env.home);
    let p = primary(&env, &t);
    let mut server = spawn_server(&env.home, Stdio::null());

    for u in ["d@d.test", "b2@d.test"] {
        env.ok("zmprov", &["ca", u, "secret"]);
    }
    let users = ["a@d.test", "b@d.test"];
    let mut sent: Vec<(String, String, Instant)> = Vec::new();
    let mut lmtp = Lmtp::connect(p.lmtp);
    let deliver = |c: &mut Lmtp, sent: &mut Vec<(String, String, Instant)>| {
        let i = sent.len();
        let rcpt = users[i % 2];
        let body = message(rcpt, i);
        assert!(c.deliver_to(rcpt, &body), "message {i} refused");
        sent.push((rcpt.to_string(), body, Instant::now()));
    };
    for _ in 0..10 {
        deliver(&mut lmtp, &mut sent);
    }

    // The standby: a home of its own (its own ports, beside the primary).
    let sb = env.root.join("standby");
    ok_in(&sb, &["init"]);
    s3_config(&sb);
    let sp = set_ports(&sb);
    let mut standby = spawn_standby(&sb, &t);

    // IMAP on the primary: a's first message (m000) flagged, its second
    // (m002) moved to a new folder.
    let mut imap = Imap::login(p.imap, "a@d.test");
    assert!(imap.cmd("SELECT INBOX").contains(" OK"));
    assert!(imap.cmd("STORE 1 +FLAGS (\\Flagged)").contains(" OK"));
    assert!(imap.cmd("CREATE Archive").contains(" OK"));
    let moved = imap.cmd("MOVE 2 Archive");
    assert!(moved.contains(" OK"), "{moved}");
    drop(imap);
    // Directory changes on the primary reach the standby too: an account
    // created (it gets mail), one renamed, one deleted.
    env.ok("zmprov", &["ca", "c@d.test", "secret"]);
    env.ok("zmprov", &["ra", "b2@d.test", "e@d.test"]);
    env.ok("zmprov", &["da", "d@d.test"]);
    let c_body = message("c@d.test", 999);
    assert!(lmtp.deliver_to("c@d.test", &c_body));
    let c_acked = Instant::now();

    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(12) {
        deliver(&mut lmtp, &mut sent);
        std::thread::sleep(Duration::from_millis(100));
    }

    // A standby killed and started again goes on from the position it kept.
    let kept = |sb: &Path| -> u64 {
        let b = std::fs::read(sb.join("conf").join("standby.json")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        v["position"]["lsn"].as_u64().unwrap()
    };
    wait_for(
        "the standby applies shipped records",
        Duration::from_secs(30),
        || kept(&sb) > 0,
    );
    let before = kept(&sb);
    standby.kill().unwrap();
    standby.wait().unwrap();
    let check = run_in(&sb, &["check"]);
    assert!(
        check
            .stdout
            .lines()
            .any(|l| l.contains("standby") && l.contains("no `mailvault standby` runs")),
        "{}",
        check.stdout
    );
    let mut standby = spawn_standby(&sb, &t);
    for _ in 0..20 {
        deliver(&mut lmtp, &mut sent);
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for(
        "the restarted standby goes on",
        Duration::from_secs(30),
        || kept(&sb) > before,
    );

    // While it follows: read-only IMAP, lag reported, no LMTP.
    let mut ro = Imap::login(sp.imap, "b@d.test");
    let sel = ro.cmd("SELECT INBOX");
    assert!(sel.contains("[READ-ONLY]"), "{sel}");
    let app = ro.cmd("APPEND INBOX {5+}\r\nhello");
    assert!(app.contains(" NO "), "{app}");
    drop(ro);
    assert!(
        TcpStream::connect(("127.0.0.1", sp.lmtp)).is_err(),
        "a standby listens for LMTP"
    );
    wait_for(
        "the standby reports its lag",
        Duration::from_secs(30),
        || metric(sp.admin, "mailvault_standby_lag_records").is_some(),
    );
    let check = run_in(&sb, &["check"]);
    let line = check
        .stdout
        .lines()
        .find(|l| l.contains("standby"))
        .unwrap_or_else(|| panic!("no standby line in\n{}", check.stdout))
        .to_string();
    assert!(line.contains("following") && line.contains("OK"), "{line}");
    // It takes no backup into the target it follows.
    let o = run_in(&sb, &["backup", "-i", "-t", &t]);
    assert_ne!(o.code, 0, "a standby took a backup: {}", o.stdout);
    assert!(o.stderr.contains("standby"), "{}", o.stderr);

    for _ in 0..5 {
        deliver(&mut lmtp, &mut sent);
    }
    server.kill().unwrap();
    let killed = Instant::now();
    server.wait().unwrap();
    drop(lmtp);

    let promoted = Instant::now();
    let o = ok_in(&sb, &["promote"]);
    let took = promoted.elapsed();
    assert!(o.stdout.contains("claimed epoch 1"), "{}", o.stdout);
    let _ = standby.wait();
    eprintln!("promote took {took:?}:\n{}", o.stdout);

    // Every message acknowledged more than RPO before the kill, byte for
    // byte, where it was put, with its flags.
    let mut checked = 0;
    let mut lost_since: Option<Duration> = None;
    let mut inboxes = Vec::new();
    for u in users {
        inboxes.push((u, subjects(&sb, u, "in:Inbox")));
    }
    let archive = subjects(&sb, "a@d.test", "in:Archive");
    let flagged = subjects(&sb, "a@d.test", "is:flagged");
    for (n, (u, body, acked)) in sent.iter().enumerate() {
        let subject = format!("m{n:03}");
        let folder = if n == 2 { &archive } else { &inboxes[n % 2].1 };
        assert_eq!(inboxes[n % 2].0, u);
        let hit = folder.iter().find(|(_, s)| *s == subject);
        let age = killed.duration_since(*acked);
        if hit.is_none() {
            lost_since = lost_since.max(Some(age));
        }
        if age <= RPO {
            continue;
        }
        let (id, _) = hit.unwrap_or_else(|| {
            panic!("{subject} to {u}, acknowledged {age:?} before the kill, is not on the standby")
        });
        let got = ok_in(&sb, &["mailbox", "-z", "-m", u, "gm", id]);
        assert!(
            got.stdout.ends_with(body.as_str()),
            "{subject} is not byte-exact"
        );
        checked += 1;
    }
    assert!(checked > 20, "too few messages checked ({checked})");
    assert!(
        flagged.iter().any(|(_, s)| s == "m000"),
        "m000 lost its flag: {flagged:?}"
    );
    assert!(
        !flagged.iter().any(|(_, s)| s == "m004"),
        "m004 was never flagged: {flagged:?}"
    );
    if killed.duration_since(c_acked) > RPO {
        let c = subjects(&sb, "c@d.test", "in:Inbox");
        assert_eq!(c.len(), 1, "c@d.test, created on the primary: {c:?}");
    }
    assert_eq!(ok_in(&sb, &["prov", "ga", "e@d.test"]).code, 0);
    for gone in ["d@d.test", "b2@d.test"] {
        let o = run_in(&sb, &["prov", "ga", gone]);
        assert_ne!(o.code, 0, "{gone} is still on the standby: {}", o.stdout);
    }
    eprintln!(
        "{} messages acknowledged, {checked} checked; oldest lost: {lost_since:?} before the kill",
        sent.len()
    );

    // It is the primary now: its identity (the primary's ports), new mail.
    let mut lmtp = Lmtp::connect(p.lmtp);
    assert!(lmtp.deliver_to("b@d.test", &message("b@d.test", 1000)));
    drop(lmtp);
    assert!(
        subjects(&sb, "b@d.test", "in:Inbox")
            .iter()
            .any(|(_, s)| s == "m1000")
    );
    // The next incremental into the same target: no gap.
    let o = ok_in(&sb, &["backup", "-i", "-a", "all", "-t", &t]);
    assert!(o.stdout.contains("incr-"), "{}", o.stdout);
    let v = run_in(&sb, &["backup", "verify", "-t", &t]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);

    // The old primary comes back (on other ports): it ships nothing.
    set_ports(&env.home);
    let mut old = spawn_server(&env.home, Stdio::null());
    std::thread::sleep(Duration::from_secs(5));
    let check = env.run(Path::new(BIN), &["check"]);
    let line = check
        .stdout
        .lines()
        .find(|l| l.contains("continuous redo shipping"))
        .unwrap_or_else(|| panic!("no shipping line in\n{}", check.stdout))
        .to_string();
    assert!(
        line.contains("FAIL") && line.contains("epoch 1"),
        "the old primary ships: {line}"
    );
    old.kill().unwrap();
    old.wait().unwrap();
    let log = std::fs::read_to_string(env.home.join("log").join("mailbox.log")).unwrap();
    assert!(
        log.contains("continuous redo shipping refused"),
        "the old primary does not say why it ships nothing"
    );
    // What it would have shipped is not in the target: the chain still checks.
    let v = run_in(&sb, &["backup", "verify", "-t", &t]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    ok_in(&sb, &["control", "stop"]);
}

/// Whether the server on `port` accepts IMAP LOGIN of `user` with `password`.
fn login_accepted(port: u16, user: &str, password: &str) -> bool {
    let w = TcpStream::connect(("127.0.0.1", port)).unwrap();
    w.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut r = BufReader::new(w.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    (&w).write_all(format!("t1 LOGIN {user} {password}\r\n").as_bytes())
        .unwrap();
    loop {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "IMAP closed");
        if line.starts_with("t1 ") {
            return line.starts_with("t1 OK");
        }
    }
}

#[test]
fn a_standby_follows_the_whole_directory() {
    let env = Env::new();
    let t = env.root.join("target").to_str().unwrap().to_string();
    let p = primary(&env, &t);
    let mut server = spawn_server(&env.home, Stdio::null());
    let sb = env.root.join("standby");
    ok_in(&sb, &["init"]);
    let sp = set_ports(&sb);
    let mut standby = spawn_standby(&sb, &t);
    assert!(login_accepted(sp.imap, "a@d.test", "secret"));

    // On the primary: a new password, an attribute, a class of service's
    // quota. None of them is a redo record: they reach the standby with the
    // shipped directory dump.
    env.ok("zmprov", &["sp", "a@d.test", "n3w-secret"]);
    env.ok(
        "zmprov",
        &["ma", "a@d.test", "displayName", "Alice Standby"],
    );
    env.ok("zmprov", &["mc", "default", "zimbraMailQuota", "7340032"]);
    wait_for(
        "the attribute reaches the standby",
        Duration::from_secs(60),
        || {
            run_in(&sb, &["prov", "ga", "a@d.test", "displayName"])
                .stdout
                .contains("Alice Standby")
        },
    );
    assert!(
        login_accepted(sp.imap, "a@d.test", "n3w-secret"),
        "the new password is refused on the standby"
    );
    assert!(
        !login_accepted(sp.imap, "a@d.test", "secret"),
        "the old password still works on the standby"
    );
    let gc = ok_in(&sb, &["prov", "gc", "default", "zimbraMailQuota"]);
    assert!(gc.stdout.contains("7340032"), "{}", gc.stdout);
    // Untouched accounts keep working as they were.
    assert!(login_accepted(sp.imap, "b@d.test", "secret"));

    // Beyond accounts: a class of service created (and one to delete), a
    // domain's attribute, the global and server config, a list and its
    // members.
    env.ok("zmprov", &["cc", "gold", "zimbraMailQuota", "1048576"]);
    env.ok("zmprov", &["cc", "tin"]);
    env.ok("zmprov", &["md", "d.test", "description", "Main domain"]);
    env.ok("zmprov", &["mcf", "zimbraSmtpHostname", "mx.d.test"]);
    // This host's server entry (both homes run on the same host here).
    env.ok("zmprov", &["ms", "zimbraSmtpPort", "2525"]);
    env.ok("zmprov", &["cdl", "team@d.test"]);
    env.ok("zmprov", &["adlm", "team@d.test", "a@d.test", "b@d.test"]);
    env.ok("zmprov", &["ca", "x@d.test", "secret"]);
    let prov = |args: &[&str]| run_in(&sb, &[&["prov"], args].concat());
    let shows = |args: &[&str], what: &str| {
        let o = prov(args);
        o.code == 0 && o.stdout.contains(what)
    };
    wait_for(
        "the new class of service, domain, config and list reach the standby",
        Duration::from_secs(60),
        || {
            shows(&["gc", "gold"], "1048576")
                && shows(&["gc", "tin"], "tin")
                && shows(&["gd", "d.test"], "Main domain")
                && shows(&["gacf"], "mx.d.test")
                && shows(&["gs", "zimbraSmtpPort"], "2525")
                && shows(&["gdl", "team@d.test"], "b@d.test")
                && shows(&["ga", "x@d.test"], "x@d.test")
        },
    );
    // Deleted on the primary: gone from the standby.
    env.ok("zmprov", &["dc", "tin"]);
    env.ok("zmprov", &["rdlm", "team@d.test", "b@d.test"]);
    env.ok("zmprov", &["da", "x@d.test"]);
    wait_for(
        "deletions reach the standby",
        Duration::from_secs(60),
        || {
            prov(&["gc", "tin"]).code != 0
                && prov(&["ga", "x@d.test"]).code != 0
                && !shows(&["gdl", "team@d.test"], "b@d.test")
        },
    );
    assert!(shows(&["gdl", "team@d.test"], "a@d.test"));

    // Promoted, it keeps them all.
    server.kill().unwrap();
    server.wait().unwrap();
    ok_in(&sb, &["promote"]);
    let _ = standby.wait();
    assert!(shows(&["gc", "gold"], "1048576"));
    assert!(shows(&["gd", "d.test"], "Main domain"));
    assert!(shows(&["gacf"], "mx.d.test"));
    assert!(shows(&["gs", "zimbraSmtpPort"], "2525"));
    assert!(shows(&["gdl", "team@d.test"], "a@d.test"));
    assert_ne!(prov(&["gc", "tin"]).code, 0);
    // On the primary's ports now (its identity).
    assert!(login_accepted(p.imap, "a@d.test", "n3w-secret"));
    ok_in(&sb, &["control", "stop"]);
}

#[test]
fn shipping_falls_behind_while_the_target_is_away_and_catches_up() {
    let env = Env::new();
    let target = env.root.join("target");
    let t = target.to_str().unwrap().to_string();
    let p = primary(&env, &t);
    let mut server = spawn_server(&env.home, Stdio::null());
    let mut lmtp = Lmtp::connect(p.lmtp);
    for i in 0..5 {
        assert!(lmtp.deliver_to("a@d.test", &message("a@d.test", i)));
    }
    wait_for("shipping catches up", Duration::from_secs(30), || {
        metric(p.admin, "mailvault_redo_shipping_lag_records") == Some(0.0)
    });
    // The target goes away: its directory moved aside and a file in its
    // place (as root, permissions would not stop the writes).
    let away = env.root.join("target.away");
    std::fs::rename(&target, &away).unwrap();
    std::fs::write(&target, b"not a directory").unwrap();
    for i in 5..25 {
        assert!(lmtp.deliver_to("a@d.test", &message("a@d.test", i)));
    }
    wait_for("shipping falls behind", Duration::from_secs(30), || {
        metric(p.admin, "mailvault_redo_shipping_lag_records").is_some_and(|n| n > 0.0)
    });
    std::thread::sleep(Duration::from_secs(6));
    std::fs::remove_file(&target).unwrap();
    std::fs::rename(&away, &target).unwrap();
    wait_for("shipping catches up again", Duration::from_secs(30), || {
        metric(p.admin, "mailvault_redo_shipping_lag_records") == Some(0.0)
    });
    server.kill().unwrap();
    server.wait().unwrap();
    let log = std::fs::read_to_string(env.home.join("log").join("mailbox.log")).unwrap();
    let warns = log.lines().filter(|l| l.contains("falling behind")).count();
    let infos = log
        .lines()
        .filter(|l| l.contains("caught up after"))
        .count();
    assert_eq!((warns, infos), (1, 1), "{log}");
    // Nothing lost: the target's chain holds every record (lag 0 by LSN) and
    // checks whole.
    let v = env.run(Path::new(BIN), &["backup", "verify", "-t", &t]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
}

/// How many messages `user`'s INBOX holds on the server at `port`.
fn inbox_count(port: u16, user: &str) -> usize {
    let sel = Imap::login(port, user).cmd("SELECT INBOX");
    sel.lines()
        .find_map(|l| l.strip_prefix("* ")?.strip_suffix(" EXISTS")?.parse().ok())
        .unwrap_or_else(|| panic!("no EXISTS in {sel}"))
}

/// The newest segment file the target holds (sequence, then start offset:
/// both are zero-padded in the names).
fn newest_segment(target: &Path) -> std::path::PathBuf {
    let mut all = Vec::new();
    for seq in std::fs::read_dir(target.join("live").join("segments")).unwrap() {
        for f in std::fs::read_dir(seq.unwrap().path()).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "seg") {
                all.push(f);
            }
        }
    }
    all.into_iter().max().expect("no segment shipped")
}

#[test]
fn a_segment_damaged_while_the_primary_runs_is_shipped_again() {
    let env = Env::new();
    let target = env.root.join("target");
    let t = target.to_str().unwrap().to_string();
    let p = primary(&env, &t);
    // One open log all along: the repair comes from it, not from its close.
    env.ok(
        "zmprov",
        &["mcf", "zimbraRedoLogRolloverFileSizeKB", "102400"],
    );
    let mut server = spawn_server(&env.home, Stdio::null());
    let sb = env.root.join("standby");
    ok_in(&sb, &["init"]);
    let sp = set_ports(&sb);
    let mut standby = spawn_standby(&sb, &t);
    let mut lmtp = Lmtp::connect(p.lmtp);
    let mut sent = Vec::new();
    let mut deliver = |lmtp: &mut Lmtp, n: usize| {
        for _ in 0..n {
            let body = message("a@d.test", sent.len());
            assert!(lmtp.deliver_to("a@d.test", &body));
            sent.push(body);
        }
        sent.len()
    };
    let n = deliver(&mut lmtp, 5);
    wait_for("the standby follows", Duration::from_secs(60), || {
        inbox_count(sp.imap, "a@d.test") == n
    });

    // Paused, the standby has not read what is shipped next; the newest
    // segment is then damaged in the target (a byte of its range flipped).
    let pid = standby.id() as i32;
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let before = newest_segment(&target);
    deliver(&mut lmtp, 5);
    wait_for("a new segment is shipped", Duration::from_secs(30), || {
        newest_segment(&target) != before
    });
    // Two more rounds: every acknowledged message is shipped.
    std::thread::sleep(Duration::from_secs(5));
    let seg = newest_segment(&target);
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes.len() - 5;
    bytes[at] ^= 0x20;
    std::fs::write(&seg, &bytes).unwrap();
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let resumed = Instant::now();

    // The standby says so and asks; the primary ships it again from the log
    // it still has open; the standby goes on, nothing restarted.
    let sb_log = || std::fs::read_to_string(sb.join("log").join("mailbox.log")).unwrap_or_default();
    // Polled meanwhile: the lag it reports grows while its step fails.
    let mut lag_seen = 0.0f64;
    wait_for(
        "the standby reports the damage",
        Duration::from_secs(30),
        || {
            let lag = metric(sp.admin, "mailvault_standby_lag_records").unwrap_or(0.0);
            lag_seen = lag_seen.max(lag);
            sb_log().contains("asked the primary to ship it again")
        },
    );
    let lag = metric(sp.admin, "mailvault_standby_lag_records").unwrap_or(0.0);
    lag_seen = lag_seen.max(lag);
    assert!(
        lag_seen > 0.0,
        "the standby reported no lag while it could not follow"
    );
    let n = deliver(&mut lmtp, 5);
    wait_for(
        "the standby catches up after the repair",
        Duration::from_secs(60),
        || inbox_count(sp.imap, "a@d.test") == n,
    );
    eprintln!(
        "the standby found the damage and caught up after the repair {:?} after it resumed",
        resumed.elapsed()
    );
    let log = std::fs::read_to_string(env.home.join("log").join("mailbox.log")).unwrap();
    assert!(log.contains("shipped again from offset"), "{log}");
    // Logged right after the step that applied them (written by a thread).
    wait_for(
        "the standby says it follows again",
        Duration::from_secs(10),
        || sb_log().contains("again after"),
    );
    let v = run_in(&env.home, &["backup", "verify", "-t", &t]);
    assert_eq!(v.code, 0, "the target's chain: {}{}", v.stdout, v.stderr);

    // Every acknowledged message, byte for byte, after promote.
    server.kill().unwrap();
    server.wait().unwrap();
    drop(lmtp);
    ok_in(&sb, &["promote"]);
    let _ = standby.wait();
    let got = subjects(&sb, "a@d.test", "in:Inbox");
    assert_eq!(got.len(), sent.len(), "{got:?}");
    for (i, body) in sent.iter().enumerate() {
        let subject = format!("m{i:03}");
        let (id, _) = got
            .iter()
            .find(|(_, s)| *s == subject)
            .unwrap_or_else(|| panic!("{subject} is not on the promoted standby"));
        let m = ok_in(&sb, &["mailbox", "-z", "-m", "a@d.test", "gm", id]);
        assert!(m.stdout.ends_with(body.as_str()), "{subject} differs");
    }
    ok_in(&sb, &["control", "stop"]);
}
