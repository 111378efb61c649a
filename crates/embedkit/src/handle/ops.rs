//! The handle's operations, taking one set of per-call options: [`Operations`], given to
//! everything that states its capabilities — [`EmbeddingModel`](super::EmbeddingModel)
//! and every family's [`Model`](crate::Model) (`TextEmbedding`, `SparseTextEmbedding`, ...).

use std::borrow::Cow;

use super::{
    lacks, texts_of, CallOptions, Capability, Capable, Pairs, TextOutput, TextOutputs, Texts,
    TEXT_OUTPUTS,
};
use crate::engine::Stream;
use crate::error::{Error, Result};
use crate::image::ImageInput;
use crate::late_interaction::MultiVector;
use crate::pipeline::Purpose;
use crate::postprocess::{self, Muvera};
use crate::rerank::{RankedDocument, TopN};
use crate::sparse::SparseEmbedding;
use crate::text::Embedding;

/// The operations of a model that states its capabilities, each taking [`CallOptions`]:
/// the capability is checked first (an operation the model lacks is an `Unsupported`
/// error), then the family computes and the call's post-processing runs in the stream
/// (`dimensions`, `normalize`, sparse pruning, truncation on/off). Implemented for every
/// [`Capable`], so a family's `Model` and the [`EmbeddingModel`](super::EmbeddingModel)
/// handle (through `Deref`) offer the same calls.
///
/// ```no_run
/// use embedkit::{CallOptions, Operations, TextEmbedding};
/// let model = TextEmbedding::builder("nomic-ai/nomic-embed-text-v1.5").build()?;
/// let short = model.embed_dense(&["hello"], &CallOptions::new().dimensions(Some(256)))?;
/// # Ok::<(), embedkit::Error>(())
/// ```
pub trait Operations: Capable {
    /// Whether the model offers `c`.
    fn can(&self, c: Capability) -> bool {
        self.capabilities().contains(&c)
    }

    /// The dense size a call with `dimensions` gives: `None` for the model's own size, or
    /// a shorter one the model was trained for; anything else is an error.
    fn check_dimensions(&self, dimensions: Option<usize>) -> Result<Option<usize>> {
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
    fn finish_dense(&self, mut vectors: Vec<Embedding>, o: &CallOptions) -> Result<Vec<Embedding>> {
        let dims = self.check_dimensions(o.dimensions)?;
        for v in &mut vectors {
            finish_one(v, dims, o.normalize);
        }
        Ok(vectors)
    }

    /// One dense vector per text.
    fn embed_dense<S: AsRef<str>>(&self, texts: &[S], o: &CallOptions) -> Result<Vec<Embedding>> {
        self.embed_dense_iter(texts.iter().map(|t| Ok(t.as_ref())), o)
            .collect()
    }

    /// Dense vectors of any iterator of texts (that may fail), streamed in input order in
    /// bounded memory.
    fn embed_dense_iter<'a, I, S>(&'a self, texts: I, o: &CallOptions) -> Stream<'a, Embedding>
    where
        I: IntoIterator<Item = Result<S>>,
        I::IntoIter: 'a,
        S: Into<Cow<'a, str>>,
    {
        let dims = match start(self, Capability::DenseText, o) {
            Ok(d) => d,
            Err(e) => return Stream::failed(e),
        };
        let stream = self.dense_stream(cut_or_refuse(self, texts_of(texts), o), o);
        finished(stream, dims, o.normalize)
    }

    /// One dense vector per token-id sequence, used as given (special tokens included).
    fn embed_token_ids(&self, ids: &[Vec<u32>], o: &CallOptions) -> Result<Vec<Embedding>> {
        start(self, Capability::DenseTokenIds, o)?;
        let v = self.dense_token_ids(ids, o)?;
        self.finish_dense(v, o)
    }

    /// One dense vector per image.
    fn embed_images(&self, images: &[ImageInput], o: &CallOptions) -> Result<Vec<Embedding>> {
        self.embed_images_iter(images.iter().cloned().map(Ok), o)
            .collect()
    }

    /// Dense vectors of any iterator of images (that may fail), streamed in input order.
    fn embed_images_iter<'a, I>(&'a self, images: I, o: &CallOptions) -> Stream<'a, Embedding>
    where
        I: IntoIterator<Item = Result<ImageInput>>,
        I::IntoIter: 'a,
    {
        let dims = match start(self, Capability::DenseImage, o) {
            Ok(d) => d,
            Err(e) => return Stream::failed(e),
        };
        let stream = self.image_stream(Box::new(images.into_iter()), o);
        finished(stream, dims, o.normalize)
    }

    /// One sparse vector per text.
    fn embed_sparse<S: AsRef<str>>(
        &self,
        texts: &[S],
        o: &CallOptions,
    ) -> Result<Vec<SparseEmbedding>> {
        self.embed_sparse_iter(texts.iter().map(|t| Ok(t.as_ref())), o)
            .collect()
    }

    /// Sparse vectors of any iterator of texts, streamed in input order, pruned as `o`
    /// asks.
    fn embed_sparse_iter<'a, I, S>(
        &'a self,
        texts: I,
        o: &CallOptions,
    ) -> Stream<'a, SparseEmbedding>
    where
        I: IntoIterator<Item = Result<S>>,
        I::IntoIter: 'a,
        S: Into<Cow<'a, str>>,
    {
        if let Err(e) = start(self, Capability::SparseText, o) {
            return Stream::failed(e);
        }
        let (top_k, min_weight) = (o.sparse_top_k, o.sparse_min_weight);
        let stream = self.sparse_stream(cut_or_refuse(self, texts_of(texts), o), o);
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
    fn embed_token_vectors<S: AsRef<str>>(
        &self,
        texts: &[S],
        o: &CallOptions,
    ) -> Result<Vec<MultiVector>> {
        self.embed_token_vectors_iter(texts.iter().map(|t| Ok(t.as_ref())), o)
            .collect()
    }

    /// Token vectors of any iterator of texts, streamed in input order.
    fn embed_token_vectors_iter<'a, I, S>(
        &'a self,
        texts: I,
        o: &CallOptions,
    ) -> Stream<'a, MultiVector>
    where
        I: IntoIterator<Item = Result<S>>,
        I::IntoIter: 'a,
        S: Into<Cow<'a, str>>,
    {
        match start(self, Capability::TokenVectors, o) {
            Ok(_) => self.token_vector_stream(cut_or_refuse(self, texts_of(texts), o), o),
            Err(e) => Stream::failed(e),
        }
    }

    /// One matrix per text.
    fn embed_multi<S: AsRef<str>>(&self, texts: &[S], o: &CallOptions) -> Result<Vec<MultiVector>> {
        self.embed_multi_iter(texts.iter().map(|t| Ok(t.as_ref())), o)
            .collect()
    }

    /// Matrices of any iterator of texts, streamed in input order.
    fn embed_multi_iter<'a, I, S>(&'a self, texts: I, o: &CallOptions) -> Stream<'a, MultiVector>
    where
        I: IntoIterator<Item = Result<S>>,
        I::IntoIter: 'a,
        S: Into<Cow<'a, str>>,
    {
        match start(self, Capability::MultiVectorText, o) {
            Ok(_) => self.multi_stream(cut_or_refuse(self, texts_of(texts), o), o),
            Err(e) => Stream::failed(e),
        }
    }

    /// One matrix per image.
    fn embed_images_multi(
        &self,
        images: &[ImageInput],
        o: &CallOptions,
    ) -> Result<Vec<MultiVector>> {
        self.embed_images_multi_iter(images.iter().cloned().map(Ok), o)
            .collect()
    }

    /// Matrices of any iterator of images, streamed in input order.
    fn embed_images_multi_iter<'a, I>(
        &'a self,
        images: I,
        o: &CallOptions,
    ) -> Stream<'a, MultiVector>
    where
        I: IntoIterator<Item = Result<ImageInput>>,
        I::IntoIter: 'a,
    {
        match start(self, Capability::MultiVectorImage, o) {
            Ok(_) => self.multi_image_stream(Box::new(images.into_iter()), o),
            Err(e) => Stream::failed(e),
        }
    }

    /// The relevance score of each (query, document) pair, in order.
    fn score_pairs<A: AsRef<str>, B: AsRef<str>>(
        &self,
        pairs: &[(A, B)],
        o: &CallOptions,
    ) -> Result<Vec<f32>> {
        self.score_pairs_iter(pairs.iter().map(|(a, b)| Ok((a.as_ref(), b.as_ref()))), o)
            .collect()
    }

    /// Scores of any iterator of (query, document) pairs, streamed in order.
    fn score_pairs_iter<'a, I, A, B>(&'a self, pairs: I, o: &CallOptions) -> Stream<'a, f32>
    where
        I: IntoIterator<Item = Result<(A, B)>>,
        I::IntoIter: 'a,
        A: Into<Cow<'a, str>>,
        B: Into<Cow<'a, str>>,
    {
        if let Err(e) = start(self, Capability::PairScores, o) {
            return Stream::failed(e);
        }
        let pairs: Pairs<'a> = Box::new(
            pairs
                .into_iter()
                .map(|p| p.map(|(a, b)| (a.into(), b.into()))),
        );
        self.score_stream(pairs, o)
    }

    /// The documents ranked against `query`, best first (NaN scores last, ties in input
    /// order); `o.top_n` keeps only the best N, holding no more than N in memory.
    fn rank<'a, I, S>(
        &'a self,
        query: &'a str,
        documents: I,
        o: &CallOptions,
    ) -> Result<Vec<RankedDocument>>
    where
        I: IntoIterator<Item = Result<S>>,
        I::IntoIter: 'a,
        S: Into<Cow<'a, str>>,
    {
        let mut best = TopN::new(o.top_n.unwrap_or(usize::MAX));
        let pairs = documents
            .into_iter()
            .map(move |d| d.map(|d| (Cow::Borrowed(query), d.into())));
        for score in self.score_pairs_iter(pairs, o) {
            best.push(score?);
        }
        Ok(best.into_ranked())
    }

    /// MUVERA's fixed-size encoding of each text's multi-vector (`o.muvera`, or
    /// fastembed's defaults): a query's when `o.purpose` is a query, else a document's,
    /// as fastembed's `Muvera.process_query` / `process_document`.
    fn embed_muvera<S: AsRef<str>>(&self, texts: &[S], o: &CallOptions) -> Result<Vec<Embedding>> {
        self.embed_muvera_iter(texts.iter().map(|t| Ok(t.as_ref())), o)
            .collect()
    }

    /// [`embed_muvera`](Self::embed_muvera) of any iterator of texts, streamed in order.
    fn embed_muvera_iter<'a, I, S>(&'a self, texts: I, o: &CallOptions) -> Stream<'a, Embedding>
    where
        I: IntoIterator<Item = Result<S>>,
        I::IntoIter: 'a,
        S: Into<Cow<'a, str>>,
    {
        let muvera = match start(self, Capability::MultiVectorText, o).and_then(|_| muvera(self, o))
        {
            Ok(m) => m,
            Err(e) => return Stream::failed(e),
        };
        let query = o.purpose == Purpose::Query;
        let stream = self.multi_stream(cut_or_refuse(self, texts_of(texts), o), o);
        encoded(stream, muvera, query)
    }

    /// MUVERA's document encoding of each image's multi-vector (`o.muvera`, or
    /// fastembed's defaults), streamed in order.
    fn embed_images_muvera_iter<'a, I>(
        &'a self,
        images: I,
        o: &CallOptions,
    ) -> Stream<'a, Embedding>
    where
        I: IntoIterator<Item = Result<ImageInput>>,
        I::IntoIter: 'a,
    {
        let muvera =
            match start(self, Capability::MultiVectorImage, o).and_then(|_| muvera(self, o)) {
                Ok(m) => m,
                Err(e) => return Stream::failed(e),
            };
        let stream = self.multi_image_stream(Box::new(images.into_iter()), o);
        encoded(stream, muvera, false)
    }

    /// Several text outputs at once (any of dense, sparse and multi-vector the model
    /// offers), from one pass where the family computes them together.
    fn embed_all<S: AsRef<str>>(
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
    fn embed_all_iter<'a, I, S>(
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
        let dims = match start_all(self, wanted, o) {
            Ok(d) => d,
            Err(e) => return Stream::failed(e),
        };
        let (normalize, top_k, min_weight) = (o.normalize, o.sparse_top_k, o.sparse_min_weight);
        let stream = self.all_stream(cut_or_refuse(self, texts_of(texts), o), wanted, o);
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
}

impl<T: Capable + ?Sized> Operations for T {}

pub(super) fn require<M: Capable + ?Sized>(m: &M, c: Capability) -> Result<()> {
    if m.can(c) {
        Ok(())
    } else {
        Err(lacks(m.name(), c))
    }
}

/// The checks of a call for `c` before any work: the capability, and `dimensions`
/// (dense calls only); `Some(d)` is the size to shorten to.
fn start<M: Capable + ?Sized>(m: &M, c: Capability, o: &CallOptions) -> Result<Option<usize>> {
    require(m, c)?;
    if !o.truncate && c == Capability::PairScores {
        // Not ignored: pairs are cut, so the call would not do what it asks.
        return Err(Error::Unsupported(
            "`truncate: false` is for texts; pairs longer than the model takes are cut".into(),
        ));
    }
    match c {
        Capability::DenseText | Capability::DenseTokenIds | Capability::DenseImage => {
            m.check_dimensions(o.dimensions)
        }
        _ if o.dimensions.is_some() => Err(Error::InvalidArgument(
            "`dimensions` applies to dense vectors only".into(),
        )),
        _ => Ok(None),
    }
}

/// `texts` as a call takes them: with `truncate` off, a text longer than the model
/// takes fails the call at its position (each text is tokenized once more to know).
fn cut_or_refuse<'a, M: Capable + ?Sized>(
    m: &'a M,
    texts: Texts<'a>,
    o: &CallOptions,
) -> Texts<'a> {
    if o.truncate {
        return texts;
    }
    let max = m.max_length().ok().flatten();
    Box::new(texts.enumerate().map(move |(input, text)| {
        let text = text?;
        if m.overlong(&[text.as_ref()])?.first() == Some(&true) {
            return Err(Error::TooLong { input, max });
        }
        Ok(text)
    }))
}

/// The checks of an `embed_all` call before any work: text outputs only, each one the
/// model offers, and `dimensions` for dense vectors only.
fn start_all<M: Capable + ?Sized>(
    m: &M,
    wanted: &[Capability],
    o: &CallOptions,
) -> Result<Option<usize>> {
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
        require(m, c)?;
    }
    // `dimensions` as a dense call checks it, or as any other call refuses it.
    let first = if wanted.contains(&Capability::DenseText) {
        Capability::DenseText
    } else {
        wanted[0]
    };
    start(m, first, o)
}

/// The MUVERA encoder a call asks for, for the model's vectors.
fn muvera<M: Capable + ?Sized>(m: &M, o: &CallOptions) -> Result<Muvera> {
    let dim = m.dim().ok_or_else(|| {
        Error::Unsupported(format!(
            "model {} does not say the size of its vectors, which MUVERA needs",
            m.name()
        ))
    })?;
    Muvera::new(dim, o.muvera.unwrap_or_default())
}

/// Multi-vectors encoded by MUVERA, in the stream.
fn encoded(stream: Stream<'_, MultiVector>, muvera: Muvera, query: bool) -> Stream<'_, Embedding> {
    Stream::from_iter(stream.map(move |m| {
        let m = m?;
        let v = if query {
            muvera.process_query(m.view())?
        } else {
            muvera.process_document(m.view())?
        };
        Ok(v.into_iter().map(|x| x as f32).collect())
    }))
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
