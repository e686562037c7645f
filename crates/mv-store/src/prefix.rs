//! A message's prefix: header lines of one recipient's own (a delivery's trace
//! headers) stored in the mailbox database before the shared blob. The stored
//! message is the prefix followed by the blob.

use crate::StoreError;

/// The largest per-recipient prefix [`crate::Store::deliver_with_prefixes`] stores:
/// trace headers take a few hundred bytes.
pub const MAX_PREFIX: usize = 16 * 1024;

/// A prefix is empty or whole header lines: each ends in CRLF, none is empty
/// (that would end the header section), no NUL and no bare CR or LF.
pub(crate) fn check(prefix: &[u8]) -> Result<(), StoreError> {
    if prefix.is_empty() {
        return Ok(());
    }
    let bad = |why: &str| {
        Err(StoreError::Invalid(format!(
            "message prefix of {} bytes refused: {why}",
            prefix.len()
        )))
    };
    if prefix.len() > MAX_PREFIX {
        return bad(&format!("over {MAX_PREFIX} bytes"));
    }
    if !prefix.ends_with(b"\r\n") {
        return bad("it does not end in CRLF");
    }
    if prefix.contains(&0) {
        return bad("it holds a NUL");
    }
    if prefix.starts_with(b" ") || prefix.starts_with(b"\t") {
        return bad("it starts with a continuation line");
    }
    let lines: Vec<&[u8]> = prefix[..prefix.len() - 2].split(|&b| b == b'\n').collect();
    for (i, line) in lines.iter().enumerate() {
        // Every line but the last had its CRLF split at the LF.
        let text = if i + 1 < lines.len() {
            match line.strip_suffix(b"\r") {
                Some(t) => t,
                None => return bad("it holds a bare LF"),
            }
        } else {
            line
        };
        if text.is_empty() {
            return bad("it holds an empty line");
        }
        if text.contains(&b'\r') {
            return bad("it holds a bare CR");
        }
    }
    Ok(())
}

/// `prefix` followed by `body`, without a copy when there is no prefix.
pub(crate) fn join(prefix: &[u8], body: Vec<u8>) -> Vec<u8> {
    if prefix.is_empty() {
        return body;
    }
    let mut out = Vec::with_capacity(prefix.len() + body.len());
    out.extend_from_slice(prefix);
    out.extend_from_slice(&body);
    out
}
