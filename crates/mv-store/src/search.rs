//! The search query language of `zmmailbox s` (a subset of Zimbra's): `in:FOLDER`,
//! `from:X`, `to:X`, `subject:X`, `before:DATE`, `after:DATE`, `is:unread|read|
//! flagged|unflagged`, `tag:NAME`, `content:X` (body text), and bare words matched
//! against subject, sender, recipients, body text and attachment names. Terms are
//! ANDed. Quoted values (`subject:"two words"`) work. Text terms are case-insensitive
//! substring matches.
//!
//! [`Mailbox::search_with`] is the one evaluator: [`crate::Store::search`] runs it
//! over every message (the scan), and the search index (`mv-index`) runs it over the
//! candidates its index yields, so both give identical results.

use crate::mime::MessageText;
use crate::{Item, Mailbox, StoreError};
use mv_redo::ops::flags;
use mv_types::UtcMillis;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    InFolder(String),
    From(String),
    To(String),
    Subject(String),
    Before(i64),
    After(i64),
    Unread(bool),
    Flagged(bool),
    Tag(String),
    /// `content:X`: the body text.
    Content(String),
    Word(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid search query: {0}")]
pub struct QueryError(pub String);

fn tokens(q: &str) -> Result<Vec<String>, QueryError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in q.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if quoted {
        return Err(QueryError("unbalanced quote".into()));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// `2010/11/19`, `11/19/2010` (Zimbra's US form), or any of the tools' date-time
/// formats; local time.
fn parse_date(v: &str) -> Result<i64, QueryError> {
    let bad = || {
        QueryError(format!(
            "{v:?} is not a date (use YYYY/MM/DD or MM/DD/YYYY)"
        ))
    };
    let parts: Vec<&str> = v.split('/').collect();
    if parts.len() == 3 {
        let (y, m, d) = if parts[0].len() == 4 {
            (parts[0], parts[1], parts[2])
        } else {
            (parts[2], parts[0], parts[1])
        };
        let s = format!("{y:0>4}/{m:0>2}/{d:0>2} 00:00:00");
        return UtcMillis::parse_local(&s).map(|t| t.0).map_err(|_| bad());
    }
    UtcMillis::parse_local(v).map(|t| t.0).map_err(|_| bad())
}

pub fn parse(q: &str) -> Result<Vec<Term>, QueryError> {
    let mut terms = Vec::new();
    for tok in tokens(q)? {
        let term = match tok.split_once(':') {
            Some((key, value)) if !value.is_empty() => match key.to_ascii_lowercase().as_str() {
                "in" => Term::InFolder(value.to_string()),
                "from" => Term::From(value.to_lowercase()),
                "to" => Term::To(value.to_lowercase()),
                "subject" => Term::Subject(value.to_lowercase()),
                "before" => Term::Before(parse_date(value)?),
                "after" => Term::After(parse_date(value)?),
                "tag" => Term::Tag(value.to_string()),
                "content" => Term::Content(value.to_lowercase()),
                "is" => match value.to_ascii_lowercase().as_str() {
                    "unread" => Term::Unread(true),
                    "read" => Term::Unread(false),
                    "flagged" => Term::Flagged(true),
                    "unflagged" => Term::Flagged(false),
                    other => {
                        return Err(QueryError(format!(
                            "unknown is:{other} (use unread, read, flagged, unflagged)"
                        )));
                    }
                },
                other => return Err(QueryError(format!("unknown search field {other:?}"))),
            },
            _ => Term::Word(tok.to_lowercase()),
        };
        terms.push(term);
    }
    Ok(terms)
}

/// Items the search index vouches for: every message matching the query's text
/// terms is in `items`, or changed after `indexed_change` (the index has not seen
/// it yet, so it is checked like in a scan).
#[derive(Debug, Clone, Copy)]
pub struct Candidates<'a> {
    pub items: &'a HashSet<u32>,
    pub indexed_change: u64,
}

impl Mailbox {
    /// Messages matching parsed `terms`, newest first. With `candidates`, only those
    /// (and messages changed since the index) are examined. `text` gives a message's
    /// body and attachment text; it is called only when a term needs it.
    pub fn search_with(
        &self,
        terms: &[Term],
        candidates: Option<Candidates<'_>>,
        text: &mut dyn FnMut(&Item) -> MessageText,
    ) -> Result<Vec<Item>, StoreError> {
        let folders = self.folders()?;
        let tags = self.tags()?;
        let mut folder_filter = None;
        for t in terms {
            if let Term::InFolder(name) = t {
                let want = if name.starts_with('/') {
                    name.clone()
                } else {
                    format!("/{name}")
                };
                let f = folders
                    .iter()
                    .find(|f| f.path.eq_ignore_ascii_case(&want))
                    .ok_or_else(|| StoreError::NotFound(format!("no folder {name:?}")))?;
                folder_filter = Some(f.id);
            }
        }
        let mut items = self.items(folder_filter, Some(crate::apply::TYPE_MESSAGE))?;
        if let Some(c) = candidates {
            items.retain(|i| c.items.contains(&i.id) || i.change > c.indexed_change);
        }
        let mut texts: HashMap<u32, MessageText> = HashMap::new();
        items.retain(|i| {
            terms.iter().all(|t| match t {
                Term::InFolder(_) => true,
                Term::From(v) => i.sender.to_lowercase().contains(v),
                Term::To(v) => {
                    i.recipients.to_lowercase().contains(v) || i.cc.to_lowercase().contains(v)
                }
                Term::Subject(v) => i.subject.to_lowercase().contains(v),
                Term::Before(t) => effective_date(i) < *t,
                Term::After(t) => effective_date(i) > *t,
                Term::Unread(u) => (i.flags & flags::SEEN == 0) == *u,
                Term::Flagged(f) => (i.flags & flags::FLAGGED != 0) == *f,
                Term::Tag(name) => tags
                    .iter()
                    .any(|tag| tag.name.eq_ignore_ascii_case(name) && i.tags.contains(&tag.id)),
                Term::Content(v) => texts
                    .entry(i.id)
                    .or_insert_with(|| text(i))
                    .body
                    .contains(v),
                Term::Word(w) => {
                    i.subject.to_lowercase().contains(w)
                        || i.sender.to_lowercase().contains(w)
                        || i.recipients.to_lowercase().contains(w)
                        || {
                            let t = texts.entry(i.id).or_insert_with(|| text(i));
                            t.body.contains(w) || t.attachments.contains(w)
                        }
                }
            })
        });
        items.sort_by(|a, b| {
            effective_date(b)
                .cmp(&effective_date(a))
                .then(b.id.cmp(&a.id))
        });
        Ok(items)
    }
}

/// The date a message sorts and filters by: its Date header, else when it arrived.
pub fn effective_date(i: &Item) -> i64 {
    if i.date_ms != 0 {
        i.date_ms
    } else {
        i.received_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_quotes_and_words() {
        let t = parse(r#"in:Inbox from:Alice subject:"two words" is:unread hello"#).unwrap();
        assert_eq!(
            t,
            vec![
                Term::InFolder("Inbox".into()),
                Term::From("alice".into()),
                Term::Subject("two words".into()),
                Term::Unread(true),
                Term::Word("hello".into()),
            ]
        );
        assert!(parse("before:2010/11/19").is_ok());
        assert!(parse("before:11/19/2010").is_ok());
    }

    #[test]
    fn rejects_bad_queries_clearly() {
        assert!(parse("\"open").unwrap_err().0.contains("quote"));
        assert!(parse("is:weird").unwrap_err().0.contains("is:weird"));
        assert!(
            parse("before:yesterday")
                .unwrap_err()
                .0
                .contains("not a date")
        );
        assert!(parse("color:red").unwrap_err().0.contains("color"));
    }
}
