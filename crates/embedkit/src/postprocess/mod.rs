//! Post-processing of embeddings, as steps a call's options apply in the handle (and any
//! caller may apply itself): Matryoshka shortening, normalization, sparse pruning, int8
//! and binary vectors, and MUVERA fixed-dimensional encodings of multi-vectors.

mod muvera;
pub(crate) mod numpy_rng;
mod ziggurat;

pub use muvera::{MultiVectorModel, Muvera, MuveraOptions};

pub use crate::text::pooling::l2_normalize;

/// Matryoshka shortening: the first `dims` values, L2-normalized again.
pub fn matryoshka(v: &mut Vec<f32>, dims: usize) {
    v.truncate(dims);
    l2_normalize(v);
}

/// Checks a requested vector size against a model's (`name`, `dim`, whether it was
/// trained for shorter vectors): `None` for its own size, `Some(d)` for a shorter one it
/// may take; anything else is an error.
pub fn check_dimensions(
    name: &str,
    dim: usize,
    matryoshka: bool,
    d: usize,
) -> crate::Result<Option<usize>> {
    use crate::Error;
    if d == dim {
        Ok(None)
    } else if d >= 1 && d < dim && matryoshka {
        Ok(Some(d))
    } else if d >= 1 && d < dim {
        Err(Error::InvalidArgument(format!(
            "model {name} was not trained for shortened vectors (Matryoshka), so \
             `dimensions` must be its size, {dim}; got {d}"
        )))
    } else {
        Err(Error::InvalidArgument(format!(
            "dimensions must be an integer from 1 to {dim}, got {d}"
        )))
    }
}

/// How dense vectors are handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum VectorType {
    /// float32, as the model computes them.
    #[default]
    Float32,
    /// int8, each vector scaled so its largest magnitude is 127 (see [`to_int8`]).
    Int8,
    /// One bit per value, packed (see [`to_binary`]).
    Binary,
}

/// The cosine of two vectors, summed in f64; 0 when either is a zero vector.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let n = norm(a) * norm(b);
    if n == 0.0 {
        0.0
    } else {
        (dot / n) as f32
    }
}

/// A dense vector as int8: each value times `127 / max |value|`, rounded. A vector's
/// scale is its own, so cosine similarity (and Qdrant's `Cosine` distance) is kept up to
/// rounding; a zero vector stays zero.
pub fn to_int8(v: &[f32]) -> Vec<i8> {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 || !max.is_finite() {
        return vec![0; v.len()];
    }
    let scale = 127.0 / max;
    v.iter()
        .map(|x| (x * scale).round().clamp(-127.0, 127.0) as i8)
        .collect()
}

/// A dense vector as bits: 1 where a value is above 0, packed eight to a byte, the first
/// value in the highest bit (numpy's `packbits`, what Qdrant's binary quantization and
/// sentence-transformers' `ubinary` take); the last byte is padded with zeros.
pub fn to_binary(v: &[f32]) -> Vec<u8> {
    v.chunks(8)
        .map(|chunk| {
            chunk
                .iter()
                .enumerate()
                .fold(0u8, |byte, (i, x)| byte | (u8::from(*x > 0.0) << (7 - i)))
        })
        .collect()
}

/// A dense vector in an output type ([`VectorType::apply`]); as JSON, an array of its
/// numbers.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum TypedVector {
    Float32(Vec<f32>),
    Int8(Vec<i8>),
    Binary(Vec<u8>),
}

impl TypedVector {
    /// Its bytes as a file or base64 carries them: little-endian floats, the int8 values,
    /// or the packed bits.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            TypedVector::Float32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TypedVector::Int8(v) => v.iter().map(|&x| x as u8).collect(),
            TypedVector::Binary(v) => v.clone(),
        }
    }
}

impl VectorType {
    /// The last step of a dense vector: `v` in this type.
    pub fn apply(self, v: Vec<f32>) -> TypedVector {
        match self {
            VectorType::Float32 => TypedVector::Float32(v),
            VectorType::Int8 => TypedVector::Int8(to_int8(&v)),
            VectorType::Binary => TypedVector::Binary(to_binary(&v)),
        }
    }

    /// Numbers in a vector of `dim` dimensions of this type.
    pub fn width(self, dim: usize) -> usize {
        match self {
            VectorType::Float32 | VectorType::Int8 => dim,
            VectorType::Binary => dim.div_ceil(8),
        }
    }

    /// By its name: `float32`, `int8` or `binary` (its serde name).
    pub fn parse(name: &str) -> crate::Result<VectorType> {
        use serde::de::{value::Error, IntoDeserializer};
        use serde::Deserialize;
        VectorType::deserialize(name.into_deserializer()).map_err(|_: Error| {
            crate::Error::InvalidArgument(format!(
                "unknown output type {name:?}; expected float32, int8 or binary"
            ))
        })
    }
}

/// Sparse pruning: drops weights below `min_weight`, then keeps the `top_k` largest
/// (ties: the lower index); indices stay ascending.
pub fn prune_sparse(
    v: &mut crate::sparse::SparseEmbedding,
    top_k: Option<usize>,
    min_weight: Option<f32>,
) {
    let mut pairs: Vec<(u32, f32)> = v
        .indices
        .iter()
        .copied()
        .zip(v.values.iter().copied())
        .filter(|(_, w)| min_weight.is_none_or(|m| *w >= m))
        .collect();
    if let Some(k) = top_k {
        if pairs.len() > k {
            pairs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            pairs.truncate(k);
            pairs.sort_by_key(|p| p.0);
        }
    }
    (v.indices, v.values) = pairs.into_iter().unzip();
}

pub use crate::rerank::top_k;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_types_parse_by_their_serde_names() {
        for (name, t) in [
            ("float32", VectorType::Float32),
            ("int8", VectorType::Int8),
            ("binary", VectorType::Binary),
        ] {
            assert_eq!(VectorType::parse(name).unwrap(), t);
            assert_eq!(serde_json::to_value(t).unwrap(), name);
        }
        let e = VectorType::parse("int4").unwrap_err();
        assert!(e.to_string().contains("\"int4\""), "{e}");
    }

    #[test]
    fn int8_scales_each_vector_to_127() {
        assert_eq!(to_int8(&[0.5, -1.0, 0.25, 0.0]), vec![64, -127, 32, 0]);
        assert_eq!(to_int8(&[0.0, 0.0]), vec![0, 0]);
    }

    #[test]
    fn binary_packs_sign_bits_first_value_highest() {
        // numpy: np.packbits(np.array([1,0,1,1,0,0,0,0, 1]) > 0) == [176, 128]
        let v = [0.3, -0.1, 2.0, 0.5, 0.0, -3.0, -0.2, -1.0, 0.7];
        assert_eq!(to_binary(&v), vec![0b1011_0000, 0b1000_0000]);
    }

    #[test]
    fn pruning_keeps_the_largest_and_ascending_indices() {
        let mut v = crate::sparse::SparseEmbedding {
            indices: vec![3, 7, 9, 12],
            values: vec![0.5, 0.1, 0.9, 0.5],
        };
        prune_sparse(&mut v, Some(2), Some(0.2));
        assert_eq!(v.indices, vec![3, 9]);
        assert_eq!(v.values, vec![0.5, 0.9]);
    }
}
