//! `disk` (`zmdisklog`): usage of the filesystems holding the home and the backup
//! target, against the alert thresholds, with the daily history and its trend.

use crate::client::Client;
use mv_backup::space::human_bytes;
use mv_home::Home;
use mv_server::diskmon::{DiskStatus, Level};
use std::process::ExitCode;

/// Show disk usage, alert thresholds and the usage trend (zmdisklog).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Days of history to show.
    #[arg(long, default_value_t = 14)]
    days: usize,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

pub fn run(home: &Home, args: Args) -> anyhow::Result<ExitCode> {
    let client = Client::connect(home)?;
    let v: DiskStatus = client.call(mv_server::Request::DiskStatus)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let t = &v.thresholds;
    println!(
        "{:<28} {:<16} {:>9} {:>9} {:>9} {:>4}  {:<8} Holds",
        "Filesystem", "Device", "Size", "Used", "Avail", "Use%", "Level"
    );
    for f in &v.filesystems {
        println!(
            "{:<28} {:<16} {:>9} {:>9} {:>9} {:>3}%  {:<8} {}",
            f.mount,
            f.device,
            human_bytes(f.total_bytes),
            human_bytes(f.used_bytes),
            human_bytes(f.available_bytes),
            f.use_percent,
            if f.excluded {
                "excluded"
            } else {
                level_name(f.level)
            },
            f.holds.join(", ")
        );
    }
    println!(
        "\nThresholds: warning {}%, critical {}% (zmdisklog_warn_threshold, zmdisklog_critical_threshold); checked every {} s",
        t.warn, t.critical, t.interval_secs
    );
    let history = &v.history;
    if history.is_empty() {
        println!("\nNo daily usage recorded yet (the server records it in log/df.csv).");
        return Ok(ExitCode::SUCCESS);
    }
    println!("\nTrend (log/df.csv):");
    for tr in &v.trends {
        let rate = tr.bytes_per_day;
        let sign = if rate < 0 { "-" } else { "+" };
        let full = match tr.days_until_full {
            Some(d) => format!(", full in about {d} days"),
            None => String::new(),
        };
        println!(
            "  {}: {sign}{}/day over {} days{full}",
            tr.mount,
            human_bytes(rate.unsigned_abs()),
            tr.days,
        );
    }
    println!("\nHistory:");
    let start = history.len().saturating_sub(args.days * 4);
    for r in &history[start..] {
        println!(
            "  {}  {:<28} {:>3}%  {} used",
            r.date,
            r.mount,
            r.use_percent,
            human_bytes(r.used_bytes)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A level as the table prints it (its name on the wire).
fn level_name(l: Level) -> &'static str {
    match l {
        Level::Ok => "ok",
        Level::Warning => "warning",
        Level::Critical => "critical",
    }
}
