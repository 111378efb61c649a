//! `embedkit serve`: an HTTP server with OpenAI's `/v1/embeddings` and
//! text-embeddings-inference's routes (`/embed`, `/embed_sparse`, `/rerank`,
//! `/tokenize`, `/health`, `/info`), Prometheus `/metrics`, dynamic batching across
//! requests on a dedicated inference thread, a bounded queue that answers 503 with
//! `Retry-After` when full, JSON errors naming the limit a request broke, request ids,
//! and graceful shutdown that finishes in-flight requests.

mod batcher;
mod metrics;

pub use batcher::BatchPolicy;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;

use batcher::{Batcher, Job, JobKind, JobOutput, Refused};
use metrics::Metrics;

use embedkit::text::pooling::l2_normalize;
use embedkit::{Error, Result, SparseTextEmbedding, TextCrossEncoder, TextEmbedding};

/// The models a server answers with: a dense model always, a sparse model and a
/// reranker when given.
pub struct Models {
    pub dense: TextEmbedding,
    pub sparse: Option<SparseTextEmbedding>,
    pub rerank: Option<TextCrossEncoder>,
}

/// Request limits; breaking one is a JSON error that names it.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body (413).
    pub max_body_bytes: usize,
    /// Most inputs in one request (422).
    pub max_inputs: usize,
    /// Longest input, in characters (422).
    pub max_input_chars: usize,
    /// A request not answered within this gets 408/504.
    pub request_timeout: Duration,
    /// A connection that sends no complete request head within this is closed: an idle
    /// keep-alive connection, or a client trickling its headers (slow loris).
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 2 * 1024 * 1024,
            max_inputs: 512,
            max_input_chars: 100_000,
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl Default for BatchPolicy {
    fn default() -> Self {
        BatchPolicy {
            queue_size: 256,
            max_batch_texts: 256,
            max_wait: Duration::from_millis(2),
        }
    }
}

struct AppState {
    models: Arc<Models>,
    /// The dense model's truncation length.
    max_input_length: usize,
    batcher: Batcher,
    metrics: Arc<Metrics>,
    limits: Limits,
}

/// An error answer: TEI's `{"error", "error_type"}`, or OpenAI's
/// `{"error": {"message", "type"}}` on `/v1/` routes.
struct ApiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    openai: bool,
    retry_after: bool,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            kind,
            openai: false,
            retry_after: false,
        }
    }

    fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", message)
    }

    fn openai(mut self) -> Self {
        self.openai = true;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = if self.openai {
            json!({"error": {"message": self.message, "type": self.kind, "param": null, "code": null}})
        } else {
            json!({"error": self.message, "error_type": self.kind})
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.retry_after {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
        }
        response
    }
}

/// Request ids: the client's `x-request-id`, or a process-wide counter.
#[derive(Clone, Default)]
struct Counter(Arc<AtomicU64>);

impl MakeRequestId for Counter {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("req-{n}"))
            .ok()
            .map(RequestId::new)
    }
}

/// The server's routes over `models`.
pub fn router(models: Models, limits: Limits, policy: BatchPolicy) -> Result<Router> {
    let max_input_length = models.dense.max_length()?.unwrap_or(0);
    let metrics = Arc::new(Metrics::new().map_err(|e| Error::Unsupported(e.to_string()))?);
    let models = Arc::new(models);
    let batcher = Batcher::start(models.clone(), policy, metrics.clone())?;
    let state = Arc::new(AppState {
        models,
        max_input_length,
        batcher,
        metrics,
        limits,
    });
    let request_id = HeaderName::from_static("x-request-id");
    Ok(Router::new()
        .route("/v1/embeddings", post(openai_embeddings))
        .route("/embed", post(embed))
        .route("/embed_sparse", post(embed_sparse))
        .route("/rerank", post(rerank))
        .route("/tokenize", post(tokenize))
        .route("/health", get(health))
        .route("/info", get(info))
        .route("/metrics", get(render_metrics))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, Counter::default()))
        .with_state(state))
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
///
/// The accept loop is hyper's own rather than `axum::serve`, which has no setting for
/// how long a connection may take to send a request head; `idle_timeout` bounds both
/// idle keep-alive connections and slowly sent headers.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    idle_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::server::graceful::GracefulShutdown;

    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(idle_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: pause, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Runs a server on `addr` until SIGTERM or Ctrl-C.
pub fn run(addr: SocketAddr, models: Models, limits: Limits, policy: BatchPolicy) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            path: "tokio runtime".into(),
            source,
        })?;
    let limits_idle = limits.idle_timeout;
    runtime.block_on(async move {
        let app = router(models, limits, policy)?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Io {
                path: addr.to_string().into(),
                source,
            })?;
        let local = listener.local_addr().map_err(|source| Error::Io {
            path: addr.to_string().into(),
            source,
        })?;
        tracing::info!(%local, "listening");
        eprintln!("embedkit serving on http://{local}");
        let idle = limits_idle;
        serve(listener, app, idle, shutdown_signal()).await
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Counts, times and logs every request.
async fn observe(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16().to_string();
    state
        .metrics
        .requests
        .with_label_values(&[route.as_str(), status.as_str()])
        .inc();
    state
        .metrics
        .latency
        .with_label_values(&[route.as_str()])
        .observe(elapsed.as_secs_f64());
    tracing::info!(request_id = %id, %route, %status, ms = elapsed.as_secs_f64() * 1e3, "request");
    response
}

/// The JSON object of a request body, or the error to answer.
fn parse_body(
    body: std::result::Result<Bytes, BytesRejection>,
    limits: &Limits,
) -> std::result::Result<Value, ApiError> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "the request body is larger than the limit of {} bytes",
                    limits.max_body_bytes
                ),
            )
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.body_text())
        }
    })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        // serde_json's words for a lone UTF-16 surrogate ("unexpected end of hex
        // escape") do not tell a client what it sent.
        let message = e.to_string();
        let hint = if message.contains("hex escape") || message.contains("surrogate") {
            " (a \\u escape must be a character: a lone UTF-16 surrogate such as \\ud800 \
             is not one)"
        } else {
            ""
        };
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("malformed JSON: {message}{hint}"),
        )
    })?;
    if !value.is_object() {
        return Err(ApiError::validation(
            "the request body must be a JSON object",
        ));
    }
    Ok(value)
}

/// A string or an array of strings, checked against the limits.
fn texts_of(
    value: Option<&Value>,
    field: &str,
    limits: &Limits,
) -> std::result::Result<Vec<String>, ApiError> {
    let texts: Vec<String> = match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Array(_) | Value::Number(_) => Err(ApiError::validation(format!(
                    "{field}[{i}]: token arrays are taken by /v1/embeddings only, and not \
                     mixed with text"
                ))),
                other => Err(ApiError::validation(format!(
                    "{field}[{i}] must be a string, got {}",
                    type_name(other)
                ))),
            })
            .collect::<std::result::Result<_, _>>()?,
        Some(other) => {
            return Err(ApiError::validation(format!(
                "`{field}` must be a string or an array of strings, got {}",
                type_name(other)
            )))
        }
        None => return Err(ApiError::validation(format!("`{field}` is missing"))),
    };
    if texts.is_empty() {
        return Err(ApiError::validation(format!("`{field}` is empty")));
    }
    if texts.len() > limits.max_inputs {
        return Err(ApiError::validation(format!(
            "{} inputs is more than the limit of {} per request (max_inputs)",
            texts.len(),
            limits.max_inputs
        )));
    }
    if let Some((i, t)) = texts
        .iter()
        .enumerate()
        .find(|(_, t)| t.chars().count() > limits.max_input_chars)
    {
        return Err(ApiError::validation(format!(
            "{field}[{i}] has {} characters, more than the limit of {} (max_input_chars)",
            t.chars().count(),
            limits.max_input_chars
        )));
    }
    Ok(texts)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Queues a job and waits for its answer.
async fn submit(
    state: &AppState,
    kind: JobKind,
    texts: Vec<String>,
) -> std::result::Result<JobOutput, ApiError> {
    enqueue(state, kind, texts, Vec::new()).await
}

/// Queues a job of texts or of token ids and waits for its answer.
async fn enqueue(
    state: &AppState,
    kind: JobKind,
    texts: Vec<String>,
    ids: Vec<Vec<u32>>,
) -> std::result::Result<JobOutput, ApiError> {
    let (reply, answer) = oneshot::channel();
    let n = texts.len().max(ids.len());
    state
        .batcher
        .submit(Job {
            kind,
            texts,
            ids,
            reply,
        })
        .map_err(|refused| {
            let mut e = match refused {
                Refused::Full => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    "the inference queue is full; retry shortly",
                ),
                Refused::Stopped => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unhealthy",
                    "the inference thread has stopped",
                ),
            };
            e.retry_after = true;
            e
        })?;
    match tokio::time::timeout(state.limits.request_timeout, answer).await {
        Ok(Ok(Ok(output))) => {
            state.metrics.texts.inc_by(n as u64);
            Ok(output)
        }
        Ok(Ok(Err(e))) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "backend",
            e.to_string(),
        )),
        Ok(Err(_)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "backend",
            "the inference thread dropped the request",
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "inference did not finish within the request timeout",
        )),
    }
}

/// Counts tokens off the async threads.
async fn count_tokens(state: &Arc<AppState>, texts: &[String]) -> usize {
    let state = state.clone();
    let texts = texts.to_vec();
    let n =
        tokio::task::spawn_blocking(move || state.models.dense.token_count(&texts).unwrap_or(0))
            .await
            .unwrap_or(0);
    n
}

/// The request's `dimensions`: only for models trained for truncation (Matryoshka), or
/// the model's own size.
fn dimensions_of(req: &Value, state: &AppState) -> std::result::Result<Option<usize>, ApiError> {
    let desc = state.models.dense.description();
    let dim = desc.dim;
    let Some(v) = req.get("dimensions").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match v.as_u64() {
        Some(d) if d as usize == dim => Ok(None),
        Some(d) if d >= 1 && (d as usize) < dim && desc.matryoshka => Ok(Some(d as usize)),
        Some(d) if d >= 1 && (d as usize) < dim => Err(ApiError::validation(format!(
            "model {} was not trained for shortened vectors (Matryoshka), so `dimensions` \
             must be its size, {dim}; got {d}",
            desc.core.model
        ))),
        _ => Err(ApiError::validation(format!(
            "dimensions must be an integer from 1 to {dim}, got {v}"
        ))),
    }
}

/// OpenAI's `input`: text(s), or token ids (one array of integers, or an array of them).
enum Inputs {
    Texts(Vec<String>),
    Ids(Vec<Vec<u32>>),
}

fn inputs_of(value: Option<&Value>, limits: &Limits) -> std::result::Result<Inputs, ApiError> {
    let ids_of = |i: usize, items: &[Value]| -> std::result::Result<Vec<u32>, ApiError> {
        if items.len() > limits.max_input_chars {
            return Err(ApiError::validation(format!(
                "input[{i}] has {} tokens, more than the limit of {} (max_input_chars)",
                items.len(),
                limits.max_input_chars
            )));
        }
        items
            .iter()
            .map(|t| {
                t.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        ApiError::validation(format!(
                            "input[{i}]: token ids must be non-negative integers, got {t}"
                        ))
                    })
            })
            .collect()
    };
    let sequences: Vec<Vec<u32>> = match value {
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_number) => {
            vec![ids_of(0, items)?]
        }
        Some(Value::Array(items))
            if !items.is_empty() && items.iter().all(|v| matches!(v, Value::Array(_))) =>
        {
            items
                .iter()
                .enumerate()
                .map(|(i, v)| ids_of(i, v.as_array().map(Vec::as_slice).unwrap_or_default()))
                .collect::<std::result::Result<_, _>>()?
        }
        _ => return texts_of(value, "input", limits).map(Inputs::Texts),
    };
    if sequences.len() > limits.max_inputs {
        return Err(ApiError::validation(format!(
            "{} inputs is more than the limit of {} per request (max_inputs)",
            sequences.len(),
            limits.max_inputs
        )));
    }
    if let Some(i) = sequences.iter().position(Vec::is_empty) {
        return Err(ApiError::validation(format!(
            "input[{i}] is an empty token array"
        )));
    }
    Ok(Inputs::Ids(sequences))
}

fn truncate_renormalize(mut v: Vec<f32>, dims: Option<usize>) -> Vec<f32> {
    if let Some(d) = dims {
        v.truncate(d);
        l2_normalize(&mut v);
    }
    v
}

async fn openai_embeddings(
    State(state): State<Arc<AppState>>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> std::result::Result<Response, ApiError> {
    let req = parse_body(body, &state.limits).map_err(ApiError::openai)?;
    let input = inputs_of(req.get("input"), &state.limits).map_err(ApiError::openai)?;
    let base64 = match req.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) if s == "float" => false,
        Some(Value::String(s)) if s == "base64" => true,
        Some(other) => {
            return Err(ApiError::validation(format!(
                "encoding_format must be \"float\" or \"base64\", got {other}"
            ))
            .openai())
        }
    };
    let dims = dimensions_of(&req, &state).map_err(ApiError::openai)?;
    let (tokens, job) = match input {
        Inputs::Texts(texts) => (
            count_tokens(&state, &texts).await,
            enqueue(&state, JobKind::Dense, texts, Vec::new()),
        ),
        Inputs::Ids(ids) => {
            state
                .models
                .dense
                .check_token_ids(&ids)
                .map_err(|e| ApiError::validation(e.to_string()).openai())?;
            let tokens = ids.iter().map(Vec::len).sum();
            (tokens, enqueue(&state, JobKind::DenseIds, Vec::new(), ids))
        }
    };
    let JobOutput::Dense(vectors) = job.await.map_err(ApiError::openai)? else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "backend",
            "unexpected output",
        )
        .openai());
    };
    state.metrics.tokens.inc_by(tokens as u64);
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let v = truncate_renormalize(v, dims);
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(&state.models.dense.description().core.model)
        .to_string();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
    .into_response())
}

async fn embed(
    State(state): State<Arc<AppState>>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> std::result::Result<Response, ApiError> {
    let req = parse_body(body, &state.limits)?;
    let texts = texts_of(req.get("inputs"), "inputs", &state.limits)?;
    let normalize = match req.get("normalize") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(ApiError::validation(format!(
                "normalize must be a boolean, got {}",
                type_name(other)
            )))
        }
    };
    let dims = dimensions_of(&req, &state)?;
    let JobOutput::Dense(vectors) = submit(&state, JobKind::Dense, texts).await? else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "backend",
            "unexpected output",
        ));
    };
    let vectors: Vec<Vec<f32>> = vectors
        .into_iter()
        .map(|v| {
            let mut v = truncate_renormalize(v, dims);
            if normalize {
                l2_normalize(&mut v);
            }
            v
        })
        .collect();
    Ok(Json(vectors).into_response())
}

async fn embed_sparse(
    State(state): State<Arc<AppState>>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> std::result::Result<Response, ApiError> {
    if state.models.sparse.is_none() {
        return Err(ApiError::new(
            StatusCode::FAILED_DEPENDENCY,
            "unavailable",
            "no sparse model is served; start with --sparse-model",
        ));
    }
    let req = parse_body(body, &state.limits)?;
    let texts = texts_of(req.get("inputs"), "inputs", &state.limits)?;
    let JobOutput::Sparse(vectors) = submit(&state, JobKind::Sparse, texts).await? else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "backend",
            "unexpected output",
        ));
    };
    let out: Vec<Vec<Value>> = vectors
        .into_iter()
        .map(|v| {
            v.indices
                .iter()
                .zip(&v.values)
                .map(|(i, x)| json!({"index": i, "value": x}))
                .collect()
        })
        .collect();
    Ok(Json(out).into_response())
}

async fn rerank(
    State(state): State<Arc<AppState>>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> std::result::Result<Response, ApiError> {
    if state.models.rerank.is_none() {
        return Err(ApiError::new(
            StatusCode::FAILED_DEPENDENCY,
            "unavailable",
            "no reranker is served; start with --rerank-model",
        ));
    }
    let req = parse_body(body, &state.limits)?;
    let query = match req.get("query") {
        Some(Value::String(q)) => q.clone(),
        Some(other) => {
            return Err(ApiError::validation(format!(
                "query must be a string, got {}",
                type_name(other)
            )))
        }
        None => return Err(ApiError::validation("`query` is missing")),
    };
    if query.chars().count() > state.limits.max_input_chars {
        return Err(ApiError::validation(format!(
            "query has more than {} characters (max_input_chars)",
            state.limits.max_input_chars
        )));
    }
    let texts = texts_of(req.get("texts"), "texts", &state.limits)?;
    let return_text = req
        .get("return_text")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let JobOutput::Scores(scores) =
        submit(&state, JobKind::Rerank { query }, texts.clone()).await?
    else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "backend",
            "unexpected output",
        ));
    };
    // TEI answers best first.
    let ranked = embedkit::rerank::top_k(&scores, scores.len());
    let out: Vec<Value> = ranked
        .into_iter()
        .map(|r| {
            if return_text {
                json!({"index": r.index, "score": r.score, "text": texts[r.index]})
            } else {
                json!({"index": r.index, "score": r.score})
            }
        })
        .collect();
    Ok(Json(out).into_response())
}

async fn tokenize(
    State(state): State<Arc<AppState>>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> std::result::Result<Response, ApiError> {
    let req = parse_body(body, &state.limits)?;
    let texts = texts_of(req.get("inputs"), "inputs", &state.limits)?;
    let worker = state.clone();
    // The tokens the dense model embeds, from the model itself.
    let tokens = tokio::task::spawn_blocking(move || worker.models.dense.tokens(&texts))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "backend", e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "backend", e.to_string()))?;
    let out: Vec<Vec<Value>> = tokens
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|t| json!({"id": t.id, "text": t.text, "special": t.special}))
                .collect()
        })
        .collect();
    Ok(Json(out).into_response())
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    if state.batcher.is_alive() {
        (StatusCode::OK, Json(json!({"status": "ok"}))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unhealthy", "error": "the inference thread has stopped"})),
        )
            .into_response()
    }
}

async fn info(State(state): State<Arc<AppState>>) -> Response {
    let d = state.models.dense.description();
    Json(json!({
        "model_id": d.core.model,
        "model_dim": d.dim,
        "model_type": "embedding",
        "max_input_length": state.max_input_length,
        "max_client_batch_size": state.limits.max_inputs,
        "max_input_chars": state.limits.max_input_chars,
        "max_body_bytes": state.limits.max_body_bytes,
        "sparse_model": state.models.sparse.as_ref().map(|m| m.description().core.model.clone()),
        "rerank_model": state.models.rerank.as_ref().map(|m| m.description().core.model.clone()),
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

async fn render_metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        Body::from(state.metrics.render()),
    )
        .into_response()
}
