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
    let addresses = |a: Option<&mail_parser::Address<'_>>| -> String {
        let Some(a) = a else { return String::new() };
        let list: Vec<String> = a
            .iter()
            .map(|addr| match (addr.name(), addr.address()) {
                (Some(n), Some(e)) => format!("{n} <{e}>"),
                (None, Some(e)) => e.to_string(),
                (Some(n), None) => n.to_string(),
                (None, None) => String::new(),
            })
            .filter(|s| !s.is_empty())
            .collect();
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
    fn garbage_gives_empty_fields_not_errors() {
        for raw in [
            &b""[..],
            b"\0\0\0",
            b"no headers at all",
            b"Subject: \xff\xfe\r\n\r\n",
        ] {
            let _ = extract_envelope(raw);
        }
        let long = format!("Subject: {}\r\n\r\n", "x".repeat(5000));
        assert_eq!(extract_envelope(long.as_bytes()).subject.len(), MAX_FIELD);
    }
}
