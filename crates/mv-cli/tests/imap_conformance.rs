//! IMAP conformance against the real `mailvault serve`: Dovecot's imaptest
//! scripted groups (built from ../shared/tools/imaptest), and what imaptest does
//! not cover: pre-login memory, login throttling, AUTHENTICATE authzid,
//! mailbox name checks, UIDVALIDITY across DELETE/CREATE and restarts.

mod common;
// The extensions beyond imaptest's groups (MULTIAPPEND, LIST-STATUS, QUOTA,
// SEARCHRES, APPENDLIMIT, PREVIEW, COMPRESS, ...).
#[path = "imap_conformance/extensions.rs"]
mod extensions;
// NOTIFY (RFC 5465): notifications between commands and in IDLE.
#[path = "imap_conformance/notify.rs"]
mod notify;
// IMAP4rev2 (RFC 9051) after ENABLE, IMAP4rev1 without.
#[path = "imap_conformance/rev2.rs"]
mod rev2;

use common::Server;
use mv_home::{Home, HomeLock};
use mv_server::Service;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Passing imaptest groups this server reaches (of 71); a drop fails the test.
const IMAPTEST_PASS_FLOOR: usize = 68;

/// A free loopback port below the ephemeral range (so no client socket takes it
/// between the probe and the server's bind).
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = 20000 + (std::process::id() % 5000) as u16;
    loop {
        let p = start + NEXT.fetch_add(1, Ordering::Relaxed) % 7000;
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// A fresh home with `users` (password "secret"); returns the IMAP port.
fn setup(home: &Home, users: &[&str], extra: &[(&str, &str)]) -> u16 {
    let imap = free_port();
    home.init().unwrap();
    let mut cfg = home.open().unwrap();
    let mut keys = vec![
        ("lmtp_bind_port", free_port().to_string()),
        ("admin_bind_port", free_port().to_string()),
        ("imap_bind_port", imap.to_string()),
        ("imaps_bind_port", free_port().to_string()),
        ("imap_cleartext_login_enabled", "true".to_string()),
    ];
    keys.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    for (k, v) in keys {
        cfg.set(k, &v).unwrap();
    }
    cfg.save(&home.localconfig_path()).unwrap();
    let _lock = HomeLock::acquire_waiting(home.root(), Duration::from_secs(10)).unwrap();
    let (svc, _) = Service::open(home).unwrap();
    svc.directory().create_domain("example.com", &[]).unwrap();
    for u in users {
        svc.create_account(&format!("{u}@example.com"), Some("secret"), &[])
            .unwrap();
    }
    imap
}

fn start(home: &Home) -> Server {
    Server::start(home.root(), Stdio::null())
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// A line-level IMAP client: enough to script exact commands.
struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
    n: u32,
}

impl Client {
    fn connect(port: u16) -> Client {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut c = Client {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
            n: 0,
        };
        let greeting = c.line();
        assert!(greeting.starts_with("* OK"), "{greeting}");
        c
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        l
    }

    /// Sends one command (raw bytes after the tag); returns every line up to
    /// and including the tagged one.
    fn cmd(&mut self, rest: &str) -> Vec<String> {
        self.n += 1;
        let tag = format!("t{}", self.n);
        self.w
            .write_all(format!("{tag} {rest}\r\n").as_bytes())
            .unwrap();
        let mut out = Vec::new();
        loop {
            let l = self.line();
            assert!(!l.is_empty(), "connection closed after {rest:?}: {out:?}");
            let done = l.starts_with(&format!("{tag} "));
            out.push(l.trim_end().to_string());
            if done {
                return out;
            }
        }
    }

    fn ok(&mut self, rest: &str) -> Vec<String> {
        let r = self.cmd(rest);
        assert!(
            r.last().unwrap().split(' ').nth(1) == Some("OK"),
            "{rest}: {r:?}"
        );
        r
    }

    fn login(port: u16, user: &str) -> Client {
        let mut c = Client::connect(port);
        c.ok(&format!("LOGIN {user}@example.com secret"));
        c
    }

    fn append(&mut self, mailbox: &str, msg: &str) -> (u32, u32) {
        let r = self.ok(&format!("APPEND {mailbox} {{{}+}}\r\n{msg}", msg.len()));
        let l = r.last().unwrap();
        let i = l.find("[APPENDUID ").expect("APPENDUID") + 11;
        let mut it = l[i..].split([' ', ']']);
        (
            it.next().unwrap().parse().unwrap(),
            it.next().unwrap().parse().unwrap(),
        )
    }
}

fn tagged(r: &[String]) -> &str {
    r.last().unwrap()
}

#[test]
fn uidvalidity_is_never_reused_for_a_name() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let port = setup(&home, &["alice"], &[]);
    let server = start(&home);
    let msg = "Subject: x\r\n\r\nbody\r\n";
    let mut seen = Vec::new();
    let mut c = Client::login(port, "alice");
    // Several rounds well within one second: the clock alone would repeat itself.
    for _ in 0..3 {
        c.ok("CREATE reused");
        let (v, uid) = c.append("reused", msg);
        assert_eq!(uid, 1);
        assert!(!seen.contains(&v), "UIDVALIDITY {v} given twice: {seen:?}");
        seen.push(v);
        c.ok("DELETE reused");
    }
    drop(c);
    server.stop();
    let server = start(&home);
    let mut c = Client::login(port, "alice");
    c.ok("CREATE reused");
    let (v, _) = c.append("reused", msg);
    assert!(
        !seen.contains(&v),
        "after a restart UIDVALIDITY {v} was given again: {seen:?}"
    );
    // A MOVE into the selected mailbox gives the message a new UID, never an old one.
    c.ok("SELECT reused");
    let r = c.ok("MOVE 1 reused");
    assert!(
        r.iter().any(|l| l.contains(&format!("[COPYUID {v} 1 2]"))),
        "{r:?}"
    );
    assert!(r.iter().any(|l| l == "* 1 EXPUNGE"), "{r:?}");
    assert!(r.iter().any(|l| l == "* 1 EXISTS"), "{r:?}");
    drop(c);
    server.stop();
}

#[test]
fn mailbox_names_keywords_recent_and_authzid() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let port = setup(&home, &["alice", "bob"], &[]);
    let _server = start(&home);
    let mut c = Client::login(port, "alice");
    for name in [
        "../evil",
        "a/../b",
        "a/./b",
        "\"tab\there\"",
        "&Jjo",
        "\"bad&-utf7&AGE\"",
    ] {
        let r = c.cmd(&format!("CREATE {name}"));
        assert!(tagged(&r).contains(" NO "), "CREATE {name}: {r:?}");
    }
    let r = c.cmd("CREATE {5+}\r\na\u{1}b/c");
    assert!(tagged(&r).contains(" NO "), "control character: {r:?}");
    let r = c.ok("LIST \"\" *");
    assert!(!r.iter().any(|l| l.contains("evil")), "{r:?}");

    // \Recent: the first session to see a message has it recent, no other.
    let msg = "Subject: r\r\n\r\nbody\r\n";
    c.append("INBOX", msg);
    let r = c.ok("EXAMINE INBOX");
    assert!(r.contains(&"* 1 RECENT".to_string()), "{r:?}");
    let r = c.ok("STATUS INBOX (RECENT)");
    assert!(
        r[0].ends_with("(RECENT 1)"),
        "EXAMINE keeps it recent: {r:?}"
    );
    let r = c.ok("SELECT INBOX");
    assert!(r.contains(&"* 1 RECENT".to_string()), "{r:?}");
    let r = c.ok("SEARCH RECENT");
    assert_eq!(r[0], "* SEARCH 1");
    let r = c.ok("FETCH 1 FLAGS");
    assert!(r[0].contains("\\Recent"), "{r:?}");
    let mut other = Client::login(port, "alice");
    let r = other.ok("SELECT INBOX");
    assert!(r.contains(&"* 0 RECENT".to_string()), "{r:?}");
    let r = other.ok("SEARCH NEW");
    assert_eq!(r[0], "* SEARCH");

    // A new keyword is announced in FLAGS before a FETCH shows it, in the
    // session that set it and in one that sees the change.
    let r = c.ok("STORE 1 +FLAGS ($Project)");
    let flags = r.iter().position(|l| l.starts_with("* FLAGS ("));
    let fetch = r.iter().position(|l| l.contains("FETCH"));
    assert!(
        flags.is_some() && flags < fetch && r[flags.unwrap()].contains("$Project"),
        "{r:?}"
    );
    assert!(
        r.iter()
            .any(|l| l.starts_with("* OK [PERMANENTFLAGS (") && l.contains("$Project")),
        "{r:?}"
    );
    let r = other.ok("NOOP");
    assert!(
        r.iter()
            .any(|l| l.starts_with("* FLAGS (") && l.contains("$Project")),
        "{r:?}"
    );
    // FLAGS lists the mailbox's own keywords, not the account's.
    c.ok("CREATE Other");
    let r = c.ok("SELECT Other");
    assert!(!r[0].contains("$Project"), "{r:?}");

    // AUTHENTICATE PLAIN: acting as another user is refused.
    let mut anon = Client::connect(port);
    let b64 = |s: &[u8]| {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut o = String::new();
        for ch in s.chunks(3) {
            let n = ch.iter().fold(0u32, |a, b| a << 8 | *b as u32) << (8 * (3 - ch.len()));
            for i in 0..4 {
                if i <= ch.len() {
                    o.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    o.push('=');
                }
            }
        }
        o
    };
    let r = anon.cmd(&format!(
        "AUTHENTICATE PLAIN {}",
        b64(b"bob@example.com\0alice@example.com\0secret")
    ));
    assert!(tagged(&r).contains(" NO "), "{r:?}");
    anon.ok(&format!(
        "AUTHENTICATE PLAIN {}",
        b64(b"alice@example.com\0alice@example.com\0secret")
    ));
}

#[test]
fn login_failures_are_throttled_per_address_and_account() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let port = setup(
        &home,
        &["alice", "bob"],
        &[
            ("imap_login_free_failures", "2"),
            ("imap_login_failure_delay_ms", "1500"),
            ("imap_login_failure_max_delay_ms", "3000"),
            ("imap_login_failures_per_connection", "3"),
        ],
    );
    let _server = start(&home);
    let timed = |c: &mut Client, cmd: &str| {
        let t = Instant::now();
        let r = c.cmd(cmd);
        (r, t.elapsed())
    };
    // Free failures answer at once; the third closes the connection.
    let mut c = Client::connect(port);
    for _ in 0..2 {
        let (r, t) = timed(&mut c, "LOGIN alice@example.com wrong");
        assert!(tagged(&r).contains("AUTHENTICATIONFAILED"), "{r:?}");
        assert!(t < Duration::from_millis(1400), "free failure took {t:?}");
    }
    let (_, t) = timed(&mut c, "LOGIN alice@example.com wrong");
    assert!(t >= Duration::from_millis(1500), "third failure took {t:?}");
    let bye = c.line();
    assert!(bye.starts_with("* BYE"), "{bye:?}");
    assert_eq!(c.line(), "", "the connection is closed");
    // Further attempts wait, doubling up to the cap, from this address for any
    // account and for this account even with the right password.
    let mut c = Client::connect(port);
    let (_, t) = timed(&mut c, "LOGIN bob@example.com wrong");
    assert!(
        t >= Duration::from_millis(3000),
        "fourth failure took {t:?}"
    );
    let (r, t) = timed(&mut c, "LOGIN alice@example.com secret");
    assert!(tagged(&r).contains(" OK "), "{r:?}");
    assert!(
        t >= Duration::from_millis(3000),
        "throttled login took {t:?}"
    );
    // A success clears the counts.
    let mut c = Client::connect(port);
    let (r, t) = timed(&mut c, "LOGIN alice@example.com secret");
    assert!(tagged(&r).contains(" OK "), "{r:?}");
    assert!(
        t < Duration::from_millis(1400),
        "login after success took {t:?}"
    );
}

#[test]
fn literals_before_login_pin_no_memory() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let port = setup(&home, &["alice"], &[]);
    let server = start(&home);
    // Warm up: one full session, so the runtime's own allocations are made.
    let mut c = Client::login(port, "alice");
    c.ok("SELECT INBOX");
    drop(c);
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kib(server.0.id());
    let mut conns = Vec::new();
    let junk = vec![b'x'; 1 << 20];
    for i in 0..10 {
        let mut c = Client::connect(port);
        if i % 2 == 0 {
            // Synchronising: refused at once, no continuation.
            let r = c.cmd("LOGIN {50000000}");
            assert!(tagged(&r).contains("NO [TOOBIG]"), "{r:?}");
        } else {
            // LITERAL+: the server must read it, and throws it away as it comes.
            c.w.write_all(b"t1 LOGIN {50000000+}\r\n").unwrap();
        }
        // Either way the client goes on sending a body it never finishes.
        for _ in 0..4 {
            c.w.write_all(&junk).unwrap();
        }
        conns.push(c);
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib(server.0.id());
    let grown = after.saturating_sub(before);
    eprintln!(
        "10 connections announcing 50 MB literals before login: RSS {before} KiB -> {after} KiB (+{grown} KiB)"
    );
    assert!(grown < 20 * 1024, "RSS grew by {grown} KiB");
    // After login the configured limit applies again.
    let mut c = Client::login(port, "alice");
    c.w.write_all(b"t9 APPEND INBOX {100000}\r\n").unwrap();
    let cont = c.line();
    assert!(cont.starts_with('+'), "{cont:?}");
    drop(conns);
}

/// Where imaptest is, building it when missing; None (with the reason printed)
/// when it cannot be built here.
fn imaptest() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("MV_IMAPTEST_DIR") {
        return Some(PathBuf::from(d));
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let built = repo.join("target/imaptest");
    if built.join("imaptest").is_file() && built.join("tests").is_dir() {
        return Some(built);
    }
    let script = repo.join("../shared/tools/imaptest/build.sh");
    if !script.is_file() {
        eprintln!(
            "SKIPPED imaptest: {} is missing (scripts/install-test-deps builds imaptest from it)",
            script.display()
        );
        return None;
    }
    let dest = Path::new(env!("CARGO_TARGET_TMPDIR")).join("imaptest");
    if dest.join("imaptest").is_file() {
        return Some(dest);
    }
    let out = Command::new("bash")
        .arg(&script)
        .arg(&dest)
        .output()
        .unwrap();
    if !out.status.success() {
        eprintln!(
            "SKIPPED imaptest: it could not be built ({}): {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    Some(dest)
}

#[test]
fn imaptest_scripted_groups() {
    let Some(it) = imaptest() else { return };
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let port = setup(&home, &["imaptest1", "imaptest2"], &[]);
    let _server = start(&home);
    let mut groups: Vec<String> = std::fs::read_dir(it.join("tests"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".mbox") && n != "broken")
        .collect();
    // MV_IMAPTEST_GROUPS=a,b runs only those groups (while working on them).
    let only = std::env::var("MV_IMAPTEST_GROUPS").unwrap_or_default();
    if !only.is_empty() {
        groups.retain(|g| only.split(',').any(|o| o == g));
    }
    let transcripts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("imaptest-transcripts");
    std::fs::create_dir_all(&transcripts).unwrap();
    groups.sort();
    // Two workers, one account each (every group creates and deletes a mailbox
    // named "imaptest" in its account).
    let queue = std::sync::Mutex::new(groups.clone());
    let results = std::sync::Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        for user in ["imaptest1", "imaptest2"] {
            let (queue, results, it) = (&queue, &results, &it);
            s.spawn(move || {
                loop {
                    let Some(g) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let out = Command::new("timeout")
                        .arg("60")
                        .arg(it.join("imaptest"))
                        .current_dir(it)
                        .args([
                            "host=127.0.0.1".to_string(),
                            format!("port={port}"),
                            format!("user={user}@example.com"),
                            "pass=secret".to_string(),
                            format!("test=tests/{g}"),
                        ])
                        .output()
                        .unwrap();
                    let text = String::from_utf8_lossy(&out.stdout).into_owned()
                        + &String::from_utf8_lossy(&out.stderr);
                    results.lock().unwrap().push((g, text));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort();
    let count = |text: &str, what: &str| -> (u32, u32) {
        text.find(what)
            .and_then(|i| {
                let (f, t) = text[i + what.len()..]
                    .split_whitespace()
                    .next()?
                    .split_once('/')?;
                Some((f.parse().ok()?, t.parse().ok()?))
            })
            .unwrap_or((0, 0))
    };
    let (mut passed, mut failed, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    eprintln!("imaptest group                      result   base     extensions");
    for (g, text) in &results {
        let (bf, bt) = count(text, "base protocol: ");
        let (ef, et) = count(text, "extensions: ");
        let result = if bt + et == 0 {
            skipped.push(g.clone());
            "skipped"
        } else if bf + ef == 0 {
            passed.push(g.clone());
            "passed"
        } else {
            failed.push(g.clone());
            "FAILED"
        };
        eprintln!("{g:<35} {result:<8} {bf}/{bt:<6} {ef}/{et}");
    }
    eprintln!(
        "imaptest: {} passed, {} failed, {} skipped of {} groups in {:.1} s",
        passed.len(),
        failed.len(),
        skipped.len(),
        results.len(),
        started.elapsed().as_secs_f64()
    );
    for (g, text) in &results {
        std::fs::write(transcripts.join(format!("{g}.txt")), text).unwrap();
    }
    eprintln!("transcripts: {}", transcripts.display());
    assert!(failed.is_empty(), "imaptest groups failed: {failed:?}");
    assert!(
        !only.is_empty() || passed.len() >= IMAPTEST_PASS_FLOOR,
        "only {} imaptest groups passed (floor {IMAPTEST_PASS_FLOOR})",
        passed.len()
    );
}

/// Lines of `r` that start with `prefix`.
fn lines_with<'a>(r: &'a [String], prefix: &str) -> Vec<&'a str> {
    r.iter()
        .filter(|l| l.starts_with(prefix))
        .map(String::as_str)
        .collect()
}
