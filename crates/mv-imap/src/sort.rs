//! SORT (RFC 5256, with RFC 5957 DISPLAYFROM/DISPLAYTO) and THREAD
//! ORDEREDSUBJECT / REFERENCES (RFC 5256) over a mailbox's messages, from
//! their header sections. Strings compare with the i;ascii-casemap collation;
//! ties go to the lower sequence number.

use crate::backend::MessageMeta;
use std::cmp::Ordering;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

/// What sorting and threading read of one message, computed once.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    /// Sent date (UTC seconds); the internal date when Date: is missing or bad.
    pub date: i64,
    pub arrival: i64,
    pub size: u64,
    /// Base subject (RFC 5256 §2.1), for comparison.
    pub subject: String,
    /// The subject had a reply or forward leader or trailer (RFC 5256 §2.1).
    pub reply: bool,
    pub from: String,
    pub to: String,
    pub cc: String,
    pub display_from: String,
    pub display_to: String,
    pub message_id: Option<String>,
    /// References, then In-Reply-To when there are no References.
    pub references: Vec<String>,
}

impl Fields {
    pub fn new(meta: &MessageMeta, header: &[u8]) -> Fields {
        let arrival = meta.internal_date_ms.div_euclid(1000);
        let mut f = Fields {
            date: arrival,
            arrival,
            size: meta.size,
            ..Default::default()
        };
        let Some(msg) = mail_parser::MessageParser::default().parse_headers(header) else {
            return f;
        };
        if let Some(d) = msg.date().filter(|d| d.is_valid()) {
            f.date = d.to_timestamp();
        }
        (f.subject, f.reply) = base_subject_reply(msg.subject().unwrap_or_default());
        // The first address as ENVELOPE shows it (a group's start marker
        // carries the group name as its mailbox), as Dovecot sorts.
        let raw_fields = crate::mime::fields(header);
        let first = |name: &str| {
            crate::mime::field(&raw_fields, name)
                .map(crate::address::parse)
                .and_then(|l| l.into_iter().next())
        };
        let mailbox = |name: &str| first(name).and_then(|a| a.mailbox).unwrap_or_default();
        // RFC 5957: the display name (decoded) if there is one, else the
        // address; a group by its name.
        let display = |name: &str, parsed: Option<&mail_parser::Address<'_>>| -> String {
            let Some(a) = first(name) else {
                return String::new();
            };
            if a.host.is_none() {
                return a.mailbox.unwrap_or_default();
            }
            let decoded = parsed
                .and_then(|p| p.first())
                .and_then(|p| p.name())
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty());
            decoded.unwrap_or_else(|| match (a.mailbox, a.host) {
                (Some(m), Some(h)) if !h.is_empty() => format!("{m}@{h}"),
                (Some(m), _) => m,
                _ => String::new(),
            })
        };
        f.from = mailbox("from");
        f.to = mailbox("to");
        f.cc = mailbox("cc");
        f.display_from = display("from", msg.from());
        f.display_to = display("to", msg.to());
        let ids = |v: &mail_parser::HeaderValue<'_>| -> Vec<String> {
            match v {
                mail_parser::HeaderValue::Text(t) => vec![t.to_string()],
                mail_parser::HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
                _ => Vec::new(),
            }
        };
        f.message_id = msg.message_id().map(str::to_string);
        f.references = ids(msg.references());
        if f.references.is_empty() {
            f.references = ids(msg.in_reply_to()).into_iter().take(1).collect();
        }
        f
    }
}

/// i;ascii-casemap: ASCII letters compare as upper case, everything else by octet.
fn casemap(a: &str, b: &str) -> Ordering {
    a.bytes()
        .map(|c| c.to_ascii_uppercase())
        .cmp(b.bytes().map(|c| c.to_ascii_uppercase()))
}

fn compare(key: SortKey, a: &Fields, b: &Fields) -> Ordering {
    match key {
        SortKey::Arrival => a.arrival.cmp(&b.arrival),
        SortKey::Date => a.date.cmp(&b.date),
        SortKey::Size => a.size.cmp(&b.size),
        SortKey::Subject => casemap(&a.subject, &b.subject),
        SortKey::From => casemap(&a.from, &b.from),
        SortKey::To => casemap(&a.to, &b.to),
        SortKey::Cc => casemap(&a.cc, &b.cc),
        SortKey::DisplayFrom => casemap(&a.display_from, &b.display_from),
        SortKey::DisplayTo => casemap(&a.display_to, &b.display_to),
    }
}

/// Indexes of `msgs` (in sequence order) in SORT order for `keys` (key, reverse).
pub fn sort(msgs: &[Fields], keys: &[(SortKey, bool)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..msgs.len()).collect();
    order.sort_by(|&i, &j| {
        for (k, rev) in keys {
            let o = compare(*k, &msgs[i], &msgs[j]);
            let o = if *rev { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        i.cmp(&j)
    });
    order
}

/// The base subject (RFC 5256 §2.1): without Re:/Fwd: leaders, [blob]s,
/// (fwd) trailers and [fwd: ...] wrappers, whitespace collapsed.
pub fn base_subject(s: &str) -> String {
    base_subject_reply(s).0
}

/// The base subject, and whether a reply/forward leader or trailer was removed.
fn base_subject_reply(s: &str) -> (String, bool) {
    let mut reply = false;
    let mut s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    loop {
        // (2) trailers
        loop {
            let t = s.trim_end();
            if t.len() >= 5
                && t.is_char_boundary(t.len() - 5)
                && t[t.len() - 5..].eq_ignore_ascii_case("(fwd)")
            {
                s = t[..t.len() - 5].to_string();
                reply = true;
            } else {
                s = t.to_string();
                break;
            }
        }
        // (3)-(5) leaders and blobs
        loop {
            let before = s.clone();
            let stripped = strip_leader(&s);
            reply |= stripped != s;
            s = stripped;
            if let Some(rest) = strip_blob(&s).filter(|r| !r.is_empty()) {
                s = rest;
            }
            if s == before {
                break;
            }
        }
        // (6) [fwd: ...]
        if s.len() >= 6
            && s.is_char_boundary(5)
            && s[..5].eq_ignore_ascii_case("[fwd:")
            && s.ends_with(']')
        {
            s = s[5..s.len() - 1].trim().to_string();
            reply = true;
            continue;
        }
        return (s, reply);
    }
}

/// `subj-blob`: "[" *BLOBCHAR "]" *WSP at the start; the rest after it.
fn strip_blob(s: &str) -> Option<String> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find(['[', ']'])?;
    if rest.as_bytes()[end] != b']' {
        return None;
    }
    Some(rest[end + 1..].trim_start().to_string())
}

/// `subj-leader`: *subj-blob ("re" / "fw" / "fwd") *WSP [subj-blob] ":".
fn strip_leader(s: &str) -> String {
    let mut t = s.trim_start().to_string();
    while let Some(r) = strip_blob(&t) {
        t = r;
    }
    let lower = t.to_ascii_lowercase();
    let word = ["fwd", "fw", "re"]
        .into_iter()
        .find(|w| lower.starts_with(w));
    let Some(w) = word else {
        return s.to_string();
    };
    let mut rest = t[w.len()..].trim_start().to_string();
    if let Some(r) = strip_blob(&rest) {
        rest = r;
    }
    match rest.strip_prefix(':') {
        Some(r) => r.trim_start().to_string(),
        None => s.to_string(),
    }
}

/// A thread tree: a message (by index) or a dummy (None) with children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub msg: Option<usize>,
    pub children: Vec<Node>,
}

/// THREAD ORDEREDSUBJECT: messages grouped by base subject, each group's
/// messages in date order as children of its first, groups by their first date.
pub fn thread_orderedsubject(msgs: &[Fields]) -> Vec<Node> {
    let order = sort(msgs, &[(SortKey::Subject, false), (SortKey::Date, false)]);
    let mut threads: Vec<Node> = Vec::new();
    let mut last_subject: Option<&str> = None;
    for i in order {
        let subj = msgs[i].subject.as_str();
        if last_subject.is_some_and(|l| casemap(l, subj) == Ordering::Equal) {
            threads
                .last_mut()
                .expect("a thread was started")
                .children
                .push(Node {
                    msg: Some(i),
                    children: Vec::new(),
                });
        } else {
            threads.push(Node {
                msg: Some(i),
                children: Vec::new(),
            });
            last_subject = Some(subj);
        }
    }
    threads.sort_by(|a, b| {
        let (x, y) = (a.msg.expect("root"), b.msg.expect("root"));
        msgs[x].date.cmp(&msgs[y].date).then(x.cmp(&y))
    });
    threads
}

/// THREAD REFERENCES (RFC 5256 §3, the JWZ algorithm).
pub fn thread_references(msgs: &[Fields]) -> Vec<Node> {
    // Containers: index into `cs`. Each has an optional message, a parent, children.
    struct C {
        msg: Option<usize>,
        parent: Option<usize>,
        children: Vec<usize>,
    }
    let mut cs: Vec<C> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let new = |cs: &mut Vec<C>| {
        cs.push(C {
            msg: None,
            parent: None,
            children: Vec::new(),
        });
        cs.len() - 1
    };
    let is_ancestor = |cs: &Vec<C>, anc: usize, mut c: usize| -> bool {
        loop {
            if c == anc {
                return true;
            }
            match cs[c].parent {
                Some(p) => c = p,
                None => return false,
            }
        }
    };
    let unlink = |cs: &mut Vec<C>, c: usize| {
        if let Some(p) = cs[c].parent.take() {
            cs[p].children.retain(|x| *x != c);
        }
    };
    for (i, m) in msgs.iter().enumerate() {
        // (1A) the message's container; a duplicate Message-ID gets its own.
        let id = m.message_id.clone().filter(|s| !s.is_empty());
        let c = match id.as_ref().and_then(|id| by_id.get(id).copied()) {
            Some(c) if cs[c].msg.is_none() => c,
            _ => {
                let c = new(&mut cs);
                if let Some(id) = id.filter(|id| !by_id.contains_key(id)) {
                    by_id.insert(id, c);
                }
                c
            }
        };
        cs[c].msg = Some(i);
        // (1B) link the references as a chain.
        let mut prev: Option<usize> = None;
        for r in &m.references {
            let rc = match by_id.get(r) {
                Some(&x) => x,
                None => {
                    let x = new(&mut cs);
                    by_id.insert(r.clone(), x);
                    x
                }
            };
            if let Some(p) = prev
                && cs[rc].parent.is_none()
                && !is_ancestor(&cs, rc, p)
            {
                cs[rc].parent = Some(p);
                cs[p].children.push(rc);
            }
            prev = Some(rc);
        }
        // (1C) the last reference is the parent, replacing any other.
        unlink(&mut cs, c);
        if let Some(p) = prev
            && !is_ancestor(&cs, c, p)
        {
            cs[c].parent = Some(p);
            cs[p].children.push(c);
        }
    }
    // (2) the roots.
    let roots: Vec<usize> = (0..cs.len()).filter(|&c| cs[c].parent.is_none()).collect();
    // (4) prune empty containers (recursively, children first).
    fn prune(cs: &mut Vec<C>, list: Vec<usize>, is_root: bool) -> Vec<usize> {
        let mut out = Vec::new();
        for c in list {
            let kids = std::mem::take(&mut cs[c].children);
            let kids = prune(cs, kids, false);
            if cs[c].msg.is_none() {
                // A dummy with no children goes; one with children is replaced
                // by them, except at the root level where only one child may
                // be promoted.
                if kids.is_empty() {
                    continue;
                }
                if !is_root || kids.len() == 1 {
                    for k in &kids {
                        cs[*k].parent = cs[c].parent;
                    }
                    out.extend(kids);
                    continue;
                }
            }
            cs[c].children = kids;
            out.push(c);
        }
        out
    }
    let roots = prune(&mut cs, roots, true);
    // The date of a subtree: its message's, or its first child's (after sorting).
    fn sort_tree(cs: &mut Vec<C>, list: &mut [usize], msgs: &[Fields]) {
        for &c in list.iter() {
            let mut kids = std::mem::take(&mut cs[c].children);
            sort_tree(cs, &mut kids, msgs);
            cs[c].children = kids;
        }
        let key = |cs: &Vec<C>, c: usize| -> (i64, usize) {
            let m = cs[c]
                .msg
                .or_else(|| cs[c].children.first().and_then(|k| cs[*k].msg));
            match m {
                Some(i) => (msgs[i].date, i),
                None => (i64::MAX, usize::MAX),
            }
        };
        list.sort_by_key(|&c| key(cs, c));
    }
    let mut roots = roots;
    sort_tree(&mut cs, &mut roots, msgs);
    // (5) group the roots by base subject.
    let subject_of = |cs: &Vec<C>, c: usize| -> String {
        let m = cs[c]
            .msg
            .or_else(|| cs[c].children.first().and_then(|k| cs[*k].msg));
        m.map(|i| msgs[i].subject.to_ascii_uppercase())
            .unwrap_or_default()
    };
    let mut subj: HashMap<String, usize> = HashMap::new();
    for &r in &roots {
        let s = subject_of(&cs, r);
        if s.is_empty() {
            continue;
        }
        let replace = match subj.get(&s) {
            None => true,
            Some(&old) => {
                // Prefer a dummy, then a non-reply over a reply.
                (cs[r].msg.is_none() && cs[old].msg.is_some())
                    || (cs[old].msg.is_some()
                        && cs[r].msg.is_some()
                        && cs[old].msg.is_some_and(|m| msgs[m].reply)
                        && !cs[r].msg.is_some_and(|m| msgs[m].reply))
            }
        };
        if replace {
            subj.insert(s, r);
        }
    }
    // Roots still standing, in order; a root merged into another leaves it.
    let mut alive: Vec<usize> = roots.clone();
    for &r in &roots {
        if !alive.contains(&r) {
            continue;
        }
        let s = subject_of(&cs, r);
        let Some(&keep) = subj.get(&s).filter(|_| !s.is_empty()) else {
            continue;
        };
        if keep == r || !alive.contains(&keep) {
            continue;
        }
        let (r_dummy, k_dummy) = (cs[r].msg.is_none(), cs[keep].msg.is_none());
        let reply = |c: usize| cs[c].msg.is_some_and(|m| msgs[m].reply);
        if r_dummy && k_dummy {
            let kids = std::mem::take(&mut cs[r].children);
            cs[keep].children.extend(kids);
            alive.retain(|x| *x != r);
        } else if k_dummy || (reply(r) && !reply(keep)) {
            cs[keep].children.push(r);
            alive.retain(|x| *x != r);
        } else if r_dummy {
            cs[r].children.push(keep);
            subj.insert(s, r);
            alive.retain(|x| *x != keep);
        } else {
            // Neither is a reply to the other: both under a new dummy.
            let d = new(&mut cs);
            cs[d].children = vec![keep, r];
            subj.insert(s, d);
            alive.retain(|x| *x != r);
            if let Some(p) = alive.iter().position(|x| *x == keep) {
                alive[p] = d;
            }
        }
    }
    let mut merged = alive;
    sort_tree(&mut cs, &mut merged, msgs);
    fn build(cs: &Vec<C>, c: usize) -> Node {
        Node {
            msg: cs[c].msg,
            children: cs[c].children.iter().map(|k| build(cs, *k)).collect(),
        }
    }
    merged.iter().map(|&c| build(&cs, c)).collect()
}

/// The THREAD response text of a forest, messages numbered by `number`.
pub fn thread_text(nodes: &[Node], number: &dyn Fn(usize) -> u32) -> String {
    fn one(n: &Node, number: &dyn Fn(usize) -> u32, out: &mut String) {
        if let Some(m) = n.msg {
            out.push_str(&number(m).to_string());
        }
        match n.children.len() {
            0 => {}
            1 if n.msg.is_some() => {
                out.push(' ');
                one(&n.children[0], number, out);
            }
            _ => {
                if n.msg.is_some() {
                    out.push(' ');
                }
                for c in &n.children {
                    out.push('(');
                    one(c, number, out);
                    out.push(')');
                }
            }
        }
    }
    let mut out = String::new();
    for n in nodes {
        out.push('(');
        one(n, number, &mut out);
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_subjects() {
        for (s, b) in [
            ("Re: hello", "hello"),
            ("RE: [list] Fwd: hello (fwd)", "hello"),
            ("[fwd: Re: hello]", "hello"),
            ("  many   spaces ", "many spaces"),
            ("[only blob]", "[only blob]"),
            ("re:", ""),
            ("Reply", "Reply"),
        ] {
            assert_eq!(base_subject(s), b, "{s:?}");
        }
    }

    #[test]
    fn ties_keep_sequence_order_even_reversed() {
        let f = |from: &str, size| Fields {
            from: from.into(),
            size,
            ..Default::default()
        };
        let m = [f("b", 1), f("b", 2), f("a", 3)];
        assert_eq!(sort(&m, &[(SortKey::From, false)]), [2, 0, 1]);
        assert_eq!(sort(&m, &[(SortKey::From, true)]), [0, 1, 2]);
        assert_eq!(
            sort(&m, &[(SortKey::From, false), (SortKey::Size, true)]),
            [2, 1, 0]
        );
    }

    #[test]
    fn thread_text_shapes() {
        let leaf = |m| Node {
            msg: Some(m),
            children: vec![],
        };
        let t = vec![
            Node {
                msg: Some(0),
                children: vec![leaf(1)],
            },
            Node {
                msg: Some(2),
                children: vec![leaf(3), leaf(4)],
            },
            Node {
                msg: None,
                children: vec![leaf(5), leaf(6)],
            },
        ];
        assert_eq!(
            thread_text(&t, &|i| i as u32 + 1),
            "(1 2)(3 (4)(5))((6)(7))"
        );
    }
}
