//! Contacts and calendars on zmmailbox's side: where an export goes and what an
//! import reports.

use super::transfer::PimExport;
use crate::cmd::zmshell::{Res, line, op_err};
use mv_server::stream::ImportResult;
use std::path::Path;

/// An ics/vcf export's text to `-o FILE` or stdout.
pub(super) fn write_export(v: &PimExport, output: Option<&Path>, out: &mut Vec<u8>) -> Res<()> {
    let text = v.text();
    match output {
        Some(file) => std::fs::write(file, text)
            .map_err(|e| op_err(format!("writing {}: {e}", file.display())))?,
        None => out.extend_from_slice(text.as_bytes()),
    }
    Ok(())
}

/// What an ics or vcf import did.
pub(super) fn print_import(out: &mut Vec<u8>, v: &ImportResult) -> Res<()> {
    match v {
        ImportResult::Calendar {
            created,
            replaced,
            kept_existing,
        } => print_calendar_import(out, created, replaced, kept_existing),
        ImportResult::Contacts { created } => {
            line(out, format!("created: {}", join(created)));
        }
        ImportResult::Archive(_) => {
            return Err(op_err(
                "a calendar or contacts import answered as an archive's",
            ));
        }
    }
    Ok(())
}

fn join(v: &[impl ToString]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// What a calendar import did: new appointments, the older versions they replaced,
/// and events kept because the stored version is newer.
fn print_calendar_import(out: &mut Vec<u8>, created: &[u32], replaced: &[u32], kept: &[String]) {
    let (n_created, n_replaced, n_kept) = (created.len(), replaced.len(), kept.len());
    line(
        out,
        format!(
            "imported {n_created} appointment(s): {} new, {n_replaced} replacing an older version; {n_kept} kept (the stored version is newer)",
            n_created - n_replaced.min(n_created)
        ),
    );
    if n_created > 0 {
        line(out, format!("created: {}", join(created)));
    }
    if n_replaced > 0 {
        line(out, format!("replaced: {}", join(replaced)));
    }
    if n_kept > 0 {
        line(out, format!("kept: {}", join(kept)));
    }
}
