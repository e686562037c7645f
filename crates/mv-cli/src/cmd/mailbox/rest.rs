//! zmmailbox's `getRestURL` / `postRestURL`: a REST path names a folder and a
//! format (`/Calendar`, `/Contacts?fmt=vcf`, `//?fmt=tgz&query=...`); calendars
//! travel as iCalendar, contacts as vCard, the whole mailbox as a tgz archive.
//! The transfers themselves are in `transfer.rs`.

use super::{Cx, pim, transfer};
use crate::cmd::zmshell::{Fail, Res, Session, op_err};
use mv_server::Request;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand, Debug)]
pub(super) enum Command {
    /// Export a calendar (ics), contacts (vcf) or the whole mailbox (tgz) to stdout or a file.
    #[command(
        name = "getRestURL",
        visible_alias = "gru",
        override_usage = "[-o output-file] {relative-path}   (/Calendar, /Contacts, PATH?fmt=ics|vcf, //?fmt=tgz[&query=...])"
    )]
    GetRestUrl {
        /// Write to this file instead of stdout (a tgz archive appears there complete or not at all).
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
        /// The server's base URL (accepted for compatibility; the home's server is used).
        #[arg(short = 'u', long = "url", value_name = "URL")]
        url: Option<String>,
        /// The REST path: a folder, `?fmt=ics|vcf|tgz`, `//?fmt=tgz&query=...` for the whole mailbox.
        path: String,
    },
    /// Import a calendar (ics), contacts (vcf) or a mailbox archive (tgz) from a file.
    #[command(
        name = "postRestURL",
        visible_alias = "pru",
        override_usage = "{relative-path} {file-name}   (/Calendar FILE.ics, /Contacts FILE.vcf, //?fmt=tgz[&resolve=skip|modify|replace|reset] FILE.tgz)"
    )]
    PostRestUrl {
        /// The server's base URL (accepted for compatibility; the home's server is used).
        #[arg(short = 'u', long = "url", value_name = "URL")]
        url: Option<String>,
        /// The REST path: a folder, `?fmt=ics|vcf`, `//?fmt=tgz&resolve=...` for a whole mailbox.
        path: String,
        /// The file to import.
        file: PathBuf,
    },
}

pub(super) fn run(cmd: Command, o: &mut Cx<'_, '_>) -> Res<()> {
    let account = o.account.clone();
    match cmd {
        Command::GetRestUrl {
            output,
            url: _,
            path,
        } => {
            let rest = RestPath::parse(&path);
            let format = match rest.format() {
                Some(f) => f,
                None => rest.format_from_view(o.s, &account)?,
            };
            let output = output.as_deref();
            match format.as_str() {
                "tgz" => transfer::export_tgz(o.s, account, &rest, output, o.json, o.out),
                "ics" | "vcf" => {
                    let v = transfer::export_pim(o.s, account, &rest.folder, &format)?;
                    if !o.raw(&v)? {
                        pim::write_export(&v, output, o.out)?;
                    }
                    Ok(())
                }
                other => Err(unsupported_format(other)),
            }
        }
        Command::PostRestUrl { url: _, path, file } => {
            let rest = RestPath::parse(&path);
            let read_err = |e: std::io::Error| op_err(format!("reading {}: {e}", file.display()));
            let mut head = Vec::new();
            std::fs::File::open(&file)
                .and_then(|f| f.take(512).read_to_end(&mut head))
                .map_err(read_err)?;
            let format = match rest.format().or_else(|| sniff_format(&file, &head)) {
                Some(f) => f,
                None => rest.format_from_view(o.s, &account)?,
            };
            match format.as_str() {
                "tgz" => transfer::import_tgz(o.s, account, &rest, &file, o.json, o.out),
                "ics" | "vcf" => {
                    let data = std::fs::read(&file).map_err(read_err)?;
                    let text = String::from_utf8(data).map_err(|_| {
                        op_err(format!(
                            "{} is not UTF-8 text (expected .{format})",
                            file.display()
                        ))
                    })?;
                    let v = transfer::import_pim(o.s, account, &rest.folder, &format, text)?;
                    if !o.raw(&v)? {
                        pim::print_import(o.out, &v)?;
                    }
                    Ok(())
                }
                other => Err(unsupported_format(other)),
            }
        }
    }
}

/// A getRestURL / postRestURL path: `/Calendar`, `/Calendar?fmt=ics`,
/// `/Calendar.ics`, `/home/USER/Contacts?fmt=vcf`, `//?fmt=tgz&query=is:unread`.
pub(super) struct RestPath {
    pub(super) folder: String,
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
    pub(super) fn parse(s: &str) -> RestPath {
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
    pub(super) fn param(&self, name: &str) -> Option<&str> {
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
        let folders: Vec<mv_store::Folder> = s.exec(Request::GetAllFolders {
            account: account.to_string(),
        })?;
        let folder = folders
            .iter()
            .find(|f| f.path.eq_ignore_ascii_case(&self.folder))
            .ok_or_else(|| op_err(format!("no such folder: {}", self.folder)))?;
        match folder.view.as_str() {
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
    fn import_formats_from_content_or_name() {
        let p = Path::new("x.dat");
        assert_eq!(
            sniff_format(p, b"\xef\xbb\xbfBEGIN:VCALENDAR").as_deref(),
            Some("ics")
        );
        assert_eq!(sniff_format(p, b"begin:vcard").as_deref(), Some("vcf"));
        assert_eq!(sniff_format(p, &[0x1f, 0x8b, 8]).as_deref(), Some("tgz"));
        assert_eq!(
            sniff_format(Path::new("m.tar.gz"), b"").as_deref(),
            Some("tgz")
        );
        assert_eq!(sniff_format(Path::new("noext"), b""), None);
    }
}
