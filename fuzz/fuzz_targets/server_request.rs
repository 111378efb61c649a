//! Arbitrary request bodies on every route of the HTTP server (seeded dense, sparse and
//! rerank models behind it): never a panic or a 500, and every error is a JSON body that
//! says what was wrong.
#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use embedkit::{SparseTextEmbedding, TextCrossEncoder, TextEmbedding};
use embedkit_fuzz::test_model;
use embedkit_server::{router, BatchPolicy, Limits, Models};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const ROUTES: [&str; 8] = [
    "/v1/embeddings",
    "/embed",
    "/embed_sparse",
    "/rerank",
    "/tokenize",
    "/health",
    "/info",
    "/metrics",
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
    let models = Models {
        dense,
        sparse: Some(sparse),
        rerank: Some(rerank),
    };
    let limits = Limits {
        max_inputs: 64,
        max_input_chars: 2_000,
        ..Limits::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let app = {
        let _guard = runtime.enter();
        router(models, limits, BatchPolicy::default()).expect("router")
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
    // axum's own rejections (405, 415) have plain-text bodies; ours are JSON.
    if status.is_client_error()
        && status != StatusCode::METHOD_NOT_ALLOWED
        && status != StatusCode::UNSUPPORTED_MEDIA_TYPE
    {
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
