//! What every request passes before a handler, in this order: a request id, its
//! deadline, the Host check and the API key, the concurrency limit (before any body is
//! read, so memory is bounded by the limit × the body limit), then the handler within
//! the deadline; every answer, refusals and timeouts included, is logged and counted.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::api::{ApiError, Deadline};
use crate::AppState;

/// Longest client-chosen request id kept; a longer or odd one is replaced by ours.
const MAX_REQUEST_ID: usize = 64;

/// A client's `x-request-id` if short and plain, else a fresh one.
fn request_id(req: &Request, state: &AppState) -> String {
    let theirs = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_REQUEST_ID
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b))
        });
    match theirs {
        Some(id) => id.to_string(),
        None => format!("req-{}", state.next_id.fetch_add(1, Ordering::Relaxed)),
    }
}

/// The host name of a request (Host header, or the URI's authority in HTTP/2).
fn host_of(req: &Request) -> Option<String> {
    let raw = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_string()))?;
    let host = if let Some(rest) = raw.strip_prefix('[') {
        rest.split(']').next().unwrap_or("").to_string()
    } else {
        raw.rsplit_once(':')
            .map(|(h, _)| h.to_string())
            .unwrap_or(raw)
    };
    Some(host.to_ascii_lowercase())
}

fn is_loopback_name(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .map(|a| a.is_loopback())
            .unwrap_or(false)
}

/// The Host check and the API key.
fn admit(req: &Request, route: &str, state: &AppState) -> Result<(), ApiError> {
    // A server on a loopback address answers only loopback names: a web page's DNS
    // name rebound to 127.0.0.1 does not reach it.
    if state.security.loopback_only {
        if let Some(host) = host_of(req) {
            let allowed = state
                .security
                .allowed_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&host));
            if !is_loopback_name(&host) && !allowed {
                return Err(ApiError::new(
                    StatusCode::MISDIRECTED_REQUEST,
                    "misdirected",
                    format!(
                        "this server listens on a loopback address and answers only \
                         localhost names (or --allow-host ones), not Host {host:?}"
                    ),
                ));
            }
        }
    }
    let Some(key) = &state.security.api_key else {
        return Ok(());
    };
    if route == "/health" {
        return Ok(());
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    match given {
        // Constant time in the key's content (a length difference shows, not where
        // the bytes differ).
        Some(token) if bool::from(token.as_bytes().ct_eq(key.as_bytes())) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the API key is not this server's",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this server needs an API key: send `Authorization: Bearer KEY`",
        )),
    }
}

/// A concurrency permit, counted in `embedkit_requests_in_progress` while held.
struct InProgress {
    _permit: tokio::sync::OwnedSemaphorePermit,
    gauge: prometheus::IntGauge,
}

impl InProgress {
    fn new(permit: tokio::sync::OwnedSemaphorePermit, state: &AppState) -> Self {
        state.metrics.in_progress.inc();
        InProgress {
            _permit: permit,
            gauge: state.metrics.in_progress.clone(),
        }
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// The front of every request: see the module's comment.
pub(crate) async fn front(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let id = request_id(&req, &state);
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let path = req.uri().path().to_string();
    let timeout = state.limits.request_timeout;
    req.extensions_mut().insert(Deadline(started + timeout));
    let mut response = match admit(&req, &route, &state) {
        Err(e) => e.shaped_for(&path).into_response(),
        Ok(()) => {
            // Work (POST) holds a permit from before its body is read to its answer.
            let permit = if req.method() == Method::POST {
                state.permits.clone().try_acquire_owned().map(Some)
            } else {
                Ok(None)
            };
            match permit {
                Err(_) => ApiError::overloaded(format!(
                    "{} requests are in progress, the limit (max_concurrent_requests); \
                     retry shortly",
                    state.limits.max_concurrent_requests
                ))
                .shaped_for(&path)
                .into_response(),
                Ok(permit) => {
                    // Counted until the answer or until the client leaves (the future
                    // is then dropped): a guard, not a decrement after the await.
                    let _held = permit.map(|p| InProgress::new(p, &state));
                    // Handlers answer within the deadline themselves (408, 504); this is
                    // the backstop for anything that does not.
                    let answer = tokio::time::timeout(
                        timeout + Duration::from_secs(1),
                        crate::timing::scoped(started, next.run(req)),
                    )
                    .await;
                    answer.unwrap_or_else(|_| {
                        ApiError::new(
                            StatusCode::GATEWAY_TIMEOUT,
                            "timeout",
                            "the request did not finish within the request timeout",
                        )
                        .shaped_for(&path)
                        .into_response()
                    })
                }
            }
        }
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    finish(&state, &id, &route, started, response)
}

/// Counts and logs an answer. The request id and route are logged quoted (`?`), so a
/// client cannot forge log fields.
fn finish(
    state: &AppState,
    id: &str,
    route: &str,
    started: Instant,
    response: Response,
) -> Response {
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let status_label = status.to_string();
    state
        .metrics
        .requests
        .with_label_values(&[route, status_label.as_str()])
        .inc();
    state
        .metrics
        .latency
        .with_label_values(&[route])
        .observe(elapsed.as_secs_f64());
    let ms = elapsed.as_secs_f64() * 1e3;
    if status >= 500 || status == 408 {
        tracing::warn!(request_id = ?id, route = ?route, status, ms, "request");
    } else {
        tracing::info!(request_id = ?id, route = ?route, status, ms, "request");
    }
    response
}
