//! The README's quick start (`mailvault demo`) keeps working: a real server in a
//! fresh home, provisioning over the API, LMTP delivery, a listing, a backup that
//! verifies, a clean stop.

mod common;

use common::BIN;

#[test]
fn the_quick_start_demo_runs_end_to_end() {
    let out = std::process::Command::new(BIN)
        .arg("demo")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "mailvault ready",
        "-> 250 2.0.0 <team@example.com> delivered",
        "subject Quarterly plan",
        "mailbox 1: 3 messages",
        "completed (3 of 3 accounts)",
        "3 blob(s) read and checked against their digests, 0 problem(s)",
        "Server stopped (exit status: 0)",
        "[CreateMessage]",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

/// The demo's home (from its first line) and the pid of a process still
/// serving it, if any.
fn demo_home_and_server(first_line: &str) -> (std::path::PathBuf, Option<u32>) {
    let home = first_line
        .strip_prefix("== A fresh home: ")
        .unwrap_or_else(|| panic!("unexpected first line {first_line:?}"))
        .trim()
        .to_string();
    let serving = std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        (cmd.contains(&home) && cmd.contains(" serve")).then_some(pid)
    });
    (std::path::PathBuf::from(home), serving)
}

fn wait_gone(home: &std::path::Path, first_line: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, server) = demo_home_and_server(first_line);
        if !home.exists() && server.is_none() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "left behind: home exists {}, server {server:?}",
            home.exists()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn the_demo_cleans_up_after_ctrl_c_and_a_closed_pipe() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    for interrupt in [true, false] {
        let mut child = std::process::Command::new(BIN)
            .arg("demo")
            .env("TMPDIR", tmp.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let (home, _) = demo_home_and_server(&first);
        if interrupt {
            // Ctrl-C once the server runs.
            for l in lines.by_ref() {
                if l.unwrap().contains("mailvault ready") {
                    break;
                }
            }
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            let status = child.wait().unwrap();
            assert_eq!(status.code(), Some(130));
        } else {
            // `mailvault demo | head -1`.
            drop(lines);
            assert!(!child.wait().unwrap().success());
        }
        wait_gone(&home, &first);
    }
}
