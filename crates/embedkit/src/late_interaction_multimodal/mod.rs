//! Multimodal late interaction: [`LateInteractionMultimodalEmbedding`], fastembed's
//! class of the same name. Texts (queries) and images (pages) become token-vector
//! matrices in one space, scored with MaxSim. Each model family builds its own prompt and
//! placeholder inputs (`colpali`, `colmodernvbert`).
//!
//! Batches keep input order with the batch size given, as fastembed's
//! (`Batching::InputOrder`): these graphs' outputs include padded rows (ColPali text)
//! or see the batch's padded tiles (ColModernVBert images), so the batch composition is
//! part of the result.

mod colmodernvbert;
mod colpali;

use std::borrow::Cow;
use std::path::Path;

use ndarray::{Array2, ArrayD, Axis, Ix3};
use ort::value::{DynValue, Tensor};

use crate::batching::Batching;
use crate::engine::{as_text, Builder, Model, Stream};
use crate::error::{Error, Result};
use crate::handle::{CallOptions, Capability, Capable, Images, Texts};
use crate::image::{ImageInput, Preprocessor};
use crate::late_interaction::MultiVector;
use crate::pipeline::{Family, Load, Pipeline, Prep, Purpose};
use crate::postprocess::MultiVectorModel;
use crate::registry::Kind;
use crate::registry::{MultimodalKind, MultimodalModelDescription};
use crate::runtime::{Lane, OnnxModel, RuntimeOptions};
use crate::tokenize::{TextTokenizer, TokenizerOptions, TruncationSide};

/// A family's way of turning texts and images into graph inputs and outputs.
trait MultimodalBackend: Send + Sync {
    fn embed_texts(&self, texts: &[&str], lane: Lane) -> Result<Vec<MultiVector>>;
    fn embed_images(&self, images: &[&ImageInput], lane: Lane) -> Result<Vec<MultiVector>>;
    /// Tokens of the texts; with `include_extension`, of the prompts built from them.
    fn token_count(&self, texts: &[&str], include_extension: bool) -> Result<usize>;
    fn parallelism(&self) -> usize;
    /// The most vectors one image can give; `None`: not bounded by the model.
    fn image_vectors_at_most(&self) -> Result<Option<usize>>;
}

/// ColPali and ColModernVBert: texts and images into token-vector matrices.
///
/// ```no_run
/// use embedkit::{max_sim, LateInteractionMultimodalEmbedding};
/// let model = LateInteractionMultimodalEmbedding::builder("Qdrant/colpali-v1.3-fp16").build()?;
/// let pages = model.embed_image(["page1.png"], None)?;
/// let query = model.embed_text(&["revenue in 2023"], None)?;
/// let score = max_sim(query[0].view(), pages[0].view())?;
/// # Ok::<(), embedkit::Error>(())
/// ```
pub type LateInteractionMultimodalEmbedding = Model<Multimodal>;
/// Builder of a [`LateInteractionMultimodalEmbedding`].
pub type LateInteractionMultimodalEmbeddingBuilder = Builder<Multimodal>;

/// One input: a text (query) or an image (page).
#[derive(Debug, Clone, Copy)]
pub enum MultimodalInput<'a> {
    Text(&'a str),
    Image(&'a ImageInput),
}

/// An input made ready: texts are tokenized with their prompt per batch, images
/// decoded per batch.
#[derive(Debug, Clone)]
pub enum MultimodalItem {
    Text(String),
    Image(ImageInput),
}

/// A loaded multimodal model: the multimodal late-interaction family (see
/// [`LateInteractionMultimodalEmbedding`]).
pub struct Multimodal {
    backend: Box<dyn MultimodalBackend>,
}

impl Family for Multimodal {
    type Description = MultimodalModelDescription;
    type Settings = crate::pipeline::NoSettings;

    fn load(at: Load<'_, Self>) -> Result<Multimodal> {
        let backend: Box<dyn MultimodalBackend> = match at.desc.kind {
            MultimodalKind::Colpali => Box::new(colpali::ColPali::load(&at)?),
            MultimodalKind::Colmodernvbert => Box::new(colmodernvbert::ColModernVBert::load(&at)?),
        };
        Ok(Multimodal { backend })
    }
}

impl Pipeline for Multimodal {
    type Input<'a> = MultimodalInput<'a>;
    type Item = MultimodalItem;
    type Output = MultiVector;

    fn prepare(&self, inputs: &[MultimodalInput<'_>], call: Prep) -> Result<Vec<MultimodalItem>> {
        // Texts are tokenized with the model's prompt when their batch runs, cut where
        // the model says; a call asking to cut at the left is refused, not ignored.
        if call.truncation == Some(TruncationSide::Left) {
            return Err(Error::Unsupported(
                "this model's texts cannot be cut at the left".into(),
            ));
        }
        Ok(inputs
            .iter()
            .map(|i| match *i {
                MultimodalInput::Text(t) => MultimodalItem::Text(t.to_string()),
                MultimodalInput::Image(i) => MultimodalItem::Image(i.clone()),
            })
            .collect())
    }

    fn cost(&self, _: &MultimodalItem, _: Purpose) -> usize {
        1
    }

    /// The batch's composition is part of each result: fastembed's batches, in order.
    fn batching(&self, _: Purpose) -> Batching {
        Batching::InputOrder
    }

    fn parallelism(&self) -> usize {
        self.backend.parallelism()
    }

    fn run(&self, batch: &[&MultimodalItem], _: Purpose, lane: Lane) -> Result<Vec<MultiVector>> {
        let texts: Vec<&str> = batch
            .iter()
            .filter_map(|i| match i {
                MultimodalItem::Text(t) => Some(t.as_str()),
                MultimodalItem::Image(_) => None,
            })
            .collect();
        let images: Vec<&ImageInput> = batch
            .iter()
            .filter_map(|i| match i {
                MultimodalItem::Image(i) => Some(i),
                MultimodalItem::Text(_) => None,
            })
            .collect();
        match (texts.is_empty(), images.is_empty()) {
            (false, true) => self.backend.embed_texts(&texts, lane),
            (true, false) => self.backend.embed_images(&images, lane),
            (true, true) => Ok(Vec::new()),
            (false, false) => Err(Error::InvalidArgument(
                "texts and images cannot share a batch; embed them in separate calls".into(),
            )),
        }
    }
}

fn text_input<S: AsRef<str>>(s: &S) -> MultimodalInput<'_> {
    MultimodalInput::Text(as_text(s))
}

fn image_input(i: &ImageInput) -> MultimodalInput<'_> {
    MultimodalInput::Image(i)
}

impl Model<Multimodal> {
    /// Dimensions of each token vector.
    pub fn embedding_size(&self) -> usize {
        self.description().dim
    }

    /// The default image batch size: 2, as fastembed's
    /// `LateInteractionMultimodalEmbedding.embed_image` passes to every model (its
    /// ColPali class alone would take 16). Page images are large: two at a time bound
    /// the activations' memory.
    pub fn default_image_batch_size(&self) -> usize {
        2
    }

    /// Token vectors of each text (query), in input order; batches of `batch_size`
    /// (default 256) in input order, as fastembed forms them.
    pub fn embed_text<S: AsRef<str>>(
        &self,
        texts: &[S],
        batch_size: Option<usize>,
    ) -> Result<Vec<MultiVector>> {
        self.embed_text_iter(texts.iter().map(Ok), batch_size)
            .collect()
    }

    /// Streams the token vectors of fallible texts, in input order, in bounded memory.
    pub fn embed_text_iter<'a, I, S>(
        &'a self,
        texts: I,
        batch_size: Option<usize>,
    ) -> Stream<'a, MultiVector>
    where
        I: IntoIterator<Item = Result<S>>,
        I::IntoIter: 'a,
        S: AsRef<str> + 'a,
    {
        self.stream(
            texts.into_iter(),
            batch_size,
            Purpose::Query,
            text_input::<S>,
        )
    }

    /// Token vectors of each image, in input order; batches in input order of
    /// `batch_size` (default: [`default_image_batch_size`](Self::default_image_batch_size)).
    pub fn embed_image<I>(&self, images: I, batch_size: Option<usize>) -> Result<Vec<MultiVector>>
    where
        I: IntoIterator,
        I::Item: Into<ImageInput>,
    {
        self.embed_image_iter(images.into_iter().map(|i| Ok(i.into())), batch_size)
            .collect()
    }

    /// Streams the token vectors of fallible images, in input order, in bounded memory.
    pub fn embed_image_iter<'a, I>(
        &'a self,
        images: I,
        batch_size: Option<usize>,
    ) -> Stream<'a, MultiVector>
    where
        I: IntoIterator<Item = Result<ImageInput>>,
        I::IntoIter: 'a,
    {
        let batch_size = Some(batch_size.unwrap_or_else(|| self.default_image_batch_size()));
        self.stream(
            images.into_iter(),
            batch_size,
            Purpose::Document,
            image_input,
        )
    }

    /// fastembed's `token_count`.
    pub fn token_count<S: AsRef<str>>(
        &self,
        texts: &[S],
        include_extension: bool,
    ) -> Result<usize> {
        let refs: Vec<&str> = texts.iter().map(|t| t.as_ref()).collect();
        self.pipeline()?
            .backend
            .token_count(&refs, include_extension)
    }

    /// The most vectors (rows) one image's matrix can have, whatever the image: a server
    /// bounds its answer by it before decoding any image. `None` when the model's
    /// preprocessing leaves the image's size, and so its tile count, unbounded.
    pub fn image_vectors_at_most(&self) -> Result<Option<usize>> {
        self.pipeline()?.backend.image_vectors_at_most()
    }
}

impl MultiVectorModel for LateInteractionMultimodalEmbedding {
    fn embedding_size(&self) -> usize {
        self.description().dim
    }
}

/// What both multimodal families load: the tokenizer, the image preprocessor and the
/// graph, which must take `input_ids` and `pixel_values`.
pub(crate) struct Parts {
    pub name: String,
    pub dim: usize,
    pub tokenizer: TextTokenizer,
    pub preprocessor: Preprocessor,
    pub model: OnnxModel,
    pub output: String,
}

impl Parts {
    pub(crate) fn load(at: &Load<'_, Multimodal>) -> Result<Self> {
        let (desc, dir) = (at.desc, at.dir);
        let tokenizer = TextTokenizer::from_dir(dir, TokenizerOptions::default())?;
        let preprocessor = Preprocessor::from_dir(dir)?;
        let (model, output) = load_graph(desc, dir, at.runtime)?;
        Ok(Parts {
            name: desc.core.model.clone(),
            dim: desc.dim,
            tokenizer,
            preprocessor,
            model,
            output,
        })
    }

    /// Runs the graph on token ids, their mask and pixels (the inputs it declares among
    /// these) and splits its output into each row's token vectors: all of them, or
    /// those the mask marks with `masked_only`.
    pub(crate) fn embed<D: ndarray::Dimension + 'static>(
        &self,
        ids: Array2<i64>,
        mask: Array2<i64>,
        pixels: ndarray::Array<f32, D>,
        masked_only: bool,
        lane: Lane,
    ) -> Result<Vec<MultiVector>> {
        let rows = ids.nrows();
        let keep = masked_only.then(|| mask.clone());
        let out = run(
            &self.model,
            &self.output,
            vec![
                ("input_ids", Tensor::from_array(ids)?.into_dyn()),
                ("attention_mask", Tensor::from_array(mask)?.into_dyn()),
                ("pixel_values", Tensor::from_array(pixels)?.into_dyn()),
            ],
            lane,
        )?;
        split_rows(&self.name, out, rows, self.dim, keep.as_ref())
    }

    /// Tokens of the texts; with `include_extension`, of the prompts `prompts` builds.
    pub(crate) fn token_count(
        &self,
        texts: &[&str],
        include_extension: bool,
        prompts: fn(&[&str]) -> Vec<String>,
    ) -> Result<usize> {
        let mut total = 0usize;
        for chunk in texts.chunks(1024) {
            let encoded = if include_extension {
                self.tokenizer.encode_batch(&prompts(chunk))?
            } else {
                self.tokenizer.encode_batch(chunk)?
            };
            total += encoded.iter().map(Vec::len).sum::<usize>();
        }
        Ok(total)
    }
}

/// The graph and the name of its first output.
fn load_graph(
    desc: &MultimodalModelDescription,
    dir: &Path,
    runtime: &RuntimeOptions,
) -> Result<(OnnxModel, String)> {
    let name = desc.core.model.as_str();
    // The int8 tier covers the families with one kind of input; this graph takes text
    // and images at once and its calibration is not written yet, so it loads as it is
    // (`OnnxModel::load` never quantizes).
    if runtime.precision == crate::quantize::Precision::Int8 {
        tracing::info!(
            "int8: {} runs exact (multimodal models are not quantized)",
            desc.core.model
        );
    }
    let model = OnnxModel::load(&dir.join(&desc.core.model_file), runtime)?;
    for name in ["input_ids", "pixel_values"] {
        if !model.has_input(name) {
            return Err(Error::ModelMismatch {
                model: name.to_string(),
                reason: format!(
                    "the graph has no input {name:?} (it has {:?})",
                    model.input_names()
                ),
            });
        }
    }
    let output = model.first_output(name)?;
    Ok((model, output))
}

/// Runs the graph with the inputs it declares among `inputs`.
fn run(
    model: &OnnxModel,
    output: &str,
    inputs: Vec<(&str, DynValue)>,
    lane: Lane,
) -> Result<ArrayD<f32>> {
    let feed = inputs
        .into_iter()
        .filter(|(name, _)| model.has_input(name))
        .map(|(n, v)| (n.to_string(), v))
        .collect();
    model.run_f32(lane, feed, output)
}

/// `[batch, -1, dim]`, each row's vectors where `keep` (when given) is 1.
fn split_rows(
    model_name: &str,
    out: ArrayD<f32>,
    rows: usize,
    dim: usize,
    keep: Option<&Array2<i64>>,
) -> Result<Vec<MultiVector>> {
    let shape = out.shape().to_vec();
    let total: usize = shape.iter().product();
    if shape.first() != Some(&rows) || dim == 0 || !total.is_multiple_of(rows * dim) {
        return Err(Error::ModelMismatch {
            model: model_name.to_string(),
            reason: format!("output of shape {shape:?} for {rows} inputs of dim {dim}"),
        });
    }
    let per = total / rows / dim;
    let out = out
        .into_shape_with_order((rows, per, dim))
        .map_err(|e| Error::Internal(e.to_string()))?
        .into_dimensionality::<Ix3>()
        .map_err(|e| Error::Internal(e.to_string()))?;
    let mut result = Vec::with_capacity(rows);
    for (r, m) in out.outer_iter().enumerate() {
        match keep {
            Some(mask) => {
                if mask.ncols() != per {
                    return Err(Error::ModelMismatch {
                        model: model_name.to_string(),
                        reason: format!("{per} output rows for {} tokens", mask.ncols()),
                    });
                }
                let idx: Vec<usize> = (0..per).filter(|&j| mask[[r, j]] == 1).collect();
                result.push(m.select(Axis(0), &idx));
            }
            None => result.push(m.to_owned()),
        }
    }
    Ok(result)
}

impl Capable for Model<Multimodal> {
    fn count_tokens(
        &self,
        texts: &[&str],
        _purpose: Purpose,
        include_extension: bool,
    ) -> Result<usize> {
        Model::<Multimodal>::token_count(self, texts, include_extension)
    }
    fn kind(&self) -> Kind {
        Kind::Multimodal
    }
    fn capabilities(&self) -> &'static [Capability] {
        &[Capability::MultiVectorText, Capability::MultiVectorImage]
    }
    fn dim(&self) -> Option<usize> {
        Some(self.embedding_size())
    }
    // A batch's padding changes these models' outputs, so calls never share one.
    fn shares_batches(&self) -> bool {
        false
    }
    fn multi_stream<'a>(&'a self, texts: Texts<'a>, o: &CallOptions) -> Stream<'a, MultiVector> {
        let call = Prep::from(Purpose::Query).truncation(o.truncation);
        self.stream(texts, o.batch_size, call, text_input::<Cow<'a, str>>)
    }
    fn multi_image_stream<'a>(
        &'a self,
        images: Images<'a>,
        o: &CallOptions,
    ) -> Stream<'a, MultiVector> {
        self.embed_image_iter(images, o.batch_size)
    }
    fn image_vectors_at_most(&self) -> Result<Option<usize>> {
        Model::<Multimodal>::image_vectors_at_most(self)
    }
}
