//! What a model can do ([`Capability`]) and what one call asks for ([`CallOptions`]).

use serde::Serialize;

use crate::late_interaction::MultiVector;
use crate::pipeline::{Prep, Purpose};
use crate::sparse::SparseEmbedding;
use crate::text::Embedding;
use crate::tokenize::TruncationSide;

/// What a model can compute. Non-exhaustive: a new capability is not a breaking change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Capability {
    /// One dense vector per text.
    DenseText,
    /// One dense vector per token-id sequence (OpenAI's token-array input).
    DenseTokenIds,
    /// One dense vector per image.
    DenseImage,
    /// One sparse vector per text.
    SparseText,
    /// One matrix (a vector per token) per text.
    MultiVectorText,
    /// One matrix (a vector per patch) per image.
    MultiVectorImage,
    /// The model's vectors of each token of a text, before pooling (TEI's `/embed_all`).
    TokenVectors,
    /// One relevance score per (query, document) pair.
    PairScores,
    /// The texts' tokens as the model sees them.
    Tokens,
}

impl Capability {
    /// Every capability, in a stable order.
    pub const ALL: [Capability; 9] = [
        Capability::DenseText,
        Capability::DenseTokenIds,
        Capability::DenseImage,
        Capability::SparseText,
        Capability::MultiVectorText,
        Capability::MultiVectorImage,
        Capability::TokenVectors,
        Capability::PairScores,
        Capability::Tokens,
    ];

    /// Its name as serialized (`dense_text`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Capability::DenseText => "dense_text",
            Capability::DenseTokenIds => "dense_token_ids",
            Capability::DenseImage => "dense_image",
            Capability::SparseText => "sparse_text",
            Capability::MultiVectorText => "multi_vector_text",
            Capability::MultiVectorImage => "multi_vector_image",
            Capability::TokenVectors => "token_vectors",
            Capability::PairScores => "pair_scores",
            Capability::Tokens => "tokens",
        }
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Options of one call, the same for every operation and front end. Fields a call's
/// operation does not use are ignored, except `dimensions`, which is refused where there
/// is no dense vector to shorten.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct CallOptions {
    /// Inputs per batch; default: the model's.
    pub batch_size: Option<usize>,
    /// Query, passage or plain document (prefixes, query paths).
    pub purpose: Purpose,
    /// Shorter dense vectors, for models trained for it (Matryoshka): the first
    /// `dimensions` values, L2-normalized again. The model's own size is always taken.
    pub dimensions: Option<usize>,
    /// L2-normalize each dense vector once more, last (TEI's `normalize`).
    pub normalize: bool,
    /// Sparse vectors keep only their `sparse_top_k` largest weights.
    pub sparse_top_k: Option<usize>,
    /// Sparse vectors drop weights below this.
    pub sparse_min_weight: Option<f32>,
    /// Where an over-long text is cut (TEI's `truncation_direction`); `None`: where the
    /// model's tokenizer configuration says.
    pub truncation: Option<TruncationSide>,
}

impl CallOptions {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn batch_size(mut self, n: Option<usize>) -> Self {
        self.batch_size = n;
        self
    }
    pub fn purpose(mut self, purpose: Purpose) -> Self {
        self.purpose = purpose;
        self
    }
    pub fn dimensions(mut self, d: Option<usize>) -> Self {
        self.dimensions = d;
        self
    }
    pub fn normalize(mut self, yes: bool) -> Self {
        self.normalize = yes;
        self
    }
    pub fn sparse_top_k(mut self, k: Option<usize>) -> Self {
        self.sparse_top_k = k;
        self
    }
    pub fn sparse_min_weight(mut self, w: Option<f32>) -> Self {
        self.sparse_min_weight = w;
        self
    }
    pub fn truncation(mut self, side: Option<TruncationSide>) -> Self {
        self.truncation = side;
        self
    }
    /// What preparing this call's inputs needs to know.
    pub fn prep(&self) -> Prep {
        Prep::from(self.purpose).truncation(self.truncation)
    }
}

/// What one pass over texts gave, for each output asked for.
#[derive(Debug, Default)]
pub struct TextOutputs {
    pub dense: Option<Vec<Embedding>>,
    pub sparse: Option<Vec<SparseEmbedding>>,
    pub multi: Option<Vec<MultiVector>>,
}

/// What one text became, for each output asked for (the others `None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TextOutput {
    pub dense: Option<Embedding>,
    pub sparse: Option<SparseEmbedding>,
    pub multi: Option<MultiVector>,
}

impl TextOutput {
    /// Only the outputs in `wanted`.
    pub fn keep(self, wanted: &[Capability]) -> TextOutput {
        let want = |c| wanted.contains(&c);
        TextOutput {
            dense: self.dense.filter(|_| want(Capability::DenseText)),
            sparse: self.sparse.filter(|_| want(Capability::SparseText)),
            multi: self.multi.filter(|_| want(Capability::MultiVectorText)),
        }
    }
}

/// The outputs a text can have, which `embed_all` may ask for.
pub const TEXT_OUTPUTS: [Capability; 3] = [
    Capability::DenseText,
    Capability::SparseText,
    Capability::MultiVectorText,
];

impl TextOutputs {
    /// Empty columns for the outputs in `wanted`.
    pub(crate) fn wanting(wanted: &[Capability]) -> Self {
        fn column<T>(wanted: &[Capability], c: Capability) -> Option<Vec<T>> {
            wanted.contains(&c).then(Vec::new)
        }
        TextOutputs {
            dense: column(wanted, Capability::DenseText),
            sparse: column(wanted, Capability::SparseText),
            multi: column(wanted, Capability::MultiVectorText),
        }
    }

    /// Appends one text's outputs to the columns asked for.
    pub(crate) fn push(&mut self, one: TextOutput) {
        fn put<T>(column: &mut Option<Vec<T>>, value: Option<T>) {
            if let (Some(c), Some(v)) = (column.as_mut(), value) {
                c.push(v);
            }
        }
        put(&mut self.dense, one.dense);
        put(&mut self.sparse, one.sparse);
        put(&mut self.multi, one.multi);
    }
}
