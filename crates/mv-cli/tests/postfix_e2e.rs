//! End to end with a real Postfix in front (the Debian package; its own
//! instance with config and queue under the test's temporary directory, on
//! loopback ports below 32768, stopped at the end). Postfix asks mailvault's
//! socketmap tables which recipients exist and what lists expand to, and
//! delivers over LMTP:
//!
//! - an unknown recipient is refused at RCPT with 550 5.1.1;
//! - a list (with a nested list) with one member over quota: the others get
//!   the message at once, that member exactly once after its quota is raised
//!   and the queue flushed;
//! - an alias reaches its account;
//! - 200+ mixed messages arrive once each, byte-exact after the trace
//!   headers Postfix and mailvault prepend (mailvault's: Return-Path,
//!   Delivered-To, Received with LMTP);
//! - mailvault stopped: Postfix defers, and delivers after the restart.
//!
//! Skipped, saying so, when Postfix is not installed or we are not root
//! (Postfix's master process must start as root).

mod common;

use common::{BIN, Server};
use mv_home::{Home, HomeLock};
use mv_server::Service;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DOMAIN: &str = "example.com";

/// Free loopback ports below the ephemeral range.
fn free_ports(n: usize) -> Vec<u16> {
    let start = 23000 + (std::process::id() % 500) as u16;
    let ports: Vec<u16> = (start..24000)
        .chain(23000..start)
        .filter(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .take(n)
        .collect();
    assert_eq!(ports.len(), n, "free ports in 23000-23999");
    ports
}

fn postfix_usable() -> Result<(), String> {
    if !Path::new("/usr/sbin/postfix").exists() {
        return Err("postfix is not installed (scripts/install-test-deps installs it)".into());
    }
    if unsafe { libc::geteuid() } != 0 {
        return Err("Postfix's master must be started as root".into());
    }
    Ok(())
}

fn run(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

struct Postfix {
    conf: PathBuf,
    dir: PathBuf,
}

impl Postfix {
    fn start(dir: &Path, smtp: u16, lmtp: u16, socketmap: u16) -> Postfix {
        let conf = dir.join("conf");
        for d in ["conf", "queue", "data"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        assert!(
            run("chown", &["postfix", dir.join("data").to_str().unwrap()])
                .status
                .success()
        );
        let map = |name: &str| format!("socketmap:inet:127.0.0.1:{socketmap}:{name}");
        let d = dir.display();
        let main_cf = format!(
            "compatibility_level = 3.6\n\
             queue_directory = {d}/queue\n\
             data_directory = {d}/data\n\
             mail_owner = postfix\n\
             setgid_group = postdrop\n\
             maillog_file = {d}/maillog\n\
             maillog_file_prefixes = {d}\n\
             inet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\n\
             myhostname = mx.example.net\n\
             mydestination =\n\
             mynetworks = 127.0.0.0/8\n\
             local_header_rewrite_clients =\n\
             biff = no\n\
             queue_run_delay = 1s\n\
             minimal_backoff_time = 1s\n\
             maximal_backoff_time = 2s\n\
             header_checks = regexp:{d}/conf/header_checks\n\
             virtual_mailbox_domains = {}\n\
             virtual_mailbox_maps = {}\n\
             virtual_alias_maps = {}\n\
             virtual_transport = lmtp:inet:127.0.0.1:{lmtp}\n",
            map("domain"),
            map("mailbox"),
            map("alias"),
        );
        std::fs::write(conf.join("main.cf"), main_cf).unwrap();
        std::fs::write(conf.join("header_checks"), "/^X-Hold: yes/ HOLD\n").unwrap();
        let master_cf = format!(
            "127.0.0.1:{smtp} inet n - n - - smtpd\n\
             pickup unix n - n 60 1 pickup\n\
             cleanup unix n - n - 0 cleanup\n\
             qmgr unix n - n 300 1 qmgr\n\
             rewrite unix - - n - - trivial-rewrite\n\
             bounce unix - - n - 0 bounce\n\
             defer unix - - n - 0 bounce\n\
             trace unix - - n - 0 bounce\n\
             verify unix - - n - 1 verify\n\
             flush unix n - n 1000? 0 flush\n\
             proxymap unix - - n - - proxymap\n\
             smtp unix - - n - - smtp\n\
             relay unix - - n - - smtp\n\
             showq unix n - n - - showq\n\
             error unix - - n - - error\n\
             retry unix - - n - - error\n\
             discard unix - - n - - discard\n\
             lmtp unix - - n - - lmtp\n\
             anvil unix - - n - 1 anvil\n\
             scache unix - - n - 1 scache\n\
             postlog unix-dgram n - n - 1 postlogd\n"
        );
        std::fs::write(conf.join("master.cf"), master_cf).unwrap();
        let pf = Postfix {
            conf,
            dir: dir.to_path_buf(),
        };
        let out = run("postfix", &["-c", pf.conf(), "start"]);
        assert!(out.status.success(), "postfix start failed: {}", pf.log());
        wait_until("Postfix's SMTP listener", Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", smtp)).is_ok()
        });
        pf
    }

    fn conf(&self) -> &str {
        self.conf.to_str().unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }

    /// `postqueue -j`: (queue name, recipients) of every queued message.
    fn queue(&self) -> Vec<(String, Vec<String>)> {
        let out = run("postqueue", &["-c", self.conf(), "-j"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| {
                let rcpts = v["recipients"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|r| r["address"].as_str().unwrap_or("").to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                (v["queue_name"].as_str().unwrap_or("").to_string(), rcpts)
            })
            .collect()
    }

    fn flush(&self) {
        assert!(
            run("postqueue", &["-c", self.conf(), "-f"])
                .status
                .success()
        );
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("Postfix's log, last lines:");
            for l in tail.iter().rev() {
                eprintln!("  {l}");
            }
        }
        let _ = run("postfix", &["-c", self.conf(), "stop"]);
    }
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_server(home: &Path) -> Server {
    let mut child = Command::new(BIN)
        .arg("--home")
        .arg(home)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.starts_with("mailvault ready") => break,
            Some(Ok(_)) => continue,
            _ => panic!("mailvault exited before it was ready"),
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Server(child)
}

fn stop_server(mut s: Server) {
    unsafe { libc::kill(s.0.id() as i32, libc::SIGTERM) };
    assert!(s.0.wait().unwrap().success());
}

fn cli(home: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mailvault {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How many messages with this Message-ID the user's inbox holds (asked of
/// the running server).
fn inbox_count(home: &Path, user: &str, message_id: &str) -> usize {
    let out = cli(
        home,
        &[
            "mailbox", "-z", "-m", user, "s", "-v", "-l", "1000", "in:inbox",
        ],
    );
    let items: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap_or_default();
    items
        .iter()
        .filter(|i| i["message_id"].as_str() == Some(message_id))
        .count()
}

struct Smtp {
    rd: BufReader<TcpStream>,
    wr: TcpStream,
}

impl Smtp {
    fn connect(port: u16) -> Smtp {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut c = Smtp {
            rd: BufReader::new(s.try_clone().unwrap()),
            wr: s,
        };
        assert!(c.reply().starts_with("220"));
        assert!(c.cmd("EHLO client.example.org").starts_with("250"));
        c
    }

    fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            self.rd.read_line(&mut line).unwrap();
            assert!(line.len() >= 4, "short reply {line:?}");
            all.push_str(&line);
            if line.as_bytes()[3] == b' ' {
                return all.trim_end().to_string();
            }
        }
    }

    fn cmd(&mut self, line: &str) -> String {
        self.wr.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        self.reply()
    }

    /// Sends one message; panics unless Postfix queues it.
    fn send(&mut self, rcpts: &[&str], msg: &[u8]) {
        let r = self.cmd("MAIL FROM:<sender@example.org> BODY=8BITMIME");
        assert!(r.starts_with("250"), "{r}");
        for rcpt in rcpts {
            let r = self.cmd(&format!("RCPT TO:<{rcpt}>"));
            assert!(r.starts_with("250"), "RCPT {rcpt}: {r}");
        }
        assert!(self.cmd("DATA").starts_with("354"));
        let mut wire = Vec::with_capacity(msg.len() + 64);
        for line in msg.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b".") {
                wire.push(b'.');
            }
            wire.extend_from_slice(line);
        }
        wire.extend_from_slice(b".\r\n");
        self.wr.write_all(&wire).unwrap();
        let r = self.reply();
        assert!(r.starts_with("250"), "end of DATA: {r}");
    }
}

/// A message with 8-bit text, dot lines and a size between ~300 B and ~40 KB.
fn message(id: &str, n: usize, extra_header: &str) -> Vec<u8> {
    let mut m = format!(
        "From: Sender <sender@example.org>\r\nTo: <list@{DOMAIN}>\r\nSubject: mixed {n} – grüße\r\n\
         Date: Mon, 07 Dec 2026 01:00:00 +0000\r\nMessage-ID: <{id}>\r\n{extra_header}\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    );
    let lines = 3 + (n * 7919) % 500;
    for i in 0..lines {
        match i % 7 {
            0 => m.push_str(".a line starting with a dot\r\n"),
            1 => m.push_str("..two dots\r\n"),
            2 => m.push_str("Zoë, Jürgen, Ångström: ünïcödé ✓\r\n"),
            3 => m.push_str(&format!("{}\r\n", "x".repeat(10 + (i * 31) % 800))),
            4 => m.push_str("\r\n"),
            5 => m.push_str(" leading space and trailing space \r\n"),
            _ => m.push_str(&format!("line {i} of message {n}\r\n")),
        }
    }
    m.into_bytes()
}

#[test]
fn postfix_in_front_rejects_unknown_expands_lists_and_loses_nothing() {
    if let Err(why) = postfix_usable() {
        eprintln!("skipping the Postfix end-to-end test: {why}");
        return;
    }
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    // Postfix's daemons run as the postfix user and must reach their queue.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let ports = free_ports(7);
    let (lmtp, admin, imap, imaps, socketmap, smtp) =
        (ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]);
    let home_dir = tmp.path().join("home");
    let home = Home::at(&home_dir);
    home.init().unwrap();
    let mut cfg = home.open().unwrap();
    for (k, v) in [
        ("lmtp_bind_port", lmtp),
        ("admin_bind_port", admin),
        ("imap_bind_port", imap),
        ("imaps_bind_port", imaps),
        ("socketmap_bind_port", socketmap),
    ] {
        cfg.set(k, &v.to_string()).unwrap();
    }
    cfg.set("socketmap_enabled", "true").unwrap();
    cfg.save(&home.localconfig_path()).unwrap();
    {
        let _lock = HomeLock::acquire_waiting(home.root(), Duration::from_secs(10)).unwrap();
        let (svc, _) = Service::open(&home).unwrap();
        svc.directory().create_domain(DOMAIN, &[]).unwrap();
        for u in ["u1", "u2", "u3", "u4"] {
            svc.create_account(&format!("{u}@{DOMAIN}"), None, &[])
                .unwrap();
        }
        svc.create_account(
            &format!("closed@{DOMAIN}"),
            None,
            &["zimbraAccountStatus".into(), "closed".into()],
        )
        .unwrap();
        // u1 is full: 5,000 bytes used of 6,000.
        svc.directory()
            .modify_account(
                &format!("u1@{DOMAIN}"),
                &[mv_directory::Modification::set("zimbraMailQuota", "6000")],
            )
            .unwrap();
        let filler = format!("Subject: filler\r\n\r\n{}\r\n", "z".repeat(5000));
        svc.store()
            .add_message(
                svc.mailbox_of(&format!("u1@{DOMAIN}")).unwrap(),
                filler.as_bytes(),
                &Default::default(),
            )
            .unwrap();
        let d = svc.directory();
        d.add_account_alias(&format!("u2@{DOMAIN}"), &format!("al@{DOMAIN}"))
            .unwrap();
        d.create_dl(&format!("team@{DOMAIN}"), &[]).unwrap();
        d.create_dl(&format!("sub@{DOMAIN}"), &[]).unwrap();
        d.add_dl_members(
            &format!("team@{DOMAIN}"),
            &[
                format!("u1@{DOMAIN}"),
                format!("u2@{DOMAIN}"),
                format!("sub@{DOMAIN}"),
            ],
        )
        .unwrap();
        d.add_dl_members(
            &format!("sub@{DOMAIN}"),
            &[
                format!("u3@{DOMAIN}"),
                format!("u4@{DOMAIN}"),
                format!("team@{DOMAIN}"),
            ],
        )
        .unwrap();
    }
    let server = start_server(&home_dir);
    let pf = Postfix::start(&tmp.path().join("postfix"), smtp, lmtp, socketmap);

    // The tables as Postfix sees them (the README's postmap -q check).
    let q = |key: &str, map: &str| {
        let out = run(
            "postmap",
            &[
                "-c",
                pf.conf(),
                "-q",
                key,
                &format!("socketmap:inet:127.0.0.1:{socketmap}:{map}"),
            ],
        );
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let mut team: Vec<String> = q(&format!("team@{DOMAIN}"), "alias")
        .expect("the list expands")
        .split(',')
        .map(str::to_string)
        .collect();
    team.sort();
    assert_eq!(
        team,
        ["u1", "u2", "u3", "u4"].map(|u| format!("{u}@{DOMAIN}"))
    );
    assert_eq!(
        q(&format!("al@{DOMAIN}"), "alias"),
        Some(format!("u2@{DOMAIN}"))
    );
    assert_eq!(
        q(&format!("u3@{DOMAIN}"), "mailbox"),
        Some(format!("u3@{DOMAIN}"))
    );
    assert_eq!(q(&format!("closed@{DOMAIN}"), "mailbox"), None);
    assert_eq!(q(&format!("nobody@{DOMAIN}"), "mailbox"), None);
    assert_eq!(q(DOMAIN, "domain"), Some(DOMAIN.to_string()));

    let mut c = Smtp::connect(smtp);
    // Unknown and closed recipients are refused at RCPT: no backscatter.
    assert!(c.cmd("MAIL FROM:<sender@example.org>").starts_with("250"));
    for who in ["nobody", "closed"] {
        let r = c.cmd(&format!("RCPT TO:<{who}@{DOMAIN}>"));
        assert!(r.starts_with("550 5.1.1"), "{who}: {r}");
    }
    assert!(c.cmd("RSET").starts_with("250"));

    // A list with a nested list and one member over quota.
    let team_msg = message("team-1@example.org", 1, "");
    c.send(&[&format!("team@{DOMAIN}")], &team_msg);
    wait_until(
        "u2, u3, u4 to get the list's message",
        Duration::from_secs(20),
        || {
            ["u2", "u3", "u4"].iter().all(|u| {
                inbox_count(&home_dir, &format!("{u}@{DOMAIN}"), "team-1@example.org") == 1
            })
        },
    );
    assert_eq!(
        inbox_count(&home_dir, &format!("u1@{DOMAIN}"), "team-1@example.org"),
        0
    );
    wait_until(
        "the over-quota member to be deferred",
        Duration::from_secs(20),
        || {
            pf.queue()
                .iter()
                .any(|(q, r)| q == "deferred" && r == &[format!("u1@{DOMAIN}")])
        },
    );

    // An alias, and the bulk: sent is what must arrive, per recipient.
    let mut sent: Vec<(String, String, Vec<u8>)> = Vec::new();
    let users = ["u2", "u3", "u4"];
    for n in 0..210 {
        let id = format!("bulk-{n}@example.org");
        let msg = message(&id, n + 2, "");
        let user = users[n % 3];
        let rcpt = if n % 10 == 0 {
            format!("al@{DOMAIN}")
        } else {
            format!("{user}@{DOMAIN}")
        };
        c.send(&[&rcpt], &msg);
        let owner = if n % 10 == 0 { "u2" } else { user };
        sent.push((id, format!("{owner}@{DOMAIN}"), msg));
    }

    // Quota raised, queue flushed: u1 gets the list's message, once.
    cli(
        &home_dir,
        &[
            "prov",
            "ma",
            &format!("u1@{DOMAIN}"),
            "zimbraMailQuota",
            "0",
        ],
    );
    pf.flush();
    wait_until(
        "u1 to get the list's message",
        Duration::from_secs(20),
        || inbox_count(&home_dir, &format!("u1@{DOMAIN}"), "team-1@example.org") == 1,
    );

    // mailvault stopped: held messages released meanwhile are deferred.
    let mut held = Vec::new();
    for n in 0..5 {
        let id = format!("outage-{n}@example.org");
        let msg = message(&id, 1000 + n, "X-Hold: yes\r\n");
        c.send(&[&format!("u3@{DOMAIN}")], &msg);
        held.push((id, format!("u3@{DOMAIN}"), msg));
    }
    assert!(c.cmd("QUIT").starts_with("221"));
    wait_until(
        "the bulk to be delivered and the outage messages held",
        Duration::from_secs(30),
        || {
            let q = pf.queue();
            q.len() == 5 && q.iter().all(|(name, _)| name == "hold")
        },
    );
    stop_server(server);
    assert!(
        run("postsuper", &["-c", pf.conf(), "-H", "ALL"])
            .status
            .success()
    );
    wait_until(
        "Postfix to defer while mailvault is down",
        Duration::from_secs(20),
        || {
            let q = pf.queue();
            q.len() == 5 && q.iter().all(|(name, _)| name == "deferred")
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    let server = start_server(&home_dir);
    pf.flush();
    wait_until(
        "the deferred messages to arrive",
        Duration::from_secs(30),
        || pf.queue().is_empty(),
    );
    stop_server(server);
    sent.extend(held);

    // Every message exactly once, byte-exact after the prepended trace headers.
    let _lock = HomeLock::acquire_waiting(home.root(), Duration::from_secs(10)).unwrap();
    let (svc, _) = Service::open(&home).unwrap();
    let mut items: HashMap<String, Vec<mv_store::Item>> = HashMap::new();
    for u in ["u1", "u2", "u3", "u4"] {
        let who = format!("{u}@{DOMAIN}");
        let mbox = svc.mailbox_of(&who).unwrap();
        items.insert(
            who,
            svc.store()
                .mailbox(mbox)
                .items(None, Some(mv_store::ItemKind::Message))
                .unwrap(),
        );
    }
    for u in ["u1", "u2", "u3", "u4"] {
        sent.push((
            "team-1@example.org".into(),
            format!("{u}@{DOMAIN}"),
            team_msg.clone(),
        ));
    }
    for (id, who, msg) in &sent {
        let found: Vec<&mv_store::Item> =
            items[who].iter().filter(|i| &i.message_id == id).collect();
        assert_eq!(found.len(), 1, "{id} must reach {who} exactly once");
        let stored = svc
            .store()
            .read_blob(svc.mailbox_of(who).unwrap(), found[0])
            .unwrap();
        // Postfix expanded lists and aliases: each RCPT is the mailbox's own
        // address. Postfix's own Received line is part of what LMTP received.
        common::assert_traced(&stored, msg, "sender@example.org", who, who);
    }
    let total: usize = items.values().map(Vec::len).sum();
    assert_eq!(
        total,
        sent.len() + 1,
        "nothing else arrived (u1's filler is the +1)"
    );
    eprintln!(
        "Postfix end-to-end: {} deliveries in {:?}",
        sent.len(),
        started.elapsed()
    );
    drop(pf);
}
