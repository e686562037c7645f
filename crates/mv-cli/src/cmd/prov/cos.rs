//! zmprov's class-of-service commands.

use super::output::{cos_attrs, print_entry, print_id, print_list};
use super::{Out, attr_pairs};
use crate::cmd::zmshell::Res;
use mv_directory::Cos;
use mv_server::Request;

// The variants are Zimbra's command names, which all end in "Cos".
#[allow(clippy::enum_variant_names)]
#[derive(clap::Subcommand, Debug)]
pub(super) enum Command {
    /// Create a class of service; prints its zimbraId.
    #[command(
        name = "createCos",
        visible_alias = "cc",
        override_usage = "{name} [attr1 value1 [attr2 value2...]]"
    )]
    CreateCos {
        /// The new class of service's name.
        name: String,
        /// Attribute name/value pairs.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        attrs: Vec<String>,
    },
    /// Copy a class of service under a new name; prints the copy's zimbraId.
    #[command(
        name = "copyCos",
        visible_alias = "cpc",
        override_usage = "{src-cos-name|id} {dest-cos-name}"
    )]
    CopyCos {
        /// The class of service to copy: name or zimbraId.
        source: String,
        /// The copy's name.
        name: String,
    },
    /// Print a class of service's attributes (only the ones named, if any).
    #[command(
        name = "getCos",
        visible_alias = "gc",
        override_usage = "{name|id} [attr1 [attr2...]]"
    )]
    GetCos {
        /// The class of service's name or zimbraId.
        cos: String,
        /// Attributes to print (default: all).
        attrs: Vec<String>,
    },
    /// List the classes of service, one name per line.
    #[command(name = "getAllCos", visible_alias = "gac", override_usage = "[-v]")]
    GetAllCos {
        /// Print every class of service's attributes.
        #[arg(short = 'v', long = "verbose")]
        verbose: bool,
    },
    /// Change a class of service's attributes (+attr adds a value, -attr removes one).
    #[command(
        name = "modifyCos",
        visible_alias = "mc",
        override_usage = "{name|id} attr1 value1 [attr2 value2...]"
    )]
    ModifyCos {
        /// The class of service's name or zimbraId.
        cos: String,
        /// Attribute name/value pairs.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        attrs: Vec<String>,
    },
    /// Delete a class of service.
    #[command(name = "deleteCos", visible_alias = "dc", override_usage = "{name|id}")]
    DeleteCos {
        /// The class of service's name or zimbraId.
        cos: String,
    },
}

pub(super) fn run(cmd: Command, o: &mut Out<'_, '_>) -> Res<()> {
    match cmd {
        Command::CreateCos { name, attrs } => {
            let attrs = attr_pairs("createCos", attrs, false)?;
            let v: Cos = o.s.exec(Request::CreateCos { name, attrs })?;
            print_id(o.out, &v, o.json)?;
        }
        Command::CopyCos { source, name } => {
            let v: Cos = o.s.exec(Request::CopyCos { source, name })?;
            print_id(o.out, &v, o.json)?;
        }
        Command::GetCos { cos, attrs } => {
            let c: Cos = o.s.exec(Request::GetCos { name: cos })?;
            if !o.raw(&c)? {
                print_entry(o.out, &c.name, &cos_attrs(&c), &attrs);
            }
        }
        Command::GetAllCos { verbose } => {
            let all: Vec<Cos> = o.s.exec(Request::GetAllCos)?;
            if !o.raw(&all)? {
                let entries = all.iter().map(|c| (c.name.clone(), cos_attrs(c)));
                print_list(o.out, entries, verbose);
            }
        }
        Command::ModifyCos { cos, attrs } => {
            let attrs = attr_pairs("modifyCos", attrs, true)?;
            o.done::<mv_directory::Cos>(Request::ModifyCos { name: cos, attrs })?;
        }
        Command::DeleteCos { cos } => {
            o.done::<mv_server::response::Ack>(Request::DeleteCos { name: cos })?
        }
    }
    Ok(())
}
