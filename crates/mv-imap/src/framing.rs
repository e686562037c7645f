//! Command framing, sans-io: bytes in, whole commands (lines plus the literals
//! they announce) out. The limits are enforced here, before anything is buffered:
//!
//! - a line longer than `max_line` is discarded as it arrives and reported at its end;
//! - a literal larger than `max_literal` (or one that would make the command
//!   larger than `max_command`) is refused when announced: a synchronising
//!   literal gets no continuation (the client does not send it), a
//!   non-synchronising one (LITERAL+) is read and thrown away as it arrives, with
//!   the rest of its command. Either way the session answers the command's tag
//!   and the connection stays usable.

/// Limits on what a client may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest line (text between literals), CRLF included.
    pub max_line: usize,
    /// Largest single literal (an APPENDed message).
    pub max_literal: u64,
    /// Largest whole command, literals included.
    pub max_command: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 64 * 1024,
            max_literal: 50 * 1024 * 1024,
            max_command: 50 * 1024 * 1024 + 64 * 1024,
        }
    }
}

impl Limits {
    /// Before login: literals of a few KiB, enough for any LOGIN or
    /// AUTHENTICATE, so that an unauthenticated client pins tens of KiB, not a
    /// message's worth (as Dovecot's imap-login does). Lines stay as long as
    /// after login: ID sends long ones.
    pub fn pre_auth() -> Limits {
        Limits {
            max_line: 64 * 1024,
            max_literal: 8 * 1024,
            max_command: 64 * 1024 + 8 * 1024,
        }
    }
}

/// Why a command was refused by the framer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    LineTooLong,
    LiteralTooBig { size: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A whole command, CRLF-terminated, literals inline.
    Command(Vec<u8>),
    /// A synchronising literal was announced and accepted: send "+ ...".
    Continue,
    /// The command (whose tag is given, if one could be read) was refused.
    Refused {
        tag: Option<String>,
        error: FrameError,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Line,
    Literal {
        remaining: u64,
    },
    /// Throwing away the rest of an over-long line.
    DiscardLine,
    /// Throwing away a refused non-synchronising literal, then the rest of its command.
    DiscardLiteral {
        remaining: u64,
    },
}

pub struct Framer {
    limits: Limits,
    input: Vec<u8>,
    command: Vec<u8>,
    state: State,
    /// Set while the rest of a refused command is being discarded.
    refused: Option<(Option<String>, FrameError)>,
}

impl Framer {
    pub fn new(limits: Limits) -> Framer {
        Framer {
            limits,
            input: Vec::new(),
            command: Vec::new(),
            state: State::Line,
            refused: None,
        }
    }

    /// Limits for the commands after the current one (login raises them).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Adds received bytes; call [`Framer::next_frame`] until it returns None.
    pub fn push(&mut self, data: &[u8]) {
        self.input.extend_from_slice(data);
    }

    /// The bytes received and not yet framed (after COMPRESS they belong to the
    /// compressed stream); the framer is left empty.
    pub fn take_input(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.input)
    }

    /// Whether bytes are buffered that do not yet make a command.
    pub fn is_idle(&self) -> bool {
        self.input.is_empty() && self.command.is_empty() && self.state == State::Line
    }

    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            match self.state {
                State::Literal { remaining } => {
                    if self.input.is_empty() {
                        return None;
                    }
                    let n = (remaining as usize).min(self.input.len());
                    self.command.extend(self.input.drain(..n));
                    let left = remaining - n as u64;
                    self.state = if left == 0 {
                        State::Line
                    } else {
                        State::Literal { remaining: left }
                    };
                }
                State::DiscardLiteral { remaining } => {
                    if self.input.is_empty() {
                        return None;
                    }
                    let n = (remaining.min(usize::MAX as u64) as usize).min(self.input.len());
                    self.input.drain(..n);
                    let left = remaining - n as u64;
                    self.state = if left == 0 {
                        State::Line
                    } else {
                        State::DiscardLiteral { remaining: left }
                    };
                }
                State::DiscardLine => match self.input.iter().position(|&b| b == b'\n') {
                    None => {
                        self.input.clear();
                        return None;
                    }
                    Some(i) => {
                        self.input.drain(..=i);
                        self.state = State::Line;
                        let (tag, error) = self.refused.take()?;
                        self.command.clear();
                        return Some(Frame::Refused { tag, error });
                    }
                },
                State::Line => {
                    let Some(i) = self.input.iter().position(|&b| b == b'\n') else {
                        if self.input.len() > self.limits.max_line {
                            let tag = self.refused_tag();
                            self.refused.get_or_insert((tag, FrameError::LineTooLong));
                            self.input.clear();
                            self.state = State::DiscardLine;
                        }
                        return None;
                    };
                    let line: Vec<u8> = self.input.drain(..=i).collect();
                    if line.len() > self.limits.max_line {
                        let tag = self.refused_tag_with(&line);
                        let (tag, error) = self
                            .refused
                            .take()
                            .unwrap_or((tag, FrameError::LineTooLong));
                        self.command.clear();
                        return Some(Frame::Refused { tag, error });
                    }
                    let literal = literal_announcement(&line);
                    if self.refused.is_some() {
                        // The rest of a refused command: keep discarding.
                        match literal {
                            Some((size, false)) => {
                                self.state = State::DiscardLiteral { remaining: size };
                                continue;
                            }
                            // A synchronising literal is never sent before "+": end here.
                            _ => {
                                let (tag, error) = self.refused.take()?;
                                self.command.clear();
                                return Some(Frame::Refused { tag, error });
                            }
                        }
                    }
                    self.command.extend_from_slice(&line);
                    match literal {
                        None => return Some(Frame::Command(std::mem::take(&mut self.command))),
                        Some((size, sync)) => {
                            let total = self.command.len() as u64 + size;
                            if size > self.limits.max_literal || total > self.limits.max_command {
                                let tag = self.refused_tag();
                                let error = FrameError::LiteralTooBig { size };
                                if sync {
                                    self.command.clear();
                                    return Some(Frame::Refused { tag, error });
                                }
                                self.refused = Some((tag, error));
                                self.command.clear();
                                self.state = State::DiscardLiteral { remaining: size };
                                continue;
                            }
                            self.state = State::Literal { remaining: size };
                            if sync {
                                return Some(Frame::Continue);
                            }
                        }
                    }
                }
            }
        }
    }

    fn refused_tag(&self) -> Option<String> {
        let src = if self.command.is_empty() {
            &self.input
        } else {
            &self.command
        };
        tag_of(src)
    }

    fn refused_tag_with(&self, line: &[u8]) -> Option<String> {
        if self.command.is_empty() {
            tag_of(line)
        } else {
            tag_of(&self.command)
        }
    }
}

/// The tag of a command: its first token, if it is a valid tag.
pub fn tag_of(command: &[u8]) -> Option<String> {
    let end = command
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')
        .unwrap_or(command.len());
    let t = &command[..end];
    let ok = !t.is_empty()
        && t.len() <= 64
        && t.iter().all(|&b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b'+')
        });
    ok.then(|| String::from_utf8_lossy(t).into_owned())
}

/// `{N}` or `{N+}` right before the line's end: (N, synchronising).
fn literal_announcement(line: &[u8]) -> Option<(u64, bool)> {
    let mut l = line.strip_suffix(b"\n")?;
    l = l.strip_suffix(b"\r").unwrap_or(l);
    let l = l.strip_suffix(b"}")?;
    let open = l.iter().rposition(|&b| b == b'{')?;
    let mut digits = &l[open + 1..];
    let sync = match digits.strip_suffix(b"+") {
        Some(d) => {
            digits = d;
            false
        }
        None => true,
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits)
        .ok()?
        .parse()
        .ok()
        .map(|n| (n, sync))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(f: &mut Framer, data: &[u8]) -> Vec<Frame> {
        f.push(data);
        std::iter::from_fn(|| f.next_frame()).collect()
    }

    #[test]
    fn lines_and_literals() {
        let mut f = Framer::new(Limits::default());
        assert_eq!(
            frames(&mut f, b"a1 NOOP\r\na2 LOGIN {3}\r\n"),
            vec![Frame::Command(b"a1 NOOP\r\n".to_vec()), Frame::Continue]
        );
        assert_eq!(
            frames(&mut f, b"bob {2+}\r\npw\r\n"),
            vec![Frame::Command(
                b"a2 LOGIN {3}\r\nbob {2+}\r\npw\r\n".to_vec()
            )]
        );
        assert!(f.is_idle());
    }

    #[test]
    fn huge_sync_literal_is_refused_without_reading_it() {
        let mut f = Framer::new(Limits::default());
        assert_eq!(
            frames(&mut f, b"x APPEND INBOX {1073741824}\r\ny NOOP\r\n"),
            vec![
                Frame::Refused {
                    tag: Some("x".into()),
                    error: FrameError::LiteralTooBig { size: 1 << 30 }
                },
                Frame::Command(b"y NOOP\r\n".to_vec())
            ]
        );
    }

    #[test]
    fn huge_nonsync_literal_is_discarded_as_it_arrives() {
        let limits = Limits {
            max_literal: 10,
            ..Limits::default()
        };
        let mut f = Framer::new(limits);
        assert!(frames(&mut f, b"x APPEND INBOX {20+}\r\n0123456789").is_empty());
        assert!(f.input.is_empty() && f.command.is_empty());
        assert_eq!(
            frames(&mut f, b"0123456789\r\nz NOOP\r\n"),
            vec![
                Frame::Refused {
                    tag: Some("x".into()),
                    error: FrameError::LiteralTooBig { size: 20 }
                },
                Frame::Command(b"z NOOP\r\n".to_vec())
            ]
        );
    }

    #[test]
    fn long_line_is_discarded() {
        let limits = Limits {
            max_line: 16,
            ..Limits::default()
        };
        let mut f = Framer::new(limits);
        assert!(frames(&mut f, b"t1 NOOP aaaaaaaaaaaaaaaaaaaaaaaaa").is_empty());
        assert!(frames(&mut f, &[b'b'; 100]).is_empty());
        assert_eq!(
            frames(&mut f, b"\r\nt2 NOOP\r\n"),
            vec![
                Frame::Refused {
                    tag: Some("t1".into()),
                    error: FrameError::LineTooLong
                },
                Frame::Command(b"t2 NOOP\r\n".to_vec())
            ]
        );
    }
}
