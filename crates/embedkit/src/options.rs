//! Options every model family takes, as fastembed's constructors do: where the files are,
//! how to run the graph, when to load it, how to batch.

use std::sync::{Arc, Mutex};

use crate::batching::DEFAULT_MAX_BATCH_TOKENS;
use crate::error::{Error, Result};
use crate::hub::CacheOptions;
use crate::runtime::RuntimeOptions;

/// fastembed's default batch size.
pub const DEFAULT_BATCH_SIZE: usize = 256;

#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub cache: CacheOptions,
    pub runtime: RuntimeOptions,
    /// Load the model on first use instead of when it is built.
    pub lazy_load: bool,
    /// Default number of texts per batch.
    pub batch_size: usize,
    /// Cap on `texts × padded tokens` per batch.
    pub max_batch_tokens: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            cache: CacheOptions::default(),
            runtime: RuntimeOptions::default(),
            lazy_load: false,
            batch_size: DEFAULT_BATCH_SIZE,
            max_batch_tokens: DEFAULT_MAX_BATCH_TOKENS,
        }
    }
}

impl LoadOptions {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::InvalidArgument("batch_size must be >= 1".into()));
        }
        if self.runtime.threads == Some(0) {
            return Err(Error::InvalidArgument("threads must be >= 1".into()));
        }
        Ok(())
    }
}

/// The builder methods for [`LoadOptions`], for a builder with a `load` field.
macro_rules! load_option_setters {
    () => {
        /// Replaces all the loading options at once.
        pub fn load_options(mut self, load: $crate::options::LoadOptions) -> Self {
            self.load = load;
            self
        }
        /// Folder the model is cached in (fastembed's `cache_dir`).
        pub fn cache_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
            self.load.cache.cache_dir = Some(dir.into());
            self
        }
        /// Load the model files from this folder instead of the cache (`specific_model_path`).
        pub fn specific_model_path(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
            self.load.cache.specific_model_path = Some(dir.into());
            self
        }
        /// Never download; use the cache only (`local_files_only`).
        pub fn local_files_only(mut self, yes: bool) -> Self {
            self.load.cache.local_files_only = yes;
            self
        }
        /// How to reach the hub when the model must be downloaded (default: from the
        /// environment, `HF_ENDPOINT`, `HF_TOKEN`, ...).
        pub fn hub_options(mut self, hub: $crate::hub::HubOptions) -> Self {
            self.load.cache.hub = Some(hub);
            self
        }
        /// ONNX Runtime intra-op (and inter-op) threads.
        pub fn threads(mut self, n: usize) -> Self {
            self.load.runtime.threads = Some(n);
            self
        }
        /// `auto` (default), `cpu` or `cuda` (fastembed's `cuda` argument).
        pub fn device(mut self, device: $crate::runtime::Device) -> Self {
            self.load.runtime.device = device;
            self
        }
        /// An explicit list of execution providers; overrides `device`.
        pub fn providers(mut self, providers: Vec<$crate::runtime::Provider>) -> Self {
            self.load.runtime.providers = Some(providers);
            self
        }
        /// Sessions that run batches side by side (fastembed's `parallel`, on threads);
        /// default: chosen by device and cores.
        pub fn parallel(mut self, n: usize) -> Self {
            self.load.runtime.parallel = Some(n);
            self
        }
        /// GPU ids; this process uses the first.
        pub fn device_ids(mut self, ids: Vec<i32>) -> Self {
            self.load.runtime.device_ids = Some(ids);
            self
        }
        /// The ONNX Runtime library file to load.
        pub fn runtime_library(mut self, path: impl Into<std::path::PathBuf>) -> Self {
            self.load.runtime.library_path = Some(path.into());
            self
        }
        /// Load the model on first use instead of now.
        pub fn lazy_load(mut self, yes: bool) -> Self {
            self.load.lazy_load = yes;
            self
        }
        /// Default number of texts per batch (fastembed's default: 256).
        pub fn batch_size(mut self, n: usize) -> Self {
            self.load.batch_size = n;
            self
        }
        /// Cap on `texts × padded tokens` per batch, which bounds memory whatever the
        /// batch size.
        pub fn max_batch_tokens(mut self, n: usize) -> Self {
            self.load.max_batch_tokens = n.max(1);
            self
        }
    };
}
pub(crate) use load_option_setters;

/// A model backend loaded on first use (fastembed's `lazy_load`) and shared afterwards.
pub(crate) struct Lazy<B: ?Sized>(Mutex<Option<Arc<B>>>);

impl<B: ?Sized> Lazy<B> {
    pub(crate) fn new() -> Self {
        Lazy(Mutex::new(None))
    }

    /// The loaded backend, loading it now if no call has yet.
    pub(crate) fn get_or_load(&self, load: impl FnOnce() -> Result<Arc<B>>) -> Result<Arc<B>> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = slot.as_ref() {
            return Ok(b.clone());
        }
        let backend = load()?;
        *slot = Some(backend.clone());
        Ok(backend)
    }
}
