//! The route handlers: typed bodies in, typed answers out, work through the batcher.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use embedkit::postprocess::TypedVector;
use embedkit::{CallOptions, Capability, Operations, Purpose, TruncationSide};
use tokio::sync::oneshot;

use crate::api::*;
use crate::batcher::{Inputs, Job, Output, Refused, Work};
use crate::inputs::*;
use crate::AppState;

pub(crate) type Answer<T> = Result<T, ApiError>;

/// What a dense route serves, in the order its default model is looked for: images by
/// data URI go to the first model that embeds images, text to the first that embeds text.
fn dense_wanted(images: bool) -> &'static [Capability] {
    use Capability as C;
    if images {
        &[C::DenseImage, C::DenseText, C::DenseTokenIds]
    } else {
        &[C::DenseText, C::DenseTokenIds, C::DenseImage]
    }
}

/// Fails unless the picked model offers `c` for what the request gave (`given`).
pub(crate) fn require(state: &AppState, model: usize, c: Capability, given: &str) -> Answer<()> {
    let served = state.models.get(model);
    if served.model.can(c) {
        return Ok(());
    }
    Err(ApiError::validation(format!(
        "model {} does not take {given} (it offers {})",
        served.name,
        crate::models::offers(&served.model)
    )))
}

/// Queues a job and waits for its answer until the request's deadline.
pub(crate) async fn run(
    state: &AppState,
    model: usize,
    work: Work,
    field: &str,
    longest: usize,
    deadline: Deadline,
) -> Answer<Output> {
    let (reply, answer) = oneshot::channel();
    let n = work.len();
    state
        .batcher
        .submit(Job {
            model,
            work,
            longest,
            queued: std::time::Instant::now(),
            reply,
        })
        .map_err(|refused| match refused {
            Refused::Full => ApiError::overloaded("the inference queue is full; retry shortly"),
            Refused::Stopped => {
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unhealthy",
                    "the inference thread has stopped",
                );
                e.retry_after = true;
                e
            }
        })?;
    // Dropping `answer` on timeout tells the batcher the job is no longer wanted.
    match tokio::time::timeout_at(deadline.0.into(), answer).await {
        Ok(Ok(answered)) => {
            crate::timing::record(&answered);
            let output = answered.result.map_err(|e| input_error(e, field))?;
            state.metrics.texts.inc_by(n as u64);
            Ok(output)
        }
        Ok(Err(_)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unhealthy",
            "the inference thread stopped before answering",
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "inference did not finish within the request timeout",
        )),
    }
}

/// A library error as an answer, by its kind: the client's input (422) or ours (500).
/// The one place library errors become statuses.
pub(crate) fn library_error(e: embedkit::Error) -> ApiError {
    use embedkit::ErrorKind as K;
    match e.kind() {
        K::InvalidInput | K::Unsupported => ApiError::validation(e.to_string()),
        _ => ApiError::backend(e.to_string()),
    }
}

/// A library error about one input of the request, named by the request's field and
/// index (a failed shared batch is retried per request, so the index is the request's);
/// its status is still the kind's ([`library_error`]).
fn input_error(e: embedkit::Error, field: &str) -> ApiError {
    let named = match (&e, e.input_index()) {
        (embedkit::Error::Image { reason, .. }, Some(i)) => {
            Some(format!("{field}[{i}]: cannot decode the image: {reason}"))
        }
        _ => None,
    };
    let mut answer = library_error(e);
    if let Some(message) = named {
        answer.message = message;
    }
    answer
}

pub(crate) fn unexpected() -> ApiError {
    ApiError::backend("the model answered with an unexpected output")
}

/// Runs `f` on the blocking pool (tokenizing is CPU work), within the deadline.
pub(crate) async fn blocking<T: Send + 'static>(
    deadline: Deadline,
    f: impl FnOnce() -> embedkit::Result<T> + Send + 'static,
) -> Answer<T> {
    match tokio::time::timeout_at(deadline.0.into(), tokio::task::spawn_blocking(f)).await {
        Ok(Ok(r)) => r.map_err(library_error),
        Ok(Err(e)) => Err(ApiError::backend(format!("tokenizing failed: {e}"))),
        Err(_) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "tokenizing did not finish within the request timeout",
        )),
    }
}

/// The request's `dimensions`, checked before any work: shorter only for Matryoshka
/// models.
pub(crate) fn dimensions_of(
    state: &AppState,
    model: usize,
    requested: Option<u64>,
) -> Answer<Option<usize>> {
    let Some(d) = requested else { return Ok(None) };
    let d = usize::try_from(d).unwrap_or(usize::MAX);
    state
        .models
        .get(model)
        .model
        .check_dimensions(Some(d))
        .map_err(library_error)?;
    Ok(Some(d))
}

/// The call's post-processing of dense vectors, by the library.
fn finish(
    state: &AppState,
    model: usize,
    vectors: Vec<Vec<f32>>,
    o: &CallOptions,
) -> Answer<Vec<Vec<f32>>> {
    state
        .models
        .get(model)
        .model
        .finish_dense(vectors, o)
        .map_err(library_error)
}

/// Dense vectors of texts or images for `/embed` and `/v1/embeddings`, and the tokens
/// counted (once, after truncation).
pub(crate) async fn dense(
    state: &Arc<AppState>,
    model: usize,
    input: OpenAiInput,
    field: &str,
    truncation: Option<TruncationSide>,
    deadline: Deadline,
) -> Answer<(Vec<Vec<f32>>, usize)> {
    let m = &state.models.get(model).model;
    let (work, tokens, longest) = match input {
        OpenAiInput::Texts(texts) if m.can(Capability::DenseText) => {
            check_texts(&texts, field, state)?;
            let longest = token_bound(state, model, texts.iter().map(|t| t.chars().count()));
            // Counted where tokenized, on the inference thread.
            let work = Work::new(Capability::DenseText, Inputs::Texts(texts)).cut_at(truncation);
            (work, 0, longest)
        }
        OpenAiInput::Texts(items) => {
            require(state, model, Capability::DenseImage, "texts")?;
            check_images(&items, field, state)?;
            let images = image_bytes(&items, field)?;
            (
                Work::new(Capability::DenseImage, Inputs::images(images)),
                0,
                1,
            )
        }
        OpenAiInput::Ids(ids) => {
            require(state, model, Capability::DenseTokenIds, "token ids")?;
            if ids.len() > state.limits.max_inputs {
                return Err(ApiError::validation(format!(
                    "{} inputs is more than the limit of {} per request (max_inputs)",
                    ids.len(),
                    state.limits.max_inputs
                )));
            }
            if let Some(i) = ids.iter().position(Vec::is_empty) {
                return Err(ApiError::validation(format!(
                    "input[{i}] is an empty token array"
                )));
            }
            m.check_token_ids(&ids)
                .map_err(|e| ApiError::validation(e.to_string()))?;
            let cap = state.max_lengths[model].unwrap_or(usize::MAX);
            let tokens = ids.iter().map(|s| s.len().min(cap)).sum();
            let longest = ids.iter().map(|s| s.len().min(cap)).max().unwrap_or(0);
            (
                Work::new(Capability::DenseTokenIds, Inputs::Ids(ids)),
                tokens,
                longest,
            )
        }
    };
    let (vectors, tokens) = match run(state, model, work, field, longest, deadline).await? {
        Output::Dense(v) => (v, tokens),
        Output::DenseCounted(v, counts) => (v, counts.iter().sum()),
        _ => return Err(unexpected()),
    };
    state.metrics.tokens.inc_by(tokens as u64);
    Ok((vectors, tokens))
}

#[utoipa::path(post, path = "/v1/embeddings", tag = "openai", request_body = OpenAiEmbeddingRequest,
    responses((status = 200, body = OpenAiEmbeddingResponse), (status = 422, body = OpenAiErrorResponse)))]
pub(crate) async fn openai_embeddings(
    State(state): State<Arc<AppState>>,
    axum::Extension(deadline): axum::Extension<Deadline>,
    JsonBody(req): JsonBody<OpenAiEmbeddingRequest>,
) -> Response {
    let answer = async {
        let model = state.models.pick(
            req.model.as_deref(),
            dense_wanted(matches!(&req.input, OpenAiInput::Texts(t) if all_images(t))),
            "/v1/embeddings",
        )?;
        let dims = dimensions_of(&state, model, req.dimensions)?;
        let base64 = req.encoding_format == Some(EncodingFormat::Base64);
        let mut input = req.input;
        if let OpenAiInput::Texts(texts) = &mut input {
            if !all_images(texts) {
                put_prompt(&state, model, texts, None)?;
            }
        }
        let (vectors, tokens) = dense(&state, model, input, "input", None, deadline).await?;
        let vectors = finish(&state, model, vectors, &CallOptions::new().dimensions(dims))?;
        let dtype = req.output_dtype.unwrap_or_default();
        let data = vectors
            .into_iter()
            .enumerate()
            .map(|(index, v)| {
                let v = dtype.apply(v);
                let embedding = if base64 {
                    let bytes = v.to_bytes();
                    EmbeddingValue::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
                } else {
                    EmbeddingValue::Numbers(v)
                };
                OpenAiEmbedding {
                    object: "embedding",
                    index,
                    embedding,
                }
            })
            .collect();
        Ok::<_, ApiError>(OpenAiEmbeddingResponse {
            object: "list",
            data,
            model: state.models.get(model).name.clone(),
            usage: Usage {
                prompt_tokens: tokens,
                total_tokens: tokens,
            },
        })
    };
    match answer.await {
        Ok(body) => Json(body).into_response(),
        Err(e) => e.shaped_for("/v1/").into_response(),
    }
}

#[utoipa::path(post, path = "/embed", tag = "tei", request_body = EmbedRequest,
    responses((status = 200, body = Vec<Vec<f32>>), (status = 422, body = ErrorResponse)))]
pub(crate) async fn embed(
    State(state): State<Arc<AppState>>,
    axum::Extension(deadline): axum::Extension<Deadline>,
    JsonBody(req): JsonBody<EmbedRequest>,
) -> Answer<Json<Vec<TypedVector>>> {
    let model = state.models.pick(
        req.model.as_deref(),
        dense_wanted(all_images(&req.inputs.0)),
        "/embed",
    )?;
    let dims = dimensions_of(&state, model, req.dimensions)?;
    let normalize = req.normalize.unwrap_or(true);
    let mut req = req;
    let mut truncation = None;
    if all_images(&req.inputs.0) {
        if req.prompt_name.is_some() {
            return Err(ApiError::validation(
                "`prompt_name` is for texts, not images",
            ));
        }
    } else {
        let tei = req.tei();
        truncation = ready_texts(&state, model, &mut req.inputs.0, &tei, deadline)
            .await?
            .truncation;
    }
    let (vectors, _) = dense(
        &state,
        model,
        OpenAiInput::Texts(req.inputs.0),
        "inputs",
        truncation,
        deadline,
    )
    .await?;
    let o = CallOptions::new().dimensions(dims).normalize(normalize);
    let dtype = req.output_dtype.unwrap_or_default();
    let vectors = finish(&state, model, vectors, &o)?;
    Ok(Json(vectors.into_iter().map(|v| dtype.apply(v)).collect()))
}

#[utoipa::path(post, path = "/embed_sparse", tag = "tei", request_body = SparseRequest,
    responses((status = 200, body = Vec<Vec<SparseValue>>), (status = 422, body = ErrorResponse)))]
pub(crate) async fn embed_sparse(
    State(state): State<Arc<AppState>>,
    axum::Extension(deadline): axum::Extension<Deadline>,
    JsonBody(req): JsonBody<SparseRequest>,
) -> Answer<Json<Vec<Vec<SparseValue>>>> {
    let model = state.models.pick(
        req.model.as_deref(),
        &[Capability::SparseText],
        "/embed_sparse",
    )?;
    let tei = req.tei();
    let mut texts = req.inputs.0;
    let ready = ready_texts(&state, model, &mut texts, &tei, deadline).await?;
    let work = Work::new(Capability::SparseText, Inputs::Texts(texts)).cut_at(ready.truncation);
    let Output::Sparse(vectors) =
        run(&state, model, work, "inputs", ready.longest, deadline).await?
    else {
        return Err(unexpected());
    };
    Ok(Json(
        vectors
            .into_iter()
            .map(|v| {
                v.indices
                    .iter()
                    .zip(&v.values)
                    .map(|(&index, &value)| SparseValue { index, value })
                    .collect()
            })
            .collect(),
    ))
}

#[utoipa::path(post, path = "/embed_late", tag = "embedkit", request_body = LateRequest,
    responses((status = 200, description = "one [tokens][dim] matrix per input", body = Vec<Vec<Vec<f32>>>),
        (status = 422, body = ErrorResponse)))]
pub(crate) async fn embed_late(
    State(state): State<Arc<AppState>>,
    axum::Extension(deadline): axum::Extension<Deadline>,
    JsonBody(req): JsonBody<LateRequest>,
) -> Answer<Json<Vec<Vec<Vec<f32>>>>> {
    use Capability as C;
    // Images go to the first model that embeds images unless one is named.
    let wanted: &[Capability] = if req.images.is_some() {
        &[C::MultiVectorImage, C::MultiVectorText]
    } else {
        &[C::MultiVectorText, C::MultiVectorImage]
    };
    let model = state
        .models
        .pick(req.model.as_deref(), wanted, "/embed_late")?;
    let field = if req.images.is_some() {
        "images"
    } else {
        "inputs"
    };
    let tei = req.tei();
    let (work, longest) = match (req.inputs, req.images) {
        (Some(_), Some(_)) => {
            return Err(ApiError::validation(
                "give `inputs` (texts) or `images`, not both",
            ))
        }
        (None, None) => return Err(ApiError::validation("`inputs` is missing")),
        (Some(mut texts), None) => {
            require(&state, model, C::MultiVectorText, "texts on /embed_late")?;
            let ready = ready_texts(&state, model, &mut texts.0, &tei, deadline).await?;
            refuse_large_answer(&state, model, &texts.0, deadline).await?;
            let mut work =
                Work::new(C::MultiVectorText, Inputs::Texts(texts.0)).cut_at(ready.truncation);
            if req.is_query {
                work.purpose = Purpose::Query;
            }
            (work, ready.longest)
        }
        (None, Some(images)) => {
            require(
                &state,
                model,
                C::MultiVectorImage,
                "`images` on /embed_late",
            )?;
            if req.prompt_name.is_some() {
                return Err(ApiError::validation(
                    "`prompt_name` is for texts, not images",
                ));
            }
            check_images(&images.0, "images", &state)?;
            refuse_large_image_answer(&state, model, images.0.len())?;
            let bytes = image_bytes(&images.0, "images")?;
            (Work::new(C::MultiVectorImage, Inputs::images(bytes)), 0)
        }
    };
    let Output::Multi(matrices) = run(&state, model, work, field, longest, deadline).await? else {
        return Err(unexpected());
    };
    Ok(Json(
        matrices
            .into_iter()
            .map(|m| m.outer_iter().map(|row| row.to_vec()).collect())
            .collect(),
    ))
}

/// The model's score of each (query, text) pair, in text order (raw, as fastembed's).
pub(crate) async fn pair_scores(
    state: &Arc<AppState>,
    model: usize,
    (query, texts): (&str, &[String]),
    field: &str,
    truncation: Option<TruncationSide>,
    deadline: Deadline,
) -> Answer<Vec<f32>> {
    check_texts(std::slice::from_ref(&query.to_string()), "query", state)?;
    check_texts(texts, field, state)?;
    let q = query.chars().count();
    let longest = token_bound(state, model, texts.iter().map(|t| q + t.chars().count())).min(512);
    let pairs: Vec<(String, String)> = texts
        .iter()
        .map(|t| (query.to_string(), t.clone()))
        .collect();
    let work = Work::new(Capability::PairScores, Inputs::Pairs(pairs)).cut_at(truncation);
    match run(state, model, work, field, longest, deadline).await? {
        Output::Scores(scores) => Ok(scores),
        _ => Err(unexpected()),
    }
}

#[utoipa::path(post, path = "/rerank", tag = "tei", request_body = RerankRequest,
    responses((status = 200, description = "best first", body = Vec<Rank>), (status = 422, body = ErrorResponse)))]
pub(crate) async fn rerank(
    State(state): State<Arc<AppState>>,
    axum::Extension(deadline): axum::Extension<Deadline>,
    JsonBody(req): JsonBody<RerankRequest>,
) -> Answer<Json<Vec<Rank>>> {
    let model = state
        .models
        .pick(req.model.as_deref(), &[Capability::PairScores], "/rerank")?;
    let truncation = truncation_side(req.truncation_direction.as_deref())?;
    let texts = req.texts.0;
    let scores = pair_scores(
        &state,
        model,
        (&req.query, &texts),
        "texts",
        truncation,
        deadline,
    )
    .await?;
    // TEI answers best first.
    let ranked = embedkit::rerank::top_k(&scores, scores.len());
    let mut texts: Vec<Option<String>> = texts.into_iter().map(Some).collect();
    Ok(Json(
        ranked
            .into_iter()
            .map(|r| Rank {
                index: r.index,
                score: r.score,
                text: if req.return_text {
                    texts.get_mut(r.index).and_then(Option::take)
                } else {
                    None
                },
            })
            .collect(),
    ))
}
