//! Sparse text embeddings: [`SparseTextEmbedding`], fastembed's class of the same name,
//! and the [`SparseEmbedding`] a Qdrant sparse vector is made of.
//!
//! What the family computes: SPLADE (`splade`) and MiniCOIL (`minicoil`) run a graph
//! on token batches; BM42 (`bm42`) reads the graph's attention; BM25 (`bm25`) and the
//! query side of BM42 and the inference-free SPLADE models need no graph, so their
//! vectors are finished while a window is prepared.

// Public (hidden) only for the fuzz targets, which drive its word splitter directly.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod bm25;
#[cfg(not(feature = "internals"))]
mod bm25;
mod bm42;
mod minicoil;
mod splade;

pub use bm25::{Bm25Options, LANGUAGES};
pub use minicoil::MinicoilOptions;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use ndarray::ArrayViewD;

use crate::engine::Stream;
use crate::engine::{Builder, Model};
use crate::error::{Error, Result};
use crate::graph::TextGraph;
use crate::handle::{CallOptions, Capability, Capable, Texts};
use crate::inputs::TokenBatch;
use crate::pipeline::{Family, Load, Pipeline, Prep, Purpose, TextPipeline};
use crate::registry::Kind;
use crate::registry::{SparseKind, SparseModelDescription};
use crate::runtime::Lane;
use crate::tokenize::{Token, TokenSpan, TruncationSide};

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

/// A sparse input made ready: token ids for the graph, or a vector already finished
/// (models and queries that need no inference).
pub enum SparseItem {
    Tokens(Vec<u32>),
    Done(SparseEmbedding),
}

/// One way of computing a sparse model's vectors. Models with a graph give it through
/// [`graph`](Self::graph) and turn its output into vectors in [`finish`](Self::finish);
/// the rest (padding, running, tokenizing) is the same for all of them.
trait SparseBackend: Send + Sync {
    /// Token ids of each text, or its finished vector when no graph is needed.
    fn prepare(&self, texts: &[&str], call: Prep) -> Result<Vec<SparseItem>>;
    /// The tokenizer and graph, for models that have them.
    fn graph(&self) -> Option<&TextGraph>;
    /// One vector per row of a batch, from the graph's output.
    fn finish(
        &self,
        output: ArrayViewD<'_, f32>,
        batch: &TokenBatch,
        purpose: Purpose,
    ) -> Result<Vec<SparseEmbedding>>;
    /// The number of tokens of the texts, as the model counts them.
    fn token_count(&self, texts: &[&str]) -> Result<usize> {
        Ok(tokenize(self.graph(), texts, None)?
            .iter()
            .map(Vec::len)
            .sum())
    }
}

/// Token ids of the texts, from the graph's tokenizer.
fn tokenize(
    graph: Option<&TextGraph>,
    texts: &[&str],
    side: Option<TruncationSide>,
) -> Result<Vec<Vec<u32>>> {
    match graph {
        Some(g) => g.tokenize(texts, side),
        None => Err(Error::Unsupported(
            "this sparse model has no tokenizer and no token ids".into(),
        )),
    }
}

/// Token ids of each text as [`SparseItem::Tokens`].
fn tokens(ids: Vec<Vec<u32>>) -> Vec<SparseItem> {
    ids.into_iter().map(SparseItem::Tokens).collect()
}

/// Sparse text embeddings with a model of the registry: one [`SparseEmbedding`] per
/// text, from the methods every text family shares (see [`Model`]).
///
/// ```no_run
/// use embedkit::SparseTextEmbedding;
/// let model = SparseTextEmbedding::builder("Qdrant/bm25").build()?;
/// let vectors = model.embed(&["a sparse vector of a document"], None)?;
/// assert_eq!(vectors[0].indices.len(), vectors[0].values.len());
/// # Ok::<(), embedkit::Error>(())
/// ```
pub type SparseTextEmbedding = Model<Sparse>;
/// Builder of a [`SparseTextEmbedding`].
pub type SparseTextEmbeddingBuilder = Builder<Sparse>;

/// Builder settings of the sparse family. As a JSON object (for
/// [`EmbeddingModel::load_with`](crate::EmbeddingModel::load_with)) they are fastembed's
/// keyword arguments: `k`, `b`, `avg_len` (BM25 and MiniCOIL), `language`,
/// `token_max_length`, `disable_stemmer` (BM25), `alpha` (BM42). A setting the model's
/// kind does not take is refused at load, not ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SparseSettings {
    k: Option<f64>,
    b: Option<f64>,
    avg_len: Option<f64>,
    language: Option<String>,
    token_max_length: Option<usize>,
    disable_stemmer: Option<bool>,
    alpha: Option<f64>,
    #[serde(skip)]
    stopwords: Option<Option<std::collections::HashSet<String>>>,
}

impl SparseSettings {
    /// The names of the settings given.
    fn given(&self) -> Vec<&'static str> {
        let s = self;
        [
            ("k", s.k.is_some()),
            ("b", s.b.is_some()),
            ("avg_len", s.avg_len.is_some()),
            ("language", s.language.is_some()),
            ("token_max_length", s.token_max_length.is_some()),
            ("disable_stemmer", s.disable_stemmer.is_some()),
            ("stopwords", s.stopwords.is_some()),
            ("alpha", s.alpha.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }

    /// Refuses a setting that `kind` does not read (it would be silently ignored).
    fn check(&self, kind: SparseKind, model: &str) -> Result<()> {
        let takes: &[&str] = match kind {
            SparseKind::Bm25 => &[
                "k",
                "b",
                "avg_len",
                "language",
                "token_max_length",
                "disable_stemmer",
                "stopwords",
            ],
            SparseKind::Minicoil => &["k", "b", "avg_len"],
            SparseKind::Bm42 => &["alpha"],
            SparseKind::Splade | SparseKind::IfSplade => &[],
        };
        let foreign: Vec<&str> = self
            .given()
            .into_iter()
            .filter(|g| !takes.contains(g))
            .collect();
        if foreign.is_empty() {
            return Ok(());
        }
        let takes = if takes.is_empty() {
            "none".to_string()
        } else {
            takes.join(", ")
        };
        Err(Error::InvalidArgument(format!(
            "{model} does not take the setting(s) {}; it takes {takes}",
            foreign.join(", ")
        )))
    }

    fn bm25(&self) -> Bm25Options {
        let d = Bm25Options::default();
        Bm25Options {
            k: self.k.unwrap_or(d.k),
            b: self.b.unwrap_or(d.b),
            avg_len: self.avg_len.unwrap_or(d.avg_len),
            language: self.language.clone().unwrap_or(d.language),
            token_max_length: self.token_max_length.unwrap_or(d.token_max_length),
            disable_stemmer: self.disable_stemmer.unwrap_or(d.disable_stemmer),
            stopwords: self.stopwords.clone().unwrap_or(d.stopwords),
        }
    }

    fn minicoil(&self) -> MinicoilOptions {
        let d = MinicoilOptions::default();
        MinicoilOptions {
            k: self.k.unwrap_or(d.k),
            b: self.b.unwrap_or(d.b),
            avg_len: self.avg_len.unwrap_or(d.avg_len),
        }
    }
}

impl Builder<Sparse> {
    /// BM42's `alpha`: weights become `ln(1 + attention)^alpha` (default 0.5, as
    /// fastembed's).
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.settings.alpha = Some(alpha);
        self
    }

    /// BM25's parameters (k, b, avg_len, language, stopwords, ...), for `Qdrant/bm25`;
    /// another model refuses them at `build`.
    pub fn bm25(mut self, opts: Bm25Options) -> Self {
        let s = &mut self.settings;
        s.k = Some(opts.k);
        s.b = Some(opts.b);
        s.avg_len = Some(opts.avg_len);
        s.language = Some(opts.language);
        s.token_max_length = Some(opts.token_max_length);
        s.disable_stemmer = Some(opts.disable_stemmer);
        s.stopwords = Some(opts.stopwords);
        self
    }

    /// MiniCOIL's BM25 parameters (k, b, avg_len), for `Qdrant/minicoil-v1`; another
    /// model refuses them at `build`.
    pub fn minicoil(mut self, opts: MinicoilOptions) -> Self {
        let s = &mut self.settings;
        s.k = Some(opts.k);
        s.b = Some(opts.b);
        s.avg_len = Some(opts.avg_len);
        self
    }
}

/// A loaded sparse model: the sparse text family (see [`SparseTextEmbedding`]).
pub struct Sparse {
    backend: Box<dyn SparseBackend>,
}

impl Family for Sparse {
    type Description = SparseModelDescription;
    type Settings = SparseSettings;

    fn load(at: Load<'_, Self>) -> Result<Sparse> {
        let Load {
            desc,
            dir,
            runtime,
            settings,
        } = at;
        settings.check(desc.kind, &desc.core.model)?;
        let backend: Box<dyn SparseBackend> = match desc.kind {
            SparseKind::Splade | SparseKind::IfSplade => {
                Box::new(splade::SpladeBackend::load(desc, dir, runtime)?)
            }
            SparseKind::Bm25 => Box::new(bm25::Bm25Backend::load(dir, settings.bm25())?),
            SparseKind::Bm42 => Box::new(bm42::Bm42Backend::load(
                desc,
                dir,
                runtime,
                settings.alpha.unwrap_or(bm42::DEFAULT_ALPHA),
            )?),
            SparseKind::Minicoil => Box::new(minicoil::MinicoilBackend::load(
                desc,
                dir,
                runtime,
                settings.minicoil(),
            )?),
        };
        Ok(Sparse { backend })
    }
}

impl Pipeline for Sparse {
    type Input<'a> = &'a str;
    type Item = SparseItem;
    type Output = SparseEmbedding;

    fn prepare(&self, texts: &[&str], call: Prep) -> Result<Vec<SparseItem>> {
        self.backend.prepare(texts, call)
    }

    fn cost(&self, item: &SparseItem, _: Purpose) -> usize {
        match item {
            SparseItem::Tokens(ids) => ids.len(),
            SparseItem::Done(_) => 0,
        }
    }

    fn parallelism(&self) -> usize {
        self.backend.graph().map_or(1, TextGraph::parallelism)
    }

    fn run(
        &self,
        batch: &[&SparseItem],
        purpose: Purpose,
        lane: Lane,
    ) -> Result<Vec<SparseEmbedding>> {
        let sequences: Vec<&[u32]> = batch
            .iter()
            .filter_map(|item| match item {
                SparseItem::Tokens(ids) => Some(ids.as_slice()),
                SparseItem::Done(_) => None,
            })
            .collect();
        let mut computed = match (sequences.is_empty(), self.backend.graph()) {
            (true, _) => Vec::new(),
            (false, Some(graph)) => {
                let padded = graph.pad(&sequences);
                graph.run_view(&padded, lane, |output| {
                    self.backend.finish(output, &padded, purpose)
                })?
            }
            (false, None) => return Err(Error::Unsupported("this model runs no graph".into())),
        }
        .into_iter();
        batch
            .iter()
            .map(|item| match item {
                SparseItem::Done(v) => Ok(v.clone()),
                SparseItem::Tokens(_) => computed
                    .next()
                    .ok_or_else(|| Error::Internal("the model returned too few vectors".into())),
            })
            .collect()
    }
}

impl TextPipeline for Sparse {
    fn tokenize(&self, texts: &[&str], side: Option<TruncationSide>) -> Result<Vec<Vec<u32>>> {
        tokenize(self.backend.graph(), texts, side)
    }

    fn token_count(&self, texts: &[&str]) -> Result<usize> {
        self.backend.token_count(texts)
    }

    fn describe_tokens(&self, ids: &[u32]) -> Vec<Token> {
        self.backend
            .graph()
            .map(|g| g.tokenizer.describe(ids))
            .unwrap_or_default()
    }

    fn spans(&self, texts: &[&str], add_special: bool) -> Result<Vec<Vec<TokenSpan>>> {
        match self.backend.graph() {
            Some(g) => g.tokenizer.spans(texts, add_special),
            None => Err(Error::Unsupported(
                "BM25 has no tokenizer of token ids (it stems words)".into(),
            )),
        }
    }

    fn max_length(&self) -> Option<usize> {
        self.backend.graph().map(|g| g.tokenizer.max_length())
    }

    fn overlong(&self, texts: &[&str]) -> Result<Vec<bool>> {
        match self.backend.graph() {
            Some(g) => g.tokenizer.overlong(texts),
            // BM25 reads whole texts.
            None => Ok(vec![false; texts.len()]),
        }
    }

    fn decode(&self, ids: &[Vec<u32>], skip_special: bool) -> Result<Vec<String>> {
        match self.backend.graph() {
            Some(g) => g.tokenizer.decode(ids, skip_special),
            None => Err(Error::Unsupported(
                "this sparse model has no tokenizer to decode token ids with".into(),
            )),
        }
    }
}

/// Word pieces merged into words, each with the positions of its pieces, as fastembed
/// merges them: a piece starting with `prefix` (`##`) continues the open word, any other
/// piece opens a new one. Positions of pieces seen while no word is open go to the next
/// word, as in fastembed's loops.
pub(crate) fn merge_pieces<'t>(
    tokens: impl Iterator<Item = (usize, &'t str)>,
    prefix: &str,
) -> Vec<(String, Vec<usize>)> {
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    let mut word = String::new();
    let mut positions: Vec<usize> = Vec::new();
    for (pos, token) in tokens {
        match token.strip_prefix(prefix) {
            Some(rest) => word.push_str(rest),
            None => {
                if !word.is_empty() {
                    out.push((std::mem::take(&mut word), std::mem::take(&mut positions)));
                }
                word = token.to_string();
            }
        }
        positions.push(pos);
    }
    if !word.is_empty() {
        out.push((word, positions));
    }
    out
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

impl Capable for Model<Sparse> {
    fn kind(&self) -> Kind {
        Kind::Sparse
    }
    fn capabilities(&self) -> &'static [Capability] {
        &[Capability::SparseText, Capability::Tokens]
    }
    fn sparse_stream<'a>(
        &'a self,
        texts: Texts<'a>,
        o: &CallOptions,
    ) -> Stream<'a, SparseEmbedding> {
        self.try_embed_iter(texts, o.batch_size, o.prep())
    }
    crate::handle::text_tokens!(count);
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
