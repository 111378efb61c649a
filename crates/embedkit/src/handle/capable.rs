//! The seam a family implements once for its `Model`: [`Capable`], streaming in and out.

use std::borrow::Cow;

use std::collections::VecDeque;

use super::{CallOptions, Capability, TextOutput};
use crate::engine::{Model, Stream};
use crate::error::{Error, Result};
use crate::image::ImageInput;
use crate::late_interaction::MultiVector;
use crate::pipeline::{Family, Purpose};
use crate::registry::Describe;
use crate::registry::Kind;
use crate::sparse::SparseEmbedding;
use crate::text::Embedding;
use crate::tokenize::{Token, TokenSpan};

/// A loaded model as the handle sees it: what it can do and the raw operations. A family
/// implements this once for its `Model`; [`EmbeddingModel`](super::EmbeddingModel) checks capabilities and
/// applies the per-call post-processing, so an implementation only computes. Operations
/// a family lacks keep the default, which is an `Unsupported` error. Operations stream
/// (bounded memory, input order); the handle's slice methods collect them.
pub trait Capable: Loaded + Send + Sync {
    /// The family (the class of the fastembed API that loads it).
    fn kind(&self) -> Kind;
    /// What it can do.
    fn capabilities(&self) -> &'static [Capability];
    /// The size of its dense vectors or of its multi-vectors' rows.
    fn dim(&self) -> Option<usize> {
        None
    }
    /// The most vectors one image's multi-vector can have (`None`: no such bound, or
    /// no multi-vector images).
    fn image_vectors_at_most(&self) -> Result<Option<usize>> {
        Ok(None)
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
    fn token_vector_stream<'a>(
        &'a self,
        _texts: Texts<'a>,
        _o: &CallOptions,
    ) -> Stream<'a, MultiVector> {
        Stream::failed(lacks(self.name(), Capability::TokenVectors))
    }
    fn score_stream<'a>(&'a self, _pairs: Pairs<'a>, _o: &CallOptions) -> Stream<'a, f32> {
        Stream::failed(lacks(self.name(), Capability::PairScores))
    }
    fn tokenize(
        &self,
        _texts: &[&str],
        _side: Option<crate::tokenize::TruncationSide>,
    ) -> Result<Vec<Vec<u32>>> {
        Err(lacks(self.name(), Capability::Tokens))
    }
    fn tokens(&self, _texts: &[&str]) -> Result<Vec<Vec<Token>>> {
        Err(lacks(self.name(), Capability::Tokens))
    }
    fn token_spans(&self, _texts: &[&str], _add_special: bool) -> Result<Vec<Vec<TokenSpan>>> {
        Err(lacks(self.name(), Capability::Tokens))
    }
    /// Whether each text is longer than the model takes.
    fn overlong(&self, _texts: &[&str]) -> Result<Vec<bool>> {
        Err(lacks(self.name(), Capability::Tokens))
    }
    /// The text of each token-id sequence.
    fn decode(&self, _ids: &[Vec<u32>], _skip_special: bool) -> Result<Vec<String>> {
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
    /// The text outputs in `wanted` (dense, sparse, multi-vector; checked by the handle)
    /// of each text, streamed in input order. By default each window of texts takes one
    /// pass per output; a family that computes several in one pass overrides this.
    fn all_stream<'a>(
        &'a self,
        texts: Texts<'a>,
        wanted: &[Capability],
        o: &CallOptions,
    ) -> Stream<'a, TextOutput> {
        let (wanted, o) = (wanted.to_vec(), o.clone());
        let window = o.batch_size.unwrap_or(256).max(1) * 4;
        let mut texts = texts;
        let mut pending: VecDeque<Result<TextOutput>> = VecDeque::new();
        let mut done = false;
        Stream::from_iter(std::iter::from_fn(move || loop {
            if let Some(next) = pending.pop_front() {
                return Some(next);
            }
            if done {
                return None;
            }
            let mut owned: Vec<String> = Vec::with_capacity(window);
            let mut failed = None;
            for t in texts.by_ref().take(window) {
                match t {
                    Ok(t) => owned.push(t.into_owned()),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            done = failed.is_some() || owned.len() < window;
            let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
            let mut outs = vec![TextOutput::default(); refs.len()];
            let mut fill = || -> Result<()> {
                for &c in &wanted {
                    match c {
                        Capability::DenseText => {
                            for (out, v) in
                                outs.iter_mut().zip(self.dense_stream(borrowed(&refs), &o))
                            {
                                out.dense = Some(v?);
                            }
                        }
                        Capability::SparseText => {
                            for (out, v) in
                                outs.iter_mut().zip(self.sparse_stream(borrowed(&refs), &o))
                            {
                                out.sparse = Some(v?);
                            }
                        }
                        Capability::MultiVectorText => {
                            for (out, v) in
                                outs.iter_mut().zip(self.multi_stream(borrowed(&refs), &o))
                            {
                                out.multi = Some(v?);
                            }
                        }
                        other => {
                            return Err(Error::InvalidArgument(format!(
                                "{other} is not an output of texts"
                            )))
                        }
                    }
                }
                Ok(())
            };
            match fill() {
                Ok(()) => pending.extend(outs.into_iter().map(Ok)),
                Err(e) => {
                    pending.push_back(Err(e));
                    done = true;
                }
            }
            if let Some(e) = failed {
                pending.push_back(Err(e));
            }
        }))
    }
}

/// What every engine model has, whatever its family: the engine gives it to `Model<F>`.
pub trait Loaded {
    /// The registry name.
    fn name(&self) -> &str;
    /// Loads the graph now if it was built lazily.
    fn load_now(&self) -> Result<()>;
    /// The folder the model files are read from.
    fn model_dir(&self) -> &std::path::Path;
}

impl<F: Family> Loaded for Model<F> {
    fn name(&self) -> &str {
        self.description().name()
    }
    fn load_now(&self) -> Result<()> {
        self.pipeline().map(drop)
    }
    fn model_dir(&self) -> &std::path::Path {
        Model::model_dir(self)
    }
}

/// Texts streamed into a model: each may fail (a line of a file that cannot be read),
/// which ends the stream after the results before it.
pub type Texts<'a> = Box<dyn Iterator<Item = Result<Cow<'a, str>>> + 'a>;
/// Images streamed into a model.
pub type Images<'a> = Box<dyn Iterator<Item = Result<ImageInput>> + 'a>;
/// (query, document) pairs streamed into a model.
pub type Pairs<'a> = Box<dyn Iterator<Item = Result<(Cow<'a, str>, Cow<'a, str>)>> + 'a>;

pub(crate) fn borrowed<'a>(texts: &'a [&'a str]) -> Texts<'a> {
    Box::new(texts.iter().map(|t| Ok(Cow::Borrowed(*t))))
}

pub(crate) fn texts_of<'a, I, S>(texts: I) -> Texts<'a>
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

/// `all_stream` of a family whose one pass computes all its text outputs (its
/// `Pipeline::Output` converts into a [`TextOutput`]): one pass, the unwanted dropped.
macro_rules! one_pass_outputs {
    () => {
        fn all_stream<'a>(
            &'a self,
            texts: crate::handle::Texts<'a>,
            wanted: &[Capability],
            o: &CallOptions,
        ) -> Stream<'a, TextOutput> {
            let wanted = wanted.to_vec();
            let all = self.try_embed_iter(texts, o.batch_size, o.prep());
            Stream::from_iter(all.map(move |r| r.map(|out| TextOutput::from(out).keep(&wanted))))
        }
    };
}
pub(crate) use one_pass_outputs;

/// The token methods of a text family's `Capable` impl: the engine's, as they are.
macro_rules! text_tokens {
    (count) => {
        fn count_tokens(
            &self,
            texts: &[&str],
            _purpose: crate::pipeline::Purpose,
            _include_extension: bool,
        ) -> Result<usize> {
            Self::token_count(self, texts)
        }
        crate::handle::text_tokens!();
    };
    () => {
        fn max_length(&self) -> Result<Option<usize>> {
            crate::engine::Model::max_length(self)
        }
        fn tokenize(
            &self,
            texts: &[&str],
            side: Option<crate::tokenize::TruncationSide>,
        ) -> Result<Vec<Vec<u32>>> {
            crate::engine::Model::tokenize_at(self, texts, side)
        }
        fn tokens(&self, texts: &[&str]) -> Result<Vec<Vec<crate::tokenize::Token>>> {
            crate::engine::Model::tokens(self, texts)
        }
        fn token_spans(
            &self,
            texts: &[&str],
            add_special: bool,
        ) -> Result<Vec<Vec<crate::tokenize::TokenSpan>>> {
            crate::engine::Model::token_spans(self, texts, add_special)
        }
        fn overlong(&self, texts: &[&str]) -> Result<Vec<bool>> {
            crate::engine::Model::overlong(self, texts)
        }
        fn decode(&self, ids: &[Vec<u32>], skip_special: bool) -> Result<Vec<String>> {
            crate::engine::Model::decode(self, ids, skip_special)
        }
    };
}
pub(crate) use text_tokens;
