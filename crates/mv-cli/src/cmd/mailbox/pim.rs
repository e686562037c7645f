//! Contacts and calendars on zmmailbox's side: where an export goes and what an
//! import reports.

use crate::cmd::zmshell::{Res, line, op_err, scalar};
use serde_json::Value;
use std::path::Path;

/// An ics/vcf export's text (under the format's key in the answer) to `-o FILE` or stdout.
pub(super) fn write_export(
    v: &Value,
    format: &str,
    output: Option<&Path>,
    out: &mut Vec<u8>,
) -> Res<()> {
    let text = scalar(&v[format]);
    match output {
        Some(file) => std::fs::write(file, text)
            .map_err(|e| op_err(format!("writing {}: {e}", file.display())))?,
        None => out.extend_from_slice(text.as_bytes()),
    }
    Ok(())
}

/// What an ics or vcf import did.
pub(super) fn print_import(out: &mut Vec<u8>, format: &str, v: &Value) {
    if format == "ics" {
        print_calendar_import(out, v);
    } else {
        line(out, format!("created: {}", join_values(&v["created"])));
    }
}

fn join_values(v: &Value) -> String {
    v.as_array()
        .into_iter()
        .flatten()
        .map(scalar)
        .collect::<Vec<_>>()
        .join(",")
}

/// What a calendar import did: new appointments, the older versions they replaced,
/// and events kept because the stored version is newer.
fn print_calendar_import(out: &mut Vec<u8>, v: &Value) {
    let count = |k: &str| v[k].as_array().map_or(0, Vec::len);
    let (created, replaced, kept) = (count("created"), count("replaced"), count("kept_existing"));
    line(
        out,
        format!(
            "imported {created} appointment(s): {} new, {replaced} replacing an older version; {kept} kept (the stored version is newer)",
            created - replaced.min(created)
        ),
    );
    if created > 0 {
        line(out, format!("created: {}", join_values(&v["created"])));
    }
    if replaced > 0 {
        line(out, format!("replaced: {}", join_values(&v["replaced"])));
    }
    if kept > 0 {
        line(out, format!("kept: {}", join_values(&v["kept_existing"])));
    }
}
