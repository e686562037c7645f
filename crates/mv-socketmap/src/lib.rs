//! Postfix's socketmap lookup-table protocol (`socketmap:inet:HOST:PORT:NAME`,
//! Sendmail's socket map), so Postfix can ask mailvault which addresses exist
//! and what lists expand to.
//!
//! - [`parse`]: the sans-io request parser (fuzzed as `socketmap_request`).
//! - [`Reply`]: the answers and their encoding.
//! - [`serve`] (feature `server`, on by default): the tokio front end, with
//!   the answers behind the [`Lookup`] trait.
//!
//! The wire format: every request and reply is a netstring,
//! `<length>:<bytes>,` with the length in decimal. A request's bytes are
//! `<map name> <key>`; a reply's are `OK <value>`, `NOTFOUND `, `TEMP <why>`,
//! `TIMEOUT <why>` or `PERM <why>`. A connection carries any number of
//! requests, one at a time.
//!
//! Decisions, so the server and the tests can rely on them:
//! - **Bounded before buffered.** A length over the request limit, a length
//!   field longer than the limit's digits, a leading zero or a non-digit ends
//!   the connection (a framing error cannot be answered: where the next
//!   request starts is unknown) — nothing past the length field is buffered.
//! - **Framed but unusable** (no space between map and key, an empty map name
//!   or key, bytes that are not UTF-8): answered `PERM` with the reason, and
//!   the connection goes on.
//! - **Replies over the reply limit** (Postfix reads at most
//!   `socketmap_max_reply`, 100,000 bytes by default) are answered `PERM`
//!   instead: a list too large for one answer is an error to see, not a
//!   truncated expansion.

#[cfg(feature = "server")]
mod server;

#[cfg(feature = "server")]
pub use server::{Lookup, SocketmapConfig, serve};

/// Default largest request (the netstring's payload): map name, space, key.
/// An address is at most 254 octets (RFC 5321); generous room for others.
pub const DEFAULT_MAX_REQUEST: usize = 4096;
/// Default largest reply payload: Postfix's own `socketmap_max_reply`.
pub const DEFAULT_MAX_REPLY: usize = 100_000;

/// One well-formed lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The map name (the last field of Postfix's `socketmap:` table name).
    pub map: String,
    pub key: String,
}

/// What [`parse`] found at the start of the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Request(Request),
    /// A whole netstring that is not a usable request: answer
    /// [`Reply::Perm`] with this reason and go on.
    Invalid(String),
}

/// The input cannot be read as netstrings: close the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("netstring length is not a decimal number")]
    BadLength,
    #[error("request of {0} bytes is over the limit of {1}")]
    TooLong(u64, usize),
    #[error("netstring length field has more digits than a request of at most {0} bytes needs")]
    LengthTooLong(usize),
    #[error("netstring does not end with a comma")]
    MissingComma,
}

/// Parses one request from the start of `buf`. `Ok(None)`: incomplete, read
/// more (at most the length field plus `max_request + 1` bytes are ever
/// needed). `Ok(Some((parsed, used)))`: `used` bytes were consumed.
pub fn parse(buf: &[u8], max_request: usize) -> Result<Option<(Parsed, usize)>, FrameError> {
    let max_digits = max_request.max(1).to_string().len();
    let Some(colon) = buf.iter().take(max_digits + 1).position(|&b| b == b':') else {
        // No colon yet: fine while only digits have come, within the limit.
        if buf.len() > max_digits || !buf.iter().all(u8::is_ascii_digit) {
            return Err(if buf.iter().all(u8::is_ascii_digit) {
                FrameError::LengthTooLong(max_request)
            } else {
                FrameError::BadLength
            });
        }
        return Ok(None);
    };
    let digits = &buf[..colon];
    if digits.is_empty()
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits.len() > 1 && digits[0] == b'0')
    {
        return Err(FrameError::BadLength);
    }
    // At most max_digits digits: no overflow.
    let len = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    if len > max_request as u64 {
        return Err(FrameError::TooLong(len, max_request));
    }
    let len = len as usize;
    let start = colon + 1;
    let end = start + len;
    if buf.len() <= end {
        return Ok(None);
    }
    if buf[end] != b',' {
        return Err(FrameError::MissingComma);
    }
    Ok(Some((request(&buf[start..end]), end + 1)))
}

fn request(payload: &[u8]) -> Parsed {
    let Ok(text) = std::str::from_utf8(payload) else {
        return Parsed::Invalid("request is not UTF-8".into());
    };
    let Some((map, key)) = text.split_once(' ') else {
        return Parsed::Invalid("request is not \"<map name> <key>\"".into());
    };
    if map.is_empty() || key.is_empty() {
        return Parsed::Invalid("empty map name or key".into());
    }
    if text.chars().any(char::is_control) {
        return Parsed::Invalid("request holds a control character".into());
    }
    Parsed::Request(Request {
        map: map.to_owned(),
        key: key.to_owned(),
    })
}

/// Encodes a request as Postfix sends it (for clients and tests).
pub fn encode_request(map: &str, key: &str) -> Vec<u8> {
    netstring(format!("{map} {key}").as_bytes())
}

fn netstring(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{}:", payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out.push(b',');
    out
}

/// One answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Found; the value (Postfix splits list values at commas).
    Ok(String),
    NotFound,
    /// Try again later (Postfix defers the mail).
    Temp(String),
    /// The lookup took too long.
    Timeout(String),
    /// A permanent error for this request (bad map name, bad request).
    Perm(String),
}

impl Reply {
    /// The reply as a netstring; one whose payload would exceed `max_reply`
    /// becomes a `PERM` saying so.
    pub fn encode(&self, max_reply: usize) -> Vec<u8> {
        let payload = match self {
            Reply::Ok(v) => format!("OK {v}"),
            Reply::NotFound => "NOTFOUND ".to_owned(),
            Reply::Temp(why) => format!("TEMP {why}"),
            Reply::Timeout(why) => format!("TIMEOUT {why}"),
            Reply::Perm(why) => format!("PERM {why}"),
        };
        let payload = if payload.len() > max_reply {
            format!("PERM reply of {} bytes is over the limit", payload.len())
        } else {
            payload
        };
        netstring(payload.as_bytes())
    }

    /// Reads an encoded reply back (for clients and tests): `None` if `buf`
    /// does not start with one whole reply.
    pub fn decode(buf: &[u8]) -> Option<(Reply, usize)> {
        let colon = buf.iter().position(|&b| b == b':')?;
        let len: usize = std::str::from_utf8(&buf[..colon]).ok()?.parse().ok()?;
        let end = colon.checked_add(1)?.checked_add(len)?;
        if buf.get(end) != Some(&b',') {
            return None;
        }
        let text = std::str::from_utf8(&buf[colon + 1..end]).ok()?;
        let (kind, rest) = text.split_once(' ').unwrap_or((text, ""));
        let reply = match kind {
            "OK" => Reply::Ok(rest.to_owned()),
            "NOTFOUND" => Reply::NotFound,
            "TEMP" => Reply::Temp(rest.to_owned()),
            "TIMEOUT" => Reply::Timeout(rest.to_owned()),
            "PERM" => Reply::Perm(rest.to_owned()),
            _ => return None,
        };
        Some((reply, end + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(map: &str, key: &str) -> Parsed {
        Parsed::Request(Request {
            map: map.into(),
            key: key.into(),
        })
    }

    #[test]
    fn parses_pipelined_requests_and_waits_for_more() {
        let mut buf = encode_request("mailbox", "a@example.com");
        buf.extend(encode_request("alias", "team@example.com"));
        let (first, used) = parse(&buf, 4096).unwrap().unwrap();
        assert_eq!(first, req("mailbox", "a@example.com"));
        let (second, used2) = parse(&buf[used..], 4096).unwrap().unwrap();
        assert_eq!(second, req("alias", "team@example.com"));
        assert_eq!(used + used2, buf.len());
        for cut in 0..buf.len().min(used) {
            assert_eq!(parse(&buf[..cut], 4096), Ok(None), "prefix of {cut} bytes");
        }
    }

    #[test]
    fn framing_errors_end_the_connection_before_buffering() {
        assert_eq!(parse(b"x:", 4096), Err(FrameError::BadLength));
        assert_eq!(parse(b":abc,", 4096), Err(FrameError::BadLength));
        assert_eq!(parse(b"012:", 4096), Err(FrameError::BadLength));
        assert_eq!(parse(b"4097:", 4096), Err(FrameError::TooLong(4097, 4096)));
        // Five digits and no colon yet: already longer than any allowed length.
        assert_eq!(parse(b"12345", 4096), Err(FrameError::LengthTooLong(4096)));
        assert_eq!(parse(b"3:a b;", 4096), Err(FrameError::MissingComma));
    }

    #[test]
    fn unusable_requests_are_answered() {
        let bad = |b: &[u8]| match parse(b, 4096).unwrap().unwrap().0 {
            Parsed::Invalid(why) => why,
            p => panic!("{p:?}"),
        };
        assert!(bad(b"7:mailbox,").contains("<map name> <key>"));
        assert!(bad(b"2:a ,").contains("empty"));
        assert!(bad(b"3:a \xff,").contains("UTF-8"));
        assert!(bad(b"3:a \n,").contains("control"));
    }

    #[test]
    fn replies_round_trip_and_respect_the_limit() {
        for r in [
            Reply::Ok("a@x,b@y".into()),
            Reply::NotFound,
            Reply::Temp("directory busy".into()),
            Reply::Perm("no such map".into()),
        ] {
            let enc = r.encode(100);
            assert_eq!(Reply::decode(&enc), Some((r, enc.len())));
        }
        assert_eq!(Reply::NotFound.encode(100), b"9:NOTFOUND ,");
        let big = Reply::Ok("x".repeat(200)).encode(100);
        assert!(matches!(Reply::decode(&big), Some((Reply::Perm(_), _))));
    }
}
