//! Every call that carries a body between zmmailbox and the service: calendars and
//! contacts and whole-mailbox tgz archives. Every body streams: through the
//! in-process service without a running server, as the body of the admin API's
//! REST route with one (see `Client::export` / `Client::import`). How a body
//! reaches the server is decided here only.

use super::rest::RestPath;
use crate::cmd::zmshell::{Fail, Res, Session, json_out, line, op_err, scalar};
use mv_server::stream::{BodyFormat, ExportParams, ImportParams};
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
    let (fmt, key) = match format {
        "ics" => (BodyFormat::Ics, "ics"),
        _ => (BodyFormat::Vcf, "vcf"),
    };
    let params = ExportParams {
        fmt,
        folder: Some(folder.to_string()),
        query: None,
    };
    let mut text = Vec::new();
    s.client()?.export(&account, &params, &mut text)?;
    Ok(serde_json::json!({ key: String::from_utf8_lossy(&text) }))
}

/// Imports a calendar (`ics`) or contacts (`vcf`) into a folder.
pub(super) fn import_pim(
    s: &mut Session<'_>,
    account: String,
    folder: &str,
    format: &str,
    text: String,
) -> Res<Value> {
    let params = ImportParams {
        fmt: if format == "ics" {
            BodyFormat::Ics
        } else {
            BodyFormat::Vcf
        },
        folder: Some(folder.to_string()),
        resolve: None,
    };
    Ok(s.client()?
        .import(&account, &params, &mut text.as_bytes())?)
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
    let params = ExportParams {
        fmt: BodyFormat::Tgz,
        folder: None,
        query,
    };
    let client = s.client()?;
    let report = write(&mut |w| Ok(client.export(&account, &params, w)?))?;
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
    let resolve: mv_store::tgz::Resolve = match rest.param("resolve") {
        None | Some("") => Default::default(),
        Some(r) => r.parse().map_err(Fail::Usage)?,
    };
    let read_err = |e: std::io::Error| op_err(format!("reading {}: {e}", file.display()));
    let params = ImportParams {
        fmt: BodyFormat::Tgz,
        folder: None,
        resolve: Some(resolve),
    };
    let mut f = std::io::BufReader::new(std::fs::File::open(file).map_err(read_err)?);
    let report = s
        .client()?
        .import(&account, &params, &mut f)
        .map_err(|e| op_err(format!("{}: {e:#}", file.display())))?;
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
