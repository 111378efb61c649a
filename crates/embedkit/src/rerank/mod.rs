//! Cross-encoder reranking: `TextCrossEncoder`, fastembed's class of the same name. Each
//! (query, document) pair is encoded together (with the tokenizer's pair template and
//! type ids, truncated longest-first) and the graph's first logit is the score.

use std::path::PathBuf;
use std::sync::Arc;

use ndarray::{Array2, Ix1, Ix2};
use ort::value::{DynValue, Tensor};
use serde::Serialize;

use crate::batching;
use crate::error::{Error, Result};
use crate::hub::{self, ModelFiles};
use crate::options::{load_option_setters, Lazy, LoadOptions};
use crate::registry::{self, ModelSource, RerankerModelDescription};
use crate::runtime::{OnnxModel, RuntimeOptions};
use crate::tokenize::{PadSide, TextTokenizer, TokenizerOptions};

const KNOWN_INPUTS: [&str; 3] = ["input_ids", "attention_mask", "token_type_ids"];
/// fastembed's default `batch_size` for reranking.
pub const DEFAULT_RERANK_BATCH_SIZE: usize = 64;

/// The files a reranker needs.
pub fn model_files(desc: &RerankerModelDescription) -> ModelFiles<'_> {
    let mut required = vec![desc.model_file.clone()];
    required.extend(desc.additional_files.iter().cloned());
    required.push("tokenizer.json".into());
    required.push("tokenizer_config.json".into());
    ModelFiles::new(&desc.model, &desc.sources, required, Vec::new())
}

/// A reranker not in the registry, as fastembed's `TextCrossEncoder.add_custom_model`
/// arguments.
#[derive(Debug, Clone)]
pub struct CustomReranker {
    pub model: String,
    pub sources: ModelSource,
    pub model_file: String,
    pub description: String,
    pub license: String,
    pub size_in_gb: f64,
    pub additional_files: Vec<String>,
}

impl CustomReranker {
    /// With fastembed's defaults (`onnx/model.onnx`, no additional files).
    pub fn new(model: impl Into<String>, sources: ModelSource) -> Self {
        CustomReranker {
            model: model.into(),
            sources,
            model_file: "onnx/model.onnx".into(),
            description: String::new(),
            license: String::new(),
            size_in_gb: 0.0,
            additional_files: Vec::new(),
        }
    }
}

/// One document's place and score, from [`TextCrossEncoder::rerank_top_k`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RankedDocument {
    /// Position of the document in the input.
    pub index: usize,
    pub score: f32,
}

/// Builder for [`TextCrossEncoder`].
#[derive(Debug, Clone)]
pub struct TextCrossEncoderBuilder {
    model_name: String,
    load: LoadOptions,
}

impl TextCrossEncoderBuilder {
    load_option_setters!();

    pub fn build(self) -> Result<TextCrossEncoder> {
        self.load.validate()?;
        let desc = registry::reranker_model(&self.model_name)?;
        let model_dir = hub::resolve_model_dir(&model_files(&desc), &self.load.cache)?;
        let model = TextCrossEncoder {
            desc,
            model_dir,
            runtime: self.load.runtime,
            backend: Lazy::new(),
            batch_size: self.load.batch_size,
            max_batch_tokens: self.load.max_batch_tokens,
        };
        if !self.load.lazy_load {
            model.backend()?;
        }
        Ok(model)
    }
}

struct Backend {
    model_name: String,
    tokenizer: TextTokenizer,
    model: OnnxModel,
    output: String,
}

/// A cross-encoder reranker of the registry.
pub struct TextCrossEncoder {
    desc: RerankerModelDescription,
    model_dir: PathBuf,
    runtime: RuntimeOptions,
    backend: Lazy<Backend>,
    batch_size: usize,
    max_batch_tokens: usize,
}

impl std::fmt::Debug for TextCrossEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextCrossEncoder")
            .field("model", &self.desc.model)
            .field("model_dir", &self.model_dir)
            .finish_non_exhaustive()
    }
}

impl TextCrossEncoder {
    /// A builder; the batch size defaults to fastembed's 64 for reranking.
    pub fn builder(model_name: impl Into<String>) -> TextCrossEncoderBuilder {
        TextCrossEncoderBuilder {
            model_name: model_name.into(),
            load: LoadOptions {
                batch_size: DEFAULT_RERANK_BATCH_SIZE,
                ..LoadOptions::default()
            },
        }
    }

    /// Every supported reranker, custom ones included.
    pub fn list_supported_models() -> Vec<RerankerModelDescription> {
        registry::reranker_models()
    }

    /// Registers a reranker under a new name (case-insensitively unique).
    pub fn add_custom_model(custom: CustomReranker) -> Result<()> {
        registry::add_reranker_model(RerankerModelDescription {
            model: custom.model,
            description: custom.description,
            license: custom.license,
            size_in_gb: custom.size_in_gb,
            sources: custom.sources,
            model_file: custom.model_file,
            additional_files: custom.additional_files,
            custom: true,
        })
    }

    pub fn description(&self) -> &RerankerModelDescription {
        &self.desc
    }

    fn backend(&self) -> Result<Arc<Backend>> {
        self.backend.get_or_load(|| {
            let tokenizer = TextTokenizer::from_dir(&self.model_dir, TokenizerOptions::default())?;
            let model =
                OnnxModel::load(&self.model_dir.join(&self.desc.model_file), &self.runtime)?;
            model.check_inputs(&self.desc.model, &KNOWN_INPUTS)?;
            let output =
                model
                    .output_names()
                    .first()
                    .cloned()
                    .ok_or_else(|| Error::ModelMismatch {
                        model: self.desc.model.clone(),
                        reason: "the ONNX graph has no outputs".into(),
                    })?;
            Ok(Arc::new(Backend {
                model_name: self.desc.model.clone(),
                tokenizer,
                model,
                output,
            }))
        })
    }

    /// The relevance of each document to `query`, in document order.
    pub fn rerank<S: AsRef<str>>(
        &self,
        query: &str,
        documents: &[S],
        batch_size: Option<usize>,
    ) -> Result<Vec<f32>> {
        let pairs: Vec<(&str, &str)> = documents.iter().map(|d| (query, d.as_ref())).collect();
        self.rerank_pairs(&pairs, batch_size)
    }

    /// The score of each (query, document) pair, in order.
    pub fn rerank_pairs<A: AsRef<str>, B: AsRef<str>>(
        &self,
        pairs: &[(A, B)],
        batch_size: Option<usize>,
    ) -> Result<Vec<f32>> {
        let batch_size = batch_size.unwrap_or(self.batch_size);
        if batch_size == 0 {
            return Err(Error::InvalidArgument("batch_size must be >= 1".into()));
        }
        let backend = self.backend()?;
        let mut scores = Vec::with_capacity(pairs.len());
        // Windows bound the tokenized pairs held at once.
        for window in pairs.chunks((batch_size * 4).clamp(256, 8192)) {
            scores.extend(backend.score(window, batch_size, self.max_batch_tokens)?);
        }
        Ok(scores)
    }

    /// The `k` most relevant documents, best first (ties keep input order).
    pub fn rerank_top_k<S: AsRef<str>>(
        &self,
        query: &str,
        documents: &[S],
        k: usize,
        batch_size: Option<usize>,
    ) -> Result<Vec<RankedDocument>> {
        let scores = self.rerank(query, documents, batch_size)?;
        Ok(top_k(&scores, k))
    }

    /// Tokens of the pairs after truncation, special tokens included.
    pub fn token_count<A: AsRef<str>, B: AsRef<str>>(&self, pairs: &[(A, B)]) -> Result<usize> {
        let backend = self.backend()?;
        let mut total = 0;
        for chunk in pairs.chunks(1024) {
            total += backend
                .tokenizer
                .encode_pairs(chunk)?
                .iter()
                .map(|(ids, _)| ids.len())
                .sum::<usize>();
        }
        Ok(total)
    }
}

/// Indices of the `k` highest scores, best first; NaN scores rank last.
pub fn top_k(scores: &[f32], k: usize) -> Vec<RankedDocument> {
    let mut ranked: Vec<RankedDocument> = scores
        .iter()
        .enumerate()
        .map(|(index, &score)| RankedDocument { index, score })
        .collect();
    ranked.sort_by(|a, b| {
        let key = |s: f32| if s.is_nan() { f32::NEG_INFINITY } else { s };
        key(b.score).total_cmp(&key(a.score))
    });
    ranked.truncate(k);
    ranked
}

impl Backend {
    fn score<A: AsRef<str>, B: AsRef<str>>(
        &self,
        pairs: &[(A, B)],
        max_items: usize,
        max_tokens: usize,
    ) -> Result<Vec<f32>> {
        let encoded = self.tokenizer.encode_pairs(pairs)?;
        let lengths: Vec<usize> = encoded.iter().map(|(ids, _)| ids.len()).collect();
        batching::run_sorted(&lengths, max_items, max_tokens, |batch| {
            let padding = self.tokenizer.padding();
            let width = batch.iter().map(|&i| lengths[i]).max().unwrap_or(0);
            let rows = batch.len();
            let mut input_ids = Array2::from_elem((rows, width), i64::from(padding.pad_id));
            let mut type_ids = Array2::<i64>::zeros((rows, width));
            let mut mask = Array2::<i64>::zeros((rows, width));
            for (r, &i) in batch.iter().enumerate() {
                let (ids, types) = &encoded[i];
                let start = match padding.side {
                    PadSide::Right => 0,
                    PadSide::Left => width - ids.len(),
                };
                for (c, (&id, &t)) in ids.iter().zip(types).enumerate() {
                    input_ids[[r, start + c]] = i64::from(id);
                    type_ids[[r, start + c]] = i64::from(t);
                    mask[[r, start + c]] = 1;
                }
            }
            let mut feed: Vec<(String, DynValue)> = vec![(
                "input_ids".into(),
                Tensor::from_array(input_ids)?.into_dyn(),
            )];
            if self.model.has_input("token_type_ids") {
                feed.push((
                    "token_type_ids".into(),
                    Tensor::from_array(type_ids)?.into_dyn(),
                ));
            }
            if self.model.has_input("attention_mask") {
                feed.push((
                    "attention_mask".into(),
                    Tensor::from_array(mask)?.into_dyn(),
                ));
            }
            let logits = self.model.run_f32(feed, &self.output)?;
            let shape = logits.shape().to_vec();
            let scores: Option<Vec<f32>> = match shape.len() {
                2 => logits
                    .into_dimensionality::<Ix2>()
                    .ok()
                    .filter(|l| l.nrows() == rows && l.ncols() >= 1)
                    .map(|l| l.column(0).to_vec()),
                1 => logits
                    .into_dimensionality::<Ix1>()
                    .ok()
                    .filter(|l| l.len() == rows)
                    .map(|l| l.to_vec()),
                _ => None,
            };
            scores.ok_or_else(|| Error::ModelMismatch {
                model: self.model_name.clone(),
                reason: format!(
                    "output {:?} has shape {shape:?}, expected [{rows}, labels]",
                    self.output
                ),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_best_first_and_keeps_ties_stable() {
        let ranked = top_k(&[0.1, 0.9, f32::NAN, 0.9, -1.0], 3);
        let idx: Vec<usize> = ranked.iter().map(|r| r.index).collect();
        assert_eq!(idx, vec![1, 3, 0]);
        assert_eq!(top_k(&[1.0], 5).len(), 1);
        assert!(top_k(&[], 2).is_empty());
    }
}
