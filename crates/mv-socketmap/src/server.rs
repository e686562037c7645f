//! The tokio front end: accept loop, connection limit, one request at a time
//! per connection, idle timeout.

use std::future::Future;
use std::io::{self, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::{DEFAULT_MAX_REPLY, DEFAULT_MAX_REQUEST, FrameError, Parsed, Reply, parse};

/// The answers. Synchronous (a directory read); called on the blocking pool.
pub trait Lookup: Send + Sync + 'static {
    fn lookup(&self, map: &str, key: &str) -> Reply;
}

/// Server settings. `bind` is informational for the caller, who binds the
/// listener handed to [`serve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketmapConfig {
    pub bind: SocketAddr,
    /// Concurrent connections; one more is closed at once (Postfix then
    /// defers the lookup and retries).
    pub max_connections: usize,
    /// Largest request payload; a longer one ends the connection unread.
    pub max_request: usize,
    /// Largest reply payload; a longer answer is sent as `PERM`.
    pub max_reply: usize,
    /// No request for this long: the connection is closed (Postfix reopens
    /// its connections as needed).
    pub idle_timeout: Duration,
}

impl Default for SocketmapConfig {
    fn default() -> Self {
        SocketmapConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 7026)),
            max_connections: 100,
            max_request: DEFAULT_MAX_REQUEST,
            max_reply: DEFAULT_MAX_REPLY,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// Serves lookups on `listener` until `shutdown` completes, then closes every
/// connection (lookups are idempotent: Postfix asks again).
pub async fn serve<L: Lookup>(
    listener: TcpListener,
    cfg: SocketmapConfig,
    lookup: Arc<L>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let cfg = Arc::new(cfg);
    let permits = Arc::new(Semaphore::new(
        cfg.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(done) = conns.join_next(), if !conns.is_empty() => {
                if let Err(err) = done {
                    tracing::error!(%err, "socketmap connection task failed");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match Arc::clone(&permits).try_acquire_owned() {
                    Ok(permit) => {
                        let (cfg, lookup) = (Arc::clone(&cfg), Arc::clone(&lookup));
                        conns.spawn(async move {
                            let _permit = permit;
                            if let Err(err) = handle(stream, &cfg, lookup).await {
                                tracing::warn!(%peer, %err, "socketmap connection closed");
                            }
                        });
                    }
                    Err(_) => {
                        tracing::warn!(%peer, "socketmap connection refused: too many connections");
                        refuse(stream);
                    }
                },
                Err(err) => {
                    tracing::warn!(%err, "socketmap accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    conns.shutdown().await;
    Ok(())
}

/// Tells an over-limit client why with one non-blocking write to the fresh
/// socket, then closes it.
fn refuse(stream: TcpStream) {
    let reply = Reply::Temp("too many connections, try again later".into()).encode(usize::MAX);
    if let Ok(std_stream) = stream.into_std() {
        let _ = (&std_stream).write_all(&reply);
        let _ = std_stream.shutdown(std::net::Shutdown::Both);
    }
}

async fn handle<L: Lookup>(
    mut stream: TcpStream,
    cfg: &SocketmapConfig,
    lookup: Arc<L>,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    // Never more than one request's length field, payload and comma.
    let cap = cfg.max_request + cfg.max_request.to_string().len() + 2;
    let mut buf: Vec<u8> = Vec::with_capacity(cap.min(8192));
    let mut chunk = [0u8; 4096];
    loop {
        match parse(&buf, cfg.max_request) {
            Err(err) => return Err(io::Error::new(io::ErrorKind::InvalidData, err)),
            Ok(Some((parsed, used))) => {
                buf.drain(..used);
                let reply = match parsed {
                    Parsed::Invalid(why) => Reply::Perm(why),
                    Parsed::Request(req) => {
                        let lookup = Arc::clone(&lookup);
                        tokio::task::spawn_blocking(move || lookup.lookup(&req.map, &req.key))
                            .await
                            .unwrap_or_else(|err| Reply::Temp(format!("lookup failed: {err}")))
                    }
                };
                timeout(
                    cfg.idle_timeout,
                    stream.write_all(&reply.encode(cfg.max_reply)),
                )
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timed out"))??;
            }
            Ok(None) => {
                let room = cap.saturating_sub(buf.len()).clamp(1, chunk.len());
                let n = match timeout(cfg.idle_timeout, stream.read(&mut chunk[..room])).await {
                    Ok(n) => n?,
                    Err(_) => return Ok(()),
                };
                if n == 0 {
                    return Ok(());
                }
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > cap {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        FrameError::TooLong(buf.len() as u64, cfg.max_request),
                    ));
                }
            }
        }
    }
}
