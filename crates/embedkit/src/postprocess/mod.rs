//! Post-processing of embeddings: MUVERA fixed-dimensional encodings of multi-vectors.

mod muvera;
pub mod numpy_rng;
mod ziggurat;

pub use muvera::{MultiVectorModel, Muvera, MuveraOptions};

pub use crate::text::pooling::l2_normalize;

/// Matryoshka shortening: the first `dims` values, L2-normalized again.
pub fn matryoshka(v: &mut Vec<f32>, dims: usize) {
    v.truncate(dims);
    l2_normalize(v);
}
