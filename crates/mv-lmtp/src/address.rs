//! Reverse- and forward-path syntax (RFC 5321 §4.1.2), checked just enough to
//! hand the backend a well-formed `local@domain` and to reject garbage with
//! 501 instead of asking the store about it.
//!
//! Deliberately not checked: length limits of local part and domain (real
//! VERP senders exceed 64 octets; the command line limit bounds everything),
//! and case (the backend normalises; the local part is case-sensitive in
//! theory).

/// The path is not syntactically valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadAddress;

/// Parses `<path>` at the start of `s`. Returns the mailbox (source route
/// stripped; `""` for the null path `<>`) and what follows the `>`.
pub(crate) fn parse_path(s: &str) -> Result<(&str, &str), BadAddress> {
    let b = s.as_bytes();
    if b.first() != Some(&b'<') {
        return Err(BadAddress);
    }
    // Find the closing '>' outside a quoted local part.
    let mut i = 1;
    let mut in_quote = false;
    while i < b.len() {
        match b[i] {
            b'\\' if in_quote => i += 1,
            b'"' => in_quote = !in_quote,
            b'>' if !in_quote => break,
            _ => {}
        }
        i += 1;
    }
    if i >= b.len() {
        return Err(BadAddress);
    }
    let inner = &s[1..i];
    let rest = &s[i + 1..];
    if inner.is_empty() {
        return Ok(("", rest));
    }
    let mailbox = strip_source_route(inner)?;
    if !valid_mailbox(mailbox) {
        return Err(BadAddress);
    }
    Ok((mailbox, rest))
}

/// `@a,@b:user@d` → `user@d`. Source routes are obsolete; RFC 5321 says to
/// accept and ignore them.
fn strip_source_route(inner: &str) -> Result<&str, BadAddress> {
    if !inner.starts_with('@') {
        return Ok(inner);
    }
    let colon = inner.find(':').ok_or(BadAddress)?;
    let route_ok = inner[..colon]
        .split(',')
        .all(|hop| hop.strip_prefix('@').is_some_and(valid_domain));
    if !route_ok {
        return Err(BadAddress);
    }
    Ok(&inner[colon + 1..])
}

fn valid_mailbox(m: &str) -> bool {
    // RFC 5321 requires servers to accept <postmaster> without a domain.
    if m.eq_ignore_ascii_case("postmaster") {
        return true;
    }
    let Some((local_len, domain)) = split_local(m) else {
        return false;
    };
    local_len > 0 && valid_domain(domain)
}

/// Returns the length of a valid local part and the domain after the '@'.
fn split_local(m: &str) -> Option<(usize, &str)> {
    let b = m.as_bytes();
    let end = if b.first() == Some(&b'"') {
        let mut i = 1;
        loop {
            match *b.get(i)? {
                b'"' => break i + 1,
                b'\\' => {
                    let c = *b.get(i + 1)?;
                    if !(b' '..=b'~').contains(&c) {
                        return None;
                    }
                    i += 2;
                }
                c if (b' '..=b'~').contains(&c) => i += 1,
                _ => return None,
            }
        }
    } else {
        let at = m.find('@')?;
        // Lenient dot-string: consecutive or leading dots exist in the wild.
        if !m[..at].bytes().all(|c| is_atext(c) || c == b'.') {
            return None;
        }
        at
    };
    if b.get(end) != Some(&b'@') {
        return None;
    }
    Some((end, &m[end + 1..]))
}

fn valid_domain(d: &str) -> bool {
    if let Some(lit) = d.strip_prefix('[') {
        let Some(lit) = lit.strip_suffix(']') else {
            return false;
        };
        return !lit.is_empty()
            && lit
                .bytes()
                .all(|c| (b'!'..=b'~').contains(&c) && !matches!(c, b'[' | b']' | b'\\'));
    }
    !d.is_empty()
        && d.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        })
}

fn is_atext(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts() {
        assert_eq!(parse_path("<a@b.c>"), Ok(("a@b.c", "")));
        assert_eq!(parse_path("<a@b.c> SIZE=1"), Ok(("a@b.c", " SIZE=1")));
        assert_eq!(parse_path("<>"), Ok(("", "")));
        assert_eq!(parse_path("<Postmaster>"), Ok(("Postmaster", "")));
        assert_eq!(parse_path("<@r1,@r2.x:u@d>"), Ok(("u@d", "")));
        assert_eq!(parse_path(r#"<"a b>\"c"@d>"#), Ok((r#""a b>\"c"@d"#, "")));
        assert_eq!(
            parse_path("<u+tag@[127.0.0.1]>"),
            Ok(("u+tag@[127.0.0.1]", ""))
        );
        assert_eq!(parse_path("<first..last@d>"), Ok(("first..last@d", "")));
    }

    #[test]
    fn rejects() {
        for bad in [
            "a@b",
            "<a@b",
            "<a>",
            "<@b>",
            "<a@>",
            "<a@b..c>",
            "<a b@c>",
            "<a@b c>",
            "<é@b>",
            "<\"unterminated@b>",
            "<@r1:>",
            "<@:u@d>",
            "<a@[]>",
            "<a@@b>",
        ] {
            assert_eq!(parse_path(bad), Err(BadAddress), "{bad}");
        }
    }
}
