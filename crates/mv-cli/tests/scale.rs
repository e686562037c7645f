//! Scale at a small size: what a server of many accounts relies on, as
//! behaviours rather than timings. A batch `zmprov` keeps flat memory whatever
//! the number of lines (each password's Argon2 block is given back), and a
//! server holding 300 accounts with a message each keeps its open files within
//! a bound set by the handle cache (`mailbox_open_handles`), not by the number
//! of accounts — at start, while the search indexer catches up, and after a
//! crash, when every mailbox is checked.

mod common;

use common::{Env, free_port, spawn_server};
use mv_home::{Home, HomeLock};
use mv_server::Service;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Mailbox databases the server may keep open in this test.
const HANDLES: usize = 16;

/// Runs `zmprov` with `lines` on stdin; returns its peak RSS in KiB.
// Reaped by wait4 below, which also gives its resource usage.
#[allow(clippy::zombie_processes)]
fn zmprov_batch(env: &Env, lines: &str) -> u64 {
    let mut child = Command::new(env.links.join("zmprov"))
        .env("MAILVAULT_HOME", &env.home)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).unwrap();
        s
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    let errors = errors.join().unwrap();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "zmprov failed: {errors}"
    );
    usage.ru_maxrss as u64
}

/// `count` account creations, the first `with_password` of them with a password.
fn ca_lines(prefix: &str, count: usize, with_password: usize) -> String {
    (0..count)
        .map(|i| {
            let pw = if i < with_password {
                format!("pw-{i}-secret")
            } else {
                "\"\"".to_string()
            };
            format!("ca {prefix}{i}@example.com {pw}\n")
        })
        .collect()
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The most files the server held open, sampled every 50 ms until `done` or
/// `limit`.
fn max_open_files(pid: u32, limit: Duration, done: &dyn Fn() -> bool) -> usize {
    let end = Instant::now() + limit;
    let mut max = 0;
    while Instant::now() < end {
        max = max.max(open_files(pid));
        if done() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    max.max(open_files(pid))
}

fn index_dirs(home: &Home) -> usize {
    std::fs::read_dir(home.root().join("index"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn many_accounts_keep_zmprov_memory_and_server_files_flat() {
    let env = Env::new();
    let home = Home::at(&env.home);
    let mut cfg = home.open().unwrap();
    for key in [
        "lmtp_bind_port",
        "admin_bind_port",
        "imap_bind_port",
        "imaps_bind_port",
    ] {
        cfg.set(key, &free_port().to_string()).unwrap();
    }
    cfg.set("mailbox_open_handles", &HANDLES.to_string())
        .unwrap();
    cfg.save(&home.localconfig_path()).unwrap();
    env.ok("zmprov", &["cd", "example.com"]);

    // Flat memory: 250 lines (12 passwords) peak no higher than 50 (2
    // passwords) plus a margin below one Argon2 block (19 MiB): each further
    // password's block used to stay resident, and each further account's
    // database open.
    let small = zmprov_batch(&env, &ca_lines("a", 50, 2));
    let large = zmprov_batch(&env, &ca_lines("b", 250, 12));
    assert!(
        large <= small + 12 * 1024,
        "zmprov peak RSS grew with the batch: {small} KiB for 50 lines, {large} KiB for 250"
    );

    // One message each, through the store's own write path.
    {
        let _lock = HomeLock::acquire_waiting(home.root(), Duration::from_secs(10)).unwrap();
        let (svc, _) = Service::open(&home).unwrap();
        assert_eq!(svc.store().open_capacity(), HANDLES);
        let accounts = svc.directory().list_accounts(None).unwrap();
        assert_eq!(accounts.len(), 300);
        // Ten recipients a delivery, as a small list would get.
        for group in accounts.chunks(10) {
            let rcpts: Vec<_> = group.iter().map(|a| a.mailbox_id).collect();
            let msg = format!(
                "From: x@example.org\r\nTo: {}\r\nSubject: hello\r\n\r\nbody\r\n",
                group[0].email
            );
            svc.store()
                .deliver(msg.as_bytes(), &rcpts, &Default::default())
                .unwrap();
            assert!(svc.store().open_mailbox_count() <= HANDLES);
        }
    }

    // Descriptors a server holds whatever its size (listeners, redo log,
    // directory, logs, one search index being written) plus three per open
    // mailbox database. Without the handle cache, 300 accounts hold over 900.
    let bound = HANDLES * 3 + 80;

    let mut server = spawn_server(home.root(), Stdio::null());
    let pid = server.id();
    // The indexer works through the 300 changed mailboxes, one at a time.
    let max = max_open_files(pid, Duration::from_secs(8), &|| index_dirs(&home) >= 300);
    assert!(index_dirs(&home) > 0, "the indexer made no index");
    assert!(
        max <= bound,
        "{max} open files while indexing 300 mailboxes (bound {bound})"
    );

    // A crash: the next start sweeps and checks every mailbox, and still
    // keeps within the bound.
    server.kill().unwrap();
    server.wait().unwrap();
    let mut server = spawn_server(home.root(), Stdio::null());
    let max = max_open_files(server.id(), Duration::from_secs(4), &|| false);
    assert!(
        max <= bound,
        "{max} open files after a crash with 300 mailboxes (bound {bound})"
    );
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    assert!(server.wait().unwrap().success());
}

/// Runs `zmprov` with `input` on stdin (a pipe, so `ca` lines are grouped).
fn zmprov_stdin(env: &Env, input: &str) -> (i32, String, String) {
    let mut child = Command::new(env.links.join("zmprov"))
        .env("MAILVAULT_HOME", &env.home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_batch_answers_each_line_in_order_as_it_would_alone() {
    let env = Env::new();
    let input = "\
cd example.com
ca a@example.com pw-a displayName 'Ann A'
ca b@example.com ''
ca a@example.com pw-again
ca c@nosuch.org pw-c
ca d@example.com pw-d zimbraCOSId nosuchcos
ga a@example.com displayName
ca e@example.com pw-e userPassword pw-e2
ca f@example.com
";
    let (code, stdout, stderr) = zmprov_stdin(&env, input);
    assert_eq!(code, 2, "the worst line was a usage error: {stderr}");
    let out: Vec<&str> = stdout.lines().collect();
    // cd, a, b, ga's two lines, e: each printed where its line was.
    assert_eq!(out.len(), 6, "{stdout}");
    let ids = [out[0], out[1], out[2], out[5]];
    assert!(ids.iter().all(|id| id.len() == 36), "{stdout}");
    assert_eq!(out[3], "# name a@example.com");
    assert_eq!(out[4], "displayName: Ann A");
    let errs: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    // Three one-line errors, then the usage error of the last line (clap's
    // message with the command's usage line).
    assert!(errs.len() >= 4, "{stderr}");
    assert!(
        errs[0].starts_with("ERROR: ") && errs[0].contains("already used"),
        "{stderr}"
    );
    assert!(errs[1].contains("no such domain: nosuch.org"), "{stderr}");
    assert!(errs[2].contains("nosuchcos"), "{stderr}");
    let usage = errs[3..].join("\n");
    assert!(
        usage.contains("<PASSWORD>")
            && usage.contains("createAccount(ca) {name@domain} {password}"),
        "{stderr}"
    );

    // What was created is durable and whole: ids as printed, passwords as given.
    let home = Home::at(&env.home);
    let _lock = HomeLock::acquire_waiting(home.root(), Duration::from_secs(10)).unwrap();
    let (svc, _) = Service::open(&home).unwrap();
    let dir = svc.directory();
    let emails: Vec<String> = dir
        .list_accounts(None)
        .unwrap()
        .into_iter()
        .map(|a| a.email)
        .collect();
    assert_eq!(emails, ["a@example.com", "b@example.com", "e@example.com"]);
    assert_eq!(dir.get_account("a@example.com").unwrap().id, out[1]);
    assert_eq!(dir.get_account("e@example.com").unwrap().id, out[5]);
    assert!(dir.verify_password("a@example.com", "pw-a").unwrap());
    assert!(dir.verify_password("e@example.com", "pw-e2").unwrap());
    assert!(!dir.verify_password("b@example.com", "").unwrap());
    for email in ["a@example.com", "b@example.com", "e@example.com"] {
        let a = dir.get_account(email).unwrap();
        assert!(
            svc.store().mailbox(a.mailbox_id).info().unwrap().is_some(),
            "{email}: no mailbox"
        );
    }
}

/// Mailbox databases in the home (`db/mbox/<id>.sqlite`).
fn mailbox_databases(home: &Home) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(home.mailbox_db_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sqlite") && n.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    names.sort();
    names
}

/// Sends `lines` on a line-based protocol connection, each answered before the
/// next; returns everything read.
fn converse(port: u16, greeting: bool, lines: &[(&str, &str)]) -> String {
    use std::io::{BufRead, BufReader};
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut all = String::new();
    let mut read_until = |done: &str, all: &mut String| loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "closed: {all}");
        all.push_str(&line);
        if line.starts_with(done) {
            break;
        }
    };
    if greeting {
        read_until("", &mut all);
    }
    for (send, until) in lines {
        writer.write_all(send.as_bytes()).unwrap();
        if !until.is_empty() {
            read_until(until, &mut all);
        }
    }
    all
}

#[test]
fn an_account_never_used_has_no_database_and_serves_as_an_empty_mailbox() {
    let env = Env::new();
    let home = Home::at(&env.home);
    let (lmtp, admin, imap, imaps) = (free_port(), free_port(), free_port(), free_port());
    let mut cfg = home.open().unwrap();
    for (key, value) in [
        ("lmtp_bind_port", lmtp.to_string()),
        ("admin_bind_port", admin.to_string()),
        ("imap_bind_port", imap.to_string()),
        ("imaps_bind_port", imaps.to_string()),
        ("imap_cleartext_login_enabled", "true".to_string()),
    ] {
        cfg.set(key, &value).unwrap();
    }
    cfg.save(&home.localconfig_path()).unwrap();
    env.ok("zmprov", &["cd", "example.com"]);
    env.ok("zmprov", &["ca", "u1@example.com", "pw-one-secret"]);
    env.ok("zmprov", &["ca", "u2@example.com", "pw-two-secret"]);
    env.ok("zmprov", &["ca", "u3@example.com", "pw-three-secret"]);
    assert_eq!(mailbox_databases(&home), Vec::<String>::new());

    // Offline readers: folders, search, quota, a full backup and its verify, check.
    let gaf = env
        .ok("zmmailbox", &["-z", "-m", "u1@example.com", "gaf"])
        .stdout;
    for folder in ["/Inbox", "/Sent", "/Trash", "/Junk", "/Drafts"] {
        assert!(gaf.contains(folder), "{folder} missing: {gaf}");
    }
    let s = env.ok(
        "zmmailbox",
        &["-z", "-m", "u1@example.com", "s", "in:inbox"],
    );
    assert!(!s.stdout.contains("mess"), "{}", s.stdout);
    env.ok("zmbackup", &["-f", "-a", "all", "-sync"]);
    let v = env.run(
        std::path::Path::new(common::BIN),
        &["backup", "verify", "--read-data"],
    );
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    // `check` fails offline only for what needs a server or a schedule.
    let c = env.run(std::path::Path::new(common::BIN), &["check"]);
    let failed: Vec<&str> = c
        .stdout
        .lines()
        .filter(|l| l.contains("FAILED"))
        .filter(|l| !l.contains("server running:") && !l.contains("backup schedule:"))
        .collect();
    assert!(failed.is_empty(), "{}{}", c.stdout, c.stderr);
    assert_eq!(mailbox_databases(&home), Vec::<String>::new());

    // Restored from that full into a new account: an empty mailbox.
    env.ok("zmrestore", &["-a", "u3@example.com", "-ca", "-pre", "r_"]);
    let gaf = env
        .ok("zmmailbox", &["-z", "-m", "r_u3@example.com", "gaf"])
        .stdout;
    assert!(gaf.contains("/Inbox"), "{gaf}");
    // Deleting an account that was never used (its mailbox is made, to be
    // marked deleted).
    env.ok("zmprov", &["da", "u3@example.com"]);
    let before = mailbox_databases(&home);
    assert_eq!(before.len(), 2, "{before:?}");

    // The server: IMAP reads make no database; LMTP's first delivery does.
    let mut server = spawn_server(home.root(), Stdio::null());
    let out = converse(
        imap,
        true,
        &[
            ("a LOGIN u1@example.com pw-one-secret\r\n", "a "),
            ("b LIST \"\" \"*\"\r\n", "b "),
            ("c STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY)\r\n", "c "),
            ("d SELECT INBOX\r\n", "d "),
            ("e LOGOUT\r\n", "e "),
        ],
    );
    assert!(out.contains("a OK") && out.contains("d OK"), "{out}");
    assert!(out.contains("\"/\" Sent"), "{out}");
    assert!(out.contains("* 0 EXISTS"), "{out}");
    assert!(out.contains("MESSAGES 0"), "{out}");
    assert_eq!(
        mailbox_databases(&home),
        before,
        "IMAP reads made a database"
    );
    let out = converse(
        lmtp,
        true,
        &[
            ("LHLO test\r\n", "250 "),
            ("MAIL FROM:<x@example.org>\r\n", "250"),
            ("RCPT TO:<u2@example.com>\r\n", "250"),
            ("DATA\r\n", "354"),
            ("Subject: first\r\n\r\nhello\r\n.\r\n", "250"),
            ("QUIT\r\n", "221"),
        ],
    );
    assert!(out.contains("250 2.1.5") || out.contains("250"), "{out}");
    assert_eq!(
        mailbox_databases(&home).len(),
        3,
        "the first delivery made one"
    );
    let out = converse(
        imap,
        true,
        &[
            ("a LOGIN u2@example.com pw-two-secret\r\n", "a "),
            ("b SELECT INBOX\r\n", "b "),
            ("c LOGOUT\r\n", "c "),
        ],
    );
    assert!(out.contains("* 1 EXISTS"), "{out}");
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    assert!(server.wait().unwrap().success());
}
