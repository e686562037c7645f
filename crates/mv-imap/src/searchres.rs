//! SEARCHRES (RFC 5182): `$` stands for the result a `SEARCH RETURN (SAVE)`
//! saved. imap-codec does not know `$`, so it is replaced in the command's
//! text by the saved messages before the command is parsed: by their UIDs or
//! sequence numbers as the sequence-set argument of FETCH, STORE, COPY, MOVE
//! and UID EXPUNGE, and by `UID set` as a SEARCH key.

use crate::lexer::{Lexer, Token};

/// What the command becomes with `$` replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    /// The command with every `$` replaced.
    Command(Vec<u8>),
    /// `$` is the sequence-set argument and the saved result is empty: the
    /// command does nothing (RFC 5182 §2.1).
    Nothing,
}

/// SEARCH keys followed by one argument (`MODSEQ` takes one or three).
const ONE_ARG: &[&str] = &[
    "BCC",
    "BEFORE",
    "BODY",
    "CC",
    "FROM",
    "KEYWORD",
    "LARGER",
    "ON",
    "SENTBEFORE",
    "SENTON",
    "SENTSINCE",
    "SINCE",
    "SMALLER",
    "SUBJECT",
    "TEXT",
    "TO",
    "UNKEYWORD",
    "OLDER",
    "YOUNGER",
    "CHARSET",
];

/// Replaces `$` in `cmd`; None when the command has none. `set(uid)` gives
/// the saved messages as a sequence set of UIDs (`uid`) or sequence numbers,
/// None when the result is empty.
pub fn rewrite(cmd: &[u8], set: &dyn Fn(bool) -> Option<String>) -> Option<Rewrite> {
    if !cmd.contains(&b'$') {
        return None;
    }
    let mut l = Lexer::new(cmd);
    l.token().ok()?;
    if !l.space() {
        return None;
    }
    let mut verb = l.token().ok()?;
    let uid = verb.is_atom("UID");
    if uid {
        if !l.space() {
            return None;
        }
        verb = l.token().ok()?;
    }
    if !l.space() {
        return None;
    }
    // (start, end, replacement) of each `$`.
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    if ["FETCH", "STORE", "COPY", "MOVE", "EXPUNGE"]
        .iter()
        .any(|v| verb.is_atom(v))
    {
        let start = l.pos();
        if l.token().ok()? != Token::Atom(b"$") {
            return None;
        }
        match set(uid) {
            Some(s) => edits.push((start, l.pos(), s)),
            None => return Some(Rewrite::Nothing),
        }
    } else if verb.is_atom("SEARCH") {
        let saved = set(true);
        // Tokens still owed as arguments of the key before.
        let mut args = 0usize;
        let mut after_uid_key = false;
        while !l.at_end() {
            let start = l.pos();
            let t = l.token().ok()?;
            let is_dollar = t == Token::Atom(b"$");
            if args > 0 {
                args -= 1;
                if is_dollar && after_uid_key {
                    // `UID $`: the set, or no message at all.
                    let s = saved.clone().unwrap_or_else(|| "4294967295".into());
                    edits.push((start, l.pos(), s));
                }
                after_uid_key = false;
            } else if is_dollar {
                let s = match &saved {
                    Some(s) => format!("UID {s}"),
                    None => "NOT ALL".into(),
                };
                edits.push((start, l.pos(), s));
            } else if let Token::Atom(a) = &t {
                let word = String::from_utf8_lossy(a).to_ascii_uppercase();
                if ONE_ARG.contains(&word.as_str()) {
                    args = 1;
                } else if word == "UID" {
                    args = 1;
                    after_uid_key = true;
                } else if word == "HEADER" {
                    args = 2;
                } else if word == "MODSEQ" {
                    let mut peek = Lexer::new(&cmd[l.pos()..]);
                    peek.space();
                    args = if matches!(peek.token(), Ok(Token::Quoted(_))) {
                        3
                    } else {
                        1
                    };
                }
            }
            l.space();
        }
    }
    if edits.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(cmd.len() + 64);
    let mut at = 0;
    for (start, end, s) in edits {
        out.extend_from_slice(&cmd[at..start]);
        out.extend_from_slice(s.as_bytes());
        at = end;
    }
    out.extend_from_slice(&cmd[at..]);
    Some(Rewrite::Command(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(uid: bool) -> Option<String> {
        Some(if uid { "10:12".into() } else { "3:5".into() })
    }

    fn text(r: Option<Rewrite>) -> String {
        match r {
            Some(Rewrite::Command(c)) => String::from_utf8(c).unwrap(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn dollar_becomes_the_saved_set() {
        assert_eq!(
            text(rewrite(b"a FETCH $ FLAGS\r\n", &saved)),
            "a FETCH 3:5 FLAGS\r\n"
        );
        assert_eq!(
            text(rewrite(b"a UID STORE $ +FLAGS (\\Seen)\r\n", &saved)),
            "a UID STORE 10:12 +FLAGS (\\Seen)\r\n"
        );
        assert_eq!(
            text(rewrite(b"a SEARCH OR $ SUBJECT $ UID $\r\n", &saved)),
            "a SEARCH OR UID 10:12 SUBJECT $ UID 10:12\r\n"
        );
        assert_eq!(
            text(rewrite(b"a SEARCH HEADER X $ NOT $\r\n", &saved)),
            "a SEARCH HEADER X $ NOT UID 10:12\r\n"
        );
        assert!(rewrite(b"a FETCH 1 FLAGS\r\n", &saved).is_none());
        assert!(rewrite(b"a APPEND INBOX {1}\r\n$\r\n", &saved).is_none());
        let empty = |_| None;
        assert_eq!(
            rewrite(b"a COPY $ Trash\r\n", &empty),
            Some(Rewrite::Nothing)
        );
        assert_eq!(
            text(rewrite(b"a UID SEARCH $ UID $\r\n", &empty)),
            "a UID SEARCH NOT ALL UID 4294967295\r\n"
        );
    }
}
