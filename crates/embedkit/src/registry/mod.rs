//! Model descriptions as data. Each family has one table (a JSON file compiled into the
//! binary) of descriptions that share one core ([`ModelCore`]) and add their own fields;
//! a lookup returns a description and no family logic lives here.
//!
//! Names, dims, sources and files are those of fastembed 0.9.1's `list_supported_models`
//! (a test compares them with the oracle's listing); `pipeline`, `max_length` and the
//! prefixes are embedkit's own annotations of how each model is run and used.

mod families;
mod listing;

use std::sync::{LazyLock, RwLock};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use families::*;
pub use listing::{ListedModel, Listing, LISTINGS};

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

/// The fields every description has, as fastembed's `BaseModelDescription`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCore {
    /// The name models are looked up by (case-insensitively), e.g. `BAAI/bge-small-en-v1.5`.
    pub model: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub license: String,
    #[serde(rename = "size_in_GB", default)]
    pub size_in_gb: f64,
    pub sources: ModelSource,
    /// The ONNX file (or weights file), relative to the model folder.
    pub model_file: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_files: Vec<String>,
    /// Registered at run time with `add_custom_model`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub custom: bool,
}

impl ModelCore {
    /// A core with fastembed's defaults: no description, license or size, no additional
    /// files.
    pub fn new(
        model: impl Into<String>,
        sources: ModelSource,
        model_file: impl Into<String>,
    ) -> Self {
        ModelCore {
            model: model.into(),
            description: String::new(),
            license: String::new(),
            size_in_gb: 0.0,
            sources,
            model_file: model_file.into(),
            additional_files: Vec::new(),
            custom: false,
        }
    }

    /// The model file, the additional files, then `extra`: what a model of a family
    /// that needs `extra` cannot run without.
    pub fn required_files(&self, extra: &[&str]) -> Vec<String> {
        let mut files = vec![self.model_file.clone()];
        files.extend(self.additional_files.iter().cloned());
        files.extend(extra.iter().map(|f| f.to_string()));
        files
    }

    fn validate(&self) -> Result<()> {
        if self.model.trim().is_empty() {
            return Err(Error::InvalidArgument("model name is empty".into()));
        }
        if self.sources.hf.is_none() && self.sources.url.is_none() {
            return Err(Error::InvalidArgument(format!(
                "model {:?}: at least one source (hf or url) must be set",
                self.model
            )));
        }
        if self.model_file.trim().is_empty() {
            return Err(Error::InvalidArgument(format!(
                "model {:?}: model_file is empty",
                self.model
            )));
        }
        Ok(())
    }
}

/// What a model needs on disk, for finding, downloading or removing it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFiles {
    /// The registry name, e.g. `BAAI/bge-small-en-v1.5`.
    pub model: String,
    pub sources: ModelSource,
    /// Files the model cannot run without, relative to its folder (the ONNX file first).
    pub required: Vec<String>,
    /// Files fetched when the repo has them (configs some models lack).
    pub optional: Vec<String>,
}

/// The config files fetched when a repo has them: fastembed's four, and the
/// sentence-transformers config that names a model's prompts.
pub const OPTIONAL_CONFIGS: [&str; 5] = [
    "config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "preprocessor_config.json",
    PROMPTS_CONFIG,
];

/// Where sentence-transformers keeps a model's prompts.
pub const PROMPTS_CONFIG: &str = "config_sentence_transformers.json";

/// The prompts `config_sentence_transformers.json` in `dir` names (`"prompts"`, name to
/// text); empty when the file is absent or names none.
pub(crate) fn prompts_in(
    dir: &std::path::Path,
) -> Result<std::collections::BTreeMap<String, String>> {
    let path = dir.join(PROMPTS_CONFIG);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let bad = |reason: String| Error::InvalidModel {
        path: path.clone(),
        reason,
    };
    let config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    match config.get("prompts") {
        None | Some(serde_json::Value::Null) => Ok(Default::default()),
        Some(serde_json::Value::Object(map)) => map
            .iter()
            .map(|(name, text)| match text.as_str() {
                Some(t) => Ok((name.clone(), t.to_string())),
                None => Err(bad(format!("prompt {name:?} is not a string"))),
            })
            .collect(),
        Some(_) => Err(bad("\"prompts\" is not an object".into())),
    }
}

impl ModelFiles {
    /// `required` files plus `extra_optional` ones, and the [`OPTIONAL_CONFIGS`] not
    /// already required.
    pub fn new(core: &ModelCore, required: Vec<String>, extra_optional: Vec<String>) -> Self {
        let mut optional = extra_optional;
        for config in OPTIONAL_CONFIGS {
            if !required.iter().chain(&optional).any(|f| f == config) {
                optional.push(config.to_string());
            }
        }
        ModelFiles {
            model: core.model.clone(),
            sources: core.sources.clone(),
            required,
            optional,
        }
    }
}

/// A model description of some family: the shared core, the family's table, and the
/// files it needs.
pub trait Describe:
    Clone + std::fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    fn core(&self) -> &ModelCore;
    fn core_mut(&mut self) -> &mut ModelCore;
    /// The table of the family's models.
    fn table() -> &'static Table<Self>;
    /// fastembed's default `batch_size` for the model.
    fn default_batch_size(&self) -> usize {
        256
    }
    /// The files the model needs; by default the model file, its additional files and
    /// the tokenizer's two files.
    fn files(&self) -> ModelFiles {
        let core = self.core();
        ModelFiles::new(
            core,
            core.required_files(&["tokenizer.json", "tokenizer_config.json"]),
            Vec::new(),
        )
    }
    /// Checks of the family's own fields (sizes, kinds) for descriptions given at run time.
    fn check(&self) -> Result<()> {
        Ok(())
    }
    /// The name it is looked up by.
    fn name(&self) -> &str {
        &self.core().model
    }
    /// The size of its vectors, where it has one (for listings).
    fn dim(&self) -> Option<usize> {
        None
    }
    /// What sets it apart within its family (pooling, kind, style), for listings.
    fn detail(&self) -> String {
        String::new()
    }
}

/// One family's models: the built-in table, then models registered at run time.
pub struct Table<T> {
    builtin: LazyLock<Vec<T>>,
    custom: RwLock<Vec<T>>,
}

impl<T: Describe> Table<T> {
    /// A table whose built-in part `load` parses on first use.
    pub(crate) const fn new(load: fn() -> Vec<T>) -> Self {
        Table {
            builtin: LazyLock::new(load),
            custom: RwLock::new(Vec::new()),
        }
    }

    /// Every model: built-in first (in fastembed's order), then the custom ones.
    pub fn all(&self) -> Vec<T> {
        let mut all = self.builtin.clone();
        all.extend(
            self.custom
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned(),
        );
        all
    }

    /// The description of `name` (case-insensitive, as fastembed), or an error that
    /// lists the closest names.
    pub fn get(&self, name: &str) -> Result<T> {
        let all = self.all();
        find(&all, name, |d| d.name()).cloned()
    }

    /// Whether `name` is known (case-insensitively).
    pub fn contains(&self, name: &str) -> bool {
        let custom = self.custom.read().unwrap_or_else(|e| e.into_inner());
        self.builtin
            .iter()
            .chain(custom.iter())
            .any(|d| d.name().eq_ignore_ascii_case(name))
    }

    /// Registers a model under a new name (fastembed's class-level `add_custom_model`).
    pub fn add(&self, mut desc: T) -> Result<()> {
        validate(&desc)?;
        let mut custom = self.custom.write().unwrap_or_else(|e| e.into_inner());
        let taken = self
            .builtin
            .iter()
            .chain(custom.iter())
            .any(|d| d.name().eq_ignore_ascii_case(desc.name()));
        if taken {
            return Err(Error::DuplicateModel(desc.name().to_string()));
        }
        desc.core_mut().custom = true;
        custom.push(desc);
        Ok(())
    }
}

/// Checks a description given at run time (the built-in ones are checked by tests).
pub fn validate<T: Describe>(desc: &T) -> Result<()> {
    desc.core().validate()?;
    desc.check()
}

/// Parses a compiled-in table. The tables are checked by unit tests, so a parse failure
/// is a build bug, not a user error.
fn parse_table<T: DeserializeOwned>(json: &str, file: &str) -> Vec<T> {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("registry/{file} is invalid: {e}"))
}

/// The family a model belongs to: which class of the API loads it. Non-exhaustive: a
/// new family is not a breaking change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Kind {
    /// `TextEmbedding`.
    Dense,
    /// `SparseTextEmbedding`.
    Sparse,
    /// `LateInteractionTextEmbedding`.
    LateInteraction,
    /// `TextCrossEncoder`.
    Rerank,
    /// `ImageEmbedding`.
    Image,
    /// `LateInteractionMultimodalEmbedding`.
    Multimodal,
    /// `BgeM3Embedding`: dense, sparse and multi-vector from one pass (no fastembed
    /// class; FlagEmbedding's `BGEM3FlagModel`).
    BgeM3,
    /// The test family (cargo feature `test-family`): dense and sparse from one pass.
    #[cfg(feature = "test-family")]
    Twin,
}

/// The family of the model `name` (built-in or registered), searched in the order of
/// [`LISTINGS`]; an unknown name is an error listing the closest ones.
pub fn kind_of(name: &str) -> Result<Kind> {
    found(name).map(|(listing, _)| listing.kind)
}

/// The files of the model `name` of any family, for `download` and `cache remove`.
pub fn files_of(name: &str) -> Result<ModelFiles> {
    found(name).map(|(_, files)| files)
}

fn found(name: &str) -> Result<(&'static Listing, ModelFiles)> {
    LISTINGS
        .iter()
        .find_map(|l| l.files_of(name).map(|files| (l, files)))
        .ok_or_else(|| {
            let names: Vec<String> = LISTINGS
                .iter()
                .flat_map(|l| l.models().into_iter().map(|m| m.model))
                .collect();
            Error::UnknownModel {
                name: name.to_string(),
                close: closest(name, names.iter().map(String::as_str)),
            }
        })
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

    fn check_table<T: Describe + PartialEq>(table: &Table<T>, len: usize) {
        let all = table.all();
        assert_eq!(all.len(), len);
        for d in &all {
            validate(d).unwrap_or_else(|e| panic!("{}: {e}", d.name()));
            // The flattened core serializes to the same flat JSON it was read from.
            let json = serde_json::to_string(d).unwrap();
            assert_eq!(&serde_json::from_str::<T>(&json).unwrap(), d);
        }
    }

    #[test]
    fn every_family_is_listed_once_and_names_resolve_to_it() {
        let mut kinds: Vec<Kind> = LISTINGS.iter().map(|l| l.kind).collect();
        let mut keys: Vec<&str> = LISTINGS.iter().map(|l| l.key).collect();
        kinds.dedup();
        keys.sort();
        keys.dedup();
        assert_eq!((kinds.len(), keys.len()), (LISTINGS.len(), LISTINGS.len()));
        for (at, listing) in LISTINGS.iter().enumerate() {
            let models = listing.models();
            assert!(!models.is_empty(), "{}", listing.key);
            let json = listing.to_json().unwrap();
            assert_eq!(json.as_array().map(Vec::len), Some(models.len()));
            for m in &models {
                // A name in two tables (jina-clip-v1: its text and image halves, as in
                // fastembed) resolves to the first.
                let kind = kind_of(&m.model).unwrap();
                let first = LISTINGS.iter().position(|l| l.kind == kind).unwrap();
                assert!(first <= at, "{}", m.model);
                assert!(LISTINGS[first].files_of(&m.model).is_some(), "{}", m.model);
            }
        }
        let e = kind_of("BAAI/bge-smal-en-v1.5").unwrap_err();
        assert!(e.to_string().contains("BAAI/bge-small-en-v1.5"), "{e}");
    }

    #[test]
    fn builtin_tables_have_fastembeds_models() {
        check_table(&DENSE, 41);
        check_table(&SPARSE, 6);
        check_table(&LATE_INTERACTION, 5);
        check_table(&RERANK, 8);
        check_table(&IMAGE, 8);
        check_table(&MULTIMODAL, 2);
        check_table(&BGE_M3, 2);
        assert_eq!(kind_of("baai/bge-m3").unwrap(), Kind::BgeM3);
        let m3 = files_of("BAAI/bge-m3").unwrap();
        for f in [
            "onnx/model.onnx_data",
            "colbert_linear.pt",
            "sparse_linear.pt",
        ] {
            assert!(m3.required.iter().any(|r| r == f), "{f}: {m3:?}");
        }
        assert_eq!(kind_of("BAAI/bge-small-en-v1.5").unwrap(), Kind::Dense);
        assert_eq!(kind_of("qdrant/bm25").unwrap(), Kind::Sparse);
        assert_eq!(
            kind_of("colbert-ir/colbertv2.0").unwrap(),
            Kind::LateInteraction
        );
        assert_eq!(
            kind_of("Xenova/ms-marco-MiniLM-L-6-v2").unwrap(),
            Kind::Rerank
        );
        assert_eq!(kind_of("Qdrant/clip-ViT-B-32-vision").unwrap(), Kind::Image);
        assert_eq!(
            kind_of("Qdrant/colpali-v1.3-fp16").unwrap(),
            Kind::Multimodal
        );
        assert!(matches!(
            kind_of("no/such-model"),
            Err(Error::UnknownModel { .. })
        ));
        let splade = SPARSE.get("prithivida/splade_pp_en_v1").unwrap();
        assert_eq!(splade.kind, SparseKind::Splade);
        assert_eq!(splade.vocab_size, Some(30522));
    }

    #[test]
    fn lookup_is_case_insensitive() {
        let d = DENSE.get("baai/BGE-small-en-v1.5").unwrap();
        assert_eq!(d.core.model, "BAAI/bge-small-en-v1.5");
        assert_eq!(d.dim, 384);
        assert!(RERANK.contains("XENOVA/ms-marco-MiniLM-L-6-v2"));
    }

    #[test]
    fn unknown_model_lists_close_names() {
        let msg = DENSE.get("BAAI/bge-smal-en-v1.5").unwrap_err().to_string();
        assert!(msg.contains("BAAI/bge-small-en-v1.5"), "{msg}");
        let err = DENSE.get("all-MiniLM-L6").unwrap_err().to_string();
        assert!(
            err.contains("sentence-transformers/all-MiniLM-L6-v2"),
            "{err}"
        );
        let err = DENSE.get("zzzzzzzzzzzzzzzz").unwrap_err().to_string();
        assert!(err.contains("embedkit models"), "{err}");
        // Across families: a reranker's near miss names the reranker.
        let err = files_of("Xenova/ms-marco-MiniLM-L-6")
            .unwrap_err()
            .to_string();
        assert!(err.contains("Xenova/ms-marco-MiniLM-L-6-v2"), "{err}");
    }

    #[test]
    fn files_of_any_family() {
        let bm25 = files_of("Qdrant/bm25").unwrap();
        assert!(!bm25.required.iter().any(|f| f == "tokenizer.json"));
        assert!(bm25.optional.iter().any(|f| f.ends_with(".txt")));
        let image = files_of("Qdrant/clip-ViT-B-32-vision").unwrap();
        assert_eq!(image.optional, ["config.json"]);
        assert!(image
            .required
            .contains(&"preprocessor_config.json".to_string()));
    }

    #[test]
    fn custom_models_are_checked_and_unique() {
        let base = DENSE.get("BAAI/bge-small-en-v1.5").unwrap();
        assert!(matches!(
            DENSE.add(base.clone()).unwrap_err(),
            Error::DuplicateModel(_)
        ));
        let mut zero = base.clone();
        zero.core.model = "test/zero-dim".into();
        zero.dim = 0;
        assert!(DENSE.add(zero).unwrap_err().to_string().contains("dim"));
        let mut sourceless = base;
        sourceless.core.model = "test/no-source".into();
        sourceless.core.sources = ModelSource::default();
        assert!(DENSE
            .add(sourceless)
            .unwrap_err()
            .to_string()
            .contains("source"));
    }
}
