//! Post-processing of embeddings: MUVERA fixed-dimensional encodings of multi-vectors.

mod muvera;
pub mod numpy_rng;
mod ziggurat;

pub use muvera::{MultiVectorModel, Muvera, MuveraOptions};
