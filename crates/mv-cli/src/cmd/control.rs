//! `zmcontrol start|stop|status`: the server as a background process.

use anyhow::{Context, bail};
use mv_home::{Home, HomeLock};
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

fn status(home: &Home) -> ExitCode {
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

fn start(home: &Home) -> anyhow::Result<ExitCode> {
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
    home.init()?;
    let log_path = home.log_dir().join("mailbox.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
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
                "the server exited at start ({status}); see {}",
                log_path.display()
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
        "the server (pid {}) did not become ready within {} s; see {}",
        child.id(),
        START_PATIENCE.as_secs(),
        log_path.display()
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

fn stop(home: &Home) -> anyhow::Result<ExitCode> {
    let Some(pid) = HomeLock::holder(home.root()) else {
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
    while Instant::now() < deadline {
        if HomeLock::holder(home.root()).is_none() {
            println!("Stopping mailbox...Done.");
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the server (pid {pid}) did not stop within 90 s")
}
