//! `zmcontrol start|stop|status`: the server as a background process.

use anyhow::{Context, bail};
use mv_home::{Home, HomeLock};
use std::os::unix::fs::OpenOptionsExt;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// start, stop, restart or status.
    action: String,
}

pub fn run(home: &Home, args: Args) -> anyhow::Result<ExitCode> {
    match args.action.to_ascii_lowercase().as_str() {
        "start" => start(home),
        "stop" => stop(home),
        "restart" => {
            stop(home)?;
            start(home)
        }
        "status" => Ok(status(home)),
        other => bail!("unknown action {other:?}: use start, stop, restart or status"),
    }
}

/// The server of this home: the lock's holder, or, when the home (and so its
/// lock file) is gone, a `mailvault serve` process still running for it.
fn server_pid(home: &Home) -> Option<u32> {
    HomeLock::holder(home.root()).or_else(|| {
        if home.root().exists() {
            None
        } else {
            orphan_server(home.root())
        }
    })
}

/// Looks through /proc for `mailvault [--home ROOT] serve` (or `serve` with
/// MAILVAULT_HOME=ROOT), other than this process.
fn orphan_server(root: &std::path::Path) -> Option<u32> {
    let me = std::process::id();
    let root = root.as_os_str().as_encoded_bytes();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if !args.iter().any(|a| *a == b"serve") {
            continue;
        }
        let by_flag = args.windows(2).any(|w| w[0] == b"--home" && w[1] == root);
        let by_env = || {
            std::fs::read(entry.path().join("environ")).is_ok_and(|env| {
                env.split(|b| *b == 0)
                    .any(|v| v.strip_prefix(b"MAILVAULT_HOME=") == Some(root))
            })
        };
        if by_flag || by_env() {
            return Some(pid);
        }
    }
    None
}

fn status(home: &Home) -> ExitCode {
    if !home.root().exists()
        && let Some(pid) = orphan_server(home.root())
    {
        println!("Host {}", mv_directory::config::local_server_name());
        println!("\tmailbox                 Running (pid {pid})");
        println!(
            "its home {} is gone: the server stops by itself within seconds, or: zmcontrol stop",
            home.root().display()
        );
        return ExitCode::SUCCESS;
    }
    match HomeLock::holder(home.root()) {
        Some(pid) => {
            println!("Host {}", mv_directory::config::local_server_name());
            println!("\tmailbox                 Running (pid {pid})");
            ExitCode::SUCCESS
        }
        None => {
            println!("Host {}", mv_directory::config::local_server_name());
            println!("\tmailbox                 Stopped");
            println!("mailbox is not running; start it with: zmcontrol start");
            ExitCode::from(1)
        }
    }
}

/// How long `start` waits for a server to come up (crash recovery included),
/// and for a process holding the home without serving it to go away.
const START_PATIENCE: Duration = Duration::from_secs(300);

pub(crate) fn start(home: &Home) -> anyhow::Result<ExitCode> {
    if let Some(pid) = HomeLock::holder(home.root()) {
        if admin_answers(home) {
            println!("mailvault is already running (pid {pid})");
            return Ok(ExitCode::SUCCESS);
        }
        // It holds the home but does not serve: a server still recovering, one
        // killed whose process has not gone yet, or a tool working offline.
        println!(
            "pid {pid} holds the home but does not answer; waiting for it to come up or to exit..."
        );
        let deadline = Instant::now() + START_PATIENCE;
        loop {
            match HomeLock::holder(home.root()) {
                None => break,
                Some(p) if admin_answers(home) => {
                    println!("mailvault is running (pid {p})");
                    return Ok(ExitCode::SUCCESS);
                }
                Some(_) => {}
            }
            if Instant::now() >= deadline {
                bail!(
                    "pid {pid} still holds the home {} after {} s without serving it: stop it \
                     (zmcontrol stop, or kill {pid}), then run zmcontrol start again",
                    home.root().display(),
                    START_PATIENCE.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    if !home.is_initialized() {
        bail!("{}", super::no_home(home));
    }
    // The server writes log/mailbox.log itself; what it prints (the listener
    // lines, a panic) goes to zmmailboxd.out, as Zimbra's mailboxd does.
    let log_path = home.log_dir().join("zmmailboxd.out");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let exe = std::env::current_exe().context("finding this binary")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--home")
        .arg(home.root())
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // A session of its own: the server outlives the shell that started it.
    use std::os::unix::process::CommandExt;
    unsafe {
        // SAFETY: setsid is async-signal-safe and touches no memory of this process.
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let log_start = std::fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
    let mut child = cmd.spawn().context("starting the server")?;
    let started = Instant::now();
    let mut shown = log_start;
    let mut said = Instant::now();
    println!("Starting mailbox...");
    while started.elapsed() < START_PATIENCE {
        // What the server says while it starts (crash recovery among it).
        shown = echo_new_lines(&log_path, shown);
        if let Some(status) = child.try_wait()? {
            bail!(
                "the server exited at start ({status}); see {} and {}",
                log_path.display(),
                home.log_dir().join("mailbox.log").display()
            );
        }
        if HomeLock::holder(home.root()) == Some(child.id()) && admin_answers(home) {
            println!("Starting mailbox...Done. (pid {})", child.id());
            return Ok(ExitCode::SUCCESS);
        }
        if said.elapsed() >= Duration::from_secs(5) {
            let redo = std::fs::metadata(home.redolog_dir().join("redo.log"))
                .map(|m| m.len())
                .unwrap_or(0);
            println!(
                "  still starting after {} s (pid {}; recovering a redo.log of {} bytes takes a while)",
                started.elapsed().as_secs(),
                child.id(),
                redo
            );
            said = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "the server (pid {}) did not become ready within {} s; see {} and {}",
        child.id(),
        START_PATIENCE.as_secs(),
        log_path.display(),
        home.log_dir().join("mailbox.log").display()
    )
}

/// Prints the log's complete lines after `from`; returns where the next read
/// starts.
fn echo_new_lines(path: &std::path::Path, from: u64) -> u64 {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return from;
    };
    let mut buf = Vec::new();
    if f.seek(SeekFrom::Start(from)).is_err() || f.take(1 << 20).read_to_end(&mut buf).is_err() {
        return from;
    }
    let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
        return from;
    };
    for line in String::from_utf8_lossy(&buf[..end]).lines() {
        println!("  {line}");
    }
    from + end as u64 + 1
}

fn admin_answers(home: &Home) -> bool {
    let Ok(cfg) = home.open() else { return false };
    let addr = format!(
        "{}:{}",
        cfg.get("admin_bind_address").unwrap_or("127.0.0.1"),
        cfg.get_u64("admin_bind_port")
    );
    addr.parse()
        .is_ok_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_millis(200)).is_ok())
}

pub(crate) fn stop(home: &Home) -> anyhow::Result<ExitCode> {
    let Some(pid) = server_pid(home) else {
        println!("mailvault is not running");
        return Ok(ExitCode::SUCCESS);
    };
    // SAFETY: sending a signal has no memory effects in this process.
    if unsafe { libc::kill(pid as i32, libc::SIGTERM) } != 0 {
        bail!(
            "cannot signal pid {pid}: {}",
            std::io::Error::last_os_error()
        );
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    // With its home, the server is gone once the lock is free; without, once
    // the process has exited (a zombie waiting for its parent counts as gone).
    let gone = || {
        if home.root().exists() {
            HomeLock::holder(home.root()) != Some(pid)
        } else {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|st| st.rsplit(") ").next().is_some_and(|r| r.starts_with('Z')))
                .unwrap_or(true)
        }
    };
    while Instant::now() < deadline {
        if gone() {
            println!("Stopping mailbox...Done.");
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the server (pid {pid}) did not stop within 90 s")
}
