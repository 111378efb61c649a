//! ONNX Runtime: finding the shared library, the process-wide environment, execution
//! providers and device selection, and building sessions. Knows nothing of model families.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use ort::environment::Environment;
use ort::ep::{ExecutionProvider as _, ExecutionProviderDispatch};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;

use crate::error::{Error, Result};

/// The ONNX Runtime version `make setup` fetches and the docs name.
pub const ORT_VERSION: &str = "1.32.0";

#[cfg(target_os = "windows")]
const LIB_PREFIX: &str = "onnxruntime";
#[cfg(not(target_os = "windows"))]
const LIB_PREFIX: &str = "libonnxruntime";
#[cfg(target_os = "windows")]
const LIB_EXT: &str = "dll";
#[cfg(target_os = "macos")]
const LIB_EXT: &str = "dylib";
#[cfg(all(not(target_os = "windows"), not(target_os = "macos")))]
const LIB_EXT: &str = "so";

/// Where the runtime library was found; logged and shown by `embedkit info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibrarySource {
    Explicit,
    EnvVar,
    BesideExecutable,
    Cache,
    PythonPackage,
}

/// embedkit's own cache folder (runtime library, demo models): `$EMBEDKIT_HOME`, else
/// `$XDG_CACHE_HOME/embedkit`, else `~/.cache/embedkit`.
pub fn embedkit_home() -> PathBuf {
    if let Some(p) = non_empty_env("EMBEDKIT_HOME") {
        return PathBuf::from(p);
    }
    if let Some(p) = non_empty_env("XDG_CACHE_HOME") {
        return PathBuf::from(p).join("embedkit");
    }
    if let Some(home) = non_empty_env("HOME").or_else(|| non_empty_env("USERPROFILE")) {
        return PathBuf::from(home).join(".cache").join("embedkit");
    }
    std::env::temp_dir().join("embedkit")
}

pub(crate) fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Finds the ONNX Runtime shared library, in this order: `explicit`; `ORT_DYLIB_PATH`;
/// a `lib/` folder beside the executable; `<embedkit home>/runtime/`; the `onnxruntime`
/// Python package of the system's (or the active virtualenv's) Python.
pub fn find_library(explicit: Option<&Path>) -> Result<(PathBuf, LibrarySource)> {
    let mut tried: Vec<String> = Vec::new();
    if let Some(p) = explicit {
        return existing_file(p, "the explicit runtime library option")
            .map(|p| (p, LibrarySource::Explicit));
    }
    if let Some(p) = non_empty_env("ORT_DYLIB_PATH") {
        return existing_file(Path::new(&p), "ORT_DYLIB_PATH").map(|p| (p, LibrarySource::EnvVar));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("lib")))
    {
        if let Some(p) = library_in_dir(&dir) {
            return Ok((p, LibrarySource::BesideExecutable));
        }
        tried.push(dir.display().to_string());
    }
    let cache = embedkit_home().join("runtime");
    if let Some(p) = library_in_dir(&cache) {
        return Ok((p, LibrarySource::Cache));
    }
    tried.push(cache.display().to_string());
    match python_package_dir() {
        Some(dir) => {
            let capi = dir.join("capi");
            if let Some(p) = library_in_dir(&capi) {
                return Ok((p, LibrarySource::PythonPackage));
            }
            tried.push(capi.display().to_string());
        }
        None => tried.push("the onnxruntime Python package (not installed)".into()),
    }
    Err(Error::RuntimeNotFound(format!(
        "ONNX Runtime shared library ({LIB_PREFIX}.{LIB_EXT}) not found; looked in: {}.\n\
         Get one with `make setup` (fetches onnxruntime=={ORT_VERSION} from PyPI into {}), \
         or `pip install onnxruntime`, or point ORT_DYLIB_PATH at the library file.",
        tried.join(", "),
        cache.display()
    )))
}

fn existing_file(p: &Path, what: &str) -> Result<PathBuf> {
    if p.is_file() {
        Ok(p.to_path_buf())
    } else if p.is_dir() {
        library_in_dir(p).ok_or_else(|| {
            Error::RuntimeNotFound(format!(
                "{what} points to the folder {} which holds no {LIB_PREFIX}.{LIB_EXT}",
                p.display()
            ))
        })
    } else {
        Err(Error::RuntimeNotFound(format!(
            "{what} points to {}, which does not exist",
            p.display()
        )))
    }
}

/// The library file in `dir`: the unversioned name if present, else the highest
/// versioned one (wheels ship only `libonnxruntime.so.1.x.y`).
fn library_in_dir(dir: &Path) -> Option<PathBuf> {
    let plain = dir.join(format!("{LIB_PREFIX}.{LIB_EXT}"));
    if plain.is_file() {
        return Some(plain);
    }
    let prefix = format!("{LIB_PREFIX}.{LIB_EXT}.");
    let mut versioned: Vec<(Vec<u64>, PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let version = name.strip_prefix(&prefix)?;
            let parts: Option<Vec<u64>> = version.split('.').map(|s| s.parse().ok()).collect();
            Some((parts?, e.path()))
        })
        .filter(|(_, p)| p.is_file())
        .collect();
    versioned.sort();
    versioned.pop().map(|(_, p)| p)
}

/// The folder of an installed `onnxruntime` Python package, if any Python has one.
fn python_package_dir() -> Option<PathBuf> {
    let mut pythons: Vec<PathBuf> = Vec::new();
    if let Some(venv) = non_empty_env("VIRTUAL_ENV") {
        pythons.push(PathBuf::from(venv).join("bin").join("python"));
    }
    pythons.push("python3".into());
    pythons.push("python".into());
    for py in pythons {
        let out = Command::new(&py)
            .args([
                "-c",
                "import importlib.util as u, os; s = u.find_spec('onnxruntime'); \
                 print(os.path.dirname(s.origin) if s and s.origin else '')",
            ])
            .stderr(std::process::Stdio::null())
            .output();
        if let Ok(out) = out {
            let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && !dir.is_empty() {
                return Some(PathBuf::from(dir));
            }
        }
    }
    None
}

struct LoadedRuntime {
    env: Environment,
    path: PathBuf,
}

static RUNTIME: OnceLock<LoadedRuntime> = OnceLock::new();
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// The process-wide ONNX Runtime environment, loading the library on first use.
/// ONNX Runtime allows one environment per process, so the first caller's library wins.
pub fn environment(explicit_library: Option<&Path>) -> Result<&'static Environment> {
    if let Some(rt) = RUNTIME.get() {
        if let Some(p) = explicit_library {
            if p != rt.path {
                tracing::warn!(
                    requested = %p.display(),
                    loaded = %rt.path.display(),
                    "ONNX Runtime is already loaded from another file; keeping it"
                );
            }
        }
        return Ok(&rt.env);
    }
    let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(rt) = RUNTIME.get() {
        return Ok(&rt.env);
    }
    let (path, source) = find_library(explicit_library)?;
    tracing::info!(path = %path.display(), ?source, "loading ONNX Runtime");
    let builder = ort::init_from(&path).map_err(|e| {
        Error::RuntimeNotFound(format!(
            "could not load ONNX Runtime from {}: {e}. It needs ONNX Runtime >= 1.17 built for \
             this platform (glibc >= 2.28 on Linux); `make setup` fetches a known-good one.",
            path.display()
        ))
    })?;
    let env = builder
        .with_name("embedkit")
        .build()
        .map_err(|e| Error::Ort(e.to_string()))?;
    let _ = RUNTIME.set(LoadedRuntime { env, path });
    RUNTIME
        .get()
        .map(|rt| &rt.env)
        .ok_or_else(|| Error::Ort("runtime initialisation raced".into()))
}

/// The path of the loaded runtime library, if it has been loaded.
pub fn loaded_library() -> Option<PathBuf> {
    RUNTIME.get().map(|rt| rt.path.clone())
}

/// Which hardware to run on, as fastembed's `cuda` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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

/// An execution provider, as named in fastembed's `providers` list.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// How to build sessions: the options every model family shares.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Intra-op (and inter-op) threads; `None` lets ONNX Runtime decide.
    pub threads: Option<usize>,
    pub device: Device,
    /// An explicit provider list; overrides `device` (like fastembed's `providers`).
    pub providers: Option<Vec<Provider>>,
    /// GPU ids; the first one is used by this process (fastembed's `device_ids`).
    pub device_ids: Option<Vec<i32>>,
    /// ONNX Runtime library to load, before the other places are searched.
    pub library_path: Option<PathBuf>,
    /// Sessions of each graph that run batches side by side (fastembed's `parallel`,
    /// with threads instead of processes); `None` picks by device and cores.
    pub parallel: Option<usize>,
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

/// Load order of the CUDA libraries: each after those it links against, so that its
/// dependencies resolve to the copies already loaded.
const CUDA_LOAD_ORDER: [&str; 15] = [
    "libcudart.so",
    "libnvrtc.so",
    "libnvrtc-builtins.so",
    "libnvJitLink.so",
    "libcublasLt.so",
    "libcublas.so",
    "libcufft.so",
    "libcurand.so",
    "libcudnn.so",
    "libcudnn_graph.so",
    "libcudnn_engines_precompiled.so",
    "libcudnn_engines_runtime_compiled.so",
    "libcudnn_heuristic.so",
    "libcudnn_ops.so",
    "libcudnn_cnn.so",
];

/// The shared libraries of an `nvidia/` folder laid out as PyPI's `nvidia-*` wheels
/// install them (`nvidia/<package>/lib/*.so*`), in [`CUDA_LOAD_ORDER`], then the rest
/// by name.
pub fn cuda_libraries(nvidia_dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(nvidia_dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|pkg| std::fs::read_dir(pkg.path().join("lib")).ok())
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .map(|n| n.to_string_lossy().contains(".so"))
                    .unwrap_or(false)
        })
        .collect();
    let rank = |p: &PathBuf| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let at = CUDA_LOAD_ORDER
            .iter()
            .position(|prefix| name.starts_with(prefix))
            .unwrap_or(CUDA_LOAD_ORDER.len());
        (at, name)
    };
    found.sort_by_key(rank);
    found
}

/// Where PyPI's CUDA libraries may be: `EMBEDKIT_CUDA_LIBS` (folders separated by
/// `:`), `nvidia/` beside the loaded ONNX Runtime library (`make setup-gpu`), and the
/// `nvidia/` of the site-packages an `onnxruntime-gpu` wheel was installed into.
fn cuda_library_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = non_empty_env("EMBEDKIT_CUDA_LIBS")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    if let Some(dir) = loaded_library().and_then(|l| l.parent().map(Path::to_path_buf)) {
        dirs.push(dir.join("nvidia"));
        dirs.push(dir.join("../../nvidia"));
    }
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

/// Loads PyPI's CUDA libraries once, globally, so the CUDA provider finds them without
/// `LD_LIBRARY_PATH`. Libraries that fail to load are logged, not fatal: the system's
/// CUDA may provide them; if nothing does, registering the provider fails with ONNX
/// Runtime's message.
#[cfg(unix)]
fn preload_cuda_libraries() {
    static LOADED: OnceLock<Vec<libloading::os::unix::Library>> = OnceLock::new();
    LOADED.get_or_init(|| {
        let mut handles = Vec::new();
        for dir in cuda_library_dirs() {
            for lib in cuda_libraries(&dir) {
                let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL;
                // SAFETY: NVIDIA's libraries run no code at load beyond their own
                // initializers; the handles are kept for the process's life.
                match unsafe { libloading::os::unix::Library::open(Some(&lib), flags) } {
                    Ok(h) => handles.push(h),
                    Err(e) => tracing::warn!(library = %lib.display(), error = %e, "CUDA library not loaded"),
                }
            }
        }
        tracing::debug!(count = handles.len(), "CUDA libraries preloaded");
        handles
    });
}

/// Elsewhere the CUDA libraries come from the system's search path.
#[cfg(not(unix))]
fn preload_cuda_libraries() {}

fn dispatch(p: &Provider) -> ExecutionProviderDispatch {
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

/// Opens `model_path` as an ONNX Runtime session with the given options.
pub fn build_session(model_path: &Path, opts: &RuntimeOptions) -> Result<Session> {
    open_session(model_path, opts, opts.threads, None)
}

/// How a graph's sessions are laid out: a pool of sessions that run batches side by
/// side, and how many intra-op threads each has. A pool of one is also the session
/// that runs lone batches; a larger pool gets a separate session with all the threads
/// for those (a single query is fastest on every thread, a stream of batches on
/// separate single-threaded sessions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPlan {
    pub pool: usize,
    pub pool_threads: Option<usize>,
    /// Threads of the session for lone batches (all of them).
    pub solo_threads: Option<usize>,
}

/// Chooses the [`SessionPlan`].
///
/// Measured on 2 cores (BENCHMARKS.md): two single-threaded sessions, each running its
/// own length-sorted batch, embed 5-24% more texts per second than one session with two
/// threads (ONNX Runtime's intra-op threads wait on each other at every operator;
/// separate sessions never do), while a lone query takes 40% less time on two threads
/// than on one. So by default a CPU gets a pool of one single-threaded session per
/// thread plus the all-threads session, as long as these copies of the weights stay
/// within [`PARALLEL_WEIGHT_BUDGET`]; else one session. A GPU gets one session per
/// id in `device_ids` (batches spread over the GPUs; [`session_options`] places them).
pub fn session_plan(opts: &RuntimeOptions, on_gpu: bool, model_bytes: u64) -> SessionPlan {
    if on_gpu && opts.parallel.is_none() {
        let gpus = opts.device_ids.as_ref().map_or(1, |ids| ids.len().max(1));
        return SessionPlan {
            pool: gpus,
            pool_threads: opts.threads,
            solo_threads: opts.threads,
        };
    }
    let (pool, pool_threads) = match opts.parallel {
        Some(p) => {
            let p = p.max(1);
            (
                p,
                opts.threads
                    .unwrap_or_else(|| (available_threads() / p).max(1)),
            )
        }
        None => {
            let total = opts.threads.unwrap_or_else(available_threads).max(1);
            // Sessions that fit the budget, the pool's plus the solo one; a session held
            // about 4x its file in memory here (weights unpacked, folded and prepacked).
            let copies = (PARALLEL_WEIGHT_BUDGET / (4 * model_bytes.max(1))) as usize;
            if total == 1 || copies < 3 {
                return SessionPlan {
                    pool: 1,
                    pool_threads: Some(total),
                    solo_threads: Some(total),
                };
            }
            let pool = total.min(copies - 1);
            (pool, (total / pool).max(1))
        }
    };
    SessionPlan {
        pool,
        pool_threads: Some(pool_threads),
        solo_threads: Some(pool * pool_threads),
    }
}

/// The options of the `index`-th session of a pool: on GPUs, session `i` runs on the
/// `i`-th of `device_ids` (round robin when the pool is larger), so that several GPUs
/// share the batches; elsewhere the options as given.
pub fn session_options(opts: &RuntimeOptions, on_gpu: bool, index: usize) -> RuntimeOptions {
    let mut out = opts.clone();
    if let (true, Some(ids)) = (on_gpu, &opts.device_ids) {
        if !ids.is_empty() {
            let id = ids[index % ids.len()];
            out.device_ids = Some(vec![id]);
            if let Some(list) = &mut out.providers {
                for p in list.iter_mut() {
                    if let Provider::Cuda { device_id } = p {
                        *device_id = Some(id);
                    }
                }
            }
        }
    }
    out
}

/// The size of an ONNX file with its external data (`<file>_data` or `<file>.data`).
fn model_bytes(path: &Path) -> u64 {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut total = size(path);
    for suffix in ["_data", ".data"] {
        let mut p = path.as_os_str().to_os_string();
        p.push(suffix);
        total += size(Path::new(&p));
    }
    total
}

/// Memory that the sessions of one graph may take between them (estimated as 4x the
/// file per session); past it, one session runs everything.
pub const PARALLEL_WEIGHT_BUDGET: u64 = 2 << 30;

fn available_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn open_session(
    model_path: &Path,
    opts: &RuntimeOptions,
    threads: Option<usize>,
    shared: Option<&ort::session::builder::PrepackedWeights>,
) -> Result<Session> {
    let env = environment(opts.library_path.as_deref())?;
    if !model_path.is_file() {
        let dir = model_path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let file = model_path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Err(Error::MissingFile { file, dir });
    }
    let providers = resolve_providers(opts)?;
    if providers.iter().any(|p| matches!(p, Provider::Cuda { .. })) {
        preload_cuda_libraries();
    }
    let eps: Vec<ExecutionProviderDispatch> = providers.iter().map(dispatch).collect();
    let ort_err = |e: ort::Error<ort::session::builder::SessionBuilder>| Error::Ort(e.to_string());
    let mut builder = Session::builder(env)?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(ort_err)?
        .with_execution_providers(eps)
        .map_err(ort_err)?;
    if let Some(shared) = shared {
        builder = builder.with_prepacked_weights(shared).map_err(ort_err)?;
    }
    if let Some(n) = threads {
        if n == 0 {
            return Err(Error::InvalidArgument("threads must be at least 1".into()));
        }
        builder = builder
            .with_intra_threads(n)
            .map_err(ort_err)?
            .with_inter_threads(n)
            .map_err(ort_err)?;
    }
    builder
        .commit_from_file(model_path)
        .map_err(|e| Error::InvalidModel {
            path: model_path.to_path_buf(),
            reason: format!("ONNX Runtime could not load it: {e}"),
        })
}

/// One ONNX graph ready to run (see [`SessionPlan`]): the session for lone batches,
/// the pool for batches that run side by side (opened on first use), each session
/// behind a lock since running needs exclusive access, and the graph's input and
/// output names.
pub struct OnnxModel {
    solo: Mutex<Session>,
    pool: Mutex<Option<Arc<Vec<Mutex<Session>>>>>,
    plan: SessionPlan,
    opts: RuntimeOptions,
    prepacked: Option<ort::session::builder::PrepackedWeights>,
    on_gpu: bool,
    path: PathBuf,
    inputs: Vec<String>,
    outputs: Vec<String>,
    /// The last dimension of each output where the graph fixes it.
    output_widths: Vec<Option<usize>>,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("path", &self.path)
            .field("plan", &self.plan)
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish()
    }
}

thread_local! {
    /// Set on the threads that run batches side by side (see [`as_pool_worker`]).
    static POOL_WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with the graphs it runs on this thread using their pool sessions: the
/// caller runs several batches at once, one per thread. Everywhere else a graph runs on
/// its all-threads session.
pub fn as_pool_worker<R>(f: impl FnOnce() -> R) -> R {
    let before = POOL_WORKER.with(|a| a.replace(true));
    let out = f();
    POOL_WORKER.with(|a| a.set(before));
    out
}

impl OnnxModel {
    pub fn load(path: &Path, opts: &RuntimeOptions) -> Result<Self> {
        if opts.parallel == Some(0) {
            return Err(Error::InvalidArgument("parallel must be at least 1".into()));
        }
        // The library first: asking for providers goes through it.
        environment(opts.library_path.as_deref())?;
        let on_gpu = resolve_providers(opts)?
            .iter()
            .any(|p| !matches!(p, Provider::Cpu));
        let plan = session_plan(opts, on_gpu, model_bytes(path));
        // CPU sessions share their prepacked weights: one copy however many run. (GPU
        // sessions hold their weights on their own device.)
        let prepacked =
            (plan.pool > 1 && !on_gpu).then(ort::session::builder::PrepackedWeights::new);
        let solo = open_session(path, opts, plan.solo_threads, prepacked.as_ref())?;
        let inputs = solo.inputs().iter().map(|i| i.name().to_string()).collect();
        let outputs = solo
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        let output_widths = solo
            .outputs()
            .iter()
            .map(|o| {
                o.dtype()
                    .tensor_shape()
                    .and_then(|s| s.last().copied())
                    .and_then(|d| usize::try_from(d).ok())
                    .filter(|&d| d > 0)
            })
            .collect();
        Ok(OnnxModel {
            solo: Mutex::new(solo),
            pool: Mutex::new(None),
            plan,
            opts: opts.clone(),
            prepacked,
            on_gpu,
            path: path.to_path_buf(),
            inputs,
            outputs,
            output_widths,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many batches can run at once.
    pub fn parallelism(&self) -> usize {
        self.plan.pool
    }

    /// The pool, opened on first use.
    fn pool(&self) -> Result<Arc<Vec<Mutex<Session>>>> {
        let mut slot = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pool) = slot.as_ref() {
            return Ok(pool.clone());
        }
        let threads = self.plan.pool_threads;
        let sessions = (0..self.plan.pool)
            .map(|i| {
                let opts = session_options(&self.opts, self.on_gpu, i);
                open_session(&self.path, &opts, threads, self.prepacked.as_ref()).map(Mutex::new)
            })
            .collect::<Result<Vec<_>>>()?;
        let pool = Arc::new(sessions);
        *slot = Some(pool.clone());
        Ok(pool)
    }

    pub fn input_names(&self) -> &[String] {
        &self.inputs
    }

    pub fn output_names(&self) -> &[String] {
        &self.outputs
    }

    /// The last dimension of output `name` when the graph fixes it (not symbolic).
    pub fn output_width(&self, name: &str) -> Option<usize> {
        let i = self.outputs.iter().position(|o| o == name)?;
        self.output_widths[i]
    }

    /// Fails before any inference when the graph declares output `name` with a last
    /// dimension other than `dim`, the registry's width.
    pub fn check_output_width(&self, model_name: &str, name: &str, dim: usize) -> Result<()> {
        match self.output_width(name) {
            Some(width) if width != dim => Err(Error::ModelMismatch {
                model: model_name.to_string(),
                reason: format!(
                    "the ONNX graph {} declares output {name:?} {width} wide, but the model \
                     is registered with {dim} dimensions",
                    self.path.display()
                ),
            }),
            _ => Ok(()),
        }
    }

    pub fn has_input(&self, name: &str) -> bool {
        self.inputs.iter().any(|i| i == name)
    }

    /// Fails before any inference unless the graph takes `input_ids` and nothing outside
    /// `known`.
    pub fn check_inputs(&self, model_name: &str, known: &[&str]) -> Result<()> {
        let mismatch = |reason: String| Error::ModelMismatch {
            model: model_name.to_string(),
            reason,
        };
        if !self.has_input("input_ids") {
            return Err(mismatch(format!(
                "the ONNX graph {} has no `input_ids` input (its inputs: {:?})",
                self.path.display(),
                self.inputs
            )));
        }
        if let Some(unknown) = self.inputs.iter().find(|n| !known.contains(&n.as_str())) {
            return Err(mismatch(format!(
                "the ONNX graph needs an input {unknown:?} that this model is not given \
                 (known inputs: {known:?})"
            )));
        }
        Ok(())
    }

    /// Runs the graph on named inputs and returns one float output, computing only what
    /// that output needs.
    pub fn run_f32(
        &self,
        inputs: Vec<(String, ort::value::DynValue)>,
        output: &str,
    ) -> Result<ndarray::ArrayD<f32>> {
        let run_options = ort::session::RunOptions::new()?
            .with_outputs(ort::session::OutputSelector::no_default().with(output));
        let inputs: Vec<(
            std::borrow::Cow<'_, str>,
            ort::session::SessionInputValue<'_>,
        )> = inputs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let pool = if self.plan.pool > 1 && POOL_WORKER.with(|a| a.get()) {
            Some(self.pool()?)
        } else {
            None
        };
        // The pool's first free session (else wait for the first), or the solo session.
        let mut session = match pool.as_deref() {
            Some(pool) => pool
                .iter()
                .find_map(|s| s.try_lock().ok())
                .unwrap_or_else(|| pool[0].lock().unwrap_or_else(|e| e.into_inner())),
            None => self.solo.lock().unwrap_or_else(|e| e.into_inner()),
        };
        let outputs = session.run_with_options(inputs, &run_options)?;
        let value = outputs
            .get(output)
            .ok_or_else(|| Error::Ort(format!("the model produced no output named {output:?}")))?;
        let array = value.try_extract_array::<f32>().map_err(|e| {
            Error::Unsupported(format!(
                "output {output:?} of {} is not a float32 tensor ({e}); only float32 outputs are supported",
                self.path.display()
            ))
        })?;
        Ok(array.to_owned())
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
    fn cuda_libraries_load_in_dependency_order() {
        let root = tempdir().join("nvidia");
        for (pkg, file) in [
            ("cudnn", "libcudnn_ops.so.9"),
            ("cudnn", "libcudnn.so.9"),
            ("cublas", "libcublas.so.13"),
            ("cublas", "libcublasLt.so.13"),
            ("cuda_runtime", "libcudart.so.13"),
            ("cufft", "libcufft.so.12"),
            ("cudnn", "libcudnn_graph.so.9"),
            ("cudnn", "notes.txt"),
            ("zzz", "libother.so.1"),
        ] {
            let dir = root.join(pkg).join("lib");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(file), b"").unwrap();
        }
        std::fs::create_dir_all(root.join("cuda_runtime/include")).unwrap();
        let names: Vec<String> = cuda_libraries(&root)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "libcudart.so.13",
                "libcublasLt.so.13",
                "libcublas.so.13",
                "libcufft.so.12",
                "libcudnn.so.9",
                "libcudnn_graph.so.9",
                "libcudnn_ops.so.9",
                "libother.so.1",
            ]
        );
        assert!(cuda_libraries(&root.join("missing")).is_empty());
    }

    #[test]
    fn several_gpus_get_a_session_each() {
        let two = RuntimeOptions {
            device_ids: Some(vec![0, 1]),
            ..opts(Device::Cuda)
        };
        let plan = session_plan(&two, true, 100 << 20);
        assert_eq!(plan.pool, 2);
        let ids: Vec<_> = (0..4)
            .map(|i| session_options(&two, true, i).device_ids.unwrap())
            .collect();
        assert_eq!(ids, [vec![0], vec![1], vec![0], vec![1]]);
        assert_eq!(
            choose_providers(&session_options(&two, true, 1), true, true, "lib.so").unwrap()[0],
            Provider::Cuda { device_id: Some(1) }
        );
        // An explicit CUDA provider is moved to the session's GPU too.
        let listed = RuntimeOptions {
            providers: Some(vec![Provider::Cuda { device_id: Some(0) }]),
            ..two.clone()
        };
        assert_eq!(
            session_options(&listed, true, 1).providers.unwrap(),
            [Provider::Cuda { device_id: Some(1) }]
        );
        // One GPU, or none given: one session. On the CPU the ids do nothing.
        assert_eq!(session_plan(&opts(Device::Cuda), true, 100 << 20).pool, 1);
        assert_eq!(session_options(&two, false, 1).device_ids, two.device_ids);
    }

    #[test]
    fn session_plan_splits_threads_into_a_pool_within_the_memory_budget() {
        let opts = |threads: Option<usize>, parallel: Option<usize>| RuntimeOptions {
            threads,
            parallel,
            ..Default::default()
        };
        let small = 23 << 20;
        // Two threads, a small model: two single-threaded sessions and a solo one.
        let p = session_plan(&opts(Some(2), None), false, small);
        assert_eq!(
            (p.pool, p.pool_threads, p.solo_threads),
            (2, Some(1), Some(2))
        );
        // One thread: one session.
        let p = session_plan(&opts(Some(1), None), false, small);
        assert_eq!((p.pool, p.solo_threads), (1, Some(1)));
        // A model too large for three copies: one session with every thread.
        let p = session_plan(&opts(Some(8), None), false, 300 << 20);
        assert_eq!(
            (p.pool, p.pool_threads, p.solo_threads),
            (1, Some(8), Some(8))
        );
        // The budget caps the pool: 2 GiB / (4 x 100 MiB) = 5 copies, so 4 in the pool.
        let p = session_plan(&opts(Some(16), None), false, 100 << 20);
        assert_eq!(
            (p.pool, p.pool_threads, p.solo_threads),
            (4, Some(4), Some(16))
        );
        // An explicit `parallel` is obeyed, with `threads` per session as fastembed.
        let p = session_plan(&opts(Some(2), Some(3)), false, small);
        assert_eq!((p.pool, p.pool_threads), (3, Some(2)));
        // A GPU: one session.
        assert_eq!(session_plan(&opts(None, None), true, small).pool, 1);
    }

    #[test]
    fn device_parses() {
        assert_eq!("AUTO".parse::<Device>().unwrap(), Device::Auto);
        assert!("tpu".parse::<Device>().is_err());
    }

    #[test]
    fn versioned_library_is_found_in_a_folder() {
        let dir = tempdir();
        std::fs::write(dir.join(format!("{LIB_PREFIX}.{LIB_EXT}.1.9.0")), b"x").unwrap();
        std::fs::write(dir.join(format!("{LIB_PREFIX}.{LIB_EXT}.1.32.0")), b"x").unwrap();
        let found = library_in_dir(&dir).unwrap();
        assert!(found.to_string_lossy().ends_with("1.32.0"));
        std::fs::write(dir.join(format!("{LIB_PREFIX}.{LIB_EXT}")), b"x").unwrap();
        assert!(library_in_dir(&dir)
            .unwrap()
            .to_string_lossy()
            .ends_with(LIB_EXT));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn explicit_missing_library_is_a_clear_error() {
        let err = find_library(Some(Path::new("/nonexistent/libonnxruntime.so"))).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "embedkit-rt-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
