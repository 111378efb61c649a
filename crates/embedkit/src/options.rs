//! The options every model family takes, as fastembed's constructors do: where the
//! files are, how to run the graph, when to load it, how to batch. Declared once: the
//! builders set them, the CLI flattens them into its flags (feature `cli`), and the
//! Python package hands them over as a JSON object with fastembed's argument names.

use serde::Deserialize;

use crate::batching::DEFAULT_MAX_BATCH_TOKENS;
use crate::error::{Error, Result};
use crate::hub::CacheOptions;
use crate::runtime::RuntimeOptions;

/// How to find, load and run a model.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[serde(default)]
pub struct LoadOptions {
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub cache: CacheOptions,
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub runtime: RuntimeOptions,
    /// Load the model on first use instead of when it is built (fastembed's `lazy_load`).
    #[cfg_attr(feature = "cli", arg(skip))]
    pub lazy_load: bool,
    /// Inputs per batch; default: the family's (fastembed's 256 for texts, 64 for
    /// reranking, 16 for images). Batches are also capped by tokens.
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub batch_size: Option<usize>,
    /// Cap on inputs × padded tokens per batch: bounds memory whatever the batch size
    /// (small batches are fastest on CPUs; larger pay off on GPUs).
    #[cfg_attr(feature = "cli", arg(long, value_name = "N", default_value_t = DEFAULT_MAX_BATCH_TOKENS))]
    pub max_batch_tokens: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            cache: CacheOptions::default(),
            runtime: RuntimeOptions::default(),
            lazy_load: false,
            batch_size: None,
            max_batch_tokens: DEFAULT_MAX_BATCH_TOKENS,
        }
    }
}

impl LoadOptions {
    /// Refuses values no model can run with, before anything is loaded.
    pub fn validate(&self) -> Result<()> {
        check_batch_size(self.batch_size)?;
        if self.max_batch_tokens == 0 {
            return Err(Error::InvalidArgument(
                "max_batch_tokens must be at least 1".into(),
            ));
        }
        self.runtime.validate()
    }
}

/// A batch size given to one call: `None` (the model's) or at least 1.
pub(crate) fn check_batch_size(batch_size: Option<usize>) -> Result<()> {
    if batch_size == Some(0) {
        return Err(Error::InvalidArgument(
            "batch_size must be at least 1".into(),
        ));
    }
    Ok(())
}
