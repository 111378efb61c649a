//! Cross-encoder reranking: [`TextCrossEncoder`], fastembed's class of the same name.
//!
//! What the family computes: each (query, document) pair is encoded together (the
//! tokenizer's pair template and type ids, truncated longest-first) and the graph's first
//! logit is its score.

use ndarray::{Ix1, Ix2};
use serde::Serialize;

use crate::engine::{Builder, Model, Stream};
use crate::error::{Error, Result};
use crate::graph::TextGraph;
use crate::handle::{CallOptions, Capability, Capable, Pairs};
use crate::inputs::TokenBatch;
use crate::pipeline::{Family, Load, Pipeline, Prep, Purpose};
use crate::registry::Kind;
use crate::registry::{ModelCore, ModelSource, RerankerModelDescription};
use crate::runtime::Lane;
use crate::tokenize::TokenizerOptions;

/// A cross-encoder reranker of the registry: one score per (query, document) pair.
///
/// ```no_run
/// use embedkit::TextCrossEncoder;
/// let model = TextCrossEncoder::builder("Xenova/ms-marco-MiniLM-L-6-v2").build()?;
/// let scores = model.rerank("what is a vector database", &["Qdrant stores vectors", "It rains"], None)?;
/// assert_eq!(scores.len(), 2);
/// # Ok::<(), embedkit::Error>(())
/// ```
pub type TextCrossEncoder = Model<CrossEncoder>;
/// Builder of a [`TextCrossEncoder`].
pub type TextCrossEncoderBuilder = Builder<CrossEncoder>;

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

impl From<CustomReranker> for RerankerModelDescription {
    fn from(c: CustomReranker) -> Self {
        let mut core = ModelCore::new(c.model, c.sources, c.model_file);
        core.description = c.description;
        core.license = c.license;
        core.size_in_gb = c.size_in_gb;
        core.additional_files = c.additional_files;
        core.custom = true;
        RerankerModelDescription { core }
    }
}

/// One document's place and score, from [`TextCrossEncoder::rerank_top_k`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RankedDocument {
    /// Position of the document in the input.
    pub index: usize,
    pub score: f32,
}

/// A loaded cross-encoder: the reranking family (see [`TextCrossEncoder`]).
pub struct CrossEncoder {
    graph: TextGraph,
}

impl Family for CrossEncoder {
    type Description = RerankerModelDescription;
    type Settings = crate::pipeline::NoSettings;

    fn load(at: Load<'_, Self>) -> Result<CrossEncoder> {
        let options = TokenizerOptions::default();
        let graph = TextGraph::load_pairs(&at.desc.core, at.dir, at.runtime, options)?;
        Ok(CrossEncoder { graph })
    }
}

/// A pair's token ids and their type ids.
pub(crate) type EncodedPair = (Vec<u32>, Vec<u32>);

impl Pipeline for CrossEncoder {
    type Input<'a> = (&'a str, &'a str);
    type Item = EncodedPair;
    type Output = f32;

    fn prepare(&self, pairs: &[(&str, &str)], call: Prep) -> Result<Vec<EncodedPair>> {
        self.graph
            .tokenizer
            .encode_pairs_from(pairs, call.truncation)
    }

    fn cost(&self, item: &EncodedPair, _: Purpose) -> usize {
        item.0.len()
    }

    fn parallelism(&self) -> usize {
        self.graph.parallelism()
    }

    fn run(&self, batch: &[&EncodedPair], _: Purpose, lane: Lane) -> Result<Vec<f32>> {
        let ids: Vec<&[u32]> = batch.iter().map(|p| p.0.as_slice()).collect();
        let types: Vec<&[u32]> = batch.iter().map(|p| p.1.as_slice()).collect();
        let padded = TokenBatch::with_types(&ids, Some(&types), self.graph.tokenizer.padding());
        let logits = self.graph.run(&padded, lane)?;
        let rows = batch.len();
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
            model: self.graph.name.clone(),
            reason: format!(
                "output {:?} has shape {shape:?}, expected [{rows}, labels]",
                self.graph.output
            ),
        })
    }
}

/// Pairs of any two string types, as the pipeline takes them.
fn as_pair<A: AsRef<str>, B: AsRef<str>>(p: &(A, B)) -> (&str, &str) {
    (p.0.as_ref(), p.1.as_ref())
}

impl Model<CrossEncoder> {
    /// Registers a reranker under a new name (case-insensitively unique), as fastembed's
    /// `TextCrossEncoder.add_custom_model`. To load one without registering it, pass its
    /// description to [`Model::from_description`].
    pub fn add_custom_model(custom: CustomReranker) -> Result<()> {
        Self::register_model(custom.into())
    }

    /// The relevance of each document to `query`, in document order.
    pub fn rerank<S: AsRef<str>>(
        &self,
        query: &str,
        documents: &[S],
        batch_size: Option<usize>,
    ) -> Result<Vec<f32>> {
        self.rerank_iter(query, documents, batch_size).collect()
    }

    /// Streams the scores of `documents` against `query`, in document order, in
    /// bounded memory.
    pub fn rerank_iter<'a, I>(
        &'a self,
        query: &'a str,
        documents: I,
        batch_size: Option<usize>,
    ) -> Stream<'a, f32>
    where
        I: IntoIterator,
        I::Item: AsRef<str> + 'a,
        I::IntoIter: 'a,
    {
        let pairs = documents.into_iter().map(move |d| Ok((query, d)));
        self.stream(pairs, batch_size, Purpose::Document, as_pair)
    }

    /// The score of each (query, document) pair, in order.
    pub fn rerank_pairs<A: AsRef<str>, B: AsRef<str>>(
        &self,
        pairs: &[(A, B)],
        batch_size: Option<usize>,
    ) -> Result<Vec<f32>> {
        self.rerank_pairs_iter(pairs.iter().map(|(a, b)| Ok((a, b))), batch_size)
            .collect()
    }

    /// Streams the scores of fallible (query, document) pairs, in order; an input error
    /// ends the stream after the scores before it.
    pub fn rerank_pairs_iter<'a, I, A, B>(
        &'a self,
        pairs: I,
        batch_size: Option<usize>,
    ) -> Stream<'a, f32>
    where
        I: IntoIterator<Item = Result<(A, B)>>,
        I::IntoIter: 'a,
        A: AsRef<str> + 'a,
        B: AsRef<str> + 'a,
    {
        self.stream(pairs.into_iter(), batch_size, Purpose::Document, as_pair)
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
        let pipeline = self.pipeline()?;
        let mut total = 0;
        for chunk in pairs.chunks(1024) {
            total += pipeline
                .graph
                .tokenizer
                .encode_pairs(chunk)?
                .iter()
                .map(|(ids, _)| ids.len())
                .sum::<usize>();
        }
        Ok(total)
    }
}

/// Indices of the `k` highest scores, best first; NaN scores rank last, ties keep input
/// order.
pub fn top_k(scores: &[f32], k: usize) -> Vec<RankedDocument> {
    let mut best = TopN::new(k);
    for &s in scores {
        best.push(s);
    }
    best.into_ranked()
}

/// The `k` best of scores streamed in, kept in memory for `k` only: the ranking step of
/// [`top_k`] and of [`Operations::rank`](crate::Operations::rank).
#[derive(Debug)]
pub struct TopN {
    k: usize,
    seen: usize,
    /// The kept, worst on top (so the one to drop is at hand).
    kept: std::collections::BinaryHeap<Worse>,
}

impl TopN {
    pub fn new(k: usize) -> Self {
        TopN {
            k,
            seen: 0,
            kept: std::collections::BinaryHeap::new(),
        }
    }

    /// The score of the next document (its index: how many came before).
    pub fn push(&mut self, score: f32) {
        let index = self.seen;
        self.seen += 1;
        if self.k == 0 {
            return;
        }
        self.kept.push(Worse(RankedDocument { index, score }));
        if self.kept.len() > self.k {
            self.kept.pop();
        }
    }

    /// The kept, best first.
    pub fn into_ranked(self) -> Vec<RankedDocument> {
        self.kept
            .into_sorted_vec()
            .into_iter()
            .map(|w| w.0)
            .collect()
    }
}

/// Orders ranked documents so that the worse is the greater: lower score (NaN lowest),
/// then later input. A max-heap of these keeps the worst on top; sorted, best come first.
#[derive(Debug)]
struct Worse(RankedDocument);

impl Ord for Worse {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |s: f32| if s.is_nan() { f32::NEG_INFINITY } else { s };
        key(other.0.score)
            .total_cmp(&key(self.0.score))
            .then(self.0.index.cmp(&other.0.index))
    }
}
impl PartialOrd for Worse {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Worse {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl Eq for Worse {}

impl Capable for Model<CrossEncoder> {
    fn count_pair_tokens(&self, pairs: &[(&str, &str)]) -> Result<usize> {
        self.token_count(pairs)
    }
    fn kind(&self) -> Kind {
        Kind::Rerank
    }
    fn capabilities(&self) -> &'static [Capability] {
        &[Capability::PairScores]
    }
    fn score_stream<'a>(&'a self, pairs: Pairs<'a>, o: &CallOptions) -> Stream<'a, f32> {
        self.stream(pairs, o.batch_size, o.prep(), as_pair)
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
