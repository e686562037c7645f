//! Item-level recovery on the command line: `mailvault backup search`,
//! `mailvault backup export` and the `--items`/`--folder` forms of `zmrestore`. Both run through the server's jobs
//! API when a server runs (its log lines are the progress, on stderr), else in
//! this process.

use crate::client::Client;
use mv_backup::items::{BackupHit, ExportReport};
use mv_backup::items::{ItemRestoreReport, RestoredItem};
use mv_home::Home;
use mv_server::items::{
    BackupExportRequest, BackupPoint, BackupSearchReport, BackupSearchRequest, ItemRestoreRequest,
};
use mv_server::{Reply, Request, Response};
use mv_types::UtcMillis;
use std::io::Write;
use std::process::ExitCode;

/// Search the backups for messages, without restoring anything (exit 0: found,
/// 1: nothing found or an error, 2: a usage error).
#[derive(clap::Args, Debug)]
#[command(after_help = mv_types::time::FORMATS_HELP)]
pub struct SearchArgs {
    /// The account (address or zimbraId), or `all` (every account of the target).
    #[arg(short = 'a', long = "account", value_name = "ADDR")]
    account: String,
    /// Backup target: a directory or s3://BUCKET/PREFIX (default: zimbraBackupTarget, else <home>/backup).
    #[arg(short = 't', long = "target", value_name = "TARGET", value_parser = super::backup::target_arg)]
    target: Option<String>,
    /// Sessions started at or after this time only.
    #[arg(long = "from", value_name = "TIME")]
    from: Option<String>,
    /// Sessions started at or before this time only.
    #[arg(long = "to", value_name = "TIME")]
    to: Option<String>,
    /// Search the account as it was at this time (one restore point) instead of
    /// every session.
    #[arg(long = "restoreToTime", value_name = "TIME")]
    to_time: Option<String>,
    /// Search this session's state only.
    #[arg(long = "lb", visible_alias = "label", value_name = "LABEL")]
    label: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
    /// The query, in the grammar of `zmmailbox s` (several words are one query).
    #[arg(value_name = "QUERY", num_args = 1.., required = true)]
    query: Vec<String>,
}

/// Write the messages of a query or a folder, as they were at one restore point
/// (default: the newest backup of the account), to a tgz (importable with
/// `zmmailbox postRestURL '//?fmt=tgz'`), an mbox (mboxrd) or a Maildir, without
/// restoring the account. The output must not exist yet.
#[derive(clap::Args, Debug)]
#[command(after_help = mv_types::time::FORMATS_HELP)]
pub struct ExportArgs {
    /// The account (address or zimbraId).
    #[arg(short = 'a', long = "account", value_name = "ADDR")]
    account: String,
    /// Backup target: a directory or s3://BUCKET/PREFIX (default: zimbraBackupTarget, else <home>/backup).
    #[arg(short = 't', long = "target", value_name = "TARGET", value_parser = super::backup::target_arg)]
    target: Option<String>,
    /// The account as it was at this time.
    #[arg(long = "restoreToTime", value_name = "TIME")]
    to_time: Option<String>,
    /// The account as this session holds it.
    #[arg(long = "lb", visible_alias = "label", value_name = "LABEL")]
    label: Option<String>,
    /// A folder and its subfolders instead of a query.
    #[arg(long = "folder", value_name = "/PATH", conflicts_with = "query")]
    folder: Option<String>,
    /// tgz, mbox or maildir (default: from the output's name: .tgz, .mbox, or a
    /// name ending in / or "maildir").
    #[arg(long = "format", value_name = "FORMAT")]
    format: Option<String>,
    /// Where to write (a new file, or a new directory for a Maildir).
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    output: std::path::PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
    /// The query, in the grammar of `zmmailbox s` (none: every message).
    #[arg(value_name = "QUERY", num_args = 0..)]
    query: Vec<String>,
}

pub fn export(home: &Home, args: ExportArgs) -> anyhow::Result<ExitCode> {
    // A server writes the file for us: it needs the whole path.
    let output = std::path::absolute(&args.output)?;
    let req = BackupExportRequest {
        account: args.account.clone(),
        query: (!args.query.is_empty()).then(|| args.query.join(" ")),
        folder: args.folder.clone(),
        backups: BackupPoint {
            target: args.target.clone(),
            to_time: args.to_time.clone(),
            label: args.label.clone(),
        },
        // From the name as given: making it absolute drops a trailing `/`.
        format: args.format.clone().or_else(|| {
            mv_backup::items::ExportFormat::from_path(&args.output.to_string_lossy())
                .map(|f| f.as_str().to_string())
        }),
        output: output.to_string_lossy().into_owned(),
    };
    let usage = mv_server::items::export_options(&req).map(|_| ());
    let report: ExportReport = match run_checked(
        home,
        usage,
        args.target.as_deref(),
        Request::BackupExport(req),
        "export",
    )? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{}: {} message(s), {} bytes, from {} written to {} ({})",
            report.email,
            report.messages,
            report.message_bytes,
            report.point,
            report.output,
            report.format.as_str()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Follows a request as a job (through a server), or runs it here, printing its
/// log lines to stderr as progress.
fn run_followed<T: Reply>(client: &Client, req: Request, what: &str) -> anyhow::Result<T> {
    let mut follow = |_: &mv_server::jobs::JobStatus<T>, news: mv_server::jobs::LogNews<'_>| {
        crate::client::print_job_log(what, &news)
    };
    match client {
        Client::Local { service, .. } => match req {
            Request::BackupSearch(r) => {
                let report = service
                    .backup_search_watched(&r, &|done, total, line| {
                        if total > 1
                            && let Some(l) = line
                        {
                            eprintln!("{what}: [{done}/{total}] {l}");
                        }
                        true
                    })
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                T::from_response(Response::from(report))
                    .map_err(|r| anyhow::anyhow!("unexpected answer: {}", r.kind()))
            }
            other => client.call(other),
        },
        Client::Remote { .. } => client.run_job(req, &mut follow),
    }
}

/// Runs a request after its checks: a usage error is exit 2; a target that
/// cannot be opened, or a run that fails, exit 1 (each said on stderr).
fn run_checked<T: Reply>(
    home: &Home,
    usage: Result<(), mv_server::ServiceError>,
    target: Option<&str>,
    req: Request,
    what: &str,
) -> anyhow::Result<Result<T, ExitCode>> {
    let client = match checked_client(home, usage, target)? {
        Ok(c) => c,
        Err(code) => return Ok(Err(code)),
    };
    match run_followed(&client, req, what) {
        Ok(v) => Ok(Ok(v)),
        Err(e) => {
            eprintln!("error: {e:#}");
            Ok(Err(ExitCode::from(1)))
        }
    }
}

/// The checks before a request (a usage error is exit 2; a target that cannot
/// be opened, exit 1; each said on stderr), then the client that runs it.
fn checked_client(
    home: &Home,
    usage: Result<(), mv_server::ServiceError>,
    target: Option<&str>,
) -> anyhow::Result<Result<Client, ExitCode>> {
    if let Err(e) = usage {
        eprintln!("error: {e}");
        return Ok(Err(ExitCode::from(2)));
    }
    if let Some(t) = target
        && let Err(e) = mv_backup::target::open_existing(t, home)
    {
        eprintln!("error: {e}");
        return Ok(Err(ExitCode::from(1)));
    }
    Ok(Ok(Client::connect(home)?))
}

/// One hit in the text form: where it is, then its digest and the points
/// holding it (`in`: every one; `found in`: where it was first found, when
/// printed as it was found).
fn print_hit(h: &BackupHit, labels: &str) {
    let present = match h.present {
        Some(true) => "in the mailbox now",
        Some(false) => "not in the mailbox now",
        None => "no live mailbox",
    };
    let mut out = std::io::stdout().lock();
    let _ = if h.kind != "message" {
        // A contact has no date; an appointment's is its start.
        let date = match h.date_ms {
            0 => "-".to_string(),
            d => UtcMillis(d).display_local(),
        };
        writeln!(
            out,
            "  {} {}  {date}  {}  \"{}\"  {present}",
            h.kind, h.item_id, h.folder, h.subject
        )
    } else {
        writeln!(
            out,
            "  item {}  {}  {}  from {}  \"{}\"  {} bytes  {present}",
            h.item_id,
            UtcMillis(h.date_ms).display_local(),
            h.folder,
            h.from,
            h.subject,
            h.size,
        )
    };
    let _ = writeln!(out, "      digest {}  {labels}", h.digest);
    // Each hit is seen as soon as it is known, also through a pipe.
    let _ = out.flush();
}

/// Runs a search: in this process, the text form prints each hit as soon as it
/// is found (newest full's first), then each account's summary; through a
/// server (a job), or with `--json` (one document), once it is done.
fn run_search(
    client: &Client,
    req: BackupSearchRequest,
    stream: bool,
) -> anyhow::Result<(BackupSearchReport, bool)> {
    // With several accounts, a hit printed as found says whose it is.
    let all = req.account.eq_ignore_ascii_case("all");
    match client {
        Client::Local { service, .. } => {
            let report = service
                .backup_search_streamed(
                    &req,
                    &|done, total, line| {
                        if total > 1
                            && let Some(l) = line
                        {
                            eprintln!("search: [{done}/{total}] {l}");
                        }
                        true
                    },
                    &mut |h| {
                        if stream {
                            let mut at = format!("found in {}", h.labels.join(", "));
                            if all {
                                at.push_str(&format!(" ({})", h.email));
                            }
                            print_hit(h, &at);
                        }
                    },
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok((report, stream))
        }
        Client::Remote { .. } => Ok((
            run_followed(client, Request::BackupSearch(req), "search")?,
            false,
        )),
    }
}

pub fn search(home: &Home, args: SearchArgs) -> anyhow::Result<ExitCode> {
    let req = BackupSearchRequest {
        account: args.account.clone(),
        query: args.query.join(" "),
        from: args.from.clone(),
        to: args.to.clone(),
        backups: BackupPoint {
            target: args.target.clone(),
            to_time: args.to_time.clone(),
            label: args.label.clone(),
        },
    };
    let usage = mv_server::items::search_options(&req).map(|_| ());
    let client = match checked_client(home, usage, args.target.as_deref())? {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let (report, streamed) = match run_search(&client, req, !args.json) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(1));
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    let hits = report.hits();
    for a in report.accounts.iter().filter(|_| !args.json) {
        println!(
            "{}: {} item(s) in {} restore point(s)",
            a.email,
            a.hits.len(),
            a.points
        );
        for h in &a.hits {
            if streamed {
                // Printed as found above: here, every point holding it.
                println!("  {} {}  in {}", h.kind, h.item_id, h.labels.join(", "));
            } else {
                print_hit(h, &format!("in {}", h.labels.join(", ")));
            }
        }
        for n in &a.notes {
            eprintln!("note: {n}");
        }
    }
    for f in &report.failures {
        eprintln!("error: {}: {}", f.email, f.error);
    }
    if hits == 0 && !args.json {
        eprintln!("No matching items found in the backups");
    }
    Ok(if hits > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The `--items`/`--folder` part of `zmrestore`'s arguments.
pub struct ItemArgs<'a> {
    pub accounts: &'a [String],
    pub items: Option<String>,
    pub folder: Option<String>,
    pub into: Option<String>,
    pub dry_run: bool,
    pub to_time: &'a [String],
    pub label: Option<String>,
    pub target: Option<String>,
    pub json: bool,
    /// Other restore options given, which do not go with an item restore.
    pub others: Vec<&'static str>,
}

pub fn restore_items(home: &Home, args: ItemArgs) -> anyhow::Result<ExitCode> {
    if let Some(o) = args.others.first() {
        eprintln!("error: {o} does not go with --items/--folder");
        return Ok(ExitCode::from(2));
    }
    let [account] = args.accounts else {
        eprintln!("error: --items/--folder restore into one account: -a ADDR");
        return Ok(ExitCode::from(2));
    };
    if args.to_time.len() > 1 {
        eprintln!("error: --items/--folder take one -restoreToTime");
        return Ok(ExitCode::from(2));
    }
    let req = ItemRestoreRequest {
        account: account.clone(),
        items: args.items,
        folder: args.folder,
        backups: BackupPoint {
            target: args.target.clone(),
            to_time: args.to_time.first().cloned(),
            label: args.label,
        },
        into: args.into,
        dry_run: args.dry_run,
    };
    let usage = mv_server::items::item_options(&req).map(|_| ());
    let target = args.target.clone();
    let report: ItemRestoreReport = match run_checked(
        home,
        usage,
        target.as_deref(),
        Request::RestoreItems(req),
        "restore",
    )? {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let dry = report.dry_run;
    let email = &report.email;
    for f in &report.folders_created {
        println!("{email}: created folder {f}");
    }
    let line = |h: &RestoredItem| {
        // A contact or appointment says so, and has no sender.
        let (what, from) = if h.kind == "message" {
            ("item", format!(" from {}", h.from))
        } else {
            (h.kind.as_str(), String::new())
        };
        format!(
            "{what} {} \"{}\"{from} ({} bytes, {}) {} -> {}{}",
            h.item_id,
            h.subject,
            h.size,
            h.label,
            h.from_folder,
            h.folder,
            match h.new_item_id {
                Some(n) => format!(" as item {n}"),
                None => String::new(),
            }
        )
    };
    for h in &report.restored {
        println!(
            "{email}: {} {}",
            if dry { "would restore" } else { "restored" },
            line(h)
        );
    }
    for h in &report.already_present {
        println!("{email}: already present, left alone: {}", line(h));
    }
    for n in &report.notes {
        eprintln!("note: {n}");
    }
    if report.restored.is_empty() && report.already_present.is_empty() {
        eprintln!("{email}: nothing in the backups matches");
        return Ok(ExitCode::from(1));
    }
    println!(
        "{email}: {} item(s) {}, {} already present",
        report.restored.len(),
        if dry {
            "to restore (dry run)"
        } else {
            "restored"
        },
        report.already_present.len()
    );
    Ok(ExitCode::SUCCESS)
}
