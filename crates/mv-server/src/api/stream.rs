//! The streaming routes: `GET /v1/accounts/{account}/rest?fmt=tgz|ics|vcf`
//! answers the export as the body itself (no JSON around it), written while
//! the store produces it; `POST` to the same path takes the body to import as
//! it arrives. Between the blocking store code and the async connection, a
//! bounded channel of chunks keeps the server's memory flat whatever the size.
//!
//! An export's report (how many items it wrote) exists only once the last byte
//! is out, so it is kept as a finished job: the answer's `mailvault-job` header
//! names it, and `GET /v1/jobs/{id}` reads it after the body ended. An export
//! failing half way aborts the body (the client sees a truncated transfer,
//! never a short archive that looks complete) and its job says why.

use super::{ApiState, authorized, error, service_error, unauthorized};
use crate::stream::{ExportParams, ImportParams};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use std::io::{self, Read, Write};
use tokio::sync::mpsc;

/// Bytes gathered before a chunk goes to the connection.
const CHUNK: usize = 256 << 10;
/// Chunks in flight between the store and the connection: with [`CHUNK`], the
/// memory one transfer can hold.
const IN_FLIGHT: usize = 4;
/// The header naming an export's job.
pub const JOB_HEADER: &str = "mailvault-job";

type Chunk = Result<Bytes, io::Error>;

/// A `Write` that sends full chunks down a channel, blocking while the
/// connection is behind (the back-pressure that keeps memory flat).
struct ChannelWriter {
    tx: mpsc::Sender<Chunk>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// A `Read` over the chunks an async task receives from the connection.
struct ChannelReader {
    rx: mpsc::Receiver<Chunk>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// `GET /v1/accounts/{account}/rest?fmt=...`
pub(super) async fn export(
    State(state): State<ApiState>,
    Path(account): Path<String>,
    Query(params): Query<ExportParams>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers, &state.token) {
        return unauthorized();
    }
    let service = state.service.clone();
    // A missing account is a plain 404, before any byte of a body.
    let check = {
        let (service, account) = (service.clone(), account.clone());
        tokio::task::spawn_blocking(move || service.mailbox_of(&account)).await
    };
    match check {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return service_error(e),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("export: {e}")),
    }
    let job = service.jobs().register("export");
    let id = job.status().id;
    let (tx, rx) = mpsc::channel::<Chunk>(IN_FLIGHT);
    let content_type = params.fmt.content_type();
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let result = service
            .export_to(&account, &params, &mut out)
            .and_then(|r| {
                out.flush()
                    .map_err(|e| crate::ServiceError::Io(format!("sending the export: {e}")))?;
                Ok(crate::Response::from(r))
            });
        if let Err(e) = &result {
            // Ends the body with an error: the transfer is cut, not completed.
            let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
        }
        job.finish(result);
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::HeaderName::from_static(JOB_HEADER), id.to_string()),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// `POST /v1/accounts/{account}/rest?fmt=...`
pub(super) async fn import(
    State(state): State<ApiState>,
    Path(account): Path<String>,
    Query(params): Query<ImportParams>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !authorized(&headers, &state.token) {
        return unauthorized();
    }
    let (tx, rx) = mpsc::channel::<Chunk>(IN_FLIGHT);
    // The connection's side: chunks as they arrive, until the importer stops
    // asking (it refused the body, or has all it wants).
    let pump = tokio::spawn(async move {
        let mut data = body.into_data_stream();
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(io::Error::other);
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                break;
            }
        }
    });
    let service = state.service.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut input = ChannelReader {
            rx,
            current: Bytes::new(),
        };
        service.import_from(&account, &params, &mut input)
    })
    .await;
    pump.abort();
    match result {
        Ok(Ok(r)) => super::ok(&r),
        Ok(Err(e)) => service_error(e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("import: {e}")),
    }
}
