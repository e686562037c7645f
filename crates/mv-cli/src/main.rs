//! `mailvault`: one binary for every tool. Invoked as `mailvault <tool> ...` or,
//! through a symlink, under the tool's Zimbra name (`zmredodump ...`).

mod client;
mod cmd;
mod zimbra;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "mailvault",
    version,
    about = "A mail store with Zimbra-class backup and restore"
)]
struct Cli {
    /// The home directory (default: $MAILVAULT_HOME, else ~/.local/share/mailvault).
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Try it: start a server in a fresh home, provision, deliver over LMTP, list.
    Demo(cmd::demo::Args),
    /// Create a home: configuration, databases, store, redo log, backup target.
    Init(cmd::init::Args),
    /// Print or verify redo log files (zmredodump).
    Redodump(cmd::redodump::Args),
    /// Show or change the local configuration (zmlocalconfig).
    Localconfig(cmd::localconfig::Args),
    /// List storage volumes (zmvolume).
    Volume(cmd::volume::Args),
    /// Create the zm* symlinks to this binary in a directory.
    InstallLinks(cmd::links::Args),
    /// Run the server in the foreground (LMTP, admin API).
    Serve(cmd::serve::Args),
    /// Start, stop or report the server in the background (zmcontrol).
    Control(cmd::control::Args),
    /// Provision accounts, domains, classes of service, config, lists (zmprov).
    Prov(cmd::prov::Args),
    /// Work on one mailbox: search, folders, messages, calendar, contacts (zmmailbox).
    Mailbox(cmd::mailbox::Args),
    /// Take, delete or verify backups (zmbackup; `backup verify`).
    Backup(cmd::backup::Args),
    /// List backup sessions (zmbackupquery).
    Backupquery(cmd::backup::QueryArgs),
    /// Stop a running backup (zmbackupabort).
    Backupabort(cmd::backup::AbortArgs),
    /// Replay redo logs into the store; the server must be stopped (zmplayredo).
    Playredo(cmd::restore::PlayRedoArgs),
    /// Restore accounts from backups (zmrestore).
    Restore(cmd::restore::RestoreArgs),
    /// Restore accounts with the server stopped (zmrestoreoffline): disaster
    /// recovery onto a fresh home, after restoreldap.
    Restoreoffline(cmd::restore::RestoreArgs),
    /// Restore the directory from a backup's LDIF dump (zmrestoreldap).
    Restoreldap(cmd::restore::RestoreLdapArgs),
    /// Show or change the backup schedule the server runs (zmschedulebackup).
    Schedule(cmd::schedule::Args),
    /// Disk usage against the alert thresholds, and its trend (zmdisklog).
    Disk(cmd::disk::Args),
    /// Health checklist: server, redo log, backups against the schedule, space (exit 1 on failure).
    Check(cmd::check::Args),
}

fn main() -> ExitCode {
    // Before anything can create a file: the home, its databases, blobs, logs and
    // local backup targets are the owner's alone, whatever umask we inherited.
    mv_home::durable::private_umask();
    let mut args: Vec<String> = std::env::args().collect();
    let program = args.first().cloned().unwrap_or_default();
    if let Some(tool) = zimbra::tool_for_program(&program) {
        args.insert(1, tool.to_string());
    }
    let command = Cli::command();
    let longs = zimbra::long_names(&command);
    let args = zimbra::normalize_single_dash(args, &longs);
    let matches = match command.try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(2);
        }
    };
    init_tracing();
    let home = match mv_home::Home::resolve(cli.home.as_deref()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if !matches!(cli.command, Command::Serve(_)) {
        // A reader that goes away (`mailvault backupquery | head`) ends the
        // command quietly, as it ends any Unix tool, instead of a panic on the
        // next line printed. The server keeps Rust's default (ignored): its
        // sockets report a closed peer as an error to its connection.
        // SAFETY: at start-up, before any other thread exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let result = match cli.command {
        Command::Demo(a) => cmd::demo::run(a),
        Command::Init(a) => cmd::init::run(&home, a),
        Command::Redodump(a) => cmd::redodump::run(&home, a),
        Command::Localconfig(a) => cmd::localconfig::run(&home, a),
        Command::Volume(a) => cmd::volume::run(&home, a),
        Command::InstallLinks(a) => cmd::links::run(a),
        Command::Serve(a) => cmd::serve::run(&home, a),
        Command::Control(a) => cmd::control::run(&home, a),
        Command::Prov(a) => cmd::prov::run(&home, a),
        Command::Mailbox(a) => cmd::mailbox::run(&home, a),
        Command::Backup(a) => cmd::backup::run(&home, a),
        Command::Backupquery(a) => cmd::backup::query(&home, a),
        Command::Backupabort(a) => cmd::backup::abort(&home, a),
        Command::Playredo(a) => cmd::restore::playredo(&home, a),
        Command::Restore(a) => cmd::restore::restore(&home, a),
        Command::Restoreoffline(a) => cmd::restore::restore_offline(&home, a),
        Command::Restoreldap(a) => cmd::restore::restore_ldap(&home, a),
        Command::Schedule(a) => cmd::schedule::run(&home, a),
        Command::Disk(a) => cmd::disk::run(&home, a),
        Command::Check(a) => cmd::check::run(&home, a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAILVAULT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
