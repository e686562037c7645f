//! Helpers of the schedule/report/disk tests: a real SMTP listener (aiosmtpd,
//! delivering into a Maildir), the server started with free ports, polling.
#![allow(dead_code)]

use crate::common::*;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Python that has aiosmtpd (scripts/install-test-deps installs it).
fn python_with_aiosmtpd() -> String {
    for py in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(py)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return py.to_string();
        }
    }
    panic!(
        "aiosmtpd is not installed: run scripts/install-test-deps (apt-get install python3-aiosmtpd)"
    );
}

/// A received message.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// A real SMTP listener on 127.0.0.1 writing each message into a Maildir.
pub struct Smtp {
    child: Child,
    pub port: u16,
    pub maildir: PathBuf,
}

impl Smtp {
    pub fn start(maildir: &Path, port: u16) -> Smtp {
        let child = Command::new(python_with_aiosmtpd())
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting aiosmtpd");
        let mut smtp = Smtp {
            child,
            port,
            maildir: maildir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                smtp.child.try_wait().unwrap().is_none(),
                "aiosmtpd exited at start"
            );
            assert!(Instant::now() < deadline, "aiosmtpd did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        smtp
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        let dir = self.maildir.join("new");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .map(|t| parse_mail(&t))
            .collect()
    }

    /// Waits until `pred` holds for the messages; returns them.
    pub fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&[Mail]) -> bool) -> Vec<Mail> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let m = self.messages();
            if pred(&m) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; received: {:#?}",
                m.iter().map(|m| &m.subject).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_mail(text: &str) -> Mail {
    let text = text.replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let unfolded = head.replace("\n ", " ").replace("\n\t", " ");
    let header = |name: &str| {
        unfolded
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    let qp = header("Content-Transfer-Encoding").eq_ignore_ascii_case("quoted-printable");
    Mail {
        from: header("From"),
        to: header("To"),
        subject: header("Subject"),
        body: if qp {
            decode_qp(body)
        } else {
            body.to_string()
        },
    }
}

fn decode_qp(s: &str) -> String {
    let s = s.replace("=\n", "");
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'='
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Free ports for the server, set in the local config.
pub fn configure_ports(env: &Env) {
    let (admin, lmtp) = (free_port(), free_port());
    lc(
        env,
        &[
            &format!("admin_bind_port={admin}"),
            &format!("lmtp_bind_port={lmtp}"),
            &format!("imap_bind_port={}", free_port()),
            &format!("imaps_bind_port={}", free_port()),
        ],
    );
}

/// `mailvault localconfig -e k=v ...`
pub fn lc(env: &Env, pairs: &[&str]) {
    let mut args = vec!["localconfig"];
    for p in pairs {
        args.push("-e");
        args.push(p);
    }
    let o = env.run(Path::new(BIN), &args);
    assert_eq!(o.code, 0, "{}", o.stderr);
}

/// Report email settings pointing at the test's SMTP listener.
pub fn configure_reports(env: &Env, smtp_port: u16) {
    env.ok(
        "zmprov",
        &[
            "mcf",
            "zimbraBackupReportEmailRecipients",
            "admin@d.test",
            "zimbraBackupReportEmailSender",
            "backup@d.test",
            "zimbraSmtpHostname",
            "127.0.0.1",
            "zimbraSmtpPort",
            &smtp_port.to_string(),
        ],
    );
}

/// Runs `f` with the server started; stops it afterwards even if `f` panics.
pub fn with_server<T>(env: &Env, f: impl FnOnce() -> T) -> T {
    env.ok("zmcontrol", &["start"]);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    env.ok("zmcontrol", &["stop"]);
    match result {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e),
    }
}

pub fn mailvault(env: &Env, args: &[&str]) -> Out {
    env.run(Path::new(BIN), args)
}

/// Keeps the disk monitor quiet about the real disk (its fill level is not the
/// test's business): no percentage reaches 101.
pub fn quiet_disk_monitor(env: &Env) {
    lc(
        env,
        &[
            "zmdisklog_warn_threshold=101",
            "zmdisklog_critical_threshold=101",
        ],
    );
}
