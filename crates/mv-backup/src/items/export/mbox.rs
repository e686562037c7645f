//! mbox output, mboxrd flavour: each message after a `From SENDER DATE` line
//! (the address of its From header, else `MAILER-DAEMON`; its arrival time in
//! UTC, asctime style), every line of it that starts with `From ` behind any
//! number of `>` given one more `>` (so a reader that removes one gets the
//! message back byte for byte), and an empty line after it. A message that does
//! not end with a line break gets one: mbox cannot keep that difference.

use super::{Exported, Item, Result};
use crate::error::BackupError;
use std::io::Write;

pub(super) fn write(
    list: &[Exported<'_>],
    read: &mut dyn FnMut(&Item) -> Result<Vec<u8>>,
    out: &mut dyn Write,
) -> Result<()> {
    let err = |e| BackupError::io("writing the mbox")(e);
    for e in list {
        let raw = read(e.item)?;
        out.write_all(&separator(e.item)).map_err(err)?;
        out.write_all(&quote(&raw)).map_err(err)?;
        if !raw.ends_with(b"\n") {
            out.write_all(b"\n").map_err(err)?;
        }
        out.write_all(b"\n").map_err(err)?;
    }
    out.flush().map_err(err)
}

/// The `From ` line before a message.
fn separator(item: &Item) -> Vec<u8> {
    let when = chrono::DateTime::from_timestamp_millis(item.received_ms).unwrap_or_default();
    format!(
        "From {} {}\n",
        sender(&item.sender),
        when.format("%a %b %e %H:%M:%S %Y")
    )
    .into_bytes()
}

/// The bare address of a From header (`Name <a@b>` or `a@b`), without spaces
/// or control characters so that the separator line stays one token.
fn sender(from: &str) -> String {
    let addr = match (from.rfind('<'), from.rfind('>')) {
        (Some(a), Some(b)) if a < b => &from[a + 1..b],
        _ => from.trim(),
    };
    if addr.is_empty() || addr.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "MAILER-DAEMON".to_string()
    } else {
        addr.to_string()
    }
}

/// mboxrd quoting: `>` added before every line matching `^>*From `.
pub(super) fn quote(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 16);
    for line in raw.split_inclusive(|b| *b == b'\n') {
        let rest = &line[line.iter().take_while(|b| **b == b'>').count()..];
        if rest.starts_with(b"From ") {
            out.push(b'>');
        }
        out.extend_from_slice(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_lines_at_any_depth_gain_one_marker() {
        let raw =
            b"Subject: x\r\n\r\nFrom here\r\n>From there\r\n>>From far\r\nFrom\r\n From x\r\n";
        assert_eq!(
            quote(raw),
            b"Subject: x\r\n\r\n>From here\r\n>>From there\r\n>>>From far\r\nFrom\r\n From x\r\n"
                .to_vec()
        );
    }

    #[test]
    fn the_separator_names_the_bare_address_or_the_mailer_daemon() {
        assert_eq!(sender("Sender <s@y.test>"), "s@y.test");
        assert_eq!(sender("s@y.test"), "s@y.test");
        assert_eq!(sender(""), "MAILER-DAEMON");
        assert_eq!(sender("Some Name"), "MAILER-DAEMON");
    }
}
