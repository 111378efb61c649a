//! Sparse text embeddings: `SparseTextEmbedding`, fastembed's class of the same name, and
//! the `SparseEmbedding` a Qdrant sparse vector is made of.

pub mod bm25;
mod bm42;
mod minicoil;
mod splade;

pub use bm25::Bm25Options;
pub use minicoil::MinicoilOptions;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::batching::WindowStream;
use crate::error::{Error, Result};
use crate::hub::{self, ModelFiles};
use crate::options::{load_option_setters, Lazy, LoadOptions};
use crate::registry::{self, SparseKind, SparseModelDescription};
use crate::runtime::RuntimeOptions;

/// A sparse vector: token ids (ascending, no duplicates) and their weights, what a Qdrant
/// sparse vector holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SparseEmbedding {
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl SparseEmbedding {
    /// From (index, value) pairs in any order; duplicate indices keep the last value.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (u32, f32)>) -> Self {
        Self::from_map(pairs.into_iter().collect())
    }

    fn from_map(map: BTreeMap<u32, f32>) -> Self {
        let (indices, values) = map.into_iter().unzip();
        SparseEmbedding { indices, values }
    }

    /// fastembed's `as_dict`: index → value.
    pub fn as_dict(&self) -> BTreeMap<u32, f32> {
        self.indices
            .iter()
            .copied()
            .zip(self.values.iter().copied())
            .collect()
    }

    /// The two arrays, as a Qdrant `SparseVector` takes them.
    pub fn into_parts(self) -> (Vec<u32>, Vec<f32>) {
        (self.indices, self.values)
    }

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// The dot product with another sparse vector (how Qdrant scores them).
    pub fn dot(&self, other: &SparseEmbedding) -> f32 {
        let (mut i, mut j, mut sum) = (0, 0, 0f32);
        while i < self.indices.len() && j < other.indices.len() {
            match self.indices[i].cmp(&other.indices[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    sum += self.values[i] * other.values[j];
                    i += 1;
                    j += 1;
                }
            }
        }
        sum
    }
}

/// How to batch a window of texts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchLimits {
    pub batch_size: usize,
    pub max_batch_tokens: usize,
}

/// A way of computing a sparse model's vectors.
pub(crate) trait SparseBackend: Send + Sync {
    /// One vector per document, in order.
    fn embed_texts(&self, texts: &[&str], limits: BatchLimits) -> Result<Vec<SparseEmbedding>>;
    /// One vector per query; models that weigh queries differently from documents
    /// override this.
    fn embed_queries(&self, texts: &[&str], limits: BatchLimits) -> Result<Vec<SparseEmbedding>> {
        self.embed_texts(texts, limits)
    }
    /// The number of tokens of the texts, as the model counts them.
    fn token_count(&self, texts: &[&str]) -> Result<usize>;
}

/// A stopword list, one word per line; empty when the file is absent, as fastembed
/// runs without it.
pub(crate) fn read_stopwords(path: &std::path::Path) -> Result<std::collections::HashSet<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.lines().map(str::to_string).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The text of each token id of the tokenizer's vocabulary (added tokens included).
pub(crate) fn token_texts(tokenizer: &crate::tokenize::TextTokenizer) -> Vec<Option<String>> {
    let vocab = tokenizer.inner().get_vocab(true);
    let size = vocab.values().max().map_or(0, |&m| m as usize + 1);
    let mut texts = vec![None; size];
    for (token, id) in vocab {
        texts[id as usize] = Some(token);
    }
    texts
}

/// The files a sparse model needs.
pub fn model_files(desc: &SparseModelDescription) -> ModelFiles<'_> {
    let mut required = vec![desc.model_file.clone()];
    let mut optional: Vec<String> = Vec::new();
    for file in &desc.additional_files {
        // Stopword lists: fastembed runs without them when they are absent.
        if file.ends_with(".txt") {
            optional.push(file.clone());
        } else {
            required.push(file.clone());
        }
    }
    if desc.kind != SparseKind::Bm25 {
        required.push("tokenizer.json".into());
        required.push("tokenizer_config.json".into());
    }
    ModelFiles::new(&desc.model, &desc.sources, required, optional)
}

/// Builder for [`SparseTextEmbedding`].
#[derive(Debug, Clone)]
pub struct SparseTextEmbeddingBuilder {
    model_name: String,
    load: LoadOptions,
    bm25: Bm25Options,
    minicoil: MinicoilOptions,
    alpha: f64,
}

impl SparseTextEmbeddingBuilder {
    load_option_setters!();

    /// BM42's `alpha`: weights become `ln(1 + attention)^alpha` (default 0.5).
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// BM25's parameters (k, b, avg_len, language, stopwords, ...), for `Qdrant/bm25`.
    pub fn bm25(mut self, opts: Bm25Options) -> Self {
        self.bm25 = opts;
        self
    }

    /// MiniCOIL's BM25 parameters (k, b, avg_len), for `Qdrant/minicoil-v1`.
    pub fn minicoil(mut self, opts: MinicoilOptions) -> Self {
        self.minicoil = opts;
        self
    }

    pub fn build(self) -> Result<SparseTextEmbedding> {
        self.load.validate()?;
        let desc = registry::sparse_model(&self.model_name)?;
        let model_dir = hub::resolve_model_dir(&model_files(&desc), &self.load.cache)?;
        let model = SparseTextEmbedding {
            desc,
            model_dir,
            runtime: self.load.runtime,
            bm25: self.bm25,
            minicoil: self.minicoil,
            alpha: self.alpha,
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

/// Sparse text embeddings with a model of the registry.
pub struct SparseTextEmbedding {
    desc: SparseModelDescription,
    model_dir: PathBuf,
    runtime: RuntimeOptions,
    bm25: Bm25Options,
    minicoil: MinicoilOptions,
    alpha: f64,
    backend: Lazy<dyn SparseBackend>,
    batch_size: usize,
    max_batch_tokens: usize,
}

impl std::fmt::Debug for SparseTextEmbedding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SparseTextEmbedding")
            .field("model", &self.desc.model)
            .field("model_dir", &self.model_dir)
            .finish_non_exhaustive()
    }
}

/// Streaming sparse embeddings in input order.
pub type SparseEmbedIter<'a, S> = WindowStream<'a, S, SparseEmbedding>;

impl SparseTextEmbedding {
    pub fn builder(model_name: impl Into<String>) -> SparseTextEmbeddingBuilder {
        SparseTextEmbeddingBuilder {
            model_name: model_name.into(),
            load: LoadOptions::default(),
            bm25: Bm25Options::default(),
            minicoil: MinicoilOptions::default(),
            alpha: 0.5,
        }
    }

    /// Every supported sparse model.
    pub fn list_supported_models() -> Vec<SparseModelDescription> {
        registry::sparse_models()
    }

    pub fn description(&self) -> &SparseModelDescription {
        &self.desc
    }

    pub fn model_dir(&self) -> &std::path::Path {
        &self.model_dir
    }

    fn backend(&self) -> Result<Arc<dyn SparseBackend>> {
        self.backend.get_or_load(|| {
            Ok(match self.desc.kind {
                SparseKind::Splade | SparseKind::IfSplade => Arc::new(splade::SpladeBackend::load(
                    &self.desc,
                    &self.model_dir,
                    &self.runtime,
                )?),
                SparseKind::Bm25 => {
                    Arc::new(bm25::Bm25Backend::load(&self.model_dir, self.bm25.clone())?)
                }
                SparseKind::Bm42 => Arc::new(bm42::Bm42Backend::load(
                    &self.desc,
                    &self.model_dir,
                    &self.runtime,
                    self.alpha,
                )?),
                SparseKind::Minicoil => Arc::new(minicoil::MinicoilBackend::load(
                    &self.desc,
                    &self.model_dir,
                    &self.runtime,
                    self.minicoil.clone(),
                )?),
            })
        })
    }

    /// Embeds documents; one sparse vector per document, in input order.
    pub fn embed<S: AsRef<str>>(
        &self,
        documents: &[S],
        batch_size: Option<usize>,
    ) -> Result<Vec<SparseEmbedding>> {
        self.try_embed_iter(documents.iter().map(|d| Ok(d.as_ref())), batch_size, false)
            .collect()
    }

    /// Embeds queries, as fastembed's `query_embed` (for inference-free models, an IDF
    /// lookup with no model run).
    pub fn query_embed<S: AsRef<str>>(&self, queries: &[S]) -> Result<Vec<SparseEmbedding>> {
        self.try_embed_iter(queries.iter().map(|d| Ok(d.as_ref())), None, true)
            .collect()
    }

    /// Embeds passages, as fastembed's `passage_embed` (the same as `embed`).
    pub fn passage_embed<S: AsRef<str>>(
        &self,
        passages: &[S],
        batch_size: Option<usize>,
    ) -> Result<Vec<SparseEmbedding>> {
        self.embed(passages, batch_size)
    }

    /// Streams the vectors of fallible inputs in input order, in bounded memory.
    pub fn try_embed_iter<'a, I, S>(
        &'a self,
        texts: I,
        batch_size: Option<usize>,
        as_queries: bool,
    ) -> SparseEmbedIter<'a, S>
    where
        I: IntoIterator<Item = Result<S>>,
        I::IntoIter: 'a,
        S: AsRef<str> + 'a,
    {
        let batch_size = batch_size.unwrap_or(self.batch_size);
        WindowStream::new(texts.into_iter(), batch_size, move |window: &[&str]| {
            if batch_size == 0 {
                return Err(Error::InvalidArgument("batch_size must be >= 1".into()));
            }
            self.embed_window(window, batch_size, as_queries)
        })
    }

    fn embed_window(
        &self,
        texts: &[&str],
        batch_size: usize,
        as_queries: bool,
    ) -> Result<Vec<SparseEmbedding>> {
        let backend = self.backend()?;
        let limits = BatchLimits {
            batch_size,
            max_batch_tokens: self.max_batch_tokens,
        };
        if as_queries {
            backend.embed_queries(texts, limits)
        } else {
            backend.embed_texts(texts, limits)
        }
    }

    /// The number of tokens of the texts after truncation, special tokens included.
    pub fn token_count<S: AsRef<str>>(&self, texts: &[S]) -> Result<usize> {
        let backend = self.backend()?;
        let refs: Vec<&str> = texts.iter().map(|t| t.as_ref()).collect();
        backend.token_count(&refs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_sorted_and_deduplicated() {
        let e = SparseEmbedding::from_pairs([(5, 0.5), (1, 1.0), (5, 2.0)]);
        assert_eq!(e.indices, vec![1, 5]);
        assert_eq!(e.values, vec![1.0, 2.0]);
        assert_eq!(e.as_dict().get(&5), Some(&2.0));
        let other = SparseEmbedding::from_pairs([(5, 3.0), (7, 1.0)]);
        assert_eq!(e.dot(&other), 6.0);
        assert!(SparseEmbedding::default().is_empty());
    }
}
