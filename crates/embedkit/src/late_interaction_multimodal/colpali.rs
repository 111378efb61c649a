//! ColPali (PaliGemma): queries are `<s>Query: {text}` + ten `<pad>` + `\n`, whose first
//! two ids become the query marker `[2, 5098]`, with a black 448×448 image; images come
//! with the tokenization of 1024 `<image>` tokens and `<bos>Describe the image.\n`.
//! Every output row is kept, padding included, as fastembed keeps them.

use ndarray::{Array2, Array4};

use super::{Multimodal, MultimodalBackend, Parts};
use crate::error::{Error, Result};
use crate::image::{each_image, ImageInput};
use crate::inputs::{stack_images, TokenBatch};
use crate::late_interaction::MultiVector;
use crate::pipeline::Load;
use crate::runtime::Lane;

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
    parts: Parts,
}

impl ColPali {
    pub(crate) fn load(at: &Load<'_, Multimodal>) -> Result<Self> {
        Ok(ColPali {
            parts: Parts::load(at)?,
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
    fn embed_texts(&self, texts: &[&str], lane: Lane) -> Result<Vec<MultiVector>> {
        let p = &self.parts;
        let encoded = p.tokenizer.encode_batch(&Self::prompts(texts))?;
        let seqs: Vec<&[u32]> = encoded.iter().map(Vec::as_slice).collect();
        let TokenBatch {
            input_ids: mut ids,
            attention_mask: mask,
            ..
        } = TokenBatch::new(&seqs, p.tokenizer.padding());
        if ids.ncols() < QUERY_MARKER.len() {
            return Err(Error::Tokenizer(
                "the query prompt tokenizes to fewer than two tokens".into(),
            ));
        }
        // The first two positions become the query marker, padding or not.
        ids.column_mut(0).fill(QUERY_MARKER[0]);
        ids.column_mut(1).fill(QUERY_MARKER[1]);
        let pixels = Array4::<f32>::zeros((texts.len(), 3, PLACEHOLDER_SIZE, PLACEHOLDER_SIZE));
        p.embed(ids, mask, pixels, false, lane)
    }

    fn embed_images(&self, images: &[&ImageInput], lane: Lane) -> Result<Vec<MultiVector>> {
        let p = &self.parts;
        let arrays = each_image(images, |rgb| p.preprocessor.apply(rgb))?;
        let pixels = stack_images(&arrays)?;
        let prompt: Vec<i64> = std::iter::repeat_n(IMAGE_TOKEN, IMAGE_TOKENS)
            .chain(IMAGE_PROMPT)
            .collect();
        let n = images.len();
        let ids = Array2::from_shape_fn((n, prompt.len()), |(_, c)| prompt[c]);
        let mask = Array2::<i64>::ones((n, prompt.len()));
        p.embed(ids, mask, pixels, false, lane)
    }

    // Every image gives the same rows: its image tokens and the prompt.
    fn image_vectors_at_most(&self) -> Result<Option<usize>> {
        Ok(Some(IMAGE_TOKENS + IMAGE_PROMPT.len()))
    }

    fn token_count(&self, texts: &[&str], include_extension: bool) -> Result<usize> {
        self.parts
            .token_count(texts, include_extension, Self::prompts)
    }

    fn parallelism(&self) -> usize {
        self.parts.model.parallelism()
    }
}
