//! zmmailbox's folder commands and its folder table.

use super::{Cx, clip};
use crate::cmd::zmshell::{Res, line};
use mv_server::Request;
use mv_server::response::ItemRef;
use mv_store::Folder;

#[derive(clap::Subcommand, Debug)]
pub(super) enum Command {
    /// Print the folders as a table (-v: as JSON).
    #[command(name = "getAllFolders", visible_alias = "gaf", override_usage = "[-v]")]
    GetAllFolders {
        /// Print the service's JSON answer.
        #[arg(short = 'v', long = "verbose")]
        verbose: bool,
    },
    /// Create a folder (and its missing parents); prints its id.
    #[command(
        name = "createFolder",
        visible_alias = "cf",
        override_usage = "[-V view] {folder-path}"
    )]
    CreateFolder {
        /// What the folder holds: message, contact, appointment, task, document.
        #[arg(short = 'V', long = "view", value_parser = normalize_view)]
        view: Option<String>,
        /// The folder's path (/Inbox/sub).
        path: String,
    },
    /// Rename or move a folder.
    #[command(
        name = "renameFolder",
        visible_alias = "rf",
        override_usage = "{folder-path} {new-folder-path}"
    )]
    RenameFolder {
        /// The folder's path.
        path: String,
        /// Its new path.
        new_path: String,
    },
    /// Delete a folder and everything in it.
    #[command(
        name = "deleteFolder",
        visible_alias = "df",
        override_usage = "{folder-path}"
    )]
    DeleteFolder {
        /// The folder's path.
        path: String,
    },
    /// Delete everything in a folder, keeping the folder.
    #[command(
        name = "emptyFolder",
        visible_alias = "ef",
        override_usage = "{folder-path}"
    )]
    EmptyFolder {
        /// The folder's path.
        path: String,
    },
}

pub(super) fn run(cmd: Command, o: &mut Cx<'_, '_>) -> Res<()> {
    let account = o.account.clone();
    match cmd {
        Command::GetAllFolders { verbose } => {
            let v: Vec<Folder> = o.s.exec(Request::GetAllFolders { account })?;
            if !o.raw_if(verbose, &v)? {
                print_folders(o.out, &v);
            }
        }
        Command::CreateFolder { view, path } => {
            let v: ItemRef = o.s.exec(Request::CreateFolder {
                account,
                path,
                view,
            })?;
            o.print_id(&v)?;
        }
        Command::RenameFolder { path, new_path } => {
            o.done::<mv_server::response::ItemRef>(Request::RenameFolder {
                account,
                path,
                new_path,
            })?
        }
        Command::DeleteFolder { path } => {
            o.done::<mv_server::response::Ack>(Request::DeleteFolder { account, path })?
        }
        Command::EmptyFolder { path } => {
            o.done::<mv_server::response::Deleted>(Request::EmptyFolder { account, path })?
        }
    }
    Ok(())
}

/// Zimbra's view names (and their 4-letter abbreviations in `gaf`).
fn normalize_view(v: &str) -> Result<String, String> {
    let views = [
        "message",
        "conversation",
        "contact",
        "appointment",
        "task",
        "document",
    ];
    let lower = v.to_ascii_lowercase();
    views
        .iter()
        .find(|full| **full == lower || (lower.len() >= 4 && full.starts_with(&lower)))
        .map(|full| {
            if *full == "conversation" {
                "message"
            } else {
                full
            }
            .to_string()
        })
        .ok_or_else(|| format!("unknown view {v:?}: use one of {}", views.join(", ")))
}

/// zmmailbox's folder table, by path.
fn print_folders(out: &mut Vec<u8>, folders: &[Folder]) {
    let mut folders: Vec<&Folder> = folders.iter().collect();
    folders.sort_by_key(|f| f.path.to_lowercase());
    let row = |id: &str, view: &str, unread: &str, count: &str, path: &str| {
        format!("{id:>10}  {view:4}  {unread:>10}  {count:>10}  {path}")
    };
    line(out, row("Id", "View", "Unread", "Msg Count", "Path"));
    let dashes = "-".repeat(10);
    line(out, row(&dashes, "----", &dashes, &dashes, &dashes));
    for f in folders {
        line(
            out,
            row(
                &f.id.to_string(),
                &clip(&f.view, 4),
                &f.unread_count.to_string(),
                &f.item_count.to_string(),
                &f.path,
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views() {
        assert_eq!(normalize_view("appo").ok(), Some("appointment".to_string()));
        assert_eq!(
            normalize_view("conversation").ok(),
            Some("message".to_string())
        );
        assert!(normalize_view("zz").is_err());
    }
}
