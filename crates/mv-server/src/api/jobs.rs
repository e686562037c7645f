//! `/v1/jobs`: long operations started, followed and cancelled (see
//! [`crate::jobs`]). `POST /v1/jobs` takes a request as `POST /v1/op` does
//! and answers 202 with the job's status; `GET /v1/jobs` lists the jobs kept,
//! `GET /v1/jobs/{id}` tells one (`?since=N`: with the log lines from the
//! N-th on), `DELETE /v1/jobs/{id}` cancels it.

use super::{ApiState, MAX_BODY, authorized, decode, error, ok, service_error, unauthorized};
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// `POST /v1/jobs`
pub(super) async fn start(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !authorized(&headers, &state.token) {
        return unauthorized();
    }
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body over {MAX_BODY} bytes"),
            );
        }
    };
    let req = match decode(&body, None) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let service = state.service.clone();
    match tokio::task::spawn_blocking(move || service.start_job(req)).await {
        Ok(Ok(status)) => (StatusCode::ACCEPTED, ok(&status)).into_response(),
        Ok(Err(e)) => service_error(e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("job: {e}")),
    }
}

/// `GET /v1/jobs`
pub(super) async fn list(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if !authorized(&headers, &state.token) {
        return unauthorized();
    }
    ok(&state.service.jobs().list())
}

/// The query of `GET /v1/jobs/{id}`.
#[derive(Debug, serde::Deserialize)]
pub(super) struct StatusQuery {
    /// Only the log lines numbered from this one on (see `JobStatus::log_start`).
    #[serde(default)]
    since: u64,
}

/// `GET /v1/jobs/{id}[?since=N]`
pub(super) async fn get(
    State(state): State<ApiState>,
    Path(id): Path<u64>,
    query: Result<Query<StatusQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers, &state.token) {
        return unauthorized();
    }
    let since = match query {
        Ok(Query(q)) => q.since,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("since: expected the number of a log line ({e})"),
            );
        }
    };
    match state.service.jobs().get(id) {
        Some(job) => ok(&job.status_since(since)),
        None => error(StatusCode::NOT_FOUND, format!("no job {id} in this server")),
    }
}

/// `DELETE /v1/jobs/{id}`
pub(super) async fn cancel(
    State(state): State<ApiState>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers, &state.token) {
        return unauthorized();
    }
    match state.service.cancel_job(id) {
        Ok(status) => ok(&status),
        Err(e) => service_error(e),
    }
}
