//! `zmprov aal/ral/gal/gaal`: account loggers. They change the running server's
//! logging at once, and live in its memory only (a restart clears them, as in
//! Zimbra), so without a running server there is nothing to set: the command
//! says so instead of setting a logger in a process about to exit.

use super::Out;
use crate::cmd::zmshell::{Res, line, op_err};
use mv_server::Request;
use mv_server::account_log::AccountLogger;
use mv_server::response::Pong;

#[derive(clap::Subcommand, Debug)]
pub(super) enum Command {
    /// Log one account's activity in a category at a level (running server only; a restart clears it).
    #[command(
        name = "addAccountLogger",
        visible_alias = "aal",
        override_usage = "[-s/--server hostname] {name@domain|id} {zimbra.backup|zimbra.lmtp|zimbra.imap|zimbra.mailbox} {trace|debug|info|warn|error}  (running server only; a restart clears it)"
    )]
    AddAccountLogger {
        /// The server (there is one per home: this one).
        #[arg(short = 's', long = "server", value_name = "HOSTNAME")]
        server: Option<String>,
        /// The account's address, alias or zimbraId.
        account: String,
        /// The logging category.
        category: String,
        /// The level.
        level: String,
    },
    /// Remove account loggers: one category of one account, all of one account, or every one.
    #[command(
        name = "removeAccountLogger",
        visible_alias = "ral",
        override_usage = "[-s/--server hostname] [{name@domain|id} [{logging-category}]]  (none: every account logger)"
    )]
    RemoveAccountLogger {
        /// The server (there is one per home: this one).
        #[arg(short = 's', long = "server", value_name = "HOSTNAME")]
        server: Option<String>,
        /// The account's address, alias or zimbraId (default: every account).
        account: Option<String>,
        /// The logging category (default: every category).
        category: Option<String>,
    },
    /// Print one account's loggers.
    #[command(
        name = "getAccountLoggers",
        visible_alias = "gal",
        override_usage = "[-s/--server hostname] {name@domain|id}"
    )]
    GetAccountLoggers {
        /// The server (there is one per home: this one).
        #[arg(short = 's', long = "server", value_name = "HOSTNAME")]
        server: Option<String>,
        /// The account's address, alias or zimbraId.
        account: String,
    },
    /// Print every account logger.
    #[command(
        name = "getAllAccountLoggers",
        visible_alias = "gaal",
        override_usage = "[-s/--server hostname]"
    )]
    GetAllAccountLoggers {
        /// The server (there is one per home: this one).
        #[arg(short = 's', long = "server", value_name = "HOSTNAME")]
        server: Option<String>,
    },
}

pub(super) fn run(cmd: Command, o: &mut Out<'_, '_>) -> Res<()> {
    let (server, req, prints) = match cmd {
        Command::AddAccountLogger {
            server,
            account,
            category,
            level,
        } => (
            server,
            Request::AddAccountLogger {
                account,
                category,
                level,
            },
            false,
        ),
        Command::RemoveAccountLogger {
            server,
            account,
            category,
        } => (
            server,
            Request::RemoveAccountLogger { account, category },
            false,
        ),
        Command::GetAccountLoggers { server, account } => (
            server,
            Request::GetAccountLoggers {
                account: Some(account),
            },
            true,
        ),
        Command::GetAllAccountLoggers { server } => {
            (server, Request::GetAccountLoggers { account: None }, true)
        }
    };
    if o.s.client()?.is_local() {
        return Err(op_err(
            "account loggers live in the running server's memory and no server runs on this \
             home: start it first (zmcontrol start)",
        ));
    }
    if let Some(name) = server {
        let ping: Pong = o.s.exec(Request::Ping)?;
        let ours = ping.server;
        if !ours.eq_ignore_ascii_case(&name) {
            return Err(op_err(format!(
                "no such server: {name} (this home's server is {ours})"
            )));
        }
    }
    let loggers: Vec<AccountLogger> = o.s.exec(req)?;
    if o.raw(&loggers)? || !prints {
        return Ok(());
    }
    print_loggers(o.out, &loggers);
    Ok(())
}

/// `# name ACCOUNT` then `category=level` lines, per account.
fn print_loggers(out: &mut Vec<u8>, loggers: &[AccountLogger]) {
    let mut last: Option<&str> = None;
    for l in loggers {
        if last != Some(l.account.as_str()) {
            line(out, format!("# name {}", l.account));
            last = Some(&l.account);
        }
        line(out, format!("{}={}", l.category.name(), l.level.name()));
    }
}
