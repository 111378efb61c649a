//! BGE-M3: dense, sparse (lexical) and multi-vector (ColBERT) embeddings of a text from
//! one forward pass, as FlagEmbedding's `BGEM3FlagModel` computes them:
//!
//! - dense: the `<s>` (first) hidden state, L2-normalized;
//! - sparse: `relu(sparse_linear(h))` per token, the tokenizer's cls, eos, pad and unk
//!   tokens dropped, weights ≤ 0 dropped, a repeated token keeping its largest weight;
//! - multi-vector: `colbert_linear(h)` of every attended token after `<s>` (the final
//!   `</s>` included), each row L2-normalized.
//!
//! Queries are embedded exactly as documents. The heads come from torch checkpoints
//! beside the graph ([`M3Layout::HiddenState`], `BAAI/bge-m3`) or from the graph's own
//! outputs ([`M3Layout::Outputs`], `gpahal/bge-m3-onnx-int8`).

mod heads;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use ndarray::{Array2, ArrayView2, ArrayView3, Axis, Ix3};
use serde_json::Value;

use crate::engine::{Builder, Model, Stream};
use crate::error::{Error, Result};
use crate::graph::TextGraph;
use crate::handle::{CallOptions, Capability, Capable, TextOutput, Texts};
use crate::late_interaction::MultiVector;
use crate::pipeline::{Family, Load, NoSettings, Pipeline, Purpose};
use crate::postprocess::l2_normalize;
use crate::registry::{BgeM3ModelDescription, Kind, M3Layout};
use crate::runtime::Lane;
use crate::sparse::SparseEmbedding;
use crate::text::Embedding;
use crate::tokenize::TokenizerOptions;

use heads::Linear;

/// BGE-M3 embeddings with a model of the registry: all three outputs of each text from
/// one pass ([`M3Output`]), from the methods every text family shares (see [`Model`]).
/// [`EmbeddingModel`](crate::EmbeddingModel) hands out each output on its own.
///
/// ```no_run
/// use embedkit::BgeM3Embedding;
/// let model = BgeM3Embedding::builder("BAAI/bge-m3").build()?;
/// let out = model.embed(&["BGE-M3 gives three embeddings at once"], None)?;
/// assert_eq!(out[0].dense.len(), 1024);
/// # Ok::<(), embedkit::Error>(())
/// ```
pub type BgeM3Embedding = Model<BgeM3>;
/// Builder of a [`BgeM3Embedding`].
pub type BgeM3EmbeddingBuilder = Builder<BgeM3>;

/// What one text becomes: FlagEmbedding's `dense_vecs`, `lexical_weights` (as a sparse
/// vector, token ids ascending) and `colbert_vecs`.
#[derive(Debug, Clone, PartialEq)]
pub struct M3Output {
    pub dense: Embedding,
    pub sparse: SparseEmbedding,
    pub multi: MultiVector,
}

impl From<M3Output> for TextOutput {
    fn from(m: M3Output) -> Self {
        TextOutput {
            dense: Some(m.dense),
            sparse: Some(m.sparse),
            multi: Some(m.multi),
        }
    }
}

/// Where the outputs come from.
enum Heads {
    /// Applied here to the graph's last hidden state.
    Linear { sparse: Linear, colbert: Linear },
    /// The graph's outputs, by name: dense, sparse, ColBERT.
    Graph([String; 3]),
}

/// A loaded BGE-M3 model (see [`BgeM3Embedding`]).
pub struct BgeM3 {
    graph: TextGraph,
    heads: Heads,
    dim: usize,
    /// Token ids the lexical weights leave out: cls, eos, pad and unk.
    unused: HashSet<u32>,
}

impl Family for BgeM3 {
    type Description = BgeM3ModelDescription;
    type Settings = NoSettings;

    fn load(at: Load<'_, Self>) -> Result<BgeM3> {
        let desc = at.desc;
        let name = &desc.core.model;
        let graph = TextGraph::load(&desc.core, at.dir, at.runtime, TokenizerOptions::default())?;
        let mismatch = |reason: String| Error::ModelMismatch {
            model: name.clone(),
            reason,
        };
        let heads = match &desc.layout {
            M3Layout::HiddenState {
                sparse_head,
                colbert_head,
            } => {
                graph
                    .model
                    .check_output_width(name, &graph.output, desc.dim)?;
                let sparse = Linear::load(name, &at.dir.join(sparse_head), desc.dim)?;
                let colbert = Linear::load(name, &at.dir.join(colbert_head), desc.dim)?;
                if sparse.outputs() != 1 {
                    return Err(mismatch(format!(
                        "{sparse_head} gives {} weights per token, not 1",
                        sparse.outputs()
                    )));
                }
                Heads::Linear { sparse, colbert }
            }
            M3Layout::Outputs {
                dense,
                sparse,
                colbert,
            } => {
                let mut names = [dense, sparse, colbert].map(String::clone);
                for n in &mut names {
                    *n = graph.model.require_output(name, n)?;
                }
                Heads::Graph(names)
            }
        };
        let unused = unused_tokens(at.dir, &graph, name)?;
        Ok(BgeM3 {
            graph,
            heads,
            dim: desc.dim,
            unused,
        })
    }
}

/// The ids of the tokenizer's cls, eos, pad and unk tokens, named by
/// `special_tokens_map.json` (else `tokenizer_config.json`, else XLM-R's), as
/// FlagEmbedding takes them from its tokenizer.
fn unused_tokens(dir: &Path, graph: &TextGraph, model: &str) -> Result<HashSet<u32>> {
    let read = |file: &str| -> Value {
        std::fs::read_to_string(dir.join(file))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null)
    };
    let (map, config) = (
        read("special_tokens_map.json"),
        read("tokenizer_config.json"),
    );
    let content = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
            _ => None,
        }
    };
    let defaults = [
        ("cls_token", "<s>"),
        ("eos_token", "</s>"),
        ("pad_token", "<pad>"),
        ("unk_token", "<unk>"),
    ];
    let mut ids = HashSet::new();
    for (key, fallback) in defaults {
        let token = content(&map[key])
            .or_else(|| content(&config[key]))
            .unwrap_or_else(|| fallback.to_string());
        let id =
            graph
                .tokenizer
                .inner()
                .token_to_id(&token)
                .ok_or_else(|| Error::ModelMismatch {
                    model: model.to_string(),
                    reason: format!("the tokenizer has no {key} {token:?}"),
                })?;
        ids.insert(id);
    }
    Ok(ids)
}

impl BgeM3 {
    /// All three outputs of each row of a padded batch.
    fn outputs(&self, seqs: &[&[u32]], lane: Lane) -> Result<Vec<M3Output>> {
        let batch = self.graph.pad(seqs);
        let feed = batch.feed(&self.graph.model)?;
        let ids = &batch.input_ids;
        let mask = &batch.attention_mask;
        let shape_err = |what: &str, shape: &[usize]| Error::ModelMismatch {
            model: self.graph.name.clone(),
            reason: format!("its {what} output has shape {shape:?}"),
        };
        let (rows, width) = ids.dim();
        match &self.heads {
            Heads::Linear { sparse, colbert } => {
                self.graph
                    .model
                    .run_f32_view(lane, feed, &self.graph.output, |hidden| {
                        let shape = hidden.shape().to_vec();
                        let hidden = hidden
                            .into_dimensionality::<Ix3>()
                            .ok()
                            .filter(|h| h.dim() == (rows, width, self.dim))
                            .ok_or_else(|| shape_err("hidden-state", &shape))?;
                        (0..rows)
                            .map(|r| {
                                let h = hidden.index_axis(Axis(0), r);
                                let weights = sparse.apply(h).column(0).mapv(|w| w.max(0.0));
                                let attended = attended_after_first(mask.row(r));
                                let tail = h.select(Axis(0), &attended);
                                Ok(M3Output {
                                    dense: normalized(h.row(0).to_vec()),
                                    sparse: self.lexical(ids.row(r), mask.row(r), |j| weights[j]),
                                    multi: normalized_rows(colbert.apply(tail.view())),
                                })
                            })
                            .collect()
                    })
            }
            Heads::Graph(names) => self.graph.model.run_views(lane, feed, names, |views| {
                let [dense, sparse, colbert] = <[_; 3]>::try_from(views)
                    .map_err(|_| Error::Internal("the graph gave too few outputs".into()))?;
                let dense: ArrayView2<f32> = dense
                    .into_dimensionality()
                    .ok()
                    .filter(|d: &ArrayView2<f32>| d.dim() == (rows, self.dim))
                    .ok_or_else(|| shape_err("dense", &[]))?;
                let sparse: ArrayView3<f32> = sparse
                    .into_dimensionality()
                    .ok()
                    .filter(|s: &ArrayView3<f32>| s.dim() == (rows, width, 1))
                    .ok_or_else(|| shape_err("sparse", &[]))?;
                let colbert: ArrayView3<f32> = colbert
                    .into_dimensionality()
                    .ok()
                    .filter(|c: &ArrayView3<f32>| {
                        c.dim() == (rows, width.saturating_sub(1), self.dim)
                    })
                    .ok_or_else(|| shape_err("colbert", &[]))?;
                (0..rows)
                    .map(|r| {
                        // colbert row j is token j + 1
                        let attended: Vec<usize> = attended_after_first(mask.row(r))
                            .into_iter()
                            .map(|j| j - 1)
                            .collect();
                        let rows = colbert.index_axis(Axis(0), r).select(Axis(0), &attended);
                        Ok(M3Output {
                            dense: normalized(dense.row(r).to_vec()),
                            sparse: self
                                .lexical(ids.row(r), mask.row(r), |j| sparse[[r, j, 0]].max(0.0)),
                            multi: normalized_rows(rows),
                        })
                    })
                    .collect()
            }),
        }
    }

    /// One text's lexical weights from its per-token weights.
    fn lexical(
        &self,
        ids: ndarray::ArrayView1<'_, i64>,
        mask: ndarray::ArrayView1<'_, i64>,
        weight: impl Fn(usize) -> f32,
    ) -> SparseEmbedding {
        let mut best: BTreeMap<u32, f32> = BTreeMap::new();
        for j in (0..ids.len()).filter(|&j| mask[j] == 1) {
            let (id, w) = (ids[j] as u32, weight(j));
            if w > 0.0 && !self.unused.contains(&id) {
                let e = best.entry(id).or_insert(w);
                *e = e.max(w);
            }
        }
        SparseEmbedding::from_pairs(best)
    }
}

/// Positions of a row's attended tokens after the first (`<s>`).
fn attended_after_first(mask: ndarray::ArrayView1<'_, i64>) -> Vec<usize> {
    (1..mask.len()).filter(|&j| mask[j] == 1).collect()
}

fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    l2_normalize(&mut v);
    v
}

fn normalized_rows(mut m: Array2<f32>) -> Array2<f32> {
    for mut row in m.rows_mut() {
        if let Some(r) = row.as_slice_mut() {
            l2_normalize(r);
        }
    }
    m
}

impl Pipeline for BgeM3 {
    type Input<'a> = &'a str;
    type Item = Vec<u32>;
    type Output = M3Output;

    // Queries are embedded as documents: no instruction, no query marker.
    crate::graph::token_items!();

    fn run(&self, batch: &[&Vec<u32>], _: Purpose, lane: Lane) -> Result<Vec<M3Output>> {
        let seqs: Vec<&[u32]> = batch.iter().map(|s| s.as_slice()).collect();
        self.outputs(&seqs, lane)
    }
}

crate::graph::text_pipeline_of_graph!(BgeM3);

impl Model<BgeM3> {
    /// Dimensions of the dense vector and of each multi-vector row.
    pub fn embedding_size(&self) -> usize {
        self.description().dim
    }
}

impl Capable for Model<BgeM3> {
    fn kind(&self) -> Kind {
        Kind::BgeM3
    }
    fn capabilities(&self) -> &'static [Capability] {
        &[
            Capability::DenseText,
            Capability::SparseText,
            Capability::MultiVectorText,
            Capability::Tokens,
        ]
    }
    fn dim(&self) -> Option<usize> {
        Some(self.embedding_size())
    }
    fn dense_stream<'a>(&'a self, texts: Texts<'a>, o: &CallOptions) -> Stream<'a, Embedding> {
        self.each_output(texts, o, |m| m.dense)
    }
    fn sparse_stream<'a>(
        &'a self,
        texts: Texts<'a>,
        o: &CallOptions,
    ) -> Stream<'a, SparseEmbedding> {
        self.each_output(texts, o, |m| m.sparse)
    }
    fn multi_stream<'a>(&'a self, texts: Texts<'a>, o: &CallOptions) -> Stream<'a, MultiVector> {
        self.each_output(texts, o, |m| m.multi)
    }
    crate::handle::one_pass_outputs!();
    crate::handle::text_tokens!(count);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_normalize_and_zero_rows_stay_zero() {
        let m = normalized_rows(ndarray::array![[3.0f32, 4.0], [0.0, 0.0]]);
        assert_eq!(m.row(0).to_vec(), vec![0.6, 0.8]);
        assert_eq!(m.row(1).to_vec(), vec![0.0, 0.0]);
        let mask = ndarray::array![1i64, 1, 1, 0];
        assert_eq!(attended_after_first(mask.view()), vec![1, 2]);
    }
}
