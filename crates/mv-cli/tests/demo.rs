//! The README's quick start (`mailvault demo`) keeps working: a real server in a
//! fresh home, provisioning over the API, LMTP delivery, a listing, a backup that
//! verifies, a clean stop.

mod common;

use common::BIN;

#[test]
fn the_quick_start_demo_runs_end_to_end() {
    let out = std::process::Command::new(BIN)
        .arg("demo")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "mailvault ready",
        "-> 250 2.0.0 <team@example.com> delivered",
        "subject Quarterly plan",
        "mailbox 1: 3 messages",
        "completed (3 of 3 accounts)",
        "3 blob(s) read and checked against their digests, 0 problem(s)",
        "Server stopped (exit status: 0)",
        "[CreateMessage]",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}
