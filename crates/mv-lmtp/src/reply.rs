//! Server replies and their wire form.

use std::fmt;

/// One (possibly multi-line) server reply: a three-digit code and its text lines.
///
/// Enhanced status codes (RFC 2034) are part of the text ("2.0.0 OK"); the
/// greeting, 354 and the LHLO capability list carry none, as RFC 2034 asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    /// A single-line reply. `text` is sanitised: CR and LF become spaces, so a
    /// client-supplied string can never inject a reply line.
    pub fn new(code: u16, text: impl Into<String>) -> Self {
        Self::multiline(code, vec![text.into()])
    }

    /// A reply of several lines (`250-a`, `250-b`, `250 c` on the wire).
    /// An empty list is rendered as one empty line.
    pub fn multiline(code: u16, lines: Vec<String>) -> Self {
        let lines = if lines.is_empty() {
            vec![String::new()]
        } else {
            lines.into_iter().map(sanitize).collect()
        };
        Reply { code, lines }
    }

    /// A single-line reply with an enhanced status code, e.g. `(250, "2.0.0", "OK")`.
    pub(crate) fn status(code: u16, enhanced: &str, text: impl fmt::Display) -> Self {
        Self::new(code, format!("{enhanced} {text}"))
    }

    /// The three-digit reply code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The text lines, without code or separator.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The enhanced status code of the first line ("2.1.5"), if it has one.
    pub fn enhanced_code(&self) -> Option<&str> {
        let first = self.lines.first()?.split(' ').next()?;
        let mut parts = first.split('.');
        let well_formed = parts.next().is_some_and(|c| matches!(c, "2" | "4" | "5"))
            && (0..2).all(|_| {
                parts.next().is_some_and(|p| {
                    (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())
                })
            })
            && parts.next().is_none();
        well_formed.then_some(first)
    }

    /// Appends the wire form (CRLF-terminated lines) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.to_string().as_bytes());
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.lines.len() - 1;
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            write!(f, "{}{}{}\r\n", self.code, sep, line)?;
        }
        Ok(())
    }
}

fn sanitize(line: String) -> String {
    if line.contains(['\r', '\n']) {
        line.replace(['\r', '\n'], " ")
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form() {
        let r = Reply::multiline(250, vec!["a".into(), "b".into(), "c".into()]);
        assert_eq!(r.to_string(), "250-a\r\n250-b\r\n250 c\r\n");
        assert_eq!(
            Reply::status(550, "5.1.1", "x").to_string(),
            "550 5.1.1 x\r\n"
        );
    }

    #[test]
    fn no_line_injection() {
        let r = Reply::new(250, "a\r\n250 b");
        assert_eq!(r.to_string(), "250 a  250 b\r\n");
    }

    #[test]
    fn enhanced() {
        assert_eq!(
            Reply::status(452, "4.2.2", "full").enhanced_code(),
            Some("4.2.2")
        );
        assert_eq!(Reply::new(220, "host ready").enhanced_code(), None);
        assert_eq!(Reply::new(354, "Start").enhanced_code(), None);
    }
}
