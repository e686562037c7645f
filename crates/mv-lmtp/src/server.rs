//! The tokio front end: accept loop, connection limit, per-connection driver
//! of [`Session`], idle timeout and graceful shutdown.

use std::future::Future;
use std::io::{self, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::backend::{Backend, DeliveryOutcome, Origin, RcptVerdict};
use crate::reply::Reply;
use crate::session::{Event, Session, SessionConfig};

/// Server settings. `bind` is informational for the caller (who binds the
/// listener handed to [`serve`], so tests can use port 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LmtpConfig {
    pub bind: SocketAddr,
    pub hostname: String,
    pub max_message_size: u64,
    /// Concurrent sessions; one more is told 421 4.3.2 and closed.
    pub max_connections: usize,
    pub max_recipients: usize,
    /// No input (or no progress writing) for this long: 421 4.4.2 and close.
    pub idle_timeout: Duration,
    /// Longest command line, CRLF included.
    pub max_line: usize,
    /// Longest DATA line, CRLF included.
    pub max_data_line: usize,
    /// How long shutdown waits for sessions to end before dropping them.
    pub shutdown_grace: Duration,
}

impl Default for LmtpConfig {
    fn default() -> Self {
        let session = SessionConfig::default();
        LmtpConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 7025)),
            hostname: session.hostname,
            max_message_size: session.max_message_size,
            max_connections: 100,
            max_recipients: session.max_recipients,
            // RFC 5321 §4.5.3.2.7: servers wait at least 5 minutes for a command.
            idle_timeout: Duration::from_secs(300),
            max_line: session.max_line,
            max_data_line: session.max_data_line,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

impl LmtpConfig {
    fn session_config(&self) -> SessionConfig {
        SessionConfig {
            hostname: self.hostname.clone(),
            max_message_size: self.max_message_size,
            max_recipients: self.max_recipients,
            max_line: self.max_line,
            max_data_line: self.max_data_line,
        }
    }
}

/// Size of one socket read; also bounds the replies produced per flush.
const READ_CHUNK: usize = 16 * 1024;

/// Serves LMTP on `listener` until `shutdown` completes. Then it stops
/// accepting, lets messages in progress finish (one being received after 354
/// is read to its dot, stored and answered), closes every session with
/// 421 4.3.2 when it next waits for a command, and returns
/// once every session has ended or `shutdown_grace` has passed (remaining
/// sessions are then dropped: their clients retry).
pub async fn serve<B: Backend>(
    listener: TcpListener,
    cfg: LmtpConfig,
    backend: Arc<B>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let cfg = Arc::new(cfg);
    let permits = Arc::new(Semaphore::new(
        cfg.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut sessions = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(done) = sessions.join_next(), if !sessions.is_empty() => {
                if let Err(err) = done {
                    tracing::error!(%err, "LMTP session task failed");
                }
            }
            accepted = listener.accept() => match accepted.inspect(|_| {
                CONNECTIONS_TOTAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }) {
                Ok((stream, peer)) => match Arc::clone(&permits).try_acquire_owned() {
                    Ok(permit) => {
                        let (cfg, backend, stop) = (Arc::clone(&cfg), Arc::clone(&backend), stop_rx.clone());
                        // Every line logged for this connection, the backend's
                        // included, names the peer.
                        let span = tracing::info_span!("lmtp", %peer);
                        sessions.spawn(tracing::Instrument::instrument(async move {
                            let _permit = permit;
                            tracing::debug!("LMTP connection");
                            if let Err(err) = handle_connection(stream, peer, &cfg, backend, stop).await {
                                tracing::debug!(%err, "LMTP connection ended with an error");
                            }
                        }, span));
                    }
                    Err(_) => {
                        tracing::warn!(%peer, "LMTP connection refused: too many connections");
                        refuse(stream, &cfg.hostname);
                    }
                },
                Err(err) => {
                    // Typically EMFILE: back off instead of spinning; the
                    // listener itself stays usable.
                    tracing::warn!(%err, "LMTP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = timeout(cfg.shutdown_grace, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            remaining = sessions.len(),
            "LMTP shutdown grace expired; dropping sessions"
        );
        sessions.shutdown().await;
    }
    Ok(())
}

/// Tells an over-limit client why, without spawning a task or waiting: the
/// fresh socket's send buffer is empty, so a non-blocking write of one short
/// line succeeds.
fn refuse(stream: TcpStream, hostname: &str) {
    let reply = Reply::status(
        421,
        "4.3.2",
        format_args!("{hostname} too many connections, try again later"),
    );
    if let Ok(std_stream) = stream.into_std() {
        let _ = (&std_stream).write_all(reply.to_string().as_bytes());
        let _ = std_stream.shutdown(std::net::Shutdown::Write);
    }
}

/// Connections accepted by this process (`mailvault_lmtp_connections_total`).
pub static CONNECTIONS_TOTAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Drives one session over one connection.
async fn handle_connection<B: Backend>(
    stream: TcpStream,
    peer: SocketAddr,
    cfg: &LmtpConfig,
    backend: Arc<B>,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let mut session: Session<B::Recipient> = Session::new(cfg.session_config());
    let mut out = Vec::with_capacity(1024);
    let mut buf = vec![0u8; READ_CHUNK];
    session.greeting().write_to(&mut out);
    loop {
        match session.next_event() {
            Event::Reply(reply) => reply.write_to(&mut out),
            Event::CheckRecipient(check) => {
                let backend = Arc::clone(&backend);
                let span = tracing::Span::current();
                let verdict = tokio::task::spawn_blocking(move || {
                    span.in_scope(|| backend.check_recipient(&check.address, check.size_hint))
                })
                .await
                .unwrap_or_else(|err| RcptVerdict::TempFail(format!("backend panicked: {err}")));
                session
                    .recipient_checked(verdict)
                    .map_err(io::Error::other)?;
            }
            Event::Deliver(delivery) => {
                let backend = Arc::clone(&backend);
                let count = delivery.recipients.len();
                // Not raced against shutdown or the idle timer: once the
                // message is complete it is stored and answered.
                let span = tracing::Span::current();
                let outcomes = tokio::task::spawn_blocking(move || {
                    span.in_scope(|| {
                        let origin = Origin {
                            lhlo: delivery.lhlo,
                            peer: Some(peer.ip()),
                        };
                        backend.deliver(
                            &origin,
                            &delivery.mail_from,
                            &delivery.recipients,
                            &delivery.message,
                        )
                    })
                })
                .await
                .unwrap_or_else(|err| {
                    vec![DeliveryOutcome::Failed(format!("backend panicked: {err}")); count]
                });
                session.delivered(outcomes).map_err(io::Error::other)?;
            }
            Event::NeedInput => {
                // PIPELINING: replies go out only once all buffered input is handled.
                flush(&mut wr, &mut out, cfg.idle_timeout).await?;
                // A stopping server lets a message being received finish (the
                // client has committed to it); anywhere else it closes the
                // session: before DATA nothing is lost, the client retries.
                let may_stop = !session.in_data();
                if may_stop && *stop.borrow_and_update() {
                    return say_goodbye(&mut wr, shutting_down(cfg), cfg.idle_timeout).await;
                }
                let n = tokio::select! {
                    read = timeout(cfg.idle_timeout, rd.read(&mut buf)) => match read {
                        Ok(n) => n?,
                        Err(_) => {
                            let bye = Reply::status(421, "4.4.2", format_args!("{} idle timeout, closing connection", cfg.hostname));
                            return say_goodbye(&mut wr, bye, cfg.idle_timeout).await;
                        }
                    },
                    // An error means the server is gone: stop as well.
                    _ = stop.changed(), if may_stop => {
                        return say_goodbye(&mut wr, shutting_down(cfg), cfg.idle_timeout).await;
                    }
                };
                if n == 0 {
                    // Disconnect. Mid-DATA this drops the partial message unstored.
                    return Ok(());
                }
                session.push_input(&buf[..n]);
            }
            Event::Waiting => return Err(io::Error::other("LMTP session awaits a backend answer")),
            Event::Close => {
                flush(&mut wr, &mut out, cfg.idle_timeout).await?;
                let _ = wr.shutdown().await;
                return Ok(());
            }
        }
    }
}

fn shutting_down(cfg: &LmtpConfig) -> Reply {
    Reply::status(421, "4.3.2", format_args!("{} shutting down", cfg.hostname))
}

async fn say_goodbye(
    wr: &mut (impl AsyncWriteExt + Unpin),
    reply: Reply,
    limit: Duration,
) -> io::Result<()> {
    let mut out = Vec::new();
    reply.write_to(&mut out);
    flush(wr, &mut out, limit).await?;
    let _ = wr.shutdown().await;
    Ok(())
}

/// Writes and clears `out`; a client that stops reading is cut off after `limit`.
async fn flush(
    wr: &mut (impl AsyncWriteExt + Unpin),
    out: &mut Vec<u8>,
    limit: Duration,
) -> io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    timeout(limit, wr.write_all(out))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timed out"))??;
    out.clear();
    Ok(())
}
