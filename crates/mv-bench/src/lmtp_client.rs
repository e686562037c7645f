//! The LMTP load client used against every server (mailvault and the peers alike):
//! blocking `std::net::TcpStream`s, one thread per connection, each taking the next
//! message from a shared queue. A transaction pipelines MAIL FROM, RCPT TO and DATA
//! (RFC 2920; both servers announce PIPELINING), waits for 354, sends the
//! dot-stuffed message and reads one reply per recipient.

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// One message to deliver: envelope and the wire form of its content.
#[derive(Clone)]
pub struct Job {
    pub from: String,
    pub rcpts: Vec<String>,
    /// Dot-stuffed content ending with `.\r\n` (see [`wire_data`]).
    pub data: Arc<Vec<u8>>,
}

/// The DATA payload for `message`: dot-stuffed, CRLF-terminated, then `.\r\n`.
pub fn wire_data(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    let mut at_line_start = true;
    for &b in message {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

pub struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    cmd: Vec<u8>,
}

impl Connection {
    pub fn open(addr: SocketAddr) -> anyhow::Result<Connection> {
        let stream =
            TcpStream::connect(addr).with_context(|| format!("connecting to LMTP {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        let mut c = Connection {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            cmd: Vec::with_capacity(4096),
        };
        let greeting = c.reply()?;
        if !greeting.starts_with("220") {
            bail!("LMTP greeting: {greeting}");
        }
        c.writer.write_all(b"LHLO mailvault-bench\r\n")?;
        let lhlo = c.reply()?;
        if !lhlo.starts_with("250") {
            bail!("LHLO: {lhlo}");
        }
        Ok(c)
    }

    /// The last line of the next (possibly multi-line) reply.
    fn reply(&mut self) -> anyhow::Result<String> {
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                bail!("the LMTP server closed the connection");
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(line.trim_end().to_string());
            }
        }
    }

    /// Delivers one message; returns one reply per recipient (after DATA), or the
    /// reason nothing was delivered.
    pub fn deliver(&mut self, job: &Job) -> anyhow::Result<Vec<String>> {
        self.cmd.clear();
        write!(self.cmd, "MAIL FROM:<{}>\r\n", job.from)?;
        for r in &job.rcpts {
            write!(self.cmd, "RCPT TO:<{r}>\r\n")?;
        }
        self.cmd.extend_from_slice(b"DATA\r\n");
        self.writer.write_all(&self.cmd)?;
        let mail = self.reply()?;
        let mut accepted = 0;
        let mut refused = Vec::new();
        for r in &job.rcpts {
            let rep = self.reply()?;
            if rep.starts_with('2') {
                accepted += 1;
            } else {
                refused.push(format!("{r}: {rep}"));
            }
        }
        let data = self.reply()?;
        if !data.starts_with("354") {
            self.writer.write_all(b"RSET\r\n")?;
            self.reply()?;
            bail!("MAIL: {mail}; refused: {refused:?}; DATA: {data}");
        }
        self.writer.write_all(&job.data)?;
        let mut out: Vec<String> = refused;
        for _ in 0..accepted {
            out.push(self.reply()?);
        }
        Ok(out)
    }

    pub fn quit(mut self) {
        let _ = self.writer.write_all(b"QUIT\r\n");
        let _ = self.reply();
    }
}

/// What a load run measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    pub connections: usize,
    /// Messages whose every recipient got a 2xx after DATA.
    pub delivered: usize,
    /// Recipient deliveries acknowledged with 2xx.
    pub acknowledged_rcpts: usize,
    pub failures: Vec<String>,
    pub elapsed: Duration,
    /// Per-message latency (pipelined envelope to last reply), microseconds, sorted.
    pub latencies_us: Vec<u32>,
}

impl LoadResult {
    pub fn messages_per_s(&self) -> f64 {
        self.delivered as f64 / self.elapsed.as_secs_f64()
    }

    pub fn latency_percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
}

/// Delivers every job over `connections` connections (opened and greeted before the
/// clock starts), each connection taking the next job from a shared queue.
pub fn run_load(addr: SocketAddr, connections: usize, jobs: &[Job]) -> anyhow::Result<LoadResult> {
    let conns: Vec<Connection> = (0..connections)
        .map(|_| Connection::open(addr))
        .collect::<anyhow::Result<_>>()?;
    let next = AtomicUsize::new(0);
    let barrier = Barrier::new(connections + 1);
    let failures = Mutex::new(Vec::new());
    let (results, elapsed) = std::thread::scope(|s| {
        let handles: Vec<_> = conns
            .into_iter()
            .map(|mut c| {
                let (next, barrier, failures) = (&next, &barrier, &failures);
                s.spawn(move || {
                    let mut lat = Vec::new();
                    let (mut delivered, mut acked) = (0usize, 0usize);
                    barrier.wait();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else { break };
                        let t = Instant::now();
                        match c.deliver(job) {
                            Ok(replies) => {
                                let ok = replies.iter().filter(|r| r.starts_with('2')).count();
                                acked += ok;
                                if ok == job.rcpts.len() {
                                    delivered += 1;
                                } else {
                                    failures
                                        .lock()
                                        .unwrap()
                                        .push(format!("message {i}: {replies:?}"));
                                }
                            }
                            Err(e) => {
                                failures.lock().unwrap().push(format!("message {i}: {e:#}"));
                                break;
                            }
                        }
                        lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    }
                    c.quit();
                    (delivered, acked, lat)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("LMTP client thread panicked"))
            .collect();
        (results, start.elapsed())
    });
    let mut latencies_us: Vec<u32> = Vec::new();
    let (mut delivered, mut acknowledged_rcpts) = (0, 0);
    for (d, a, l) in results {
        delivered += d;
        acknowledged_rcpts += a;
        latencies_us.extend(l);
    }
    latencies_us.sort_unstable();
    Ok(LoadResult {
        connections,
        delivered,
        acknowledged_rcpts,
        failures: failures.into_inner().unwrap(),
        elapsed,
        latencies_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing() {
        assert_eq!(wire_data(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(wire_data(b".x"), b"..x\r\n.\r\n");
    }
}
