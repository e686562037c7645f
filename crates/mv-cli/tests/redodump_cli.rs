//! zmredodump through its Zimbra name: op lines, the --m filter, -q, and damage
//! reported with a hexdump and exit code 1.

use mv_home::{Home, HomeLock};
use mv_server::Service;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_mailvault");

fn zmredodump(link: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(link).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn zmredodump_prints_filters_and_reports_damage() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(&dir.path().join("home"));
    let (alice_box, bob_box) = {
        let _lock =
            HomeLock::acquire_waiting(home.root(), std::time::Duration::from_secs(10)).unwrap();
        let (svc, _) = Service::open(&home).unwrap();
        svc.directory().create_domain("example.com", &[]).unwrap();
        let a = svc.create_account("alice@example.com", None, &[]).unwrap();
        let b = svc.create_account("bob@example.com", None, &[]).unwrap();
        svc.store()
            .add_message(
                a.mailbox_id,
                b"Subject: hi\r\n\r\nx\r\n",
                &Default::default(),
            )
            .unwrap();
        let id = svc
            .store()
            .add_message(
                b.mailbox_id,
                b"Subject: yo\r\n\r\ny\r\n",
                &Default::default(),
            )
            .unwrap();
        svc.store().delete_items(b.mailbox_id, &[id]).unwrap();
        (a.mailbox_id.0, b.mailbox_id.0)
    };
    let link = dir.path().join("zmredodump");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let redolog = home.redolog_dir();
    let redolog = redolog.to_str().unwrap();

    let (code, out) = zmredodump(&link, &[redolog]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("[CreateMailbox]")
            && out.contains("[CreateMessage]")
            && out.contains("[DeleteItem]"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with('[') && l.contains(" - ") && l.contains("bytes; tstamp: ")),
        "{out}"
    );

    let m = bob_box.to_string();
    let (code, out) = zmredodump(&link, &["--m", &m, "-no-offset", redolog]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("mailbox={bob_box}")));
    assert!(
        !out.contains(&format!("mailbox={alice_box},")),
        "--m filters by mailbox: {out}"
    );
    assert!(
        out.lines()
            .filter(|l| l.starts_with('['))
            .all(|l| l.starts_with("[tstamp")),
        "-no-offset: {out}"
    );

    // Flip one byte inside the last record: reported with file, offset and a hexdump; exit 1.
    let log = home.redolog_dir().join("redo.log");
    let mut bytes = std::fs::read(&log).unwrap();
    let n = bytes.len();
    bytes[n - 20] ^= 0xff;
    std::fs::write(&log, &bytes).unwrap();
    let (code, out) = zmredodump(&link, &["-q", redolog]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Files with errors"), "{out}");
    assert!(out.contains("redo.log"), "{out}");
}

/// `zmredodump | head`: when the reader goes away the dump ends as any Unix tool
/// does (SIGPIPE), with no panic message on stderr.
#[test]
fn zmredodump_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(&dir.path().join("home"));
    {
        let _lock =
            HomeLock::acquire_waiting(home.root(), std::time::Duration::from_secs(10)).unwrap();
        let (svc, _) = Service::open(&home).unwrap();
        svc.directory().create_domain("example.com", &[]).unwrap();
        let a = svc.create_account("alice@example.com", None, &[]).unwrap();
        // More lines than a pipe buffers (64 KiB), so the dump must block or fail.
        let msgs: Vec<Vec<u8>> = (0..800)
            .map(|n| format!("Subject: m{n}\r\n\r\n{n}\r\n").into_bytes())
            .collect();
        for m in &msgs {
            svc.store()
                .add_message(a.mailbox_id, m, &Default::default())
                .unwrap();
        }
    }
    let link = dir.path().join("zmredodump");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let mut child = Command::new(&link)
        .arg(home.redolog_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read one line's worth, then close the pipe, as `head -1` does.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    std::io::Read::read(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "{:?} {stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
