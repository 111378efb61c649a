//! `POST /embed_hybrid`: a text's dense vector, sparse vector and token vectors from one
//! pass of a model that computes them together (BGE-M3) — what a hybrid Qdrant collection
//! stores, in one request instead of three.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use embedkit::{CallOptions, Capability, Operations, Purpose};

use crate::api::*;
use crate::batcher::{Inputs, Op, Output, Work};
use crate::inputs::{ready_texts, refuse_large_answer};
use crate::routes::{dimensions_of, library_error, run, unexpected, Answer};
use crate::AppState;

#[utoipa::path(post, path = "/embed_hybrid", tag = "embedkit", request_body = HybridRequest,
    responses((status = 200, description = "the outputs asked for, per input", body = Vec<HybridEmbedding>),
        (status = 422, body = ErrorResponse)))]
pub(crate) async fn embed_hybrid(
    State(state): State<Arc<AppState>>,
    axum::Extension(deadline): axum::Extension<Deadline>,
    JsonBody(req): JsonBody<HybridRequest>,
) -> Answer<Json<Vec<HybridEmbedding>>> {
    use Capability as C;
    let tei = req.tei();
    let parts = req
        .outputs
        .unwrap_or_else(|| vec![HybridPart::Dense, HybridPart::Sparse, HybridPart::Multi]);
    if parts.is_empty() {
        return Err(ApiError::validation(
            "`outputs` is empty; ask for dense, sparse or multi",
        ));
    }
    let mut wanted: Vec<Capability> = Vec::new();
    for p in parts {
        let c = match p {
            HybridPart::Dense => C::DenseText,
            HybridPart::Sparse => C::SparseText,
            HybridPart::Multi => C::MultiVectorText,
        };
        if !wanted.contains(&c) {
            wanted.push(c);
        }
    }
    let model = state
        .models
        .pick_offering(req.model.as_deref(), &wanted, "/embed_hybrid")?;
    let dims = if wanted.contains(&C::DenseText) {
        dimensions_of(&state, model, req.dimensions)?
    } else if req.dimensions.is_some() {
        return Err(ApiError::validation(
            "`dimensions` applies to dense vectors",
        ));
    } else {
        None
    };
    let mut texts = req.inputs.0;
    let ready = ready_texts(&state, model, &mut texts, &tei, deadline).await?;
    if wanted.contains(&C::MultiVectorText) {
        refuse_large_answer(&state, model, &texts, deadline).await?;
    }
    let mut work = Work::new(Op::Outputs(wanted), Inputs::Texts(texts)).cut_at(ready.truncation);
    if req.is_query {
        work.purpose = Purpose::Query;
    }
    let Output::Texts(outputs) =
        run(&state, model, work, "inputs", ready.longest, deadline).await?
    else {
        return Err(unexpected());
    };
    let o = CallOptions::new()
        .dimensions(dims)
        .normalize(req.normalize.unwrap_or(true));
    let served = &state.models.get(model).model;
    let mut answer = Vec::with_capacity(outputs.len());
    for one in outputs {
        let dense = match one.dense {
            Some(v) => served
                .finish_dense(vec![v], &o)
                .map_err(library_error)?
                .pop(),
            None => None,
        };
        answer.push(HybridEmbedding {
            dense,
            sparse: one.sparse.map(|v| {
                v.indices
                    .iter()
                    .zip(&v.values)
                    .map(|(&index, &value)| SparseValue { index, value })
                    .collect()
            }),
            multi: one
                .multi
                .map(|m| m.outer_iter().map(|row| row.to_vec()).collect()),
        });
    }
    Ok(Json(answer))
}
