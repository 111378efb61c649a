//! Dense text embeddings: [`TextEmbedding`], fastembed's class of the same name.
//!
//! What the family computes: texts (with the query/passage prefix when switched on)
//! become token ids; a batch of them becomes one vector each, through a transformer
//! graph and pooling (`onnx`) or a model2vec table (`static_model`).

mod onnx;
pub(crate) mod pooling;
mod static_model;

use crate::engine::Stream;
use crate::engine::{Builder, Model};
use crate::error::{Error, Result};
use crate::handle::{CallOptions, Capability, Capable, Texts};
use crate::late_interaction::MultiVector;
use crate::pipeline::{Family, Load, Pipeline, Prep, Purpose, TextPipeline};
use crate::registry::Kind;
use crate::registry::{
    self, DenseKind, DenseModelDescription, DensePipeline, ModelCore, ModelSource, OutputSelector,
    Pooling,
};
use crate::runtime::Lane;
use crate::tokenize::{Token, TokenSpan, TruncationSide};

/// One embedding vector.
pub type Embedding = Vec<f32>;

/// Dense text embeddings with a model of the registry: one vector per text.
///
/// `embed`, `query_embed`, `passage_embed`, `embed_iter` and `try_embed_iter` return
/// [`Embedding`]s (see [`Model`] for the methods every text family shares).
///
/// ```no_run
/// use embedkit::TextEmbedding;
/// let model = TextEmbedding::builder("BAAI/bge-small-en-v1.5").build()?;
/// let vectors = model.embed(&["hello world"], None)?;
/// assert_eq!(vectors[0].len(), model.embedding_size());
/// # Ok::<(), embedkit::Error>(())
/// ```
pub type TextEmbedding = Model<Dense>;
/// Builder of a [`TextEmbedding`].
pub type TextEmbeddingBuilder = Builder<Dense>;

/// Builder settings of the dense family (as a JSON object for
/// [`EmbeddingModel::load_with`](crate::EmbeddingModel::load_with): `add_prefixes`,
/// `task_id`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DenseSettings {
    add_prefixes: bool,
    task_id: Option<i64>,
}

impl Builder<Dense> {
    /// Apply the registry's query/passage prefixes in `query_embed` / `passage_embed`.
    /// Off by default, as in fastembed, so vectors stay interchangeable with its.
    pub fn add_prefixes(mut self, yes: bool) -> Self {
        self.settings.add_prefixes = yes;
        self
    }
    /// Task id used by `embed` for multi-task models (jina-embeddings-v3); default: passage.
    pub fn task_id(mut self, id: i64) -> Self {
        self.settings.task_id = Some(id);
        self
    }
}

/// A way of computing a dense model's vectors: tokenization plus a batch computation.
trait DenseBackend: Send + Sync {
    /// Token ids of each text, truncated (at `side`, or where the model says), unpadded.
    fn tokenize(&self, texts: &[&str], side: Option<TruncationSide>) -> Result<Vec<Vec<u32>>>;
    /// One vector per sequence, in the order given.
    fn embed_batch(
        &self,
        sequences: &[&[u32]],
        task: Option<i64>,
        lane: Lane,
    ) -> Result<Vec<Embedding>>;
    /// Each sequence's vectors before pooling, one per token (padding dropped).
    fn token_vectors(
        &self,
        _sequences: &[&[u32]],
        _task: Option<i64>,
        _lane: Lane,
    ) -> Result<Vec<MultiVector>> {
        Err(Error::Unsupported(
            "this model has no vectors per token (a static embedding table)".into(),
        ))
    }
    /// How many batches may run at once.
    fn parallelism(&self) -> usize {
        1
    }
    /// Token ids the model accepts are below this.
    fn vocab_size(&self) -> usize;
    /// Longest sequence the model takes.
    fn max_length(&self) -> usize;
    /// Whether each text is longer than that.
    fn overlong(&self, texts: &[&str]) -> Result<Vec<bool>>;
    /// The text of each token-id sequence.
    fn decode(&self, ids: &[Vec<u32>], skip_special: bool) -> Result<Vec<String>>;
    /// Each id's token text and special flag.
    fn describe_tokens(&self, ids: &[u32]) -> Vec<Token>;
    /// Each text's tokens, untruncated, with their offsets.
    fn spans(&self, texts: &[&str], add_special: bool) -> Result<Vec<Vec<TokenSpan>>>;
}

/// A loaded dense model: the dense text family (see [`TextEmbedding`]).
pub struct Dense {
    desc: DenseModelDescription,
    settings: DenseSettings,
    backend: Box<dyn DenseBackend>,
}

impl Family for Dense {
    type Description = DenseModelDescription;
    type Settings = DenseSettings;

    fn load(at: Load<'_, Self>) -> Result<Dense> {
        let backend: Box<dyn DenseBackend> = match at.desc.pipeline.kind {
            DenseKind::Onnx => Box::new(onnx::OnnxBackend::load(at.desc, at.dir, at.runtime)?),
            DenseKind::Static => Box::new(static_model::StaticBackend::load(at.desc, at.dir)?),
        };
        Ok(Dense {
            desc: at.desc.clone(),
            settings: at.settings.clone(),
            backend,
        })
    }
}

impl Dense {
    fn task_for(&self, purpose: Purpose) -> Option<i64> {
        let tasks = &self.desc.tasks;
        if tasks.is_empty() {
            return None;
        }
        let task = |name: &str, fallback: i64| tasks.get(name).copied().unwrap_or(fallback);
        Some(match purpose {
            Purpose::Query => task("retrieval.query", 0),
            Purpose::Passage => task("retrieval.passage", 1),
            Purpose::Document => self
                .settings
                .task_id
                .unwrap_or_else(|| task("retrieval.passage", 1)),
        })
    }

    fn prefix_for(&self, purpose: Purpose) -> Option<&str> {
        if !self.settings.add_prefixes {
            return None;
        }
        match purpose {
            Purpose::Query => self.desc.query_prefix.as_deref(),
            Purpose::Passage => self.desc.passage_prefix.as_deref(),
            Purpose::Document => None,
        }
    }
}

impl Pipeline for Dense {
    type Input<'a> = &'a str;
    type Item = Vec<u32>;
    type Output = Embedding;

    fn prepare(&self, texts: &[&str], call: Prep) -> Result<Vec<Vec<u32>>> {
        match self.prefix_for(call.purpose) {
            Some(prefix) => {
                let prefixed: Vec<String> = texts.iter().map(|t| format!("{prefix}{t}")).collect();
                let refs: Vec<&str> = prefixed.iter().map(String::as_str).collect();
                self.backend.tokenize(&refs, call.truncation)
            }
            None => self.backend.tokenize(texts, call.truncation),
        }
    }

    fn cost(&self, item: &Vec<u32>, _: Purpose) -> usize {
        item.len()
    }

    fn parallelism(&self) -> usize {
        self.backend.parallelism()
    }

    fn run(&self, batch: &[&Vec<u32>], purpose: Purpose, lane: Lane) -> Result<Vec<Embedding>> {
        let seqs: Vec<&[u32]> = batch.iter().map(|s| s.as_slice()).collect();
        let vectors = self
            .backend
            .embed_batch(&seqs, self.task_for(purpose), lane)?;
        if let Some(v) = vectors.iter().find(|v| v.len() != self.desc.dim) {
            return Err(Error::ModelMismatch {
                model: self.desc.core.model.clone(),
                reason: format!(
                    "the model outputs vectors of {} dimensions, but the registry says {}",
                    v.len(),
                    self.desc.dim
                ),
            });
        }
        Ok(vectors)
    }
}

impl Dense {
    /// Token vectors of a batch: [`Pipeline::run`]'s other output.
    fn token_batch(
        &self,
        batch: &[&Vec<u32>],
        purpose: Purpose,
        lane: Lane,
    ) -> Result<Vec<MultiVector>> {
        let seqs: Vec<&[u32]> = batch.iter().map(|s| s.as_slice()).collect();
        self.backend
            .token_vectors(&seqs, self.task_for(purpose), lane)
    }
}

impl TextPipeline for Dense {
    fn tokenize(&self, texts: &[&str], side: Option<TruncationSide>) -> Result<Vec<Vec<u32>>> {
        self.backend.tokenize(texts, side)
    }

    fn describe_tokens(&self, ids: &[u32]) -> Vec<Token> {
        self.backend.describe_tokens(ids)
    }

    fn spans(&self, texts: &[&str], add_special: bool) -> Result<Vec<Vec<TokenSpan>>> {
        self.backend.spans(texts, add_special)
    }

    fn max_length(&self) -> Option<usize> {
        Some(self.backend.max_length())
    }

    fn overlong(&self, texts: &[&str]) -> Result<Vec<bool>> {
        self.backend.overlong(texts)
    }

    fn decode(&self, ids: &[Vec<u32>], skip_special: bool) -> Result<Vec<String>> {
        self.backend.decode(ids, skip_special)
    }
}

/// Parameters of [`TextEmbedding::add_custom_model`], as fastembed's.
#[derive(Debug, Clone)]
pub struct CustomTextModel {
    pub model: String,
    pub pooling: Pooling,
    pub normalization: bool,
    pub sources: ModelSource,
    pub dim: usize,
    /// Default: `onnx/model.onnx`, as fastembed.
    pub model_file: String,
    pub description: String,
    pub license: String,
    pub size_in_gb: f64,
    pub additional_files: Vec<String>,
    /// Read this output of the graph instead of the first.
    pub output_name: Option<String>,
    /// Trained for truncated vectors (see [`DenseModelDescription::matryoshka`]).
    pub matryoshka: bool,
}

impl CustomTextModel {
    pub fn new(
        model: impl Into<String>,
        pooling: Pooling,
        normalization: bool,
        sources: ModelSource,
        dim: usize,
    ) -> Self {
        CustomTextModel {
            model: model.into(),
            pooling,
            normalization,
            sources,
            dim,
            model_file: "onnx/model.onnx".into(),
            description: String::new(),
            license: String::new(),
            size_in_gb: 0.0,
            additional_files: Vec::new(),
            output_name: None,
            matryoshka: false,
        }
    }
}

impl From<CustomTextModel> for DenseModelDescription {
    fn from(m: CustomTextModel) -> Self {
        let mut core = ModelCore::new(m.model, m.sources, m.model_file);
        core.description = m.description;
        core.license = m.license;
        core.size_in_gb = m.size_in_gb;
        core.additional_files = m.additional_files;
        core.custom = true;
        DenseModelDescription {
            core,
            dim: m.dim,
            tasks: Default::default(),
            max_length: None,
            pipeline: DensePipeline {
                pooling: m.pooling,
                normalize: m.normalization,
                output: m.output_name.map(OutputSelector::Name).unwrap_or_default(),
                pad_to_max_length: false,
                kind: DenseKind::Onnx,
            },
            query_prefix: None,
            passage_prefix: None,
            matryoshka: m.matryoshka,
        }
    }
}

impl Model<Dense> {
    /// Registers a model of your own, as fastembed's `TextEmbedding.add_custom_model`.
    /// To load one without registering it, pass its description to
    /// [`Model::from_description`].
    pub fn add_custom_model(m: CustomTextModel) -> Result<()> {
        Self::register_model(m.into())
    }

    /// The embedding size of a model by name.
    pub fn get_embedding_size(model_name: &str) -> Result<usize> {
        Ok(registry::DENSE.get(model_name)?.dim)
    }

    /// Dimensions of each vector.
    pub fn embedding_size(&self) -> usize {
        self.description().dim
    }

    /// Embeds sequences given as token ids, used as they are: what
    /// [`tokenize`](Self::tokenize) returns, special tokens included. Longer sequences
    /// are cut at the model's maximum length; an id outside the vocabulary or an empty
    /// sequence is an error naming the sequence.
    pub fn embed_token_ids(
        &self,
        sequences: &[Vec<u32>],
        batch_size: Option<usize>,
    ) -> Result<Vec<Embedding>> {
        self.check_token_ids(sequences)?;
        let max_len = self.pipeline()?.backend.max_length();
        let cut: Vec<Vec<u32>> = sequences
            .iter()
            .map(|s| s[..s.len().min(max_len)].to_vec())
            .collect();
        self.run_prepared(&cut, batch_size, Purpose::Document)
    }

    /// Fails unless every sequence is non-empty and every id is in the vocabulary.
    pub fn check_token_ids(&self, sequences: &[Vec<u32>]) -> Result<()> {
        let vocab = self.pipeline()?.backend.vocab_size();
        for (i, seq) in sequences.iter().enumerate() {
            if seq.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "token sequence {i} is empty"
                )));
            }
            if let Some(id) = seq.iter().find(|&&id| id as usize >= vocab) {
                return Err(Error::InvalidArgument(format!(
                    "token sequence {i} has id {id}, outside the vocabulary of {vocab}"
                )));
            }
        }
        Ok(())
    }
}

impl Capable for Model<Dense> {
    fn kind(&self) -> Kind {
        Kind::Dense
    }
    fn capabilities(&self) -> &'static [Capability] {
        match self.description().pipeline.kind {
            DenseKind::Onnx => &[
                Capability::DenseText,
                Capability::DenseTokenIds,
                Capability::TokenVectors,
                Capability::Tokens,
            ],
            DenseKind::Static => &[
                Capability::DenseText,
                Capability::DenseTokenIds,
                Capability::Tokens,
            ],
        }
    }
    fn dim(&self) -> Option<usize> {
        Some(self.embedding_size())
    }
    fn matryoshka(&self) -> bool {
        self.description().matryoshka
    }
    fn dense_stream<'a>(&'a self, texts: Texts<'a>, o: &CallOptions) -> Stream<'a, Embedding> {
        self.try_embed_iter(texts, o.batch_size, o.prep())
    }
    fn dense_token_ids(&self, ids: &[Vec<u32>], o: &CallOptions) -> Result<Vec<Embedding>> {
        self.embed_token_ids(ids, o.batch_size)
    }
    fn token_vector_stream<'a>(
        &'a self,
        texts: Texts<'a>,
        o: &CallOptions,
    ) -> Stream<'a, MultiVector> {
        self.stream_with(
            texts,
            o.batch_size,
            o.prep(),
            crate::engine::as_text::<std::borrow::Cow<'a, str>>,
            Dense::token_batch,
        )
    }
    fn check_token_ids(&self, ids: &[Vec<u32>]) -> Result<()> {
        Model::check_token_ids(self, ids)
    }
    crate::handle::text_tokens!(count);
}
