//! zmbackup / zmbackupquery / zmbackupabort / `mailvault backup verify` through
//! their Zimbra-named symlinks, without a server (the tool runs the backup itself).

mod common;

use common::*;
use std::path::Path;

fn is_label(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|stamp| {
            stamp.len() == 19
                && stamp.as_bytes()[8] == b'.'
                && stamp.as_bytes()[15] == b'.'
                && stamp.bytes().filter(|b| b.is_ascii_digit()).count() == 17
        })
}

#[test]
fn zmbackup_query_verify_and_delete_through_symlinks() {
    let env = Env::new();
    env.ok("zmprov", &["cd", "d.test"]);
    for u in ["a", "b"] {
        env.ok("zmprov", &["ca", &format!("{u}@d.test"), "secret"]);
    }
    let msg = env.root.join("m.eml");
    let mut body = String::from("From: x@y.test\r\nSubject: backup me\r\n\r\n");
    for i in 0..2000 {
        body.push_str(&format!("line {i} of the message body\r\n"));
    }
    std::fs::write(&msg, body).unwrap();
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

    // Usage errors: exit 2, nothing written.
    assert_eq!(env.zm("zmbackup", &["-a", "all"]).code, 2);
    assert_eq!(env.zm("zmbackup", &["-f", "--zip", "--zipStore"]).code, 2);
    assert_eq!(
        env.zm("zmbackup", &["-f", "--exclude", "Everything"]).code,
        2
    );
    assert_eq!(env.zm("zmbackup", &["-f", "-a", "nobody@d.test"]).code, 2);

    // A full backup: the label on stdout, the summary on stderr.
    let o = env.ok("zmbackup", &["-f", "-a", "all", "-sync"]);
    let full = o.stdout.trim().to_string();
    assert!(is_label(&full, "full"), "{:?}", o.stdout);
    assert!(
        o.stderr
            .contains(&format!("{full}: completed (2 of 2 accounts")),
        "{}",
        o.stderr
    );
    env.ok(
        "zmmailbox",
        &[
            "-z",
            "-m",
            "b@d.test",
            "am",
            "/Inbox",
            msg.to_str().unwrap(),
        ],
    );
    let o = env.ok("zmbackup", &["-i", "-sync"]);
    let incr = o.stdout.trim().to_string();
    assert!(is_label(&incr, "incr"), "{:?}", o.stdout);

    // zmbackupquery: the original's layout, newest first.
    let q = env.ok("zmbackupquery", &[]).stdout;
    let blocks: Vec<&str> = q.split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "{q}");
    let lines: Vec<&str> = blocks[1].lines().collect();
    assert_eq!(lines[0], format!("Label:   {full}"));
    assert_eq!(lines[1], "Type:    full");
    assert_eq!(lines[2], "Status:  completed");
    assert!(
        lines[3].starts_with("Started: ") && lines[3].contains(" UTC")
            || lines[3].contains("+00:00"),
        "{}",
        lines[3]
    );
    assert!(lines[4].starts_with("Ended:   "), "{}", lines[4]);
    assert!(
        lines[5].starts_with("Redo log sequence range: "),
        "{}",
        lines[5]
    );
    assert_eq!(lines[6], "Number of accounts: 2");
    assert!(blocks[0].starts_with(&format!(
        "Label:   {incr}\nType:    incremental\nStatus:  completed\n"
    )));
    let q = env
        .ok("zmbackupquery", &["--type", "full", "-lb", &full])
        .stdout;
    assert_eq!(q.matches("Label:").count(), 1);
    let q = env.ok("zmbackupquery", &["-a", "a@d.test"]).stdout;
    assert!(q.starts_with("Account: a@d.test\n"), "{q}");
    assert!(q.contains("  Acct ID: "), "{q}");
    let j: serde_json::Value =
        serde_json::from_str(&env.ok("zmbackupquery", &["--json", "-v"]).stdout).unwrap();
    assert_eq!(j["sessions"][0]["label"], incr.as_str());
    assert_eq!(j["sessions"][1]["accounts"].as_array().unwrap().len(), 2);
    assert_eq!(env.zm("zmbackupquery", &["--from", "yesterday"]).code, 2);

    // verify, then damage one blob and see it named.
    let v = env.run(Path::new(BIN), &["backup", "verify", "--read-data"]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    assert!(v.stdout.contains("No problems found."), "{}", v.stdout);
    let packs = env.home.join("backup/packs");
    let zip = walk(&packs)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "zip"))
        .unwrap();
    let mut bytes = std::fs::read(&zip).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x01; // inside the only blob's data
    std::fs::write(&zip, bytes).unwrap();
    let v = env.run(Path::new(BIN), &["backup", "verify", "--read-data"]);
    assert_eq!(v.code, 1, "{}", v.stdout);
    // Only a's full references it (b got the message after the full).
    assert!(v.stdout.contains("affects: a@d.test\n"), "{}", v.stdout);
    assert!(v.stdout.contains("is damaged"), "{}", v.stdout);
    let v = env.run(
        Path::new(BIN),
        &["backup", "verify", "--read-data-subset", "100%", "--json"],
    );
    assert_eq!(v.code, 1);
    let j: serde_json::Value = serde_json::from_str(&v.stdout).unwrap();
    assert_eq!(j["problems"].as_array().unwrap().len(), 1);

    // zmbackupabort: only running backups.
    assert_eq!(env.zm("zmbackupabort", &["-lb", "nonsense"]).code, 2);
    let a = env.zm("zmbackupabort", &["-lb", &full]);
    assert_eq!(a.code, 2, "{}", a.stderr);
    assert!(a.stderr.contains("not running"), "{}", a.stderr);

    // -del with --dry-run: the latest full and its incremental stay, with reasons.
    let d = env.ok("zmbackup", &["-del", "0d", "--dry-run"]);
    assert!(
        d.stdout.contains(&format!(
            "would keep   {full}: the latest full backup of a@d.test, b@d.test"
        )),
        "{}",
        d.stdout
    );
    assert!(
        d.stdout.contains(&format!(
            "would keep   {incr}: needed to roll {full} (kept) forward"
        )),
        "{}",
        d.stdout
    );
    assert_eq!(env.zm("zmbackup", &["-del", "1w"]).code, 2);

    // Free space below zimbraBackupMinFreeSpace: refused with the original's text.
    env.ok("zmprov", &["mcf", "zimbraBackupMinFreeSpace", "100%"]);
    let o = env.zm("zmbackup", &["-f", "-a", "all", "-sync"]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr
            .contains("Backup cannot start because free space is less than 100%"),
        "{}",
        o.stderr
    );
}

/// An incremental run that first gives never-backed-up accounts a full counts
/// each session's own accounts (`account 2/2` twice), not both sessions' sum.
#[test]
fn progress_lines_count_each_sessions_accounts() {
    let env = Env::new();
    env.ok("zmprov", &["cd", "d.test"]);
    for u in ["a", "b"] {
        env.ok("zmprov", &["ca", &format!("{u}@d.test"), "secret"]);
    }
    let o = env.ok("zmbackup", &["-i", "-a", "all", "-sync"]);
    let labels: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(labels.len(), 2, "{}", o.stdout);
    assert!(is_label(labels[0], "full") && is_label(labels[1], "incr"));
    for l in &labels {
        for line in [
            format!("{l}: 2 accounts\n"),
            format!("{l}: account 1/2 a@d.test: done ("),
            format!("{l}: account 2/2 b@d.test: done ("),
        ] {
            assert!(o.stderr.contains(&line), "{line:?} in:\n{}", o.stderr);
        }
    }
    assert!(!o.stderr.contains("/4"), "{}", o.stderr);
}

#[test]
fn zmbackup_runs_in_the_server_asynchronously_or_with_sync() {
    let env = Env::new();
    let admin = free_port();
    let lmtp = free_port();
    let o = env.run(
        Path::new(BIN),
        &[
            "localconfig",
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
    assert_eq!(o.code, 0, "{}", o.stderr);
    env.ok("zmcontrol", &["start"]);
    let result = std::panic::catch_unwind(|| {
        env.ok("zmprov", &["cd", "d.test"]);
        env.ok("zmprov", &["ca", "a@d.test", "secret"]);
        // Asynchronous: the label at once, the server does the work.
        let o = env.ok("zmbackup", &["-f", "-a", "all"]);
        let full = o.stdout.trim().to_string();
        assert!(is_label(&full, "full"), "{:?}", o.stdout);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let q = env.ok("zmbackupquery", &["-lb", &full]).stdout;
            assert!(q.contains("Status:  "), "{q}");
            if q.contains("Status:  completed") {
                break;
            }
            assert!(q.contains("Status:  in progress"), "{q}");
            assert!(std::time::Instant::now() < deadline, "{q}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        // -sync: follows the run through the API, exit code from its outcome.
        let o = env.ok("zmbackup", &["-i", "-sync", "--json"]);
        let j: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
        assert_eq!(j["sessions"][0]["type"], "incremental");
        assert_eq!(j["sessions"][0]["status"], "completed");
        let v = env.run(Path::new(BIN), &["backup", "verify", "--read-data"]);
        assert_eq!(v.code, 0, "{}", v.stdout);
        // A new account: a full for it, then an incremental of both; progress
        // counts per session (never out of the 3 both sessions hold together).
        env.ok("zmprov", &["ca", "b@d.test", "secret"]);
        let o = env.ok("zmbackup", &["-i", "-sync"]);
        assert_eq!(o.stdout.lines().count(), 2, "{}", o.stdout);
        assert!(!o.stderr.contains("/3"), "{}", o.stderr);
        // A listing writes nothing: it works beside the running server.
        let o = env.ok("zmrestoreldap", &["-lbs"]);
        assert!(o.stdout.lines().any(|l| l == full), "{}", o.stdout);
    });
    env.ok("zmcontrol", &["stop"]);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
