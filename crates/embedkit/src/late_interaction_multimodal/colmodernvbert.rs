//! ColModernVBert (Idefics3 layout): queries get ten `<end_of_utterance>` tokens and a
//! single black image; images are cut into tiles plus a global view (Idefics3 splitting)
//! and described by a prompt with `image_seq_len` `<image>` tokens per tile, in the
//! `<row_r_col_c>` layout Idefics3's processor writes. Rows of padding are dropped.

use std::path::Path;

use ndarray::Array5;
use serde_json::Value;

use super::{Multimodal, MultimodalBackend, Parts};
use crate::error::{Error, Result};
use crate::image::{each_image, ImageInput};
use crate::inputs::TokenBatch;
use crate::late_interaction::MultiVector;
use crate::pipeline::Load;
use crate::runtime::Lane;

const VISUAL_PROMPT: &str =
    "<|begin_of_text|>User:<image>Describe the image.<end_of_utterance>\nAssistant:";
const QUERY_AUGMENTATION: &str = "<end_of_utterance>";

pub(crate) struct ColModernVBert {
    parts: Parts,
    image_seq_len: usize,
    image_size: usize,
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::InvalidModel {
        path: path.to_path_buf(),
        reason: format!("not valid JSON: {e}"),
    })
}

/// A positive size, within what a tensor dimension can hold.
fn size_or(v: Option<&Value>, default: usize, path: &Path, key: &str) -> Result<usize> {
    match v {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .filter(|&n| n > 0 && n <= 1 << 16)
            .map(|n| n as usize)
            .ok_or_else(|| Error::InvalidModel {
                path: path.to_path_buf(),
                reason: format!("{key} must be a positive integer up to 65536, got {v}"),
            }),
    }
}

impl ColModernVBert {
    pub(crate) fn load(at: &Load<'_, Multimodal>) -> Result<Self> {
        let processor_path = at.dir.join("processor_config.json");
        let processor = read_json(&processor_path)?;
        let image_seq_len = size_or(
            processor.get("image_seq_len"),
            64,
            &processor_path,
            "image_seq_len",
        )?;
        let config_path = at.dir.join("config.json");
        let config = read_json(&config_path)?;
        let image_size = size_or(
            config
                .get("vision_config")
                .and_then(|v| v.get("image_size")),
            512,
            &config_path,
            "vision_config.image_size",
        )?;
        Ok(ColModernVBert {
            parts: Parts::load(at)?,
            image_seq_len,
            image_size,
        })
    }

    fn prompts(texts: &[&str]) -> Vec<String> {
        texts
            .iter()
            .map(|t| format!("{t}{}", QUERY_AUGMENTATION.repeat(10)))
            .collect()
    }

    /// Idefics3's image prompt for a tile grid (`(0, 0)`: one unsplit image).
    fn image_prompt(&self, rows: usize, cols: usize) -> String {
        let tokens = "<image>".repeat(self.image_seq_len);
        let global =
            format!("<fake_token_around_image><global-img>{tokens}<fake_token_around_image>");
        let layout = if rows == 0 && cols == 0 {
            global
        } else {
            let mut s = String::new();
            for r in 0..rows {
                for c in 0..cols {
                    s.push_str(&format!(
                        "<fake_token_around_image><row_{}_col_{}>{tokens}",
                        r + 1,
                        c + 1
                    ));
                }
                s.push('\n');
            }
            s.push('\n');
            s.push_str(&global);
            s
        };
        VISUAL_PROMPT.replace("<image>", &layout)
    }
}

impl MultimodalBackend for ColModernVBert {
    fn embed_texts(&self, texts: &[&str], lane: Lane) -> Result<Vec<MultiVector>> {
        let p = &self.parts;
        let encoded = p.tokenizer.encode_batch(&Self::prompts(texts))?;
        let seqs: Vec<&[u32]> = encoded.iter().map(Vec::as_slice).collect();
        let batch = TokenBatch::new(&seqs, p.tokenizer.padding());
        // One black image for the whole batch, as fastembed feeds it.
        let pixels = Array5::<f32>::zeros((1, 1, 3, self.image_size, self.image_size));
        p.embed(batch.input_ids, batch.attention_mask, pixels, true, lane)
    }

    fn embed_images(&self, images: &[&ImageInput], lane: Lane) -> Result<Vec<MultiVector>> {
        let p = &self.parts;
        let mut prompts = Vec::with_capacity(images.len());
        let tiles = each_image(images, |rgb| {
            let (frames, (rows, cols)) = p.preprocessor.apply_tiles(rgb)?;
            prompts.push(self.image_prompt(rows, cols));
            Ok(frames)
        })?;
        let max_tiles = tiles.iter().map(Vec::len).max().unwrap_or(0);
        let Some(shape) = tiles.iter().flatten().next().map(|t| t.dim()) else {
            return Err(Error::InvalidArgument(
                "the preprocessing gave no tiles".into(),
            ));
        };
        if tiles.iter().flatten().any(|t| t.dim() != shape) {
            return Err(Error::InvalidArgument(
                "the preprocessing gives tiles of different sizes".into(),
            ));
        }
        let mut pixels = Array5::<f32>::zeros((images.len(), max_tiles, shape.0, shape.1, shape.2));
        for (i, frames) in tiles.iter().enumerate() {
            for (j, t) in frames.iter().enumerate() {
                pixels.slice_mut(ndarray::s![i, j, .., .., ..]).assign(t);
            }
        }
        let encoded = p.tokenizer.encode_batch(&prompts)?;
        let seqs: Vec<&[u32]> = encoded.iter().map(Vec::as_slice).collect();
        // Padded as fastembed pads these by hand: to the longest, on the tokenizer's
        // side, without `pad_to_multiple_of`.
        let mut padding = p.tokenizer.padding().clone();
        padding.pad_to_multiple_of = None;
        padding.fixed_length = None;
        let batch = TokenBatch::new(&seqs, &padding);
        p.embed(batch.input_ids, batch.attention_mask, pixels, true, lane)
    }

    // An image's rows are its prompt's tokens, which grow with its tile grid.
    fn image_vectors_at_most(&self) -> Result<Option<usize>> {
        let Some((rows, cols)) = self.parts.preprocessor.tile_grid_at_most() else {
            return Ok(None);
        };
        let encoded = self
            .parts
            .tokenizer
            .encode_batch(&[self.image_prompt(rows, cols)])?;
        Ok(encoded.first().map(Vec::len))
    }

    fn token_count(&self, texts: &[&str], include_extension: bool) -> Result<usize> {
        self.parts
            .token_count(texts, include_extension, Self::prompts)
    }

    fn parallelism(&self) -> usize {
        self.parts.model.parallelism()
    }
}
