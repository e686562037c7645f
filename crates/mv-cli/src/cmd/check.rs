//! `check`: the health checklist (see mv_server::check). Exit 0 when every item
//! is OK, 1 otherwise.

use crate::client::Client;
use mv_home::Home;
use mv_server::check::CheckReport;
use std::process::ExitCode;

/// Check the server's health: server, redo log, backups against the schedule,
/// target, space, last runs, report email, disks. Exit 1 if any check fails.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

pub fn run(home: &Home, args: Args) -> anyhow::Result<ExitCode> {
    let client = Client::connect(home)?;
    let report: CheckReport = client.call(mv_server::Request::Check)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", mv_server::check::format_text(&report));
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
