//! The admin API: HTTP + JSON on 127.0.0.1:7071, bearer-token auth (the token is
//! made by `init` in conf/admin.token, mode 0600).
//!
//! `POST /v1/op` runs one [`Request`] (the same requests the CLI runs in-process)
//! and answers `{"result": ...}` or `{"error": "..."}` with a meaningful status:
//! 401 without the right token, 400 for a malformed or invalid request, 404 for
//! something that does not exist, 413 for a body over the operation's limit,
//! 500 for a server-side failure. `POST /v1/op/<op>` is the same with the
//! operation named in the path, which operations carrying content must use:
//! the token is checked on the headers and the limit chosen from the path before
//! any of the body is read.
//!
//! Bodies that are data rather than requests travel as plain byte streams
//! ([`stream`]): `GET /v1/accounts/{account}/rest?fmt=tgz|ics|vcf` answers the
//! export itself, `POST` to the same path imports its body. Long operations
//! run as jobs ([`jobs`]): `POST /v1/jobs`, `GET|DELETE /v1/jobs/{id}`.
//!
//! Every answer on the wire is `{"result": ...}` or `{"error": "..."}`; field
//! names are `snake_case` throughout (requests and results).

mod jobs;
pub mod stream;

use crate::{Request, Service};
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use std::sync::Arc;

#[derive(Clone)]
struct ApiState {
    service: Arc<Service>,
    token: Arc<String>,
}

/// Body limit of an operation that carries no content (everything but
/// [`CONTENT_OPS`]): a request of a few fields and lists.
pub const MAX_BODY: usize = 1 << 20;
/// Body limit of an operation in [`CONTENT_OPS`]: messages travel
/// base64-encoded, so the LMTP size limit plus a third. Archives, calendars
/// and contacts in bulk go through the streaming routes instead ([`stream`]).
pub const MAX_CONTENT_BODY: usize = 128 << 20;
/// Operations whose request carries content (base64 messages, calendars,
/// contacts). They are posted to `/v1/op/<op>` so that the limit is known
/// before the body is read.
pub const CONTENT_OPS: &[&str] = &["add_message", "import_calendar", "import_contacts"];

/// The API's routes.
pub fn router(service: Arc<Service>, token: String) -> Router {
    Router::new()
        .route("/v1/op", post(op))
        .route("/v1/op/{name}", post(op_named))
        .route("/v1/health", get(health))
        .route(
            "/v1/accounts/{account}/rest",
            get(stream::export).post(stream::import),
        )
        .route("/v1/jobs", post(jobs::start).get(jobs::list))
        .route("/v1/jobs/{id}", get(jobs::get).delete(jobs::cancel))
        // Without the token: counts only, no mail, no names.
        .route("/metrics", get(metrics))
        .route("/health", get(live))
        // The handlers take the body unread and apply their own limit, per
        // operation, only once the token is checked.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(audit_auth))
        .with_state(ApiState {
            service,
            token: Arc::new(token),
        })
}

/// The body limit of an operation by name: `None` for an unknown name.
pub fn body_limit(op: &str) -> Option<usize> {
    if CONTENT_OPS.contains(&op) {
        Some(MAX_CONTENT_BODY)
    } else if is_op_name(op) {
        Some(MAX_BODY)
    } else {
        None
    }
}

/// Whether `op` is spelled like an operation (`snake_case`, short): the
/// request's decoding says whether it exists.
fn is_op_name(op: &str) -> bool {
    !op.is_empty()
        && op.len() <= 64
        && op
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The `op` field of a JSON request, without decoding the rest into memory.
pub fn op_name(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Tag {
        op: String,
    }
    serde_json::from_slice::<Tag>(body).ok().map(|t| t.op)
}

/// Decodes a request body that arrived on the route for `named` (None: the
/// plain `/v1/op`). The error is the answer's message.
pub fn decode(body: &[u8], named: Option<&str>) -> Result<Request, String> {
    let req: Request =
        serde_json::from_slice(body).map_err(|e| format!("malformed request: {e}"))?;
    if let Some(name) = named {
        match op_name(body) {
            Some(op) if op == name => {}
            other => {
                return Err(format!(
                    "the request's op {:?} is not the {name:?} of its path /v1/op/{name}",
                    other.unwrap_or_default()
                ));
            }
        }
    }
    Ok(req)
}

/// A request refused for its token leaves an audit line naming the client.
async fn audit_auth(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_else(|| "unknown".into());
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    if resp.status() == StatusCode::UNAUTHORIZED {
        tracing::warn!(
            target: "audit",
            peer = %peer,
            path = %path,
            result = "failed: missing or wrong admin token",
            "admin login"
        );
    } else if path.starts_with("/v1/") {
        tracing::debug!(target: "audit", peer = %peer, path = %path, status = resp.status().as_u16(), "admin request");
    }
    resp
}

async fn metrics(State(state): State<ApiState>) -> Response {
    let service = state.service.clone();
    match tokio::task::spawn_blocking(move || crate::metrics::render(&service)).await {
        Ok(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("metrics: {e}")),
    }
}

/// Liveness: the admin listener answers and the home is still there.
async fn live(State(state): State<ApiState>) -> Response {
    let home = state.service.store().home();
    if home.localconfig_path().is_file() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("home {} is gone\n", home.root().display()),
        )
            .into_response()
    }
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(crate::response::Answer::error(msg))).into_response()
}

/// `{"result": ...}` with 200.
fn ok<T: Serialize>(result: &T) -> Response {
    Json(crate::response::Answer::ok(result)).into_response()
}

/// A service error with its status.
fn service_error(e: crate::ServiceError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error(status, e.to_string())
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "missing or wrong admin token (see conf/admin.token)",
    )
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(given) = value.strip_prefix("Bearer ") else {
        return false;
    };
    // Constant-time comparison: the token is the only secret guarding the API.
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn health(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if !authorized(&headers, &state.token) {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong admin token (see conf/admin.token)",
        );
    }
    ok(&crate::response::Pong {
        ok: true,
        server: state.service.server_name().to_string(),
    })
}

async fn op(State(state): State<ApiState>, headers: HeaderMap, body: Body) -> Response {
    run(state, headers, body, None).await
}

async fn op_named(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    run(state, headers, body, Some(name)).await
}

/// Token first, from the headers alone: an unauthenticated request is answered
/// without a byte of its body read. Then the operation's limit, from the path
/// (`Content-Length` checked before reading, the bytes counted while reading).
async fn run(state: ApiState, headers: HeaderMap, body: Body, named: Option<String>) -> Response {
    if !authorized(&headers, &state.token) {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong admin token (see conf/admin.token)",
        );
    }
    let limit = match named.as_deref() {
        None => MAX_BODY,
        Some(name) => match body_limit(name) {
            Some(l) => l,
            None => {
                return error(
                    StatusCode::NOT_FOUND,
                    format!("no operation {name:?}: POST /v1/op/<op> with the request's op"),
                );
            }
        },
    };
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            if named.is_none() {
                format!(
                    "request body over {} bytes: {} take up to {} bytes when posted to /v1/op/<op>",
                    MAX_BODY,
                    CONTENT_OPS.join(", "),
                    MAX_CONTENT_BODY
                )
            } else {
                format!("request body over {limit} bytes, the limit of this operation")
            },
        )
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return too_large(),
    };
    let req = match decode(&body, named.as_deref()) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    drop(body);
    let service = state.service.clone();
    match tokio::task::spawn_blocking(move || service.execute_shared(req)).await {
        Ok(Ok(result)) => ok(&result),
        Ok(Err(e)) => {
            let status =
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error(status, e.to_string())
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("request failed: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_the_operation() {
        assert_eq!(body_limit("add_message"), Some(MAX_CONTENT_BODY));
        assert_eq!(body_limit("import_calendar"), Some(MAX_CONTENT_BODY));
        assert_eq!(body_limit("ping"), Some(MAX_BODY));
        assert_eq!(body_limit("../etc"), None);
        assert_eq!(body_limit(""), None);
    }

    #[test]
    fn decoding_checks_the_path_against_the_op() {
        assert!(decode(br#"{"op":"ping"}"#, None).is_ok());
        assert!(decode(br#"{"op":"ping"}"#, Some("ping")).is_ok());
        let e = decode(br#"{"op":"ping"}"#, Some("add_message")).unwrap_err();
        assert!(e.contains("add_message"), "{e}");
        let e = decode(br#"{"op":"nope"}"#, None).unwrap_err();
        assert!(e.starts_with("malformed request"), "{e}");
        assert_eq!(
            op_name(br#"{"key":"x","op":"get_account"}"#).as_deref(),
            Some("get_account")
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// Whatever arrives, decoding answers (a request or an error), never
        /// panics, and agrees with the op it reads.
        #[test]
        fn decoding_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
                                 name in "[a-z_]{0,12}") {
            let named = decode(&body, Some(&name));
            if named.is_ok() {
                proptest::prop_assert_eq!(op_name(&body), Some(name));
            }
            let _ = decode(&body, None);
        }

        /// Every request that serializes decodes back on its own path.
        #[test]
        fn json_shaped_requests_decode(op in "(ping|get_account|get_all_domains|check|disk_status|backup_query)",
                                       key in "[ -~]{0,40}") {
            let body = serde_json::json!({"op": op, "key": key, "target": key}).to_string();
            if let Ok(req) = decode(body.as_bytes(), Some(&op)) {
                let again = serde_json::to_vec(&req).unwrap();
                proptest::prop_assert_eq!(op_name(&again), Some(op.clone()));
                proptest::prop_assert!(decode(&again, Some(&op)).is_ok());
            }
        }
    }
}
