//! One handle for a model of any family: [`EmbeddingModel`], loaded from a name (the
//! registry decides what it is), says what it can do ([`Capability`]) and offers those
//! operations typed, with one set of per-call options ([`CallOptions`]).
//!
//! The front ends (server, CLI, Python) dispatch on capabilities rather than on families:
//! a family states its capabilities once, by implementing [`Capable`] for its
//! [`Model`](crate::Model), and is then served, written and called everywhere its
//! capabilities allow. A family whose one forward pass yields several outputs overrides
//! [`Capable::embed_all`] so that a call wanting all of them runs the graph once.

use std::sync::Arc;

use serde::Serialize;

use crate::engine::Model;
use crate::error::{Error, Result};
use crate::image::ImageInput;
use crate::late_interaction::MultiVector;
use crate::options::LoadOptions;
use crate::pipeline::{Family, Purpose};
use crate::postprocess;
use crate::registry::{self, Kind};
use crate::sparse::SparseEmbedding;
use crate::text::Embedding;
use crate::tokenize::Token;

/// What a model can compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
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
    /// One relevance score per (query, document) pair.
    PairScores,
    /// The texts' tokens as the model sees them.
    Tokens,
}

impl Capability {
    /// Every capability, in a stable order.
    pub const ALL: [Capability; 8] = [
        Capability::DenseText,
        Capability::DenseTokenIds,
        Capability::DenseImage,
        Capability::SparseText,
        Capability::MultiVectorText,
        Capability::MultiVectorImage,
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
}

/// What one pass over texts gave, for each output asked for.
#[derive(Debug, Default)]
pub struct TextOutputs {
    pub dense: Option<Vec<Embedding>>,
    pub sparse: Option<Vec<SparseEmbedding>>,
    pub multi: Option<Vec<MultiVector>>,
}

/// A loaded model as the handle sees it: what it can do and the raw operations. A family
/// implements this once for its `Model`; [`EmbeddingModel`] checks capabilities and
/// applies the per-call post-processing, so an implementation only computes. Operations
/// a family lacks keep the default, which is an `Unsupported` error.
pub trait Capable: Send + Sync {
    /// The registry name.
    fn name(&self) -> &str;
    /// The family (the class of the fastembed API that loads it).
    fn kind(&self) -> Kind;
    /// What it can do.
    fn capabilities(&self) -> &'static [Capability];
    /// The size of its dense vectors or of its multi-vectors' rows.
    fn dim(&self) -> Option<usize> {
        None
    }
    /// Whether its dense vectors may be shortened (Matryoshka training).
    fn matryoshka(&self) -> bool {
        false
    }
    /// The longest token sequence it takes, for models that truncate texts.
    fn max_length(&self) -> Result<Option<usize>> {
        Ok(None)
    }
    /// Whether inputs of different calls may share a batch without changing results
    /// (not so for models whose outputs depend on the batch's padding).
    fn shares_batches(&self) -> bool {
        true
    }
    fn dense_texts(&self, _texts: &[&str], _o: &CallOptions) -> Result<Vec<Embedding>> {
        Err(lacks(self.name(), Capability::DenseText))
    }
    fn dense_token_ids(&self, _ids: &[Vec<u32>], _o: &CallOptions) -> Result<Vec<Embedding>> {
        Err(lacks(self.name(), Capability::DenseTokenIds))
    }
    /// Fails unless every sequence is one the model can embed.
    fn check_token_ids(&self, _ids: &[Vec<u32>]) -> Result<()> {
        Err(lacks(self.name(), Capability::DenseTokenIds))
    }
    fn dense_images(&self, _images: &[ImageInput], _o: &CallOptions) -> Result<Vec<Embedding>> {
        Err(lacks(self.name(), Capability::DenseImage))
    }
    fn sparse_texts(&self, _texts: &[&str], _o: &CallOptions) -> Result<Vec<SparseEmbedding>> {
        Err(lacks(self.name(), Capability::SparseText))
    }
    fn multi_texts(&self, _texts: &[&str], _o: &CallOptions) -> Result<Vec<MultiVector>> {
        Err(lacks(self.name(), Capability::MultiVectorText))
    }
    fn multi_images(&self, _images: &[ImageInput], _o: &CallOptions) -> Result<Vec<MultiVector>> {
        Err(lacks(self.name(), Capability::MultiVectorImage))
    }
    fn pair_scores(&self, _pairs: &[(&str, &str)], _o: &CallOptions) -> Result<Vec<f32>> {
        Err(lacks(self.name(), Capability::PairScores))
    }
    fn tokenize(&self, _texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        Err(lacks(self.name(), Capability::Tokens))
    }
    fn tokens(&self, _texts: &[&str]) -> Result<Vec<Vec<Token>>> {
        Err(lacks(self.name(), Capability::Tokens))
    }
    /// The text outputs in `wanted` (dense, sparse, multi-vector). By default one call
    /// per output; a family that computes several in one pass overrides this.
    fn embed_all(
        &self,
        texts: &[&str],
        wanted: &[Capability],
        o: &CallOptions,
    ) -> Result<TextOutputs> {
        let mut out = TextOutputs::default();
        for &c in wanted {
            match c {
                Capability::DenseText => out.dense = Some(self.dense_texts(texts, o)?),
                Capability::SparseText => out.sparse = Some(self.sparse_texts(texts, o)?),
                Capability::MultiVectorText => out.multi = Some(self.multi_texts(texts, o)?),
                other => {
                    return Err(Error::InvalidArgument(format!(
                        "{other} is not an output of texts"
                    )))
                }
            }
        }
        Ok(out)
    }
}

/// The error of an operation the model lacks.
pub(crate) fn lacks(model: &str, c: Capability) -> Error {
    Error::Unsupported(format!("model {model} does not offer {c}"))
}

/// A model of any family, shared cheaply (clones share the loaded model).
///
/// ```no_run
/// use embedkit::{CallOptions, Capability, EmbeddingModel, LoadOptions};
/// let model = EmbeddingModel::load("BAAI/bge-small-en-v1.5", LoadOptions::default())?;
/// assert!(model.can(Capability::DenseText));
/// let vectors = model.embed_dense(&["hello"], &CallOptions::new())?;
/// # Ok::<(), embedkit::Error>(())
/// ```
#[derive(Clone)]
pub struct EmbeddingModel {
    inner: Arc<dyn Capable>,
}

impl std::fmt::Debug for EmbeddingModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddingModel")
            .field("name", &self.name())
            .field("capabilities", &self.capabilities())
            .finish()
    }
}

impl<T: Capable + 'static> From<T> for EmbeddingModel {
    fn from(model: T) -> Self {
        EmbeddingModel {
            inner: Arc::new(model),
        }
    }
}

impl EmbeddingModel {
    /// Loads the registry's model `name` (built-in or registered) as the family the
    /// registry says it is.
    pub fn load(name: &str, load: LoadOptions) -> Result<Self> {
        let model: EmbeddingModel = match registry::kind_of(name)? {
            Kind::Dense => build::<crate::text::Dense>(name, load)?,
            Kind::Sparse => build::<crate::sparse::Sparse>(name, load)?,
            Kind::LateInteraction => build::<crate::late_interaction::Colbert>(name, load)?,
            Kind::Rerank => build::<crate::rerank::CrossEncoder>(name, load)?,
            Kind::Image => build::<crate::image::Image>(name, load)?,
            Kind::Multimodal => {
                build::<crate::late_interaction_multimodal::Multimodal>(name, load)?
            }
        };
        Ok(model)
    }

    pub fn name(&self) -> &str {
        self.inner.name()
    }
    pub fn kind(&self) -> Kind {
        self.inner.kind()
    }
    pub fn capabilities(&self) -> &'static [Capability] {
        self.inner.capabilities()
    }
    /// Whether the model offers `c`.
    pub fn can(&self, c: Capability) -> bool {
        self.capabilities().contains(&c)
    }
    pub fn dim(&self) -> Option<usize> {
        self.inner.dim()
    }
    pub fn matryoshka(&self) -> bool {
        self.inner.matryoshka()
    }
    pub fn max_length(&self) -> Result<Option<usize>> {
        self.inner.max_length()
    }
    pub fn shares_batches(&self) -> bool {
        self.inner.shares_batches()
    }

    fn require(&self, c: Capability) -> Result<()> {
        if self.can(c) {
            Ok(())
        } else {
            Err(lacks(self.name(), c))
        }
    }

    /// The dense size a call with `dimensions` gives: `None` for the model's own size, or
    /// a shorter one the model was trained for; anything else is an error.
    pub fn check_dimensions(&self, dimensions: Option<usize>) -> Result<Option<usize>> {
        let Some(d) = dimensions else { return Ok(None) };
        let dense = [
            Capability::DenseText,
            Capability::DenseTokenIds,
            Capability::DenseImage,
        ];
        let dim = match self.dim() {
            Some(dim) if dense.iter().any(|&c| self.can(c)) => dim,
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "model {} has no dense vectors to shorten (`dimensions`)",
                    self.name()
                )))
            }
        };
        postprocess::check_dimensions(self.name(), dim, self.matryoshka(), d)
    }

    /// Applies a call's post-processing to dense vectors the model gave (`dimensions`,
    /// then `normalize`): what every dense operation of the handle does before it returns.
    pub fn finish_dense(
        &self,
        mut vectors: Vec<Embedding>,
        o: &CallOptions,
    ) -> Result<Vec<Embedding>> {
        let dims = self.check_dimensions(o.dimensions)?;
        for v in &mut vectors {
            if let Some(d) = dims {
                postprocess::matryoshka(v, d);
            }
            if o.normalize {
                postprocess::l2_normalize(v);
            }
        }
        Ok(vectors)
    }

    /// Fails before any work when `dimensions` is set on a call without dense vectors.
    fn no_dimensions(&self, o: &CallOptions) -> Result<()> {
        match o.dimensions {
            Some(_) => Err(Error::InvalidArgument(
                "`dimensions` applies to dense vectors only".into(),
            )),
            None => Ok(()),
        }
    }

    /// One dense vector per text.
    pub fn embed_dense<S: AsRef<str>>(
        &self,
        texts: &[S],
        o: &CallOptions,
    ) -> Result<Vec<Embedding>> {
        self.require(Capability::DenseText)?;
        self.check_dimensions(o.dimensions)?;
        let texts = refs(texts);
        let v = self.inner.dense_texts(&texts, o)?;
        self.finish_dense(v, o)
    }

    /// One dense vector per token-id sequence, used as given (special tokens included).
    pub fn embed_token_ids(&self, ids: &[Vec<u32>], o: &CallOptions) -> Result<Vec<Embedding>> {
        self.require(Capability::DenseTokenIds)?;
        self.check_dimensions(o.dimensions)?;
        let v = self.inner.dense_token_ids(ids, o)?;
        self.finish_dense(v, o)
    }

    /// Fails unless every sequence is non-empty and in the vocabulary.
    pub fn check_token_ids(&self, ids: &[Vec<u32>]) -> Result<()> {
        self.require(Capability::DenseTokenIds)?;
        self.inner.check_token_ids(ids)
    }

    /// One dense vector per image.
    pub fn embed_images(&self, images: &[ImageInput], o: &CallOptions) -> Result<Vec<Embedding>> {
        self.require(Capability::DenseImage)?;
        self.check_dimensions(o.dimensions)?;
        let v = self.inner.dense_images(images, o)?;
        self.finish_dense(v, o)
    }

    /// One sparse vector per text.
    pub fn embed_sparse<S: AsRef<str>>(
        &self,
        texts: &[S],
        o: &CallOptions,
    ) -> Result<Vec<SparseEmbedding>> {
        self.require(Capability::SparseText)?;
        self.no_dimensions(o)?;
        let v = self.inner.sparse_texts(&refs(texts), o)?;
        Ok(finish_sparse(v, o))
    }

    /// One matrix per text.
    pub fn embed_multi<S: AsRef<str>>(
        &self,
        texts: &[S],
        o: &CallOptions,
    ) -> Result<Vec<MultiVector>> {
        self.require(Capability::MultiVectorText)?;
        self.no_dimensions(o)?;
        self.inner.multi_texts(&refs(texts), o)
    }

    /// One matrix per image.
    pub fn embed_images_multi(
        &self,
        images: &[ImageInput],
        o: &CallOptions,
    ) -> Result<Vec<MultiVector>> {
        self.require(Capability::MultiVectorImage)?;
        self.no_dimensions(o)?;
        self.inner.multi_images(images, o)
    }

    /// The relevance score of each (query, document) pair, in order.
    pub fn score_pairs<A: AsRef<str>, B: AsRef<str>>(
        &self,
        pairs: &[(A, B)],
        o: &CallOptions,
    ) -> Result<Vec<f32>> {
        self.require(Capability::PairScores)?;
        self.no_dimensions(o)?;
        let pairs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(a, b)| (a.as_ref(), b.as_ref()))
            .collect();
        self.inner.pair_scores(&pairs, o)
    }

    /// Token ids of each text as the model gets it (truncated, special tokens included).
    pub fn tokenize<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>> {
        self.require(Capability::Tokens)?;
        self.inner.tokenize(&refs(texts))
    }

    /// Each text's tokens as the model gets them.
    pub fn tokens<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<Token>>> {
        self.require(Capability::Tokens)?;
        self.inner.tokens(&refs(texts))
    }

    /// Several text outputs at once (any of dense, sparse and multi-vector the model
    /// offers), from one pass where the family computes them together.
    pub fn embed_all<S: AsRef<str>>(
        &self,
        texts: &[S],
        wanted: &[Capability],
        o: &CallOptions,
    ) -> Result<TextOutputs> {
        for &c in wanted {
            self.require(c)?;
        }
        if !wanted.contains(&Capability::DenseText) {
            self.no_dimensions(o)?;
        }
        self.check_dimensions(o.dimensions)?;
        let mut out = self.inner.embed_all(&refs(texts), wanted, o)?;
        if let Some(dense) = out.dense.take() {
            out.dense = Some(self.finish_dense(dense, o)?);
        }
        if let Some(sparse) = out.sparse.take() {
            out.sparse = Some(finish_sparse(sparse, o));
        }
        Ok(out)
    }
}

/// Applies a call's sparse pruning.
fn finish_sparse(mut v: Vec<SparseEmbedding>, o: &CallOptions) -> Vec<SparseEmbedding> {
    if o.sparse_top_k.is_some() || o.sparse_min_weight.is_some() {
        for s in &mut v {
            postprocess::prune_sparse(s, o.sparse_top_k, o.sparse_min_weight);
        }
    }
    v
}

/// The one place that maps a family to its loader: a new family adds a line here and a
/// registry table.
fn build<F: Family>(name: &str, load: LoadOptions) -> Result<EmbeddingModel>
where
    Model<F>: Capable,
{
    Ok(Model::<F>::builder(name).load_options(load).build()?.into())
}

fn refs<S: AsRef<str>>(texts: &[S]) -> Vec<&str> {
    texts.iter().map(|t| t.as_ref()).collect()
}

/// The token methods of a text family's `Capable` impl: the engine's, as they are.
macro_rules! text_tokens {
    () => {
        fn max_length(&self) -> Result<Option<usize>> {
            crate::engine::Model::max_length(self)
        }
        fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
            crate::engine::Model::tokenize(self, texts)
        }
        fn tokens(&self, texts: &[&str]) -> Result<Vec<Vec<crate::tokenize::Token>>> {
            crate::engine::Model::tokens(self, texts)
        }
    };
}
pub(crate) use text_tokens;
