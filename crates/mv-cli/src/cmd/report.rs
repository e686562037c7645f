//! `backup report`: the reports of the latest backup and delete runs (and disk
//! alerts), as emailed, with the state of the email outbox.

use crate::client::Client;
use mv_home::Home;
use mv_server::response::Reports;
use std::process::ExitCode;

/// Show the latest backup/delete reports and undelivered report emails.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// How many reports, newest first.
    #[arg(short = 'n', long = "last", default_value_t = 1)]
    last: usize,
    #[arg(long)]
    json: bool,
}

pub fn run(home: &Home, args: Args) -> anyhow::Result<ExitCode> {
    let client = Client::connect(home)?;
    let v: Reports = client.call(mv_server::Request::BackupReports {
        limit: Some(args.last),
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let reports = &v.reports;
    if reports.is_empty() {
        println!("No reports yet (one is written after every backup and delete run).");
    }
    for (i, r) in reports.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("Subject: {}", r.subject);
        println!("Report:  log/reports/{}.json", r.id);
        println!("Email:   {}\n", r.email);
        print!("{}", r.body);
    }
    let (pending, failed) = (&v.outbox.pending, &v.outbox.failed);
    if !pending.is_empty() || !failed.is_empty() {
        println!(
            "\nOutbox: {} waiting, {} given up (log/outbox/)",
            pending.len(),
            failed.len()
        );
        for q in pending.iter().chain(failed) {
            if let Some(e) = &q.last_error {
                println!("  {} (tries: {}): {e}", q.subject, q.attempts);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
