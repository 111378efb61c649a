//! Where model files live and how they get there: a user's own folder
//! (`specific_model_path`), the cache in fastembed's layout (huggingface_hub snapshots
//! `models--org--name/snapshots/<rev>/`, legacy `fast-<name>/` folders of tar.gz models),
//! a huggingface_hub cache (`HF_HUB_CACHE`), and downloads into the cache when allowed.

mod archive;
mod download;
mod http;
mod safe_fs;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use archive::{check as check_archive, extract as extract_archive};
pub use download::HubFetcher;
pub use http::{git_blob_id, sha256_file};
pub use safe_fs::check_cache_root;

use crate::error::{Error, Result};
pub use crate::registry::{ModelFiles, OPTIONAL_CONFIGS};
use crate::runtime::non_empty_env;

/// How to reach the hub, as huggingface_hub's environment sets it.
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// `HF_ENDPOINT`, default `https://huggingface.co` (a mirror works the same).
    pub endpoint: String,
    /// `HF_TOKEN`, or the token file huggingface_hub's login writes.
    pub token: Option<String>,
    /// Time to connect (`HF_HUB_ETAG_TIMEOUT`, default 10 s).
    pub connect_timeout: Duration,
    /// Longest silence while waiting for or reading a response
    /// (`HF_HUB_DOWNLOAD_TIMEOUT`, default 10 s): a stalled server fails, never hangs.
    pub read_timeout: Duration,
    /// Attempts per file; each retry resumes the partial file.
    pub attempts: u32,
    /// First wait between attempts; doubled each time, at most 30 s.
    pub backoff: Duration,
    /// Largest unpacked size of a `.tar.gz` model archive.
    pub max_archive_bytes: u64,
    /// Show bytes and rate on stderr (default: when it is a terminal).
    pub progress: bool,
}

fn env_seconds(name: &str, default: f64) -> Duration {
    let secs = non_empty_env(name)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .unwrap_or(default);
    Duration::from_secs_f64(secs)
}

/// huggingface_hub's home: `$HF_HOME`, else `~/.cache/huggingface`.
fn hf_home() -> Option<PathBuf> {
    non_empty_env("HF_HOME").map(PathBuf::from).or_else(|| {
        non_empty_env("XDG_CACHE_HOME")
            .map(|x| PathBuf::from(x).join("huggingface"))
            .or_else(|| non_empty_env("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface")))
    })
}

/// huggingface_hub's own cache: `$HF_HUB_CACHE`, else `<HF_HOME>/hub`.
pub fn hf_hub_cache() -> Option<PathBuf> {
    non_empty_env("HF_HUB_CACHE")
        .map(PathBuf::from)
        .or_else(|| hf_home().map(|h| h.join("hub")))
}

impl HubOptions {
    /// Options from the environment, as huggingface_hub reads it.
    pub fn from_env() -> Self {
        let token = non_empty_env("HF_TOKEN")
            .or_else(|| non_empty_env("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| {
                let path = non_empty_env("HF_TOKEN_PATH")
                    .map(PathBuf::from)
                    .or_else(|| hf_home().map(|h| h.join("token")))?;
                std::fs::read_to_string(path)
                    .ok()
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
            });
        let progress_off = non_empty_env("HF_HUB_DISABLE_PROGRESS_BARS").is_some();
        HubOptions {
            endpoint: non_empty_env("HF_ENDPOINT")
                .unwrap_or_else(|| "https://huggingface.co".into())
                .trim_end_matches('/')
                .to_string(),
            token,
            connect_timeout: env_seconds("HF_HUB_ETAG_TIMEOUT", 10.0),
            read_timeout: env_seconds("HF_HUB_DOWNLOAD_TIMEOUT", 10.0),
            attempts: 5,
            backoff: Duration::from_millis(500),
            max_archive_bytes: 64 << 30,
            progress: !progress_off && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        }
    }
}

/// Where to look, as fastembed's `cache_dir`, `specific_model_path`, `local_files_only`.
#[derive(Clone, Default, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[serde(default)]
pub struct CacheOptions {
    /// Model cache folder (default: $FASTEMBED_CACHE_PATH, else fastembed_cache in the
    /// temporary folder).
    #[cfg_attr(feature = "cli", arg(long, value_name = "DIR"))]
    pub cache_dir: Option<PathBuf>,
    /// Load the model files from this folder instead of the cache; the description
    /// still comes from the registry entry the model name picks (fastembed's
    /// `specific_model_path`).
    #[cfg_attr(
        feature = "cli",
        arg(long = "model-path", alias = "specific-model-path", value_name = "DIR")
    )]
    pub specific_model_path: Option<PathBuf>,
    /// Use cached files only, never the network (also set by `HF_HUB_OFFLINE=1`).
    #[cfg_attr(feature = "cli", arg(long))]
    pub local_files_only: bool,
    /// How to download; `None` reads the environment.
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(skip)]
    pub hub: Option<HubOptions>,
    /// Fetches models not in the cache instead of the hub downloader (an in-house
    /// model store, say).
    #[cfg_attr(feature = "cli", arg(skip))]
    #[serde(skip)]
    pub fetcher: Option<Arc<dyn Fetcher>>,
}

impl std::fmt::Debug for CacheOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheOptions")
            .field("cache_dir", &self.cache_dir)
            .field("specific_model_path", &self.specific_model_path)
            .field("local_files_only", &self.local_files_only)
            .field("hub", &self.hub)
            .field("fetcher", &self.fetcher.as_ref().map(|_| "custom"))
            .finish()
    }
}

/// Fetches a model into the cache when it is not there.
pub trait Fetcher: Send + Sync {
    /// Downloads the files of `files` into `cache_dir` and returns the model folder.
    fn fetch(&self, files: &ModelFiles, cache_dir: &Path) -> Result<PathBuf>;
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

/// The folder of a legacy archive model: `fast-<name>` or `<name>`, as fastembed names it.
pub(crate) fn legacy_folder(files: &ModelFiles) -> String {
    let tail = files.model.rsplit('/').next().unwrap_or(&files.model);
    if files.sources.deprecated_tar_struct {
        format!("fast-{tail}")
    } else {
        tail.to_string()
    }
}

/// The folder with the model's files: `specific_model_path` if given, else the cache,
/// else a download into the cache (unless offline). Every required file is checked.
pub fn resolve_model_dir(files: &ModelFiles, opts: &CacheOptions) -> Result<PathBuf> {
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
    // A cache another user can write may hold anything: refused before it is read.
    check_cache_root(&cache_dir)?;
    let mut looked: Vec<PathBuf> = Vec::new();
    for (root, dir) in cached_candidates(files, &cache_dir) {
        if safe_fs::trusted_dir(&root, &dir) && missing(&dir, &files.required).is_none() {
            tracing::debug!(dir = %dir.display(), "model found in the cache");
            return Ok(dir);
        }
        looked.push(dir);
    }
    let offline = opts.local_files_only || hub_offline();
    if offline {
        let looked = looked
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Error::NotCached(format!(
            "model {} is not in the cache {} (looked in: {}) and offline mode is on \
             (local_files_only or HF_HUB_OFFLINE) so it was not downloaded. Download it once \
             with `embedkit download {}` while online, or pass a folder with its files ({}) \
             as --model-path / specific_model_path.",
            files.model,
            cache_dir.display(),
            if looked.is_empty() {
                "nothing".into()
            } else {
                looked
            },
            files.model,
            files.required.join(", ")
        )));
    }
    let dir = match &opts.fetcher {
        Some(fetcher) => fetcher.fetch(files, &cache_dir)?,
        None => {
            let hub = opts.hub.clone().unwrap_or_else(HubOptions::from_env);
            HubFetcher::new(hub).fetch(files, &cache_dir)?
        }
    };
    check_required(&dir, &files.required)?;
    Ok(dir)
}

/// Cache folders that may hold the model (with the cache each is in), in the order
/// fastembed tries them, then huggingface_hub's own cache.
fn cached_candidates(files: &ModelFiles, cache_dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    let revision = files.sources.revision.as_deref().unwrap_or("main");
    if let Some(repo) = &files.sources.hf {
        let mut roots = vec![cache_dir.to_path_buf()];
        if let Some(hf) = hf_hub_cache().filter(|h| h != cache_dir) {
            match check_cache_root(&hf) {
                Ok(()) => roots.push(hf),
                Err(e) => tracing::warn!(error = %e, "not reading huggingface_hub's cache"),
            }
        }
        for (i, root) in roots.iter().enumerate() {
            let mut repos = vec![repo_folder_name(repo)];
            // A copy cached under another casing of the same repo id (older fastembed
            // sources), in fastembed's own cache only.
            if i == 0 {
                if let Ok(entries) = std::fs::read_dir(root) {
                    let expected = repos[0].to_lowercase();
                    for e in entries.flatten() {
                        let name = e.file_name().to_string_lossy().into_owned();
                        if name != repos[0] && name.to_lowercase() == expected {
                            repos.push(name);
                        }
                    }
                }
            }
            for repo_dir in repos {
                if let Some(snapshot) = snapshot_dir(&root.join(repo_dir), revision) {
                    out.push((root.clone(), snapshot));
                }
            }
        }
    }
    if files.sources.deprecated_tar_struct || files.sources.url.is_some() {
        out.push((
            cache_dir.to_path_buf(),
            cache_dir.join(legacy_folder(files)),
        ));
    }
    out
}

/// huggingface_hub's folder name for a model repo: `models--org--name`.
pub fn repo_folder_name(repo: &str) -> String {
    format!("models--{}", repo.replace('/', "--"))
}

/// The snapshot a revision points to, as huggingface_hub resolves it offline: the commit
/// in `refs/<revision>`, or the revision itself when it is a commit hash.
fn snapshot_dir(repo_dir: &Path, revision: &str) -> Option<PathBuf> {
    let commit = match std::fs::read_to_string(repo_dir.join("refs").join(revision)) {
        Ok(rev) => rev.trim().to_string(),
        Err(_) if revision.len() == 40 => revision.to_string(),
        Err(_) => return None,
    };
    // A revision is a commit hash; anything else could climb out of the cache.
    if commit.is_empty() || !commit.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some(repo_dir.join("snapshots").join(commit))
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

/// A model folder found in a cache, for `embedkit cache list`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CachedModel {
    /// The repo id (`org/name`) or, for legacy archives, the folder name.
    pub name: String,
    pub path: PathBuf,
    /// Bytes on disk (blobs, or the folder's files).
    pub size: u64,
    /// Commits with a snapshot.
    pub snapshots: Vec<String>,
}

/// The models in a cache folder: huggingface_hub repos and legacy archive folders.
pub fn list_cache(cache_dir: &Path) -> Result<Vec<CachedModel>> {
    let rd = match std::fs::read_dir(cache_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(cache_dir, e)),
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        // Real folders only: a link (to `/`, say) is never followed.
        if !safe_fs::is_real_dir(&path) || name.starts_with('.') || name == "tmp" {
            continue;
        }
        if let Some(repo) = name.strip_prefix("models--") {
            let mut snapshots: Vec<String> = std::fs::read_dir(path.join("snapshots"))
                .map(|rd| {
                    rd.flatten()
                        .map(|s| s.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            snapshots.sort();
            let blobs = path.join("blobs");
            out.push(CachedModel {
                name: repo.replacen("--", "/", 1),
                size: if safe_fs::is_real_dir(&blobs) {
                    safe_fs::tree_size(&blobs)
                } else {
                    0
                },
                path,
                snapshots,
            });
        } else {
            out.push(CachedModel {
                name,
                size: safe_fs::tree_size(&path),
                path,
                snapshots: Vec::new(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Removes a model's files from the cache (its repo folder, its legacy folder and its
/// locks); returns what was removed. Only what lies inside the cache folder is removed:
/// no link on the way is followed.
pub fn remove_cached(files: &ModelFiles, cache_dir: &Path) -> Result<Vec<PathBuf>> {
    check_cache_root(cache_dir)?;
    let mut targets = Vec::new();
    if let Some(repo) = &files.sources.hf {
        let folder = repo_folder_name(repo);
        targets.push(cache_dir.join(&folder));
        targets.push(cache_dir.join(".locks").join(&folder));
    }
    if files.sources.deprecated_tar_struct || files.sources.url.is_some() {
        targets.push(cache_dir.join(legacy_folder(files)));
    }
    let mut removed = Vec::new();
    for t in targets {
        if safe_fs::remove_inside(cache_dir, &t)? {
            removed.push(t);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::ModelSource;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("embedkit-hub-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// The files of `model` from `sources`: `required`, nothing optional.
    fn files(model: &str, sources: ModelSource, required: &[&str]) -> ModelFiles {
        ModelFiles {
            model: model.into(),
            sources,
            required: required.iter().map(|f| f.to_string()).collect(),
            optional: vec![],
        }
    }

    /// Options that read the cache `dir` only.
    fn offline(dir: &Path) -> CacheOptions {
        CacheOptions {
            cache_dir: Some(dir.to_path_buf()),
            local_files_only: true,
            ..Default::default()
        }
    }

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }

    /// A repo folder `name` in `cache` whose `refs/main` holds `commit`.
    fn repo_at(cache: &Path, name: &str, commit: &str) -> PathBuf {
        let repo = cache.join(name);
        touch(&repo.join("refs/main"));
        std::fs::write(repo.join("refs/main"), commit).unwrap();
        repo
    }

    #[test]
    fn finds_a_huggingface_snapshot() {
        let cache = tmp("snapshot");
        let repo = repo_at(
            &cache,
            "models--Qdrant--bge-small-en-v1.5-onnx-Q",
            "abc123\n",
        );
        touch(&repo.join("snapshots/abc123/model_optimized.onnx"));
        touch(&repo.join("snapshots/abc123/tokenizer.json"));
        let files = files(
            "BAAI/bge-small-en-v1.5",
            ModelSource::hf("Qdrant/bge-small-en-v1.5-onnx-Q"),
            &["model_optimized.onnx", "tokenizer.json"],
        );
        let dir = resolve_model_dir(&files, &offline(&cache)).unwrap();
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
        let files = files(
            "sentence-transformers/all-MiniLM-L6-v2",
            src,
            &["model.onnx"],
        );
        let opts = offline(&cache);
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
        let repo = repo_at(&cache, "models--a--b", "../../..");
        assert!(snapshot_dir(&repo, "main").is_none());
        std::fs::remove_dir_all(cache).unwrap();
    }

    #[test]
    fn specific_path_names_the_missing_file() {
        let dir = tmp("specific");
        let files = files("x/y", ModelSource::hf("x/y"), &["onnx/model.onnx"]);
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
