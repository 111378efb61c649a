//! The seam between what a model family computes and how it runs.
//!
//! A family says what it computes and nothing else: how a window of inputs becomes
//! prepared items (token ids, or images to decode), what an item costs in a batch, which
//! items may share a batch, and how one batch becomes results through its graph. The
//! generic engine ([`crate::engine`]) owns the rest once for every family: the
//! description and files, lazy loading, options, windowed streaming, batch planning
//! under a token budget, the session pool and input order.

use std::fmt::Debug;
use std::path::Path;

use crate::batching::Batching;
use crate::error::Result;
use crate::registry::Describe;
use crate::runtime::{Lane, RuntimeOptions};
use crate::tokenize::{Token, TokenSpan, TruncationSide};

/// What a call embeds. It picks the query or passage prefix (when switched on), the
/// task of multi-task models, and, for families that treat queries differently (ColBERT
/// query expansion, inference-free sparse queries), the query path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// Plain `embed`: documents, no prefix.
    #[default]
    Document,
    /// `query_embed`.
    Query,
    /// `passage_embed`.
    Passage,
}

/// What one call asks of a family's preparation of its inputs (tokenizing) beside them:
/// `Prep::from(Purpose::Query).truncation(Some(TruncationSide::Left))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct Prep {
    pub purpose: Purpose,
    /// Where an over-long text is cut; `None`: where the model's tokenizer configuration
    /// says. Families that cut nothing ignore it.
    pub truncation: Option<TruncationSide>,
}

impl Prep {
    pub fn truncation(mut self, side: Option<TruncationSide>) -> Self {
        self.truncation = side;
        self
    }
}

impl From<Purpose> for Prep {
    fn from(purpose: Purpose) -> Prep {
        Prep {
            purpose,
            truncation: None,
        }
    }
}

/// How a loaded family computes: the per-model half of the seam.
pub trait Pipeline: Send + Sync + 'static {
    /// One input as the caller gives it (a text, a pair of texts, an image).
    type Input<'a>: Copy;
    /// One input made ready for batching (token ids, an image to decode).
    type Item: Send + Sync;
    /// What one input becomes.
    type Output: Send;

    /// Prepares a window of inputs, in order: one item each.
    fn prepare(&self, inputs: &[Self::Input<'_>], call: Prep) -> Result<Vec<Self::Item>>;

    /// The item's length in a padded batch of `purpose` (tokens); batches are planned
    /// from these.
    fn cost(&self, item: &Self::Item, purpose: Purpose) -> usize;

    /// Which items may share a batch.
    fn batching(&self, purpose: Purpose) -> Batching {
        let _ = purpose;
        Batching::Sorted
    }

    /// How many batches may run at once (the graph's session pool).
    fn parallelism(&self) -> usize {
        1
    }

    /// One result per item of the batch, in the batch's order, run on `lane`.
    fn run(&self, batch: &[&Self::Item], purpose: Purpose, lane: Lane)
        -> Result<Vec<Self::Output>>;
}

/// A model family, named by its loaded model: its description type (which names its
/// registry table), its builder settings and how to load a model. The engine's
/// [`Model`](crate::engine::Model) is generic over this.
pub trait Family: Pipeline + Sized {
    /// The registry's description of one model.
    type Description: Describe;
    /// The family's own builder settings (prefixes, BM25 parameters, ...).
    /// Deserialized from a JSON object by front ends that load any family by name
    /// (unknown keys refused); families without settings use [`NoSettings`].
    type Settings: Clone + Debug + Default + Send + Sync + serde::de::DeserializeOwned;
    /// Loads the model from its folder.
    fn load(at: Load<'_, Self>) -> Result<Self>;
}

/// The settings of a family that has none: only `{}` deserializes into it.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

/// What loading a model of family `F` gets: its description, its folder, the runtime
/// options and the family's settings.
pub struct Load<'a, F: Family> {
    pub desc: &'a F::Description,
    pub dir: &'a Path,
    pub runtime: &'a RuntimeOptions,
    pub settings: &'a F::Settings,
}

/// A pipeline whose inputs are texts (the dense, sparse and late-interaction families):
/// the engine gives all of them the same `embed` / `query_embed` / `passage_embed` /
/// streaming / token methods.
pub trait TextPipeline: for<'a> Pipeline<Input<'a> = &'a str> {
    /// Token ids of each text as the model gets it (truncated at `side`, or where the
    /// model says when `None`; special tokens included, no padding, no prefix).
    fn tokenize(&self, texts: &[&str], side: Option<TruncationSide>) -> Result<Vec<Vec<u32>>>;

    /// The number of tokens of the texts, as the model counts them.
    fn token_count(&self, texts: &[&str]) -> Result<usize> {
        let mut total = 0usize;
        for chunk in texts.chunks(1024) {
            total += self
                .tokenize(chunk, None)?
                .iter()
                .map(Vec::len)
                .sum::<usize>();
        }
        Ok(total)
    }

    /// Each id's token text and special flag.
    fn describe_tokens(&self, ids: &[u32]) -> Vec<Token>;

    /// Each text's tokens as its tokenizer gives them, not truncated, with their offsets
    /// in the text; the special tokens the model adds only when `add_special`.
    fn spans(&self, texts: &[&str], add_special: bool) -> Result<Vec<Vec<TokenSpan>>>;

    /// The longest token sequence the model takes, when it truncates.
    fn max_length(&self) -> Option<usize>;

    /// Whether each text is longer than the model takes (embedding truncates it).
    fn overlong(&self, texts: &[&str]) -> Result<Vec<bool>>;

    /// The text of each token-id sequence.
    fn decode(&self, ids: &[Vec<u32>], skip_special: bool) -> Result<Vec<String>>;
}
