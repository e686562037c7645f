//! `mailvault`: one binary for every tool. Invoked as `mailvault <tool> ...` or,
//! through a symlink, under the tool's Zimbra name (`zmredodump ...`).

mod client;
mod cmd;
mod logging;
mod logjson;
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
    /// Live DR: follow a primary's backup target as a warm standby (read-only IMAP).
    Standby(cmd::standby::StandbyArgs),
    /// Live DR: make this standby the primary (fences the old one off the target).
    Promote(cmd::standby::PromoteArgs),
    /// Show or change the backup schedule the server runs (zmschedulebackup).
    Schedule(cmd::schedule::Args),
    /// Disk usage against the alert thresholds, and its trend (zmdisklog).
    Disk(cmd::disk::Args),
    /// Health checklist: server, redo log, backups against the schedule, space (exit 1 on failure).
    Check(cmd::check::Args),
    /// Print this server's name (zmhostname).
    Hostname(cmd::hostname::Args),
}

/// The whole command-line definition: [`Cli`], with zmprov's and zmmailbox's
/// command lists in their help.
pub(crate) fn cli_command() -> clap::Command {
    Cli::command()
        .mut_subcommand("prov", |c| cmd::prov::grammar().listed_in(c))
        .mut_subcommand("mailbox", |c| cmd::mailbox::grammar().listed_in(c))
}

/// The parsed command line, or clap's answer (help, version, a usage error)
/// already rendered, with the exit code it means.
fn parse(args: Vec<String>) -> Result<Cli, (String, u8, bool)> {
    let program = args.first().cloned().unwrap_or_default();
    let (command, args) = zimbra::prepare(cli_command(), &program, args);
    let render = |e: clap::Error| {
        let mut text = e.render().to_string();
        if zimbra::zimbra_name(&program).is_some() {
            text = zimbra::single_dash_text(&text);
        }
        let stderr = e.use_stderr();
        (text, if stderr { 2 } else { 0 }, stderr)
    };
    let matches = command.try_get_matches_from(&args).map_err(render)?;
    Cli::from_arg_matches(&matches).map_err(|e| {
        let (text, _, _) = render(e);
        (text, 2, true)
    })
}

/// Large blocks (an Argon2 hash's 19 MiB, a search index writer's heap) go
/// straight to `mmap` and back to the kernel when freed. glibc's default raises
/// its `mmap` threshold to the size of the last large block freed, after which
/// such blocks come from the heap and stay resident: a batch `zmprov` grew by
/// one Argon2 block (19 MiB) per account created, and a server by one per login
/// thread. A fixed threshold also turns that adjustment off.
fn return_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const THRESHOLD: libc::c_int = 1 << 20;
        // SAFETY: mallopt only changes allocator parameters; it is called before
        // any other thread exists.
        if unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD) } != 1 {
            eprintln!(
                "warning: mallopt(M_MMAP_THRESHOLD) refused; memory may grow with each password hashed"
            );
        }
    }
}

fn main() -> ExitCode {
    // Before anything can create a file: the home, its databases, blobs, logs and
    // local backup targets are the owner's alone, whatever umask we inherited.
    mv_home::durable::private_umask();
    return_large_blocks();
    let cli = match parse(std::env::args().collect()) {
        Ok(c) => c,
        Err((text, code, stderr)) => {
            if stderr {
                eprint!("{text}");
            } else {
                print!("{text}");
            }
            return ExitCode::from(code);
        }
    };
    let home = match mv_home::Home::resolve(cli.home.as_deref()) {
        Ok(h) => h,
        Err(e) => {
            logging::init(logging::Setup {
                log_dir: None,
                config: None,
                server: false,
            });
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // Only init (and demo, in a home of its own) create a home, and zmrestoreldap
    // rebuilding one from a named backup after a disaster (its listings of a named
    // source need none): a mistyped MAILVAULT_HOME must not become a new, empty one.
    let needs_home = match &cli.command {
        Command::Demo(_)
        | Command::Init(_)
        | Command::InstallLinks(_)
        | Command::Hostname(_)
        | Command::Control(_) => false,
        Command::Redodump(a) => a.needs_home(),
        Command::Restoreldap(a) => a.needs_a_home(),
        // A standby bootstraps its home from the target.
        Command::Standby(_) => false,
        _ => true,
    };
    if needs_home && !home.is_initialized() {
        eprintln!("error: {}", cmd::no_home(&home));
        return ExitCode::from(1);
    }
    // The log file of an existing home only: logging never creates a home.
    let log_dir = home.log_dir();
    let config = home
        .is_initialized()
        .then(|| mv_home::LocalConfig::load(&home.localconfig_path()).ok())
        .flatten();
    logging::init(logging::Setup {
        log_dir: home.is_initialized().then_some(log_dir.as_path()),
        config: config.as_ref(),
        server: matches!(cli.command, Command::Serve(_) | Command::Standby(_)),
    });
    if !matches!(
        cli.command,
        Command::Serve(_) | Command::Demo(_) | Command::Standby(_)
    ) {
        // A reader that goes away (`mailvault backupquery | head`) ends the
        // command quietly, as it ends any Unix tool, instead of a panic on the
        // next line printed. The server keeps Rust's default (ignored): its
        // sockets report a closed peer as an error to its connection. So does
        // the demo: its failed print unwinds, which stops its server and
        // removes its home.
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
        Command::Standby(a) => cmd::standby::standby(&home, a),
        Command::Promote(a) => cmd::standby::promote(&home, a),
        Command::Schedule(a) => cmd::schedule::run(&home, a),
        Command::Disk(a) => cmd::disk::run(&home, a),
        Command::Check(a) => cmd::check::run(&home, a),
        Command::Hostname(a) => cmd::hostname::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(1)
        }
    }
}

/// An error and its causes, `: `-separated, each said once: the library
/// errors that wrap another one (`#[error("{0}")]` with `#[from]`) show its text
/// and name it as their source too, and `{:#}` printed it once per layer.
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_wrapped_in_layers_that_repeat_it_is_said_once() {
        /// A library error wrapping another: its text, and it as its source.
        #[derive(Debug)]
        struct Layer(Box<dyn std::error::Error + Send + Sync>);
        impl std::fmt::Display for Layer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
        impl std::error::Error for Layer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(self.0.as_ref())
            }
        }
        let gap = "redo records of mailbox 1 skip from change 5 to 7";
        let inner: Box<dyn std::error::Error + Send + Sync> = gap.into();
        let e = anyhow::Error::from(Layer(Box::new(Layer(inner))));
        assert_eq!(format!("{e:#}"), format!("{gap}: {gap}: {gap}"));
        assert_eq!(error_chain(&e), gap);
        let e = e.context("starting the server");
        assert_eq!(error_chain(&e), format!("starting the server: {gap}"));
    }

    fn run(program: &str, args: &[&str]) -> Result<Cli, (String, u8, bool)> {
        let mut v = vec![program.to_string()];
        v.extend(args.iter().map(|s| s.to_string()));
        parse(v)
    }

    fn parsed(program: &str, args: &[&str]) -> String {
        match run(program, args) {
            Ok(cli) => format!("{:?}", cli.command),
            Err((text, code, _)) => panic!("{program} {args:?}: exit {code}: {text}"),
        }
    }

    #[test]
    fn help_and_usage_carry_the_zimbra_name() {
        for (zm, _) in zimbra::TOOLS {
            for flag in ["-h", "--help"] {
                let (text, code, stderr) = run(&format!("/opt/bin/{zm}"), &[flag]).unwrap_err();
                assert_eq!((code, stderr), (0, false), "{zm} {flag}");
                assert!(
                    text.starts_with(&format!("Usage: {zm} "))
                        || text.starts_with(&format!("Usage: {zm}\n")),
                    "{zm} {flag}:\n{text}"
                );
            }
        }
        let (text, code, _) = run("zmcontrol", &["bogus", "extra"]).unwrap_err();
        assert_eq!(code, 2);
        assert!(text.contains("Usage: zmcontrol <ACTION>"), "{text}");
        // Zimbra's single-dash spellings in help; its double-dash ones kept.
        let (text, _, _) = run("zmrestore", &["-h"]).unwrap_err();
        assert!(
            text.contains("-lb <LABEL>") && !text.contains("--lb"),
            "{text}"
        );
        assert!(text.contains("-restoreToTime <TIME>"), "{text}");
        assert!(text.contains("--skipDeletes"), "{text}");
        // The date formats the field notes quote.
        assert!(text.contains("20101119135508"), "{text}");
        let (text, _, _) = run("zmbackupquery", &["-h"]).unwrap_err();
        assert!(text.contains("2010/11/19 13:55:08"), "{text}");
    }

    #[test]
    fn every_option_is_described() {
        let cmd = Cli::command();
        let mut missing = Vec::new();
        for sub in cmd.get_subcommands() {
            for a in sub.get_arguments() {
                let id = a.get_id().as_str();
                if id != "help" && id != "version" && a.get_help().is_none() {
                    missing.push(format!("{} {id}", sub.get_name()));
                }
            }
        }
        assert!(missing.is_empty(), "no description: {missing:?}");
    }

    #[test]
    fn zimbra_long_spellings_mean_the_short_ones() {
        let same = |zm: &str, long: &[&str], short: &[&str]| {
            assert_eq!(
                parsed(zm, long),
                parsed(zm, short),
                "{zm} {long:?} vs {short:?}"
            );
        };
        same(
            "zmbackup",
            &["--fullBackup", "-a", "all"],
            &["-f", "-a", "all"],
        );
        same("zmbackup", &["--incrementalBackup"], &["-i"]);
        same("zmbackup", &["--delete", "1m"], &["-del", "1m"]);
        same(
            "zmbackup",
            &[
                "-f",
                "--account",
                "a@d.test",
                "--server",
                "h",
                "--target",
                "/t",
            ],
            &["-f", "-a", "a@d.test", "-s", "h", "-t", "/t"],
        );
        same("zmbackup", &["-f", "--debug"], &["-f", "-d"]);
        let a = ["-a", "a@d.test"];
        for (long, short) in [
            ("--label", "-lb"),
            ("--restoreFullBackupOnly", "-rf"),
            ("--backedupRedologsOnly", "-br"),
            ("--exclude-search-index", "--excludeSearchIndex"),
            ("--exclude-blobs", "--excludeBlobs"),
            ("--exclude-hsm-blobs", "--excludeHsmBlobs"),
            ("--debug", "-d"),
            ("--systemData", "-sys"),
        ] {
            let with = |flag: &'static str| {
                let mut v = a.to_vec();
                v.push(flag);
                if flag.ends_with("label") || flag == "-lb" {
                    v.push("full-20261205.010000.000");
                }
                v
            };
            for zm in ["zmrestore", "zmrestoreoffline"] {
                same(zm, &with(long), &with(short));
            }
        }
        for zm in ["zmbackupquery", "zmbackupabort"] {
            same(zm, &["--label", "full-1"], &["-lb", "full-1"]);
            same(zm, &["--debug"], &["-d"]);
        }
        same("zmbackupabort", &["--restore"], &["-r"]);
        same("zmredodump", &["--quiet", "x"], &["-q", "x"]);
        same("zmredodump", &["--m", "1 3", "x"], &["--m", "1,3", "x"]);
        assert!(run("zmredodump", &["--m", "1 x"]).is_err());
    }
}
