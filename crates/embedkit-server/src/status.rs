//! What the server says about itself: health, the served models, limits, metrics, and
//! the JSON answers for unknown paths and methods.

use embedkit::Operations;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use embedkit::Capability;

use crate::api::*;
use crate::AppState;

#[utoipa::path(get, path = "/health", tag = "tei", security(()),
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub(crate) async fn health(State(state): State<Arc<AppState>>) -> Response {
    if state.batcher.is_alive() {
        (
            StatusCode::OK,
            Json(Health {
                status: "ok",
                error: None,
            }),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "unhealthy",
                error: Some("the inference thread has stopped".into()),
            }),
        )
            .into_response()
    }
}

#[utoipa::path(get, path = "/v1/models", tag = "openai", responses((status = 200, body = ModelList)))]
pub(crate) async fn models(State(state): State<Arc<AppState>>) -> Json<ModelList> {
    Json(ModelList {
        object: "list",
        data: state.models.iter().map(|m| m.card()).collect(),
    })
}

#[utoipa::path(get, path = "/v1/models/{id}", tag = "openai", params(("id" = String, Path, description = "a served model's name")),
    responses((status = 200, body = ModelCard), (status = 404, body = OpenAiErrorResponse)))]
pub(crate) async fn model(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    match state.models.pick(Some(&id), &Capability::ALL, "/v1/models") {
        Ok(i) => Json(state.models.get(i).card()).into_response(),
        Err(e) => e.shaped_for("/v1/").into_response(),
    }
}

#[utoipa::path(get, path = "/info", tag = "tei", responses((status = 200, body = Info)))]
pub(crate) async fn info(State(state): State<Arc<AppState>>) -> Json<Info> {
    let cards: Vec<ModelCard> = state.models.iter().map(|m| m.card()).collect();
    let first = state.models.get(0);
    Json(Info {
        model_id: first.name.clone(),
        model_dim: first.dim(),
        model_type: if first.model.can(Capability::PairScores) {
            "reranker"
        } else {
            "embedding"
        },
        max_input_length: state.max_lengths[0].unwrap_or(0),
        max_client_batch_size: state.limits.max_inputs,
        max_input_chars: state.limits.max_input_chars,
        max_body_bytes: state.limits.max_body_bytes,
        max_concurrent_requests: state.limits.max_concurrent_requests,
        max_output_numbers: state.limits.max_output_numbers,
        auth: state.security.api_key.is_some(),
        models: cards,
        version: env!("CARGO_PKG_VERSION"),
    })
}

#[utoipa::path(get, path = "/metrics", tag = "embedkit", responses((status = 200, description = "Prometheus text format", body = String)))]
pub(crate) async fn render_metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// 404 for a path no route has, as JSON.
pub(crate) async fn not_found(uri: axum::http::Uri) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route {}; see /openapi.json", uri.path()),
    )
    .shaped_for(uri.path())
    .into_response()
}

/// 405 for a route asked with the wrong method, as JSON.
pub(crate) async fn method_not_allowed(
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not take {method}; see /openapi.json", uri.path()),
    )
    .shaped_for(uri.path())
    .into_response()
}
