//! zmcontrol start/status/stop through a `zmcontrol` symlink, the admin API's
//! authentication and error answers, and tools switching to the API while the
//! server runs.

mod common;

use common::{BIN, free_port};

use std::path::Path;
use std::process::Command;

fn run(program: &Path, home: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(program)
        .env("MAILVAULT_HOME", home)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A raw HTTP/1.1 request; returns (status, body).
fn http(port: u16, token: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "POST /v1/op HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    let json = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (
        status,
        serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn zmcontrol_and_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let bin = dir.path().join("bin");
    let (code, _, err) = run(
        Path::new(BIN),
        &home,
        &["install-links", bin.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    let zmcontrol = bin.join("zmcontrol");
    let zmprov = bin.join("zmprov");
    let (code, _, err) = run(Path::new(BIN), &home, &["init"]);
    assert_eq!(code, 0, "{err}");
    let admin = free_port();
    let lmtp = free_port();
    let (code, _, err) = run(
        Path::new(BIN),
        &home,
        &[
            "localconfig",
            "-e",
            &format!("admin_bind_port={admin}"),
            "-e",
            &format!("lmtp_bind_port={lmtp}"),
            "-e",
            &format!("imap_bind_port={}", free_port()),
            "-e",
            &format!("imaps_bind_port={}", free_port()),
        ],
    );
    assert_eq!(code, 0, "{err}");

    let (code, out, _) = run(&zmcontrol, &home, &["status"]);
    assert_eq!(code, 1, "stopped server: non-zero status");
    assert!(out.contains("Stopped"), "{out}");

    let (code, out, err) = run(&zmcontrol, &home, &["start"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = run(&zmcontrol, &home, &["status"]);
    assert_eq!(code, 0);
    assert!(out.contains("Running"), "{out}");

    // Tools go through the API while the server owns the home.
    let (code, _, err) = run(&zmprov, &home, &["cd", "example.com"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&zmprov, &home, &["ca", "u@example.com", "pw"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = run(&zmprov, &home, &["gaa"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "u@example.com");
    let token = std::fs::read_to_string(home.join("conf/admin.token")).unwrap();
    let token = token.trim();

    let (status, body) = http(admin, None, r#"{"op":"ping"}"#);
    assert_eq!(status, 401, "{body}");
    let (status, _) = http(admin, Some("wrong"), r#"{"op":"ping"}"#);
    assert_eq!(status, 401);
    let (status, body) = http(admin, Some(token), r#"{"op":"ping"}"#);
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(admin, Some(token), "{not json");
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("malformed"),
        "{body}"
    );
    let (status, _) = http(admin, Some(token), r#"{"op":"no_such_op"}"#);
    assert_eq!(status, 400);
    let (status, body) = http(
        admin,
        Some(token),
        r#"{"op":"get_account","key":"nobody@example.com"}"#,
    );
    assert_eq!(status, 404, "{body}");
    let (status, body) = http(
        admin,
        Some(token),
        r#"{"op":"create_account","email":"not an address"}"#,
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = http(
        admin,
        Some(token),
        r#"{"op":"get_account","key":"u@example.com"}"#,
    );
    assert_eq!(status, 200);
    assert_eq!(body["result"]["email"], "u@example.com");

    let (code, out, err) = run(&zmcontrol, &home, &["stop"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, _) = run(&zmcontrol, &home, &["status"]);
    assert_eq!(code, 1);
    // Offline again: the tool opens the home itself and sees what the server wrote.
    let (code, out, _) = run(&zmprov, &home, &["gaa"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "u@example.com");
}
