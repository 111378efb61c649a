//! Which execution providers a session gets: the `device` and `providers` options, what
//! the loaded library and the machine offer, and the fallback rule between them.

use std::path::Path;

use ort::ep::{ExecutionProvider as _, ExecutionProviderDispatch};

use super::library::loaded_library;
use super::RuntimeOptions;
use crate::error::{Error, Result};

/// Which hardware to run on, as fastembed's `cuda` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum Device {
    /// CUDA when ONNX Runtime has its provider and an NVIDIA GPU is present, else CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
}

impl std::str::FromStr for Device {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Device::Auto),
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda),
            other => Err(Error::InvalidArgument(format!(
                "unknown device {other:?}; expected auto, cpu or cuda"
            ))),
        }
    }
}

impl TryFrom<String> for Device {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl TryFrom<String> for Provider {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

/// An execution provider, as named in fastembed's `providers` list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum Provider {
    Cpu,
    Cuda { device_id: Option<i32> },
}

impl Provider {
    pub fn ort_name(&self) -> &'static str {
        match self {
            Provider::Cpu => "CPUExecutionProvider",
            Provider::Cuda { .. } => "CUDAExecutionProvider",
        }
    }
}

impl std::str::FromStr for Provider {
    type Err = Error;
    /// Accepts ONNX Runtime's names (`CPUExecutionProvider`, `CUDAExecutionProvider`) and
    /// the short forms `cpu`, `cuda`, `cuda:N`.
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "cpu" | "cpuexecutionprovider" => Ok(Provider::Cpu),
            "cuda" | "cudaexecutionprovider" => Ok(Provider::Cuda { device_id: None }),
            _ => {
                if let Some(id) = lower.strip_prefix("cuda:") {
                    let device_id = id.parse().map_err(|_| {
                        Error::InvalidArgument(format!("bad CUDA device id in {s:?}"))
                    })?;
                    return Ok(Provider::Cuda {
                        device_id: Some(device_id),
                    });
                }
                Err(Error::InvalidArgument(format!(
                    "unsupported execution provider {s:?}; supported: CPUExecutionProvider, \
                     CUDAExecutionProvider (or cpu, cuda, cuda:N)"
                )))
            }
        }
    }
}

/// Whether an NVIDIA GPU is visible to this process.
pub fn gpu_present() -> bool {
    Path::new("/dev/nvidia0").exists()
        || Path::new("/proc/driver/nvidia/gpus")
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
}

fn cuda_provider_available() -> bool {
    ort::ep::CUDA::is_available().unwrap_or(false)
}

/// Resolves `device` / `providers` into the list of providers to register (see
/// [`choose_providers`]), asking the loaded library and the machine what they have.
pub fn resolve_providers(opts: &RuntimeOptions) -> Result<Vec<Provider>> {
    let wants_cuda = opts.device != Device::Cpu
        || opts
            .providers
            .iter()
            .flatten()
            .any(|p| matches!(p, Provider::Cuda { .. }));
    let library = loaded_library()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "the loaded ONNX Runtime library".into());
    if !wants_cuda {
        return choose_providers(opts, false, false, &library);
    }
    choose_providers(opts, cuda_provider_available(), gpu_present(), &library)
}

/// The fallback rule, as a pure function of what the library (`cuda_provider`; named
/// `library` in errors) and the machine (`gpu`) have:
///
/// - an explicit `providers` list is used as given (CUDA without an id takes the first
///   of `device_ids`); CUDA in it must be usable;
/// - `cpu` is the CPU provider;
/// - `cuda` is CUDA, then the CPU provider for the operators CUDA lacks; if CUDA is not
///   usable it is an error, never a silent fall back to a slower device;
/// - `auto` is `cuda` when both the provider and a GPU are there, else the CPU.
pub fn choose_providers(
    opts: &RuntimeOptions,
    cuda_provider: bool,
    gpu: bool,
    library: &str,
) -> Result<Vec<Provider>> {
    let first_id = opts
        .device_ids
        .as_ref()
        .and_then(|ids| ids.first().copied());
    if let Some(ids) = &opts.device_ids {
        if ids.is_empty() {
            return Err(Error::InvalidArgument("device_ids is empty".into()));
        }
        if let Some(bad) = ids.iter().find(|&&id| id < 0) {
            return Err(Error::InvalidArgument(format!(
                "device id {bad} is negative"
            )));
        }
    }
    let usable = || -> Result<()> {
        if !cuda_provider {
            return Err(Error::Device(format!(
                "CUDA requested, but {library} has no CUDA execution provider; use the \
                 library from the `onnxruntime-gpu` wheel (`make setup-gpu`, then \
                 ORT_DYLIB_PATH) or choose device cpu"
            )));
        }
        if !gpu {
            return Err(Error::Device(
                "CUDA requested, but no NVIDIA GPU is visible (/dev/nvidia0 is missing); \
                 choose device cpu or auto"
                    .into(),
            ));
        }
        Ok(())
    };
    if let Some(list) = &opts.providers {
        if opts.device == Device::Cuda {
            tracing::warn!("`device = cuda` and an explicit providers list were both given; using the providers list");
        }
        if list.is_empty() {
            return Err(Error::InvalidArgument("the providers list is empty".into()));
        }
        let mut out = Vec::with_capacity(list.len());
        for p in list {
            out.push(match p {
                Provider::Cuda { device_id } => {
                    usable()?;
                    Provider::Cuda {
                        device_id: device_id.or(first_id),
                    }
                }
                other => other.clone(),
            });
        }
        return Ok(out);
    }
    let cuda = Provider::Cuda {
        device_id: first_id,
    };
    match opts.device {
        Device::Cpu => Ok(vec![Provider::Cpu]),
        Device::Cuda => {
            usable()?;
            Ok(vec![cuda, Provider::Cpu])
        }
        Device::Auto => {
            if cuda_provider && gpu {
                tracing::info!("device auto: using CUDA");
                Ok(vec![cuda, Provider::Cpu])
            } else {
                tracing::info!(cuda_provider, gpu, "device auto: using CPU");
                Ok(vec![Provider::Cpu])
            }
        }
    }
}

/// The ONNX Runtime provider of `p`.
pub(super) fn dispatch(p: &Provider) -> ExecutionProviderDispatch {
    match p {
        Provider::Cpu => ort::ep::CPU::default()
            // ONNX Runtime's arena, as fastembed has it: without it glibc's per-thread
            // heaps held 1.5x the memory for the same speed (BENCHMARKS.md).
            .with_arena_allocator(true)
            .build()
            .error_on_failure(),
        Provider::Cuda { device_id } => {
            let mut cuda = ort::ep::CUDA::default();
            if let Some(id) = device_id {
                cuda = cuda.with_device_id(*id);
            }
            cuda.build().error_on_failure()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_parse() {
        assert_eq!(
            "CPUExecutionProvider".parse::<Provider>().unwrap(),
            Provider::Cpu
        );
        assert_eq!(
            "cuda:1".parse::<Provider>().unwrap(),
            Provider::Cuda { device_id: Some(1) }
        );
        assert!("TensorrtExecutionProvider".parse::<Provider>().is_err());
        assert!("cuda:x".parse::<Provider>().is_err());
    }
    fn opts(device: Device) -> RuntimeOptions {
        RuntimeOptions {
            device,
            ..RuntimeOptions::default()
        }
    }
    #[test]
    fn providers_follow_the_fallback_rule() {
        use Provider::{Cpu, Cuda};
        let cuda = |id| Cuda { device_id: id };
        // auto: CUDA only when both the provider and a GPU are there.
        assert_eq!(
            choose_providers(&opts(Device::Auto), false, false, "lib.so").unwrap(),
            [Cpu]
        );
        assert_eq!(
            choose_providers(&opts(Device::Auto), true, false, "lib.so").unwrap(),
            [Cpu]
        );
        assert_eq!(
            choose_providers(&opts(Device::Auto), false, true, "lib.so").unwrap(),
            [Cpu]
        );
        assert_eq!(
            choose_providers(&opts(Device::Auto), true, true, "lib.so").unwrap(),
            [cuda(None), Cpu]
        );
        // cpu never asks.
        assert_eq!(
            choose_providers(&opts(Device::Cpu), true, true, "lib.so").unwrap(),
            [Cpu]
        );
        // cuda: an error naming what is missing, never a silent CPU run.
        let e = choose_providers(&opts(Device::Cuda), false, true, "lib.so").unwrap_err();
        assert!(
            e.to_string().contains("onnxruntime-gpu") && e.to_string().contains("lib.so"),
            "{e}"
        );
        let e = choose_providers(&opts(Device::Cuda), true, false, "lib.so").unwrap_err();
        assert!(e.to_string().contains("no NVIDIA GPU"), "{e}");
        // device_ids: the first id for the session; bad lists are errors.
        let ids = RuntimeOptions {
            device_ids: Some(vec![2, 3]),
            ..opts(Device::Cuda)
        };
        assert_eq!(
            choose_providers(&ids, true, true, "lib.so").unwrap(),
            [cuda(Some(2)), Cpu]
        );
        let empty = RuntimeOptions {
            device_ids: Some(vec![]),
            ..opts(Device::Cuda)
        };
        assert!(choose_providers(&empty, true, true, "lib.so").is_err());
        let negative = RuntimeOptions {
            device_ids: Some(vec![-1]),
            ..opts(Device::Cuda)
        };
        assert!(choose_providers(&negative, true, true, "lib.so").is_err());
        // An explicit list wins over device, takes device_ids for an id-less CUDA, and
        // must be usable.
        let list = RuntimeOptions {
            providers: Some(vec![cuda(None), Cpu]),
            device_ids: Some(vec![1]),
            ..opts(Device::Cpu)
        };
        assert_eq!(
            choose_providers(&list, true, true, "lib.so").unwrap(),
            [cuda(Some(1)), Cpu]
        );
        assert!(choose_providers(&list, true, false, "lib.so").is_err());
        let cpu_list = RuntimeOptions {
            providers: Some(vec![Cpu]),
            ..opts(Device::Cuda)
        };
        assert_eq!(
            choose_providers(&cpu_list, false, false, "lib.so").unwrap(),
            [Cpu]
        );
        let none = RuntimeOptions {
            providers: Some(vec![]),
            ..opts(Device::Auto)
        };
        assert!(choose_providers(&none, true, true, "lib.so").is_err());
    }
    #[test]
    fn device_parses() {
        assert_eq!("AUTO".parse::<Device>().unwrap(), Device::Auto);
        assert!("tpu".parse::<Device>().is_err());
    }
}
