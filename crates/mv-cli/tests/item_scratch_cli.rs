//! What a killed `backup search` or item restore leaves (the mailbox it was
//! rebuilding from a backup: its database, blobs, search index and mark) is
//! removed by the next command that opens the home, or by the server's start.

mod common;

use common::*;
use mv_home::Home;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const USER: &str = "user@d.test";

/// Three fulls of a mailbox of 60 messages: a search reads three restore
/// points, rebuilding one mailbox after another.
fn setup(env: &Env) {
    env.ok("zmprov", &["cd", "d.test"]);
    env.ok("zmprov", &["ca", USER, "secret"]);
    let dir = env.root.join("msgs");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..60 {
        let mut m = format!(
            "From: s@y.test\r\nTo: {USER}\r\nSubject: note {i}\r\nMessage-ID: <n{i}@y.test>\r\n\r\n"
        );
        for l in 0..30 {
            m.push_str(&format!("note {i} line {l}\r\n"));
        }
        std::fs::write(dir.join(format!("{i}.eml")), m).unwrap();
    }
    env.ok(
        "zmmailbox",
        &["-z", "-m", USER, "am", "/Inbox", dir.to_str().unwrap()],
    );
    for _ in 0..3 {
        env.ok("zmbackup", &["-f", "-a", "all", "-sync"]);
    }
}

/// The scratch mailboxes marked in the home now.
fn marks(home: &Path) -> Vec<u32> {
    let mut v: Vec<u32> = std::fs::read_dir(home.join("db/scratch"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Everything of mailbox `id` in the home: its database (any name, SQLite's side files too), its blob
/// directory, its index.
fn files_of(home: &Path, id: u32) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walk(&home.join("db/mbox"))
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{id}.sqlite")))
        })
        .collect();
    out.extend(
        walk(&home.join("store"))
            .into_iter()
            .filter(|p| p.components().any(|c| c.as_os_str() == "msg"))
            .filter(|p| {
                let below: Vec<_> = p.ancestors().map(|a| a.file_name()).collect();
                below.windows(2).any(|w| {
                    w[0].is_some_and(|n| n == "msg")
                        && w[1].is_some_and(|n| n.to_str() == Some(&id.to_string()))
                })
            }),
    );
    let index = home.join("index").join(id.to_string());
    if index.exists() {
        out.push(index);
    }
    out
}

/// Runs `args` (an in-process command rebuilding mailboxes from the backups)
/// and kills it with SIGKILL once a scratch mailbox's database exists; returns
/// its id. Tries again when the command ends first.
fn kill_while_rebuilding(env: &Env, args: &[&str]) -> u32 {
    for _ in 0..20 {
        let mut child = Command::new(BIN)
            .env("MAILVAULT_HOME", &env.home)
            .env("TZ", "UTC")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let rebuilding = marks(&env.home).into_iter().find(|id| {
                env.home
                    .join("db/mbox")
                    .join(format!("{id}.sqlite"))
                    .exists()
            });
            if let Some(id) = rebuilding {
                child.kill().unwrap();
                child.wait().unwrap();
                return id;
            }
            if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    panic!("{args:?} never got to rebuild a mailbox before it ended");
}

#[test]
fn a_killed_search_leaves_nothing_after_the_next_command() {
    let env = Env::new();
    setup(&env);
    let id = kill_while_rebuilding(&env, &["backup", "search", "-a", USER, "note"]);
    assert_eq!(marks(&env.home), vec![id]);
    assert!(!files_of(&env.home, id).is_empty());

    // The next run of the command sweeps it first, and works.
    let o = env.ok("zmbackup", &["search", "-a", USER, "subject:\"note 7\""]);
    assert!(o.stdout.contains("note 7"), "{}", o.stdout);
    assert!(marks(&env.home).is_empty());
    assert_eq!(files_of(&env.home, id), Vec::<PathBuf>::new());
}

#[test]
fn a_killed_item_restore_leaves_nothing_after_the_server_starts() {
    let env = Env::new();
    setup(&env);
    let id = kill_while_rebuilding(&env, &["restore", "-a", USER, "--items", "note"]);
    assert_eq!(marks(&env.home), vec![id]);
    assert!(!files_of(&env.home, id).is_empty());

    {
        let h = Home::at(&env.home);
        let mut cfg = h.open().unwrap();
        for key in [
            "lmtp_bind_port",
            "admin_bind_port",
            "imap_bind_port",
            "imaps_bind_port",
        ] {
            cfg.set(key, &free_port().to_string()).unwrap();
        }
        cfg.save(&h.localconfig_path()).unwrap();
    }
    let server = Server(spawn_server(&env.home, Stdio::inherit()));
    assert!(marks(&env.home).is_empty());
    assert_eq!(files_of(&env.home, id), Vec::<PathBuf>::new());
    // Nothing was restored by the killed run: every message is still there once.
    drop(server);
    let o = env.ok(
        "zmmailbox",
        &["-z", "-m", USER, "s", "--json", "-l", "1000", "note"],
    );
    let hits: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(hits.as_array().unwrap().len(), 60);
}
