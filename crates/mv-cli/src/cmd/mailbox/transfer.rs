//! Every call that carries a body between zmmailbox and the service: calendars and
//! contacts (text in one request) and whole-mailbox tgz archives. Without a running
//! server the archives stream through the in-process service; through the admin API
//! an archive travels base64 in one request. How a body reaches the server is
//! decided here only, so it can change without touching the commands.

use super::rest::RestPath;
use crate::cmd::zmshell::{Fail, Res, Session, json_out, line, op_err, scalar};
use base64::Engine;
use mv_server::Request;
use serde_json::Value;
use std::io::{IsTerminal, Write};
use std::path::Path;

/// A calendar (`ics`) or contacts (`vcf`) folder's export; the text is under the
/// format's key.
pub(super) fn export_pim(
    s: &mut Session<'_>,
    account: String,
    folder: &str,
    format: &str,
) -> Res<Value> {
    let folder = folder.to_string();
    s.exec(match format {
        "ics" => Request::ExportCalendar { account, folder },
        _ => Request::ExportContacts { account, folder },
    })
}

/// Imports a calendar (`ics`) or contacts (`vcf`) into a folder.
pub(super) fn import_pim(
    s: &mut Session<'_>,
    account: String,
    folder: &str,
    format: &str,
    text: String,
) -> Res<Value> {
    let folder = folder.to_string();
    s.exec(match format {
        "ics" => Request::ImportCalendar {
            account,
            folder,
            ics: text,
        },
        _ => Request::ImportContacts {
            account,
            folder,
            vcf: text,
        },
    })
}

/// `getRestURL "//?fmt=tgz[&query=...]"`: the archive to `-o FILE` (written to a
/// temporary file beside it, renamed when complete) or to stdout.
pub(super) fn export_tgz(
    s: &mut Session<'_>,
    account: String,
    rest: &RestPath,
    output: Option<&Path>,
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
            Some(path) => {
                let dir = match path.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d,
                    _ => Path::new("."),
                };
                let io_err = |e: std::io::Error| op_err(format!("writing {}: {e}", path.display()));
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
pub(super) fn import_tgz(
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
