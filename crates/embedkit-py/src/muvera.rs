//! MUVERA's fixed-dimensional encodings for Python's `Muvera` class.

use embedkit::{Muvera, MuveraOptions};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray2};
use pyo3::prelude::*;

use crate::err;

/// MUVERA fixed-dimensional encodings.
#[pyclass(frozen, name = "MuveraCore")]
pub(crate) struct MuveraCore {
    inner: Muvera,
}

#[pymethods]
impl MuveraCore {
    #[new]
    fn new(
        dim: usize,
        k_sim: u32,
        dim_proj: usize,
        r_reps: usize,
        random_seed: u64,
    ) -> PyResult<Self> {
        let opts = MuveraOptions {
            k_sim,
            dim_proj,
            r_reps,
            random_seed,
        };
        Ok(MuveraCore {
            inner: Muvera::new(dim, opts).map_err(err)?,
        })
    }

    #[getter]
    fn embedding_size(&self) -> usize {
        self.inner.embedding_size()
    }

    fn process_document<'py>(
        &self,
        py: Python<'py>,
        vectors: PyReadonlyArray2<'py, f32>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let out = self
            .inner
            .process_document(vectors.as_array())
            .map_err(err)?;
        Ok(out.into_pyarray(py))
    }

    fn process<'py>(
        &self,
        py: Python<'py>,
        vectors: PyReadonlyArray2<'py, f32>,
        fill_empty_clusters: bool,
        normalize_by_count: bool,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let out = self
            .inner
            .process(vectors.as_array(), fill_empty_clusters, normalize_by_count)
            .map_err(err)?;
        Ok(out.into_pyarray(py))
    }

    fn process_query<'py>(
        &self,
        py: Python<'py>,
        vectors: PyReadonlyArray2<'py, f32>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let out = self.inner.process_query(vectors.as_array()).map_err(err)?;
        Ok(out.into_pyarray(py))
    }
}
