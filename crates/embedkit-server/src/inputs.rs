//! A request's inputs, checked and made ready before any work: the limits on texts and
//! images, images decoded from data URIs, TEI's text fields (`prompt_name`,
//! `truncation_direction`, `truncate: false`) and the token bound the batcher gathers by.

use base64::Engine;
use embedkit::TruncationSide;

use crate::api::*;
use crate::routes::{blocking, Answer};
use crate::AppState;

/// Texts checked against the request limits.
pub(crate) fn check_texts(texts: &[String], field: &str, state: &AppState) -> Answer<()> {
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
pub(crate) fn check_images(items: &[String], field: &str, state: &AppState) -> Answer<()> {
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
pub(crate) fn all_images(items: &[String]) -> bool {
    !items.is_empty() && items.iter().all(|s| s.starts_with("data:image/"))
}

/// An upper bound on a text's tokens without tokenizing it: every token but the
/// special ones covers at least one character.
pub(crate) fn token_bound(
    state: &AppState,
    model: usize,
    texts: impl Iterator<Item = usize>,
) -> usize {
    let cap = state.max_lengths[model].unwrap_or(usize::MAX);
    texts
        .map(|chars| tokens_at_most(chars, cap))
        .max()
        .unwrap_or(0)
}

/// A text of `chars` characters has at most this many tokens in a model that takes `cap`.
fn tokens_at_most(chars: usize, cap: usize) -> usize {
    chars.saturating_add(2).min(cap)
}

/// Images given as `data:` URIs or bare base64, decoded to their file bytes.
pub(crate) fn image_bytes(items: &[String], field: &str) -> Answer<Vec<Vec<u8>>> {
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

/// The numbers in one of `model`'s vectors (one when it has no fixed width).
fn vector_width(state: &AppState, model: usize) -> usize {
    state.models.get(model).dim().unwrap_or(1).max(1)
}

/// A request for vectors per token whose answer could hold more numbers than
/// `max_output_numbers` is refused (413) before any work: 512 texts of 512 tokens of
/// 1024-wide vectors are a gigabyte of floats and several of JSON. Bounded first from the
/// characters; only a request that bound does not clear is tokenized to count exactly.
pub(crate) async fn refuse_large_answer(
    state: &AppState,
    model: usize,
    texts: &[String],
    deadline: Deadline,
) -> Answer<()> {
    let limit = state.limits.max_output_numbers;
    let served = state.models.get(model);
    let width = vector_width(state, model);
    let cap = state.max_lengths[model].unwrap_or(usize::MAX);
    let bound = texts
        .iter()
        .map(|t| tokens_at_most(t.chars().count(), cap))
        .fold(0usize, usize::saturating_add);
    if bound.saturating_mul(width) <= limit {
        return Ok(());
    }
    let m = served.model.clone();
    let owned = texts.to_vec();
    let tokens = blocking(deadline, move || {
        m.tokenize(&owned)
            .map(|ids| ids.iter().map(Vec::len).fold(0usize, usize::saturating_add))
    })
    .await?;
    let numbers = tokens.saturating_mul(width);
    if numbers > limit {
        return Err(ApiError::too_large(format!(
            "the answer would hold {numbers} numbers ({tokens} vectors of {width}), more than \
             the limit of {limit} per request (max_output_numbers): send fewer or shorter texts"
        )));
    }
    Ok(())
}

/// A request for the vectors of `images` whose answer could hold more numbers than
/// `max_output_numbers` is refused (413) before any image is decoded, by the model's
/// bound on one image's vectors (its largest tile grid): 512 pages of ColPali are
/// 67 million numbers, a request of 50 kB of tiny images.
pub(crate) fn refuse_large_image_answer(
    state: &AppState,
    model: usize,
    images: usize,
) -> Answer<()> {
    let Some(per_image) = state.image_vectors[model] else {
        return Ok(());
    };
    let width = vector_width(state, model);
    let limit = state.limits.max_output_numbers;
    let each = per_image.saturating_mul(width);
    let numbers = images.saturating_mul(each);
    if numbers <= limit {
        return Ok(());
    }
    let advice = match limit / each.max(1) {
        0 => "one image is over it: the server's --max-output-numbers must be raised".into(),
        n => format!("send at most {n} images per request"),
    };
    Err(ApiError::too_large(format!(
        "the answer could hold {numbers} numbers ({images} images of up to {per_image} \
         vectors of {width}), more than the limit of {limit} per request \
         (max_output_numbers): {advice}"
    )))
}

/// With TEI's `truncate: false`, the first text longer than the model takes is refused
/// (413, as TEI), naming its position; otherwise texts are truncated.
pub(crate) async fn refuse_overlong(
    state: &AppState,
    model: usize,
    texts: &[String],
    field: &str,
    truncate: Option<bool>,
    deadline: Deadline,
) -> Answer<()> {
    if truncate != Some(false) {
        return Ok(());
    }
    let m = state.models.get(model).model.clone();
    let max = state.max_lengths[model];
    let owned = texts.to_vec();
    if let Some(i) = blocking(deadline, move || m.first_overlong(&owned)).await? {
        return Err(ApiError::too_large(format!(
            "{field}[{i}] is longer than the model takes ({} tokens) and `truncate` is false",
            max.map_or_else(|| "its maximum".to_string(), |n| n.to_string())
        )));
    }
    Ok(())
}

/// TEI's per-request text fields.
#[derive(Debug, Default)]
pub(crate) struct TeiText {
    pub truncate: Option<bool>,
    pub prompt_name: Option<String>,
    pub truncation_direction: Option<String>,
}

/// A TEI text request's inputs made ready for the model.
pub(crate) struct Ready {
    /// The padded-length bound the batcher gathers by.
    pub longest: usize,
    /// Where the request asks over-long texts to be cut.
    pub truncation: Option<TruncationSide>,
}

/// A TEI text request's inputs made ready for the model: its prompt put before each
/// (the model's prompt named by `prompt_name`, or its default prompt, so that
/// truncation and token counts include it, as in TEI), `truncation_direction` read,
/// limits checked, an over-long input refused when `truncate` is false.
pub(crate) async fn ready_texts(
    state: &AppState,
    model: usize,
    texts: &mut [String],
    tei: &TeiText,
    deadline: Deadline,
) -> Answer<Ready> {
    let truncation = truncation_side(tei.truncation_direction.as_deref())?;
    put_prompt(state, model, texts, tei.prompt_name.as_deref())?;
    check_texts(texts, "inputs", state)?;
    refuse_overlong(state, model, texts, "inputs", tei.truncate, deadline).await?;
    let longest = token_bound(state, model, texts.iter().map(|t| t.chars().count()));
    Ok(Ready {
        longest,
        truncation,
    })
}

/// TEI's `truncation_direction` (`Right` or `Left`; any case): absent is `None`, where
/// the model cuts (the right, unless its tokenizer configuration says otherwise);
/// anything else is refused.
pub(crate) fn truncation_side(direction: Option<&str>) -> Answer<Option<TruncationSide>> {
    match direction {
        None => Ok(None),
        Some(d) if d.eq_ignore_ascii_case("right") => Ok(Some(TruncationSide::Right)),
        Some(d) if d.eq_ignore_ascii_case("left") => Ok(Some(TruncationSide::Left)),
        Some(d) => Err(ApiError::validation(format!(
            "truncation_direction {d:?}: expected Right or Left"
        ))),
    }
}

/// The model's prompt named `prompt_name`, or its default prompt when none is named (as
/// TEI applies `--default-prompt`, on routes without the field too), before each text.
pub(crate) fn put_prompt(
    state: &AppState,
    model: usize,
    texts: &mut [String],
    prompt_name: Option<&str>,
) -> Answer<()> {
    let served = state.models.get(model);
    let prompt = match prompt_name {
        Some(name) => Some(served.prompt(name)?),
        None => served.default_prompt(),
    };
    if let Some(prompt) = prompt {
        for t in texts.iter_mut() {
            t.insert_str(0, prompt);
        }
    }
    Ok(())
}
