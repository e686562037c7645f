//! zmprov's account commands.

use super::output::{account_attrs, print_entry, print_id};
use super::{Out, attr_pairs};
use crate::cmd::zmshell::{Res, line};
use mv_directory::{Account, Cos};
use mv_server::Request;
use mv_server::response::{MailboxInfo, ReindexState, ReindexStatus};
use mv_server::service::ReindexAction;

#[derive(clap::Subcommand, Debug)]
pub(super) enum Command {
    /// Create an account; prints its zimbraId. An empty password ('') sets none.
    #[command(
        name = "createAccount",
        visible_alias = "ca",
        override_usage = "{name@domain} {password} [attr1 value1 [attr2 value2...]]"
    )]
    CreateAccount {
        /// The new account's address.
        email: String,
        /// Its password ('' for none).
        password: String,
        /// Attribute name/value pairs.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        attrs: Vec<String>,
    },
    /// Print an account's attributes (only the ones named, if any).
    #[command(
        name = "getAccount",
        visible_alias = "ga",
        override_usage = "{name@domain|id} [attr1 [attr2...]]"
    )]
    GetAccount {
        /// The account's address, alias or zimbraId.
        account: String,
        /// Attributes to print (default: all).
        attrs: Vec<String>,
    },
    /// List the accounts (of one domain), one address per line.
    #[command(
        name = "getAllAccounts",
        visible_alias = "gaa",
        override_usage = "[-v] [{domain}]"
    )]
    GetAllAccounts {
        /// Print every account's attributes.
        #[arg(short = 'v', long = "verbose")]
        verbose: bool,
        /// Only this domain's accounts.
        domain: Option<String>,
    },
    /// Change an account's attributes (+attr adds a value, -attr removes one, '' removes all).
    #[command(
        name = "modifyAccount",
        visible_alias = "ma",
        override_usage = "{name@domain|id} attr1 value1 [attr2 value2...]"
    )]
    ModifyAccount {
        /// The account's address, alias or zimbraId.
        account: String,
        /// Attribute name/value pairs.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        attrs: Vec<String>,
    },
    /// Give an account a new address.
    #[command(
        name = "renameAccount",
        visible_alias = "ra",
        override_usage = "{name@domain|id} {newName@domain}"
    )]
    RenameAccount {
        /// The account's address, alias or zimbraId.
        account: String,
        /// Its new address.
        new_email: String,
    },
    /// Delete an account and its mailbox.
    #[command(
        name = "deleteAccount",
        visible_alias = "da",
        override_usage = "{name@domain|id}"
    )]
    DeleteAccount {
        /// The account's address, alias or zimbraId.
        account: String,
    },
    /// Set an account's password.
    #[command(
        name = "setPassword",
        visible_alias = "sp",
        override_usage = "{name@domain|id} {password}"
    )]
    SetPassword {
        /// The account's address, alias or zimbraId.
        account: String,
        /// The new password.
        password: String,
    },
    /// Add an alias address to an account.
    #[command(
        name = "addAccountAlias",
        visible_alias = "aaa",
        override_usage = "{name@domain|id} {alias@domain}"
    )]
    AddAccountAlias {
        /// The account's address, alias or zimbraId.
        account: String,
        /// The alias address.
        alias: String,
    },
    /// Remove an alias address from an account.
    #[command(
        name = "removeAccountAlias",
        visible_alias = "raa",
        override_usage = "{name@domain|id} {alias@domain}"
    )]
    RemoveAccountAlias {
        /// The account's address, alias or zimbraId.
        account: String,
        /// The alias address.
        alias: String,
    },
    /// Put an account in a class of service.
    #[command(
        name = "setAccountCos",
        visible_alias = "sac",
        override_usage = "{name@domain|id} {cos-name|cos-id}"
    )]
    SetAccountCos {
        /// The account's address, alias or zimbraId.
        account: String,
        /// The class of service's name or zimbraId.
        cos: String,
    },
    /// Print an account's mailbox id and the quota it uses.
    #[command(
        name = "getMailboxInfo",
        visible_alias = "gmi",
        override_usage = "{name@domain|id}"
    )]
    GetMailboxInfo {
        /// The account's address, alias or zimbraId.
        account: String,
    },
    /// Rebuild a mailbox's search index, or report how far a rebuild got.
    #[command(
        name = "reIndexMailbox",
        visible_alias = "rim",
        override_usage = "{name@domain|id} {start|status}"
    )]
    ReIndexMailbox {
        /// The account's address, alias or zimbraId.
        account: String,
        /// start (rebuild the index) or status (report the rebuild's progress).
        #[arg(value_parser = parse_action)]
        action: Action,
    },
}

/// `reIndexMailbox`'s action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Action {
    /// Start rebuilding the index.
    Start,
    /// Report the rebuild's progress.
    Status,
}

/// `start` or `status`, in any case.
fn parse_action(s: &str) -> Result<Action, String> {
    match s.to_ascii_lowercase().as_str() {
        "start" => Ok(Action::Start),
        "status" => Ok(Action::Status),
        _ => Err("unknown reIndexMailbox action (use start or status)".into()),
    }
}

pub(super) fn run(cmd: Command, o: &mut Out<'_, '_>) -> Res<()> {
    match cmd {
        Command::CreateAccount {
            email,
            password,
            attrs,
        } => {
            let attrs = attr_pairs("createAccount", attrs, false)?;
            let password = Some(password).filter(|p| !p.is_empty());
            let v: Account = o.s.exec(Request::CreateAccount {
                email,
                password,
                attrs,
            })?;
            print_id(o.out, &v, o.json)?;
        }
        Command::GetAccount { account, attrs } => {
            let account: Account = o.s.exec(Request::GetAccount { key: account })?;
            if o.raw(&account)? {
                return Ok(());
            }
            // Inherited values are shown as zmprov shows them; a COS that cannot be
            // read only hides them.
            let cos: Option<Cos> =
                o.s.exec(Request::GetCos {
                    name: account.cos_id.clone(),
                })
                .ok();
            print_entry(
                o.out,
                &account.email,
                &account_attrs(&account, cos.as_ref()),
                &attrs,
            );
        }
        Command::GetAllAccounts { verbose, domain } => {
            let accounts: Vec<Account> = o.s.exec(Request::GetAllAccounts { domain })?;
            if o.raw(&accounts)? {
                return Ok(());
            }
            if verbose {
                let all: Vec<Cos> = o.s.exec(Request::GetAllCos)?;
                for (i, acc) in accounts.iter().enumerate() {
                    if i > 0 {
                        line(o.out, "");
                    }
                    let cos = all.iter().find(|c| c.id == acc.cos_id);
                    print_entry(o.out, &acc.email, &account_attrs(acc, cos), &[]);
                }
            } else {
                accounts.iter().for_each(|acc| line(o.out, &acc.email));
            }
        }
        Command::ModifyAccount { account, attrs } => {
            let attrs = attr_pairs("modifyAccount", attrs, true)?;
            o.done::<mv_directory::Account>(Request::ModifyAccount {
                key: account,
                attrs,
            })?;
        }
        Command::RenameAccount { account, new_email } => {
            o.done::<mv_directory::Account>(Request::RenameAccount {
                key: account,
                new_email,
            })?
        }
        Command::DeleteAccount { account } => {
            o.done::<mv_directory::Account>(Request::DeleteAccount { key: account })?
        }
        Command::SetPassword { account, password } => {
            o.done::<mv_server::response::Ack>(Request::SetPassword {
                key: account,
                password,
            })?
        }
        Command::AddAccountAlias { account, alias } => {
            o.done::<mv_directory::Account>(Request::AddAccountAlias {
                key: account,
                alias,
            })?
        }
        Command::RemoveAccountAlias { account, alias } => {
            o.done::<mv_directory::Account>(Request::RemoveAccountAlias {
                key: account,
                alias,
            })?
        }
        Command::SetAccountCos { account, cos } => {
            o.done::<mv_directory::Account>(Request::SetAccountCos { key: account, cos })?
        }
        Command::GetMailboxInfo { account } => {
            let v: MailboxInfo = o.s.exec(Request::GetMailboxInfo { key: account })?;
            if !o.raw(&v)? {
                line(o.out, format!("mailboxId: {}", v.mailbox_id));
                line(o.out, format!("quotaUsed: {}", v.quota_used));
            }
        }
        Command::ReIndexMailbox { account, action } => {
            let action = match action {
                Action::Start => ReindexAction::Start,
                Action::Status => ReindexAction::Status,
            };
            let v: ReindexStatus = o.s.exec(Request::ReindexMailbox { account, action })?;
            if o.raw(&v)? {
                return Ok(());
            }
            // zmprov's two lines: the state, then the counts.
            let state = match (action, v.state) {
                (ReindexAction::Start, _) => "started",
                (_, ReindexState::Idle) => "idle",
                (_, ReindexState::Running) => "running",
            };
            line(o.out, format!("status: {state}"));
            line(
                o.out,
                format!(
                    "progress: numSucceeded={}, numFailed={}, numRemaining={}",
                    v.succeeded, v.failed, v.remaining
                ),
            );
            if let Some(e) = &v.last_error {
                line(o.out, format!("lastError: {e}"));
            }
        }
    }
    Ok(())
}
