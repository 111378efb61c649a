//! ColBERT-style graphs: a marker token after the first token, queries padded with the
//! mask token to a minimum length, documents without punctuation tokens, each token
//! vector normalized — fastembed's `Colbert`, `JinaColbert`, `LateOn` and `MLateOn`, told
//! apart by the registry's [`ColbertConfig`], not by name.

use std::collections::HashSet;
use std::path::Path;

use ndarray::{s, Array2, Array3, ArrayView2, Axis, Ix3};

use crate::error::{Error, Result};
use crate::graph::{TextGraph, TEXT_INPUTS};
use crate::inputs::TokenBatch;
use crate::pipeline::Purpose;
use crate::registry::{ColbertConfig, LateInteractionModelDescription, LateInteractionStyle};
use crate::runtime::{Lane, RuntimeOptions};
use crate::tokenize::{TextTokenizer, TokenizerOptions, TruncationSide};

/// A loaded ColBERT-style model: the late-interaction text family.
pub struct Colbert {
    cfg: ColbertConfig,
    graph: TextGraph,
    mask_id: u32,
    pad_id: u32,
    /// Token ids documents drop: the first token of each ASCII punctuation character.
    skip: HashSet<i64>,
}

impl Colbert {
    pub(crate) fn load_from(
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
                model: desc.core.model.clone(),
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
                    .map_err(Error::from)?;
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
        let graph = TextGraph::with_tokenizer(&desc.core, dir, runtime, tokenizer, &TEXT_INPUTS)?;
        graph
            .model
            .check_output_width(&graph.name, &graph.output, desc.dim)?;
        Ok(Colbert {
            cfg,
            graph,
            mask_id,
            pad_id,
            skip,
        })
    }

    /// Token ids of each text (documents and queries alike; queries are expanded when
    /// their batch is built).
    pub(crate) fn tokenize(
        &self,
        texts: &[&str],
        side: Option<TruncationSide>,
    ) -> Result<Vec<Vec<u32>>> {
        self.graph.tokenize(texts, side)
    }

    /// A text's length in its batch: the marker added, queries expanded.
    pub(crate) fn batch_length(&self, ids: &[u32], purpose: Purpose) -> usize {
        match purpose {
            Purpose::Query => ids.len().max(self.cfg.min_query_length.unwrap_or(0)) + 1,
            _ => ids.len() + 1,
        }
    }

    pub(crate) fn parallelism(&self) -> usize {
        self.graph.parallelism()
    }

    /// The tokenizer, its length limit reduced by the marker.
    pub(crate) fn tokenizer(&self) -> &TextTokenizer {
        &self.graph.tokenizer
    }

    /// Token vectors of each document of a batch (marker inserted, punctuation and
    /// padding dropped, rows normalized).
    pub(crate) fn documents(&self, seqs: &[&[u32]], lane: Lane) -> Result<Vec<Array2<f32>>> {
        let inputs = insert_marker(self.graph.pad(seqs), self.cfg.document_marker_id);
        let hidden = self.run(&inputs, lane)?;
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
    }

    /// Token vectors of each query of a batch of equal expanded length. fastembed runs
    /// queries one at a time; queries of equal padded length give the same tensors
    /// batched (no query is padded beyond its own expansion).
    pub(crate) fn queries(&self, seqs: &[&[u32]], lane: Lane) -> Result<Vec<Array2<f32>>> {
        let min = self.cfg.min_query_length.unwrap_or(0);
        let width = seqs.iter().map(|s| s.len().max(min)).max().unwrap_or(0);
        let mut input_ids = Array2::from_elem((seqs.len(), width), i64::from(self.mask_id));
        let mut attention_mask = Array2::zeros((seqs.len(), width));
        for (r, seq) in seqs.iter().enumerate() {
            for (c, &id) in seq.iter().enumerate() {
                input_ids[[r, c]] = i64::from(id);
                attention_mask[[r, c]] = 1;
            }
        }
        let token_type_ids = Array2::zeros(input_ids.dim());
        let mut inputs = insert_marker(
            TokenBatch {
                input_ids,
                attention_mask,
                token_type_ids,
            },
            self.cfg.query_marker_id,
        );
        if self.cfg.query_attention_all_ones {
            inputs.attention_mask.fill(1);
        }
        let hidden = self.run(&inputs, lane)?;
        Ok(hidden
            .outer_iter()
            .enumerate()
            .map(|(r, vectors)| match self.cfg.style {
                // The graph's rows as they are, mask padding included.
                LateInteractionStyle::Colbert => vectors.to_owned(),
                LateInteractionStyle::Lateon => {
                    let mask = inputs.attention_mask.row(r);
                    let keep: Vec<usize> = (0..mask.len()).filter(|&j| mask[j] == 1).collect();
                    normalized_rows(vectors, &keep)
                }
            })
            .collect())
    }

    fn run(&self, inputs: &TokenBatch, lane: Lane) -> Result<Array3<f32>> {
        let out = self.graph.run(inputs, lane)?;
        let shape = out.shape().to_vec();
        out.into_dimensionality::<Ix3>()
            .ok()
            .filter(|h| (h.dim().0, h.dim().1) == inputs.input_ids.dim())
            .ok_or_else(|| Error::ModelMismatch {
                model: self.graph.name.clone(),
                reason: format!(
                    "output {:?} has shape {shape:?}, expected [batch, {}, dim]",
                    self.graph.output,
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
            let encoded = self.graph.tokenize(chunk, None)?;
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

/// The marker goes in as column 1 of every row, attended. Token types are zeros of the
/// new width (fastembed sizes them before inserting the marker, which such a graph
/// rejects).
fn insert_marker(batch: TokenBatch, marker: u32) -> TokenBatch {
    let input_ids = insert_column(&batch.input_ids, i64::from(marker));
    TokenBatch {
        token_type_ids: Array2::zeros(input_ids.dim()),
        attention_mask: insert_column(&batch.attention_mask, 1),
        input_ids,
    }
}

/// `a` with a column of `value` inserted at position 1 (at 0 when `a` has no columns).
fn insert_column(a: &Array2<i64>, value: i64) -> Array2<i64> {
    let (rows, width) = a.dim();
    let at = width.min(1);
    let mut out = Array2::from_elem((rows, width + 1), value);
    out.slice_mut(s![.., ..at]).assign(&a.slice(s![.., ..at]));
    out.slice_mut(s![.., at + 1..])
        .assign(&a.slice(s![.., at..]));
    out
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
        let batch = TokenBatch {
            input_ids: array![[101, 7, 102], [101, 102, 0]],
            attention_mask: array![[1, 1, 1], [1, 1, 0]],
            token_type_ids: array![[0, 0, 0], [0, 0, 0]],
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
