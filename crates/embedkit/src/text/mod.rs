//! Dense text embeddings: `TextEmbedding`, fastembed's class of the same name.
//!
//! A backend turns texts into token sequences and batches of sequences into vectors; this
//! module owns the shared part: windows of input, length-sorted batches, input order.

mod onnx;
pub mod pooling;
mod static_model;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::batching::{self, DEFAULT_MAX_BATCH_TOKENS};
use crate::error::{Error, Result};
use crate::hub::{self, CacheOptions, ModelFiles};
use crate::registry::{
    self, DenseKind, DenseModelDescription, DensePipeline, ModelSource, Pooling,
};
use crate::runtime::{Device, Provider, RuntimeOptions};

/// One embedding vector.
pub type Embedding = Vec<f32>;

/// fastembed's default batch size.
pub const DEFAULT_BATCH_SIZE: usize = 256;

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
}

/// The files a dense model needs, for finding, downloading or removing it.
pub fn model_files(desc: &DenseModelDescription) -> ModelFiles<'_> {
    let mut required = vec![desc.model_file.clone()];
    required.extend(desc.additional_files.iter().cloned());
    required.push("tokenizer.json".into());
    if desc.pipeline.kind == DenseKind::Onnx {
        required.push("tokenizer_config.json".into());
    }
    ModelFiles {
        model: &desc.model,
        sources: &desc.sources,
        optional: hub::OPTIONAL_CONFIGS
            .iter()
            .filter(|f| !required.iter().any(|r| r == *f))
            .map(|f| f.to_string())
            .collect(),
        required,
    }
}

/// Builder for [`TextEmbedding`], with fastembed's constructor arguments.
#[derive(Debug, Clone)]
pub struct TextEmbeddingBuilder {
    model_name: String,
    cache: CacheOptions,
    runtime: RuntimeOptions,
    lazy_load: bool,
    batch_size: usize,
    max_batch_tokens: usize,
    add_prefixes: bool,
    task_id: Option<i64>,
}

impl TextEmbeddingBuilder {
    /// Folder the model is cached in (fastembed's `cache_dir`).
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache.cache_dir = Some(dir.into());
        self
    }
    /// Load the model files from this folder instead of the cache (`specific_model_path`).
    pub fn specific_model_path(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache.specific_model_path = Some(dir.into());
        self
    }
    /// Never download; use the cache only (`local_files_only`).
    pub fn local_files_only(mut self, yes: bool) -> Self {
        self.cache.local_files_only = yes;
        self
    }
    /// How to reach the hub when the model must be downloaded (default: from the
    /// environment, `HF_ENDPOINT`, `HF_TOKEN`, ...).
    pub fn hub_options(mut self, hub: hub::HubOptions) -> Self {
        self.cache.hub = Some(hub);
        self
    }
    /// ONNX Runtime intra-op threads.
    pub fn threads(mut self, n: usize) -> Self {
        self.runtime.threads = Some(n);
        self
    }
    /// `auto` (default), `cpu` or `cuda` (fastembed's `cuda` argument).
    pub fn device(mut self, device: Device) -> Self {
        self.runtime.device = device;
        self
    }
    /// An explicit list of execution providers; overrides `device`.
    pub fn providers(mut self, providers: Vec<Provider>) -> Self {
        self.runtime.providers = Some(providers);
        self
    }
    /// GPU ids; this process uses the first.
    pub fn device_ids(mut self, ids: Vec<i32>) -> Self {
        self.runtime.device_ids = Some(ids);
        self
    }
    /// The ONNX Runtime library file to load.
    pub fn runtime_library(mut self, path: impl Into<PathBuf>) -> Self {
        self.runtime.library_path = Some(path.into());
        self
    }
    /// Load the model on first use instead of now.
    pub fn lazy_load(mut self, yes: bool) -> Self {
        self.lazy_load = yes;
        self
    }
    /// Default number of texts per batch (fastembed's default: 256).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// Cap on `texts × padded tokens` per batch, which bounds memory whatever the batch size.
    pub fn max_batch_tokens(mut self, n: usize) -> Self {
        self.max_batch_tokens = n;
        self
    }
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
        if self.batch_size == 0 {
            return Err(Error::InvalidArgument("batch_size must be >= 1".into()));
        }
        if self.runtime.threads == Some(0) {
            return Err(Error::InvalidArgument("threads must be >= 1".into()));
        }
        let desc = registry::dense_model(&self.model_name)?;
        let model_dir = hub::resolve_model_dir(&model_files(&desc), &self.cache)?;
        let model = TextEmbedding {
            desc,
            model_dir,
            runtime: self.runtime,
            backend: Mutex::new(None),
            batch_size: self.batch_size,
            max_batch_tokens: self.max_batch_tokens.max(1),
            add_prefixes: self.add_prefixes,
            task_id: self.task_id,
        };
        if !self.lazy_load {
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
    backend: Mutex<Option<Arc<dyn DenseBackend>>>,
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
        }
    }
}

impl TextEmbedding {
    /// Starts building a model by registry name (fastembed's default is
    /// `BAAI/bge-small-en-v1.5`).
    pub fn builder(model_name: impl Into<String>) -> TextEmbeddingBuilder {
        TextEmbeddingBuilder {
            model_name: model_name.into(),
            cache: CacheOptions::default(),
            runtime: RuntimeOptions::default(),
            lazy_load: false,
            batch_size: DEFAULT_BATCH_SIZE,
            max_batch_tokens: DEFAULT_MAX_BATCH_TOKENS,
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
        let mut slot = self.backend.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = slot.as_ref() {
            return Ok(b.clone());
        }
        let backend: Arc<dyn DenseBackend> = match self.desc.pipeline.kind {
            DenseKind::Onnx => Arc::new(onnx::OnnxBackend::load(
                &self.desc,
                &self.model_dir,
                &self.runtime,
            )?),
            DenseKind::Static => Arc::new(static_model::StaticBackend::load(
                &self.desc,
                &self.model_dir,
            )?),
        };
        *slot = Some(backend.clone());
        Ok(backend)
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
        EmbedIter {
            model: self,
            source: Box::new(documents.into_iter()),
            ready: VecDeque::new(),
            pending_error: None,
            finished: false,
            batch_size,
            purpose,
        }
    }

    /// The number of tokens of the texts after truncation, special tokens included.
    pub fn token_count<S: AsRef<str>>(&self, texts: &[S]) -> Result<usize> {
        let backend = self.backend()?;
        let mut total = 0;
        for chunk in texts.chunks(1024) {
            let refs: Vec<&str> = chunk.iter().map(|t| t.as_ref()).collect();
            total += backend.tokenize(&refs)?.iter().map(Vec::len).sum::<usize>();
        }
        Ok(total)
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
        let mut out: Vec<Option<Embedding>> = vec![None; texts.len()];
        for batch in batching::plan(&lengths, batch_size, self.max_batch_tokens) {
            let seqs: Vec<&[u32]> = batch.iter().map(|&i| sequences[i].as_slice()).collect();
            let vectors = backend.embed_batch(&seqs, task)?;
            if vectors.len() != batch.len() {
                return Err(Error::Ort(format!(
                    "the model returned {} vectors for a batch of {}",
                    vectors.len(),
                    batch.len()
                )));
            }
            for (i, v) in batch.into_iter().zip(vectors) {
                if v.len() != self.desc.dim {
                    return Err(Error::ModelMismatch {
                        model: self.desc.model.clone(),
                        reason: format!(
                            "the model outputs vectors of {} dimensions, but the registry says {}",
                            v.len(),
                            self.desc.dim
                        ),
                    });
                }
                out[i] = Some(v);
            }
        }
        Ok(out.into_iter().flatten().collect())
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

/// Streaming embeddings: reads a window of inputs at a time (a few batches), so memory
/// stays bounded however long the input is.
pub struct EmbedIter<'a, S> {
    model: &'a TextEmbedding,
    source: Box<dyn Iterator<Item = Result<S>> + 'a>,
    ready: VecDeque<Embedding>,
    /// An input error, reported after the vectors of the inputs before it.
    pending_error: Option<Error>,
    finished: bool,
    batch_size: usize,
    purpose: Purpose,
}

impl<S: AsRef<str>> EmbedIter<'_, S> {
    fn window_len(&self) -> usize {
        (self.batch_size.max(1) * 4).clamp(256, 8192)
    }

    fn fill(&mut self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::InvalidArgument("batch_size must be >= 1".into()));
        }
        let mut window: Vec<S> = Vec::new();
        let want = self.window_len();
        while window.len() < want {
            match self.source.next() {
                Some(Ok(doc)) => window.push(doc),
                Some(Err(e)) => {
                    self.pending_error = Some(e);
                    self.finished = true;
                    break;
                }
                None => {
                    self.finished = true;
                    break;
                }
            }
        }
        if !window.is_empty() {
            let refs: Vec<&str> = window.iter().map(|s| s.as_ref()).collect();
            let vectors = self
                .model
                .embed_window(&refs, self.batch_size, self.purpose)?;
            self.ready.extend(vectors);
        }
        Ok(())
    }
}

impl<S: AsRef<str>> Iterator for EmbedIter<'_, S> {
    type Item = Result<Embedding>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(v) = self.ready.pop_front() {
                return Some(Ok(v));
            }
            if let Some(e) = self.pending_error.take() {
                return Some(Err(e));
            }
            if self.finished {
                return None;
            }
            if let Err(e) = self.fill() {
                self.finished = true;
                self.ready.clear();
                return Some(Err(e));
            }
        }
    }
}
