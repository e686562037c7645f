//! Bounded line splitting over pushed input.
//!
//! Lines end at LF; a CR right before it is dropped, so CRLF and bare LF are
//! both line ends (lenient, like Postfix). A line longer than the limit is never
//! buffered: its bytes are discarded as they arrive and it surfaces once, at
//! its LF, as [`Line::TooLong`], so replies stay in step with pipelined input.

/// One line taken from the input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// The line's content without CRLF / LF.
    Complete(&'a [u8]),
    /// The line (terminator included) exceeded the limit; its content is gone.
    TooLong,
}

#[derive(Debug, Default)]
pub(crate) struct LineBuf {
    /// Pushed input not yet split into lines; `pos` is the first unread byte.
    input: Vec<u8>,
    pos: usize,
    /// The start of a line whose LF has not arrived yet (never over the limit).
    partial: Vec<u8>,
    /// `partial` was handed out as a `Line`; clear it on the next call.
    partial_taken: bool,
    /// Discarding the rest of an overlong line.
    overflowed: bool,
}

impl LineBuf {
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.pos == self.input.len() {
            self.input.clear();
            self.pos = 0;
        } else if self.pos > 0 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        self.input.extend_from_slice(bytes);
    }

    /// Bytes held: unread input plus a partial line.
    pub(crate) fn buffered_len(&self) -> usize {
        self.input.len() - self.pos + self.partial.len()
    }

    /// The next complete line, or `None` once all input is consumed (a
    /// trailing partial line is then kept, bounded by `limit`). `limit` counts
    /// the terminator, so "at most 4096 octets including CRLF" is `4096`.
    pub(crate) fn next_line(&mut self, limit: usize) -> Option<Line<'_>> {
        if self.partial_taken {
            self.partial.clear();
            self.partial_taken = false;
        }
        let start = self.pos;
        let avail = &self.input[start..];
        let Some(lf) = avail.iter().position(|&b| b == b'\n') else {
            // No line end yet: keep the start of the line unless it is
            // already too long to ever fit (content + LF > limit).
            if !self.overflowed {
                if self.partial.len() + avail.len() < limit {
                    self.partial.extend_from_slice(avail);
                } else {
                    self.overflowed = true;
                    self.partial.clear();
                }
            }
            self.input.clear();
            self.pos = 0;
            return None;
        };
        self.pos = start + lf + 1;
        if self.overflowed {
            self.overflowed = false;
            return Some(Line::TooLong);
        }
        if self.partial.len() + lf + 1 > limit {
            self.partial.clear();
            return Some(Line::TooLong);
        }
        let line = if self.partial.is_empty() {
            &self.input[start..start + lf]
        } else {
            self.partial
                .extend_from_slice(&self.input[start..start + lf]);
            self.partial_taken = true;
            &self.partial[..]
        };
        Some(Line::Complete(line.strip_suffix(b"\r").unwrap_or(line)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(chunks: &[&[u8]], limit: usize) -> Vec<Option<Vec<u8>>> {
        let mut buf = LineBuf::default();
        let mut out = Vec::new();
        for chunk in chunks {
            buf.push(chunk);
            while let Some(line) = buf.next_line(limit) {
                out.push(match line {
                    Line::Complete(l) => Some(l.to_vec()),
                    Line::TooLong => None,
                });
            }
            assert!(buf.buffered_len() < limit);
        }
        out
    }

    #[test]
    fn crlf_and_bare_lf() {
        let got = lines(&[b"a\r\nb\nc\r", b"\n\r\n"], 100);
        assert_eq!(
            got,
            vec![
                Some(b"a".to_vec()),
                Some(b"b".to_vec()),
                Some(b"c".to_vec()),
                Some(vec![])
            ]
        );
    }

    #[test]
    fn split_across_pushes() {
        let got = lines(&[b"ab", b"cd", b"e\r", b"\nf\n"], 100);
        assert_eq!(got, vec![Some(b"abcde".to_vec()), Some(b"f".to_vec())]);
    }

    #[test]
    fn limit_counts_terminator() {
        // "abc\r\n" is 5 octets.
        assert_eq!(lines(&[b"abc\r\n"], 5), vec![Some(b"abc".to_vec())]);
        assert_eq!(lines(&[b"abcd\r\n"], 5), vec![None]);
        assert_eq!(lines(&[b"ab", b"c\r\n"], 5), vec![Some(b"abc".to_vec())]);
        assert_eq!(lines(&[b"ab", b"cd\r\n"], 5), vec![None]);
    }

    #[test]
    fn overlong_line_is_discarded_then_recovers() {
        let long = vec![b'x'; 50];
        let got = lines(&[&long, &long, b"\r\nok\r\n"], 10);
        assert_eq!(got, vec![None, Some(b"ok".to_vec())]);
    }
}
