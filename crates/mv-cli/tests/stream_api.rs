//! The admin API's streams and jobs through the real binary and a running
//! server: a mailbox far over the old 10 MiB answer limit goes out with
//! `getRestURL "//?fmt=tgz"` and back in with `postRestURL` while the server's
//! peak memory stays flat, and a restore longer than the client's timeout is a
//! job the CLI follows to its end.
//!
//! The mailbox is `MV_STREAM_TEST_MB` MiB (default 200) of messages that do not
//! compress, so the archive is about as large as the mailbox: each is one
//! attachment (`application/octet-stream`), which the search index names but does
//! not tokenize, so the server's indexing before the measurement is short.

mod common;

use common::{Env, Out, free_port, spawn_server};
use mv_home::Home;
use mv_server::Service;
use std::process::Child;

const U: &str = "big@example.com";
const V: &str = "copy@example.com";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    /// The server's peak resident memory so far, in KiB (`VmHWM`).
    fn peak_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }
}

fn ports(env: &Env, extra: &[(&str, &str)]) {
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
    for (k, v) in extra {
        cfg.set(k, v).unwrap();
    }
    cfg.save(&h.localconfig_path()).unwrap();
}

/// Text that does not compress: printable bytes from a xorshift generator.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + len / 76 * 2);
    for i in 0..len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(b'!' + (x % 90) as u8);
        if i % 76 == 75 {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// Fills `U`'s mailbox with `mb` MiB of 1 MiB messages, in this process (no
/// server yet), and makes `V`.
fn populate(env: &Env, mb: usize) {
    let home = Home::at(&env.home);
    let (service, _) = Service::open(&home).unwrap();
    service
        .execute(mv_server::Request::CreateDomain {
            name: "example.com".into(),
            attrs: vec![],
        })
        .unwrap();
    let a = service.create_account(U, Some("pw"), &[]).unwrap();
    service.create_account(V, Some("pw"), &[]).unwrap();
    for i in 0..mb {
        let mut msg = format!(
            "From: a@example.com\r\nTo: {U}\r\nSubject: big {i}\r\nMessage-ID: <big{i}@example.com>\r\n\
             MIME-Version: 1.0\r\nContent-Type: application/octet-stream; name=\"big{i}.bin\"\r\n\
             Content-Disposition: attachment; filename=\"big{i}.bin\"\r\n\r\n"
        )
        .into_bytes();
        msg.extend(noise(i as u64 + 1, 1 << 20));
        let options = mv_store::DeliverOptions {
            folder_id: mv_redo::ops::folders::INBOX,
            flags: 0,
            tags: vec![],
            received: None,
        };
        service
            .store()
            .add_message(a.mailbox_id, &msg, &options)
            .unwrap();
    }
}

/// Adds `n` small messages to `U` without a server: each is a redo record a
/// restore that rolls forward replays.
fn add_small(env: &Env, n: usize) {
    let home = Home::at(&env.home);
    let (service, _) = Service::open(&home).unwrap();
    let a = service.directory().get_account(U).unwrap();
    let options = mv_store::DeliverOptions {
        folder_id: mv_redo::ops::folders::INBOX,
        flags: 0,
        tags: vec![],
        received: None,
    };
    for i in 0..n {
        let msg = format!(
            "From: a@example.com\r\nTo: {U}\r\nSubject: small {i}\r\nMessage-ID: <small{i}@example.com>\r\n\r\nline {i}\r\n"
        );
        service
            .store()
            .add_message(a.mailbox_id, msg.as_bytes(), &options)
            .unwrap();
    }
}

/// Waits until the server's background indexer has caught up with `account`
/// (`zmprov rim ACCOUNT status`), so that a memory baseline includes its work.
fn indexed(env: &Env, account: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let o = ok(
            env.zm("zmprov", &["--json", "rim", account, "status"]),
            "rim status",
        );
        let st: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
        if st["indexed_change"] == st["mailbox_change"] {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the index of {account} did not catch up: {st}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The messages of an account's mailbox (`zmprov -json gmi`).
fn messages(env: &Env, account: &str) -> u64 {
    let o = ok(env.zm("zmprov", &["-l", "-json", "gmi", account]), "gmi");
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    v["messages"].as_u64().unwrap_or_else(|| panic!("{v}"))
}

fn ok(o: Out, what: &str) -> Out {
    assert_eq!(o.code, 0, "{what}: {}{}", o.stdout, o.stderr);
    o
}

#[test]
fn a_large_mailbox_streams_out_and_in_with_flat_server_memory() {
    let mb: usize = std::env::var("MV_STREAM_TEST_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let env = Env::new();
    ports(&env, &[]);
    populate(&env, mb);
    let server = Server(spawn_server(&env.home, std::process::Stdio::inherit()));
    // The baseline is the server's peak once it has indexed the mailbox: the
    // indexer's own cost is not what this test measures.
    indexed(&env, U);
    let before = server.peak_kib();

    let file = env.root.join("big.tgz");
    let f = file.to_str().unwrap();
    ok(
        env.zm(
            "zmmailbox",
            &["-z", "-m", U, "getRestURL", "-o", f, "//?fmt=tgz"],
        ),
        "getRestURL",
    );
    let size = std::fs::metadata(&file).unwrap().len();
    let exported = server.peak_kib();
    assert!(
        exported.saturating_sub(before) < 64 << 10,
        "the server's peak memory grew by {} KiB exporting a {size}-byte archive",
        exported - before
    );
    assert!(
        size > (mb as u64) << 19,
        "the archive ({size} bytes) holds the {mb} MiB mailbox"
    );
    let said = ok(
        env.zm(
            "zmmailbox",
            &["-z", "-m", V, "postRestURL", "//?fmt=tgz&resolve=reset", f],
        ),
        "postRestURL",
    );
    assert!(
        said.stdout.contains(&format!("messages: {mb} added")),
        "{}",
        said.stdout
    );
    indexed(&env, V);
    let after = server.peak_kib();
    assert!(
        after.saturating_sub(before) < 64 << 10,
        "the server's peak memory grew by {} KiB importing a {size}-byte archive",
        after - before
    );

    // What arrived is what left: the copy exports to the same messages.
    assert_eq!(messages(&env, V), mb as u64);
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn a_restore_longer_than_the_client_timeout_is_a_followed_job() {
    let env = Env::new();
    // One second: a restore that rolls a full forward over 3,000 redo records
    // takes longer in a test build.
    ports(&env, &[("admin_client_timeout_seconds", "1")]);
    populate(&env, 4);
    let target = env.root.join("target");
    let t = target.to_str().unwrap();
    ok(
        env.zm("zmbackup", &["-f", "-a", "all", "-t", t]),
        "zmbackup",
    );
    add_small(&env, 3000);
    let server = Server(spawn_server(&env.home, std::process::Stdio::inherit()));
    let started = std::time::Instant::now();
    let o = ok(
        env.zm(
            "zmrestore",
            &["-a", "all", "-t", t, "-ca", "-pre", "restored_"],
        ),
        "zmrestore through the server",
    );
    let took = started.elapsed();
    assert!(
        took > std::time::Duration::from_secs(1),
        "the restore ({took:?}) must outlast the one-second client timeout to test following it"
    );
    assert!(o.stderr.contains("restore: restoring"), "{}", o.stderr);
    // The restored copy is there, with its messages.
    assert_eq!(messages(&env, &format!("restored_{U}")), 4 + 3000);
    drop(server);
}

#[test]
fn a_backup_longer_than_the_client_timeout_is_a_followed_job() {
    let env = Env::new();
    ports(&env, &[("admin_client_timeout_seconds", "1")]);
    // 48 MiB that does not compress, deflated: longer than a second in a
    // test build.
    populate(&env, 48);
    let target = env.root.join("target");
    let t = target.to_str().unwrap();
    let server = Server(spawn_server(&env.home, std::process::Stdio::inherit()));
    let started = std::time::Instant::now();
    let o = ok(
        env.zm(
            "zmbackup",
            &["-f", "-a", "all", "-t", t, "-z", "-sync", "--json"],
        ),
        "zmbackup -sync through the server",
    );
    let took = started.elapsed();
    assert!(
        took > std::time::Duration::from_secs(1),
        "the backup ({took:?}) must outlast the one-second client timeout to test following it"
    );
    // The outcome the CLI printed is the backup's report.
    let report: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let session = &report["sessions"][0];
    assert_eq!(session["status"], "completed", "{report}");
    assert_eq!(session["accounts_completed"], 2, "{report}");
    let label = session["label"].as_str().unwrap().to_string();
    let q = ok(
        env.zm("zmbackupquery", &["-t", t, "-lb", &label]),
        "zmbackupquery",
    );
    assert!(q.stdout.contains("completed"), "{}", q.stdout);
    // Without -sync the label is the answer, at once.
    let o = ok(
        env.zm("zmbackup", &["-i", "-a", "all", "-t", t]),
        "zmbackup -i through the server",
    );
    assert!(o.stdout.trim().starts_with("incr-"), "{}", o.stdout);
    drop(server);
}

/// The admin API's address and token.
fn api(env: &Env) -> (String, String) {
    let h = Home::at(&env.home);
    let port = h.open().unwrap().get_u64("admin_bind_port");
    (format!("http://127.0.0.1:{port}"), h.admin_token().unwrap())
}

fn call(
    method: &str,
    url: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into();
    let auth = format!("Bearer {token}");
    let mut resp = match (method, body) {
        ("POST", Some(b)) => agent
            .post(url)
            .header("Authorization", &auth)
            .send_json(b)
            .unwrap(),
        ("DELETE", _) => agent
            .delete(url)
            .header("Authorization", &auth)
            .call()
            .unwrap(),
        _ => agent
            .get(url)
            .header("Authorization", &auth)
            .call()
            .unwrap(),
    };
    let v: serde_json::Value = resp.body_mut().read_json().unwrap();
    v
}

#[test]
fn a_cancelled_backup_job_leaves_what_zmbackupabort_leaves() {
    let env = Env::new();
    ports(&env, &[]);
    populate(&env, 4);
    {
        // More accounts, so that the cancel finds accounts not yet backed up.
        let (service, _) = Service::open(&Home::at(&env.home)).unwrap();
        for i in 0..6 {
            let a = service
                .create_account(&format!("more{i}@example.com"), Some("pw"), &[])
                .unwrap();
            let msg = [b"Subject: more\r\n\r\n".to_vec(), noise(i + 100, 2 << 20)].concat();
            let options = mv_store::DeliverOptions {
                folder_id: mv_redo::ops::folders::INBOX,
                flags: 0,
                tags: vec![],
                received: None,
            };
            service
                .store()
                .add_message(a.mailbox_id, &msg, &options)
                .unwrap();
        }
    }
    let target = env.root.join("target");
    let t = target.to_str().unwrap();
    let _server = Server(spawn_server(&env.home, std::process::Stdio::inherit()));
    let (base, token) = api(&env);
    let started = call(
        "POST",
        &format!("{base}/v1/jobs"),
        &token,
        Some(serde_json::json!({"op": "backup", "kind": "full", "accounts": ["all"], "target": t})),
    );
    let id = started["result"]["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("{started}"));
    let cancelled = call("DELETE", &format!("{base}/v1/jobs/{id}"), &token, None);
    assert!(
        cancelled["result"]["id"].as_u64() == Some(id),
        "{cancelled}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        let s = call("GET", &format!("{base}/v1/jobs/{id}"), &token, None);
        if s["result"]["state"] != "running" {
            break s["result"].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the job did not end: {s}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(status["state"], "cancelled", "{status}");
    let session = &status["result"]["sessions"][0];
    assert_eq!(session["status"], "aborted", "{status}");
    let label = session["label"].as_str().unwrap().to_string();
    // What zmbackupabort promises: the session is listed as aborted, holds the
    // accounts it completed whole, and nothing is left half-written.
    let q = ok(
        env.zm("zmbackupquery", &["-t", t, "-lb", &label]),
        "zmbackupquery",
    );
    assert!(
        q.stdout.contains("completed (aborted by command)"),
        "{}",
        q.stdout
    );
    assert!(!target.join("tmp").join(&label).exists());
    ok(
        env.run(
            std::path::Path::new(common::BIN),
            &["backup", "verify", "-t", t],
        ),
        "verify after the cancel",
    );
}
