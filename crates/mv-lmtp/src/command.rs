//! LMTP command line parsing. Hand-written: the grammar is eight verbs and two
//! MAIL parameters, smaller than the glue an external parser would need.

use crate::address::parse_path;
use crate::reply::Reply;

/// A parsed command line. Addresses are owned: the session keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// The client's name for itself: the first word of the argument.
    Lhlo {
        name: String,
    },
    /// HELO or EHLO: valid SMTP, wrong protocol (RFC 2033 §4.1).
    HeloOrEhlo,
    Mail {
        from: String,
        size: Option<u64>,
    },
    Rcpt {
        to: String,
    },
    Data,
    Rset,
    Noop,
    Quit,
    Vrfy,
}

/// Why a command line was rejected; each maps to exactly one reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CommandError {
    Unknown,
    /// NUL is never legal in a command; treated like an unknown command.
    Nul,
    Syntax(&'static str),
    BadSender,
    BadRecipient,
    UnsupportedParam,
}

impl CommandError {
    pub(crate) fn reply(&self) -> Reply {
        match self {
            CommandError::Unknown => Reply::status(500, "5.5.2", "command unrecognized"),
            CommandError::Nul => Reply::status(500, "5.5.2", "NUL character in command"),
            CommandError::Syntax(what) => Reply::status(501, "5.5.4", what),
            CommandError::BadSender => Reply::status(501, "5.1.7", "bad sender address syntax"),
            CommandError::BadRecipient => {
                Reply::status(501, "5.1.3", "bad recipient address syntax")
            }
            CommandError::UnsupportedParam => Reply::status(555, "5.5.4", "unsupported parameter"),
        }
    }
}

/// Parses one command line (terminator already removed).
pub(crate) fn parse(line: &[u8]) -> Result<Command, CommandError> {
    if line.contains(&0) {
        return Err(CommandError::Nul);
    }
    // No SMTPUTF8: the whole grammar is ASCII, and an address with other
    // characters fails address syntax below.
    let line = std::str::from_utf8(line)
        .map_err(|_| CommandError::Syntax("invalid characters in command"))?;
    let line = line.trim_end_matches([' ', '\t']);
    let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
    let is = |name: &str| verb.eq_ignore_ascii_case(name);
    let no_arg = |cmd: Command| {
        if arg.is_empty() {
            Ok(cmd)
        } else {
            Err(CommandError::Syntax("no parameters allowed"))
        }
    };
    if is("LHLO") {
        if arg.trim().is_empty() {
            return Err(CommandError::Syntax("LHLO requires a domain"));
        }
        let name = arg.split_ascii_whitespace().next().unwrap_or_default();
        Ok(Command::Lhlo {
            name: name.to_owned(),
        })
    } else if is("HELO") || is("EHLO") {
        Ok(Command::HeloOrEhlo)
    } else if is("MAIL") {
        parse_mail(arg)
    } else if is("RCPT") {
        parse_rcpt(arg)
    } else if is("DATA") {
        no_arg(Command::Data)
    } else if is("RSET") {
        no_arg(Command::Rset)
    } else if is("QUIT") {
        no_arg(Command::Quit)
    } else if is("NOOP") {
        // RFC 5321: NOOP may carry a string, to be ignored.
        Ok(Command::Noop)
    } else if is("VRFY") {
        if arg.trim().is_empty() {
            return Err(CommandError::Syntax("VRFY requires an argument"));
        }
        Ok(Command::Vrfy)
    } else {
        Err(CommandError::Unknown)
    }
}

/// Strips a case-insensitive keyword like `FROM:` and the optional spaces
/// after it (Postfix never sends them; some scripts do).
fn strip_keyword<'a>(arg: &'a str, keyword: &str) -> Option<&'a str> {
    let head = arg.get(..keyword.len())?;
    head.eq_ignore_ascii_case(keyword)
        .then(|| arg[keyword.len()..].trim_start_matches(' '))
}

fn parse_mail(arg: &str) -> Result<Command, CommandError> {
    let path =
        strip_keyword(arg, "FROM:").ok_or(CommandError::Syntax("syntax: MAIL FROM:<address>"))?;
    let (from, rest) = parse_path(path).map_err(|_| CommandError::BadSender)?;
    let mut size = None;
    let mut body_seen = false;
    for param in params(rest)? {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        if key.eq_ignore_ascii_case("SIZE") {
            if size.is_some()
                || value.is_empty()
                || value.len() > 20
                || !value.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(CommandError::Syntax("bad SIZE parameter"));
            }
            // 20 digits may overflow u64: such a size is over any limit anyway.
            size = Some(value.parse::<u64>().unwrap_or(u64::MAX));
        } else if key.eq_ignore_ascii_case("BODY") {
            if body_seen
                || !(value.eq_ignore_ascii_case("7BIT") || value.eq_ignore_ascii_case("8BITMIME"))
            {
                return Err(CommandError::Syntax("bad BODY parameter"));
            }
            body_seen = true;
        } else {
            return Err(CommandError::UnsupportedParam);
        }
    }
    Ok(Command::Mail {
        from: from.to_owned(),
        size,
    })
}

fn parse_rcpt(arg: &str) -> Result<Command, CommandError> {
    let path =
        strip_keyword(arg, "TO:").ok_or(CommandError::Syntax("syntax: RCPT TO:<address>"))?;
    let (to, rest) = parse_path(path).map_err(|_| CommandError::BadRecipient)?;
    if to.is_empty() {
        return Err(CommandError::BadRecipient);
    }
    // We advertise no RCPT extension (no DSN), so any parameter is unsupported.
    if params(rest)?.next().is_some() {
        return Err(CommandError::UnsupportedParam);
    }
    Ok(Command::Rcpt { to: to.to_owned() })
}

/// Splits the text after a path into `KEY[=VALUE]` parameters.
fn params(rest: &str) -> Result<impl Iterator<Item = &str>, CommandError> {
    if !rest.is_empty() && !rest.starts_with(' ') {
        return Err(CommandError::Syntax("garbage after address"));
    }
    Ok(rest.split(' ').filter(|p| !p.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, CommandError> {
        parse(s.as_bytes())
    }

    #[test]
    fn verbs_case_insensitive() {
        let lhlo = |n: &str| Command::Lhlo { name: n.to_owned() };
        assert_eq!(p("lhlo x"), Ok(lhlo("x")));
        assert_eq!(p("LhLo x.y "), Ok(lhlo("x.y")));
        assert_eq!(p("LHLO  [127.0.0.1] extra"), Ok(lhlo("[127.0.0.1]")));
        assert_eq!(p("ehlo x"), Ok(Command::HeloOrEhlo));
        assert_eq!(p("data"), Ok(Command::Data));
        assert_eq!(p("NOOP anything"), Ok(Command::Noop));
        assert_eq!(p("quit"), Ok(Command::Quit));
        assert_eq!(p("vrfy bob"), Ok(Command::Vrfy));
    }

    #[test]
    fn mail_params() {
        assert_eq!(
            p("mail from:<a@b> size=100 body=8bitmime"),
            Ok(Command::Mail {
                from: "a@b".into(),
                size: Some(100)
            })
        );
        assert_eq!(
            p("MAIL FROM: <>"),
            Ok(Command::Mail {
                from: "".into(),
                size: None
            })
        );
        assert_eq!(
            p("MAIL FROM:<a@b> SIZE=99999999999999999999"),
            Ok(Command::Mail {
                from: "a@b".into(),
                size: Some(u64::MAX)
            })
        );
        assert_eq!(
            p("MAIL FROM:<a@b> SIZE=x"),
            Err(CommandError::Syntax("bad SIZE parameter"))
        );
        assert_eq!(
            p("MAIL FROM:<a@b> SIZE=1 SIZE=2"),
            Err(CommandError::Syntax("bad SIZE parameter"))
        );
        assert_eq!(
            p("MAIL FROM:<a@b> BODY=BINARYMIME"),
            Err(CommandError::Syntax("bad BODY parameter"))
        );
        assert_eq!(
            p("MAIL FROM:<a@b> AUTH=<>"),
            Err(CommandError::UnsupportedParam)
        );
        assert_eq!(
            p("MAIL FROM:<a@b>x"),
            Err(CommandError::Syntax("garbage after address"))
        );
        assert_eq!(p("MAIL FROM:a@b"), Err(CommandError::BadSender));
        assert!(matches!(p("MAIL TO:<a@b>"), Err(CommandError::Syntax(_))));
    }

    #[test]
    fn rcpt() {
        assert_eq!(p("RCPT TO:<u@d>"), Ok(Command::Rcpt { to: "u@d".into() }));
        assert_eq!(p("RCPT TO:<>"), Err(CommandError::BadRecipient));
        assert_eq!(p("RCPT TO:<u>"), Err(CommandError::BadRecipient));
        assert_eq!(
            p("RCPT TO:<u@d> NOTIFY=NEVER"),
            Err(CommandError::UnsupportedParam)
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            p("DATA x"),
            Err(CommandError::Syntax("no parameters allowed"))
        );
        assert_eq!(
            p("LHLO"),
            Err(CommandError::Syntax("LHLO requires a domain"))
        );
        assert_eq!(p("BDAT 10"), Err(CommandError::Unknown));
        assert_eq!(p(""), Err(CommandError::Unknown));
        assert_eq!(parse(b"NO\0OP"), Err(CommandError::Nul));
        assert!(matches!(parse(b"NOOP \xff"), Err(CommandError::Syntax(_))));
    }
}
