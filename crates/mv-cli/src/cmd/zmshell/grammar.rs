//! A tool's commands as one clap definition (a `Subcommand` enum): each command
//! under its Zimbra long name with the short name as an alias, its arguments and
//! options typed there. The same definition parses a command line, every line of
//! a batch, renders `help`, and feeds the man page and completions
//! (`mailvault install-links`).
//!
//! What clap does not do the Zimbra way is done here, before clap sees the words:
//! command names are case-insensitive (`GA`, `getaccount`), long options may be
//! spelled with one dash (`-noValidation`), and `-h`/`--help` anywhere after the
//! command asks for help and never runs it (`zmprov ca user --help` must not create
//! an account whose password is "--help").

use super::{Fail, Res};
use clap::{FromArgMatches, Subcommand};

/// The help of one command: Zimbra's synopsis first, then the generated
/// description of its arguments and options.
const COMMAND_HELP: &str = "usage: {usage}\n\n{about-with-newline}\n{all-args}{after-help}";

/// What a command line asks for.
pub(crate) enum Parsed<C> {
    /// A command to run.
    Run(C),
    /// Text to print instead (help), exit 0.
    Help(String),
}

/// One tool's command grammar.
pub(crate) struct Grammar {
    tool: &'static str,
    /// The tool's own usage line, first in the command list.
    synopsis: &'static str,
    /// Printed after the command list.
    footer: &'static str,
    command: clap::Command,
}

impl Grammar {
    /// The grammar of the commands `C`. Each command's `override_usage` holds its
    /// argument synopsis in Zimbra's notation (`{name@domain} [attr1 value1 ...]`);
    /// its usage line becomes `longName(short) synopsis`.
    pub(crate) fn new<C: Subcommand>(
        tool: &'static str,
        synopsis: &'static str,
        footer: &'static str,
    ) -> Grammar {
        let command = clap::Command::new(tool)
            .no_binary_name(true)
            .subcommand_required(true)
            .disable_help_subcommand(true)
            .disable_version_flag(true);
        let command = C::augment_subcommands(command).mut_subcommands(|sub| {
            let usage = usage_line(&sub);
            sub.override_usage(usage).help_template(COMMAND_HELP)
        });
        Grammar {
            tool,
            synopsis,
            footer,
            command,
        }
    }

    /// The commands.
    pub(crate) fn subcommands(&self) -> impl Iterator<Item = &clap::Command> {
        self.command.get_subcommands()
    }

    /// The tool's own clap command (`zmprov [-l] ... [COMMAND [ARGS]]`) with the
    /// command list after its help.
    pub(crate) fn listed_in(&self, tool: clap::Command) -> clap::Command {
        tool.after_help(format!(
            "Commands (`help COMMAND` describes one):\n{}{}",
            self.command_list(),
            self.footer
        ))
    }

    /// The tool's own clap command with the commands as its subcommands, for its
    /// man page and shell completions (never for parsing: the words after the
    /// tool's options go through [`Grammar::parse`]).
    pub(crate) fn documented(&self, tool: clap::Command) -> clap::Command {
        tool.subcommands(self.subcommands().cloned())
    }

    /// `usage: TOOL ...` then one usage line per command.
    pub(crate) fn usage_all(&self) -> String {
        let mut s = format!("{}\n\ncommands:\n", self.synopsis);
        s.push_str(&self.command_list());
        s.push_str(self.footer);
        s
    }

    /// One `  longName(short) synopsis` line per command.
    pub(crate) fn command_list(&self) -> String {
        let mut s = String::new();
        for sub in self.command.get_subcommands() {
            s.push_str("  ");
            s.push_str(&usage_line(sub));
            s.push('\n');
        }
        s
    }

    /// The command a word names, by long or short name, case-insensitively.
    fn find(&self, word: &str) -> Option<&clap::Command> {
        self.command.get_subcommands().find(|sub| {
            sub.get_name().eq_ignore_ascii_case(word)
                || sub.get_all_aliases().any(|a| a.eq_ignore_ascii_case(word))
        })
    }

    /// Parses one command line (the command word first). `batch`: the words come
    /// from stdin, so an unknown command gets a one-line hint, not the whole list.
    pub(crate) fn parse<C: FromArgMatches>(
        &self,
        mut words: Vec<String>,
        batch: bool,
    ) -> Res<Parsed<C>> {
        let Some(first) = words.first() else {
            return Err(Fail::Usage(self.usage_all()));
        };
        if is_help(first) || first.eq_ignore_ascii_case("help") || first == "?" {
            return Ok(Parsed::Help(
                match words.get(1).and_then(|w| self.find(w)) {
                    Some(sub) => command_help(sub),
                    None => self.usage_all(),
                },
            ));
        }
        let Some(sub) = self.find(first) else {
            return Err(Fail::Usage(if batch {
                format!(
                    "ERROR: unknown command: {first} (`help` lists the {} commands)",
                    self.tool
                )
            } else {
                format!("unknown command: {first}\n\n{}", self.usage_all())
            }));
        };
        if words[1..].iter().any(|w| is_help(w)) {
            return Ok(Parsed::Help(command_help(sub)));
        }
        words[0] = sub.get_name().to_string();
        let longs = crate::zimbra::long_names(sub);
        let words = crate::zimbra::normalize_single_dash(canonical_case(words, &longs), &longs);
        // Some of clap's errors (a bad value) carry no usage line: add the command's.
        let usage_line = usage_line(sub);
        let usage = |e: clap::Error| {
            let text = e.render().to_string();
            Fail::Usage(if text.contains("Usage:") {
                text
            } else {
                format!("{}\nusage: {usage_line}", text.trim_end())
            })
        };
        let matches = self
            .command
            .clone()
            .try_get_matches_from(words)
            .map_err(usage)?;
        C::from_arg_matches(&matches)
            .map(Parsed::Run)
            .map_err(usage)
    }
}

/// Long option names in any case (`-novalidation`, `--View`) as the command
/// spells them; everything after `--` stays as it is.
fn canonical_case(words: Vec<String>, longs: &[String]) -> Vec<String> {
    let mut literal = false;
    words
        .into_iter()
        .map(|w| {
            literal |= w == "--";
            let dashes = if w.starts_with("--") { 2 } else { 1 };
            let body = w.get(dashes..).filter(|_| !literal && w.starts_with('-'));
            let Some(body) = body else { return w };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            match longs
                .iter()
                .find(|l| l.len() > 1 && l.eq_ignore_ascii_case(name))
            {
                Some(l) => {
                    let mut canon = format!("{}{l}", &w[..dashes]);
                    if let Some(v) = value {
                        canon.push('=');
                        canon.push_str(v);
                    }
                    canon
                }
                None => w,
            }
        })
        .collect()
}

fn is_help(word: &str) -> bool {
    matches!(word, "-h" | "--help" | "-help")
}

/// `getAccount(ga) {name@domain|id} [attr1 [attr2...]]`
fn usage_line(sub: &clap::Command) -> String {
    let name = match sub.get_visible_aliases().next() {
        Some(short) => format!("{}({short})", sub.get_name()),
        None => sub.get_name().to_string(),
    };
    match sub.get_overridden_usage() {
        // Already rewritten (the command list of a built grammar).
        Some(u) if u.to_string().starts_with(&name) => u.to_string(),
        Some(u) => format!("{name} {u}"),
        None => name,
    }
}

fn command_help(sub: &clap::Command) -> String {
    sub.clone().render_help().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Subcommand, Debug, PartialEq)]
    enum Demo {
        /// Create an account.
        #[command(
            name = "createAccount",
            visible_alias = "ca",
            override_usage = "{name@domain} {password} [attr1 value1 [attr2 value2...]]"
        )]
        CreateAccount {
            /// The address.
            email: String,
            /// The password.
            password: String,
            /// Attribute name/value pairs.
            #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
            attrs: Vec<String>,
        },
        /// Add messages.
        #[command(
            name = "addMessage",
            visible_alias = "am",
            override_usage = "[-F flags] {folder}"
        )]
        AddMessage {
            /// Flags.
            #[arg(short = 'F', long = "flags")]
            flags: Option<String>,
            /// Skip validation.
            #[arg(long = "noValidation")]
            no_validation: bool,
            /// The folder.
            folder: String,
        },
    }

    fn words(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn grammar() -> Grammar {
        Grammar::new::<Demo>("zmdemo", "usage: zmdemo {command}", "")
    }

    fn run(v: &[&str]) -> Demo {
        match grammar().parse::<Demo>(words(v), false) {
            Ok(Parsed::Run(c)) => c,
            Ok(Parsed::Help(h)) => panic!("{v:?}: help {h}"),
            Err(Fail::Usage(u)) => panic!("{v:?}: usage {u}"),
            Err(Fail::Op(e)) => panic!("{v:?}: {e}"),
        }
    }

    #[test]
    fn long_and_short_names_in_any_case_mean_one_command() {
        let expect = Demo::CreateAccount {
            email: "u@d".into(),
            password: "pw".into(),
            attrs: words(&["+zimbraMailAlias", "a@d", "-zimbraMailAlias", "b@d"]),
        };
        for name in ["ca", "CA", "createAccount", "CREATEACCOUNT"] {
            let got = run(&[
                name,
                "u@d",
                "pw",
                "+zimbraMailAlias",
                "a@d",
                "-zimbraMailAlias",
                "b@d",
            ]);
            assert_eq!(got, expect, "{name}");
        }
    }

    #[test]
    fn options_anywhere_in_either_dash_spelling() {
        let expect = Demo::AddMessage {
            flags: Some("uf".into()),
            no_validation: true,
            folder: "/Inbox".into(),
        };
        assert_eq!(run(&["am", "/Inbox", "-F", "uf", "-noValidation"]), expect);
        assert_eq!(
            run(&["am", "/Inbox", "--FLAGS=uf", "-novalidation"]),
            expect
        );
        // After `--`, words are values even when they look like options.
        assert_eq!(
            run(&["ca", "u@d", "pw", "--", "-NOVALIDATION", "x"]),
            Demo::CreateAccount {
                email: "u@d".into(),
                password: "pw".into(),
                attrs: words(&["-NOVALIDATION", "x"]),
            }
        );
        assert_eq!(
            run(&["am", "--noValidation", "--flags=uf", "/Inbox"]),
            expect
        );
    }

    #[test]
    fn help_is_generated_and_never_runs_the_command() {
        for v in [
            &["ca", "--help"][..],
            &["ca", "u@d", "-h"],
            &["ca", "u@d", "pw", "-help"],
            &["help", "CreateAccount"],
        ] {
            match grammar().parse::<Demo>(words(v), false) {
                Ok(Parsed::Help(h)) => {
                    assert!(
                        h.starts_with("usage: createAccount(ca) {name@domain} {password}"),
                        "{v:?}: {h}"
                    );
                    assert!(h.contains("Attribute name/value pairs"), "{h}");
                }
                _ => panic!("{v:?}: not help"),
            }
        }
        let Ok(Parsed::Help(all)) = grammar().parse::<Demo>(words(&["help"]), false) else {
            panic!("help");
        };
        assert!(
            all.starts_with("usage: zmdemo {command}\n\ncommands:\n"),
            "{all}"
        );
        assert!(
            all.contains("  addMessage(am) [-F flags] {folder}\n"),
            "{all}"
        );
    }

    #[test]
    fn bad_lines_say_what_was_wrong() {
        let usage = |v: &[&str], batch: bool| match grammar().parse::<Demo>(words(v), batch) {
            Err(Fail::Usage(u)) => u,
            _ => panic!("{v:?} parsed"),
        };
        let u = usage(&["frobnicate"], false);
        assert!(u.starts_with("unknown command: frobnicate"), "{u}");
        assert!(u.contains("createAccount(ca)"), "{u}");
        let u = usage(&["frobnicate"], true);
        assert!(u.contains("`help` lists the zmdemo commands"), "{u}");
        let u = usage(&["ca", "u@d"], false);
        assert!(u.contains("<PASSWORD>"), "{u}");
        assert!(u.contains("createAccount(ca) {name@domain}"), "{u}");
        let u = usage(&["am", "-x", "/Inbox"], false);
        assert!(u.contains("'-x'"), "{u}");
    }
}
