//! zmmailbox's message and tag commands.

use super::Cx;
use crate::cmd::zmshell::{Fail, Res, line, op_err};
use base64::Engine;
use mv_server::Request;
use mv_server::response::{ItemRef, MessageData};
use mv_types::UtcMillis;
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub(super) enum Command {
    /// Add messages from files (or every file of a directory) to a folder; prints their ids.
    #[command(
        name = "addMessage",
        visible_alias = "am",
        override_usage = "[-F flags] [-T tag,tag] [-d date] {dest-folder-path} {file-or-dir} [{file-or-dir} ...]"
    )]
    AddMessage {
        /// Flag letters: u unread, f flagged, r replied, d draft, x deleted.
        #[arg(short = 'F', long = "flags", default_value = "")]
        flags: String,
        /// Tags, comma-separated (repeatable).
        #[arg(short = 'T', long = "tags")]
        tags: Vec<String>,
        /// The received date: a date-time in any of the tools' formats (local time), or epoch milliseconds.
        #[arg(short = 'd', long = "date", value_parser = parse_date)]
        date: Option<i64>,
        /// Accepted for compatibility (messages are always stored as given).
        #[arg(long = "noValidation")]
        no_validation: bool,
        /// The folder to add to.
        folder: String,
        /// Message files, or directories of them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print a message's raw bytes.
    #[command(name = "getMessage", visible_alias = "gm", override_usage = "{msg-id}")]
    GetMessage {
        /// The message id.
        id: u32,
    },
    /// Delete messages.
    #[command(
        name = "deleteMessage",
        visible_alias = "dm",
        override_usage = "{msg-ids}"
    )]
    DeleteMessage {
        /// Message ids (comma-separated, or several arguments).
        #[arg(required = true)]
        ids: Vec<Ids>,
    },
    /// Recover deleted or expunged messages from the dumpster (kept for
    /// zimbraMailDumpsterLifetime, default 30d) into the folder each was deleted
    /// from, else Inbox; --list shows them instead.
    #[command(
        name = "recoverDeleted",
        visible_alias = "rd",
        override_usage = "[--list] [{query}]"
    )]
    RecoverDeleted {
        /// List the dumpster's messages (matching the query) without recovering.
        #[arg(long = "list")]
        list: bool,
        /// The query (the grammar of search; none: every message in the dumpster).
        query: Vec<String>,
    },
    /// Move messages to a folder.
    #[command(
        name = "moveMessage",
        visible_alias = "mm",
        override_usage = "{msg-ids} {dest-folder-path}"
    )]
    MoveMessage {
        /// Message ids, comma-separated.
        ids: Ids,
        /// The folder to move them to.
        folder: String,
    },
    /// Flag (1, the default) or unflag (0) messages.
    #[command(
        name = "flagMessage",
        visible_alias = "fm",
        override_usage = "{msg-ids} [0|1]"
    )]
    FlagMessage {
        /// Message ids, comma-separated.
        ids: Ids,
        /// 1 sets the flag, 0 clears it.
        #[arg(value_parser = ["0", "1"], default_value = "1")]
        on: String,
    },
    /// Mark messages read (1, the default) or unread (0).
    #[command(
        name = "markMessageRead",
        visible_alias = "mrm",
        override_usage = "{msg-ids} [0|1]"
    )]
    MarkMessageRead {
        /// Message ids, comma-separated.
        ids: Ids,
        /// 1 marks read, 0 unread.
        #[arg(value_parser = ["0", "1"], default_value = "1")]
        on: String,
    },
    /// Create a tag; prints its id.
    #[command(
        name = "createTag",
        visible_alias = "ct",
        override_usage = "[-c color] {tag-name}"
    )]
    CreateTag {
        /// The color number.
        #[arg(short = 'c', long = "color", default_value_t = 0)]
        color: u32,
        /// The tag's name.
        name: String,
    },
    /// Print the tags' names (-v: as JSON).
    #[command(name = "getAllTags", visible_alias = "gat", override_usage = "[-v]")]
    GetAllTags {
        /// Print the service's JSON answer.
        #[arg(short = 'v', long = "verbose")]
        verbose: bool,
    },
}

/// Message ids as one argument: `257,258`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Ids(Vec<u32>);

impl std::str::FromStr for Ids {
    type Err = String;
    fn from_str(s: &str) -> Result<Ids, String> {
        let ids = s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<u32>()
                    .map_err(|_| format!("{p:?} is not a message id"))
            })
            .collect::<Result<Vec<u32>, String>>()?;
        if ids.is_empty() {
            return Err("no message id given".into());
        }
        Ok(Ids(ids))
    }
}

pub(super) fn run(cmd: Command, o: &mut Cx<'_, '_>) -> Res<()> {
    let account = o.account.clone();
    match cmd {
        Command::AddMessage {
            flags,
            tags,
            date,
            no_validation: _,
            folder,
            files,
        } => {
            let tags: Vec<String> = tags
                .iter()
                .flat_map(|t| t.split(','))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect();
            let mut ids = Vec::new();
            for file in message_files(&files)? {
                let raw = std::fs::read(&file)
                    .map_err(|e| op_err(format!("reading {}: {e}", file.display())))?;
                let v: Res<ItemRef> = o.s.exec(Request::AddMessage {
                    account: account.clone(),
                    folder: folder.clone(),
                    data: base64::engine::general_purpose::STANDARD.encode(raw),
                    flags: flags.clone(),
                    tags: tags.clone(),
                    received_ms: date,
                });
                match v {
                    Ok(v) if o.json => ids.push(v),
                    Ok(v) => line(o.out, v.id.to_string()),
                    Err(Fail::Op(e)) => {
                        return Err(Fail::Op(e.context(format!("adding {}", file.display()))));
                    }
                    Err(e) => return Err(e),
                }
            }
            o.raw(&ids)?;
        }
        Command::GetMessage { id } => {
            let v: MessageData = o.s.exec(Request::GetMessage { account, id })?;
            if !o.raw(&v)? {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(v.data.as_bytes())
                    .map_err(|e| op_err(format!("unexpected answer from the service: {e}")))?;
                o.out.extend_from_slice(&raw);
            }
        }
        Command::DeleteMessage { ids } => {
            let ids = ids.into_iter().flat_map(|i| i.0).collect();
            o.done::<mv_server::response::Deleted>(Request::DeleteMessages { account, ids })?;
        }
        Command::RecoverDeleted { list, query } => {
            let v: mv_server::dumpster::DumpsterReport = o.s.exec(Request::RecoverDeleted {
                account,
                query: (!query.is_empty()).then(|| query.join(" ")),
                list,
            })?;
            if !o.raw(&v)? {
                for e in &v.listed {
                    line(
                        o.out,
                        format!(
                            "{}  {}  {}  {}  {} bytes  deleted {}  kept until {}",
                            e.id,
                            if e.folder.is_empty() { "-" } else { &e.folder },
                            e.from,
                            e.subject,
                            e.size,
                            UtcMillis(e.deleted_ms).display_local(),
                            UtcMillis(e.keep_until_ms).display_local()
                        ),
                    );
                }
                for r in &v.recovered {
                    line(o.out, format!("{} -> {}  {}", r.id, r.folder, r.subject));
                }
                if !list {
                    line(o.out, format!("{} message(s) recovered", v.recovered.len()));
                }
            }
        }
        Command::MoveMessage { ids, folder } => {
            o.done::<mv_server::response::Moved>(Request::MoveMessages {
                account,
                ids: ids.0,
                folder,
            })?
        }
        Command::FlagMessage { ids, on } => {
            o.done::<mv_server::response::Ack>(Request::FlagMessages {
                account,
                ids: ids.0,
                flags: "f".into(),
                add: on == "1",
            })?
        }
        // Read is the absence of "unread": marking read removes `u`.
        Command::MarkMessageRead { ids, on } => {
            o.done::<mv_server::response::Ack>(Request::FlagMessages {
                account,
                ids: ids.0,
                flags: "u".into(),
                add: on == "0",
            })?
        }
        Command::CreateTag { color, name } => {
            let v: ItemRef = o.s.exec(Request::CreateTag {
                account,
                name,
                color,
            })?;
            o.print_id(&v)?;
        }
        Command::GetAllTags { verbose } => {
            let tags: Vec<mv_store::Tag> = o.s.exec(Request::GetAllTags { account })?;
            if !o.raw_if(verbose, &tags)? {
                for t in &tags {
                    line(o.out, &t.name);
                }
            }
        }
    }
    Ok(())
}

/// `-d`: a date-time in any of the tools' formats (local time), or epoch millis.
fn parse_date(s: &str) -> Result<i64, String> {
    match UtcMillis::parse_local(s) {
        Ok(t) => Ok(t.0),
        Err(_) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map_err(|_| format!("invalid date {s:?}"))
        }
        Err(e) => Err(format!("{e}; or give milliseconds since 1970")),
    }
}

/// Files to add: each argument, or every regular file of a directory (by name).
fn message_files(args: &[PathBuf]) -> Res<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in args {
        if p.is_dir() {
            let entries = std::fs::read_dir(p)
                .map_err(|e| op_err(format!("reading {}: {e}", p.display())))?;
            let mut in_dir: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            in_dir.sort();
            files.extend(in_dir);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_lists() {
        assert_eq!("257,258".parse(), Ok(Ids(vec![257, 258])));
        assert_eq!("300".parse(), Ok(Ids(vec![300])));
        assert!("x".parse::<Ids>().is_err());
        assert!(",".parse::<Ids>().is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("1290174908802"), Ok(1_290_174_908_802));
        assert!(parse_date("yesterday-ish").is_err());
    }
}
