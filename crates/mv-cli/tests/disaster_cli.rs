//! Disaster recovery through the real binaries: back up a server with 50
//! accounts, destroy its home, rebuild it with `zmrestoreldap` + `zmrestoreoffline`
//! onto a fresh home, start it: everything is back byte for byte, mail is
//! delivered, and the next incremental backup continues the redo chain (no gap,
//! no sequence used twice). Also `zmbackupabort -r`: an aborted restore leaves
//! every account either fully restored or untouched.

mod common;

use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const ACCOUNTS: usize = 50;

fn user(i: usize) -> String {
    format!("u{i:02}@dr.test")
}

fn lmtp_client() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/lmtp_client.py")
}

impl Env {
    /// Runs a tool with `input` on stdin.
    fn with_stdin(&self, tool: &str, args: &[&str], input: &str) -> Out {
        let mut child = Command::new(self.links.join(tool))
            .env("MAILVAULT_HOME", &self.home)
            .env("TZ", "UTC")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap().into()
    }

    /// Gives the home free ports (a fresh home gets the defaults).
    fn ports(&self) -> u16 {
        let lmtp = free_port();
        let o = self.run(
            Path::new(BIN),
            &[
                "localconfig",
                "-e",
                &format!("admin_bind_port={}", free_port()),
                "-e",
                &format!("lmtp_bind_port={lmtp}"),
                "-e",
                &format!("imap_bind_port={}", free_port()),
                "-e",
                &format!("imaps_bind_port={}", free_port()),
            ],
        );
        assert_eq!(o.code, 0, "{}", o.stderr);
        lmtp
    }

    /// Delivers PER messages to each of the first `accounts` accounts over LMTP
    /// (4 sessions; `accounts` a multiple of 4).
    fn lmtp_load(&self, port: u16, batch: &str, per: usize, accounts: usize) {
        let users: Vec<String> = (0..accounts).map(user).collect();
        let out = Command::new("python3")
            .arg(lmtp_client())
            .args([
                "load",
                &port.to_string(),
                self.root.join(batch).to_str().unwrap(),
                "4",
                &(per * accounts / 4).to_string(),
                &users.join(","),
            ])
            .output()
            .expect("python3 runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("\"errors\": 0"), "{stdout}");
    }

    /// Each account's whole content as a tgz export (messages byte-exact with
    /// flags and tags, folders, contacts, appointments, item ids).
    fn exports(&self, accounts: usize) -> Vec<Vec<(String, Vec<u8>)>> {
        (0..accounts)
            .map(|i| {
                let o = Command::new(self.links.join("zmmailbox"))
                    .env("MAILVAULT_HOME", &self.home)
                    .env("TZ", "UTC")
                    .args(["-z", "-m", &user(i), "getRestURL", "//?fmt=tgz"])
                    .output()
                    .unwrap();
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
                tgz_entries(&o.stdout)
            })
            .collect()
    }
}

/// The tar entries of a tgz (names and contents; tar and gzip headers, and
/// mailbox.json's `exported_ms`, carry times of the export itself).
fn tgz_entries(tgz: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    let mut out = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        if name.ends_with("mailbox.json") {
            let text = String::from_utf8(data).unwrap();
            data = text
                .lines()
                .filter(|l| !l.contains("exported_ms"))
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes();
        }
        out.push((name, data));
    }
    out
}

/// Folders, flags, tags, contacts and appointments in a few accounts.
fn personalise(env: &Env) {
    for i in (0..ACCOUNTS).step_by(10) {
        let u = user(i);
        let mb = |args: &[&str]| {
            let mut a = vec!["-z", "-m", u.as_str()];
            a.extend_from_slice(args);
            env.ok("zmmailbox", &a);
        };
        mb(&["cf", "/Projects"]);
        mb(&["ct", "important"]);
        let found = env.ok("zmmailbox", &["-z", "-m", &u, "s", "--json", "in:Inbox"]);
        let v: serde_json::Value = serde_json::from_str(&found.stdout).unwrap();
        let ids: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].to_string())
            .collect();
        mb(&["mm", &ids[0], "/Projects"]);
        mb(&["fm", &ids[1], "1"]);
        mb(&["mrm", &ids[2], "1"]);
        let eml = env.root.join(format!("m{i}.eml"));
        std::fs::write(
            &eml,
            format!("From: boss@dr.test\r\nTo: {u}\r\nSubject: tagged\r\n\r\nkeep this\r\n"),
        )
        .unwrap();
        mb(&[
            "am",
            "-F",
            "f",
            "-T",
            "important",
            "/Projects",
            eml.to_str().unwrap(),
        ]);
        let vcf = env.root.join(format!("c{i}.vcf"));
        std::fs::write(
            &vcf,
            format!("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Contact of {u}\r\nEND:VCARD\r\n"),
        )
        .unwrap();
        mb(&["pru", "/Contacts", vcf.to_str().unwrap()]);
        let ics = env.root.join(format!("a{i}.ics"));
        std::fs::write(
            &ics,
            format!(
                "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:{i}@dr.test\r\n\
                 DTSTAMP:20261126T100000Z\r\nDTSTART:20261127T100000Z\r\nSUMMARY:Meeting {i}\r\n\
                 END:VEVENT\r\nEND:VCALENDAR\r\n"
            ),
        )
        .unwrap();
        mb(&["pru", "/Calendar", ics.to_str().unwrap()]);
    }
}

fn redo_range(env: &Env, label: &str, target: &str) -> (u64, u64) {
    let o = env.ok("zmbackupquery", &["-lb", label, "-t", target]);
    let line = o
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Redo log sequence range: "))
        .unwrap_or_else(|| panic!("no redo range in\n{}", o.stdout))
        .to_string();
    let (a, b) = line.split_once(" .. ").unwrap();
    (a.trim().parse().unwrap(), b.trim().parse().unwrap())
}

/// Runs `f` with the server started, stopping it even if `f` panics.
fn with_server(env: &Env, f: impl FnOnce()) {
    env.ok("zmcontrol", &["start"]);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    env.ok("zmcontrol", &["stop"]);
    if let Err(e) = r {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn disaster_drill_rebuilds_a_server_from_its_backups() {
    let n = ACCOUNTS;
    let env = Env::new();
    let target = env.root.join("target");
    let t = target.to_str().unwrap().to_string();
    let lmtp = env.ports();
    let mut batch = String::from("cd dr.test\n");
    for i in 0..ACCOUNTS {
        batch.push_str(&format!("ca {} secret{i}\n", user(i)));
    }
    batch.push_str(&format!("mcf zimbraBackupTarget {t}\n"));
    let o = env.with_stdin("zmprov", &[], &batch);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);

    let mut last_incr = String::new();
    let mut before = Vec::new();
    with_server(&env, || {
        env.lmtp_load(lmtp, "first", 4, n);
        personalise(&env);
        let full = env.ok("zmbackup", &["-f", "-a", "all", "-sync"]);
        assert!(full.stdout.trim().starts_with("full-"), "{}", full.stdout);
        env.lmtp_load(lmtp, "second", 4, n);
        env.ok("zmbackup", &["-i", "-sync"]);
        env.lmtp_load(lmtp, "third", 4, n);
        let o = env.ok("zmbackup", &["-i", "-sync"]);
        last_incr = o.stdout.trim().to_string();
        before = env.exports(n);
    });
    let (_, last_seq) = redo_range(&env, &last_incr, &t);

    // The disk dies.
    std::fs::remove_dir_all(&env.home).unwrap();

    // A fresh home: the directory first (with the old server's local config, so
    // the listeners come back on their ports), then every mailbox.
    let labels = env.ok("zmrestoreldap", &["-lbs", "-t", &t]);
    assert_eq!(labels.stdout.lines().count(), 3, "{}", labels.stdout);
    let listed = env.ok("zmrestoreldap", &["-l", "-t", &t]);
    assert_eq!(listed.stdout.lines().count(), ACCOUNTS, "{}", listed.stdout);
    let o = env.ok("zmrestoreldap", &["-t", &t]);
    assert!(o.stdout.contains("50 accounts"), "{}", o.stdout);
    let o = env.ok("zmrestoreoffline", &["-a", "all", "-t", &t]);
    assert_eq!(
        o.stdout.matches("restored as").count(),
        ACCOUNTS,
        "{}{}",
        o.stdout,
        o.stderr
    );

    with_server(&env, || {
        let after = env.exports(n);
        for i in 0..ACCOUNTS {
            assert!(
                before[i] == after[i],
                "{} differs after the rebuild",
                user(i)
            );
        }
        // Logins and new mail work.
        env.lmtp_load(lmtp, "fourth", 4, n);
        let o = env.ok(
            "zmmailbox",
            &["-z", "-m", &user(7), "s", "--json", "-l", "100", "in:Inbox"],
        );
        let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 16, "{o:?}", o = o.stdout);
        // The next incremental continues the chain: no gap, no reused sequence.
        let o = env.ok("zmbackup", &["-i", "-sync"]);
        let label = o.stdout.trim().to_string();
        assert!(label.starts_with("incr-"), "{label}");
        let (first, last) = redo_range(&env, &label, &t);
        assert_eq!(
            first,
            last_seq + 1,
            "the new server's logs follow the old ones"
        );
        assert!(last >= first);
        let v = env.run(Path::new(BIN), &["backup", "verify", "-t", &t]);
        assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    });
}

#[test]
fn an_aborted_restore_leaves_each_account_restored_or_untouched() {
    let n = 12;
    let env = Env::new();
    let lmtp = env.ports();
    let mut batch = String::from("cd dr.test\n");
    for i in 0..n {
        batch.push_str(&format!("ca {} secret{i}\n", user(i)));
    }
    let o = env.with_stdin("zmprov", &[], &batch);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let ids = |env: &Env| -> Vec<String> {
        let o = env.with_stdin(
            "zmprov",
            &[],
            &(0..n)
                .map(|i| format!("ga {} mailvaultMailboxId\n", user(i)))
                .collect::<String>(),
        );
        assert_eq!(o.code, 0, "{}", o.stderr);
        o.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("mailvaultMailboxId: "))
            .map(str::to_string)
            .collect()
    };
    with_server(&env, || {
        env.lmtp_load(lmtp, "first", 2, n);
        env.ok("zmbackup", &["-f", "-a", "all", "-sync"]);
    });
    let old = ids(&env);
    assert_eq!(old.len(), n);
    let before = env.exports(n);

    let restore = Command::new(env.links.join("zmrestore"))
        .env("MAILVAULT_HOME", &env.home)
        .args(["-a", "all", "-rf"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // zmbackupabort -r fails until the restore holds the target.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let o = env.zm("zmbackupabort", &["-r"]);
        if o.code == 0 {
            break;
        }
        assert!(
            o.stderr.contains("no restore is in progress"),
            "{}",
            o.stderr
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the restore never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = restore.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Not restored (untouched)"), "{stderr}");

    let new = ids(&env);
    let after = env.exports(n);
    let mut restored = 0;
    for i in 0..n {
        // Either way the content is the same (a restore of the full taken after
        // the last change), but a restored account has a new mailbox.
        assert!(before[i] == after[i], "{}", user(i));
        let listed = stderr.contains(&user(i));
        if new[i] != old[i] {
            restored += 1;
            assert!(!listed, "{} was restored but listed as untouched", user(i));
        } else {
            assert!(listed, "{} untouched but not listed", user(i));
        }
    }
    assert!(restored < n, "the abort came too late to show anything");
}
