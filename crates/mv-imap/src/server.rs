//! The tokio front end: plain (with STARTTLS) and implicit-TLS listeners, the
//! connection limit, and graceful shutdown.

use crate::backend::Backend;
use crate::session::{Ending, Session, SessionConfig};
use crate::shared::{Shared, ThrottleConfig};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

#[derive(Clone)]
pub struct ImapConfig {
    pub session: SessionConfig,
    /// Concurrent connections over both listeners; one more gets `* BYE` and is closed.
    pub max_connections: usize,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// How long shutdown waits for sessions to say BYE.
    pub shutdown_grace: Duration,
    pub throttle: ThrottleConfig,
}

/// Serves IMAP on `plain` (STARTTLS when TLS is configured) and on `tls`
/// (implicit TLS) until `shutdown` completes.
pub async fn serve<B: Backend>(
    plain: TcpListener,
    tls: Option<TcpListener>,
    cfg: ImapConfig,
    backend: Arc<B>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut session_cfg = cfg.session.clone();
    session_cfg.starttls = cfg.tls.is_some();
    let session_cfg = Arc::new(session_cfg);
    let shared = Arc::new(Shared::new(cfg.throttle.clone()));
    let acceptor = cfg.tls.clone().map(TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(cfg.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            r = plain.accept() => r.map(|(s, a)| (s, a, false)),
            r = async {
                match &tls {
                    Some(l) => l.accept().await,
                    None => std::future::pending().await,
                }
            } => r.map(|(s, a)| (s, a, true)),
        };
        let (mut stream, peer, implicit_tls) = match accepted {
            Ok(x) => {
                CONNECTIONS_TOTAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                x
            }
            Err(e) => {
                tracing::warn!("imap accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tasks.spawn(async move {
                let _ = stream
                    .write_all(b"* BYE too many connections, try again later\r\n")
                    .await;
            });
            continue;
        };
        let (backend, session_cfg, shared, acceptor, stop) = (
            backend.clone(),
            session_cfg.clone(),
            shared.clone(),
            acceptor.clone(),
            stop_rx.clone(),
        );
        let span = tracing::info_span!("imap", %peer);
        tasks.spawn(tracing::Instrument::instrument(
            async move {
                let _permit = permit;
                let accepted = Accepted {
                    stream,
                    peer: peer.ip(),
                    implicit_tls,
                };
                if let Err(e) =
                    connection(accepted, acceptor, backend, session_cfg, shared, stop).await
                {
                    tracing::debug!("imap connection ended: {e}");
                }
            },
            span,
        ));
        while tasks.try_join_next().is_some() {}
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(cfg.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
}

/// A connection as accepted: the stream, the client's address, and whether it
/// came in on the implicit-TLS listener.
struct Accepted {
    stream: TcpStream,
    peer: std::net::IpAddr,
    implicit_tls: bool,
}

async fn connection<B: Backend>(
    accepted: Accepted,
    acceptor: Option<TlsAcceptor>,
    backend: Arc<B>,
    cfg: Arc<SessionConfig>,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let Accepted {
        mut stream,
        peer,
        implicit_tls,
    } = accepted;
    let _ = stream.set_nodelay(true);
    if implicit_tls {
        let acceptor = acceptor.expect("a TLS listener exists only with a TLS configuration");
        let mut tls = handshake(&acceptor, stream).await?;
        let mut session = Session::new(backend, cfg, shared, Some(peer), true, stop);
        run(&mut session, &mut tls, true).await?;
        return Ok(());
    }
    let mut session = Session::new(
        backend.clone(),
        cfg.clone(),
        shared.clone(),
        Some(peer),
        false,
        stop.clone(),
    );
    match run(&mut session, &mut stream, true).await? {
        Ending::Closed | Ending::Compress => Ok(()),
        Ending::StartTls => {
            // Bytes the client sent after STARTTLS were dropped with the old
            // session (RFC 3501 §6.2.1: no command injection across the switch).
            let acceptor = acceptor.expect("STARTTLS is offered only with a TLS configuration");
            let mut tls = handshake(&acceptor, stream).await?;
            let mut session = Session::new(backend, cfg, shared, Some(peer), true, stop);
            run(&mut session, &mut tls, false).await?;
            Ok(())
        }
    }
}

/// Runs `session` on `stream`, and on in a DEFLATE stream after COMPRESS.
/// STARTTLS is returned to the caller (it needs the plain TCP stream).
async fn run<B: Backend, S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut Session<B>,
    stream: &mut S,
    greet: bool,
) -> std::io::Result<Ending> {
    match session.run(stream, greet).await? {
        Ending::Compress => {
            let pending = session.take_pending();
            let mut z = crate::compress::DeflateStream::new(stream, &pending);
            let end = session.run(&mut z, false).await;
            let _ = z.shutdown().await;
            end
        }
        other => Ok(other),
    }
}

async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
) -> std::io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
    tokio::time::timeout(Duration::from_secs(30), acceptor.accept(stream))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out"))?
}

/// A TLS server configuration from PEM files (certificate chain, private key).
pub fn tls_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("unreadable certificate: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in the certificate file".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("unreadable private key: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not fit: {e}"))?;
    Ok(Arc::new(cfg))
}

/// Connections accepted by this process, IMAP and IMAPS
/// (`mailvault_imap_connections_total`).
pub static CONNECTIONS_TOTAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
