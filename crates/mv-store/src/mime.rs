//! Header extraction from raw messages, done once at delivery; the result is logged
//! in the redo op so replay never depends on the parser.

use mv_redo::ops::Envelope;

/// Longest header value we keep in metadata (the message itself stays byte-exact).
const MAX_FIELD: usize = 1024;

/// Parses the headers of a raw RFC 5322 message. Never fails: missing or malformed
/// headers give empty fields, since a message must be stored whatever it contains.
pub fn extract_envelope(raw: &[u8]) -> Envelope {
    let Some(msg) = mail_parser::MessageParser::default().parse_headers(raw) else {
        return Envelope::default();
    };
    let one = |addr: &mail_parser::Addr<'_>| match (addr.name(), addr.address()) {
        (Some(n), Some(e)) => format!("{n} <{e}>"),
        (None, Some(e)) => e.to_string(),
        (Some(n), None) => n.to_string(),
        (None, None) => String::new(),
    };
    let addresses = |a: Option<&mail_parser::Address<'_>>| -> String {
        let list: Vec<String> = match a {
            None => return String::new(),
            Some(mail_parser::Address::List(l)) => l.iter().map(one).collect(),
            // Groups keep their name (`team: a@b, c@d;`): IMAP SEARCH TO matches it.
            Some(mail_parser::Address::Group(groups)) => groups
                .iter()
                .map(|g| {
                    let members: Vec<String> = g.addresses.iter().map(one).collect();
                    match &g.name {
                        Some(name) => format!("{name}: {};", members.join(", ")),
                        None => members.join(", "),
                    }
                })
                .collect(),
        };
        let list: Vec<String> = list.into_iter().filter(|s| !s.is_empty()).collect();
        clip(&list.join(", "))
    };
    Envelope {
        subject: clip(msg.subject().unwrap_or_default()),
        from: addresses(msg.from()),
        to: addresses(msg.to()),
        cc: addresses(msg.cc()),
        message_id: clip(msg.message_id().unwrap_or_default()),
        date_ms: msg
            .date()
            .filter(|d| d.is_valid())
            .map(|d| d.to_timestamp().saturating_mul(1000))
            .unwrap_or(0),
    }
}

fn clip(s: &str) -> String {
    let clean: String = s
        .chars()
        .filter(|c| !c.is_control() || *c == '\t')
        .collect();
    if clean.len() <= MAX_FIELD {
        return clean;
    }
    let mut end = MAX_FIELD;
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    clean[..end].to_string()
}

/// The searchable text of a message beyond its envelope, lowercased the way the
/// search language compares (`str::to_lowercase`). One function serves both the
/// scanning search and the search index, so the two always see the same text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageText {
    /// Decoded text of every text part; HTML parts with their tags stripped.
    /// Parts are separated by a newline.
    pub body: String,
    /// Attachment file names, one per line.
    pub attachments: String,
    /// The raw header section (lossy UTF-8), for IMAP `SEARCH TEXT`.
    pub header: String,
}

/// Extracts [`MessageText`]. Never fails: an unparsable message gives the raw bytes
/// (lossy UTF-8) as its body, so that what a user sees is still findable.
pub fn message_text(raw: &[u8]) -> MessageText {
    let header_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 1))
        .unwrap_or(raw.len());
    let header = String::from_utf8_lossy(&raw[..header_end]).to_lowercase();
    let Some(msg) = mail_parser::MessageParser::default().parse(raw) else {
        return MessageText {
            body: String::from_utf8_lossy(&raw[header_end.min(raw.len())..]).to_lowercase(),
            attachments: String::new(),
            header,
        };
    };
    let mut body = String::new();
    let mut attachments = String::new();
    collect_text(&msg, &mut body, &mut attachments, 0);
    MessageText {
        body: body.to_lowercase(),
        attachments: attachments.to_lowercase(),
        header,
    }
}

/// Nested messages deeper than this are not searched (a hostile message could nest
/// thousands deep).
const MAX_NESTING: usize = 8;

fn collect_text(
    msg: &mail_parser::Message<'_>,
    body: &mut String,
    attachments: &mut String,
    depth: usize,
) {
    use mail_parser::{MimeHeaders, PartType};
    for part in &msg.parts {
        if let Some(name) = part.attachment_name() {
            attachments.push_str(name);
            attachments.push('\n');
        }
        match &part.body {
            PartType::Text(t) => {
                body.push_str(t);
                body.push('\n');
            }
            PartType::Html(h) => {
                body.push_str(&mail_parser::decoders::html::html_to_text(h));
                body.push('\n');
            }
            PartType::Message(inner) if depth < MAX_NESTING => {
                collect_text(inner, body, attachments, depth + 1);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_the_usual_headers() {
        let raw =
            b"From: Alice <alice@example.com>\r\nTo: bob@example.com, Carol <c@example.com>\r\n\
Cc: d@example.com\r\nSubject: =?UTF-8?Q?caf=C3=A9?=\r\nMessage-ID: <id-1@example.com>\r\n\
Date: Fri, 19 Nov 2010 13:55:08 +0000\r\n\r\nbody\r\n";
        let e = extract_envelope(raw);
        assert_eq!(e.subject, "café");
        assert_eq!(e.from, "Alice <alice@example.com>");
        assert_eq!(e.to, "bob@example.com, Carol <c@example.com>");
        assert_eq!(e.cc, "d@example.com");
        assert_eq!(e.message_id, "id-1@example.com");
        assert_eq!(e.date_ms, 1_290_174_908_000);
    }

    #[test]
    fn message_text_has_plain_html_and_attachment_names() {
        let raw = b"From: a@example.com\r\nSubject: Hi\r\nX-Tracking: Zebra42\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nPlain W\xc3\xb6rds\r\n\
--b\r\nContent-Type: text/html\r\n\r\n<p>Html <b>Bold</b>Text</p>\r\n--b\r\n\
Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"Report Q3.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n";
        let t = message_text(raw);
        assert!(t.body.contains("plain w\u{f6}rds"), "{:?}", t.body);
        assert!(t.body.contains("html boldtext"), "{:?}", t.body);
        assert!(!t.body.contains("<b>"), "{:?}", t.body);
        assert_eq!(t.attachments, "report q3.pdf\n");
        assert!(t.header.contains("x-tracking: zebra42"));
        assert!(!t.header.contains("plain"));
    }

    #[test]
    fn garbage_gives_empty_fields_not_errors() {
        for raw in [
            &b""[..],
            b"\0\0\0",
            b"no headers at all",
            b"Subject: \xff\xfe\r\n\r\n",
        ] {
            let _ = extract_envelope(raw);
        }
        for raw in [&b""[..], b"\0\0\0", b"no headers at all"] {
            let _ = message_text(raw);
        }
        let long = format!("Subject: {}\r\n\r\n", "x".repeat(5000));
        assert_eq!(extract_envelope(long.as_bytes()).subject.len(), MAX_FIELD);
    }
}
