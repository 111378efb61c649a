//! The one engine every family runs on: [`Builder`] and [`Model`], generic over a
//! [`Family`]. It owns, once: the description and files, the options, lazy loading,
//! windowed streaming in bounded memory, batch planning under a token budget, the
//! session pool and input order. What differs between families lives behind
//! [`Pipeline`](crate::pipeline::Pipeline).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::batching::{self, Ran, WindowStream};
use crate::error::Result;
use crate::hub::{self, HubOptions};
use crate::options::{check_batch_size, LoadOptions};
use crate::pipeline::{Family, Load, Pipeline, Prep, Purpose, TextPipeline};
use crate::registry::{self, Describe};
use crate::runtime::{Device, Lane, Provider, RuntimeOptions};
use crate::tokenize::{Token, TokenSpan, TruncationSide};

/// One input of a family's pipeline.
pub(crate) type Input<'a, F> = <F as Pipeline>::Input<'a>;
/// One result of a family's pipeline.
pub(crate) type Output<F> = <F as Pipeline>::Output;

/// Results streamed in input order, in bounded memory: at most one window of inputs
/// (see [`Model::window_len`]) is read ahead. The first error ends the stream.
pub struct Stream<'a, T>(Box<dyn Iterator<Item = Result<T>> + 'a>);

impl<'a, T: 'a> Stream<'a, T> {
    pub(crate) fn from_iter(iter: impl Iterator<Item = Result<T>> + 'a) -> Self {
        Stream(Box::new(iter))
    }

    /// A stream whose only item is `error`.
    pub(crate) fn failed(error: crate::Error) -> Self {
        Stream(Box::new(std::iter::once(Err(error))))
    }
}

impl<T> Iterator for Stream<'_, T> {
    type Item = Result<T>;
    fn next(&mut self) -> Option<Result<T>> {
        self.0.next()
    }
}

/// Which model a builder builds: a registry name, or a description given as a value.
#[derive(Debug, Clone)]
enum Choice<D> {
    Name(String),
    Description(Box<D>),
}

/// Builds a [`Model`] of family `F` with fastembed's constructor arguments.
///
/// ```no_run
/// use embedkit::TextEmbedding;
/// let model = TextEmbedding::builder("BAAI/bge-small-en-v1.5")
///     .cache_dir("/tmp/models")
///     .threads(2)
///     .lazy_load(true)
///     .build()?;
/// # Ok::<(), embedkit::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Builder<F: Family> {
    choice: Choice<F::Description>,
    load: LoadOptions,
    pub(crate) settings: F::Settings,
}

impl<F: Family> Builder<F> {
    fn new(choice: Choice<F::Description>) -> Self {
        Builder {
            choice,
            load: LoadOptions::default(),
            settings: F::Settings::default(),
        }
    }

    /// Replaces all the loading options at once.
    pub fn load_options(mut self, load: LoadOptions) -> Self {
        self.load = load;
        self
    }
    /// Folder the model is cached in (fastembed's `cache_dir`).
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.load.cache.cache_dir = Some(dir.into());
        self
    }
    /// Load the model files from this folder instead of the cache (`specific_model_path`).
    pub fn specific_model_path(mut self, dir: impl Into<PathBuf>) -> Self {
        self.load.cache.specific_model_path = Some(dir.into());
        self
    }
    /// Never download; use the cache only (`local_files_only`).
    pub fn local_files_only(mut self, yes: bool) -> Self {
        self.load.cache.local_files_only = yes;
        self
    }
    /// How to reach the hub when the model must be downloaded (default: from the
    /// environment, `HF_ENDPOINT`, `HF_TOKEN`, ...).
    pub fn hub_options(mut self, hub: HubOptions) -> Self {
        self.load.cache.hub = Some(hub);
        self
    }
    /// Fetches the model when it is not cached, instead of the hub downloader.
    pub fn fetcher(mut self, fetcher: Arc<dyn hub::Fetcher>) -> Self {
        self.load.cache.fetcher = Some(fetcher);
        self
    }
    /// ONNX Runtime intra-op (and inter-op) threads.
    pub fn threads(mut self, n: usize) -> Self {
        self.load.runtime.threads = Some(n);
        self
    }
    /// `auto` (default), `cpu` or `cuda` (fastembed's `cuda` argument).
    pub fn device(mut self, device: Device) -> Self {
        self.load.runtime.device = device;
        self
    }
    /// An explicit list of execution providers; overrides `device`.
    pub fn providers(mut self, providers: Vec<Provider>) -> Self {
        self.load.runtime.providers = Some(providers);
        self
    }
    /// Sessions that run batches side by side (fastembed's `parallel`, on threads);
    /// default: chosen by device and cores.
    pub fn parallel(mut self, n: usize) -> Self {
        self.load.runtime.parallel = Some(n);
        self
    }
    /// GPU ids; one session on each.
    pub fn device_ids(mut self, ids: Vec<i32>) -> Self {
        self.load.runtime.device_ids = Some(ids);
        self
    }
    /// The ONNX Runtime library file to load.
    pub fn runtime_library(mut self, path: impl Into<PathBuf>) -> Self {
        self.load.runtime.library_path = Some(path.into());
        self
    }
    /// `Exact` (default: fastembed's vectors) or `Int8` (matrix products in int8, the
    /// graph rewritten and cached beside the model file at first load).
    pub fn precision(mut self, precision: crate::quantize::Precision) -> Self {
        self.load.runtime.precision = precision;
        self
    }
    /// Load the model on first use instead of now.
    pub fn lazy_load(mut self, yes: bool) -> Self {
        self.load.lazy_load = yes;
        self
    }
    /// Default number of inputs per batch (default: the family's, as fastembed).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.load.batch_size = Some(n);
        self
    }
    /// Cap on `inputs × padded tokens` per batch, which bounds memory whatever the
    /// batch size.
    pub fn max_batch_tokens(mut self, n: usize) -> Self {
        self.load.max_batch_tokens = n;
        self
    }

    /// Finds the model's files (downloading them if allowed) and, unless `lazy_load`,
    /// loads it.
    pub fn build(self) -> Result<Model<F>> {
        self.load.validate()?;
        let desc = match self.choice {
            Choice::Name(name) => F::Description::table().get(&name)?,
            Choice::Description(desc) => {
                registry::validate(desc.as_ref())?;
                *desc
            }
        };
        let model_dir = hub::resolve_model_dir(&desc.files(), &self.load.cache)?;
        let batch_size = self
            .load
            .batch_size
            .unwrap_or_else(|| desc.default_batch_size());
        let model = Model {
            desc,
            model_dir,
            runtime: self.load.runtime,
            batch_size,
            max_batch_tokens: self.load.max_batch_tokens,
            settings: self.settings,
            pipeline: Mutex::new(None),
        };
        if !self.load.lazy_load {
            model.pipeline()?;
        }
        Ok(model)
    }
}

/// A model of family `F`, loaded now or on first use, shared by every call (calls from
/// several threads are fine). The family aliases ([`TextEmbedding`](crate::TextEmbedding),
/// [`SparseTextEmbedding`](crate::SparseTextEmbedding), ...) add the family's methods.
pub struct Model<F: Family> {
    desc: F::Description,
    model_dir: PathBuf,
    runtime: RuntimeOptions,
    batch_size: usize,
    max_batch_tokens: usize,
    pub(crate) settings: F::Settings,
    pipeline: Mutex<Option<Arc<F>>>,
}

impl<F: Family> std::fmt::Debug for Model<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("model", &self.desc.name())
            .field("model_dir", &self.model_dir)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl<F: Family> Model<F> {
    /// Starts building the registry's model `name` (looked up case-insensitively).
    pub fn builder(name: impl Into<String>) -> Builder<F> {
        Builder::new(Choice::Name(name.into()))
    }

    /// Starts building a model that is not in the registry, from its description: no
    /// global registration needed (see `add_custom_model` for fastembed's way).
    pub fn from_description(desc: F::Description) -> Builder<F> {
        Builder::new(Choice::Description(Box::new(desc)))
    }

    /// Every supported model of the family: built-in, then the custom ones.
    pub fn list_supported_models() -> Vec<F::Description> {
        F::Description::table().all()
    }

    /// Registers a model of your own under a new name for this process (fastembed's
    /// class-level `add_custom_model`); names are unique case-insensitively.
    pub fn register_model(desc: F::Description) -> Result<()> {
        F::Description::table().add(desc)
    }

    /// The model's description.
    pub fn description(&self) -> &F::Description {
        &self.desc
    }

    /// The folder the model files are loaded from.
    pub fn model_dir(&self) -> &Path {
        &self.model_dir
    }

    /// The default number of inputs per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// How many inputs a stream of this model reads ahead at `batch_size` (default:
    /// the model's): the bound on the memory a stream holds.
    pub fn window_len(&self, batch_size: Option<usize>, purpose: Purpose) -> Result<usize> {
        let mode = self.pipeline()?.batching(purpose);
        Ok(batching::window_len(
            batch_size.unwrap_or(self.batch_size),
            mode,
        ))
    }

    /// The loaded model, loading it now if no call has yet.
    pub(crate) fn pipeline(&self) -> Result<Arc<F>> {
        let mut slot = self.pipeline.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let loaded = Arc::new(F::load(Load {
            desc: &self.desc,
            dir: &self.model_dir,
            runtime: &self.runtime,
            settings: &self.settings,
        })?);
        *slot = Some(loaded.clone());
        Ok(loaded)
    }

    /// Streams the results of `source` in input order, a window at a time. `view` turns
    /// a caller's input into the pipeline's.
    pub(crate) fn stream<'a, S: 'a>(
        &'a self,
        source: impl Iterator<Item = Result<S>> + 'a,
        batch_size: Option<usize>,
        call: impl Into<Prep>,
        view: for<'x> fn(&'x S) -> Input<'x, F>,
    ) -> Stream<'a, Output<F>> {
        self.stream_with(source, batch_size, call, view, <F as Pipeline>::run)
    }

    /// [`Model::stream`] with another computation of a batch than the pipeline's `run`
    /// (a second output of the same prepared items: a dense model's token vectors).
    pub(crate) fn stream_with<'a, S: 'a, T: Send + 'a>(
        &'a self,
        source: impl Iterator<Item = Result<S>> + 'a,
        batch_size: Option<usize>,
        call: impl Into<Prep>,
        view: for<'x> fn(&'x S) -> Input<'x, F>,
        run: RunBatch<F, T>,
    ) -> Stream<'a, T> {
        let call = call.into();
        let purpose = call.purpose;
        if let Err(e) = check_batch_size(batch_size) {
            return Stream(Box::new(WindowStream::<S, T>::failed(e)));
        }
        let batch_size = batch_size.unwrap_or(self.batch_size);
        let pipeline = match self.pipeline() {
            Ok(p) => p,
            Err(e) => return Stream(Box::new(WindowStream::<S, T>::failed(e))),
        };
        let window = batching::window_len(batch_size, pipeline.batching(purpose));
        Stream(Box::new(WindowStream::new(
            source,
            window,
            move |inputs: Vec<S>| {
                let views: Vec<Input<'_, F>> = inputs.iter().map(view).collect();
                let items = match pipeline.prepare(&views, call) {
                    Ok(items) => items,
                    Err(e) => {
                        return Ran {
                            results: Vec::new(),
                            error: Some(e),
                        }
                    }
                };
                drop(views);
                drop(inputs);
                run_items(
                    pipeline.as_ref(),
                    &items,
                    (batch_size, self.max_batch_tokens),
                    purpose,
                    run,
                )
            },
        )))
    }

    /// Runs prepared items (one window's worth) in batches; results in item order.
    pub(crate) fn run_prepared(
        &self,
        items: &[<F as Pipeline>::Item],
        batch_size: Option<usize>,
        purpose: Purpose,
    ) -> Result<Vec<Output<F>>> {
        check_batch_size(batch_size)?;
        let pipeline = self.pipeline()?;
        run_items(
            pipeline.as_ref(),
            items,
            (batch_size.unwrap_or(self.batch_size), self.max_batch_tokens),
            purpose,
            <F as Pipeline>::run,
        )
        .into_result()
    }
}

/// How a batch of prepared items is computed: the pipeline's `run`, or another output
/// of the same items.
pub(crate) type RunBatch<P, T> =
    for<'x> fn(&P, &[&'x <P as Pipeline>::Item], Purpose, Lane) -> Result<Vec<T>>;

/// Plans `items` into batches as the pipeline allows (at most `limits`: inputs, padded
/// tokens) and runs them with `run`, on the session pool when there is more than one
/// batch; results in item order (up to the first failed item).
fn run_items<P: Pipeline, T: Send>(
    pipeline: &P,
    items: &[P::Item],
    (batch_size, max_tokens): (usize, usize),
    purpose: Purpose,
    run: RunBatch<P, T>,
) -> Ran<T> {
    let costs: Vec<usize> = items.iter().map(|i| pipeline.cost(i, purpose)).collect();
    let batches = batching::plan(&costs, batch_size, max_tokens, pipeline.batching(purpose));
    batching::run_batches(
        items.len(),
        &batches,
        pipeline.parallelism(),
        |batch, lane| {
            let refs: Vec<&P::Item> = batch.iter().map(|&i| &items[i]).collect();
            run(pipeline, &refs, purpose, lane)
                .map_err(|e| e.at_input(|k| batch.get(k).copied().unwrap_or(k)))
        },
    )
}

/// The texts of a window, as the text families take them.
pub(crate) fn as_text<S: AsRef<str>>(s: &S) -> &str {
    s.as_ref()
}

/// The methods every text family shares (dense, sparse, late interaction), with
/// fastembed's names: one result per text, in input order.
impl<F: Family + TextPipeline> Model<F> {
    /// Embeds documents; `batch_size` defaults to the model's.
    pub fn embed<S: AsRef<str>>(
        &self,
        documents: &[S],
        batch_size: Option<usize>,
    ) -> Result<Vec<Output<F>>> {
        self.embed_iter(documents, batch_size).collect()
    }

    /// Embeds queries, as fastembed's `query_embed` (the query prefix when prefixes are
    /// on, the query task of multi-task models, the query path of families that have one).
    pub fn query_embed<S: AsRef<str>>(
        &self,
        queries: &[S],
        batch_size: Option<usize>,
    ) -> Result<Vec<Output<F>>> {
        self.try_embed_iter(queries.iter().map(Ok), batch_size, Purpose::Query)
            .collect()
    }

    /// Embeds passages, as fastembed's `passage_embed`.
    pub fn passage_embed<S: AsRef<str>>(
        &self,
        passages: &[S],
        batch_size: Option<usize>,
    ) -> Result<Vec<Output<F>>> {
        self.try_embed_iter(passages.iter().map(Ok), batch_size, Purpose::Passage)
            .collect()
    }

    /// Streams the results of any iterator of documents, in input order, in bounded
    /// memory.
    pub fn embed_iter<'a, I>(
        &'a self,
        documents: I,
        batch_size: Option<usize>,
    ) -> Stream<'a, Output<F>>
    where
        I: IntoIterator,
        I::Item: AsRef<str> + 'a,
        I::IntoIter: 'a,
    {
        self.try_embed_iter(documents.into_iter().map(Ok), batch_size, Purpose::Document)
    }

    /// As [`embed_iter`](Self::embed_iter), for inputs that can fail (lines of a file)
    /// and any [`Purpose`] (or a [`Prep`]: a purpose and the end an over-long text is
    /// cut at); an input error ends the stream after the results before it.
    pub fn try_embed_iter<'a, I, S>(
        &'a self,
        texts: I,
        batch_size: Option<usize>,
        call: impl Into<Prep>,
    ) -> Stream<'a, Output<F>>
    where
        I: IntoIterator<Item = Result<S>>,
        I::IntoIter: 'a,
        S: AsRef<str> + 'a,
    {
        self.stream(texts.into_iter(), batch_size, call, as_text::<S>)
    }

    /// One part of each text's output (a family whose one pass computes several hands
    /// each out alone with this).
    pub(crate) fn each_output<'a, T: 'a>(
        &'a self,
        texts: crate::handle::Texts<'a>,
        o: &crate::handle::CallOptions,
        pick: fn(Output<F>) -> T,
    ) -> Stream<'a, T> {
        let all = self.try_embed_iter(texts, o.batch_size, o.prep());
        Stream::from_iter(all.map(move |r| r.map(pick)))
    }

    /// Token ids of each text as the model gets it (truncated, special tokens included,
    /// no padding).
    pub fn tokenize<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>> {
        self.tokenize_at(texts, None)
    }

    /// [`Self::tokenize`] with over-long texts cut at `side` (`None`: where the model
    /// says).
    pub fn tokenize_at<S: AsRef<str>>(
        &self,
        texts: &[S],
        side: Option<TruncationSide>,
    ) -> Result<Vec<Vec<u32>>> {
        let refs: Vec<&str> = texts.iter().map(|t| t.as_ref()).collect();
        self.pipeline()?.tokenize(&refs, side)
    }

    /// Each text's tokens as the model gets them: id, vocabulary text, special flag.
    pub fn tokens<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<Token>>> {
        let pipeline = self.pipeline()?;
        Ok(self
            .tokenize(texts)?
            .iter()
            .map(|ids| pipeline.describe_tokens(ids))
            .collect())
    }

    /// Each text's tokens as the tokenizer gives them, not truncated, with the bytes of
    /// the text each stands for; the special tokens the model adds (none for static
    /// embeddings) only when `add_special` (TEI's `/tokenize`). A model's own additions
    /// (prefixes, ColBERT's markers) are not in it.
    pub fn token_spans<S: AsRef<str>>(
        &self,
        texts: &[S],
        add_special: bool,
    ) -> Result<Vec<Vec<TokenSpan>>> {
        let refs: Vec<&str> = texts.iter().map(|t| t.as_ref()).collect();
        self.pipeline()?.spans(&refs, add_special)
    }

    /// The longest token sequence the model takes (longer texts are truncated), or
    /// `None` for models that do not truncate (BM25).
    pub fn max_length(&self) -> Result<Option<usize>> {
        Ok(self.pipeline()?.max_length())
    }

    /// The text of each token-id sequence, special tokens dropped when `skip_special`
    /// (what TEI's `/decode` gives).
    pub fn decode(&self, ids: &[Vec<u32>], skip_special: bool) -> Result<Vec<String>> {
        self.pipeline()?.decode(ids, skip_special)
    }

    /// Whether each text is longer than the model takes, so that embedding truncates it
    /// (what TEI's `truncate: false` refuses).
    pub fn overlong<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<bool>> {
        let refs: Vec<&str> = texts.iter().map(|t| t.as_ref()).collect();
        self.pipeline()?.overlong(&refs)
    }

    /// The number of tokens of the texts after truncation, special tokens included
    /// (fastembed's `token_count`).
    pub fn token_count<S: AsRef<str>>(&self, texts: &[S]) -> Result<usize> {
        let refs: Vec<&str> = texts.iter().map(|t| t.as_ref()).collect();
        self.pipeline()?.token_count(&refs)
    }
}
