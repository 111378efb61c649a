//! `embedkit serve` as a child process on 127.0.0.1, and raw HTTP/1.1 requests to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::repo_root;

pub const MINILM: &str = "sentence-transformers/all-MiniLM-L6-v2";

pub fn minilm_dir() -> PathBuf {
    let dir = repo_root().join("../shared/models/all-MiniLM-L6-v2-fp32");
    assert!(
        dir.join("model.onnx").is_file(),
        "the real model folder {} is missing; these tests need ../shared/models",
        dir.display()
    );
    dir
}

pub fn tiny(name: &str) -> PathBuf {
    let dir = repo_root().join("target/test-models").join(name);
    assert!(
        dir.is_dir(),
        "{} is missing: run `make test-models`",
        dir.display()
    );
    dir
}

/// `--model NAME=DIR`.
pub fn model_arg(name: &str, dir: &Path) -> String {
    format!("{name}={}", dir.display())
}

/// A running server; killed when dropped. `log` collects its stderr.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The log lines so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// A Prometheus value (the first sample whose line starts with `series`), or 0.
    pub fn metric(&self, series: &str) -> f64 {
        let (_, _, body) = request(self.port, "GET", "/metrics", b"");
        String::from_utf8_lossy(&body)
            .lines()
            .find(|l| l.starts_with(series) && !l.starts_with('#'))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

/// Polls `cond` until it holds; panics after `limit` (waiting for an event, not racing it).
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < limit, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// MiniLM (the real model) served with `extra` arguments.
pub fn start(extra: &[&str]) -> Server {
    start_model(MINILM, &minilm_dir(), extra)
}

pub fn start_model(model: &str, dir: &Path, extra: &[&str]) -> Server {
    let mut args = vec!["--model".to_string(), model_arg(model, dir)];
    args.extend(extra.iter().map(|s| s.to_string()));
    start_args(&args, &[])
}

/// `embedkit serve --port 0 ARGS` with `env` set.
pub fn start_args(args: &[String], env: &[(&str, &str)]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_embedkit"))
        .arg("serve")
        .args(args)
        .args(["--port", "0"])
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let log = Arc::new(Mutex::new(Vec::new()));
    let port = loop {
        let Some(line) = lines.next() else {
            let _ = child.wait();
            panic!(
                "the server exited before listening:\n{}",
                log.lock().unwrap().join("\n")
            );
        };
        let line = line.unwrap();
        log.lock().unwrap().push(line.clone());
        if let Some(url) = line.strip_prefix("embedkit serving on http://") {
            break url.rsplit(':').next().unwrap().parse().unwrap();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    Server { child, port, log }
}

/// Splits a raw HTTP/1.1 answer into (status, headers lowercased, body).
pub fn split_response(raw: &[u8]) -> (u16, String, Vec<u8>) {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let headers = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let status = headers[9..12].parse().unwrap();
    (status, headers, raw[split + 4..].to_vec())
}

/// One HTTP/1.1 request with extra header lines (each ending in \r\n); returns
/// (status, headers lowercased, body).
pub fn request_with(
    port: u16,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Content-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (and close) before reading a refused body.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    split_response(&raw)
}

/// A JSON request.
pub fn request(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    request_with(
        port,
        method,
        path,
        "Content-Type: application/json\r\n",
        body,
    )
}

pub fn post(port: u16, path: &str, body: Value) -> (u16, Value) {
    let (status, _, body) = request(port, "POST", path, body.to_string().as_bytes());
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Little-endian f32 rows of `dim` from an oracle file in tests/expected.
pub fn oracle_rows(file: &str, dim: usize) -> Vec<Vec<f32>> {
    let bytes = std::fs::read(repo_root().join("tests/expected").join(file)).unwrap();
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect::<Vec<f32>>()
        .chunks(dim)
        .map(<[f32]>::to_vec)
        .collect()
}

/// The largest absolute difference of two equally shaped lists of vectors.
pub fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.len(), y.len(), "vector length");
    }
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The token ids of a `/tokenize` answer.
pub fn token_ids(tokenized: &Value) -> Vec<Vec<u64>> {
    tokenized
        .as_array()
        .unwrap()
        .iter()
        .map(|seq| {
            seq.as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_u64().unwrap())
                .collect()
        })
        .collect()
}

/// Sends a whole JSON request and hangs up without reading the answer.
pub fn send_and_hang_up(port: u16, path: &str, body: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
}

/// Waits for the server process to exit, at most `limit`.
pub fn wait_exit(server: &mut Server, limit: Duration, why: &str) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            return s;
        }
        assert!(started.elapsed() < limit, "{why}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// TEI's sparse answer `[{index, value}, ...]` as (indices, values).
pub fn tei_sparse(v: &Value) -> (Vec<u32>, Vec<f32>) {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["index"].as_u64().unwrap() as u32,
                p["value"].as_f64().unwrap() as f32,
            )
        })
        .unzip()
}
