//! `mailvault demo`: the quick start. In a fresh home it starts the real server,
//! provisions a domain and accounts through the admin API, delivers mail over LMTP
//! (to a list, so one message lands in several mailboxes as one file), lists a
//! mailbox and shows the redo log that journals it all, then stops the server.

use crate::client::Client;
use anyhow::{Context, bail};
use mv_home::Home;
use mv_server::Request;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keep the demo home afterwards (printed at the end) instead of deleting it.
    #[arg(long)]
    keep: bool,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(mv_home::ports::free_loopback_port()?)
}

/// A minimal LMTP client: one transaction, returning the per-recipient replies.
fn lmtp_send(port: u16, from: &str, rcpts: &[&str], message: &str) -> anyhow::Result<Vec<String>> {
    let stream = TcpStream::connect(("127.0.0.1", port)).context("connecting to LMTP")?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut w = stream;
    let mut reply = || -> anyhow::Result<String> {
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                bail!("LMTP server closed the connection");
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(line.trim_end().to_string());
            }
        }
    };
    reply()?;
    write!(w, "LHLO demo\r\n")?;
    reply()?;
    write!(w, "MAIL FROM:<{from}>\r\n")?;
    reply()?;
    let mut accepted = 0;
    for r in rcpts {
        write!(w, "RCPT TO:<{r}>\r\n")?;
        if reply()?.starts_with('2') {
            accepted += 1;
        }
    }
    write!(w, "DATA\r\n")?;
    reply()?;
    for line in message.lines() {
        let line = if line.starts_with('.') {
            format!(".{line}")
        } else {
            line.to_string()
        };
        write!(w, "{line}\r\n")?;
    }
    write!(w, ".\r\n")?;
    let results = (0..accepted)
        .map(|_| reply())
        .collect::<Result<Vec<_>, _>>()?;
    write!(w, "QUIT\r\n")?;
    Ok(results)
}

/// The demo's server: stopped (SIGTERM, then waited for) however the demo ends,
/// a panic on a closed stdout included.
struct ServerGuard(Option<std::process::Child>);

impl ServerGuard {
    fn stop(&mut self) -> std::io::Result<std::process::ExitStatus> {
        let mut child = self.0.take().expect("stopped once");
        // SAFETY: sending a signal has no memory effects in this process.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait()
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        if self.0.is_some() {
            let _ = self.stop();
        }
    }
}

/// The signal set blocked in this process and waited for by the cleanup thread.
#[derive(Clone, Copy)]
struct Blocked(libc::sigset_t);

/// Set by the cleanup thread as soon as a signal arrives: a step that fails
/// because the server is being stopped is not the demo's failure, and the
/// process must end with the cleanup's exit status, not that step's.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Ctrl-C, SIGTERM or SIGHUP (a closed terminal): stop the server, remove the
/// demo home, exit 130. The signals are blocked here and taken by one thread
/// with sigwait, so the cleanup runs as ordinary code, not in a handler.
fn cleanup_on_signal(dir: PathBuf, server: Arc<AtomicU32>) -> Blocked {
    // SAFETY: sigset_t is plain data; the calls only fill it and set this
    // thread's mask (no other thread exists yet that must see these signals).
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let blocked = Blocked(set);
    std::thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: waits for one of the blocked signals; `sig` receives its number.
        if unsafe { libc::sigwait(&blocked.0, &mut sig) } != 0 {
            return;
        }
        INTERRUPTED.store(true, Ordering::SeqCst);
        let pid = server.load(Ordering::SeqCst);
        if pid != 0 {
            // SAFETY: signalling and reaping our own child; no memory effects here.
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM);
                libc::waitpid(pid as i32, std::ptr::null_mut(), 0);
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!(
            "\ndemo interrupted: the server is stopped and {} removed",
            dir.display()
        );
        std::process::exit(130);
    });
    blocked
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let result = run_demo(args);
    if INTERRUPTED.load(Ordering::SeqCst) {
        // The cleanup thread stops the server, removes the home and exits 130.
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    result
}

fn run_demo(args: Args) -> anyhow::Result<ExitCode> {
    let dir = tempfile::Builder::new()
        .prefix("mailvault-demo-")
        .tempdir()?;
    let home = Home::at(dir.path());
    home.init()?;
    let (lmtp, admin) = (free_port()?, free_port()?);
    let mut cfg = home.open()?;
    cfg.set("lmtp_bind_port", &lmtp.to_string())?;
    cfg.set("admin_bind_port", &admin.to_string())?;
    cfg.set("imap_bind_port", &free_port()?.to_string())?;
    cfg.set("imaps_bind_port", &free_port()?.to_string())?;
    cfg.save(&home.localconfig_path())?;
    println!("== A fresh home: {}", home.root().display());

    let server_pid = Arc::new(AtomicU32::new(0));
    let blocked = cleanup_on_signal(dir.path().to_path_buf(), server_pid.clone());
    let exe = std::env::current_exe()?;
    let mut command = std::process::Command::new(exe);
    command
        .arg("--home")
        .arg(home.root())
        .arg("serve")
        .stdout(Stdio::piped());
    unsafe {
        // SAFETY: pthread_sigmask is async-signal-safe and touches only this
        // (child) thread's mask: the server must get the signals this process waits for.
        command.pre_exec(move || {
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &blocked.0, std::ptr::null_mut());
            Ok(())
        });
    }
    let mut server = ServerGuard(Some(command.spawn().context("starting the server")?));
    let child = server.0.as_mut().expect("just spawned");
    server_pid.store(child.id(), Ordering::SeqCst);
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match lines.next() {
            Some(Ok(l)) => {
                println!("   server: {l}");
                if l.starts_with("mailvault ready") {
                    break;
                }
            }
            _ => bail!("the server exited before it was ready"),
        }
        if Instant::now() > deadline {
            bail!("the server did not start within 60 s");
        }
    }
    std::thread::spawn(move || for _ in lines {});

    let result = (|| -> anyhow::Result<()> {
        let client = Client::connect(&home)?;
        println!("\n== Provisioning through the admin API (zmprov cd / ca / cdl / adlm)");
        let _: mv_directory::Domain = client.call(Request::CreateDomain {
            name: "example.com".into(),
            attrs: vec![],
        })?;
        for user in ["alice", "bob", "carol"] {
            let a: mv_directory::Account = client.call(Request::CreateAccount {
                email: format!("{user}@example.com"),
                password: Some("secret".into()),
                attrs: vec!["displayName".into(), user.into()],
            })?;
            println!(
                "   created {user}@example.com  zimbraId {}  mailbox {}",
                a.id, a.mailbox_id
            );
        }
        let _: mv_directory::DistributionList = client.call(Request::CreateDistributionList {
            email: "team@example.com".into(),
            attrs: vec![],
        })?;
        let _: mv_directory::DistributionList =
            client.call(Request::AddDistributionListMembers {
                email: "team@example.com".into(),
                members: vec![
                    "alice@example.com".into(),
                    "bob@example.com".into(),
                    "carol@example.com".into(),
                ],
            })?;
        println!("   created list team@example.com with alice, bob and carol");

        println!("\n== Delivering over LMTP on 127.0.0.1:{lmtp}");
        let msgs = [
            (
                vec!["team@example.com"],
                "Quarterly plan",
                "The plan for Q1 is attached in spirit.",
            ),
            (
                vec!["alice@example.com"],
                "Lunch?",
                "Noon at the usual place?",
            ),
            (
                vec!["alice@example.com", "nobody@example.com"],
                "Build is green",
                "All tests pass.",
            ),
        ];
        for (rcpts, subject, body) in msgs {
            let message = format!(
                "From: boss@example.com\r\nTo: {}\r\nSubject: {subject}\r\nDate: Thu, 26 Nov 2026 09:00:00 +0000\r\n\r\n{body}\r\n",
                rcpts.join(", ")
            );
            let replies = lmtp_send(lmtp, "boss@example.com", &rcpts, &message)?;
            println!(
                "   {subject:<16} to {:<40} -> {}",
                rcpts.join(", "),
                replies.join(" | ")
            );
        }
        println!("   (nobody@example.com was refused at RCPT with 550 5.1.1: no such user)");

        println!("\n== alice's Inbox (zmmailbox -z -m alice@example.com s in:Inbox)");
        let items: Vec<mv_store::Item> = client.call(Request::Search {
            account: "alice@example.com".into(),
            query: "in:Inbox".into(),
            limit: None,
        })?;
        for item in &items {
            println!(
                "   id {:>4}  from {:<20} subject {:<16} {} bytes",
                item.id, item.sender, item.subject, item.size
            );
        }
        let info: mv_server::response::MailboxInfo = client.call(Request::GetMailboxInfo {
            key: "alice@example.com".into(),
        })?;
        println!(
            "   mailbox {}: {} messages, quotaUsed {}",
            info.mailbox_id, info.messages, info.quota_used
        );

        println!(
            "\n== A full backup while the server runs (zmbackup -f -a all -sync), then verify --read-data"
        );
        let report: mv_backup::BackupReport = client.run_job(
            Request::Backup(mv_server::backup::BackupRequest {
                kind: "full".into(),
                accounts: vec!["all".into()],
                target: None,
                compression: None,
                exclude: vec![],
                include: vec![],
                sync: true,
            }),
            &mut |_, _| {},
        )?;
        for session in &report.sessions {
            println!(
                "   {}: {} ({} of {} accounts)",
                session.label, session.status_text, session.accounts_completed, session.accounts
            );
        }
        let verify: mv_backup::VerifyReport = client.run_job(
            Request::BackupVerify(mv_server::backup::VerifyRequest {
                target: None,
                label: None,
                read_data: true,
                read_data_subset: None,
            }),
            &mut |_, _| {},
        )?;
        println!(
            "   verify: {} session(s), {} blob(s) read and checked against their digests, {} problem(s)",
            verify.sessions_checked,
            verify.blobs_read,
            verify.problems.len()
        );
        Ok(())
    })();

    // Stop the server cleanly, then show the journal that makes it all restorable.
    // SAFETY: sending a signal has no memory effects in this process.
    let status = server.stop()?;
    server_pid.store(0, Ordering::SeqCst);
    result?;
    println!("\n== Server stopped ({status}). The redo log journals every change (zmredodump):");
    let opts = mv_redo::dump::DumpOptions {
        quiet: false,
        mailboxes: None,
        no_offset: true,
        show_blob: false,
    };
    let mut out = Vec::new();
    mv_redo::dump::run(
        &opts,
        &[home.redo_archive_dir(), home.redolog_dir()],
        &mut out,
    )?;
    for line in String::from_utf8_lossy(&out).lines().take(14) {
        println!("   {}", if line.len() > 150 { &line[..150] } else { line });
    }
    println!("   ...");
    if args.keep {
        let kept = dir.keep();
        println!(
            "\nThe demo home is kept at {} (try: mailvault --home {} redodump)",
            kept.display(),
            kept.display()
        );
    } else {
        println!("\nDone. (Run with --keep to keep the demo home and explore it.)");
    }
    Ok(ExitCode::SUCCESS)
}
