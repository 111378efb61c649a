//! ColBERT-style graphs: a marker token after the first token, queries padded with the
//! mask token to a minimum length, documents without punctuation tokens, each token
//! vector normalized — fastembed's `Colbert`, `JinaColbert`, `LateOn` and `MLateOn`, told
//! apart by the registry's [`ColbertConfig`], not by name.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use ndarray::{s, Array2, ArrayView2, Axis, Ix3};
use ort::value::{DynValue, Tensor};

use crate::batching::{self, PaddedBatch};
use crate::error::{Error, Result};
use crate::registry::{ColbertConfig, LateInteractionModelDescription, LateInteractionStyle};
use crate::runtime::{OnnxModel, RuntimeOptions};
use crate::tokenize::{TextTokenizer, TokenizerOptions};

const KNOWN_INPUTS: [&str; 3] = ["input_ids", "attention_mask", "token_type_ids"];

pub(crate) struct ColbertBackend {
    model_name: String,
    cfg: ColbertConfig,
    tokenizer: TextTokenizer,
    model: OnnxModel,
    output: String,
    mask_id: u32,
    pad_id: u32,
    /// Token ids documents drop: the first token of each ASCII punctuation character.
    skip: HashSet<i64>,
}

/// One batch's model inputs, the marker already inserted.
struct Inputs {
    input_ids: Array2<i64>,
    attention_mask: Array2<i64>,
}

impl ColbertBackend {
    pub(crate) fn load(
        desc: &LateInteractionModelDescription,
        dir: &Path,
        runtime: &RuntimeOptions,
    ) -> Result<Self> {
        let cfg = desc.colbert.clone();
        let base = TextTokenizer::from_dir(dir, TokenizerOptions::default())?;
        let mask_id = *base
            .special_token_to_id()
            .get(&cfg.mask_token)
            .ok_or_else(|| Error::ModelMismatch {
                model: desc.model.clone(),
                reason: format!(
                    "the tokenizer has no special token {:?}, which queries are padded with",
                    cfg.mask_token
                ),
            })?;
        let pad_id = base.padding().pad_id;
        // Leave room for the marker.
        let max_length = base.max_length().saturating_sub(cfg.reserved_marker_tokens);
        let tokenizer = base.with_max_length(max_length)?;
        let skip = if cfg.skip_punctuation {
            let mut skip = HashSet::new();
            for c in (0u8..128)
                .map(char::from)
                .filter(char::is_ascii_punctuation)
            {
                let encoding = tokenizer
                    .inner()
                    .encode(c.to_string(), false)
                    .map_err(|e| Error::Tokenizer(e.to_string()))?;
                // The first token of the character, which for SentencePiece vocabularies
                // can be the word-start piece, exactly as fastembed takes it.
                if let Some(&id) = encoding.get_ids().first() {
                    skip.insert(i64::from(id));
                }
            }
            skip
        } else {
            HashSet::new()
        };
        let model = OnnxModel::load(&dir.join(&desc.model_file), runtime)?;
        model.check_inputs(&desc.model, &KNOWN_INPUTS)?;
        let output = model
            .output_names()
            .first()
            .cloned()
            .ok_or_else(|| Error::ModelMismatch {
                model: desc.model.clone(),
                reason: "the ONNX graph has no outputs".into(),
            })?;
        model.check_output_width(&desc.model, &output, desc.dim)?;
        Ok(ColbertBackend {
            model_name: desc.model.clone(),
            cfg,
            tokenizer,
            model,
            output,
            mask_id,
            pad_id,
            skip,
        })
    }

    /// Token vectors of each document, in input order.
    pub(crate) fn documents(
        &self,
        texts: &[&str],
        max_items: usize,
        max_tokens: usize,
    ) -> Result<Vec<Array2<f32>>> {
        let sequences = self.tokenizer.encode_batch(texts)?;
        let lengths: Vec<usize> = sequences.iter().map(|s| s.len() + 1).collect();
        batching::run_sorted(&lengths, max_items, max_tokens, |batch| {
            let seqs: Vec<&[u32]> = batch.iter().map(|&i| sequences[i].as_slice()).collect();
            let padded = PaddedBatch::new(&seqs, self.tokenizer.padding());
            let inputs = insert_marker(padded, self.cfg.document_marker_id);
            let hidden = self.run(&inputs)?;
            let mut out = Vec::with_capacity(seqs.len());
            for (row, vectors) in hidden.outer_iter().enumerate() {
                let ids = inputs.input_ids.row(row);
                let mask = inputs.attention_mask.row(row);
                let keep: Vec<usize> = (0..ids.len())
                    .filter(|&j| {
                        mask[j] == 1
                            && !self.skip.contains(&ids[j])
                            && (self.cfg.style == LateInteractionStyle::Lateon
                                || ids[j] != i64::from(self.pad_id))
                    })
                    .collect();
                out.push(normalized_rows(vectors, &keep));
            }
            Ok(out)
        })
    }

    /// Token vectors of each query, in input order. fastembed runs queries one at a
    /// time; queries of equal padded length are batched here, which gives the same
    /// tensors (no query is padded beyond its own expansion).
    pub(crate) fn queries(
        &self,
        texts: &[&str],
        max_items: usize,
        max_tokens: usize,
    ) -> Result<Vec<Array2<f32>>> {
        let sequences = self.tokenizer.encode_batch(texts)?;
        let min = self.cfg.min_query_length.unwrap_or(0);
        let mut by_length: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, s) in sequences.iter().enumerate() {
            by_length.entry(s.len().max(min)).or_default().push(i);
        }
        let mut out: Vec<Option<Array2<f32>>> = vec![None; texts.len()];
        for (width, members) in by_length {
            let per_batch = max_items.min((max_tokens / (width + 1)).max(1)).max(1);
            for chunk in members.chunks(per_batch) {
                let mut input_ids =
                    Array2::from_elem((chunk.len(), width), i64::from(self.mask_id));
                let mut attention_mask = Array2::zeros((chunk.len(), width));
                for (r, &i) in chunk.iter().enumerate() {
                    for (c, &id) in sequences[i].iter().enumerate() {
                        input_ids[[r, c]] = i64::from(id);
                        attention_mask[[r, c]] = 1;
                    }
                }
                let mut inputs = insert_marker(
                    PaddedBatch {
                        input_ids,
                        attention_mask,
                    },
                    self.cfg.query_marker_id,
                );
                if self.cfg.query_attention_all_ones {
                    inputs.attention_mask.fill(1);
                }
                let hidden = self.run(&inputs)?;
                for (r, vectors) in hidden.outer_iter().enumerate() {
                    let result = match self.cfg.style {
                        // The graph's rows as they are, mask padding included.
                        LateInteractionStyle::Colbert => vectors.to_owned(),
                        LateInteractionStyle::Lateon => {
                            let mask = inputs.attention_mask.row(r);
                            let keep: Vec<usize> =
                                (0..mask.len()).filter(|&j| mask[j] == 1).collect();
                            normalized_rows(vectors, &keep)
                        }
                    };
                    out[chunk[r]] = Some(result);
                }
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    fn run(&self, inputs: &Inputs) -> Result<ndarray::Array3<f32>> {
        let mut feed: Vec<(String, DynValue)> = vec![(
            "input_ids".into(),
            Tensor::from_array(inputs.input_ids.clone())?.into_dyn(),
        )];
        if self.model.has_input("attention_mask") {
            feed.push((
                "attention_mask".into(),
                Tensor::from_array(inputs.attention_mask.clone())?.into_dyn(),
            ));
        }
        if self.model.has_input("token_type_ids") {
            // fastembed sizes these before inserting the marker, which such a graph
            // rejects; zeros of the right shape instead.
            feed.push((
                "token_type_ids".into(),
                Tensor::from_array(Array2::<i64>::zeros(inputs.input_ids.dim()))?.into_dyn(),
            ));
        }
        let out = self.model.run_f32(feed, &self.output)?;
        let shape = out.shape().to_vec();
        out.into_dimensionality::<Ix3>()
            .ok()
            .filter(|h| (h.dim().0, h.dim().1) == inputs.input_ids.dim())
            .ok_or_else(|| Error::ModelMismatch {
                model: self.model_name.clone(),
                reason: format!(
                    "output {:?} has shape {shape:?}, expected [batch, {}, dim]",
                    self.output,
                    inputs.input_ids.ncols()
                ),
            })
    }

    /// Tokens of the texts as fastembed's `token_count` counts them: documents their
    /// tokens; queries with `include_extension` their expanded length plus the marker.
    pub(crate) fn token_count(
        &self,
        texts: &[&str],
        is_doc: bool,
        include_extension: bool,
    ) -> Result<usize> {
        let mut total = 0;
        for chunk in texts.chunks(1024) {
            let encoded = self.tokenizer.encode_batch(chunk)?;
            for ids in &encoded {
                total += match (is_doc, include_extension, self.cfg.min_query_length) {
                    (false, true, Some(min)) => ids.len().max(min),
                    _ => ids.len(),
                };
            }
            if include_extension {
                total += chunk.len();
            }
        }
        Ok(total)
    }
}

/// The marker goes in as column 1 of every row, attended.
fn insert_marker(batch: PaddedBatch, marker: u32) -> Inputs {
    let (rows, width) = batch.input_ids.dim();
    let at = width.min(1);
    let mut input_ids = Array2::zeros((rows, width + 1));
    let mut attention_mask = Array2::zeros((rows, width + 1));
    input_ids
        .slice_mut(s![.., ..at])
        .assign(&batch.input_ids.slice(s![.., ..at]));
    input_ids
        .slice_mut(s![.., at + 1..])
        .assign(&batch.input_ids.slice(s![.., at..]));
    input_ids.column_mut(at).fill(i64::from(marker));
    attention_mask
        .slice_mut(s![.., ..at])
        .assign(&batch.attention_mask.slice(s![.., ..at]));
    attention_mask
        .slice_mut(s![.., at + 1..])
        .assign(&batch.attention_mask.slice(s![.., at..]));
    attention_mask.column_mut(at).fill(1);
    Inputs {
        input_ids,
        attention_mask,
    }
}

/// The rows `keep` of `vectors`, each divided by its L2 norm (at least 1e-12).
fn normalized_rows(vectors: ArrayView2<'_, f32>, keep: &[usize]) -> Array2<f32> {
    let mut out = vectors.select(Axis(0), keep);
    for mut row in out.outer_iter_mut() {
        let norm = row
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        let norm = norm.max(1e-12) as f32;
        row.mapv_inplace(|x| x / norm);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn marker_goes_after_the_first_token() {
        let batch = PaddedBatch {
            input_ids: array![[101, 7, 102], [101, 102, 0]],
            attention_mask: array![[1, 1, 1], [1, 1, 0]],
        };
        let inputs = insert_marker(batch, 2);
        assert_eq!(inputs.input_ids, array![[101, 2, 7, 102], [101, 2, 102, 0]]);
        assert_eq!(inputs.attention_mask, array![[1, 1, 1, 1], [1, 1, 1, 0]]);
    }

    #[test]
    fn rows_are_selected_and_normalized() {
        let v = array![[3.0f32, 4.0], [0.0, 0.0], [1.0, 0.0]];
        let out = normalized_rows(v.view(), &[0, 1]);
        assert_eq!(out, array![[0.6f32, 0.8], [0.0, 0.0]]);
    }
}
