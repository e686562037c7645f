//! Helpers shared by the CLI integration tests: a temporary, initialized home
//! with the zm* symlinks installed, running the real binary, free loopback ports.
// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_mailvault");

pub struct Env {
    pub _dir: tempfile::TempDir,
    pub home: PathBuf,
    pub links: PathBuf,
    pub root: PathBuf,
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Out {
    fn from(out: std::process::Output) -> Out {
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let links = dir.path().join("bin");
        let root = dir.path().to_path_buf();
        let e = Env {
            home,
            links,
            root,
            _dir: dir,
        };
        let out = e.run(
            Path::new(BIN),
            &["install-links", e.links.to_str().unwrap()],
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        e.init();
        e
    }

    /// `mailvault init`: every tool but init refuses a home that does not exist.
    pub fn init(&self) {
        let out = self.run(Path::new(BIN), &["init"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }

    pub fn run(&self, program: &Path, args: &[&str]) -> Out {
        Command::new(program)
            .env("MAILVAULT_HOME", &self.home)
            .env("TZ", "UTC")
            .args(args)
            .output()
            .unwrap()
            .into()
    }

    pub fn zm(&self, tool: &str, args: &[&str]) -> Out {
        self.run(&self.links.join(tool), args)
    }

    pub fn ok(&self, tool: &str, args: &[&str]) -> Out {
        let o = self.zm(tool, args);
        assert_eq!(o.code, 0, "{tool} {args:?}: {}{}", o.stdout, o.stderr);
        o
    }
}

/// Every file below a directory.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// A free loopback port below the ephemeral range (see `mv_home::ports`).
pub fn free_port() -> u16 {
    mv_home::ports::free_loopback_port().unwrap()
}

/// A tmpfs mounted for a test (root only, as CI runs), owner-only like a home,
/// unmounted at the end.
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    pub fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let o = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .expect("running mount");
        assert!(
            o.status.success(),
            "cannot mount a tmpfs at {} (this test needs root): {}",
            at.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        Tmpfs(at.to_path_buf())
    }

    /// A new size for the mounted filesystem (a disk that fills, then has room).
    pub fn resize(&self, size: &str) {
        let o = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A server process, killed and reaped when dropped: a failing test leaves
/// nothing running.
pub struct Server(pub std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    /// [`spawn_server`] in `home`, its stderr to `stderr`.
    pub fn start(home: &Path, stderr: std::process::Stdio) -> Server {
        Server(spawn_server(home, stderr))
    }

    /// SIGTERM, then the exit status, which must be a clean 0.
    pub fn stop(mut self) {
        // SAFETY: kill has no memory effects; the pid is our unreaped child's.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let status = self.0.wait().unwrap();
        assert!(
            status.success(),
            "SIGTERM must give a clean exit 0, got {status}"
        );
    }
}

/// `mailvault --home HOME serve`, returned once it says it is ready; its
/// stdout keeps being drained so the server never blocks on a full pipe.
pub fn spawn_server(home: &Path, stderr: std::process::Stdio) -> std::process::Child {
    use std::io::BufRead;
    let mut child = Command::new(BIN)
        .arg("--home")
        .arg(home)
        .arg("serve")
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        assert!(std::time::Instant::now() < deadline, "server did not start");
        match lines.next() {
            Some(Ok(l)) if l.starts_with("mailvault ready") => break,
            Some(Ok(_)) => continue,
            _ => panic!("server exited before it was ready"),
        }
    }
    std::thread::spawn(move || for _ in lines {});
    child
}

/// Checks a message LMTP delivery stored: mailvault's trace headers for this
/// recipient first (Return-Path, Delivered-To, a Received line with LMTP, the
/// peer address and `for <rcpt>`), and `sent` byte for byte at the end (what
/// LMTP received may hold more: a relay's own Received line).
#[allow(dead_code)]
pub fn assert_traced(stored: &[u8], sent: &[u8], from: &str, delivered_to: &str, rcpt: &str) {
    assert!(
        stored.ends_with(sent),
        "the sent bytes must follow the trace headers unchanged"
    );
    let text = String::from_utf8_lossy(&stored[..stored.len() - sent.len()]).into_owned();
    let lines: Vec<&str> = text.split_terminator("\r\n").take(5).collect();
    assert_eq!(lines.len(), 5, "{text:?}");
    assert_eq!(lines[0], format!("Return-Path: <{from}>"), "{text:?}");
    assert_eq!(
        lines[1],
        format!("Delivered-To: {delivered_to}"),
        "{text:?}"
    );
    assert!(
        lines[2].starts_with("Received: from ") && lines[2].ends_with(" ([127.0.0.1])"),
        "{text:?}"
    );
    assert!(
        lines[3].starts_with("\tby ") && lines[3].contains(" (mailvault) with LMTP id "),
        "{text:?}"
    );
    assert!(
        lines[4].starts_with(&format!("\tfor <{rcpt}>; ")),
        "{text:?}"
    );
}

/// A minimal LMTP client: one command at a time, its reply lines. Each test
/// file adds the transactions only it needs (`impl common::Lmtp` in that file).
pub struct Lmtp {
    r: std::io::BufReader<std::net::TcpStream>,
    w: std::net::TcpStream,
}

impl Lmtp {
    /// Connected to 127.0.0.1:`port`, greeted, after LHLO.
    pub fn connect(port: u16) -> Lmtp {
        let w = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        w.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let mut l = Lmtp {
            r: std::io::BufReader::new(w.try_clone().unwrap()),
            w,
        };
        assert!(l.reply().starts_with("220"));
        l.send("LHLO test.local\r\n");
        assert!(l.reply().starts_with("250"));
        l
    }

    /// One reply, all of its lines.
    pub fn reply(&mut self) -> String {
        use std::io::BufRead;
        let mut all = String::new();
        loop {
            let mut line = String::new();
            assert!(self.r.read_line(&mut line).unwrap() > 0, "LMTP closed");
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    pub fn send(&mut self, s: &str) {
        use std::io::Write;
        self.w.write_all(s.as_bytes()).unwrap();
    }
}

impl Lmtp {
    /// One message to one recipient from sender@remote.test; true once it is
    /// acknowledged (250).
    pub fn deliver_to(&mut self, rcpt: &str, body: &str) -> bool {
        self.send("MAIL FROM:<sender@remote.test>\r\n");
        assert!(self.reply().starts_with("250"));
        self.send(&format!("RCPT TO:<{rcpt}>\r\n"));
        assert!(self.reply().starts_with("250"));
        self.send("DATA\r\n");
        assert!(self.reply().starts_with("354"));
        self.send(body);
        self.send(".\r\n");
        self.reply().starts_with("250")
    }
}

/// Message `i` to `rcpt` from sender@remote.test: subject `m<i>` (three digits),
/// Message-ID `<m<i>@remote.test>`, and 40 lines naming `what` (the test).
pub fn numbered_message(rcpt: &str, i: usize, what: &str) -> String {
    let mut m = format!(
        "From: sender@remote.test\r\nTo: {rcpt}\r\nMessage-ID: <m{i}@remote.test>\r\nSubject: m{i:03}\r\n\r\n"
    );
    for l in 0..40 {
        m.push_str(&format!("message {i} line {l} of the {what}\r\n"));
    }
    m
}

/// A minimal IMAP client for tests that watch a running server: commands are
/// written as given (tags included), replies read up to their tagged line.
pub struct Imap {
    r: std::io::BufReader<std::net::TcpStream>,
    w: std::net::TcpStream,
}

impl Imap {
    /// Connected to 127.0.0.1:`port`, greeted, logged in (`a1 LOGIN`, asserted OK).
    pub fn login(port: u16, user: &str, password: &str) -> Imap {
        use std::io::BufRead;
        let w = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        w.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let mut c = Imap {
            r: std::io::BufReader::new(w.try_clone().unwrap()),
            w,
        };
        let mut greeting = String::new();
        c.r.read_line(&mut greeting).unwrap();
        c.send(format!("a1 LOGIN {user} {password}\r\n").as_bytes());
        let login = c.until("a1 ");
        assert!(login.last().unwrap().starts_with("a1 OK"), "{login:?}");
        c
    }

    pub fn send(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.w.write_all(bytes).unwrap();
    }

    /// The lines up to and including the first that starts with `tag`, line
    /// ends trimmed.
    pub fn until(&mut self, tag: &str) -> Vec<String> {
        use std::io::BufRead;
        let mut out = Vec::new();
        loop {
            let mut l = String::new();
            assert!(
                self.r.read_line(&mut l).unwrap() > 0,
                "connection closed: {out:?}"
            );
            let done = l.starts_with(tag);
            out.push(l.trim_end().to_string());
            if done {
                return out;
            }
        }
    }
}
