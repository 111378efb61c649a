//! Filling the cache: Hugging Face repos in huggingface_hub's layout, and legacy
//! `.tar.gz` archives from a URL, tried in fastembed's order (repo first, then URL).
//!
//! huggingface_hub's layout, which fastembed and huggingface_hub read back:
//! `models--org--name/blobs/<etag>` holds the bytes, `snapshots/<commit>/<file>` is a
//! relative symlink to the blob, `refs/<revision>` holds the commit. A blob is written as
//! `<etag>.incomplete` and renamed when whole and verified, under a lock in
//! `.locks/models--org--name/<etag>.lock`, so two processes transfer a file once.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::http::{Client, FileMeta, HttpError};
use super::{archive, repo_folder_name, Fetcher, HubOptions, ModelFiles};
use crate::error::{Error, Result};

/// The fetcher used when a model is not cached: the hub, then the model's archive URL.
pub struct HubFetcher {
    client: Client,
}

impl HubFetcher {
    pub fn new(opts: HubOptions) -> Self {
        HubFetcher {
            client: Client::new(opts),
        }
    }

    fn repo_error(&self, repo: &str, file: &str, e: HttpError) -> Error {
        let endpoint = &self.client.options().endpoint;
        match e {
            HttpError::Unauthorized => Error::Download(format!(
                "{endpoint} refused access to {repo} (401): the repository is gated or private, \
                 or does not exist. If it is gated, accept its terms on the hub, then pass an \
                 access token in HF_TOKEN{}",
                if self.client.options().token.is_some() {
                    " (a token was sent, but it does not grant access)"
                } else {
                    ""
                }
            )),
            HttpError::NotFound => {
                Error::Download(format!("{endpoint}: {repo} has no file {file} (404)"))
            }
            other => Error::Download(format!("{endpoint}/{repo}/{file}: {other}")),
        }
    }

    /// Downloads the model's files from its Hugging Face repo; returns the snapshot folder.
    pub fn fetch_repo(
        &self,
        repo: &str,
        revision: &str,
        files: &ModelFiles,
        cache_dir: &Path,
    ) -> Result<PathBuf> {
        let repo_dir = cache_dir.join(repo_folder_name(repo));
        let Some(first) = files.required.first() else {
            return Err(Error::InvalidArgument("no files to download".into()));
        };
        let head = self
            .client
            .file_meta(repo, revision, first)
            .map_err(|e| self.repo_error(repo, first, e))?;
        // Every file comes from the commit the revision resolved to, not from whatever
        // `main` is by the time the later requests are made.
        let commit = head.commit.clone();
        let snapshot = repo_dir.join("snapshots").join(&commit);
        let mut metas = vec![(first.clone(), head)];
        for file in files.required.iter().skip(1) {
            let meta = self
                .client
                .file_meta(repo, &commit, file)
                .map_err(|e| self.repo_error(repo, file, e))?;
            metas.push((file.clone(), meta));
        }
        for file in &files.optional {
            match self.client.file_meta(repo, &commit, file) {
                Ok(meta) => metas.push((file.clone(), meta)),
                Err(HttpError::NotFound) => {}
                Err(e) => return Err(self.repo_error(repo, file, e)),
            }
        }
        for (file, meta) in &metas {
            check_repo_path(file)?;
            let blob = self.ensure_blob(cache_dir, repo, &repo_dir, file, meta)?;
            link_snapshot(&snapshot, file, &blob)?;
        }
        if revision != commit {
            write_atomic(&repo_dir.join("refs").join(revision), commit.as_bytes())?;
        }
        Ok(snapshot)
    }

    fn ensure_blob(
        &self,
        cache_dir: &Path,
        repo: &str,
        repo_dir: &Path,
        file: &str,
        meta: &FileMeta,
    ) -> Result<PathBuf> {
        let blobs = repo_dir.join("blobs");
        let blob = blobs.join(&meta.etag);
        if blob_is_complete(&blob, meta.size) {
            return Ok(blob);
        }
        let locks = cache_dir.join(".locks").join(repo_folder_name(repo));
        create_dir(&blobs)?;
        create_dir(&locks)?;
        let _lock = FileLock::acquire(&locks.join(format!("{}.lock", meta.etag)))?;
        // Another process may have finished it while we waited for the lock.
        if blob_is_complete(&blob, meta.size) {
            return Ok(blob);
        }
        let partial = blobs.join(format!("{}.incomplete", meta.etag));
        self.client.download(
            &meta.url,
            &partial,
            meta.size,
            meta.sha256.as_deref(),
            &format!("{repo}/{file}"),
        )?;
        std::fs::rename(&partial, &blob).map_err(|e| Error::io(&blob, e))?;
        Ok(blob)
    }

    /// Downloads and safely unpacks a legacy archive into `<cache>/<folder>`.
    pub fn fetch_archive(&self, url: &str, folder: &str, cache_dir: &Path) -> Result<PathBuf> {
        let dest = cache_dir.join(folder);
        let tmp_root = cache_dir.join("tmp");
        if tmp_root.is_symlink() {
            return Err(Error::Download(format!(
                "{} is a symlink; refusing to stage downloads through it",
                tmp_root.display()
            )));
        }
        create_dir(&tmp_root)?;
        let locks = cache_dir.join(".locks");
        create_dir(&locks)?;
        let _lock = FileLock::acquire(&locks.join(format!("{folder}.lock")))?;
        if dest.is_dir()
            && dest
                .read_dir()
                .map(|mut d| d.next().is_some())
                .unwrap_or(false)
        {
            return Ok(dest);
        }
        let staging = unique_tmp(&tmp_root.join(folder));
        let _ = std::fs::remove_dir_all(&staging);
        create_dir(&staging)?;
        let result = (|| {
            let archive_path = staging.join(format!("{folder}.tar.gz"));
            self.client
                .download(url, &archive_path, None, None, folder)?;
            let unpacked = staging.join("unpacked");
            archive::extract(
                &archive_path,
                &unpacked,
                self.client.options().max_archive_bytes,
            )?;
            let inner = unpacked.join(folder);
            if !inner.is_dir() || inner.is_symlink() {
                return Err(Error::Download(format!(
                    "the archive from {url} has no folder {folder}"
                )));
            }
            let _ = std::fs::remove_dir(&dest);
            std::fs::rename(&inner, &dest).map_err(|e| Error::io(&dest, e))?;
            Ok(dest.clone())
        })();
        let _ = std::fs::remove_dir_all(&staging);
        result
    }
}

impl Fetcher for HubFetcher {
    fn fetch(&self, files: &ModelFiles, cache_dir: &Path) -> Result<PathBuf> {
        create_dir(cache_dir)?;
        let mut failures = Vec::new();
        if let Some(repo) = &files.sources.hf {
            let revision = files.sources.revision.as_deref().unwrap_or("main");
            match self.fetch_repo(repo, revision, files, cache_dir) {
                Ok(dir) => return Ok(dir),
                Err(e) => {
                    tracing::warn!(%repo, error = %e, "download from the hub failed");
                    failures.push(e.to_string());
                }
            }
        }
        if let Some(url) = &files.sources.url {
            let folder = super::legacy_folder(files);
            match self.fetch_archive(url, &folder, cache_dir) {
                Ok(dir) => return Ok(dir),
                Err(e) => failures.push(e.to_string()),
            }
        }
        if failures.is_empty() {
            failures.push("the model has no hub repository or URL to download from".into());
        }
        Err(Error::Download(format!(
            "could not get {}: {}",
            files.model,
            failures.join("; then: ")
        )))
    }
}

fn blob_is_complete(blob: &Path, size: Option<u64>) -> bool {
    match std::fs::metadata(blob) {
        Ok(m) if m.is_file() => size.is_none_or(|s| m.len() == s),
        _ => false,
    }
}

/// A repo file name from the registry must stay inside the snapshot.
fn check_repo_path(file: &str) -> Result<()> {
    let ok = !file.is_empty()
        && !file.starts_with('/')
        && file
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..");
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "model file name {file:?} must be a relative path inside the repository"
        )))
    }
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

/// Makes `snapshot/file` point at `blob`: a relative symlink as huggingface_hub makes, or
/// a copy where symlinks are not available. Replaced atomically.
fn link_snapshot(snapshot: &Path, file: &str, blob: &Path) -> Result<()> {
    let link = snapshot.join(file);
    let parent = link.parent().unwrap_or(snapshot);
    create_dir(parent)?;
    let tmp = unique_tmp(&link);
    // snapshots/<commit>/<a>/<b> → ../../(../)blobs/<etag>
    let depth = file.split('/').count() + 1;
    let mut relative = PathBuf::new();
    for _ in 0..depth {
        relative.push("..");
    }
    relative.push("blobs");
    relative.push(blob.file_name().unwrap_or_default());
    #[cfg(unix)]
    let made = std::os::unix::fs::symlink(&relative, &tmp);
    #[cfg(not(unix))]
    let made: std::io::Result<()> = Err(std::io::Error::other("no symlinks"));
    if made.is_err() {
        std::fs::copy(blob, &tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, &link).map_err(|e| Error::io(&link, e))
}

/// A temporary name beside `path`, unique across processes and threads.
fn unique_tmp(path: &Path) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

/// Writes a small file completely or not at all.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    create_dir(parent)?;
    let tmp = unique_tmp(path);
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// An exclusive lock on a file, released on drop (std's advisory file locks).
struct FileLock(File);

impl FileLock {
    fn acquire(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        file.lock().map_err(|e| Error::io(path, e))?;
        Ok(FileLock(file))
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_paths_stay_inside() {
        assert!(check_repo_path("onnx/model.onnx").is_ok());
        assert!(check_repo_path("../x").is_err());
        assert!(check_repo_path("/etc/passwd").is_err());
        assert!(check_repo_path("a//b").is_err());
    }
}
