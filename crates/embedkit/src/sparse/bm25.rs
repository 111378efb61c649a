//! BM25 term weights as sparse vectors, the same numbers and token ids as fastembed's
//! `Qdrant/bm25`, so an index written by one is queried by the other.
//!
//! A document is cut into words the way Python's `re` sees them (`\w`: letters, numbers
//! and `_` by Unicode category), lowercased, filtered (stopwords, punctuation, long words),
//! stemmed with Snowball, and each distinct stem weighted
//! `tf·(k+1) / (tf + k·(1 − b + b·|d|/avg_len))` under the id `|murmur3_32(stem) as i32|`.
//! Queries weigh each distinct stem 1 (Qdrant applies the IDF).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use ndarray::ArrayViewD;
use rust_stemmers::{Algorithm, Stemmer};
use unicode_general_category::{get_general_category, GeneralCategory as G};

use super::{SparseBackend, SparseEmbedding, SparseItem};
use crate::error::{Error, Result};
use crate::graph::TextGraph;
use crate::inputs::TokenBatch;
use crate::pipeline::{Prep, Purpose};

/// The languages fastembed's BM25 has Snowball stemmers (and, but for Tamil, stopwords) for.
pub const LANGUAGES: [&str; 18] = [
    "arabic",
    "danish",
    "dutch",
    "english",
    "finnish",
    "french",
    "german",
    "greek",
    "hungarian",
    "italian",
    "norwegian",
    "portuguese",
    "romanian",
    "russian",
    "spanish",
    "swedish",
    "tamil",
    "turkish",
];

/// BM25's parameters, with fastembed's defaults.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bm25Options {
    pub k: f64,
    pub b: f64,
    pub avg_len: f64,
    /// One of [`LANGUAGES`]; picks the stemmer and `<language>.txt` stopwords.
    pub language: String,
    /// Words longer than this (in characters) are dropped.
    pub token_max_length: usize,
    /// No stemming, and no default stopwords.
    pub disable_stemmer: bool,
    /// Stopwords to use instead of the model's file (lowercased); empty disables them.
    pub stopwords: Option<HashSet<String>>,
}

impl Default for Bm25Options {
    fn default() -> Self {
        Bm25Options {
            k: 1.2,
            b: 0.75,
            avg_len: 256.0,
            language: "english".into(),
            token_max_length: 40,
            disable_stemmer: false,
            stopwords: None,
        }
    }
}

fn algorithm(language: &str) -> Option<Algorithm> {
    Some(match language {
        "arabic" => Algorithm::Arabic,
        "danish" => Algorithm::Danish,
        "dutch" => Algorithm::Dutch,
        "english" => Algorithm::English,
        "finnish" => Algorithm::Finnish,
        "french" => Algorithm::French,
        "german" => Algorithm::German,
        "greek" => Algorithm::Greek,
        "hungarian" => Algorithm::Hungarian,
        "italian" => Algorithm::Italian,
        "norwegian" => Algorithm::Norwegian,
        "portuguese" => Algorithm::Portuguese,
        "romanian" => Algorithm::Romanian,
        "russian" => Algorithm::Russian,
        "spanish" => Algorithm::Spanish,
        "swedish" => Algorithm::Swedish,
        "tamil" => Algorithm::Tamil,
        "turkish" => Algorithm::Turkish,
        _ => return None,
    })
}

pub(crate) struct Bm25Backend {
    opts: Bm25Options,
    stemmer: Option<Stemmer>,
    stopwords: HashSet<String>,
}

impl Bm25Backend {
    pub(crate) fn load(dir: &Path, opts: Bm25Options) -> Result<Self> {
        let language = opts.language.to_lowercase();
        if opts.token_max_length == 0 {
            return Err(Error::InvalidArgument(
                "token_max_length must be positive".into(),
            ));
        }
        if !(opts.k.is_finite() && opts.b.is_finite() && opts.avg_len > 0.0) {
            return Err(Error::InvalidArgument(
                "k and b must be finite and avg_len positive".into(),
            ));
        }
        let stemmer = if opts.disable_stemmer {
            None
        } else {
            let algo = algorithm(&language).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{language} language is not supported; supported: {}",
                    LANGUAGES.join(", ")
                ))
            })?;
            Some(Stemmer::create(algo))
        };
        let stopwords = match &opts.stopwords {
            Some(words) => words.iter().map(|w| w.to_lowercase()).collect(),
            None if opts.disable_stemmer => HashSet::new(),
            None => load_stopwords(dir, &language)?,
        };
        Ok(Bm25Backend {
            opts: Bm25Options { language, ..opts },
            stemmer,
            stopwords,
        })
    }

    /// The stems of a text, in order, after all filters.
    fn stems(&self, text: &str) -> Vec<String> {
        words(text)
            .into_iter()
            .filter(|w| !is_punctuation_token(w))
            .filter(|w| !self.stopwords.contains(w))
            .filter(|w| w.chars().count() <= self.opts.token_max_length)
            .map(|w| match &self.stemmer {
                Some(s) => s.stem(&w).into_owned(),
                None => w,
            })
            .filter(|s| !s.is_empty())
            .collect()
    }

    fn document(&self, text: &str) -> SparseEmbedding {
        let stems = self.stems(text);
        let mut counts: BTreeMap<u32, (String, u32)> = BTreeMap::new();
        for s in &stems {
            let id = token_id(s);
            counts.entry(id).or_insert_with(|| (s.clone(), 0)).1 += 1;
        }
        let doc_len = stems.len() as f64;
        let Bm25Options { k, b, avg_len, .. } = self.opts;
        let norm = k * (1.0 - b + b * doc_len / avg_len);
        SparseEmbedding::from_pairs(counts.into_iter().map(|(id, (_, tf))| {
            let tf = f64::from(tf);
            (id, (tf * (k + 1.0) / (tf + norm)) as f32)
        }))
    }
}

/// Stopwords from `<language>.txt` beside the model, one per line; none if absent.
fn load_stopwords(dir: &Path, language: &str) -> Result<HashSet<String>> {
    super::read_stopwords(&dir.join(format!("{language}.txt")))
}

/// fastembed's token id: the absolute value of the signed 32-bit MurmurHash3 of the
/// stem's UTF-8 bytes (seed 0).
pub fn token_id(stem: &str) -> u32 {
    let mut bytes = stem.as_bytes();
    // Reading from a byte slice cannot fail.
    let h = murmur3::murmur3_32(&mut bytes, 0).unwrap_or(0);
    (h as i32).unsigned_abs()
}

/// Python's `\w` for `str` patterns: a letter, a number or `_`, by Unicode category.
fn is_word(c: char) -> bool {
    c == '_'
        || matches!(
            get_general_category(c),
            G::UppercaseLetter
                | G::LowercaseLetter
                | G::TitlecaseLetter
                | G::ModifierLetter
                | G::OtherLetter
                | G::DecimalNumber
                | G::LetterNumber
                | G::OtherNumber
        )
}

/// Python's `str.isspace`: Unicode White_Space plus the separators U+001C..U+001F.
fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The words of a text as fastembed cuts them: characters that are neither word nor
/// space become spaces, the text is lowercased (with Unicode's full mappings), then
/// split into runs of word characters.
pub fn words(text: &str) -> Vec<String> {
    let kept: String = text
        .chars()
        .map(|c| if is_word(c) || is_space(c) { c } else { ' ' })
        .collect();
    kept.to_lowercase()
        .split(|c: char| !is_word(c))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Python's `re.sub(r"[^\w\s]", " ", text).split()`: the runs of word characters, case
/// kept.
pub(crate) fn word_runs(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !is_word(c)).filter(|w| !w.is_empty())
}

/// A one-character string in a Unicode punctuation category (fastembed's
/// `get_all_punctuation()`); after [`words`] only `_` can be one.
pub(crate) fn is_punctuation_token(w: &str) -> bool {
    let mut chars = w.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => matches!(
            get_general_category(c),
            G::ConnectorPunctuation
                | G::DashPunctuation
                | G::OpenPunctuation
                | G::ClosePunctuation
                | G::InitialPunctuation
                | G::FinalPunctuation
                | G::OtherPunctuation
        ),
        _ => false,
    }
}

impl SparseBackend for Bm25Backend {
    /// Finished vectors: BM25 runs no model. Queries weigh each distinct stem 1. Texts
    /// are not truncated, so the call's truncation side has nothing to cut.
    fn prepare(&self, texts: &[&str], call: Prep) -> Result<Vec<SparseItem>> {
        Ok(texts
            .iter()
            .map(|t| {
                SparseItem::Done(match call.purpose {
                    Purpose::Query => SparseEmbedding::from_pairs(
                        self.stems(t).iter().map(|s| (token_id(s), 1.0)),
                    ),
                    _ => self.document(t),
                })
            })
            .collect())
    }

    fn graph(&self) -> Option<&TextGraph> {
        None
    }

    fn finish(
        &self,
        _: ArrayViewD<'_, f32>,
        _: &TokenBatch,
        _: Purpose,
    ) -> Result<Vec<SparseEmbedding>> {
        Err(Error::Unsupported("BM25 runs no model".into()))
    }

    /// fastembed counts BM25's words.
    fn token_count(&self, texts: &[&str]) -> Result<usize> {
        Ok(texts.iter().map(|t| words(t).len()).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_follow_pythons_regex_classes() {
        assert_eq!(
            words("Hello, World! it's 3.14"),
            vec!["hello", "world", "it", "s", "3", "14"]
        );
        assert_eq!(words("snake_case __x"), vec!["snake_case", "__x"]);
        // A combining mark is not a word character for Python's re.
        assert_eq!(words("नमस्ते"), vec!["नमस", "त"]);
        assert!(words("   \u{1c}  ").is_empty());
        // Final sigma, as Python's str.lower.
        assert_eq!(words("ΟΔΟΣ"), vec!["οδος"]);
    }

    #[test]
    fn token_ids_are_abs_of_signed_murmur3() {
        // Values of Python's abs(mmh3.hash(s)).
        assert_eq!(token_id(""), 0);
        assert_eq!(token_id("hello"), 613_153_351);
        assert_eq!(token_id("foo"), 156_908_512);
    }

    #[test]
    fn lone_underscore_is_punctuation() {
        assert!(is_punctuation_token("_"));
        assert!(!is_punctuation_token("__"));
        assert!(!is_punctuation_token("a"));
    }
}
