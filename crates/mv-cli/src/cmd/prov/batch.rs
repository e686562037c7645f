//! `zmprov` reading commands from a file or a pipe (`zmprov < ca-lines.txt`,
//! the way accounts are provisioned by the thousand).
//!
//! Consecutive `ca` lines are sent as one [`Request::CreateAccounts`]: a group
//! closes after [`GROUP_LINES`] lines or [`GROUP_BYTES`] of them, when
//! [`GROUP_WAIT`] has passed since it opened (a slow producer still sees its
//! accounts created promptly), or when another command comes (which then runs
//! after it, so commands keep their order). Each line's answer — the zimbraId,
//! or `ERROR: ...` — is printed in order once the group is durable, exactly as
//! running the lines one by one prints it. A terminal gets the plain
//! line-at-a-time loop.

use crate::cmd::zmshell::{Fail, Res, Session, batch, finish, line, op_err, split_words};
use mv_server::Request;
use mv_server::provision::{AccountSpec, Created, MAX_BATCH};
use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::time::{Duration, Instant};

/// `ca` lines sent together at most.
pub(crate) const GROUP_LINES: usize = 500;
/// Bytes of `ca` lines sent together at most (the admin API takes 1 MiB).
pub(crate) const GROUP_BYTES: usize = 256 * 1024;
/// How long a group waits for more lines before it is sent.
pub(crate) const GROUP_WAIT: Duration = Duration::from_millis(100);
/// Lines read ahead of the one running at most (bounds memory to a few of them).
const READ_AHEAD: usize = 1024;

const _: () = assert!(GROUP_LINES <= MAX_BATCH);

/// A line of input, or why there is none.
enum Input {
    Line(String),
    Failed(std::io::Error),
}

/// Runs the commands of `file` (`-f`), else of stdin; `run` executes one (not
/// grouped) command.
pub(crate) fn run(
    session: &mut Session<'_>,
    json: bool,
    file: Option<&Path>,
    mut run: impl FnMut(&mut Session<'_>, Vec<String>, &mut Vec<u8>) -> Res<()>,
) -> ExitCode {
    let (input, source): (Box<dyn BufRead + Send>, String) = match file {
        Some(path) => match std::fs::File::open(path) {
            Ok(f) => (
                Box::new(std::io::BufReader::new(f)),
                path.display().to_string(),
            ),
            Err(e) => {
                eprintln!("ERROR: reading commands from {}: {e}", path.display());
                return ExitCode::from(1);
            }
        },
        None if std::io::stdin().is_terminal() => {
            return batch("prov> ", None, |words, out| run(session, words, out));
        }
        None => (
            Box::new(std::io::BufReader::new(std::io::stdin())),
            "stdin".into(),
        ),
    };
    let lines = read_ahead(input);
    let mut worst = 0u8;
    let mut group = Group::default();
    loop {
        let next = match group.opened {
            None => lines.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => {
                lines.recv_timeout((at + GROUP_WAIT).saturating_duration_since(Instant::now()))
            }
        };
        let text = match next {
            Ok(Input::Line(text)) => text,
            Ok(Input::Failed(e)) => {
                // The lines read before the failure still get their answers.
                let sent = group.send(session);
                eprintln!("ERROR: reading commands from {source}: {e}");
                return ExitCode::from(worst.max(sent).max(1));
            }
            Err(RecvTimeoutError::Timeout) => {
                worst = worst.max(group.send(session));
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let words = match split_words(trimmed) {
            Ok(words) => words,
            Err(e) => {
                worst = worst.max(group.send(session));
                worst = worst.max(finish(Err(Fail::Usage(format!("ERROR: {e}"))), &[]));
                continue;
            }
        };
        match create_account(&words, json) {
            Some(spec) => {
                group.push(spec, trimmed.len());
                if group.full() {
                    worst = worst.max(group.send(session));
                }
            }
            None => {
                worst = worst.max(group.send(session));
                let mut out = Vec::new();
                let result = run(session, words, &mut out);
                worst = worst.max(finish(result, &out));
            }
        }
    }
    worst = worst.max(group.send(session));
    ExitCode::from(worst)
}

/// Reads the input on a thread of its own, so that a group can close on time
/// while the next line is slow to come.
fn read_ahead(mut input: Box<dyn BufRead + Send>) -> Receiver<Input> {
    let (tx, rx) = sync_channel(READ_AHEAD);
    std::thread::spawn(move || {
        loop {
            let mut text = String::new();
            let item = match input.read_line(&mut text) {
                Ok(0) => return,
                Ok(_) => Input::Line(text),
                Err(e) => Input::Failed(e),
            };
            let failed = matches!(item, Input::Failed(_));
            if tx.send(item).is_err() || failed {
                return;
            }
        }
    });
    rx
}

/// The `ca` a line asks for, when it can join a group: a well-formed
/// `ca EMAIL PASSWORD [attr value ...]` asking for no help and no JSON output.
/// Anything else runs alone, with the usual messages.
fn create_account(words: &[String], json: bool) -> Option<AccountSpec> {
    let name = words.first()?.to_ascii_lowercase();
    let asks_help = words
        .iter()
        .any(|w| matches!(w.as_str(), "--help" | "-help" | "-h" | "--json"));
    if json
        || asks_help
        || !matches!(name.as_str(), "ca" | "createaccount")
        || words.len() < 3
        || !(words.len() - 3).is_multiple_of(2)
    {
        return None;
    }
    Some(AccountSpec {
        email: words[1].clone(),
        password: Some(words[2].clone()).filter(|p| !p.is_empty()),
        attrs: words[3..].to_vec(),
    })
}

/// `ca` lines waiting to be sent.
#[derive(Default)]
struct Group {
    specs: Vec<AccountSpec>,
    bytes: usize,
    opened: Option<Instant>,
}

impl Group {
    fn push(&mut self, spec: AccountSpec, bytes: usize) {
        self.opened.get_or_insert_with(Instant::now);
        self.specs.push(spec);
        self.bytes += bytes;
    }

    fn full(&self) -> bool {
        self.specs.len() >= GROUP_LINES || self.bytes >= GROUP_BYTES
    }

    /// Sends the group and prints each line's answer; returns the worst exit
    /// code. An empty group sends nothing.
    fn send(&mut self, session: &mut Session<'_>) -> u8 {
        let specs = std::mem::take(&mut self.specs);
        self.bytes = 0;
        self.opened = None;
        if specs.is_empty() {
            return 0;
        }
        let count = specs.len();
        let answers: Res<Vec<Created>> = session
            .exec(Request::CreateAccounts { accounts: specs })
            .and_then(|answers: Vec<Created>| {
                if answers.len() == count {
                    Ok(answers)
                } else {
                    Err(op_err(format!(
                        "the server answered {} of {count} account creations",
                        answers.len()
                    )))
                }
            });
        match answers {
            Ok(answers) => answers
                .into_iter()
                .map(|a| match a {
                    Created::Account(account) => {
                        let mut out = Vec::new();
                        line(&mut out, &account.id);
                        finish(Ok(()), &out)
                    }
                    Created::Error(msg) => finish(Err(op_err(msg)), &[]),
                })
                .max()
                .unwrap_or(0),
            // The whole group failed (no connection, the directory's commit):
            // every line says so, as each would have alone.
            Err(e) => {
                let msg = match &e {
                    Fail::Op(e) => format!("{e:#}"),
                    Fail::Usage(m) => m.clone(),
                };
                (0..count)
                    .map(|_| finish(Err(op_err(&msg)), &[]))
                    .max()
                    .unwrap_or(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        split_words(s).unwrap()
    }

    #[test]
    fn only_well_formed_ca_lines_join_a_group() {
        let spec = create_account(&words("CA u@d.test secret displayName 'U Ser'"), false).unwrap();
        assert_eq!(spec.email, "u@d.test");
        assert_eq!(spec.password.as_deref(), Some("secret"));
        assert_eq!(spec.attrs, ["displayName", "U Ser"]);
        let spec = create_account(&words("createAccount u@d.test ''"), false).unwrap();
        assert_eq!(spec.password, None);
        for alone in [
            "ca u@d.test",
            "ca u@d.test pw displayName",
            "ca u@d.test pw --help",
            "ca u@d.test pw --json",
            "ga u@d.test",
            "cd d.test",
        ] {
            assert!(create_account(&words(alone), false).is_none(), "{alone}");
        }
        assert!(create_account(&words("ca u@d.test pw"), true).is_none());
    }
}
