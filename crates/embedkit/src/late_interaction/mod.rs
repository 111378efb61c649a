//! Late-interaction (multi-vector) text embeddings: `LateInteractionTextEmbedding`,
//! fastembed's class of the same name — one matrix (tokens × dim) per text — and MaxSim
//! scoring.

mod colbert;

use std::path::PathBuf;
use std::sync::Arc;

use ndarray::{Array2, ArrayView2};

use crate::batching::WindowStream;
use crate::error::{Error, Result};
use crate::hub::{self, ModelFiles};
use crate::options::{load_option_setters, Lazy, LoadOptions};
use crate::registry::{self, LateInteractionModelDescription};
use crate::runtime::RuntimeOptions;

use colbert::ColbertBackend;

/// One text's token vectors, `[tokens, dim]`.
pub type MultiVector = Array2<f32>;

/// The files a late-interaction model needs.
pub fn model_files(desc: &LateInteractionModelDescription) -> ModelFiles<'_> {
    let mut required = vec![desc.model_file.clone()];
    required.extend(desc.additional_files.iter().cloned());
    required.push("tokenizer.json".into());
    required.push("tokenizer_config.json".into());
    ModelFiles::new(&desc.model, &desc.sources, required, Vec::new())
}

/// Builder for [`LateInteractionTextEmbedding`].
#[derive(Debug, Clone)]
pub struct LateInteractionTextEmbeddingBuilder {
    model_name: String,
    load: LoadOptions,
}

impl LateInteractionTextEmbeddingBuilder {
    load_option_setters!();

    pub fn build(self) -> Result<LateInteractionTextEmbedding> {
        self.load.validate()?;
        let desc = registry::late_interaction_model(&self.model_name)?;
        let model_dir = hub::resolve_model_dir(&model_files(&desc), &self.load.cache)?;
        let model = LateInteractionTextEmbedding {
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

/// Multi-vector text embeddings with a ColBERT-style model of the registry.
pub struct LateInteractionTextEmbedding {
    desc: LateInteractionModelDescription,
    model_dir: PathBuf,
    runtime: RuntimeOptions,
    backend: Lazy<ColbertBackend>,
    batch_size: usize,
    max_batch_tokens: usize,
}

impl std::fmt::Debug for LateInteractionTextEmbedding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LateInteractionTextEmbedding")
            .field("model", &self.desc.model)
            .field("model_dir", &self.model_dir)
            .finish_non_exhaustive()
    }
}

/// Streaming multi-vectors in input order.
pub type MultiVectorIter<'a, S> = WindowStream<'a, S, MultiVector>;

impl LateInteractionTextEmbedding {
    pub fn builder(model_name: impl Into<String>) -> LateInteractionTextEmbeddingBuilder {
        LateInteractionTextEmbeddingBuilder {
            model_name: model_name.into(),
            load: LoadOptions::default(),
        }
    }

    /// Every supported late-interaction text model.
    pub fn list_supported_models() -> Vec<LateInteractionModelDescription> {
        registry::late_interaction_models()
    }

    pub fn description(&self) -> &LateInteractionModelDescription {
        &self.desc
    }

    /// Dimensions of each token vector (fastembed's `embedding_size`).
    pub fn embedding_size(&self) -> usize {
        self.desc.dim
    }

    pub fn model_dir(&self) -> &std::path::Path {
        &self.model_dir
    }

    fn backend(&self) -> Result<Arc<ColbertBackend>> {
        self.backend.get_or_load(|| {
            Ok(Arc::new(ColbertBackend::load(
                &self.desc,
                &self.model_dir,
                &self.runtime,
            )?))
        })
    }

    /// Token vectors of each document (document marker, punctuation dropped, rows
    /// normalized), in input order.
    pub fn embed<S: AsRef<str>>(
        &self,
        documents: &[S],
        batch_size: Option<usize>,
    ) -> Result<Vec<MultiVector>> {
        self.try_embed_iter(documents.iter().map(|d| Ok(d.as_ref())), batch_size, false)
            .collect()
    }

    /// The same as [`Self::embed`], as fastembed's `passage_embed`.
    pub fn passage_embed<S: AsRef<str>>(
        &self,
        passages: &[S],
        batch_size: Option<usize>,
    ) -> Result<Vec<MultiVector>> {
        self.embed(passages, batch_size)
    }

    /// Token vectors of each query (query marker, expanded with the mask token where the
    /// model does so), in input order.
    pub fn query_embed<S: AsRef<str>>(&self, queries: &[S]) -> Result<Vec<MultiVector>> {
        self.try_embed_iter(queries.iter().map(|d| Ok(d.as_ref())), None, true)
            .collect()
    }

    /// Streams the multi-vectors of fallible inputs in input order, in bounded memory.
    pub fn try_embed_iter<'a, I, S>(
        &'a self,
        texts: I,
        batch_size: Option<usize>,
        as_queries: bool,
    ) -> MultiVectorIter<'a, S>
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
            let backend = self.backend()?;
            if as_queries {
                backend.queries(window, batch_size, self.max_batch_tokens)
            } else {
                backend.documents(window, batch_size, self.max_batch_tokens)
            }
        })
    }

    /// fastembed's `token_count`: tokens of documents, or of queries; with
    /// `include_extension`, queries count their mask expansion and every text its marker.
    pub fn token_count<S: AsRef<str>>(
        &self,
        texts: &[S],
        is_doc: bool,
        include_extension: bool,
    ) -> Result<usize> {
        let refs: Vec<&str> = texts.iter().map(|t| t.as_ref()).collect();
        self.backend()?
            .token_count(&refs, is_doc, include_extension)
    }
}

/// ColBERT's late-interaction score: for each query vector the largest dot product with
/// any document vector, summed. An empty document scores 0.
pub fn max_sim(query: ArrayView2<'_, f32>, document: ArrayView2<'_, f32>) -> Result<f32> {
    if query.ncols() != document.ncols() {
        return Err(Error::InvalidArgument(format!(
            "query vectors have {} dimensions, document vectors {}",
            query.ncols(),
            document.ncols()
        )));
    }
    if document.nrows() == 0 {
        return Ok(0.0);
    }
    let sims = query.dot(&document.t());
    Ok(sims
        .outer_iter()
        .map(|row| row.iter().copied().fold(f32::NEG_INFINITY, f32::max))
        .sum())
}

/// [`max_sim`] of one query against each document, in document order.
pub fn max_sim_batch(query: ArrayView2<'_, f32>, documents: &[MultiVector]) -> Result<Vec<f32>> {
    documents.iter().map(|d| max_sim(query, d.view())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn max_sim_sums_best_matches() {
        let q = array![[1.0f32, 0.0], [0.0, 1.0]];
        let d = array![[0.5f32, 0.5], [0.9, 0.1], [0.0, 0.2]];
        // row 0: best 0.9; row 1: best 0.5
        assert!((max_sim(q.view(), d.view()).unwrap() - 1.4).abs() < 1e-6);
        assert_eq!(
            max_sim(q.view(), Array2::zeros((0, 2)).view()).unwrap(),
            0.0
        );
        assert!(max_sim(q.view(), Array2::zeros((1, 3)).view()).is_err());
        let scores = max_sim_batch(q.view(), &[d.clone(), d]).unwrap();
        assert_eq!(scores.len(), 2);
    }
}
