//! One FETCH item's response text, from the message's bytes and its cached
//! renderings (ENVELOPE, BODY, BODYSTRUCTURE).

use super::*;
use crate::cache::Rendered;
use std::io::Write as _;

/// Literals at least this long are written straight to the client.
pub(super) const DIRECT_WRITE_MIN: usize = 16 << 10;

/// Writes one FETCH item. A literal's bytes are returned, not written, after
/// their `{n}` announcement: the caller sends them on.
pub(super) fn fetch_item<'a>(
    out: &mut Vec<u8>,
    n: &MessageDataItemName<'_>,
    m: &MessageMeta,
    raw: Option<&'a [u8]>,
    rendered: &[(Rendered, Arc<[u8]>)],
) -> Option<std::borrow::Cow<'a, [u8]>> {
    use std::borrow::Cow;
    let raw = raw.unwrap_or(b"");
    let answer = |kind: Rendered| -> &[u8] {
        rendered
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, b)| &b[..])
            .unwrap_or(b"NIL")
    };
    let literal = |out: &mut Vec<u8>, data: Cow<'a, [u8]>| {
        wire::literal_announcement(out, data.len());
        Some(data)
    };
    match n {
        MessageDataItemName::Uid => {
            let _ = write!(out, "UID {}", m.uid);
        }
        MessageDataItemName::Flags => {
            out.extend_from_slice(format!("FLAGS {}", flag_list(m.flags, &m.keywords)).as_bytes())
        }
        MessageDataItemName::ModSeq => {
            let _ = write!(out, "MODSEQ ({})", m.modseq.max(1));
        }
        MessageDataItemName::Rfc822Size => {
            let _ = write!(out, "RFC822.SIZE {}", m.size);
        }
        MessageDataItemName::InternalDate => {
            let d = chrono::DateTime::from_timestamp_millis(m.internal_date_ms)
                .unwrap_or_default()
                .format("%d-%b-%Y %H:%M:%S +0000");
            let _ = write!(out, "INTERNALDATE \"{d}\"");
        }
        MessageDataItemName::Envelope => {
            out.extend_from_slice(b"ENVELOPE ");
            out.extend_from_slice(answer(Rendered::Envelope));
        }
        MessageDataItemName::Body => {
            out.extend_from_slice(b"BODY ");
            out.extend_from_slice(answer(Rendered::Body));
        }
        MessageDataItemName::BodyStructure => {
            out.extend_from_slice(b"BODYSTRUCTURE ");
            out.extend_from_slice(answer(Rendered::BodyStructure));
        }
        MessageDataItemName::Rfc822 => {
            out.extend_from_slice(b"RFC822 ");
            return literal(out, Cow::Borrowed(raw));
        }
        MessageDataItemName::Rfc822Header => {
            out.extend_from_slice(b"RFC822.HEADER ");
            return literal(out, Cow::Borrowed(mime::parse(raw).header));
        }
        MessageDataItemName::Rfc822Text => {
            out.extend_from_slice(b"RFC822.TEXT ");
            return literal(out, Cow::Borrowed(mime::parse(raw).body));
        }
        MessageDataItemName::Binary {
            section, partial, ..
        } => {
            let part: Vec<u32> = section.iter().map(|n| n.get()).collect();
            let data = mime::binary(raw, &part).unwrap_or_default();
            let _ = write!(out, "BINARY[{}]", join_parts(&part));
            let data = match partial {
                Some((origin, len)) => {
                    let _ = write!(out, "<{origin}>");
                    let start = (*origin as usize).min(data.len());
                    let end = start.saturating_add(len.get() as usize).min(data.len());
                    data[start..end].to_vec()
                }
                None => data,
            };
            out.push(b' ');
            // Decoded content that is not text (NUL, a bare CR or LF) goes as
            // a literal8 (RFC 3516 §4.3).
            if wire::needs_literal8(&data) {
                out.push(b'~');
            }
            return literal(out, Cow::Owned(data));
        }
        MessageDataItemName::BinarySize { section } => {
            let part: Vec<u32> = section.iter().map(|n| n.get()).collect();
            let size = mime::binary(raw, &part).map_or(0, |d| d.len());
            let _ = write!(out, "BINARY.SIZE[{}] {size}", join_parts(&part));
        }
        MessageDataItemName::BodyExt {
            section, partial, ..
        } => {
            let (part, what, spec) = section_of(section.as_ref());
            let data: Cow<'a, [u8]> = if part.is_empty() && what == SectionText::Full {
                // BODY[]: the stored bytes as they are, without parsing them.
                Cow::Borrowed(raw)
            } else {
                Cow::Owned(mime::section(raw, &part, &what).unwrap_or_default())
            };
            let _ = write!(out, "BODY[{spec}]");
            let data = match partial {
                Some((origin, len)) => {
                    let _ = write!(out, "<{origin}>");
                    let start = (*origin as usize).min(data.len());
                    let end = start.saturating_add(len.get() as usize).min(data.len());
                    match data {
                        Cow::Borrowed(d) => Cow::Borrowed(&d[start..end]),
                        Cow::Owned(d) => Cow::Owned(d[start..end].to_vec()),
                    }
                }
                None => data,
            };
            out.push(b' ');
            return literal(out, data);
        }
    }
    None
}

fn part_vec(p: &imap_codec::imap_types::fetch::Part) -> Vec<u32> {
    p.0.as_ref().iter().map(|n| n.get()).collect()
}

pub(super) fn section_depth(s: &Section<'_>) -> usize {
    match s {
        Section::Part(p) | Section::Mime(p) => p.0.as_ref().len(),
        Section::Header(p) | Section::Text(p) => p.as_ref().map_or(0, |p| p.0.as_ref().len()),
        Section::HeaderFields(p, _) | Section::HeaderFieldsNot(p, _) => {
            p.as_ref().map_or(0, |p| p.0.as_ref().len())
        }
    }
}

/// (part path, what, the section spec as echoed in the response).
fn section_of(s: Option<&Section<'_>>) -> (Vec<u32>, SectionText, String) {
    let dotted = |p: &[u32]| {
        p.iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(".")
    };
    let prefix = |p: &[u32]| {
        if p.is_empty() {
            String::new()
        } else {
            format!("{}.", dotted(p))
        }
    };
    let names = |v: &Vec1<imap_codec::imap_types::core::AString<'_>>| {
        v.as_ref().iter().map(convert::astring).collect::<Vec<_>>()
    };
    match s {
        None => (vec![], SectionText::Full, String::new()),
        Some(Section::Part(p)) => {
            let p = part_vec(p);
            let spec = dotted(&p);
            (p, SectionText::Full, spec)
        }
        Some(Section::Header(p)) => {
            let p = p.as_ref().map(part_vec).unwrap_or_default();
            let spec = format!("{}HEADER", prefix(&p));
            (p, SectionText::Header, spec)
        }
        Some(Section::Text(p)) => {
            let p = p.as_ref().map(part_vec).unwrap_or_default();
            let spec = format!("{}TEXT", prefix(&p));
            (p, SectionText::Text, spec)
        }
        Some(Section::Mime(p)) => {
            let p = part_vec(p);
            let spec = format!("{}MIME", prefix(&p));
            (p, SectionText::Mime, spec)
        }
        Some(Section::HeaderFields(p, f)) | Some(Section::HeaderFieldsNot(p, f)) => {
            let not = matches!(s, Some(Section::HeaderFieldsNot(..)));
            let p = p.as_ref().map(part_vec).unwrap_or_default();
            let n = names(f);
            let quoted: Vec<String> = n
                .iter()
                .map(|x| {
                    let mut o = Vec::new();
                    wire::mailbox(&mut o, x);
                    String::from_utf8_lossy(&o).into_owned()
                })
                .collect();
            let spec = format!(
                "{}HEADER.FIELDS{} ({})",
                prefix(&p),
                if not { ".NOT" } else { "" },
                quoted.join(" ")
            );
            (p, SectionText::HeaderFields { names: n, not }, spec)
        }
    }
}

fn join_parts(p: &[u32]) -> String {
    p.iter().map(u32::to_string).collect::<Vec<_>>().join(".")
}
