//! LIST with selection options, several patterns and return options
//! (LIST-EXTENDED, RFC 5258; LIST-STATUS, RFC 5819; SPECIAL-USE, RFC 6154),
//! which imap-codec does not parse. A plain `LIST reference pattern` is left to
//! imap-codec.

use crate::lexer::{Lexer, Token};

/// Which mailboxes a LIST selects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub subscribed: bool,
    pub special_use: bool,
    /// REMOTE: this server has no remote mailboxes, so it changes nothing.
    pub remote: bool,
    pub recursive_match: bool,
}

/// What a LIST returns about each mailbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Returns {
    pub subscribed: bool,
    pub children: bool,
    pub special_use: bool,
    /// STATUS item names as sent, parentheses included (LIST-STATUS).
    pub status: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListExt {
    pub selection: Selection,
    /// Reference and patterns as sent (modified UTF-7).
    pub reference: Vec<u8>,
    pub patterns: Vec<Vec<u8>>,
    pub returns: Returns,
    /// Selection or RETURN options were given (perhaps empty ones).
    pub options_given: bool,
}

/// Patterns of one LIST at most.
pub const MAX_PATTERNS: usize = 32;

/// `tag LIST [(selection)] reference (patterns)|pattern [RETURN (options)]`:
/// None when the command is not a LIST or a plain one; Err names what is wrong.
pub fn parse(cmd: &[u8]) -> Option<Result<ListExt, String>> {
    let mut l = Lexer::new(cmd);
    let _tag = l.token().ok()?;
    if !l.space() || !l.token().ok()?.is_atom("LIST") || !l.space() {
        return None;
    }
    let r = parse_rest(&mut l);
    match &r {
        Ok(x) if !x.extended() => None,
        _ => Some(r),
    }
}

impl ListExt {
    fn extended(&self) -> bool {
        self.options_given || self.patterns.len() != 1
    }
}

fn parse_rest(l: &mut Lexer<'_>) -> Result<ListExt, String> {
    let mut x = ListExt::default();
    if l.peek_open() {
        x.options_given = true;
        for opt in options(l)? {
            let opt =
                String::from_utf8_lossy(opt.string().unwrap_or_default()).to_ascii_uppercase();
            match opt.as_str() {
                "SUBSCRIBED" => x.selection.subscribed = true,
                "REMOTE" => x.selection.remote = true,
                "RECURSIVEMATCH" => x.selection.recursive_match = true,
                "SPECIAL-USE" => x.selection.special_use = true,
                other => return Err(format!("unknown LIST selection option {other}")),
            }
        }
        if !l.space() {
            return Err("LIST needs a reference after the selection options".into());
        }
    }
    if x.selection.recursive_match && !(x.selection.subscribed || x.selection.special_use) {
        return Err("RECURSIVEMATCH needs another selection option (RFC 5258 §3)".into());
    }
    x.reference = l
        .token()?
        .string()
        .ok_or("LIST needs a reference name")?
        .to_vec();
    if !l.space() {
        return Err("LIST needs a mailbox pattern".into());
    }
    match l.token()? {
        Token::Open => loop {
            let t = l.token()?;
            x.patterns
                .push(t.string().ok_or("a LIST pattern is a string")?.to_vec());
            if x.patterns.len() > MAX_PATTERNS {
                return Err(format!("more than {MAX_PATTERNS} LIST patterns"));
            }
            if l.peek_close() {
                l.token()?;
                break;
            }
            if !l.space() {
                return Err("LIST patterns are separated by spaces".into());
            }
        },
        t => x
            .patterns
            .push(t.string().ok_or("a LIST pattern is a string")?.to_vec()),
    }
    if l.space() {
        if !l.token()?.is_atom("RETURN") || !l.space() {
            return Err("LIST options after the patterns start with RETURN".into());
        }
        if !l.peek_open() {
            return Err("RETURN needs a parenthesized list".into());
        }
        x.options_given = true;
        l.token()?;
        while !l.peek_close() {
            let opt = l.token()?;
            let name = String::from_utf8_lossy(opt.string().ok_or("a RETURN option is an atom")?)
                .to_ascii_uppercase();
            match name.as_str() {
                "SUBSCRIBED" => x.returns.subscribed = true,
                "CHILDREN" => x.returns.children = true,
                "SPECIAL-USE" => x.returns.special_use = true,
                "STATUS" => {
                    if !l.space() || !l.peek_open() {
                        return Err("RETURN STATUS needs a list of status items".into());
                    }
                    let start = l.pos();
                    options(l)?;
                    x.returns.status = Some(l.span(start).to_vec());
                }
                other => return Err(format!("unknown LIST RETURN option {other}")),
            }
            if !l.space() && !l.peek_close() {
                return Err("RETURN options are separated by spaces".into());
            }
        }
        l.token()?;
    }
    if !l.at_end() {
        return Err("unexpected text after the LIST arguments".into());
    }
    Ok(x)
}

/// A parenthesized list of atoms.
fn options<'a>(l: &mut Lexer<'a>) -> Result<Vec<Token<'a>>, String> {
    if l.token()? != Token::Open {
        return Err("a parenthesized list is expected".into());
    }
    let mut out = Vec::new();
    loop {
        match l.token()? {
            Token::Close => return Ok(out),
            t @ Token::Atom(_) => out.push(t),
            _ => return Err("an option list holds only atoms".into()),
        }
        if out.len() > 16 {
            return Err("too many options".into());
        }
        if !l.space() && !l.peek_close() {
            return Err("options are separated by spaces".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_list_is_left_to_imap_codec() {
        assert!(parse(b"a LIST \"\" *\r\n").is_none());
        assert!(parse(b"a LSUB \"\" *\r\n").is_none());
    }

    #[test]
    fn extended_forms() {
        let x = parse(b"a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (a/% \"b c\") RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n")
            .unwrap()
            .unwrap();
        assert!(x.selection.subscribed && x.selection.recursive_match);
        assert_eq!(x.patterns, vec![b"a/%".to_vec(), b"b c".to_vec()]);
        assert!(x.returns.children);
        assert_eq!(x.returns.status.as_deref(), Some(&b"(MESSAGES UNSEEN)"[..]));
        let x = parse(b"a LIST \"\" % RETURN (SPECIAL-USE)\r\n")
            .unwrap()
            .unwrap();
        assert!(x.returns.special_use);
        for bad in [
            &b"a LIST (imaptest) \"\" \"\"\r\n"[..],
            b"a LIST (recursivematch) \"\" \"\"\r\n",
            b"a LIST (recursivematch remote) \"\" \"\"\r\n",
            b"a LIST \"\" \"\" return (imaptest)\r\n",
        ] {
            assert!(
                parse(bad).unwrap().is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
