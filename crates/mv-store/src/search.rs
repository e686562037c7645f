//! The search query language of `zmmailbox s`, Zimbra's grammar: terms joined by
//! `AND` (or nothing), `OR`, `NOT` / a leading `-`, and parentheses; `field:value`
//! with or without a space after the colon (`Subject: batch2`); quoted values
//! (`subject:"two words"`). Fields: `in:FOLDER`, `under:FOLDER` (and its
//! subfolders), `from:`, `to:`, `cc:`, `subject:`, `content:` (body text),
//! `tag:`, `is:unread|read|flagged|unflagged|anywhere`, `has:attachment`,
//! `before:`, `after:`, `date:` (a day: `MM/DD/YYYY`, `YYYY/MM/DD`, `today`,
//! `yesterday`, or relative such as `-1day`, `-2weeks`), `size:`, `larger:`,
//! `smaller:` (`10kb`, `2mb`, bytes by default). Bare words are matched against
//! subject, sender, recipients, body text and attachment names. Text matches are
//! case-insensitive substrings. A query that does not parse is an error, never
//! zero hits.
//!
//! [`Mailbox::search_with`] is the one evaluator: [`crate::Store::search`] runs it
//! over every message (the scan), and the search index (`mv-index`) runs it over the
//! candidates its index yields for the top-level text terms (a superset: `OR` and
//! `NOT` are applied by the evaluator), so both give identical results.

use crate::mime::MessageText;
use crate::{Item, Mailbox, StoreError};
use mv_redo::ops::flags;
use mv_types::UtcMillis;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    InFolder(String),
    /// The folder and every folder below it.
    Under(String),
    From(String),
    /// To or Cc.
    To(String),
    Cc(String),
    Subject(String),
    Before(i64),
    After(i64),
    /// `date:DAY`: from the day's start (inclusive) to the next day's (exclusive).
    On(i64, i64),
    Unread(bool),
    Flagged(bool),
    Tag(String),
    /// `content:X`: the body text.
    Content(String),
    Word(String),
    Larger(u64),
    Smaller(u64),
    HasAttachment,
    /// `is:anywhere`: every folder (the default without `in:`).
    Anywhere,
    Not(Box<Term>),
    /// Alternatives, each a conjunction (a parenthesised group is one).
    Or(Vec<Vec<Term>>),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid search query: {0}")]
pub struct QueryError(pub String);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    /// A word, and whether it started with a quote: such words are never
    /// operators or fields.
    Word(String, bool),
}

fn tokens(q: &str) -> Result<Vec<Tok>, QueryError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    let flush = |cur: &mut String, was_quoted: &mut bool, out: &mut Vec<Tok>| {
        if !cur.is_empty() || *was_quoted {
            out.push(Tok::Word(std::mem::take(cur), *was_quoted));
        }
        *was_quoted = false;
    };
    for c in q.chars() {
        match c {
            '"' => {
                // A value quoted after its field (`subject:"a b"`) keeps the field.
                if !quoted && cur.is_empty() {
                    was_quoted = true;
                }
                quoted = !quoted;
            }
            c if quoted => cur.push(c),
            c if c.is_whitespace() => flush(&mut cur, &mut was_quoted, &mut out),
            '(' if cur.is_empty() || cur == "-" => {
                if cur == "-" {
                    cur.clear();
                    out.push(Tok::Word("NOT".into(), false));
                }
                out.push(Tok::Open);
            }
            ')' => {
                flush(&mut cur, &mut was_quoted, &mut out);
                out.push(Tok::Close);
            }
            c => cur.push(c),
        }
    }
    if quoted {
        return Err(QueryError("unbalanced quote".into()));
    }
    flush(&mut cur, &mut was_quoted, &mut out);
    Ok(out)
}

/// A day of `before:`/`after:`/`date:`: its local start and the next day's.
fn parse_day(v: &str) -> Result<(i64, i64), QueryError> {
    let bad = || {
        QueryError(format!(
            "{v:?} is not a date (use MM/DD/YYYY, YYYY/MM/DD, today, yesterday or -1day, -2weeks, -1month)"
        ))
    };
    let today = chrono::Local::now().date_naive();
    if let Some(day) = mv_types::time::search_day(v, today) {
        let start = mv_types::time::local_midnight(day).ok_or_else(bad)?;
        let end = day
            .succ_opt()
            .and_then(mv_types::time::local_midnight)
            .ok_or_else(bad)?;
        return Ok((start.0, end.0));
    }
    // Any of the tools' date-time formats: that instant.
    UtcMillis::parse_local(v)
        .map(|t| (t.0, t.0))
        .map_err(|_| bad())
}

/// `10kb`, `2mb`, `1gb`, `500` (bytes).
fn parse_size(v: &str) -> Result<u64, QueryError> {
    let lower = v.to_ascii_lowercase();
    let digits = lower.len() - lower.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let n: u64 = lower[..digits]
        .parse()
        .map_err(|_| QueryError(format!("{v:?} is not a size (use 500, 10kb, 2mb)")))?;
    let unit = match &lower[digits..] {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        _ => {
            return Err(QueryError(format!(
                "{v:?} is not a size (use 500, 10kb, 2mb)"
            )));
        }
    };
    Ok(n.saturating_mul(unit))
}

fn field_term(key: &str, value: &str) -> Result<Term, QueryError> {
    let lower = || value.to_lowercase();
    Ok(match key.to_ascii_lowercase().as_str() {
        "in" => Term::InFolder(value.to_string()),
        "under" => Term::Under(value.to_string()),
        "from" => Term::From(lower()),
        "to" => Term::To(lower()),
        "cc" => Term::Cc(lower()),
        "subject" => Term::Subject(lower()),
        "content" => Term::Content(lower()),
        "tag" => Term::Tag(value.to_string()),
        "before" => Term::Before(parse_day(value)?.0),
        "after" => Term::After(parse_day(value)?.0),
        "date" => {
            let (start, end) = parse_day(value)?;
            Term::On(start, end.max(start + 1))
        }
        "size" => {
            let n = parse_size(value)?;
            Term::Or(vec![vec![
                Term::Larger(n.saturating_sub(1)),
                Term::Smaller(n + 1),
            ]])
        }
        "larger" => Term::Larger(parse_size(value)?),
        "smaller" => Term::Smaller(parse_size(value)?),
        "has" => match value.to_ascii_lowercase().as_str() {
            "attachment" | "attachments" => Term::HasAttachment,
            other => {
                return Err(QueryError(format!(
                    "unknown has:{other} (use has:attachment)"
                )));
            }
        },
        "is" => match value.to_ascii_lowercase().as_str() {
            "unread" => Term::Unread(true),
            "read" => Term::Unread(false),
            "flagged" => Term::Flagged(true),
            "unflagged" => Term::Flagged(false),
            "anywhere" => Term::Anywhere,
            other => {
                return Err(QueryError(format!(
                    "unknown is:{other} (use unread, read, flagged, unflagged, anywhere)"
                )));
            }
        },
        other => {
            return Err(QueryError(format!(
                "unknown search field {other:?} (fields: in, under, from, to, cc, subject, content, tag, is, has, before, after, date, size, larger, smaller)"
            )));
        }
    })
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek_op(&self) -> Option<&str> {
        match self.toks.get(self.at) {
            Some(Tok::Word(w, false))
                if ["and", "or", "not"].contains(&w.to_ascii_lowercase().as_str()) =>
            {
                Some(w.as_str())
            }
            _ => None,
        }
    }

    /// or := and (OR and)*
    fn or(&mut self) -> Result<Vec<Vec<Term>>, QueryError> {
        let mut alts = vec![self.and()?];
        while self.peek_op().is_some_and(|o| o.eq_ignore_ascii_case("or")) {
            self.at += 1;
            alts.push(self.and()?);
        }
        Ok(alts)
    }

    /// and := unary ([AND] unary)*
    fn and(&mut self) -> Result<Vec<Term>, QueryError> {
        let mut terms = Vec::new();
        loop {
            match self.toks.get(self.at) {
                None | Some(Tok::Close) => break,
                _ if self.peek_op().is_some_and(|o| o.eq_ignore_ascii_case("or")) => break,
                _ if self
                    .peek_op()
                    .is_some_and(|o| o.eq_ignore_ascii_case("and")) =>
                {
                    self.at += 1;
                    if terms.is_empty() {
                        return Err(QueryError("AND with nothing before it".into()));
                    }
                    continue;
                }
                _ => terms.push(self.unary()?),
            }
        }
        if terms.is_empty() {
            return Err(QueryError(
                "an empty expression (around AND/OR or parentheses)".into(),
            ));
        }
        Ok(terms)
    }

    fn unary(&mut self) -> Result<Term, QueryError> {
        if self
            .peek_op()
            .is_some_and(|o| o.eq_ignore_ascii_case("not"))
        {
            self.at += 1;
            return Ok(Term::Not(Box::new(self.unary()?)));
        }
        match self.toks.get(self.at).cloned() {
            Some(Tok::Open) => {
                self.at += 1;
                let alts = self.or()?;
                if self.toks.get(self.at) != Some(&Tok::Close) {
                    return Err(QueryError("unbalanced parenthesis: missing )".into()));
                }
                self.at += 1;
                Ok(group(alts))
            }
            Some(Tok::Close) => Err(QueryError("unbalanced parenthesis: ) without (".into())),
            Some(Tok::Word(w, quoted)) => {
                self.at += 1;
                if quoted {
                    return Ok(Term::Word(w.to_lowercase()));
                }
                if let Some(rest) = w.strip_prefix('-')
                    && !rest.is_empty()
                {
                    return Ok(Term::Not(Box::new(self.atom(rest.to_string())?)));
                }
                self.atom(w)
            }
            None => Err(QueryError("the query ends too early".into())),
        }
    }

    /// `field:value`, `field: value` (the value is the next word), or a word.
    fn atom(&mut self, w: String) -> Result<Term, QueryError> {
        let Some((key, value)) = w.split_once(':') else {
            return Ok(Term::Word(w.to_lowercase()));
        };
        if key.is_empty() {
            return Ok(Term::Word(w.to_lowercase()));
        }
        if !value.is_empty() {
            return field_term(key, value);
        }
        match self.toks.get(self.at).cloned() {
            Some(Tok::Word(v, _)) => {
                self.at += 1;
                field_term(key, &v)
            }
            _ => Err(QueryError(format!("{key}: needs a value"))),
        }
    }
}

/// One term for a parenthesised group.
fn group(mut alts: Vec<Vec<Term>>) -> Term {
    if alts.len() == 1 && alts[0].len() == 1 {
        alts.remove(0).remove(0)
    } else {
        Term::Or(alts)
    }
}

/// The query as a conjunction of terms (an `OR` at the top is one [`Term::Or`]).
pub fn parse(q: &str) -> Result<Vec<Term>, QueryError> {
    let mut p = Parser {
        toks: tokens(q)?,
        at: 0,
    };
    if p.toks.is_empty() {
        return Ok(Vec::new());
    }
    let mut alts = p.or()?;
    if p.at < p.toks.len() {
        return Err(QueryError("unbalanced parenthesis: ) without (".into()));
    }
    Ok(if alts.len() == 1 {
        alts.remove(0)
    } else {
        vec![Term::Or(alts)]
    })
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
        // Every folder a term names, resolved once (a missing one is an error).
        let mut places: HashMap<(String, bool), HashSet<u32>> = HashMap::new();
        resolve_places(terms, &folders, &mut places)?;
        // A top-level in: narrows what is read at all.
        let mut folder_filter = None;
        for t in terms {
            if let Term::InFolder(name) = t {
                folder_filter = places[&(name.clone(), false)].iter().next().copied();
            }
        }
        let mut items = self.items(folder_filter, Some(crate::ItemKind::Message))?;
        if let Some(c) = candidates {
            items.retain(|i| c.items.contains(&i.id) || i.change > c.indexed_change);
        }
        self.filter_matching(terms, &places, items, text, false)
    }

    /// Those of `items` (messages not in the mailbox's item table: the
    /// dumpster's) matching parsed `terms`, newest first; a folder is named
    /// by its current path.
    pub fn search_among(
        &self,
        terms: &[Term],
        items: Vec<Item>,
        text: &mut dyn FnMut(&Item) -> MessageText,
    ) -> Result<Vec<Item>, StoreError> {
        let folders = self.folders()?;
        let mut places: HashMap<(String, bool), HashSet<u32>> = HashMap::new();
        resolve_places(terms, &folders, &mut places)?;
        self.filter_matching(terms, &places, items, text, false)
    }

    /// Contacts and appointments matching parsed `terms`, newest first. Words and
    /// `content:` look in the vCard or iCalendar text, `subject:` in the contact's
    /// name or the appointment's summary, dates at an appointment's start (its
    /// `date_ms` is set to it; a contact has no date); terms only messages have
    /// (`from:`, `is:unread`, `larger:`, ...) match none of them.
    pub fn search_pim(&self, terms: &[Term]) -> Result<Vec<Item>, StoreError> {
        let folders = self.folders()?;
        let mut places: HashMap<(String, bool), HashSet<u32>> = HashMap::new();
        resolve_places(terms, &folders, &mut places)?;
        let mut items = self.contacts()?;
        for mut a in self.appointments()? {
            a.date_ms = a
                .content
                .as_deref()
                .and_then(crate::pim::event_start)
                .map_or(0, |t| t.0);
            items.push(a);
        }
        let mut text = |i: &Item| MessageText {
            body: i.content.as_deref().unwrap_or("").to_lowercase(),
            ..MessageText::default()
        };
        self.filter_matching(terms, &places, items, &mut text, true)
    }

    fn filter_matching(
        &self,
        terms: &[Term],
        places: &HashMap<(String, bool), HashSet<u32>>,
        mut items: Vec<Item>,
        text: &mut dyn FnMut(&Item) -> MessageText,
        pim: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let tags = self.tags()?;
        let mut ctx = Ctx {
            places,
            tags: &tags,
            texts: HashMap::new(),
            text,
            pim,
        };
        items.retain(|i| terms.iter().all(|t| ctx.matches(t, i)));
        items.sort_by(|a, b| {
            effective_date(b)
                .cmp(&effective_date(a))
                .then(b.id.cmp(&a.id))
        });
        Ok(items)
    }
}

fn resolve_places(
    terms: &[Term],
    folders: &[crate::Folder],
    out: &mut HashMap<(String, bool), HashSet<u32>>,
) -> Result<(), StoreError> {
    for t in terms {
        let (name, under) = match t {
            Term::InFolder(n) => (n, false),
            Term::Under(n) => (n, true),
            Term::Not(inner) => {
                resolve_places(std::slice::from_ref(inner), folders, out)?;
                continue;
            }
            Term::Or(alts) => {
                for a in alts {
                    resolve_places(a, folders, out)?;
                }
                continue;
            }
            _ => continue,
        };
        let want = if name.starts_with('/') {
            name.clone()
        } else {
            format!("/{name}")
        };
        let prefix = format!("{}/", want.to_lowercase());
        let ids: HashSet<u32> = folders
            .iter()
            .filter(|f| {
                f.path.eq_ignore_ascii_case(&want)
                    || (under && f.path.to_lowercase().starts_with(&prefix))
            })
            .map(|f| f.id)
            .collect();
        if ids.is_empty() {
            return Err(StoreError::NotFound(format!("no folder {name:?}")));
        }
        out.insert((name.clone(), under), ids);
    }
    Ok(())
}

struct Ctx<'a, 'b> {
    places: &'a HashMap<(String, bool), HashSet<u32>>,
    tags: &'a [crate::Tag],
    texts: HashMap<u32, MessageText>,
    text: &'b mut dyn FnMut(&Item) -> MessageText,
    /// Contacts and appointments: message-only terms match nothing.
    pim: bool,
}

impl Ctx<'_, '_> {
    fn text_of(&mut self, i: &Item) -> &MessageText {
        let text = &mut self.text;
        self.texts.entry(i.id).or_insert_with(|| text(i))
    }

    fn matches(&mut self, t: &Term, i: &Item) -> bool {
        if self.pim
            && matches!(
                t,
                Term::From(_)
                    | Term::To(_)
                    | Term::Cc(_)
                    | Term::Unread(_)
                    | Term::Flagged(_)
                    | Term::Larger(_)
                    | Term::Smaller(_)
                    | Term::HasAttachment
            )
        {
            return false;
        }
        match t {
            Term::InFolder(name) => self.places[&(name.clone(), false)].contains(&i.folder_id),
            Term::Under(name) => self.places[&(name.clone(), true)].contains(&i.folder_id),
            Term::Anywhere => true,
            Term::From(v) => i.sender.to_lowercase().contains(v),
            Term::To(v) => {
                i.recipients.to_lowercase().contains(v) || i.cc.to_lowercase().contains(v)
            }
            Term::Cc(v) => i.cc.to_lowercase().contains(v),
            Term::Subject(v) => i.subject.to_lowercase().contains(v),
            Term::Before(t) => effective_date(i) < *t,
            Term::After(t) => effective_date(i) > *t,
            Term::On(start, end) => (*start..*end).contains(&effective_date(i)),
            Term::Unread(u) => (i.flags & flags::SEEN == 0) == *u,
            Term::Flagged(f) => (i.flags & flags::FLAGGED != 0) == *f,
            Term::Tag(name) => self
                .tags
                .iter()
                .any(|tag| tag.name.eq_ignore_ascii_case(name) && i.tags.contains(&tag.id)),
            Term::Larger(n) => i.size > *n,
            Term::Smaller(n) => i.size < *n,
            Term::HasAttachment => !self.text_of(i).attachments.trim().is_empty(),
            Term::Content(v) => self.text_of(i).body.contains(v),
            Term::Word(w) => {
                i.subject.to_lowercase().contains(w)
                    || i.sender.to_lowercase().contains(w)
                    || i.recipients.to_lowercase().contains(w)
                    || {
                        let t = self.text_of(i);
                        t.body.contains(w) || t.attachments.contains(w)
                    }
            }
            Term::Not(inner) => !self.matches(inner, i),
            Term::Or(alts) => alts
                .iter()
                .any(|conj| conj.iter().all(|t| self.matches(t, i))),
        }
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
    fn zimbra_s_grammar() {
        // "Subject: batch2": the field, with a space before its value.
        assert_eq!(
            parse("Subject: batch2").unwrap(),
            vec![Term::Subject("batch2".into())]
        );
        // AND is an operator, not a word.
        assert_eq!(
            parse("subject:batch2 and from:bob").unwrap(),
            vec![Term::Subject("batch2".into()), Term::From("bob".into())]
        );
        assert_eq!(
            parse("from:a OR from:b").unwrap(),
            vec![Term::Or(vec![
                vec![Term::From("a".into())],
                vec![Term::From("b".into())]
            ])]
        );
        assert_eq!(
            parse("in:inbox (from:a or from:b) -subject:x NOT is:flagged").unwrap(),
            vec![
                Term::InFolder("inbox".into()),
                Term::Or(vec![
                    vec![Term::From("a".into())],
                    vec![Term::From("b".into())]
                ]),
                Term::Not(Box::new(Term::Subject("x".into()))),
                Term::Not(Box::new(Term::Flagged(true))),
            ]
        );
        assert_eq!(parse("\"and\"").unwrap(), vec![Term::Word("and".into())]);
        for q in [
            "after:yesterday",
            "after:-1day",
            "before:-2weeks",
            "date:today",
            "is:anywhere",
            "has:attachment",
            "larger:10kb",
            "smaller:2mb",
            "size:500",
            "cc:x",
            "under:Projects",
        ] {
            assert!(parse(q).is_ok(), "{q}");
        }
        assert_eq!(parse("larger:10kb").unwrap(), vec![Term::Larger(10240)]);
    }

    #[test]
    fn rejects_bad_queries_clearly() {
        assert!(parse("\"open").unwrap_err().0.contains("quote"));
        assert!(parse("is:weird").unwrap_err().0.contains("is:weird"));
        assert!(
            parse("before:someday")
                .unwrap_err()
                .0
                .contains("not a date")
        );
        assert!(parse("color:red").unwrap_err().0.contains("color"));
        assert!(parse("(from:a").unwrap_err().0.contains("parenthesis"));
        assert!(parse("from:a)").unwrap_err().0.contains("parenthesis"));
        assert!(parse("from:a OR").unwrap_err().0.contains("empty"));
        assert!(parse("subject:").unwrap_err().0.contains("needs a value"));
        assert!(parse("larger:big").unwrap_err().0.contains("not a size"));
    }
}
