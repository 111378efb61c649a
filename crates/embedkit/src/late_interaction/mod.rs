//! Late-interaction (multi-vector) text embeddings: [`LateInteractionTextEmbedding`],
//! fastembed's class of the same name — one matrix (tokens × dim) per text — and MaxSim
//! scoring.
//!
//! What the family computes: a marker token after the first token; documents drop
//! punctuation and padding, queries are expanded with the mask token (`colbert`).
//! Queries batch only with queries of the same expanded length, which padding would
//! otherwise change.

mod colbert;

use ndarray::{Array2, ArrayView2};

use crate::batching::Batching;
use crate::engine::Stream;
use crate::engine::{Builder, Model};
use crate::error::{Error, Result};
use crate::handle::{CallOptions, Capability, Capable, Texts};
use crate::pipeline::{Family, Load, Pipeline, Prep, Purpose, TextPipeline};
use crate::registry::Kind;
use crate::registry::LateInteractionModelDescription;
use crate::runtime::Lane;
use crate::tokenize::{Token, TokenSpan, TruncationSide};

pub use colbert::Colbert;

/// One text's token vectors, `[tokens, dim]`.
pub type MultiVector = Array2<f32>;

/// Multi-vector text embeddings with a ColBERT-style model of the registry: one
/// [`MultiVector`] per text, from the methods every text family shares (see [`Model`]).
/// `query_embed` expands queries as the model does; `embed` / `passage_embed` embed
/// documents.
///
/// ```no_run
/// use embedkit::{max_sim, LateInteractionTextEmbedding};
/// let model = LateInteractionTextEmbedding::builder("colbert-ir/colbertv2.0").build()?;
/// let docs = model.embed(&["ColBERT scores token by token"], None)?;
/// let query = model.query_embed(&["how does colbert score"], None)?;
/// let score = max_sim(query[0].view(), docs[0].view())?;
/// # Ok::<(), embedkit::Error>(())
/// ```
pub type LateInteractionTextEmbedding = Model<Colbert>;
/// Builder of a [`LateInteractionTextEmbedding`].
pub type LateInteractionTextEmbeddingBuilder = Builder<Colbert>;

impl Family for Colbert {
    type Description = LateInteractionModelDescription;
    type Settings = crate::pipeline::NoSettings;

    fn load(at: Load<'_, Self>) -> Result<Colbert> {
        Colbert::load_from(at.desc, at.dir, at.runtime)
    }
}

impl Pipeline for Colbert {
    type Input<'a> = &'a str;
    type Item = Vec<u32>;
    type Output = MultiVector;

    fn prepare(&self, texts: &[&str], call: Prep) -> Result<Vec<Vec<u32>>> {
        self.tokenize(texts, call.truncation)
    }

    fn cost(&self, item: &Vec<u32>, purpose: Purpose) -> usize {
        self.batch_length(item, purpose)
    }

    fn batching(&self, purpose: Purpose) -> Batching {
        match purpose {
            Purpose::Query => Batching::EqualLength,
            _ => Batching::Sorted,
        }
    }

    fn parallelism(&self) -> usize {
        Colbert::parallelism(self)
    }

    fn run(&self, batch: &[&Vec<u32>], purpose: Purpose, lane: Lane) -> Result<Vec<MultiVector>> {
        let seqs: Vec<&[u32]> = batch.iter().map(|s| s.as_slice()).collect();
        match purpose {
            Purpose::Query => self.queries(&seqs, lane),
            _ => self.documents(&seqs, lane),
        }
    }
}

impl TextPipeline for Colbert {
    fn tokenize(&self, texts: &[&str], side: Option<TruncationSide>) -> Result<Vec<Vec<u32>>> {
        Colbert::tokenize(self, texts, side)
    }

    fn describe_tokens(&self, ids: &[u32]) -> Vec<Token> {
        self.tokenizer().describe(ids)
    }

    fn spans(&self, texts: &[&str], add_special: bool) -> Result<Vec<Vec<TokenSpan>>> {
        self.tokenizer().spans(texts, add_special)
    }

    fn max_length(&self) -> Option<usize> {
        Some(self.tokenizer().max_length())
    }

    fn overlong(&self, texts: &[&str]) -> Result<Vec<bool>> {
        self.tokenizer().overlong(texts)
    }

    fn decode(&self, ids: &[Vec<u32>], skip_special: bool) -> Result<Vec<String>> {
        self.tokenizer().decode(ids, skip_special)
    }
}

impl Model<Colbert> {
    /// Dimensions of each token vector (fastembed's `embedding_size`).
    pub fn embedding_size(&self) -> usize {
        self.description().dim
    }

    /// fastembed's `token_count` with its options: tokens of documents or of queries
    /// (`purpose`); with `include_extension`, queries count their mask expansion and
    /// every text its marker. [`token_count`](Model::token_count) is this for
    /// documents without the extension, as fastembed's default.
    pub fn token_count_with<S: AsRef<str>>(
        &self,
        texts: &[S],
        purpose: Purpose,
        include_extension: bool,
    ) -> Result<usize> {
        let refs: Vec<&str> = texts.iter().map(|t| t.as_ref()).collect();
        self.pipeline()?
            .token_count(&refs, purpose != Purpose::Query, include_extension)
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

impl Capable for Model<Colbert> {
    fn count_tokens(
        &self,
        texts: &[&str],
        purpose: Purpose,
        include_extension: bool,
    ) -> Result<usize> {
        self.token_count_with(texts, purpose, include_extension)
    }
    fn kind(&self) -> Kind {
        Kind::LateInteraction
    }
    fn capabilities(&self) -> &'static [Capability] {
        &[Capability::MultiVectorText, Capability::Tokens]
    }
    fn dim(&self) -> Option<usize> {
        Some(self.embedding_size())
    }
    fn multi_stream<'a>(&'a self, texts: Texts<'a>, o: &CallOptions) -> Stream<'a, MultiVector> {
        self.try_embed_iter(texts, o.batch_size, o.prep())
    }
    crate::handle::text_tokens!();
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
