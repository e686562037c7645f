//! PREVIEW (RFC 8970): the FETCH item imap-codec does not parse, taken out of
//! the command before it is decoded (as [`crate::status_ext`] does for STATUS),
//! and the preview text itself.

use crate::lexer::{Lexer, Token};

/// RFC 8970 §3: a preview is at most 256 characters.
pub const MAX_CHARS: usize = 256;

/// Where PREVIEW was in a FETCH's item list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviewItem {
    /// Its index among the items asked for.
    pub position: usize,
    /// It was the only item: the command handed on asks for `UID` instead,
    /// which is left out of the answer unless the command is UID FETCH.
    pub alone: bool,
}

/// A `tag [UID] FETCH set items [modifiers]` command with PREVIEW (and its
/// `(LAZY)` modifier, RFC 8970 §3.1: we always compute the preview) taken out;
/// None for any other command. Err for a PREVIEW modifier we do not know.
pub fn split_command(cmd: &[u8]) -> Option<Result<(Vec<u8>, PreviewItem), String>> {
    let mut l = Lexer::new(cmd);
    let Ok(Token::Atom(_)) = l.token() else {
        return None;
    };
    if !l.space() {
        return None;
    }
    let mut word = l.token().ok()?;
    if word.is_atom("UID") {
        if !l.space() {
            return None;
        }
        word = l.token().ok()?;
    }
    if !word.is_atom("FETCH") || !l.space() {
        return None;
    }
    let Token::Atom(_) = l.token().ok()? else {
        return None;
    };
    if !l.space() {
        return None;
    }
    let start = l.pos();
    // The item list: one item, or a parenthesised list of items (each an atom,
    // maybe with [section]<partial> or a parenthesised argument).
    let listed = l.peek_open();
    if listed {
        l.token().ok()?;
    }
    let mut items: Vec<(usize, usize)> = Vec::new();
    let mut position = None;
    let mut modifier_error = None;
    loop {
        if listed && l.peek_close() {
            l.token().ok()?;
            break;
        }
        let item_start = l.pos();
        let Token::Atom(a) = l.token().ok()? else {
            return None;
        };
        // A section such as BODY[HEADER.FIELDS (A B)] has spaces and parentheses.
        if a.contains(&b'[') && !a.contains(&b']') {
            loop {
                l.space();
                match l.token().ok()? {
                    Token::Atom(x) if x.contains(&b']') => break,
                    _ => {}
                }
            }
        }
        if a.eq_ignore_ascii_case(b"PREVIEW") {
            position = Some(items.len());
            // PREVIEW (LAZY): a modifier list.
            if cmd[l.pos()..].starts_with(b" (") {
                l.space();
                l.token().ok()?;
                loop {
                    match l.token().ok()? {
                        Token::Close => break,
                        Token::Atom(m) if m.eq_ignore_ascii_case(b"LAZY") => {}
                        other => {
                            modifier_error =
                                Some(format!("unknown PREVIEW modifier {:?}", other.string()));
                        }
                    }
                    l.space();
                }
            }
        } else {
            items.push((item_start, l.pos()));
        }
        if !listed {
            break;
        }
        l.space();
    }
    let position = position?;
    if let Some(e) = modifier_error {
        return Some(Err(e));
    }
    let rest = &cmd[l.pos()..];
    let alone = items.is_empty();
    let mut out = cmd[..start].to_vec();
    out.push(b'(');
    if alone {
        out.extend_from_slice(b"UID");
    }
    for (i, (a, b)) in items.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(&cmd[*a..*b]);
    }
    out.push(b')');
    out.extend_from_slice(rest);
    Some(Ok((out, PreviewItem { position, alone })))
}

/// The preview of a message: the start of its first text part (HTML turned
/// into text), charset decoded, white space runs made one space, at most
/// [`MAX_CHARS`] characters. Empty when the message has no text.
pub fn text(raw: &[u8]) -> String {
    let Some(msg) = mail_parser::MessageParser::default().parse(raw) else {
        return String::new();
    };
    let Some(body) = msg.body_text(0) else {
        return String::new();
    };
    let mut out = String::new();
    let mut chars = 0;
    for word in body.split_whitespace() {
        for (i, c) in (if out.is_empty() { "" } else { " " })
            .chars()
            .chain(word.chars())
            .enumerate()
        {
            if chars == MAX_CHARS {
                return out;
            }
            // Control characters never reach the client.
            if i > 0 || !c.is_control() {
                out.push(if c.is_control() { ' ' } else { c });
                chars += 1;
            }
        }
    }
    out
}

/// The FETCH answer's value: the text as a string, NIL when there is none.
pub fn answer(raw: &[u8]) -> Vec<u8> {
    let t = text(raw);
    let mut out = Vec::new();
    if t.is_empty() {
        out.extend_from_slice(b"NIL");
    } else {
        crate::wire::string(&mut out, t.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(cmd: &str) -> Option<(String, PreviewItem)> {
        split_command(cmd.as_bytes())
            .map(|r| r.unwrap())
            .map(|(c, p)| (String::from_utf8(c).unwrap(), p))
    }

    #[test]
    fn preview_is_taken_out_of_fetch() {
        let (c, p) = split("a FETCH 1:* (UID PREVIEW FLAGS)\r\n").unwrap();
        assert_eq!(c, "a FETCH 1:* (UID FLAGS)\r\n");
        assert_eq!(
            p,
            PreviewItem {
                position: 1,
                alone: false
            }
        );
        let (c, p) = split("a UID FETCH 1 (PREVIEW (LAZY))\r\n").unwrap();
        assert_eq!(c, "a UID FETCH 1 (UID)\r\n");
        assert!(p.alone);
        let (c, p) = split("a FETCH 1 preview\r\n").unwrap();
        assert_eq!(c, "a FETCH 1 (UID)\r\n");
        assert!(p.alone);
        let (c, p) =
            split("a FETCH 2 (BODY.PEEK[HEADER.FIELDS (FROM TO)] PREVIEW) (CHANGEDSINCE 5)\r\n")
                .unwrap();
        assert_eq!(
            c,
            "a FETCH 2 (BODY.PEEK[HEADER.FIELDS (FROM TO)]) (CHANGEDSINCE 5)\r\n"
        );
        assert_eq!(p.position, 1);
    }

    #[test]
    fn other_fetches_are_left_alone() {
        assert!(split("a FETCH 1 (UID FLAGS)\r\n").is_none());
        assert!(split("a STORE 1 +FLAGS (PREVIEW)\r\n").is_none());
        assert!(
            split_command(b"a FETCH 1 (PREVIEW (EAGER))\r\n")
                .unwrap()
                .is_err()
        );
    }

    #[test]
    fn text_is_decoded_collapsed_and_bounded() {
        let m = b"Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\
                  Content-Transfer-Encoding: quoted-printable\r\n\r\nH=C3=A9llo\r\n\r\n   world\ttoo\r\n";
        assert_eq!(text(m), "H\u{e9}llo world too");
        let html = b"Content-Type: text/html\r\n\r\n<p>Hi <b>there</b></p>\r\n";
        assert_eq!(text(html), "Hi there");
        let long = format!("Subject: l\r\n\r\n{}\r\n", "\u{e9}".repeat(300));
        assert_eq!(text(long.as_bytes()).chars().count(), MAX_CHARS);
        assert_eq!(answer(b"Subject: e\r\n\r\n"), b"NIL");
        assert_eq!(
            answer(b"Subject: e\r\n\r\nshort \"q\"\r\n"),
            b"\"short \\\"q\\\"\""
        );
    }
}
