//! BM42: BM25 with the term frequency replaced by how much the [CLS] token attends to
//! each word in the last attention layer, as fastembed's `Qdrant/bm42-...` computes it.
//!
//! Word pieces are merged back into words (their weights summed), stopwords and
//! punctuation dropped, words stemmed (Snowball, English), each stem keeps its largest
//! weight `w`, scored `ln(1 + w)^alpha` under BM25's murmur3 token id. Queries weigh each
//! distinct stem 1 and run no model.

use std::collections::HashSet;
use std::path::Path;

use ndarray::{ArrayViewD, Axis, Ix4};
use rust_stemmers::{Algorithm, Stemmer};

use super::bm25::token_id;
use super::{tokens, SparseBackend, SparseEmbedding, SparseItem};
use crate::error::{Error, Result};
use crate::graph::TextGraph;
use crate::inputs::TokenBatch;
use crate::pipeline::{Prep, Purpose};
use crate::registry::SparseModelDescription;
use crate::runtime::RuntimeOptions;
use crate::tokenize::TokenizerOptions;

/// fastembed's `alpha` when none is given.
pub(crate) const DEFAULT_ALPHA: f64 = 0.5;

/// The graph output holding the last layer's attention probabilities.
const ATTENTION_OUTPUT: &str = "attention_6";

pub(crate) struct Bm42Backend {
    graph: TextGraph,
    /// Token text by id.
    vocab: Vec<Option<String>>,
    special: HashSet<String>,
    subword_prefix: String,
    stopwords: HashSet<String>,
    stemmer: Stemmer,
    alpha: f64,
}

impl Bm42Backend {
    pub(crate) fn load(
        desc: &SparseModelDescription,
        dir: &Path,
        runtime: &RuntimeOptions,
        alpha: f64,
    ) -> Result<Self> {
        if !alpha.is_finite() {
            return Err(Error::InvalidArgument("alpha must be finite".into()));
        }
        let graph = TextGraph::load(&desc.core, dir, runtime, TokenizerOptions::default())?
            .read_output(ATTENTION_OUTPUT)?;
        let vocab = super::token_texts(&graph.tokenizer);
        let special = graph
            .tokenizer
            .special_token_to_id()
            .keys()
            .cloned()
            .collect();
        let subword_prefix = continuing_subword_prefix(&dir.join("tokenizer.json"))?;
        let stopwords = super::read_stopwords(&dir.join("stopwords.txt"))?;
        Ok(Bm42Backend {
            graph,
            vocab,
            special,
            subword_prefix,
            stopwords,
            stemmer: Stemmer::create(Algorithm::English),
            alpha,
        })
    }

    /// Word pieces merged into words, each with the positions of its pieces; special
    /// tokens are skipped (fastembed's loop, quirks included).
    fn words<'t>(
        &self,
        tokens: impl Iterator<Item = (usize, &'t str)>,
    ) -> Vec<(String, Vec<usize>)> {
        let tokens = tokens.filter(|(_, t)| !self.special.contains(*t));
        super::merge_pieces(tokens, &self.subword_prefix)
    }

    /// Stopwords and single ASCII punctuation characters dropped, the rest stemmed.
    fn stems(&self, words: Vec<(String, Vec<usize>)>) -> Vec<(String, Vec<usize>)> {
        words
            .into_iter()
            .filter(|(w, _)| !self.stopwords.contains(w) && !is_ascii_punctuation(w))
            .map(|(w, pos)| (self.stemmer.stem(&w).into_owned(), pos))
            .collect()
    }

    /// Stems in first-seen order with their largest weight, scored as fastembed does.
    fn score(&self, stems: Vec<(String, f64)>) -> SparseEmbedding {
        let mut best: Vec<(String, f64)> = Vec::new();
        for (stem, w) in stems {
            match best.iter_mut().find(|(s, _)| *s == stem) {
                Some(entry) => entry.1 = entry.1.max(w),
                // Python's dict starts the maximum from 0.
                None => best.push((stem, w.max(0.0))),
            }
        }
        SparseEmbedding::from_pairs(
            best.into_iter()
                .map(|(s, w)| (token_id(&s), (1.0 + w).ln().powf(self.alpha) as f32)),
        )
    }
}

/// A one-character token in Python's `string.punctuation`.
fn is_ascii_punctuation(w: &str) -> bool {
    let mut c = w.chars();
    matches!((c.next(), c.next()), (Some(ch), None) if ch.is_ascii_punctuation())
}

/// The WordPiece prefix of continuing pieces (`##`), from `tokenizer.json`.
fn continuing_subword_prefix(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::InvalidModel {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    json["model"]["continuing_subword_prefix"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Error::InvalidModel {
            path: path.to_path_buf(),
            reason: "BM42 needs a WordPiece tokenizer (model.continuing_subword_prefix)".into(),
        })
}

impl Bm42Backend {
    /// The text of token `id` ("" for ids outside the vocabulary, as padding).
    fn token_text(&self, id: i64) -> &str {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.vocab.get(i))
            .and_then(|t| t.as_deref())
            .unwrap_or("")
    }

    /// The vector of each row of a batch from the graph's attention.
    fn score_batch(
        &self,
        attention: ndarray::ArrayViewD<'_, f32>,
        padded: &TokenBatch,
    ) -> Result<Vec<SparseEmbedding>> {
        let shape = attention.shape().to_vec();
        let attention = attention
            .into_dimensionality::<Ix4>()
            .ok()
            .filter(|a| a.dim().0 == padded.rows() && a.dim().2 == padded.input_ids.ncols())
            .ok_or_else(|| Error::ModelMismatch {
                model: self.graph.name.clone(),
                reason: format!(
                    "{ATTENTION_OUTPUT} has shape {shape:?}, expected [batch, heads, seq, seq]"
                ),
            })?;
        let mut out = Vec::with_capacity(padded.rows());
        for (row, doc) in attention.outer_iter().enumerate() {
            // The [CLS] row (attention from position 0), averaged over heads.
            let heads = doc.len_of(Axis(0)) as f64;
            let cls = doc.index_axis(Axis(1), 0);
            let mask = padded.attention_mask.row(row);
            let weights: Vec<f64> = (0..cls.len_of(Axis(1)))
                .map(|p| {
                    let mean = cls.column(p).iter().map(|&v| f64::from(v)).sum::<f64>() / heads;
                    mean * mask[p] as f64
                })
                .collect();
            let ids = padded.input_ids.row(row);
            let tokens = ids
                .iter()
                .enumerate()
                .map(|(pos, &id)| (pos, self.token_text(id)));
            let stems = self
                .stems(self.words(tokens))
                .into_iter()
                .map(|(s, pos)| (s, pos.iter().map(|&p| weights[p]).sum()))
                .collect();
            out.push(self.score(stems));
        }
        Ok(out)
    }
}

impl SparseBackend for Bm42Backend {
    fn prepare(&self, texts: &[&str], call: Prep) -> Result<Vec<SparseItem>> {
        let encoded = self.graph.tokenize(texts, call.truncation)?;
        if call.purpose != Purpose::Query {
            return Ok(tokens(encoded));
        }
        // Queries run no model: each distinct stem weighs 1.
        Ok(encoded
            .iter()
            .map(|ids| {
                let tokens = ids
                    .iter()
                    .enumerate()
                    .map(|(pos, &id)| (pos, self.token_text(i64::from(id))));
                SparseItem::Done(SparseEmbedding::from_pairs(
                    self.stems(self.words(tokens))
                        .into_iter()
                        .map(|(s, _)| (token_id(&s), 1.0)),
                ))
            })
            .collect())
    }

    fn graph(&self) -> Option<&TextGraph> {
        Some(&self.graph)
    }

    fn finish(
        &self,
        attention: ArrayViewD<'_, f32>,
        batch: &TokenBatch,
        _: Purpose,
    ) -> Result<Vec<SparseEmbedding>> {
        self.score_batch(attention, batch)
    }
}
