//! What an administrator reads: the audit lines of log/mailbox.log (a delivery, a
//! rejection, a failed IMAP login, a provisioning change, each naming the account
//! and the client), /metrics parsed by Python's prometheus_client, /health; and a
//! log disk filled to ENOSPC by log lines alone, which must not stop LMTP.

mod common;
mod opsutil;

use common::*;
use opsutil::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

struct Ports {
    lmtp: u16,
    imap: u16,
    admin: u16,
}

/// An initialized home on free ports, cleartext IMAP login allowed (the test
/// logs in without TLS), the disk monitor quiet.
fn setup(env: &Env) -> Ports {
    let o = mailvault(env, &["init"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let p = Ports {
        lmtp: free_port(),
        imap: free_port(),
        admin: free_port(),
    };
    lc(
        env,
        &[
            &format!("lmtp_bind_port={}", p.lmtp),
            &format!("imap_bind_port={}", p.imap),
            &format!("imaps_bind_port={}", free_port()),
            &format!("admin_bind_port={}", p.admin),
            "imap_cleartext_login_enabled=true",
        ],
    );
    quiet_disk_monitor(env);
    p
}

impl Lmtp {
    /// One transaction; the RCPT replies and the DATA replies.
    fn deliver(&mut self, from: &str, rcpts: &[&str], body: &str) -> Vec<String> {
        self.send(&format!("MAIL FROM:<{from}>\r\n"));
        assert!(self.reply().starts_with("250"));
        let mut replies = Vec::new();
        let mut accepted = 0;
        for r in rcpts {
            self.send(&format!("RCPT TO:<{r}>\r\n"));
            let rep = self.reply();
            accepted += usize::from(rep.starts_with("250"));
            replies.push(rep);
        }
        if accepted == 0 {
            self.send("RSET\r\n");
            self.reply();
            return replies;
        }
        self.send("DATA\r\n");
        assert!(self.reply().starts_with("354"));
        self.send(body);
        self.send("\r\n.\r\n");
        for _ in 0..accepted {
            replies.push(self.reply());
        }
        replies
    }

    /// `n` refused recipients in one pipelined transaction (one log line each).
    fn rejections(&mut self, n: usize) {
        let mut batch = String::from("MAIL FROM:<probe@remote.test>\r\n");
        for i in 0..n {
            batch.push_str(&format!("RCPT TO:<nobody{i}@d.test>\r\n"));
        }
        batch.push_str("RSET\r\n");
        self.send(&batch);
        for _ in 0..n + 2 {
            self.reply();
        }
    }
}

fn message(id: &str) -> String {
    format!(
        "From: a@remote.test\r\nTo: alice@d.test\r\nMessage-ID: <{id}@remote.test>\r\nSubject: hi\r\n\r\nhello\r\n"
    )
}

/// GET on the admin listener without a token: (status, body).
fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// The Python that has prometheus_client (scripts/install-test-deps installs it).
fn python() -> &'static str {
    for p in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(p)
            .args(["-c", "import prometheus_client"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return p;
        }
    }
    panic!("no python3 with prometheus_client: run scripts/install-test-deps");
}

/// /metrics through prometheus_client's parser: every sample as
/// `name{label="v",...}` → value.
fn scrape(port: u16) -> serde_json::Map<String, Value> {
    let (status, text) = get(port, "/metrics");
    assert_eq!(status, 200, "{text}");
    let script = r#"
import sys, json
from prometheus_client.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        labels = ",".join('%s="%s"' % kv for kv in sorted(s.labels.items()))
        out[s.name + ("{%s}" % labels if labels else "")] = s.value
print(json.dumps(out))
"#;
    let mut child = Command::new(python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}

fn imap_login(port: u16, user: &str, pass: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("* OK"), "{line}");
    write!(s, "a LOGIN {user} {pass}\r\n").unwrap();
    loop {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0);
        if line.starts_with("a ") {
            return line;
        }
    }
}

fn log_text(env: &Env) -> String {
    let bytes = std::fs::read(env.home.join("log/mailbox.log")).unwrap();
    assert!(
        !bytes.contains(&0x1b),
        "an escape byte in log/mailbox.log: {}",
        String::from_utf8_lossy(&bytes)
    );
    String::from_utf8(bytes).unwrap()
}

/// The one line holding every needle.
fn line_with<'a>(log: &'a str, needles: &[&str]) -> &'a str {
    log.lines()
        .find(|l| needles.iter().all(|n| l.contains(n)))
        .unwrap_or_else(|| panic!("no log line with all of {needles:?} in:\n{log}"))
}

#[test]
fn audit_lines_and_metrics_say_what_happened() {
    let env = Env::new();
    let ports = setup(&env);
    with_server(&env, || {
        env.ok("zmprov", &["cd", "d.test"]);
        env.ok("zmprov", &["ca", "alice@d.test", "Corr3ct-Horse"]);
        let mut lmtp = Lmtp::connect(ports.lmtp);
        for i in 0..3 {
            let r = lmtp.deliver(
                "a@remote.test",
                &["alice@d.test"],
                &message(&format!("m{i}")),
            );
            assert!(r.iter().all(|r| r.starts_with("250")), "{r:?}");
        }
        let r = lmtp.deliver("b@remote.test", &["nobody@d.test"], &message("x"));
        assert!(r[0].starts_with("550"), "{r:?}");
        let r = imap_login(ports.imap, "alice@d.test", "guess1");
        assert!(r.starts_with("a NO"), "{r}");

        let m = scrape(ports.admin);
        assert_eq!(m["mailvault_lmtp_deliveries_total"], 3.0, "{m:?}");
        assert_eq!(
            m["mailvault_lmtp_rejections_total{reason=\"unknown_user\"}"],
            1.0
        );
        assert_eq!(m["mailvault_imap_logins_total{result=\"failed\"}"], 1.0);
        assert!(m["mailvault_lmtp_connections_total"].as_f64().unwrap() >= 1.0);
        assert!(m["mailvault_redo_fsync_seconds_count"].as_f64().unwrap() >= 3.0);
        assert!(m.contains_key("mailvault_home_disk_free_bytes"));
        // Alice's mailbox is open; the indexer catches up with her three messages.
        assert!(
            m["mailvault_mailbox_handles"].as_f64().unwrap() >= 1.0,
            "{m:?}"
        );
        let mut lag = m;
        for _ in 0..100 {
            if lag["mailvault_search_index_lag_mailboxes"] == 0.0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            lag = scrape(ports.admin);
        }
        assert_eq!(lag["mailvault_search_index_lag_mailboxes"], 0.0, "{lag:?}");
        assert_eq!(lag["mailvault_search_index_lag_changes"], 0.0);
        assert_eq!(lag["mailvault_search_index_lag_seconds"], 0.0);
        let (status, body) = get(ports.admin, "/health");
        assert_eq!((status, body.trim()), (200, "ok"));
        // Everything else still wants the token, and a wrong one is audited.
        let (status, _) = get(ports.admin, "/v1/health");
        assert_eq!(status, 401);
    });
    let log = log_text(&env);
    let delivery = line_with(
        &log,
        &[
            "lmtp delivery",
            "account=alice@d.test",
            "peer=127.0.0.1:",
            "message_id=<m1@remote.test>",
            "from=a@remote.test",
            "result=\"delivered\"",
        ],
    );
    assert!(delivery.contains("item="), "{delivery}");
    assert!(delivery.starts_with("20"), "a timestamp first: {delivery}");
    line_with(
        &log,
        &[
            "lmtp recipient rejected",
            "rcpt=nobody@d.test",
            "peer=127.0.0.1:",
            "550 5.1.1",
        ],
    );
    line_with(
        &log,
        &[
            "imap login",
            "account=alice@d.test",
            "peer=127.0.0.1:",
            "wrong password",
        ],
    );
    line_with(&log, &["create_account started", "email=alice@d.test"]);
    line_with(
        &log,
        &["admin login", "peer=127.0.0.1:", "wrong admin token"],
    );
    assert!(!log.contains("Corr3ct-Horse"), "a password in the log");
}

#[test]
fn a_full_log_disk_never_stops_delivery() {
    let env = Env::new();
    let ports = setup(&env);
    // Only log/ on a small tmpfs: the store and the redo log keep their space,
    // so whatever fails can only be the log.
    let fs = Tmpfs::mount(&env.home.join("log"), "64k");
    with_server(&env, || {
        env.ok("zmprov", &["cd", "d.test"]);
        env.ok("zmprov", &["ca", "alice@d.test", "pw"]);
        let mut lmtp = Lmtp::connect(ports.lmtp);
        let dropped = |m: &serde_json::Map<String, Value>| {
            m["mailvault_log_lines_dropped_total"].as_f64().unwrap()
        };
        let mut rounds = 0;
        while dropped(&scrape(ports.admin)) == 0.0 {
            rounds += 1;
            assert!(rounds < 20, "64 KiB of log lines never filled the tmpfs");
            lmtp.rejections(100);
        }
        // Full: deliveries still work and are acknowledged.
        let r = lmtp.deliver("a@remote.test", &["alice@d.test"], &message("full"));
        assert!(r[0].starts_with("250"), "{r:?}");
        let r = Lmtp::connect(ports.lmtp).deliver(
            "a@remote.test",
            &["alice@d.test"],
            &message("full2"),
        );
        assert!(r[0].starts_with("250"), "{r:?}");
        let o = env.zm("zmcontrol", &["status"]);
        assert_eq!(o.code, 0, "{}", o.stdout);

        // Room again: the next line says how many were lost, then logging goes on.
        fs.resize("1m");
        let r = lmtp.deliver("a@remote.test", &["alice@d.test"], &message("back"));
        assert!(r[0].starts_with("250"), "{r:?}");
        let log = log_text(&env);
        line_with(&log, &["log lines were dropped because", "No space left"]);
        line_with(&log, &["lmtp delivery", "message_id=<back@remote.test>"]);
        let m = scrape(ports.admin);
        assert_eq!(m["mailvault_lmtp_deliveries_total"], 3.0, "{m:?}");
    });
}

#[test]
fn a_server_whose_home_vanishes_stops_and_says_why() {
    let env = Env::new();
    setup(&env);
    let mut server = Command::new(BIN)
        .arg("--home")
        .arg(&env.home)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    for l in lines.by_ref() {
        if l.unwrap().starts_with("mailvault ready") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    // Gone from its path, as after `rm -rf` or an unmount (a rename cannot race
    // with the server's own writes the way a recursive delete does).
    std::fs::rename(&env.home, env.root.join("moved-away")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = server.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = server.kill();
            let mut err = String::new();
            let _ = server.stderr.take().unwrap().read_to_string(&mut err);
            panic!("the server kept running without its home: {err}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains(&format!("the home {} is gone", env.home.display())),
        "{status}: {err}"
    );
}

/// `zmprov aal` as the field notes use it: debug lines for one account and one
/// category in the running server's log at once, none for other accounts, none
/// once `zmprov ral` removed the logger; without a server there is nothing to set.
#[test]
fn account_loggers_add_and_remove_debug_lines_at_run_time() {
    let env = Env::new();
    let ports = setup(&env);
    env.ok("zmprov", &["cd", "d.test"]);
    env.ok("zmprov", &["ca", "alice@d.test", "Corr3ct-Horse"]);
    env.ok("zmprov", &["ca", "bob@d.test", "Corr3ct-Horse"]);
    let o = env.zm("zmprov", &["aal", "alice@d.test", "zimbra.lmtp", "debug"]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(o.stderr.contains("no server runs"), "{}", o.stderr);
    with_server(&env, || {
        let o = env.zm("zmprov", &["aal", "alice@d.test", "zimbra.nope", "debug"]);
        assert_eq!(o.code, 1);
        assert!(
            o.stderr.contains("zimbra.backup, zimbra.lmtp, zimbra.imap"),
            "{}",
            o.stderr
        );
        for cat in ["zimbra.lmtp", "zimbra.imap", "zimbra.backup"] {
            env.ok("zmprov", &["aal", "alice@d.test", cat, "debug"]);
        }
        let o = env.ok("zmprov", &["gal", "alice@d.test"]);
        assert_eq!(
            o.stdout,
            "# name alice@d.test\nzimbra.backup=debug\nzimbra.lmtp=debug\nzimbra.imap=debug\n"
        );
        assert_eq!(env.ok("zmprov", &["gal", "bob@d.test"]).stdout, "");

        let mut lmtp = Lmtp::connect(ports.lmtp);
        let r = lmtp.deliver(
            "a@remote.test",
            &["alice@d.test", "bob@d.test"],
            &message("before"),
        );
        assert!(r.iter().all(|r| r.starts_with("250")), "{r:?}");
        let r = imap_login(ports.imap, "alice@d.test", "guess1");
        assert!(r.starts_with("a NO"), "{r}");
        env.ok("zmbackup", &["-f", "-a", "alice@d.test", "-sync"]);
        env.ok("zmrestore", &["-a", "alice@d.test", "-ca", "-pre", "r_"]);

        env.ok("zmprov", &["ral", "alice@d.test", "zimbra.lmtp"]);
        let o = env.ok("zmprov", &["gaal"]);
        assert_eq!(
            o.stdout,
            "# name alice@d.test\nzimbra.backup=debug\nzimbra.imap=debug\n"
        );
        let r = lmtp.deliver("a@remote.test", &["alice@d.test"], &message("after"));
        assert!(r[0].starts_with("250"), "{r:?}");
        env.ok("zmprov", &["ral"]);
        assert_eq!(env.ok("zmprov", &["gaal"]).stdout, "");
        let r = imap_login(ports.imap, "alice@d.test", "guess2");
        assert!(r.starts_with("a NO"), "{r}");
    });
    let log = log_text(&env);
    let delivery = line_with(
        &log,
        &[
            "DEBUG",
            "zimbra.lmtp: ",
            "account=alice@d.test",
            "<before@remote.test>",
        ],
    );
    assert!(delivery.contains("stored as item"), "{delivery}");
    assert!(delivery.contains("peer=127.0.0.1:"), "{delivery}");
    line_with(
        &log,
        &[
            "DEBUG",
            "zimbra.imap: ",
            "account=alice@d.test",
            "wrong password",
        ],
    );
    line_with(
        &log,
        &[
            "DEBUG",
            "zimbra.backup: ",
            "account=alice@d.test",
            "completed",
        ],
    );
    line_with(
        &log,
        &[
            "DEBUG",
            "zimbra.backup: ",
            "account=alice@d.test",
            "restore: account restored",
        ],
    );
    let lines = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("zimbra.") && l.contains("account=bob@d.test"))
            .count(),
        0,
        "no logger for bob:\n{log}"
    );
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("zimbra.lmtp: ") && l.contains("<after@remote.test>"))
            .count(),
        0,
        "ral removed the lmtp logger:\n{log}"
    );
    assert_eq!(
        lines("zimbra.imap: "),
        1,
        "one login while the logger was set:\n{log}"
    );
}
