//! `zmmailbox -z -m USER getRestURL "//?fmt=tgz" > f.tgz` and `postRestURL
//! "//?fmt=tgz&resolve=..." f.tgz` through the real binary: in-process (streaming),
//! in a stdin batch, and through a running server's admin API.

use mv_home::Home;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mailvault");
const U: &str = "u@example.com";
const V: &str = "v@example.com";

struct Out {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Out {
    fn ok(self) -> Vec<u8> {
        assert_eq!(
            self.code,
            0,
            "stderr: {}\nstdout: {}",
            self.stderr,
            String::from_utf8_lossy(&self.stdout)
        );
        self.stdout
    }
    fn text(self) -> String {
        String::from_utf8(self.ok()).unwrap()
    }
    fn json(self) -> serde_json::Value {
        serde_json::from_slice(&self.ok()).unwrap()
    }
    fn failed(&self, expect: &str) {
        assert_eq!(self.code, 1, "stderr: {}", self.stderr);
        assert!(
            self.stderr.starts_with("ERROR: ") && self.stderr.contains(expect),
            "expected {expect:?} in: {}",
            self.stderr
        );
    }
}

struct Env {
    home: tempfile::TempDir,
    links: tempfile::TempDir,
    files: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let links = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(BIN, links.path().join("zmmailbox")).unwrap();
        std::os::unix::fs::symlink(BIN, links.path().join("zmprov")).unwrap();
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

    fn run(&self, tool: &str, args: &[&str], stdin: Option<&str>) -> Out {
        let mut child = Command::new(self.links.path().join(tool))
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
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(input.as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn zmmailbox(&self, user: &str, args: &[&str]) -> Out {
        let mut all = vec!["-z", "-m", user];
        all.extend_from_slice(args);
        self.run("zmmailbox", &all, None)
    }

    fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.files.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    fn path(&self, name: &str) -> String {
        self.files.path().join(name).to_str().unwrap().to_string()
    }
}

/// A mailbox with nested folders, flags, tags, dates, 8-bit bytes, contacts and
/// appointments, made with zmmailbox commands.
fn populate(env: &Env, u: &str) {
    env.run("zmprov", &["-l", "ca", u, "pw"], None).ok();
    let mb = |args: &[&str]| env.zmmailbox(u, args).ok();
    mb(&["cf", "/Inbox/sub/deeper"]);
    mb(&["cf", "/Work Stuff"]);
    mb(&["cf", "-V", "contact", "/Work Contacts"]);
    mb(&["cf", "-V", "appointment", "/Team Cal"]);
    mb(&["ct", "-c", "3", "work"]);
    mb(&["ct", "-c", "5", "later"]);
    let plain = env.file(
        "plain.eml",
        b"From: a@x\r\nSubject: plain\r\nMessage-ID: <p@x>\r\n\r\nhello\r\n",
    );
    let mut bin =
        b"From: b@x\r\nSubject: binary\r\nContent-Transfer-Encoding: 8bit\r\n\r\n".to_vec();
    bin.extend((0u8..=255).rev());
    bin.extend_from_slice(b"\r\n\xe9t\xe9\r\n");
    let bin = env.file("bin.eml", &bin);
    let p = plain.to_str().unwrap();
    let b = bin.to_str().unwrap();
    mb(&["am", "-d", "2010/11/19 13:55:08", "/Inbox", p]);
    mb(&["am", "-F", "uf", "-T", "work", "/Inbox/sub", p]);
    mb(&[
        "am",
        "-F",
        "rd",
        "-T",
        "work,later",
        "-d",
        "2001/02/03 04:05:06",
        "/Inbox/sub/deeper",
        b,
    ]);
    mb(&["am", "-F", "x", "/Work Stuff", b]);
    let vcf = env.file(
        "c.vcf",
        b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Jane Doe\r\nEND:VCARD\r\nBEGIN:VCARD\r\nVERSION:3.0\r\nFN:John Roe\r\nEND:VCARD\r\n",
    );
    mb(&["pru", "/Contacts", vcf.to_str().unwrap()]);
    let boss = env.file(
        "boss.vcf",
        b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Boss\r\nEND:VCARD\r\n",
    );
    mb(&["pru", "/Work Contacts", boss.to_str().unwrap()]);
    let ics = |uid: &str, summary: &str| {
        format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nSEQUENCE:2\r\n\
             DTSTAMP:20101119T135508Z\r\nDTSTART:20101120T100000Z\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )
    };
    let cal = env.file("cal.ics", ics("e1@x", "Standup").as_bytes());
    mb(&["pru", "/Calendar", cal.to_str().unwrap()]);
    let team = env.file("team.ics", ics("e2@x", "Retro").as_bytes());
    mb(&["pru", "/Team Cal", team.to_str().unwrap()]);
}

/// (folder, bytes, flags, tag names, received_ms)
type Message = (String, Vec<u8>, u64, Vec<String>, i64);

/// A mailbox's content as the CLI shows it, without ids.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    folders: Vec<(String, String)>,
    tags: Vec<(String, u64)>,
    messages: Vec<Message>,
    /// (folder, exported vcf or ics)
    pim: Vec<(String, String)>,
}

fn snapshot(env: &Env, u: &str) -> Snapshot {
    let folders = env.zmmailbox(u, &["gaf", "--json"]).json();
    let tags = env.zmmailbox(u, &["gat", "--json"]).json();
    let tag_name = |id: &serde_json::Value| {
        tags.as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == *id)
            .map(|t| t["name"].as_str().unwrap().to_string())
            .unwrap()
    };
    let mut s = Snapshot {
        folders: vec![],
        tags: tags
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["name"].as_str().unwrap().into(),
                    t["color"].as_u64().unwrap(),
                )
            })
            .collect(),
        messages: vec![],
        pim: vec![],
    };
    for f in folders.as_array().unwrap() {
        let path = f["path"].as_str().unwrap().to_string();
        let view = f["view"].as_str().unwrap().to_string();
        if path == "/" {
            continue;
        }
        s.folders.push((path.clone(), view.clone()));
        match view.as_str() {
            "message" => {
                let found = env
                    .zmmailbox(u, &["s", "--json", "-l", "1000", &format!("in:\"{path}\"")])
                    .json();
                for m in found.as_array().unwrap() {
                    let id = m["id"].to_string();
                    let mut names: Vec<String> =
                        m["tags"].as_array().unwrap().iter().map(tag_name).collect();
                    names.sort();
                    s.messages.push((
                        path.clone(),
                        env.zmmailbox(u, &["gm", &id]).ok(),
                        m["flags"].as_u64().unwrap(),
                        names,
                        m["received_ms"].as_i64().unwrap(),
                    ));
                }
            }
            "contact" | "appointment" => {
                s.pim
                    .push((path.clone(), env.zmmailbox(u, &["gru", &path]).text()));
            }
            _ => {}
        }
    }
    s.folders.sort();
    s.tags.sort();
    s.messages.sort();
    s.pim.sort();
    s
}

#[test]
fn tgz_round_trip_through_stdout_and_files() {
    let env = Env::new();
    env.run("zmprov", &["-l", "cd", "example.com"], None).ok();
    populate(&env, U);
    let before = snapshot(&env, U);
    assert_eq!(before.messages.len(), 4);
    assert!(
        before
            .messages
            .iter()
            .any(|m| m.1.contains(&0xff) && m.2 & 4 == 0)
    );
    let all_pim: String = before.pim.iter().map(|p| p.1.as_str()).collect();
    assert_eq!(all_pim.matches("BEGIN:VCARD").count(), 3);
    assert_eq!(all_pim.matches("BEGIN:VEVENT").count(), 2);

    // getRestURL to stdout, byte for byte.
    let tgz = env.zmmailbox(U, &["getRestURL", "//?fmt=tgz"]).ok();
    assert_eq!(&tgz[..2], &[0x1f, 0x8b]);
    let file = env.file("f.tgz", &tgz);
    let f = file.to_str().unwrap();

    // Empty everything, then a reset import brings it back.
    for folder in ["/Inbox/sub", "/Work Stuff", "/Work Contacts", "/Team Cal"] {
        env.zmmailbox(U, &["df", folder]).ok();
    }
    for folder in ["/Inbox", "/Contacts", "/Calendar"] {
        env.zmmailbox(U, &["ef", folder]).ok();
    }
    let m = env.file("new.eml", b"Subject: new\r\n\r\nnew\r\n");
    env.zmmailbox(U, &["am", "/Inbox", m.to_str().unwrap()])
        .ok();
    assert_ne!(snapshot(&env, U), before);
    let said = env
        .zmmailbox(U, &["postRestURL", "//?fmt=tgz&resolve=reset", f])
        .text();
    assert!(said.contains("messages: 4 added"), "{said}");
    assert!(
        said.contains("contacts: 3 added") && said.contains("appointments: 2 added"),
        "{said}"
    );
    assert_eq!(snapshot(&env, U), before);

    // skip (the default) adds nothing twice.
    let said = env.zmmailbox(U, &["pru", "//?fmt=tgz", f]).text();
    assert!(
        said.contains("messages: 0 added, 0 replaced, 0 updated, 4 skipped"),
        "{said}"
    );
    assert_eq!(snapshot(&env, U), before);

    // modify puts flags back.
    let id = env.zmmailbox(U, &["s", "--json", "in:/Inbox/sub"]).json()[0]["id"].to_string();
    env.zmmailbox(U, &["fm", &id, "0"]).ok();
    assert_ne!(snapshot(&env, U), before);
    let said = env
        .zmmailbox(U, &["pru", "//?fmt=tgz&resolve=modify", f])
        .text();
    assert!(said.contains("4 updated"), "{said}");
    assert_eq!(snapshot(&env, U), before);

    // A damaged archive is refused; the mailbox stays as it was.
    let cut = env.file("cut.tgz", &tgz[..tgz.len() * 2 / 3]);
    env.zmmailbox(
        U,
        &["pru", "//?fmt=tgz&resolve=reset", cut.to_str().unwrap()],
    )
    .failed("damaged or truncated");
    assert_eq!(snapshot(&env, U), before);
    let text = env.file("x.tgz", b"not an archive");
    env.zmmailbox(
        U,
        &["pru", "//?fmt=tgz&resolve=reset", text.to_str().unwrap()],
    )
    .failed("not a gzip file");
    assert_eq!(snapshot(&env, U), before);
    assert_eq!(
        env.zmmailbox(U, &["pru", "//?fmt=tgz&resolve=merge", f])
            .code,
        2
    );

    // -o with a query, into another account (its stdin batch: one process).
    env.run("zmprov", &["-l", "ca", V, "pw"], None).ok();
    let out = env.path("work.tgz");
    let report = env
        .zmmailbox(
            U,
            &["gru", "--json", "-o", &out, "//?fmt=tgz&query=tag:work"],
        )
        .json();
    assert_eq!(report["messages"], 2, "{report}");
    let batch = format!(
        "gru -o {out}2 //?fmt=tgz&query=tag%3Awork\npru //?fmt=tgz&resolve=replace {out}2\n"
    );
    let said = env
        .run(
            "zmmailbox",
            &["-z", "-m", V],
            Some(&format!("pru //?fmt=tgz {out}\n{batch}")),
        )
        .text();
    assert!(said.contains("messages: 2 added"), "{said}");
    assert!(said.contains("messages: 0 added, 2 replaced"), "{said}");
    let other = snapshot(&env, V);
    assert_eq!(
        (&other.folders, &other.tags, &other.pim),
        (&before.folders, &before.tags, &before.pim)
    );
    let with_work: Vec<_> = before
        .messages
        .iter()
        .filter(|m| m.3.contains(&"work".to_string()))
        .cloned()
        .collect();
    assert_eq!(other.messages, with_work);

    // Only the whole mailbox goes as tgz.
    env.zmmailbox(U, &["gru", "/Inbox?fmt=tgz"])
        .failed("whole mailbox");
    env.zmmailbox(U, &["gru", "/Inbox"]).failed("//?fmt=tgz");
}

// ------------------------------------------------------ through a running server

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    mv_home::ports::free_loopback_port().unwrap()
}

fn serve(home: &Path) -> Server {
    let h = Home::at(home);
    h.init().unwrap();
    let mut cfg = h.open().unwrap();
    cfg.set("lmtp_bind_port", &free_port().to_string()).unwrap();
    cfg.set("admin_bind_port", &free_port().to_string())
        .unwrap();
    cfg.set("imap_bind_port", &free_port().to_string()).unwrap();
    cfg.set("imaps_bind_port", &free_port().to_string())
        .unwrap();
    cfg.save(&h.localconfig_path()).unwrap();
    let mut child = Command::new(BIN)
        .arg("--home")
        .arg(home)
        .arg("serve")
        .env("MAILVAULT_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
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

#[test]
fn tgz_round_trip_through_the_admin_api() {
    let env = Env::new();
    let _server = serve(env.home.path());
    env.run("zmprov", &["cd", "example.com"], None).ok();
    populate(&env, U);
    env.run("zmprov", &["ca", V, "pw"], None).ok();
    let before = snapshot(&env, U);
    let tgz = env.zmmailbox(U, &["gru", "//?fmt=tgz"]).ok();
    let file = env.file("f.tgz", &tgz);
    let said = env
        .zmmailbox(
            V,
            &["pru", "//?fmt=tgz&resolve=reset", file.to_str().unwrap()],
        )
        .text();
    assert!(said.contains("messages: 4 added"), "{said}");
    assert_eq!(snapshot(&env, V), before);
    let cut = env.file("cut.tgz", &tgz[..tgz.len() / 2]);
    env.zmmailbox(
        V,
        &["pru", "//?fmt=tgz&resolve=reset", cut.to_str().unwrap()],
    )
    .failed("damaged or truncated");
    assert_eq!(snapshot(&env, V), before);
}
