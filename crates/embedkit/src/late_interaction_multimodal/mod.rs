//! Multimodal late interaction: `LateInteractionMultimodalEmbedding`, fastembed's class
//! of the same name. Texts (queries) and images (pages) become token-vector matrices in
//! one space, scored with MaxSim. Each model family builds its own prompt and
//! placeholder inputs ([`colpali`], [`colmodernvbert`]).
//!
//! Batches keep input order with the batch size given, as fastembed's: these graphs'
//! outputs include padded rows (ColPali text) or see the batch's padded tiles
//! (ColModernVBert images), so the batch composition is part of the result.

mod colmodernvbert;
mod colpali;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ndarray::{Array2, ArrayD, Axis, Ix3};
use ort::value::DynValue;

use crate::error::{Error, Result};
use crate::hub::{self, ModelFiles};
use crate::image::ImageInput;
use crate::late_interaction::MultiVector;
use crate::options::{load_option_setters, Lazy, LoadOptions};
use crate::postprocess::MultiVectorModel;
use crate::registry::{self, MultimodalKind, MultimodalModelDescription};
use crate::runtime::{OnnxModel, RuntimeOptions};

/// The files a multimodal model needs.
pub fn model_files(desc: &MultimodalModelDescription) -> ModelFiles<'_> {
    let mut required = vec![desc.model_file.clone()];
    required.extend(desc.additional_files.iter().cloned());
    for f in [
        "tokenizer.json",
        "tokenizer_config.json",
        "preprocessor_config.json",
    ] {
        required.push(f.into());
    }
    if desc.kind == MultimodalKind::Colmodernvbert {
        required.push("config.json".into());
    }
    ModelFiles::new(&desc.model, &desc.sources, required, Vec::new())
}

/// A family's way of turning texts and images into graph inputs and outputs.
pub(crate) trait MultimodalBackend: Send + Sync {
    fn embed_texts(&self, texts: &[&str]) -> Result<Vec<MultiVector>>;
    fn embed_images(&self, images: &[ImageInput]) -> Result<Vec<MultiVector>>;
    /// Tokens of the texts; with `include_extension`, of the prompts built from them.
    fn token_count(&self, texts: &[&str], include_extension: bool) -> Result<usize>;
    /// fastembed's default image batch size for the family.
    fn default_image_batch_size(&self) -> usize;
}

/// Builder for [`LateInteractionMultimodalEmbedding`].
#[derive(Debug, Clone)]
pub struct LateInteractionMultimodalEmbeddingBuilder {
    model_name: String,
    load: LoadOptions,
}

impl LateInteractionMultimodalEmbeddingBuilder {
    load_option_setters!();

    pub fn build(self) -> Result<LateInteractionMultimodalEmbedding> {
        self.load.validate()?;
        let desc = registry::multimodal_model(&self.model_name)?;
        let model_dir = hub::resolve_model_dir(&model_files(&desc), &self.load.cache)?;
        let model = LateInteractionMultimodalEmbedding {
            desc,
            model_dir,
            runtime: self.load.runtime,
            backend: Lazy::new(),
            batch_size: self.load.batch_size,
        };
        if !self.load.lazy_load {
            model.backend()?;
        }
        Ok(model)
    }
}

/// ColPali and ColModernVBert: texts and images into token-vector matrices.
pub struct LateInteractionMultimodalEmbedding {
    desc: MultimodalModelDescription,
    model_dir: PathBuf,
    runtime: RuntimeOptions,
    backend: Lazy<dyn MultimodalBackend>,
    batch_size: usize,
}

impl std::fmt::Debug for LateInteractionMultimodalEmbedding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LateInteractionMultimodalEmbedding")
            .field("model", &self.desc.model)
            .field("model_dir", &self.model_dir)
            .finish_non_exhaustive()
    }
}

impl LateInteractionMultimodalEmbedding {
    pub fn builder(model_name: impl Into<String>) -> LateInteractionMultimodalEmbeddingBuilder {
        LateInteractionMultimodalEmbeddingBuilder {
            model_name: model_name.into(),
            load: LoadOptions::default(),
        }
    }

    /// Every supported multimodal late-interaction model.
    pub fn list_supported_models() -> Vec<MultimodalModelDescription> {
        registry::multimodal_models()
    }

    pub fn description(&self) -> &MultimodalModelDescription {
        &self.desc
    }

    /// Dimensions of each token vector.
    pub fn embedding_size(&self) -> usize {
        self.desc.dim
    }

    fn backend(&self) -> Result<Arc<dyn MultimodalBackend>> {
        self.backend.get_or_load(|| {
            Ok(match self.desc.kind {
                MultimodalKind::Colpali => Arc::new(colpali::ColPali::load(
                    &self.desc,
                    &self.model_dir,
                    &self.runtime,
                )?),
                MultimodalKind::Colmodernvbert => Arc::new(colmodernvbert::ColModernVBert::load(
                    &self.desc,
                    &self.model_dir,
                    &self.runtime,
                )?),
            })
        })
    }

    /// Token vectors of each text (query), in input order; batches of `batch_size`
    /// (default 256) in input order, as fastembed forms them.
    pub fn embed_text<S: AsRef<str>>(
        &self,
        texts: &[S],
        batch_size: Option<usize>,
    ) -> Result<Vec<MultiVector>> {
        let batch_size = batch_size.unwrap_or(self.batch_size);
        if batch_size == 0 {
            return Err(Error::InvalidArgument("batch_size must be >= 1".into()));
        }
        let backend = self.backend()?;
        let refs: Vec<&str> = texts.iter().map(|t| t.as_ref()).collect();
        let mut out = Vec::with_capacity(refs.len());
        for chunk in refs.chunks(batch_size) {
            out.extend(backend.embed_texts(chunk)?);
        }
        Ok(out)
    }

    /// Token vectors of each image, in input order; batches in input order of
    /// `batch_size` (default: fastembed's, 16 for ColPali, 2 for ColModernVBert).
    pub fn embed_image<I>(&self, images: I, batch_size: Option<usize>) -> Result<Vec<MultiVector>>
    where
        I: IntoIterator,
        I::Item: Into<ImageInput>,
    {
        let backend = self.backend()?;
        let batch_size = batch_size.unwrap_or_else(|| backend.default_image_batch_size());
        if batch_size == 0 {
            return Err(Error::InvalidArgument("batch_size must be >= 1".into()));
        }
        let images: Vec<ImageInput> = images.into_iter().map(Into::into).collect();
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(batch_size) {
            out.extend(backend.embed_images(chunk)?);
        }
        Ok(out)
    }

    /// fastembed's `token_count`.
    pub fn token_count<S: AsRef<str>>(
        &self,
        texts: &[S],
        include_extension: bool,
    ) -> Result<usize> {
        let refs: Vec<&str> = texts.iter().map(|t| t.as_ref()).collect();
        self.backend()?.token_count(&refs, include_extension)
    }
}

impl MultiVectorModel for LateInteractionMultimodalEmbedding {
    fn embedding_size(&self) -> usize {
        self.desc.dim
    }
}

/// The graph and the name of its first output.
pub(crate) fn load_graph(
    desc: &MultimodalModelDescription,
    dir: &Path,
    runtime: &RuntimeOptions,
) -> Result<(OnnxModel, String)> {
    let model = OnnxModel::load(&dir.join(&desc.model_file), runtime)?;
    for name in ["input_ids", "pixel_values"] {
        if !model.has_input(name) {
            return Err(Error::ModelMismatch {
                model: desc.model.clone(),
                reason: format!(
                    "the graph has no input {name:?} (it has {:?})",
                    model.input_names()
                ),
            });
        }
    }
    let output = model
        .output_names()
        .first()
        .cloned()
        .ok_or_else(|| Error::ModelMismatch {
            model: desc.model.clone(),
            reason: "the ONNX graph has no outputs".into(),
        })?;
    Ok((model, output))
}

/// Runs the graph with the inputs it declares among `inputs`.
pub(crate) fn run(
    model: &OnnxModel,
    output: &str,
    inputs: Vec<(&str, DynValue)>,
) -> Result<ArrayD<f32>> {
    let feed = inputs
        .into_iter()
        .filter(|(name, _)| model.has_input(name))
        .map(|(n, v)| (n.to_string(), v))
        .collect();
    model.run_f32(feed, output)
}

/// `[batch, -1, dim]`, each row's vectors where `keep` (when given) is 1.
pub(crate) fn split_rows(
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
        .map_err(|e| Error::Ort(e.to_string()))?
        .into_dimensionality::<Ix3>()
        .map_err(|e| Error::Ort(e.to_string()))?;
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
