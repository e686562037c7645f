//! APPEND with several messages (MULTIAPPEND, RFC 3502) or with messages put
//! together from parts (CATENATE, RFC 4469), which imap-codec does not parse.
//! A plain one-message APPEND is left to imap-codec. Mailbox, flags and date
//! are kept as the client sent them, so the session parses them with
//! imap-codec the same way as for a plain APPEND.
//!
//! CATENATE's URL parts are IMAP URLs (RFC 5092) to the same account's
//! messages: `/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]`,
//! optionally after `imap://authority`. URLAUTH is not offered, so a URL with
//! `;URLAUTH=` is refused.

use crate::lexer::{Lexer, Token};
use crate::mime::SectionText;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Append<'a> {
    /// The mailbox argument as sent (atom, quoted string or literal).
    pub mailbox: &'a [u8],
    pub messages: Vec<Message<'a>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    /// The flag list as sent, parentheses included.
    pub flags: Option<&'a [u8]>,
    /// The date-time as sent, quotes included.
    pub date: Option<&'a [u8]>,
    pub body: Body<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<'a> {
    Literal { data: &'a [u8], binary: bool },
    Catenate(Vec<Part<'a>>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part<'a> {
    Text(&'a [u8]),
    Url(String),
}

/// Parts of one CATENATE at most: each costs a lookup.
pub const MAX_PARTS: usize = 64;
/// Messages of one MULTIAPPEND at most.
pub const MAX_MESSAGES: usize = 1000;

/// `tag APPEND mailbox message...`: None when the command is not an APPEND or
/// is a plain one-message APPEND; Err names what is wrong.
pub fn parse(cmd: &[u8]) -> Option<Result<Append<'_>, String>> {
    let mut l = Lexer::new(cmd);
    let _tag = l.token().ok()?;
    if !l.space() || !l.token().ok()?.is_atom("APPEND") || !l.space() {
        return None;
    }
    let r = parse_rest(&mut l);
    match &r {
        Ok(a) if a.messages.len() == 1 && matches!(a.messages[0].body, Body::Literal { .. }) => {
            None
        }
        _ => Some(r),
    }
}

fn parse_rest<'a>(l: &mut Lexer<'a>) -> Result<Append<'a>, String> {
    let start = l.pos();
    if l.token()?.string().is_none() {
        return Err("APPEND needs a mailbox name".into());
    }
    let mailbox = l.span(start);
    let mut messages = Vec::new();
    loop {
        if !l.space() {
            return Err("APPEND needs a message after the mailbox name".into());
        }
        messages.push(message(l)?);
        if messages.len() > MAX_MESSAGES {
            return Err(format!("more than {MAX_MESSAGES} messages in one APPEND"));
        }
        if l.at_end() {
            return Ok(Append { mailbox, messages });
        }
    }
}

fn message<'a>(l: &mut Lexer<'a>) -> Result<Message<'a>, String> {
    let (mut flags, mut date) = (None, None);
    let mut start = l.pos();
    let mut t = l.token()?;
    if t == Token::Open {
        loop {
            match l.token()? {
                Token::Close => break,
                Token::Atom(_) => {}
                _ => return Err("a flag list holds only flags".into()),
            }
            l.space();
        }
        flags = Some(l.span(start));
        if !l.space() {
            return Err("a message must follow its flags".into());
        }
        start = l.pos();
        t = l.token()?;
    }
    if let Token::Quoted(_) = t {
        date = Some(l.span(start));
        if !l.space() {
            return Err("a message must follow its date".into());
        }
        t = l.token()?;
    }
    let body = match t {
        Token::Literal { data, binary } => Body::Literal { data, binary },
        t if t.is_atom("CATENATE") => {
            if !l.space() || l.token()? != Token::Open {
                return Err("CATENATE needs a parenthesized list of parts".into());
            }
            let mut parts = Vec::new();
            loop {
                let kind = l.token()?;
                if !l.space() {
                    return Err("a CATENATE part needs a value".into());
                }
                let value = l.token()?;
                parts.push(match (kind, value) {
                    (k, Token::Literal { data, .. }) if k.is_atom("TEXT") => Part::Text(data),
                    (k, v) if k.is_atom("URL") => {
                        let url = v.string().ok_or("URL needs a string")?;
                        Part::Url(String::from_utf8_lossy(url).into_owned())
                    }
                    _ => return Err("a CATENATE part is TEXT literal or URL string".into()),
                });
                if parts.len() > MAX_PARTS {
                    return Err(format!("more than {MAX_PARTS} CATENATE parts"));
                }
                if l.peek_close() {
                    l.token()?;
                    break;
                }
                if !l.space() {
                    return Err("CATENATE parts are separated by spaces".into());
                }
            }
            Body::Catenate(parts)
        }
        _ => return Err("APPEND needs a literal or CATENATE for each message".into()),
    };
    Ok(Message { flags, date, body })
}

/// An IMAP URL to one message (or part of it) of the same account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// UTF-8 mailbox name.
    pub mailbox: String,
    pub uid_validity: Option<u32>,
    pub uid: u32,
    /// Part path and what of it (the whole message when both are empty/Full).
    pub part: Vec<u32>,
    pub what: SectionText,
    /// Offset and length of the bytes wanted.
    pub partial: Option<(u64, Option<u64>)>,
}

/// Parses a URL of a CATENATE part; Err names what is wrong.
pub fn parse_url(url: &str) -> Result<Url, String> {
    let mut s = url;
    if s.len() >= 7 && s[..7].eq_ignore_ascii_case("imap://") {
        let rest = &s[7..];
        s = &rest[rest.find('/').ok_or("the URL names no mailbox")?..];
    }
    let s = s
        .strip_prefix('/')
        .ok_or("the URL is not an absolute path")?;
    let (mbox_part, params) = s
        .split_once("/;")
        .ok_or("the URL names no message (;UID=)")?;
    let mbox_part = mbox_part.split('?').next().unwrap_or_default();
    let (enc_name, validity) = match find_ci(mbox_part, ";UIDVALIDITY=") {
        Some(i) => (&mbox_part[..i], Some(&mbox_part[i + 13..])),
        None => (mbox_part, None),
    };
    let mailbox = String::from_utf8(percent_decode(enc_name)?)
        .map_err(|_| "the URL's mailbox name is not UTF-8".to_string())?;
    if mailbox.is_empty() {
        return Err("the URL names no mailbox".into());
    }
    let uid_validity = validity
        .map(|v| v.parse().map_err(|_| "UIDVALIDITY is not a number"))
        .transpose()?;
    let mut uid = None;
    let mut section = None;
    let mut partial = None;
    for p in params.split("/;") {
        let (k, v) = p.split_once('=').ok_or("a URL parameter has no value")?;
        match k.to_ascii_uppercase().as_str() {
            "UID" => uid = Some(v.parse::<u32>().map_err(|_| "UID is not a number")?),
            "SECTION" => section = Some(String::from_utf8_lossy(&percent_decode(v)?).into_owned()),
            "PARTIAL" => {
                let (o, len) = match v.split_once('.') {
                    Some((o, n)) => (o, Some(n.parse().map_err(|_| "PARTIAL length")?)),
                    None => (v, None),
                };
                partial = Some((o.parse().map_err(|_| "PARTIAL offset")?, len));
            }
            "URLAUTH" | "EXPIRE" => return Err("URLAUTH is not supported".into()),
            other => return Err(format!("unknown URL parameter {other}")),
        }
    }
    let uid = uid
        .filter(|u| *u > 0)
        .ok_or("the URL names no message (;UID=)")?;
    let (part, what) = match section {
        None => (Vec::new(), SectionText::Full),
        Some(s) => parse_section(&s)?,
    };
    Ok(Url {
        mailbox,
        uid_validity,
        uid,
        part,
        what,
        partial,
    })
}

fn find_ci(s: &str, needle: &str) -> Option<usize> {
    s.as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn percent_decode(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a bad %-escape in the URL")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// `1.2`, `HEADER`, `2.TEXT`, `HEADER.FIELDS (A B)`, `1.MIME` → (part, what).
fn parse_section(s: &str) -> Result<(Vec<u32>, SectionText), String> {
    let mut part = Vec::new();
    let mut rest = s;
    while let Some(n) = rest
        .split('.')
        .next()
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    {
        part.push(n.parse::<u32>().map_err(|_| "a section part is too big")?);
        rest = rest[n.len()..].strip_prefix('.').unwrap_or("");
    }
    let upper = rest.to_ascii_uppercase();
    let what = match upper.as_str() {
        "" => SectionText::Full,
        "HEADER" => SectionText::Header,
        "TEXT" => SectionText::Text,
        "MIME" if !part.is_empty() => SectionText::Mime,
        u if u.starts_with("HEADER.FIELDS") => {
            let not = u.starts_with("HEADER.FIELDS.NOT");
            let list = u
                .split_once('(')
                .and_then(|(_, l)| l.strip_suffix(')'))
                .ok_or("HEADER.FIELDS needs a list of names")?;
            let names = list.split_whitespace().map(str::to_string).collect();
            SectionText::HeaderFields { names, not }
        }
        _ => return Err(format!("unknown section {s:?}")),
    };
    Ok((part, what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_append_is_left_to_imap_codec() {
        assert!(parse(b"a APPEND INBOX (\\Seen) {3}\r\nabc\r\n").is_none());
        assert!(parse(b"a FETCH 1 ALL\r\n").is_none());
    }

    #[test]
    fn several_messages_and_parts() {
        let cmd = b"a APPEND \"my box\" (\\Seen) \"24-Mar-2007 23:00:00 +0200\" {3+}\r\nabc \
            CATENATE (TEXT {2}\r\nhi URL \"/INBOX/;UID=3\") {1}\r\nz\r\n";
        let a = parse(cmd).unwrap().unwrap();
        assert_eq!(a.mailbox, b"\"my box\"");
        assert_eq!(a.messages.len(), 3);
        assert_eq!(a.messages[0].flags, Some(&b"(\\Seen)"[..]));
        assert_eq!(
            a.messages[0].date,
            Some(&b"\"24-Mar-2007 23:00:00 +0200\""[..])
        );
        assert_eq!(
            a.messages[1].body,
            Body::Catenate(vec![Part::Text(b"hi"), Part::Url("/INBOX/;UID=3".into())])
        );
        assert_eq!(a.messages[2].flags, None);
        assert!(
            parse(b"a APPEND INBOX CATENATE (TEXT \"x\")\r\n")
                .unwrap()
                .is_err()
        );
        assert!(parse(b"a APPEND INBOX {1}\r\nz ~\r\n").unwrap().is_err());
    }

    #[test]
    fn urls() {
        let u = parse_url("/Sent%20Items;UIDVALIDITY=7/;UID=12/;SECTION=1.2.HEADER/;PARTIAL=5.10")
            .unwrap();
        assert_eq!(u.mailbox, "Sent Items");
        assert_eq!(u.uid_validity, Some(7));
        assert_eq!((u.uid, u.part.as_slice()), (12, &[1, 2][..]));
        assert_eq!(u.what, SectionText::Header);
        assert_eq!(u.partial, Some((5, Some(10))));
        let u = parse_url("imap://bob@host/a/b/;uid=3").unwrap();
        assert_eq!((u.mailbox.as_str(), u.uid), ("a/b", 3));
        assert_eq!(u.what, SectionText::Full);
        assert!(parse_url("/INBOX/;UID=1/;URLAUTH=anonymous:internal:x").is_err());
        assert!(parse_url("/INBOX").is_err());
        assert!(parse_url("INBOX/;UID=1").is_err());
        assert!(parse_url("/INBOX/;UID=1/;SECTION=BOGUS").is_err());
    }
}
