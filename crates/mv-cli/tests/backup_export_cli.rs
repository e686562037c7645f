//! `mailvault backup export`: a date range taken from a backup (not from the
//! live mailbox) re-imports with `zmmailbox postRestURL` into another account
//! equal item by item (folder, subject, bytes, flags); the same range as an mbox
//! is read back by Python's `mailbox` module byte for byte (after mboxrd's one
//! `>` is removed); as a Maildir, by the same module, with private modes; and a
//! folder exports through a running server as a job. The temporaries a killed
//! export left beside its output are removed by the next export there.

mod common;

use common::*;
use mv_home::Home;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const USER: &str = "user@d.test";
const OTHER: &str = "other@d.test";

/// (folder, subject, bytes, flags) of a message.
type Summary = (String, String, Vec<u8>, u64);

impl Env {
    /// Adds a message dated `date` to `folder`; returns its id and bytes.
    fn add(
        &self,
        folder: &str,
        subject: &str,
        date: &str,
        flags: &str,
        extra: &str,
    ) -> (String, Vec<u8>) {
        let path: PathBuf = self.root.join(format!("{subject}.eml"));
        let mut body = format!(
            "From: Sender <sender@y.test>\r\nTo: {USER}\r\nSubject: {subject}\r\n\
             Message-ID: <{subject}@y.test>\r\nDate: {date}\r\n\r\n"
        );
        for i in 0..5 {
            body.push_str(&format!("{subject} body line {i}\r\n"));
        }
        body.push_str(extra);
        std::fs::write(&path, &body).unwrap();
        let mut args = vec!["-z", "-m", USER, "am"];
        if !flags.is_empty() {
            args.extend(["-F", flags]);
        }
        args.extend([folder, path.to_str().unwrap()]);
        let o = self.ok("zmmailbox", &args);
        (o.stdout.trim().to_string(), body.into_bytes())
    }

    /// Every message of `account` in `folders`, as (folder, subject, bytes, flags).
    fn summary(&self, account: &str, folders: &[&str]) -> Vec<Summary> {
        let mut out = Vec::new();
        for f in folders {
            let o = self.ok(
                "zmmailbox",
                &[
                    "-z",
                    "-m",
                    account,
                    "s",
                    "--json",
                    "-l",
                    "1000",
                    &format!("in:\"{f}\""),
                ],
            );
            let found: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
            for m in found.as_array().unwrap() {
                let raw = Command::new(self.links.join("zmmailbox"))
                    .env("MAILVAULT_HOME", &self.home)
                    .args(["-z", "-m", account, "gm", &m["id"].to_string()])
                    .output()
                    .unwrap();
                assert!(raw.status.success());
                out.push((
                    f.to_string(),
                    m["subject"].as_str().unwrap().to_string(),
                    raw.stdout,
                    m["flags"].as_u64().unwrap(),
                ));
            }
        }
        out.sort();
        out
    }

    fn export(&self, args: &[&str]) -> Out {
        let mut all = vec!["backup", "export"];
        all.extend(args);
        self.run(Path::new(BIN), &all)
    }
}

/// What Python's `mailbox` module reads from an mbox or a Maildir: per message,
/// its folder ("" for the top), its bytes (mboxrd's quoting undone for an mbox),
/// its From line or Maildir flags.
fn python_reads(kind: &str, path: &Path) -> Vec<(String, Vec<u8>, String)> {
    const SCRIPT: &str = r#"
import json, mailbox, re, sys
kind, path = sys.argv[1], sys.argv[2]
out = []
if kind == "mbox":
    box = mailbox.mbox(path, create=False)
    for key in box.iterkeys():
        raw = re.sub(rb"(?m)^>(>*From )", rb"\1", box.get_bytes(key))
        out.append(["", raw.hex(), box.get_message(key).get_from()])
else:
    top = mailbox.Maildir(path, factory=None, create=False)
    boxes = [("", top)] + [(n, top.get_folder(n)) for n in sorted(top.list_folders())]
    for name, box in boxes:
        for key in sorted(box.iterkeys()):
            out.append([name, box.get_bytes(key).hex(), box.get_message(key).get_flags()])
print(json.dumps(out))
"#;
    let o = Command::new("python3")
        .args(["-c", SCRIPT, kind, path.to_str().unwrap()])
        .output()
        .expect("python3 runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Vec<(String, String, String)> = serde_json::from_slice(&o.stdout).unwrap();
    let unhex = |h: &str| -> Vec<u8> {
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect()
    };
    v.into_iter().map(|(f, b, x)| (f, unhex(&b), x)).collect()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_date_range_from_a_backup_reimports_and_reads_back_as_mbox_and_maildir() {
    let env = Env::new();
    env.ok("zmprov", &["cd", "d.test"]);
    env.ok("zmprov", &["ca", USER, "secret"]);
    env.ok("zmprov", &["ca", OTHER, "secret"]);
    for f in ["/Work", "/Work/Deep"] {
        env.ok("zmmailbox", &["-z", "-m", USER, "cf", f]);
    }
    const NEW: &str = "Mon, 7 Dec 2026 10:00:00 +0000";
    const OLD: &str = "Tue, 3 Mar 2020 10:00:00 +0000";
    // Lines mbox must quote, at several depths.
    let tricky = "From the start of a line\r\n>From once quoted\r\n>>From twice\r\n";
    env.add("/Inbox", "old-inbox", OLD, "", "");
    let (n1, _) = env.add("/Inbox", "new-inbox", NEW, "f", tricky);
    let (n2, _) = env.add("/Work", "new-work", NEW, "", "");
    env.add("/Work", "old-work", OLD, "f", "");
    let (n3, _) = env.add("/Work/Deep", "new-deep", NEW, "u", "From x\r\n");
    env.ok("zmmailbox", &["-z", "-m", USER, "fm", &n2, "1"]);
    let folders = ["/Inbox", "/Work", "/Work/Deep"];
    let expected: Vec<Summary> = env
        .summary(USER, &folders)
        .into_iter()
        .filter(|m| m.1.starts_with("new-"))
        .collect();
    assert_eq!(expected.len(), 3);
    env.ok("zmbackup", &["-f", "-a", "all", "-sync"]);
    // After the backup: gone from the mailbox, or only in it.
    for id in [&n1, &n2, &n3] {
        env.ok("zmmailbox", &["-z", "-m", USER, "dm", id]);
    }
    env.add("/Inbox", "new-live-only", NEW, "", "");

    // tgz, re-imported into another account: equal item by item.
    let range = "after:2025/01/01";
    let tgz = env.root.join("range.tgz");
    let o = env.export(&["-a", USER, range, "-o", tgz.to_str().unwrap(), "--json"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    let report: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(report["messages"], 3, "{report}");
    assert!(
        report["point"].as_str().unwrap().starts_with("full-"),
        "{report}"
    );
    assert_eq!(mode(&tgz), 0o600);
    env.ok(
        "zmmailbox",
        &[
            "-z",
            "-m",
            OTHER,
            "postRestURL",
            "//?fmt=tgz",
            tgz.to_str().unwrap(),
        ],
    );
    assert_eq!(env.summary(OTHER, &folders), expected);

    // What exports killed before (a pid no process has) left in the directory
    // is removed by the next export there; another machine's, and other
    // files, are not.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let stale_file = env
        .root
        .join(format!(".old.mbox.mailvault-export.{host}.999999999.tmp"));
    std::fs::write(&stale_file, b"From partial\n").unwrap();
    let stale_dir = env.root.join(format!(
        ".Old-Maildir.mailvault-export.{host}.999999998.tmp"
    ));
    std::fs::create_dir_all(stale_dir.join("cur")).unwrap();
    let foreign = env
        .root
        .join(".old.mbox.mailvault-export.elsewhere.invalid.999999999.tmp");
    std::fs::write(&foreign, b"another machine's").unwrap();

    // mbox: Python's reader gets the same messages, byte for byte, in folder order.
    let mbox = env.root.join("range.mbox");
    let o = env.export(&["-a", USER, range, "-o", mbox.to_str().unwrap()]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("3 message(s)"), "{}", o.stdout);
    assert!(
        !stale_file.exists() && !stale_dir.exists(),
        "stale temporaries swept"
    );
    assert!(
        foreign.exists(),
        "another machine's temporary is left alone"
    );
    let left: Vec<String> = std::fs::read_dir(&env.root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".mailvault-export.") && !n.contains("elsewhere"))
        .collect();
    assert!(left.is_empty(), "the export left its temporary: {left:?}");
    let text = std::fs::read(&mbox).unwrap();
    assert!(
        text.windows(28)
            .any(|w| w == b"\n>From the start of a line\r\n"),
        "From lines are quoted"
    );
    let read = python_reads("mbox", &mbox);
    let bytes: Vec<&Vec<u8>> = read.iter().map(|r| &r.1).collect();
    let want: Vec<&Vec<u8>> = expected.iter().map(|m| &m.2).collect();
    assert_eq!(bytes, want);
    assert!(
        read.iter()
            .all(|r| r.2.starts_with("sender@y.test ") && r.2.contains(" 2026")),
        "{:?}",
        read.iter().map(|r| &r.2).collect::<Vec<_>>()
    );

    // Maildir: folders as Maildir++ directories, flags in the names, private.
    let md = env.root.join("range-maildir");
    let o = env.export(&[
        "-a",
        USER,
        range,
        "--format",
        "maildir",
        "-o",
        md.to_str().unwrap(),
    ]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    let read = python_reads("maildir", &md);
    let got: Vec<(&str, &Vec<u8>)> = read.iter().map(|r| (r.0.as_str(), &r.1)).collect();
    assert_eq!(
        got,
        vec![
            ("", &expected[0].2),
            ("Work", &expected[1].2),
            ("Work.Deep", &expected[2].2)
        ]
    );
    // new-inbox is flagged, new-work was marked read, new-deep is unread.
    assert!(read[0].2.contains('F'), "{read:?}");
    assert!(read[1].2.contains('S'), "{read:?}");
    assert!(!read[2].2.contains('S'), "{read:?}");
    for p in walk(&md) {
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&p), want, "{}", p.display());
    }
    assert_eq!(mode(&md), 0o700);

    // Never over an existing output; usage errors are exit 2.
    let before = std::fs::read(&mbox).unwrap();
    let again = env.export(&["-a", USER, range, "-o", mbox.to_str().unwrap()]);
    assert_eq!(again.code, 1, "{}{}", again.stdout, again.stderr);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert_eq!(std::fs::read(&mbox).unwrap(), before);
    let unknown = env.root.join("x.unknown");
    assert_eq!(
        env.export(&["-a", USER, "-o", unknown.to_str().unwrap()])
            .code,
        2
    );
    assert_eq!(
        env.export(&[
            "-a",
            USER,
            "color:red",
            "-o",
            env.root.join("y.mbox").to_str().unwrap()
        ])
        .code,
        2
    );

    // Through a running server (it holds the home): a folder with its subfolder.
    {
        let h = Home::at(&env.home);
        let mut cfg = h.open().unwrap();
        for key in [
            "lmtp_bind_port",
            "admin_bind_port",
            "imaps_bind_port",
            "imap_bind_port",
        ] {
            cfg.set(key, &free_port().to_string()).unwrap();
        }
        cfg.save(&h.localconfig_path()).unwrap();
    }
    let _server = Server(spawn_server(&env.home, std::process::Stdio::inherit()));
    let work = env.root.join("work.mbox");
    let o = env.export(&[
        "-a",
        USER,
        "--folder",
        "/Work",
        "-o",
        work.to_str().unwrap(),
    ]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    let read = python_reads("mbox", &work);
    let subjects: Vec<bool> = read
        .iter()
        .map(|r| String::from_utf8_lossy(&r.1).contains("Subject: old-work"))
        .collect();
    assert_eq!(read.len(), 3, "old-work, new-work and new-deep");
    assert_eq!(subjects.iter().filter(|s| **s).count(), 1);
    assert!(read.iter().any(|r| r.1 == expected[2].2));
}
