//! Backups to an S3 target through the real binary: zmbackup, zmbackupquery,
//! `mailvault backup verify --read-data` and zmrestore against `s3://...` on a real
//! S3-compatible server (s3s-fs, in this test process, on 127.0.0.1), configured
//! with the home's `s3_*` local config keys; and against moto's S3 server
//! (`backup_s3_cli/moto.rs`).

mod common;
#[path = "../../mv-backup/tests/common/s3.rs"]
mod s3;

use common::*;
use std::path::{Path, PathBuf};

#[path = "backup_s3_cli/moto.rs"]
mod moto;

fn deliver(env: &Env, user: &str, subject: &str, lines: usize) -> PathBuf {
    let path = env.root.join(format!("{subject}.eml"));
    let mut body = format!("From: x@y.test\r\nTo: {user}\r\nSubject: {subject}\r\n\r\n");
    for i in 0..lines {
        body.push_str(&format!("{subject} line {i}\r\n"));
    }
    std::fs::write(&path, body).unwrap();
    env.ok(
        "zmmailbox",
        &["-z", "-m", user, "am", "/Inbox", path.to_str().unwrap()],
    );
    path
}

/// (id, subject) of the Inbox, sorted by subject.
fn inbox(env: &Env, user: &str) -> Vec<(String, String)> {
    let o = env.ok(
        "zmmailbox",
        &["-z", "-m", user, "s", "--json", "-l", "1000", "in:Inbox"],
    );
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let mut out: Vec<(String, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].to_string(), m["subject"].as_str().unwrap().into()))
        .collect();
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

#[test]
fn backup_query_verify_and_restore_through_s3() {
    let env = Env::new();
    let server = s3::S3Server::start(&env.root.join("s3"));
    let url = server.url("mail/backups");
    // Not configured yet: a plain-http endpoint needs consent, and says how.
    let mut args = vec![
        "localconfig".to_string(),
        "-e".into(),
        "s3_part_size_mb=5".into(),
    ];
    for (k, v) in server.local_config() {
        if k != "s3_allow_http" {
            args.extend(["-e".into(), format!("{k}={v}")]);
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(env.run(Path::new(BIN), &args).code, 0);
    env.ok("zmprov", &["cd", "d.test"]);
    env.ok("zmprov", &["ca", "a@d.test", "secret"]);
    env.ok("zmprov", &["ca", "b@d.test", "secret"]);
    let mut files = vec![deliver(&env, "a@d.test", "a0", 400)];
    deliver(&env, "b@d.test", "b0", 300);
    let o = env.zm("zmbackup", &["-f", "-a", "all", "-t", &url, "-sync"]);
    assert_eq!(o.code, 2, "{}{}", o.stdout, o.stderr);
    assert!(o.stderr.contains("s3_allow_http=true"), "{}", o.stderr);
    let o = env.run(Path::new(BIN), &["localconfig", "-e", "s3_allow_http=true"]);
    assert_eq!(o.code, 0, "{}", o.stderr);

    // A mistyped prefix is no target.
    let o = env.zm("zmbackupquery", &["-t", &server.url("mail/nothing")]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(o.stderr.contains("no backup target at"), "{}", o.stderr);

    // A 6.5 MB message, stored uncompressed: its pack goes up as a multipart
    // upload of 5 MiB parts.
    files.push(deliver(&env, "a@d.test", "a1-big", 350_000));
    let started = std::time::Instant::now();
    let o = env.ok(
        "zmbackup",
        &["-f", "-a", "all", "-t", &url, "--zipStore", "-sync"],
    );
    let full = o.stdout.trim().to_string();
    eprintln!("full backup to S3: {:?}", started.elapsed());
    assert!(full.starts_with("full-"), "{}", o.stdout);
    assert!(
        o.stderr
            .contains(&format!("{full}: completed (2 of 2 accounts")),
        "{}",
        o.stderr
    );
    // The objects are in the bucket, under the prefix, session.xml included.
    assert!(
        server
            .object_file(&format!("mail/backups/sessions/{full}/session.xml"))
            .is_file()
    );
    let big_pack = walk(&server.object_file("mail/backups/packs"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "zip"))
        .map(|p| std::fs::metadata(&p).unwrap().len())
        .max()
        .unwrap();
    assert!(big_pack > 5 << 20, "the largest pack has {big_pack} bytes");
    assert!(!server.object_file("mail/backups/backup.lock").exists());

    files.push(deliver(&env, "a@d.test", "a2", 250));
    let o = env.ok(
        "zmbackup",
        &["-i", "-t", &url, "--include", "Secrets", "-sync"],
    );
    let incr = o.stdout.trim().to_string();
    assert!(incr.starts_with("incr-"), "{}", o.stdout);
    // The server's secrets stay out of the bucket unless asked for.
    let token = |label: &str| {
        server.object_file(&format!(
            "mail/backups/sessions/{label}/sys/conf/admin.token"
        ))
    };
    assert!(!token(&full).exists());
    assert!(token(&incr).is_file());

    let q = env.ok("zmbackupquery", &["-t", &url]).stdout;
    let blocks: Vec<&str> = q.split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "{q}");
    assert!(blocks[0].starts_with(&format!(
        "Label:   {incr}\nType:    incremental\nStatus:  completed\n"
    )));
    assert!(blocks[1].starts_with(&format!(
        "Label:   {full}\nType:    full\nStatus:  completed\n"
    )));
    assert!(blocks[1].contains("Number of accounts: 2"), "{q}");

    let v = env.run(
        Path::new(BIN),
        &["backup", "verify", "--read-data", "-t", &url],
    );
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    assert!(v.stdout.contains("No problems found."), "{}", v.stdout);

    // Restore a@d.test from S3 (full + the incremental's redo logs) into a new
    // account: every message, byte for byte.
    let o = env.ok(
        "zmrestore",
        &["-a", "a@d.test", "-t", &url, "-br", "-ca", "-pre", "s3_"],
    );
    assert!(o.stdout.contains("restored as s3_a@d.test"), "{}", o.stdout);
    let restored = inbox(&env, "s3_a@d.test");
    let subjects: Vec<&str> = restored.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(subjects, ["a0", "a1-big", "a2"]);
    for (id, subject) in &restored {
        let file = files
            .iter()
            .find(|f| f.file_stem().unwrap().to_str().unwrap() == subject)
            .unwrap();
        let got = env.ok("zmmailbox", &["-z", "-m", "s3_a@d.test", "gm", id]);
        assert_eq!(
            got.stdout.as_bytes(),
            std::fs::read(file).unwrap(),
            "{subject}"
        );
    }

    // Through a running server: the backup and the restore run as its jobs,
    // their S3 requests on the server's runtime.
    {
        let h = mv_home::Home::at(&env.home);
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
    let mut server_process = Server(spawn_server(&env.home, std::process::Stdio::inherit()));
    files.push(deliver(&env, "a@d.test", "a3", 200));
    let o = env.ok("zmbackup", &["-i", "-t", &url, "-sync"]);
    // A full first for s3_a@d.test, restored since the last full.
    let labels: Vec<&str> = o.stdout.lines().collect();
    assert!(
        labels.len() == 2 && labels[0].starts_with("full-") && labels[1].starts_with("incr-"),
        "{}{}",
        o.stdout,
        o.stderr
    );
    let o = env.ok(
        "zmrestore",
        &["-a", "a@d.test", "-t", &url, "-br", "-ca", "-pre", "srv_"],
    );
    assert!(
        o.stdout.contains("restored as srv_a@d.test"),
        "{}",
        o.stdout
    );
    assert!(
        o.stderr.contains("restore: restoring a@d.test"),
        "the job's log, followed: {}",
        o.stderr
    );
    let subjects: Vec<String> = inbox(&env, "srv_a@d.test")
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(subjects, ["a0", "a1-big", "a2", "a3"]);
    // SIGTERM: a clean stop.
    // SAFETY: kill(2) on the server process this test started.
    unsafe { libc::kill(server_process.0.id() as i32, libc::SIGTERM) };
    let status = server_process.0.wait().unwrap();
    assert!(status.success(), "the server stopped with {status}");

    // Damage one byte of a pack in the bucket: verify names the account.
    let zip = walk(&server.object_file("mail/backups/packs"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "zip"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&zip).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x01;
    std::fs::write(&zip, bytes).unwrap();
    let v = env.run(
        Path::new(BIN),
        &["backup", "verify", "--read-data", "-t", &url],
    );
    assert_eq!(v.code, 1, "{}{}", v.stdout, v.stderr);
    assert!(v.stdout.contains("affects: a@d.test"), "{}", v.stdout);
}
