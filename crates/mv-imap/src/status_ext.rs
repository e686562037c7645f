//! The STATUS item APPENDLIMIT (RFC 7889), which imap-codec does not parse: it is
//! taken out of a STATUS command (or of LIST's `RETURN (STATUS (...))`) before the
//! command is decoded, and put back into the answer where the client asked for it.

use crate::lexer::{Lexer, Token};

/// Where APPENDLIMIT was in a status item list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendLimitItem {
    /// Its index among the items asked for.
    pub position: usize,
    /// It was the only item: the list handed on holds a stand-in (`MESSAGES`)
    /// whose answer is left out.
    pub alone: bool,
}

/// A status item list `(A B ...)` without APPENDLIMIT, and where it was; None
/// when the list has no APPENDLIMIT (or is not a list of atoms).
pub fn split_list(list: &[u8]) -> Option<(Vec<u8>, AppendLimitItem)> {
    let mut l = Lexer::new(list);
    if l.token().ok()? != Token::Open {
        return None;
    }
    let mut items: Vec<&[u8]> = Vec::new();
    loop {
        match l.token().ok()? {
            Token::Close => break,
            Token::Atom(a) => items.push(a),
            _ => return None,
        }
        l.space();
    }
    let position = items
        .iter()
        .position(|a| a.eq_ignore_ascii_case(b"APPENDLIMIT"))?;
    items.retain(|a| !a.eq_ignore_ascii_case(b"APPENDLIMIT"));
    let alone = items.is_empty();
    if alone {
        items.push(b"MESSAGES");
    }
    let mut out = b"(".to_vec();
    out.extend_from_slice(&items.join(&b' '));
    out.push(b')');
    Some((out, AppendLimitItem { position, alone }))
}

/// A `tag STATUS mailbox (items)` command with APPENDLIMIT taken out of its
/// items, and where it was; None for any other command.
pub fn split_command(cmd: &[u8]) -> Option<(Vec<u8>, AppendLimitItem)> {
    let mut l = Lexer::new(cmd);
    let Ok(Token::Atom(_)) = l.token() else {
        return None;
    };
    if !l.space() || !l.token().ok()?.is_atom("STATUS") || !l.space() {
        return None;
    }
    match l.token().ok()? {
        Token::Atom(_) | Token::Quoted(_) | Token::Literal { binary: false, .. } => {}
        _ => return None,
    }
    if !l.space() {
        return None;
    }
    let start = l.pos();
    let mut depth = 0;
    loop {
        match l.token().ok()? {
            Token::Open => depth += 1,
            Token::Close => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
        l.space();
    }
    if !l.at_end() {
        return None;
    }
    let (list, item) = split_list(l.span(start))?;
    let mut out = cmd[..start].to_vec();
    out.extend_from_slice(&list);
    out.extend_from_slice(b"\r\n");
    Some((out, item))
}

/// Puts `APPENDLIMIT <limit>` into the answered items where it was asked for.
pub fn insert(parts: &mut Vec<String>, item: AppendLimitItem, limit: u64) {
    if item.alone {
        parts.clear();
    }
    let at = item.position.min(parts.len());
    parts.insert(at, format!("APPENDLIMIT {limit}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_command_loses_appendlimit_and_keeps_the_rest() {
        let (cmd, item) =
            split_command(b"a STATUS INBOX (MESSAGES appendlimit UIDNEXT)\r\n").unwrap();
        assert_eq!(cmd, b"a STATUS INBOX (MESSAGES UIDNEXT)\r\n");
        assert_eq!(
            item,
            AppendLimitItem {
                position: 1,
                alone: false
            }
        );
        let (cmd, item) = split_command(b"a STATUS \"Sent Items\" (APPENDLIMIT)\r\n").unwrap();
        assert_eq!(cmd, b"a STATUS \"Sent Items\" (MESSAGES)\r\n");
        assert!(item.alone);
        let (cmd, _) = split_command(b"a STATUS {5}\r\nINBOX (APPENDLIMIT SIZE)\r\n").unwrap();
        assert_eq!(cmd, b"a STATUS {5}\r\nINBOX (SIZE)\r\n");
    }

    #[test]
    fn other_commands_are_left_alone() {
        assert!(split_command(b"a STATUS INBOX (MESSAGES)\r\n").is_none());
        assert!(split_command(b"a SELECT APPENDLIMIT\r\n").is_none());
        assert!(split_command(b"a STATUS INBOX (APPENDLIMIT) extra\r\n").is_none());
        assert!(split_command(b"a STATUS INBOX APPENDLIMIT\r\n").is_none());
    }

    #[test]
    fn answer_in_the_asked_place() {
        let mut parts = vec!["MESSAGES 3".to_string(), "UIDNEXT 4".to_string()];
        insert(
            &mut parts,
            AppendLimitItem {
                position: 1,
                alone: false,
            },
            100,
        );
        assert_eq!(parts, ["MESSAGES 3", "APPENDLIMIT 100", "UIDNEXT 4"]);
        let mut parts = vec!["MESSAGES 3".to_string()];
        insert(
            &mut parts,
            AppendLimitItem {
                position: 0,
                alone: true,
            },
            7,
        );
        assert_eq!(parts, ["APPENDLIMIT 7"]);
    }
}
