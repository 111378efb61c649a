//! Routes other servers' clients call: TEI's `/similarity`, `/tokenize`, `/decode` and
//! `/embed_all`, and the Cohere- and Jina-shaped `/v1/rerank`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use embedkit::postprocess::cosine;
use embedkit::Capability;

use crate::api::*;
use crate::batcher::{Inputs, Output, Work};
use crate::inputs::{check_texts, put_prompt, ready_texts, refuse_large_answer, truncation_side};
use crate::routes::{blocking, dense, pair_scores, run, unexpected, Answer};
use crate::AppState;

/// `POST /`, where TEI's clients post (huggingface_hub's `InferenceClient` given the
/// server's URL): sentence similarity when `inputs` is `{source_sentence, sentences}`,
/// else `/embed` — one server answers both, where TEI needs `TASK` set at start.
pub(crate) async fn root(
    state: State<Arc<AppState>>,
    deadline: axum::Extension<Deadline>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> Answer<axum::response::Response> {
    use axum::response::IntoResponse;
    let shape = |e: serde_json::Error| ApiError::validation(format!("invalid request: {e}"));
    if body["inputs"].is_object() {
        let req = serde_json::from_value(body).map_err(shape)?;
        Ok(similarity(state, deadline, JsonBody(req))
            .await?
            .into_response())
    } else {
        let req = serde_json::from_value(body).map_err(shape)?;
        Ok(crate::routes::embed(state, deadline, JsonBody(req))
            .await?
            .into_response())
    }
}

#[utoipa::path(post, path = "/similarity", tag = "tei", request_body = SimilarityRequest,
    responses((status = 200, description = "cosine similarity of the source to each sentence", body = Vec<f32>),
        (status = 422, body = ErrorResponse)))]
pub(crate) async fn similarity(
    State(state): State<Arc<AppState>>,
    axum::Extension(deadline): axum::Extension<Deadline>,
    JsonBody(req): JsonBody<SimilarityRequest>,
) -> Answer<Json<Vec<f32>>> {
    let params = req.parameters.unwrap_or_default();
    if req.inputs.sentences.is_empty() {
        return Err(ApiError::validation("`inputs.sentences` is empty"));
    }
    let model = state.models.pick(
        req.model.as_deref(),
        &[Capability::DenseText],
        "/similarity",
    )?;
    let mut texts = Vec::with_capacity(req.inputs.sentences.len() + 1);
    texts.push(req.inputs.source_sentence);
    texts.extend(req.inputs.sentences);
    let ready = ready_texts(&state, model, &mut texts, &params.tei(), deadline).await?;
    let (vectors, _) = dense(
        &state,
        model,
        OpenAiInput::Texts(texts),
        "inputs",
        ready.truncation,
        deadline,
    )
    .await?;
    let (source, others) = vectors
        .split_first()
        .ok_or_else(|| ApiError::backend("no vectors"))?;
    Ok(Json(others.iter().map(|v| cosine(source, v)).collect()))
}

#[utoipa::path(post, path = "/decode", tag = "tei", request_body = DecodeRequest,
    responses((status = 200, description = "the text of each sequence", body = Vec<String>),
        (status = 422, body = ErrorResponse)))]
pub(crate) async fn decode(
    State(state): State<Arc<AppState>>,
    axum::Extension(deadline): axum::Extension<Deadline>,
    JsonBody(req): JsonBody<DecodeRequest>,
) -> Answer<Json<Vec<String>>> {
    let model = state
        .models
        .pick(req.model.as_deref(), &[Capability::Tokens], "/decode")?;
    let ids = req.ids.into_batch();
    if ids.is_empty() {
        return Err(ApiError::validation("`ids` is empty"));
    }
    if ids.len() > state.limits.max_inputs {
        return Err(ApiError::validation(format!(
            "{} sequences is more than the limit of {} per request (max_inputs)",
            ids.len(),
            state.limits.max_inputs
        )));
    }
    let m = state.models.get(model).model.clone();
    let skip = req.skip_special_tokens;
    let texts = blocking(deadline, move || m.decode(&ids, skip)).await?;
    Ok(Json(texts))
}

#[utoipa::path(post, path = "/v1/rerank", tag = "cohere", request_body = CohereRerankRequest,
    responses((status = 200, description = "best first", body = CohereRerankResponse),
        (status = 422, body = ErrorResponse)))]
pub(crate) async fn cohere_rerank(
    State(state): State<Arc<AppState>>,
    axum::Extension(deadline): axum::Extension<Deadline>,
    JsonBody(req): JsonBody<CohereRerankRequest>,
) -> Answer<Json<CohereRerankResponse>> {
    static IDS: AtomicU64 = AtomicU64::new(0);
    if req.top_n == Some(0) {
        return Err(ApiError::validation("top_n must be at least 1"));
    }
    let model = state.models.pick(
        req.model.as_deref(),
        &[Capability::PairScores],
        "/v1/rerank",
    )?;
    let texts: Vec<String> = req
        .documents
        .into_iter()
        .map(RerankDocument::into_text)
        .collect();
    let scores = pair_scores(
        &state,
        model,
        (&req.query, &texts),
        "documents",
        None,
        deadline,
    )
    .await?;
    let n = req.top_n.unwrap_or(texts.len());
    let mut texts: Vec<Option<String>> = texts.into_iter().map(Some).collect();
    let results = embedkit::rerank::top_k(&scores, n)
        .into_iter()
        .map(|r| CohereRerankResult {
            index: r.index,
            relevance_score: sigmoid(r.score),
            document: if req.return_documents {
                texts
                    .get_mut(r.index)
                    .and_then(Option::take)
                    .map(|text| DocumentText { text })
            } else {
                None
            },
        })
        .collect();
    Ok(Json(CohereRerankResponse {
        id: format!("rerank-{}", IDS.fetch_add(1, Ordering::Relaxed)),
        model: state.models.get(model).name.clone(),
        results,
    }))
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_and_sigmoid() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]) - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(10.0) > 0.9999 && sigmoid(-10.0) < 1e-4);
    }
}

#[utoipa::path(post, path = "/embed_all", tag = "tei", request_body = EmbedAllRequest,
    responses((status = 200, description = "per input, one vector per token", body = Vec<Vec<Vec<f32>>>),
        (status = 422, body = ErrorResponse)))]
pub(crate) async fn embed_all(
    State(state): State<Arc<AppState>>,
    axum::Extension(deadline): axum::Extension<Deadline>,
    JsonBody(req): JsonBody<EmbedAllRequest>,
) -> Answer<Json<Vec<Vec<Vec<f32>>>>> {
    let model = state.models.pick(
        req.model.as_deref(),
        &[Capability::TokenVectors],
        "/embed_all",
    )?;
    let tei = req.tei();
    let mut texts = req.inputs.0;
    let ready = ready_texts(&state, model, &mut texts, &tei, deadline).await?;
    refuse_large_answer(&state, model, &texts, deadline).await?;
    let work = Work::new(Capability::TokenVectors, Inputs::Texts(texts)).cut_at(ready.truncation);
    let Output::Multi(matrices) =
        run(&state, model, work, "inputs", ready.longest, deadline).await?
    else {
        return Err(unexpected());
    };
    Ok(Json(
        matrices
            .into_iter()
            .map(|m| m.outer_iter().map(|row| row.to_vec()).collect())
            .collect(),
    ))
}

/// What a token of `/tokenize`'s answer counts against `max_output_numbers`: its id,
/// start, stop and special flag.
const TOKEN_NUMBERS: usize = 4;

#[utoipa::path(post, path = "/tokenize", tag = "tei", request_body = TokenizeRequest,
    responses((status = 200, body = Vec<Vec<SimpleToken>>), (status = 422, body = ErrorResponse)))]
pub(crate) async fn tokenize(
    State(state): State<Arc<AppState>>,
    axum::Extension(deadline): axum::Extension<Deadline>,
    JsonBody(req): JsonBody<TokenizeRequest>,
) -> Answer<Json<Vec<Vec<SimpleToken>>>> {
    let model = state
        .models
        .pick(req.model.as_deref(), &[Capability::Tokens], "/tokenize")?;
    let mut texts = req.inputs.0;
    // Nothing is truncated here (as TEI): either direction gives the same tokens.
    truncation_side(req.truncation_direction.as_deref())?;
    put_prompt(&state, model, &mut texts, req.prompt_name.as_deref())?;
    check_texts(&texts, "inputs", &state)?;
    let limit = state.limits.max_output_numbers;
    let worker = state.clone();
    let add_special = req.add_special_tokens;
    let tokens = blocking(deadline, move || {
        worker
            .models
            .get(model)
            .model
            .token_spans(&texts, add_special)
    })
    .await?;
    // Nothing is cut here, so the answer grows with the text (each token is a JSON object
    // of ~60 bytes): bounded as the vector routes' answers are, before it is built.
    let count = tokens
        .iter()
        .map(Vec::len)
        .fold(0usize, usize::saturating_add);
    if count.saturating_mul(TOKEN_NUMBERS) > limit {
        return Err(ApiError::too_large(format!(
            "the answer would hold {count} tokens ({TOKEN_NUMBERS} numbers each), more than \
             the limit of {limit} numbers per request (max_output_numbers): send fewer or \
             shorter texts"
        )));
    }
    Ok(Json(
        tokens
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|t| SimpleToken {
                        id: t.id,
                        text: t.text,
                        special: t.special,
                        start: t.start,
                        stop: t.stop,
                    })
                    .collect()
            })
            .collect(),
    ))
}
