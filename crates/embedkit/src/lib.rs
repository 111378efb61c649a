//! embedkit: fastembed's embeddings, in Rust, on ONNX Runtime.
//!
//! Every model family is one [`Model`] of the generic engine, named as fastembed names
//! its classes: [`TextEmbedding`], [`SparseTextEmbedding`],
//! [`LateInteractionTextEmbedding`], [`TextCrossEncoder`], [`ImageEmbedding`] and
//! [`LateInteractionMultimodalEmbedding`]; [`Muvera`] turns multi-vectors into single
//! vectors.
//!
//! ```no_run
//! use embedkit::{Purpose, TextEmbedding};
//! let model = TextEmbedding::builder("BAAI/bge-small-en-v1.5")
//!     .threads(2)
//!     .build()?;
//! let docs = model.embed(&["embedkit embeds text", "and images"], None)?;
//! let query = model.query_embed(&["what does embedkit embed?"], None)?;
//! // Any iterator, streamed in input order in bounded memory:
//! for vector in model.try_embed_iter((0..3).map(|i| Ok(format!("doc {i}"))), None, Purpose::Document) {
//!     let vector = vector?;
//! }
//! # Ok::<(), embedkit::Error>(())
//! ```
//!
//! Inside, the modules follow the pipeline: [`registry`] describes models as data,
//! `hub` finds their files, `tokenize` and `inputs` turn texts and images into graph
//! inputs, `batching` plans and runs batches, `runtime` loads ONNX Runtime and runs
//! sessions, and each family module ([`text`], [`sparse`], [`late_interaction`],
//! [`rerank`], [`image`], [`late_interaction_multimodal`]) says only what its models
//! compute, behind one seam (`pipeline`) that the one engine (`engine`) runs.
//!
//! # Processes and forks
//!
//! A model holds ONNX Runtime sessions, whose thread pools (and the rayon pool the
//! tokenizer batches on) are threads: `fork()` copies none of them into the child. A
//! model used before a fork still works in the child: tokenization there is serial, and
//! the child opens its own sessions on its first call (the parent's are neither run nor
//! released in the child). Each forked process therefore holds its own copy of the
//! weights; to avoid the parent's copy, build models after the fork.

mod batching;
pub mod bge_m3;
mod engine;
pub mod error;
mod graph;
mod handle;
mod hub;
pub mod image;
mod inputs;
pub mod late_interaction;
pub mod late_interaction_multimodal;
pub mod options;
mod pipeline;
pub mod postprocess;
mod quantize;
pub mod registry;
pub mod rerank;
mod runtime;
pub mod sparse;
pub mod text;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod tokenize;
#[cfg(not(feature = "internals"))]
mod tokenize;
#[cfg(feature = "test-family")]
pub mod twin;

/// embedkit's machinery, public for its own tools (the CLI's `cache` and `env`
/// commands), tests and fuzz targets: the hub client and cache layout, and the ONNX
/// Runtime loader. **Unstable**: anything here may change in any release; the stable API
/// is the crate root (the model classes, [`EmbeddingModel`], [`LoadOptions`],
/// [`CallOptions`], the registry's descriptions, [`Error`]).
pub mod unstable {
    /// Model folders, the cache layout, downloads and safe archive extraction.
    pub mod hub {
        pub use crate::hub::*;
    }
    /// Finding and loading ONNX Runtime, providers and devices, sessions.
    pub mod runtime {
        pub use crate::runtime::*;
    }
    pub use crate::batching::on_one_session;
}

pub use batching::DEFAULT_MAX_BATCH_TOKENS;
pub use bge_m3::{BgeM3Embedding, BgeM3EmbeddingBuilder, M3Output};
pub use engine::{Builder, Model, Stream};
pub use error::{Error, ErrorKind, Result};
pub use handle::{
    CallOptions, Capability, Capable, EmbeddingModel, Operations, TextOutput, TextOutputs,
};
pub use hub::{CacheOptions, Fetcher, HubOptions};
pub use image::{ImageEmbedding, ImageEmbeddingBuilder, ImageInput};
pub use late_interaction::{
    max_sim, max_sim_batch, LateInteractionTextEmbedding, LateInteractionTextEmbeddingBuilder,
    MultiVector,
};
pub use late_interaction_multimodal::{
    LateInteractionMultimodalEmbedding, LateInteractionMultimodalEmbeddingBuilder,
};
pub use options::LoadOptions;
pub use pipeline::{Prep, Purpose};
pub use postprocess::{Muvera, MuveraOptions};
pub use quantize::Precision;
pub use registry::{
    BgeM3ModelDescription, DenseModelDescription, ImageModelDescription, Kind as ModelKind,
    LateInteractionModelDescription, ModelCore, ModelSource, MultimodalModelDescription, Pooling,
    RerankerModelDescription, SparseModelDescription,
};
pub use rerank::{CustomReranker, RankedDocument, TextCrossEncoder, TextCrossEncoderBuilder};
pub use runtime::RuntimeOptions;
pub use runtime::{Device, Provider};
pub use sparse::{SparseEmbedding, SparseTextEmbedding, SparseTextEmbeddingBuilder};
pub use text::{CustomTextModel, Embedding, TextEmbedding, TextEmbeddingBuilder};
pub use tokenize::{Token, TokenSpan, TruncationSide};
