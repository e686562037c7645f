//! `mailvault mailbox` / `zmmailbox -z -m USER`: one mailbox's folders, messages,
//! tags, and calendar/contacts import and export (getRestURL / postRestURL). A
//! command (short or long Zimbra name, case-insensitive) and its arguments; with no
//! command, one command per line is read from `-f FILE` or stdin. Both are parsed by one clap
//! definition, [`Command`], which also gives `help`, the man page and completions.
//!
//! Output follows zmmailbox: `s` and `gaf` print Zimbra's tables, `create*` and `am`
//! print new item ids, `gm` prints the raw message byte for byte, modifications print
//! nothing. `--json` (or `-v` on the listing commands) prints the service's JSON
//! result. Exit codes: 0 ok, 1 the operation failed (`ERROR: ...`), 2 bad usage.
//!
//! `getRestURL "//?fmt=tgz[&query=...]"` writes the whole mailbox as a tgz archive
//! (to stdout or `-o FILE`) and `postRestURL "//?fmt=tgz&resolve=..." FILE` imports
//! one (see `mv_store::tgz` for the layout and the resolve modes).

mod folders;
mod items;
mod pim;
mod rest;
mod search;
mod transfer;

use super::zmshell::{
    Fail, Grammar, Parsed, Res, Session, batch, finish, json_out, line, take_json,
};
use mv_home::Home;
use mv_server::Reply;
use mv_server::Request;
use mv_server::response::ItemRef;
use std::process::ExitCode;

/// Work on one mailbox: search, folders, messages, tags, calendar/contacts (zmmailbox).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Authenticate as the admin (accepted for compatibility; always the case).
    #[arg(short = 'z', long = "zadmin")]
    zadmin: bool,
    /// Verbose (accepted for compatibility).
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// The mailbox to work on: an account's address, alias or zimbraId.
    #[arg(short = 'm', long = "mailbox", value_name = "USER")]
    mailbox: Option<String>,
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
    /// The command (s, gaf, cf, am, gm, gru, pru, ...; `help` lists them) and its
    /// arguments. Without one, commands are read one per line from -f FILE or stdin.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND [ARGS]"
    )]
    args: Vec<String>,
}

/// Every zmmailbox command, by group.
#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Search the mailbox; prints zmmailbox's result table (-v: JSON).
    #[command(
        name = "search",
        visible_alias = "s",
        override_usage = "[-t message|conversation] [-l limit] [-v] {query}   (default query: in:inbox)"
    )]
    Search(search::Search),
    #[command(flatten)]
    Folder(folders::Command),
    #[command(flatten)]
    Item(items::Command),
    #[command(flatten)]
    Rest(rest::Command),
}

/// zmmailbox's command grammar.
pub(crate) fn grammar() -> Grammar {
    Grammar::new::<Command>(
        "zmmailbox",
        "usage: zmmailbox [-z] -m {name@domain} [--json] {command} [args...]   (no command: read commands from stdin)",
        "\nflags (-F): u unread, f flagged, r replied, d draft, x deleted\n",
    )
}

pub fn run(home: &Home, args: Args) -> anyhow::Result<ExitCode> {
    let _ = (args.zadmin, args.verbose); // accepted, nothing to change
    let grammar = grammar();
    let mut session = Session::new(home);
    let (json, mailbox) = (args.json, args.mailbox);
    if args.args.is_empty() {
        session.batch = true;
        return Ok(batch("mbox> ", args.file.as_deref(), |words, out| {
            run_line(&grammar, &mut session, mailbox.as_deref(), words, json, out)
        }));
    }
    let mut out = Vec::new();
    let result = run_line(
        &grammar,
        &mut session,
        mailbox.as_deref(),
        args.args,
        json,
        &mut out,
    );
    Ok(ExitCode::from(finish(result, &out)))
}

/// Parses and runs one command line.
fn run_line(
    grammar: &Grammar,
    s: &mut Session<'_>,
    mailbox: Option<&str>,
    mut words: Vec<String>,
    json: bool,
    out: &mut Vec<u8>,
) -> Res<()> {
    let json = take_json(&mut words) || json;
    let name = words.first().cloned().unwrap_or_default();
    let cmd = match grammar.parse::<Command>(words, s.batch)? {
        Parsed::Run(cmd) => cmd,
        Parsed::Help(text) => {
            out.extend_from_slice(text.as_bytes());
            return Ok(());
        }
    };
    let Some(account) = mailbox.map(str::to_string) else {
        return Err(Fail::Usage(format!(
            "no mailbox given: use -m {{name@domain}} before the command\nusage: zmmailbox -z -m {{name@domain}} {name} ..."
        )));
    };
    let mut o = Cx {
        s,
        account,
        json,
        out,
    };
    match cmd {
        Command::Search(a) => search::run(a, &mut o),
        Command::Folder(c) => folders::run(c, &mut o),
        Command::Item(c) => items::run(c, &mut o),
        Command::Rest(c) => rest::run(c, &mut o),
    }
}

/// Where a command runs and prints: the session, the mailbox, the output.
struct Cx<'a, 'h> {
    s: &'a mut Session<'h>,
    /// The account whose mailbox is worked on (`-m`).
    account: String,
    /// `--json`: print the service's answer as it is.
    json: bool,
    out: &'a mut Vec<u8>,
}

impl Cx<'_, '_> {
    /// With `--json`, prints the answer and says so; otherwise the caller prints.
    fn raw(&mut self, v: &impl serde::Serialize) -> Res<bool> {
        self.raw_if(false, v)
    }

    /// As [`Cx::raw`], also when `verbose` (`-v` of the listing commands).
    fn raw_if(&mut self, verbose: bool, v: &impl serde::Serialize) -> Res<bool> {
        let raw = self.json || verbose;
        if raw {
            json_out(self.out, v)?;
        }
        Ok(raw)
    }

    /// Runs a change, which prints nothing (its answer, of type `T`, with
    /// `--json`).
    fn done<T: Reply + serde::Serialize>(&mut self, req: Request) -> Res<()> {
        let v: T = self.s.exec(req)?;
        self.raw(&v)?;
        Ok(())
    }

    /// `create*` commands print the new item's id.
    fn print_id(&mut self, v: &ItemRef) -> Res<()> {
        if !self.raw(v)? {
            line(self.out, v.id.to_string());
        }
        Ok(())
    }
}

/// Truncates to `n` characters.
fn clip(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &[&str]) -> Res<Parsed<Command>> {
        grammar().parse(v.iter().map(|s| s.to_string()).collect(), false)
    }

    #[test]
    fn every_command_has_its_zimbra_short_name_and_a_description() {
        let g = grammar();
        let names: Vec<String> = g
            .subcommands()
            .map(|s| {
                format!(
                    "{}({})",
                    s.get_name(),
                    s.get_visible_aliases().next().unwrap_or("")
                )
            })
            .collect();
        assert_eq!(names.len(), 17, "{names:?}");
        for expected in [
            "search(s)",
            "recoverDeleted(rd)",
            "getAllFolders(gaf)",
            "addMessage(am)",
            "getRestURL(gru)",
            "postRestURL(pru)",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected}: {names:?}");
        }
        for sub in g.subcommands() {
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
    }

    #[test]
    fn options_and_values_are_typed() {
        assert!(matches!(
            parse(&["gm", "not-a-number"]),
            Err(Fail::Usage(_))
        ));
        assert!(matches!(parse(&["s", "-l", "0", "x"]), Err(Fail::Usage(_))));
        assert!(matches!(parse(&["fm", "1,2", "yes"]), Err(Fail::Usage(_))));
        assert!(matches!(
            parse(&["cf", "-V", "zz", "/X"]),
            Err(Fail::Usage(_))
        ));
        assert!(matches!(parse(&["am", "/Inbox"]), Err(Fail::Usage(_))));
        assert!(matches!(
            parse(&["S", "-t", "message", "in:inbox", "-l", "10", "is:unread"]),
            Ok(Parsed::Run(Command::Search(_)))
        ));
        assert!(matches!(
            parse(&["cf", "-view", "appo", "/Cal2"]),
            Ok(Parsed::Run(Command::Folder(folders::Command::CreateFolder { view: Some(v), .. }))) if v == "appointment"
        ));
    }
}
