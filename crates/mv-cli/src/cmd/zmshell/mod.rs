//! What `zmprov` and `zmmailbox` share: a command word and its arguments, parsed by
//! one clap grammar per tool (`grammar.rs`) whether they come from the command line
//! or, one line at a time, from stdin; the lazily opened connection to the service;
//! the failure kinds and their exit codes; and the output buffer of one command.

mod grammar;

pub(crate) use grammar::{Grammar, Parsed};

use crate::client::Client;
use mv_home::Home;
use mv_server::{Reply, Request};
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

/// Why a command did not succeed.
pub(crate) enum Fail {
    /// Bad command line: the message (usually a usage line); exit 2.
    Usage(String),
    /// The operation failed; exit 1.
    Op(anyhow::Error),
}

impl From<anyhow::Error> for Fail {
    fn from(e: anyhow::Error) -> Self {
        Fail::Op(e)
    }
}

pub(crate) type Res<T> = Result<T, Fail>;

pub(crate) fn op_err(msg: impl std::fmt::Display) -> Fail {
    Fail::Op(anyhow::anyhow!("{msg}"))
}

/// A connection to the service, opened on first use (usage errors never open the
/// store), then reused by every command of a batch.
pub(crate) struct Session<'h> {
    home: &'h Home,
    client: Option<Client>,
    /// Commands come from stdin: keep usage messages short.
    pub(crate) batch: bool,
}

impl<'h> Session<'h> {
    pub(crate) fn new(home: &'h Home) -> Self {
        Session {
            home,
            client: None,
            batch: false,
        }
    }

    /// The connection, opened on first use (local callers stream large data
    /// through its in-process service).
    pub(crate) fn client(&mut self) -> Res<&Client> {
        if self.client.is_none() {
            self.client = Some(Client::connect(self.home)?);
        }
        let Some(client) = &self.client else {
            unreachable!("connected above")
        };
        Ok(client)
    }

    /// Runs a request; its answer as the type the request answers with.
    pub(crate) fn exec<T: Reply>(&mut self, req: Request) -> Res<T> {
        Ok(self.client()?.call(req)?)
    }
}

/// Appends a line to the output buffer.
pub(crate) fn line(out: &mut Vec<u8>, s: impl AsRef<str>) {
    out.extend_from_slice(s.as_ref().as_bytes());
    out.push(b'\n');
}

/// An answer as `--json` prints it (pretty). A value that cannot be
/// serialized is this command's error, not a blank.
pub(crate) fn json_out(out: &mut Vec<u8>, v: &impl serde::Serialize) -> Res<()> {
    let text = serde_json::to_string_pretty(v)
        .map_err(|e| op_err(format!("printing the answer as JSON: {e}")))?;
    line(out, text);
    Ok(())
}

/// Writes a command's output, then reports its failure; returns the exit code.
/// A closed stdout (`zmprov gaa | head`) is not an error.
pub(crate) fn finish(result: Res<()>, out: &[u8]) -> u8 {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out).and_then(|()| stdout.flush());
    match result {
        Ok(()) => 0,
        Err(Fail::Usage(msg)) => {
            eprintln!("{}", msg.trim_end());
            2
        }
        Err(Fail::Op(e)) => {
            eprintln!("ERROR: {e:#}");
            1
        }
    }
}

/// Pulls `--json` (anywhere) out of a command's words.
pub(crate) fn take_json(words: &mut Vec<String>) -> bool {
    let before = words.len();
    words.retain(|w| w != "--json");
    words.len() != before
}

/// Runs commands read one per line from `file` (`-f FILE`) or else stdin (blank
/// lines and `#` comments are skipped), with a prompt when stdin is a terminal.
/// Each line is split into words as a POSIX shell does (quotes, backslash escapes;
/// a word starting with `#` begins a comment). Failures are reported and the batch
/// goes on; the exit code is the worst one seen.
pub(crate) fn batch(
    prompt: &str,
    file: Option<&Path>,
    mut run: impl FnMut(Vec<String>, &mut Vec<u8>) -> Res<()>,
) -> ExitCode {
    let (mut input, interactive, source): (Box<dyn BufRead>, bool, String) = match file {
        Some(path) => match std::fs::File::open(path) {
            Ok(f) => (
                Box::new(std::io::BufReader::new(f)),
                false,
                path.display().to_string(),
            ),
            Err(e) => {
                eprintln!("ERROR: reading commands from {}: {e}", path.display());
                return ExitCode::from(1);
            }
        },
        None => {
            let stdin = std::io::stdin();
            let interactive = stdin.is_terminal();
            (Box::new(stdin.lock()), interactive, "stdin".into())
        }
    };
    let mut worst = 0u8;
    let mut text = String::new();
    loop {
        if interactive {
            eprint!("{prompt}");
        }
        text.clear();
        match input.read_line(&mut text) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                eprintln!("ERROR: reading commands from {source}: {e}");
                return ExitCode::from(1);
            }
        }
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if interactive && matches!(trimmed, "quit" | "exit") {
            break;
        }
        let mut out = Vec::new();
        let result = match split_words(trimmed) {
            Ok(words) => run(words, &mut out),
            Err(e) => Err(Fail::Usage(format!("ERROR: {e}"))),
        };
        worst = worst.max(finish(result, &out));
    }
    ExitCode::from(worst)
}

/// Splits one command line into words as a POSIX shell does.
pub(crate) fn split_words(s: &str) -> Result<Vec<String>, String> {
    shlex::split(s).ok_or_else(|| {
        format!(
            "unbalanced quote or trailing backslash in: {s} (quote values with '...' or \"...\")"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words_as_a_shell_does() {
        assert_eq!(
            split_words(r#"ma a@b.c description "two words" x 'it''s' y a\ b"#).unwrap(),
            [
                "ma",
                "a@b.c",
                "description",
                "two words",
                "x",
                "its",
                "y",
                "a b"
            ]
        );
        assert_eq!(split_words("ma a '' b").unwrap(), ["ma", "a", "", "b"]);
        assert_eq!(
            split_words("ma a d \"say \\\"hi\\\"\"").unwrap(),
            ["ma", "a", "d", "say \"hi\""]
        );
        assert!(split_words("ga \"x").is_err());
        assert!(split_words("ga 'x").is_err());
    }
}
