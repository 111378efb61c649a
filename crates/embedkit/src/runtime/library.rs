//! Finding the ONNX Runtime shared library and loading it once per process.
//!
//! The search is a path search only: the library never starts a Python interpreter to
//! ask where the `onnxruntime` wheel went; it looks in the places pip installs it.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;

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

/// Where the runtime library was found; logged and shown by `embedkit env`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
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
    if let Some(home) = home_dir() {
        return home.join(".cache").join("embedkit");
    }
    std::env::temp_dir().join("embedkit")
}

pub(crate) fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn home_dir() -> Option<PathBuf> {
    non_empty_env("HOME")
        .or_else(|| non_empty_env("USERPROFILE"))
        .map(PathBuf::from)
}

/// Finds the ONNX Runtime shared library, in this order: `explicit`; `ORT_DYLIB_PATH`;
/// a `lib/` folder beside the executable; `<embedkit home>/runtime/`; the `capi/` folder
/// of an `onnxruntime` wheel in the site-packages folders of [`python_site_dirs`].
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
    let sites = python_site_dirs();
    for site in &sites {
        if let Some(p) = library_in_dir(&site.join("onnxruntime").join("capi")) {
            return Ok((p, LibrarySource::PythonPackage));
        }
    }
    tried.push(format!(
        "onnxruntime/capi in {} Python site-packages folders",
        sites.len()
    ));
    Err(Error::RuntimeNotFound(format!(
        "ONNX Runtime shared library ({LIB_PREFIX}.{LIB_EXT}) not found; looked in: {}. \
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
pub(crate) fn library_in_dir(dir: &Path) -> Option<PathBuf> {
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

/// Folders where pip may have put the `onnxruntime` wheel, most specific first: the
/// active virtualenv or conda environment, `PYTHONPATH`, the prefix of each Python on
/// `PATH`, pyenv's versions, the user's site-packages, the system's.
pub fn python_site_dirs() -> Vec<PathBuf> {
    site_dirs_in(&non_empty_env)
}

/// [`python_site_dirs`] with the environment read through `env`.
fn site_dirs_in(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut prefixes: Vec<PathBuf> = Vec::new();
    let mut sites: Vec<PathBuf> = Vec::new();
    for var in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
        if let Some(p) = env(var) {
            prefixes.push(PathBuf::from(p));
        }
    }
    let home = env("HOME")
        .or_else(|| env("USERPROFILE"))
        .map(PathBuf::from);
    if let Some(paths) = env("PYTHONPATH") {
        sites.extend(std::env::split_paths(&paths));
    }
    if let Some(paths) = env("PATH") {
        for dir in std::env::split_paths(&paths) {
            let is_python = ["python3", "python"]
                .iter()
                .any(|exe| dir.join(exe).is_file());
            if is_python {
                if let Some(prefix) = dir.parent() {
                    prefixes.push(prefix.to_path_buf());
                }
            }
        }
    }
    let pyenv = env("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".pyenv")));
    if let Some(versions) = pyenv.map(|p| p.join("versions")) {
        prefixes.extend(sorted_entries(&versions, |_| true).into_iter().rev());
    }
    if let Some(home) = &home {
        prefixes.push(home.join(".local"));
    }
    prefixes.push(PathBuf::from("/usr/local"));
    prefixes.push(PathBuf::from("/usr"));
    for prefix in prefixes {
        // Windows venvs: Lib/site-packages; elsewhere lib/pythonX.Y/{site,dist}-packages.
        sites.push(prefix.join("Lib").join("site-packages"));
        for lib in sorted_entries(&prefix.join("lib"), |n| n.starts_with("python3"))
            .into_iter()
            .rev()
        {
            sites.push(lib.join("site-packages"));
            sites.push(lib.join("dist-packages"));
        }
    }
    sites.push(PathBuf::from("/usr/lib/python3/dist-packages"));
    let mut seen = std::collections::HashSet::new();
    sites
        .into_iter()
        .filter(|s| s.is_dir() && seen.insert(s.clone()))
        .collect()
}

/// The entries of `dir` whose names pass `keep`, sorted by name.
fn sorted_entries(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| keep(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

struct LoadedRuntime {
    env: Environment,
    path: PathBuf,
    source: LibrarySource,
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
    let builder = ort::init_from(&path).map_err(|source| Error::RuntimeLoad {
        path: path.clone(),
        source,
    })?;
    let env = builder.with_name("embedkit").build()?;
    let _ = RUNTIME.set(LoadedRuntime { env, path, source });
    RUNTIME
        .get()
        .map(|rt| &rt.env)
        .ok_or_else(|| Error::Internal("runtime initialisation raced".into()))
}

/// The path of the loaded runtime library, if it has been loaded.
pub fn loaded_library() -> Option<PathBuf> {
    RUNTIME.get().map(|rt| rt.path.clone())
}

/// What a bug report needs about the runtime: which library file was loaded, how it was
/// found, its build (version and commit) and the execution providers it was built with.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RuntimeInfo {
    pub version: String,
    pub library: PathBuf,
    pub source: LibrarySource,
    pub build: String,
    pub providers: Vec<String>,
}

/// Loads the runtime (as a model would) and describes it.
pub fn runtime_info(explicit_library: Option<&Path>) -> Result<RuntimeInfo> {
    environment(explicit_library)?;
    let rt = RUNTIME
        .get()
        .ok_or_else(|| Error::Internal("the runtime is not loaded".into()))?;
    Ok(RuntimeInfo {
        version: library_version(&rt.path)?,
        library: rt.path.clone(),
        source: rt.source.clone(),
        build: ort::info().trim().to_string(),
        providers: available_providers()?,
    })
}

/// The library's own version string (`OrtGetApiBase()->GetVersionString()`): the build
/// info has a git branch, often `HEAD`. `ort` reads it only privately, at load time.
fn library_version(path: &Path) -> Result<String> {
    let bad = |e: String| {
        Error::RuntimeNotFound(format!("reading the version of {}: {e}", path.display()))
    };
    // SAFETY: the library is already loaded (dlopen returns the same handle) and exports
    // OrtGetApiBase with this signature, as `ort` itself relies on.
    unsafe {
        let lib = libloading::Library::new(path).map_err(|e| bad(e.to_string()))?;
        let base: libloading::Symbol<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase> =
            lib.get(b"OrtGetApiBase").map_err(|e| bad(e.to_string()))?;
        let base = base();
        if base.is_null() {
            return Err(bad("OrtGetApiBase returned nothing".into()));
        }
        let version = ((*base).GetVersionString)();
        if version.is_null() {
            return Err(bad("no version string".into()));
        }
        Ok(std::ffi::CStr::from_ptr(version)
            .to_string_lossy()
            .into_owned())
    }
}

/// The execution providers the loaded library was built with, as ONNX Runtime names
/// them. Called through the C API: `ort` asks this list only privately, one name at a time.
fn available_providers() -> Result<Vec<String>> {
    use std::ffi::{c_char, c_int, CStr};
    let api = ort::api();
    let mut list: *mut *mut c_char = std::ptr::null_mut();
    let mut count: c_int = 0;
    // SAFETY: the runtime is loaded (the caller made the environment); ONNX Runtime fills
    // `list` with `count` NUL-terminated strings that stay valid until released below.
    let status = unsafe { (api.GetAvailableProviders)(&mut list, &mut count) };
    if !status.0.is_null() {
        // SAFETY: a non-null status is owned by us and released once.
        unsafe { (api.ReleaseStatus)(status.0) };
        return Err(Error::RuntimeNotFound(
            "ONNX Runtime could not list its providers".into(),
        ));
    }
    if list.is_null() {
        return Ok(Vec::new());
    }
    let names = (0..count.max(0) as usize)
        // SAFETY: index < count, each entry a valid C string (see above).
        .map(|i| {
            unsafe { CStr::from_ptr(*list.add(i)) }
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    // SAFETY: releases what GetAvailableProviders allocated, exactly once.
    let status = unsafe { (api.ReleaseAvailableProviders)(list, count) };
    if !status.0.is_null() {
        unsafe { (api.ReleaseStatus)(status.0) };
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::test_dir;

    #[test]
    fn versioned_library_is_found_in_a_folder() {
        let dir = test_dir("lib");
        std::fs::write(dir.join(format!("{LIB_PREFIX}.{LIB_EXT}.1.9.0")), b"x").unwrap();
        std::fs::write(dir.join(format!("{LIB_PREFIX}.{LIB_EXT}.1.32.0")), b"x").unwrap();
        let found = library_in_dir(&dir).unwrap();
        assert!(found.to_string_lossy().ends_with("1.32.0"));
        std::fs::write(dir.join(format!("{LIB_PREFIX}.{LIB_EXT}")), b"x").unwrap();
        assert!(library_in_dir(&dir)
            .unwrap()
            .to_string_lossy()
            .ends_with(LIB_EXT));
    }

    #[test]
    fn the_wheel_is_found_in_a_virtualenv_without_running_python() {
        let venv = test_dir("venv");
        let capi = venv.join("lib/python3.11/site-packages/onnxruntime/capi");
        std::fs::create_dir_all(&capi).unwrap();
        std::fs::write(capi.join(format!("{LIB_PREFIX}.{LIB_EXT}.1.32.0")), b"x").unwrap();
        let venv_str = venv.display().to_string();
        let env = |k: &str| (k == "VIRTUAL_ENV").then(|| venv_str.clone());
        let sites = site_dirs_in(&env);
        assert_eq!(
            sites.first(),
            Some(&venv.join("lib/python3.11/site-packages"))
        );
        assert!(library_in_dir(&sites[0].join("onnxruntime/capi")).is_some());
        // A PATH entry holding a python executable contributes its prefix.
        let bin = venv.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("python3"), b"").unwrap();
        let path = bin.display().to_string();
        let env = |k: &str| (k == "PATH").then(|| path.clone());
        assert!(site_dirs_in(&env).contains(&venv.join("lib/python3.11/site-packages")));
        std::fs::remove_dir_all(venv).unwrap();
    }

    #[test]
    fn explicit_missing_library_is_a_clear_error() {
        let err = find_library(Some(Path::new("/nonexistent/libonnxruntime.so"))).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
