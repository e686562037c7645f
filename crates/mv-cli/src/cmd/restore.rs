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
