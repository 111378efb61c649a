//! `embedkit serve` run as a user would, on 127.0.0.1 with the real all-MiniLM-L6-v2 fp32
//! model, exercised with real HTTP requests: every route, bad requests, limits, a client
//! that disconnects mid-request, a slow client, backpressure, graceful shutdown, and the
//! official `openai` Python client.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;

use common::repo_root;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

fn minilm_dir() -> PathBuf {
    let dir = repo_root().join("../shared/models/all-MiniLM-L6-v2-fp32");
    assert!(
        dir.join("model.onnx").is_file(),
        "the real model folder {} is missing; these tests need ../shared/models",
        dir.display()
    );
    dir
}

fn tiny(name: &str) -> PathBuf {
    let dir = repo_root().join("target/test-models").join(name);
    assert!(
        dir.is_dir(),
        "{} is missing: run `make test-models`",
        dir.display()
    );
    dir
}

/// A running server; killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str]) -> Server {
    start_model(
        "sentence-transformers/all-MiniLM-L6-v2",
        &minilm_dir(),
        extra,
    )
}

fn start_model(model: &str, dir: &std::path::Path, extra: &[&str]) -> Server {
    let mut args = vec![
        "serve".to_string(),
        "--model".into(),
        model.into(),
        "--model-path".into(),
        dir.to_string_lossy().into_owned(),
        "--port".into(),
        "0".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_embedkit"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let port = loop {
        let line = lines
            .next()
            .expect("the server exited before listening")
            .unwrap();
        if let Some(url) = line.strip_prefix("embedkit serving on http://") {
            break url.rsplit(':').next().unwrap().parse().unwrap();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, port }
}

/// One HTTP/1.1 request; returns (status, headers lowercased, body).
fn request(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no header end");
    let headers = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let status = headers[9..12].parse().unwrap();
    (status, headers, raw[split + 4..].to_vec())
}

fn post(port: u16, path: &str, body: Value) -> (u16, Value) {
    let (status, _, body) = request(port, "POST", path, body.to_string().as_bytes());
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// fastembed's vectors for the edge inputs (tests/expected).
fn oracle_edge() -> (Vec<String>, Vec<Vec<f32>>) {
    let root = repo_root();
    let texts: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(root.join("tests/data/edge_inputs.json")).unwrap(),
    )
    .unwrap();
    let bytes = std::fs::read(root.join("tests/expected/minilm-fp32-edge.f32")).unwrap();
    let floats: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (texts, floats.chunks(384).map(<[f32]>::to_vec).collect())
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
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

#[test]
fn every_route_answers_correctly() {
    let server = start(&[
        "--rerank-model",
        "Xenova/ms-marco-MiniLM-L-6-v2",
        "--rerank-model-path",
        tiny("rerank-bert").to_str().unwrap(),
        "--sparse-model",
        "Qdrant/bm25",
        "--sparse-model-path",
        tiny("bm25").to_str().unwrap(),
    ]);
    let port = server.port;
    let (texts, want) = oracle_edge();

    let (status, _, body) = request(port, "GET", "/health", b"");
    assert_eq!(
        (status, body.as_slice()),
        (200, br#"{"status":"ok"}"#.as_slice())
    );

    // OpenAI: floats and base64 give fastembed's vectors; usage counts tokens.
    let (status, v) = post(
        port,
        "/v1/embeddings",
        json!({"input": texts, "model": "m"}),
    );
    assert_eq!(status, 200, "{v}");
    let got: Vec<Vec<f32>> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| serde_json::from_value(d["embedding"].clone()).unwrap())
        .collect();
    assert!(max_diff(&got, &want) <= 1e-5);
    assert_eq!(v["model"], "m");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > texts.len() as u64);
    let (_, b) = post(
        port,
        "/v1/embeddings",
        json!({"input": texts, "encoding_format": "base64"}),
    );
    use base64::Engine;
    let decoded: Vec<Vec<f32>> = b["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(d["embedding"].as_str().unwrap())
                .unwrap();
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        })
        .collect();
    assert_eq!(decoded, got);
    // `dimensions`: MiniLM is no Matryoshka model, so only its own size is taken.
    let (status, d) = post(
        port,
        "/v1/embeddings",
        json!({"input": "hello world", "dimensions": 64}),
    );
    assert_eq!(status, 422);
    assert!(d["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Matryoshka"));
    let (status, d) = post(
        port,
        "/v1/embeddings",
        json!({"input": "hello world", "dimensions": 384}),
    );
    assert_eq!(status, 200);
    assert_eq!(d["data"][0]["embedding"].as_array().unwrap().len(), 384);

    // Token arrays: the ids /tokenize gives embed as the text does, one array or several.
    let (_, toks) = post(port, "/tokenize", json!({"inputs": ["hello world", "a b"]}));
    let ids: Vec<Vec<u64>> = toks
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
        .collect();
    let (_, by_text) = post(
        port,
        "/v1/embeddings",
        json!({"input": ["hello world", "a b"]}),
    );
    let (status, by_ids) = post(port, "/v1/embeddings", json!({"input": ids}));
    assert_eq!(status, 200, "{by_ids}");
    assert_eq!(by_ids["data"], by_text["data"]);
    assert_eq!(
        by_ids["usage"]["prompt_tokens"],
        by_text["usage"]["prompt_tokens"]
    );
    let (status, one) = post(port, "/v1/embeddings", json!({"input": ids[0]}));
    assert_eq!(status, 200);
    assert_eq!(one["data"][0], by_text["data"][0]);

    // TEI routes.
    let (status, v) = post(port, "/embed", json!({"inputs": texts}));
    assert_eq!(status, 200);
    let got: Vec<Vec<f32>> = serde_json::from_value(v).unwrap();
    assert!(max_diff(&got, &want) <= 1e-5);
    let (status, v) = post(port, "/embed", json!({"inputs": "hello world"}));
    assert_eq!(status, 200);
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (status, v) = post(port, "/tokenize", json!({"inputs": "hello world"}));
    assert_eq!(status, 200);
    assert_eq!(v[0][0]["text"], "[CLS]");
    assert_eq!(v[0][0]["special"], true);
    let (status, v) = post(
        port,
        "/rerank",
        json!({"query": "vector database", "texts": ["a", "b", "c"], "return_text": true}),
    );
    assert_eq!(status, 200);
    let scores: Vec<f64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "best first: {v}");
    assert!(v[0]["text"].is_string());
    let (status, v) = post(
        port,
        "/embed_sparse",
        json!({"inputs": ["the cats sat", "dogs"]}),
    );
    assert_eq!(status, 200, "{v}");
    assert!(v[0]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["index"].is_u64() && e["value"].is_f64()));

    let (status, _, body) = request(port, "GET", "/info", b"");
    assert_eq!(status, 200);
    let info: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(info["model_dim"], 384);
    let (status, headers, body) = request(port, "GET", "/metrics", b"");
    assert_eq!(status, 200);
    assert!(headers.contains("text/plain"));
    let text = String::from_utf8(body).unwrap();
    for metric in [
        "embedkit_requests_total",
        "embedkit_request_duration_seconds_bucket",
        "embedkit_batch_size_bucket",
        "embedkit_queue_depth",
        "embedkit_tokens_total",
    ] {
        assert!(text.contains(metric), "{metric} missing from /metrics");
    }
    // Request ids come back.
    let (_, headers, _) = request(port, "GET", "/health", b"");
    assert!(headers.contains("x-request-id: req-"), "{headers}");
}

#[test]
fn dimensions_shorten_the_vectors_of_matryoshka_models() {
    // A seeded model of nomic-embed-text-v1.5's architecture; the registry marks it Matryoshka.
    let server = start_model("nomic-ai/nomic-embed-text-v1.5", &tiny("mean-768"), &[]);
    let (status, full) = post(
        server.port,
        "/v1/embeddings",
        json!({"input": "hello world"}),
    );
    assert_eq!(status, 200);
    let full: Vec<f32> = serde_json::from_value(full["data"][0]["embedding"].clone()).unwrap();
    let (status, d) = post(
        server.port,
        "/v1/embeddings",
        json!({"input": "hello world", "dimensions": 64}),
    );
    assert_eq!(status, 200);
    let short: Vec<f32> = serde_json::from_value(d["data"][0]["embedding"].clone()).unwrap();
    let norm = full[..64].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert_eq!(short.len(), 64);
    for (a, b) in short.iter().zip(&full[..64]) {
        assert!((a - b / norm).abs() < 1e-6);
    }
    let (status, _) = post(
        server.port,
        "/v1/embeddings",
        json!({"input": "hello world", "dimensions": 0}),
    );
    assert_eq!(status, 422);
}

#[test]
fn bad_requests_get_json_errors_that_name_the_problem() {
    let server = start(&[
        "--max-inputs",
        "4",
        "--max-input-chars",
        "50",
        "--max-body-bytes",
        "4096",
    ]);
    let port = server.port;
    let check = |path: &str, body: &[u8], status: u16, needle: &str| {
        let (s, _, b) = request(port, "POST", path, body);
        let text = String::from_utf8_lossy(&b).to_string();
        assert_eq!(
            s,
            status,
            "{path} {}: {text}",
            String::from_utf8_lossy(body)
        );
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        assert!(v.to_string().contains(needle), "{text}");
    };
    check("/embed", b"{\"inputs\": ", 400, "malformed JSON");
    check("/embed", b"[1, 2]", 422, "JSON object");
    check("/embed", br#"{"inputs": 5}"#, 422, "got a number");
    check(
        "/embed",
        br#"{"inputs": ["a", null]}"#,
        422,
        "inputs[1] must be a string",
    );
    check("/embed", br#"{}"#, 422, "`inputs` is missing");
    check("/embed", br#"{"inputs": []}"#, 422, "`inputs` is empty");
    check(
        "/embed",
        br#"{"inputs": ["a","b","c","d","e"]}"#,
        422,
        "max_inputs",
    );
    let long = format!(r#"{{"inputs": ["{}"]}}"#, "x".repeat(60));
    check("/embed", long.as_bytes(), 422, "max_input_chars");
    let huge = format!(r#"{{"inputs": ["{}"]}}"#, "x".repeat(10_000));
    check("/embed", huge.as_bytes(), 413, "limit of 4096 bytes");
    check(
        "/v1/embeddings",
        br#"{"input": ["a", [1, 2]]}"#,
        422,
        "token arrays",
    );
    check(
        "/v1/embeddings",
        br#"{"input": [[101, 99999999, 102]]}"#,
        422,
        "outside the vocabulary",
    );
    check(
        "/v1/embeddings",
        br#"{"input": [[101, -1]]}"#,
        422,
        "non-negative integers",
    );
    check(
        "/v1/embeddings",
        br#"{"input": [[101], []]}"#,
        422,
        "empty token array",
    );
    check(
        "/v1/embeddings",
        br#"{"input": "a", "encoding_format": "hex"}"#,
        422,
        "encoding_format",
    );
    check(
        "/v1/embeddings",
        br#"{"input": "a", "dimensions": 1000}"#,
        422,
        "dimensions",
    );
    check(
        "/rerank",
        br#"{"query": "q", "texts": ["a"]}"#,
        424,
        "--rerank-model",
    );
    // OpenAI errors in OpenAI's shape.
    let (_, _, b) = request(port, "POST", "/v1/embeddings", br#"{"input": 3}"#);
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert!(v["error"]["message"].is_string(), "{v}");
    // Still serving.
    let (status, _) = post(port, "/embed", json!({"inputs": "fine"}));
    assert_eq!(status, 200);
}

/// A request whose body the server may refuse before reading it all: a failed write is
/// not the test's failure, the answer is.
fn request_lenient(port: u16, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no header end");
    let status = String::from_utf8_lossy(&raw[9..12]).parse().unwrap();
    (status, raw[split + 4..].to_vec())
}

// Issue 8's resource bounds, over HTTP: each is answered at once with an error that
// names the problem, and the server goes on serving.
#[test]
fn hostile_bodies_get_bounded_clear_errors() {
    let server = start(&["--max-body-bytes", "8000000"]);
    let port = server.port;
    let check = |body: &[u8], status: u16, needle: &str| {
        let started = std::time::Instant::now();
        let (s, b) = request_lenient(port, "/embed", body);
        let text = String::from_utf8_lossy(&b).to_string();
        assert_eq!(
            s,
            status,
            "{}: {text}",
            String::from_utf8_lossy(&body[..body.len().min(80)])
        );
        assert!(text.contains(needle), "{text} does not say {needle:?}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "took {:?}",
            started.elapsed()
        );
    };
    // A 10 MB text: over the body limit.
    let huge = format!(r#"{{"inputs": "{}"}}"#, "word ".repeat(2 << 20));
    check(huge.as_bytes(), 413, "limit of 8000000 bytes");
    // A million empty texts: over the input count limit.
    let many = format!(r#"{{"inputs": [{}""]}}"#, "\"\",".repeat(999_999));
    check(many.as_bytes(), 422, "max_inputs");
    // Lone surrogates cannot become text.
    check(br#"{"inputs": "a\ud800b"}"#, 400, "surrogate");
    check(br#"{"inputs": ["\udc00"]}"#, 400, "malformed JSON");
    // Bytes that are not UTF-8.
    check(b"{\"inputs\": \"\xff\xfe\"}", 400, "malformed JSON");
    // Nesting deep enough to overflow a recursive parser's stack.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    check(deep.as_bytes(), 400, "recursion limit");
    // NUL is a character like any other.
    let (status, v) = post(port, "/embed", json!({"inputs": ["a\u{0}b", "\u{0}"]}));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 2);
    let (status, _) = post(port, "/embed", json!({"inputs": "fine"}));
    assert_eq!(status, 200);
}

#[test]
fn disconnecting_and_slow_clients_do_not_hurt_the_server() {
    let server = start(&["--request-timeout-secs", "1"]);
    let port = server.port;
    // Announces a body, sends half, hangs up.
    {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(
            b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"inputs\": [\"hel",
        )
        .unwrap();
    }
    // Sends a whole request, hangs up before the answer.
    for _ in 0..5 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let body = json!({"inputs": vec!["some text to embed"; 64]}).to_string();
        let head = format!(
            "POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body.as_bytes()).unwrap();
    }
    // A slow client: the body trickles in past the request timeout.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nConnection: close\r\n\r\n{\"inp",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let _ = s.write_all(b"uts\": ");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let reply = String::from_utf8_lossy(&raw);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    // The server is healthy and answers correctly.
    let (status, v) = post(port, "/embed", json!({"inputs": "hello world"}));
    assert_eq!(status, 200);
    assert_eq!(v[0].as_array().unwrap().len(), 384);
}

#[test]
fn idle_connections_and_slow_headers_are_closed() {
    let server = start(&["--idle-timeout-secs", "1"]);
    let closed_within = |s: &mut TcpStream, secs: u64| {
        s.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
        let started = std::time::Instant::now();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return started.elapsed(),
                Ok(_) => continue, // a 408 or the end of a previous answer
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return started.elapsed()
                }
                Err(e) => panic!("the connection stayed open: {e}"),
            }
        }
    };
    // Headers sent one piece and never finished (slow loris).
    let mut loris = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    loris
        .write_all(b"POST /embed HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    assert!(closed_within(&mut loris, 10) < Duration::from_secs(5));
    // A keep-alive connection left idle after its answer.
    let mut idle = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let body = br#"{"inputs": "hello"}"#;
    let head = format!(
        "POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    idle.write_all(head.as_bytes()).unwrap();
    idle.write_all(body).unwrap();
    assert!(closed_within(&mut idle, 10) < Duration::from_secs(5));
    // The server still answers.
    let (status, _) = post(server.port, "/embed", json!({"inputs": "fine"}));
    assert_eq!(status, 200);
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let server = start(&[
        "--queue-size",
        "1",
        "--max-batch-texts",
        "64",
        "--max-wait-ms",
        "0",
    ]);
    let port = server.port;
    let body = json!({"inputs": vec!["a sentence of moderate length for the model to embed"; 64]});
    let handles: Vec<_> = (0..24)
        .map(|_| {
            let body = body.to_string();
            std::thread::spawn(move || request(port, "POST", "/embed", body.as_bytes()))
        })
        .collect();
    let results: Vec<(u16, String, Vec<u8>)> =
        handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = results.iter().filter(|r| r.0 == 200).count();
    let busy: Vec<_> = results.iter().filter(|r| r.0 == 503).collect();
    assert_eq!(
        ok + busy.len(),
        results.len(),
        "only 200 and 503 are expected"
    );
    assert!(ok >= 1, "some requests must get through");
    assert!(
        !busy.is_empty(),
        "24 concurrent requests against a queue of 1 must overflow"
    );
    for (_, headers, body) in busy {
        assert!(headers.contains("retry-after: 1"), "{headers}");
        assert!(String::from_utf8_lossy(body).contains("overloaded"));
    }
    let (_, _, metrics) = request(port, "GET", "/metrics", b"");
    assert!(String::from_utf8_lossy(&metrics).contains("status=\"503\""));
}

#[test]
fn sigterm_finishes_requests_in_flight() {
    let mut server = start(&[]);
    let port = server.port;
    let body =
        json!({"inputs": vec!["a longer document that takes a moment to embed on this CPU"; 256]});
    let in_flight =
        std::thread::spawn(move || request(port, "POST", "/embed", body.to_string().as_bytes()));
    std::thread::sleep(Duration::from_millis(100));
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let (status, _, body) = in_flight.join().unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let vectors: Vec<Vec<f32>> = serde_json::from_slice(&body).unwrap();
    assert_eq!(vectors.len(), 256);
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "exit status {exit}");
    // New connections are refused once it has stopped.
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn the_openai_python_client_gets_embedkits_vectors() {
    let python = repo_root().join(".venv-oracle/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: `make test` creates the oracle venv (with the openai package)",
        python.display()
    );
    let server = start(&[]);
    let script = r#"
import json, sys
from openai import OpenAI
client = OpenAI(base_url=f"http://127.0.0.1:{sys.argv[1]}/v1", api_key="unused")
texts = json.load(open(sys.argv[2]))
out = client.embeddings.create(model="sentence-transformers/all-MiniLM-L6-v2", input=texts)
print(json.dumps([d.embedding for d in out.data]))
"#;
    let out = Command::new(python)
        .args([
            "-c",
            script,
            &server.port.to_string(),
            repo_root()
                .join("tests/data/edge_inputs.json")
                .to_str()
                .unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<Vec<f32>> = serde_json::from_slice(&out.stdout).unwrap();
    let (_, want) = oracle_edge();
    assert!(max_diff(&got, &want) <= 1e-5);

    // The same vectors as `embedkit embed`.
    let texts: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/data/edge_inputs.json")).unwrap(),
    )
    .unwrap();
    // (Arguments cannot carry NUL bytes: those inputs are compared with the oracle only.)
    let keep: Vec<usize> = (0..texts.len())
        .filter(|&i| !texts[i].contains('\0'))
        .collect();
    let mut args = vec![
        "embed".to_string(),
        "--model".into(),
        "sentence-transformers/all-MiniLM-L6-v2".into(),
        "--model-path".into(),
        minilm_dir().to_string_lossy().into_owned(),
    ];
    args.extend(keep.iter().map(|&i| texts[i].clone()));
    let cli = Command::new(env!("CARGO_BIN_EXE_embedkit"))
        .args(&args)
        .output()
        .unwrap();
    assert!(cli.status.success());
    let cli_vectors: Vec<Vec<f32>> = std::str::from_utf8(&cli.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            serde_json::from_value(v["embedding"].clone()).unwrap()
        })
        .collect();
    let served: Vec<Vec<f32>> = keep.iter().map(|&i| got[i].clone()).collect();
    assert_eq!(served, cli_vectors);
}
