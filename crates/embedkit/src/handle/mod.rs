//! One handle for a model of any family: [`EmbeddingModel`], loaded from a name (the
//! registry decides what it is), says what it can do ([`Capability`]) and offers those
//! operations typed, with one set of per-call options ([`CallOptions`]).
//!
//! The front ends (server, CLI, Python) dispatch on capabilities rather than on families:
//! a family states its capabilities once, by implementing [`Capable`] for its
//! [`Model`](crate::Model), and is then served, written and called everywhere its
//! capabilities allow. A family whose one forward pass yields several outputs overrides
//! [`Capable::all_stream`] so that a call wanting all of them runs the graph once.

mod call;
mod capable;
mod load;
mod ops;
mod tokens;

use std::sync::Arc;

pub use call::{CallOptions, Capability, TextOutput, TextOutputs, TEXT_OUTPUTS};
pub(crate) use capable::{lacks, one_pass_outputs, text_tokens, texts_of};
pub use capable::{Capable, Images, Loaded, Pairs, Texts};
pub use ops::Operations;

use crate::error::Result;
use crate::registry::Kind;

/// A model of any family, shared cheaply (clones share the loaded model). Its operations
/// are [`Operations`]' (through `Deref` to the model, as every family's `Model` has them).
///
/// ```no_run
/// use embedkit::{CallOptions, Capability, EmbeddingModel, LoadOptions, Operations};
/// let model = EmbeddingModel::load("BAAI/bge-small-en-v1.5", LoadOptions::default())?;
/// assert!(model.can(Capability::DenseText));
/// let vectors = model.embed_dense(&["hello"], &CallOptions::new())?;
/// # Ok::<(), embedkit::Error>(())
/// ```
#[derive(Clone)]
pub struct EmbeddingModel {
    inner: Arc<dyn Capable>,
}

impl std::fmt::Debug for EmbeddingModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddingModel")
            .field("name", &self.name())
            .field("capabilities", &self.capabilities())
            .finish()
    }
}

impl std::ops::Deref for EmbeddingModel {
    type Target = dyn Capable;
    fn deref(&self) -> &Self::Target {
        &*self.inner
    }
}

impl<T: Capable + 'static> From<T> for EmbeddingModel {
    fn from(model: T) -> Self {
        EmbeddingModel {
            inner: Arc::new(model),
        }
    }
}

impl EmbeddingModel {
    /// The folder the model files are read from.
    pub fn model_dir(&self) -> &std::path::Path {
        self.inner.model_dir()
    }

    /// The prompts the model's sentence-transformers configuration names
    /// (`config_sentence_transformers.json`, `"prompts": {"query": "query: ", ...}`), as
    /// TEI's `prompt_name` and sentence-transformers' `encode(prompt_name=...)` use them;
    /// empty when the model has none.
    pub fn prompts(&self) -> Result<std::collections::BTreeMap<String, String>> {
        crate::registry::prompts_in(self.model_dir())
    }

    pub fn name(&self) -> &str {
        self.inner.name()
    }
    pub fn kind(&self) -> Kind {
        self.inner.kind()
    }
    pub fn capabilities(&self) -> &'static [Capability] {
        self.inner.capabilities()
    }
    pub fn dim(&self) -> Option<usize> {
        self.inner.dim()
    }
    pub fn matryoshka(&self) -> bool {
        self.inner.matryoshka()
    }
    pub fn max_length(&self) -> Result<Option<usize>> {
        self.inner.max_length()
    }
    pub fn shares_batches(&self) -> bool {
        self.inner.shares_batches()
    }
}

fn refs<S: AsRef<str>>(texts: &[S]) -> Vec<&str> {
    texts.iter().map(|t| t.as_ref()).collect()
}
