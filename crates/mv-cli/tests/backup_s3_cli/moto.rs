//! The same S3 target against a second, independent S3 implementation: moto's
//! server (Python, `moto[server]` from PyPI), started by the test on 127.0.0.1.

use super::*;
use std::io::BufRead;

const BUCKET: &str = "mv-moto";

/// A moto server in a child process; stopped (stdin closed, then killed) on drop.
struct Moto {
    child: std::process::Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The directory scripts/install-test-deps puts moto into when the system's
/// Python lacks it.
fn pydeps() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/pydeps")
}

/// Starts moto with the bucket made, or says why it cannot.
fn start_moto() -> Result<Moto, String> {
    const SERVER: &str = r#"
import sys
from moto.server import ThreadedMotoServer
import boto3
port = int(sys.argv[1])
server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
server.start()
boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
             aws_access_key_id="moto", aws_secret_access_key="moto").create_bucket(Bucket=sys.argv[2])
print("ready", flush=True)
sys.stdin.read()
server.stop()
"#;
    let port = free_port();
    let mut child = std::process::Command::new("python3")
        .args(["-c", SERVER, &port.to_string(), BUCKET])
        .env("PYTHONPATH", pydeps())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("python3: {e}"))?;
    let mut line = String::new();
    let read = std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
    if read.is_err() || line.trim() != "ready" {
        let _ = child.kill();
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        return Err(format!(
            "moto did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    })
}

/// A full, an incremental, verify with every byte read, query and a restore
/// into a new account, against moto: each message comes back byte for byte.
/// A message over the part size makes the pack a multipart upload.
#[test]
fn backup_verify_and_restore_through_moto() {
    let moto = match start_moto() {
        Ok(m) => m,
        // scripts/install-test-deps installs moto; without it, say so.
        Err(why) => {
            eprintln!("skipping the moto S3 test: {why}");
            assert!(
                std::env::var_os("MV_REQUIRE_MOTO").is_none(),
                "MV_REQUIRE_MOTO is set and moto cannot run: {why}"
            );
            return;
        }
    };
    let env = Env::new();
    for (k, v) in [
        ("s3_endpoint", moto.endpoint.as_str()),
        ("s3_region", "us-east-1"),
        ("s3_access_key_id", "moto"),
        ("s3_secret_access_key", "moto-secret"),
        ("s3_allow_http", "true"),
        ("s3_lock_settle_ms", "300"),
        ("s3_part_size_mb", "5"),
    ] {
        let o = env.run(Path::new(BIN), &["localconfig", "-e", &format!("{k}={v}")]);
        assert_eq!(o.code, 0, "{}", o.stderr);
    }
    let url = format!("s3://{BUCKET}/mail");
    env.ok("zmprov", &["cd", "m.test"]);
    env.ok("zmprov", &["ca", "a@m.test", "secret"]);
    let mut files = vec![
        deliver(&env, "a@m.test", "m0", 300),
        deliver(&env, "a@m.test", "m1-big", 350_000),
    ];
    let o = env.ok("zmbackup", &["-f", "-a", "all", "-t", &url, "-sync"]);
    let full = o.stdout.trim().to_string();
    assert!(full.starts_with("full-"), "{}{}", o.stdout, o.stderr);
    files.push(deliver(&env, "a@m.test", "m2", 200));
    let o = env.ok("zmbackup", &["-i", "-t", &url, "-sync"]);
    let incr = o.stdout.trim().to_string();
    assert!(incr.starts_with("incr-"), "{}{}", o.stdout, o.stderr);

    let q = env.ok("zmbackupquery", &["-t", &url]).stdout;
    assert!(q.contains(&full) && q.contains(&incr), "{q}");
    let v = env.run(
        Path::new(BIN),
        &["backup", "verify", "--read-data", "-t", &url],
    );
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    assert!(v.stdout.contains("No problems found."), "{}", v.stdout);

    env.ok(
        "zmrestore",
        &["-a", "a@m.test", "-t", &url, "-br", "-ca", "-pre", "moto_"],
    );
    let restored = inbox(&env, "moto_a@m.test");
    let subjects: Vec<&str> = restored.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(subjects, ["m0", "m1-big", "m2"]);
    for (id, subject) in &restored {
        let file = files
            .iter()
            .find(|f| f.file_stem().unwrap().to_str().unwrap() == subject)
            .unwrap();
        let got = env.ok("zmmailbox", &["-z", "-m", "moto_a@m.test", "gm", id]);
        assert_eq!(
            got.stdout.as_bytes(),
            std::fs::read(file).unwrap(),
            "{subject}"
        );
    }
    // No lock is left behind in the bucket.
    let q = env.ok("zmbackupquery", &["-t", &url]).stdout;
    assert!(!q.contains("in progress"), "{q}");
}
