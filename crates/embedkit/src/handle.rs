//! One handle for a model of any family: [`EmbeddingModel`], loaded from a name (the
//! registry decides what it is), says what it can do ([`Capability`]) and offers those
//! operations typed, with one set of per-call options ([`CallOptions`]).
//!
//! The front ends (server, CLI, Python) dispatch on capabilities rather than on families:
//! a family states its capabilities once, by implementing [`Capable`] for its
//! [`Model`](crate::Model), and is then served, written and called everywhere its
//! capabilities allow. A family whose one forward pass yields several outputs overrides
//! [`Capable::embed_all`] so that a call wanting all of them runs the graph once.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::engine::{Model, Stream};
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
/// a family lacks keep the default, which is an `Unsupported` error. Operations stream
/// (bounded memory, input order); the handle's slice methods collect them.
pub trait Capable: Send + Sync {
    /// The registry name.
    fn name(&self) -> &str;
    /// The family (the class of the fastembed API that loads it).
    fn kind(&self) -> Kind;
    /// What it can do.
    fn capabilities(&self) -> &'static [Capability];
    /// Loads the graph now if it was built lazily.
    fn load_now(&self) -> Result<()>;
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
    /// Dense vectors of texts.
    fn dense_stream<'a>(&'a self, _texts: Texts<'a>, _o: &CallOptions) -> Stream<'a, Embedding> {
        Stream::failed(lacks(self.name(), Capability::DenseText))
    }
    fn dense_token_ids(&self, _ids: &[Vec<u32>], _o: &CallOptions) -> Result<Vec<Embedding>> {
        Err(lacks(self.name(), Capability::DenseTokenIds))
    }
    /// Fails unless every sequence is one the model can embed.
    fn check_token_ids(&self, _ids: &[Vec<u32>]) -> Result<()> {
        Err(lacks(self.name(), Capability::DenseTokenIds))
    }
    fn image_stream<'a>(&'a self, _images: Images<'a>, _o: &CallOptions) -> Stream<'a, Embedding> {
        Stream::failed(lacks(self.name(), Capability::DenseImage))
    }
    fn sparse_stream<'a>(
        &'a self,
        _texts: Texts<'a>,
        _o: &CallOptions,
    ) -> Stream<'a, SparseEmbedding> {
        Stream::failed(lacks(self.name(), Capability::SparseText))
    }
    fn multi_stream<'a>(&'a self, _texts: Texts<'a>, _o: &CallOptions) -> Stream<'a, MultiVector> {
        Stream::failed(lacks(self.name(), Capability::MultiVectorText))
    }
    fn multi_image_stream<'a>(
        &'a self,
        _images: Images<'a>,
        _o: &CallOptions,
    ) -> Stream<'a, MultiVector> {
        Stream::failed(lacks(self.name(), Capability::MultiVectorImage))
    }
    fn score_stream<'a>(&'a self, _pairs: Pairs<'a>, _o: &CallOptions) -> Stream<'a, f32> {
        Stream::failed(lacks(self.name(), Capability::PairScores))
    }
    fn tokenize(&self, _texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        Err(lacks(self.name(), Capability::Tokens))
    }
    fn tokens(&self, _texts: &[&str]) -> Result<Vec<Vec<Token>>> {
        Err(lacks(self.name(), Capability::Tokens))
    }
    /// fastembed's `token_count` of texts: `purpose` picks documents or queries where a
    /// family tells them apart; `include_extension` counts what a family adds (ColBERT's
    /// query padding, a multimodal model's prompt).
    fn count_tokens(
        &self,
        _texts: &[&str],
        _purpose: Purpose,
        _include_extension: bool,
    ) -> Result<usize> {
        Err(lacks(self.name(), Capability::Tokens))
    }
    /// fastembed's `token_count` of (query, document) pairs.
    fn count_pair_tokens(&self, _pairs: &[(&str, &str)]) -> Result<usize> {
        Err(lacks(self.name(), Capability::PairScores))
    }
    /// The text outputs in `wanted` (dense, sparse, multi-vector). By default one pass
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
                Capability::DenseText => {
                    out.dense = Some(
                        self.dense_stream(borrowed(texts), o)
                            .collect::<Result<_>>()?,
                    )
                }
                Capability::SparseText => {
                    out.sparse = Some(
                        self.sparse_stream(borrowed(texts), o)
                            .collect::<Result<_>>()?,
                    )
                }
                Capability::MultiVectorText => {
                    out.multi = Some(
                        self.multi_stream(borrowed(texts), o)
                            .collect::<Result<_>>()?,
                    )
                }
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

/// Texts streamed into a model: each may fail (a line of a file that cannot be read),
/// which ends the stream after the results before it.
pub type Texts<'a> = Box<dyn Iterator<Item = Result<Cow<'a, str>>> + 'a>;
/// Images streamed into a model.
pub type Images<'a> = Box<dyn Iterator<Item = Result<ImageInput>> + 'a>;
/// (query, document) pairs streamed into a model.
pub type Pairs<'a> = Box<dyn Iterator<Item = Result<(Cow<'a, str>, Cow<'a, str>)>> + 'a>;

fn borrowed<'a>(texts: &'a [&'a str]) -> Texts<'a> {
    Box::new(texts.iter().map(|t| Ok(Cow::Borrowed(*t))))
}

fn texts_of<'a, I, S>(texts: I) -> Texts<'a>
where
    I: IntoIterator<Item = Result<S>>,
    I::IntoIter: 'a,
    S: Into<Cow<'a, str>>,
{
    Box::new(texts.into_iter().map(|t| t.map(Into::into)))
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
        Self::load_with(name, load, &serde_json::Value::Null)
    }

    /// As [`load_with`](Self::load_with), for a front end that needs one of `wanted`
    /// (a `TextEmbedding` needs dense vectors of texts): a model that offers none of them
    /// is an `Unsupported` error naming what it offers, before its graph is loaded.
    pub fn load_for(
        name: &str,
        mut load: LoadOptions,
        settings: &serde_json::Value,
        wanted: &[Capability],
    ) -> Result<Self> {
        let lazy = load.lazy_load;
        load.lazy_load = true;
        let model = Self::load_with(name, load, settings)?;
        if !wanted.is_empty() && !wanted.iter().any(|&c| model.can(c)) {
            let offers: Vec<&str> = model.capabilities().iter().map(|c| c.name()).collect();
            let wanted: Vec<&str> = wanted.iter().map(|c| c.name()).collect();
            return Err(Error::Unsupported(format!(
                "model {name} offers {}, not {}",
                offers.join(", "),
                wanted.join(" or ")
            )));
        }
        if !lazy {
            model.inner.load_now()?;
        }
        Ok(model)
    }

    /// As [`load`](Self::load), with the family's builder settings as a JSON object
    /// (`{"add_prefixes": true}` for dense models, `{"bm25": {"language": "german"}}`
    /// for sparse ones, ...; null or `{}` for the defaults). A key the family does not
    /// have is an error.
    pub fn load_with(name: &str, load: LoadOptions, settings: &serde_json::Value) -> Result<Self> {
        use crate::{image, late_interaction, late_interaction_multimodal, rerank, sparse, text};
        match registry::kind_of(name)? {
            Kind::Dense => build::<text::Dense>(name, load, settings),
            Kind::Sparse => build::<sparse::Sparse>(name, load, settings),
            Kind::LateInteraction => build::<late_interaction::Colbert>(name, load, settings),
            Kind::Rerank => build::<rerank::CrossEncoder>(name, load, settings),
            Kind::Image => build::<image::Image>(name, load, settings),
            Kind::Multimodal => {
                build::<late_interaction_multimodal::Multimodal>(name, load, settings)
            }
        }
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
            finish_one(v, dims, o.normalize);
        }
        Ok(vectors)
    }

    /// The checks of a call for `c` before any work: the capability, and `dimensions`
    /// (dense calls only); `Some(d)` is the size to shorten to.
    fn start(&self, c: Capability, o: &CallOptions) -> Result<Option<usize>> {
        self.require(c)?;
        match c {
            Capability::DenseText | Capability::DenseTokenIds | Capability::DenseImage => {
                self.check_dimensions(o.dimensions)
            }
            _ if o.dimensions.is_some() => Err(Error::InvalidArgument(
                "`dimensions` applies to dense vectors only".into(),
            )),
            _ => Ok(None),
        }
    }

    /// One dense vector per text.
    pub fn embed_dense<S: AsRef<str>>(
        &self,
        texts: &[S],
        o: &CallOptions,
    ) -> Result<Vec<Embedding>> {
        self.embed_dense_iter(texts.iter().map(|t| Ok(t.as_ref())), o)
            .collect()
    }

    /// Dense vectors of any iterator of texts (that may fail), streamed in input order in
    /// bounded memory.
    pub fn embed_dense_iter<'a, I, S>(&'a self, texts: I, o: &CallOptions) -> Stream<'a, Embedding>
    where
        I: IntoIterator<Item = Result<S>>,
        I::IntoIter: 'a,
        S: Into<Cow<'a, str>>,
    {
        let dims = match self.start(Capability::DenseText, o) {
            Ok(d) => d,
            Err(e) => return Stream::failed(e),
        };
        let stream = self.inner.dense_stream(texts_of(texts), o);
        finished(stream, dims, o.normalize)
    }

    /// One dense vector per token-id sequence, used as given (special tokens included).
    pub fn embed_token_ids(&self, ids: &[Vec<u32>], o: &CallOptions) -> Result<Vec<Embedding>> {
        self.start(Capability::DenseTokenIds, o)?;
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
        self.embed_images_iter(images.iter().cloned().map(Ok), o)
            .collect()
    }

    /// Dense vectors of any iterator of images (that may fail), streamed in input order.
    pub fn embed_images_iter<'a, I>(&'a self, images: I, o: &CallOptions) -> Stream<'a, Embedding>
    where
        I: IntoIterator<Item = Result<ImageInput>>,
        I::IntoIter: 'a,
    {
        let dims = match self.start(Capability::DenseImage, o) {
            Ok(d) => d,
            Err(e) => return Stream::failed(e),
        };
        let stream = self.inner.image_stream(Box::new(images.into_iter()), o);
        finished(stream, dims, o.normalize)
    }

    /// One sparse vector per text.
    pub fn embed_sparse<S: AsRef<str>>(
        &self,
        texts: &[S],
        o: &CallOptions,
    ) -> Result<Vec<SparseEmbedding>> {
        self.embed_sparse_iter(texts.iter().map(|t| Ok(t.as_ref())), o)
            .collect()
    }

    /// Sparse vectors of any iterator of texts, streamed in input order, pruned as `o`
    /// asks.
    pub fn embed_sparse_iter<'a, I, S>(
        &'a self,
        texts: I,
        o: &CallOptions,
    ) -> Stream<'a, SparseEmbedding>
    where
        I: IntoIterator<Item = Result<S>>,
        I::IntoIter: 'a,
        S: Into<Cow<'a, str>>,
    {
        if let Err(e) = self.start(Capability::SparseText, o) {
            return Stream::failed(e);
        }
        let (top_k, min_weight) = (o.sparse_top_k, o.sparse_min_weight);
        let stream = self.inner.sparse_stream(texts_of(texts), o);
        Stream::from_iter(stream.map(move |v| {
            v.map(|mut v| {
                prune(&mut v, top_k, min_weight);
                v
            })
        }))
    }

    /// One matrix per text.
    pub fn embed_multi<S: AsRef<str>>(
        &self,
        texts: &[S],
        o: &CallOptions,
    ) -> Result<Vec<MultiVector>> {
        self.embed_multi_iter(texts.iter().map(|t| Ok(t.as_ref())), o)
            .collect()
    }

    /// Matrices of any iterator of texts, streamed in input order.
    pub fn embed_multi_iter<'a, I, S>(
        &'a self,
        texts: I,
        o: &CallOptions,
    ) -> Stream<'a, MultiVector>
    where
        I: IntoIterator<Item = Result<S>>,
        I::IntoIter: 'a,
        S: Into<Cow<'a, str>>,
    {
        match self.start(Capability::MultiVectorText, o) {
            Ok(_) => self.inner.multi_stream(texts_of(texts), o),
            Err(e) => Stream::failed(e),
        }
    }

    /// One matrix per image.
    pub fn embed_images_multi(
        &self,
        images: &[ImageInput],
        o: &CallOptions,
    ) -> Result<Vec<MultiVector>> {
        self.embed_images_multi_iter(images.iter().cloned().map(Ok), o)
            .collect()
    }

    /// Matrices of any iterator of images, streamed in input order.
    pub fn embed_images_multi_iter<'a, I>(
        &'a self,
        images: I,
        o: &CallOptions,
    ) -> Stream<'a, MultiVector>
    where
        I: IntoIterator<Item = Result<ImageInput>>,
        I::IntoIter: 'a,
    {
        match self.start(Capability::MultiVectorImage, o) {
            Ok(_) => self
                .inner
                .multi_image_stream(Box::new(images.into_iter()), o),
            Err(e) => Stream::failed(e),
        }
    }

    /// The relevance score of each (query, document) pair, in order.
    pub fn score_pairs<A: AsRef<str>, B: AsRef<str>>(
        &self,
        pairs: &[(A, B)],
        o: &CallOptions,
    ) -> Result<Vec<f32>> {
        self.score_pairs_iter(pairs.iter().map(|(a, b)| Ok((a.as_ref(), b.as_ref()))), o)
            .collect()
    }

    /// Scores of any iterator of (query, document) pairs, streamed in order.
    pub fn score_pairs_iter<'a, I, A, B>(&'a self, pairs: I, o: &CallOptions) -> Stream<'a, f32>
    where
        I: IntoIterator<Item = Result<(A, B)>>,
        I::IntoIter: 'a,
        A: Into<Cow<'a, str>>,
        B: Into<Cow<'a, str>>,
    {
        if let Err(e) = self.start(Capability::PairScores, o) {
            return Stream::failed(e);
        }
        let pairs: Pairs<'a> = Box::new(
            pairs
                .into_iter()
                .map(|p| p.map(|(a, b)| (a.into(), b.into()))),
        );
        self.inner.score_stream(pairs, o)
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

    /// fastembed's `token_count` of texts (see [`Capable::count_tokens`]).
    pub fn token_count<S: AsRef<str>>(
        &self,
        texts: &[S],
        purpose: Purpose,
        include_extension: bool,
    ) -> Result<usize> {
        self.inner
            .count_tokens(&refs(texts), purpose, include_extension)
    }

    /// fastembed's `token_count` of (query, document) pairs.
    pub fn pair_token_count<A: AsRef<str>, B: AsRef<str>>(
        &self,
        pairs: &[(A, B)],
    ) -> Result<usize> {
        let pairs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(a, b)| (a.as_ref(), b.as_ref()))
            .collect();
        self.inner.count_pair_tokens(&pairs)
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
        let dims = if wanted.contains(&Capability::DenseText) {
            self.check_dimensions(o.dimensions)?
        } else if o.dimensions.is_some() {
            return Err(Error::InvalidArgument(
                "`dimensions` applies to dense vectors only".into(),
            ));
        } else {
            None
        };
        let mut out = self.inner.embed_all(&refs(texts), wanted, o)?;
        if let Some(dense) = out.dense.as_mut() {
            for v in dense {
                finish_one(v, dims, o.normalize);
            }
        }
        if let Some(sparse) = out.sparse.as_mut() {
            for v in sparse {
                prune(v, o.sparse_top_k, o.sparse_min_weight);
            }
        }
        Ok(out)
    }
}

/// A dense stream with a call's post-processing applied to each vector.
fn finished(
    stream: Stream<'_, Embedding>,
    dims: Option<usize>,
    normalize: bool,
) -> Stream<'_, Embedding> {
    Stream::from_iter(stream.map(move |v| {
        v.map(|mut v| {
            finish_one(&mut v, dims, normalize);
            v
        })
    }))
}

/// Shortens (to a size `check_dimensions` gave) and normalizes one dense vector.
fn finish_one(v: &mut Embedding, dims: Option<usize>, normalize: bool) {
    if let Some(d) = dims {
        postprocess::matryoshka(v, d);
    }
    if normalize {
        postprocess::l2_normalize(v);
    }
}

/// Applies a call's sparse pruning to one vector.
fn prune(v: &mut SparseEmbedding, top_k: Option<usize>, min_weight: Option<f32>) {
    if top_k.is_some() || min_weight.is_some() {
        postprocess::prune_sparse(v, top_k, min_weight);
    }
}

/// The one place that maps a family to its loader: a new family adds a line to
/// [`EmbeddingModel::load_with`] and a registry table.
fn build<F: Family>(
    name: &str,
    load: LoadOptions,
    settings: &serde_json::Value,
) -> Result<EmbeddingModel>
where
    Model<F>: Capable,
{
    let mut builder = Model::<F>::builder(name).load_options(load);
    if !settings.is_null() {
        builder.settings = F::Settings::deserialize(settings)
            .map_err(|e| Error::InvalidArgument(format!("settings of {name}: {e}")))?;
    }
    Ok(builder.build()?.into())
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
