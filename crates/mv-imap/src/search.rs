//! SEARCH criteria as the backend receives them (sequence numbers already turned
//! into UIDs by the session), and [`scan`], the evaluation by reading every
//! message, for backends without an index. A backend with an index answers the
//! text keys it can through [`resolve`] and leaves the rest (flags, dates, sizes,
//! UID sets, NOT/OR) to [`scan`], which then reads no message bytes for them.

use crate::backend::MessageMeta;
use crate::mime;
use chrono::NaiveDate;

/// One RFC 3501 search key. Dates compare in UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Criterion {
    All,
    /// UID ranges, inclusive.
    Uids(Vec<(u32, u32)>),
    /// Messages with all of these flag bits set / clear.
    FlagsSet(u32),
    FlagsClear(u32),
    Keyword(String),
    Unkeyword(String),
    /// Internal date.
    Before(NaiveDate),
    On(NaiveDate),
    Since(NaiveDate),
    /// Internal date at or before / at or after this instant, in ms since the
    /// epoch (WITHIN's OLDER and YOUNGER, RFC 5032).
    AddedUntil(i64),
    AddedFrom(i64),
    /// Date: header.
    SentBefore(NaiveDate),
    SentOn(NaiveDate),
    SentSince(NaiveDate),
    Larger(u64),
    Smaller(u64),
    /// Header field contains (case-insensitive); an empty value matches any
    /// message that has the field.
    Header(String, String),
    Body(String),
    Text(String),
    ModSeq(u64),
    /// A sub-criterion the backend already answered: the matching UIDs, sorted.
    Found(Vec<u32>),
    Not(Box<Criterion>),
    Or(Box<Criterion>, Box<Criterion>),
    And(Vec<Criterion>),
}

impl Criterion {
    /// Whether evaluating it needs the message's bytes.
    pub fn needs_content(&self) -> bool {
        match self {
            Criterion::Header(..)
            | Criterion::Body(_)
            | Criterion::Text(_)
            | Criterion::SentBefore(_)
            | Criterion::SentOn(_)
            | Criterion::SentSince(_) => true,
            Criterion::Not(c) => c.needs_content(),
            Criterion::Or(a, b) => a.needs_content() || b.needs_content(),
            Criterion::And(v) => v.iter().any(Criterion::needs_content),
            _ => false,
        }
    }
}

fn contains_ci(hay: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    if n.is_empty() {
        return true;
    }
    let hay_lower = String::from_utf8_lossy(hay).to_lowercase();
    hay_lower.contains(&needle.to_lowercase())
}

fn date_of(ms: i64) -> Option<NaiveDate> {
    chrono::DateTime::from_timestamp_millis(ms).map(|d| d.date_naive())
}

/// The day of the Date: header as its writer wrote it (RFC 3501 §6.4.4:
/// "disregarding time and timezone"), not converted to UTC.
fn sent_date(raw: &[u8]) -> Option<NaiveDate> {
    let (header, _) = raw.split_at(header_len(raw));
    let msg = mail_parser::MessageParser::default().parse_headers(header)?;
    let d = msg.date().filter(|d| d.is_valid())?;
    NaiveDate::from_ymd_opt(d.year as i32, d.month as u32, d.day as u32)
}

fn header_len(raw: &[u8]) -> usize {
    let e = mime::parse(raw);
    e.header.len()
}

/// Whether one message matches; `raw` is loaded only if a criterion needs it.
pub fn matches(c: &Criterion, m: &MessageMeta, raw: &mut dyn FnMut() -> Option<Vec<u8>>) -> bool {
    let mut cache: Option<Option<Vec<u8>>> = None;
    eval(c, m, &mut |_| {
        if cache.is_none() {
            cache = Some(raw());
        }
        cache.clone().flatten()
    })
}

fn eval(c: &Criterion, m: &MessageMeta, raw: &mut dyn FnMut(()) -> Option<Vec<u8>>) -> bool {
    match c {
        Criterion::All => true,
        Criterion::Uids(r) => r.iter().any(|(a, b)| (*a..=*b).contains(&m.uid)),
        Criterion::FlagsSet(b) => m.flags & b == *b,
        Criterion::FlagsClear(b) => m.flags & b == 0,
        Criterion::Keyword(k) => m.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)),
        Criterion::Unkeyword(k) => !m.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)),
        Criterion::Before(d) => date_of(m.internal_date_ms).is_some_and(|x| x < *d),
        Criterion::On(d) => date_of(m.internal_date_ms).is_some_and(|x| x == *d),
        Criterion::Since(d) => date_of(m.internal_date_ms).is_some_and(|x| x >= *d),
        Criterion::SentBefore(d) => raw(()).and_then(|r| sent_date(&r)).is_some_and(|x| x < *d),
        Criterion::SentOn(d) => raw(()).and_then(|r| sent_date(&r)).is_some_and(|x| x == *d),
        Criterion::SentSince(d) => raw(()).and_then(|r| sent_date(&r)).is_some_and(|x| x >= *d),
        Criterion::AddedUntil(t) => m.internal_date_ms <= *t,
        Criterion::AddedFrom(t) => m.internal_date_ms >= *t,
        Criterion::Larger(n) => m.size > *n,
        Criterion::Smaller(n) => m.size < *n,
        Criterion::ModSeq(n) => m.modseq >= *n,
        Criterion::Found(uids) => uids.binary_search(&m.uid).is_ok(),
        Criterion::Header(name, value) => raw(()).is_some_and(|r| {
            let e = mime::parse(&r);
            let f = mime::fields(e.header);
            f.iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .any(|(_, v)| contains_ci(v, value))
        }),
        Criterion::Body(s) => raw(()).is_some_and(|r| {
            let e = mime::parse(&r);
            contains_ci(e.body, s)
        }),
        Criterion::Text(s) => raw(()).is_some_and(|r| contains_ci(&r, s)),
        Criterion::Not(c) => !eval(c, m, raw),
        Criterion::Or(a, b) => eval(a, m, raw) || eval(b, m, raw),
        Criterion::And(v) => v.iter().all(|c| eval(c, m, raw)),
    }
}

/// Answers one leaf criterion from elsewhere (the search index): the sorted UIDs
/// matching it, or `None` when it must be scanned.
pub type Answer<'a, E> = dyn FnMut(&Criterion) -> Result<Option<Vec<u32>>, E> + 'a;

/// Replaces every leaf criterion that `answer` can answer (with the sorted UIDs
/// that match it) by [`Criterion::Found`]; the tree around it (NOT, OR, AND) is
/// kept, so [`scan`] combines the answers with the other keys exactly.
pub fn resolve<E>(criteria: &[Criterion], answer: &mut Answer<'_, E>) -> Result<Vec<Criterion>, E> {
    let mut out = Vec::with_capacity(criteria.len());
    for c in criteria {
        out.push(resolve_one(c, &mut *answer)?);
    }
    Ok(out)
}

fn resolve_one<E>(c: &Criterion, answer: &mut Answer<'_, E>) -> Result<Criterion, E> {
    Ok(match c {
        Criterion::Not(x) => Criterion::Not(Box::new(resolve_one(x, answer)?)),
        Criterion::Or(a, b) => Criterion::Or(
            Box::new(resolve_one(a, answer)?),
            Box::new(resolve_one(b, answer)?),
        ),
        Criterion::And(v) => Criterion::And(resolve(v, answer)?),
        leaf => match answer(leaf)? {
            Some(mut uids) => {
                uids.sort_unstable();
                uids.dedup();
                Criterion::Found(uids)
            }
            None => leaf.clone(),
        },
    })
}

/// Evaluates criteria (ANDed) over messages, loading each message's bytes
/// through `load` only when a criterion needs them.
pub fn scan(
    criteria: &[Criterion],
    messages: &[MessageMeta],
    mut load: impl FnMut(u32) -> Option<Vec<u8>>,
) -> Vec<u32> {
    let all = Criterion::And(criteria.to_vec());
    messages
        .iter()
        .filter(|m| matches(&all, m, &mut || load(m.uid)))
        .map(|m| m.uid)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::flags;

    #[test]
    fn scan_evaluates_keys() {
        let msgs = vec![
            MessageMeta {
                uid: 1,
                flags: flags::SEEN,
                keywords: vec!["work".into()],
                modseq: 5,
                size: 100,
                internal_date_ms: 0,
            },
            MessageMeta {
                uid: 2,
                flags: 0,
                keywords: vec![],
                modseq: 9,
                size: 5000,
                internal_date_ms: 86_400_000 * 2,
            },
        ];
        let raw = |uid: u32| {
            Some(format!("Subject: msg {uid}\r\nDate: Thu, 1 Jan 1970 00:00:00 +0000\r\n\r\nbody text {uid}\r\n").into_bytes())
        };
        assert_eq!(
            scan(&[Criterion::FlagsClear(flags::SEEN)], &msgs, raw),
            vec![2]
        );
        assert_eq!(
            scan(&[Criterion::Keyword("WORK".into())], &msgs, raw),
            vec![1]
        );
        assert_eq!(
            scan(&[Criterion::Body("TEXT 2".into())], &msgs, raw),
            vec![2]
        );
        assert_eq!(
            scan(
                &[Criterion::Header("subject".into(), "msg 1".into())],
                &msgs,
                raw
            ),
            vec![1]
        );
        assert_eq!(scan(&[Criterion::Larger(1000)], &msgs, raw), vec![2]);
        assert_eq!(
            scan(
                &[Criterion::Or(
                    Box::new(Criterion::Uids(vec![(1, 1)])),
                    Box::new(Criterion::ModSeq(9))
                )],
                &msgs,
                raw
            ),
            vec![1, 2]
        );
        // A backend's answer for BODY, combined with NOT and flags; other leaves kept.
        let resolved = resolve(
            &[Criterion::Or(
                Box::new(Criterion::Not(Box::new(Criterion::Body("x".into())))),
                Box::new(Criterion::FlagsSet(flags::SEEN)),
            )],
            &mut |c| {
                Ok::<_, ()>(match c {
                    Criterion::Body(_) => Some(vec![2, 1, 2]),
                    _ => None,
                })
            },
        )
        .unwrap();
        assert!(!resolved[0].needs_content());
        assert_eq!(scan(&resolved, &msgs, |_| None), vec![1]);
        let d = NaiveDate::from_ymd_opt(1970, 1, 2).unwrap();
        assert_eq!(scan(&[Criterion::Since(d)], &msgs, raw), vec![2]);
        assert_eq!(
            scan(
                &[Criterion::SentOn(
                    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
                )],
                &msgs,
                raw
            ),
            vec![1, 2]
        );
    }
}
