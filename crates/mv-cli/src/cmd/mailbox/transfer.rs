//! Every call that carries a body between zmmailbox and the service: calendars and
//! contacts and whole-mailbox tgz archives. Every body streams: through the
//! in-process service without a running server, as the body of the admin API's
//! REST route with one (see `Client::export` / `Client::import`). How a body
//! reaches the server is decided here only.

use super::rest::RestPath;
use crate::cmd::zmshell::{Fail, Res, Session, json_out, line, op_err};
use mv_server::response::{CalendarText, ContactsText};
use mv_server::stream::{BodyFormat, ExportParams, ExportResult, ImportParams, ImportResult};
use mv_store::tgz::{ImportReport, Resolve};
use std::io::{IsTerminal, Write};
use std::path::Path;

/// A calendar or contacts export, as `--json` prints it (`{"ics": ...}`,
/// `{"vcf": ...}`).
#[derive(serde::Serialize)]
#[serde(untagged)]
pub(super) enum PimExport {
    Calendar(CalendarText),
    Contacts(ContactsText),
}

impl PimExport {
    pub(super) fn text(&self) -> &str {
        match self {
            PimExport::Calendar(c) => &c.ics,
            PimExport::Contacts(c) => &c.vcf,
        }
    }
}

/// A calendar (`ics`) or contacts (`vcf`) folder's export.
pub(super) fn export_pim(
    s: &mut Session<'_>,
    account: String,
    folder: &str,
    format: &str,
) -> Res<PimExport> {
    let fmt = match format {
        "ics" => BodyFormat::Ics,
        _ => BodyFormat::Vcf,
    };
    let params = ExportParams {
        fmt,
        folder: Some(folder.to_string()),
        query: None,
    };
    let mut text = Vec::new();
    s.client()?.export(&account, &params, &mut text)?;
    let text = String::from_utf8_lossy(&text).into_owned();
    Ok(match fmt {
        BodyFormat::Ics => PimExport::Calendar(CalendarText { ics: text }),
        _ => PimExport::Contacts(ContactsText { vcf: text }),
    })
}

/// Imports a calendar (`ics`) or contacts (`vcf`) into a folder.
pub(super) fn import_pim(
    s: &mut Session<'_>,
    account: String,
    folder: &str,
    format: &str,
    text: String,
) -> Res<ImportResult> {
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
    type Sink<'a> = dyn FnMut(&mut dyn Write) -> Res<ExportResult> + 'a;
    let write = |sink: &mut Sink<'_>| -> Res<ExportResult> {
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
        json_out(out, &report)?;
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
        json_out(out, &report)?;
    } else {
        match &report {
            ImportResult::Archive(r) => print_tgz_import(out, r),
            other => return Err(op_err(format!("an archive import answered {other:?}"))),
        }
    }
    Ok(())
}

/// What an import did, one line per kind of item.
fn print_tgz_import(out: &mut Vec<u8>, v: &ImportReport) {
    if v.resolve == Resolve::Reset {
        line(
            out,
            format!(
                "reset: removed {} item(s), {} folder(s), {} tag(s)",
                v.reset_items_deleted, v.reset_folders_deleted, v.reset_tags_deleted
            ),
        );
    }
    for (kind, c) in [
        ("messages", &v.messages),
        ("contacts", &v.contacts),
        ("appointments", &v.appointments),
    ] {
        line(
            out,
            format!(
                "{kind}: {} added, {} replaced, {} updated, {} skipped",
                c.added, c.replaced, c.updated, c.skipped
            ),
        );
    }
    line(
        out,
        format!(
            "created {} folder(s), {} tag(s)",
            v.folders_created, v.tags_created
        ),
    );
}
