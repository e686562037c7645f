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
    let parse = |name: &str| {
        field(&f, name)
            .map(crate::address::parse)
            .unwrap_or_default()
    };
    let from = parse("from");
    for name in ["from", "sender", "reply-to", "to", "cc", "bcc"] {
        out.push(b' ');
        let list = parse(name);
        // An empty or missing Sender or Reply-To is the From (RFC 3501 §7.4.2).
        if list.is_empty() && matches!(name, "sender" | "reply-to") {
            addresses(out, &from);
        } else {
            addresses(out, &list);
        }
    }
    out.push(b' ');
    nstring(out, field(&f, "in-reply-to"));
    out.push(b' ');
    nstring(out, field(&f, "message-id"));
    out.push(b')');
}

fn addresses(out: &mut Vec<u8>, list: &[crate::address::Address]) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in list {
        out.push(b'(');
        nstring(out, a.name.as_deref().map(str::as_bytes));
        out.push(b' ');
        nstring(out, a.route.as_deref().map(str::as_bytes));
        out.push(b' ');
        nstring(out, a.mailbox.as_deref().map(str::as_bytes));
        out.push(b' ');
        nstring(out, a.host.as_deref().map(str::as_bytes));
        out.push(b')');
    }
    out.push(b')');
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
/// An APPENDed message with NUL bytes (a literal8, RFC 3516 §4.4) made fit
/// for BODY[] and plain literals: each part whose body holds a NUL is
/// re-encoded as base64 (its Content-Transfer-Encoding replaced), so BINARY[]
/// still gives back the original bytes. None when there is no NUL.
pub fn encode_binary_parts(raw: &[u8]) -> Option<Vec<u8>> {
    if !raw.contains(&0) {
        return None;
    }
    let top = parse(raw);
    let mut leaves: Vec<(&[u8], &[u8])> = Vec::new();
    fn collect<'a>(e: &Entity<'a>, out: &mut Vec<(&'a [u8], &'a [u8])>) {
        if let Some(inner) = e.inner.as_deref() {
            collect(inner, out);
        } else if !e.parts.is_empty() {
            for p in &e.parts {
                collect(p, out);
            }
        } else if e.body.contains(&0) {
            out.push((e.header, e.body));
        }
    }
    collect(&top, &mut leaves);
    let offset = |s: &[u8]| s.as_ptr() as usize - raw.as_ptr() as usize;
    let mut out = Vec::with_capacity(raw.len() * 4 / 3 + 256);
    let mut at = 0;
    for (header, body) in leaves {
        let h = offset(header);
        if h < at {
            continue;
        }
        out.extend_from_slice(&raw[at..h]);
        let mut skipping = false;
        let mut ended = false;
        for line in header.split_inclusive(|&b| b == b'\n') {
            let bare = line.trim_ascii_end();
            if bare.is_empty() {
                out.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n");
                out.extend_from_slice(line);
                ended = true;
                continue;
            }
            if line[0] != b' ' && line[0] != b'\t' {
                let name = line.split(|&b| b == b':').next().unwrap_or_default();
                skipping = name
                    .trim_ascii()
                    .eq_ignore_ascii_case(b"content-transfer-encoding");
            }
            if !skipping {
                out.extend_from_slice(line);
            }
        }
        if !ended {
            out.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n\r\n");
        }
        let encoded = base64(body);
        for chunk in encoded.chunks(76) {
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
        }
        at = offset(body) + body.len();
    }
    out.extend_from_slice(&raw[at..]);
    Some(out)
}

fn base64(data: &[u8]) -> Vec<u8> {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(data.len().div_ceil(3) * 4);
    for ch in data.chunks(3) {
        let n = ch.iter().fold(0u32, |a, b| a << 8 | *b as u32) << (8 * (3 - ch.len()));
        for i in 0..4 {
            out.push(if i <= ch.len() {
                A[(n >> (18 - 6 * i) & 63) as usize]
            } else {
                b'='
            });
        }
    }
    out
}

/// BINARY[part] (RFC 3516): the part's body with its Content-Transfer-Encoding
/// undone; the whole message as it is for an empty part. An encoding other than
/// 7bit, 8bit, binary, base64 and quoted-printable leaves the body as it is.
pub fn binary(raw: &[u8], part: &[u32]) -> Option<Vec<u8>> {
    if part.is_empty() {
        return Some(raw.to_vec());
    }
    let top = parse(raw);
    let e = entity(&top, part)?;
    let f = fields(e.header);
    let cte = field(&f, "content-transfer-encoding")
        .map(|v| String::from_utf8_lossy(v).trim().to_ascii_lowercase())
        .unwrap_or_default();
    Some(match cte.as_str() {
        "base64" => {
            let clean: Vec<u8> = e
                .body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            mail_parser::decoders::base64::base64_decode(&clean).unwrap_or_default()
        }
        "quoted-printable" => {
            mail_parser::decoders::quoted_printable::quoted_printable_decode(e.body)
                .unwrap_or_else(|| e.body.to_vec())
        }
        _ => e.body.to_vec(),
    })
}

/// The entity a part number addresses.
fn entity<'e, 'a>(top: &'e Entity<'a>, part: &[u32]) -> Option<&'e Entity<'a>> {
    let mut e = top;
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
    Some(e)
}

pub fn section(raw: &[u8], part: &[u32], what: &SectionText) -> Option<Vec<u8>> {
    let top = parse(raw);
    let e = entity(&top, part)?;
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
    fn binary_parts_become_base64_and_decode_back() {
        let raw = b"From: a@b\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\0\xe4\r\n\r\n--x--\r\n";
        assert!(encode_binary_parts(b"From: a\r\n\r\ntext").is_none());
        let enc = encode_binary_parts(raw).unwrap();
        assert!(!enc.contains(&0));
        let text = String::from_utf8_lossy(&enc);
        assert!(text.contains("Content-Transfer-Encoding: base64"), "{text}");
        assert!(!text.contains("binary"), "{text}");
        assert_eq!(binary(&enc, &[1]).unwrap(), b"\0\xe4\r\n");
        assert_eq!(binary(raw, &[1]).unwrap(), b"\0\xe4\r\n");
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
