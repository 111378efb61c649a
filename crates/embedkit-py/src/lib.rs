//! The native half of the Python package `embedkit` (module `embedkit._embedkit`).
//!
//! One class, `Model`, wraps the library's capability handle for a model of any family
//! and computes one chunk of inputs per call, with the GIL released; the Python half
//! (`python/embedkit`) builds fastembed's classes on it from one table, reads inputs
//! lazily chunk by chunk and yields numpy arrays one by one. Options, settings and model
//! descriptions cross as JSON.

use std::path::PathBuf;

use embedkit::postprocess::{self, VectorType};
use embedkit::registry::ModelSource;
use embedkit::{
    CallOptions, Capability, CustomReranker, EmbeddingModel, ImageInput, LoadOptions, Operations,
    Purpose, TextCrossEncoder, TextEmbedding,
};
use numpy::{IntoPyArray, PyArray1, PyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

mod muvera;
use muvera::MuveraCore;

pyo3::create_exception!(
    _embedkit,
    EmbedkitError,
    PyValueError,
    "An error of the embedkit engine (a ValueError, as fastembed raises for bad input)."
);
pyo3::create_exception!(
    _embedkit,
    UnknownModelError,
    EmbedkitError,
    "The model name is not in the registry (the message lists the closest names)."
);
pyo3::create_exception!(
    _embedkit,
    DownloadError,
    EmbedkitError,
    "The model files could not be fetched, or are not cached and offline mode is on."
);
pyo3::create_exception!(
    _embedkit,
    InvalidInputError,
    EmbedkitError,
    "An argument or an input (text, image, batch size) cannot be used."
);
pyo3::create_exception!(
    _embedkit,
    UnsupportedError,
    EmbedkitError,
    "The model does not offer the operation (a dense call on a sparse model, ...)."
);
pyo3::create_exception!(
    _embedkit,
    ModelMismatchError,
    EmbedkitError,
    "The model files do not fit the model's description (graph inputs, outputs, sizes)."
);

/// The engine's error as the Python exception of its kind, with the engine's message:
/// the one place kinds become exception classes.
fn err(e: embedkit::Error) -> PyErr {
    use embedkit::ErrorKind as K;
    let message = e.to_string();
    match e.kind() {
        K::UnknownModel => UnknownModelError::new_err(message),
        K::Unavailable => DownloadError::new_err(message),
        K::InvalidInput => InvalidInputError::new_err(message),
        K::Unsupported => UnsupportedError::new_err(message),
        K::ModelMismatch => ModelMismatchError::new_err(message),
        _ => EmbedkitError::new_err(message),
    }
}

fn json_err(e: serde_json::Error) -> PyErr {
    InvalidInputError::new_err(format!("bad JSON: {e}"))
}

/// The constructor arguments every family shares, as a JSON object with fastembed's
/// argument names: the library's one options type reads it.
fn load_options(json: &str) -> PyResult<LoadOptions> {
    let load: LoadOptions = serde_json::from_str(json).map_err(json_err)?;
    load.validate().map_err(err)?;
    Ok(load)
}

/// fastembed's purposes by name: "document", "query" or "passage".
fn purpose_of(name: &str) -> PyResult<Purpose> {
    match name {
        "document" => Ok(Purpose::Document),
        "query" => Ok(Purpose::Query),
        "passage" => Ok(Purpose::Passage),
        other => Err(InvalidInputError::new_err(format!(
            "unknown purpose {other:?}; expected document, query or passage"
        ))),
    }
}

fn rows<'py>(
    py: Python<'py>,
    vectors: Vec<Vec<f32>>,
    dim: usize,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    array2(py, vectors, dim)
}

fn array2<'py, T: numpy::Element>(
    py: Python<'py>,
    vectors: Vec<Vec<T>>,
    dim: usize,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    let n = vectors.len();
    let flat: Vec<T> = vectors.into_iter().flatten().collect();
    let array = ndarray::Array2::from_shape_vec((n, dim), flat)
        .map_err(|e| EmbedkitError::new_err(format!("vectors of uneven length: {e}")))?;
    Ok(array.into_pyarray(py))
}

/// Dense vectors as an (n, width) array of `dtype`: float32, int8 (each vector scaled to
/// ±127) or binary (uint8, sign bits packed eight to a byte).
fn typed_rows<'py>(
    py: Python<'py>,
    vectors: Vec<Vec<f32>>,
    dim: usize,
    dtype: VectorType,
) -> PyResult<Bound<'py, PyAny>> {
    let width = dtype.width(dim);
    Ok(match dtype {
        VectorType::Float32 => rows(py, vectors, width)?.into_any(),
        VectorType::Int8 => {
            let v = vectors.iter().map(|v| postprocess::to_int8(v)).collect();
            array2(py, v, width)?.into_any()
        }
        VectorType::Binary => {
            let v = vectors.iter().map(|v| postprocess::to_binary(v)).collect();
            array2(py, v, width)?.into_any()
        }
    })
}

fn multi<'py>(
    py: Python<'py>,
    vectors: Vec<ndarray::Array2<f32>>,
) -> Vec<Bound<'py, PyArray2<f32>>> {
    vectors.into_iter().map(|m| m.into_pyarray(py)).collect()
}

/// A model of any family, loaded by name (the registry decides what it is), offering its
/// capabilities: the one engine class every Python class (`TextEmbedding`,
/// `SparseTextEmbedding`, ...) is built on. Each call computes one chunk of inputs with
/// the GIL released.
#[pyclass(frozen)]
struct Model {
    inner: EmbeddingModel,
}

fn capability_of(name: &str) -> PyResult<Capability> {
    Capability::ALL
        .into_iter()
        .find(|c| c.name() == name)
        .ok_or_else(|| InvalidInputError::new_err(format!("unknown capability {name:?}")))
}

/// A call's options from their JSON object (`embedkit::CallOptions`' names: the Python
/// half forwards a call's keyword arguments so, and a new library option needs no code
/// here).
fn call_options(json: &str) -> PyResult<CallOptions> {
    CallOptions::from_json(json).map_err(err)
}

fn sparse_rows(py: Python<'_>, out: Vec<embedkit::SparseEmbedding>) -> SparseRows<'_> {
    out.into_iter()
        .map(|e| {
            let (indices, values) = e.into_parts();
            let indices: Vec<i64> = indices.into_iter().map(i64::from).collect();
            (indices.into_pyarray(py), values.into_pyarray(py))
        })
        .collect()
}

type SparseRows<'py> = Vec<(Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<f32>>)>;
type AllOutputs<'py> = (
    Option<Bound<'py, PyArray2<f32>>>,
    Option<SparseRows<'py>>,
    Option<Vec<Bound<'py, PyArray2<f32>>>>,
);

#[pymethods]
impl Model {
    /// `options`: the loading options as JSON (fastembed's argument names); `settings`:
    /// the family's builder settings as JSON (`null` for the defaults); `wanted`: the
    /// capabilities the caller needs, one of which the model must offer.
    #[new]
    #[pyo3(signature = (model_name, options, settings="null", wanted=Vec::new()))]
    fn new(
        py: Python<'_>,
        model_name: String,
        options: &str,
        settings: &str,
        wanted: Vec<String>,
    ) -> PyResult<Self> {
        let load = load_options(options)?;
        let settings: serde_json::Value = serde_json::from_str(settings).map_err(json_err)?;
        let wanted = wanted
            .iter()
            .map(|w| capability_of(w))
            .collect::<PyResult<Vec<_>>>()?;
        let inner = py
            .detach(|| EmbeddingModel::load_for(&model_name, load, &settings, &wanted))
            .map_err(err)?;
        Ok(Model { inner })
    }

    #[getter]
    fn name(&self) -> String {
        self.inner.name().to_string()
    }

    #[getter]
    fn capabilities(&self) -> Vec<&'static str> {
        self.inner.capabilities().iter().map(|c| c.name()).collect()
    }

    /// The size of the dense vectors (or of the multi-vectors' rows).
    #[getter]
    fn embedding_size(&self) -> Option<usize> {
        self.inner.dim()
    }

    /// The longest token sequence the model takes (texts are truncated to it).
    #[getter]
    fn max_length(&self) -> PyResult<Option<usize>> {
        self.inner.max_length().map_err(err)
    }

    /// Texts → an (n, dim) array of the call's `output_type` (float32 by default).
    /// `options`: the call's options as JSON (the library's `CallOptions`).
    #[pyo3(signature = (texts, options="{}"))]
    fn dense<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        options: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (vectors, o) = self.call(py, options, |m, o| m.embed_dense(&texts, o))?;
        typed_rows(py, vectors, self.width(o.dimensions)?, o.output_type)
    }

    /// Images (paths or file bytes) → an (n, dim) array, as `dense`.
    #[pyo3(signature = (images, options="{}"))]
    fn dense_images<'py>(
        &self,
        py: Python<'py>,
        images: Vec<PyImage>,
        options: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let images: Vec<ImageInput> = images.into_iter().map(ImageInput::from).collect();
        let (vectors, o) = self.call(py, options, |m, o| m.embed_images(&images, o))?;
        typed_rows(py, vectors, self.width(o.dimensions)?, o.output_type)
    }

    /// Texts → a list of (indices int64, values float32), pruned as the options ask.
    #[pyo3(signature = (texts, options="{}"))]
    fn sparse<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        options: &str,
    ) -> PyResult<SparseRows<'py>> {
        let (out, _) = self.call(py, options, |m, o| m.embed_sparse(&texts, o))?;
        Ok(sparse_rows(py, out))
    }

    /// Texts → one (tokens, dim) float32 array each.
    #[pyo3(signature = (texts, options="{}"))]
    fn multi<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        options: &str,
    ) -> PyResult<Vec<Bound<'py, PyArray2<f32>>>> {
        let (out, _) = self.call(py, options, |m, o| m.embed_multi(&texts, o))?;
        Ok(multi(py, out))
    }

    /// Texts → an (n, size) array of MUVERA encodings, of the call's `output_type` (the options' `muvera`
    /// parameters; a query's encoding when `purpose` is "query").
    #[pyo3(signature = (texts, options="{}"))]
    fn muvera<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        options: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (vectors, o) = self.call(py, options, |m, o| m.embed_muvera(&texts, o))?;
        let width = vectors.first().map_or(0, Vec::len);
        typed_rows(py, vectors, width, o.output_type)
    }

    /// A query and documents → `(index, score)` of each document, best first (the
    /// options' `top_n`: only the best N).
    #[pyo3(signature = (query, documents, options="{}"))]
    fn rank(
        &self,
        py: Python<'_>,
        query: &str,
        documents: Vec<String>,
        options: &str,
    ) -> PyResult<Vec<(usize, f32)>> {
        let (ranked, _) = self.call(py, options, |m, o| {
            m.rank(query, documents.iter().map(|d| Ok(d.as_str())), o)
        })?;
        Ok(ranked.into_iter().map(|r| (r.index, r.score)).collect())
    }

    /// Texts → the outputs `wanted` (`dense_text`, `sparse_text`, `multi_vector_text`)
    /// from one pass where the model computes them together: (dense array or None,
    /// sparse rows or None, multi-vectors or None).
    #[pyo3(signature = (texts, wanted, options="{}"))]
    fn outputs<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        wanted: Vec<String>,
        options: &str,
    ) -> PyResult<AllOutputs<'py>> {
        let wanted = wanted
            .iter()
            .map(|w| capability_of(w))
            .collect::<PyResult<Vec<_>>>()?;
        let (out, o) = self.call(py, options, |m, o| m.embed_all(&texts, &wanted, o))?;
        let dense = match out.dense {
            Some(d) => Some(rows(py, d, self.width(o.dimensions)?)?),
            None => None,
        };
        Ok((
            dense,
            out.sparse.map(|s| sparse_rows(py, s)),
            out.multi.map(|m| multi(py, m)),
        ))
    }

    /// Images → one (patches, dim) float32 array each.
    #[pyo3(signature = (images, options="{}"))]
    fn multi_images<'py>(
        &self,
        py: Python<'py>,
        images: Vec<PyImage>,
        options: &str,
    ) -> PyResult<Vec<Bound<'py, PyArray2<f32>>>> {
        let images: Vec<ImageInput> = images.into_iter().map(ImageInput::from).collect();
        let (out, _) = self.call(py, options, |m, o| m.embed_images_multi(&images, o))?;
        Ok(multi(py, out))
    }

    /// (query, document) pairs → one score each.
    #[pyo3(signature = (pairs, options="{}"))]
    fn scores(
        &self,
        py: Python<'_>,
        pairs: Vec<(String, String)>,
        options: &str,
    ) -> PyResult<Vec<f32>> {
        let (scores, _) = self.call(py, options, |m, o| m.score_pairs(&pairs, o))?;
        Ok(scores)
    }

    /// fastembed's `token_count` of texts.
    #[pyo3(signature = (texts, purpose="document", include_extension=false))]
    fn token_count(
        &self,
        py: Python<'_>,
        texts: Vec<String>,
        purpose: &str,
        include_extension: bool,
    ) -> PyResult<usize> {
        let purpose = purpose_of(purpose)?;
        py.detach(|| self.inner.token_count(&texts, purpose, include_extension))
            .map_err(err)
    }

    /// fastembed's `token_count` of (query, document) pairs.
    fn pair_token_count(&self, py: Python<'_>, pairs: Vec<(String, String)>) -> PyResult<usize> {
        py.detach(|| self.inner.pair_token_count(&pairs))
            .map_err(err)
    }
}

impl Model {
    /// One call with the GIL released: its options from their JSON, then `f` on the
    /// model; the options come back for the conversion of the result.
    fn call<T: Send>(
        &self,
        py: Python<'_>,
        options: &str,
        f: impl FnOnce(&EmbeddingModel, &CallOptions) -> embedkit::Result<T> + Send,
    ) -> PyResult<(T, CallOptions)> {
        let o = call_options(options)?;
        let out = py.detach(|| f(&self.inner, &o)).map_err(err)?;
        Ok((out, o))
    }

    /// The width of a call's dense rows.
    fn width(&self, dimensions: Option<usize>) -> PyResult<usize> {
        let dims = self.inner.check_dimensions(dimensions).map_err(err)?;
        dims.or(self.inner.dim())
            .ok_or_else(|| UnsupportedError::new_err("this model has no dense vectors"))
    }
}

/// The registry's family keys, in lookup order (what `list_supported_models` takes).
#[pyfunction]
fn model_kinds() -> Vec<&'static str> {
    embedkit::registry::LISTINGS.iter().map(|l| l.key).collect()
}

/// Every supported model of a family, by its registry key (`dense`, `sparse`,
/// `late_interaction`, `rerank`, `image`, `late_interaction_multimodal`, `bge_m3`, or a
/// family added since) as JSON: built-in, then the custom ones.
#[pyfunction]
fn list_supported_models(kind: &str) -> PyResult<String> {
    use embedkit::registry::LISTINGS;
    let Some(listing) = LISTINGS.iter().find(|l| l.key == kind) else {
        let keys: Vec<&str> = LISTINGS.iter().map(|l| l.key).collect();
        return Err(InvalidInputError::new_err(format!(
            "unknown model kind {kind:?}; the kinds are {}",
            keys.join(", ")
        )));
    };
    let all = listing.to_json().map_err(err)?;
    serde_json::to_string(&all).map_err(json_err)
}

/// The arguments both `add_custom_model`s take besides their own.
#[derive(serde::Deserialize)]
struct CustomCommon {
    model_file: Option<String>,
    description: Option<String>,
    license: Option<String>,
    size_in_gb: Option<f64>,
    additional_files: Option<Vec<String>>,
}

impl CustomCommon {
    /// Sets a custom description's shared fields (defaults where not given).
    fn apply(
        self,
        model_file: &mut String,
        description: &mut String,
        license: &mut String,
        size_in_gb: &mut f64,
        additional_files: &mut Vec<String>,
    ) {
        if let Some(f) = self.model_file {
            *model_file = f;
        }
        *description = self.description.unwrap_or_default();
        *license = self.license.unwrap_or_default();
        *size_in_gb = self.size_in_gb.unwrap_or(0.0);
        *additional_files = self.additional_files.unwrap_or_default();
    }
}

/// fastembed's `TextEmbedding.add_custom_model`; `spec`: its arguments as JSON.
#[pyfunction]
fn add_custom_text_model(spec: &str) -> PyResult<()> {
    #[derive(serde::Deserialize)]
    struct Spec {
        model: String,
        pooling: embedkit::Pooling,
        normalization: bool,
        sources: ModelSource,
        dim: usize,
        /// The graph output to pool (fastembed's `output_name`); default: the first.
        #[serde(default)]
        output_name: Option<String>,
        #[serde(flatten)]
        common: CustomCommon,
    }
    let s: Spec = serde_json::from_str(spec).map_err(json_err)?;
    let mut m =
        embedkit::CustomTextModel::new(s.model, s.pooling, s.normalization, s.sources, s.dim);
    m.output_name = s.output_name;
    s.common.apply(
        &mut m.model_file,
        &mut m.description,
        &mut m.license,
        &mut m.size_in_gb,
        &mut m.additional_files,
    );
    TextEmbedding::add_custom_model(m).map_err(err)
}

/// fastembed's `TextCrossEncoder.add_custom_model`; `spec`: its arguments as JSON.
#[pyfunction]
fn add_custom_reranker(spec: &str) -> PyResult<()> {
    #[derive(serde::Deserialize)]
    struct Spec {
        model: String,
        sources: ModelSource,
        #[serde(flatten)]
        common: CustomCommon,
    }
    let s: Spec = serde_json::from_str(spec).map_err(json_err)?;
    let mut c = CustomReranker::new(s.model, s.sources);
    s.common.apply(
        &mut c.model_file,
        &mut c.description,
        &mut c.license,
        &mut c.size_in_gb,
        &mut c.additional_files,
    );
    TextCrossEncoder::add_custom_model(c).map_err(err)
}

/// An image given from Python: a path or the bytes of a file.
#[derive(FromPyObject)]
enum PyImage {
    Bytes(Vec<u8>),
    Path(PathBuf),
}

impl From<PyImage> for ImageInput {
    fn from(i: PyImage) -> Self {
        match i {
            PyImage::Bytes(b) => ImageInput::Bytes(b),
            PyImage::Path(p) => ImageInput::Path(p),
        }
    }
}

/// The ONNX Runtime library this process loaded, once a model has been built.
#[pyfunction]
fn loaded_runtime_library() -> Option<String> {
    embedkit::unstable::runtime::loaded_library().map(|p| p.display().to_string())
}

#[pymodule]
fn _embedkit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Load NumPy's C API now: loaded lazily, at the first array made, a Ctrl-C arriving
    // then would turn into a panic instead of a KeyboardInterrupt.
    let _ = PyArray1::<f32>::zeros(m.py(), 0, false);
    m.add("EmbedkitError", m.py().get_type::<EmbedkitError>())?;
    m.add("UnknownModelError", m.py().get_type::<UnknownModelError>())?;
    m.add("DownloadError", m.py().get_type::<DownloadError>())?;
    m.add("InvalidInputError", m.py().get_type::<InvalidInputError>())?;
    m.add("UnsupportedError", m.py().get_type::<UnsupportedError>())?;
    m.add(
        "ModelMismatchError",
        m.py().get_type::<ModelMismatchError>(),
    )?;
    m.add_class::<Model>()?;
    // The per-call option names the engine reads (what `options=` JSON may hold).
    m.add("CALL_OPTIONS", CallOptions::NAMES.to_vec())?;
    m.add_class::<MuveraCore>()?;
    m.add_function(wrap_pyfunction!(list_supported_models, m)?)?;
    m.add_function(wrap_pyfunction!(model_kinds, m)?)?;
    m.add_function(wrap_pyfunction!(add_custom_text_model, m)?)?;
    m.add_function(wrap_pyfunction!(add_custom_reranker, m)?)?;
    m.add_function(wrap_pyfunction!(loaded_runtime_library, m)?)?;
    Ok(())
}
