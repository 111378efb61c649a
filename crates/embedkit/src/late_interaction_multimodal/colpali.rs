//! ColPali (PaliGemma): queries are `<s>Query: {text}` + ten `<pad>` + `\n`, whose first
//! two ids become the query marker `[2, 5098]`, with a black 448×448 image; images come
//! with the tokenization of 1024 `<image>` tokens and `<bos>Describe the image.\n`.
//! Every output row is kept, padding included, as fastembed keeps them.

use std::path::Path;

use ndarray::{Array2, Array4};
use ort::value::Tensor;

use super::{load_graph, run, split_rows, MultimodalBackend};
use crate::batching::{self, PaddedBatch};
use crate::error::{Error, Result};
use crate::image::{to_rgb, ImageInput, Preprocessor};
use crate::late_interaction::MultiVector;
use crate::registry::MultimodalModelDescription;
use crate::runtime::{OnnxModel, RuntimeOptions};
use crate::tokenize::{TextTokenizer, TokenizerOptions};

const QUERY_PREFIX: &str = "Query: ";
const BOS: &str = "<s>";
const PAD: &str = "<pad>";
const QUERY_MARKER: [i64; 2] = [2, 5098];
const IMAGE_TOKEN: i64 = 257_152;
const IMAGE_TOKENS: usize = 1024;
/// `<bos>Describe the image.\n` in PaliGemma's vocabulary.
const IMAGE_PROMPT: [i64; 6] = [2, 50721, 573, 2416, 235_265, 108];
const PLACEHOLDER_SIZE: usize = 448;

pub(crate) struct ColPali {
    name: String,
    dim: usize,
    tokenizer: TextTokenizer,
    preprocessor: Preprocessor,
    model: OnnxModel,
    output: String,
}

impl ColPali {
    pub(crate) fn load(
        desc: &MultimodalModelDescription,
        dir: &Path,
        runtime: &RuntimeOptions,
    ) -> Result<Self> {
        let tokenizer = TextTokenizer::from_dir(dir, TokenizerOptions::default())?;
        let preprocessor = Preprocessor::from_dir(dir)?;
        let (model, output) = load_graph(desc, dir, runtime)?;
        Ok(ColPali {
            name: desc.model.clone(),
            dim: desc.dim,
            tokenizer,
            preprocessor,
            model,
            output,
        })
    }

    fn prompts(texts: &[&str]) -> Vec<String> {
        texts
            .iter()
            .map(|t| format!("{BOS}{QUERY_PREFIX}{t}{}\n", PAD.repeat(10)))
            .collect()
    }
}

impl MultimodalBackend for ColPali {
    fn embed_texts(&self, texts: &[&str]) -> Result<Vec<MultiVector>> {
        let encoded = self.tokenizer.encode_batch(&Self::prompts(texts))?;
        let seqs: Vec<&[u32]> = encoded.iter().map(Vec::as_slice).collect();
        let PaddedBatch {
            input_ids: mut ids,
            attention_mask: mask,
        } = PaddedBatch::new(&seqs, self.tokenizer.padding());
        if ids.ncols() < QUERY_MARKER.len() {
            return Err(Error::Tokenizer(
                "the query prompt tokenizes to fewer than two tokens".into(),
            ));
        }
        // The first two positions become the query marker, padding or not.
        ids.column_mut(0).fill(QUERY_MARKER[0]);
        ids.column_mut(1).fill(QUERY_MARKER[1]);
        let pixels = Array4::<f32>::zeros((texts.len(), 3, PLACEHOLDER_SIZE, PLACEHOLDER_SIZE));
        let out = run(
            &self.model,
            &self.output,
            vec![
                ("input_ids", Tensor::from_array(ids)?.into_dyn()),
                ("attention_mask", Tensor::from_array(mask)?.into_dyn()),
                ("pixel_values", Tensor::from_array(pixels)?.into_dyn()),
            ],
        )?;
        split_rows(&self.name, out, texts.len(), self.dim, None)
    }

    fn embed_images(&self, images: &[ImageInput]) -> Result<Vec<MultiVector>> {
        let arrays = images
            .iter()
            .map(|i| self.preprocessor.apply(to_rgb(i)?))
            .collect::<Result<Vec<_>>>()?;
        let shape = arrays[0].dim();
        if arrays.iter().any(|a| a.dim() != shape) {
            return Err(Error::InvalidArgument(
                "the preprocessing gives images of different sizes".into(),
            ));
        }
        let mut pixels = Array4::<f32>::zeros((arrays.len(), shape.0, shape.1, shape.2));
        for (mut slot, a) in pixels.outer_iter_mut().zip(&arrays) {
            slot.assign(a);
        }
        let prompt: Vec<i64> = std::iter::repeat_n(IMAGE_TOKEN, IMAGE_TOKENS)
            .chain(IMAGE_PROMPT)
            .collect();
        let n = images.len();
        let ids = Array2::from_shape_fn((n, prompt.len()), |(_, c)| prompt[c]);
        let mask = Array2::<i64>::ones((n, prompt.len()));
        let out = run(
            &self.model,
            &self.output,
            vec![
                ("input_ids", Tensor::from_array(ids)?.into_dyn()),
                ("attention_mask", Tensor::from_array(mask)?.into_dyn()),
                ("pixel_values", Tensor::from_array(pixels)?.into_dyn()),
            ],
        )?;
        split_rows(&self.name, out, n, self.dim, None)
    }

    fn token_count(&self, texts: &[&str], include_extension: bool) -> Result<usize> {
        batching::count_tokens(texts, |chunk| {
            if include_extension {
                self.tokenizer.encode_batch(&Self::prompts(chunk))
            } else {
                self.tokenizer.encode_batch(chunk)
            }
        })
    }

    fn default_image_batch_size(&self) -> usize {
        16
    }
}
