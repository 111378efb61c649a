//! ONNX Runtime, one job a module: finding and loading the shared library (`library`),
//! choosing execution providers (`device`), loading PyPI's CUDA libraries (`cuda`),
//! laying out a graph's sessions (`plan`) and running them (`session`). Knows nothing of
//! model families. Public: the options, devices and providers, and where the library
//! is found.

mod cuda;
mod device;
mod library;
mod plan;
mod session;

use std::path::PathBuf;

pub use device::{gpu_present, Device, Provider};
pub(crate) use library::non_empty_env;
pub use library::{
    embedkit_home, find_library, loaded_library, python_site_dirs, runtime_info, LibrarySource,
    RuntimeInfo, ORT_VERSION,
};
pub(crate) use session::{Lane, OnnxModel};

/// How to build sessions: the options every model family shares.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[serde(default)]
pub struct RuntimeOptions {
    /// ONNX Runtime threads per session; default: every core.
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub threads: Option<usize>,
    /// auto (CUDA when ONNX Runtime has it and a GPU is visible), cpu or cuda.
    #[cfg_attr(feature = "cli", arg(long, default_value = "auto"))]
    pub device: Device,
    /// Execution providers, comma-separated (e.g. CUDAExecutionProvider,CPUExecutionProvider);
    /// overrides the device (fastembed's `providers`).
    #[cfg_attr(feature = "cli", arg(long, value_delimiter = ','))]
    pub providers: Option<Vec<Provider>>,
    /// GPUs to run on, comma-separated (e.g. 0,1): one session on each, batches shared
    /// between them (fastembed's `device_ids`).
    #[cfg_attr(feature = "cli", arg(long, value_delimiter = ','))]
    pub device_ids: Option<Vec<i32>>,
    /// The ONNX Runtime library to load, before the other places are searched.
    #[cfg_attr(feature = "cli", arg(long = "runtime-library", value_name = "FILE"))]
    #[serde(alias = "runtime_library")]
    pub library_path: Option<PathBuf>,
    /// Sessions running batches side by side (fastembed's `parallel`, with threads
    /// instead of processes); default: by device and cores.
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub parallel: Option<usize>,
    /// exact (default: fastembed's vectors) or int8 (matrix products in int8,
    /// calibrated and cached beside the model at first load; faster on CPUs with
    /// VNNI/AMX, vectors close but not equal).
    #[cfg_attr(feature = "cli", arg(long, default_value = "exact"))]
    pub precision: crate::quantize::Precision,
}

impl RuntimeOptions {
    /// Refuses thread and session counts of zero.
    pub fn validate(&self) -> crate::Result<()> {
        for (name, value) in [("threads", self.threads), ("parallel", self.parallel)] {
            if value == Some(0) {
                return Err(crate::Error::InvalidArgument(format!(
                    "{name} must be at least 1"
                )));
            }
        }
        Ok(())
    }
}

// The integration tests' folder guard, for the unit tests too.
#[cfg(test)]
#[path = "../../tests/common/tmp.rs"]
mod test_tmp;

/// A fresh folder for one unit test (each has its own name), removed when it passes.
#[cfg(test)]
pub(crate) fn test_dir(name: &str) -> test_tmp::TmpDir {
    test_tmp::TmpDir::new("embedkit-rt-test", name)
}
