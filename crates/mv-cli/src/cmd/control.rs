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

fn start(home: &Home) -> anyhow::Result<ExitCode> {
    if let Some(pid) = HomeLock::holder(home.root()) {
        println!("mailvault is already running (pid {pid})");
        return Ok(ExitCode::SUCCESS);
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
    let mut child = cmd.spawn().context("starting the server")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
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
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "the server did not become ready within 60 s; see {}",
        log_path.display()
    )
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
