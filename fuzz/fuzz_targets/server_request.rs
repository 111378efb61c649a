//! Arbitrary request bodies on every route of the HTTP server (seeded dense, sparse,
//! late-interaction and rerank models behind it): never a panic or a 500, and every error
//! is a JSON body that says what was wrong.
#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use embedkit::{
    LateInteractionTextEmbedding, SparseTextEmbedding, TextCrossEncoder, TextEmbedding,
};
use embedkit_fuzz::test_model;
use embedkit_server::{router, Config, Limits, Models, Served};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const ROUTES: [&str; 12] = [
    "/v1/embeddings",
    "/embed",
    "/embed_sparse",
    "/embed_late",
    "/rerank",
    "/tokenize",
    "/health",
    "/info",
    "/metrics",
    "/v1/models",
    "/openapi.json",
    "/nothing",
];

struct Server {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
}

static SERVER: LazyLock<Server> = LazyLock::new(|| {
    let dense = TextEmbedding::builder("BAAI/bge-small-en-v1.5")
        .specific_model_path(test_model("cls-384"))
        .threads(1)
        .parallel(1)
        .build()
        .expect("dense model");
    let sparse = SparseTextEmbedding::builder("Qdrant/bm25")
        .specific_model_path(test_model("bm25"))
        .build()
        .expect("sparse model");
    let rerank = TextCrossEncoder::builder("Xenova/ms-marco-MiniLM-L-6-v2")
        .specific_model_path(test_model("rerank-bert"))
        .threads(1)
        .build()
        .expect("reranker");
    let late = LateInteractionTextEmbedding::builder("colbert-ir/colbertv2.0")
        .specific_model_path(test_model("colbert-128"))
        .threads(1)
        .build()
        .expect("late-interaction model");
    let models = Models::new(vec![
        Served::new(dense),
        Served::new(sparse),
        Served::new(late),
        Served::new(rerank),
    ])
    .expect("models");
    let config = Config {
        limits: Limits {
            max_inputs: 64,
            max_input_chars: 2_000,
            ..Limits::default()
        },
        ..Config::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let app = {
        let _guard = runtime.enter();
        router(models, &config).expect("router").0
    };
    Server { runtime, app }
});

#[derive(Arbitrary, Debug)]
struct Input {
    route: u8,
    get: bool,
    json_content_type: bool,
    body: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let server = &*SERVER;
    let route = ROUTES[usize::from(input.route) % ROUTES.len()];
    let method = if input.get { Method::GET } else { Method::POST };
    let mut request = Request::builder().method(method).uri(route);
    if input.json_content_type {
        request = request.header("content-type", "application/json");
    }
    let request = request.body(Body::from(input.body)).expect("request");
    let (status, body) = server.runtime.block_on(async {
        let response = server
            .app
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, body)
    });
    assert_ne!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "500 on {route}: {}",
        String::from_utf8_lossy(&body)
    );
    // Every refusal, 404, 405 and 415 included, is JSON.
    if status.is_client_error() {
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "{status} on {route} is not JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        });
        assert!(
            value.get("error").is_some(),
            "{status} without an error: {value}"
        );
    }
});
