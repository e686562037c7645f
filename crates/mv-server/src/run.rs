//! `mailvault serve`: take the home's lock, recover, open the listeners, run until
//! SIGTERM/SIGINT, then finish in-flight work, checkpoint and exit.

use crate::lmtp_backend::StoreBackend;
use crate::{Service, api};
use mv_home::{Home, HomeLock};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Lock(#[from] mv_home::LockError),
    #[error("{0}")]
    Home(#[from] mv_home::HomeError),
    #[error("{0}")]
    Config(#[from] mv_home::LocalConfigError),
    #[error("{0}")]
    Service(#[from] crate::ServiceError),
    #[error(
        "cannot listen on {addr}: {source}; is another server using the port? (change it with mailvault localconfig -e {key}=PORT)"
    )]
    Bind {
        addr: SocketAddr,
        key: &'static str,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("invalid address in local config: {0}")]
    Addr(String),
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// How often the background indexer looks for changes it was not woken for (moves,
/// flag changes, restores).
const INDEX_INTERVAL: Duration = Duration::from_secs(2);

/// Where to listen; defaults from the local config.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub lmtp: SocketAddr,
    pub admin: SocketAddr,
    pub max_message_size: u64,
    pub max_connections: usize,
    /// IMAP (with STARTTLS) and IMAPS.
    pub imap: SocketAddr,
    pub imaps: SocketAddr,
    pub imap_cleartext_login: bool,
    pub imap_max_connections: usize,
    pub imap_max_message_size: u64,
    pub imap_throttle: mv_imap::ThrottleConfig,
    /// Postfix lookup tables (`socketmap_enabled`), and their connection limit.
    pub socketmap: Option<SocketAddr>,
    pub socketmap_max_connections: usize,
    /// Which trace headers LMTP delivery adds (`lmtp_add_*`).
    pub trace: crate::trace::TraceHeaders,
    /// A warm standby (`mailvault standby`): follows its target, serves IMAP
    /// read-only, no LMTP, no shipping, no scheduled backups.
    pub standby: Option<crate::standby::StandbyState>,
}

impl ServeOptions {
    pub fn from_config(cfg: &mv_home::LocalConfig) -> Result<ServeOptions, ServeError> {
        let addr = |host_key: &str, port_key: &str| -> Result<SocketAddr, ServeError> {
            let host = cfg.get(host_key).unwrap_or("127.0.0.1");
            let port = cfg.get_u64(port_key);
            format!("{host}:{port}")
                .parse()
                .map_err(|_| ServeError::Addr(format!("{host_key}={host}, {port_key}={port}")))
        };
        Ok(ServeOptions {
            lmtp: addr("lmtp_bind_address", "lmtp_bind_port")?,
            admin: addr("admin_bind_address", "admin_bind_port")?,
            max_message_size: cfg.get_u64("mailbox_lmtp_max_message_size"),
            max_connections: cfg.get_u64("mailbox_lmtp_max_connections").max(1) as usize,
            imap: addr("imap_bind_address", "imap_bind_port")?,
            imaps: addr("imap_bind_address", "imaps_bind_port")?,
            imap_cleartext_login: cfg.get("imap_cleartext_login_enabled") == Some("true"),
            imap_max_connections: cfg.get_u64("imap_max_connections").max(1) as usize,
            imap_max_message_size: cfg.get_u64("imap_max_message_size").max(1),
            imap_throttle: mv_imap::ThrottleConfig {
                free_failures: cfg.get_u64("imap_login_free_failures").min(1_000_000) as u32,
                base_delay: Duration::from_millis(cfg.get_u64("imap_login_failure_delay_ms")),
                max_delay: Duration::from_millis(cfg.get_u64("imap_login_failure_max_delay_ms")),
                window: Duration::from_secs(600),
                failures_per_connection: cfg
                    .get_u64("imap_login_failures_per_connection")
                    .clamp(1, 1_000_000) as u32,
            },
            socketmap: match cfg.get("socketmap_enabled") {
                Some("true") => Some(addr("socketmap_bind_address", "socketmap_bind_port")?),
                _ => None,
            },
            socketmap_max_connections: cfg.get_u64("socketmap_max_connections").max(1) as usize,
            trace: crate::trace::TraceHeaders::from_config(
                cfg,
                &mv_directory::config::local_server_name(),
            ),
            standby: None,
        })
    }
}

/// glibc gives each thread that allocates while the others hold theirs an arena
/// of its own, up to eight per core, and memory freed in one arena serves no
/// other. Deliveries run on tokio's blocking threads, any of which may touch a
/// message's buffers or a mailbox's SQLite page cache, so under load the
/// server's resident size grew with the arenas rather than with the work. Two
/// arenas keep contention low on the few cores a mail store gets; the
/// `MALLOC_ARENA_MAX` environment variable, when set, still decides.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes the allocator's parameters; no memory
        // is touched. Its failure leaves the defaults.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    }
}

/// Runs the server until a termination signal. Prints one line per listener on
/// stdout once ready (tests and `zmcontrol start` wait for them).
pub fn serve(home: &Home, options: ServeOptions) -> Result<(), ServeError> {
    limit_malloc_arenas();
    home.init()?;
    let _lock = HomeLock::acquire(home.root())?;
    // A malformed value stops the start here, naming the key, instead of a
    // listener or a sweep running on a silent default.
    mv_home::LocalConfig::load(&home.localconfig_path())?.check()?;
    let (service, report) = Service::open(home)?;
    if report.truncated_bytes > 0 || report.reapplied > 0 || report.blobs_repaired > 0 {
        println!(
            "recovered from a crash: cut {} torn bytes from redo.log, re-applied {} operations, repaired {} blobs",
            report.truncated_bytes, report.reapplied, report.blobs_repaired
        );
    }
    let service = Arc::new(service);
    // One runtime for the process: the listeners, and the requests of the S3
    // targets that backups, restores and shipping open from their threads.
    // Built before anything that may open a target starts.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    service.set_runtime(runtime.handle().clone());
    let standby = options.standby.clone();
    if standby.is_some() {
        // Only the follower's replay changes a standby's mailboxes.
        service.store().set_read_only(true);
    }
    SERVING.store(true, Ordering::Relaxed);
    // The scheduler, the report outbox and the disk monitor: plain threads (their
    // work is blocking), stopped through `background_stop` at shutdown.
    let background_stop = Arc::new(AtomicBool::new(false));
    let mut background = vec![
        crate::outbox::spawn(service.clone(), background_stop.clone())?,
        crate::diskmon::spawn(service.clone(), background_stop.clone())?,
        crate::homewatch::spawn(service.clone(), background_stop.clone())?,
    ];
    match standby.clone() {
        // A standby's directory is its primary's, shipping and schedule
        // included: it runs neither (the target is the primary's).
        Some(state) => background.push(crate::standby::spawn(
            service.clone(),
            background_stop.clone(),
            state,
        )?),
        None => {
            background.push(crate::scheduler::spawn(
                service.clone(),
                background_stop.clone(),
            )?);
            background.push(crate::live::spawn(
                service.clone(),
                background_stop.clone(),
            )?);
            // Purges are writes: a standby's dumpster follows its primary's.
            background.push(crate::dumpster::spawn(
                service.clone(),
                background_stop.clone(),
            )?);
        }
    }
    let token = home.admin_token()?;
    crate::tls::ensure_certificate(home)?;
    let imap_tls = crate::tls::load(home)?;
    // The deferred search indexer: its own thread, woken after deliveries or every
    // INDEX_INTERVAL, never on the LMTP path.
    let index_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let indexer = {
        let (service, stop) = (service.clone(), index_stop.clone());
        std::thread::Builder::new()
            .name("search-indexer".into())
            .spawn(move || {
                service
                    .indexes()
                    .run_background(service.store(), INDEX_INTERVAL, &|| {
                        stop.load(std::sync::atomic::Ordering::Relaxed)
                    })
            })?
    };
    let served = service.clone();
    let stop_indexer = index_stop.clone();
    runtime.block_on(async move {
        let service = served;
        let (stop_tx, stop_rx) = watch::channel(false);
        let lmtp_listener =
            match standby {
                Some(_) => None,
                None => Some(tokio::net::TcpListener::bind(options.lmtp).await.map_err(
                    |source| ServeError::Bind {
                        addr: options.lmtp,
                        key: "lmtp_bind_port",
                        source,
                    },
                )?),
            };
        let admin_listener =
            tokio::net::TcpListener::bind(options.admin)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: options.admin,
                    key: "admin_bind_port",
                    source,
                })?;
        let bind = |addr: SocketAddr, key: &'static str| async move {
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, key, source })
        };
        let imap_listener = bind(options.imap, "imap_bind_port").await?;
        let imaps_listener = bind(options.imaps, "imaps_bind_port").await?;
        let socketmap_listener = match options.socketmap {
            Some(addr) => Some(bind(addr, "socketmap_bind_port").await?),
            None => None,
        };
        let lmtp_cfg = mv_lmtp::LmtpConfig {
            bind: options.lmtp,
            hostname: mv_directory::config::local_server_name(),
            max_message_size: options.max_message_size,
            max_connections: options.max_connections,
            ..Default::default()
        };
        let backend = Arc::new(StoreBackend::with_trace(
            service.clone(),
            options.trace.clone(),
        ));
        let lmtp = lmtp_listener.map(|listener| {
            tokio::spawn(mv_lmtp::serve(
                listener,
                lmtp_cfg,
                backend,
                wait_for(stop_rx.clone()),
            ))
        });
        let imap_cfg = mv_imap::ImapConfig {
            session: mv_imap::SessionConfig {
                limits: mv_imap::framing::Limits {
                    max_literal: options.imap_max_message_size,
                    max_command: options.imap_max_message_size + 64 * 1024,
                    ..Default::default()
                },
                cleartext_login: options.imap_cleartext_login,
                read_only: standby.is_some(),
                ..Default::default()
            },
            max_connections: options.imap_max_connections,
            tls: Some(imap_tls),
            shutdown_grace: Duration::from_secs(10),
            throttle: options.imap_throttle.clone(),
        };
        let imap = tokio::spawn(mv_imap::serve(
            imap_listener,
            Some(imaps_listener),
            imap_cfg,
            Arc::new(crate::imap_backend::ImapBackend::new(service.clone())),
            wait_for(stop_rx.clone()),
        ));
        let socketmap = socketmap_listener
            .zip(options.socketmap)
            .map(|(listener, bind)| {
                let cfg = mv_socketmap::SocketmapConfig {
                    bind,
                    max_connections: options.socketmap_max_connections,
                    ..Default::default()
                };
                tokio::spawn(mv_socketmap::serve(
                    listener,
                    cfg,
                    Arc::new(crate::socketmap::DirectoryLookup::new(service.clone())),
                    wait_for(stop_rx.clone()),
                ))
            });
        let app = api::router(service.clone(), token);
        let admin = tokio::spawn(async move {
            axum::serve(
                admin_listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(wait_for(stop_rx))
            .await
        });
        // Handlers first: a SIGTERM right after "ready" must be a clean shutdown.
        let terminated = terminated()?;
        match &standby {
            Some(st) => println!(
                "standby following {} (read-only; no lmtp until mailvault promote)",
                st.target
            ),
            None => println!("lmtp listening on {}", options.lmtp),
        }
        println!("admin api listening on {}", options.admin);
        println!(
            "imap listening on {} (imaps on {})",
            options.imap, options.imaps
        );
        if let Some(addr) = options.socketmap {
            println!("socketmap listening on {addr}");
        }
        println!("mailvault ready (pid {})", std::process::id());
        terminated.await;
        tracing::info!("shutting down: finishing in-flight deliveries");
        // The indexer gives up between batches (its work is derived data, redone
        // after the restart) while the listeners drain.
        stop_indexer.store(true, Ordering::Relaxed);
        service.indexes().wake();
        let _ = stop_tx.send(true);
        // Side by side: the whole drain is bounded by the longest of them, and
        // only LMTP waits long (a delivery in flight is being acknowledged).
        let socketmap = async {
            if let Some(socketmap) = socketmap {
                let _ = tokio::time::timeout(Duration::from_secs(5), socketmap).await;
            }
        };
        let lmtp = async {
            if let Some(lmtp) = lmtp {
                let _ = tokio::time::timeout(Duration::from_secs(40), lmtp).await;
            }
        };
        let _ = tokio::join!(
            lmtp,
            tokio::time::timeout(Duration::from_secs(5), imap),
            tokio::time::timeout(Duration::from_secs(5), admin),
            socketmap,
        );
        Ok::<(), ServeError>(())
    })?;
    background_stop.store(true, Ordering::Relaxed);
    for handle in background {
        let _ = handle.join();
    }
    // Backups still running stop cleanly (their sessions are committed as
    // "aborted by command") before the store closes.
    let jobs = mv_backup::progress::running_jobs();
    for job in &jobs {
        job.request_abort();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while jobs.iter().any(|j| j.status().running) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    index_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    service.indexes().wake();
    if indexer.join().is_err() {
        tracing::error!("the search indexer panicked; indexes are rebuilt as needed");
    }
    // Every acknowledged op is already durable in the redo log; the checkpoint
    // makes the databases and blobs durable too, so the next start has nothing to redo.
    service
        .store()
        .checkpoint()
        .map_err(crate::ServiceError::from)?;
    println!("mailvault stopped");
    Ok(())
}

/// Set once this process serves its home (`check` reports it).
static SERVING: AtomicBool = AtomicBool::new(false);

/// Whether this process is `mailvault serve`.
pub fn is_serving() -> bool {
    SERVING.load(Ordering::Relaxed)
}

async fn wait_for(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Installs the SIGTERM/SIGINT handlers now and returns a future that ends at the
/// first of them.
fn terminated() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
