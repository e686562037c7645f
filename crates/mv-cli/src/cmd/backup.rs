//! `backup` (`zmbackup`), `backupquery` (`zmbackupquery`), `backupabort`
//! (`zmbackupabort`) and `backup verify`.
//!
//! `-f`/`-i` run in the server when one owns the home (through the admin API:
//! asynchronous by default, the labels are printed at once; `-sync` runs it as a
//! job of the server and follows the job until it ends, past the client timeout). Without a server the tool runs the backup in
//! its own process, holding the home's lock, which is `-sync` by nature: the
//! process must live until the backup ends. `-del`, query, abort and verify work on
//! the target directly (they never touch the mailboxes).
//!
//! Output: the labels, one per line, on stdout (scripts capture them); the summary,
//! errors and progress on stderr (a bar on a terminal, plain lines otherwise).
//! `--json` prints one JSON document on stdout instead. Exit codes: 0 success, 1 a
//! failure or a session "completed (with errors)" / aborted, 2 a usage error.

use crate::client::Client;
use anyhow::Context;
use mv_backup::BackupReport;
use mv_backup::{BackupError, Label, Progress, Target};
use mv_home::Home;
use mv_server::backup::{BackupRequest, QueryRequest, VerifyRequest};
use mv_server::jobs::JobStatus;
use mv_server::response::BackupStarted;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Take, delete or verify backups (zmbackup).
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    sub: Option<Sub>,
    /// Full backup.
    #[arg(short = 'f', long = "fullBackup", conflicts_with_all = ["incremental", "del"])]
    full: bool,
    /// Incremental backup (accounts without a full backup get one in the same run).
    #[arg(short = 'i', long = "incrementalBackup", conflicts_with = "del")]
    incremental: bool,
    /// Delete backups: a label (it and everything older), YYYY/MM/DD[-hh:mm:ss], or Nd / Nm (months) / Ny.
    #[arg(long = "del", visible_alias = "delete", value_name = "ARG")]
    del: Option<String>,
    /// Accounts (addresses) or `all`.
    #[arg(short = 'a', long = "account", num_args = 1.., value_name = "ADDR")]
    accounts: Vec<String>,
    /// Backup target: a directory or s3://BUCKET/PREFIX (default: zimbraBackupTarget, else <home>/backup).
    #[arg(short = 't', long = "target", value_name = "TARGET", value_parser = target_arg)]
    target: Option<String>,
    /// Wait for the backup to end (and show its progress).
    #[arg(long = "sync")]
    sync: bool,
    /// Compress blobs (deflate: any unzip reads the packs).
    #[arg(short = 'z', long = "zip", group = "compression")]
    zip: bool,
    /// Store blobs uncompressed in the packs (the default).
    #[arg(long = "zipStore", group = "compression")]
    zip_store: bool,
    /// No compression. (Blobs still go into packs: loose files would bring back
    /// millions of small files.)
    #[arg(long = "noZip", group = "compression")]
    no_zip: bool,
    /// Compress blobs with zstd (smaller and faster than --zip; needs a zstd-aware unzip).
    #[arg(long = "zstd", group = "compression")]
    zstd: bool,
    /// Include SearchIndex, Blobs, HsmBlobs or Secrets.
    #[arg(long = "include", value_name = "WHAT")]
    include: Vec<String>,
    /// Exclude SearchIndex, Blobs, HsmBlobs or Secrets.
    #[arg(long = "exclude", value_name = "WHAT")]
    exclude: Vec<String>,
    /// Server (accepted for compatibility: this server).
    #[arg(short = 's', long = "server", value_name = "HOST")]
    server: Option<String>,
    /// With -del: show what would be deleted and kept, change nothing.
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
    /// Debug output (accepted; MAILVAULT_LOG=debug turns on debug lines).
    #[arg(short = 'd', long = "debug")]
    debug: bool,
}

#[derive(clap::Subcommand, Debug)]
enum Sub {
    /// Check that backups are complete and intact (mailvault).
    Verify(VerifyArgs),
    /// The reports of the latest backup and delete runs (mailvault).
    Report(crate::cmd::report::Args),
    /// Find messages in the backups without restoring them (mailvault).
    Search(crate::cmd::items::SearchArgs),
    /// Write messages from a backup to a tgz, mbox or Maildir, without restoring (mailvault).
    Export(crate::cmd::items::ExportArgs),
}

/// Check backups: files, checksums, snapshots, redo chain; with --read-data every blob.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// Only this session.
    #[arg(long = "lb", value_name = "LABEL")]
    label: Option<String>,
    /// Read and hash every blob the sessions reference.
    #[arg(long = "read-data", conflicts_with = "subset")]
    read_data: bool,
    /// Read this share of the blobs (a deterministic sample), e.g. 10%.
    #[arg(long = "read-data-subset", value_name = "N%")]
    subset: Option<String>,
    #[arg(short = 't', long = "target", value_name = "TARGET", value_parser = target_arg)]
    target: Option<String>,
    #[arg(long)]
    json: bool,
}

/// List backup sessions (zmbackupquery).
#[derive(clap::Args, Debug)]
#[command(after_help = mv_types::time::FORMATS_HELP)]
pub struct QueryArgs {
    /// Accounts whose backups to list (or `all`).
    #[arg(short = 'a', long = "account", num_args = 1.., value_name = "ADDR")]
    accounts: Vec<String>,
    /// Only this session.
    #[arg(long = "lb", visible_alias = "label", value_name = "LABEL")]
    label: Option<String>,
    /// full or incremental.
    #[arg(long = "type", value_name = "TYPE")]
    kind: Option<String>,
    /// Sessions started at or after this time.
    #[arg(long = "from", value_name = "TIME")]
    from: Option<String>,
    /// Sessions started at or before this time.
    #[arg(long = "to", value_name = "TIME")]
    to: Option<String>,
    /// Accounts and errors of each session.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Backup target: a directory or s3://BUCKET/PREFIX (default: zimbraBackupTarget, else <home>/backup).
    #[arg(short = 't', long = "target", value_name = "TARGET", value_parser = target_arg)]
    target: Option<String>,
    /// Server (accepted for compatibility: this server).
    #[arg(short = 's', long = "server", value_name = "HOST")]
    server: Option<String>,
    /// Debug output (accepted; MAILVAULT_LOG=debug turns on debug lines).
    #[arg(short = 'd', long = "debug")]
    debug: bool,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

/// Stop a running backup (zmbackupabort).
#[derive(clap::Args, Debug)]
pub struct AbortArgs {
    /// The running backup's label.
    #[arg(long = "lb", visible_alias = "label", value_name = "LABEL")]
    label: Option<String>,
    /// Abort the restore in progress.
    #[arg(short = 'r', long = "restore")]
    restore: bool,
    /// Backup target: a directory or s3://BUCKET/PREFIX (default: zimbraBackupTarget, else <home>/backup).
    #[arg(short = 't', long = "target", value_name = "TARGET", value_parser = target_arg)]
    target: Option<String>,
    /// Server (accepted for compatibility: this server).
    #[arg(short = 's', long = "server", value_name = "HOST")]
    server: Option<String>,
    /// Debug output (accepted; MAILVAULT_LOG=debug turns on debug lines).
    #[arg(short = 'd', long = "debug")]
    debug: bool,
}

fn usage(msg: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    eprintln!("error: {msg}");
    Ok(ExitCode::from(2))
}

/// A `-t` value as the server must get it: a relative directory is taken from
/// the caller's working directory (the server's would be another), so it is
/// made absolute here, before any request is built.
pub fn target_arg(t: &str) -> Result<String, String> {
    if t.is_empty() || t.starts_with("s3://") || std::path::Path::new(t).is_absolute() {
        return Ok(t.to_string());
    }
    let cwd = std::env::current_dir()
        .map_err(|e| format!("cannot resolve the relative target {t}: {e}"))?;
    Ok(cwd.join(t).to_string_lossy().into_owned())
}

/// The target a command means, without opening the store. An explicit `-t` must
/// exist already (a mistyped path is an error, not a new empty target).
fn open_target(home: &Home, explicit: Option<&str>) -> anyhow::Result<Arc<dyn Target>> {
    match explicit {
        Some(t) => Ok(mv_backup::target::open_existing(t, home)?),
        None => {
            home.init()?;
            let dir = mv_directory::Directory::open_home(home)?;
            let spec =
                mv_backup::default_target(&dir, &mv_directory::config::local_server_name(), home);
            Ok(mv_backup::target::open(&spec, home)?)
        }
    }
}

/// Maps library errors to exit codes: usage errors 2, others 1.
fn fail(e: BackupError) -> anyhow::Result<ExitCode> {
    eprintln!("error: {e}");
    Ok(ExitCode::from(if e.is_usage() { 2 } else { 1 }))
}

pub fn run(home: &Home, args: Args) -> anyhow::Result<ExitCode> {
    if let Some(Sub::Verify(v)) = args.sub {
        return verify(home, v);
    }
    if let Some(Sub::Report(r)) = args.sub {
        return crate::cmd::report::run(home, r);
    }
    if let Some(Sub::Search(s)) = args.sub {
        return crate::cmd::items::search(home, s);
    }
    if let Some(Sub::Export(e)) = args.sub {
        return crate::cmd::items::export(home, e);
    }
    let _ = &args.server;
    if args.debug {
        crate::zimbra::note_ignored("-d/--debug", crate::zimbra::DEBUG_NOTE);
    }
    if let Some(arg) = &args.del {
        return delete(home, &args, arg);
    }
    if args.dry_run {
        return usage("--dry-run goes with -del");
    }
    let kind = match (args.full, args.incremental) {
        (true, _) => "full",
        (_, true) => "incremental",
        _ => return usage("one of -f, -i or -del is required (see --help)"),
    };
    if args.no_zip {
        eprintln!(
            "note: --noZip stores blobs uncompressed inside pack files; mailvault never writes loose blob files"
        );
    }
    let req = BackupRequest {
        kind: kind.into(),
        accounts: args.accounts.clone(),
        target: args.target.clone(),
        compression: Some(
            if args.zip {
                "deflate"
            } else if args.zstd {
                "zstd"
            } else {
                "stored"
            }
            .into(),
        ),
        exclude: args.exclude.clone(),
        include: args.include.clone(),
        sync: false,
    };
    if let Err(e) = mv_server::backup::options(&req) {
        return usage(e);
    }
    let client = Client::connect(home)?;
    // No server: the backup runs here, with its progress bar; with one, it
    // starts there and is followed.
    match &client {
        Client::Local { service, .. } => run_local(service, &req, args.json),
        Client::Remote { .. } => run_remote(&client, req, args.sync, args.json),
    }
}

/// No server: this process runs the backup (and so waits for it).
fn run_local(
    service: &mv_server::Service,
    req: &BackupRequest,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let target = match mv_server::backup::target_for(service, req.target.as_deref()) {
        Ok(t) => t,
        Err(e) => return usage(e),
    };
    let opts = mv_server::backup::options(req).map_err(|e| anyhow::anyhow!("{e}"))?;
    let src = service.backup_source();
    let prepared = match mv_backup::prepare(&src, target, opts) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    if !json {
        for l in prepared.labels() {
            println!("{l}");
        }
    }
    let bar = Bar::new(!json);
    let note = mv_server::report::Note::default();
    let report = match prepared.run(&src, &bar) {
        Ok(r) => r,
        Err(e) => {
            bar.finish();
            mv_server::report::backup_failed(service, &note, &e.to_string());
            return fail(e);
        }
    };
    bar.finish();
    mv_server::report::backup_finished(service, &note, Ok(&report));
    finish(&report, json)
}

/// A server runs: start the backup there. Without -sync the labels are the
/// answer, at once, as Zimbra's zmbackup prints them; with -sync the backup
/// runs as a job of the server, followed until it ends however long it takes
/// (each status request is bounded by the client timeout, not the backup).
fn run_remote(
    client: &Client,
    req: BackupRequest,
    sync: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if !sync {
        let started: BackupStarted = client.call(mv_server::Request::Backup(req))?;
        if json {
            println!("{}", serde_json::to_string_pretty(&started)?);
        } else {
            for l in &started.labels {
                println!("{l}");
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let bar = Bar::new(!json);
    let mut last_done = 0;
    let mut follow = |st: &JobStatus<BackupReport>, news: mv_server::jobs::LogNews<'_>| {
        // Per session, as the local run shows it (the job's log announces
        // each); a session that went by between two polls is not shown.
        for l in news.lines {
            if let Some((label, n)) = l
                .strip_prefix(mv_server::jobs::SESSION_LINE)
                .and_then(|rest| rest.split_once(": "))
            {
                let accounts = n.trim_end_matches(" accounts").parse().unwrap_or(0);
                bar.begin_session(label, accounts);
                last_done = 0;
            }
        }
        for _ in last_done..st.done {
            bar.account_done("", true);
        }
        last_done = last_done.max(st.done);
    };
    let mut req = req;
    req.sync = true;
    let report = client.run_job(mv_server::Request::Backup(req), &mut follow);
    bar.finish();
    match report {
        Ok(report) => {
            if !json {
                for l in report.labels() {
                    println!("{l}");
                }
            }
            finish(&report, json)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Prints a report's summary; the exit code says whether every session completed.
fn finish(report: &BackupReport, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        for s in &report.sessions {
            let stats = &s.stats;
            let redo = match s.redo {
                Some((first, last)) => format!(", redo logs {first} .. {last}"),
                None => String::new(),
            };
            eprintln!(
                "{}: {} ({} of {} accounts, {} new blobs, {} shared, {} written{redo})",
                s.label,
                s.status_text,
                s.accounts_completed,
                s.accounts,
                stats.blobs_new,
                stats.blobs_shared,
                mv_backup::space::human_bytes(stats.bytes_written),
            );
            for e in &s.errors {
                match &e.account {
                    Some(a) => eprintln!("  {a}: {}", e.message),
                    None => eprintln!("  {}", e.message),
                }
            }
        }
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn delete(home: &Home, args: &Args, arg: &str) -> anyhow::Result<ExitCode> {
    if args.full || args.incremental {
        return usage("-del does not go with -f or -i");
    }
    let target = open_target(home, args.target.as_deref())?;
    let now = mv_types::UtcMillis::now();
    let spec = match mv_backup::parse_delete_arg(arg, now) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let live = match mv_directory::Directory::open_home(home) {
        Ok(d) => Some(d.list_accounts(None)?.into_iter().map(|a| a.id).collect()),
        Err(_) => None,
    };
    let result = mv_backup::delete(
        target.as_ref(),
        &mv_backup::DeleteOptions {
            spec,
            dry_run: args.dry_run,
            lock_wait: Duration::from_secs(30),
            live_accounts: live,
            now,
        },
    );
    if !args.dry_run {
        report_delete(home, arg, &result);
    }
    let report = match result {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", mv_backup::retention::format_text(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// Reports a delete run like the server does (log/reports/, email).
fn report_delete(home: &Home, arg: &str, result: &Result<mv_backup::DeleteReport, BackupError>) {
    use mv_server::report::{Note, ReportConfig, delete_report, record};
    let server = mv_directory::config::local_server_name();
    let cfg = match mv_directory::Directory::open_home(home)
        .map_err(mv_server::ServiceError::from)
        .and_then(|d| ReportConfig::load(&d, &server))
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("cannot report the delete: {e}");
            return;
        }
    };
    let error = result.as_ref().err().map(|e| e.to_string());
    let outcome = match (result, &error) {
        (Ok(r), _) => Ok(r),
        (Err(_), Some(e)) => Err(e.as_str()),
        (Err(_), None) => Err("delete failed"),
    };
    record(
        home,
        &cfg,
        delete_report(&cfg, &Note::default(), arg, outcome),
    );
}

fn verify(home: &Home, v: VerifyArgs) -> anyhow::Result<ExitCode> {
    let subset = match &v.subset {
        None => None,
        Some(s) => match s.trim().trim_end_matches('%').parse::<f64>() {
            Ok(p) => Some(p),
            Err(_) => {
                return usage(format!(
                    "--read-data-subset {s:?}: expected a percentage such as 10%"
                ));
            }
        },
    };
    let req = VerifyRequest {
        target: None,
        label: v.label.clone(),
        read_data: v.read_data,
        read_data_subset: subset,
    };
    let opts = match mv_server::backup::verify_options(&req) {
        Ok(o) => o,
        Err(e) => return usage(e),
    };
    let target = open_target(home, v.target.as_deref())?;
    let report = match mv_backup::verify(target.as_ref(), &opts) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if v.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", mv_backup::verify::format_text(&report));
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn query(home: &Home, q: QueryArgs) -> anyhow::Result<ExitCode> {
    let _ = &q.server;
    if q.debug {
        crate::zimbra::note_ignored("-d/--debug", crate::zimbra::DEBUG_NOTE);
    }
    let req = QueryRequest {
        target: None,
        label: q.label.clone(),
        accounts: q.accounts.clone(),
        kind: q.kind.clone(),
        from: q.from.clone(),
        to: q.to.clone(),
        verbose: q.verbose,
    };
    let mut opts = match mv_server::backup::query_options(&req) {
        Ok(o) => o,
        Err(e) => return usage(e),
    };
    // A current address the target may know only under an older one: the
    // directory gives its zimbraId (the target is read without the home otherwise).
    if home.directory_db_path().exists()
        && let Ok(dir) = mv_directory::Directory::open_home(home)
    {
        for name in q.accounts.iter().filter(|a| !a.eq_ignore_ascii_case("all")) {
            if let Ok(Some(a)) = dir.find_account(name) {
                opts.resolved.push((name.clone(), a.id));
            }
        }
    }
    let target = open_target(home, q.target.as_deref())?;
    let result = match mv_backup::query(target.as_ref(), &opts) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if q.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        let text = mv_backup::query::format_text(&result, q.verbose);
        if text.is_empty() {
            eprintln!("No backups found in {}", result.target);
        }
        print!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn abort(home: &Home, a: AbortArgs) -> anyhow::Result<ExitCode> {
    let _ = &a.server;
    if a.debug {
        crate::zimbra::note_ignored("-d/--debug", crate::zimbra::DEBUG_NOTE);
    }
    if a.restore {
        let target = open_target(home, a.target.as_deref()).context("opening the backup target")?;
        return match mv_backup::request_restore_abort(target.as_ref()) {
            Ok(holder) => {
                println!(
                    "Abort requested for the restore in progress ({holder}); it stops after \
                     the account it is restoring."
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => fail(e),
        };
    }
    let Some(label) = a.label else {
        return usage("-lb LABEL is required (the label zmbackup printed)");
    };
    if label.parse::<Label>().is_err() {
        return usage(format!("invalid label {label:?}"));
    }
    let target = open_target(home, a.target.as_deref()).context("opening the backup target")?;
    match mv_backup::request_abort(target.as_ref(), &label) {
        Ok(()) => {
            println!("Abort requested for {label}; it stops at the next account or pack.");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => fail(e),
    }
}

/// Progress on stderr: a bar on a terminal, a line per account otherwise.
/// Counts are per session: an incremental run that first gives new accounts a
/// full shows `account 3/3` twice (once per session, each labelled), never the
/// sum of both sessions.
struct Bar {
    bar: Option<indicatif::ProgressBar>,
    plain: bool,
    /// The session being written (its label; empty before the first).
    session: std::sync::Mutex<String>,
    total: AtomicU64,
    done: AtomicU64,
    bytes: AtomicU64,
    start: Instant,
    /// Milliseconds after `start` of the last rate message: formatting it for
    /// every account or copy cost a few percent of a run of many small accounts,
    /// more often than the bar redraws.
    last_message: AtomicU64,
}

impl Bar {
    fn new(show: bool) -> Bar {
        let tty = show && std::io::stderr().is_terminal();
        let bar = tty.then(|| {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {prefix} {bar:30} {pos}/{len} accounts  {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Bar {
            bar,
            plain: show && !tty,
            session: std::sync::Mutex::new(String::new()),
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            start: Instant::now(),
            last_message: AtomicU64::new(0),
        }
    }

    fn rate(&self) -> String {
        let bytes = self.bytes.load(Ordering::Relaxed);
        let secs = self.start.elapsed().as_secs_f64().max(0.001);
        format!(
            "{} copied, {}/s",
            mv_backup::space::human_bytes(bytes),
            mv_backup::space::human_bytes((bytes as f64 / secs) as u64)
        )
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }

    /// Sets the bar's rate message at most once per redraw interval (200 ms,
    /// the steady tick's).
    fn refresh_message(&self, b: &indicatif::ProgressBar) {
        let now = self.start.elapsed().as_millis() as u64;
        let last = self.last_message.load(Ordering::Relaxed);
        if now.saturating_sub(last) < 200 && last != 0 {
            return;
        }
        if self
            .last_message
            .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            b.set_message(self.rate());
        }
    }

    /// A session starts: its own account count from here on.
    fn begin_session(&self, label: &str, accounts: u64) {
        *self.session.lock().unwrap_or_else(|p| p.into_inner()) = label.to_string();
        self.total.store(accounts, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            b.set_length(accounts);
            b.set_position(0);
            b.set_prefix(label.to_string());
        } else if self.plain {
            eprintln!(
                "{label}: {accounts} account{}",
                if accounts == 1 { "" } else { "s" }
            );
        }
    }
}

impl Progress for Bar {
    fn session_started(&self, label: &Label, accounts: u64) {
        self.begin_session(&label.to_string(), accounts);
    }
    fn account_done(&self, email: &str, ok: bool) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(b) = &self.bar {
            b.set_position(done);
            self.refresh_message(b);
        } else if self.plain {
            let total = self.total.load(Ordering::Relaxed);
            let who = if email.is_empty() {
                String::new()
            } else {
                format!(" {email}")
            };
            let session = self.session.lock().unwrap_or_else(|p| p.into_inner());
            eprintln!(
                "{session}: account {done}/{total}{who}: {} ({})",
                if ok { "done" } else { "FAILED" },
                self.rate()
            );
        }
    }
    fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        if let Some(b) = &self.bar {
            self.refresh_message(b);
        }
    }
}
