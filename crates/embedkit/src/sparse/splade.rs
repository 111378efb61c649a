//! SPLADE models: the graph's vocabulary logits, max-pooled over the real tokens.
//!
//! SPLADE++ weights a token `log(1 + relu(x))`. The inference-free opensearch v3 models
//! weight documents `log(1 + log(1 + relu(x)))` with special tokens dropped, and weight
//! queries from an IDF table (`idf.json`) without running the graph.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use ndarray::{ArrayViewD, Axis, Ix3};

use super::{tokens, SparseBackend, SparseEmbedding, SparseItem};
use crate::error::{Error, Result};
use crate::graph::TextGraph;
use crate::inputs::TokenBatch;
use crate::pipeline::{Prep, Purpose};
use crate::registry::{SparseKind, SparseModelDescription};
use crate::runtime::RuntimeOptions;
use crate::tokenize::{TextTokenizer, TokenizerOptions};

pub(crate) struct SpladeBackend {
    kind: SparseKind,
    graph: TextGraph,
    /// Inference-free models: ids of special tokens, and the IDF of each token id.
    special_ids: HashSet<u32>,
    idf: HashMap<u32, f32>,
}

impl SpladeBackend {
    pub(crate) fn load(
        desc: &SparseModelDescription,
        dir: &Path,
        runtime: &RuntimeOptions,
    ) -> Result<Self> {
        let graph = TextGraph::load(&desc.core, dir, runtime, TokenizerOptions::default())?;
        let tokenizer = &graph.tokenizer;
        let (special_ids, idf) = if desc.kind == SparseKind::IfSplade {
            let special: HashSet<u32> = tokenizer.special_token_to_id().values().copied().collect();
            (special, load_idf(&dir.join("idf.json"), tokenizer)?)
        } else {
            (HashSet::new(), HashMap::new())
        };
        Ok(SpladeBackend {
            kind: desc.kind,
            graph,
            special_ids,
            idf,
        })
    }

    fn pool(
        &self,
        logits: ArrayViewD<'_, f32>,
        batch: &TokenBatch,
    ) -> Result<Vec<SparseEmbedding>> {
        let shape = logits.shape().to_vec();
        let logits = logits
            .into_dimensionality::<Ix3>()
            .map_err(|_| Error::ModelMismatch {
                model: self.graph.name.clone(),
                reason: format!("expected logits [batch, seq, vocab], got shape {shape:?}"),
            })?;
        if (shape[0], shape[1]) != batch.attention_mask.dim() {
            return Err(Error::ModelMismatch {
                model: self.graph.name.clone(),
                reason: format!(
                    "logits {shape:?} do not match the batch {:?}",
                    batch.attention_mask.dim()
                ),
            });
        }
        let vocab = shape[2];
        Ok(logits
            .outer_iter()
            .zip(batch.attention_mask.outer_iter())
            .map(|(tokens, mask)| {
                // Largest logit per vocabulary entry over the real tokens, floored at 0
                // (relu); both activations are increasing, so pooling first is the same.
                let mut best = vec![0f32; vocab];
                for (tok, &m) in tokens.axis_iter(Axis(0)).zip(mask.iter()) {
                    if m == 0 {
                        continue;
                    }
                    for (b, &x) in best.iter_mut().zip(tok.iter()) {
                        if x > *b {
                            *b = x;
                        }
                    }
                }
                let mut out = SparseEmbedding::default();
                // Most of the vocabulary never rises above 0, whose weight is 0: only the
                // rest pays for the logarithms (30522 of them a text otherwise).
                for (id, x) in best.into_iter().enumerate().filter(|&(_, x)| x > 0.0) {
                    let w = match self.kind {
                        SparseKind::IfSplade => {
                            if self.special_ids.contains(&(id as u32)) {
                                0.0
                            } else {
                                x.ln_1p().ln_1p()
                            }
                        }
                        _ => x.ln_1p(),
                    };
                    if w != 0.0 {
                        out.indices.push(id as u32);
                        out.values.push(w);
                    }
                }
                out
            })
            .collect())
    }
}

/// `idf.json` maps token strings to weights; tokens outside the vocabulary are dropped.
fn load_idf(path: &Path, tokenizer: &TextTokenizer) -> Result<HashMap<u32, f32>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let table: BTreeMap<String, f64> =
        serde_json::from_str(&text).map_err(|e| Error::InvalidModel {
            path: path.to_path_buf(),
            reason: format!("expected a JSON object of token → weight: {e}"),
        })?;
    let vocab = tokenizer.inner().get_vocab(true);
    Ok(table
        .into_iter()
        .filter_map(|(token, idf)| vocab.get(&token).map(|&id| (id, idf as f32)))
        .collect())
}

impl SparseBackend for SpladeBackend {
    fn prepare(&self, texts: &[&str], call: Prep) -> Result<Vec<SparseItem>> {
        let ids = self.graph.tokenize(texts, call.truncation)?;
        if self.kind != SparseKind::IfSplade || call.purpose != Purpose::Query {
            return Ok(tokens(ids));
        }
        // Inference-free queries: each distinct non-special token weighs its IDF.
        Ok(ids
            .into_iter()
            .map(|ids| {
                SparseItem::Done(SparseEmbedding::from_pairs(
                    ids.into_iter()
                        .filter(|id| !self.special_ids.contains(id))
                        .filter_map(|id| self.idf.get(&id).map(|&w| (id, w))),
                ))
            })
            .collect())
    }

    fn graph(&self) -> Option<&TextGraph> {
        Some(&self.graph)
    }

    fn finish(
        &self,
        logits: ArrayViewD<'_, f32>,
        batch: &TokenBatch,
        _: Purpose,
    ) -> Result<Vec<SparseEmbedding>> {
        self.pool(logits, batch)
    }
}
