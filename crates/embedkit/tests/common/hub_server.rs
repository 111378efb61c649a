//! A local HTTP server that speaks the Hugging Face hub's download protocol, with faults
//! on demand. Tests start it on 127.0.0.1 and point the hub client at it.
//!
//! Routes: `HEAD|GET /{org}/{name}/resolve/{revision}/{file}` (ETag, X-Repo-Commit,
//! X-Linked-Etag and X-Linked-Size for LFS files, Content-Length, Range / 206);
//! `GET /api/models/{org}/{name}[/revision/{rev}]` and `.../tree/{rev}` (the model-info and
//! file-list APIs huggingface_hub and fastembed call, so the Python reference can download
//! from this server too); `GET /files/{name}` for plain files such as `.tar.gz` archives.
//! Hand-written on std's TcpListener: fault injection (a stall after N bytes, a cut
//! connection) needs control of the bytes on the wire that a server framework hides.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// HEAD and GET answer nothing at all.
    Stall,
    /// The first GET sends N bytes of the body, then goes silent.
    StallBodyOnce(usize),
    /// The first GET sends N bytes of the body, then closes the connection.
    CutOnce(usize),
    /// The hub announces a sha256 that is not the content's.
    WrongChecksum,
    /// The hub announces a git blob id (ETag and tree listing) that is not the content's.
    WrongBlobId,
    /// Every GET sends the body slowly (64 KiB per 10 ms), so transfers overlap.
    Slow,
}

#[derive(Debug, Clone)]
pub struct ServedFile {
    pub content: Vec<u8>,
    pub lfs: bool,
    pub fault: Fault,
}

#[derive(Debug, Clone)]
pub struct Repo {
    pub commit: String,
    pub files: HashMap<String, ServedFile>,
    /// Requests without this bearer token get 401.
    pub token: Option<String>,
    /// LFS files are served from this other server (a CDN): `resolve` answers 302 to
    /// `{cdn}/files/{sha256}`, as the hub does. Add the bytes there with `add_plain`.
    pub cdn: Option<String>,
}

#[derive(Default)]
struct State {
    repos: HashMap<String, Repo>,
    plain: HashMap<String, Vec<u8>>,
    /// "METHOD path [range]" of every request, in order.
    log: Vec<String>,
    /// GETs already answered per path (faults apply to the first only).
    gets: HashMap<String, usize>,
}

pub struct HubServer {
    pub endpoint: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// git's blob id of `bytes` (what the hub lists, and sends as ETag, for small files).
pub fn git_blob_hex(bytes: &[u8]) -> String {
    use sha1::{Digest as _, Sha1};
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", bytes.len()).as_bytes());
    h.update(bytes);
    format!("{:x}", h.finalize())
}

/// The seeded model folder `dir` served as a repo in the layout of
/// `Qdrant/bge-small-en-v1.5-onnx-Q`; `model_fault` applies to its ONNX file.
pub fn bge_small_repo(dir: &std::path::Path, commit: &str, model_fault: Fault) -> Repo {
    let mut files = HashMap::new();
    for (name, lfs) in [
        ("model_optimized.onnx", true),
        ("tokenizer.json", true),
        ("tokenizer_config.json", false),
        ("config.json", false),
        ("special_tokens_map.json", false),
    ] {
        let fault = if name == "model_optimized.onnx" {
            model_fault
        } else {
            Fault::None
        };
        let content = std::fs::read(dir.join(name)).unwrap();
        files.insert(
            name.to_string(),
            ServedFile {
                content,
                lfs,
                fault,
            },
        );
    }
    Repo {
        commit: commit.into(),
        files,
        token: None,
        cdn: None,
    }
}

impl HubServer {
    pub fn start() -> HubServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !sp.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (st, sp) = (st.clone(), sp.clone());
                        std::thread::spawn(move || {
                            let _ = handle(stream, &st, &sp);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        HubServer {
            endpoint,
            state,
            stop,
        }
    }

    pub fn add_repo(&self, id: &str, repo: Repo) {
        self.state
            .lock()
            .unwrap()
            .repos
            .insert(id.to_string(), repo);
    }

    pub fn add_plain(&self, name: &str, bytes: Vec<u8>) {
        self.state
            .lock()
            .unwrap()
            .plain
            .insert(name.to_string(), bytes);
    }

    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn clear_log(&self) {
        self.state.lock().unwrap().log.clear();
    }

    /// GET requests for a path suffix (the bytes actually transferred).
    pub fn gets_of(&self, suffix: &str) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|l| {
                l.starts_with("GET ") && l.split(' ').nth(1).unwrap_or("").ends_with(suffix)
            })
            .collect()
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn stall(stop: &AtomicBool) {
    let until = Instant::now() + Duration::from_secs(60);
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn handle(stream: TcpStream, state: &Mutex<State>, stop: &AtomicBool) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let range_start: Option<usize> = headers
        .get("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.trim_end_matches('-').parse().ok());
    let mut out = stream;

    let mut st = state.lock().unwrap();
    let mut entry = match &headers.get("range") {
        Some(r) => format!("{method} {path} {r}"),
        None => format!("{method} {path}"),
    };
    if let Some(auth) = headers.get("authorization") {
        entry.push_str(&format!(" authorization={auth}"));
    }
    st.log.push(entry);
    let path = path.split('?').next().unwrap_or("").to_string();
    if let Some(api) = path.strip_prefix("/api/models/") {
        let segs: Vec<&str> = api.splitn(4, '/').collect();
        let repo_id = segs[..segs.len().min(2)].join("/");
        let Some(repo) = st.repos.get(&repo_id).cloned() else {
            drop(st);
            return respond(
                &mut out,
                401,
                &[("X-Error-Code", "RepoNotFound")],
                b"",
                true,
            );
        };
        drop(st);
        let body = if segs.get(2) == Some(&"tree") {
            let mut entries: Vec<String> = repo
                .files
                .iter()
                .map(|(name, f)| {
                    let sha = sha256_hex(&f.content);
                    let blob = if f.fault == Fault::WrongBlobId {
                        git_blob_hex(b"something else entirely")
                    } else {
                        git_blob_hex(&f.content)
                    };
                    let lfs = if f.lfs {
                        format!(
                            r#","lfs":{{"oid":"{sha}","size":{},"pointerSize":134}}"#,
                            f.content.len()
                        )
                    } else {
                        String::new()
                    };
                    format!(
                        r#"{{"type":"file","path":"{name}","size":{},"oid":"{blob}"{lfs}}}"#,
                        f.content.len(),
                    )
                })
                .collect();
            entries.sort();
            format!("[{}]", entries.join(","))
        } else {
            let siblings: Vec<String> = repo
                .files
                .keys()
                .map(|k| format!(r#"{{"rfilename":"{k}"}}"#))
                .collect();
            format!(
                r#"{{"id":"{repo_id}","modelId":"{repo_id}","sha":"{}","private":false,"siblings":[{}]}}"#,
                repo.commit,
                siblings.join(",")
            )
        };
        return respond(
            &mut out,
            200,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
            method != "HEAD",
        );
    }
    if let Some(name) = path.strip_prefix("/files/") {
        let Some(bytes) = st.plain.get(name).cloned() else {
            drop(st);
            return respond(&mut out, 404, &[], b"not found", true);
        };
        drop(st);
        return send_body(
            &mut out,
            &method,
            &bytes,
            range_start,
            &[],
            Fault::None,
            stop,
        );
    }
    // /{org}/{name}/resolve/{revision}/{file...}
    let segs: Vec<&str> = path.trim_start_matches('/').splitn(5, '/').collect();
    if segs.len() != 5 || segs[2] != "resolve" {
        drop(st);
        return respond(&mut out, 404, &[], b"no such route", true);
    }
    let repo_id = format!("{}/{}", segs[0], segs[1]);
    let (revision, file) = (segs[3], segs[4]);
    let Some(repo) = st.repos.get(&repo_id).cloned() else {
        drop(st);
        // The hub answers 401 for repos it will not show, existing or not.
        return respond(
            &mut out,
            401,
            &[("X-Error-Code", "RepoNotFound")],
            b"",
            true,
        );
    };
    if let Some(token) = &repo.token {
        let ok = headers.get("authorization") == Some(&format!("Bearer {token}"));
        if !ok {
            drop(st);
            return respond(&mut out, 401, &[("X-Error-Code", "GatedRepo")], b"", true);
        }
    }
    if revision != "main" && revision != repo.commit {
        drop(st);
        return respond(
            &mut out,
            404,
            &[("X-Error-Code", "RevisionNotFound")],
            b"",
            true,
        );
    }
    let Some(served) = repo.files.get(file).cloned() else {
        drop(st);
        return respond(
            &mut out,
            404,
            &[("X-Error-Code", "EntryNotFound")],
            b"",
            true,
        );
    };
    let first_get = if method == "GET" {
        let n = st.gets.entry(path.clone()).or_insert(0);
        *n += 1;
        *n == 1
    } else {
        false
    };
    drop(st);

    let sha = sha256_hex(&served.content);
    let announced = if served.fault == Fault::WrongChecksum {
        sha256_hex(b"something else entirely")
    } else {
        sha.clone()
    };
    let blob = if served.fault == Fault::WrongBlobId {
        git_blob_hex(b"something else entirely")
    } else {
        git_blob_hex(&served.content)
    };
    let etag = if served.lfs {
        format!("\"{announced}\"")
    } else {
        format!("\"{blob}\"")
    };
    let size = served.content.len().to_string();
    let mut h: Vec<(&str, &str)> = vec![("X-Repo-Commit", &repo.commit), ("ETag", &etag)];
    let quoted;
    if served.lfs {
        quoted = format!("\"{announced}\"");
        h.push(("X-Linked-Etag", &quoted));
        h.push(("X-Linked-Size", &size));
    }
    if let (true, Some(cdn)) = (served.lfs, &repo.cdn) {
        // The hub's answer for an LFS file: its headers, and a redirect to the CDN.
        let location = format!("{cdn}/files/{sha}");
        h.push(("Location", &location));
        h.push(("Content-Length", "0"));
        let mut head = "HTTP/1.1 302 Found\r\nConnection: close\r\n".to_string();
        for (k, v) in &h {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes())?;
        return out.flush();
    }
    let fault = match served.fault {
        Fault::Stall => Fault::Stall,
        Fault::StallBodyOnce(_) | Fault::CutOnce(_) if !first_get => Fault::None,
        f => f,
    };
    send_body(
        &mut out,
        &method,
        &served.content,
        range_start,
        &h,
        fault,
        stop,
    )
}

fn respond(
    out: &mut TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    with_body: bool,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        206 => "Partial Content",
        401 => "Unauthorized",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        _ => "Status",
    };
    write_head(out, status, reason, headers, body.len())?;
    if with_body {
        out.write_all(body)?;
    }
    out.flush()
}

fn write_head(
    out: &mut TcpStream,
    status: u16,
    reason: &str,
    headers: &[(&str, &str)],
    length: usize,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {length}\r\n\r\n"));
    out.write_all(head.as_bytes())
}

fn send_body(
    out: &mut TcpStream,
    method: &str,
    content: &[u8],
    range_start: Option<usize>,
    headers: &[(&str, &str)],
    fault: Fault,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    if fault == Fault::Stall {
        stall(stop);
        return Ok(());
    }
    let head_only = method == "HEAD";
    let start = range_start.unwrap_or(0);
    if start > content.len() {
        return respond(out, 416, headers, b"", !head_only);
    }
    let body = &content[start..];
    let mut h: Vec<(&str, &str)> = headers.to_vec();
    let content_range;
    let status = if range_start.is_some() && !head_only {
        content_range = format!(
            "bytes {start}-{}/{}",
            content.len().saturating_sub(1),
            content.len()
        );
        h.push(("Content-Range", &content_range));
        206
    } else {
        200
    };
    if head_only {
        // HEAD announces the full length without sending it.
        write_head(out, status, "OK", &h, content.len())?;
        return out.flush();
    }
    match fault {
        Fault::StallBodyOnce(n) | Fault::CutOnce(n) => {
            write_head(out, status, "OK", &h, body.len())?;
            out.write_all(&body[..n.min(body.len())])?;
            out.flush()?;
            if matches!(fault, Fault::StallBodyOnce(_)) {
                stall(stop);
            }
            let _ = out.shutdown(std::net::Shutdown::Both);
            Ok(())
        }
        Fault::Slow => {
            write_head(out, status, "OK", &h, body.len())?;
            for chunk in body.chunks(64 << 10) {
                out.write_all(chunk)?;
                std::thread::sleep(Duration::from_millis(10));
            }
            out.flush()
        }
        _ => respond(out, status, &h, body, true),
    }
}
