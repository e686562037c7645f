//! zmprov's distribution list commands.

use super::output::{print_dl, print_id};
use super::{Out, attr_pairs};
use crate::cmd::zmshell::{Res, line};
use mv_directory::DistributionList;
use mv_server::Request;

#[derive(clap::Subcommand, Debug)]
pub(super) enum Command {
    /// Create a distribution list; prints its zimbraId.
    #[command(
        name = "createDistributionList",
        visible_alias = "cdl",
        override_usage = "{list@domain} [attr1 value1 [attr2 value2...]]"
    )]
    CreateDistributionList {
        /// The list's address.
        email: String,
        /// Attribute name/value pairs.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        attrs: Vec<String>,
    },
    /// Print a list's attributes and members (only the attributes named, if any).
    #[command(
        name = "getDistributionList",
        visible_alias = "gdl",
        override_usage = "{list@domain|id} [attr1 [attr2...]]"
    )]
    GetDistributionList {
        /// The list's address or zimbraId.
        list: String,
        /// Attributes to print (default: all, then the members).
        attrs: Vec<String>,
    },
    /// List the distribution lists (of one domain), one address per line.
    #[command(
        name = "getAllDistributionLists",
        visible_alias = "gadl",
        override_usage = "[-v] [{domain}]"
    )]
    GetAllDistributionLists {
        /// Print every list's attributes and members.
        #[arg(short = 'v', long = "verbose")]
        verbose: bool,
        /// Only this domain's lists.
        domain: Option<String>,
    },
    /// Add members to a list.
    #[command(
        name = "addDistributionListMember",
        visible_alias = "adlm",
        override_usage = "{list@domain|id} {member@domain} [member@domain...]"
    )]
    AddDistributionListMember {
        /// The list's address or zimbraId.
        list: String,
        /// The addresses to add.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Remove members from a list.
    #[command(
        name = "removeDistributionListMember",
        visible_alias = "rdlm",
        override_usage = "{list@domain|id} {member@domain} [member@domain...]"
    )]
    RemoveDistributionListMember {
        /// The list's address or zimbraId.
        list: String,
        /// The addresses to remove.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Delete a distribution list.
    #[command(
        name = "deleteDistributionList",
        visible_alias = "ddl",
        override_usage = "{list@domain|id}"
    )]
    DeleteDistributionList {
        /// The list's address or zimbraId.
        list: String,
    },
}

pub(super) fn run(cmd: Command, o: &mut Out<'_, '_>) -> Res<()> {
    match cmd {
        Command::CreateDistributionList { email, attrs } => {
            let attrs = attr_pairs("createDistributionList", attrs, false)?;
            let v: DistributionList = o.s.exec(Request::CreateDistributionList { email, attrs })?;
            print_id(o.out, &v, o.json)?;
        }
        Command::GetDistributionList { list, attrs } => {
            let dl: DistributionList = o.s.exec(Request::GetDistributionList { email: list })?;
            if !o.raw(&dl)? {
                print_dl(o.out, &dl, &attrs);
            }
        }
        Command::GetAllDistributionLists { verbose, domain } => {
            let all: Vec<DistributionList> =
                o.s.exec(Request::GetAllDistributionLists { domain })?;
            if o.raw(&all)? {
                return Ok(());
            }
            for (i, dl) in all.iter().enumerate() {
                if verbose {
                    if i > 0 {
                        line(o.out, "");
                    }
                    print_dl(o.out, dl, &[]);
                } else {
                    line(o.out, &dl.email);
                }
            }
        }
        Command::AddDistributionListMember { list, members } => o
            .done::<mv_directory::DistributionList>(Request::AddDistributionListMembers {
                email: list,
                members,
            })?,
        Command::RemoveDistributionListMember { list, members } => {
            o.done::<mv_directory::DistributionList>(Request::RemoveDistributionListMembers {
                email: list,
                members,
            })?
        }
        Command::DeleteDistributionList { list } => {
            o.done::<mv_directory::DistributionList>(Request::DeleteDistributionList {
                email: list,
            })?
        }
    }
    Ok(())
}
