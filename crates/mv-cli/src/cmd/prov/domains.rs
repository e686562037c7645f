//! zmprov's domain commands.

use super::output::{domain_attrs, print_entry, print_id, print_list};
use super::{Out, attr_pairs};
use crate::cmd::zmshell::Res;
use mv_directory::Domain;
use mv_server::Request;

#[derive(clap::Subcommand, Debug)]
pub(super) enum Command {
    /// Create a domain; prints its zimbraId.
    #[command(
        name = "createDomain",
        visible_alias = "cd",
        override_usage = "{domain} [attr1 value1 [attr2 value2...]]"
    )]
    CreateDomain {
        /// The domain name.
        name: String,
        /// Attribute name/value pairs.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        attrs: Vec<String>,
    },
    /// Print a domain's attributes (only the ones named, if any).
    #[command(
        name = "getDomain",
        visible_alias = "gd",
        override_usage = "{domain|id} [attr1 [attr2...]]"
    )]
    GetDomain {
        /// The domain's name or zimbraId.
        domain: String,
        /// Attributes to print (default: all).
        attrs: Vec<String>,
    },
    /// List the domains, one name per line.
    #[command(name = "getAllDomains", visible_alias = "gad", override_usage = "[-v]")]
    GetAllDomains {
        /// Print every domain's attributes.
        #[arg(short = 'v', long = "verbose")]
        verbose: bool,
    },
    /// Change a domain's attributes (+attr adds a value, -attr removes one, '' removes all).
    #[command(
        name = "modifyDomain",
        visible_alias = "md",
        override_usage = "{domain|id} attr1 value1 [attr2 value2...]"
    )]
    ModifyDomain {
        /// The domain's name or zimbraId.
        domain: String,
        /// Attribute name/value pairs.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        attrs: Vec<String>,
    },
    /// Delete a domain (it must have no accounts or lists).
    #[command(
        name = "deleteDomain",
        visible_alias = "dd",
        override_usage = "{domain|id}"
    )]
    DeleteDomain {
        /// The domain's name or zimbraId.
        domain: String,
    },
}

pub(super) fn run(cmd: Command, o: &mut Out<'_, '_>) -> Res<()> {
    match cmd {
        Command::CreateDomain { name, attrs } => {
            let attrs = attr_pairs("createDomain", attrs, false)?;
            let v: Domain = o.s.exec(Request::CreateDomain { name, attrs })?;
            print_id(o.out, &v, o.json)?;
        }
        Command::GetDomain { domain, attrs } => {
            let d: Domain = o.s.exec(Request::GetDomain { name: domain })?;
            if !o.raw(&d)? {
                print_entry(o.out, &d.name, &domain_attrs(&d), &attrs);
            }
        }
        Command::GetAllDomains { verbose } => {
            let all: Vec<Domain> = o.s.exec(Request::GetAllDomains)?;
            if !o.raw(&all)? {
                let entries = all.iter().map(|d| (d.name.clone(), domain_attrs(d)));
                print_list(o.out, entries, verbose);
            }
        }
        Command::ModifyDomain { domain, attrs } => {
            let attrs = attr_pairs("modifyDomain", attrs, true)?;
            o.done::<mv_directory::Domain>(Request::ModifyDomain {
                name: domain,
                attrs,
            })?;
        }
        Command::DeleteDomain { domain } => {
            o.done::<Vec<mv_directory::Account>>(Request::DeleteDomain { name: domain })?
        }
    }
    Ok(())
}
