//! One handle for a model of any family: [`EmbeddingModel`], loaded from a name (the
//! registry decides what it is), says what it can do ([`Capability`]) and offers those
//! operations typed, with one set of per-call options ([`CallOptions`]).
//!
//! The front ends (server, CLI, Python) dispatch on capabilities rather than on families:
//! a family states its capabilities once, by implementing [`Capable`] for its
//! [`Model`](crate::Model), and is then served, written and called everywhere its
//! capabilities allow. A family whose one forward pass yields several outputs overrides
//! [`Capable::all_stream`] so that a call wanting all of them runs the graph once.

mod call;
mod capable;
mod load;
mod tokens;

use std::borrow::Cow;
use std::sync::Arc;

pub use call::{CallOptions, Capability, TextOutput, TextOutputs, TEXT_OUTPUTS};
pub(crate) use capable::{lacks, one_pass_outputs, text_tokens, texts_of};
pub use capable::{Capable, Images, Loaded, Pairs, Texts};

use crate::engine::Stream;
use crate::error::{Error, Result};
use crate::image::ImageInput;
use crate::late_interaction::MultiVector;
use crate::postprocess;
use crate::registry::Kind;
use crate::sparse::SparseEmbedding;
use crate::text::Embedding;

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
    /// The folder the model files are read from.
    pub fn model_dir(&self) -> &std::path::Path {
        self.inner.model_dir()
    }

    /// The prompts the model's sentence-transformers configuration names
    /// (`config_sentence_transformers.json`, `"prompts": {"query": "query: ", ...}`), as
    /// TEI's `prompt_name` and sentence-transformers' `encode(prompt_name=...)` use them;
    /// empty when the model has none.
    pub fn prompts(&self) -> Result<std::collections::BTreeMap<String, String>> {
        crate::registry::prompts_in(self.model_dir())
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
        if !o.truncate && c == Capability::PairScores {
            // Not ignored: pairs are cut, so the call would not do what it asks.
            return Err(Error::Unsupported(
                "`truncate: false` is for texts; pairs longer than the model takes are cut".into(),
            ));
        }
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

    /// `texts` as a call takes them: with `truncate` off, a text longer than the model
    /// takes fails the call at its position (each text is tokenized once more to know).
    fn cut_or_refuse<'a>(&'a self, texts: Texts<'a>, o: &CallOptions) -> Texts<'a> {
        if o.truncate {
            return texts;
        }
        let max = self.max_length().ok().flatten();
        Box::new(texts.enumerate().map(move |(input, text)| {
            let text = text?;
            if self.inner.overlong(&[text.as_ref()])?.first() == Some(&true) {
                return Err(Error::TooLong { input, max });
            }
            Ok(text)
        }))
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
        let stream = self
            .inner
            .dense_stream(self.cut_or_refuse(texts_of(texts), o), o);
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
        let stream = self
            .inner
            .sparse_stream(self.cut_or_refuse(texts_of(texts), o), o);
        Stream::from_iter(stream.map(move |v| {
            v.map(|mut v| {
                prune(&mut v, top_k, min_weight);
                v
            })
        }))
    }

    /// The model's vectors of each token of each text, before pooling: one row per
    /// token the model saw (special tokens included, padding dropped), as fastembed's
    /// `TokenEmbeddingsModel` and TEI's `/embed_all` give them.
    pub fn embed_token_vectors<S: AsRef<str>>(
        &self,
        texts: &[S],
        o: &CallOptions,
    ) -> Result<Vec<MultiVector>> {
        self.embed_token_vectors_iter(texts.iter().map(|t| Ok(t.as_ref())), o)
            .collect()
    }

    /// Token vectors of any iterator of texts, streamed in input order.
    pub fn embed_token_vectors_iter<'a, I, S>(
        &'a self,
        texts: I,
        o: &CallOptions,
    ) -> Stream<'a, MultiVector>
    where
        I: IntoIterator<Item = Result<S>>,
        I::IntoIter: 'a,
        S: Into<Cow<'a, str>>,
    {
        match self.start(Capability::TokenVectors, o) {
            Ok(_) => self
                .inner
                .token_vector_stream(self.cut_or_refuse(texts_of(texts), o), o),
            Err(e) => Stream::failed(e),
        }
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
            Ok(_) => self
                .inner
                .multi_stream(self.cut_or_refuse(texts_of(texts), o), o),
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

    /// Several text outputs at once (any of dense, sparse and multi-vector the model
    /// offers), from one pass where the family computes them together.
    pub fn embed_all<S: AsRef<str>>(
        &self,
        texts: &[S],
        wanted: &[Capability],
        o: &CallOptions,
    ) -> Result<TextOutputs> {
        let mut out = TextOutputs::wanting(wanted);
        for one in self.embed_all_iter(texts.iter().map(|t| Ok(t.as_ref())), wanted, o) {
            out.push(one?);
        }
        Ok(out)
    }

    /// [`embed_all`](Self::embed_all) of any iterator of texts (that may fail): each
    /// text's outputs streamed in input order, in bounded memory, with the call's dense
    /// steps and sparse pruning applied.
    pub fn embed_all_iter<'a, I, S>(
        &'a self,
        texts: I,
        wanted: &[Capability],
        o: &CallOptions,
    ) -> Stream<'a, TextOutput>
    where
        I: IntoIterator<Item = Result<S>>,
        I::IntoIter: 'a,
        S: Into<Cow<'a, str>>,
    {
        let dims = match self.start_all(wanted, o) {
            Ok(d) => d,
            Err(e) => return Stream::failed(e),
        };
        let (normalize, top_k, min_weight) = (o.normalize, o.sparse_top_k, o.sparse_min_weight);
        let stream = self
            .inner
            .all_stream(self.cut_or_refuse(texts_of(texts), o), wanted, o);
        Stream::from_iter(stream.map(move |one| {
            one.map(|mut one| {
                if let Some(v) = one.dense.as_mut() {
                    finish_one(v, dims, normalize);
                }
                if let Some(v) = one.sparse.as_mut() {
                    prune(v, top_k, min_weight);
                }
                one
            })
        }))
    }

    /// The checks of an `embed_all` call before any work: text outputs only, each one the
    /// model offers, and `dimensions` for dense vectors only.
    fn start_all(&self, wanted: &[Capability], o: &CallOptions) -> Result<Option<usize>> {
        if wanted.is_empty() {
            return Err(Error::InvalidArgument(
                "ask for at least one output (dense, sparse or multi-vector)".into(),
            ));
        }
        for &c in wanted {
            if !TEXT_OUTPUTS.contains(&c) {
                return Err(Error::InvalidArgument(format!(
                    "{c} is not an output of texts"
                )));
            }
            self.require(c)?;
        }
        // `dimensions` as a dense call checks it, or as any other call refuses it.
        let first = if wanted.contains(&Capability::DenseText) {
            Capability::DenseText
        } else {
            wanted[0]
        };
        self.start(first, o)
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

fn refs<S: AsRef<str>>(texts: &[S]) -> Vec<&str> {
    texts.iter().map(|t| t.as_ref()).collect()
}
