//! `zmprov aal/ral/gal/gaal`: account loggers. They change the running server's
//! logging at once, and live in its memory only (a restart clears them, as in
//! Zimbra), so without a running server there is nothing to set: the command
//! says so instead of setting a logger in a process about to exit.

use super::prov::{Fail, Res, Session, json_out, line, op_err};
use mv_server::Request;
use mv_server::account_log::AccountLogger;
use serde_json::Value;

/// Pulls `-s NAME` / `--server NAME` out of the words: the server must be this
/// one (there is one mailbox server per home).
fn take_server(words: &mut Vec<String>) -> Res<Option<String>> {
    let Some(at) = words
        .iter()
        .position(|w| matches!(w.as_str(), "-s" | "--server" | "-server"))
    else {
        return Ok(None);
    };
    if at + 1 >= words.len() {
        return Err(Fail::Usage(format!("{} needs a server name", words[at])));
    }
    let name = words.remove(at + 1);
    words.remove(at);
    Ok(Some(name))
}

/// Runs one account logger command (`long` is its Zimbra long name); `a` holds
/// its arguments.
pub(crate) fn run(
    s: &mut Session<'_>,
    long: &str,
    usage: &dyn Fn() -> Fail,
    a: &[String],
    json: bool,
    out: &mut Vec<u8>,
) -> Res<()> {
    let mut a = a.to_vec();
    let server = take_server(&mut a)?;
    let req = match (long, a.as_slice()) {
        ("addAccountLogger", [account, category, level]) => Request::AddAccountLogger {
            account: account.clone(),
            category: category.clone(),
            level: level.clone(),
        },
        ("removeAccountLogger", rest) if rest.len() <= 2 => Request::RemoveAccountLogger {
            account: rest.first().cloned(),
            category: rest.get(1).cloned(),
        },
        ("getAccountLoggers", [account]) => Request::GetAccountLoggers {
            account: Some(account.clone()),
        },
        ("getAllAccountLoggers", []) => Request::GetAccountLoggers { account: None },
        _ => return Err(usage()),
    };
    if s.client()?.is_local() {
        return Err(op_err(
            "account loggers live in the running server's memory and no server runs on this \
             home: start it first (zmcontrol start)",
        ));
    }
    if let Some(name) = server {
        let ping = s.exec(Request::Ping)?;
        let ours = ping["server"].as_str().unwrap_or_default();
        if !ours.eq_ignore_ascii_case(&name) {
            return Err(op_err(format!(
                "no such server: {name} (this home's server is {ours})"
            )));
        }
    }
    let v = s.exec(req)?;
    if json {
        json_out(out, &v);
        return Ok(());
    }
    if matches!(long, "addAccountLogger" | "removeAccountLogger") {
        return Ok(());
    }
    print_loggers(out, v)
}

/// `# name ACCOUNT` then `category=level` lines, per account.
fn print_loggers(out: &mut Vec<u8>, v: Value) -> Res<()> {
    let loggers: Vec<AccountLogger> = super::prov::decode(v)?;
    let mut last: Option<&str> = None;
    for l in &loggers {
        if last != Some(l.account.as_str()) {
            line(out, format!("# name {}", l.account));
            last = Some(&l.account);
        }
        line(out, format!("{}={}", l.category.name(), l.level.name()));
    }
    Ok(())
}
