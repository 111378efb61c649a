//! The native half of the Python package `embedkit` (module `embedkit._embedkit`).
//!
//! Each class here wraps one model family of the Rust library and computes one chunk of
//! inputs per call, with the GIL released; the Python half (`python/embedkit`) gives
//! fastembed's names and signatures, reads inputs lazily chunk by chunk and yields
//! numpy arrays one by one. Model descriptions cross as JSON.

use std::path::PathBuf;

use embedkit::registry::ModelSource;
use embedkit::{
    CustomReranker, ImageInput, LateInteractionMultimodalEmbedding, LateInteractionTextEmbedding,
    LoadOptions, Muvera, MuveraOptions, Purpose, SparseTextEmbedding, TextCrossEncoder,
    TextEmbedding,
};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

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
    let n = vectors.len();
    let flat: Vec<f32> = vectors.into_iter().flatten().collect();
    let array = ndarray::Array2::from_shape_vec((n, dim), flat)
        .map_err(|e| EmbedkitError::new_err(format!("vectors of uneven length: {e}")))?;
    Ok(array.into_pyarray(py))
}

fn multi<'py>(
    py: Python<'py>,
    vectors: Vec<ndarray::Array2<f32>>,
) -> Vec<Bound<'py, PyArray2<f32>>> {
    vectors.into_iter().map(|m| m.into_pyarray(py)).collect()
}

/// Dense text embeddings.
#[pyclass(frozen)]
struct Text {
    inner: TextEmbedding,
}

#[pymethods]
impl Text {
    #[new]
    #[pyo3(signature = (model_name, options, add_prefixes=false))]
    fn new(
        py: Python<'_>,
        model_name: String,
        options: &str,
        add_prefixes: bool,
    ) -> PyResult<Self> {
        let load = load_options(options)?;
        let inner = py
            .detach(|| {
                TextEmbedding::builder(model_name)
                    .load_options(load)
                    .add_prefixes(add_prefixes)
                    .build()
            })
            .map_err(err)?;
        Ok(Text { inner })
    }

    /// One chunk of texts → an (n, dim) float32 array. `purpose`: document, query or passage.
    #[pyo3(signature = (texts, batch_size=None, purpose="document"))]
    fn embed<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        batch_size: Option<usize>,
        purpose: &str,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let purpose = purpose_of(purpose)?;
        let vectors = py
            .detach(|| {
                self.inner
                    .try_embed_iter(texts.iter().map(Ok), batch_size, purpose)
                    .collect::<embedkit::Result<Vec<_>>>()
            })
            .map_err(err)?;
        rows(py, vectors, self.inner.embedding_size())
    }

    #[getter]
    fn embedding_size(&self) -> usize {
        self.inner.embedding_size()
    }

    fn token_count(&self, py: Python<'_>, texts: Vec<String>) -> PyResult<usize> {
        py.detach(|| self.inner.token_count(&texts)).map_err(err)
    }

    #[staticmethod]
    fn list_supported_models() -> PyResult<String> {
        serde_json::to_string(&TextEmbedding::list_supported_models()).map_err(json_err)
    }

    /// `spec`: JSON of fastembed's `add_custom_model` arguments.
    #[staticmethod]
    fn add_custom_model(spec: &str) -> PyResult<()> {
        #[derive(serde::Deserialize)]
        struct Spec {
            model: String,
            pooling: embedkit::Pooling,
            normalization: bool,
            sources: ModelSource,
            dim: usize,
            model_file: Option<String>,
            description: Option<String>,
            license: Option<String>,
            size_in_gb: Option<f64>,
            additional_files: Option<Vec<String>>,
        }
        let s: Spec = serde_json::from_str(spec).map_err(json_err)?;
        let mut m =
            embedkit::CustomTextModel::new(s.model, s.pooling, s.normalization, s.sources, s.dim);
        if let Some(f) = s.model_file {
            m.model_file = f;
        }
        m.description = s.description.unwrap_or_default();
        m.license = s.license.unwrap_or_default();
        m.size_in_gb = s.size_in_gb.unwrap_or(0.0);
        m.additional_files = s.additional_files.unwrap_or_default();
        TextEmbedding::add_custom_model(m).map_err(err)
    }
}

/// Sparse text embeddings: each chunk gives a list of (indices int64, values float32).
#[pyclass(frozen)]
struct Sparse {
    inner: SparseTextEmbedding,
}

/// BM25's `k`, `b`, `avg_len` and `language`, each optional.
type Bm25Args = (Option<f64>, Option<f64>, Option<f64>, Option<String>);

type SparseRows<'py> = Vec<(Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<f32>>)>;

#[pymethods]
impl Sparse {
    #[new]
    #[pyo3(signature = (model_name, options, bm25=None))]
    fn new(
        py: Python<'_>,
        model_name: String,
        options: &str,
        bm25: Option<Bm25Args>,
    ) -> PyResult<Self> {
        let load = load_options(options)?;
        let mut builder = SparseTextEmbedding::builder(model_name).load_options(load);
        if let Some((k, b, avg_len, language)) = bm25 {
            let mut o = embedkit::sparse::Bm25Options::default();
            if let Some(k) = k {
                o.k = k;
            }
            if let Some(b) = b {
                o.b = b;
            }
            if let Some(a) = avg_len {
                o.avg_len = a;
            }
            if let Some(l) = language {
                o.language = l;
            }
            builder = builder.bm25(o);
        }
        let inner = py.detach(|| builder.build()).map_err(err)?;
        Ok(Sparse { inner })
    }

    #[pyo3(signature = (texts, batch_size=None, query=false))]
    fn embed<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        batch_size: Option<usize>,
        query: bool,
    ) -> PyResult<SparseRows<'py>> {
        let out = py
            .detach(|| {
                if query {
                    self.inner.query_embed(&texts, batch_size)
                } else {
                    self.inner.embed(&texts, batch_size)
                }
            })
            .map_err(err)?;
        Ok(out
            .into_iter()
            .map(|e| {
                let (indices, values) = e.into_parts();
                let indices: Vec<i64> = indices.into_iter().map(i64::from).collect();
                (indices.into_pyarray(py), values.into_pyarray(py))
            })
            .collect())
    }

    fn token_count(&self, py: Python<'_>, texts: Vec<String>) -> PyResult<usize> {
        py.detach(|| self.inner.token_count(&texts)).map_err(err)
    }

    #[staticmethod]
    fn list_supported_models() -> PyResult<String> {
        serde_json::to_string(&SparseTextEmbedding::list_supported_models()).map_err(json_err)
    }
}

/// Late-interaction (ColBERT-family) text embeddings: one (tokens, dim) array per text.
#[pyclass(frozen)]
struct LateText {
    inner: LateInteractionTextEmbedding,
}

#[pymethods]
impl LateText {
    #[new]
    fn new(py: Python<'_>, model_name: String, options: &str) -> PyResult<Self> {
        let load = load_options(options)?;
        let inner = py
            .detach(|| {
                LateInteractionTextEmbedding::builder(model_name)
                    .load_options(load)
                    .build()
            })
            .map_err(err)?;
        Ok(LateText { inner })
    }

    #[pyo3(signature = (texts, batch_size=None, query=false))]
    fn embed<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        batch_size: Option<usize>,
        query: bool,
    ) -> PyResult<Vec<Bound<'py, PyArray2<f32>>>> {
        let out = py
            .detach(|| {
                if query {
                    self.inner.query_embed(&texts, batch_size)
                } else {
                    self.inner.embed(&texts, batch_size)
                }
            })
            .map_err(err)?;
        Ok(multi(py, out))
    }

    #[getter]
    fn embedding_size(&self) -> usize {
        self.inner.embedding_size()
    }

    #[pyo3(signature = (texts, is_doc=true, include_extension=false))]
    fn token_count(
        &self,
        py: Python<'_>,
        texts: Vec<String>,
        is_doc: bool,
        include_extension: bool,
    ) -> PyResult<usize> {
        let purpose = if is_doc {
            Purpose::Document
        } else {
            Purpose::Query
        };
        py.detach(|| {
            self.inner
                .token_count_with(&texts, purpose, include_extension)
        })
        .map_err(err)
    }

    #[staticmethod]
    fn list_supported_models() -> PyResult<String> {
        serde_json::to_string(&LateInteractionTextEmbedding::list_supported_models())
            .map_err(json_err)
    }
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

/// Dense image embeddings.
#[pyclass(frozen)]
struct Image {
    inner: embedkit::ImageEmbedding,
}

#[pymethods]
impl Image {
    #[new]
    fn new(py: Python<'_>, model_name: String, options: &str) -> PyResult<Self> {
        let load = load_options(options)?;
        let inner = py
            .detach(|| {
                embedkit::ImageEmbedding::builder(model_name)
                    .load_options(load)
                    .build()
            })
            .map_err(err)?;
        Ok(Image { inner })
    }

    #[pyo3(signature = (images, batch_size=None))]
    fn embed<'py>(
        &self,
        py: Python<'py>,
        images: Vec<PyImage>,
        batch_size: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let vectors = py
            .detach(|| self.inner.embed(images, batch_size))
            .map_err(err)?;
        rows(py, vectors, self.inner.embedding_size())
    }

    #[staticmethod]
    fn list_supported_models() -> PyResult<String> {
        serde_json::to_string(&embedkit::ImageEmbedding::list_supported_models()).map_err(json_err)
    }
}

/// Multimodal late interaction (ColPali, ColModernVBert).
#[pyclass(frozen)]
struct Multimodal {
    inner: LateInteractionMultimodalEmbedding,
}

#[pymethods]
impl Multimodal {
    #[new]
    fn new(py: Python<'_>, model_name: String, options: &str) -> PyResult<Self> {
        let load = load_options(options)?;
        let inner = py
            .detach(|| {
                LateInteractionMultimodalEmbedding::builder(model_name)
                    .load_options(load)
                    .build()
            })
            .map_err(err)?;
        Ok(Multimodal { inner })
    }

    #[pyo3(signature = (texts, batch_size=None))]
    fn embed_text<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        batch_size: Option<usize>,
    ) -> PyResult<Vec<Bound<'py, PyArray2<f32>>>> {
        let out = py
            .detach(|| self.inner.embed_text(&texts, batch_size))
            .map_err(err)?;
        Ok(multi(py, out))
    }

    #[pyo3(signature = (images, batch_size=None))]
    fn embed_image<'py>(
        &self,
        py: Python<'py>,
        images: Vec<PyImage>,
        batch_size: Option<usize>,
    ) -> PyResult<Vec<Bound<'py, PyArray2<f32>>>> {
        let out = py
            .detach(|| self.inner.embed_image(images, batch_size))
            .map_err(err)?;
        Ok(multi(py, out))
    }

    #[getter]
    fn embedding_size(&self) -> usize {
        self.inner.embedding_size()
    }

    #[staticmethod]
    fn list_supported_models() -> PyResult<String> {
        serde_json::to_string(&LateInteractionMultimodalEmbedding::list_supported_models())
            .map_err(json_err)
    }
}

/// Cross-encoder reranking.
#[pyclass(frozen)]
struct CrossEncoder {
    inner: TextCrossEncoder,
}

#[pymethods]
impl CrossEncoder {
    #[new]
    fn new(py: Python<'_>, model_name: String, options: &str) -> PyResult<Self> {
        let load = load_options(options)?;
        let inner = py
            .detach(|| {
                TextCrossEncoder::builder(model_name)
                    .load_options(load)
                    .build()
            })
            .map_err(err)?;
        Ok(CrossEncoder { inner })
    }

    #[pyo3(signature = (pairs, batch_size=None))]
    fn rerank_pairs(
        &self,
        py: Python<'_>,
        pairs: Vec<(String, String)>,
        batch_size: Option<usize>,
    ) -> PyResult<Vec<f32>> {
        py.detach(|| self.inner.rerank_pairs(&pairs, batch_size))
            .map_err(err)
    }

    fn token_count(&self, py: Python<'_>, pairs: Vec<(String, String)>) -> PyResult<usize> {
        py.detach(|| self.inner.token_count(&pairs)).map_err(err)
    }

    #[staticmethod]
    fn list_supported_models() -> PyResult<String> {
        serde_json::to_string(&TextCrossEncoder::list_supported_models()).map_err(json_err)
    }

    /// `spec`: JSON of fastembed's `add_custom_model` arguments.
    #[staticmethod]
    fn add_custom_model(spec: &str) -> PyResult<()> {
        #[derive(serde::Deserialize)]
        struct Spec {
            model: String,
            sources: ModelSource,
            model_file: Option<String>,
            description: Option<String>,
            license: Option<String>,
            size_in_gb: Option<f64>,
            additional_files: Option<Vec<String>>,
        }
        let s: Spec = serde_json::from_str(spec).map_err(json_err)?;
        let mut c = CustomReranker::new(s.model, s.sources);
        if let Some(f) = s.model_file {
            c.model_file = f;
        }
        c.description = s.description.unwrap_or_default();
        c.license = s.license.unwrap_or_default();
        c.size_in_gb = s.size_in_gb.unwrap_or(0.0);
        c.additional_files = s.additional_files.unwrap_or_default();
        TextCrossEncoder::add_custom_model(c).map_err(err)
    }
}

/// MUVERA fixed-dimensional encodings.
#[pyclass(frozen, name = "MuveraCore")]
struct MuveraCore {
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

/// The ONNX Runtime library this process loaded, once a model has been built.
#[pyfunction]
fn loaded_runtime_library() -> Option<String> {
    embedkit::runtime::loaded_library().map(|p| p.display().to_string())
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
    m.add_class::<Text>()?;
    m.add_class::<Sparse>()?;
    m.add_class::<LateText>()?;
    m.add_class::<Image>()?;
    m.add_class::<Multimodal>()?;
    m.add_class::<CrossEncoder>()?;
    m.add_class::<MuveraCore>()?;
    m.add_function(wrap_pyfunction!(loaded_runtime_library, m)?)?;
    Ok(())
}
