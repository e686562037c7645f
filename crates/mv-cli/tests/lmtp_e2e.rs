//! End to end: the real `mailvault serve` binary, delivered to by Python's
//! smtplib.LMTP (a real protocol client), killed with SIGKILL under load.

mod common;

use common::{Server, free_port};

use mv_home::{Home, HomeLock};
use mv_server::Service;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/lmtp_client.py")
}

/// A fresh home on free ports with accounts; returns the LMTP port.
fn setup(home: &Home, quota_full: &str) -> u16 {
    let (lmtp, admin) = (free_port(), free_port());
    home.init().unwrap();
    let mut cfg = home.open().unwrap();
    cfg.set("lmtp_bind_port", &lmtp.to_string()).unwrap();
    cfg.set("admin_bind_port", &admin.to_string()).unwrap();
    cfg.set("imap_bind_port", &free_port().to_string()).unwrap();
    cfg.set("imaps_bind_port", &free_port().to_string())
        .unwrap();
    cfg.set("mailbox_lmtp_max_message_size", "100000").unwrap();
    cfg.save(&home.localconfig_path()).unwrap();
    let _lock = HomeLock::acquire_waiting(home.root(), std::time::Duration::from_secs(10)).unwrap();
    let (svc, _) = Service::open(home).unwrap();
    svc.directory().create_domain("example.com", &[]).unwrap();
    for name in ["alice", "bob", "carol"] {
        svc.create_account(&format!("{name}@example.com"), Some("pw"), &[])
            .unwrap();
    }
    svc.create_account(quota_full, None, &["zimbraMailQuota".into(), "1000".into()])
        .unwrap();
    let mbox = svc.mailbox_of(quota_full).unwrap();
    let filler = format!("Subject: filler\r\n\r\n{}\r\n", "z".repeat(2000));
    svc.store()
        .add_message(mbox, filler.as_bytes(), &Default::default())
        .unwrap();
    lmtp
}

fn start(home: &Home) -> Server {
    Server::start(home.root(), Stdio::inherit())
}

fn python(args: &[&str]) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(script())
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// Every acknowledged message is in its recipient's mailbox exactly once,
/// byte-exact after the trace headers.
fn verify_acked(home: &Home, outdir: &Path) -> usize {
    let _lock = HomeLock::acquire_waiting(home.root(), std::time::Duration::from_secs(10)).unwrap();
    let (svc, _) = Service::open(home).unwrap();
    let acked = std::fs::read_to_string(outdir.join("acked.txt")).unwrap_or_default();
    let mut n = 0;
    let mut by_rcpt: std::collections::HashMap<String, Vec<mv_store::Item>> = Default::default();
    for line in acked.lines() {
        let (id, rcpt) = line.split_once(' ').unwrap();
        let items = by_rcpt.entry(rcpt.to_string()).or_insert_with(|| {
            let mbox = svc.mailbox_of(rcpt).unwrap();
            svc.store()
                .mailbox(mbox)
                .items(None, Some(mv_store::ItemKind::Message))
                .unwrap()
        });
        let want = format!("{id}@load.test");
        let found: Vec<&mv_store::Item> = items.iter().filter(|i| i.message_id == want).collect();
        assert_eq!(
            found.len(),
            1,
            "acknowledged message {id} to {rcpt} must be stored exactly once"
        );
        let mbox = svc.mailbox_of(rcpt).unwrap();
        let bytes = svc.store().read_blob(mbox, found[0]).unwrap();
        let sent = std::fs::read(outdir.join("msgs").join(format!("{id}.eml"))).unwrap();
        // Byte-exact after the trace headers of its recipient.
        common::assert_traced(&bytes, &sent, "load@example.com", rcpt, rcpt);
        n += 1;
    }
    n
}

#[test]
fn per_recipient_results_and_hostile_input() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let port = setup(&home, "full@example.com");
    let server = start(&home);
    let r = python(&[
        "results",
        &port.to_string(),
        "alice@example.com",
        "nobody@example.com",
        "full@example.com",
    ]);
    assert_eq!(r["alice@example.com"][0], 250);
    assert_eq!(r["nobody@example.com"][0], 550);
    assert!(
        r["nobody@example.com"][1]
            .as_str()
            .unwrap()
            .starts_with("5.1.1")
    );
    assert_eq!(r["full@example.com"][0], 452);
    assert_eq!(r["data"][0], 250);
    let two: Vec<String> = serde_json::from_value(r["two_rcpts"].clone()).unwrap();
    let after_data: Vec<&String> = two
        .iter()
        .skip_while(|l| !l.starts_with("354"))
        .skip(1)
        .collect();
    assert!(
        after_data[0].starts_with("250") && after_data[1].starts_with("250"),
        "{two:?}"
    );

    let b = python(&["bad", &port.to_string(), "bob@example.com", "100000"]);
    let has = |key: &str, code: &str| {
        let lines: Vec<String> = serde_json::from_value(b[key].clone()).unwrap();
        assert!(
            lines.iter().any(|l| l.starts_with(code)),
            "{key}: expected {code} in {lines:?}"
        );
    };
    has("overlong", "500");
    has("nul_command", "500");
    has("bare_lf", "250 2.0.0");
    has("nul_data", "554");
    has("too_big", "552");
    has("unknown", "500");
    has("out_of_order", "503");
    has("helo", "500");
    // Still up: a normal delivery works after all that.
    let again = python(&[
        "results",
        &port.to_string(),
        "alice@example.com",
        "nobody@example.com",
        "full@example.com",
    ]);
    assert_eq!(again["data"][0], 250);
    server.stop();

    let _lock = HomeLock::acquire_waiting(home.root(), std::time::Duration::from_secs(10)).unwrap();
    let (svc, _) = Service::open(&home).unwrap();
    let bob = svc
        .store()
        .mailbox(svc.mailbox_of("bob@example.com").unwrap());
    let subjects: Vec<String> = bob
        .items(None, Some(mv_store::ItemKind::Message))
        .unwrap()
        .into_iter()
        .map(|i| i.subject)
        .collect();
    assert_eq!(
        subjects,
        vec!["bare-lf".to_string()],
        "only the complete, valid message was stored"
    );
    let alice = svc
        .store()
        .mailbox(svc.mailbox_of("alice@example.com").unwrap());
    let two: Vec<_> = alice
        .items(None, Some(mv_store::ItemKind::Message))
        .unwrap()
        .into_iter()
        .filter(|i| i.subject == "two")
        .collect();
    // `results` ran twice; each time two RCPTs named alice's one mailbox.
    assert_eq!(
        two.len(),
        2,
        "two RCPTs naming one mailbox store one message per delivery"
    );
}

#[test]
fn concurrent_load_then_sigkill_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(&dir.path().join("home"));
    let port = setup(&home, "full@example.com");
    let rcpts = "alice@example.com,bob@example.com,carol@example.com";

    // 100 concurrent sessions x 50 messages: everything stored exactly once.
    let out1 = dir.path().join("run1");
    let server = start(&home);
    let r = python(&[
        "load",
        &port.to_string(),
        out1.to_str().unwrap(),
        "100",
        "50",
        rcpts,
    ]);
    assert_eq!(r["errors"], 0, "{r}");
    server.stop();
    assert_eq!(verify_acked(&home, &out1), 5000);

    // The same load, killed with SIGKILL part-way; after a restart every
    // acknowledged message is there, byte-exact.
    let out2 = dir.path().join("run2");
    let mut server = start(&home);
    let load = {
        let out2 = out2.clone();
        std::thread::spawn(move || {
            python(&[
                "load",
                &port.to_string(),
                out2.to_str().unwrap(),
                "20",
                "200",
                rcpts,
            ])
        })
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::read_to_string(out2.join("acked.txt"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
        < 300
    {
        assert!(Instant::now() < deadline, "load made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    drop(server);
    load.join().unwrap();
    let server = start(&home);
    server.stop();
    assert!(verify_acked(&home, &out2) >= 300);
}
