//! A small reader over one framed command (literals inline), for the commands
//! imap-codec does not parse: APPEND with several messages or CATENATE
//! (RFC 3502, 4469) and LIST with selection and return options (RFC 5258).
//! It only slices the command; no token is copied except quoted strings.

/// One argument of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token<'a> {
    /// An atom (also LIST's `list-char`s: `%`, `*`, `]`).
    Atom(&'a [u8]),
    /// A quoted string, unescaped.
    Quoted(Vec<u8>),
    /// A literal's bytes; `binary` for `~{n}` (RFC 3516).
    Literal {
        data: &'a [u8],
        binary: bool,
    },
    Open,
    Close,
}

impl Token<'_> {
    /// The bytes of an atom, quoted string or literal.
    pub fn string(&self) -> Option<&[u8]> {
        match self {
            Token::Atom(a) => Some(a),
            Token::Quoted(q) => Some(q),
            Token::Literal { data, .. } => Some(data),
            Token::Open | Token::Close => None,
        }
    }

    pub fn is_atom(&self, word: &str) -> bool {
        matches!(self, Token::Atom(a) if a.eq_ignore_ascii_case(word.as_bytes()))
    }
}

pub struct Lexer<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub fn new(buf: &'a [u8]) -> Lexer<'a> {
        Lexer { buf, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The command's bytes from `start` to the current position.
    pub fn span(&self, start: usize) -> &'a [u8] {
        &self.buf[start..self.pos]
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// At the command's end (CRLF, LF or nothing left).
    pub fn at_end(&self) -> bool {
        matches!(&self.buf[self.pos..], b"" | b"\r\n" | b"\n")
    }

    /// Skips one space; false (nothing consumed) when the next byte is not one.
    pub fn space(&mut self) -> bool {
        if self.peek() == Some(b' ') {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn peek_open(&self) -> bool {
        self.peek() == Some(b'(')
    }

    pub fn peek_close(&self) -> bool {
        self.peek() == Some(b')')
    }

    /// The next token; Err with what was wrong.
    pub fn token(&mut self) -> Result<Token<'a>, String> {
        match self.peek() {
            None | Some(b'\r' | b'\n') => Err("the command ends too early".into()),
            Some(b'(') => {
                self.pos += 1;
                Ok(Token::Open)
            }
            Some(b')') => {
                self.pos += 1;
                Ok(Token::Close)
            }
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(false),
            Some(b'~') if self.buf.get(self.pos + 1) == Some(&b'{') => {
                self.pos += 1;
                self.literal(true)
            }
            Some(_) => {
                let start = self.pos;
                while let Some(b) = self.peek() {
                    if b <= b' ' || b >= 0x7f || matches!(b, b'(' | b')' | b'"' | b'{') {
                        break;
                    }
                    self.pos += 1;
                }
                if self.pos == start {
                    return Err(format!("unexpected byte 0x{:02x}", self.buf[start]));
                }
                Ok(Token::Atom(&self.buf[start..self.pos]))
            }
        }
    }

    fn quoted(&mut self) -> Result<Token<'a>, String> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r' | b'\n') => return Err("a quoted string is not closed".into()),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Token::Quoted(out));
                }
                Some(b'\\') => {
                    let Some(&c @ (b'"' | b'\\')) = self.buf.get(self.pos + 1) else {
                        return Err("a quoted string has a bad escape".into());
                    };
                    out.push(c);
                    self.pos += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// `{n}`, `{n+}` (LITERAL+) then CRLF and n bytes; the framer has already
    /// checked n against the limits and read the bytes.
    fn literal(&mut self, binary: bool) -> Result<Token<'a>, String> {
        let rest = &self.buf[self.pos + 1..];
        let close = rest
            .iter()
            .position(|&b| b == b'}')
            .filter(|&i| i <= 21)
            .ok_or("a literal announcement is not closed")?;
        let digits = rest[..close].strip_suffix(b"+").unwrap_or(&rest[..close]);
        let n: usize = std::str::from_utf8(digits)
            .ok()
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse().ok())
            .ok_or("a literal size is not a number")?;
        let mut p = self.pos + 1 + close + 1;
        if self.buf.get(p) == Some(&b'\r') {
            p += 1;
        }
        if self.buf.get(p) != Some(&b'\n') {
            return Err("a literal announcement is not at the end of a line".into());
        }
        p += 1;
        let data = self
            .buf
            .get(p..p + n)
            .ok_or("a literal is shorter than announced")?;
        self.pos = p + n;
        Ok(Token::Literal { data, binary })
    }
}

/// The command with every quoted string that holds 8-bit bytes written as a
/// literal instead; None when it has none (or does not lex). IMAP4rev2 allows
/// UTF-8 in quoted strings (RFC 9051 §4.3), imap-codec does not parse them,
/// and a literal is the same string to every rule that takes a quoted one.
pub fn quoted_8bit_as_literals(cmd: &[u8]) -> Option<Vec<u8>> {
    if cmd.is_ascii() {
        return None;
    }
    let mut l = Lexer::new(cmd);
    let mut out = Vec::with_capacity(cmd.len() + 32);
    let mut changed = false;
    while l.pos < cmd.len() {
        let start = l.pos;
        match cmd[start] {
            b'"' => match l.quoted().ok()? {
                Token::Quoted(q) if !q.is_ascii() => {
                    changed = true;
                    out.extend_from_slice(format!("{{{}}}\r\n", q.len()).as_bytes());
                    out.extend_from_slice(&q);
                }
                _ => out.extend_from_slice(l.span(start)),
            },
            b'{' | b'~' if l.token().is_ok() => out.extend_from_slice(l.span(start)),
            b => {
                l.pos = start + 1;
                out.push(b);
            }
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let cmd = b"a1 APPEND \"x \\\"y\" ({3+}\r\nabc ~{2}\r\n\0b)\r\n";
        let mut l = Lexer::new(cmd);
        assert_eq!(l.token().unwrap(), Token::Atom(b"a1"));
        assert!(l.space());
        assert!(l.token().unwrap().is_atom("append"));
        assert!(l.space());
        assert_eq!(l.token().unwrap(), Token::Quoted(b"x \"y".to_vec()));
        assert!(l.space());
        assert_eq!(l.token().unwrap(), Token::Open);
        assert_eq!(
            l.token().unwrap(),
            Token::Literal {
                data: b"abc",
                binary: false
            }
        );
        assert!(l.space());
        assert_eq!(
            l.token().unwrap(),
            Token::Literal {
                data: b"\0b",
                binary: true
            }
        );
        assert_eq!(l.token().unwrap(), Token::Close);
        assert!(l.at_end());
        assert!(Lexer::new(b"{5}\r\nab").token().is_err());
        assert!(Lexer::new(b"\"open").token().is_err());
    }

    #[test]
    fn quoted_8bit_strings_become_literals() {
        let cmd = "a CREATE \"K\u{f6}ln \\\"x\\\"\" {2}\r\n\u{e4} \"plain\" ~{1}\r\n\"\r\n";
        assert_eq!(
            quoted_8bit_as_literals(cmd.as_bytes()).unwrap(),
            "a CREATE {9}\r\nK\u{f6}ln \"x\" {2}\r\n\u{e4} \"plain\" ~{1}\r\n\"\r\n".as_bytes()
        );
        assert_eq!(quoted_8bit_as_literals(b"a LIST \"\" *\r\n"), None);
        assert_eq!(
            quoted_8bit_as_literals("a X {2}\r\n\u{e4}\r\n".as_bytes()),
            None
        );
        assert_eq!(quoted_8bit_as_literals("a X \"\u{e4}\r\n".as_bytes()), None);
    }
}
