//! What the home, a backup target and the admin API give away to others: file
//! modes under a permissive umask, unauthenticated and oversized API bodies,
//! and target paths the API or the CLI must not turn into new targets; and the
//! outages a full disk or a shutdown under load must not cause.

mod common;

use common::*;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs a tool under umask 022, the usual login default, from `cwd`.
fn run_022(env: &Env, tool: &str, args: &[&str], cwd: &Path) -> Out {
    let mut cmd = Command::new(env.links.join(tool));
    cmd.env("MAILVAULT_HOME", &env.home)
        .env("TZ", "UTC")
        .current_dir(cwd)
        .args(args);
    // SAFETY: umask is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
    cmd.output().unwrap().into()
}

/// Every path below `dir` (directories too) with group or other bits set.
fn exposed(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            out.push((p.clone(), mode));
        }
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    out
}

fn check_line(env: &Env, name: &str) -> String {
    let o = env.run(Path::new(BIN), &["check"]);
    o.stdout
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} line in {}", o.stdout))
        .to_string()
}

#[test]
fn home_and_target_hold_nothing_for_others_under_umask_022() {
    let env = Env::new();
    let root = env.root.clone();
    let ok = |tool: &str, args: &[&str]| {
        let o = run_022(&env, tool, args, &root);
        assert_eq!(o.code, 0, "{tool} {args:?}: {}{}", o.stdout, o.stderr);
        o
    };
    ok("zmprov", &["cd", "d.test"]);
    ok("zmprov", &["ca", "a@d.test", "secret"]);
    ok(
        "zmlocalconfig",
        &["-e", "s3_secret_access_key=not-for-others"],
    );
    let msg = root.join("m.eml");
    std::fs::write(&msg, "From: x@y.test\r\nSubject: private\r\n\r\nbody\r\n").unwrap();
    ok(
        "zmmailbox",
        &[
            "-z",
            "-m",
            "a@d.test",
            "am",
            "/Inbox",
            msg.to_str().unwrap(),
        ],
    );
    // A relative -t is the caller's: the target lands beside the caller.
    ok("zmbackup", &["-f", "-a", "all", "-t", "tgt", "-sync"]);
    let target = root.join("tgt");
    assert!(target.join("sessions").is_dir());
    assert!(
        common::walk(&target)
            .iter()
            .any(|p| p.ends_with("sys/localconfig.conf")),
        "the backup carries the local config (and its secret)"
    );
    assert!(
        common::walk(&target)
            .iter()
            .any(|p| p.ends_with("ldap/ldap.bak")),
        "the backup carries the directory (and its hashes)"
    );

    for dir in [&env.home, &target] {
        let open = exposed(dir);
        assert!(open.is_empty(), "open to group/others: {open:#?}");
    }
    let line = check_line(&env, "home permissions");
    assert!(line.contains("OK"), "{line}");

    // Someone opens a blob up: check names it and says what to do.
    let blob = common::walk(&env.home.join("store"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "msg"))
        .expect("a stored message");
    std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o644)).unwrap();
    let line = check_line(&env, "home permissions");
    assert!(line.contains("FAILED"), "{line}");
    assert!(line.contains(&blob.display().to_string()), "{line}");
    assert!(
        line.contains("0644") && line.contains("chmod -R go-rwx"),
        "{line}"
    );
}

/// A raw HTTP/1.1 POST: (status, body).
fn post(port: u16, path: &str, token: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // From another thread: a server that answers before taking the whole body
    // (a refusal on its size) closes the connection under the writer.
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(request.as_bytes());
    });
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            // A reset after the answer: what arrived before it is the answer.
            Err(e) if !raw.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading the answer to POST {path}: {e}"),
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Both);
    writer.join().unwrap();
    let resp = String::from_utf8_lossy(&raw).into_owned();
    let status = resp[9..12].parse().unwrap();
    let json = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (
        status,
        serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
    )
}

fn rss_kib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Sends headers announcing `len` bytes and then the bytes, from another
/// thread, while this one waits for the answer. Returns (status line, bytes
/// the server let us send before answering and closing).
fn post_huge(port: u16, path: &str, auth: Option<&str>, len: u64) -> (String, u64) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}Content-Length: {len}\r\n\r\n"
    )
    .unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![b' '; 64 << 10];
        let mut sent = 0u64;
        while sent < len {
            let n = chunk.len().min((len - sent) as usize);
            if w.write_all(&chunk[..n]).is_err() {
                break;
            }
            sent += n as u64;
        }
        sent
    });
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Both);
    let sent = writer.join().unwrap();
    (String::from_utf8_lossy(&head).trim().to_string(), sent)
}

#[test]
fn admin_api_checks_the_token_and_limits_before_reading_and_never_makes_targets() {
    let env = Env::new();
    let admin = free_port();
    env.ok(
        "zmlocalconfig",
        &[
            "-e",
            &format!("admin_bind_port={admin}"),
            "-e",
            &format!("lmtp_bind_port={}", free_port()),
            "-e",
            &format!("imap_bind_port={}", free_port()),
            "-e",
            &format!("imaps_bind_port={}", free_port()),
        ],
    );
    env.ok("zmprov", &["cd", "d.test"]);
    env.ok("zmprov", &["ca", "a@d.test", "secret"]);
    env.ok("zmcontrol", &["start"]);
    struct Stop<'a>(&'a Env);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.zm("zmcontrol", &["stop"]);
        }
    }
    let _stop = Stop(&env);
    let pid = std::fs::read_to_string(env.home.join("mailvault.lock"))
        .unwrap()
        .trim()
        .to_string();
    let token = std::fs::read_to_string(env.home.join("conf/admin.token")).unwrap();
    let token = token.trim();

    // 100 MB without a token: answered from the headers, the body never read.
    let before = rss_kib(&pid);
    let started = Instant::now();
    let (status, sent) = post_huge(admin, "/v1/op/add_message", None, 100_000_000);
    assert!(status.contains(" 401 "), "{status}");
    assert!(sent < 100_000_000, "the whole body was taken in");
    assert!(started.elapsed() < Duration::from_secs(10));
    let grown = rss_kib(&pid).saturating_sub(before);
    assert!(grown < 10 << 10, "server RSS grew {grown} KiB");
    // With the token, the operation's limit: announced too large, refused at once.
    let (status, sent) = post_huge(admin, "/v1/op/get_account", Some(token), 100_000_000);
    assert!(status.contains(" 413 "), "{status}");
    assert!(sent < 100_000_000);
    let grown = rss_kib(&pid).saturating_sub(before);
    assert!(grown < 10 << 10, "server RSS grew {grown} KiB");
    let big = format!(
        r#"{{"op":"add_message","account":"a@d.test","folder":"/Inbox","data":"{}"}}"#,
        "QUFB".repeat(400_000)
    );
    let (status, body) = post(admin, "/v1/op", Some(token), &big);
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("/v1/op/<op>"),
        "{body}"
    );
    let (status, body) = post(admin, "/v1/op/ping", Some(token), r#"{"op":"check"}"#);
    assert_eq!(status, 400, "{body}");
    // The CLI names the operation: a 2 MB message goes through the server.
    let msg = env.root.join("big.eml");
    let mut text = String::from("From: x@y.test\r\nSubject: big\r\n\r\n");
    while text.len() < 2 << 20 {
        text.push_str("a line of a big message body, long enough\r\n");
    }
    std::fs::write(&msg, &text).unwrap();
    env.ok(
        "zmmailbox",
        &[
            "-z",
            "-m",
            "a@d.test",
            "am",
            "/Inbox",
            msg.to_str().unwrap(),
        ],
    );

    // Targets: never a relative path, never a skeleton outside a target.
    let etc = env.root.join("etc");
    std::fs::create_dir(&etc).unwrap();
    std::fs::write(etc.join("passwd"), "root:x:0:0\n").unwrap();
    let etc_s = etc.to_str().unwrap();
    let untouched = |what: &str| {
        let names: Vec<_> = std::fs::read_dir(&etc)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["passwd"], "after {what}");
    };
    for (what, body) in [
        (
            "relative restore",
            r#"{"op":"restore","accounts":["all"],"target":"../../etc"}"#.to_string(),
        ),
        (
            "restore",
            format!(r#"{{"op":"restore","accounts":["all"],"target":"{etc_s}"}}"#),
        ),
        (
            "verify",
            format!(r#"{{"op":"backup_verify","target":"{etc_s}"}}"#),
        ),
        (
            "abort",
            format!(
                r#"{{"op":"backup_abort","label":"full-20260101.000000.000","target":"{etc_s}"}}"#
            ),
        ),
        (
            "query",
            format!(r#"{{"op":"backup_query","target":"{etc_s}"}}"#),
        ),
        (
            "backup into a directory holding files",
            format!(r#"{{"op":"backup","kind":"full","accounts":["all"],"target":"{etc_s}"}}"#),
        ),
    ] {
        let op = serde_json::from_str::<serde_json::Value>(&body).unwrap()["op"]
            .as_str()
            .unwrap()
            .to_string();
        let (status, answer) = post(admin, &format!("/v1/op/{op}"), Some(token), &body);
        assert!((400..500).contains(&status), "{what}: {status} {answer}");
        untouched(what);
    }
    let (_, answer) = post(
        admin,
        "/v1/op/restore",
        Some(token),
        r#"{"op":"restore","accounts":["all"],"target":"../../etc"}"#,
    );
    assert!(
        answer["error"].as_str().unwrap().contains("relative"),
        "{answer}"
    );

    // A backup may make a new target, under backup_target_roots once set.
    env.ok(
        "zmlocalconfig",
        &[
            "-e",
            &format!("backup_target_roots={}", env.root.join("backups").display()),
        ],
    );
    let outside = env.root.join("elsewhere");
    let o = env.zm(
        "zmbackup",
        &["-f", "-a", "all", "-sync", "-t", outside.to_str().unwrap()],
    );
    assert_ne!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(o.stderr.contains("backup_target_roots"), "{}", o.stderr);
    assert!(!outside.exists());
    // The CLI resolves a relative -t in its own working directory, not the
    // server's.
    std::fs::create_dir(env.root.join("backups")).unwrap();
    let mut cmd = Command::new(env.links.join("zmbackup"));
    let o = cmd
        .env("MAILVAULT_HOME", &env.home)
        .current_dir(env.root.join("backups"))
        .args(["-f", "-a", "all", "-sync", "-t", "t1"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(env.root.join("backups/t1/sessions").is_dir());
}

#[test]
fn a_full_target_disk_is_named_as_the_target_not_the_home() {
    let env = Env::new();
    let fs = Tmpfs::mount(&env.root.join("tfs"), "4m");
    let target = fs.0.join("target");
    let t = target.to_str().unwrap();
    env.ok("zmprov", &["cd", "d.test"]);
    env.ok("zmprov", &["ca", "a@d.test", "secret"]);
    env.ok("zmbackup", &["-f", "-a", "all", "-t", t, "-sync"]);
    // Redo records for the incremental: about 1.5 MB of mail.
    let msg = env.root.join("m.eml");
    let mut text = String::from("From: x@y.test\r\nSubject: fill\r\n\r\n");
    while text.len() < 300_000 {
        text.push_str("some words that make up a body line of a message\r\n");
    }
    for i in 0..5 {
        std::fs::write(&msg, format!("X-N: {i}\r\n{text}")).unwrap();
        env.ok(
            "zmmailbox",
            &[
                "-z",
                "-m",
                "a@d.test",
                "am",
                "/Inbox",
                msg.to_str().unwrap(),
            ],
        );
    }
    // Fill the target's filesystem: room for the session's small files, not
    // for the redo logs the incremental copies from the home's archive.
    let filler = fs.0.join("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 << 10];
        while f.write_all(&block).is_ok() {}
        let len = f.metadata().unwrap().len();
        f.set_len(len - (256 << 10)).unwrap();
    }
    let o = env.zm("zmbackup", &["-i", "-t", t, "-sync"]);
    assert_ne!(o.code, 0, "{}{}", o.stdout, o.stderr);
    let err = o.stderr.to_lowercase();
    assert!(
        err.contains("no space for")
            && err.contains(&fs.0.to_str().unwrap().to_lowercase())
            && err.contains("(copying"),
        "{}",
        o.stderr
    );
    let home = env.home.to_str().unwrap().to_lowercase();
    let first_path = err
        .split_whitespace()
        .find(|w| w.starts_with('/'))
        .unwrap_or_default();
    assert!(
        !first_path.starts_with(&home),
        "the home is named first: {}",
        o.stderr
    );
    // Space back: the next incremental takes the logs.
    std::fs::remove_file(&filler).unwrap();
    env.ok("zmbackup", &["-i", "-t", t, "-sync"]);
}

/// One LMTP delivery; returns the reply to the final dot.
fn lmtp_deliver(port: u16, rcpt: &str, message: &str) -> String {
    try_lmtp_deliver(port, rcpt, message).unwrap()
}

/// [`lmtp_deliver`] that reports a refused or dropped connection as an error
/// (a server shutting down).
fn try_lmtp_deliver(port: u16, rcpt: &str, message: &str) -> std::io::Result<String> {
    use std::io::BufRead;
    let s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut r = std::io::BufReader::new(s.try_clone()?);
    let mut w = s;
    let mut line = String::new();
    let mut reply = |r: &mut std::io::BufReader<std::net::TcpStream>| -> std::io::Result<String> {
        // The last line of a (possibly multi-line) reply.
        loop {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return Ok(line.trim_end().to_string());
            }
        }
    };
    reply(&mut r)?;
    write!(w, "LHLO test\r\n")?;
    reply(&mut r)?;
    write!(w, "MAIL FROM:<x@y.test>\r\n")?;
    reply(&mut r)?;
    write!(w, "RCPT TO:<{rcpt}>\r\n")?;
    let rc = reply(&mut r)?;
    if !rc.starts_with('2') {
        return Ok(rc);
    }
    write!(w, "DATA\r\n")?;
    reply(&mut r)?;
    w.write_all(message.as_bytes())?;
    write!(w, ".\r\n")?;
    let end = reply(&mut r)?;
    let _ = write!(w, "QUIT\r\n");
    Ok(end)
}

struct Server(std::process::Child);

impl Server {
    fn start(env: &Env, lmtp: u16) -> Server {
        let child = Command::new(BIN)
            .env("MAILVAULT_HOME", &env.home)
            .arg("serve")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", lmtp)).is_err() {
            assert!(Instant::now() < deadline, "the server did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server(child)
    }

    fn stop(mut self) {
        // SAFETY: a signal to our own child.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A full home's redo log stops: deliveries are deferred and `check` FAILs,
/// naming what to do. Once there is room again the log resumes by itself: no
/// restart, the next delivery is accepted, `check` is OK, and the log holds
/// exactly the deliveries that were acknowledged (the cut-off record is gone).
#[test]
fn a_redo_log_stopped_by_a_full_disk_resumes_without_a_restart_once_there_is_room() {
    let env = Env::new();
    let fs = Tmpfs::mount(&env.home, "24m");
    // The tmpfs hides the home Env made: a new one on it.
    env.init();
    let lmtp = free_port();
    env.ok(
        "zmlocalconfig",
        &[
            "-e",
            &format!("admin_bind_port={}", free_port()),
            "-e",
            &format!("lmtp_bind_port={lmtp}"),
            "-e",
            &format!("imap_bind_port={}", free_port()),
            "-e",
            &format!("imaps_bind_port={}", free_port()),
        ],
    );
    env.ok("zmprov", &["cd", "d.test"]);
    env.ok("zmprov", &["ca", "a@d.test", "secret"]);
    let server = Server::start(&env, lmtp);
    let mut msg = String::from("From: x@y.test\r\nSubject: big\r\n\r\n");
    while msg.len() < 200_000 {
        msg.push_str("a body line of a message that fills the disk\r\n");
    }
    assert!(lmtp_deliver(lmtp, "a@d.test", &msg).starts_with("250"));
    let line = check_line(&env, "redo log");
    assert!(line.contains("OK"), "{line}");
    let line = check_line(&env, "listeners");
    assert!(line.contains("OK") && line.contains("LMTP"), "{line}");

    // Room for the staged content but not for its redo record as well: the
    // write of the record fails part way.
    let filler = fs.0.join("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 << 10];
        while f.write_all(&block).is_ok() {}
        let len = f.metadata().unwrap().len();
        f.set_len(len - 300_000).unwrap();
    }
    for _ in 0..2 {
        let reply = lmtp_deliver(lmtp, "a@d.test", &msg);
        assert!(reply.starts_with('4'), "{reply}");
    }
    let line = check_line(&env, "redo log");
    assert!(
        line.contains("FAILED") && line.contains("make room on"),
        "{line}"
    );

    // Room again: delivery comes back without a restart.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = lmtp_deliver(lmtp, "a@d.test", &msg);
        if reply.starts_with("250") {
            break;
        }
        assert!(Instant::now() < deadline, "never resumed: {reply}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let line = check_line(&env, "redo log");
    assert!(line.contains("OK"), "{line}");
    assert!(lmtp_deliver(lmtp, "a@d.test", &msg).starts_with("250"));

    // The log reads cleanly to its end and holds the three acknowledged
    // deliveries, none of the deferred ones.
    let dump = env.ok("zmredodump", &[]);
    assert_eq!(
        dump.stdout.matches("[CreateMessage]").count(),
        3,
        "{}{}",
        dump.stdout,
        dump.stderr
    );
    server.stop();
    // And a restart finds nothing to repair.
    let server = Server::start(&env, lmtp);
    let line = check_line(&env, "redo log");
    assert!(line.contains("OK"), "{line}");
    server.stop();
    let o = env.ok(
        "zmmailbox",
        &["-z", "-m", "a@d.test", "s", "--json", "in:Inbox"],
    );
    let found: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(found.as_array().unwrap().len(), 3, "{}", o.stdout);
}

/// `zmcontrol start` while something holds the home without serving it (a
/// killed server whose process has not gone yet): it waits for it to go, then
/// starts a server that answers. A server that cannot come up is an error.
#[test]
fn zmcontrol_start_waits_for_a_lingering_holder_and_fails_when_nothing_comes_up() {
    let env = Env::new();
    let admin = free_port();
    let lmtp = free_port();
    env.ok(
        "zmlocalconfig",
        &[
            "-e",
            &format!("admin_bind_port={admin}"),
            "-e",
            &format!("lmtp_bind_port={lmtp}"),
            "-e",
            &format!("imap_bind_port={}", free_port()),
            "-e",
            &format!("imaps_bind_port={}", free_port()),
        ],
    );
    let lock = env.home.join("mailvault.lock");
    std::fs::write(&lock, "424242").unwrap();
    let mut holder = Command::new("flock")
        .arg("-x")
        .arg(&lock)
        .args(["sleep", "3"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while env.zm("zmcontrol", &["status"]).code != 0 {
        assert!(Instant::now() < deadline, "flock did not take the lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = env.zm("zmcontrol", &["start"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("waiting"), "{}", o.stdout);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", admin)).is_ok(),
        "start said {} but nothing listens",
        o.stdout
    );
    let _ = holder.wait();
    // Running and answering: start says so.
    let o = env.ok("zmcontrol", &["start"]);
    assert!(o.stdout.contains("already running"), "{}", o.stdout);
    env.ok("zmcontrol", &["stop"]);

    // The LMTP port is taken: the server cannot come up, start says so.
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", lmtp)).unwrap();
    let o = env.zm("zmcontrol", &["start"]);
    assert_ne!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(o.stderr.contains("exited at start"), "{}", o.stderr);
}

/// A message of about `size` bytes of varied words: work for the search indexer.
fn wordy_message(n: u64, size: usize) -> String {
    let mut msg = format!("From: x@y.test\r\nSubject: load {n}\r\n\r\n");
    let mut x = n
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    while msg.len() < size {
        for _ in 0..12 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            msg.push_str(&format!("w{:x} ", (x >> 40) & 0xfffff));
        }
        msg.push_str("\r\n");
    }
    msg
}

/// SIGTERM while LMTP deliveries are in flight and the search indexer has a
/// backlog: the server exits within 10 s of the last delivery it answered, and
/// every delivery it acknowledged is there after the restart.
#[test]
fn sigterm_under_delivery_and_indexing_load_exits_within_ten_seconds() {
    let env = Env::new();
    let lmtp = free_port();
    env.ok(
        "zmlocalconfig",
        &[
            "-e",
            &format!("admin_bind_port={}", free_port()),
            "-e",
            &format!("lmtp_bind_port={lmtp}"),
            "-e",
            &format!("imap_bind_port={}", free_port()),
            "-e",
            &format!("imaps_bind_port={}", free_port()),
        ],
    );
    env.ok("zmprov", &["cd", "d.test"]);
    let users: Vec<String> = (0..4).map(|i| format!("u{i}@d.test")).collect();
    for u in &users {
        env.ok("zmprov", &["ca", u, "secret"]);
    }
    let mut server = Server::start(&env, lmtp);
    let acknowledged = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Instant::now();
    let clients: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let (u, acknowledged, stop) = (u.clone(), acknowledged.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut last_answer = Instant::now();
                let mut ok = 0u64;
                for n in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let msg = wordy_message(i as u64 * 1_000_000 + n, 40_000);
                    match try_lmtp_deliver(lmtp, &u, &msg) {
                        Ok(r) if r.starts_with("250") => {
                            ok += 1;
                            acknowledged.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            last_answer = Instant::now();
                        }
                        Ok(r) => {
                            assert!(r.starts_with('4'), "{r}");
                            last_answer = Instant::now();
                        }
                        // Refused or cut off: the server is going.
                        Err(_) => break,
                    }
                }
                (ok, last_answer)
            })
        })
        .collect();
    // Load until the indexer has a backlog of a few hundred messages.
    while acknowledged.load(std::sync::atomic::Ordering::Relaxed) < 200 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "deliveries too slow"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: a signal to our own child.
    unsafe {
        libc::kill(server.0.id() as i32, libc::SIGTERM);
    }
    let term = Instant::now();
    let exited = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break (Instant::now(), status);
        }
        assert!(
            term.elapsed() < Duration::from_secs(60),
            "still running 60 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    let mut last_answer = term;
    for c in clients {
        let (ok, last) = c.join().unwrap();
        total += ok;
        last_answer = last_answer.max(last);
    }
    assert!(exited.1.success(), "{:?}", exited.1);
    eprintln!(
        "{total} delivered in {:?}; exit {:?} after SIGTERM, {:?} after the last answer",
        term - started,
        exited.0 - term,
        exited.0.saturating_duration_since(last_answer)
    );
    let after_last = exited.0.saturating_duration_since(last_answer);
    assert!(
        after_last <= Duration::from_secs(10),
        "exited {after_last:?} after the last delivery was answered ({:?} after SIGTERM)",
        exited.0 - term
    );
    drop(server);
    // The indexer was stopped with a backlog (what this test is about): the
    // change numbers its indexes committed cover fewer changes than there were
    // deliveries.
    let mut indexed = 0;
    for e in std::fs::read_dir(env.home.join("index")).unwrap().flatten() {
        let meta = std::fs::read_to_string(e.path().join("meta.json")).unwrap_or_default();
        let meta: serde_json::Value = serde_json::from_str(&meta).unwrap_or_default();
        if let Some(p) = meta["payload"].as_str() {
            let p: serde_json::Value = serde_json::from_str(p).unwrap();
            indexed += p["change"].as_u64().unwrap();
        }
    }
    assert!(
        indexed < total,
        "the indexer had caught up ({indexed} changes indexed, {total} deliveries): no load to stop"
    );

    // Every acknowledged delivery is there.
    let mut found = 0;
    for u in &users {
        let o = env.ok(
            "zmmailbox",
            &["-z", "-m", u, "s", "--json", "-l", "100000", "in:Inbox"],
        );
        let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
        found += v.as_array().unwrap().len() as u64;
    }
    assert_eq!(found, total);
}

/// A malformed value of a known local config key is refused by `localconfig -e`,
/// and one put in the file by hand stops `serve` at start, naming the key; the
/// server never runs on a silent default.
#[test]
fn a_malformed_local_config_value_is_refused_and_stops_the_start() {
    let env = Env::new();
    let o = env.run(Path::new(BIN), &["init"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = env.run(
        Path::new(BIN),
        &["localconfig", "-e", "lmtp_bind_port=7o25"],
    );
    assert_ne!(o.code, 0, "{}", o.stdout);
    assert!(
        o.stderr.contains("lmtp_bind_port") && o.stderr.contains("not a whole number"),
        "{}",
        o.stderr
    );
    let path = env.home.join("conf/localconfig.conf");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("imap_max_connections = lots\n");
    std::fs::write(&path, text).unwrap();
    let o = env.run(Path::new(BIN), &["serve"]);
    assert_ne!(o.code, 0, "{}", o.stdout);
    assert!(
        o.stderr
            .contains("imap_max_connections = \"lots\" is not a whole number"),
        "{}",
        o.stderr
    );
}
