//! zmprov's global config and server commands.

use super::output::{flatten, print_attrs, print_list};
use super::{Out, attr_pairs};
use crate::cmd::zmshell::{Res, line};
use mv_directory::Server;
use mv_server::Request;
use mv_server::response::ServerConfig;
use std::collections::BTreeMap;

#[derive(clap::Subcommand, Debug)]
pub(super) enum Command {
    /// Print the global config (only the attributes named, if any).
    #[command(
        name = "getAllConfig",
        visible_alias = "gacf",
        override_usage = "[attr1 [attr2...]]"
    )]
    GetAllConfig {
        /// Attributes to print (default: all).
        attrs: Vec<String>,
    },
    /// Print one attribute of the global config.
    #[command(name = "getConfig", visible_alias = "gcf", override_usage = "{name}")]
    GetConfig {
        /// The attribute.
        name: String,
    },
    /// Change the global config (+attr adds a value, -attr removes one, '' removes all).
    #[command(
        name = "modifyConfig",
        visible_alias = "mcf",
        override_usage = "attr1 value1 [attr2 value2...]"
    )]
    ModifyConfig {
        /// Attribute name/value pairs.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        attrs: Vec<String>,
    },
    /// Print a server's attributes (default: this host's server).
    #[command(
        name = "getServer",
        visible_alias = "gs",
        override_usage = "[{name}] [attr1 [attr2...]]"
    )]
    GetServer {
        /// The server's name (when it names one or looks like a host name), then
        /// attributes to print (default: all).
        words: Vec<String>,
    },
    /// List the servers, one name per line.
    #[command(name = "getAllServers", visible_alias = "gas", override_usage = "[-v]")]
    GetAllServers {
        /// Print every server's attributes.
        #[arg(short = 'v', long = "verbose")]
        verbose: bool,
    },
    /// Change a server's attributes (default: this host's server).
    #[command(
        name = "modifyServer",
        visible_alias = "ms",
        override_usage = "[{name}] attr1 value1 [attr2 value2...]"
    )]
    ModifyServer {
        /// The server's name (when the count of words is odd), then attribute
        /// name/value pairs.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
}

pub(super) fn run(cmd: Command, o: &mut Out<'_, '_>) -> Res<()> {
    match cmd {
        Command::GetAllConfig { attrs } => print_config(o, &attrs)?,
        Command::GetConfig { name } => print_config(o, &[name])?,
        Command::ModifyConfig { attrs } => {
            let attrs = attr_pairs("modifyConfig", attrs, true)?;
            o.done::<mv_directory::Attrs>(Request::ModifyConfig { attrs })?;
        }
        Command::GetServer { words } => {
            // `gs [NAME] [attr...]`: the first word is a server name when it names one
            // (or looks like a host name); otherwise this host's server is meant.
            let servers: Vec<Server> = o.s.exec(Request::GetAllServers)?;
            let (name, filter) = match words.first() {
                Some(first)
                    if first.contains('.')
                        || servers.iter().any(|x| x.name.eq_ignore_ascii_case(first)) =>
                {
                    (Some(first.clone()), &words[1..])
                }
                _ => (None, &words[..]),
            };
            let v: ServerConfig = o.s.exec(Request::GetServer { name })?;
            if o.raw(&v)? {
                return Ok(());
            }
            let ServerConfig { name, attrs } = v;
            let mut pairs = vec![("cn".to_string(), name.clone())];
            if let Some(srv) = servers.iter().find(|x| x.name == name) {
                pairs.push(("zimbraId".to_string(), srv.id.clone()));
            }
            pairs.extend(flatten(&attrs));
            line(o.out, format!("# name {name}"));
            print_attrs(o.out, pairs, filter);
        }
        Command::GetAllServers { verbose } => {
            let all: Vec<Server> = o.s.exec(Request::GetAllServers)?;
            if o.raw(&all)? {
                return Ok(());
            }
            let entries = all.iter().map(|x| {
                let mut p = vec![
                    ("cn".to_string(), x.name.clone()),
                    ("zimbraId".to_string(), x.id.clone()),
                ];
                p.extend(flatten(&x.attrs));
                (x.name.clone(), p)
            });
            print_list(o.out, entries, verbose);
        }
        Command::ModifyServer { mut words } => {
            // `ms [NAME] attr value ...`: attributes come in pairs, so an odd count
            // means the first word is the server name.
            let name = (!words.len().is_multiple_of(2)).then(|| words.remove(0));
            let attrs = attr_pairs("modifyServer", words, true)?;
            o.done::<mv_directory::Server>(Request::ModifyServer { name, attrs })?;
        }
    }
    Ok(())
}

/// The global config's attributes, all or the ones named.
fn print_config(o: &mut Out<'_, '_>, filter: &[String]) -> Res<()> {
    let attrs: BTreeMap<String, Vec<String>> = o.s.exec(Request::GetAllConfig)?;
    if !o.raw(&attrs)? {
        print_attrs(o.out, flatten(&attrs), filter);
    }
    Ok(())
}
