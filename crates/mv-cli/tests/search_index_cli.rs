//! The search index through the real binary: `zmmailbox s` finds body text through
//! the index (built on first use), `zmprov rim USER start|status` rebuilds and
//! reports, a garbled index is rebuilt without the user noticing, and a running
//! server keeps indexes up to date in the background and rebuilds on demand.
//! IMAP SEARCH (Python imaplib) goes through the same index and stays exact right
//! after delivery, after a reindex and with a damaged index.

mod common;

use common::{BIN, Env, Server, free_port};
use mv_home::Home;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const USER: &str = "u@example.com";

fn msg(n: u32, subject: &str, body: &str) -> String {
    format!(
        "From: Sender {n} <s{n}@example.org>\r\nTo: {USER}\r\nSubject: {subject}\r\n\
         Message-ID: <{n}@cli.test>\r\nDate: Fri, 19 Nov 2010 13:5{n}:08 +0000\r\n\r\n{body}\r\n"
    )
}

fn add(env: &Env, n: u32, subject: &str, body: &str) {
    let p = env.root.join(format!("m{n}.eml"));
    std::fs::write(&p, msg(n, subject, body)).unwrap();
    env.ok(
        "zmmailbox",
        &["-z", "-m", USER, "am", "/Inbox", p.to_str().unwrap()],
    );
}

/// Subjects of a `zmmailbox s` answer (its JSON form).
fn subjects(env: &Env, query: &str) -> Vec<String> {
    let out = env.ok("zmmailbox", &["-z", "-m", USER, "s", "--json", query]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let mut s: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|i| i["subject"].as_str().unwrap().to_string())
        .collect();
    s.sort();
    s
}

fn status_json(env: &Env) -> serde_json::Value {
    let out = env.ok("zmprov", &["--json", "rim", USER, "status"]);
    serde_json::from_str(&out.stdout).unwrap()
}

fn index_dir(env: &Env) -> PathBuf {
    let out = env.ok("zmprov", &["gmi", USER]);
    let id = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("mailboxId: "))
        .unwrap()
        .trim()
        .to_string();
    env.home.join("index").join(id)
}

fn garble(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with(".json") {
            continue;
        }
        let mut b = std::fs::read(e.path()).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 0x5a;
        std::fs::write(e.path(), b).unwrap();
    }
}

fn start_server(home: &Path) -> Server {
    start_server_with(home, &[])
}

fn start_server_with(home: &Path, settings: &[(&str, String)]) -> Server {
    let h = Home::at(home);
    let mut cfg = h.open().unwrap();
    cfg.set("lmtp_bind_port", &free_port().to_string()).unwrap();
    cfg.set("admin_bind_port", &free_port().to_string())
        .unwrap();
    for (k, v) in settings {
        cfg.set(k, v).unwrap();
    }
    cfg.save(&h.localconfig_path()).unwrap();
    let mut child = Command::new(BIN)
        .arg("--home")
        .arg(home)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "server did not start");
        match lines.next() {
            Some(Ok(l)) if l.starts_with("mailvault ready") => break,
            Some(Ok(_)) => continue,
            _ => panic!("server exited before it was ready"),
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Server(child)
}

/// Polls `f` every 100 ms for up to 20 s.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn search_and_reindex_through_the_binary() {
    let env = Env::new();
    env.ok("zmprov", &["cd", "example.com"]);
    env.ok("zmprov", &["ca", USER, "pw"]);
    add(&env, 1, "Lunch plans", "Meet in the kitchen at noon.");
    add(
        &env,
        2,
        "Quarterly report",
        "The budget is attached; see the kitchenette notes.",
    );
    add(&env, 3, "Hello", "Nothing to see here.");

    // Body text is searchable; substrings of words match (kitchen ⊂ kitchenette).
    assert_eq!(
        subjects(&env, "content:kitchen"),
        ["Lunch plans", "Quarterly report"]
    );
    assert_eq!(subjects(&env, "budget"), ["Quarterly report"]);
    assert_eq!(subjects(&env, "content:\"to see\""), ["Hello"]);
    let dir = index_dir(&env);
    assert!(
        dir.join("meta.json").is_file(),
        "the index was built on first use"
    );

    // zmprov rim start rebuilds (here, without a server, to its end), status reports.
    let out = env.ok("zmprov", &["rim", USER, "start"]);
    assert_eq!(
        out.stdout,
        "status: started\nprogress: numSucceeded=3, numFailed=0, numRemaining=0\n"
    );
    let out = env.ok("zmprov", &["reIndexMailbox", USER, "status"]);
    assert!(out.stdout.starts_with("status: idle\n"), "{}", out.stdout);
    let st = status_json(&env);
    assert_eq!(st["indexed_change"], st["mailbox_change"], "{st}");
    let bad = env.zm("zmprov", &["rim", USER, "cancel-everything"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("start or status"), "{}", bad.stderr);
    let missing = env.zm("zmprov", &["rim", "nobody@example.com", "status"]);
    assert_eq!(missing.code, 1);

    // A garbled index: same answers, index rebuilt.
    garble(&dir);
    assert_eq!(
        subjects(&env, "content:kitchen"),
        ["Lunch plans", "Quarterly report"]
    );
    let st = status_json(&env);
    assert_eq!(st["indexed_change"], st["mailbox_change"], "{st}");

    // With a server: new mail is indexed in the background, rim runs there.
    let server = start_server(&env.home);
    add(&env, 4, "Kitchen remodel", "Tiles and paint.");
    eventually("the background indexer", || {
        let st = status_json(&env);
        st["indexed_change"] == st["mailbox_change"]
    });
    assert_eq!(
        subjects(&env, "kitchen"),
        ["Kitchen remodel", "Lunch plans", "Quarterly report"]
    );
    let out = env.ok("zmprov", &["rim", USER, "start"]);
    assert!(
        out.stdout.starts_with("status: started\n"),
        "{}",
        out.stdout
    );
    eventually("the reindex to finish", || {
        let out = env.ok("zmprov", &["rim", USER, "status"]);
        out.stdout == "status: idle\nprogress: numSucceeded=4, numFailed=0, numRemaining=0\n"
    });
    assert_eq!(subjects(&env, "paint"), ["Kitchen remodel"]);
    unsafe { libc::kill(server.0.id() as i32, libc::SIGTERM) };
    let mut server = server;
    let status = server.0.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn full_backups_carry_the_index_unless_excluded() {
    let env = Env::new();
    env.ok("zmprov", &["cd", "example.com"]);
    env.ok("zmprov", &["ca", USER, "pw"]);
    add(&env, 1, "Lunch plans", "Meet in the kitchen at noon.");
    add(&env, 2, "Quarterly report", "The budget is attached.");
    assert_eq!(subjects(&env, "budget"), ["Quarterly report"]);
    // The account files a full wrote: its pieces (session format 2).
    let index_files = |label: &str| -> Vec<String> {
        common::walk(&env.home.join("backup/pieces").join(label))
            .into_iter()
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| p.contains("/index/"))
            .collect()
    };

    let with = env.ok("zmbackup", &["-f", "-a", "all", "-sync"]);
    let with = with.stdout.trim();
    let files = index_files(with);
    assert!(
        files.iter().any(|f| f.ends_with("/index/meta.json")),
        "{files:?}"
    );
    // meta.json beside one zip of the segment files.
    assert_eq!(files.len(), 2, "{files:?}");
    let zip_path = files.iter().find(|f| f.ends_with("/index/segments.zip"));
    let zip_path = zip_path.expect("segments.zip");
    let mut zip = zip::ZipArchive::new(std::fs::File::open(zip_path).unwrap()).unwrap();
    let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
    // The copied index is consistent: every segment meta.json lists is there.
    let meta_path = files.iter().find(|f| f.ends_with("meta.json")).unwrap();
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(meta_path).unwrap()).unwrap();
    for seg in meta["segments"].as_array().unwrap() {
        let id = seg["segment_id"].as_str().unwrap().replace('-', "");
        assert!(
            names.iter().any(|f| f.starts_with(&format!("{id}."))),
            "segment {id} not copied: {names:?}"
        );
    }
    let first = names.first().expect("segment files").clone();
    let mut entry = zip.by_name(&first).unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
    let live = env.home.join("index");
    let original = common::walk(&live)
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy() == first));
    if let Some(original) = original {
        assert_eq!(bytes, std::fs::read(original).unwrap(), "{first}");
    }
    // Verification covers the index files like any other session file.
    let v = env.run(Path::new(BIN), &["backup", "verify", "--read-data"]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);

    let without = env.ok(
        "zmbackup",
        &["-f", "-a", "all", "-sync", "--exclude", "SearchIndex"],
    );
    let without = without.stdout.trim();
    assert_ne!(with, without);
    assert_eq!(index_files(without), Vec::<String>::new());
}

fn stop_server(mut server: Server) {
    unsafe { libc::kill(server.0.id() as i32, libc::SIGTERM) };
    let status = server.0.wait().unwrap();
    assert!(status.success(), "{status}");
}

/// tests/e2e/imap_client.py `search_index PHASE`: every SEARCH there is compared
/// with the messages known to match (decoded text, substrings, headers, combined
/// with flags, UIDs, sizes, NOT and OR).
fn imap_search(port: u16, phase: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/imap_client.py");
    let out = Command::new("python3")
        .arg(script)
        .args([
            "search_index",
            "127.0.0.1",
            &port.to_string(),
            USER,
            "pw",
            phase,
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "imap search {phase}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn imap_search_through_the_index_is_exact() {
    let env = Env::new();
    env.ok("zmprov", &["cd", "example.com"]);
    env.ok("zmprov", &["ca", USER, "pw"]);
    let port = free_port();
    let settings = [
        ("imap_bind_port", port.to_string()),
        ("imaps_bind_port", free_port().to_string()),
        ("imap_cleartext_login_enabled", "true".to_string()),
    ];
    // Delivered and searched at once, then again once the indexer caught up.
    let server = start_server_with(&env.home, &settings);
    imap_search(port, "fill");
    eventually("the background indexer", || {
        let st = status_json(&env);
        st["indexed_change"] == st["mailbox_change"]
    });
    imap_search(port, "check");
    // After a reindex.
    env.ok("zmprov", &["rim", USER, "start"]);
    eventually("the reindex to finish", || {
        let st = status_json(&env);
        st["state"] == "idle" && st["indexed_change"] == st["mailbox_change"]
    });
    imap_search(port, "check");
    stop_server(server);
    // A damaged index is rebuilt (or bypassed) without changing any answer.
    garble(&index_dir(&env));
    let server = start_server_with(&env.home, &settings);
    imap_search(port, "check");
    stop_server(server);
}
