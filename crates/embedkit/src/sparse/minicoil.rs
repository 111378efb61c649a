//! MiniCOIL (`Qdrant/minicoil-v1`): BM25 whose known words carry a 4-d meaning.
//!
//! The graph gives one vector per token. Tokens are merged into words (`##` pieces), each
//! word resolved to the MiniCOIL vocabulary (as is, through the stem mapping, or by its
//! Snowball stem). A known word's token vectors are averaged over the document, projected
//! by that word's matrix of `minicoil.triplet.model.npy` and squashed by `tanh`; the unit
//! result, scaled by the word's BM25 term frequency, fills indices `id·4 .. id·4+3`.
//! Unknown words fall back to BM25 (cleaned and stemmed, hashed above the vocabulary's
//! index range). Every step follows fastembed 0.9.1 so indexes are interchangeable.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use memmap2::Mmap;
use ndarray::{Array3, ArrayView2, ArrayView3, ArrayViewD, Axis, Ix3};
use ndarray_npy::{ReadNpyExt, ViewNpyExt};
use rust_stemmers::{Algorithm, Stemmer};
use serde::Deserialize;

use super::bm25::{is_punctuation_token, token_id, word_runs};
use super::{merge_pieces, tokens, SparseBackend, SparseEmbedding, SparseItem};
use crate::error::{Error, Result};
use crate::graph::TextGraph;
use crate::inputs::TokenBatch;
use crate::pipeline::{Prep, Purpose};
use crate::registry::SparseModelDescription;
use crate::runtime::RuntimeOptions;
use crate::tokenize::TokenizerOptions;

const WEIGHTS_FILE: &str = "minicoil.triplet.model.npy";
const VOCAB_FILE: &str = "minicoil.triplet.model.vocab";
const STOPWORDS_FILE: &str = "stopwords.txt";
/// Tokens fastembed never keeps as unknown words, besides punctuation and stopwords.
const SPECIAL_TOKENS: [&str; 5] = ["[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"];
/// Index bucket width; unknown words start two buckets past the vocabulary's indices.
const GAP: u64 = 32_000;
const TOKEN_MAX_LENGTH: usize = 40;

/// MiniCOIL's BM25 parameters, with fastembed's defaults.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MinicoilOptions {
    pub k: f64,
    pub b: f64,
    pub avg_len: f64,
}

impl Default for MinicoilOptions {
    fn default() -> Self {
        MinicoilOptions {
            k: 1.2,
            b: 0.75,
            avg_len: 150.0,
        }
    }
}

/// `minicoil.triplet.model.vocab`: the words (id = position + 1; 0 is "unknown") and
/// stem → word.
#[derive(Deserialize)]
struct VocabFile {
    vocab: Vec<String>,
    stem_mapping: HashMap<String, String>,
}

/// The per-word matrices `[words + 1, hidden, dim]`, memory-mapped like fastembed's
/// `np.load(mmap_mode="r")` so that only the rows a text uses are paged in.
enum Weights {
    Mapped(Mmap),
    Owned(Array3<f32>),
}

impl Weights {
    fn load(path: &Path) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidModel {
            path: path.to_path_buf(),
            reason,
        };
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the map is read-only, and model files are only ever replaced by rename,
        // never rewritten in place, so the mapped bytes do not change under us.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        if ArrayView3::<f32>::view_npy(&map).is_ok() {
            return Ok(Weights::Mapped(map));
        }
        // Big-endian, Fortran order or misaligned data cannot be viewed in place.
        let owned = Array3::<f32>::read_npy(&map[..])
            .map_err(|e| invalid(format!("expected a 3-d float32 .npy array: {e}")))?;
        Ok(Weights::Owned(owned))
    }

    fn view(&self) -> Result<ArrayView3<'_, f32>> {
        match self {
            Weights::Mapped(map) => {
                ArrayView3::<f32>::view_npy(map).map_err(|e| Error::InvalidModel {
                    path: PathBuf::from(WEIGHTS_FILE),
                    reason: e.to_string(),
                })
            }
            Weights::Owned(a) => Ok(a.view()),
        }
    }
}

/// One entry of a document's bag of words.
#[derive(Debug, Clone)]
struct Word {
    count: usize,
    /// MiniCOIL word id, or `None` for a word scored like BM25.
    id: Option<u32>,
    embedding: Vec<f64>,
}

pub(crate) struct MinicoilBackend {
    graph: TextGraph,
    /// Token text by id.
    tokens: Vec<Option<String>>,
    words: Vec<String>,
    word_ids: HashMap<String, u32>,
    stem_mapping: HashMap<String, String>,
    stopwords: HashSet<String>,
    stemmer: Stemmer,
    weights: Weights,
    weights_path: PathBuf,
    /// Output dimensions per known word (4 for minicoil-v1).
    dim: usize,
    opts: MinicoilOptions,
}

impl MinicoilBackend {
    pub(crate) fn load(
        desc: &SparseModelDescription,
        dir: &Path,
        runtime: &RuntimeOptions,
        opts: MinicoilOptions,
    ) -> Result<Self> {
        if ![opts.k, opts.b, opts.avg_len].iter().all(|x| x.is_finite()) || opts.avg_len <= 0.0 {
            return Err(Error::InvalidArgument(
                "MiniCOIL's k, b and avg_len must be finite, avg_len > 0".into(),
            ));
        }
        let vocab_path = dir.join(VOCAB_FILE);
        let text = std::fs::read_to_string(&vocab_path).map_err(|e| Error::io(&vocab_path, e))?;
        let vocab: VocabFile = serde_json::from_str(&text).map_err(|e| Error::InvalidModel {
            path: vocab_path.clone(),
            reason: format!("expected {{\"vocab\": [...], \"stem_mapping\": {{...}}}}: {e}"),
        })?;
        // A repeated word takes its last position, as a Python dict built in order does.
        let word_ids: HashMap<String, u32> = vocab
            .vocab
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i as u32 + 1))
            .collect();
        if let Some((stem, word)) = vocab
            .stem_mapping
            .iter()
            .find(|(_, w)| !word_ids.contains_key(*w))
        {
            return Err(Error::InvalidModel {
                path: vocab_path,
                reason: format!("stem_mapping maps {stem:?} to {word:?}, which is not in vocab"),
            });
        }

        let weights_path = dir.join(WEIGHTS_FILE);
        let weights = Weights::load(&weights_path)?;
        let (rows, _, dim) = weights.view()?.dim();
        if rows < vocab.vocab.len() + 1 {
            return Err(Error::InvalidModel {
                path: weights_path,
                reason: format!(
                    "{rows} word matrices for a vocabulary of {} words (needs one more, for \
                     the unknown word)",
                    vocab.vocab.len()
                ),
            });
        }

        let graph = TextGraph::load(&desc.core, dir, runtime, TokenizerOptions::default())?;
        let tokens = super::token_texts(&graph.tokenizer);
        let stopwords = super::read_stopwords(&dir.join(STOPWORDS_FILE))?;
        Ok(MinicoilBackend {
            graph,
            tokens,
            words: vocab.vocab,
            word_ids,
            stem_mapping: vocab.stem_mapping,
            stopwords,
            stemmer: Stemmer::create(Algorithm::English),
            weights,
            weights_path,
            dim,
            opts,
        })
    }

    /// A word's MiniCOIL id: 0 for stopwords and unknown words.
    fn resolve(&self, word: &str) -> u32 {
        if self.stopwords.contains(word) {
            return 0;
        }
        if let Some(&id) = self.word_ids.get(word) {
            return id;
        }
        let mapped = |stem: &str| {
            self.stem_mapping
                .get(stem)
                .and_then(|w| self.word_ids.get(w))
                .copied()
        };
        mapped(word)
            .or_else(|| mapped(&self.stemmer.stem(word)))
            .unwrap_or(0)
    }

    fn unwanted(&self, word: &str) -> bool {
        is_punctuation_token(word)
            || SPECIAL_TOKENS.contains(&word)
            || self.stopwords.contains(word)
    }

    /// The bag of words of one document: its real tokens' ids and their graph vectors
    /// (`[tokens, hidden]`).
    fn bag(&self, ids: &[i64], vectors: ArrayView2<'_, f32>) -> Result<IndexMap<String, Word>> {
        let texts = ids
            .iter()
            .map(|&id| {
                usize::try_from(id)
                    .ok()
                    .and_then(|i| self.tokens.get(i))
                    .and_then(|t| t.as_deref())
                    .ok_or_else(|| Error::ModelMismatch {
                        model: self.graph.name.clone(),
                        reason: format!("token id {id} is not in the tokenizer's vocabulary"),
                    })
            })
            .collect::<Result<Vec<&str>>>()?;

        // Resolve each word; its pieces' positions take its MiniCOIL id.
        let mut position_ids = vec![0u32; ids.len()];
        let mut counts: HashMap<u32, usize> = HashMap::new();
        let mut unknown: IndexMap<String, usize> = IndexMap::new();
        for (word, positions) in merge_pieces(texts.iter().copied().enumerate(), "##") {
            let id = self.resolve(&word);
            for p in positions {
                position_ids[p] = id;
            }
            if id == 0 {
                *unknown.entry(word).or_default() += 1;
            } else {
                *counts.entry(id).or_default() += 1;
            }
        }

        // Known words in ascending id order (fastembed's `np.unique`), then unknown words
        // in order of first appearance; a later entry of the same spelling replaces an
        // earlier one in place, as a dict assignment does.
        let mut bag: IndexMap<String, Word> = IndexMap::new();
        let mut known: Vec<u32> = counts.keys().copied().collect();
        known.sort_unstable();
        let weights = self.weights.view()?;
        let hidden = vectors.ncols();
        for id in known {
            // Mean of the word's token vectors (accumulated in f32 like numpy), through
            // the word's matrix, then tanh.
            let mut sum = vec![0f32; hidden];
            let mut n = 0u32;
            for (p, _) in position_ids.iter().enumerate().filter(|(_, &w)| w == id) {
                for (s, &v) in sum.iter_mut().zip(vectors.row(p)) {
                    *s += v;
                }
                n += 1;
            }
            let mean: Vec<f32> = sum
                .iter()
                .map(|&s| (f64::from(s) / f64::from(n)) as f32)
                .collect();
            let matrix = weights.index_axis(Axis(0), id as usize);
            let embedding = matrix
                .axis_iter(Axis(1))
                .map(|column| {
                    let dot: f64 = mean
                        .iter()
                        .zip(column)
                        .map(|(&m, &w)| f64::from(m) * f64::from(w))
                        .sum();
                    f64::from((dot as f32).tanh())
                })
                .collect();
            bag.insert(
                self.words[id as usize - 1].clone(),
                Word {
                    count: counts[&id],
                    id: Some(id),
                    embedding,
                },
            );
        }
        for (word, count) in unknown {
            bag.insert(
                word,
                Word {
                    count,
                    id: None,
                    embedding: Vec::new(),
                },
            );
        }
        Ok(bag)
    }

    /// fastembed's `clean_words`: unknown words lose punctuation, special tokens and
    /// stopwords, are split at non-word characters and stemmed like BM25 does; equal
    /// stems (also a known word's spelling) add up their counts.
    fn clean(&self, bag: IndexMap<String, Word>) -> IndexMap<String, Word> {
        let mut out: IndexMap<String, Word> = IndexMap::new();
        for (word, entry) in bag {
            if entry.id.is_some() {
                out.insert(word, entry);
                continue;
            }
            if self.unwanted(&word) {
                continue;
            }
            for piece in word_runs(&word) {
                let stem = self.stemmer.stem(piece);
                if stem.chars().count() > TOKEN_MAX_LENGTH || self.unwanted(&stem) {
                    continue;
                }
                match out.get_mut(stem.as_ref()) {
                    Some(existing) => existing.count += entry.count,
                    None => {
                        out.insert(stem.into_owned(), entry.clone());
                    }
                }
            }
        }
        out
    }

    /// The sparse vector of a cleaned bag; documents weigh words by BM25's term
    /// frequency, queries by 1.
    fn vector(&self, bag: IndexMap<String, Word>, query: bool) -> SparseEmbedding {
        let dim = self.dim as u64;
        // fastembed's vocabulary size counts distinct words, plus one for "unknown".
        let vocab_size = self.word_ids.len() as u64 + 1;
        let unknown_shift = ((vocab_size * dim) / GAP + 2) * GAP;
        let range = (i32::MAX as u64).saturating_sub(unknown_shift).max(1);
        let bag = self.clean(bag);
        let length: usize = bag.values().map(|w| w.count).sum();
        let MinicoilOptions { k, b, avg_len } = self.opts;
        let mut pairs: Vec<(u32, f32)> = Vec::new();
        for (word, entry) in &bag {
            let tf = if query {
                1.0
            } else {
                let n = entry.count as f64;
                n * (k + 1.0) / (n + k * (1.0 - b + b * length as f64 / avg_len))
            };
            match entry.id {
                Some(id) => {
                    let norm = entry.embedding.iter().map(|x| x * x).sum::<f64>().sqrt();
                    let scale = if norm < 1e-8 { 1.0 } else { norm };
                    for (j, x) in entry.embedding.iter().enumerate() {
                        pairs.push((
                            (u64::from(id) * dim + j as u64) as u32,
                            (x / scale * tf) as f32,
                        ));
                    }
                }
                None => {
                    let index = unknown_shift + u64::from(token_id(word)) % range;
                    pairs.push((index as u32, tf as f32));
                }
            }
        }
        merge_duplicates(pairs)
    }
}

/// Two unknown words can hash to one index (fastembed then emits it twice, which Qdrant
/// rejects); their weights are added instead.
fn merge_duplicates(pairs: Vec<(u32, f32)>) -> SparseEmbedding {
    let mut map = std::collections::BTreeMap::new();
    for (i, v) in pairs {
        *map.entry(i).or_insert(0.0) += v;
    }
    SparseEmbedding::from_pairs(map)
}

impl MinicoilBackend {
    /// The vector of each row of a batch from the graph's token vectors.
    fn vectors(
        &self,
        hidden: ArrayViewD<'_, f32>,
        padded: &TokenBatch,
        query: bool,
    ) -> Result<Vec<SparseEmbedding>> {
        let shape = hidden.shape().to_vec();
        let hidden = hidden
            .into_dimensionality::<Ix3>()
            .ok()
            .filter(|h| (h.dim().0, h.dim().1) == padded.input_ids.dim())
            .ok_or_else(|| Error::ModelMismatch {
                model: self.graph.name.clone(),
                reason: format!(
                    "output {:?} has shape {shape:?}, expected [batch, seq, hidden]",
                    self.graph.output
                ),
            })?;
        let expected = self.weights.view()?.len_of(Axis(1));
        if hidden.dim().2 != expected {
            return Err(Error::ModelMismatch {
                model: self.graph.name.clone(),
                reason: format!(
                    "the graph's token vectors have {} dimensions, {} expects {expected}",
                    hidden.dim().2,
                    self.weights_path.display()
                ),
            });
        }
        let mut out = Vec::with_capacity(padded.rows());
        for (row, doc) in hidden.outer_iter().enumerate() {
            let mask = padded.attention_mask.row(row);
            let real: Vec<usize> = (0..mask.len()).filter(|&p| mask[p] == 1).collect();
            let ids: Vec<i64> = real.iter().map(|&p| padded.input_ids[[row, p]]).collect();
            let vectors = doc.select(Axis(0), &real);
            let bag = self.bag(&ids, vectors.view())?;
            out.push(self.vector(bag, query));
        }
        Ok(out)
    }
}

impl SparseBackend for MinicoilBackend {
    fn prepare(&self, texts: &[&str], call: Prep) -> Result<Vec<SparseItem>> {
        Ok(tokens(self.graph.tokenize(texts, call.truncation)?))
    }

    fn graph(&self) -> Option<&TextGraph> {
        Some(&self.graph)
    }

    fn finish(
        &self,
        hidden: ArrayViewD<'_, f32>,
        batch: &TokenBatch,
        purpose: Purpose,
    ) -> Result<Vec<SparseEmbedding>> {
        self.vectors(hidden, batch, purpose == Purpose::Query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_merge_like_fastembed() {
        let words = merge_pieces(
            ["[CLS]", "swim", "##ming", "##", "pool", "[SEP]"]
                .into_iter()
                .enumerate(),
            "##",
        );
        let got: Vec<(&str, &[usize])> = words
            .iter()
            .map(|(w, p)| (w.as_str(), p.as_slice()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("[CLS]", &[0][..]),
                ("swimming", &[1, 2, 3][..]),
                ("pool", &[4][..]),
                ("[SEP]", &[5][..])
            ]
        );
        // A leading bare "##" opens no word; its position goes to the next word.
        let words = merge_pieces(["##", "a"].into_iter().enumerate(), "##");
        assert_eq!(words, vec![("a".to_string(), vec![0, 1])]);
    }

    #[test]
    fn colliding_indices_add_up() {
        let v = merge_duplicates(vec![(7, 1.0), (3, 0.5), (7, 0.25)]);
        assert_eq!(v.indices, vec![3, 7]);
        assert_eq!(v.values, vec![0.5, 1.25]);
    }
}
