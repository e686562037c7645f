//! `disk` (`zmdisklog`): usage of the filesystems holding the home and the backup
//! target, against the alert thresholds, with the daily history and its trend.

use crate::client::Client;
use mv_backup::space::human_bytes;
use mv_home::Home;
use serde_json::Value;
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
    let v = client.execute(mv_server::Request::DiskStatus)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let t = &v["thresholds"];
    let u = |x: &Value| x.as_u64().unwrap_or(0);
    println!(
        "{:<28} {:<16} {:>9} {:>9} {:>9} {:>4}  {:<8} Holds",
        "Filesystem", "Device", "Size", "Used", "Avail", "Use%", "Level"
    );
    for f in v["filesystems"].as_array().into_iter().flatten() {
        let holds: Vec<&str> = f["holds"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        println!(
            "{:<28} {:<16} {:>9} {:>9} {:>9} {:>3}%  {:<8} {}",
            f["mount"].as_str().unwrap_or(""),
            f["device"].as_str().unwrap_or(""),
            human_bytes(u(&f["total_bytes"])),
            human_bytes(u(&f["used_bytes"])),
            human_bytes(u(&f["available_bytes"])),
            u(&f["use_percent"]),
            if f["excluded"].as_bool() == Some(true) {
                "excluded"
            } else {
                f["level"].as_str().unwrap_or("")
            },
            holds.join(", ")
        );
    }
    println!(
        "\nThresholds: warning {}%, critical {}% (zmdisklog_warn_threshold, zmdisklog_critical_threshold); checked every {} s",
        u(&t["warn"]),
        u(&t["critical"]),
        u(&t["interval_secs"])
    );
    let history = v["history"].as_array().cloned().unwrap_or_default();
    if history.is_empty() {
        println!("\nNo daily usage recorded yet (the server records it in log/df.csv).");
        return Ok(ExitCode::SUCCESS);
    }
    println!("\nTrend (log/df.csv):");
    for tr in v["trends"].as_array().into_iter().flatten() {
        let rate = tr["bytes_per_day"].as_i64().unwrap_or(0);
        let sign = if rate < 0 { "-" } else { "+" };
        let full = match tr["days_until_full"].as_u64() {
            Some(d) => format!(", full in about {d} days"),
            None => String::new(),
        };
        println!(
            "  {}: {sign}{}/day over {} days{full}",
            tr["mount"].as_str().unwrap_or(""),
            human_bytes(rate.unsigned_abs()),
            u(&tr["days"]),
        );
    }
    println!("\nHistory:");
    let start = history.len().saturating_sub(args.days * 4);
    for r in &history[start..] {
        println!(
            "  {}  {:<28} {:>3}%  {} used",
            r["date"].as_str().unwrap_or(""),
            r["mount"].as_str().unwrap_or(""),
            u(&r["use_percent"]),
            human_bytes(u(&r["used_bytes"]))
        );
    }
    Ok(ExitCode::SUCCESS)
}
