//! The NOTIFY command (RFC 5465), which imap-codec does not parse:
//! `NOTIFY NONE` and `NOTIFY SET [STATUS] (filter events) ...`. Sans-io, so it
//! is fuzzed with the rest of the command parsing (`imap_command`).

use crate::lexer::{Lexer, Token};

/// Which mailboxes an event group is about (RFC 5465 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Selected,
    /// The selected mailbox, with expunges held back until a command that
    /// allows them.
    SelectedDelayed,
    Inboxes,
    Personal,
    Subscribed,
    /// These mailboxes and every mailbox below them (UTF-8 names).
    Subtree(Vec<String>),
    /// Exactly these mailboxes (UTF-8 names).
    Mailboxes(Vec<String>),
}

impl Filter {
    pub fn is_selected(&self) -> bool {
        matches!(self, Filter::Selected | Filter::SelectedDelayed)
    }
}

/// The events of one group; all false for `NONE`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Events {
    pub message_new: bool,
    /// MessageNew's FETCH attributes, parenthesized, as a FETCH command takes
    /// them, with BODY[...] and BINARY[...] made PEEKs (a notification must not
    /// set \Seen).
    pub fetch: Option<Vec<u8>>,
    pub message_expunge: bool,
    pub flag_change: bool,
    pub mailbox_name: bool,
    pub subscription_change: bool,
}

impl Events {
    /// An event about messages is asked for.
    pub fn messages(&self) -> bool {
        self.message_new || self.message_expunge || self.flag_change
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub filter: Filter,
    pub events: Events,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notify {
    None,
    Set {
        /// `STATUS`: send the current STATUS of the mailboxes now.
        status: bool,
        groups: Vec<Group>,
    },
}

/// Why a NOTIFY was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyError {
    /// Malformed: `BAD` with this text.
    Bad(String),
    /// Well formed, naming an event this server does not report:
    /// `NO [BADEVENT (supported events)]` (RFC 5465 §3.1).
    BadEvent(String),
}

/// The events this server reports, for BADEVENT.
pub const SUPPORTED: &str = "MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange";

/// Bounds on what one NOTIFY may ask for (it comes from a client).
pub const MAX_GROUPS: usize = 64;
pub const MAX_MAILBOXES: usize = 1000;

/// `tag NOTIFY ...`: None when the command is not a NOTIFY.
/// Mailbox names are modified UTF-7, or UTF-8 with `utf8` (IMAP4rev2).
pub fn parse(cmd: &[u8], utf8: bool) -> Option<Result<Notify, NotifyError>> {
    let mut l = Lexer::new(cmd);
    let _tag = l.token().ok()?;
    if !l.space() || !l.token().ok()?.is_atom("NOTIFY") {
        return None;
    }
    Some(parse_rest(&mut l, utf8))
}

fn bad(s: impl Into<String>) -> NotifyError {
    NotifyError::Bad(s.into())
}

fn parse_rest(l: &mut Lexer<'_>, utf8: bool) -> Result<Notify, NotifyError> {
    if !l.space() {
        return Err(bad("NOTIFY needs SET or NONE"));
    }
    let word = l.token().map_err(bad)?;
    if word.is_atom("NONE") {
        if !l.at_end() {
            return Err(bad("NOTIFY NONE takes no arguments"));
        }
        return Ok(Notify::None);
    }
    if !word.is_atom("SET") {
        return Err(bad("NOTIFY needs SET or NONE"));
    }
    if !l.space() {
        return Err(bad("NOTIFY SET needs at least one event group"));
    }
    let mut status = false;
    if !l.peek_open() {
        if !l.token().map_err(bad)?.is_atom("STATUS") || !l.space() {
            return Err(bad(
                "NOTIFY SET takes STATUS or an event group in parentheses",
            ));
        }
        status = true;
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut mailboxes = 0;
    loop {
        if l.token().map_err(bad)? != Token::Open {
            return Err(bad("an event group is in parentheses"));
        }
        let g = group(l, &mut mailboxes, utf8)?;
        if g.filter.is_selected() && groups.iter().any(|x| x.filter.is_selected()) {
            return Err(bad(
                "selected or selected-delayed may be given once (RFC 5465 §6)",
            ));
        }
        groups.push(g);
        if groups.len() > MAX_GROUPS {
            return Err(bad(format!("more than {MAX_GROUPS} event groups")));
        }
        if l.at_end() {
            break;
        }
        if !l.space() {
            return Err(bad("event groups are separated by spaces"));
        }
    }
    Ok(Notify::Set { status, groups })
}

/// One group after its opening parenthesis, through its closing one.
fn group(l: &mut Lexer<'_>, mailboxes: &mut usize, utf8: bool) -> Result<Group, NotifyError> {
    let kind = l.token().map_err(bad)?;
    let Token::Atom(kind) = kind else {
        return Err(bad("an event group starts with its mailbox filter"));
    };
    let kind = String::from_utf8_lossy(kind).to_ascii_lowercase();
    let filter = match kind.as_str() {
        "selected" => Filter::Selected,
        "selected-delayed" => Filter::SelectedDelayed,
        "inboxes" => Filter::Inboxes,
        "personal" => Filter::Personal,
        "subscribed" => Filter::Subscribed,
        "subtree" | "mailboxes" => {
            if !l.space() {
                return Err(bad(format!("{kind} needs one or more mailbox names")));
            }
            let names = names(l, utf8)?;
            *mailboxes += names.len();
            if *mailboxes > MAX_MAILBOXES {
                return Err(bad(format!("more than {MAX_MAILBOXES} mailbox names")));
            }
            if kind == "subtree" {
                Filter::Subtree(names)
            } else {
                Filter::Mailboxes(names)
            }
        }
        other => return Err(bad(format!("unknown mailbox filter {other:?}"))),
    };
    if !l.space() {
        return Err(bad("a mailbox filter is followed by its events"));
    }
    let events = events(l, &filter)?;
    if l.token().map_err(bad)? != Token::Close {
        return Err(bad("an event group ends after its events"));
    }
    Ok(Group { filter, events })
}

/// A mailbox name or a parenthesized list of them, decoded to UTF-8.
fn names(l: &mut Lexer<'_>, utf8: bool) -> Result<Vec<String>, NotifyError> {
    let one = |t: Token<'_>| -> Result<String, NotifyError> {
        let raw = t
            .string()
            .ok_or_else(|| bad("a mailbox name is a string"))?;
        let name = if utf8 {
            String::from_utf8(raw.to_vec()).map_err(|e| e.to_string())
        } else {
            crate::utf7::decode(raw).map_err(|e| e.to_string())
        };
        let name = name.map_err(|e| {
            bad(format!(
                "invalid mailbox name {:?}: {e}",
                String::from_utf8_lossy(raw)
            ))
        })?;
        Ok(crate::convert::normalize_inbox(name.trim_end_matches('/')))
    };
    if !l.peek_open() {
        return Ok(vec![one(l.token().map_err(bad)?)?]);
    }
    l.token().map_err(bad)?;
    let mut out = Vec::new();
    loop {
        let t = l.token().map_err(bad)?;
        if t == Token::Close {
            if out.is_empty() {
                return Err(bad("an empty list of mailbox names"));
            }
            return Ok(out);
        }
        out.push(one(t)?);
        if out.len() > MAX_MAILBOXES {
            return Err(bad(format!("more than {MAX_MAILBOXES} mailbox names")));
        }
        if !l.peek_close() && !l.space() {
            return Err(bad("mailbox names are separated by spaces"));
        }
    }
}

/// `NONE` or `(event ...)`.
fn events(l: &mut Lexer<'_>, filter: &Filter) -> Result<Events, NotifyError> {
    let mut e = Events::default();
    if !l.peek_open() {
        if l.token().map_err(bad)?.is_atom("NONE") {
            return Ok(e);
        }
        return Err(bad("events are NONE or a parenthesized list"));
    }
    l.token().map_err(bad)?;
    let mut unsupported = Vec::new();
    loop {
        let t = l.token().map_err(bad)?;
        let Token::Atom(name) = t else {
            return Err(bad("an event is an atom"));
        };
        let name = String::from_utf8_lossy(name).into_owned();
        match name.to_ascii_lowercase().as_str() {
            "messagenew" => {
                e.message_new = true;
                if l.space() && l.peek_open() {
                    if !filter.is_selected() {
                        return Err(bad(
                            "MessageNew takes FETCH attributes for the selected mailbox only",
                        ));
                    }
                    e.fetch = Some(fetch_attributes(l)?);
                } else if l.peek_close() {
                    // The list ends here.
                } else {
                    // The space was the separator before the next event.
                    let t = l.token().map_err(bad)?;
                    // Put back by handling it as the next event.
                    match_event(&t, &mut e, &mut unsupported)?;
                }
            }
            _ => match_event(&Token::Atom(name.as_bytes()), &mut e, &mut unsupported)?,
        }
        if l.peek_close() {
            l.token().map_err(bad)?;
            break;
        }
        if !l.space() {
            return Err(bad("events are separated by spaces"));
        }
    }
    if !unsupported.is_empty() {
        return Err(NotifyError::BadEvent(format!(
            "not reported here: {}",
            unsupported.join(" ")
        )));
    }
    if e == Events::default() {
        return Err(bad("an empty event list (use NONE)"));
    }
    Ok(e)
}

/// One event other than MessageNew with attributes.
fn match_event(
    t: &Token<'_>,
    e: &mut Events,
    unsupported: &mut Vec<String>,
) -> Result<(), NotifyError> {
    let Token::Atom(name) = t else {
        return Err(bad("an event is an atom"));
    };
    let name = String::from_utf8_lossy(name);
    match name.to_ascii_lowercase().as_str() {
        "messagenew" => e.message_new = true,
        "messageexpunge" => e.message_expunge = true,
        "flagchange" => e.flag_change = true,
        "mailboxname" => e.mailbox_name = true,
        "subscriptionchange" => e.subscription_change = true,
        "annotationchange" | "mailboxmetadatachange" | "servermetadatachange" => {
            unsupported.push(name.into_owned())
        }
        _ => return Err(bad(format!("unknown event {name:?}"))),
    }
    Ok(())
}

/// MessageNew's `(fetch-att ...)`, checked by imap-codec as the attributes of
/// a FETCH, with reads that would set \Seen made PEEKs.
fn fetch_attributes(l: &mut Lexer<'_>) -> Result<Vec<u8>, NotifyError> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    loop {
        let start = l.pos();
        let t = l.token().map_err(bad)?;
        match t {
            Token::Open => {
                depth += 1;
                out.push(b'(');
            }
            Token::Close => {
                depth -= 1;
                out.push(b')');
                if depth == 0 {
                    break;
                }
            }
            Token::Atom(a) if depth == 1 => out.extend_from_slice(&peek_form(a)),
            _ => out.extend_from_slice(l.span(start)),
        }
        if l.space() {
            out.push(b' ');
        }
    }
    let probe = [b"n UID FETCH 1 ".as_slice(), &out, b"\r\n"].concat();
    use imap_codec::decode::Decoder;
    match imap_codec::CommandCodec::default().decode(&probe) {
        Ok((_, c)) if c.body.name() == "FETCH" => Ok(out),
        _ => Err(bad(format!(
            "MessageNew's FETCH attributes do not parse: {}",
            String::from_utf8_lossy(&out)
        ))),
    }
}

/// The attribute as one that leaves \Seen alone.
fn peek_form(a: &[u8]) -> Vec<u8> {
    let upper = a.to_ascii_uppercase();
    for (from, to) in [
        (b"BODY[".as_slice(), b"BODY.PEEK[".as_slice()),
        (b"BINARY[", b"BINARY.PEEK["),
    ] {
        if upper.starts_with(from) {
            return [to, &a[from.len()..]].concat();
        }
    }
    match upper.as_slice() {
        b"RFC822" => b"BODY.PEEK[]".to_vec(),
        b"RFC822.TEXT" => b"BODY.PEEK[TEXT]".to_vec(),
        _ => a.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Notify, NotifyError> {
        parse(format!("t1 {s}\r\n").as_bytes(), false).expect("a NOTIFY")
    }

    fn groups(s: &str) -> Vec<Group> {
        match p(s) {
            Ok(Notify::Set { groups, .. }) => groups,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn none_and_other_commands() {
        assert_eq!(p("NOTIFY NONE"), Ok(Notify::None));
        assert_eq!(p("notify none"), Ok(Notify::None));
        assert!(parse(b"t1 NOOP\r\n", false).is_none());
        assert!(parse(b"t1 NOTIFYX NONE\r\n", false).is_none());
        assert!(matches!(p("NOTIFY NONE x"), Err(NotifyError::Bad(_))));
        assert!(matches!(p("NOTIFY"), Err(NotifyError::Bad(_))));
        assert!(matches!(p("NOTIFY SET"), Err(NotifyError::Bad(_))));
    }

    #[test]
    fn the_groups_imaptest_sends() {
        let r = p("NOTIFY SET STATUS (mailboxes imaptest2 (MessageExpunge))").unwrap();
        let Notify::Set { status, groups: g } = r else {
            panic!()
        };
        assert!(status);
        assert_eq!(g[0].filter, Filter::Mailboxes(vec!["imaptest2".into()]));
        assert!(g[0].events.message_expunge && !g[0].events.message_new);
        let g = groups("NOTIFY SET (mailboxes imaptest2 (MessageNew MessageExpunge FlagChange))");
        let e = &g[0].events;
        assert!(e.message_new && e.message_expunge && e.flag_change && e.fetch.is_none());
    }

    #[test]
    fn every_filter_and_event() {
        let g = groups(
            "NOTIFY SET (selected (MessageNew (UID BODY[HEADER.FIELDS (From Subject)] RFC822.SIZE) MessageExpunge FlagChange)) \
             (inboxes (MessageNew)) (personal (MailboxName SubscriptionChange)) (subscribed NONE) \
             (subtree (INBOX/a \"Work x\") (MessageNew MessageExpunge)) (mailboxes {5}\r\ninbox (FlagChange))",
        );
        assert_eq!(g.len(), 6);
        assert_eq!(
            g[0].events.fetch.as_deref(),
            Some(b"(UID BODY.PEEK[HEADER.FIELDS (From Subject)] RFC822.SIZE)".as_slice())
        );
        assert!(g[0].events.message_expunge && g[0].events.flag_change);
        assert_eq!(g[1].filter, Filter::Inboxes);
        assert!(g[2].events.mailbox_name && g[2].events.subscription_change);
        assert_eq!(g[3].events, Events::default());
        assert_eq!(
            g[4].filter,
            Filter::Subtree(vec!["INBOX/a".into(), "Work x".into()])
        );
        assert_eq!(g[5].filter, Filter::Mailboxes(vec!["INBOX".into()]));
        let g = groups("NOTIFY SET (selected-delayed (MessageNew (BODY[] FLAGS)))");
        assert_eq!(g[0].filter, Filter::SelectedDelayed);
        assert_eq!(
            g[0].events.fetch.as_deref(),
            Some(b"(BODY.PEEK[] FLAGS)".as_slice())
        );
        // Modified UTF-7 names are decoded.
        let g = groups("NOTIFY SET (mailboxes &AOQ- (MessageNew))");
        assert_eq!(g[0].filter, Filter::Mailboxes(vec!["ä".into()]));
        // Under IMAP4rev2 names are UTF-8 as sent.
        let Some(Ok(Notify::Set { groups: g, .. })) = parse(
            "t NOTIFY SET (mailboxes (&AOQ- {2}\r\nä) (MessageNew))\r\n".as_bytes(),
            true,
        ) else {
            panic!()
        };
        assert_eq!(
            g[0].filter,
            Filter::Mailboxes(vec!["&AOQ-".into(), "ä".into()])
        );
    }

    #[test]
    fn unsupported_events_are_badevent() {
        assert!(matches!(
            p("NOTIFY SET (personal (MessageNew AnnotationChange))"),
            Err(NotifyError::BadEvent(t)) if t.contains("AnnotationChange")
        ));
        assert!(matches!(
            p("NOTIFY SET (personal (ServerMetadataChange))"),
            Err(NotifyError::BadEvent(_))
        ));
    }

    #[test]
    fn malformed_is_bad_with_a_reason() {
        for (cmd, why) in [
            ("NOTIFY SET (personal (Nonsense))", "unknown event"),
            (
                "NOTIFY SET (elsewhere (MessageNew))",
                "unknown mailbox filter",
            ),
            (
                "NOTIFY SET (personal (MessageNew (UID)))",
                "selected mailbox only",
            ),
            (
                "NOTIFY SET (selected (MessageNew (NOSUCHATT)))",
                "do not parse",
            ),
            (
                "NOTIFY SET (selected (MessageNew)) (selected-delayed (MessageNew))",
                "once",
            ),
            ("NOTIFY SET (personal ())", "an event is an atom"),
            (
                "NOTIFY SET (mailboxes (MessageNew))",
                "followed by its events",
            ),
            (
                "NOTIFY SET (mailboxes &Jjo (MessageNew))",
                "invalid mailbox name",
            ),
            ("NOTIFY SET STATUS", "event group"),
            ("NOTIFY SET personal (MessageNew)", "parentheses"),
            ("NOTIFY SET (personal (MessageNew)", "ends too early"),
            ("NOTIFY SET (personal (MessageNew))x", "separated by spaces"),
            ("NOTIFY SET (personal)", "followed by its events"),
        ] {
            match p(cmd) {
                Err(NotifyError::Bad(t)) => assert!(t.contains(why), "{cmd}: {t}"),
                other => panic!("{cmd}: {other:?}"),
            }
        }
        let many = "(personal (MessageNew)) ".repeat(MAX_GROUPS + 1);
        assert!(matches!(
            p(&format!("NOTIFY SET {}", many.trim_end())),
            Err(NotifyError::Bad(t)) if t.contains("event groups")
        ));
    }
}
