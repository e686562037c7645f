//! Index queries that find a superset of the documents whose text contains a
//! needle (see the crate documentation for why it is a superset).

use crate::fields::{Fields, MAX_TOKEN, TextKey, tokens};
use mv_store::search::Term as SearchTerm;
use tantivy::Term;
use tantivy::query::{AllQuery, BooleanQuery, Query, RegexQuery, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};

/// The index query narrowing `terms` (of `zmmailbox s`): all of their text terms
/// candidates. `None` when no term is textual (the index narrows nothing).
pub(crate) fn text_query(f: &Fields, terms: &[SearchTerm]) -> Option<Box<dyn Query>> {
    let mut parts = Vec::new();
    for t in terms {
        let (keys, needle): (&[TextKey], &str) = match t {
            SearchTerm::From(v) => (&[TextKey::From][..], v.as_str()),
            SearchTerm::To(v) => (&[TextKey::To, TextKey::Cc][..], v.as_str()),
            SearchTerm::Subject(v) => (&[TextKey::Subject][..], v.as_str()),
            SearchTerm::Content(v) => (&[TextKey::Body][..], v.as_str()),
            SearchTerm::Word(v) => (
                &[
                    TextKey::Subject,
                    TextKey::From,
                    TextKey::To,
                    TextKey::Body,
                    TextKey::Attachments,
                ][..],
                v.as_str(),
            ),
            _ => continue,
        };
        parts.push(candidates(f, keys, needle));
    }
    (!parts.is_empty()).then(|| all_of(parts))
}

/// Documents where `needle` (lowercased) may be a substring of one of `keys`, or
/// that are flagged for verification.
pub(crate) fn candidates(f: &Fields, keys: &[TextKey], needle: &str) -> Box<dyn Query> {
    let mut any: Vec<Box<dyn Query>> = Vec::new();
    for k in keys {
        match in_field(f.text(*k), needle) {
            Some(q) => any.push(q),
            // The needle constrains nothing (no indexable token): every document.
            None => return Box::new(AllQuery),
        }
    }
    any.push(Box::new(TermQuery::new(
        Term::from_field_u64(f.verify, 1),
        IndexRecordOption::Basic,
    )));
    Box::new(BooleanQuery::union(any))
}

/// For a needle that is one whole token (lowercased, every character alphanumeric,
/// short enough to be indexed): the documents where one of `keys` has a term
/// containing it. That is exactly where the needle is a substring of the field's
/// text, since such a needle can only occur inside one token; documents flagged
/// for verification aside. `None` when the needle is not such a token.
pub(crate) fn exact_token(f: &Fields, keys: &[TextKey], needle: &str) -> Option<Box<dyn Query>> {
    if needle.is_empty()
        || needle.len() > MAX_TOKEN
        || !needle.chars().all(char::is_alphanumeric)
        || needle.to_lowercase() != needle
    {
        return None;
    }
    let pattern = format!(".*{}.*", regex_escape(needle));
    let mut any: Vec<Box<dyn Query>> = Vec::new();
    for k in keys {
        any.push(Box::new(
            RegexQuery::from_pattern(&pattern, f.text(*k)).ok()?,
        ));
    }
    Some(Box::new(BooleanQuery::union(any)))
}

/// The documents flagged for verification.
pub(crate) fn flagged(f: &Fields) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_u64(f.verify, 1),
        IndexRecordOption::Basic,
    ))
}

/// All of `queries` (an empty list matches everything).
pub(crate) fn all_of(queries: Vec<Box<dyn Query>>) -> Box<dyn Query> {
    if queries.is_empty() {
        Box::new(AllQuery)
    } else {
        Box::new(BooleanQuery::intersection(queries))
    }
}

fn in_field(field: Field, needle: &str) -> Option<Box<dyn Query>> {
    let toks: Vec<&str> = tokens(needle).collect();
    let starts_inside = needle.chars().next().is_some_and(char::is_alphanumeric);
    let ends_inside = needle.chars().last().is_some_and(char::is_alphanumeric);
    let mut must: Vec<Box<dyn Query>> = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        if t.len() > MAX_TOKEN {
            // Never indexed: such documents carry the verify flag instead.
            continue;
        }
        // A token may continue to the left in the text only if it starts the
        // needle, to the right only if it ends it.
        let open_left = i == 0 && starts_inside;
        let open_right = i + 1 == toks.len() && ends_inside;
        if !open_left && !open_right {
            must.push(Box::new(TermQuery::new(
                Term::from_field_text(field, t),
                IndexRecordOption::Basic,
            )));
            continue;
        }
        let pattern = format!(
            "{}{}{}",
            if open_left { ".*" } else { "" },
            regex_escape(t),
            if open_right { ".*" } else { "" }
        );
        match RegexQuery::from_pattern(&pattern, field) {
            Ok(q) => must.push(Box::new(q)),
            // A pattern the automaton cannot take constrains nothing (still exact).
            Err(e) => tracing::debug!("search index: regex {pattern:?} not usable: {e}"),
        }
    }
    if must.is_empty() {
        None
    } else {
        Some(Box::new(BooleanQuery::intersection(must)))
    }
}

/// Tokens are alphanumeric, so this is defensive only: any regex metacharacter
/// would be escaped.
fn regex_escape(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    for c in t.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
