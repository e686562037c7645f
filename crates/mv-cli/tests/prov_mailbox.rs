//! `mailvault prov` / `zmprov` and `mailvault mailbox` / `zmmailbox`, driven through
//! the real binary in a temporary home with no server running (each call runs the
//! operation in-process), and through symlinks named after the Zimbra tools with
//! Zimbra's single-dash long options.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_mailvault");

struct Out {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Out {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// Asserts success and returns stdout.
    fn ok(self) -> String {
        assert_eq!(
            self.code,
            0,
            "stderr: {}\nstdout: {}",
            self.stderr,
            self.text()
        );
        self.text()
    }
    /// Asserts an operation failure: exit 1 with `ERROR: ...`.
    fn failed(&self) {
        assert_eq!(self.code, 1, "stderr: {}", self.stderr);
        assert!(
            self.stderr.starts_with("ERROR: "),
            "stderr: {}",
            self.stderr
        );
    }
}

/// A temporary home, and a directory of symlinks named zmprov / zmmailbox.
struct Env {
    home: tempfile::TempDir,
    links: tempfile::TempDir,
    files: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let links = tempfile::tempdir().unwrap();
        for name in ["zmprov", "zmmailbox"] {
            std::os::unix::fs::symlink(BIN, links.path().join(name)).unwrap();
        }
        let env = Env {
            home: tempfile::tempdir().unwrap(),
            links,
            files: tempfile::tempdir().unwrap(),
        };
        let init = Command::new(BIN)
            .arg("init")
            .env("MAILVAULT_HOME", env.home.path())
            .output()
            .unwrap();
        assert!(init.status.success(), "{init:?}");
        env
    }

    fn run_program(&self, program: &Path, args: &[&str], stdin: Option<&str>) -> Out {
        let mut child = Command::new(program)
            .args(args)
            .env("MAILVAULT_HOME", self.home.path())
            .env("MAILVAULT_LOG", "error")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        let out = child.wait_with_output().unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `mailvault --home HOME prov ARGS`.
    fn prov(&self, args: &[&str]) -> Out {
        let home = self.home.path().to_str().unwrap();
        let mut all = vec!["--home", home, "prov"];
        all.extend_from_slice(args);
        self.run_program(Path::new(BIN), &all, None)
    }

    /// `zmprov ARGS` (through the symlink).
    fn zmprov(&self, args: &[&str]) -> Out {
        self.run_program(&self.links.path().join("zmprov"), args, None)
    }

    /// `zmmailbox -z -m USER ARGS` (through the symlink).
    fn zmmailbox(&self, user: &str, args: &[&str]) -> Out {
        let mut all = vec!["-z", "-m", user];
        all.extend_from_slice(args);
        self.run_program(&self.links.path().join("zmmailbox"), &all, None)
    }

    fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.files.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    }
}

/// The value of `attr: value` in zmprov output (first one).
fn attr(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

#[test]
fn prov_accounts_cos_and_lists() {
    let env = Env::new();
    assert!(is_uuid(env.prov(&["cd", "example.com"]).ok().trim()));
    let small = env.prov(&["cc", "small", "zimbraMailQuota", "5000"]).ok();
    assert!(is_uuid(small.trim()));
    let small2 = env
        .prov(&["copyCos", "small", "small2"])
        .ok()
        .trim()
        .to_string();
    assert!(is_uuid(&small2));
    assert_eq!(env.prov(&["gac"]).ok(), "default\nsmall\nsmall2\n");
    assert_eq!(
        attr(&env.prov(&["gc", "small2"]).ok(), "zimbraMailQuota").as_deref(),
        Some("5000")
    );

    let alice_id = env
        .prov(&[
            "ca",
            "alice@example.com",
            "pw",
            "zimbraMailQuota",
            "1000000",
            "displayName",
            "Alice A",
        ])
        .ok();
    assert!(is_uuid(alice_id.trim()));
    env.prov(&["CreateAccount", "bob@example.com", "pw"]).ok();

    // ga: `# name`, then sorted `attr: value` lines.
    let ga = env.prov(&["ga", "alice@example.com"]).ok();
    let lines: Vec<&str> = ga.lines().collect();
    assert_eq!(lines[0], "# name alice@example.com");
    let names: Vec<String> = lines[1..]
        .iter()
        .map(|l| l.split(": ").next().unwrap().to_lowercase())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "{ga}");
    assert_eq!(attr(&ga, "zimbraId").as_deref(), Some(alice_id.trim()));
    assert_eq!(attr(&ga, "mail").as_deref(), Some("alice@example.com"));
    assert_eq!(attr(&ga, "displayName").as_deref(), Some("Alice A"));
    assert_eq!(attr(&ga, "zimbraMailQuota").as_deref(), Some("1000000"));
    assert_eq!(attr(&ga, "zimbraAccountStatus").as_deref(), Some("active"));
    assert!(attr(&ga, "zimbraCOSId").is_some() && attr(&ga, "mailvaultMailboxId").is_some());
    // With attribute names, only those.
    let only = env
        .prov(&["ga", "alice@example.com", "zimbraId", "MAIL"])
        .ok();
    assert_eq!(
        only,
        format!(
            "# name alice@example.com\nmail: alice@example.com\nzimbraId: {}\n",
            alice_id.trim()
        )
    );

    assert_eq!(
        env.prov(&["gaa"]).ok(),
        "alice@example.com\nbob@example.com\n"
    );
    assert_eq!(
        env.prov(&["ma", "alice@example.com", "displayName", "Alice B"])
            .ok(),
        ""
    );
    env.prov(&["aaa", "alice@example.com", "al@example.com"])
        .ok();
    let ga = env
        .prov(&["ga", "al@example.com", "displayName", "zimbraMailAlias"])
        .ok();
    assert_eq!(attr(&ga, "displayName").as_deref(), Some("Alice B"));
    assert_eq!(
        attr(&ga, "zimbraMailAlias").as_deref(),
        Some("al@example.com")
    );

    // sac: bob now inherits small2's quota.
    env.prov(&["sac", "bob@example.com", "small2"]).ok();
    let ga = env
        .prov(&["ga", "bob@example.com", "zimbraCOSId", "zimbraMailQuota"])
        .ok();
    assert_eq!(attr(&ga, "zimbraCOSId").as_deref(), Some(small2.as_str()));
    assert_eq!(attr(&ga, "zimbraMailQuota").as_deref(), Some("5000"));

    // ra keeps the mailbox.
    let before = attr(&env.prov(&["gmi", "bob@example.com"]).ok(), "mailboxId").unwrap();
    env.prov(&["ra", "bob@example.com", "robert@example.com"])
        .ok();
    let gmi = env.prov(&["gmi", "robert@example.com"]).ok();
    assert_eq!(attr(&gmi, "mailboxId"), Some(before));
    assert_eq!(attr(&gmi, "quotaUsed").as_deref(), Some("0"));
    let gone = env.prov(&["ga", "bob@example.com"]);
    gone.failed();
    assert!(gone.stderr.contains("no such account"), "{}", gone.stderr);

    // Distribution lists.
    assert!(is_uuid(env.prov(&["cdl", "list@example.com"]).ok().trim()));
    env.prov(&[
        "adlm",
        "list@example.com",
        "alice@example.com",
        "ext@other.org",
    ])
    .ok();
    let gdl = env.prov(&["gdl", "list@example.com"]).ok();
    assert!(
        gdl.starts_with("# distributionList list@example.com memberCount=2\n"),
        "{gdl}"
    );
    let members: Vec<&str> = gdl
        .lines()
        .filter_map(|l| l.strip_prefix("zimbraMailForwardingAddress: "))
        .collect();
    assert_eq!(members, ["alice@example.com", "ext@other.org"]);
    env.prov(&["rdlm", "list@example.com", "ext@other.org"])
        .ok();
    assert_eq!(env.prov(&["gadl"]).ok(), "list@example.com\n");

    // Config, --json.
    env.prov(&["mcf", "zimbraBackupMode", "Auto-Grouped"]).ok();
    assert_eq!(
        env.prov(&["gacf", "zimbraBackupMode"]).ok(),
        "zimbraBackupMode: Auto-Grouped\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.prov(&["--json", "ga", "alice@example.com"]).ok()).unwrap();
    assert_eq!(json["email"], "alice@example.com");

    // Usage errors exit 2, without touching anything.
    let bad = env.prov(&["frobnicate"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("createAccount(ca)"), "{}", bad.stderr);
    assert_eq!(env.prov(&["ca", "x@example.com"]).code, 2);
    assert_eq!(
        env.prov(&["ma", "alice@example.com", "displayName"]).code,
        2
    );

    // No command: one command per line from stdin, in one process.
    let home = env.home.path().to_str().unwrap();
    let batch = env.run_program(
        Path::new(BIN),
        &["--home", home, "prov"],
        Some("# accounts\ngaa\n\nga nobody@example.com\nga alice@example.com 'zimbraMailAlias'\n"),
    );
    assert_eq!(batch.code, 1, "{}", batch.stderr);
    assert_eq!(
        batch.text(),
        "alice@example.com\nrobert@example.com\n# name alice@example.com\nzimbraMailAlias: al@example.com\n"
    );
    assert!(
        batch
            .stderr
            .contains("ERROR: no such account: nobody@example.com"),
        "{}",
        batch.stderr
    );
}

const MSG1: &[u8] = b"From: Bob Sender <bob@example.org>\r\nTo: u@example.com\r\nSubject: Hello there\r\n\
Date: Fri, 19 Nov 2010 13:55:08 +0000\r\nMessage-ID: <1@example.org>\r\n\r\nBody one\r\n\x01binary\xff\r\n";
const MSG2: &[u8] = b"From: carol@example.net\r\nTo: u@example.com\r\nSubject: Quarterly report\r\n\r\nBody two\r\n";

fn ics(sequence: u32, summary: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:evt-1@example.com\r\n\
         DTSTAMP:20240101T100000Z\r\nDTSTART:20240105T090000Z\r\nDTEND:20240105T100000Z\r\n\
         SEQUENCE:{sequence}\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

/// `num: N, more: M` and the ids of a search table.
fn search(env: &Env, user: &str, query: &str) -> (String, Vec<String>) {
    let out = env
        .zmmailbox(user, &["s", "-t", "message", "-l", "100", query])
        .ok();
    let head = out.lines().next().unwrap().to_string();
    let ids = out
        .lines()
        .skip(4)
        .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
        .collect();
    (head, ids)
}

#[test]
fn zimbra_names_mailbox_and_calendar() {
    let env = Env::new();
    let u = "u@example.com";
    env.zmprov(&["-l", "cd", "example.com"]).ok();
    env.zmprov(&["-l", "ca", u, "pw", "zimbraMailQuota", "10000000"])
        .ok();
    // Single-dash long option through the Zimbra name.
    let gmi: serde_json::Value =
        serde_json::from_str(&env.zmprov(&["-l", "-json", "gmi", u]).ok()).unwrap();
    assert_eq!(gmi["quotaUsed"], 0);

    let work = env.zmmailbox(u, &["cf", "/Work"]).ok().trim().to_string();
    assert!(work.parse::<u32>().is_ok(), "{work}");
    let m1 = env.file("m1.eml", MSG1);
    let m2 = env.file("m2.eml", MSG2);
    let id1 = env
        .zmmailbox(u, &["am", "/Inbox", m1.to_str().unwrap()])
        .ok()
        .trim()
        .to_string();
    let id2 = env
        .zmmailbox(
            u,
            &[
                "addMessage",
                "-F",
                "u",
                "-d",
                "2010/11/19 13:55:08",
                "/Work",
                m2.to_str().unwrap(),
            ],
        )
        .ok()
        .trim()
        .to_string();
    let used: u64 = attr(&env.zmprov(&["gmi", u]).ok(), "quotaUsed")
        .unwrap()
        .parse()
        .unwrap();
    assert!(used >= (MSG1.len() + MSG2.len()) as u64, "quotaUsed {used}");

    // gaf: Id, View, Unread, Msg Count, Path.
    let gaf = env.zmmailbox(u, &["gaf"]).ok();
    let row = |path: &str| -> Vec<String> {
        gaf.lines()
            .find(|l| l.ends_with(&format!("  {path}")))
            .unwrap_or_else(|| panic!("{path} in {gaf}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(row("/Work"), [work.as_str(), "mess", "1", "1", "/Work"]);
    assert_eq!(row("/Inbox"), ["2", "mess", "0", "1", "/Inbox"]);
    assert_eq!(row("/Calendar")[1], "appo");

    // Search.
    let out = env.zmmailbox(u, &["search", "in:inbox"]).ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "num: 1, more: false");
    assert!(
        lines[2]
            .split_whitespace()
            .eq(["Id", "Type", "From", "Subject", "Date"]),
        "{out}"
    );
    assert!(
        lines[4].contains("Bob Sender") && lines[4].contains("Hello there"),
        "{out}"
    );
    assert_eq!(
        search(&env, u, "from:carol"),
        ("num: 1, more: false".into(), vec![id2.clone()])
    );
    assert_eq!(search(&env, u, "subject:hello").1, [id1.as_str()]);
    assert_eq!(search(&env, u, "is:unread").1, [id2.as_str()]);
    // Conversations list their messages; other item types are named as such.
    let conv = env
        .zmmailbox(u, &["s", "-t", "conversation", "subject:hello"])
        .ok();
    assert!(conv.contains(&id1), "{conv}");
    for (t, hint) in [
        ("appointment", "/Calendar?fmt=ics"),
        ("task", "/Calendar?fmt=ics"),
        ("contact", "/Contacts?fmt=vcf"),
    ] {
        let o = env.zmmailbox(u, &["s", "-t", t, "lunch"]);
        o.failed();
        assert!(
            o.stderr.contains(&format!(
                "search -t {t}: only messages are searched here; -t takes message, conversation"
            )) && o.stderr.contains(hint),
            "{}",
            o.stderr
        );
    }
    let o = env.zmmailbox(u, &["s", "-t", "blob", "lunch"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr
            .contains("search -t blob: unknown type; -t takes message, conversation"),
        "{}",
        o.stderr
    );
    let s2 = env.zmmailbox(u, &["s", "in:work"]).ok();
    assert!(s2.contains("11/19/10 13:55"), "-d sets the date: {s2}");
    let json: serde_json::Value =
        serde_json::from_str(&env.zmmailbox(u, &["-json", "s", "in:work"]).ok()).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);

    // gm: the raw message, byte for byte.
    assert_eq!(env.zmmailbox(u, &["gm", &id1]).stdout, MSG1);

    // mm, mrm, dm, ef.
    env.zmmailbox(u, &["mm", &id1, "/Work"]).ok();
    assert_eq!(search(&env, u, "in:inbox").0, "num: 0, more: false");
    assert_eq!(search(&env, u, "in:work").0, "num: 2, more: false");
    env.zmmailbox(u, &["mrm", &id2, "1"]).ok();
    assert_eq!(search(&env, u, "is:unread").0, "num: 0, more: false");
    env.zmmailbox(u, &["dm", &id2]).ok();
    assert_eq!(search(&env, u, "in:work").1, [id1.as_str()]);
    env.zmmailbox(u, &["ef", "/Work"]).ok();
    assert_eq!(search(&env, u, "in:work").0, "num: 0, more: false");

    // Calendar: a newer SEQUENCE replaces; gru round-trips.
    let a = env.file("a.ics", ics(0, "First version").as_bytes());
    let b = env.file("b.ics", ics(1, "Second version").as_bytes());
    let first = env
        .zmmailbox(u, &["pru", "/Calendar", a.to_str().unwrap()])
        .ok();
    assert!(first.contains("1 new"), "{first}");
    let second = env
        .zmmailbox(u, &["postRestURL", "/Calendar", b.to_str().unwrap()])
        .ok();
    assert!(second.contains("1 replacing"), "{second}");
    let exported = env.zmmailbox(u, &["gru", "/Calendar"]).ok();
    assert_eq!(exported.matches("BEGIN:VEVENT").count(), 1, "{exported}");
    assert!(exported.contains("SUMMARY:Second version") && !exported.contains("First version"));
    let out_file = env.files.path().join("out.ics");
    env.zmmailbox(
        u,
        &["gru", "-o", out_file.to_str().unwrap(), "/Calendar?fmt=ics"],
    )
    .ok();
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), exported);
    // The export imports back as the same version (a refresh): still one event, and
    // exporting again gives the same calendar. The older file is kept out.
    let again = env
        .zmmailbox(u, &["pru", "/Calendar", out_file.to_str().unwrap()])
        .ok();
    assert!(again.contains("1 replacing"), "{again}");
    assert_eq!(env.zmmailbox(u, &["gru", "/Calendar"]).ok(), exported);
    let old = env
        .zmmailbox(u, &["pru", "/Calendar", a.to_str().unwrap()])
        .ok();
    assert!(
        old.contains("1 kept") && old.contains("evt-1@example.com"),
        "{old}"
    );
    let gaf = env.zmmailbox(u, &["gaf"]).ok();
    assert!(
        gaf.lines()
            .any(|l| l.ends_with("  /Calendar") && l.split_whitespace().nth(3) == Some("1")),
        "{gaf}"
    );

    // tgz (tests/tgz_cli.rs has the round trips): a calendar file is not an archive.
    let tgz = env.zmmailbox(
        u,
        &["pru", "//?fmt=tgz&resolve=replace", a.to_str().unwrap()],
    );
    tgz.failed();
    assert!(tgz.stderr.contains("not a gzip file"), "{}", tgz.stderr);

    // Errors.
    env.zmmailbox("nobody@example.com", &["gaf"]).failed();
    env.zmprov(&["ga", "nobody@example.com"]).failed();
    assert_eq!(env.zmmailbox(u, &["frobnicate"]).code, 2);
    assert_eq!(env.zmmailbox(u, &["gm", "not-a-number"]).code, 2);
    let no_mailbox = env.run_program(&env.links.path().join("zmmailbox"), &["-z", "gaf"], None);
    assert_eq!(no_mailbox.code, 2, "{}", no_mailbox.stderr);
    env.zmmailbox(u, &["gm", "99999"]).failed();
}
