//! The DATA body: dot-unstuffing, line-end normalisation and the limits.
//!
//! Stored form: every line as received, minus one leading dot if it had one
//! (RFC 5321 §4.5.2), ending in CRLF, whether it arrived with CRLF or a bare
//! LF. Storing canonical CRLF means IMAP can serve the bytes as they are.
//!
//! On a violated limit the body is dropped at once and the rest of the input
//! is read and discarded up to the terminating dot, so the connection stays in
//! step and a later transaction works; the failure is reported per recipient.

use crate::line::Line;
use crate::reply::Reply;

/// Why a received message is refused (after its terminating dot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataFailure {
    TooBig,
    LineTooLong,
    /// NUL is not allowed even in 8BITMIME (RFC 6152) and breaks IMAP
    /// literals; refused permanently rather than silently altered.
    Nul,
}

impl DataFailure {
    pub(crate) fn reply(self, address: &str) -> Reply {
        match self {
            DataFailure::TooBig => {
                Reply::status(552, "5.3.4", format_args!("<{address}> message too big"))
            }
            DataFailure::LineTooLong => Reply::status(
                552,
                "5.3.4",
                format_args!("<{address}> message line too long"),
            ),
            DataFailure::Nul => Reply::status(
                554,
                "5.6.0",
                format_args!("<{address}> message contains NUL characters"),
            ),
        }
    }
}

/// A message being received.
#[derive(Debug)]
pub(crate) struct DataBody {
    message: Vec<u8>,
    max_size: u64,
    failure: Option<DataFailure>,
}

/// Never pre-allocate more than this on a client's SIZE word alone.
const MAX_PREALLOC: u64 = 1 << 20;

impl DataBody {
    pub(crate) fn new(max_size: u64, size_hint: Option<u64>) -> Self {
        let capacity = size_hint.unwrap_or(0).min(max_size).min(MAX_PREALLOC);
        DataBody {
            message: Vec::with_capacity(usize::try_from(capacity).unwrap_or(0)),
            max_size,
            failure: None,
        }
    }

    /// Takes one line; returns true when it was the terminating dot.
    pub(crate) fn push_line(&mut self, line: Line<'_>) -> bool {
        let line = match line {
            Line::Complete(b".") => return true,
            Line::Complete(line) => line,
            Line::TooLong => {
                self.fail(DataFailure::LineTooLong);
                return false;
            }
        };
        if self.failure.is_some() {
            return false;
        }
        let content = line.strip_prefix(b".").unwrap_or(line);
        if content.contains(&0) {
            self.fail(DataFailure::Nul);
            return false;
        }
        let new_len = self.message.len() as u64 + content.len() as u64 + 2;
        if new_len > self.max_size {
            self.fail(DataFailure::TooBig);
            return false;
        }
        self.message.extend_from_slice(content);
        self.message.extend_from_slice(b"\r\n");
        false
    }

    /// The first limit violated wins; the body is freed right away.
    fn fail(&mut self, failure: DataFailure) {
        if self.failure.is_none() {
            self.failure = Some(failure);
            self.message = Vec::new();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.message.len()
    }

    /// The stored bytes, or why the message is refused.
    pub(crate) fn finish(self) -> Result<Vec<u8>, DataFailure> {
        match self.failure {
            Some(failure) => Err(failure),
            None => Ok(self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(lines: &[&[u8]], max: u64) -> Result<Vec<u8>, DataFailure> {
        let mut b = DataBody::new(max, None);
        for l in lines {
            assert!(!b.push_line(Line::Complete(l)));
        }
        assert!(b.push_line(Line::Complete(b".")));
        b.finish()
    }

    #[test]
    fn unstuffing() {
        let got = body(&[b"..", b"...", b".x", b"a.b", b"", b". "], 1000).unwrap();
        assert_eq!(got, b".\r\n..\r\nx\r\na.b\r\n\r\n \r\n");
    }

    #[test]
    fn size_limit_counts_stored_bytes() {
        assert_eq!(body(&[b"abc"], 5).unwrap(), b"abc\r\n");
        assert_eq!(body(&[b"abcd"], 5), Err(DataFailure::TooBig));
        // Dot-unstuffing happens before counting.
        assert_eq!(body(&[b".abc"], 5).unwrap(), b"abc\r\n");
    }

    #[test]
    fn nul_and_long_lines_fail() {
        assert_eq!(body(&[b"a\0b"], 100), Err(DataFailure::Nul));
        let mut b = DataBody::new(100, None);
        b.push_line(Line::TooLong);
        b.push_line(Line::Complete(b"x\0"));
        assert!(b.push_line(Line::Complete(b".")));
        assert_eq!(b.finish(), Err(DataFailure::LineTooLong));
    }
}
