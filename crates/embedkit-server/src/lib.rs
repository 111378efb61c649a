//! `embedkit serve`: an HTTP server over any number of embedkit models of every family.
//!
//! Routes: OpenAI's `/v1/embeddings` and `/v1/models`; text-embeddings-inference's
//! `/embed`, `/embed_sparse`, `/rerank`, `/tokenize`, `/health`, `/info`; `/embed_late`
//! for token vectors (late interaction, multimodal); Prometheus `/metrics`; the OpenAPI
//! document at `/openapi.json`.
//!
//! Layout: [`api`] the wire types and body extractor, `routes` the handlers, `guard`
//! what every request passes first (id, Host, API key, concurrency limit, deadline,
//! logging), `batcher` cross-request batching on the inference workers (`queues` their
//! scheduler, `lease` the cores they lease), `conn` the connections (idle rule, HTTP/2
//! switch, shutdown deadline), [`models`] what is served.

pub mod api;
mod batcher;
mod compat;
mod conn;
mod error;
mod guard;
mod hybrid;
mod inputs;
mod lease;
mod metrics;
pub mod models;
mod openapi;
mod queues;
mod routes;
mod status;
mod timing;
mod work;

pub use batcher::{BatchPolicy, CoreSharing, DEFAULT_TIME_SLICE};
pub use conn::{serve, Transport};
pub use models::{DefaultPrompt, Models, Served};

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::{middleware, Router};
use tokio::sync::Semaphore;

use batcher::Batcher;
pub use error::{Result, ServerError};
use metrics::Metrics;

/// Request limits; breaking one is a JSON error that names it.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body (413).
    pub max_body_bytes: usize,
    /// Most inputs in one request (422).
    pub max_inputs: usize,
    /// Longest input, in characters (422).
    pub max_input_chars: usize,
    /// A request's whole time: a body not received within it gets 408, an answer not
    /// ready within it 504.
    pub request_timeout: Duration,
    /// Requests with work (POST) in progress at once, counted before their bodies are
    /// read; beyond, 503. Memory for bodies is at most this × `max_body_bytes`.
    pub max_concurrent_requests: usize,
    /// Numbers in one answer of vectors per token (`/embed_all`, `/embed_late` for texts
    /// and images, `/embed_hybrid`'s multi-vectors), bounded before any work (413).
    pub max_output_numbers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 2 * 1024 * 1024,
            max_inputs: 512,
            max_input_chars: 100_000,
            request_timeout: Duration::from_secs(30),
            max_concurrent_requests: 64,
            // 64 MiB of floats: TEI's worst answer (32 texts × 512 tokens × 1024).
            max_output_numbers: 1 << 24,
        }
    }
}

/// Who may call.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// Every route but `/health` needs `Authorization: Bearer KEY`.
    pub api_key: Option<String>,
    /// Answer only Host names that are loopback (set when listening on a loopback
    /// address, against DNS rebinding), plus `allowed_hosts`.
    pub loopback_only: bool,
    /// More Host names to answer with `loopback_only` (a reverse proxy's name).
    pub allowed_hosts: Vec<String>,
}

/// Everything a server is configured with.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub limits: Limits,
    pub policy: BatchPolicy,
    pub security: Security,
    pub transport: Transport,
}

pub(crate) struct AppState {
    pub models: Arc<Models>,
    /// Each model's longest token sequence, where it has one.
    pub max_lengths: Vec<Option<usize>>,
    /// Each model's most vectors per image, for models of multi-vector images.
    pub image_vectors: Vec<Option<usize>>,
    pub batcher: Batcher,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    pub security: Security,
    pub permits: Arc<Semaphore>,
    pub next_id: AtomicU64,
}

/// A router over `models`, and a watch that turns `Some` if inference panics (the
/// server should then stop and exit non-zero).
pub fn router(
    models: Models,
    config: &Config,
) -> Result<(Router, tokio::sync::watch::Receiver<Option<String>>)> {
    let max_lengths = models
        .iter()
        .map(Served::max_length)
        .collect::<embedkit::Result<Vec<_>>>()?;
    let image_vectors = models
        .iter()
        .map(Served::image_vectors_at_most)
        .collect::<embedkit::Result<Vec<_>>>()?;
    let metrics = Arc::new(Metrics::new()?);
    let models = Arc::new(models);
    let batcher = Batcher::start(models.clone(), config.policy.clone(), metrics.clone())?;
    let fatal = batcher.fatal();
    let state = Arc::new(AppState {
        models,
        max_lengths,
        image_vectors,
        batcher,
        metrics,
        limits: config.limits,
        security: config.security.clone(),
        permits: Arc::new(Semaphore::new(config.limits.max_concurrent_requests.max(1))),
        next_id: AtomicU64::new(0),
    });
    let router = Router::new()
        .route("/v1/embeddings", post(routes::openai_embeddings))
        .route("/v1/models", get(status::models))
        .route("/v1/models/{*id}", get(status::model))
        .route("/embed", post(routes::embed))
        // TEI answers its model's task at the root; huggingface_hub's InferenceClient
        // posts feature extraction there.
        .route("/", post(compat::root))
        .route("/embed_sparse", post(routes::embed_sparse))
        .route("/embed_late", post(routes::embed_late))
        .route("/embed_hybrid", post(hybrid::embed_hybrid))
        .route("/similarity", post(compat::similarity))
        .route("/decode", post(compat::decode))
        .route("/embed_all", post(compat::embed_all))
        .route("/v1/rerank", post(compat::cohere_rerank))
        .route("/v2/rerank", post(compat::cohere_rerank))
        .route("/rerank", post(routes::rerank))
        .route("/tokenize", post(compat::tokenize))
        .route("/health", get(status::health))
        .route("/info", get(status::info))
        .route("/metrics", get(status::render_metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .fallback(status::not_found)
        .method_not_allowed_fallback(status::method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), guard::front))
        .with_state(state);
    Ok((router, fatal))
}

/// Runs a server on `addr` until SIGTERM or Ctrl-C (then finishes requests in flight,
/// within the shutdown deadline), or until inference panics (then an error, so the
/// process exits non-zero and an orchestrator restarts it).
pub fn run(addr: SocketAddr, models: Models, mut config: Config) -> Result<()> {
    if addr.ip().is_loopback() {
        config.security.loopback_only = true;
    }
    // Blocking threads tokenize: more than the cores only adds malloc arenas (memory)
    // and contention with inference.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(cores)
        .build()
        .map_err(|source| ServerError::Start {
            what: "async runtime",
            source,
        })?;
    let result = runtime.block_on(async move {
        let (app, mut fatal) = router(models, &config)?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Listen { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| ServerError::Listen { addr, source })?;
        tracing::info!(%local, "listening");
        if config.security.api_key.is_none() && !addr.ip().is_loopback() {
            tracing::warn!(
                %local,
                "no --api-key: anyone who can reach this port can use the server"
            );
        }
        eprintln!("embedkit serving on http://{local}");
        let mut watch = fatal.clone();
        let stop = async move {
            tokio::select! {
                _ = shutdown_signal() => {},
                _ = watch.wait_for(Option::is_some) => {},
            }
        };
        serve(listener, app, config.transport, stop).await?;
        let panicked = fatal.borrow_and_update().clone();
        match panicked {
            Some(message) => Err(ServerError::InferencePanicked(message)),
            None => Ok(()),
        }
    });
    // Connections still open after the deadline and blocking tasks are not waited for.
    runtime.shutdown_background();
    result
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
