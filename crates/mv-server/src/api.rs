//! The admin API: HTTP + JSON on 127.0.0.1:7071, bearer-token auth (the token is
//! made by `init` in conf/admin.token, mode 0600).
//!
//! `POST /v1/op` runs one [`Request`] (the same requests the CLI runs in-process)
//! and answers `{"result": ...}` or `{"error": "..."}` with a meaningful status:
//! 401 without the right token, 400 for a malformed or invalid request, 404 for
//! something that does not exist, 500 for a server-side failure.

use crate::{Request, Service};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

#[derive(Clone)]
struct ApiState {
    service: Arc<Service>,
    token: Arc<String>,
}

/// The API's routes.
pub fn router(service: Arc<Service>, token: String) -> Router {
    Router::new()
        .route("/v1/op", post(op))
        .route("/v1/health", get(health))
        // Without the token: counts only, no mail, no names.
        .route("/metrics", get(metrics))
        .route("/health", get(live))
        // Messages travel base64-encoded: allow the LMTP size limit plus overhead.
        .layer(DefaultBodyLimit::max(128 << 20))
        .layer(axum::middleware::from_fn(audit_auth))
        .with_state(ApiState {
            service,
            token: Arc::new(token),
        })
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
    (status, Json(json!({"error": msg.into()}))).into_response()
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
    Json(json!({"result": {"ok": true, "server": state.service.server_name()}})).into_response()
}

async fn op(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !authorized(&headers, &state.token) {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong admin token (see conf/admin.token)",
        );
    }
    let req: Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("malformed request: {e}")),
    };
    let service = state.service.clone();
    match tokio::task::spawn_blocking(move || service.execute_shared(req)).await {
        Ok(Ok(result)) => Json(json!({"result": result})).into_response(),
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
