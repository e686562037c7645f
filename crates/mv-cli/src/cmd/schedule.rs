//! `schedule` (`zmschedulebackup`): show or change the backup schedule that
//! `mailvault serve` runs. The schedule is the server's zimbraBackupSchedule.

use crate::client::Client;
use mv_home::Home;
use mv_server::schedule::{self, ScheduleAnswer, ScheduleRequest};
use std::process::ExitCode;

/// Show or change the backup schedule (zmschedulebackup).
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Entries: f \"CRON\" (full), i \"CRON\" (incremental), d 1m \"CRON\" (delete \
backups older than 1 month; also Nd, Ny, a label or a date). CRON has 5 fields, or 6 with seconds \
first, in local time. Options after the expression go to the backup: f \"0 1 * * 6 -a all -z\".\n\
Standard default: f 0 1 * * 6 -a all, i 0 1 * * 0-5, d 1m 0 0 * * *. Auto-Grouped default: \
f 0 1 * * 0-6, d 1m 0 0 * * *."
)]
pub struct Args {
    /// Show the schedule (the default).
    #[arg(short = 'q', long = "query", group = "action")]
    query: bool,
    /// Print the schedule as a command line that sets it again.
    #[arg(short = 's', long = "save", group = "action")]
    save: bool,
    /// Append the entries to the schedule.
    #[arg(short = 'A', long = "append", group = "action")]
    append: bool,
    /// Replace the schedule with the entries.
    #[arg(short = 'R', long = "replace", group = "action")]
    replace: bool,
    /// Remove every entry.
    #[arg(short = 'F', long = "flush", group = "action")]
    flush: bool,
    /// Set the default schedule of the backup mode (zimbraBackupMode).
    #[arg(short = 'D', long = "default", group = "action")]
    default: bool,
    /// Print equivalent crontab lines (the server needs none: it runs the schedule).
    #[arg(long = "crontab", group = "action")]
    crontab: bool,
    /// Compress blobs (deflate) in scheduled backups.
    #[arg(short = 'z', long = "zip", group = "compression")]
    zip: bool,
    /// Store blobs uncompressed in scheduled backups.
    #[arg(long = "zipStore", group = "compression")]
    zip_store: bool,
    /// Accounts of scheduled full backups (repeat -a for several; default all).
    #[arg(short = 'a', long = "account", value_name = "ADDR")]
    accounts: Vec<String>,
    /// Backup target of the scheduled runs.
    #[arg(short = 't', long = "target", value_name = "DIR", value_parser = super::backup::target_arg)]
    target: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
    /// f "CRON" | i "CRON" | d PERIOD "CRON", repeated.
    #[arg(value_name = "ENTRY")]
    entries: Vec<String>,
}

fn usage(msg: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    eprintln!("error: {msg}");
    Ok(ExitCode::from(2))
}

pub fn run(home: &Home, args: Args) -> anyhow::Result<ExitCode> {
    let action = if args.replace {
        "replace"
    } else if args.append {
        "append"
    } else if args.flush {
        "flush"
    } else if args.default {
        "default"
    } else {
        "query"
    };
    if !(args.entries.is_empty() || args.replace || args.append) {
        return usage("schedule entries go with -R (replace) or -A (append)");
    }
    if args.replace || args.append {
        match schedule::parse_args(&args.entries) {
            Err(e) => return usage(e),
            Ok(e) if e.is_empty() => {
                return usage(format!(
                    "-{} needs schedule entries, e.g. f \"0 1 * * 6\" i \"0 1 * * 0-5\" d 1m \"0 0 * * *\"",
                    if args.replace { "R" } else { "A" }
                ));
            }
            Ok(_) => {}
        }
    }
    let mut options = Vec::new();
    if args.zip {
        options.push("-z".to_string());
    }
    if args.zip_store {
        options.push("--zipStore".to_string());
    }
    if !args.accounts.is_empty() {
        options.push("-a".to_string());
        options.extend(args.accounts.iter().cloned());
    }
    if let Some(t) = &args.target {
        options.extend(["-t".to_string(), t.clone()]);
    }
    let client = Client::connect(home)?;
    let result: ScheduleAnswer = client.call(mv_server::Request::Schedule(ScheduleRequest {
        action: action.into(),
        entries: args.entries.clone(),
        options,
    }))?;
    let lines = &result.entries;
    for i in &result.invalid {
        eprintln!("warning: invalid schedule entry skipped by the server: {i}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else if args.save {
        print!("{}", schedule::format_save(lines));
    } else if args.crontab {
        let bin = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "mailvault".into());
        print!(
            "{}",
            schedule::format_crontab(lines, &bin, &home.root().display().to_string())
        );
    } else {
        if let Some(m) = &result.message {
            println!("{m}\n");
        }
        print!("{}", schedule::format_query(lines));
    }
    Ok(ExitCode::SUCCESS)
}
