//! Filling the cache: Hugging Face repos in huggingface_hub's layout, and legacy
//! `.tar.gz` archives from a URL, tried in fastembed's order (repo first, then URL).
//!
//! huggingface_hub's layout, which fastembed and huggingface_hub read back:
//! `models--org--name/blobs/<etag>` holds the bytes, `snapshots/<commit>/<file>` is a
//! relative symlink to the blob, `refs/<revision>` holds the commit. A blob is written as
//! `<etag>.incomplete` and renamed when whole and verified, under a lock in
//! `.locks/models--org--name/<etag>.lock`, so two processes transfer a file once.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::http::{Check, Client, FileMeta, HttpError, TreeEntry};
use super::safe_fs::{self, ensure_dir, is_own_file};
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
        // The hub's listing of the commit gives every file's git blob id (and the LFS
        // sha256): no file enters the cache unverified. Mirrors without the listing
        // still give the blob id as the ETag of small files.
        let tree = match self.client.tree(repo, &commit) {
            Ok(tree) => tree,
            Err(e) => {
                tracing::warn!(%repo, error = %e, "no tree listing; verifying against ETags");
                HashMap::new()
            }
        };
        let mut blobs = Vec::with_capacity(metas.len());
        for (file, meta) in &metas {
            check_repo_path(file)?;
            let check = check_for(meta, tree.get(file.as_str())).ok_or_else(|| {
                Error::Download(format!(
                    "cannot verify {repo}/{file}: the hub announced neither its sha256 nor its \
                     git blob id, so it was not downloaded; use the official hub or a mirror \
                     that serves the tree listing (HF_ENDPOINT)"
                ))
            })?;
            blobs.push((
                file,
                self.ensure_blob(cache_dir, repo, &repo_dir, file, meta, &check)?,
            ));
        }
        // The snapshot appears only once every file is verified.
        for (file, blob) in &blobs {
            link_snapshot(cache_dir, &snapshot, file, blob)?;
        }
        if revision != commit {
            let refs = repo_dir.join("refs");
            ensure_dir(cache_dir, &refs)?;
            let dest = refs.join(revision);
            safe_fs::write_new(&unique_tmp(&dest), &dest, commit.as_bytes())?;
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
        check: &Check,
    ) -> Result<PathBuf> {
        let blobs = repo_dir.join("blobs");
        let blob = blobs.join(&meta.etag);
        let locks = cache_dir.join(".locks").join(repo_folder_name(repo));
        ensure_dir(cache_dir, &blobs)?;
        ensure_dir(cache_dir, &locks)?;
        if blob_is_complete(&blob, meta.size) {
            return Ok(blob);
        }
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
            Some(check),
            &format!("{repo}/{file}"),
        )?;
        std::fs::rename(&partial, &blob).map_err(|e| Error::io(&blob, e))?;
        Ok(blob)
    }

    /// Downloads and safely unpacks a legacy archive into `<cache>/<folder>`.
    pub fn fetch_archive(&self, url: &str, folder: &str, cache_dir: &Path) -> Result<PathBuf> {
        let dest = cache_dir.join(folder);
        let tmp_root = cache_dir.join("tmp");
        ensure_dir(cache_dir, &tmp_root)?;
        let locks = cache_dir.join(".locks");
        ensure_dir(cache_dir, &locks)?;
        let _lock = FileLock::acquire(&locks.join(format!("{folder}.lock")))?;
        if safe_fs::is_real_dir(&dest)
            && dest
                .read_dir()
                .map(|mut d| d.next().is_some())
                .unwrap_or(false)
        {
            return Ok(dest);
        }
        let staging = unique_tmp(&tmp_root.join(folder));
        safe_fs::remove_inside(cache_dir, &staging)?;
        ensure_dir(cache_dir, &staging)?;
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
            // Whatever is at the name (an empty folder, a planted link) goes first; a
            // link's target is left alone.
            safe_fs::remove_inside(cache_dir, &dest)?;
            std::fs::rename(&inner, &dest).map_err(|e| Error::io(&dest, e))?;
            Ok(dest.clone())
        })();
        let _ = safe_fs::remove_inside(cache_dir, &staging);
        result
    }
}

impl Fetcher for HubFetcher {
    fn fetch(&self, files: &ModelFiles, cache_dir: &Path) -> Result<PathBuf> {
        ensure_dir(cache_dir, cache_dir)?;
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
            failures.push("it has no hub repository or URL to download from".into());
        }
        Err(Error::Download(format!(
            "could not download model {}: {}",
            files.model,
            failures.join("; the archive URL also failed: ")
        )))
    }
}

/// A blob of ours (a regular file, not a link) of the announced size.
fn blob_is_complete(blob: &Path, size: Option<u64>) -> bool {
    is_own_file(blob)
        && std::fs::symlink_metadata(blob).is_ok_and(|m| size.is_none_or(|s| m.len() == s))
}

/// How to verify a file: the LFS sha256 the hub announced, else the git blob id of the
/// tree listing, else the ETag when it is one (40 hex digits).
fn check_for(meta: &FileMeta, listed: Option<&TreeEntry>) -> Option<Check> {
    let hex = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_hexdigit());
    if let Some(sha) = &meta.sha256 {
        return Some(Check::Sha256(sha.clone()));
    }
    if let Some(entry) = listed {
        if let Some(lfs) = entry.lfs.as_ref().filter(|l| hex(&l.oid, 64)) {
            return Some(Check::Sha256(lfs.oid.clone()));
        }
        if let Some(oid) = entry.oid.as_ref().filter(|o| hex(o, 40)) {
            return Some(Check::GitBlob(oid.clone()));
        }
    }
    hex(&meta.etag, 40).then(|| Check::GitBlob(meta.etag.clone()))
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

/// Makes `snapshot/file` point at `blob`: a relative symlink as huggingface_hub makes, or
/// a copy where symlinks are not available. Replaced atomically.
fn link_snapshot(cache_dir: &Path, snapshot: &Path, file: &str, blob: &Path) -> Result<()> {
    let link = snapshot.join(file);
    let parent = link.parent().unwrap_or(snapshot);
    ensure_dir(cache_dir, parent)?;
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

/// An exclusive lock on a file, released on drop (std's advisory file locks).
struct FileLock(File);

impl FileLock {
    /// Locks `path`, creating it; a link planted at the name is not followed.
    fn acquire(path: &Path) -> Result<Self> {
        let mut opts = OpenOptions::new();
        opts.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.custom_flags(libc::O_NOFOLLOW).mode(0o600);
        }
        let file = opts.open(path).map_err(|e| {
            Error::Download(format!(
                "cannot take the download lock {}: {e}; if it is a link, remove it",
                path.display()
            ))
        })?;
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
