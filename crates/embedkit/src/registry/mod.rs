//! Model descriptions as data. Each family has one table (a JSON file compiled into the
//! binary); a lookup returns a description and no family logic lives here.
//!
//! Names, dims, sources and files are those of fastembed 0.9.1's `list_supported_models`
//! (a test compares them with the oracle's listing); `pipeline`, `max_length` and the
//! prefixes are embedkit's own annotations of how each model is run and used.

use std::collections::BTreeMap;
use std::sync::{LazyLock, RwLock};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where a model's files come from, as fastembed's `ModelSource`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ModelSource {
    /// A Hugging Face repository id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hf: Option<String>,
    /// A URL of a `.tar.gz` archive (legacy fastembed models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The revision of the repo to use (a branch, tag or commit); `main` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The archive unpacks to `fast-<name>/` (fastembed's legacy layout).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deprecated_tar_struct: bool,
}

impl ModelSource {
    pub fn hf(repo: impl Into<String>) -> Self {
        ModelSource {
            hf: Some(repo.into()),
            ..Default::default()
        }
    }
    pub fn url(url: impl Into<String>) -> Self {
        ModelSource {
            url: Some(url.into()),
            ..Default::default()
        }
    }
}

/// How token vectors become one vector, as fastembed's `PoolingType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Pooling {
    /// The first token's vector; a 2-D (already pooled) output is taken as it is.
    Cls,
    /// The mean over tokens the attention mask marks as real.
    Mean,
    /// The vector of the last real token (decoder models).
    LastToken,
    /// The model outputs sentence vectors already.
    Disabled,
}

impl std::str::FromStr for Pooling {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().replace('-', "_").as_str() {
            "CLS" => Ok(Pooling::Cls),
            "MEAN" => Ok(Pooling::Mean),
            "LAST_TOKEN" | "LAST" => Ok(Pooling::LastToken),
            "DISABLED" | "NONE" => Ok(Pooling::Disabled),
            _ => Err(Error::InvalidArgument(format!(
                "unknown pooling {s:?}; expected cls, mean, last_token or disabled"
            ))),
        }
    }
}

/// Which output of the ONNX graph holds the embeddings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OutputSelector {
    Index(usize),
    Name(String),
}

impl Default for OutputSelector {
    fn default() -> Self {
        OutputSelector::Index(0)
    }
}

/// How a dense model is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DenseKind {
    /// A transformer in an ONNX file.
    #[default]
    Onnx,
    /// A model2vec lookup table in `model.safetensors`.
    Static,
}

/// The processing a dense model needs around its graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DensePipeline {
    pub pooling: Pooling,
    pub normalize: bool,
    #[serde(default, skip_serializing_if = "is_default_output")]
    pub output: OutputSelector,
    /// Pad every batch to the truncation length (models that pool a fixed position).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pad_to_max_length: bool,
    #[serde(default, skip_serializing_if = "is_default_kind")]
    pub kind: DenseKind,
}

fn is_default_output(o: &OutputSelector) -> bool {
    *o == OutputSelector::default()
}
fn is_default_kind(k: &DenseKind) -> bool {
    *k == DenseKind::default()
}

/// One dense text model, as fastembed's `DenseModelDescription` plus how to run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseModelDescription {
    pub model: String,
    pub dim: usize,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub license: String,
    #[serde(rename = "size_in_GB", default)]
    pub size_in_gb: f64,
    pub sources: ModelSource,
    pub model_file: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_files: Vec<String>,
    /// Task ids of multi-task models (jina-embeddings-v3).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tasks: BTreeMap<String, i64>,
    /// The context the model was trained for, in tokens (documentation; truncation itself
    /// follows the model's `tokenizer_config.json`, as fastembed does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    pub pipeline: DensePipeline,
    /// Text the model's authors put before queries; applied only on request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_prefix: Option<String>,
    /// Text the model's authors put before documents; applied only on request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passage_prefix: Option<String>,
    /// Registered at run time with `add_custom_model`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub custom: bool,
    /// Trained so that a prefix of the vector, renormalized, is a good smaller vector
    /// (Matryoshka representation learning): the server's `dimensions` applies only here.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub matryoshka: bool,
}

static BUILTIN_DENSE: LazyLock<Vec<DenseModelDescription>> = LazyLock::new(|| {
    // The table is compiled in and checked by a unit test, so a parse failure is a build bug.
    serde_json::from_str(include_str!("dense.json")).expect("registry/dense.json is valid")
});

static CUSTOM_DENSE: RwLock<Vec<DenseModelDescription>> = RwLock::new(Vec::new());

/// Every dense text model: the built-in table, then models added with `add_custom_model`.
pub fn dense_models() -> Vec<DenseModelDescription> {
    let mut all = BUILTIN_DENSE.clone();
    all.extend(
        CUSTOM_DENSE
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned(),
    );
    all
}

/// The description of `name` (case-insensitive, as fastembed), or an error that lists
/// the closest names.
pub fn dense_model(name: &str) -> Result<DenseModelDescription> {
    let all = dense_models();
    find(&all, name, |d| &d.model).cloned()
}

/// Registers a dense model, as fastembed's `TextEmbedding.add_custom_model`.
pub fn add_dense_model(mut desc: DenseModelDescription) -> Result<()> {
    if desc.model.trim().is_empty() {
        return Err(Error::InvalidArgument("model name is empty".into()));
    }
    if desc.dim == 0 {
        return Err(Error::InvalidArgument("dim must be positive".into()));
    }
    if desc.sources.hf.is_none() && desc.sources.url.is_none() {
        return Err(Error::InvalidArgument(
            "at least one source (hf or url) must be set".into(),
        ));
    }
    let mut custom = CUSTOM_DENSE.write().unwrap_or_else(|e| e.into_inner());
    let taken = BUILTIN_DENSE
        .iter()
        .chain(custom.iter())
        .any(|d| d.model.eq_ignore_ascii_case(&desc.model));
    if taken {
        return Err(Error::DuplicateModel(desc.model));
    }
    desc.custom = true;
    custom.push(desc);
    Ok(())
}

/// How a sparse model computes its vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SparseKind {
    /// SPLADE++: log(1 + relu(logits)), max-pooled over real tokens.
    Splade,
    /// Inference-free SPLADE (opensearch v3): documents through the graph with a double
    /// log, special tokens dropped; queries from an IDF table, no inference.
    IfSplade,
    Bm25,
    Bm42,
    Minicoil,
}

/// One sparse text model, as fastembed's `SparseModelDescription`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SparseModelDescription {
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab_size: Option<usize>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub license: String,
    #[serde(rename = "size_in_GB", default)]
    pub size_in_gb: f64,
    pub sources: ModelSource,
    pub model_file: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_files: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_idf: Option<bool>,
    pub kind: SparseKind,
}

static BUILTIN_SPARSE: LazyLock<Vec<SparseModelDescription>> = LazyLock::new(|| {
    // Compiled in and checked by a unit test, so a parse failure is a build bug.
    serde_json::from_str(include_str!("sparse.json")).expect("registry/sparse.json is valid")
});

/// Every sparse text model, in fastembed's order.
pub fn sparse_models() -> Vec<SparseModelDescription> {
    BUILTIN_SPARSE.clone()
}

/// The description of sparse model `name` (case-insensitive).
pub fn sparse_model(name: &str) -> Result<SparseModelDescription> {
    find(&BUILTIN_SPARSE, name, |d| &d.model).cloned()
}

/// How a ColBERT-style model's outputs become token vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LateInteractionStyle {
    /// ColBERT: documents drop pad-token ids too; queries keep every row, as the graph
    /// returns them.
    Colbert,
    /// PyLate exports (LateOn): queries keep attended rows, normalized; pad ids are told
    /// apart by the attention mask only.
    Lateon,
}

/// The marker tokens and lengths of a ColBERT-style model (fastembed's class constants).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColbertConfig {
    /// Inserted after the first token of every query.
    pub query_marker_id: u32,
    /// Inserted after the first token of every document.
    pub document_marker_id: u32,
    /// Queries are padded with this token up to `min_query_length`.
    pub mask_token: String,
    /// `None`: queries are not expanded.
    pub min_query_length: Option<usize>,
    /// Taken off the tokenizer's truncation length to leave room for the marker.
    pub reserved_marker_tokens: usize,
    /// Documents drop the tokens of ASCII punctuation characters.
    pub skip_punctuation: bool,
    /// Queries attend to their mask padding too (jina-colbert-v2).
    pub query_attention_all_ones: bool,
    pub style: LateInteractionStyle,
}

/// One late-interaction text model, as fastembed's `DenseModelDescription` plus its
/// ColBERT configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LateInteractionModelDescription {
    pub model: String,
    /// Dimensions of each token vector.
    pub dim: usize,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub license: String,
    #[serde(rename = "size_in_GB", default)]
    pub size_in_gb: f64,
    pub sources: ModelSource,
    pub model_file: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_files: Vec<String>,
    pub colbert: ColbertConfig,
}

static BUILTIN_LATE: LazyLock<Vec<LateInteractionModelDescription>> = LazyLock::new(|| {
    // Compiled in and checked by a unit test, so a parse failure is a build bug.
    serde_json::from_str(include_str!("late_interaction.json"))
        .expect("registry/late_interaction.json is valid")
});

/// Every late-interaction text model, in fastembed's order.
pub fn late_interaction_models() -> Vec<LateInteractionModelDescription> {
    BUILTIN_LATE.clone()
}

/// The description of late-interaction model `name` (case-insensitive).
pub fn late_interaction_model(name: &str) -> Result<LateInteractionModelDescription> {
    find(&BUILTIN_LATE, name, |d| &d.model).cloned()
}

/// One cross-encoder reranker, as fastembed's `BaseModelDescription`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RerankerModelDescription {
    pub model: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub license: String,
    #[serde(rename = "size_in_GB", default)]
    pub size_in_gb: f64,
    pub sources: ModelSource,
    pub model_file: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_files: Vec<String>,
    /// Registered at run time with `add_custom_model`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub custom: bool,
}

static BUILTIN_RERANK: LazyLock<Vec<RerankerModelDescription>> = LazyLock::new(|| {
    // Compiled in and checked by a unit test, so a parse failure is a build bug.
    serde_json::from_str(include_str!("rerank.json")).expect("registry/rerank.json is valid")
});

static CUSTOM_RERANK: RwLock<Vec<RerankerModelDescription>> = RwLock::new(Vec::new());

/// Every reranker: the built-in table, then models added with `add_custom_model`.
pub fn reranker_models() -> Vec<RerankerModelDescription> {
    let mut all = BUILTIN_RERANK.clone();
    all.extend(
        CUSTOM_RERANK
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned(),
    );
    all
}

/// The description of reranker `name` (case-insensitive).
pub fn reranker_model(name: &str) -> Result<RerankerModelDescription> {
    let all = reranker_models();
    find(&all, name, |d| &d.model).cloned()
}

/// Registers a reranker, as fastembed's `TextCrossEncoder.add_custom_model`.
pub fn add_reranker_model(mut desc: RerankerModelDescription) -> Result<()> {
    if desc.model.trim().is_empty() {
        return Err(Error::InvalidArgument("model name is empty".into()));
    }
    if desc.sources.hf.is_none() && desc.sources.url.is_none() {
        return Err(Error::InvalidArgument(
            "at least one source (hf or url) must be set".into(),
        ));
    }
    let mut custom = CUSTOM_RERANK.write().unwrap_or_else(|e| e.into_inner());
    let taken = BUILTIN_RERANK
        .iter()
        .chain(custom.iter())
        .any(|d| d.model.eq_ignore_ascii_case(&desc.model));
    if taken {
        return Err(Error::DuplicateModel(desc.model));
    }
    desc.custom = true;
    custom.push(desc);
    Ok(())
}

/// How an image model's graph output becomes the embedding (before L2 normalization).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImagePooling {
    /// Each image's output flattened (`[batch, dim]` or any shape per image).
    Flatten,
    /// The first token of `[batch, tokens, dim]` (nomic vision).
    Cls,
}

/// Which graph output an image model reads and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageOutput {
    /// The output's name; the graph's first output when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub pooling: ImagePooling,
}

/// One image embedding model, as fastembed's `DenseModelDescription`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageModelDescription {
    pub model: String,
    pub dim: usize,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub license: String,
    #[serde(rename = "size_in_GB", default)]
    pub size_in_gb: f64,
    pub sources: ModelSource,
    pub model_file: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_files: Vec<String>,
    pub output: ImageOutput,
}

static BUILTIN_IMAGE: LazyLock<Vec<ImageModelDescription>> = LazyLock::new(|| {
    // Compiled in and checked by a unit test, so a parse failure is a build bug.
    serde_json::from_str(include_str!("image.json")).expect("registry/image.json is valid")
});

/// Every image embedding model, in fastembed's order.
pub fn image_models() -> Vec<ImageModelDescription> {
    BUILTIN_IMAGE.clone()
}

/// The description of image model `name` (case-insensitive).
pub fn image_model(name: &str) -> Result<ImageModelDescription> {
    find(&BUILTIN_IMAGE, name, |d| &d.model).cloned()
}

/// The prompt layout and inputs of a multimodal late-interaction model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MultimodalKind {
    Colpali,
    Colmodernvbert,
}

/// One multimodal late-interaction model (text and images into token vectors).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultimodalModelDescription {
    pub model: String,
    pub dim: usize,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub license: String,
    #[serde(rename = "size_in_GB", default)]
    pub size_in_gb: f64,
    pub sources: ModelSource,
    pub model_file: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_files: Vec<String>,
    pub kind: MultimodalKind,
}

static BUILTIN_MULTIMODAL: LazyLock<Vec<MultimodalModelDescription>> = LazyLock::new(|| {
    // Compiled in and checked by a unit test, so a parse failure is a build bug.
    serde_json::from_str(include_str!("late_interaction_multimodal.json"))
        .expect("registry/late_interaction_multimodal.json is valid")
});

/// Every multimodal late-interaction model, in fastembed's order.
pub fn multimodal_models() -> Vec<MultimodalModelDescription> {
    BUILTIN_MULTIMODAL.clone()
}

/// The description of multimodal model `name` (case-insensitive).
pub fn multimodal_model(name: &str) -> Result<MultimodalModelDescription> {
    find(&BUILTIN_MULTIMODAL, name, |d| &d.model).cloned()
}

/// Finds `name` case-insensitively in `items`.
pub(crate) fn find<'a, T>(items: &'a [T], name: &str, key: impl Fn(&T) -> &str) -> Result<&'a T> {
    if let Some(found) = items.iter().find(|d| key(d).eq_ignore_ascii_case(name)) {
        return Ok(found);
    }
    Err(Error::UnknownModel {
        name: name.to_string(),
        close: closest(name, items.iter().map(&key)),
    })
}

/// Up to five known names closest to `name`: those that contain it or its last path part,
/// then those within a small edit distance.
fn closest<'a>(name: &str, names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let needle = name.to_lowercase();
    let tail = needle.rsplit('/').next().unwrap_or(&needle).to_string();
    let mut scored: Vec<(usize, String)> = names
        .filter_map(|n| {
            let lower = n.to_lowercase();
            let n_tail = lower.rsplit('/').next().unwrap_or(&lower).to_string();
            let d = levenshtein(&needle, &lower).min(levenshtein(&tail, &n_tail));
            let contains = !tail.is_empty() && (lower.contains(&tail) || tail.contains(&n_tail));
            let limit = (tail.chars().count() / 3).max(2);
            if contains {
                Some((0, n.to_string()))
            } else if d <= limit {
                Some((d, n.to_string()))
            } else {
                None
            }
        })
        .collect();
    scored.sort();
    scored.into_iter().take(5).map(|(_, n)| n).collect()
}

// Edit distance for "did you mean" hints: a dozen lines, not worth a dependency.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_has_fastembeds_41_dense_models() {
        let all = &*BUILTIN_DENSE;
        assert_eq!(all.len(), 41);
        for d in all {
            assert!(d.dim > 0, "{}", d.model);
            assert!(
                d.sources.hf.is_some() || d.sources.url.is_some(),
                "{}",
                d.model
            );
        }
    }

    #[test]
    fn builtin_table_has_fastembeds_2_multimodal_models() {
        assert_eq!(BUILTIN_MULTIMODAL.len(), 2);
    }

    #[test]
    fn builtin_table_has_fastembeds_8_image_models() {
        assert_eq!(BUILTIN_IMAGE.len(), 8);
    }

    #[test]
    fn builtin_table_has_fastembeds_8_rerankers() {
        assert_eq!(BUILTIN_RERANK.len(), 8);
    }

    #[test]
    fn builtin_table_has_fastembeds_5_late_interaction_models() {
        assert_eq!(BUILTIN_LATE.len(), 5);
    }

    #[test]
    fn builtin_table_has_fastembeds_6_sparse_models() {
        assert_eq!(BUILTIN_SPARSE.len(), 6);
        let splade = sparse_model("prithivida/splade_pp_en_v1").unwrap();
        assert_eq!(splade.kind, SparseKind::Splade);
        assert_eq!(splade.vocab_size, Some(30522));
    }

    #[test]
    fn lookup_is_case_insensitive() {
        let d = dense_model("baai/BGE-small-en-v1.5").unwrap();
        assert_eq!(d.model, "BAAI/bge-small-en-v1.5");
        assert_eq!(d.dim, 384);
    }

    #[test]
    fn unknown_model_lists_close_names() {
        let err = dense_model("BAAI/bge-smal-en-v1.5").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("BAAI/bge-small-en-v1.5"), "{msg}");
        let err = dense_model("all-MiniLM-L6").unwrap_err().to_string();
        assert!(
            err.contains("sentence-transformers/all-MiniLM-L6-v2"),
            "{err}"
        );
        let err = dense_model("zzzzzzzzzzzzzzzz").unwrap_err().to_string();
        assert!(err.contains("embedkit models"), "{err}");
    }

    #[test]
    fn duplicate_custom_model_is_refused() {
        let base = dense_model("BAAI/bge-small-en-v1.5").unwrap();
        let err = add_dense_model(base).unwrap_err();
        assert!(matches!(err, Error::DuplicateModel(_)));
    }
}
