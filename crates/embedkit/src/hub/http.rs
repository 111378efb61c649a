//! HTTP transfers for the hub: metadata requests and resumable, verified downloads.
//!
//! Built on `ureq` rather than the `hf-hub` crate: hf-hub has no read timeout setting,
//! does not verify the LFS sha256 and does not resume partial files, which are the three
//! things fastembed's downloads get wrong (a download that hangs forever, corrupt files
//! cached, a restart from zero after a cut).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use ureq::http::Uri;
use ureq::Agent;

use super::safe_fs::{open_partial, resumable_len};
use super::HubOptions;
use crate::error::{Error, Result};

/// How a downloaded file is checked before it enters the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The sha256 the hub announces for LFS files.
    Sha256(String),
    /// git's blob id (sha1 of `blob <len>\0` and the bytes), which the hub's tree listing
    /// (and its ETag) gives for the other files.
    GitBlob(String),
}

/// One file of the hub's tree listing of a commit.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct TreeEntry {
    pub path: String,
    #[serde(default)]
    pub oid: Option<String>,
    #[serde(default)]
    pub lfs: Option<LfsEntry>,
}

/// The LFS part of a tree entry: the sha256 of the bytes.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct LfsEntry {
    pub oid: String,
}

/// Redirects followed by hand per request (so credentials are decided per host).
const MAX_REDIRECTS: usize = 5;

/// `scheme://host:port` of a URL, lowercased, with the scheme's default port: what a
/// credential is bound to.
fn origin(url: &str) -> Option<(String, String, u16)> {
    let uri: Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_ascii_lowercase();
    let port = uri.port_u16().unwrap_or(match scheme.as_str() {
        "https" => 443,
        _ => 80,
    });
    Some((scheme, host, port))
}

/// The absolute URL a `Location` header points to from `base`.
fn resolve_location(base: &str, location: &str) -> Option<String> {
    if location.contains("://") {
        return Some(location.to_string());
    }
    let uri: Uri = base.parse().ok()?;
    let prefix = format!("{}://{}", uri.scheme_str()?, uri.authority()?.as_str());
    if location.starts_with('/') {
        return Some(format!("{prefix}{location}"));
    }
    let path = uri.path();
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    Some(format!("{prefix}{dir}{location}"))
}

/// What the hub says about one file of a repo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// The commit the revision resolved to (`X-Repo-Commit`).
    pub commit: String,
    /// The blob name: the LFS sha256 or the git blob id, without quotes.
    pub etag: String,
    /// Size in bytes, when announced.
    pub size: Option<u64>,
    /// The sha256 to verify, for LFS files (`X-Linked-Etag`).
    pub sha256: Option<String>,
    /// Where to fetch the bytes from (a CDN for LFS files).
    pub url: String,
}

/// A failed request, kept apart so callers can tell "absent" from "broken".
#[derive(Debug)]
pub enum HttpError {
    NotFound,
    Unauthorized,
    Status(u16),
    Transport(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::NotFound => write!(f, "not found (404)"),
            HttpError::Unauthorized => write!(f, "unauthorized (401)"),
            HttpError::Status(s) => write!(f, "HTTP status {s}"),
            HttpError::Transport(e) => write!(f, "{e}"),
        }
    }
}

pub struct Client {
    agent: Agent,
    opts: HubOptions,
}

fn clean_etag(raw: &str) -> String {
    raw.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_string()
}

fn header(resp: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl Client {
    pub fn new(opts: HubOptions) -> Self {
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(opts.connect_timeout))
            .timeout_per_read(Some(opts.read_timeout))
            .timeout_recv_response(Some(opts.read_timeout))
            .user_agent(concat!("embedkit/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Client { agent, opts }
    }

    pub fn options(&self) -> &HubOptions {
        &self.opts
    }

    /// The `Authorization` header for a request to `url`: the token only goes to the
    /// endpoint's own origin (scheme, host and port), never to a CDN or another host a
    /// redirect names, as huggingface_hub does.
    fn auth_for(&self, url: &str) -> Option<String> {
        let token = self.opts.token.as_ref()?;
        let same = origin(url).is_some() && origin(url) == origin(&self.opts.endpoint);
        same.then(|| format!("Bearer {token}"))
    }

    /// The hub's listing of every file of `repo` at `commit`: git blob ids and LFS
    /// sha256s, by path.
    pub fn tree(
        &self,
        repo: &str,
        commit: &str,
    ) -> std::result::Result<HashMap<String, TreeEntry>, HttpError> {
        let base = self.opts.endpoint.trim_end_matches('/');
        let url = format!("{base}/api/models/{repo}/tree/{commit}?recursive=true");
        let mut req = self.agent.get(&url).config().max_redirects(0).build();
        if let Some(auth) = self.auth_for(&url) {
            req = req.header("Authorization", auth);
        }
        let resp = req
            .call()
            .map_err(|e| HttpError::Transport(e.to_string()))?;
        match resp.status().as_u16() {
            200 => {}
            401 | 403 => return Err(HttpError::Unauthorized),
            404 => return Err(HttpError::NotFound),
            s => return Err(HttpError::Status(s)),
        }
        let text = resp
            .into_body()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| HttpError::Transport(format!("{url}: {e}")))?;
        let entries: Vec<TreeEntry> = serde_json::from_str(&text)
            .map_err(|e| HttpError::Transport(format!("{url}: not a tree listing: {e}")))?;
        Ok(entries.into_iter().map(|e| (e.path.clone(), e)).collect())
    }

    /// `HEAD {endpoint}/{repo}/resolve/{revision}/{file}` without following redirects to
    /// other hosts, so the hub's own headers (commit, etag, size) are read.
    pub fn file_meta(
        &self,
        repo: &str,
        revision: &str,
        file: &str,
    ) -> std::result::Result<FileMeta, HttpError> {
        let base = self.opts.endpoint.trim_end_matches('/');
        let mut url = format!("{base}/{repo}/resolve/{revision}/{file}");
        // A relative redirect is a renamed repo (followed, a few times at most); an
        // absolute one is the CDN holding the bytes.
        for _ in 0..5 {
            let mut req = self
                .agent
                .head(&url)
                .header("Accept-Encoding", "identity")
                .config()
                .max_redirects(0)
                .build();
            if let Some(auth) = self.auth_for(&url) {
                req = req.header("Authorization", auth);
            }
            let resp = req
                .call()
                .map_err(|e| HttpError::Transport(e.to_string()))?;
            let status = resp.status().as_u16();
            match status {
                200..=399 => {
                    let location = header(&resp, "location");
                    if (300..400).contains(&status) {
                        if let Some(loc) = location.as_deref().filter(|l| l.starts_with('/')) {
                            url = format!("{base}{loc}");
                            continue;
                        }
                    }
                    let commit = header(&resp, "x-repo-commit").ok_or_else(|| {
                        HttpError::Transport(format!(
                            "{url}: the server sent no X-Repo-Commit header; is {base} a Hugging Face hub?"
                        ))
                    })?;
                    let linked = header(&resp, "x-linked-etag").map(|e| clean_etag(&e));
                    let etag = linked
                        .clone()
                        .or_else(|| header(&resp, "etag").map(|e| clean_etag(&e)))
                        .ok_or_else(|| {
                            HttpError::Transport(format!("{url}: the server sent no ETag"))
                        })?;
                    let size = header(&resp, "x-linked-size")
                        .or_else(|| header(&resp, "content-length"))
                        .and_then(|s| s.trim().parse().ok());
                    let sha256 = linked
                        .filter(|e| e.len() == 64 && e.chars().all(|c| c.is_ascii_hexdigit()));
                    let url = match location {
                        Some(loc) if (300..400).contains(&status) => loc,
                        _ => url,
                    };
                    if !is_safe_name(&commit) || !is_safe_name(&etag) {
                        return Err(HttpError::Transport(format!(
                            "{url}: the server sent a commit or etag that is not a plain name"
                        )));
                    }
                    return Ok(FileMeta {
                        commit,
                        etag,
                        size,
                        sha256,
                        url,
                    });
                }
                401 | 403 => return Err(HttpError::Unauthorized),
                404 => return Err(HttpError::NotFound),
                s => return Err(HttpError::Status(s)),
            }
        }
        Err(HttpError::Transport(format!("{url}: too many redirects")))
    }

    /// Downloads `url` into `partial`, resuming what is already there, retrying with
    /// backoff, then checks size and `check`. On success `partial` holds the whole file.
    pub fn download(
        &self,
        url: &str,
        partial: &Path,
        size: Option<u64>,
        check: Option<&Check>,
        label: &str,
    ) -> Result<()> {
        let bar = progress_bar(self.opts.progress, size, label);
        let mut attempt = 0u32;
        let mut backoff = self.opts.backoff;
        loop {
            match self.transfer(url, partial, size, &bar) {
                Ok(()) => break,
                Err(Transfer::Fatal(e)) => {
                    bar.abandon();
                    return Err(e);
                }
                Err(Transfer::Retry(reason)) => {
                    attempt += 1;
                    if attempt >= self.opts.attempts {
                        bar.abandon();
                        return Err(Error::Download(format!(
                            "{label}: gave up after {attempt} attempts ({reason})"
                        )));
                    }
                    tracing::warn!(%label, attempt, %reason, "download interrupted; retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
        bar.finish_and_clear();
        let have = std::fs::metadata(partial)
            .map_err(|e| Error::io(partial, e))?
            .len();
        if let Some(expected) = size {
            if have != expected {
                let _ = std::fs::remove_file(partial);
                return Err(Error::Download(format!(
                    "{label}: got {have} bytes, the server announced {expected}"
                )));
            }
        }
        if let Some(check) = check {
            let (kind, expected, actual) = match check {
                Check::Sha256(e) => ("sha256", e, sha256_file(partial)?),
                Check::GitBlob(e) => ("git blob id", e, git_blob_id(partial)?),
            };
            if !actual.eq_ignore_ascii_case(expected) {
                let _ = std::fs::remove_file(partial);
                return Err(Error::Download(format!(
                    "{label} is corrupt: its {kind} is {actual} but the hub announced \
                     {expected}; nothing was cached, try again or check the mirror"
                )));
            }
        }
        Ok(())
    }

    fn transfer(
        &self,
        url: &str,
        partial: &Path,
        size: Option<u64>,
        bar: &ProgressBar,
    ) -> std::result::Result<(), Transfer> {
        let have = resumable_len(partial).map_err(Transfer::Fatal)?;
        if size == Some(have) && have > 0 {
            return Ok(());
        }
        let (url, resp) = self.get_following(url, have)?;
        let url = url.as_str();
        let status = resp.status().as_u16();
        let append = match status {
            206 => true,
            200 => false,
            416 if have > 0 => {
                // Our partial file is not a prefix the server recognises: start over.
                let _ = std::fs::remove_file(partial);
                return Err(Transfer::Retry("range not satisfiable; restarting".into()));
            }
            401 | 403 => {
                return Err(Transfer::Fatal(Error::Download(format!(
                    "{url}: unauthorized ({status})"
                ))))
            }
            404 => {
                return Err(Transfer::Fatal(Error::Download(format!(
                    "{url}: not found (404)"
                ))))
            }
            s if s >= 500 || s == 429 => return Err(Transfer::Retry(format!("HTTP status {s}"))),
            s => {
                return Err(Transfer::Fatal(Error::Download(format!(
                    "{url}: HTTP status {s}"
                ))))
            }
        };
        let file = open_partial(partial, append).map_err(Transfer::Fatal)?;
        bar.set_position(if append { have } else { 0 });
        let mut body = resp.into_body();
        let mut reader = body
            .with_config()
            .limit(size.map_or(u64::MAX, |s| s.saturating_add(1)))
            .reader();
        copy_with_progress(&mut reader, file, bar, partial)
    }
}

impl Client {
    /// GET `url` (from byte `from`), following redirects by hand: each hop gets the
    /// token only if it is on the endpoint's origin.
    fn get_following(
        &self,
        url: &str,
        from: u64,
    ) -> std::result::Result<(String, ureq::http::Response<ureq::Body>), Transfer> {
        let mut url = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self
                .agent
                .get(&url)
                .header("Accept-Encoding", "identity")
                .config()
                .max_redirects(0)
                .build();
            if from > 0 {
                req = req.header("Range", format!("bytes={from}-"));
            }
            if let Some(auth) = self.auth_for(&url) {
                req = req.header("Authorization", auth);
            }
            let resp = req.call().map_err(|e| Transfer::Retry(e.to_string()))?;
            let status = resp.status().as_u16();
            if !matches!(status, 301 | 302 | 303 | 307 | 308) {
                return Ok((url, resp));
            }
            let next = header(&resp, "location")
                .and_then(|loc| resolve_location(&url, &loc))
                .ok_or_else(|| {
                    Transfer::Fatal(Error::Download(format!(
                        "{url} redirected ({status}) without a usable Location header"
                    )))
                })?;
            url = next;
        }
        Err(Transfer::Fatal(Error::Download(format!(
            "{url}: more than {MAX_REDIRECTS} redirects"
        ))))
    }
}

enum Transfer {
    Retry(String),
    Fatal(Error),
}

fn copy_with_progress(
    reader: &mut impl Read,
    mut file: File,
    bar: &ProgressBar,
    path: &Path,
) -> std::result::Result<(), Transfer> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = file.flush();
                return Err(Transfer::Retry(e.to_string()));
            }
        };
        file.write_all(&buf[..n])
            .map_err(|e| Transfer::Fatal(Error::io(path, e)))?;
        bar.inc(n as u64);
    }
    file.sync_all()
        .map_err(|e| Transfer::Fatal(Error::io(path, e)))
}

/// git's blob id of a file: sha1 of `blob <len>\0` followed by the bytes.
pub fn git_blob_id(path: &Path) -> Result<String> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    let mut hasher = Sha1::new();
    hasher.update(format!("blob {len}\0").as_bytes());
    hash_file(path, |chunk| hasher.update(chunk))?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// Feeds the bytes of `path` to `update`, a megabyte at a time.
fn hash_file(path: &Path, mut update: impl FnMut(&[u8])) -> Result<()> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            return Ok(());
        }
        update(&buf[..n]);
    }
}

/// The sha256 of a file, as hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    hash_file(path, |chunk| hasher.update(chunk))?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// A commit hash or etag used as a file name: letters, digits, `-`, `_`, `.` only, and
/// not a dot name, so a hostile server cannot point a path outside the cache.
pub fn is_safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn progress_bar(enabled: bool, size: Option<u64>, label: &str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = match size {
        Some(s) => ProgressBar::new(s),
        None => ProgressBar::new_spinner(),
    };
    let template = if size.is_some() {
        "{msg} {bar:30} {bytes}/{total_bytes}  {bytes_per_sec}  ETA {eta}"
    } else {
        "{msg} {spinner} {bytes}  {bytes_per_sec}  {elapsed}"
    };
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(label.to_string());
    // Redrawn on a timer, so a stalled download still shows its rate falling.
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_bound_to_scheme_host_and_port() {
        assert_eq!(
            origin("https://HuggingFace.co/x"),
            Some(("https".into(), "huggingface.co".into(), 443))
        );
        assert_eq!(
            origin("https://huggingface.co:443/x"),
            origin("https://huggingface.co/y")
        );
        assert_ne!(
            origin("http://huggingface.co/x"),
            origin("https://huggingface.co/x")
        );
        assert_ne!(
            origin("http://127.0.0.1:8000/x"),
            origin("http://127.0.0.1:8001/x")
        );
        assert_ne!(
            origin("https://cdn-lfs.hf.co/x"),
            origin("https://huggingface.co/x")
        );
        let client = Client::new(HubOptions {
            endpoint: "http://127.0.0.1:8000".into(),
            token: Some("secret".into()),
            ..HubOptions::from_env()
        });
        assert!(client.auth_for("http://127.0.0.1:8000/a/b").is_some());
        assert!(client.auth_for("http://127.0.0.1:8001/a/b").is_none());
        assert!(client.auth_for("http://localhost:8000/a/b").is_none());
    }

    #[test]
    fn locations_resolve_against_the_request() {
        let base = "http://h:1/org/repo/resolve/main/f.json";
        assert_eq!(
            resolve_location(base, "https://cdn/x").unwrap(),
            "https://cdn/x"
        );
        assert_eq!(
            resolve_location(base, "/api/y").unwrap(),
            "http://h:1/api/y"
        );
        assert_eq!(
            resolve_location(base, "g.json").unwrap(),
            "http://h:1/org/repo/resolve/main/g.json"
        );
    }

    #[test]
    fn git_blob_ids_are_gits() {
        let dir = std::env::temp_dir().join(format!("embedkit-blob-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("hello");
        std::fs::write(&f, b"hello\n").unwrap();
        // `echo hello | git hash-object --stdin`
        assert_eq!(
            git_blob_id(&f).unwrap(),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn etags_are_cleaned_and_names_checked() {
        assert_eq!(clean_etag("W/\"abc\""), "abc");
        assert_eq!(clean_etag("\"abc\""), "abc");
        assert!(is_safe_name("a1b2c3"));
        assert!(!is_safe_name("../x"));
        assert!(!is_safe_name(".."));
        assert!(!is_safe_name("a/b"));
        assert!(!is_safe_name(""));
    }
}
