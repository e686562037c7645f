//! From imap-types values to this crate's own: the parser's types stay here and
//! in the session; the backend never sees them.

use crate::backend::flags;
use crate::search::Criterion;
use imap_codec::imap_types::core::AString;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

/// The UTF-8 name of a mailbox argument; `INBOX` in any case is `INBOX`.
pub fn mailbox_name(m: &Mailbox<'_>) -> Result<String, crate::utf7::Utf7Error> {
    match m {
        Mailbox::Inbox => Ok("INBOX".into()),
        Mailbox::Other(o) => {
            let name = crate::utf7::decode(o.inner().as_ref())?;
            Ok(normalize_inbox(&name))
        }
    }
}

/// The name of a mailbox argument under IMAP4rev2: UTF-8 as sent (RFC 9051
/// §5.1), no modified UTF-7; `INBOX` in any case is `INBOX`.
pub fn mailbox_name_utf8(m: &Mailbox<'_>) -> Result<String, std::str::Utf8Error> {
    match m {
        Mailbox::Inbox => Ok("INBOX".into()),
        Mailbox::Other(o) => Ok(normalize_inbox(std::str::from_utf8(o.inner().as_ref())?)),
    }
}

/// `inbox/x` → `INBOX/x`: INBOX is case-insensitive, the rest is not changed.
pub fn normalize_inbox(name: &str) -> String {
    let (first, rest) = match name.split_once('/') {
        Some((f, r)) => (f, Some(r)),
        None => (name, None),
    };
    if first.eq_ignore_ascii_case("INBOX") {
        match rest {
            Some(r) => format!("INBOX/{r}"),
            None => "INBOX".into(),
        }
    } else {
        name.to_string()
    }
}

pub fn astring(a: &AString<'_>) -> String {
    String::from_utf8_lossy(a.as_ref()).into_owned()
}

/// System flag bits and keywords; `\Recent` and unknown `\Extensions` are ignored.
pub fn flags_of(list: &[Flag<'_>]) -> (u32, Vec<String>) {
    let mut bits = 0;
    let mut kw = Vec::new();
    for f in list {
        match f {
            Flag::Seen => bits |= flags::SEEN,
            Flag::Answered => bits |= flags::ANSWERED,
            Flag::Flagged => bits |= flags::FLAGGED,
            Flag::Deleted => bits |= flags::DELETED,
            Flag::Draft => bits |= flags::DRAFT,
            Flag::Keyword(a) => {
                let k = a.as_ref().to_string();
                if !kw.iter().any(|x: &String| x.eq_ignore_ascii_case(&k)) {
                    kw.push(k);
                }
            }
            Flag::Extension(_) => {}
        }
    }
    (bits, kw)
}

/// "\Seen \Answered ..." for a flag word plus keywords.
pub fn flag_list(bits: u32, keywords: &[String]) -> String {
    let mut parts: Vec<String> = [
        (flags::RECENT, "\\Recent"),
        (flags::ANSWERED, "\\Answered"),
        (flags::FLAGGED, "\\Flagged"),
        (flags::DELETED, "\\Deleted"),
        (flags::SEEN, "\\Seen"),
        (flags::DRAFT, "\\Draft"),
    ]
    .iter()
    .filter(|(b, _)| bits & b != 0)
    .map(|(_, n)| n.to_string())
    .collect();
    parts.extend(keywords.iter().cloned());
    format!("({})", parts.join(" "))
}

/// Resolves a sequence set against `max` (the `*` value): inclusive ranges, or
/// None if a number is above `max` when `strict` (sequence numbers must exist).
pub fn ranges(set: &SequenceSet, max: u32, strict: bool) -> Option<Vec<(u32, u32)>> {
    let val = |s: &SeqOrUid| match s {
        SeqOrUid::Value(v) => v.get(),
        SeqOrUid::Asterisk => max,
    };
    let mut out = Vec::new();
    for s in set.0.as_ref() {
        let (a, b) = match s {
            Sequence::Single(x) => (val(x), val(x)),
            Sequence::Range(x, y) => {
                let (x, y) = (val(x), val(y));
                (x.min(y), x.max(y))
            }
        };
        if strict && (b > max || a == 0) {
            return None;
        }
        out.push((a, b));
    }
    Some(out)
}

/// What a search key is resolved against: the UIDs by sequence number and the
/// UIDs that are recent in this session (RECENT, NEW, OLD).
pub struct SearchContext<'a> {
    pub seq_uids: &'a [u32],
    pub max_uid: u32,
    pub recent: &'a [u32],
}

/// A search key with sequence numbers and \Recent resolved through `cx`.
pub fn criterion(k: &SearchKey<'_>, cx: &SearchContext<'_>) -> Result<Criterion, String> {
    let (seq_uids, max_uid) = (cx.seq_uids, cx.max_uid);
    let recent = || Criterion::Uids(cx.recent.iter().map(|u| (*u, *u)).collect());
    let seq_set = |set: &SequenceSet| -> Criterion {
        let n = seq_uids.len() as u32;
        let r = ranges(set, n, false).unwrap_or_default();
        let mut uids = Vec::new();
        for (a, b) in r {
            for s in a.max(1)..=b.min(n) {
                let u = seq_uids[(s - 1) as usize];
                uids.push((u, u));
            }
        }
        Criterion::Uids(uids)
    };
    let date = |d: &imap_codec::imap_types::datetime::NaiveDate| *d.as_ref();
    Ok(match k {
        SearchKey::And(v) => Criterion::And(
            v.as_ref()
                .iter()
                .map(|k| criterion(k, cx))
                .collect::<Result<_, _>>()?,
        ),
        SearchKey::SequenceSet(s) => seq_set(s),
        SearchKey::Uid(s) => Criterion::Uids(ranges(s, max_uid, false).unwrap_or_default()),
        SearchKey::All => Criterion::All,
        SearchKey::Answered => Criterion::FlagsSet(flags::ANSWERED),
        SearchKey::Deleted => Criterion::FlagsSet(flags::DELETED),
        SearchKey::Draft => Criterion::FlagsSet(flags::DRAFT),
        SearchKey::Flagged => Criterion::FlagsSet(flags::FLAGGED),
        SearchKey::Seen => Criterion::FlagsSet(flags::SEEN),
        SearchKey::Unanswered => Criterion::FlagsClear(flags::ANSWERED),
        SearchKey::Undeleted => Criterion::FlagsClear(flags::DELETED),
        SearchKey::Undraft => Criterion::FlagsClear(flags::DRAFT),
        SearchKey::Unflagged => Criterion::FlagsClear(flags::FLAGGED),
        SearchKey::Unseen => Criterion::FlagsClear(flags::SEEN),
        SearchKey::Recent => recent(),
        SearchKey::New => Criterion::And(vec![recent(), Criterion::FlagsClear(flags::SEEN)]),
        SearchKey::Old => Criterion::Not(Box::new(recent())),
        SearchKey::Keyword(a) => Criterion::Keyword(a.as_ref().to_string()),
        SearchKey::Unkeyword(a) => Criterion::Unkeyword(a.as_ref().to_string()),
        SearchKey::Before(d) => Criterion::Before(date(d)),
        SearchKey::On(d) => Criterion::On(date(d)),
        SearchKey::Since(d) => Criterion::Since(date(d)),
        SearchKey::SentBefore(d) => Criterion::SentBefore(date(d)),
        SearchKey::SentOn(d) => Criterion::SentOn(date(d)),
        SearchKey::SentSince(d) => Criterion::SentSince(date(d)),
        SearchKey::Older(secs) => Criterion::AddedUntil(now_ms() - i64::from(secs.get()) * 1000),
        SearchKey::Younger(secs) => Criterion::AddedFrom(now_ms() - i64::from(secs.get()) * 1000),
        SearchKey::Larger(n) => Criterion::Larger(*n as u64),
        SearchKey::Smaller(n) => Criterion::Smaller(*n as u64),
        SearchKey::Bcc(s) => Criterion::Header("bcc".into(), astring(s)),
        SearchKey::Cc(s) => Criterion::Header("cc".into(), astring(s)),
        SearchKey::From(s) => Criterion::Header("from".into(), astring(s)),
        SearchKey::To(s) => Criterion::Header("to".into(), astring(s)),
        SearchKey::Subject(s) => Criterion::Header("subject".into(), astring(s)),
        SearchKey::Header(n, v) => Criterion::Header(astring(n), astring(v)),
        SearchKey::Body(s) => Criterion::Body(astring(s)),
        SearchKey::Text(s) => Criterion::Text(astring(s)),
        SearchKey::Not(k) => Criterion::Not(Box::new(criterion(k, cx)?)),
        SearchKey::Or(a, b) => {
            Criterion::Or(Box::new(criterion(a, cx)?), Box::new(criterion(b, cx)?))
        }
        SearchKey::ModSequence { modseq, .. } => Criterion::ModSeq(*modseq),
        #[allow(unreachable_patterns)]
        _ => return Err("search key not supported".into()),
    })
}

/// The server's clock, for WITHIN's intervals.
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
