//! `mailvault backup export`: the messages of a query or a folder, as they were
//! at one restore point, written to a file for a legal hold or a re-import,
//! without restoring the account: a tgz in the mailbox archive format
//! (`mv_store::tgz`, importable with `postRestURL`), an mbox (mboxrd) or a
//! Maildir.
//!
//! The mailbox is rebuilt at the point as for a search ([`RestoreRun::build_point`])
//! and thrown away afterwards; each message's bytes are read from the backup's
//! pool (or the file its replayed record wrote) one at a time while writing.
//! Nothing is left under the output's name unless the export finished: files are
//! written under a temporary name, fsynced and renamed; a Maildir is made under a
//! temporary directory renamed into place at the end. The temporaries of an
//! export that was killed are removed by the next export to the same directory
//! (`export/temp.rs`).

use super::*;
use std::io::Write;
use std::path::{Path, PathBuf};

mod maildir;
mod mbox;
mod temp;

use temp::temp_beside;

/// What `backup export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// The mailbox archive of `getRestURL`/`postRestURL` (`mv_store::tgz`).
    Tgz,
    /// One file, mboxrd quoting.
    Mbox,
    /// A Maildir++ directory.
    Maildir,
}

impl ExportFormat {
    /// Its name, as `--format` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Tgz => "tgz",
            ExportFormat::Mbox => "mbox",
            ExportFormat::Maildir => "maildir",
        }
    }

    /// The format an output's name implies: `.tgz`/`.tar.gz`, `.mbox`, or a
    /// name ending in `/` or without an extension for a Maildir.
    pub fn from_path(path: &str) -> Option<ExportFormat> {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".tgz") || lower.ends_with(".tar.gz") {
            Some(ExportFormat::Tgz)
        } else if lower.ends_with(".mbox") {
            Some(ExportFormat::Mbox)
        } else if lower.ends_with('/') || lower.ends_with("maildir") {
            Some(ExportFormat::Maildir)
        } else {
            None
        }
    }
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "tgz" => Ok(ExportFormat::Tgz),
            "mbox" => Ok(ExportFormat::Mbox),
            "maildir" => Ok(ExportFormat::Maildir),
            _ => Err(format!(
                "unknown export format {s:?}: use tgz, mbox or maildir"
            )),
        }
    }
}

/// What to export, from which point, to where.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The messages; None: every message.
    pub selection: Option<Selection>,
    /// One restore point; None: the newest session holding the account.
    pub point: Option<RestoreOptions>,
    pub format: ExportFormat,
    /// A file (tgz, mbox) or a directory (Maildir) that must not exist yet.
    pub output: PathBuf,
}

/// What `backup export` wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportReport {
    pub email: String,
    /// The restore point the messages were read at.
    pub point: String,
    pub format: ExportFormat,
    pub output: String,
    pub messages: u64,
    /// Bytes of the messages written (their stored size).
    pub message_bytes: u64,
    /// Folders the exported messages were in, as paths.
    pub folders: Vec<String>,
}

/// A message to write: its metadata, folder path, and (read when written) bytes.
pub(crate) struct Exported<'a> {
    pub item: &'a Item,
    pub folder: &'a str,
}

/// `mailvault backup export`: writes the selected messages of the account at
/// one restore point to `opts.output`.
pub fn export_account(
    run: &mut RestoreRun,
    source: &Source,
    target: &dyn Target,
    email: &str,
    opts: &ExportOptions,
) -> Result<ExportReport> {
    let terms = match &opts.selection {
        Some(Selection::Query(q)) => {
            mv_store::search::parse(q).map_err(|e| BackupError::Invalid(e.to_string()))?
        }
        Some(Selection::Folder(p)) => {
            if p.trim_matches('/').is_empty() {
                return Err(BackupError::Invalid(
                    "--folder needs a folder path such as /Inbox/Projects".into(),
                ));
            }
            vec![Term::Under(p.clone())]
        }
        None => Vec::new(),
    };
    check_output(&opts.output)?;
    temp::sweep_stale(parent_of(&opts.output));
    let zid = zimbra_id(run, source, target, email)?;
    let point = match &opts.point {
        Some(p) => (point_name(p), p.clone()),
        None => session_points(run, target, &zid, None, None)?
            .pop()
            .ok_or_else(|| {
                BackupError::Invalid(format!("{email}: no completed backup of this account"))
            })?,
    };
    let mut report = ExportReport {
        email: email.to_string(),
        point: point.0.clone(),
        format: opts.format,
        output: opts.output.display().to_string(),
        messages: 0,
        message_bytes: 0,
        folders: Vec::new(),
    };
    let mut notes = Vec::new();
    for_each_point(
        run,
        source,
        target,
        email,
        std::slice::from_ref(&point),
        &mut notes,
        &mut |run, _name, pm| {
            let folders = folder_paths(source, pm.mailbox)?;
            let mut items = if terms.is_empty() {
                source
                    .store
                    .mailbox(pm.mailbox)
                    .items(None, Some(mv_store::ItemKind::Message))?
                    .into_iter()
                    .filter(|i| i.digest.is_some())
                    .collect()
            } else {
                let mut index_notes = Vec::new();
                super::narrow::Narrowed::new(&terms).matching(
                    run,
                    source,
                    target,
                    pm,
                    &mut index_notes,
                )?
            };
            // Folder by folder, oldest first: the order a mail client shows.
            items.sort_by(|a, b| {
                let fa = folders.get(&a.folder_id);
                let fb = folders.get(&b.folder_id);
                (fa, a.received_ms, a.id).cmp(&(fb, b.received_ms, b.id))
            });
            let list: Vec<Exported> = items
                .iter()
                .map(|i| Exported {
                    item: i,
                    folder: folders.get(&i.folder_id).map_or("/Inbox", |f| f.as_str()),
                })
                .collect();
            let mailbox = pm.mailbox;
            let mut read = |i: &Item| -> Result<Vec<u8>> {
                let b = body(run, source, target, mailbox, i)?;
                Ok([&i.prefix[..], &b[..]].concat())
            };
            match opts.format {
                ExportFormat::Tgz => {
                    let ids = items.iter().map(|i| i.id).collect();
                    let query = match &opts.selection {
                        Some(Selection::Query(q)) => Some(q.clone()),
                        Some(Selection::Folder(f)) => Some(format!("under:\"{f}\"")),
                        None => None,
                    };
                    write_file(&opts.output, |out| {
                        write_tgz(source, mailbox, ids, query.as_deref(), &mut read, out)
                    })?;
                }
                ExportFormat::Mbox => {
                    write_file(&opts.output, |out| mbox::write(&list, &mut read, out))?;
                }
                ExportFormat::Maildir => maildir::write(&opts.output, &list, &mut read)?,
            }
            report.messages = items.len() as u64;
            report.message_bytes = items.iter().map(|i| i.size).sum();
            report.folders = list.iter().map(|e| e.folder.to_string()).collect();
            report.folders.dedup();
            Ok(())
        },
    )?;
    Ok(report)
}

/// The output must not exist: an export never overwrites (a legal hold is not
/// replaced by mistake), and its directory must.
fn check_output(output: &Path) -> Result<()> {
    if output.as_os_str().is_empty() {
        return Err(BackupError::Invalid("-o PATH is required".into()));
    }
    if output.symlink_metadata().is_ok() {
        return Err(BackupError::Invalid(format!(
            "{}: already exists; an export never overwrites: choose a new name",
            output.display()
        )));
    }
    let parent = parent_of(output);
    if !parent.is_dir() {
        return Err(BackupError::Invalid(format!(
            "{}: no such directory for the export",
            parent.display()
        )));
    }
    Ok(())
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes a file through `fill` under a temporary name (mode 0600), fsyncs it
/// and renames it to `path` (the directory fsynced too); on failure nothing is
/// left.
fn write_file(path: &Path, fill: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = temp_beside(path);
    let r = (|| {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mv_home::durable::FILE_MODE)
            .open(&tmp)
            .map_err(BackupError::io(tmp.display()))?;
        let mut out = std::io::BufWriter::new(file);
        fill(&mut out)?;
        let file = out
            .into_inner()
            .map_err(|e| BackupError::io(tmp.display())(e.into_error()))?;
        file.sync_all().map_err(BackupError::io(tmp.display()))?;
        drop(file);
        mv_home::durable::rename_durable(&tmp, path).map_err(BackupError::io(path.display()))
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// The tgz archive of the chosen messages (no contacts or appointments: the
/// selection is of messages), through the archive format's own writer.
fn write_tgz(
    source: &Source,
    mailbox: MailboxId,
    ids: HashSet<u32>,
    query: Option<&str>,
    read: &mut dyn FnMut(&Item) -> Result<Vec<u8>>,
    out: &mut dyn Write,
) -> Result<()> {
    // The archive writer reads through a store-typed callback: the backup's
    // error is kept aside and given back as it was.
    let mut failed: Option<BackupError> = None;
    let r = mv_store::tgz::export_from(
        source.store,
        mailbox,
        mv_store::tgz::Selected {
            messages: Some(ids),
            pim: false,
            query,
        },
        &mut |i| {
            read(i).map_err(|e| {
                let msg = e.to_string();
                failed.get_or_insert(e);
                StoreError::Invalid(msg)
            })
        },
        out,
    );
    if let Some(e) = failed {
        return Err(e);
    }
    match r {
        Ok(_) => Ok(()),
        Err(mv_store::tgz::TgzError::Store(e)) => Err(e.into()),
        Err(mv_store::tgz::TgzError::Io { context, source }) => Err(BackupError::Io {
            path: context,
            source,
        }),
        Err(e) => Err(BackupError::Invalid(e.to_string())),
    }
}
