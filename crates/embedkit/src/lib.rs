//! embedkit: fastembed's embeddings, in Rust, on ONNX Runtime.
//!
//! The modules follow the pipeline: [`runtime`] loads ONNX Runtime and builds sessions,
//! [`registry`] describes models as data, [`hub`] finds their files, [`tokenize`] and
//! [`batching`] turn texts into padded batches, and each family module ([`text`],
//! [`sparse`], [`late_interaction`], [`rerank`]) turns model outputs into embeddings or
//! scores; [`postprocess`] holds MUVERA.

pub mod batching;
pub mod error;
pub mod hub;
pub mod image;
pub mod late_interaction;
pub mod late_interaction_multimodal;
pub mod options;
pub mod postprocess;
pub mod registry;
pub mod rerank;
pub mod runtime;
#[cfg(feature = "server")]
pub mod server;
pub mod sparse;
pub mod text;
pub mod tokenize;

pub use error::{Error, Result};
pub use image::{ImageEmbedding, ImageEmbeddingBuilder, ImageInput};
pub use late_interaction::{
    max_sim, LateInteractionTextEmbedding, LateInteractionTextEmbeddingBuilder, MultiVector,
};
pub use late_interaction_multimodal::{
    LateInteractionMultimodalEmbedding, LateInteractionMultimodalEmbeddingBuilder,
};
pub use postprocess::{Muvera, MuveraOptions};
pub use registry::{
    DenseModelDescription, ImageModelDescription, LateInteractionModelDescription, ModelSource,
    Pooling, RerankerModelDescription, SparseModelDescription,
};
pub use rerank::{CustomReranker, RankedDocument, TextCrossEncoder, TextCrossEncoderBuilder};
pub use runtime::{Device, Provider};
pub use sparse::{SparseEmbedding, SparseTextEmbedding, SparseTextEmbeddingBuilder};
pub use text::{
    CustomTextModel, EmbedIter, EmbedPurpose, Embedding, TextEmbedding, TextEmbeddingBuilder,
};
