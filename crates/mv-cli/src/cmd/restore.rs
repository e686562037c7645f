//! `playredo` (`zmplayredo`): replays redo logs into the store of a stopped server.
//! The tool takes the home's lock, so it refuses while a server (or another offline
//! tool) owns the home, naming its pid.

use mv_home::{Home, HomeLock};
use mv_types::UtcMillis;
use std::path::PathBuf;
use std::process::ExitCode;

/// Replay redo logs into the store (zmplayredo; the server must be stopped).
#[derive(clap::Args, Debug)]
pub struct PlayRedoArgs {
    /// First redo log sequence to replay.
    #[arg(long = "fromSeq", value_name = "N")]
    from_seq: Option<u64>,
    /// Last redo log sequence to replay.
    #[arg(long = "toSeq", value_name = "N")]
    to_seq: Option<u64>,
    /// Replay ops from this time on (local time, any of the nine formats).
    #[arg(long = "fromTime", value_name = "TIME")]
    from_time: Option<String>,
    /// Replay ops up to this time (local time).
    #[arg(long = "toTime", value_name = "TIME")]
    to_time: Option<String>,
    /// Only these mailbox ids (comma-separated).
    #[arg(long = "mailboxId", value_delimiter = ',', value_name = "IDS")]
    mailbox_id: Option<Vec<u32>>,
    /// Redo log files or directories (default: the archive, then redo.log).
    #[arg(long = "logfiles", num_args = 1.., value_name = "FILE")]
    logfiles: Vec<PathBuf>,
    /// Replay threads (mailboxes in parallel, each mailbox serially).
    #[arg(long = "threads", default_value_t = 50)]
    threads: usize,
    /// Batches queued per thread.
    #[arg(long = "queueCapacity", default_value_t = 100)]
    queue_capacity: usize,
    /// Stop at the first error (default: report errors and go on).
    #[arg(long = "stopOnError")]
    stop_on_error: bool,
    /// Print the report as JSON.
    #[arg(long = "json")]
    json: bool,
}

fn time(arg: &Option<String>, name: &str) -> anyhow::Result<Option<UtcMillis>> {
    arg.as_deref()
        .map(|s| UtcMillis::parse_local(s).map_err(|e| anyhow::anyhow!("{name} {s}: {e}")))
        .transpose()
}

pub fn playredo(home: &Home, args: PlayRedoArgs) -> anyhow::Result<ExitCode> {
    let (from_time, to_time) = match (
        time(&args.from_time, "--fromTime"),
        time(&args.to_time, "--toTime"),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let _lock = match HomeLock::acquire(home.root()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: zmplayredo needs the server stopped: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let (store, _) = mv_store::Store::open(home, mv_store::StoreOptions::for_home(home))?;
    let opts = mv_backup::PlayRedoOptions {
        from_seq: args.from_seq,
        to_seq: args.to_seq,
        from_time,
        to_time,
        mailboxes: args.mailbox_id,
        logfiles: args.logfiles,
        threads: args.threads,
        queue_capacity: args.queue_capacity,
        stop_on_error: args.stop_on_error,
    };
    let report = match mv_backup::playredo(&store, &opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "Replayed {} files: {} records read, {} applied, {} already applied, {} filtered out, {} mailboxes",
            report.files.len(),
            report.records_read,
            report.applied,
            report.skipped_already_applied,
            report.skipped_filtered,
            report.mailboxes.len()
        );
        for e in &report.errors {
            eprintln!("error: {e}");
        }
    }
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Restore accounts from backups (zmrestore).
#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// Accounts (addresses) or `all`.
    #[arg(short = 'a', long = "account", num_args = 1.., value_name = "ADDR")]
    accounts: Vec<String>,
    /// The full backup to start from (default: the newest before the restore point).
    #[arg(long = "lb", value_name = "LABEL")]
    label: Option<String>,
    /// Restore the full backup only (no redo replay).
    #[arg(long = "rf")]
    full_only: bool,
    /// Replay only the redo logs held in the backup target (not the server's
    /// archive and current redo.log).
    #[arg(long = "br")]
    backup_redo_only: bool,
    /// Restore to this time (local time; repeatable: the earliest point wins).
    #[arg(long = "restoreToTime", value_name = "TIME")]
    to_time: Vec<String>,
    /// Restore to the end of this incremental backup (repeatable).
    #[arg(long = "restoreToIncrLabel", value_name = "LABEL")]
    to_incr_label: Vec<String>,
    /// Restore up to and including this redo log sequence (repeatable).
    #[arg(long = "restoreToRedoSeq", value_name = "SEQ")]
    to_redo_seq: Vec<u64>,
    /// Go on past a gap or a damaged redo log; what was skipped is reported.
    #[arg(long = "ignoreRedoErrors")]
    ignore_redo_errors: bool,
    /// Leave out delete operations while replaying.
    #[arg(long = "skipDeletes")]
    skip_deletes: bool,
    /// With `-a all`: leave out accounts no longer in the directory.
    #[arg(long = "skipDeletedAccounts")]
    skip_deleted_accounts: bool,
    /// Restore into a new account (needs -pre).
    #[arg(long = "ca")]
    create_account: bool,
    /// The new account's prefix (-ca): PREFIX+name.
    #[arg(long = "pre", value_name = "PREFIX")]
    prefix: Option<String>,
    /// Recreate the account's directory entry.
    #[arg(long = "ra")]
    restore_account: bool,
    /// Continue past a failed account (the failures are listed at the end).
    #[arg(short = 'c', long = "continue")]
    continue_on_error: bool,
    /// Restore the system tables.
    #[arg(long = "sys")]
    sys: bool,
    /// Do not restore the search index (accepted: it is rebuilt from the messages).
    #[arg(long = "excludeSearchIndex")]
    exclude_search_index: bool,
    /// Do not restore blobs (accepted; blobs are restored anyway).
    #[arg(long = "excludeBlobs")]
    exclude_blobs: bool,
    /// Backup target: a directory or s3://BUCKET/PREFIX (default: zimbraBackupTarget, else <home>/backup).
    #[arg(short = 't', long = "target", value_name = "TARGET")]
    target: Option<String>,
    /// Server (accepted for compatibility: this server).
    #[arg(short = 's', long = "server", value_name = "HOST")]
    server: Option<String>,
    /// Machine-readable output.
    #[arg(long = "json")]
    json: bool,
}

pub fn restore(home: &Home, args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let _ = (&args.server, args.exclude_search_index);
    if args.sys {
        eprintln!("note: -sys (restoring the system tables) is not implemented yet; ignored");
        if args.accounts.is_empty() {
            return Ok(ExitCode::from(1));
        }
    }
    if args.exclude_blobs {
        eprintln!("note: --excludeBlobs is accepted, but blobs are restored anyway");
    }
    let req = mv_server::restore::RestoreRequest {
        accounts: args.accounts.clone(),
        target: args.target.clone(),
        label: args.label.clone(),
        full_only: args.full_only,
        backup_redo_only: args.backup_redo_only,
        to_time: args.to_time.clone(),
        to_incr_label: args.to_incr_label.clone(),
        to_redo_seq: args.to_redo_seq.clone(),
        ignore_redo_errors: args.ignore_redo_errors,
        skip_deletes: args.skip_deletes,
        skip_deleted_accounts: args.skip_deleted_accounts,
        create_account: args.create_account,
        prefix: args.prefix.clone(),
        restore_account: args.restore_account,
        continue_on_error: args.continue_on_error,
    };
    if let Err(e) = mv_server::restore::options(&req) {
        eprintln!("error: {e}");
        return Ok(ExitCode::from(2));
    }
    if let Some(t) = &args.target
        && let Err(e) = mv_backup::target::open_existing(t, home)
    {
        eprintln!("error: {e}");
        return Ok(ExitCode::from(1));
    }
    let client = crate::client::Client::connect(home)?;
    let report: serde_json::Value = match client.local_service() {
        Some(service) => match service.restore(&req) {
            Ok(r) => serde_json::to_value(&r)?,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(1));
            }
        },
        None => match client.execute(mv_server::Request::Restore(req)) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: {e:#}");
                return Ok(ExitCode::from(1));
            }
        },
    };
    let failures = report["failures"].as_array().cloned().unwrap_or_default();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for a in report["accounts"].as_array().into_iter().flatten() {
            let s = |k: &str| a[k].as_str().unwrap_or("").to_string();
            for n in a["notes"].as_array().into_iter().flatten() {
                println!("{}: {}", s("email"), n.as_str().unwrap_or(""));
            }
            println!(
                "{}: restored as {} (mailbox {}) from {}: {} redo files, {} ops replayed{}",
                s("email"),
                s("restored_as"),
                a["mailbox_id"],
                s("full_label"),
                a["redo_files"],
                a["applied"],
                match a["skipped_deletes"].as_u64() {
                    Some(n) if n > 0 => format!(", {n} delete ops skipped"),
                    _ => String::new(),
                }
            );
            for k in a["skipped"].as_array().into_iter().flatten() {
                eprintln!(
                    "warning: {}: skipped: {}",
                    s("email"),
                    k.as_str().unwrap_or("")
                );
            }
        }
        if !failures.is_empty() {
            eprintln!("Failed accounts:");
            for f in &failures {
                eprintln!(
                    "error: {}: {}",
                    f["email"].as_str().unwrap_or(""),
                    f["error"].as_str().unwrap_or("")
                );
            }
        }
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
