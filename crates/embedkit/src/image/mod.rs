//! Image embeddings: [`ImageEmbedding`], fastembed's class of the same name.
//!
//! What the family computes: images are decoded as Pillow decodes them, preprocessed as
//! the model's `preprocessor_config.json` says (with Pillow's resampling, to the bit),
//! run through the vision graph and L2-normalized. Decoding happens per batch, on the
//! thread that runs it, so that batches on the session pool decode side by side.

mod decode;
mod preprocess;
pub(crate) mod resample;

pub use decode::{ImageInput, MAX_PIXELS};
// Public (hidden) only for the fuzz targets, which drive decoding and preprocessing.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub use decode::to_rgb;
#[cfg(not(feature = "internals"))]
pub(crate) use decode::to_rgb;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub use preprocess::Preprocessor;
#[cfg(not(feature = "internals"))]
pub(crate) use preprocess::Preprocessor;

use image::RgbImage;
use ndarray::{ArrayD, Axis, Ix3};
use ort::value::Tensor;

use crate::engine::{Builder, Model, Stream};
use crate::error::{Error, Result};
use crate::handle::{CallOptions, Capability, Capable, Images};
use crate::inputs::stack_images;
use crate::pipeline::{Family, Load, Pipeline, Prep, Purpose};
use crate::quantize;
use crate::registry::Kind;
use crate::registry::{ImageModelDescription, ImagePooling};
use crate::runtime::{Lane, OnnxModel};
use crate::text::pooling::l2_normalize;

/// Image embeddings with a model of the registry: one unit vector per image.
///
/// ```no_run
/// use embedkit::ImageEmbedding;
/// let model = ImageEmbedding::builder("Qdrant/clip-ViT-B-32-vision").build()?;
/// let vectors = model.embed(["photo.jpg", "scan.png"], None)?;
/// assert_eq!(vectors[0].len(), model.embedding_size());
/// # Ok::<(), embedkit::Error>(())
/// ```
pub type ImageEmbedding = Model<Image>;
/// Builder of an [`ImageEmbedding`].
pub type ImageEmbeddingBuilder = Builder<Image>;

/// A loaded image model: the image family (see [`ImageEmbedding`]).
pub struct Image {
    name: String,
    pooling: ImagePooling,
    model: OnnxModel,
    input: String,
    output: String,
    preprocessor: Preprocessor,
}

impl Family for Image {
    type Description = ImageModelDescription;
    type Settings = crate::pipeline::NoSettings;

    fn load(at: Load<'_, Self>) -> Result<Image> {
        let (desc, dir) = (at.desc, at.dir);
        let name = &desc.core.model;
        let preprocessor = Preprocessor::from_dir(dir)?;
        let calibration = |m: &OnnxModel| {
            let input = m.input_names().first().cloned().unwrap_or_default();
            let arrays = quantize::calibration_images()
                .into_iter()
                .map(|img| preprocessor.apply(img))
                .collect::<Result<Vec<_>>>()?;
            arrays
                .chunks(8)
                .map(|c| {
                    Ok(vec![(
                        input.clone(),
                        Tensor::from_array(stack_images(c)?)?.into_dyn(),
                    )])
                })
                .collect()
        };
        let model = quantize::load(&dir.join(&desc.core.model_file), at.runtime, &calibration)?;
        let input = model
            .input_names()
            .first()
            .cloned()
            .ok_or_else(|| Error::ModelMismatch {
                model: name.clone(),
                reason: "the ONNX graph has no inputs".into(),
            })?;
        let output = match &desc.output.name {
            Some(output) => model.require_output(name, output)?,
            None => model.first_output(name)?,
        };
        Ok(Image {
            name: name.clone(),
            pooling: desc.output.pooling,
            model,
            input,
            output,
            preprocessor,
        })
    }
}

impl Pipeline for Image {
    type Input<'a> = &'a ImageInput;
    type Item = ImageInput;
    type Output = Vec<f32>;

    fn prepare(&self, images: &[&ImageInput], _: Prep) -> Result<Vec<ImageInput>> {
        Ok(images.iter().map(|&i| i.clone()).collect())
    }

    /// Every image is the same size once preprocessed.
    fn cost(&self, _: &ImageInput, _: Purpose) -> usize {
        1
    }

    fn parallelism(&self) -> usize {
        self.model.parallelism()
    }

    fn run(&self, images: &[&ImageInput], _: Purpose, lane: Lane) -> Result<Vec<Vec<f32>>> {
        let arrays = each_image(images, |rgb| self.preprocessor.apply(rgb))?;
        let batch = stack_images(&arrays)?;
        let inputs = vec![(self.input.clone(), Tensor::from_array(batch)?.into_dyn())];
        let out = self.model.run_f32(lane, inputs, &self.output)?;
        self.pool(out, images.len())
    }
}

/// Decodes each image of a batch and applies `f`; an image that fails is named by its
/// position in the batch, which the layers above renumber to the call's.
pub(crate) fn each_image<T>(
    images: &[&ImageInput],
    mut f: impl FnMut(RgbImage) -> Result<T>,
) -> Result<Vec<T>> {
    images
        .iter()
        .enumerate()
        .map(|(k, i)| to_rgb(i).and_then(&mut f).map_err(|e| e.for_input(k)))
        .collect()
}

impl Image {
    fn pool(&self, out: ArrayD<f32>, n: usize) -> Result<Vec<Vec<f32>>> {
        let shape = out.shape().to_vec();
        let mismatch = || Error::ModelMismatch {
            model: self.name.clone(),
            reason: format!("output of shape {shape:?} for {n} images"),
        };
        if shape.first() != Some(&n) {
            return Err(mismatch());
        }
        let mut vectors: Vec<Vec<f32>> = match self.pooling {
            ImagePooling::Flatten => out
                .outer_iter()
                .map(|v| v.iter().copied().collect())
                .collect(),
            ImagePooling::Cls => {
                let out = out.into_dimensionality::<Ix3>().map_err(|_| mismatch())?;
                if out.dim().1 == 0 {
                    return Err(mismatch());
                }
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

/// Images as the pipeline takes them.
fn as_image(i: &ImageInput) -> &ImageInput {
    i
}

impl Model<Image> {
    /// Dimensions of each vector.
    pub fn embedding_size(&self) -> usize {
        self.description().dim
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

    /// Streams the vectors in input order, in bounded memory.
    pub fn embed_iter<'a, I>(&'a self, images: I, batch_size: Option<usize>) -> Stream<'a, Vec<f32>>
    where
        I: IntoIterator,
        I::Item: Into<ImageInput> + 'a,
        I::IntoIter: 'a,
    {
        self.try_embed_iter(images.into_iter().map(|i| Ok(i.into())), batch_size)
    }

    /// As [`embed_iter`](Self::embed_iter), for inputs that can fail; an input error
    /// ends the stream after the vectors before it.
    pub fn try_embed_iter<'a, I>(
        &'a self,
        images: I,
        batch_size: Option<usize>,
    ) -> Stream<'a, Vec<f32>>
    where
        I: IntoIterator<Item = Result<ImageInput>>,
        I::IntoIter: 'a,
    {
        self.stream(images.into_iter(), batch_size, Purpose::Document, as_image)
    }
}

impl Capable for Model<Image> {
    fn kind(&self) -> Kind {
        Kind::Image
    }
    fn capabilities(&self) -> &'static [Capability] {
        &[Capability::DenseImage]
    }
    fn dim(&self) -> Option<usize> {
        Some(self.embedding_size())
    }
    fn image_stream<'a>(&'a self, images: Images<'a>, o: &CallOptions) -> Stream<'a, Vec<f32>> {
        self.try_embed_iter(images, o.batch_size)
    }
}
