//! MUVERA: a multi-vector (tokens × dim) becomes one vector of `r_reps · 2^k_sim ·
//! dim_proj` numbers that a single-vector index can search. For each repetition, SimHash
//! with `k_sim` random hyperplanes puts every token vector in one of `2^k_sim` clusters;
//! each cluster's vectors are summed (documents: averaged, and empty clusters take the
//! first vector of the nearest cluster by Hamming distance), then projected to
//! `dim_proj` dimensions by a random ±1 matrix scaled by `1/sqrt(dim_proj)`.
//!
//! The hyperplanes and projections are drawn exactly as fastembed draws them
//! (`np.random.default_rng(seed)`: `normal` per repetition, then `choice([-1, 1])`), so
//! a document encoded by one can be searched with a query encoded by the other.

use ndarray::{Array2, Array3, ArrayView2};

use super::numpy_rng::NumpyRng;
use crate::error::{Error, Result};
use crate::late_interaction::LateInteractionTextEmbedding;

/// A model whose outputs are multi-vectors of a fixed width.
pub trait MultiVectorModel {
    /// Dimensions of each token vector.
    fn embedding_size(&self) -> usize;
}

impl MultiVectorModel for LateInteractionTextEmbedding {
    fn embedding_size(&self) -> usize {
        LateInteractionTextEmbedding::embedding_size(self)
    }
}

/// MUVERA's parameters, with fastembed's defaults (and, as a per-call option, by these
/// names in JSON; `seed` is `random_seed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MuveraOptions {
    /// SimHash hyperplanes per repetition: `2^k_sim` clusters.
    pub k_sim: u32,
    /// Dimensions each cluster is projected to (at most the input's).
    pub dim_proj: usize,
    /// Independent repetitions, concatenated.
    pub r_reps: usize,
    #[serde(alias = "seed")]
    pub random_seed: u64,
}

impl Default for MuveraOptions {
    fn default() -> Self {
        MuveraOptions {
            k_sim: 5,
            dim_proj: 16,
            r_reps: 20,
            random_seed: 42,
        }
    }
}

/// Largest `k_sim` accepted: 2^20 clusters per repetition is already far past useful.
const MAX_K_SIM: u32 = 20;

/// Fixed-dimensional encodings of multi-vectors, as fastembed's `Muvera`.
#[derive(Debug, Clone)]
pub struct Muvera {
    dim: usize,
    opts: MuveraOptions,
    /// Per repetition, `[dim, k_sim]` hyperplane normals.
    simhash: Vec<Array2<f64>>,
    /// `[r_reps, dim, dim_proj]` of ±1.
    projections: Array3<f64>,
}

impl Muvera {
    /// For multi-vectors of `dim` dimensions.
    pub fn new(dim: usize, opts: MuveraOptions) -> Result<Self> {
        if opts.dim_proj > dim {
            return Err(Error::InvalidArgument(format!(
                "Cannot project to a higher dimensionality (dim_proj={} > dim={dim})",
                opts.dim_proj
            )));
        }
        if dim == 0 || opts.dim_proj == 0 || opts.r_reps == 0 {
            return Err(Error::InvalidArgument(
                "MUVERA needs dim, dim_proj and r_reps of at least 1".into(),
            ));
        }
        if opts.k_sim > MAX_K_SIM {
            return Err(Error::InvalidArgument(format!(
                "k_sim {} makes 2^{} clusters per repetition; at most {MAX_K_SIM} is accepted",
                opts.k_sim, opts.k_sim
            )));
        }
        let k = opts.k_sim as usize;
        let mut rng = NumpyRng::new(opts.random_seed);
        let simhash = (0..opts.r_reps)
            .map(|_| Array2::from_shape_simple_fn((dim, k), || rng.standard_normal()))
            .collect();
        let projections = Array3::from_shape_simple_fn((opts.r_reps, dim, opts.dim_proj), || {
            if rng.below(2) == 0 {
                -1.0
            } else {
                1.0
            }
        });
        Ok(Muvera {
            dim,
            opts,
            simhash,
            projections,
        })
    }

    /// For the outputs of `model`, as fastembed's `Muvera.from_multivector_model`.
    pub fn from_multivector_model(
        model: &impl MultiVectorModel,
        opts: MuveraOptions,
    ) -> Result<Self> {
        Self::new(model.embedding_size(), opts)
    }

    /// Length of the encodings: `r_reps · 2^k_sim · dim_proj`.
    pub fn embedding_size(&self) -> usize {
        self.opts.r_reps * (1usize << self.opts.k_sim) * self.opts.dim_proj
    }

    pub fn options(&self) -> MuveraOptions {
        self.opts
    }

    /// The SimHash hyperplane normals of each repetition, `[dim, k_sim]`.
    pub fn simhash_vectors(&self) -> &[Array2<f64>] {
        &self.simhash
    }

    /// The ±1 projection matrices, `[r_reps, dim, dim_proj]`.
    pub fn projections(&self) -> &Array3<f64> {
        &self.projections
    }

    /// A document's encoding: cluster means, empty clusters filled.
    pub fn process_document(&self, vectors: ArrayView2<'_, f32>) -> Result<Vec<f64>> {
        self.process(vectors, true, true)
    }

    /// A query's encoding: cluster sums, empty clusters left at 0.
    pub fn process_query(&self, vectors: ArrayView2<'_, f32>) -> Result<Vec<f64>> {
        self.process(vectors, false, false)
    }

    /// The encoding with explicit settings (fastembed's `process`).
    pub fn process(
        &self,
        vectors: ArrayView2<'_, f32>,
        fill_empty_clusters: bool,
        normalize_by_count: bool,
    ) -> Result<Vec<f64>> {
        if vectors.ncols() != self.dim {
            return Err(Error::InvalidArgument(format!(
                "expected vectors of shape (n, {}), got {:?}",
                self.dim,
                vectors.shape()
            )));
        }
        if vectors.nrows() == 0 {
            return Err(Error::InvalidArgument(
                "cannot encode an empty multivector".into(),
            ));
        }
        let vectors = vectors.mapv(f64::from);
        let partitions = 1usize << self.opts.k_sim;
        let scale = 1.0 / (self.opts.dim_proj as f64).sqrt();
        let mut out = Vec::with_capacity(self.embedding_size());
        for (rep, hyperplanes) in self.simhash.iter().enumerate() {
            // Cluster id: bit i set when the vector is on the positive side of plane i.
            let dots = vectors.dot(hyperplanes);
            let ids: Vec<usize> = dots
                .outer_iter()
                .map(|row| {
                    row.iter()
                        .enumerate()
                        .filter(|(_, &d)| d > 0.0)
                        .map(|(i, _)| 1usize << i)
                        .sum()
                })
                .collect();
            let mut centers = Array2::<f64>::zeros((partitions, self.dim));
            let mut counts = vec![0usize; partitions];
            let mut first = vec![usize::MAX; partitions];
            for (v, &id) in ids.iter().enumerate() {
                let mut center = centers.row_mut(id);
                center += &vectors.row(v);
                counts[id] += 1;
                if first[id] == usize::MAX {
                    first[id] = v;
                }
            }
            if normalize_by_count {
                for (id, &n) in counts.iter().enumerate().filter(|(_, &n)| n > 0) {
                    centers.row_mut(id).mapv_inplace(|x| x / n as f64);
                }
            }
            if fill_empty_clusters {
                let occupied: Vec<usize> = (0..partitions).filter(|&c| counts[c] > 0).collect();
                for empty in (0..partitions).filter(|&c| counts[c] == 0) {
                    // Nearest occupied cluster by Hamming distance, lowest id on ties.
                    let nearest = occupied
                        .iter()
                        .copied()
                        .min_by_key(|&c| ((c ^ empty).count_ones(), c))
                        .unwrap_or(empty);
                    if let Some(&v) = first.get(nearest).filter(|&&v| v != usize::MAX) {
                        centers.row_mut(empty).assign(&vectors.row(v));
                    }
                }
            }
            if self.opts.dim_proj < self.dim {
                let projection = self.projections.index_axis(ndarray::Axis(0), rep);
                let projected = centers.dot(&projection);
                out.extend(projected.iter().map(|&x| scale * x));
            } else {
                out.extend(centers.iter().copied());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_errors() {
        let m = Muvera::new(
            8,
            MuveraOptions {
                k_sim: 2,
                dim_proj: 4,
                r_reps: 3,
                random_seed: 1,
            },
        )
        .unwrap();
        assert_eq!(m.embedding_size(), 3 * 4 * 4);
        let v = Array2::<f32>::ones((5, 8));
        assert_eq!(m.process_document(v.view()).unwrap().len(), 48);
        assert!(m
            .process_query(Array2::<f32>::zeros((0, 8)).view())
            .is_err());
        assert!(m
            .process_query(Array2::<f32>::zeros((2, 7)).view())
            .is_err());
        assert!(Muvera::new(
            4,
            MuveraOptions {
                dim_proj: 8,
                ..Default::default()
            }
        )
        .is_err());
        assert!(Muvera::new(
            4,
            MuveraOptions {
                k_sim: 40,
                dim_proj: 2,
                ..Default::default()
            }
        )
        .is_err());
    }
}
