//! Item-level recovery through the zm* names: `mailvault backup search` finds
//! messages deleted after a full and after an incremental without restoring the
//! account, `zmrestore --items` brings back just those, byte for byte with their
//! flags and tags, once however often it runs, and `zmrestore --folder` refills
//! an emptied folder while the server runs and an IMAP session watches it.

mod common;

use common::*;
use mv_home::Home;
use std::path::PathBuf;

const USER: &str = "user@d.test";

impl Env {
    /// Adds a message to `folder` with `zmmailbox am` (flags letters, tags);
    /// returns its id and the file's bytes.
    fn add(&self, folder: &str, subject: &str, flags: &str, tags: &str) -> (String, Vec<u8>) {
        let path: PathBuf = self.root.join(format!("{subject}.eml"));
        let mut body = format!(
            "From: Sender <sender@y.test>\r\nTo: {USER}\r\nSubject: {subject}\r\n\
             Message-ID: <{subject}@y.test>\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\n"
        );
        for i in 0..40 {
            body.push_str(&format!("{subject} body line {i}\r\n"));
        }
        std::fs::write(&path, &body).unwrap();
        let mut args = vec!["-z", "-m", USER, "am"];
        if !flags.is_empty() {
            args.extend(["-F", flags]);
        }
        if !tags.is_empty() {
            args.extend(["-T", tags]);
        }
        args.extend([folder, path.to_str().unwrap()]);
        let o = self.ok("zmmailbox", &args);
        (o.stdout.trim().to_string(), body.into_bytes())
    }

    /// The messages matching a query, as `zmmailbox s --json` gives them.
    fn found(&self, query: &str) -> Vec<serde_json::Value> {
        let o = self.ok(
            "zmmailbox",
            &["-z", "-m", USER, "s", "--json", "-l", "1000", query],
        );
        serde_json::from_str::<serde_json::Value>(&o.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    fn raw(&self, id: &str) -> Vec<u8> {
        let o = std::process::Command::new(self.links.join("zmmailbox"))
            .env("MAILVAULT_HOME", &self.home)
            .args(["-z", "-m", USER, "gm", id])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    }

    fn json(&self, tool: &str, args: &[&str]) -> serde_json::Value {
        let o = self.ok(tool, args);
        serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", o.stdout))
    }
}

fn setup(env: &Env) {
    env.ok("zmprov", &["cd", "d.test"]);
    env.ok("zmprov", &["ca", USER, "secret"]);
}

#[test]
fn deleted_messages_are_found_in_the_backups_and_restored_alone_once() {
    let env = Env::new();
    setup(&env);
    env.ok("zmmailbox", &["-z", "-m", USER, "ct", "-c", "3", "urgent"]);
    let (keep, _) = env.add("/Inbox", "keeper", "", "");
    let (a, a_bytes) = env.add("/Inbox", "alpha", "f", "urgent");
    let a_was = env.found("subject:alpha")[0].clone();
    env.ok("zmprov", &["ca", "other@d.test", "secret"]);
    let other = env.root.join("other.eml");
    std::fs::write(&other, "Subject: keeper too\r\n\r\nother's\r\n").unwrap();
    env.ok(
        "zmmailbox",
        &[
            "-z",
            "-m",
            "other@d.test",
            "am",
            "/Inbox",
            other.to_str().unwrap(),
        ],
    );
    env.ok("zmbackup", &["-f", "-a", "all", "-sync"]);
    // Hard-deleted after the full: only the full holds it.
    env.ok("zmmailbox", &["-z", "-m", USER, "dm", &a]);
    let (b, b_bytes) = env.add("/Inbox", "bravo", "", "");
    env.ok("zmmailbox", &["-z", "-m", USER, "mrm", &b, "0"]);
    env.ok("zmmailbox", &["-z", "-m", USER, "fm", &b, "1"]);
    let b_was = env.found("subject:bravo")[0].clone();
    env.ok("zmbackup", &["-i", "-a", "all", "-sync"]);
    // Deleted after the incremental: its redo logs hold it.
    env.ok("zmmailbox", &["-z", "-m", USER, "dm", &b]);
    assert!(env.found("subject:alpha").is_empty());
    assert!(env.found("subject:bravo").is_empty());

    // Search: nothing is restored, each message is found where it lived.
    let hits = env.json(
        "zmbackup",
        &[
            "search",
            "-a",
            USER,
            "--json",
            "subject:alpha OR subject:bravo",
        ],
    );
    let hits = hits["accounts"][0]["hits"].as_array().unwrap().clone();
    assert_eq!(hits.len(), 2, "{hits:#?}");
    let hit = |s: &str| hits.iter().find(|h| h["subject"] == s).unwrap().clone();
    let (ha, hb) = (hit("alpha"), hit("bravo"));
    assert_eq!(ha["folder"], "/Inbox");
    assert_eq!(ha["present"], false);
    assert_eq!(ha["from"].as_str().unwrap(), "Sender <sender@y.test>");
    assert_eq!(ha["size"].as_u64().unwrap(), a_bytes.len() as u64);
    assert_eq!(
        ha["digest"].as_str().unwrap(),
        mv_types::Digest::of(&a_bytes).to_hex().as_str()
    );
    let labels = |h: &serde_json::Value| -> Vec<String> {
        h["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect()
    };
    // alpha: in the full only; bravo: in the incremental only.
    assert!(
        labels(&ha).len() == 1 && labels(&ha)[0].starts_with("full-"),
        "{ha}"
    );
    assert!(
        labels(&hb).len() == 1 && labels(&hb)[0].starts_with("incr-"),
        "{hb}"
    );
    assert!(
        env.found("subject:alpha").is_empty(),
        "search restores nothing"
    );
    // The text form, and the exit code of a search that finds nothing.
    let text = env.ok(
        "zmbackup",
        &["search", "-a", USER, "content:\"bravo body line 7\""],
    );
    assert!(
        text.stdout.contains("\"bravo\"") && text.stdout.contains("not in the mailbox now"),
        "{}",
        text.stdout
    );
    // Each hit is printed as it is found (with the session it was found in),
    // then the summary with every session holding it.
    let found = text.stdout.find("found in incr-");
    let summary = text.stdout.find(": 1 item(s) in ");
    assert!(
        found.is_some() && summary.is_some() && found < summary,
        "{}",
        text.stdout
    );
    let none = env.zm("zmbackup", &["search", "-a", USER, "subject:nosuchthing"]);
    assert_eq!(none.code, 1, "{}{}", none.stdout, none.stderr);
    assert_eq!(
        env.zm("zmbackup", &["search", "-a", USER, "color:red"])
            .code,
        2
    );
    // keeper is in the backups and in the mailbox.
    let k = env.json(
        "zmbackup",
        &["search", "-a", USER, "--json", "subject:keeper"],
    );
    assert_eq!(k["accounts"][0]["hits"][0]["present"], true);
    // Every account of the target (e-discovery), with progress on stderr.
    let all = env.ok(
        "zmbackup",
        &["search", "-a", "all", "--json", "subject:keeper"],
    );
    let v: serde_json::Value = serde_json::from_str(&all.stdout).unwrap();
    let mut owners: Vec<(String, usize)> = v["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["email"].as_str().unwrap().to_string(),
                a["hits"].as_array().unwrap().len(),
            )
        })
        .collect();
    owners.sort();
    assert_eq!(
        owners,
        [("other@d.test".to_string(), 1), (USER.to_string(), 1)]
    );
    assert!(all.stderr.contains("[1/2] searching"), "{}", all.stderr);

    // A dry run changes nothing.
    let dry = env.json(
        "zmrestore",
        &[
            "-a",
            USER,
            "--items",
            "subject:alpha",
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(dry["restored"].as_array().unwrap().len(), 1);
    assert!(env.found("subject:alpha").is_empty());

    // Restore each alone, twice: once.
    for round in 0..2 {
        for (subject, bytes) in [("alpha", &a_bytes), ("bravo", &b_bytes)] {
            let r = env.json(
                "zmrestore",
                &[
                    "-a",
                    USER,
                    "--items",
                    &format!("subject:{subject}"),
                    "--json",
                ],
            );
            let (restored, present) = (
                r["restored"].as_array().unwrap().len(),
                r["already_present"].as_array().unwrap().len(),
            );
            assert_eq!(
                (restored, present),
                if round == 0 { (1, 0) } else { (0, 1) },
                "{r:#}"
            );
            let now = env.found(&format!("subject:{subject}"));
            assert_eq!(now.len(), 1, "{subject} exactly once after round {round}");
            let id = now[0]["id"].to_string();
            assert_eq!(&env.raw(&id), bytes, "{subject} byte for byte");
        }
    }
    // Flags, tags and dates as they were: alpha flagged and tagged, bravo
    // unread and flagged (changed after its delivery, before the incremental).
    for (subject, was) in [("alpha", &a_was), ("bravo", &b_was)] {
        let now = &env.found(&format!("subject:{subject}"))[0];
        for k in [
            "flags",
            "received_ms",
            "date_ms",
            "size",
            "digest",
            "folder_id",
        ] {
            assert_eq!(now[k], was[k], "{subject} {k}: {now} vs {was}");
        }
    }
    assert_eq!(env.found("subject:alpha is:flagged tag:urgent").len(), 1);
    assert_eq!(env.found("subject:bravo is:unread is:flagged").len(), 1);
    // Nothing else came back, and the kept message is still the one there.
    let inbox = env.found("in:Inbox");
    assert_eq!(inbox.len(), 3, "{inbox:#?}");
    let keep: u64 = keep.parse().unwrap();
    assert!(inbox.iter().any(|m| m["id"] == keep));

    // At a restore point before bravo existed, only alpha is there.
    let full_label = labels(&ha)[0].clone();
    let at = env.zm(
        "zmbackup",
        &[
            "search",
            "-a",
            USER,
            "--json",
            "-lb",
            &full_label,
            "subject:bravo",
        ],
    );
    assert_eq!(at.code, 1, "nothing found: {}{}", at.stdout, at.stderr);
    let at: serde_json::Value = serde_json::from_str(&at.stdout).unwrap();
    assert_eq!(at["accounts"][0]["hits"].as_array().unwrap().len(), 0);
    // Usage errors.
    assert_eq!(
        env.zm(
            "zmrestore",
            &["-a", USER, "--items", "x", "--folder", "/Inbox"]
        )
        .code,
        2
    );
    assert_eq!(
        env.zm(
            "zmrestore",
            &["-a", USER, "--items", "x", "-ca", "-pre", "p_"]
        )
        .code,
        2
    );
    assert_eq!(env.zm("zmrestore", &["-a", USER, "--into", "/X"]).code, 2);
}

#[test]
fn an_emptied_folder_comes_back_while_the_server_runs_and_imap_sees_it() {
    let env = Env::new();
    setup(&env);
    let imap = free_port();
    {
        let h = Home::at(&env.home);
        let mut cfg = h.open().unwrap();
        for key in ["lmtp_bind_port", "admin_bind_port", "imaps_bind_port"] {
            cfg.set(key, &free_port().to_string()).unwrap();
        }
        cfg.set("imap_bind_port", &imap.to_string()).unwrap();
        cfg.set("imap_cleartext_login_enabled", "true").unwrap();
        cfg.save(&h.localconfig_path()).unwrap();
    }
    env.ok("zmmailbox", &["-z", "-m", USER, "cf", "/Projects"]);
    env.ok("zmmailbox", &["-z", "-m", USER, "cf", "/Projects/Sub"]);
    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(env.add("/Projects", &format!("proj{i}"), "", "").1);
    }
    sent.push(env.add("/Projects/Sub", "deep0", "f", "").1);
    env.add("/Inbox", "elsewhere", "", "");
    env.ok("zmbackup", &["-f", "-a", "all", "-sync"]);
    // Emptying a folder removes its subfolders too.
    env.ok("zmmailbox", &["-z", "-m", USER, "ef", "/Projects"]);
    assert!(env.found("under:/Projects").is_empty());

    let _server = Server(spawn_server(&env.home, std::process::Stdio::inherit()));
    let mut c = Imap::login(imap, USER, "secret");
    c.send(b"a2 SELECT Projects\r\n");
    let sel = c.until("a2 ");
    assert!(sel.iter().any(|l| l == "* 0 EXISTS"), "{sel:?}");

    // Through the running server (it holds the home).
    let o = env.ok("zmrestore", &["-a", USER, "--folder", "/Projects"]);
    assert!(o.stdout.contains("4 item(s) restored"), "{}", o.stdout);
    c.send(b"a3 NOOP\r\n");
    let noop = c.until("a3 ");
    assert!(noop.iter().any(|l| l == "* 3 EXISTS"), "{noop:?}");
    c.send(b"a4 LOGOUT\r\n");

    // The folder holds what it held; the subfolder, gone, comes back under a
    // dated folder; byte for byte.
    assert_eq!(env.found("under:/Projects").len(), 3);
    let day = o
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{USER}: created folder ")))
        .unwrap_or_else(|| panic!("{}", o.stdout))
        .to_string();
    assert!(
        day.starts_with("/Restored 20") && day.ends_with("/Projects/Sub"),
        "{day}"
    );
    let deep = env.found(&format!("in:\"{day}\" is:flagged"));
    assert_eq!(deep.len(), 1, "{deep:?}");
    let back = env.found("subject:proj OR subject:deep0");
    assert_eq!(back.len(), 4);
    let mut got: Vec<Vec<u8>> = back.iter().map(|m| env.raw(&m["id"].to_string())).collect();
    got.sort();
    sent.sort();
    assert_eq!(got, sent);
    assert_eq!(env.found("in:Inbox").len(), 1, "nothing else restored");
    // Again: nothing new.
    let again = env.ok("zmrestore", &["-a", USER, "--folder", "/Projects"]);
    assert!(
        again
            .stdout
            .contains("0 item(s) restored, 4 already present"),
        "{}",
        again.stdout
    );
    assert_eq!(env.found("subject:proj OR subject:deep0").len(), 4);
}
