//! `mailvault mailbox` / `zmmailbox -z -m USER`: one mailbox's folders, messages,
//! tags, and calendar/contacts import and export (getRestURL / postRestURL). A
//! positional command (short or long Zimbra name, case-insensitive) and its
//! arguments; with no command, one command per line is read from stdin.
//!
//! Output follows zmmailbox: `s` and `gaf` print Zimbra's tables, `create*` and `am`
//! print new item ids, `gm` prints the raw message byte for byte, modifications print
//! nothing. `--json` (or `-v` on the listing commands) prints the service's JSON
//! result. Exit codes: 0 ok, 1 the operation failed (`ERROR: ...`), 2 bad usage.
//!
//! `getRestURL "//?fmt=tgz[&query=...]"` writes the whole mailbox as a tgz archive
//! (to stdout or `-o FILE`) and `postRestURL "//?fmt=tgz&resolve=..." FILE` imports
//! one (see `mv_server::tgz` for the layout and the resolve modes). Without a running
//! server both stream through the in-process service; through the admin API the
//! archive travels base64 in one request.

use super::prov::{
    Fail, OptSpec, Opts, Res, Session, batch, finish, json_out, line, op_err, parse_opts, scalar,
    take_json, unknown_command,
};
use base64::Engine;
use mv_home::Home;
use mv_server::Request;
use mv_store::ItemKind;
use mv_types::UtcMillis;
use serde::Deserialize;
use serde_json::Value;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Work on one mailbox: search, folders, messages, tags, calendar/contacts (zmmailbox).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Authenticate as the admin (accepted for compatibility; always the case).
    #[arg(short = 'z', long = "zadmin")]
    zadmin: bool,
    /// Verbose (accepted for compatibility).
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// The mailbox to work on: an account's address, alias or zimbraId.
    #[arg(short = 'm', long = "mailbox", value_name = "USER")]
    mailbox: Option<String>,
    /// Print the raw JSON result.
    #[arg(long)]
    json: bool,
    /// The command (s, gaf, cf, am, gm, gru, pru, ...; `help` lists them) and its
    /// arguments. Without one, commands are read from stdin, one per line.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND [ARGS]"
    )]
    args: Vec<String>,
}

use crate::zimbra::Cmd;

#[rustfmt::skip]
const COMMANDS: &[Cmd] = &[
    Cmd { short: "s",   long: "search",          args: "[-t message|conversation] [-l limit] [-v] {query}   (default query: in:inbox)" },
    Cmd { short: "gaf", long: "getAllFolders",   args: "[-v]" },
    Cmd { short: "cf",  long: "createFolder",    args: "[-V view] {folder-path}" },
    Cmd { short: "rf",  long: "renameFolder",    args: "{folder-path} {new-folder-path}" },
    Cmd { short: "df",  long: "deleteFolder",    args: "{folder-path}" },
    Cmd { short: "ef",  long: "emptyFolder",     args: "{folder-path}" },
    Cmd { short: "am",  long: "addMessage",      args: "[-F flags] [-T tag,tag] [-d date] {dest-folder-path} {file-or-dir} [{file-or-dir} ...]" },
    Cmd { short: "gm",  long: "getMessage",      args: "{msg-id}" },
    Cmd { short: "dm",  long: "deleteMessage",   args: "{msg-ids}" },
    Cmd { short: "mm",  long: "moveMessage",     args: "{msg-ids} {dest-folder-path}" },
    Cmd { short: "fm",  long: "flagMessage",     args: "{msg-ids} [0|1]" },
    Cmd { short: "mrm", long: "markMessageRead", args: "{msg-ids} [0|1]" },
    Cmd { short: "ct",  long: "createTag",       args: "[-c color] {tag-name}" },
    Cmd { short: "gat", long: "getAllTags",      args: "[-v]" },
    Cmd { short: "gru", long: "getRestURL",      args: "[-o output-file] {relative-path}   (/Calendar, /Contacts, PATH?fmt=ics|vcf, //?fmt=tgz[&query=...])" },
    Cmd { short: "pru", long: "postRestURL",     args: "{relative-path} {file-name}   (/Calendar FILE.ics, /Contacts FILE.vcf, //?fmt=tgz[&resolve=skip|modify|replace|reset] FILE.tgz)" },
];

fn find_cmd(name: &str) -> Option<&'static Cmd> {
    crate::zimbra::find_cmd(COMMANDS, name)
}

fn usage_line(c: &Cmd) -> String {
    c.usage_line()
}

fn usage_all() -> String {
    let mut s = String::from(
        "usage: zmmailbox [-z] -m {name@domain} [--json] {command} [args...]   (no command: read commands from stdin)\n\
         \n\
         commands:\n",
    );
    for c in COMMANDS {
        s.push_str("  ");
        s.push_str(&usage_line(c));
        s.push('\n');
    }
    s.push_str("\nflags (-F): u unread, f flagged, r replied, d draft, x deleted\n");
    s
}

pub fn run(home: &Home, args: Args) -> anyhow::Result<ExitCode> {
    let _ = (args.zadmin, args.verbose); // accepted, nothing to change
    let mut session = Session::new(home);
    let (json, mailbox) = (args.json, args.mailbox);
    if args.args.is_empty() {
        session.batch = true;
        return Ok(batch("mbox> ", |words, out| {
            run_command(&mut session, mailbox.as_deref(), words, json, out)
        }));
    }
    let mut out = Vec::new();
    let result = run_command(&mut session, mailbox.as_deref(), args.args, json, &mut out);
    Ok(ExitCode::from(finish(result, &out)))
}

fn run_command(
    s: &mut Session<'_>,
    mailbox: Option<&str>,
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
        return Err(unknown_command(s, &name, "zmmailbox", usage_all));
    };
    let usage_text = usage_line(cmd);
    let usage = || Fail::Usage(format!("usage: {usage_text}"));
    let Some(account) = mailbox.map(str::to_string) else {
        return Err(Fail::Usage(format!(
            "no mailbox given: use -m {{name@domain}} before the command\nusage: zmmailbox -z -m {{name@domain}} {usage_text}"
        )));
    };
    let a = &words[1..];
    let positional = |spec: &[OptSpec], min: usize, max: usize| -> Res<(Opts, Vec<String>)> {
        let (o, pos) = parse_opts(a, spec, &usage_text)?;
        if pos.len() < min || pos.len() > max {
            return Err(usage());
        }
        Ok((o, pos))
    };
    let verbose: &[OptSpec] = &[("v", "verbose", false)];
    let show = |out: &mut Vec<u8>, v: &Value| {
        if json {
            json_out(out, v)
        }
    };
    match cmd.long {
        "search" => {
            let spec: &[OptSpec] = &[
                ("t", "types", true),
                ("l", "limit", true),
                ("v", "verbose", false),
            ];
            let (o, pos) = positional(spec, 0, usize::MAX)?;
            for t in o.value("types").unwrap_or("message").split(',') {
                search_type(t)?;
            }
            let limit = match o.value("limit") {
                Some(l) => l.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    Fail::Usage(format!(
                        "-l expects a positive number, got {l:?}\nusage: {usage_text}"
                    ))
                })?,
                None => 25,
            };
            let query = if pos.is_empty() {
                "in:inbox".to_string()
            } else {
                pos.join(" ")
            };
            // One more than asked for tells whether there are more.
            let v = s.exec(Request::Search {
                account,
                query,
                limit: Some(limit + 1),
            })?;
            let mut items = v.as_array().cloned().unwrap_or_default();
            let more = items.len() > limit;
            items.truncate(limit);
            if json || o.flag("verbose") {
                json_out(out, &Value::Array(items));
            } else {
                print_search(out, &items, more);
            }
        }
        "getAllFolders" => {
            let (o, _) = positional(verbose, 0, 0)?;
            let v = s.exec(Request::GetAllFolders { account })?;
            if json || o.flag("verbose") {
                json_out(out, &v);
            } else {
                print_folders(out, &v);
            }
        }
        "createFolder" => {
            let spec: &[OptSpec] = &[("V", "view", true)];
            let (o, pos) = positional(spec, 1, 1)?;
            let view = o.value("view").map(normalize_view).transpose()?;
            let v = s.exec(Request::CreateFolder {
                account,
                path: pos[0].clone(),
                view,
            })?;
            print_id(out, &v, json);
        }
        "renameFolder" => {
            let (_, pos) = positional(&[], 2, 2)?;
            let v = s.exec(Request::RenameFolder {
                account,
                path: pos[0].clone(),
                new_path: pos[1].clone(),
            })?;
            show(out, &v);
        }
        "deleteFolder" => {
            let (_, pos) = positional(&[], 1, 1)?;
            show(
                out,
                &s.exec(Request::DeleteFolder {
                    account,
                    path: pos[0].clone(),
                })?,
            );
        }
        "emptyFolder" => {
            let (_, pos) = positional(&[], 1, 1)?;
            show(
                out,
                &s.exec(Request::EmptyFolder {
                    account,
                    path: pos[0].clone(),
                })?,
            );
        }
        "addMessage" => {
            let spec: &[OptSpec] = &[
                ("F", "flags", true),
                ("T", "tags", true),
                ("d", "date", true),
                ("", "noValidation", false),
            ];
            let (o, pos) = positional(spec, 2, usize::MAX)?;
            let flags = o.value("flags").unwrap_or_default().to_string();
            let tags: Vec<String> = o
                .values("tags")
                .iter()
                .flat_map(|t| t.split(','))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect();
            let received_ms = o.value("date").map(parse_date).transpose()?;
            let files = message_files(&pos[1..])?;
            let mut ids = Vec::new();
            for file in files {
                let raw = std::fs::read(&file)
                    .map_err(|e| op_err(format!("reading {}: {e}", file.display())))?;
                let v = s.exec(Request::AddMessage {
                    account: account.clone(),
                    folder: pos[0].clone(),
                    data: base64::engine::general_purpose::STANDARD.encode(raw),
                    flags: flags.clone(),
                    tags: tags.clone(),
                    received_ms,
                });
                match v {
                    Ok(v) if json => ids.push(v),
                    Ok(v) => line(out, scalar(&v["id"])),
                    Err(Fail::Op(e)) => {
                        return Err(Fail::Op(e.context(format!("adding {}", file.display()))));
                    }
                    Err(e) => return Err(e),
                }
            }
            if json {
                json_out(out, &Value::Array(ids));
            }
        }
        "getMessage" => {
            let (_, pos) = positional(&[], 1, 1)?;
            let id = parse_id(&pos[0]).ok_or_else(usage)?;
            let v = s.exec(Request::GetMessage { account, id })?;
            if json {
                json_out(out, &v);
            } else {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(scalar(&v["data"]).as_bytes())
                    .map_err(|e| op_err(format!("unexpected answer from the service: {e}")))?;
                out.extend_from_slice(&raw);
            }
        }
        "deleteMessage" => {
            let (_, pos) = positional(&[], 1, usize::MAX)?;
            let ids = parse_ids(&pos).ok_or_else(usage)?;
            show(out, &s.exec(Request::DeleteMessages { account, ids })?);
        }
        "moveMessage" => {
            let (_, pos) = positional(&[], 2, 2)?;
            let ids = parse_ids(&pos[..1]).ok_or_else(usage)?;
            show(
                out,
                &s.exec(Request::MoveMessages {
                    account,
                    ids,
                    folder: pos[1].clone(),
                })?,
            );
        }
        "flagMessage" | "markMessageRead" => {
            let (_, pos) = positional(&[], 1, 2)?;
            let ids = parse_ids(&pos[..1]).ok_or_else(usage)?;
            let on = match pos.get(1).map(String::as_str) {
                None | Some("1") => true,
                Some("0") => false,
                Some(_) => return Err(usage()),
            };
            // Read is the absence of "unread": marking read removes `u`.
            let (flags, add) = if cmd.long == "flagMessage" {
                ("f", on)
            } else {
                ("u", !on)
            };
            show(
                out,
                &s.exec(Request::FlagMessages {
                    account,
                    ids,
                    flags: flags.to_string(),
                    add,
                })?,
            );
        }
        "createTag" => {
            let (o, pos) = positional(&[("c", "color", true)], 1, 1)?;
            let color = match o.value("color") {
                Some(c) => c.parse::<u32>().map_err(|_| {
                    Fail::Usage(format!(
                        "-c expects a color number, got {c:?}\nusage: {usage_text}"
                    ))
                })?,
                None => 0,
            };
            print_id(
                out,
                &s.exec(Request::CreateTag {
                    account,
                    name: pos[0].clone(),
                    color,
                })?,
                json,
            );
        }
        "getAllTags" => {
            let (o, _) = positional(verbose, 0, 0)?;
            let v = s.exec(Request::GetAllTags { account })?;
            if json || o.flag("verbose") {
                json_out(out, &v);
            } else {
                for t in v.as_array().into_iter().flatten() {
                    line(out, scalar(&t["name"]));
                }
            }
        }
        "getRestURL" => {
            let (o, pos) = positional(&[("o", "output", true), ("u", "url", true)], 1, 1)?;
            let rest = RestPath::parse(&pos[0]);
            let format = match rest.format() {
                Some(f) => f,
                None => rest.format_from_view(s, &account)?,
            };
            if format == "tgz" {
                return export_tgz(s, account, &rest, o.value("output"), json, out);
            }
            let (v, key) = match format.as_str() {
                "ics" => (
                    s.exec(Request::ExportCalendar {
                        account,
                        folder: rest.folder.clone(),
                    })?,
                    "ics",
                ),
                "vcf" => (
                    s.exec(Request::ExportContacts {
                        account,
                        folder: rest.folder.clone(),
                    })?,
                    "vcf",
                ),
                other => return Err(unsupported_format(other)),
            };
            if json {
                json_out(out, &v);
                return Ok(());
            }
            let text = scalar(&v[key]);
            match o.value("output") {
                Some(file) => std::fs::write(file, text)
                    .map_err(|e| op_err(format!("writing {file}: {e}")))?,
                None => out.extend_from_slice(text.as_bytes()),
            }
        }
        "postRestURL" => {
            let (_, pos) = positional(&[("u", "url", true)], 2, 2)?;
            let rest = RestPath::parse(&pos[0]);
            let file = Path::new(&pos[1]);
            let read_err = |e: std::io::Error| op_err(format!("reading {}: {e}", file.display()));
            let mut head = Vec::new();
            std::fs::File::open(file)
                .and_then(|f| f.take(512).read_to_end(&mut head))
                .map_err(read_err)?;
            let format = match rest.format().or_else(|| sniff_format(file, &head)) {
                Some(f) => f,
                None => rest.format_from_view(s, &account)?,
            };
            if format == "tgz" {
                return import_tgz(s, account, &rest, file, json, out);
            }
            if !matches!(format.as_str(), "ics" | "vcf") {
                return Err(unsupported_format(&format));
            }
            let data = std::fs::read(file).map_err(read_err)?;
            let text = String::from_utf8(data).map_err(|_| {
                op_err(format!(
                    "{} is not UTF-8 text (expected .{format})",
                    file.display()
                ))
            })?;
            if format == "ics" {
                let v = s.exec(Request::ImportCalendar {
                    account,
                    folder: rest.folder.clone(),
                    ics: text,
                })?;
                if json {
                    json_out(out, &v);
                } else {
                    print_calendar_import(out, &v);
                }
            } else {
                let v = s.exec(Request::ImportContacts {
                    account,
                    folder: rest.folder.clone(),
                    vcf: text,
                })?;
                if json {
                    json_out(out, &v);
                } else {
                    line(out, format!("created: {}", join_values(&v["created"])));
                }
            }
        }
        other => unreachable!("command {other} is in COMMANDS but not dispatched"),
    }
    Ok(())
}

// ----------------------------------------------------------------- arguments

fn parse_id(s: &str) -> Option<u32> {
    s.trim().parse().ok()
}

/// `257,258` (or several arguments) → ids.
fn parse_ids(args: &[String]) -> Option<Vec<u32>> {
    let ids: Option<Vec<u32>> = args
        .iter()
        .flat_map(|a| a.split(','))
        .filter(|p| !p.trim().is_empty())
        .map(parse_id)
        .collect();
    ids.filter(|v| !v.is_empty())
}

/// Zimbra's view names (and their 4-letter abbreviations in `gaf`).
fn normalize_view(v: &str) -> Res<String> {
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
        .ok_or_else(|| {
            Fail::Usage(format!(
                "unknown view {v:?}: use one of {}",
                views.join(", ")
            ))
        })
}

/// `-d`: a date-time in any of the tools' formats (local time), or epoch millis.
fn parse_date(s: &str) -> Res<i64> {
    match UtcMillis::parse_local(s) {
        Ok(t) => Ok(t.0),
        Err(_) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s
            .parse()
            .map_err(|_| Fail::Usage(format!("invalid -d {s:?}"))),
        Err(e) => Err(Fail::Usage(format!(
            "-d: {e}; or give milliseconds since 1970"
        ))),
    }
}

/// Files to add: each argument, or every regular file of a directory (by name).
fn message_files(args: &[String]) -> Res<Vec<PathBuf>> {
    let mut files = Vec::new();
    for a in args {
        let p = PathBuf::from(a);
        if p.is_dir() {
            let entries = std::fs::read_dir(&p)
                .map_err(|e| op_err(format!("reading {}: {e}", p.display())))?;
            let mut in_dir: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            in_dir.sort();
            files.extend(in_dir);
        } else {
            files.push(p);
        }
    }
    Ok(files)
}

// ------------------------------------------------------------------ REST paths

/// A getRestURL / postRestURL path: `/Calendar`, `/Calendar?fmt=ics`,
/// `/Calendar.ics`, `/home/USER/Contacts?fmt=vcf`, `//?fmt=tgz&query=is:unread`.
struct RestPath {
    folder: String,
    fmt: Option<String>,
    ext: Option<String>,
    /// The query parameters, names lower-cased, values percent-decoded.
    params: Vec<(String, String)>,
}

/// `%XX` escapes and `+` (space) of a URL query value; a malformed escape stays as is.
fn url_decode(v: &str) -> String {
    let b = v.as_bytes();
    let hex = |c: &u8| (*c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match (b.get(i + 1).and_then(hex), b.get(i + 2).and_then(hex)) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl RestPath {
    fn parse(s: &str) -> RestPath {
        let (path, query) = s.split_once('?').unwrap_or((s, ""));
        let params: Vec<(String, String)> = query
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (url_decode(k).to_ascii_lowercase(), url_decode(v))
            })
            .collect();
        let fmt = params
            .iter()
            .find(|(k, _)| k == "fmt")
            .map(|(_, v)| v.to_ascii_lowercase());
        let mut segs: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        // `/home/USER/...` and `~/...` name the mailbox being worked on.
        if segs.first().is_some_and(|s| s.eq_ignore_ascii_case("home")) && segs.len() >= 2 {
            segs.drain(..2);
        } else if segs.first() == Some(&"~") {
            segs.remove(0);
        }
        let mut ext = None;
        if let Some(last) = segs.last_mut()
            && let Some((stem, e)) = last.rsplit_once('.')
            && matches!(
                e.to_ascii_lowercase().as_str(),
                "ics" | "vcf" | "tgz" | "zip" | "tar"
            )
            && !stem.is_empty()
        {
            ext = Some(e.to_ascii_lowercase());
            *last = stem;
        }
        RestPath {
            folder: format!("/{}", segs.join("/")),
            fmt,
            ext,
            params,
        }
    }

    /// A query parameter (`query`, `resolve`, ...), by lower-case name.
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The format named by `?fmt=` or the path's extension.
    fn format(&self) -> Option<String> {
        self.fmt.clone().or_else(|| self.ext.clone())
    }

    /// The format a folder's view implies: calendars as ics, contacts as vcf.
    fn format_from_view(&self, s: &mut Session<'_>, account: &str) -> Res<String> {
        if self.folder == "/" {
            return Ok("tgz".into());
        }
        let folders = s.exec(Request::GetAllFolders {
            account: account.to_string(),
        })?;
        let folder = folders
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| scalar(&f["path"]).eq_ignore_ascii_case(&self.folder))
            .ok_or_else(|| op_err(format!("no such folder: {}", self.folder)))?;
        match scalar(&folder["view"]).as_str() {
            "appointment" | "task" => Ok("ics".into()),
            "contact" => Ok("vcf".into()),
            view => Err(op_err(format!(
                "{} is a {view} folder: getRestURL/postRestURL handle calendar folders (?fmt=ics), contact \
                 folders (?fmt=vcf) and the whole mailbox (\"//?fmt=tgz\"; add &query=in:{} for this \
                 folder's messages)",
                self.folder,
                self.folder.trim_start_matches('/')
            ))),
        }
    }
}

/// The format of a file to import, from its content or its name.
fn sniff_format(file: &Path, data: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(&data[..data.len().min(512)]).to_ascii_uppercase();
    let head = head.trim_start_matches('\u{feff}').trim_start();
    if head.starts_with("BEGIN:VCALENDAR") {
        return Some("ics".into());
    }
    if head.starts_with("BEGIN:VCARD") {
        return Some("vcf".into());
    }
    if data.starts_with(&[0x1f, 0x8b]) {
        return Some("tgz".into());
    }
    let ext = file.extension()?.to_str()?.to_ascii_lowercase();
    Some(if ext == "gz" { "tgz".to_string() } else { ext })
}

fn unsupported_format(fmt: &str) -> Fail {
    op_err(format!(
        "format {fmt:?} is not supported: use fmt=ics (calendar folders), fmt=vcf (contact folders) or \
         fmt=tgz (the whole mailbox: \"//?fmt=tgz\")"
    ))
}

// ------------------------------------------------------------------ tgz archives

/// `getRestURL "//?fmt=tgz[&query=...]"`: the archive to `-o FILE` (written to a
/// temporary file beside it, renamed when complete) or to stdout.
fn export_tgz(
    s: &mut Session<'_>,
    account: String,
    rest: &RestPath,
    output: Option<&str>,
    json: bool,
    out: &mut Vec<u8>,
) -> Res<()> {
    if rest.folder != "/" {
        return Err(op_err(format!(
            "fmt=tgz exports the whole mailbox: use \"//?fmt=tgz\" (add &query=in:{} for only that folder's \
             messages)",
            rest.folder.trim_start_matches('/')
        )));
    }
    if json && output.is_none() {
        return Err(Fail::Usage(
            "--json prints the export's report: give -o FILE for the archive".into(),
        ));
    }
    if output.is_none() && std::io::stdout().is_terminal() {
        return Err(op_err(
            "not writing a binary archive to a terminal: redirect stdout (> FILE.tgz) or use -o FILE.tgz",
        ));
    }
    let query = rest.param("query").map(str::to_string);
    let write = |sink: &mut dyn FnMut(&mut dyn Write) -> Res<Value>| -> Res<Value> {
        match output {
            Some(file) => {
                let path = Path::new(file);
                let dir = match path.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d,
                    _ => Path::new("."),
                };
                let io_err = |e: std::io::Error| op_err(format!("writing {file}: {e}"));
                let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err)?;
                let report = {
                    let mut w = std::io::BufWriter::new(tmp.as_file_mut());
                    let r = sink(&mut w)?;
                    w.flush().map_err(io_err)?;
                    r
                };
                tmp.as_file().sync_all().map_err(io_err)?;
                tmp.persist(path).map_err(|e| io_err(e.error))?;
                Ok(report)
            }
            None => {
                let mut w = std::io::BufWriter::new(std::io::stdout().lock());
                let r = sink(&mut w)?;
                w.flush()
                    .map_err(|e| op_err(format!("writing to stdout: {e}")))?;
                Ok(r)
            }
        }
    };
    let report = match s.client()?.local_service() {
        Some(service) => write(&mut |w| {
            let r = service
                .export_tgz(&account, query.as_deref(), w)
                .map_err(op_err)?;
            Ok(serde_json::to_value(r).unwrap_or_default())
        })?,
        None => {
            let mut v = s.exec(Request::ExportTgz {
                account: account.clone(),
                query: query.clone(),
            })?;
            let data = base64::engine::general_purpose::STANDARD
                .decode(scalar(&v["data"]).as_bytes())
                .map_err(|e| op_err(format!("unexpected answer from the server: {e}")))?;
            write(&mut |w| {
                w.write_all(&data)
                    .map_err(|e| op_err(format!("writing the archive: {e}")))?;
                Ok(Value::Null)
            })?;
            if let Some(o) = v.as_object_mut() {
                o.remove("data");
            }
            v
        }
    };
    if json {
        json_out(out, &report);
    }
    Ok(())
}

/// `postRestURL "//?fmt=tgz[&resolve=skip|modify|replace|reset]" FILE`.
fn import_tgz(
    s: &mut Session<'_>,
    account: String,
    rest: &RestPath,
    file: &Path,
    json: bool,
    out: &mut Vec<u8>,
) -> Res<()> {
    if rest.folder != "/" {
        return Err(op_err(
            "fmt=tgz imports a whole mailbox: use \"//?fmt=tgz&resolve=...\"",
        ));
    }
    let resolve: mv_server::tgz::Resolve = match rest.param("resolve") {
        None | Some("") => Default::default(),
        Some(r) => r.parse().map_err(Fail::Usage)?,
    };
    let read_err = |e: std::io::Error| op_err(format!("reading {}: {e}", file.display()));
    let report = match s.client()?.local_service() {
        Some(service) => {
            let f = std::fs::File::open(file).map_err(read_err)?;
            let r = service
                .import_tgz(&account, resolve, f)
                .map_err(|e| op_err(format!("{}: {e}", file.display())))?;
            serde_json::to_value(r).unwrap_or_default()
        }
        None => {
            let data = std::fs::read(file).map_err(read_err)?;
            let resolve = serde_json::to_value(resolve)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string));
            s.exec(Request::ImportTgz {
                account,
                data: base64::engine::general_purpose::STANDARD.encode(data),
                resolve,
            })?
        }
    };
    if json {
        json_out(out, &report);
    } else {
        print_tgz_import(out, &report);
    }
    Ok(())
}

/// What an import did, one line per kind of item.
fn print_tgz_import(out: &mut Vec<u8>, v: &Value) {
    if scalar(&v["resolve"]) == "reset" {
        line(
            out,
            format!(
                "reset: removed {} item(s), {} folder(s), {} tag(s)",
                scalar(&v["reset_items_deleted"]),
                scalar(&v["reset_folders_deleted"]),
                scalar(&v["reset_tags_deleted"])
            ),
        );
    }
    for kind in ["messages", "contacts", "appointments"] {
        let c = &v[kind];
        line(
            out,
            format!(
                "{kind}: {} added, {} replaced, {} updated, {} skipped",
                scalar(&c["added"]),
                scalar(&c["replaced"]),
                scalar(&c["updated"]),
                scalar(&c["skipped"])
            ),
        );
    }
    line(
        out,
        format!(
            "created {} folder(s), {} tag(s)",
            scalar(&v["folders_created"]),
            scalar(&v["tags_created"])
        ),
    );
}

// -------------------------------------------------------------------- output

fn print_id(out: &mut Vec<u8>, v: &Value, json: bool) {
    if json {
        json_out(out, v);
    } else {
        line(out, scalar(&v["id"]));
    }
}

fn join_values(v: &Value) -> String {
    v.as_array()
        .into_iter()
        .flatten()
        .map(scalar)
        .collect::<Vec<_>>()
        .join(",")
}

/// A `search -t` type: messages (conversations are listed as their messages).
/// Zimbra's other item types are refused by name, with where to find them.
fn search_type(t: &str) -> Res<()> {
    const SUPPORTED: &str = "message, conversation";
    let t = t.trim().to_ascii_lowercase();
    let elsewhere = match t.as_str() {
        "" | "message" | "conversation" => return Ok(()),
        "appointment" | "task" => "export the calendar with getRestURL /Calendar?fmt=ics",
        "contact" => "export the contacts with getRestURL /Contacts?fmt=vcf",
        "document" | "wiki" => "this store keeps no documents",
        _ => {
            return Err(Fail::Usage(format!(
                "search -t {t}: unknown type; -t takes {SUPPORTED}"
            )));
        }
    };
    Err(op_err(format!(
        "search -t {t}: only messages are searched here; -t takes {SUPPORTED} ({elsewhere})"
    )))
}

/// What a calendar import did: new appointments, the older versions they replaced,
/// and events kept because the stored version is newer.
fn print_calendar_import(out: &mut Vec<u8>, v: &Value) {
    let count = |k: &str| v[k].as_array().map_or(0, Vec::len);
    let (created, replaced, kept) = (count("created"), count("replaced"), count("kept_existing"));
    line(
        out,
        format!(
            "imported {created} appointment(s): {} new, {replaced} replacing an older version; {kept} kept (the stored version is newer)",
            created - replaced.min(created)
        ),
    );
    if created > 0 {
        line(out, format!("created: {}", join_values(&v["created"])));
    }
    if replaced > 0 {
        line(out, format!("replaced: {}", join_values(&v["replaced"])));
    }
    if kept > 0 {
        line(out, format!("kept: {}", join_values(&v["kept_existing"])));
    }
}

/// Truncates to `n` characters.
fn clip(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// `Name <addr>` → `Name`; a bare address stays.
fn short_from(sender: &str) -> String {
    let first = sender.split(", ").next().unwrap_or_default();
    match first.split_once(" <") {
        Some((name, _)) if !name.trim().is_empty() => name.trim().trim_matches('"').to_string(),
        _ => first.to_string(),
    }
}

/// `MM/dd/yy HH:mm`, local time, as zmmailbox prints dates.
fn short_date(ms: i64) -> String {
    let s = UtcMillis(ms).display_local(); // 2010/11/19 13:55:08.802 +01:00
    match (s.get(2..4), s.get(5..7), s.get(8..10), s.get(11..16)) {
        (Some(y), Some(m), Some(d), Some(hm)) => format!("{m}/{d}/{y} {hm}"),
        _ => s,
    }
}

/// zmmailbox's four-letter type column; the API names an item's kind
/// ([`ItemKind`], by its serde name).
fn item_type(kind: &Value) -> &'static str {
    match ItemKind::deserialize(kind) {
        Ok(ItemKind::Message) => "mess",
        Ok(ItemKind::Contact) => "cont",
        Ok(ItemKind::Appointment) => "appo",
        Ok(ItemKind::Folder) => "fold",
        Ok(ItemKind::Tag) => "tag",
        Err(_) => "item",
    }
}

/// zmmailbox's search table.
fn print_search(out: &mut Vec<u8>, items: &[Value], more: bool) {
    line(out, format!("num: {}, more: {more}", items.len()));
    if items.is_empty() {
        return;
    }
    line(out, "");
    let idx_w = format!("{}.", items.len()).len();
    let id_w = items
        .iter()
        .map(|i| scalar(&i["id"]).len())
        .max()
        .unwrap_or(2)
        .max(2);
    let row = |idx: &str, id: &str, ty: &str, from: &str, subj: &str, date: &str| {
        format!("{idx:>idx_w$}  {id:>id_w$}  {ty:<4}   {from:<20}  {subj:<50}  {date}")
    };
    line(out, row("", "Id", "Type", "From", "Subject", "Date"));
    line(
        out,
        row(
            "",
            &"-".repeat(id_w),
            "----",
            &"-".repeat(20),
            &"-".repeat(50),
            &"-".repeat(14),
        ),
    );
    for (n, i) in items.iter().enumerate() {
        let date = i["date_ms"]
            .as_i64()
            .filter(|d| *d != 0)
            .or_else(|| i["received_ms"].as_i64())
            .unwrap_or(0);
        line(
            out,
            row(
                &format!("{}.", n + 1),
                &scalar(&i["id"]),
                item_type(&i["kind"]),
                &clip(&short_from(&scalar(&i["sender"])), 20),
                &clip(&scalar(&i["subject"]), 50),
                &short_date(date),
            ),
        );
    }
}

/// zmmailbox's folder table, by path.
fn print_folders(out: &mut Vec<u8>, v: &Value) {
    let mut folders: Vec<&Value> = v.as_array().into_iter().flatten().collect();
    folders.sort_by_key(|f| scalar(&f["path"]).to_lowercase());
    line(
        out,
        format!(
            "{:>10}  {:4}  {:>10}  {:>10}  {}",
            "Id", "View", "Unread", "Msg Count", "Path"
        ),
    );
    line(
        out,
        format!(
            "{:>10}  {:4}  {:>10}  {:>10}  {}",
            "-".repeat(10),
            "----",
            "-".repeat(10),
            "-".repeat(10),
            "-".repeat(10)
        ),
    );
    for f in folders {
        line(
            out,
            format!(
                "{:>10}  {:4}  {:>10}  {:>10}  {}",
                scalar(&f["id"]),
                clip(&scalar(&f["view"]), 4),
                scalar(&f["unread_count"]),
                scalar(&f["item_count"]),
                scalar(&f["path"]),
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_paths() {
        let r = RestPath::parse("/Calendar");
        assert_eq!((r.folder.as_str(), r.format()), ("/Calendar", None));
        let r = RestPath::parse("/home/u@x.org/Calendar?fmt=ICS&start=0");
        assert_eq!(
            (r.folder.as_str(), r.format().as_deref()),
            ("/Calendar", Some("ics"))
        );
        let r = RestPath::parse("Contacts.vcf");
        assert_eq!(
            (r.folder.as_str(), r.format().as_deref()),
            ("/Contacts", Some("vcf"))
        );
        let r = RestPath::parse("//?fmt=tgz&resolve=replace");
        assert_eq!(
            (r.folder.as_str(), r.format().as_deref()),
            ("/", Some("tgz"))
        );
        assert_eq!(r.param("resolve"), Some("replace"));
        let r = RestPath::parse("//?FMT=tgz&query=in:Inbox%20is:unread+tag:a%2Bb&x=%zz");
        assert_eq!(r.format().as_deref(), Some("tgz"));
        assert_eq!(r.param("query"), Some("in:Inbox is:unread tag:a+b"));
        assert_eq!(r.param("x"), Some("%zz"));
        assert_eq!(r.param("resolve"), None);
    }

    #[test]
    fn ids_and_views() {
        assert_eq!(
            parse_ids(&["257,258".into(), "300".into()]),
            Some(vec![257, 258, 300])
        );
        assert_eq!(parse_ids(&["x".into()]), None);
        assert_eq!(normalize_view("appo").ok(), Some("appointment".to_string()));
        assert_eq!(
            normalize_view("conversation").ok(),
            Some("message".to_string())
        );
        assert!(normalize_view("zz").is_err());
    }

    #[test]
    fn senders() {
        assert_eq!(
            short_from("Alice Example <alice@x.org>, bob@y.org"),
            "Alice Example"
        );
        assert_eq!(short_from("alice@x.org"), "alice@x.org");
    }
}
