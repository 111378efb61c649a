//! The route handlers: typed bodies in, typed answers out, work through the batcher.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use embedkit::text::pooling::l2_normalize;
use embedkit::ModelKind;
use tokio::sync::oneshot;

use crate::api::*;
use crate::batcher::{Job, Output, Refused, Work};
use crate::models::Handle;
use crate::AppState;

type Answer<T> = Result<T, ApiError>;

/// Texts checked against the request limits.
fn check_texts(texts: &[String], field: &str, state: &AppState) -> Answer<()> {
    check_images(texts, field, state)?;
    let limits = &state.limits;
    for (i, t) in texts.iter().enumerate() {
        // Bytes bound characters from above: count only when it may matter.
        if t.len() > limits.max_input_chars && t.chars().count() > limits.max_input_chars {
            return Err(ApiError::validation(format!(
                "{field}[{i}] has {} characters, more than the limit of {} (max_input_chars)",
                t.chars().count(),
                limits.max_input_chars
            )));
        }
    }
    Ok(())
}

/// Inputs checked against the count limit (an image's size is the body's to bound).
fn check_images(items: &[String], field: &str, state: &AppState) -> Answer<()> {
    if items.is_empty() {
        return Err(ApiError::validation(format!("`{field}` is empty")));
    }
    if items.len() > state.limits.max_inputs {
        return Err(ApiError::validation(format!(
            "{} inputs is more than the limit of {} per request (max_inputs)",
            items.len(),
            state.limits.max_inputs
        )));
    }
    Ok(())
}

/// Whether every input is an image as a `data:image/...` URI.
fn all_images(items: &[String]) -> bool {
    !items.is_empty() && items.iter().all(|s| s.starts_with("data:image/"))
}

/// The families a dense route picks its default model from: images by data URI go to
/// the first image model, text to the first dense one.
fn dense_kinds(images: bool) -> &'static [ModelKind] {
    if images {
        &[ModelKind::Image, ModelKind::Dense]
    } else {
        &[ModelKind::Dense, ModelKind::Image]
    }
}

/// An upper bound on a text's tokens without tokenizing it: every token but the
/// special ones covers at least one character.
fn token_bound(state: &AppState, model: usize, texts: impl Iterator<Item = usize>) -> usize {
    let cap = state.max_lengths[model].unwrap_or(usize::MAX);
    texts
        .map(|chars| chars.saturating_add(2).min(cap))
        .max()
        .unwrap_or(0)
}

/// Images given as `data:` URIs or bare base64, decoded to their file bytes.
fn image_bytes(items: &[String], field: &str) -> Answer<Vec<Vec<u8>>> {
    items
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let payload = match s.strip_prefix("data:") {
                Some(rest) => match rest.split_once(',') {
                    Some((meta, data)) if meta.ends_with(";base64") => data,
                    _ => {
                        return Err(ApiError::validation(format!(
                            "{field}[{i}]: a data URI must be base64: data:image/png;base64,..."
                        )))
                    }
                },
                None => s.as_str(),
            };
            let clean: String = payload
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(clean.as_bytes())
                .map_err(|e| {
                    ApiError::validation(format!(
                        "{field}[{i}] is not an image as a data: URI or base64: {e}"
                    ))
                })
        })
        .collect()
}

/// Queues a job and waits for its answer until the request's deadline.
async fn run(
    state: &AppState,
    model: usize,
    work: Work,
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
        Ok(Ok(Ok(output))) => {
            state.metrics.texts.inc_by(n as u64);
            Ok(output)
        }
        Ok(Ok(Err(e))) => Err(library_error(e)),
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

/// A library error as an answer: the client's input (422) or ours (500).
fn library_error(e: embedkit::Error) -> ApiError {
    use embedkit::Error as E;
    match e {
        E::InvalidArgument(_) | E::Image { .. } | E::Input { .. } | E::InputRow { .. } => {
            ApiError::validation(e.to_string())
        }
        other => ApiError::backend(other.to_string()),
    }
}

fn unexpected() -> ApiError {
    ApiError::backend("the model answered with an unexpected output")
}

/// Runs `f` on the blocking pool (tokenizing is CPU work), within the deadline.
async fn blocking<T: Send + 'static>(
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

/// The request's `dimensions`: shorter only for Matryoshka models.
fn dimensions_of(state: &AppState, model: usize, requested: Option<u64>) -> Answer<Option<usize>> {
    let Some(d) = requested else { return Ok(None) };
    let served = state.models.get(model);
    let (dim, matryoshka) = match &served.handle {
        Handle::Dense(m) => (m.embedding_size(), m.description().matryoshka),
        Handle::Image(m) => (m.embedding_size(), false),
        _ => return Ok(None),
    };
    match usize::try_from(d) {
        Ok(d) if d == dim => Ok(None),
        Ok(d) if d >= 1 && d < dim && matryoshka => Ok(Some(d)),
        Ok(d) if d >= 1 && d < dim => Err(ApiError::validation(format!(
            "model {} was not trained for shortened vectors (Matryoshka), so `dimensions` \
             must be its size, {dim}; got {d}",
            served.name
        ))),
        _ => Err(ApiError::validation(format!(
            "dimensions must be an integer from 1 to {dim}, got {d}"
        ))),
    }
}

fn shorten(mut v: Vec<f32>, dims: Option<usize>) -> Vec<f32> {
    if let Some(d) = dims {
        v.truncate(d);
        l2_normalize(&mut v);
    }
    v
}

/// Dense vectors of texts or images for `/embed` and `/v1/embeddings`, and the tokens
/// counted (once, after truncation).
async fn dense(
    state: &Arc<AppState>,
    model: usize,
    input: OpenAiInput,
    field: &str,
    deadline: Deadline,
) -> Answer<(Vec<Vec<f32>>, usize)> {
    let served = state.models.get(model);
    let (work, tokens, longest) = match (&served.handle, input) {
        (Handle::Dense(_), OpenAiInput::Texts(texts)) => {
            check_texts(&texts, field, state)?;
            let longest = token_bound(state, model, texts.iter().map(|t| t.chars().count()));
            // Counted where tokenized, on the inference thread.
            (Work::DenseTexts(texts), 0, longest)
        }
        (Handle::Dense(m), OpenAiInput::Ids(ids)) => {
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
            (Work::DenseIds(ids), tokens, longest)
        }
        (Handle::Image(_), OpenAiInput::Texts(items)) => {
            check_images(&items, field, state)?;
            (Work::Images(image_bytes(&items, field)?), 0, 1)
        }
        (Handle::Image(_), OpenAiInput::Ids(_)) => {
            return Err(ApiError::validation(
                "an image model takes images (data: URIs or base64), not token ids",
            ))
        }
        _ => return Err(unexpected()),
    };
    let (vectors, tokens) = match run(state, model, work, longest, deadline).await? {
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
            dense_kinds(matches!(&req.input, OpenAiInput::Texts(t) if all_images(t))),
            "/v1/embeddings",
        )?;
        let dims = dimensions_of(&state, model, req.dimensions)?;
        let base64 = req.encoding_format == Some(EncodingFormat::Base64);
        let (vectors, tokens) = dense(&state, model, req.input, "input", deadline).await?;
        let data = vectors
            .into_iter()
            .enumerate()
            .map(|(index, v)| {
                let v = shorten(v, dims);
                let embedding = if base64 {
                    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                    EmbeddingValue::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
                } else {
                    EmbeddingValue::Float(v)
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
) -> Answer<Json<Vec<Vec<f32>>>> {
    let model = state.models.pick(
        req.model.as_deref(),
        dense_kinds(all_images(&req.inputs.0)),
        "/embed",
    )?;
    let dims = dimensions_of(&state, model, req.dimensions)?;
    let normalize = req.normalize.unwrap_or(true);
    let (vectors, _) = dense(
        &state,
        model,
        OpenAiInput::Texts(req.inputs.0),
        "inputs",
        deadline,
    )
    .await?;
    Ok(Json(
        vectors
            .into_iter()
            .map(|v| {
                let mut v = shorten(v, dims);
                if normalize {
                    l2_normalize(&mut v);
                }
                v
            })
            .collect(),
    ))
}

#[utoipa::path(post, path = "/embed_sparse", tag = "tei", request_body = SparseRequest,
    responses((status = 200, body = Vec<Vec<SparseValue>>), (status = 422, body = ErrorResponse)))]
pub(crate) async fn embed_sparse(
    State(state): State<Arc<AppState>>,
    axum::Extension(deadline): axum::Extension<Deadline>,
    JsonBody(req): JsonBody<SparseRequest>,
) -> Answer<Json<Vec<Vec<SparseValue>>>> {
    let model = state
        .models
        .pick(req.model.as_deref(), &[ModelKind::Sparse], "/embed_sparse")?;
    let texts = req.inputs.0;
    check_texts(&texts, "inputs", &state)?;
    let longest = token_bound(&state, model, texts.iter().map(|t| t.chars().count()));
    let Output::Sparse(vectors) =
        run(&state, model, Work::Sparse(texts), longest, deadline).await?
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
    // Images go to the first multimodal model unless one is named.
    let kinds: &[ModelKind] = if req.images.is_some() {
        &[ModelKind::Multimodal, ModelKind::LateInteraction]
    } else {
        &[ModelKind::LateInteraction, ModelKind::Multimodal]
    };
    let model = state
        .models
        .pick(req.model.as_deref(), kinds, "/embed_late")?;
    let served = state.models.get(model);
    let (work, longest) = match (&served.handle, req.inputs, req.images) {
        (_, Some(_), Some(_)) => {
            return Err(ApiError::validation(
                "give `inputs` (texts) or `images`, not both",
            ))
        }
        (_, None, None) => return Err(ApiError::validation("`inputs` is missing")),
        (Handle::Late(_), Some(texts), None) => {
            check_texts(&texts.0, "inputs", &state)?;
            let longest = token_bound(&state, model, texts.0.iter().map(|t| t.chars().count()));
            (
                Work::Late {
                    texts: texts.0,
                    query: req.is_query,
                },
                longest,
            )
        }
        (Handle::Late(_), None, Some(_)) => {
            return Err(ApiError::validation(format!(
                "model {} embeds texts only; `images` needs a multimodal model",
                served.name
            )))
        }
        (Handle::Multimodal(_), Some(texts), None) => {
            check_texts(&texts.0, "inputs", &state)?;
            (Work::MultimodalTexts(texts.0), 0)
        }
        (Handle::Multimodal(_), None, Some(images)) => {
            check_images(&images.0, "images", &state)?;
            (Work::MultimodalImages(image_bytes(&images.0, "images")?), 0)
        }
        _ => return Err(unexpected()),
    };
    let Output::Multi(matrices) = run(&state, model, work, longest, deadline).await? else {
        return Err(unexpected());
    };
    Ok(Json(
        matrices
            .into_iter()
            .map(|m| m.outer_iter().map(|row| row.to_vec()).collect())
            .collect(),
    ))
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
        .pick(req.model.as_deref(), &[ModelKind::Rerank], "/rerank")?;
    check_texts(std::slice::from_ref(&req.query), "query", &state)?;
    let texts = req.texts.0;
    check_texts(&texts, "texts", &state)?;
    let q = req.query.chars().count();
    let longest = token_bound(&state, model, texts.iter().map(|t| q + t.chars().count())).min(512);
    let pairs: Vec<(String, String)> = texts
        .iter()
        .map(|t| (req.query.clone(), t.clone()))
        .collect();
    let Output::Scores(scores) = run(&state, model, Work::Rerank(pairs), longest, deadline).await?
    else {
        return Err(unexpected());
    };
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

#[utoipa::path(post, path = "/tokenize", tag = "tei", request_body = TokenizeRequest,
    responses((status = 200, body = Vec<Vec<SimpleToken>>), (status = 422, body = ErrorResponse)))]
pub(crate) async fn tokenize(
    State(state): State<Arc<AppState>>,
    axum::Extension(deadline): axum::Extension<Deadline>,
    JsonBody(req): JsonBody<TokenizeRequest>,
) -> Answer<Json<Vec<Vec<SimpleToken>>>> {
    let model = state.models.pick(
        req.model.as_deref(),
        &[
            ModelKind::Dense,
            ModelKind::Sparse,
            ModelKind::LateInteraction,
        ],
        "/tokenize",
    )?;
    let texts = req.inputs.0;
    check_texts(&texts, "inputs", &state)?;
    let worker = state.clone();
    // The tokens the model embeds, from the model itself.
    let tokens = blocking(deadline, move || match &worker.models.get(model).handle {
        Handle::Dense(m) => m.tokens(&texts),
        Handle::Sparse(m) => m.tokens(&texts),
        Handle::Late(m) => m.tokens(&texts),
        _ => Err(embedkit::Error::Unsupported(
            "this model has no tokenizer route".into(),
        )),
    })
    .await?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|t| SimpleToken {
                        id: t.id,
                        text: t.text,
                        special: t.special,
                    })
                    .collect()
            })
            .collect(),
    ))
}

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
    let kinds = [
        ModelKind::Dense,
        ModelKind::Image,
        ModelKind::Sparse,
        ModelKind::LateInteraction,
        ModelKind::Multimodal,
        ModelKind::Rerank,
    ];
    match state.models.pick(Some(&id), &kinds, "/v1/models") {
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
        model_type: match first.kind() {
            ModelKind::Rerank => "reranker",
            _ => "embedding",
        },
        max_input_length: state.max_lengths[0].unwrap_or(0),
        max_client_batch_size: state.limits.max_inputs,
        max_input_chars: state.limits.max_input_chars,
        max_body_bytes: state.limits.max_body_bytes,
        max_concurrent_requests: state.limits.max_concurrent_requests,
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
