//! Calibration: the largest absolute value each input channel of each quantized product
//! takes on built-in inputs, run through the family's own preprocessing.

use std::collections::HashMap;
use std::path::Path;

use image::RgbImage;
use prost::Message;

use super::onnx_proto::ModelProto;
use super::plan::Site;
use crate::error::{Error, Result};
use crate::inputs::{Feed, TokenBatch};
use crate::runtime::{Lane, OnnxModel, RuntimeOptions};
use crate::tokenize::TextTokenizer;

/// Builds calibration inputs for a graph, as its family feeds it.
pub(crate) trait Calibrate {
    fn feeds(&self, model: &OnnxModel) -> Result<Vec<Feed>>;
}

impl<F: Fn(&OnnxModel) -> Result<Vec<Feed>>> Calibrate for F {
    fn feeds(&self, model: &OnnxModel) -> Result<Vec<Feed>> {
        self(model)
    }
}

/// Paragraphs of varied prose, lists, code and questions (written for embedkit).
const TEXTS: &str = include_str!("calibration.txt");

/// Rows per calibration batch.
const BATCH: usize = 8;

/// The built-in texts, tokenized by the model's tokenizer, in padded batches.
pub(crate) fn text_feeds(tokenizer: &TextTokenizer, model: &OnnxModel) -> Result<Vec<Feed>> {
    let texts: Vec<&str> = TEXTS.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut feeds = Vec::new();
    for chunk in texts.chunks(BATCH) {
        let ids = tokenizer.encode_batch(chunk)?;
        let refs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        feeds.push(TokenBatch::new(&refs, tokenizer.padding()).feed(model)?);
    }
    Ok(feeds)
}

/// The built-in texts as (question-like opening, paragraph) pairs, for graphs that
/// read sentence pairs.
pub(crate) fn pair_feeds(tokenizer: &TextTokenizer, model: &OnnxModel) -> Result<Vec<Feed>> {
    let texts: Vec<&str> = TEXTS.lines().filter(|l| !l.trim().is_empty()).collect();
    let pairs: Vec<(String, &str)> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            // Half the pairs match (a text's own opening words), half do not.
            let source = if i % 2 == 0 {
                t
            } else {
                texts[(i + 7) % texts.len()]
            };
            let query: Vec<&str> = source.split_whitespace().take(6).collect();
            (query.join(" "), *t)
        })
        .collect();
    let mut feeds = Vec::new();
    for chunk in pairs.chunks(BATCH) {
        let encoded = tokenizer.encode_pairs(chunk)?;
        let ids: Vec<&[u32]> = encoded.iter().map(|p| p.0.as_slice()).collect();
        let types: Vec<&[u32]> = encoded.iter().map(|p| p.1.as_slice()).collect();
        feeds.push(TokenBatch::with_types(&ids, Some(&types), tokenizer.padding()).feed(model)?);
    }
    Ok(feeds)
}

/// Sixteen 256×256 pictures made of gradients, blocks, stripes and noise, so every
/// image family calibrates without image files.
pub(crate) fn images() -> Vec<RgbImage> {
    let mut seed = 0x9e37_79b9_u32;
    let mut next = move || {
        // xorshift32: a fixed sequence, nothing more is asked of it.
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    (0..16u32)
        .map(|k| {
            let (a, b) = (next(), next());
            RgbImage::from_fn(256, 256, |x, y| {
                let grad = |s: u32| ((x * (s % 3 + 1) + y * (s % 5)) % 256) as u8;
                let block = ((x / (16 + k * 4) + y / (24 + k * 2)) % 2) as u8 * 200;
                let noise = (next() >> 24) as u8;
                match k % 4 {
                    0 => image::Rgb([grad(a), grad(b), grad(a ^ b)]),
                    1 => image::Rgb([block, grad(a), 255 - block]),
                    2 => image::Rgb([noise, noise / 2 + grad(b) / 2, grad(a)]),
                    _ => image::Rgb([
                        (a >> 8) as u8 ^ block,
                        (b >> 16) as u8,
                        noise / 4 + block / 2,
                    ]),
                }
            })
        })
        .collect()
}

/// Per-channel absolute maxima of every site's input, over the calibration feeds.
pub(super) fn calibrate(
    cal_model: &ModelProto,
    sites: &[Site],
    dir: &Path,
    opts: &RuntimeOptions,
    calibration: &dyn Calibrate,
) -> Result<HashMap<String, Vec<f32>>> {
    // ONNX Runtime opens files: the calibration graph is written, opened and removed.
    let tmp = dir.join(format!(
        ".embedkit-calibration.{}.onnx",
        super::unique_suffix()
    ));
    std::fs::write(&tmp, cal_model.encode_to_vec()).map_err(|e| Error::io(&tmp, e))?;
    let opened = OnnxModel::load(&tmp, opts);
    let _ = std::fs::remove_file(&tmp);
    let model = opened?;
    let mut names: Vec<String> = sites.iter().map(|s| s.input.clone()).collect();
    names.sort();
    names.dedup();
    let mut amax: HashMap<String, Vec<f32>> = HashMap::new();
    for feed in calibration.feeds(&model)? {
        let outs = model.run_many_f32(Lane::Solo, feed, &names)?;
        for (name, out) in names.iter().zip(outs) {
            let width = out.shape().last().copied().unwrap_or(0);
            if width == 0 {
                continue;
            }
            let m = amax.entry(name.clone()).or_insert_with(|| vec![0.0; width]);
            if m.len() != width {
                continue;
            }
            for (i, v) in out.iter().enumerate() {
                let slot = &mut m[i % width];
                if v.is_finite() {
                    *slot = slot.max(v.abs());
                }
            }
        }
    }
    Ok(amax)
}

#[cfg(test)]
mod tests {
    #[test]
    fn calibration_images_are_fixed_and_varied() {
        let a = super::images();
        assert_eq!(a.len(), 16);
        assert_eq!(a, super::images(), "the same pictures every time");
        let first: Vec<_> = a.iter().map(|i| *i.get_pixel(10, 10)).collect();
        assert!(first.windows(2).any(|w| w[0] != w[1]));
    }
}
