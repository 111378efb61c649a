//! The OpenAPI document of the routes, at `GET /openapi.json`: generated from the
//! request and response types and the handlers' annotations, so it cannot drift.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::*;
use crate::{routes, status};

#[derive(OpenApi)]
#[openapi(
    info(title = "embedkit", description = "Embeddings, sparse vectors, late-interaction token vectors and reranking over OpenAI's and text-embeddings-inference's routes."),
    paths(
        routes::openai_embeddings,
        status::models,
        status::model,
        routes::embed,
        routes::embed_sparse,
        routes::embed_late,
        crate::hybrid::embed_hybrid,
        crate::compat::similarity,
        crate::compat::decode,
        crate::compat::embed_all,
        crate::compat::cohere_rerank,
        routes::rerank,
        crate::compat::tokenize,
        status::health,
        status::info,
        status::render_metrics,
        openapi_json,
    ),
    components(schemas(ErrorResponse, OpenAiErrorResponse, Strings, OpenAiInput, EncodingFormat)),
    modifiers(&BearerKey),
    security(("api_key" = []))
)]
pub(crate) struct Doc;

/// `--api-key`: `Authorization: Bearer KEY` on every route but `/health`.
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "embedkit", responses((status = 200, description = "OpenAPI 3.1")))]
pub(crate) async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    let mut doc = Doc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    axum::Json(doc)
}
