//! zmrestore through its Zimbra-named symlink, without a server (the tool runs the
//! restore itself under the home's lock): the seed's "user deleted a bunch of data
//! and noticed hours later", a gap in the redo chain, a damaged session.xml.

mod common;

use common::*;
use std::path::{Path, PathBuf};

const USER: &str = "user@d.test";

impl Env {
    /// Delivers a message with this subject into the user's Inbox; returns its file.
    fn deliver(&self, user: &str, subject: &str, lines: usize) -> PathBuf {
        let path = self.root.join(format!("{subject}.eml"));
        let mut body = format!("From: x@y.test\r\nTo: {user}\r\nSubject: {subject}\r\n\r\n");
        for i in 0..lines {
            body.push_str(&format!("{subject} line {i}\r\n"));
        }
        std::fs::write(&path, body).unwrap();
        self.ok(
            "zmmailbox",
            &["-z", "-m", user, "am", "/Inbox", path.to_str().unwrap()],
        );
        path
    }

    /// (id, subject) of the messages of a folder.
    fn inbox(&self, user: &str) -> Vec<(String, String)> {
        let o = self.ok(
            "zmmailbox",
            &["-z", "-m", user, "s", "--json", "-l", "1000", "in:Inbox"],
        );
        let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
        let mut out: Vec<(String, String)> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["id"].to_string(),
                    m["subject"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        out.sort_by(|a, b| a.1.cmp(&b.1));
        out
    }

    fn subjects(&self, user: &str) -> Vec<String> {
        self.inbox(user).into_iter().map(|(_, s)| s).collect()
    }

    fn mailbox_id(&self, user: &str) -> String {
        let o = self.ok("zmprov", &["ga", user, "mailvaultMailboxId"]);
        o.stdout
            .lines()
            .find_map(|l| l.strip_prefix("mailvaultMailboxId: "))
            .unwrap()
            .trim()
            .to_string()
    }
}

/// The seed's history up to the delete: returns (full label, incremental label,
/// files of the messages present before the delete, deleted subjects).
fn seed(env: &Env) -> (String, String, Vec<PathBuf>, Vec<String>) {
    env.ok("zmprov", &["cd", "d.test"]);
    env.ok("zmprov", &["ca", USER, "secret"]);
    env.ok("zmprov", &["ca", "other@d.test", "secret"]);
    let mut files = Vec::new();
    for i in 0..3 {
        files.push(env.deliver(USER, &format!("a{i}"), 200 + i * 50));
    }
    env.deliver("other@d.test", "o0", 100);
    let full = env.ok("zmbackup", &["-f", "-a", "all", "-sync"]);
    let full = full.stdout.trim().to_string();
    assert!(full.starts_with("full-"), "{full}");
    for i in 0..2 {
        files.push(env.deliver(USER, &format!("b{i}"), 300 + i * 10));
    }
    let incr = env.ok("zmbackup", &["-i", "-sync"]);
    let incr = incr.stdout.trim().to_string();
    assert!(incr.starts_with("incr-"), "{incr}");
    files.push(env.deliver(USER, "c0", 150));
    (full, incr, files, vec!["a1".into(), "b0".into()])
}

/// The user deletes two messages (one directly, one to Trash, then empties Trash).
fn delete_some(env: &Env, deleted: &[String]) {
    let inbox = env.inbox(USER);
    let id = |s: &str| inbox.iter().find(|(_, x)| x == s).unwrap().0.clone();
    env.ok("zmmailbox", &["-z", "-m", USER, "dm", &id(&deleted[1])]);
    env.ok(
        "zmmailbox",
        &["-z", "-m", USER, "mm", &id(&deleted[0]), "/Trash"],
    );
    env.ok("zmmailbox", &["-z", "-m", USER, "ef", "/Trash"]);
}

/// The tstamp of the first delete op of a mailbox, as `YYYY/MM/DD HH:MM:SS.mmm`
/// minus one millisecond (the dump prints local time; the tests run in UTC).
fn time_before_first_delete(env: &Env, mailbox: &str) -> String {
    let dump = env.ok("zmredodump", &["--m", mailbox]).stdout;
    let line = dump
        .lines()
        .find(|l| l.contains("[DeleteItem]") || l.contains("[EmptyFolder]"))
        .unwrap_or_else(|| panic!("no delete op in\n{dump}"));
    let ts = line.split("tstamp: ").nth(1).unwrap();
    let ts = ts.split(" +").next().unwrap(); // strip the zone
    let t = chrono::NaiveDateTime::parse_from_str(ts, "%Y/%m/%d %H:%M:%S%.3f").unwrap();
    (t - chrono::Duration::milliseconds(1))
        .format("%Y/%m/%d %H:%M:%S%.3f")
        .to_string()
}

#[test]
fn zmrestore_seed_scenario_restores_to_before_the_delete_into_a_new_account() {
    let env = Env::new();
    let (full, _incr, files, deleted) = seed(&env);
    let before = env.subjects(USER);
    std::thread::sleep(std::time::Duration::from_millis(20));
    delete_some(&env, &deleted);
    env.deliver(USER, "d0", 120);
    let after = env.subjects(USER);
    for d in &deleted {
        assert!(!after.contains(d));
    }
    let mb = env.mailbox_id(USER);
    let when = time_before_first_delete(&env, &mb);

    // Usage errors first: exit 2.
    assert_eq!(env.zm("zmrestore", &["-a", USER, "-ca"]).code, 2);
    assert_eq!(
        env.zm("zmrestore", &["-a", USER, "-ca", "-pre", "x_", "-ra"])
            .code,
        2
    );
    assert_eq!(
        env.zm(
            "zmrestore",
            &["-a", USER, "-restoreToTime", "yesterday-ish"]
        )
        .code,
        2
    );
    let o = env.ok(
        "zmrestore",
        &[
            "-a",
            USER,
            "-restoreToTime",
            &when,
            "-lb",
            &full,
            "-ca",
            "-pre",
            "restore_",
        ],
    );
    assert!(
        o.stdout.contains("restored as restore_user@d.test"),
        "{}",
        o.stdout
    );
    let restored = env.inbox("restore_user@d.test");
    let subjects: Vec<String> = restored.iter().map(|(_, s)| s.clone()).collect();
    assert_eq!(subjects, before);
    // Byte-exact.
    for (id, subject) in &restored {
        let file = files
            .iter()
            .find(|f| f.file_stem().unwrap().to_str().unwrap() == subject)
            .unwrap();
        let got = env.ok("zmmailbox", &["-z", "-m", "restore_user@d.test", "gm", id]);
        assert_eq!(
            got.stdout.as_bytes(),
            std::fs::read(file).unwrap(),
            "{subject}"
        );
    }
    // The original still lacks the deleted ones.
    assert_eq!(env.subjects(USER), after);

    // Several restore points: the earliest wins and the output says so.
    let o = env.ok(
        "zmrestore",
        &[
            "-a",
            USER,
            "-restoreToTime",
            &when,
            "-restoreToTime",
            "2099/01/01 00:00:00",
            "-ca",
            "-pre",
            "two_",
        ],
    );
    assert!(
        o.stdout.contains("using restore to time of"),
        "{}",
        o.stdout
    );
    assert_eq!(env.subjects("two_user@d.test"), before);

    // -c: a failed account is listed at the end, the others are restored.
    let o = env.zm(
        "zmrestore",
        &[
            "-a",
            "nobody@d.test",
            "other@d.test",
            "-c",
            "-ca",
            "-pre",
            "c_",
        ],
    );
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(o.stderr.contains("nobody@d.test"), "{}", o.stderr);
    assert_eq!(env.subjects("c_other@d.test"), ["o0"]);

    // In place: the account itself goes back to that time, in a new mailbox.
    let o = env.ok("zmrestore", &["-a", USER, "-restoreToTime", &when]);
    assert!(
        o.stdout.contains(&format!("replacing mailbox {mb}")),
        "{}",
        o.stdout
    );
    assert_eq!(env.subjects(USER), before);
    assert_ne!(env.mailbox_id(USER), mb);
    assert_eq!(env.subjects("other@d.test"), ["o0"]);
    for (id, subject) in env.inbox(USER) {
        let file = files
            .iter()
            .find(|f| f.file_stem().unwrap().to_str().unwrap() == subject)
            .unwrap();
        let got = env.ok("zmmailbox", &["-z", "-m", USER, "gm", &id]);
        assert_eq!(
            got.stdout.as_bytes(),
            std::fs::read(file).unwrap(),
            "{subject}"
        );
    }
    // Mail keeps arriving, and the next incremental takes a full of the restored
    // mailbox first (its history starts at the restore).
    env.deliver(USER, "e0", 40);
    let o = env.ok("zmbackup", &["-i", "-a", "all", "-sync"]);
    let labels: Vec<&str> = o.stdout.split_whitespace().collect();
    assert!(
        labels.len() == 2 && labels[0].starts_with("full-") && labels[1].starts_with("incr-"),
        "{}",
        o.stdout
    );
    let mut expected = before.clone();
    expected.push("e0".into());
    expected.sort();
    // Restoring that account again to the latest point gives it all back.
    env.ok("zmrestore", &["-a", USER]);
    assert_eq!(env.subjects(USER), expected);
    // A deleted account needs -ra, which recreates its entry.
    env.ok("zmprov", &["da", "other@d.test"]);
    let o = env.zm("zmrestore", &["-a", "other@d.test"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("-ra"), "{}", o.stderr);
    env.ok("zmrestore", &["-a", "other@d.test", "-ra"]);
    assert_eq!(env.subjects("other@d.test"), ["o0"]);
}

#[test]
fn zmrestore_reports_a_redo_gap_and_a_damaged_session() {
    let env = Env::new();
    let (full, incr, _files, _deleted) = seed(&env);
    // A second incremental, so the first one's logs are in the middle of the chain.
    env.deliver(USER, "e0", 50);
    env.ok("zmbackup", &["-i", "-sync"]);
    let target = env.home.join("backup");
    let logs: Vec<PathBuf> = walk(&target.join("sessions").join(&incr))
        .into_iter()
        .filter(|p| {
            p.parent().unwrap().ends_with("redologs") && p.extension().is_some_and(|e| e == "log")
        })
        .collect();
    assert!(!logs.is_empty(), "no redo logs in {incr}");
    // Incrementals copy the logs: the home's archive still has them; a purged
    // archive plus a damaged target leaves a hole in the chain.
    for l in &logs {
        std::fs::remove_file(l).unwrap();
        let archived = env
            .home
            .join("redolog/archive")
            .join(l.file_name().unwrap());
        let _ = std::fs::remove_file(archived);
    }
    let o = env.zm(
        "zmrestore",
        &["-a", USER, "-lb", &full, "-ca", "-pre", "gap_"],
    );
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr.contains("Found gap in redo log sequence"),
        "{}",
        o.stderr
    );
    // The failed restore left no account behind.
    assert_ne!(env.zm("zmprov", &["ga", "gap_user@d.test"]).code, 0);
    let o = env.ok(
        "zmrestore",
        &[
            "-a",
            USER,
            "-lb",
            &full,
            "--ignoreRedoErrors",
            "-ca",
            "-pre",
            "gap_",
        ],
    );
    assert!(o.stderr.contains("skipped"), "{}", o.stderr);
    // At least the full's messages are there.
    let got = env.subjects("gap_user@d.test");
    for s in ["a0", "a1", "a2"] {
        assert!(got.contains(&s.to_string()), "{got:?}");
    }

    // A 0-byte session.xml of the full: a clear error naming the file.
    let xml = target.join("sessions").join(&full).join("session.xml");
    std::fs::write(&xml, b"").unwrap();
    let o = env.zm(
        "zmrestore",
        &["-a", USER, "-lb", &full, "-ca", "-pre", "bad_"],
    );
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr.contains(&format!("{full}/session.xml")),
        "{}",
        o.stderr
    );
}

#[test]
fn zmrestore_runs_in_a_running_server() {
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
        let (full, _incr, _files, deleted) = seed(&env);
        let before = env.subjects(USER);
        std::thread::sleep(std::time::Duration::from_millis(20));
        delete_some(&env, &deleted);
        let mb = env.mailbox_id(USER);
        let when = time_before_first_delete(&env, &mb);
        let o = env.ok(
            "zmrestore",
            &[
                "-a",
                USER,
                "-restoreToTime",
                &when,
                "-lb",
                &full,
                "-ca",
                "-pre",
                "srv_",
                "--json",
            ],
        );
        let j: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
        assert_eq!(j["accounts"][0]["restored_as"], "srv_user@d.test", "{j}");
        assert_eq!(env.subjects("srv_user@d.test"), before);
        // The server kept serving: the others work, new mail arrives.
        env.deliver("other@d.test", "o1", 10);
        assert_eq!(env.subjects("other@d.test"), ["o0", "o1"]);
        // Usage errors are still caught before the request is sent.
        assert_eq!(env.zm("zmrestore", &["-a", USER, "-ca"]).code, 2);
        // In place, while the server runs: only this account is swapped.
        let o = env.ok("zmrestore", &["-a", USER, "-restoreToTime", &when]);
        assert!(
            o.stdout.contains(&format!("replacing mailbox {mb}")),
            "{}",
            o.stdout
        );
        assert_eq!(env.subjects(USER), before);
        env.deliver(USER, "after-restore", 10);
        env.deliver("other@d.test", "o2", 10);
        assert_eq!(env.subjects("other@d.test"), ["o0", "o1", "o2"]);
        assert!(env.subjects(USER).contains(&"after-restore".to_string()));
    });
    env.ok("zmcontrol", &["stop"]);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
