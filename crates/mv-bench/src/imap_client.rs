//! The IMAP client of the benchmarks: blocking, one connection, the same code for
//! every server. It reads whole responses (literals included) and counts what a
//! scenario checks: FETCH responses, literal bytes, SEARCH hits.

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// What came back for one command, up to and including its tagged OK.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reply {
    /// `* N FETCH` responses.
    pub fetches: usize,
    /// Bytes in literals (message bodies for `BODY[]`).
    pub literal_bytes: u64,
    /// Numbers in `* SEARCH` responses.
    pub search_hits: usize,
    /// Every response's bytes (wire size of the answer).
    pub bytes: u64,
}

pub struct ImapConnection {
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
    next_tag: u32,
}

impl ImapConnection {
    /// Connects and reads the greeting.
    pub fn connect(addr: SocketAddr) -> anyhow::Result<ImapConnection> {
        let s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        s.set_nodelay(true)?;
        // Long enough for a FETCH of every message of a big mailbox.
        s.set_read_timeout(Some(Duration::from_secs(900)))?;
        let mut c = ImapConnection {
            reader: BufReader::with_capacity(1 << 16, s.try_clone()?),
            writer: BufWriter::with_capacity(1 << 16, s),
            next_tag: 1,
        };
        let mut greeting = Vec::new();
        c.reader.read_until(b'\n', &mut greeting)?;
        if !greeting.starts_with(b"* OK") {
            bail!(
                "{addr}: unexpected greeting {:?}",
                String::from_utf8_lossy(&greeting)
            );
        }
        Ok(c)
    }

    pub fn login(addr: SocketAddr, user: &str, password: &str) -> anyhow::Result<ImapConnection> {
        let mut c = ImapConnection::connect(addr)?;
        c.command(&format!("LOGIN {} {}", quote(user), quote(password)))
            .context("LOGIN")?;
        Ok(c)
    }

    fn tag(&mut self) -> String {
        let t = format!("b{}", self.next_tag);
        self.next_tag += 1;
        t
    }

    /// Sends one command and reads until its tagged reply, which must be OK.
    pub fn command(&mut self, cmd: &str) -> anyhow::Result<Reply> {
        let tag = self.tag();
        write!(self.writer, "{tag} {cmd}\r\n")?;
        self.writer.flush()?;
        self.read_until_tagged(&tag, cmd)
    }

    /// APPEND with a synchronizing literal (every server supports it).
    pub fn append(&mut self, mailbox: &str, message: &[u8]) -> anyhow::Result<()> {
        let tag = self.tag();
        write!(
            self.writer,
            "{tag} APPEND {} {{{}}}\r\n",
            quote(mailbox),
            message.len()
        )?;
        self.writer.flush()?;
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line)?;
        if !line.starts_with(b"+") {
            bail!(
                "APPEND: no continuation: {:?}",
                String::from_utf8_lossy(&line)
            );
        }
        self.writer.write_all(message)?;
        self.writer.write_all(b"\r\n")?;
        self.writer.flush()?;
        self.read_until_tagged(&tag, "APPEND").map(|_| ())
    }

    fn read_until_tagged(&mut self, tag: &str, what: &str) -> anyhow::Result<Reply> {
        let mut reply = Reply::default();
        let mut response = Vec::new();
        loop {
            response.clear();
            self.read_response(&mut response, &mut reply)?;
            reply.bytes += response.len() as u64;
            if response.starts_with(b"* ") {
                let rest = &response[2..];
                if let Some(nums) = rest.strip_prefix(b"SEARCH") {
                    // Numbers up to a "(MODSEQ n)" suffix.
                    let end = nums.iter().position(|&b| b == b'(').unwrap_or(nums.len());
                    reply.search_hits += nums[..end]
                        .split(|b| b.is_ascii_whitespace())
                        .filter(|w| !w.is_empty())
                        .count();
                } else if rest
                    .split(|&b| b == b' ')
                    .nth(1)
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"FETCH"))
                {
                    reply.fetches += 1;
                }
                continue;
            }
            if let Some(rest) = response
                .strip_prefix(tag.as_bytes())
                .and_then(|r| r.strip_prefix(b" "))
            {
                if rest.starts_with(b"OK") {
                    return Ok(reply);
                }
                bail!("{what}: {}", String::from_utf8_lossy(&response).trim_end());
            }
            if response.starts_with(b"+") {
                bail!("{what}: unexpected continuation request");
            }
        }
    }

    /// One response: a line, and after each line that announces a literal, the
    /// literal and the line that continues it. Literal bytes are counted, not kept.
    fn read_response(&mut self, out: &mut Vec<u8>, reply: &mut Reply) -> anyhow::Result<()> {
        loop {
            let start = out.len();
            let n = self.reader.read_until(b'\n', out)?;
            if n == 0 {
                bail!("the server closed the connection");
            }
            let line = &out[start..];
            let Some(len) = literal_len(line) else {
                return Ok(());
            };
            let copied = std::io::copy(&mut (&mut self.reader).take(len), &mut std::io::sink())?;
            if copied != len {
                bail!("the server closed the connection inside a literal");
            }
            reply.literal_bytes += len;
            reply.bytes += len;
        }
    }

    pub fn logout(mut self) {
        let _ = self.command("LOGOUT");
    }
}

/// `{N}` (or `{N+}`) at the end of a line: the literal's length.
fn literal_len(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r\n").or(line.strip_suffix(b"\n"))?;
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// An IMAP quoted string.
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_lengths() {
        assert_eq!(literal_len(b"* 1 FETCH (BODY[] {123}\r\n"), Some(123));
        assert_eq!(literal_len(b"a {5+}\r\n"), Some(5));
        assert_eq!(literal_len(b"* 1 FETCH (FLAGS ())\r\n"), None);
        assert_eq!(literal_len(b"x {}\r\n"), None);
    }
}
