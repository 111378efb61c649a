//! The CUDA libraries of PyPI's `nvidia-*` wheels, loaded before the CUDA provider asks
//! for them (what onnxruntime's `preload_dlls()` does in Python).

use std::path::{Path, PathBuf};
#[cfg(unix)]
use std::sync::OnceLock;

use super::library::{loaded_library, non_empty_env};

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
pub(super) fn preload_cuda_libraries() {
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
pub(super) fn preload_cuda_libraries() {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::test_dir;

    #[test]
    fn cuda_libraries_load_in_dependency_order() {
        let dir = test_dir("cuda");
        let root = dir.join("nvidia");
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
}
