//! The MIME structure of a stored message, as FETCH needs it: ENVELOPE,
//! BODYSTRUCTURE and the bytes of BODY[section]. Parsing is lenient (real mail
//! is messy) but bounded: nesting deeper than [`MAX_DEPTH`] is treated as an
//! opaque leaf.

use crate::wire::{nstring, string};

pub const MAX_DEPTH: usize = 32;

/// One MIME entity: its header (with the blank line that ends it) and its body.
pub struct Entity<'a> {
    pub header: &'a [u8],
    pub body: &'a [u8],
    pub mime_type: String,
    pub subtype: String,
    pub params: Vec<(String, String)>,
    /// Parts of a multipart.
    pub parts: Vec<Entity<'a>>,
    /// The message inside a message/rfc822.
    pub inner: Option<Box<Entity<'a>>>,
}

pub fn parse(raw: &[u8]) -> Entity<'_> {
    parse_entity(raw, 0, ("text", "plain"))
}

fn split_header(raw: &[u8]) -> (&[u8], &[u8]) {
    if raw.starts_with(b"\r\n") {
        return (&raw[..2], &raw[2..]);
    }
    if raw.starts_with(b"\n") {
        return (&raw[..1], &raw[1..]);
    }
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\n' {
            if raw[i + 1..].starts_with(b"\r\n") {
                return (&raw[..i + 3], &raw[i + 3..]);
            }
            if raw[i + 1..].starts_with(b"\n") {
                return (&raw[..i + 2], &raw[i + 2..]);
            }
        }
        i += 1;
    }
    (raw, &raw[raw.len()..])
}

/// Header fields, unfolded: (name, raw value).
pub fn fields(header: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for line in header.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some(last) = out.last_mut() {
                last.1.push(b' ');
                last.1.extend_from_slice(line.trim_ascii());
            }
            continue;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = String::from_utf8_lossy(&line[..colon]).trim().to_string();
            out.push((name, line[colon + 1..].trim_ascii().to_vec()));
        }
    }
    out
}

pub fn field<'f>(fields: &'f [(String, Vec<u8>)], name: &str) -> Option<&'f [u8]> {
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// `type/subtype; a=b; c="d"` → ("type", "subtype", params), lower-cased names.
/// (type, subtype, parameters).
type ContentType = (String, String, Vec<(String, String)>);

fn content_type(v: &[u8]) -> Option<ContentType> {
    let s = String::from_utf8_lossy(v);
    let mut parts = split_params(&s).into_iter();
    let t = parts.next()?;
    let (ty, sub) = t.split_once('/')?;
    let (ty, sub) = (
        ty.trim().to_ascii_lowercase(),
        sub.trim().to_ascii_lowercase(),
    );
    if ty.is_empty() || sub.is_empty() {
        return None;
    }
    Some((ty, sub, params(parts)))
}

fn params(parts: impl Iterator<Item = String>) -> Vec<(String, String)> {
    parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .map(|v| v.replace("\\\"", "\"").replace("\\\\", "\\"))
                .unwrap_or_else(|| v.to_string());
            Some((k.trim().to_ascii_lowercase(), v))
        })
        .collect()
}

/// Splits at `;` outside quotes.
fn split_params(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in s.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(std::mem::take(&mut cur).trim().to_string());
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur.trim().to_string());
    out
}

fn parse_entity<'a>(raw: &'a [u8], depth: usize, default: (&str, &str)) -> Entity<'a> {
    let (header, body) = split_header(raw);
    let f = fields(header);
    let (mime_type, subtype, params) = field(&f, "content-type")
        .and_then(content_type)
        .unwrap_or_else(|| {
            let p = if default.0 == "text" {
                vec![("charset".to_string(), "us-ascii".to_string())]
            } else {
                vec![]
            };
            (default.0.to_string(), default.1.to_string(), p)
        });
    let mut e = Entity {
        header,
        body,
        mime_type,
        subtype,
        params,
        parts: Vec::new(),
        inner: None,
    };
    if depth >= MAX_DEPTH {
        return e;
    }
    if e.mime_type == "multipart" {
        let boundary = e
            .params
            .iter()
            .find(|(k, _)| k == "boundary")
            .map(|(_, v)| v.clone());
        if let Some(b) = boundary.filter(|b| !b.is_empty()) {
            let child_default = if e.subtype == "digest" {
                ("message", "rfc822")
            } else {
                ("text", "plain")
            };
            e.parts = split_multipart(body, b.as_bytes())
                .into_iter()
                .map(|p| parse_entity(p, depth + 1, child_default))
                .collect();
        }
    } else if e.mime_type == "message" && e.subtype == "rfc822" {
        e.inner = Some(Box::new(parse_entity(body, depth + 1, ("text", "plain"))));
    }
    e
}

/// The parts between `--boundary` lines, each without the CRLF that precedes
/// the next delimiter.
fn split_multipart<'a>(body: &'a [u8], boundary: &[u8]) -> Vec<&'a [u8]> {
    let mut delim = b"--".to_vec();
    delim.extend_from_slice(boundary);
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut pos = 0;
    while pos <= body.len() {
        let line_end = body[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| pos + i + 1)
            .unwrap_or(body.len());
        let line = &body[pos..line_end];
        if line.starts_with(&delim) {
            let rest = &line[delim.len()..];
            if let Some(s) = start {
                let mut end = pos;
                if end > s && body[end - 1] == b'\n' {
                    end -= 1;
                    if end > s && body[end - 1] == b'\r' {
                        end -= 1;
                    }
                }
                out.push(&body[s..end.max(s)]);
            }
            if rest.starts_with(b"--") {
                return out;
            }
            start = Some(line_end);
        }
        if line_end == body.len() {
            break;
        }
        pos = line_end;
    }
    if let Some(s) = start {
        out.push(&body[s..]);
    }
    out
}

fn lines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count() + usize::from(!b.is_empty() && !b.ends_with(b"\n"))
}

/// ENVELOPE (RFC 3501 §7.4.2) of a message header.
pub fn envelope(out: &mut Vec<u8>, header: &[u8]) {
    let f = fields(header);
    out.push(b'(');
    nstring(out, field(&f, "date"));
    out.push(b' ');
    nstring(out, field(&f, "subject"));
    let from = field(&f, "from");
    for (name, fallback) in [
        ("from", None),
        ("sender", from),
        ("reply-to", from),
        ("to", None),
        ("cc", None),
        ("bcc", None),
    ] {
        out.push(b' ');
        let v = field(&f, name).filter(|v| !v.is_empty()).or(fallback);
        addresses(out, v);
    }
    out.push(b' ');
    nstring(out, field(&f, "in-reply-to"));
    out.push(b' ');
    nstring(out, field(&f, "message-id"));
    out.push(b')');
}

fn addresses(out: &mut Vec<u8>, v: Option<&[u8]>) {
    let list = v.map(parse_addresses).unwrap_or_default();
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (name, mailbox, host) in list {
        out.push(b'(');
        nstring(out, name.as_deref().map(str::as_bytes));
        out.extend_from_slice(b" NIL ");
        nstring(out, Some(mailbox.as_bytes()));
        out.push(b' ');
        nstring(out, host.as_deref().map(str::as_bytes));
        out.push(b')');
    }
    out.push(b')');
}

/// A simple RFC 5322 address-list reader: `Name <a@b>, c@d, "Q, R" <e@f>`.
/// Groups are flattened to their members.
fn parse_addresses(v: &[u8]) -> Vec<(Option<String>, String, Option<String>)> {
    let s = String::from_utf8_lossy(v);
    let mut items = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    for c in s.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' | ';' if !quoted && !angle => {
                items.push(std::mem::take(&mut cur));
                continue;
            }
            ':' if !quoted && !angle => {
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    items.push(cur);
    items
        .into_iter()
        .filter_map(|item| {
            let item = item.trim();
            if item.is_empty() {
                return None;
            }
            let (name, addr) = match (item.rfind('<'), item.rfind('>')) {
                (Some(a), Some(b)) if a < b => {
                    let name = item[..a].trim().trim_matches('"').trim();
                    (
                        (!name.is_empty()).then(|| name.replace("\\\"", "\"")),
                        item[a + 1..b].trim(),
                    )
                }
                _ => (None, item),
            };
            let (mailbox, host) = match addr.rsplit_once('@') {
                Some((m, h)) => (m.to_string(), Some(h.to_string())),
                None => (addr.to_string(), None),
            };
            Some((name, mailbox, host))
        })
        .collect()
}

/// BODY / BODYSTRUCTURE of an entity.
pub fn body_structure(out: &mut Vec<u8>, e: &Entity<'_>, extended: bool) {
    out.push(b'(');
    if e.mime_type == "multipart" && !e.parts.is_empty() {
        for p in &e.parts {
            body_structure(out, p, extended);
        }
        out.push(b' ');
        string(out, e.subtype.as_bytes());
        if extended {
            out.push(b' ');
            param_list(out, &e.params);
        }
    } else {
        let f = fields(e.header);
        string(out, e.mime_type.as_bytes());
        out.push(b' ');
        string(out, e.subtype.as_bytes());
        out.push(b' ');
        param_list(out, &e.params);
        out.push(b' ');
        nstring(out, field(&f, "content-id"));
        out.push(b' ');
        nstring(out, field(&f, "content-description"));
        out.push(b' ');
        let enc = field(&f, "content-transfer-encoding")
            .map(|v| String::from_utf8_lossy(v).to_ascii_lowercase())
            .unwrap_or_else(|| "7bit".into());
        string(out, enc.as_bytes());
        out.extend_from_slice(format!(" {}", e.body.len()).as_bytes());
        if let Some(inner) = e.inner.as_deref() {
            out.push(b' ');
            envelope(out, inner.header);
            out.push(b' ');
            body_structure(out, inner, extended);
            out.extend_from_slice(format!(" {}", lines(e.body)).as_bytes());
        } else if e.mime_type == "text" {
            out.extend_from_slice(format!(" {}", lines(e.body)).as_bytes());
        }
    }
    out.push(b')');
}

fn param_list(out: &mut Vec<u8>, params: &[(String, String)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(out, k.as_bytes());
        out.push(b' ');
        string(out, v.as_bytes());
    }
    out.push(b')');
}

/// What of an entity a section asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    Full,
    Header,
    HeaderFields { names: Vec<String>, not: bool },
    Text,
    Mime,
}

/// The bytes of BODY[part.part...TEXT-ish]. `part` empty = the whole message.
/// None if the part does not exist (the caller answers with an empty string,
/// as most servers do).
pub fn section(raw: &[u8], part: &[u32], what: &SectionText) -> Option<Vec<u8>> {
    let top = parse(raw);
    let mut e = &top;
    for (i, &n) in part.iter().enumerate() {
        let n = n as usize;
        // Inside a message/rfc822 part, numbers address the inner message's parts.
        if i > 0
            && let Some(inner) = e.inner.as_deref()
        {
            e = inner;
        }
        if !e.parts.is_empty() {
            e = e.parts.get(n.checked_sub(1)?)?;
        } else if n != 1 {
            return None;
        }
    }
    // HEADER/TEXT of a message/rfc822 part are those of the inner message.
    let target = match (what, e.inner.as_deref()) {
        (
            SectionText::Header | SectionText::HeaderFields { .. } | SectionText::Text,
            Some(inner),
        ) if !part.is_empty() => inner,
        _ => e,
    };
    Some(match what {
        SectionText::Full if part.is_empty() => raw.to_vec(),
        SectionText::Full => e.body.to_vec(),
        SectionText::Header => target.header.to_vec(),
        SectionText::Text => target.body.to_vec(),
        SectionText::Mime => e.header.to_vec(),
        SectionText::HeaderFields { names, not } => {
            let mut out = Vec::new();
            let mut keep = false;
            for line in target.header.split_inclusive(|&b| b == b'\n') {
                let trimmed = line.strip_suffix(b"\n").unwrap_or(line);
                let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
                if trimmed.is_empty() {
                    continue;
                }
                if trimmed[0] != b' ' && trimmed[0] != b'\t' {
                    let name = trimmed
                        .iter()
                        .position(|&b| b == b':')
                        .map(|c| String::from_utf8_lossy(&trimmed[..c]).trim().to_string())
                        .unwrap_or_default();
                    let listed = names.iter().any(|n| n.eq_ignore_ascii_case(&name));
                    keep = listed != *not;
                }
                if keep {
                    out.extend_from_slice(trimmed);
                    out.extend_from_slice(b"\r\n");
                }
            }
            out.extend_from_slice(b"\r\n");
            out
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: Alice <alice@example.com>\r\nTo: bob@example.com, \"Carol, C\" <carol@example.com>\r\nSubject: hi\r\nContent-Type: multipart/mixed; boundary=\"xx\"\r\n\r\npreamble\r\n--xx\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\nworld\r\n--xx\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--xx--\r\n";

    #[test]
    fn structure_and_sections() {
        let e = parse(MSG);
        assert_eq!(e.parts.len(), 2);
        assert_eq!(
            section(MSG, &[1], &SectionText::Full).unwrap(),
            b"hello\r\nworld"
        );
        assert_eq!(
            section(MSG, &[2], &SectionText::Header).unwrap(),
            b"Subject: inner\r\n\r\n"
        );
        assert_eq!(
            section(MSG, &[2, 1], &SectionText::Full).unwrap(),
            b"inner body"
        );
        assert_eq!(section(MSG, &[3], &SectionText::Full), None);
        assert_eq!(
            section(
                MSG,
                &[],
                &SectionText::HeaderFields {
                    names: vec!["subject".into()],
                    not: false
                }
            )
            .unwrap(),
            b"Subject: hi\r\n\r\n"
        );
        let mut out = Vec::new();
        body_structure(&mut out, &e, false);
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.starts_with("((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 12 2)"),
            "{s}"
        );
        assert!(s.ends_with(" \"mixed\")"), "{s}");
        let mut env = Vec::new();
        envelope(&mut env, e.header);
        let env = String::from_utf8(env).unwrap();
        assert!(
            env.contains("((\"Carol, C\" NIL \"carol\" \"example.com\"))")
                || env.contains("(\"Carol, C\" NIL \"carol\" \"example.com\")"),
            "{env}"
        );
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut m = Vec::new();
        for _ in 0..200 {
            m.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        m.extend_from_slice(b"x");
        let e = parse(&m);
        let mut out = Vec::new();
        body_structure(&mut out, &e, true);
        assert!(out.len() < 100_000);
    }
}
