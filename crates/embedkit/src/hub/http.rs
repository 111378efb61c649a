//! HTTP transfers for the hub: metadata requests and resumable, verified downloads.
//!
//! Built on `ureq` rather than the `hf-hub` crate: hf-hub has no read timeout setting,
//! does not verify the LFS sha256 and does not resume partial files, which are the three
//! things fastembed's downloads get wrong (a download that hangs forever, corrupt files
//! cached, a restart from zero after a cut).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use ureq::Agent;

use super::HubOptions;
use crate::error::{Error, Result};

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

    fn auth(&self) -> Option<String> {
        self.opts.token.as_ref().map(|t| format!("Bearer {t}"))
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
            if let Some(auth) = self.auth() {
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
    /// backoff, then checks size and sha256. On success `partial` holds the whole file.
    pub fn download(
        &self,
        url: &str,
        partial: &Path,
        size: Option<u64>,
        sha256: Option<&str>,
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
                            "{label}: giving up after {attempt} attempts: {reason}"
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
        if let Some(expected) = sha256 {
            let actual = sha256_file(partial)?;
            if !actual.eq_ignore_ascii_case(expected) {
                let _ = std::fs::remove_file(partial);
                return Err(Error::Download(format!(
                    "{label}: checksum mismatch: sha256 {actual}, the hub announced {expected}; \
                     nothing was cached"
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
        let have = std::fs::metadata(partial).map(|m| m.len()).unwrap_or(0);
        if size == Some(have) && have > 0 {
            return Ok(());
        }
        let mut req = self.agent.get(url).header("Accept-Encoding", "identity");
        if have > 0 {
            req = req.header("Range", format!("bytes={have}-"));
        }
        if let Some(auth) = self.auth() {
            req = req.header("Authorization", auth);
        }
        let resp = req.call().map_err(|e| Transfer::Retry(e.to_string()))?;
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
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(partial)
            .map_err(|e| Transfer::Fatal(Error::io(partial, e)))?;
        bar.set_position(if append { have } else { 0 });
        let mut body = resp.into_body();
        let mut reader = body
            .with_config()
            .limit(size.map_or(u64::MAX, |s| s.saturating_add(1)))
            .reader();
        copy_with_progress(&mut reader, file, bar, partial)
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

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
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
        "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}"
    } else {
        "{msg} {spinner} {bytes} {bytes_per_sec}"
    };
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(label.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

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
