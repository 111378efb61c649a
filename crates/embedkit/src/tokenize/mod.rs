//! Tokenizers configured from a model folder exactly as fastembed configures them:
//! `tokenizer.json`, then truncation from `tokenizer_config.json`, special tokens from
//! `special_tokens_map.json`, and the pad token and side resolved from all of them.
//!
//! Encodings come back unpadded; batches are padded by [`crate::batching`], which knows
//! each batch's longest sequence. That gives the same tensors as the tokenizer's own
//! batch-longest padding, and lets batches be formed after sorting by length.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use serde_json::Value;
use tokenizers::{
    AddedToken, PaddingDirection, PostProcessor, Tokenizer, TruncationDirection, TruncationParams,
    TruncationStrategy,
};

use crate::error::{Error, Result};

mod cut;
mod pairs;
mod tokens;
pub(crate) use tokens::{decode_with, describe_ids, spans_with};
pub use tokens::{Token, TokenSpan};

/// Which end of a text longer than the model takes is cut (TEI's
/// `truncation_direction`). Calls that name none cut where the model's tokenizer
/// configuration says (the right, for almost every model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TruncationSide {
    /// Keep the start of the text.
    Right,
    /// Keep the end of the text.
    Left,
}

impl From<TruncationSide> for TruncationDirection {
    fn from(side: TruncationSide) -> Self {
        match side {
            TruncationSide::Right => TruncationDirection::Right,
            TruncationSide::Left => TruncationDirection::Left,
        }
    }
}

/// Which side pad tokens go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadSide {
    Left,
    Right,
}

/// How a batch is padded: fastembed's resolved padding settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Padding {
    pub side: PadSide,
    pub pad_id: u32,
    pub pad_token: String,
    pub pad_to_multiple_of: Option<usize>,
    /// Pad every batch to this length (models that pool a fixed position).
    pub fixed_length: Option<usize>,
}

/// A tokenizer with fastembed's configuration and the padding to apply to batches.
#[derive(Clone)]
pub struct TextTokenizer {
    tokenizer: Tokenizer,
    /// The same tokenizer without truncation, for pairs (truncated by `pairs::pair_lengths`).
    untruncated: Tokenizer,
    /// The same tokenizer truncating at the other end, made when a call first asks.
    other_side: OnceLock<Tokenizer>,
    max_length: usize,
    padding: Padding,
    special_token_to_id: HashMap<String, u32>,
    /// Whether long texts are cut before tokenizing ([`Self::cut_long`]).
    cut_long_texts: bool,
}

/// Variations a family may ask for.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenizerOptions {
    /// Pad every batch to the truncation length instead of its longest sequence.
    pub pad_to_max_length: bool,
}

/// `tokenizer`, or when `side` is the other end from where it truncates, a copy of it
/// truncating there: made on first use and kept in `other` (most callers never ask).
pub(crate) fn truncating_at<'a>(
    tokenizer: &'a Tokenizer,
    other: &'a OnceLock<Tokenizer>,
    side: Option<TruncationSide>,
) -> Result<&'a Tokenizer> {
    let (Some(side), Some(params)) = (side, tokenizer.get_truncation()) else {
        return Ok(tokenizer);
    };
    let direction = TruncationDirection::from(side);
    if params.direction == direction {
        return Ok(tokenizer);
    }
    if let Some(t) = other.get() {
        return Ok(t);
    }
    let mut copy = tokenizer.clone();
    copy.with_truncation(Some(TruncationParams {
        direction,
        ..params.clone()
    }))
    .map_err(Error::from)?;
    Ok(other.get_or_init(|| copy))
}

/// Where `tokenizer` cuts over-long texts (a tokenizer without truncation cuts nothing;
/// right is as good an answer as any for it).
fn direction_of(tokenizer: &Tokenizer) -> TruncationDirection {
    tokenizer
        .get_truncation()
        .map_or(TruncationDirection::Right, |t| t.direction)
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::InvalidModel {
        path: path.to_path_buf(),
        reason: format!("not valid JSON: {e}"),
    })
}

fn require(dir: &Path, file: &str) -> Result<std::path::PathBuf> {
    let path = dir.join(file);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::MissingFile {
            file: file.to_string(),
            dir: dir.to_path_buf(),
        })
    }
}

/// A usable truncation limit: a positive integer that fits an i64. transformers writes
/// 1e30 when it does not know the limit, and some configs carry 0 or null.
fn valid_context(v: Option<&Value>) -> Option<usize> {
    let n = v?.as_u64()?;
    (n > 0 && n <= i64::MAX as u64).then_some(n as usize)
}

/// Makes tokenization serial in a process made by `fork()` after batches were tokenized
/// in parallel: `tokenizers` batches on rayon's worker threads, which are not copied into
/// the child, and a batch handed to them there would wait forever. (Python's `tokenizers`
/// does the same in its fork handler.) Registered once per process.
pub(crate) fn guard_fork() {
    #[cfg(unix)]
    {
        use tokenizers::utils::parallelism::{has_parallelism_been_used, set_parallelism};
        extern "C" fn in_child() {
            // Atomics only: what may run in a child between fork and exec.
            if has_parallelism_been_used() {
                set_parallelism(false);
            }
        }
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: the handler touches two atomics and nothing else.
            let failed = unsafe { libc::pthread_atfork(None, None, Some(in_child)) } != 0;
            if failed {
                tracing::warn!("could not register the fork handler; forked children may hang");
            }
        });
    }
}

impl TextTokenizer {
    /// Loads the tokenizer of the model in `dir`.
    pub fn from_dir(dir: &Path, opts: TokenizerOptions) -> Result<Self> {
        guard_fork();
        let tokenizer_path = require(dir, "tokenizer.json")?;
        let config_path = require(dir, "tokenizer_config.json")?;
        let tokenizer_config = read_json(&config_path)?;
        // config.json is optional: newer exports do not always write it.
        let config = match dir.join("config.json") {
            p if p.is_file() => read_json(&p)?,
            _ => Value::Null,
        };
        let tokens_map = match dir.join("special_tokens_map.json") {
            p if p.is_file() => read_json(&p)?,
            _ => Value::Null,
        };

        // The stricter of the two keys, as fastembed; max_position_embeddings is not a
        // usable fallback (roberta says 514 for a usable 512).
        let max_length = [
            valid_context(tokenizer_config.get("model_max_length")),
            valid_context(tokenizer_config.get("max_length")),
        ]
        .into_iter()
        .flatten()
        .min()
        .ok_or_else(|| Error::InvalidModel {
            path: config_path.clone(),
            reason: "no usable maximum context length; set a positive `model_max_length` \
                     or `max_length`"
                .into(),
        })?;

        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| Error::InvalidModel {
                path: tokenizer_path.clone(),
                reason: e.to_string(),
            })?;

        let added = tokenizer
            .get_post_processor()
            .map(|p| p.added_tokens(false))
            .unwrap_or(0);
        if max_length <= added {
            return Err(Error::InvalidModel {
                path: config_path,
                reason: format!(
                    "maximum length {max_length} leaves no room beside the {added} special tokens"
                ),
            });
        }
        let direction = match tokenizer_config
            .get("truncation_side")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            Some(side) => parse_truncation_side(side, &config_path)?,
            None => tokenizer
                .get_truncation()
                .map(|t| t.direction)
                .unwrap_or(TruncationDirection::Right),
        };
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length,
                direction,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(Error::from)?;

        // Special tokens are registered before the pad token is resolved: the map may
        // name a pad token that only gets an id once added.
        let mut specials = Vec::new();
        if let Value::Object(map) = &tokens_map {
            for value in map.values() {
                match value {
                    Value::Array(items) => specials.extend(items.iter().filter_map(added_token)),
                    other => specials.extend(added_token(other)),
                }
            }
        }
        tokenizer
            .add_special_tokens(specials)
            .map_err(|e| Error::Tokenizer(format!("adding special tokens: {e}")))?;

        let serialized = tokenizer.get_padding().cloned();
        let pad_token = serialized
            .as_ref()
            .map(|p| p.pad_token.clone())
            .filter(|t| !t.is_empty())
            .or_else(|| token_content(tokenizer_config.get("pad_token")))
            .ok_or_else(|| Error::InvalidModel {
                path: config_path.clone(),
                reason: "no pad token in tokenizer.json or tokenizer_config.json".into(),
            })?;
        let pad_id = match &serialized {
            Some(p) => Some(p.pad_id),
            None => config
                .get("pad_token_id")
                .and_then(Value::as_u64)
                .and_then(|v| u32::try_from(v).ok()),
        }
        .or_else(|| tokenizer.token_to_id(&pad_token))
        .ok_or_else(|| Error::InvalidModel {
            path: tokenizer_path.clone(),
            reason: format!("the pad token {pad_token:?} has no id in the vocabulary"),
        })?;
        let side = match tokenizer_config
            .get("padding_side")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            Some("left") => PadSide::Left,
            Some("right") => PadSide::Right,
            Some(other) => {
                return Err(Error::InvalidModel {
                    path: config_path,
                    reason: format!("padding_side {other:?} is neither left nor right"),
                })
            }
            None => match serialized.as_ref().map(|p| p.direction) {
                Some(PaddingDirection::Left) => PadSide::Left,
                _ => PadSide::Right,
            },
        };
        let padding = Padding {
            side,
            pad_id,
            pad_token,
            pad_to_multiple_of: serialized.as_ref().and_then(|p| p.pad_to_multiple_of),
            fixed_length: opts.pad_to_max_length.then_some(max_length),
        };
        // Padding is applied per batch by the batcher, never by the tokenizer.
        tokenizer.with_padding(None);

        let special_token_to_id = tokenizer
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special)
            .map(|(id, t)| (t.content, id))
            .collect();

        let mut untruncated = tokenizer.clone();
        untruncated.with_truncation(None).map_err(Error::from)?;
        Ok(TextTokenizer {
            tokenizer,
            untruncated,
            other_side: OnceLock::new(),
            max_length,
            padding,
            special_token_to_id,
            cut_long_texts: true,
        })
    }

    /// Token ids of each text, with special tokens, truncated, unpadded.
    pub fn encode_batch<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>> {
        self.encode_batch_from(texts, None)
    }

    /// [`Self::encode_batch`] with an over-long text cut at `side` (`None`: where the
    /// model's configuration says).
    pub fn encode_batch_from<S: AsRef<str>>(
        &self,
        texts: &[S],
        side: Option<TruncationSide>,
    ) -> Result<Vec<Vec<u32>>> {
        let tokenizer = self.truncating_at(side)?;
        let right = direction_of(tokenizer) == TruncationDirection::Right;
        let inputs: Vec<&str> = texts
            .iter()
            .map(|t| self.cut_long(t.as_ref(), right))
            .collect();
        let encodings = tokenizer
            .encode_batch_fast(inputs, true)
            .map_err(Error::from)?;
        Ok(encodings
            .into_iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
    }

    /// The tokenizer that truncates at `side` ([`truncating_at`]).
    fn truncating_at(&self, side: Option<TruncationSide>) -> Result<&Tokenizer> {
        truncating_at(&self.tokenizer, &self.other_side, side)
    }

    /// Each text's tokens, not truncated, with where each came from in the text (TEI's
    /// `/tokenize`); special tokens only when `add_special`.
    pub fn spans<S: AsRef<str>>(
        &self,
        texts: &[S],
        add_special: bool,
    ) -> Result<Vec<Vec<TokenSpan>>> {
        spans_with(&self.untruncated, texts, add_special)
    }

    /// The text of each token-id sequence (special tokens dropped when asked), as the
    /// tokenizer's decoder joins its pieces.
    pub fn decode(&self, ids: &[Vec<u32>], skip_special: bool) -> Result<Vec<String>> {
        decode_with(&self.tokenizer, ids, skip_special)
    }

    /// Whether each text has more tokens (special tokens included) than the model takes,
    /// so that embedding truncates it.
    pub fn overlong<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<bool>> {
        texts
            .iter()
            .map(|t| {
                let t = t.as_ref();
                // A text cut before tokenizing has more than max_length tokens before the cut.
                if self.cut_long(t, true).len() < t.len() {
                    return Ok(true);
                }
                let encoding = self.untruncated.encode_fast(t, true).map_err(Error::from)?;
                Ok(encoding.len() > self.max_length)
            })
            .collect()
    }

    /// Token ids and type ids of each (first, second) pair, with special tokens,
    /// truncated longest-first, unpadded.
    ///
    /// The pair is truncated here, not by `tokenizers`: the Rust crate 0.23.2 splits the
    /// budget differently from the Python package 0.23.3 fastembed runs when both texts
    /// are long (it can give the extra odd token to the shorter text). The rule used is
    /// the Python package's: the shorter text keeps its tokens if it fits in half the
    /// budget and the longer takes the rest; otherwise each gets half, the longer (the
    /// second, on a tie) the odd token.
    pub fn encode_pairs<A: AsRef<str>, B: AsRef<str>>(
        &self,
        pairs: &[(A, B)],
    ) -> Result<Vec<(Vec<u32>, Vec<u32>)>> {
        self.encode_pairs_from(pairs, None)
    }

    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Whether texts far longer than the maximum length are cut at a word before
    /// tokenizing (on by default; the tokens kept are the same, see
    /// [`Self::cut_long`]). Off, every text is tokenized whole, as `tokenizers` does.
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    pub fn with_long_text_cut(mut self, on: bool) -> Self {
        self.cut_long_texts = on;
        self
    }

    /// The same tokenizer truncating at `max_length`, as `enable_truncation(max_length)`
    /// in Python sets it: on the right, longest first.
    pub fn with_max_length(mut self, max_length: usize) -> Result<Self> {
        let added = self
            .tokenizer
            .get_post_processor()
            .map(|p| p.added_tokens(false))
            .unwrap_or(0);
        if max_length <= added {
            return Err(Error::Tokenizer(format!(
                "maximum length {max_length} leaves no room beside the {added} special tokens"
            )));
        }
        self.other_side = OnceLock::new();
        self.tokenizer
            .with_truncation(Some(TruncationParams {
                max_length,
                direction: TruncationDirection::Right,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(Error::from)?;
        self.max_length = max_length;
        Ok(self)
    }

    pub fn padding(&self) -> &Padding {
        &self.padding
    }

    /// Ids of the tokenizer's special tokens, by content.
    pub fn special_token_to_id(&self) -> &HashMap<String, u32> {
        &self.special_token_to_id
    }

    /// The underlying `tokenizers` tokenizer (truncation set, padding off).
    pub fn inner(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Each id's token text and whether it is a special token.
    pub fn describe(&self, ids: &[u32]) -> Vec<Token> {
        describe_ids(&self.tokenizer, ids)
    }
}

fn parse_truncation_side(side: &str, path: &Path) -> Result<TruncationDirection> {
    match side {
        "left" => Ok(TruncationDirection::Left),
        "right" => Ok(TruncationDirection::Right),
        other => Err(Error::InvalidModel {
            path: path.to_path_buf(),
            reason: format!("truncation_side {other:?} is neither left nor right"),
        }),
    }
}

/// The text of a token given as a string or as a serialized AddedToken object.
fn token_content(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
    .filter(|s| !s.is_empty())
}

/// A special token from `special_tokens_map.json`: a string, or an object with
/// AddedToken's fields. Either way it is registered as special, as fastembed does.
fn added_token(v: &Value) -> Option<AddedToken> {
    match v {
        Value::String(s) => Some(AddedToken::from(s.clone(), true)),
        Value::Object(o) => {
            let content = o.get("content")?.as_str()?.to_string();
            let flag = |k: &str| o.get(k).and_then(Value::as_bool);
            let mut t = AddedToken::from(content, true);
            if let Some(b) = flag("single_word") {
                t = t.single_word(b);
            }
            if let Some(b) = flag("lstrip") {
                t = t.lstrip(b);
            }
            if let Some(b) = flag("rstrip") {
                t = t.rstrip(b);
            }
            if let Some(b) = flag("normalized") {
                t = t.normalized(b);
            }
            Some(t)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_limits() {
        let v: Value = serde_json::json!({"a": 512, "b": 1e30, "c": 0, "d": true, "e": null});
        assert_eq!(valid_context(v.get("a")), Some(512));
        assert_eq!(valid_context(v.get("b")), None);
        assert_eq!(valid_context(v.get("c")), None);
        assert_eq!(valid_context(v.get("d")), None);
        assert_eq!(valid_context(v.get("e")), None);
    }

    #[test]
    fn token_content_reads_both_forms() {
        let v: Value = serde_json::json!({"s": "<pad>", "o": {"content": "[PAD]"}, "n": 3});
        assert_eq!(token_content(v.get("s")).as_deref(), Some("<pad>"));
        assert_eq!(token_content(v.get("o")).as_deref(), Some("[PAD]"));
        assert_eq!(token_content(v.get("n")), None);
    }
}
