//! The one error type of the library: every failure a user can cause or meet, with a
//! message that says what went wrong and, where there is one, what to do next.

use std::path::PathBuf;

/// Result alias used across embedkit.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No ONNX Runtime shared library could be found or loaded.
    #[error("{0}")]
    RuntimeNotFound(String),

    /// ONNX Runtime failed (loading a model, running it); its own error is the source.
    #[error("ONNX Runtime error: {0}")]
    Ort(#[source] ort::Error),

    /// embedkit broke one of its own rules (a batch without results, a worker that
    /// panicked): a bug to report, not something the caller did.
    #[error("internal error: {0}")]
    Internal(String),

    /// The requested execution provider or device cannot be used here.
    #[error("{0}")]
    Device(String),

    /// The model name is not in the registry.
    #[error("model {name:?} is not supported{}", suggestion(.close))]
    UnknownModel { name: String, close: Vec<String> },

    /// A model with that name is already registered.
    #[error("model {0:?} is already registered; choose another name for the custom model")]
    DuplicateModel(String),

    /// A model file the description needs is missing.
    #[error("model file {file:?} not found in {dir}")]
    MissingFile { file: String, dir: PathBuf },

    /// The model files are not in the cache and nothing may fetch them.
    #[error("{0}")]
    NotCached(String),

    /// Fetching model files failed, or the cache could not be trusted to hold them.
    #[error("{0}")]
    Download(String),

    /// An archive tried to write outside its folder, or was too large.
    #[error("refused to extract {path}: {reason}")]
    UnsafeArchive { path: PathBuf, reason: String },

    /// A model file or config exists but cannot be used.
    #[error("invalid model file {path}: {reason}")]
    InvalidModel { path: PathBuf, reason: String },

    /// ONNX Runtime refused a model file (truncated, corrupt, an unknown operator).
    #[error("invalid model file {path}: ONNX Runtime could not load it: {source}")]
    UnloadableModel {
        path: PathBuf,
        #[source]
        source: ort::Error,
    },

    /// The ONNX graph does not have the inputs or outputs the pipeline needs.
    #[error("model {model:?}: {reason}")]
    ModelMismatch { model: String, reason: String },

    /// Tokenizer construction or encoding failed (embedkit's own check).
    #[error("tokenizer error: {0}")]
    Tokenizer(String),

    /// The `tokenizers` crate failed to configure a tokenizer or encode a text; its own
    /// error is the source.
    #[error("tokenizer error: {source}")]
    TokenizerFailed {
        #[source]
        source: tokenizers::Error,
    },

    /// The ONNX Runtime library was found but could not be loaded; its own error is the
    /// source.
    #[error(
        "could not load ONNX Runtime from {}: {source}. It needs ONNX Runtime >= 1.17 \
         built for this platform (glibc >= 2.28 on Linux); `make setup` fetches a \
         known-good one.",
        path.display()
    )]
    RuntimeLoad {
        path: PathBuf,
        #[source]
        source: ort::LoadDynamicError,
    },

    /// A graph's output does not have the shape the family reads (a model that is not
    /// what its description says).
    #[error("unexpected model output: {0}")]
    OutputShape(String),

    /// A graph's output is not the tensor type the family reads.
    #[error("output {output:?} of {} is not a float32 tensor: {source}", path.display())]
    OutputType {
        output: String,
        path: PathBuf,
        #[source]
        source: ort::Error,
    },

    /// An argument is out of range or inconsistent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Input text could not be read.
    #[error("input line {line}: {reason}")]
    Input { line: usize, reason: String },

    /// A row of a table (CSV, Parquet) could not be used.
    #[error("input row {row}: {reason}")]
    InputRow { row: u64, reason: String },

    /// An image could not be read or decoded; `image` names the file (or says it came
    /// as bytes) and `input` is its position among the inputs of the call, when known.
    #[error("cannot decode image {image}{}: {reason}", at_input(.input))]
    Image {
        image: String,
        reason: String,
        input: Option<usize>,
    },

    /// A text is longer than the model takes and the call asked not to cut it
    /// (`CallOptions::truncate` false); `input` is its position in the call.
    #[error("input {input} is longer than the model takes ({}) and truncation is off", .max.map_or_else(|| "its maximum".to_string(), |m| format!("{m} tokens")))]
    TooLong { input: usize, max: Option<usize> },

    /// The operation is known but not implemented for this model family yet.
    #[error("{0}")]
    Unsupported(String),

    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn at_input(input: &Option<usize>) -> String {
    input.map_or_else(String::new, |i| format!(" (input {i})"))
}

fn suggestion(close: &[String]) -> String {
    if close.is_empty() {
        "; run `embedkit models` to list the supported models".to_string()
    } else {
        format!("; did you mean: {}?", close.join(", "))
    }
}

impl Error {
    /// The position among the call's inputs of the input this error is about, when it
    /// is about one (an image that does not decode).
    pub fn input_index(&self) -> Option<usize> {
        match self {
            Error::Image { input, .. } => *input,
            _ => None,
        }
    }

    /// Renumbers the input this error is about: a batch knows the position in itself,
    /// each layer above maps it to its own (`at` gives the position in the batch).
    pub(crate) fn at_input(mut self, at: impl FnOnce(usize) -> usize) -> Self {
        if let Error::Image { input, .. } = &mut self {
            *input = input.map(at);
        }
        self
    }

    /// Marks this error as about the input at `i` of a batch (the innermost layer).
    pub(crate) fn for_input(mut self, i: usize) -> Self {
        if let Error::Image { input, .. } = &mut self {
            *input = Some(i);
        }
        self
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<tokenizers::Error> for Error {
    fn from(source: tokenizers::Error) -> Self {
        Error::TokenizerFailed { source }
    }
}

impl From<ort::Error> for Error {
    fn from(e: ort::Error) -> Self {
        Error::Ort(e)
    }
}

impl From<ort::Error<ort::session::builder::SessionBuilder>> for Error {
    fn from(e: ort::Error<ort::session::builder::SessionBuilder>) -> Self {
        Error::Ort(e.into())
    }
}

/// What kind of failure an [`Error`] is: what each front end maps to its own terms
/// (an HTTP status, a Python exception class, an exit code), in one place each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// An argument, option or input (text, image, row, token ids) cannot be used.
    InvalidInput,
    /// The model name is not in the registry.
    UnknownModel,
    /// The model does not offer the operation.
    Unsupported,
    /// The model files could not be fetched, are not cached, or were refused.
    Unavailable,
    /// The model files do not fit the model's description.
    ModelMismatch,
    /// The machine: no runtime library, an unusable device, a file that cannot be read
    /// or written.
    Environment,
    /// ONNX Runtime failed while loading or running a graph.
    Runtime,
    /// A bug in embedkit.
    Internal,
}

impl Error {
    /// The kind of failure, for front ends to map.
    pub fn kind(&self) -> ErrorKind {
        use ErrorKind as K;
        match self {
            Error::InvalidArgument(_)
            | Error::Input { .. }
            | Error::InputRow { .. }
            | Error::TooLong { .. }
            | Error::Image { .. }
            | Error::DuplicateModel(_)
            | Error::Tokenizer(_)
            | Error::TokenizerFailed { .. } => K::InvalidInput,
            Error::UnknownModel { .. } => K::UnknownModel,
            Error::Unsupported(_) => K::Unsupported,
            Error::NotCached(_) | Error::Download(_) | Error::UnsafeArchive { .. } => {
                K::Unavailable
            }
            Error::ModelMismatch { .. }
            | Error::InvalidModel { .. }
            | Error::UnloadableModel { .. }
            | Error::MissingFile { .. }
            | Error::OutputType { .. }
            | Error::OutputShape(_) => K::ModelMismatch,
            Error::RuntimeNotFound(_)
            | Error::RuntimeLoad { .. }
            | Error::Device(_)
            | Error::Io { .. } => K::Environment,
            Error::Ort(_) => K::Runtime,
            Error::Internal(_) => K::Internal,
        }
    }
}
