//! `mailvault prov` / `zmprov`: provisioning (accounts, domains, classes of service,
//! global and server config, distribution lists, account loggers). A command (short
//! or long Zimbra name, case-insensitive) and its arguments; with no command, one
//! command per line is read from `-f FILE` or stdin and all run in one process. Both are parsed
//! by one clap definition, [`Command`], which also gives `help`, the man page and
//! the completions.
//!
//! Output follows zmprov: `get*` commands print entries as `# name X` then sorted
//! `attr: value` lines, `getAll*` print one name per line (`-v` prints entries),
//! `create*` print the new zimbraId, modifications print nothing. `--json` prints the
//! service's JSON result instead. Exit codes: 0 ok, 1 the operation failed
//! (`ERROR: ...` on stderr), 2 bad usage.

mod accounts;
mod batch;
mod config;
mod cos;
mod domains;
mod lists;
mod logging;
mod output;

use super::zmshell::{Fail, Grammar, Parsed, Res, Session, finish, json_out, take_json};
use mv_directory::Modification;
use mv_home::Home;
use mv_server::Reply;
use mv_server::Request;
use std::process::ExitCode;

/// Provision accounts, domains, classes of service, config and lists (zmprov).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// LDAP mode (accepted for compatibility; the directory is always used directly).
    #[arg(short = 'l', long = "ldap")]
    ldap: bool,
    /// Verbose (accepted for compatibility).
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Authenticate as the admin (accepted for compatibility; always the case).
    #[arg(short = 'z', long = "zadmin")]
    zadmin: bool,
    /// Print the raw JSON result.
    #[arg(long)]
    json: bool,
    /// Read the commands from this file, one per line, instead of stdin.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        conflicts_with = "args"
    )]
    file: Option<std::path::PathBuf>,
    /// The command (ca, ga, gaa, ma, ...; `help` lists them) and its arguments.
    /// Without one, commands are read one per line from -f FILE or stdin.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND [ARGS]"
    )]
    args: Vec<String>,
}

/// Every zmprov command, by group.
#[derive(clap::Subcommand, Debug)]
enum Command {
    #[command(flatten)]
    Account(accounts::Command),
    #[command(flatten)]
    Domain(domains::Command),
    #[command(flatten)]
    Cos(cos::Command),
    #[command(flatten)]
    Config(config::Command),
    #[command(flatten)]
    List(lists::Command),
    #[command(flatten)]
    Logger(logging::Command),
}

/// zmprov's command grammar.
pub(crate) fn grammar() -> Grammar {
    Grammar::new::<Command>(
        "zmprov",
        "usage: zmprov [-l] [-v] [--json] {command} [args...]   (no command: read commands from stdin)",
        "",
    )
}

pub fn run(home: &Home, args: Args) -> anyhow::Result<ExitCode> {
    let _ = (args.ldap, args.verbose, args.zadmin); // accepted, nothing to change
    let grammar = grammar();
    let mut session = Session::new(home);
    let json = args.json;
    if args.args.is_empty() {
        session.batch = true;
        return Ok(batch::run(
            &mut session,
            json,
            args.file.as_deref(),
            |s, words, out| run_line(&grammar, s, words, json, out),
        ));
    }
    let mut out = Vec::new();
    let result = run_line(&grammar, &mut session, args.args, json, &mut out);
    Ok(ExitCode::from(finish(result, &out)))
}

/// Parses and runs one command line.
fn run_line(
    grammar: &Grammar,
    s: &mut Session<'_>,
    mut words: Vec<String>,
    json: bool,
    out: &mut Vec<u8>,
) -> Res<()> {
    let json = take_json(&mut words) || json;
    let cmd = match grammar.parse::<Command>(words, s.batch)? {
        Parsed::Run(cmd) => cmd,
        Parsed::Help(text) => {
            out.extend_from_slice(text.as_bytes());
            return Ok(());
        }
    };
    let mut o = Out { s, json, out };
    match cmd {
        Command::Account(c) => accounts::run(c, &mut o),
        Command::Domain(c) => domains::run(c, &mut o),
        Command::Cos(c) => cos::run(c, &mut o),
        Command::Config(c) => config::run(c, &mut o),
        Command::List(c) => lists::run(c, &mut o),
        Command::Logger(c) => logging::run(c, &mut o),
    }
}

/// Where a command runs and prints.
struct Out<'a, 'h> {
    s: &'a mut Session<'h>,
    /// `--json`: print the service's answer as it is.
    json: bool,
    out: &'a mut Vec<u8>,
}

impl Out<'_, '_> {
    /// With `--json`, prints the answer and says so; otherwise the caller prints.
    fn raw(&mut self, v: &impl serde::Serialize) -> Res<bool> {
        if self.json {
            json_out(self.out, v)?;
        }
        Ok(self.json)
    }

    /// Runs a change, which prints nothing (its answer, of type `T`, with
    /// `--json`).
    fn done<T: Reply + serde::Serialize>(&mut self, req: Request) -> Res<()> {
        let v: T = self.s.exec(req)?;
        self.raw(&v)?;
        Ok(())
    }
}

/// zmprov's attribute list (`name value [name value ...]`; `+name` adds a value,
/// `-name` removes one, '' as the value removes the attribute), checked here so a
/// malformed list is a usage error before anything is opened. The words go on to
/// the service, which reads them the same way.
fn attr_pairs(command: &str, words: Vec<String>, at_least_one: bool) -> Res<Vec<String>> {
    let usage = |why: String| {
        Fail::Usage(format!(
            "{command}: {why} (`zmprov help {command}` shows its usage)"
        ))
    };
    if !words.len().is_multiple_of(2) || (at_least_one && words.is_empty()) {
        return Err(usage(
            "attributes come in name/value pairs (use '' as the value to remove an attribute)"
                .into(),
        ));
    }
    Modification::parse_zmprov(&words).map_err(|e| usage(e.to_string()))?;
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn parse(v: &[&str]) -> Res<Parsed<Command>> {
        grammar().parse(words(v), false)
    }

    #[test]
    fn every_command_has_its_zimbra_short_name_and_a_description() {
        let g = grammar();
        let mut seen = std::collections::BTreeSet::new();
        for sub in g.subcommands() {
            let short = sub.get_visible_aliases().next();
            assert!(short.is_some(), "{} has no short name", sub.get_name());
            assert!(seen.insert(short.unwrap().to_string()), "{short:?} twice");
            assert!(sub.get_about().is_some(), "{}", sub.get_name());
            for a in sub.get_arguments() {
                let id = a.get_id().as_str();
                assert!(
                    id == "help" || a.get_help().is_some(),
                    "{} {id}: no description",
                    sub.get_name()
                );
            }
        }
        assert_eq!(seen.len(), 39, "{seen:?}");
    }

    #[test]
    fn attribute_signs_are_values_not_options() {
        let Ok(Parsed::Run(Command::Account(accounts::Command::ModifyAccount { account, attrs }))) =
            parse(&[
                "MA",
                "u@d",
                "-zimbraMailAlias",
                "a@d",
                "+zimbraMailAlias",
                "b@d",
            ])
        else {
            panic!("not parsed as modifyAccount");
        };
        assert_eq!(account, "u@d");
        assert_eq!(
            attrs,
            ["-zimbraMailAlias", "a@d", "+zimbraMailAlias", "b@d"]
        );
        assert!(attr_pairs("modifyAccount", attrs, true).is_ok());
        assert!(matches!(
            attr_pairs("modifyAccount", words(&["displayName"]), true),
            Err(Fail::Usage(_))
        ));
        assert!(matches!(
            attr_pairs("modifyAccount", vec![], true),
            Err(Fail::Usage(_))
        ));
    }

    #[test]
    fn argument_counts_and_values_are_checked_before_anything_runs() {
        for bad in [
            &["ca", "x@d"][..],
            &["ra", "a@d"],
            &["da", "a@d", "b@d"],
            &["rim", "a@d", "later"],
            &["gcf"],
            &["adlm", "l@d"],
            &["gad", "extra"],
        ] {
            assert!(matches!(parse(bad), Err(Fail::Usage(_))), "{bad:?}");
        }
        assert!(matches!(
            parse(&["rim", "a@d", "STATUS"]),
            Ok(Parsed::Run(Command::Account(
                accounts::Command::ReIndexMailbox {
                    action: accounts::Action::Status,
                    ..
                }
            )))
        ));
        assert!(matches!(
            parse(&["gaa", "-v", "d.test"]),
            Ok(Parsed::Run(Command::Account(
                accounts::Command::GetAllAccounts { verbose: true, .. }
            )))
        ));
        assert!(matches!(
            parse(&["aal", "-server", "h", "a@d", "zimbra.imap", "debug"]),
            Ok(Parsed::Run(Command::Logger(
                logging::Command::AddAccountLogger {
                    server: Some(_),
                    ..
                }
            )))
        ));
    }
}
