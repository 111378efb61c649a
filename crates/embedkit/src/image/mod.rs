//! Image embeddings: `ImageEmbedding`, fastembed's class of the same name. Images are
//! decoded as Pillow decodes them, preprocessed as the model's
//! `preprocessor_config.json` says (with Pillow's resampling, to the bit), run through
//! the vision graph and L2-normalized.

mod decode;
mod preprocess;
pub mod resample;

pub use decode::{to_rgb, ImageInput, MAX_PIXELS};
pub use preprocess::Preprocessor;

use std::path::PathBuf;
use std::sync::Arc;

use ndarray::{Array4, ArrayD, Axis, Ix3};
use ort::value::Tensor;

use crate::error::{Error, Result};
use crate::hub::{self, ModelFiles};
use crate::options::{load_option_setters, Lazy, LoadOptions};
use crate::registry::{self, ImageModelDescription, ImagePooling};
use crate::runtime::{OnnxModel, RuntimeOptions};
use crate::text::pooling::l2_normalize;

/// fastembed's default `batch_size` for images.
pub const DEFAULT_IMAGE_BATCH_SIZE: usize = 16;

/// The files an image model needs.
pub fn model_files(desc: &ImageModelDescription) -> ModelFiles<'_> {
    let mut required = vec![desc.model_file.clone()];
    required.extend(desc.additional_files.iter().cloned());
    required.push("preprocessor_config.json".into());
    ModelFiles {
        model: &desc.model,
        sources: &desc.sources,
        optional: vec!["config.json".into()],
        required,
    }
}

/// Builder for [`ImageEmbedding`].
#[derive(Debug, Clone)]
pub struct ImageEmbeddingBuilder {
    model_name: String,
    load: LoadOptions,
}

impl ImageEmbeddingBuilder {
    load_option_setters!();

    pub fn build(self) -> Result<ImageEmbedding> {
        self.load.validate()?;
        let desc = registry::image_model(&self.model_name)?;
        let model_dir = hub::resolve_model_dir(&model_files(&desc), &self.load.cache)?;
        let model = ImageEmbedding {
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

struct Backend {
    model: OnnxModel,
    input: String,
    output: String,
    preprocessor: Preprocessor,
}

/// Image embeddings with a model of the registry.
pub struct ImageEmbedding {
    desc: ImageModelDescription,
    model_dir: PathBuf,
    runtime: RuntimeOptions,
    backend: Lazy<Backend>,
    batch_size: usize,
}

impl std::fmt::Debug for ImageEmbedding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageEmbedding")
            .field("model", &self.desc.model)
            .field("model_dir", &self.model_dir)
            .finish_non_exhaustive()
    }
}

impl ImageEmbedding {
    /// A builder; the batch size defaults to fastembed's 16 for images.
    pub fn builder(model_name: impl Into<String>) -> ImageEmbeddingBuilder {
        ImageEmbeddingBuilder {
            model_name: model_name.into(),
            load: LoadOptions {
                batch_size: DEFAULT_IMAGE_BATCH_SIZE,
                ..LoadOptions::default()
            },
        }
    }

    /// Every supported image model.
    pub fn list_supported_models() -> Vec<ImageModelDescription> {
        registry::image_models()
    }

    pub fn description(&self) -> &ImageModelDescription {
        &self.desc
    }

    pub fn model_dir(&self) -> &std::path::Path {
        &self.model_dir
    }

    fn backend(&self) -> Result<Arc<Backend>> {
        self.backend.get_or_load(|| {
            let preprocessor = Preprocessor::from_dir(&self.model_dir)?;
            let model =
                OnnxModel::load(&self.model_dir.join(&self.desc.model_file), &self.runtime)?;
            let input =
                model
                    .input_names()
                    .first()
                    .cloned()
                    .ok_or_else(|| Error::ModelMismatch {
                        model: self.desc.model.clone(),
                        reason: "the ONNX graph has no inputs".into(),
                    })?;
            let output =
                match &self.desc.output.name {
                    Some(name) if model.output_names().iter().any(|o| o == name) => name.clone(),
                    Some(name) => {
                        return Err(Error::ModelMismatch {
                            model: self.desc.model.clone(),
                            reason: format!(
                                "the graph has no output {name:?} (it has {:?})",
                                model.output_names()
                            ),
                        })
                    }
                    None => model.output_names().first().cloned().ok_or_else(|| {
                        Error::ModelMismatch {
                            model: self.desc.model.clone(),
                            reason: "the ONNX graph has no outputs".into(),
                        }
                    })?,
                };
            Ok(Arc::new(Backend {
                model,
                input,
                output,
                preprocessor,
            }))
        })
    }

    /// One unit vector per image, in input order. Files that cannot be read or decoded
    /// are errors naming the file.
    pub fn embed<I>(&self, images: I, batch_size: Option<usize>) -> Result<Vec<Vec<f32>>>
    where
        I: IntoIterator,
        I::Item: Into<ImageInput>,
    {
        self.embed_iter(images, batch_size).collect()
    }

    /// Streams the vectors batch by batch, in input order.
    pub fn embed_iter<'a, I>(
        &'a self,
        images: I,
        batch_size: Option<usize>,
    ) -> impl Iterator<Item = Result<Vec<f32>>> + 'a
    where
        I: IntoIterator,
        I::Item: Into<ImageInput> + 'a,
        I::IntoIter: 'a,
    {
        let batch_size = batch_size.unwrap_or(self.batch_size);
        let mut source = images.into_iter().map(Into::into);
        let mut ready: std::collections::VecDeque<Result<Vec<f32>>> = Default::default();
        let mut done = false;
        std::iter::from_fn(move || loop {
            if let Some(r) = ready.pop_front() {
                return Some(r);
            }
            if done {
                return None;
            }
            if batch_size == 0 {
                done = true;
                return Some(Err(Error::InvalidArgument(
                    "batch_size must be >= 1".into(),
                )));
            }
            let batch: Vec<ImageInput> = source.by_ref().take(batch_size).collect();
            if batch.len() < batch_size {
                done = true;
            }
            if batch.is_empty() {
                return None;
            }
            match self.embed_batch(&batch) {
                Ok(vectors) => ready.extend(vectors.into_iter().map(Ok)),
                Err(e) => {
                    done = true;
                    return Some(Err(e));
                }
            }
        })
    }

    fn embed_batch(&self, images: &[ImageInput]) -> Result<Vec<Vec<f32>>> {
        let backend = self.backend()?;
        let arrays = images
            .iter()
            .map(|i| backend.preprocessor.apply(to_rgb(i)?))
            .collect::<Result<Vec<_>>>()?;
        let shape = arrays[0].dim();
        if let Some(other) = arrays.iter().find(|a| a.dim() != shape) {
            return Err(Error::InvalidArgument(format!(
                "the preprocessing gives images of different sizes ({shape:?} and {:?}); \
                 embed them in separate batches",
                other.dim()
            )));
        }
        let mut batch = Array4::<f32>::zeros((arrays.len(), shape.0, shape.1, shape.2));
        for (mut slot, a) in batch.outer_iter_mut().zip(&arrays) {
            slot.assign(a);
        }
        let inputs = vec![(backend.input.clone(), Tensor::from_array(batch)?.into_dyn())];
        let out = backend.model.run_f32(inputs, &backend.output)?;
        self.pool(out, images.len())
    }

    fn pool(&self, out: ArrayD<f32>, n: usize) -> Result<Vec<Vec<f32>>> {
        let shape = out.shape().to_vec();
        let mismatch = || Error::ModelMismatch {
            model: self.desc.model.clone(),
            reason: format!("output of shape {shape:?} for {n} images"),
        };
        if shape.first() != Some(&n) {
            return Err(mismatch());
        }
        let mut vectors: Vec<Vec<f32>> = match self.desc.output.pooling {
            ImagePooling::Flatten => out
                .outer_iter()
                .map(|v| v.iter().copied().collect())
                .collect(),
            ImagePooling::Cls => {
                let out = out.into_dimensionality::<Ix3>().map_err(|_| mismatch())?;
                out.index_axis(Axis(1), 0)
                    .outer_iter()
                    .map(|v| v.to_vec())
                    .collect()
            }
        };
        for v in &mut vectors {
            l2_normalize(v);
        }
        Ok(vectors)
    }
}
