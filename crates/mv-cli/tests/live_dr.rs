//! Live DR through the real binaries: a server ships its redo log into its
//! backup target continuously (`zimbraBackupContinuousEnabled TRUE`, a 2 s
//! interval) while mail arrives over LMTP; it is killed with SIGKILL and its
//! home lost; `zmrestoreldap -t T` and `zmrestoreoffline -a all -t T` onto a
//! fresh home bring back, byte for byte, every message acknowledged more than
//! interval + 3 s before the kill — past the last incremental — with the
//! directory as last shipped (an account created, with its mail, and an
//! attribute changed after the last backup), and the next incremental into the same target
//! continues the chain with no gap.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

const INTERVAL: u64 = 2;

fn message(rcpt: &str, i: usize) -> String {
    numbered_message(rcpt, i, "live shipping test")
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// (id, subject) of the Inbox.
fn inbox(env: &Env, user: &str) -> Vec<(String, String)> {
    let o = env.ok(
        "zmmailbox",
        &["-z", "-m", user, "s", "--json", "-l", "1000", "in:Inbox"],
    );
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].to_string(), m["subject"].as_str().unwrap().into()))
        .collect()
}

#[test]
fn a_killed_server_is_rebuilt_to_its_last_shipped_records() {
    let env = Env::new();
    let target = env.root.join("target");
    let t = target.to_str().unwrap().to_string();
    let (lmtp, admin) = (free_port(), free_port());
    for kv in [
        format!("admin_bind_port={admin}"),
        format!("lmtp_bind_port={lmtp}"),
        format!("imap_bind_port={}", free_port()),
        format!("imaps_bind_port={}", free_port()),
    ] {
        assert_eq!(env.run(Path::new(BIN), &["localconfig", "-e", &kv]).code, 0);
    }
    env.ok("zmprov", &["cd", "d.test"]);
    let users = ["a@d.test", "b@d.test"];
    for u in users {
        env.ok("zmprov", &["ca", u, "secret"]);
    }
    env.ok("zmprov", &["mcf", "zimbraBackupTarget", &t]);
    env.ok("zmprov", &["mcf", "zimbraBackupContinuousEnabled", "TRUE"]);
    // Small logs: closed logs are shipped whole, the open one as segments.
    env.ok("zmprov", &["mcf", "zimbraRedoLogRolloverFileSizeKB", "24"]);
    let full = env.ok("zmbackup", &["-f", "-a", "all", "-t", &t]);
    assert!(full.stdout.contains("full-"), "{}", full.stdout);

    let mut server = spawn_server(&env.home, std::process::Stdio::null());
    let mut sent: Vec<(String, String, Instant)> = Vec::new();
    let mut c = Lmtp::connect(lmtp);
    let mut i = 0;
    let mut deliver = |c: &mut Lmtp, sent: &mut Vec<(String, String, Instant)>| {
        let rcpt = users[i % 2];
        let body = message(rcpt, i);
        assert!(c.deliver_to(rcpt, &body), "message {i} refused");
        sent.push((rcpt.to_string(), body, Instant::now()));
        i += 1;
    };
    for _ in 0..20 {
        deliver(&mut c, &mut sent);
    }
    // An incremental through the server: it takes what was shipped as held.
    let o = env.ok("zmbackup", &["-i", "-t", &t, "-sync"]);
    assert!(o.stdout.contains("incr-"), "{}", o.stdout);
    // Directory changes after the last backup reach the target as the
    // shipped directory dump (live/ldap.bak).
    env.ok("zmprov", &["ca", "c@d.test", "shipped-pw"]);
    env.ok(
        "zmprov",
        &["ma", "a@d.test", "displayName", "Alice Shipped"],
    );
    let c_body = message("c@d.test", 900);
    assert!(
        c.deliver_to("c@d.test", &c_body),
        "the message to c@d.test was refused"
    );
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(12) {
        deliver(&mut c, &mut sent);
        std::thread::sleep(Duration::from_millis(100));
    }
    let metrics = http_get(admin, "/metrics");
    for m in [
        "mailvault_redo_shipping_lag_records",
        "mailvault_redo_shipping_lag_bytes",
        "mailvault_redo_shipping_lag_seconds",
    ] {
        assert!(metrics.contains(m), "{m} missing from\n{metrics}");
    }
    let check = env.run(Path::new(BIN), &["check"]);
    let line = check
        .stdout
        .lines()
        .find(|l| l.contains("continuous redo shipping"))
        .unwrap_or_else(|| panic!("no shipping line in\n{}", check.stdout))
        .to_string();
    assert!(line.contains("OK"), "{line}");
    let q = env.ok("zmbackupquery", &["-t", &t]);
    assert!(
        q.stdout.contains("Continuous redo shipping:"),
        "{}",
        q.stdout
    );
    let dump = target.join("live").join("ldap.bak");
    let shipped = Instant::now();
    while !std::fs::read_to_string(&dump).is_ok_and(|d| d.contains("c@d.test")) {
        assert!(
            shipped.elapsed() < Duration::from_secs(30),
            "the directory dump holding c@d.test was not shipped"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The last messages arrive right before the kill.
    for _ in 0..5 {
        deliver(&mut c, &mut sent);
    }
    server.kill().unwrap();
    let killed = Instant::now();
    server.wait().unwrap();
    drop(c);

    // The disk dies; a fresh home is rebuilt from the target alone.
    std::fs::remove_dir_all(&env.home).unwrap();
    let o = env.ok("zmrestoreldap", &["-t", &t]);
    assert!(
        o.stdout.contains("live/ldap.bak"),
        "the directory did not come from the shipped dump: {}",
        o.stdout
    );
    let o = env.ok("zmrestoreoffline", &["-a", "all", "-t", &t]);
    assert_eq!(
        o.stdout.matches("restored as").count(),
        2,
        "{}{}",
        o.stdout,
        o.stderr
    );

    let rpo = Duration::from_secs(INTERVAL + 3);
    let mut must = 0;
    // The oldest acknowledged message lost: how far back the loss reached.
    let mut lost_since: Option<Duration> = None;
    for u in users {
        let found = inbox(&env, u);
        for (n, (_, body, acked)) in sent.iter().enumerate().filter(|(_, s)| s.0 == u) {
            let subject = format!("m{n:03}");
            let hit = found.iter().find(|(_, s)| *s == subject);
            let age = killed.duration_since(*acked);
            if hit.is_none() {
                lost_since = lost_since.max(Some(age));
            }
            if age <= rpo {
                continue;
            }
            if n >= 20 {
                must += 1;
            }
            let (id, _) = hit.unwrap_or_else(|| {
                panic!("{subject} to {u}, acknowledged {age:?} before the kill, is lost")
            });
            let got = env.ok("zmmailbox", &["-z", "-m", u, "gm", id]);
            assert!(
                got.stdout.ends_with(body.as_str()),
                "{subject} is not byte-exact"
            );
        }
    }
    assert!(
        must > 20,
        "the check must cover messages past the last incremental ({must})"
    );
    eprintln!(
        "{} messages acknowledged, {must} past the last incremental checked; oldest lost: {lost_since:?} before the kill",
        sent.len()
    );

    // The directory as shipped, past the last backup: the account created
    // after it (with its password) and the attribute changed.
    let o = env.ok("zmprov", &["ga", "c@d.test"]);
    assert!(o.stdout.contains("c@d.test"), "{}", o.stdout);
    let o = env.ok("zmprov", &["ga", "a@d.test", "displayName"]);
    assert!(o.stdout.contains("Alice Shipped"), "{}", o.stdout);
    // Its mail too, from the redo log shipped after the last backup.
    let found = inbox(&env, "c@d.test");
    let (id, _) = found
        .iter()
        .find(|(_, s)| s == "m900")
        .unwrap_or_else(|| panic!("c@d.test's message is not restored: {found:?}"));
    let got = env.ok("zmmailbox", &["-z", "-m", "c@d.test", "gm", id]);
    assert!(
        got.stdout.ends_with(c_body.as_str()),
        "m900 is not byte-exact"
    );

    // The next incremental continues the chain: no gap.
    let o = env.ok("zmbackup", &["-i", "-a", "all", "-t", &t]);
    assert!(o.stdout.contains("incr-"), "{}", o.stdout);
    let v = env.run(Path::new(BIN), &["backup", "verify", "-t", &t]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
}
