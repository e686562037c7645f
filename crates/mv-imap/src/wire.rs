//! Writing IMAP data items: strings as quoted strings when they can be, else
//! literals (8-bit, CR/LF, long), and NIL.

pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        None => out.extend_from_slice(b"NIL"),
        Some(s) => string(out, s),
    }
}

pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() <= 1024
        && s.iter()
            .all(|&b| (0x01..=0x7f).contains(&b) && b != b'\r' && b != b'\n');
    if quotable {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        literal(out, s);
    }
}

pub fn literal(out: &mut Vec<u8>, s: &[u8]) {
    literal_announcement(out, s.len());
    out.extend_from_slice(s);
}

/// The `{n}` CRLF that precedes a literal's `n` bytes (for callers that send
/// the bytes themselves).
pub fn literal_announcement(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(format!("{{{len}}}\r\n").as_bytes());
}

/// Whether bytes cannot go in a plain literal: a NUL, or a CR or LF that is
/// not part of a CRLF.
pub fn needs_literal8(d: &[u8]) -> bool {
    d.iter().enumerate().any(|(i, &b)| match b {
        0 => true,
        b'\r' => d.get(i + 1) != Some(&b'\n'),
        b'\n' => i == 0 || d[i - 1] != b'\r',
        _ => false,
    })
}

/// A mailbox name (already modified-UTF-7 encoded): an atom when it is one, else quoted.
pub fn mailbox(out: &mut Vec<u8>, name: &str) {
    let atom = !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        });
    if atom {
        out.extend_from_slice(name.as_bytes());
    } else {
        string(out, name.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings() {
        let mut o = Vec::new();
        string(&mut o, b"a \"q\" \\");
        assert_eq!(o, b"\"a \\\"q\\\" \\\\\"");
        o.clear();
        string(&mut o, "é".as_bytes());
        assert_eq!(o, b"{2}\r\n\xc3\xa9");
        o.clear();
        mailbox(&mut o, "Two words");
        assert_eq!(o, b"\"Two words\"");
    }
}
