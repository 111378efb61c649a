//! Where model files live: a user's own folder (`specific_model_path`), or the cache in
//! fastembed's layout (huggingface_hub snapshots `models--org--name/snapshots/<rev>/`, and
//! the legacy `fast-<name>/` folders of tar.gz models).
//!
//! Downloading is a separate concern: a [`Fetcher`] is called only when the cache does not
//! hold the files, and none is installed yet, so a miss is a clear error.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use crate::error::{Error, Result};
use crate::registry::ModelSource;
use crate::runtime::non_empty_env;

/// What a family needs to locate a model's files.
#[derive(Debug, Clone)]
pub struct ModelFiles<'a> {
    /// The registry name, e.g. `BAAI/bge-small-en-v1.5`.
    pub model: &'a str,
    pub sources: &'a ModelSource,
    /// Files the model cannot run without, relative to its folder (the ONNX file first).
    pub required: Vec<String>,
}

/// Where to look, as fastembed's `cache_dir`, `specific_model_path`, `local_files_only`.
#[derive(Debug, Clone, Default)]
pub struct CacheOptions {
    pub cache_dir: Option<PathBuf>,
    pub specific_model_path: Option<PathBuf>,
    pub local_files_only: bool,
}

/// Fetches a model into the cache; the seam for the hub download code.
pub trait Fetcher: Send + Sync {
    /// Downloads the files of `files` into `cache_dir` and returns the model folder.
    fn fetch(&self, files: &ModelFiles<'_>, cache_dir: &Path) -> Result<PathBuf>;
}

static FETCHER: RwLock<Option<Box<dyn Fetcher>>> = RwLock::new(None);

/// Installs the fetcher used when a model is not in the cache.
pub fn set_fetcher(fetcher: Box<dyn Fetcher>) {
    *FETCHER.write().unwrap_or_else(|e| e.into_inner()) = Some(fetcher);
}

/// fastembed's default cache: `$FASTEMBED_CACHE_PATH`, else `<temp dir>/fastembed_cache`.
pub fn default_cache_dir() -> PathBuf {
    non_empty_env("FASTEMBED_CACHE_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("fastembed_cache"))
}

/// `HF_HUB_OFFLINE` set to a true value forbids network access, as in huggingface_hub.
pub fn hub_offline() -> bool {
    matches!(
        non_empty_env("HF_HUB_OFFLINE")
            .map(|v| v.trim().to_ascii_uppercase())
            .as_deref(),
        Some("1" | "TRUE" | "YES" | "ON")
    )
}

/// The folder with the model's files: `specific_model_path` if given, else the cache,
/// else whatever the installed [`Fetcher`] downloads. Every required file is checked.
pub fn resolve_model_dir(files: &ModelFiles<'_>, opts: &CacheOptions) -> Result<PathBuf> {
    if let Some(dir) = &opts.specific_model_path {
        if !dir.is_dir() {
            return Err(Error::NotCached(format!(
                "model folder {} does not exist",
                dir.display()
            )));
        }
        check_required(dir, &files.required)?;
        return Ok(dir.clone());
    }
    let cache_dir = opts.cache_dir.clone().unwrap_or_else(default_cache_dir);
    let mut looked: Vec<PathBuf> = Vec::new();
    for dir in cached_candidates(files, &cache_dir) {
        if dir.is_dir() && missing(&dir, &files.required).is_none() {
            return Ok(dir);
        }
        looked.push(dir);
    }
    let offline = opts.local_files_only || hub_offline();
    if !offline {
        if let Some(fetcher) = FETCHER.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let dir = fetcher.fetch(files, &cache_dir)?;
            check_required(&dir, &files.required)?;
            return Ok(dir);
        }
    }
    let looked = looked
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let why = if offline {
        "offline mode is on (local_files_only or HF_HUB_OFFLINE)"
    } else {
        "this build cannot download models yet"
    };
    Err(Error::NotCached(format!(
        "model {} is not in the cache {} (looked in: {}) and {why}. Put its files ({}) in a \
         folder and pass it as --model-path / specific_model_path, or fill the cache with \
         fastembed or huggingface_hub.",
        files.model,
        cache_dir.display(),
        if looked.is_empty() {
            "nothing"
        } else {
            &looked
        },
        files.required.join(", ")
    )))
}

/// Cache folders that may hold the model, in the order fastembed tries them.
fn cached_candidates(files: &ModelFiles<'_>, cache_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(repo) = &files.sources.hf {
        let mut repos = vec![repo_folder_name(repo)];
        // A copy cached under another casing of the same repo id (older fastembed sources).
        if let Ok(entries) = std::fs::read_dir(cache_dir) {
            let expected = repos[0].to_lowercase();
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name != repos[0] && name.to_lowercase() == expected {
                    repos.push(name);
                }
            }
        }
        for repo_dir in repos {
            if let Some(snapshot) = snapshot_dir(&cache_dir.join(repo_dir)) {
                out.push(snapshot);
            }
        }
    }
    let tail = files.model.rsplit('/').next().unwrap_or(files.model);
    if files.sources.deprecated_tar_struct {
        out.push(cache_dir.join(format!("fast-{tail}")));
    } else if files.sources.url.is_some() {
        out.push(cache_dir.join(tail));
    }
    out
}

/// huggingface_hub's folder name for a model repo: `models--org--name`.
pub fn repo_folder_name(repo: &str) -> String {
    format!("models--{}", repo.replace('/', "--"))
}

/// The snapshot `refs/main` points to, as huggingface_hub resolves revision `main` offline.
fn snapshot_dir(repo_dir: &Path) -> Option<PathBuf> {
    let rev = std::fs::read_to_string(repo_dir.join("refs").join("main")).ok()?;
    let rev = rev.trim();
    // A revision is a commit hash; anything else could climb out of the cache.
    if rev.is_empty() || !rev.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some(repo_dir.join("snapshots").join(rev))
}

fn missing<'a>(dir: &Path, required: &'a [String]) -> Option<&'a String> {
    required.iter().find(|f| !dir.join(f).is_file())
}

fn check_required(dir: &Path, required: &[String]) -> Result<()> {
    match missing(dir, required) {
        Some(file) => Err(Error::MissingFile {
            file: file.clone(),
            dir: dir.to_path_buf(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("embedkit-hub-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }

    #[test]
    fn finds_a_huggingface_snapshot() {
        let cache = tmp("snapshot");
        let repo = cache.join("models--Qdrant--bge-small-en-v1.5-onnx-Q");
        touch(&repo.join("refs/main"));
        std::fs::write(repo.join("refs/main"), "abc123\n").unwrap();
        touch(&repo.join("snapshots/abc123/model_optimized.onnx"));
        touch(&repo.join("snapshots/abc123/tokenizer.json"));
        let src = ModelSource::hf("Qdrant/bge-small-en-v1.5-onnx-Q");
        let files = ModelFiles {
            model: "BAAI/bge-small-en-v1.5",
            sources: &src,
            required: vec!["model_optimized.onnx".into(), "tokenizer.json".into()],
        };
        let opts = CacheOptions {
            cache_dir: Some(cache.clone()),
            local_files_only: true,
            ..Default::default()
        };
        let dir = resolve_model_dir(&files, &opts).unwrap();
        assert_eq!(dir, repo.join("snapshots/abc123"));
        std::fs::remove_dir_all(cache).unwrap();
    }

    #[test]
    fn finds_a_legacy_tar_folder_and_reports_misses() {
        let cache = tmp("legacy");
        let src = ModelSource {
            hf: Some("Qdrant/all-MiniLM-L6-v2-onnx".into()),
            deprecated_tar_struct: true,
            ..Default::default()
        };
        let files = ModelFiles {
            model: "sentence-transformers/all-MiniLM-L6-v2",
            sources: &src,
            required: vec!["model.onnx".into()],
        };
        let opts = CacheOptions {
            cache_dir: Some(cache.clone()),
            ..Default::default()
        };
        let err = resolve_model_dir(&files, &opts).unwrap_err().to_string();
        assert!(err.contains("not in the cache"), "{err}");
        assert!(err.contains("fast-all-MiniLM-L6-v2"), "{err}");
        touch(&cache.join("fast-all-MiniLM-L6-v2/model.onnx"));
        assert_eq!(
            resolve_model_dir(&files, &opts).unwrap(),
            cache.join("fast-all-MiniLM-L6-v2")
        );
        std::fs::remove_dir_all(cache).unwrap();
    }

    #[test]
    fn a_revision_cannot_climb_out_of_the_cache() {
        let cache = tmp("climb");
        let repo = cache.join("models--a--b");
        touch(&repo.join("refs/main"));
        std::fs::write(repo.join("refs/main"), "../../..").unwrap();
        assert!(snapshot_dir(&repo).is_none());
        std::fs::remove_dir_all(cache).unwrap();
    }

    #[test]
    fn specific_path_names_the_missing_file() {
        let dir = tmp("specific");
        let src = ModelSource::hf("x/y");
        let files = ModelFiles {
            model: "x/y",
            sources: &src,
            required: vec!["onnx/model.onnx".into()],
        };
        let opts = CacheOptions {
            specific_model_path: Some(dir.clone()),
            ..Default::default()
        };
        let err = resolve_model_dir(&files, &opts).unwrap_err().to_string();
        assert!(err.contains("onnx/model.onnx"), "{err}");
        assert!(err.contains(&dir.display().to_string()), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
