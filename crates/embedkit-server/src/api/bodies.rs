//! The request and response bodies of every route, as their clients send and expect them
//! (OpenAI's, TEI's, Cohere's and Jina's shapes, and embedkit's own routes).

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One string or an array of them (TEI's `inputs`, an image list).
#[derive(Debug, Clone, ToSchema)]
pub struct Strings(pub Vec<String>);

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Strings;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Strings, E> {
                Ok(Strings(vec![s.to_string()]))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Strings, E> {
                Ok(Strings(vec![s]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strings, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(Strings(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// OpenAI's `input`: a text, texts, one array of token ids, or arrays of them.
#[derive(Debug, Clone, ToSchema)]
pub enum OpenAiInput {
    Texts(Vec<String>),
    Ids(Vec<Vec<u32>>),
}

/// An element of OpenAI's `input` array.
enum Item {
    Text(String),
    Id(u32),
    Ids(Vec<u32>),
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Item;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, a token id or an array of token ids")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Item, E> {
                Ok(Item::Text(s.to_string()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Item, E> {
                Ok(Item::Text(s))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Item, E> {
                u32::try_from(n)
                    .map(Item::Id)
                    .map_err(|_| E::custom(format!("token id {n} is out of range")))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Item, E> {
                u64::try_from(n)
                    .map_err(|_| {
                        E::custom(format!("token ids must be non-negative integers, got {n}"))
                    })
                    .and_then(|n| self.visit_u64(n))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Item, E> {
                Err(E::custom(format!(
                    "token ids must be non-negative integers, got {n}"
                )))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Item, A::Error> {
                let mut ids = Vec::new();
                while let Some(id) = seq.next_element::<TokenId>()? {
                    ids.push(id.0);
                }
                Ok(Item::Ids(ids))
            }
        }
        d.deserialize_any(V)
    }
}

/// One token id, with an error that says what a token id must be.
struct TokenId(u32);

impl<'de> Deserialize<'de> for TokenId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Item::deserialize(d)? {
            Item::Id(id) => Ok(TokenId(id)),
            _ => Err(de::Error::custom(
                "token ids must be non-negative integers; text and token arrays are not mixed",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for OpenAiInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OpenAiInput;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, an array of strings, or token arrays")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<OpenAiInput, E> {
                Ok(OpenAiInput::Texts(vec![s.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OpenAiInput, A::Error> {
                let mut texts = Vec::new();
                let mut ids = Vec::new();
                let mut seqs = Vec::new();
                while let Some(item) = seq.next_element::<Item>()? {
                    match item {
                        Item::Text(t) => texts.push(t),
                        Item::Id(i) => ids.push(i),
                        Item::Ids(s) => seqs.push(s),
                    }
                    let kinds = [!texts.is_empty(), !ids.is_empty(), !seqs.is_empty()];
                    if kinds.iter().filter(|k| **k).count() > 1 {
                        return Err(de::Error::custom(
                            "an input is text, one array of token ids, or arrays of token \
                             ids: token arrays are not mixed with text",
                        ));
                    }
                }
                Ok(if !ids.is_empty() {
                    OpenAiInput::Ids(vec![ids])
                } else if !seqs.is_empty() {
                    OpenAiInput::Ids(seqs)
                } else {
                    OpenAiInput::Texts(texts)
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// How OpenAI's route encodes vectors.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    #[default]
    Float,
    Base64,
}

/// `POST /v1/embeddings` (OpenAI).
#[derive(Debug, Deserialize, ToSchema)]
pub struct OpenAiEmbeddingRequest {
    /// Text, texts, token ids or arrays of them; with an image model, images as `data:`
    /// URIs or base64.
    pub input: OpenAiInput,
    /// A served model's name (default: the first dense model).
    pub model: Option<String>,
    #[serde(default)]
    pub encoding_format: Option<EncodingFormat>,
    /// Shorter vectors, for models trained for it (Matryoshka).
    pub dimensions: Option<u64>,
    /// embedkit's: `float32` (default), `int8` (each vector scaled to ±127) or `binary`
    /// (sign bits packed eight to a byte, first value highest); base64 carries their
    /// bytes.
    #[schema(value_type = Option<String>)]
    pub output_dtype: Option<embedkit::postprocess::VectorType>,
    /// Accepted and ignored, as a client may send it.
    pub user: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum EmbeddingValue {
    #[schema(value_type = Vec<f32>)]
    Numbers(embedkit::postprocess::TypedVector),
    Base64(String),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiEmbedding {
    pub object: &'static str,
    pub index: usize,
    pub embedding: EmbeddingValue,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub total_tokens: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiEmbeddingResponse {
    pub object: &'static str,
    pub data: Vec<OpenAiEmbedding>,
    pub model: String,
    pub usage: Usage,
}

/// `POST /embed` (TEI).
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmbedRequest {
    /// Text(s); with an image model, images as `data:` URIs or base64.
    pub inputs: Strings,
    /// Unit-length vectors (default true).
    pub normalize: Option<bool>,
    pub dimensions: Option<u64>,
    /// embedkit's: `float32` (default), `int8` (each vector scaled to ±127) or `binary`
    /// (sign bits packed eight to a byte, first value highest), after `normalize`.
    #[schema(value_type = Option<String>)]
    pub output_dtype: Option<embedkit::postprocess::VectorType>,
    /// TEI's: false refuses an input longer than the model takes (413, naming it);
    /// absent or true truncates it, as fastembed does.
    pub truncate: Option<bool>,
    /// TEI's: a prompt from the model's `config_sentence_transformers.json`, put before
    /// each text.
    pub prompt_name: Option<String>,
    /// TEI's: `right` (the default) or `left`: which end of an over-long input is cut.
    pub truncation_direction: Option<String>,
    pub model: Option<String>,
}

/// `POST /embed_all` (TEI): each text's token vectors, before pooling.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmbedAllRequest {
    pub inputs: Strings,
    /// False refuses an input longer than the model takes (413); default: truncate.
    pub truncate: Option<bool>,
    /// TEI's: a prompt from the model's `config_sentence_transformers.json`, put before
    /// each text.
    pub prompt_name: Option<String>,
    /// TEI's: `right` (the default) or `left`: which end of an over-long input is cut.
    pub truncation_direction: Option<String>,
    pub model: Option<String>,
}

/// `POST /embed_sparse` (TEI).
#[derive(Debug, Deserialize, ToSchema)]
pub struct SparseRequest {
    pub inputs: Strings,
    pub truncate: Option<bool>,
    /// TEI's: a prompt from the model's `config_sentence_transformers.json`, put before
    /// each text.
    pub prompt_name: Option<String>,
    /// TEI's: `right` (the default) or `left`: which end of an over-long input is cut.
    pub truncation_direction: Option<String>,
    pub model: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SparseValue {
    pub index: u32,
    pub value: f32,
}

/// `POST /embed_late`: token vectors of texts (or, for a multimodal model, of images).
#[derive(Debug, Deserialize, ToSchema)]
pub struct LateRequest {
    pub inputs: Option<Strings>,
    /// Images as `data:` URIs or base64 (multimodal models).
    pub images: Option<Strings>,
    /// Queries rather than documents (default false).
    #[serde(default)]
    pub is_query: bool,
    /// False refuses an input longer than the model takes (413); default: truncate.
    pub truncate: Option<bool>,
    /// TEI's: a prompt from the model's `config_sentence_transformers.json`, put before
    /// each text.
    pub prompt_name: Option<String>,
    /// TEI's: `right` (the default) or `left`: which end of an over-long input is cut.
    pub truncation_direction: Option<String>,
    pub model: Option<String>,
}

/// `POST /embed_hybrid`: several outputs of each text from one pass (BGE-M3).
#[derive(Debug, Deserialize, ToSchema)]
pub struct HybridRequest {
    pub inputs: Strings,
    /// The outputs wanted: `dense`, `sparse`, `multi` (default: all three).
    pub outputs: Option<Vec<HybridPart>>,
    /// Unit-length dense vectors (default true).
    pub normalize: Option<bool>,
    /// Shorter dense vectors, for models trained for it (Matryoshka).
    pub dimensions: Option<u64>,
    /// Queries rather than documents (default false).
    #[serde(default)]
    pub is_query: bool,
    /// False refuses an input longer than the model takes (413); default: truncate.
    pub truncate: Option<bool>,
    /// TEI's: a prompt from the model's `config_sentence_transformers.json`, put before
    /// each text.
    pub prompt_name: Option<String>,
    /// TEI's: `right` (the default) or `left`: which end of an over-long input is cut.
    pub truncation_direction: Option<String>,
    pub model: Option<String>,
}

/// One output `/embed_hybrid` can give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HybridPart {
    /// The dense vector.
    Dense,
    /// The sparse (lexical) vector, as `/embed_sparse` gives it.
    Sparse,
    /// One vector per token, as `/embed_late` gives them.
    Multi,
}

/// One text's outputs from `/embed_hybrid`: those asked for.
#[derive(Debug, Serialize, ToSchema)]
pub struct HybridEmbedding {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dense: Option<Vec<f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sparse: Option<Vec<SparseValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi: Option<Vec<Vec<f32>>>,
}

/// `POST /rerank` (TEI).
#[derive(Debug, Deserialize, ToSchema)]
pub struct RerankRequest {
    pub query: String,
    pub texts: Strings,
    #[serde(default)]
    pub return_text: bool,
    /// Accepted for TEI clients; scores are the model's logits, as fastembed gives them.
    pub raw_scores: Option<bool>,
    pub truncate: Option<bool>,
    /// `Right` (default) or `Left`: which end of a long text is cut.
    pub truncation_direction: Option<String>,
    pub model: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Rank {
    pub index: usize,
    pub score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// `POST /decode` (TEI): token ids back to text.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DecodeRequest {
    /// One sequence of token ids, or several.
    pub ids: InputIds,
    /// Leave out special tokens (default true, as TEI).
    #[serde(default = "yes")]
    pub skip_special_tokens: bool,
    pub model: Option<String>,
}

fn yes() -> bool {
    true
}

/// TEI's `ids`: one sequence or a list of them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum InputIds {
    Single(Vec<u32>),
    Batch(Vec<Vec<u32>>),
}

impl InputIds {
    pub fn into_batch(self) -> Vec<Vec<u32>> {
        match self {
            InputIds::Single(ids) => vec![ids],
            InputIds::Batch(all) => all,
        }
    }
}

/// `POST /similarity` (TEI): the cosine similarity of a sentence to each of several.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SimilarityRequest {
    pub inputs: SimilarityInput,
    pub parameters: Option<SimilarityParameters>,
    pub model: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SimilarityInput {
    pub source_sentence: String,
    pub sentences: Vec<String>,
}

/// TEI's parameters: `truncate` false refuses an over-long input (default: truncate);
/// `prompt_name` a prompt from the model's `config_sentence_transformers.json`;
/// `truncation_direction` `Right` (default) or `Left`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SimilarityParameters {
    pub truncate: Option<bool>,
    pub truncation_direction: Option<String>,
    pub prompt_name: Option<String>,
}

/// `POST /v1/rerank`: Cohere's and Jina's rerank request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CohereRerankRequest {
    pub model: Option<String>,
    pub query: String,
    /// Texts, or objects with a `text`.
    pub documents: Vec<RerankDocument>,
    /// The best N (default: all).
    pub top_n: Option<usize>,
    /// Each result's document beside its score (default false).
    #[serde(default)]
    pub return_documents: bool,
    /// Accepted for Cohere clients; documents are truncated to the model's length.
    pub max_chunks_per_doc: Option<u64>,
}

/// A document as Cohere and Jina take it: a string or `{"text": ...}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum RerankDocument {
    Text(String),
    Object { text: String },
}

impl RerankDocument {
    pub fn into_text(self) -> String {
        match self {
            RerankDocument::Text(t) | RerankDocument::Object { text: t } => t,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CohereRerankResponse {
    pub id: String,
    pub model: String,
    /// Best first.
    pub results: Vec<CohereRerankResult>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CohereRerankResult {
    pub index: usize,
    /// The model's score through a sigmoid, in (0, 1), as Cohere's and Jina's.
    pub relevance_score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<DocumentText>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentText {
    pub text: String,
}

/// `POST /tokenize` (TEI): each text's tokens, not truncated (as TEI).
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenizeRequest {
    pub inputs: Strings,
    /// TEI's: the model's special tokens (`[CLS]`, `</s>`, ...) too (default true).
    #[serde(default = "yes")]
    pub add_special_tokens: bool,
    /// TEI's: a prompt from the model's `config_sentence_transformers.json`, put before
    /// each text.
    pub prompt_name: Option<String>,
    /// Accepted (`right` or `left`) for the clients that send it: nothing is truncated.
    pub truncation_direction: Option<String>,
    pub model: Option<String>,
}

/// A token as TEI's `/tokenize` gives it: a special token has its vocabulary text and
/// null offsets, any other the text's bytes `start..stop` (UTF-8 byte offsets).
#[derive(Debug, Serialize, ToSchema)]
pub struct SimpleToken {
    pub id: u32,
    pub text: String,
    pub special: bool,
    pub start: Option<usize>,
    pub stop: Option<usize>,
}

/// `GET /v1/models` (OpenAI).
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    pub object: &'static str,
    pub data: Vec<ModelCard>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelCard {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: String,
    /// embedkit's family: dense, sparse, late_interaction, rerank, image, multimodal,
    /// bge_m3 (`embedkit::ModelKind`; routes follow `capabilities`, not this).
    #[schema(value_type = String)]
    pub kind: embedkit::ModelKind,
    /// What the model computes, and so the routes it answers: dense_text,
    /// dense_token_ids, dense_image, sparse_text, multi_vector_text, multi_vector_image,
    /// token_vectors, pair_scores, tokens (`embedkit::Capability`).
    #[schema(value_type = Vec<String>)]
    pub capabilities: Vec<embedkit::Capability>,
    /// Vector size, for the families that have one.
    pub dim: Option<usize>,
}

/// `GET /info` (TEI's fields for the default model, and every model served).
#[derive(Debug, Serialize, ToSchema)]
pub struct Info {
    pub model_id: String,
    pub model_dim: Option<usize>,
    pub model_type: &'static str,
    pub max_input_length: usize,
    pub max_client_batch_size: usize,
    pub max_input_chars: usize,
    pub max_body_bytes: usize,
    pub max_concurrent_requests: usize,
    pub max_output_numbers: usize,
    pub auth: bool,
    pub models: Vec<ModelCard>,
    pub version: &'static str,
}

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `tei()` of the requests with TEI's text fields (`truncate`, `prompt_name`,
/// `truncation_direction`), for [`crate::inputs::ready_texts`].
macro_rules! tei_text {
    ($($request:ty),*) => {$(
        impl $request {
            pub(crate) fn tei(&self) -> crate::inputs::TeiText {
                crate::inputs::TeiText {
                    truncate: self.truncate,
                    prompt_name: self.prompt_name.clone(),
                    truncation_direction: self.truncation_direction.clone(),
                }
            }
        }
    )*};
}

tei_text!(
    EmbedRequest,
    SparseRequest,
    LateRequest,
    HybridRequest,
    EmbedAllRequest,
    SimilarityParameters
);
