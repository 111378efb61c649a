//! Dense text embeddings: `TextEmbedding`, fastembed's class of the same name.
//!
//! A backend turns texts into token sequences and batches of sequences into vectors; this
//! module owns the shared part: windows of input, length-sorted batches, input order.

mod onnx;
pub mod pooling;
mod static_model;

use std::path::PathBuf;
use std::sync::Arc;

use crate::batching::{self, WindowStream};
use crate::error::{Error, Result};
use crate::hub::{self, ModelFiles};
use crate::options::{load_option_setters, Lazy, LoadOptions};
use crate::registry::{
    self, DenseKind, DenseModelDescription, DensePipeline, ModelSource, Pooling,
};
use crate::runtime::RuntimeOptions;

/// One embedding vector.
pub type Embedding = Vec<f32>;

pub use crate::options::DEFAULT_BATCH_SIZE;

/// What a call embeds, which decides the task id of multi-task models and the prefix
/// applied when prefixes are switched on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Document,
    Query,
    Passage,
}

/// A way of computing a model's vectors: tokenization plus a batch computation.
pub(crate) trait DenseBackend: Send + Sync {
    /// Token ids of each text, truncated, unpadded.
    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>>;
    /// One vector per sequence, in the order given.
    fn embed_batch(&self, sequences: &[&[u32]], task: Option<i64>) -> Result<Vec<Embedding>>;
    /// How many batches may run at once.
    fn parallelism(&self) -> usize {
        1
    }
    /// Token ids the model accepts are below this.
    fn vocab_size(&self) -> usize;
    /// Longest sequence the model takes.
    fn max_length(&self) -> usize;
}

/// The files a dense model needs, for finding, downloading or removing it.
pub fn model_files(desc: &DenseModelDescription) -> ModelFiles<'_> {
    let mut required = vec![desc.model_file.clone()];
    required.extend(desc.additional_files.iter().cloned());
    required.push("tokenizer.json".into());
    if desc.pipeline.kind == DenseKind::Onnx {
        required.push("tokenizer_config.json".into());
    }
    ModelFiles::new(&desc.model, &desc.sources, required, Vec::new())
}

/// Builder for [`TextEmbedding`], with fastembed's constructor arguments.
#[derive(Debug, Clone)]
pub struct TextEmbeddingBuilder {
    model_name: String,
    load: LoadOptions,
    add_prefixes: bool,
    task_id: Option<i64>,
}

impl TextEmbeddingBuilder {
    load_option_setters!();

    /// Apply the registry's query/passage prefixes in `query_embed` / `passage_embed`.
    /// Off by default, as in fastembed, so vectors stay interchangeable with its.
    pub fn add_prefixes(mut self, yes: bool) -> Self {
        self.add_prefixes = yes;
        self
    }
    /// Task id used by `embed` for multi-task models (jina-embeddings-v3); default: passage.
    pub fn task_id(mut self, id: i64) -> Self {
        self.task_id = Some(id);
        self
    }

    pub fn build(self) -> Result<TextEmbedding> {
        self.load.validate()?;
        let desc = registry::dense_model(&self.model_name)?;
        let model_dir = hub::resolve_model_dir(&model_files(&desc), &self.load.cache)?;
        let model = TextEmbedding {
            desc,
            model_dir,
            runtime: self.load.runtime,
            backend: Lazy::new(),
            batch_size: self.load.batch_size,
            max_batch_tokens: self.load.max_batch_tokens,
            add_prefixes: self.add_prefixes,
            task_id: self.task_id,
        };
        if !self.load.lazy_load {
            model.backend()?;
        }
        Ok(model)
    }
}

/// Dense text embeddings with a model of the registry.
///
/// ```no_run
/// use embedkit::TextEmbedding;
/// let model = TextEmbedding::builder("BAAI/bge-small-en-v1.5").build()?;
/// let vectors = model.embed(&["hello world"], None)?;
/// assert_eq!(vectors[0].len(), 384);
/// # Ok::<(), embedkit::Error>(())
/// ```
pub struct TextEmbedding {
    desc: DenseModelDescription,
    model_dir: PathBuf,
    runtime: RuntimeOptions,
    backend: Lazy<dyn DenseBackend>,
    batch_size: usize,
    max_batch_tokens: usize,
    add_prefixes: bool,
    task_id: Option<i64>,
}

impl std::fmt::Debug for TextEmbedding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextEmbedding")
            .field("model", &self.desc.model)
            .field("model_dir", &self.model_dir)
            .finish_non_exhaustive()
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

impl TextEmbedding {
    /// Starts building a model by registry name (fastembed's default is
    /// `BAAI/bge-small-en-v1.5`).
    pub fn builder(model_name: impl Into<String>) -> TextEmbeddingBuilder {
        TextEmbeddingBuilder {
            model_name: model_name.into(),
            load: LoadOptions::default(),
            add_prefixes: false,
            task_id: None,
        }
    }

    /// Every supported dense model, built-in and custom.
    pub fn list_supported_models() -> Vec<DenseModelDescription> {
        registry::dense_models()
    }

    /// Registers a model of your own, as fastembed's `TextEmbedding.add_custom_model`.
    pub fn add_custom_model(m: CustomTextModel) -> Result<()> {
        registry::add_dense_model(DenseModelDescription {
            model: m.model,
            dim: m.dim,
            description: m.description,
            license: m.license,
            size_in_gb: m.size_in_gb,
            sources: m.sources,
            model_file: m.model_file,
            additional_files: m.additional_files,
            tasks: Default::default(),
            max_length: None,
            pipeline: DensePipeline {
                pooling: m.pooling,
                normalize: m.normalization,
                output: m
                    .output_name
                    .map(registry::OutputSelector::Name)
                    .unwrap_or_default(),
                pad_to_max_length: false,
                kind: DenseKind::Onnx,
            },
            query_prefix: None,
            passage_prefix: None,
            matryoshka: m.matryoshka,
            custom: true,
        })
    }

    /// The embedding size of a model by name.
    pub fn get_embedding_size(model_name: &str) -> Result<usize> {
        Ok(registry::dense_model(model_name)?.dim)
    }

    pub fn embedding_size(&self) -> usize {
        self.desc.dim
    }

    pub fn description(&self) -> &DenseModelDescription {
        &self.desc
    }

    /// The folder the model files were loaded from.
    pub fn model_dir(&self) -> &std::path::Path {
        &self.model_dir
    }

    fn backend(&self) -> Result<Arc<dyn DenseBackend>> {
        self.backend.get_or_load(|| {
            Ok(match self.desc.pipeline.kind {
                DenseKind::Onnx => Arc::new(onnx::OnnxBackend::load(
                    &self.desc,
                    &self.model_dir,
                    &self.runtime,
                )?),
                DenseKind::Static => Arc::new(static_model::StaticBackend::load(
                    &self.desc,
                    &self.model_dir,
                )?),
            })
        })
    }

    /// Embeds documents; one vector per document, in input order. `batch_size` defaults
    /// to the builder's (256).
    pub fn embed<S: AsRef<str>>(
        &self,
        documents: &[S],
        batch_size: Option<usize>,
    ) -> Result<Vec<Embedding>> {
        self.embed_iter(documents.iter().map(|d| d.as_ref()), batch_size)
            .collect()
    }

    /// Embeds queries, as fastembed's `query_embed` (with the query prefix when prefixes
    /// are switched on, and the query task of multi-task models).
    pub fn query_embed<S: AsRef<str>>(
        &self,
        queries: &[S],
        batch_size: Option<usize>,
    ) -> Result<Vec<Embedding>> {
        self.stream(
            queries.iter().map(|d| Ok(d.as_ref())),
            batch_size,
            Purpose::Query,
        )
        .collect()
    }

    /// Embeds passages, as fastembed's `passage_embed`.
    pub fn passage_embed<S: AsRef<str>>(
        &self,
        passages: &[S],
        batch_size: Option<usize>,
    ) -> Result<Vec<Embedding>> {
        self.stream(
            passages.iter().map(|d| Ok(d.as_ref())),
            batch_size,
            Purpose::Passage,
        )
        .collect()
    }

    /// Streams the vectors of any iterator of documents, in input order, in bounded memory.
    pub fn embed_iter<'a, I, S>(
        &'a self,
        documents: I,
        batch_size: Option<usize>,
    ) -> EmbedIter<'a, S>
    where
        I: IntoIterator<Item = S>,
        I::IntoIter: 'a,
        S: AsRef<str> + 'a,
    {
        self.stream(documents.into_iter().map(Ok), batch_size, Purpose::Document)
    }

    /// As [`embed_iter`](Self::embed_iter), for inputs that can fail (lines of a file);
    /// the first error ends the stream.
    pub fn try_embed_iter<'a, I, S>(
        &'a self,
        documents: I,
        batch_size: Option<usize>,
        purpose: EmbedPurpose,
    ) -> EmbedIter<'a, S>
    where
        I: IntoIterator<Item = Result<S>>,
        I::IntoIter: 'a,
        S: AsRef<str> + 'a,
    {
        let purpose = match purpose {
            EmbedPurpose::Document => Purpose::Document,
            EmbedPurpose::Query => Purpose::Query,
            EmbedPurpose::Passage => Purpose::Passage,
        };
        self.stream(documents, batch_size, purpose)
    }

    fn stream<'a, I, S>(
        &'a self,
        documents: I,
        batch_size: Option<usize>,
        purpose: Purpose,
    ) -> EmbedIter<'a, S>
    where
        I: IntoIterator<Item = Result<S>>,
        I::IntoIter: 'a,
        S: AsRef<str> + 'a,
    {
        let batch_size = batch_size.unwrap_or(self.batch_size);
        WindowStream::new(
            documents.into_iter(),
            batch_size,
            move |texts: &[&str]| {
                if batch_size == 0 {
                    return Err(Error::InvalidArgument("batch_size must be >= 1".into()));
                }
                self.embed_window(texts, batch_size, purpose)
            },
        )
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
        let batch_size = batch_size.unwrap_or(self.batch_size);
        if batch_size == 0 {
            return Err(Error::InvalidArgument("batch_size must be >= 1".into()));
        }
        self.check_token_ids(sequences)?;
        let backend = self.backend()?;
        let max_len = backend.max_length();
        let cut: Vec<&[u32]> = sequences
            .iter()
            .map(|s| &s[..s.len().min(max_len)])
            .collect();
        let lengths: Vec<usize> = cut.iter().map(|s| s.len()).collect();
        let task = self.task_for(Purpose::Document);
        let workers = backend.parallelism();
        batching::run_sorted_parallel(
            &lengths,
            batch_size,
            self.max_batch_tokens,
            workers,
            |batch| {
                let seqs: Vec<&[u32]> = batch.iter().map(|&i| cut[i]).collect();
                backend.embed_batch(&seqs, task)
            },
        )
    }

    /// Fails unless every sequence is non-empty and every id is in the vocabulary.
    pub fn check_token_ids(&self, sequences: &[Vec<u32>]) -> Result<()> {
        let vocab = self.backend()?.vocab_size();
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

    /// Token ids of each text as the model gets them (truncated, special tokens
    /// included, no padding).
    pub fn tokenize<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>> {
        let backend = self.backend()?;
        let refs: Vec<&str> = texts.iter().map(|t| t.as_ref()).collect();
        backend.tokenize(&refs)
    }

    /// The number of tokens of the texts after truncation, special tokens included.
    pub fn token_count<S: AsRef<str>>(&self, texts: &[S]) -> Result<usize> {
        let backend = self.backend()?;
        batching::count_tokens(texts, |t| backend.tokenize(t))
    }

    fn task_for(&self, purpose: Purpose) -> Option<i64> {
        if self.desc.tasks.is_empty() {
            return None;
        }
        let task =
            |name: &str, fallback: i64| self.desc.tasks.get(name).copied().unwrap_or(fallback);
        Some(match purpose {
            Purpose::Query => task("retrieval.query", 0),
            Purpose::Passage => task("retrieval.passage", 1),
            Purpose::Document => self.task_id.unwrap_or_else(|| task("retrieval.passage", 1)),
        })
    }

    fn prefix_for(&self, purpose: Purpose) -> Option<&str> {
        if !self.add_prefixes {
            return None;
        }
        match purpose {
            Purpose::Query => self.desc.query_prefix.as_deref(),
            Purpose::Passage => self.desc.passage_prefix.as_deref(),
            Purpose::Document => None,
        }
    }

    /// Embeds one window of texts: sorted by length, batched, returned in input order.
    fn embed_window(
        &self,
        texts: &[&str],
        batch_size: usize,
        purpose: Purpose,
    ) -> Result<Vec<Embedding>> {
        let backend = self.backend()?;
        let prefixed: Vec<String>;
        let texts: Vec<&str> = match self.prefix_for(purpose) {
            Some(prefix) => {
                prefixed = texts.iter().map(|t| format!("{prefix}{t}")).collect();
                prefixed.iter().map(String::as_str).collect()
            }
            None => texts.to_vec(),
        };
        let sequences = backend.tokenize(&texts)?;
        let lengths: Vec<usize> = sequences.iter().map(Vec::len).collect();
        let task = self.task_for(purpose);
        let workers = backend.parallelism();
        let limits = (batch_size, self.max_batch_tokens);
        batching::run_sorted_parallel(&lengths, limits.0, limits.1, workers, |batch| {
            let seqs: Vec<&[u32]> = batch.iter().map(|&i| sequences[i].as_slice()).collect();
            let vectors = backend.embed_batch(&seqs, task)?;
            if let Some(v) = vectors.iter().find(|v| v.len() != self.desc.dim) {
                return Err(Error::ModelMismatch {
                    model: self.desc.model.clone(),
                    reason: format!(
                        "the model outputs vectors of {} dimensions, but the registry says {}",
                        v.len(),
                        self.desc.dim
                    ),
                });
            }
            Ok(vectors)
        })
    }
}

/// What a stream of texts is, for [`TextEmbedding::try_embed_iter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmbedPurpose {
    #[default]
    Document,
    Query,
    Passage,
}

/// Streaming embeddings in input order, in bounded memory.
pub type EmbedIter<'a, S> = WindowStream<'a, S, Embedding>;
