//! LDIF (RFC 2849) content records: a strict parser and a writer.
//!
//! Backups store the directory as LDIF (`ldap/ldap.bak`, per-account entries), so
//! the parser reads files that may have been damaged, truncated or edited by hand: it
//! never panics, accepts only what the RFC allows (plus optional `version: 1`), and
//! every error names the line it found. Change records (`changetype:`) and URL values
//! (`attr:< file://...`) are refused rather than half-supported.
//!
//! The writer always produces ASCII: a value that is not a "safe string" is
//! base64-encoded, lines are folded at 76 columns, and entries end with a blank line.
//! `parse(write(entries))` gives `entries` back for any UTF-8 values.

/// Longest physical line the writer produces (RFC 2849 suggests folding at 76).
pub const FOLD_COLUMN: usize = 76;

/// One LDIF entry: a DN and its attribute values in file order.
#[derive(Debug, Clone, Default, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub dn: String,
    /// `(attribute name, value)` pairs in file order; a multi-valued attribute
    /// appears once per value.
    pub attrs: Vec<(String, String)>,
    /// The line where the entry's `dn:` starts (0 for entries built in memory). Not
    /// part of equality: it says where an entry came from, not what it is.
    #[serde(skip)]
    pub line: usize,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.dn == other.dn && self.attrs == other.attrs
    }
}

impl Entry {
    pub fn new(dn: impl Into<String>) -> Entry {
        Entry {
            dn: dn.into(),
            attrs: Vec::new(),
            line: 0,
        }
    }

    /// Appends one value of `name`.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.attrs.push((name.to_string(), value.into()));
    }

    /// The values of `name` (attribute names are case-insensitive, as in LDAP).
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.attrs
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// This entry alone as an LDIF document (with the `version: 1` header).
    pub fn to_ldif(&self) -> String {
        write(std::slice::from_ref(self))
    }
}

/// Why an LDIF document was refused, and the (1-based) line where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("LDIF line {line}: {reason}")]
pub struct LdifError {
    pub line: usize,
    pub reason: String,
}

fn err<T>(line: usize, reason: impl Into<String>) -> Result<T, LdifError> {
    Err(LdifError {
        line,
        reason: reason.into(),
    })
}

// ---------------------------------------------------------------- writing

/// Writes entries as one LDIF document: `version: 1`, a blank line, then each entry
/// followed by a blank line.
pub fn write(entries: &[Entry]) -> String {
    let mut out = String::from("version: 1\n\n");
    for entry in entries {
        write_entry(&mut out, entry);
    }
    out
}

/// Appends one entry and the blank line that ends it.
pub fn write_entry(out: &mut String, entry: &Entry) {
    write_value(out, "dn", &entry.dn);
    for (name, value) in &entry.attrs {
        write_value(out, name, value);
    }
    out.push('\n');
}

fn write_value(out: &mut String, name: &str, value: &str) {
    let line = if value.is_empty() {
        format!("{name}:")
    } else if is_safe_string(value.as_bytes()) {
        format!("{name}: {value}")
    } else {
        format!("{name}:: {}", base64_encode(value.as_bytes()))
    };
    fold(out, &line);
}

/// True if `v` may be written as a plain value: RFC 2849 SAFE-STRING (ASCII without
/// NUL, CR, LF; not starting with space, ':' or '<'), and, because many tools strip
/// it, without a trailing space.
fn is_safe_string(v: &[u8]) -> bool {
    let Some((&first, _)) = v.split_first() else {
        return true;
    };
    if matches!(first, b' ' | b':' | b'<') || v.last() == Some(&b' ') {
        return false;
    }
    v.iter()
        .all(|&b| (0x01..=0x7f).contains(&b) && b != b'\n' && b != b'\r')
}

/// Folds a logical line: the first physical line holds up to FOLD_COLUMN bytes, each
/// continuation a space and up to FOLD_COLUMN - 1 more. Breaks only at character
/// boundaries (the writer's output is ASCII anyway unless a name is not).
fn fold(out: &mut String, line: &str) {
    let mut width = 0;
    for ch in line.chars() {
        let len = ch.len_utf8();
        if width + len > FOLD_COLUMN {
            out.push_str("\n ");
            width = 1;
        }
        out.push(ch);
        width += len;
    }
    out.push('\n');
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 0x3f) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Strict base64 (standard alphabet, padded, no whitespace, zero unused bits), so
/// that every accepted value has exactly one spelling.
fn base64_decode(s: &[u8]) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(4) {
        return Err(format!(
            "base64 text has {} characters, not a multiple of 4",
            s.len()
        ));
    }
    let sextet = |c: u8| -> Option<u32> { B64.iter().position(|&x| x == c).map(|p| p as u32) };
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let chunks = s.len() / 4;
    for (i, chunk) in s.chunks(4).enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != chunks) {
            return Err("'=' padding in the middle of base64 text".into());
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            let v = sextet(c)
                .ok_or_else(|| format!("{:?} is not a base64 character", char::from(c)))?;
            n = (n << 6) | v;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        let keep = 3 - pad;
        if bytes[keep..].iter().any(|&b| b != 0) {
            return Err("base64 text has non-zero padding bits".into());
        }
        out.extend_from_slice(&bytes[..keep]);
    }
    Ok(out)
}

// ---------------------------------------------------------------- parsing

/// A logical line (continuations joined) and the physical line it starts on.
struct Logical {
    line: usize,
    text: Vec<u8>,
}

/// Parses an LDIF document of content records. Accepts LF or CRLF line ends,
/// comments, folded lines, an optional `version: 1` first line, base64 values;
/// values must be UTF-8 text. Never panics; errors carry the line number.
pub fn parse(input: &[u8]) -> Result<Vec<Entry>, LdifError> {
    let records = split_records(input)?;
    let mut entries = Vec::with_capacity(records.len());
    let mut first = true;
    for record in records {
        let mut lines = record.as_slice();
        if first {
            first = false;
            if let Some(l) = lines.first()
                && starts_with_ignore_case(&l.text, b"version:")
            {
                let v = trim_fill(&l.text[b"version:".len()..]);
                if v != b"1" {
                    return err(
                        l.line,
                        format!(
                            "unsupported LDIF version {:?}: only version 1 is supported",
                            String::from_utf8_lossy(v)
                        ),
                    );
                }
                lines = &lines[1..];
                if lines.is_empty() {
                    continue;
                }
            }
        }
        entries.push(parse_record(lines)?);
    }
    Ok(entries)
}

/// Splits input into records (groups of logical lines between blank lines), joining
/// folded lines and dropping comments.
fn split_records(input: &[u8]) -> Result<Vec<Vec<Logical>>, LdifError> {
    #[derive(PartialEq)]
    enum Prev {
        Nothing,
        Content,
        Comment,
    }
    let mut records: Vec<Vec<Logical>> = Vec::new();
    let mut current: Vec<Logical> = Vec::new();
    let mut prev = Prev::Nothing;
    let mut physical = input.split(|&b| b == b'\n').peekable();
    let mut number = 0;
    while let Some(raw) = physical.next() {
        number += 1;
        // The empty piece after a final newline is not a line.
        if raw.is_empty() && physical.peek().is_none() {
            break;
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        match raw.first() {
            None => {
                if !current.is_empty() {
                    records.push(std::mem::take(&mut current));
                }
                prev = Prev::Nothing;
            }
            Some(b' ') => match prev {
                Prev::Content => {
                    if let Some(last) = current.last_mut() {
                        last.text.extend_from_slice(&raw[1..]);
                    }
                }
                Prev::Comment => {}
                Prev::Nothing => {
                    return err(
                        number,
                        "continuation line (starting with a space) has no line to continue; \
                         remove the leading space or the blank line before it",
                    );
                }
            },
            Some(b'#') => prev = Prev::Comment,
            Some(_) => {
                current.push(Logical {
                    line: number,
                    text: raw.to_vec(),
                });
                prev = Prev::Content;
            }
        }
    }
    if !current.is_empty() {
        records.push(current);
    }
    Ok(records)
}

fn parse_record(lines: &[Logical]) -> Result<Entry, LdifError> {
    let Some((head, rest)) = lines.split_first() else {
        return err(0, "empty entry");
    };
    let (name, dn) = parse_attr_value(head)?;
    if !name.eq_ignore_ascii_case("dn") {
        return err(
            head.line,
            format!("expected `dn:` to start an entry, found attribute {name:?}"),
        );
    }
    let mut entry = Entry {
        dn,
        attrs: Vec::with_capacity(rest.len()),
        line: head.line,
    };
    for l in rest {
        let (name, value) = parse_attr_value(l)?;
        if name.eq_ignore_ascii_case("changetype") || name.eq_ignore_ascii_case("control") {
            return err(
                l.line,
                format!(
                    "{name}: change records are not supported; only content entries can be imported"
                ),
            );
        }
        if name.eq_ignore_ascii_case("dn") {
            return err(
                l.line,
                "a second `dn:` inside one entry; separate entries with a blank line",
            );
        }
        entry.attrs.push((name, value));
    }
    if entry.attrs.is_empty() {
        return err(head.line, format!("entry {:?} has no attributes", entry.dn));
    }
    Ok(entry)
}

/// Parses `name: value`, `name:: base64` (the `dn` line included).
fn parse_attr_value(l: &Logical) -> Result<(String, String), LdifError> {
    let Some(colon) = l.text.iter().position(|&b| b == b':') else {
        return err(
            l.line,
            format!(
                "expected `name: value`, found {:?} (no ':')",
                String::from_utf8_lossy(&l.text)
            ),
        );
    };
    let name = &l.text[..colon];
    if !is_attribute_description(name) {
        return err(
            l.line,
            format!(
                "invalid attribute name {:?} (letters, digits and '-', starting with a letter, or an OID)",
                String::from_utf8_lossy(name)
            ),
        );
    }
    // Checked ASCII above, so this cannot fail; avoid unwrap all the same.
    let name = String::from_utf8_lossy(name).into_owned();
    let rest = &l.text[colon + 1..];
    let value = match rest.first() {
        Some(b':') => {
            let bytes = base64_decode(trim_fill(&rest[1..]))
                .or_else(|why| err(l.line, format!("bad base64 value of {name}: {why}")))?;
            String::from_utf8(bytes)
                .or_else(|_| err(l.line, format!("base64 value of {name} is not UTF-8 text")))?
        }
        Some(b'<') => {
            return err(
                l.line,
                format!("URL values ({name}:< ...) are not supported; put the value inline"),
            );
        }
        _ => {
            let v = trim_fill(rest);
            check_safe_plain(&name, v).or_else(|why| err(l.line, why))?;
            // Safe strings are ASCII.
            String::from_utf8_lossy(v).into_owned()
        }
    };
    Ok((name, value))
}

fn check_safe_plain(name: &str, v: &[u8]) -> Result<(), String> {
    if let Some(&first) = v.first()
        && (first == b':' || first == b'<')
    {
        return Err(format!(
            "plain value of {name} starts with {:?}; base64-encode it ({name}:: ...)",
            char::from(first)
        ));
    }
    for &b in v {
        match b {
            0 => return Err(format!("NUL byte in the value of {name}; base64-encode it")),
            b'\r' => {
                return Err(format!(
                    "carriage return inside the value of {name}; base64-encode it"
                ));
            }
            0x80.. => {
                return Err(format!(
                    "non-ASCII byte in the plain value of {name}; base64-encode it ({name}:: ...)"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// RFC 2849 FILL: spaces between the separator and the value.
fn trim_fill(v: &[u8]) -> &[u8] {
    let n = v.iter().take_while(|&&b| b == b' ').count();
    &v[n..]
}

fn starts_with_ignore_case(text: &[u8], prefix: &[u8]) -> bool {
    text.len() >= prefix.len() && text[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// RFC 4512 attribute description: (descr | numericoid) *(";" option).
fn is_attribute_description(s: &[u8]) -> bool {
    let mut parts = s.split(|&b| b == b';');
    let Some(ty) = parts.next() else {
        return false;
    };
    let descr = ty.first().is_some_and(u8::is_ascii_alphabetic)
        && ty.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-');
    let oid = !ty.is_empty()
        && ty.split(|&b| b == b'.').all(|n| {
            !n.is_empty() && n.iter().all(u8::is_ascii_digit) && (n.len() == 1 || n[0] != b'0')
        });
    (descr || oid)
        && parts.all(|o| !o.is_empty() && o.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-'))
}

/// Escapes an RDN value per RFC 4514 (for names that may hold `+`, `=`, `,` ...).
pub fn escape_rdn_value(v: &str) -> String {
    let count = v.chars().count();
    let mut out = String::with_capacity(v.len());
    for (i, ch) in v.chars().enumerate() {
        match ch {
            '\0' => out.push_str("\\00"),
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(ch);
            }
            '#' | ' ' if i == 0 => {
                out.push('\\');
                out.push(ch);
            }
            ' ' if i + 1 == count => out.push_str("\\ "),
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip_and_strictness() {
        for s in ["", "a", "ab", "abc", "abcd", " leading", "é\n\0"] {
            let enc = base64_encode(s.as_bytes());
            assert_eq!(base64_decode(enc.as_bytes()).unwrap(), s.as_bytes());
        }
        assert_eq!(base64_encode(b"Man"), "TWFu");
        assert_eq!(base64_encode(b"Ma"), "TWE=");
        assert!(base64_decode(b"TWE").is_err());
        assert!(base64_decode(b"TW=u").is_err());
        assert!(base64_decode(b"TWF=").is_err(), "non-zero pad bits");
        assert!(base64_decode(b"TW==TWFu").is_err());
        assert!(base64_decode(b"T!Fu").is_err());
        assert!(base64_decode(b"T===").is_err());
    }

    #[test]
    fn safe_strings() {
        assert!(is_safe_string(b"hello world"));
        assert!(!is_safe_string(b" lead"));
        assert!(!is_safe_string(b"trail "));
        assert!(!is_safe_string(b":colon"));
        assert!(!is_safe_string(b"<lt"));
        assert!(!is_safe_string("é".as_bytes()));
        assert!(!is_safe_string(b"a\nb"));
        assert!(!is_safe_string(b"a\rb"));
        assert!(!is_safe_string(b"a\0b"));
        assert!(is_safe_string(b"a:b<c"));
    }

    #[test]
    fn writes_base64_and_folds() {
        let mut e = Entry::new("cn=x");
        e.push("description", " leading space");
        e.push("cn", "");
        let long = "x".repeat(200);
        e.push("description", long.clone());
        let text = e.to_ldif();
        assert!(text.starts_with("version: 1\n\ndn: cn=x\n"));
        assert!(text.contains("description:: IGxlYWRpbmcgc3BhY2U=\n"));
        assert!(text.contains("\ncn:\n"));
        assert!(text.lines().all(|l| l.len() <= FOLD_COLUMN));
        assert!(text.ends_with("\n\n"));
        let back = parse(text.as_bytes()).unwrap();
        assert_eq!(back, vec![e]);
        assert_eq!(back[0].line, 3);
    }

    #[test]
    fn parses_rfc_example_forms() {
        let text = b"version: 1\r\n# a comment\r\n  folded comment\r\ndn: cn=Barbara Jensen, ou=Product Development, dc=airius, dc=com\r\nobjectclass: top\r\ncn:   Barbara Jensen\r\ndescription: A big sailing fan with a long\r\n  description\r\n\r\n\r\ndn:: Y249w6k=\r\ncn:: w6k=\r\n";
        let entries = parse(text).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].line, 4);
        assert_eq!(
            entries[0].values("CN").collect::<Vec<_>>(),
            vec!["Barbara Jensen"]
        );
        assert_eq!(
            entries[0].values("description").next(),
            Some("A big sailing fan with a long description")
        );
        assert_eq!(entries[1].dn, "cn=é");
        assert_eq!(entries[1].line, 11);
    }

    #[test]
    fn version_is_optional_and_checked() {
        assert_eq!(parse(b"dn: a=b\nc: d\n").unwrap().len(), 1);
        assert_eq!(parse(b"version: 1\ndn: a=b\nc: d").unwrap().len(), 1);
        assert!(parse(b"").unwrap().is_empty());
        assert!(parse(b"version: 1\n").unwrap().is_empty());
        let e = parse(b"version: 2\n\ndn: a=b\nc: d\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.reason.contains("version"), "{e}");
    }

    fn line_of(input: &str) -> (usize, String) {
        let e = parse(input.as_bytes()).unwrap_err();
        (e.line, e.reason)
    }

    #[test]
    fn rejects_malformed_input_with_line_numbers() {
        let cases: &[(&str, usize, &str)] = &[
            ("dn: a=b\nno colon here\n", 2, "no ':'"),
            ("dn: a=b\n\n continuation\n", 3, "no line to continue"),
            (" leading\n", 1, "no line to continue"),
            ("cn: x\n", 1, "expected `dn:`"),
            ("dn: a=b\n", 1, "no attributes"),
            (
                "dn: a=b\nc: d\n\ndn: e=f\nchangetype: add\n",
                5,
                "change records",
            ),
            ("dn: a=b\nc:< file:///etc/passwd\n", 2, "URL values"),
            ("dn: a=b\nc:: !!!!\n", 2, "base64"),
            ("dn: a=b\nc:: /w==\n", 2, "not UTF-8"),
            ("dn: a=b\nc: caf\u{e9}\n", 2, "non-ASCII"),
            ("dn: a=b\nc: a\rb\n", 2, "carriage return"),
            ("dn: a=b\nc: a\0b\n", 2, "NUL"),
            ("dn: a=b\nc: :x\n", 2, "starts with"),
            ("dn: a=b\n1bad: x\n", 2, "invalid attribute name"),
            ("dn: a=b\nc;: x\n", 2, "invalid attribute name"),
            ("dn: a=b\nc: d\ndn: e=f\n", 3, "second `dn:`"),
            (
                "version: 1\n\ndn: a=b\nc: d\n\ncn: e\n",
                6,
                "expected `dn:`",
            ),
        ];
        for (input, line, what) in cases {
            let (got_line, reason) = line_of(input);
            assert_eq!(got_line, *line, "{input:?}: {reason}");
            assert!(reason.contains(what), "{input:?}: {reason}");
        }
    }

    #[test]
    fn accepts_options_and_oids() {
        let e = parse(b"dn: a=b\ncn;lang-en: x\n2.5.4.3: y\n").unwrap();
        assert_eq!(e[0].attrs.len(), 2);
        assert!(parse(b"dn: a=b\n01.2: y\n").is_err());
    }

    #[test]
    fn rdn_escaping() {
        assert_eq!(escape_rdn_value("a+b=c"), "a\\+b\\=c");
        assert_eq!(escape_rdn_value("#x"), "\\#x");
        assert_eq!(escape_rdn_value("plain.name"), "plain.name");
    }

    mod proptests {
        use super::super::*;
        use proptest::prelude::*;

        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                "[ -~]{0,100}",
                any::<String>(),
                "[ :<a-z\r\n\t\u{e9}\u{1F600}]{0,200}",
            ]
        }

        /// Any attribute name but the three LDIF itself gives a meaning to (`dn`
        /// starts an entry, `changetype`/`control` a change record): the directory
        /// refuses attributes outside its schema, so it never writes those.
        fn attribute_name() -> impl Strategy<Value = String> {
            "[a-zA-Z][a-zA-Z0-9-]{0,90}".prop_filter("a name LDIF reserves", |name| {
                !["dn", "changetype", "control"]
                    .iter()
                    .any(|reserved| name.eq_ignore_ascii_case(reserved))
            })
        }

        fn entry() -> impl Strategy<Value = Entry> {
            (
                value(),
                prop::collection::vec((attribute_name(), value()), 1..6),
            )
                .prop_map(|(dn, attrs)| Entry { dn, attrs, line: 0 })
        }

        proptest! {
            #[test]
            fn write_then_parse_is_identity(entries in prop::collection::vec(entry(), 0..5)) {
                let text = write(&entries);
                prop_assert!(text.is_ascii());
                prop_assert!(text.lines().all(|l| l.len() <= FOLD_COLUMN));
                let back = parse(text.as_bytes()).unwrap();
                prop_assert_eq!(&back, &entries);
                prop_assert_eq!(write(&back), text);
            }

            #[test]
            fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
                let _ = parse(&bytes);
            }

            /// What the parser accepts survives write → parse unchanged (the
            /// fuzz target checks the same on arbitrary bytes).
            #[test]
            fn parse_never_panics_on_ldif_like_text(s in "(dn|cn|version|#| |:|::|<|=|a|\n|\r\n|\u{e9}|QQ==){0,60}") {
                match parse(s.as_bytes()) {
                    Ok(entries) => {
                        let again = parse(write(&entries).as_bytes()).unwrap();
                        prop_assert_eq!(again, entries);
                    }
                    Err(e) => prop_assert!(e.line >= 1 && e.line <= s.split('\n').count().max(1)),
                }
            }

            #[test]
            fn accepted_documents_round_trip(lines in prop::collection::vec(prop_oneof![
                "(dn|DN): [a-z=,]{0,6}",
                "dn:: [A-Za-z0-9+/]{0,8}(==|=)?",
                "(cn|sn|x-y;lang-en|2.5.4.3)(:|::|: |:  )[A-Za-z0-9+/= :<]{0,12}",
                "#.{0,5}",
                " [a-z :]{0,5}",
                "",
                "version: 1",
            ], 0..25), crlf in any::<bool>()) {
                let text = lines.join(if crlf { "\r\n" } else { "\n" });
                if let Ok(entries) = parse(text.as_bytes()) {
                    let written = write(&entries);
                    let again = parse(written.as_bytes()).unwrap();
                    prop_assert_eq!(&again, &entries);
                    prop_assert_eq!(write(&again), written);
                }
            }
        }
    }
}
