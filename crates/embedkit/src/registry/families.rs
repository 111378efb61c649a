//! The six families' descriptions: the shared [`ModelCore`] plus each family's fields,
//! and their tables.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{parse_table, Describe, ModelCore, ModelFiles, Table};
use crate::error::{Error, Result};

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
    #[serde(flatten)]
    pub core: ModelCore,
    pub dim: usize,
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
    /// Trained so that a prefix of the vector, renormalized, is a good smaller vector
    /// (Matryoshka representation learning): the server's `dimensions` applies only here.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub matryoshka: bool,
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
    #[serde(flatten)]
    pub core: ModelCore,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_idf: Option<bool>,
    pub kind: SparseKind,
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
    #[serde(flatten)]
    pub core: ModelCore,
    /// Dimensions of each token vector.
    pub dim: usize,
    pub colbert: ColbertConfig,
}

/// One cross-encoder reranker, as fastembed's `BaseModelDescription`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RerankerModelDescription {
    #[serde(flatten)]
    pub core: ModelCore,
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
    #[serde(flatten)]
    pub core: ModelCore,
    pub dim: usize,
    pub output: ImageOutput,
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
    #[serde(flatten)]
    pub core: ModelCore,
    pub dim: usize,
    pub kind: MultimodalKind,
}

/// Where a BGE-M3-style model's three outputs come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum M3Layout {
    /// The graph's first output is the last hidden state; the sparse and ColBERT heads are
    /// torch checkpoints (`Linear` state dicts) beside it (`BAAI/bge-m3`).
    HiddenState {
        sparse_head: String,
        colbert_head: String,
    },
    /// The graph applies the heads itself and names its three outputs
    /// (`gpahal/bge-m3-onnx-int8`).
    Outputs {
        dense: String,
        sparse: String,
        colbert: String,
    },
}

/// One model that gives dense, sparse (lexical) and multi-vector (ColBERT) embeddings from
/// one pass, as FlagEmbedding's `BGEM3FlagModel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BgeM3ModelDescription {
    #[serde(flatten)]
    pub core: ModelCore,
    /// Dimensions of the dense vector and of each ColBERT row.
    pub dim: usize,
    /// The context the model was trained for, in tokens (documentation; truncation follows
    /// `tokenizer_config.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    pub layout: M3Layout,
}

/// The test family's model (cargo feature `test-family`): a dense and a sparse output.
#[cfg(feature = "test-family")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwinModelDescription {
    #[serde(flatten)]
    pub core: ModelCore,
    /// Dimensions of the dense vector.
    pub dim: usize,
}

/// The families' tables, each parsed from its compiled-in JSON file on first use.
macro_rules! tables {
    ($($(#[$doc:meta])* $name:ident: $t:ty = $file:literal;)*) => {$(
        $(#[$doc])*
        pub static $name: Table<$t> = Table::new(|| parse_table(include_str!($file), $file));
    )*};
}

tables! {
    /// Dense text models (`registry/dense.json`).
    DENSE: DenseModelDescription = "dense.json";
    /// Sparse text models (`registry/sparse.json`).
    SPARSE: SparseModelDescription = "sparse.json";
    /// Late-interaction text models (`registry/late_interaction.json`).
    LATE_INTERACTION: LateInteractionModelDescription = "late_interaction.json";
    /// Cross-encoder rerankers (`registry/rerank.json`).
    RERANK: RerankerModelDescription = "rerank.json";
    /// Image embedding models (`registry/image.json`).
    IMAGE: ImageModelDescription = "image.json";
    /// Multimodal late-interaction models (`registry/late_interaction_multimodal.json`).
    MULTIMODAL: MultimodalModelDescription = "late_interaction_multimodal.json";
    /// Dense + sparse + multi-vector models (`registry/bge_m3.json`).
    BGE_M3: BgeM3ModelDescription = "bge_m3.json";
    /// The test family (`registry/twin.json`, cargo feature `test-family`).
    #[cfg(feature = "test-family")]
    TWIN: TwinModelDescription = "twin.json";
}

fn positive_dim(core: &ModelCore, dim: usize) -> Result<()> {
    if dim == 0 {
        return Err(Error::InvalidArgument(format!(
            "model {:?}: dim must be positive",
            core.model
        )));
    }
    Ok(())
}

/// The accessors every description has: its core and its table.
macro_rules! describe {
    ($t:ty, $table:ident { $($items:tt)* }) => {
        impl Describe for $t {
            fn core(&self) -> &ModelCore {
                &self.core
            }
            fn core_mut(&mut self) -> &mut ModelCore {
                &mut self.core
            }
            fn table() -> &'static Table<Self> {
                &$table
            }
            $($items)*
        }
    };
}

describe!(DenseModelDescription, DENSE {
    fn dim(&self) -> Option<usize> {
        Some(self.dim)
    }
    fn detail(&self) -> String {
        let pooling = format!("{:?}", self.pipeline.pooling).to_lowercase();
        let norm = if self.pipeline.normalize { ", normalized" } else { "" };
        format!("{pooling}{norm}")
    }
    fn files(&self) -> ModelFiles {
        // model2vec tables have no tokenizer_config.json.
        let extra: &[&str] = match self.pipeline.kind {
            DenseKind::Onnx => &["tokenizer.json", "tokenizer_config.json"],
            DenseKind::Static => &["tokenizer.json"],
        };
        ModelFiles::new(&self.core, self.core.required_files(extra), Vec::new())
    }
    fn check(&self) -> Result<()> {
        positive_dim(&self.core, self.dim)
    }
});

describe!(SparseModelDescription, SPARSE {
    fn detail(&self) -> String {
        let kind = format!("{:?}", self.kind).to_lowercase();
        match self.vocab_size {
            Some(v) => format!("{kind}, vocabulary {v}"),
            None => kind,
        }
    }
    fn files(&self) -> ModelFiles {
        let mut required = vec![self.core.model_file.clone()];
        let mut optional: Vec<String> = Vec::new();
        for file in &self.core.additional_files {
            // Stopword lists: fastembed runs without them when they are absent.
            if file.ends_with(".txt") {
                optional.push(file.clone());
            } else {
                required.push(file.clone());
            }
        }
        if self.kind != SparseKind::Bm25 {
            required.push("tokenizer.json".into());
            required.push("tokenizer_config.json".into());
        }
        ModelFiles::new(&self.core, required, optional)
    }
});

describe!(LateInteractionModelDescription, LATE_INTERACTION {
    fn dim(&self) -> Option<usize> {
        Some(self.dim)
    }
    fn detail(&self) -> String {
        format!("{:?}", self.colbert.style).to_lowercase()
    }
    fn check(&self) -> Result<()> {
        positive_dim(&self.core, self.dim)
    }
});

describe!(RerankerModelDescription, RERANK {
    fn default_batch_size(&self) -> usize {
        64
    }
});

describe!(ImageModelDescription, IMAGE {
    fn dim(&self) -> Option<usize> {
        Some(self.dim)
    }
    fn files(&self) -> ModelFiles {
        // Only config.json beside the preprocessor's: image repos have no tokenizer.
        ModelFiles {
            model: self.core.model.clone(),
            sources: self.core.sources.clone(),
            required: self.core.required_files(&["preprocessor_config.json"]),
            optional: vec!["config.json".into()],
        }
    }
    fn check(&self) -> Result<()> {
        positive_dim(&self.core, self.dim)
    }
    fn default_batch_size(&self) -> usize {
        16
    }
});

describe!(MultimodalModelDescription, MULTIMODAL {
    fn dim(&self) -> Option<usize> {
        Some(self.dim)
    }
    fn detail(&self) -> String {
        format!("{:?}", self.kind).to_lowercase()
    }
    fn files(&self) -> ModelFiles {
        let mut extra = vec!["tokenizer.json", "tokenizer_config.json", "preprocessor_config.json"];
        if self.kind == MultimodalKind::Colmodernvbert {
            extra.push("config.json");
        }
        ModelFiles::new(&self.core, self.core.required_files(&extra), Vec::new())
    }
    fn check(&self) -> Result<()> {
        positive_dim(&self.core, self.dim)
    }
});

describe!(BgeM3ModelDescription, BGE_M3 {
    fn dim(&self) -> Option<usize> {
        Some(self.dim)
    }
    fn files(&self) -> ModelFiles {
        let mut required = self.core.required_files(&["tokenizer.json", "tokenizer_config.json"]);
        if let M3Layout::HiddenState { sparse_head, colbert_head } = &self.layout {
            for head in [sparse_head, colbert_head] {
                if !required.contains(head) {
                    required.push(head.clone());
                }
            }
        }
        ModelFiles::new(&self.core, required, Vec::new())
    }
    fn check(&self) -> Result<()> {
        positive_dim(&self.core, self.dim)
    }
});

#[cfg(feature = "test-family")]
describe!(TwinModelDescription, TWIN {
    fn dim(&self) -> Option<usize> {
        Some(self.dim)
    }
    fn check(&self) -> Result<()> {
        positive_dim(&self.core, self.dim)
    }
});
