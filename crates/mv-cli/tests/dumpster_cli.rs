//! The dumpster through the zm* names, without any backup: a message expunged
//! over IMAP is listed and recovered by `zmmailbox recoverDeleted`, byte for
//! byte with its flags, and an IMAP session sees it come back; after the
//! account's `zimbraMailDumpsterLifetime` (from its COS, then its own) the
//! server's sweep removes a deleted message and its blob file.

mod common;

use common::*;
use mv_home::Home;

const USER: &str = "user@d.test";

fn json(env: &Env, args: &[&str]) -> serde_json::Value {
    let o = env.ok("zmmailbox", args);
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", o.stdout))
}

/// The message files of the home's primary volume.
fn blob_files(env: &Env) -> usize {
    walk(&env.home.join("store/message1"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "msg"))
        .count()
}

#[test]
fn an_expunged_message_comes_back_from_the_dumpster_and_expires_after_its_lifetime() {
    let env = Env::new();
    env.ok("zmprov", &["cd", "d.test"]);
    env.ok("zmprov", &["ca", USER, "secret"]);
    // The COS's lifetime applies to its accounts.
    env.ok(
        "zmprov",
        &["mc", "default", "zimbraMailDumpsterLifetime", "1h"],
    );
    assert_ne!(
        env.zm(
            "zmprov",
            &["mc", "default", "zimbraMailDumpsterLifetime", "soon"]
        )
        .code,
        0,
        "a lifetime must be a duration"
    );
    let imap = free_port();
    {
        let h = Home::at(&env.home);
        let mut cfg = h.open().unwrap();
        for key in ["lmtp_bind_port", "admin_bind_port", "imaps_bind_port"] {
            cfg.set(key, &free_port().to_string()).unwrap();
        }
        cfg.set("imap_bind_port", &imap.to_string()).unwrap();
        cfg.set("imap_cleartext_login_enabled", "true").unwrap();
        cfg.set("dumpster_sweep_seconds", "1").unwrap();
        cfg.save(&h.localconfig_path()).unwrap();
    }
    let sent = b"From: a@y.test\r\nSubject: keep me\r\nMessage-ID: <k@y.test>\r\n\r\nimportant\r\n";
    let file = env.root.join("m.eml");
    std::fs::write(&file, sent).unwrap();
    env.ok(
        "zmmailbox",
        &[
            "-z",
            "-m",
            USER,
            "am",
            "-F",
            "f",
            "/Inbox",
            file.to_str().unwrap(),
        ],
    );
    let was = json(&env, &["-z", "-m", USER, "s", "--json", "subject:keep"]);
    let flags = was[0]["flags"].as_u64().unwrap();

    let _server = Server(spawn_server(&env.home, std::process::Stdio::inherit()));
    let mut c = Imap::login(imap, USER, "secret");
    c.send(b"a2 SELECT INBOX\r\n");
    assert!(c.until("a2 ").iter().any(|l| l == "* 1 EXISTS"));
    c.send(b"a3 STORE 1 +FLAGS.SILENT (\\Deleted)\r\na4 EXPUNGE\r\n");
    c.until("a3 ");
    let ex = c.until("a4 ");
    assert!(ex.iter().any(|l| l == "* 1 EXPUNGE"), "{ex:?}");
    assert_eq!(
        json(&env, &["-z", "-m", USER, "s", "--json", "subject:keep"]),
        serde_json::json!([]),
        "gone from search"
    );

    // Listed, then recovered: same bytes, same flags, back in Inbox.
    let listed = json(
        &env,
        &["-z", "-m", USER, "--json", "recoverDeleted", "--list"],
    );
    assert_eq!(listed["listed"][0]["subject"], "keep me", "{listed}");
    assert_eq!(listed["listed"][0]["folder"], "/Inbox");
    assert_eq!(listed["dumpster_used"], sent.len());
    let none = json(
        &env,
        &[
            "-z",
            "-m",
            USER,
            "--json",
            "recoverDeleted",
            "--list",
            "subject:other",
        ],
    );
    assert_eq!(none["listed"], serde_json::json!([]));
    let o = env.ok(
        "zmmailbox",
        &["-z", "-m", USER, "recoverDeleted", "subject:keep"],
    );
    assert!(o.stdout.contains("1 message(s) recovered"), "{}", o.stdout);
    let back = json(&env, &["-z", "-m", USER, "s", "--json", "subject:keep"]);
    assert_eq!(back[0]["flags"].as_u64().unwrap(), flags);
    let id = back[0]["id"].to_string();
    let raw = std::process::Command::new(env.links.join("zmmailbox"))
        .env("MAILVAULT_HOME", &env.home)
        .args(["-z", "-m", USER, "gm", &id])
        .output()
        .unwrap();
    assert_eq!(raw.stdout, sent.to_vec());
    c.send(b"a5 NOOP\r\n");
    let noop = c.until("a5 ");
    assert!(noop.iter().any(|l| l == "* 1 EXISTS"), "{noop:?}");
    c.send(b"a6 FETCH 1 (FLAGS BODY.PEEK[])\r\n");
    let fetched = c.until("a6 ").join("\n");
    assert!(
        fetched.contains("\\Flagged") && !fetched.contains("\\Deleted"),
        "{fetched}"
    );
    assert!(fetched.contains("important"), "{fetched}");
    c.send(b"a7 LOGOUT\r\n");

    // A short lifetime on the account: the sweep removes it and its file.
    env.ok("zmprov", &["ma", USER, "zimbraMailDumpsterLifetime", "1s"]);
    let files = blob_files(&env);
    env.ok("zmmailbox", &["-z", "-m", USER, "dm", &id]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let l = json(
            &env,
            &["-z", "-m", USER, "--json", "recoverDeleted", "--list"],
        );
        if l["listed"] == serde_json::json!([]) && blob_files(&env) < files {
            assert_eq!(l["dumpster_used"], 0);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not swept: {l}, {} files",
            blob_files(&env)
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}
