//! ColModernVBert (Idefics3 layout): queries get ten `<end_of_utterance>` tokens and a
//! single black image; images are cut into tiles plus a global view (Idefics3 splitting)
//! and described by a prompt with `image_seq_len` `<image>` tokens per tile, in the
//! `<row_r_col_c>` layout Idefics3's processor writes. Rows of padding are dropped.

use std::path::Path;

use ndarray::{Array2, Array5};
use ort::value::Tensor;
use serde_json::Value;

use super::{load_graph, run, split_rows, MultimodalBackend};
use crate::batching::{self, PaddedBatch};
use crate::error::{Error, Result};
use crate::image::{to_rgb, ImageInput, Preprocessor};
use crate::late_interaction::MultiVector;
use crate::registry::MultimodalModelDescription;
use crate::runtime::{OnnxModel, RuntimeOptions};
use crate::tokenize::{PadSide, TextTokenizer, TokenizerOptions};

const VISUAL_PROMPT: &str =
    "<|begin_of_text|>User:<image>Describe the image.<end_of_utterance>\nAssistant:";
const QUERY_AUGMENTATION: &str = "<end_of_utterance>";

pub(crate) struct ColModernVBert {
    name: String,
    dim: usize,
    tokenizer: TextTokenizer,
    preprocessor: Preprocessor,
    model: OnnxModel,
    output: String,
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
    pub(crate) fn load(
        desc: &MultimodalModelDescription,
        dir: &Path,
        runtime: &RuntimeOptions,
    ) -> Result<Self> {
        let tokenizer = TextTokenizer::from_dir(dir, TokenizerOptions::default())?;
        let preprocessor = Preprocessor::from_dir(dir)?;
        let processor_path = dir.join("processor_config.json");
        let processor = read_json(&processor_path)?;
        let image_seq_len = size_or(
            processor.get("image_seq_len"),
            64,
            &processor_path,
            "image_seq_len",
        )?;
        let config_path = dir.join("config.json");
        let config = read_json(&config_path)?;
        let image_size = size_or(
            config
                .get("vision_config")
                .and_then(|v| v.get("image_size")),
            512,
            &config_path,
            "vision_config.image_size",
        )?;
        let (model, output) = load_graph(desc, dir, runtime)?;
        Ok(ColModernVBert {
            name: desc.model.clone(),
            dim: desc.dim,
            tokenizer,
            preprocessor,
            model,
            output,
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

    /// Image prompts padded as fastembed pads them by hand: to the longest, on the
    /// tokenizer's side, without `pad_to_multiple_of`.
    fn pad(&self, seqs: &[Vec<u32>]) -> (Array2<i64>, Array2<i64>) {
        let width = seqs.iter().map(Vec::len).max().unwrap_or(0);
        let padding = self.tokenizer.padding();
        let mut ids = Array2::from_elem((seqs.len(), width), i64::from(padding.pad_id));
        let mut mask = Array2::<i64>::zeros((seqs.len(), width));
        for (r, seq) in seqs.iter().enumerate() {
            let start = match padding.side {
                PadSide::Right => 0,
                PadSide::Left => width - seq.len(),
            };
            for (c, &id) in seq.iter().enumerate() {
                ids[[r, start + c]] = i64::from(id);
                mask[[r, start + c]] = 1;
            }
        }
        (ids, mask)
    }
}

impl MultimodalBackend for ColModernVBert {
    fn embed_texts(&self, texts: &[&str]) -> Result<Vec<MultiVector>> {
        let encoded = self.tokenizer.encode_batch(&Self::prompts(texts))?;
        let seqs: Vec<&[u32]> = encoded.iter().map(Vec::as_slice).collect();
        let PaddedBatch {
            input_ids: ids,
            attention_mask: mask,
        } = PaddedBatch::new(&seqs, self.tokenizer.padding());
        // One black image for the whole batch, as fastembed feeds it.
        let pixels = Array5::<f32>::zeros((1, 1, 3, self.image_size, self.image_size));
        let out = run(
            &self.model,
            &self.output,
            vec![
                ("input_ids", Tensor::from_array(ids)?.into_dyn()),
                (
                    "attention_mask",
                    Tensor::from_array(mask.clone())?.into_dyn(),
                ),
                ("pixel_values", Tensor::from_array(pixels)?.into_dyn()),
            ],
        )?;
        split_rows(&self.name, out, texts.len(), self.dim, Some(&mask))
    }

    fn embed_images(&self, images: &[ImageInput]) -> Result<Vec<MultiVector>> {
        let mut tiles = Vec::with_capacity(images.len());
        let mut prompts = Vec::with_capacity(images.len());
        for image in images {
            let (frames, (rows, cols)) = self.preprocessor.apply_tiles(to_rgb(image)?)?;
            prompts.push(self.image_prompt(rows, cols));
            tiles.push(frames);
        }
        let max_tiles = tiles.iter().map(Vec::len).max().unwrap_or(0);
        let shape = tiles[0][0].dim();
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
        let encoded = self.tokenizer.encode_batch(&prompts)?;
        let (ids, mask) = self.pad(&encoded);
        let out = run(
            &self.model,
            &self.output,
            vec![
                ("pixel_values", Tensor::from_array(pixels)?.into_dyn()),
                (
                    "attention_mask",
                    Tensor::from_array(mask.clone())?.into_dyn(),
                ),
                ("input_ids", Tensor::from_array(ids)?.into_dyn()),
            ],
        )?;
        split_rows(&self.name, out, images.len(), self.dim, Some(&mask))
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
        2
    }
}
