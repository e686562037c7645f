//! `mailvault prov` / `zmprov`: provisioning (accounts, domains, classes of service,
//! global and server config, distribution lists). A positional command (short or long
//! Zimbra name, case-insensitive) and its arguments; with no command, one command per
//! line is read from stdin and all run in one process.
//!
//! Output follows zmprov: `get*` commands print entries as `# name X` then sorted
//! `attr: value` lines, `getAll*` print one name per line (`-v` prints entries),
//! `create*` print the new zimbraId, modifications print nothing. `--json` prints the
//! service's JSON result instead. Exit codes: 0 ok, 1 the operation failed
//! (`ERROR: ...` on stderr), 2 bad usage.
//!
//! This file also holds the small runtime `mailbox.rs` shares: the lazily connected
//! session, the failure kinds, option parsing, and the stdin batch loop.

use crate::client::Client;
use mv_directory::{Account, Cos, DistributionList, Domain, Server};
use mv_home::Home;
use mv_server::Request;
use mv_types::UtcMillis;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
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
    /// The command (ca, ga, gaa, ma, ...; `help` lists them) and its arguments.
    /// Without one, commands are read from stdin, one per line.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND [ARGS]"
    )]
    args: Vec<String>,
}

// ------------------------------------------------------------- shared runtime

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

    pub(crate) fn exec(&mut self, req: Request) -> Res<Value> {
        if self.client.is_none() {
            self.client = Some(Client::connect(self.home)?);
        }
        let Some(client) = &self.client else {
            unreachable!("connected above")
        };
        Ok(client.execute(req)?)
    }
}

/// Appends a line to the output buffer.
pub(crate) fn line(out: &mut Vec<u8>, s: impl AsRef<str>) {
    out.extend_from_slice(s.as_ref().as_bytes());
    out.push(b'\n');
}

pub(crate) fn json_out(out: &mut Vec<u8>, v: &Value) {
    line(
        out,
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()),
    );
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

/// The answer to an unknown command: the full command list, or in a batch a hint.
pub(crate) fn unknown_command(
    s: &Session<'_>,
    name: &str,
    tool: &str,
    usage_all: impl FnOnce() -> String,
) -> Fail {
    if s.batch {
        Fail::Usage(format!(
            "ERROR: unknown command: {name} (`help` lists the {tool} commands)"
        ))
    } else {
        Fail::Usage(format!("unknown command: {name}\n\n{}", usage_all()))
    }
}

/// Runs commands read from stdin, one per line (`#` comments and blank lines are
/// skipped), with a prompt when stdin is a terminal. Failures are reported and the
/// batch goes on; the exit code is the worst one seen.
pub(crate) fn batch(
    prompt: &str,
    mut run: impl FnMut(Vec<String>, &mut Vec<u8>) -> Res<()>,
) -> ExitCode {
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let mut worst = 0u8;
    let mut input = stdin.lock();
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
                eprintln!("ERROR: reading commands from stdin: {e}");
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

/// Splits a command line into words: whitespace-separated, with '...' and "..."
/// quoting and backslash escapes (outside single quotes).
pub(crate) fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(format!("unbalanced quote in: {s}"));
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// One option a command accepts: short name, long name, takes a value.
pub(crate) type OptSpec = (&'static str, &'static str, bool);

/// Options given to a command, by long name.
#[derive(Default)]
pub(crate) struct Opts {
    values: BTreeMap<&'static str, Vec<String>>,
}

impl Opts {
    pub(crate) fn flag(&self, long: &str) -> bool {
        self.values.contains_key(long)
    }
    pub(crate) fn value(&self, long: &str) -> Option<&str> {
        self.values
            .get(long)
            .and_then(|v| v.last())
            .map(String::as_str)
    }
    pub(crate) fn values(&self, long: &str) -> &[String] {
        self.values.get(long).map(Vec::as_slice).unwrap_or_default()
    }
}

/// Separates options (`-x`, `-x VALUE`, `--long`, `-long`, `--long=VALUE`, anywhere;
/// `--` ends them) from positional arguments. `usage` is the command's usage line.
pub(crate) fn parse_opts(
    words: &[String],
    spec: &[OptSpec],
    usage: &str,
) -> Res<(Opts, Vec<String>)> {
    let mut opts = Opts::default();
    let mut pos = Vec::new();
    let mut it = words.iter();
    while let Some(w) = it.next() {
        if w == "--" {
            pos.extend(it.by_ref().cloned());
            break;
        }
        let Some(body) = w.strip_prefix('-').filter(|b| !b.is_empty()) else {
            pos.push(w.clone());
            continue;
        };
        let body = body.strip_prefix('-').unwrap_or(body);
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let found = spec
            .iter()
            .find(|(s, l, _)| *s == name || l.eq_ignore_ascii_case(name));
        let Some(&(_, long, takes_value)) = found else {
            return Err(Fail::Usage(format!("unknown option {w}\nusage: {usage}")));
        };
        let value = if takes_value {
            match inline.or_else(|| it.next().cloned()) {
                Some(v) => v,
                None => {
                    return Err(Fail::Usage(format!(
                        "option {w} needs a value\nusage: {usage}"
                    )));
                }
            }
        } else {
            String::new()
        };
        opts.values.entry(long).or_default().push(value);
    }
    Ok((opts, pos))
}

// ------------------------------------------------------------------ commands

use crate::zimbra::Cmd;

#[rustfmt::skip]
const COMMANDS: &[Cmd] = &[
    Cmd { short: "ca",   long: "createAccount",                args: "{name@domain} {password} [attr1 value1 [attr2 value2...]]" },
    Cmd { short: "ga",   long: "getAccount",                   args: "{name@domain|id} [attr1 [attr2...]]" },
    Cmd { short: "gaa",  long: "getAllAccounts",               args: "[-v] [{domain}]" },
    Cmd { short: "ma",   long: "modifyAccount",                args: "{name@domain|id} attr1 value1 [attr2 value2...]" },
    Cmd { short: "ra",   long: "renameAccount",                args: "{name@domain|id} {newName@domain}" },
    Cmd { short: "da",   long: "deleteAccount",                args: "{name@domain|id}" },
    Cmd { short: "sp",   long: "setPassword",                  args: "{name@domain|id} {password}" },
    Cmd { short: "aaa",  long: "addAccountAlias",              args: "{name@domain|id} {alias@domain}" },
    Cmd { short: "raa",  long: "removeAccountAlias",           args: "{name@domain|id} {alias@domain}" },
    Cmd { short: "sac",  long: "setAccountCos",                args: "{name@domain|id} {cos-name|cos-id}" },
    Cmd { short: "gmi",  long: "getMailboxInfo",               args: "{name@domain|id}" },
    Cmd { short: "rim",  long: "reIndexMailbox",               args: "{name@domain|id} {start|status}" },
    Cmd { short: "cd",   long: "createDomain",                 args: "{domain} [attr1 value1 [attr2 value2...]]" },
    Cmd { short: "gd",   long: "getDomain",                    args: "{domain|id} [attr1 [attr2...]]" },
    Cmd { short: "gad",  long: "getAllDomains",                args: "[-v]" },
    Cmd { short: "md",   long: "modifyDomain",                 args: "{domain|id} attr1 value1 [attr2 value2...]" },
    Cmd { short: "dd",   long: "deleteDomain",                 args: "{domain|id}" },
    Cmd { short: "cc",   long: "createCos",                    args: "{name} [attr1 value1 [attr2 value2...]]" },
    Cmd { short: "cpc",  long: "copyCos",                      args: "{src-cos-name|id} {dest-cos-name}" },
    Cmd { short: "gc",   long: "getCos",                       args: "{name|id} [attr1 [attr2...]]" },
    Cmd { short: "gac",  long: "getAllCos",                    args: "[-v]" },
    Cmd { short: "mc",   long: "modifyCos",                    args: "{name|id} attr1 value1 [attr2 value2...]" },
    Cmd { short: "dc",   long: "deleteCos",                    args: "{name|id}" },
    Cmd { short: "gacf", long: "getAllConfig",                 args: "[attr1 [attr2...]]" },
    Cmd { short: "gcf",  long: "getConfig",                    args: "{name}" },
    Cmd { short: "mcf",  long: "modifyConfig",                 args: "attr1 value1 [attr2 value2...]" },
    Cmd { short: "gs",   long: "getServer",                    args: "[{name}] [attr1 [attr2...]]" },
    Cmd { short: "gas",  long: "getAllServers",                args: "[-v]" },
    Cmd { short: "ms",   long: "modifyServer",                 args: "[{name}] attr1 value1 [attr2 value2...]" },
    Cmd { short: "cdl",  long: "createDistributionList",       args: "{list@domain} [attr1 value1 [attr2 value2...]]" },
    Cmd { short: "gdl",  long: "getDistributionList",          args: "{list@domain|id} [attr1 [attr2...]]" },
    Cmd { short: "gadl", long: "getAllDistributionLists",      args: "[-v] [{domain}]" },
    Cmd { short: "adlm", long: "addDistributionListMember",    args: "{list@domain|id} {member@domain} [member@domain...]" },
    Cmd { short: "rdlm", long: "removeDistributionListMember", args: "{list@domain|id} {member@domain} [member@domain...]" },
    Cmd { short: "ddl",  long: "deleteDistributionList",       args: "{list@domain|id}" },
    Cmd { short: "aal",  long: "addAccountLogger",             args: "[-s/--server hostname] {name@domain|id} {zimbra.backup|zimbra.lmtp|zimbra.imap|zimbra.mailbox} {trace|debug|info|warn|error}  (running server only; a restart clears it)" },
    Cmd { short: "ral",  long: "removeAccountLogger",          args: "[-s/--server hostname] [{name@domain|id} [{logging-category}]]  (none: every account logger)" },
    Cmd { short: "gal",  long: "getAccountLoggers",            args: "[-s/--server hostname] {name@domain|id}" },
    Cmd { short: "gaal", long: "getAllAccountLoggers",         args: "[-s/--server hostname]" },
];

fn find_cmd(name: &str) -> Option<&'static Cmd> {
    crate::zimbra::find_cmd(COMMANDS, name)
}

fn usage_line(c: &Cmd) -> String {
    c.usage_line()
}

fn usage_all() -> String {
    let mut s = String::from(
        "usage: zmprov [-l] [-v] [--json] {command} [args...]   (no command: read commands from stdin)\n\ncommands:\n",
    );
    for c in COMMANDS {
        s.push_str("  ");
        s.push_str(&usage_line(c));
        s.push('\n');
    }
    s
}

pub fn run(home: &Home, args: Args) -> anyhow::Result<ExitCode> {
    let _ = (args.ldap, args.verbose, args.zadmin); // accepted, nothing to change
    let mut session = Session::new(home);
    let json = args.json;
    if args.args.is_empty() {
        session.batch = true;
        return Ok(super::prov_batch::run(
            &mut session,
            json,
            |s, words, out| run_command(s, words, json, out),
        ));
    }
    let mut out = Vec::new();
    let result = run_command(&mut session, args.args, json, &mut out);
    Ok(ExitCode::from(finish(result, &out)))
}

fn run_command(
    s: &mut Session<'_>,
    mut words: Vec<String>,
    json: bool,
    out: &mut Vec<u8>,
) -> Res<()> {
    let json = take_json(&mut words) || json;
    let Some(name) = words.first().cloned() else {
        return Err(Fail::Usage(usage_all()));
    };
    if let Some(text) = crate::zimbra::help_text(COMMANDS, &words, usage_all) {
        out.extend_from_slice(text.as_bytes());
        return Ok(());
    }
    let Some(cmd) = find_cmd(&name) else {
        return Err(unknown_command(s, &name, "zmprov", usage_all));
    };
    let a = &words[1..];
    let usage = || Fail::Usage(format!("usage: {}", usage_line(cmd)));
    // Checks the argument count: at least `min`, at most `max`.
    let count = |min: usize, max: usize| {
        if a.len() < min || a.len() > max {
            Err(usage())
        } else {
            Ok(())
        }
    };
    // Attribute lists come in name/value pairs.
    let pairs = |attrs: &[String], at_least_one: bool| {
        if !attrs.len().is_multiple_of(2) || (at_least_one && attrs.is_empty()) {
            Err(Fail::Usage(format!(
                "attributes come in name/value pairs (use '' as the value to remove an attribute)\nusage: {}",
                usage_line(cmd)
            )))
        } else {
            Ok(attrs.to_vec())
        }
    };
    let list_opts: &[OptSpec] = &[("v", "verbose", false)];
    let one = |v: &str| v.to_string();
    let show = |out: &mut Vec<u8>, v: &Value| {
        if json {
            json_out(out, v)
        }
    };
    match cmd.long {
        "createAccount" => {
            count(2, usize::MAX)?;
            let attrs = pairs(&a[2..], false)?;
            let password = Some(a[1].clone()).filter(|p| !p.is_empty());
            let v = s.exec(Request::CreateAccount {
                email: one(&a[0]),
                password,
                attrs,
            })?;
            print_id(out, &v, json);
        }
        "getAccount" => {
            count(1, usize::MAX)?;
            let v = s.exec(Request::GetAccount { key: one(&a[0]) })?;
            if json {
                json_out(out, &v);
            } else {
                let account: Account = decode(v)?;
                let cos = s
                    .exec(Request::GetCos {
                        name: account.cos_id.clone(),
                    })
                    .ok();
                let cos: Option<Cos> = cos.and_then(|c| serde_json::from_value(c).ok());
                print_entry(
                    out,
                    &account.email,
                    &account_attrs(&account, cos.as_ref()),
                    &a[1..],
                );
            }
        }
        "getAllAccounts" => {
            let (o, pos) = parse_opts(a, list_opts, &usage_line(cmd))?;
            if pos.len() > 1 {
                return Err(usage());
            }
            let v = s.exec(Request::GetAllAccounts {
                domain: pos.first().cloned(),
            })?;
            if json {
                json_out(out, &v);
            } else {
                let accounts: Vec<Account> = decode(v)?;
                if o.flag("verbose") {
                    let all: Vec<Cos> = decode(s.exec(Request::GetAllCos)?)?;
                    for (i, acc) in accounts.iter().enumerate() {
                        if i > 0 {
                            line(out, "");
                        }
                        let cos = all.iter().find(|c| c.id == acc.cos_id);
                        print_entry(out, &acc.email, &account_attrs(acc, cos), &[]);
                    }
                } else {
                    accounts.iter().for_each(|acc| line(out, &acc.email));
                }
            }
        }
        "modifyAccount" => {
            count(1, usize::MAX)?;
            let attrs = pairs(&a[1..], true)?;
            show(
                out,
                &s.exec(Request::ModifyAccount {
                    key: one(&a[0]),
                    attrs,
                })?,
            );
        }
        "renameAccount" => {
            count(2, 2)?;
            show(
                out,
                &s.exec(Request::RenameAccount {
                    key: one(&a[0]),
                    new_email: one(&a[1]),
                })?,
            );
        }
        "deleteAccount" => {
            count(1, 1)?;
            show(out, &s.exec(Request::DeleteAccount { key: one(&a[0]) })?);
        }
        "setPassword" => {
            count(2, 2)?;
            show(
                out,
                &s.exec(Request::SetPassword {
                    key: one(&a[0]),
                    password: one(&a[1]),
                })?,
            );
        }
        "addAccountAlias" => {
            count(2, 2)?;
            show(
                out,
                &s.exec(Request::AddAccountAlias {
                    key: one(&a[0]),
                    alias: one(&a[1]),
                })?,
            );
        }
        "removeAccountAlias" => {
            count(2, 2)?;
            show(
                out,
                &s.exec(Request::RemoveAccountAlias {
                    key: one(&a[0]),
                    alias: one(&a[1]),
                })?,
            );
        }
        "setAccountCos" => {
            count(2, 2)?;
            show(
                out,
                &s.exec(Request::SetAccountCos {
                    key: one(&a[0]),
                    cos: one(&a[1]),
                })?,
            );
        }
        "getMailboxInfo" => {
            count(1, 1)?;
            let v = s.exec(Request::GetMailboxInfo { key: one(&a[0]) })?;
            if json {
                json_out(out, &v);
            } else {
                line(out, format!("mailboxId: {}", scalar(&v["mailboxId"])));
                line(out, format!("quotaUsed: {}", scalar(&v["quotaUsed"])));
            }
        }
        "reIndexMailbox" => {
            count(2, 2)?;
            let action = match a[1].to_ascii_lowercase().as_str() {
                "start" => mv_server::service::ReindexAction::Start,
                "status" => mv_server::service::ReindexAction::Status,
                other => {
                    return Err(Fail::Usage(format!(
                        "unknown reIndexMailbox action {other:?} (use start or status)\nusage: {}",
                        usage_line(cmd)
                    )));
                }
            };
            let v = s.exec(Request::ReindexMailbox {
                account: one(&a[0]),
                action,
            })?;
            if json {
                json_out(out, &v);
            } else {
                // zmprov's two lines: the state, then the counts.
                let state = if action == mv_server::service::ReindexAction::Start {
                    "started"
                } else {
                    v["state"].as_str().unwrap_or("idle")
                };
                line(out, format!("status: {state}"));
                line(
                    out,
                    format!(
                        "progress: numSucceeded={}, numFailed={}, numRemaining={}",
                        scalar(&v["succeeded"]),
                        scalar(&v["failed"]),
                        scalar(&v["remaining"])
                    ),
                );
                if let Some(e) = v["last_error"].as_str() {
                    line(out, format!("lastError: {e}"));
                }
            }
        }
        "createDomain" => {
            count(1, usize::MAX)?;
            let attrs = pairs(&a[1..], false)?;
            print_id(
                out,
                &s.exec(Request::CreateDomain {
                    name: one(&a[0]),
                    attrs,
                })?,
                json,
            );
        }
        "getDomain" => {
            count(1, usize::MAX)?;
            let v = s.exec(Request::GetDomain { name: one(&a[0]) })?;
            if json {
                json_out(out, &v);
            } else {
                let d: Domain = decode(v)?;
                print_entry(out, &d.name, &domain_attrs(&d), &a[1..]);
            }
        }
        "getAllDomains" => {
            let (o, pos) = parse_opts(a, list_opts, &usage_line(cmd))?;
            if !pos.is_empty() {
                return Err(usage());
            }
            let v = s.exec(Request::GetAllDomains)?;
            if json {
                json_out(out, &v);
            } else {
                let all: Vec<Domain> = decode(v)?;
                let entries = all.iter().map(|d| (d.name.clone(), domain_attrs(d)));
                print_list(out, entries, o.flag("verbose"));
            }
        }
        "modifyDomain" => {
            count(1, usize::MAX)?;
            let attrs = pairs(&a[1..], true)?;
            show(
                out,
                &s.exec(Request::ModifyDomain {
                    name: one(&a[0]),
                    attrs,
                })?,
            );
        }
        "deleteDomain" => {
            count(1, 1)?;
            show(out, &s.exec(Request::DeleteDomain { name: one(&a[0]) })?);
        }
        "createCos" => {
            count(1, usize::MAX)?;
            let attrs = pairs(&a[1..], false)?;
            print_id(
                out,
                &s.exec(Request::CreateCos {
                    name: one(&a[0]),
                    attrs,
                })?,
                json,
            );
        }
        "copyCos" => {
            count(2, 2)?;
            print_id(
                out,
                &s.exec(Request::CopyCos {
                    source: one(&a[0]),
                    name: one(&a[1]),
                })?,
                json,
            );
        }
        "getCos" => {
            count(1, usize::MAX)?;
            let v = s.exec(Request::GetCos { name: one(&a[0]) })?;
            if json {
                json_out(out, &v);
            } else {
                let c: Cos = decode(v)?;
                print_entry(out, &c.name, &cos_attrs(&c), &a[1..]);
            }
        }
        "getAllCos" => {
            let (o, pos) = parse_opts(a, list_opts, &usage_line(cmd))?;
            if !pos.is_empty() {
                return Err(usage());
            }
            let v = s.exec(Request::GetAllCos)?;
            if json {
                json_out(out, &v);
            } else {
                let all: Vec<Cos> = decode(v)?;
                let entries = all.iter().map(|c| (c.name.clone(), cos_attrs(c)));
                print_list(out, entries, o.flag("verbose"));
            }
        }
        "modifyCos" => {
            count(1, usize::MAX)?;
            let attrs = pairs(&a[1..], true)?;
            show(
                out,
                &s.exec(Request::ModifyCos {
                    name: one(&a[0]),
                    attrs,
                })?,
            );
        }
        "deleteCos" => {
            count(1, 1)?;
            show(out, &s.exec(Request::DeleteCos { name: one(&a[0]) })?);
        }
        "getAllConfig" | "getConfig" => {
            if cmd.short == "gcf" {
                count(1, 1)?;
            }
            let v = s.exec(Request::GetAllConfig)?;
            if json {
                json_out(out, &v);
            } else {
                let attrs: BTreeMap<String, Vec<String>> = decode(v)?;
                let pairs: Vec<(String, String)> = attrs
                    .into_iter()
                    .flat_map(|(k, vs)| vs.into_iter().map(move |v| (k.clone(), v)))
                    .collect();
                print_attrs(out, pairs, a);
            }
        }
        "modifyConfig" => {
            let attrs = pairs(a, true)?;
            show(out, &s.exec(Request::ModifyConfig { attrs })?);
        }
        "getServer" => {
            // `gs [NAME] [attr...]`: the first word is a server name when it names one
            // (or looks like a host name); otherwise this host's server is meant.
            let servers: Vec<Server> = decode(s.exec(Request::GetAllServers)?)?;
            let (name, filter) = match a.first() {
                Some(first)
                    if first.contains('.')
                        || servers.iter().any(|x| x.name.eq_ignore_ascii_case(first)) =>
                {
                    (Some(first.clone()), &a[1..])
                }
                _ => (None, a),
            };
            let v = s.exec(Request::GetServer { name })?;
            if json {
                json_out(out, &v);
            } else {
                let name = scalar(&v["name"]);
                let attrs: BTreeMap<String, Vec<String>> = decode(v["attrs"].clone())?;
                let mut pairs = vec![("cn".to_string(), name.clone())];
                if let Some(srv) = servers.iter().find(|x| x.name == name) {
                    pairs.push(("zimbraId".to_string(), srv.id.clone()));
                }
                pairs.extend(
                    attrs
                        .into_iter()
                        .flat_map(|(k, vs)| vs.into_iter().map(move |v| (k.clone(), v))),
                );
                line(out, format!("# name {name}"));
                print_attrs(out, pairs, filter);
            }
        }
        "getAllServers" => {
            let (o, pos) = parse_opts(a, list_opts, &usage_line(cmd))?;
            if !pos.is_empty() {
                return Err(usage());
            }
            let v = s.exec(Request::GetAllServers)?;
            if json {
                json_out(out, &v);
            } else {
                let all: Vec<Server> = decode(v)?;
                let entries = all.iter().map(|x| {
                    let mut p = vec![
                        ("cn".to_string(), x.name.clone()),
                        ("zimbraId".to_string(), x.id.clone()),
                    ];
                    p.extend(flatten(&x.attrs));
                    (x.name.clone(), p)
                });
                print_list(out, entries, o.flag("verbose"));
            }
        }
        "modifyServer" => {
            // `ms [NAME] attr value ...`: attributes come in pairs, so an odd count
            // means the first word is the server name.
            count(1, usize::MAX)?;
            let (name, attrs) = if a.len().is_multiple_of(2) {
                (None, a)
            } else {
                (Some(a[0].clone()), &a[1..])
            };
            let attrs = pairs(attrs, true)?;
            show(out, &s.exec(Request::ModifyServer { name, attrs })?);
        }
        "createDistributionList" => {
            count(1, usize::MAX)?;
            let attrs = pairs(&a[1..], false)?;
            print_id(
                out,
                &s.exec(Request::CreateDistributionList {
                    email: one(&a[0]),
                    attrs,
                })?,
                json,
            );
        }
        "getDistributionList" => {
            count(1, usize::MAX)?;
            let v = s.exec(Request::GetDistributionList { email: one(&a[0]) })?;
            if json {
                json_out(out, &v);
            } else {
                let dl: DistributionList = decode(v)?;
                print_dl(out, &dl, &a[1..]);
            }
        }
        "getAllDistributionLists" => {
            let (o, pos) = parse_opts(a, list_opts, &usage_line(cmd))?;
            if pos.len() > 1 {
                return Err(usage());
            }
            let v = s.exec(Request::GetAllDistributionLists {
                domain: pos.first().cloned(),
            })?;
            if json {
                json_out(out, &v);
            } else {
                let all: Vec<DistributionList> = decode(v)?;
                for (i, dl) in all.iter().enumerate() {
                    if o.flag("verbose") {
                        if i > 0 {
                            line(out, "");
                        }
                        print_dl(out, dl, &[]);
                    } else {
                        line(out, &dl.email);
                    }
                }
            }
        }
        "addDistributionListMember" => {
            count(2, usize::MAX)?;
            let members = a[1..].to_vec();
            show(
                out,
                &s.exec(Request::AddDistributionListMembers {
                    email: one(&a[0]),
                    members,
                })?,
            );
        }
        "removeDistributionListMember" => {
            count(2, usize::MAX)?;
            let members = a[1..].to_vec();
            show(
                out,
                &s.exec(Request::RemoveDistributionListMembers {
                    email: one(&a[0]),
                    members,
                })?,
            );
        }
        "deleteDistributionList" => {
            count(1, 1)?;
            show(
                out,
                &s.exec(Request::DeleteDistributionList { email: one(&a[0]) })?,
            );
        }
        "addAccountLogger"
        | "removeAccountLogger"
        | "getAccountLoggers"
        | "getAllAccountLoggers" => {
            super::prov_loggers::run(s, cmd.long, &usage, a, json, out)?;
        }
        other => unreachable!("command {other} is in COMMANDS but not dispatched"),
    }
    Ok(())
}

// ------------------------------------------------------------------- output

pub(crate) fn decode<T: serde::de::DeserializeOwned>(v: Value) -> Res<T> {
    serde_json::from_value(v)
        .map_err(|e| op_err(format!("unexpected answer from the service: {e}")))
}

/// A JSON scalar as text (strings without quotes; null as empty).
pub(crate) fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `create*` commands print the new entry's zimbraId, as zmprov does.
fn print_id(out: &mut Vec<u8>, v: &Value, json: bool) {
    if json {
        json_out(out, v);
    } else {
        line(out, scalar(&v["id"]));
    }
}

/// LDAP generalized time with milliseconds, as the directory's LDIF writes it.
fn gentime(t: UtcMillis) -> String {
    format!("{}Z", t.label_stamp().replacen('.', "", 1))
}

fn flatten(attrs: &BTreeMap<String, Vec<String>>) -> Vec<(String, String)> {
    attrs
        .iter()
        .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
        .collect()
}

/// An account as zmprov shows it: the model's fields under their LDAP names, its
/// own attributes, and the attributes it inherits from its class of service.
fn account_attrs(a: &Account, cos: Option<&Cos>) -> Vec<(String, String)> {
    let mut p = vec![
        ("mail".to_string(), a.email.clone()),
        ("uid".to_string(), a.local_part().to_string()),
        ("zimbraMailDeliveryAddress".to_string(), a.email.clone()),
        ("zimbraId".to_string(), a.id.clone()),
        (
            "zimbraAccountStatus".to_string(),
            a.status.as_str().to_string(),
        ),
        ("zimbraCOSId".to_string(), a.cos_id.clone()),
        ("mailvaultMailboxId".to_string(), a.mailbox_id.to_string()),
        ("zimbraCreateTimestamp".to_string(), gentime(a.created)),
    ];
    p.extend(
        a.aliases
            .iter()
            .map(|al| ("zimbraMailAlias".to_string(), al.clone())),
    );
    p.extend(flatten(&a.attrs));
    if let Some(cos) = cos {
        let own = |k: &str| a.attrs.keys().any(|n| n.eq_ignore_ascii_case(k));
        p.extend(flatten(&cos.attrs).into_iter().filter(|(k, _)| !own(k)));
    }
    p
}

fn domain_attrs(d: &Domain) -> Vec<(String, String)> {
    let mut p = vec![
        ("zimbraDomainName".to_string(), d.name.clone()),
        ("zimbraId".to_string(), d.id.clone()),
        ("zimbraCreateTimestamp".to_string(), gentime(d.created)),
    ];
    p.extend(flatten(&d.attrs));
    p
}

fn cos_attrs(c: &Cos) -> Vec<(String, String)> {
    let mut p = vec![
        ("cn".to_string(), c.name.clone()),
        ("zimbraId".to_string(), c.id.clone()),
        ("zimbraCreateTimestamp".to_string(), gentime(c.created)),
    ];
    p.extend(flatten(&c.attrs));
    p
}

fn print_dl(out: &mut Vec<u8>, dl: &DistributionList, filter: &[String]) {
    let mut p = vec![
        ("mail".to_string(), dl.email.clone()),
        (
            "uid".to_string(),
            dl.email.split('@').next().unwrap_or_default().to_string(),
        ),
        ("zimbraId".to_string(), dl.id.clone()),
        ("zimbraCreateTimestamp".to_string(), gentime(dl.created)),
    ];
    p.extend(
        dl.members
            .iter()
            .map(|m| ("zimbraMailForwardingAddress".to_string(), m.clone())),
    );
    p.extend(flatten(&dl.attrs));
    line(
        out,
        format!(
            "# distributionList {} memberCount={}",
            dl.email,
            dl.members.len()
        ),
    );
    print_attrs(out, p, filter);
    if filter.is_empty() {
        line(out, "");
        line(out, "members");
        dl.members.iter().for_each(|m| line(out, m));
    }
}

/// `# name NAME` then the attributes.
fn print_entry(out: &mut Vec<u8>, name: &str, attrs: &[(String, String)], filter: &[String]) {
    line(out, format!("# name {name}"));
    print_attrs(out, attrs.to_vec(), filter);
}

/// `attr: value` lines, one per value, sorted by attribute name (case-insensitive,
/// values in their stored order); with a filter, only those attributes.
fn print_attrs(out: &mut Vec<u8>, mut attrs: Vec<(String, String)>, filter: &[String]) {
    attrs.sort_by_key(|(k, _)| k.to_ascii_lowercase());
    for (k, v) in attrs {
        if filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(&k)) {
            line(out, format!("{k}: {v}"));
        }
    }
}

/// Names one per line, or with `-v` full entries separated by blank lines.
fn print_list(
    out: &mut Vec<u8>,
    entries: impl Iterator<Item = (String, Vec<(String, String)>)>,
    verbose: bool,
) {
    for (i, (name, attrs)) in entries.enumerate() {
        if verbose {
            if i > 0 {
                line(out, "");
            }
            print_entry(out, &name, &attrs, &[]);
        } else {
            line(out, name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words_with_quotes() {
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
        assert!(split_words("ga \"x").is_err());
    }

    #[test]
    fn commands_case_insensitive() {
        assert_eq!(find_cmd("GA").unwrap().long, "getAccount");
        assert_eq!(find_cmd("getaccount").unwrap().short, "ga");
        assert!(find_cmd("nope").is_none());
    }

    #[test]
    fn options_anywhere() {
        let words: Vec<String> = ["-l", "10", "in:inbox", "--types=message", "-v"]
            .map(String::from)
            .to_vec();
        let spec: &[OptSpec] = &[
            ("l", "limit", true),
            ("t", "types", true),
            ("v", "verbose", false),
        ];
        let (o, pos) = parse_opts(&words, spec, "u").ok().unwrap();
        assert_eq!(o.value("limit"), Some("10"));
        assert_eq!(o.value("types"), Some("message"));
        assert!(o.flag("verbose"));
        assert_eq!(pos, ["in:inbox"]);
        assert!(parse_opts(&["-x".to_string()], spec, "u").is_err());
    }

    #[test]
    fn generalized_time() {
        assert_eq!(gentime(UtcMillis(1_290_174_908_802)), "20101119135508.802Z");
    }
}
