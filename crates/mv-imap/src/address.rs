//! RFC 5322 address lists as ENVELOPE shows them (RFC 3501 §7.4.2): display
//! names, a comment as the name of a bare address (`user@domain (Real Name)`),
//! source routes (`<@route:user@domain>`), and groups, which become a start
//! marker `(NIL NIL "group" NIL)`, their members and an end marker
//! `(NIL NIL NIL NIL)`. Lenient, as mail is; bounded by its input.

/// One ENVELOPE address: (name, route, mailbox, host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub name: Option<String>,
    pub route: Option<String>,
    pub mailbox: Option<String>,
    pub host: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// An atom or a dot-atom (dots are kept in the word).
    Atom(String),
    Quoted(String),
    Comment(String),
    /// A domain literal, brackets included.
    Literal(String),
    Special(char),
}

fn tokens(s: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            c if c.is_whitespace() => {}
            '"' => {
                let mut q = String::new();
                while let Some(c) = it.next() {
                    match c {
                        '\\' => q.extend(it.next()),
                        '"' => break,
                        '\r' | '\n' => {}
                        c => q.push(c),
                    }
                }
                out.push(Token::Quoted(q));
            }
            '(' => {
                let (mut depth, mut text) = (1usize, String::new());
                while let Some(c) = it.next() {
                    match c {
                        '\\' => text.extend(it.next()),
                        '(' => {
                            depth += 1;
                            text.push(c);
                        }
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                            text.push(c);
                        }
                        '\r' | '\n' => {}
                        c => text.push(c),
                    }
                }
                out.push(Token::Comment(text.trim().to_string()));
            }
            '[' => {
                let mut l = String::from("[");
                for c in it.by_ref() {
                    l.push(c);
                    if c == ']' {
                        break;
                    }
                }
                out.push(Token::Literal(l));
            }
            '<' | '>' | '@' | ',' | ':' | ';' | ')' | ']' => out.push(Token::Special(c)),
            c => {
                let mut a = String::from(c);
                while let Some(&n) = it.peek() {
                    if n.is_whitespace() || "\"()<>@,:;[]".contains(n) {
                        break;
                    }
                    a.push(n);
                    it.next();
                }
                out.push(Token::Atom(a));
            }
        }
    }
    out
}

/// The words of a phrase or local part, without comments.
fn words(t: &[Token], sep: &str) -> String {
    t.iter()
        .filter_map(|t| match t {
            Token::Atom(s) | Token::Quoted(s) | Token::Literal(s) => Some(s.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(sep)
}

/// `local@domain` (or a bare word) from addr-spec tokens.
fn addr_spec(t: &[Token]) -> (Option<String>, Option<String>) {
    let at = t.iter().rposition(|x| *x == Token::Special('@'));
    let (local, domain) = match at {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let local = words(local, "");
    let domain = domain.map(|d| words(d, ""));
    (
        (!local.is_empty()).then_some(local),
        // A missing domain is "", not NIL: NIL host marks a group.
        Some(domain.unwrap_or_default()),
    )
}

/// One mailbox from its tokens (between commas).
fn mailbox(t: &[Token]) -> Option<Address> {
    let last_comment = || {
        t.iter().rev().find_map(|x| match x {
            Token::Comment(c) if !c.is_empty() => Some(c.clone()),
            _ => None,
        })
    };
    let open = t.iter().position(|x| *x == Token::Special('<'));
    let (name, route, spec) = match open {
        Some(o) => {
            let close = t[o..]
                .iter()
                .position(|x| *x == Token::Special('>'))
                .map_or(t.len(), |c| o + c);
            let phrase = words(&t[..o], " ");
            let inner = &t[o + 1..close];
            // `@a,@b:user@host`: the route is everything up to the colon.
            let (route, spec) = match inner.iter().position(|x| *x == Token::Special(':')) {
                Some(c) if inner.first() == Some(&Token::Special('@')) => {
                    let mut r = String::new();
                    for x in &inner[..c] {
                        match x {
                            Token::Special(ch) => r.push(*ch),
                            Token::Atom(s) | Token::Literal(s) | Token::Quoted(s) => r.push_str(s),
                            Token::Comment(_) => {}
                        }
                    }
                    (Some(r), &inner[c + 1..])
                }
                _ => (None, inner),
            };
            let name = if phrase.is_empty() {
                last_comment()
            } else {
                Some(phrase)
            };
            (name, route, spec)
        }
        None => (last_comment(), None, t),
    };
    let (mailbox, host) = addr_spec(spec);
    mailbox.as_ref()?;
    Some(Address {
        name,
        route,
        mailbox,
        host,
    })
}

/// Parses an address-list header value.
pub fn parse(v: &[u8]) -> Vec<Address> {
    let s = String::from_utf8_lossy(v);
    let t = tokens(&s);
    let mut out = Vec::new();
    let mut in_group = false;
    let mut in_angle = false;
    let mut cur: Vec<Token> = Vec::new();
    let flush = |cur: &mut Vec<Token>, out: &mut Vec<Address>| {
        if let Some(a) = mailbox(cur) {
            out.push(a);
        }
        cur.clear();
    };
    for tok in t {
        match tok {
            Token::Special('<') => {
                in_angle = true;
                cur.push(tok);
            }
            Token::Special('>') => {
                in_angle = false;
                cur.push(tok);
            }
            Token::Special(':') if !in_angle && !in_group => {
                let name = words(&cur, " ");
                cur.clear();
                in_group = true;
                out.push(Address {
                    name: None,
                    route: None,
                    mailbox: Some(name),
                    host: None,
                });
            }
            Token::Special(',') if !in_angle => flush(&mut cur, &mut out),
            Token::Special(';') if !in_angle => {
                flush(&mut cur, &mut out);
                if in_group {
                    out.push(Address {
                        name: None,
                        route: None,
                        mailbox: None,
                        host: None,
                    });
                    in_group = false;
                }
            }
            t => cur.push(t),
        }
    }
    flush(&mut cur, &mut out);
    if in_group {
        out.push(Address {
            name: None,
            route: None,
            mailbox: None,
            host: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(name: Option<&str>, route: Option<&str>, mb: Option<&str>, host: Option<&str>) -> Address {
        Address {
            name: name.map(Into::into),
            route: route.map(Into::into),
            mailbox: mb.map(Into::into),
            host: host.map(Into::into),
        }
    }

    #[test]
    fn names_comments_routes_and_groups() {
        assert_eq!(
            parse(b"From Real <fromuser@fromdomain.org>"),
            [a(
                Some("From Real"),
                None,
                Some("fromuser"),
                Some("fromdomain.org")
            )]
        );
        // A trailing comment is the personal name, not part of the domain.
        assert_eq!(
            parse(b"user@domain (Real Name)"),
            [a(Some("Real Name"), None, Some("user"), Some("domain"))]
        );
        assert_eq!(
            parse(b"<@route:user@domain>"),
            [a(None, Some("@route"), Some("user"), Some("domain"))]
        );
        assert_eq!(
            parse(b"\"Q, R\" <e@f>, c@d"),
            [
                a(Some("Q, R"), None, Some("e"), Some("f")),
                a(None, None, Some("c"), Some("d"))
            ]
        );
        assert_eq!(
            parse(b"group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;"),
            [
                a(None, None, Some("group"), None),
                a(None, None, Some("g1"), Some("d1.org")),
                a(None, None, Some("g2"), Some("d2.org")),
                a(None, None, None, None),
                a(None, None, Some("group2"), None),
                a(None, None, Some("g3"), Some("d3.org")),
                a(None, None, None, None),
            ]
        );
        assert_eq!(
            parse(b"group:;, group2: (foo) ;"),
            [
                a(None, None, Some("group"), None),
                a(None, None, None, None),
                a(None, None, Some("group2"), None),
                a(None, None, None, None),
            ]
        );
        assert!(parse(b"").is_empty());
        assert!(parse(b" , ,").is_empty());
    }
}
