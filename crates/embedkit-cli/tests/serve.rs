//! `embedkit serve` run as a user would, on 127.0.0.1 with the real all-MiniLM-L6-v2 fp32
//! model, exercised with real HTTP requests: every route, bad requests, limits, a client
//! that disconnects mid-request, a slow client, backpressure, graceful shutdown, and the
//! official `openai` Python client.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::repo_root;
use common::server::*;

use serde_json::{json, Value};

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
        json!({"input": texts, "model": MINILM}),
    );
    assert_eq!(status, 200, "{v}");
    let got: Vec<Vec<f32>> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| serde_json::from_value(d["embedding"].clone()).unwrap())
        .collect();
    assert!(max_diff(&got, &want) <= 1e-5);
    assert_eq!(v["model"], MINILM);
    // A model that is not served is named as such, in OpenAI's shape.
    let (status, e) = post(port, "/v1/embeddings", json!({"input": "a", "model": "m"}));
    assert_eq!(status, 404, "{e}");
    assert_eq!(e["error"]["type"], "model_not_found");
    // The models served, in OpenAI's shape.
    let (status, _, body) = request(port, "GET", "/v1/models", b"");
    assert_eq!(status, 200);
    let list: Value = serde_json::from_slice(&body).unwrap();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [MINILM, "Qdrant/bm25", "Xenova/ms-marco-MiniLM-L-6-v2"]
    );
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"][0]["object"], "model");
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
    let ids = token_ids(&toks);
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
    check(
        "/embed",
        br#"{"inputs": 5}"#,
        422,
        "`inputs`: invalid type: integer",
    );
    check(
        "/embed",
        br#"{"inputs": ["a", null]}"#,
        422,
        "`inputs[1]`: invalid type: null, expected a string",
    );
    check("/embed", br#"{}"#, 422, "missing field `inputs`");
    check(
        "/embed",
        br#"{"inputs": "a", "normalize": "yes"}"#,
        422,
        "`normalize`",
    );
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
        "no model served offers pair_scores for /rerank",
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
            b"POST /embed HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"inputs\": [\"hel",
        )
        .unwrap();
    }
    // Sends a whole request, hangs up before the answer.
    for _ in 0..5 {
        let body = json!({"inputs": vec!["some text to embed"; 64]}).to_string();
        send_and_hang_up(port, "/embed", &body);
    }
    // A slow client: the body trickles in past the request timeout.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"POST /embed HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
          Content-Length: 40\r\nConnection: close\r\n\r\n{\"inp",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let _ = s.write_all(b"uts\": ");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    // A 408 with a JSON body, logged and counted.
    let (status, _, body) = split_response(&raw);
    assert_eq!(status, 408, "{}", String::from_utf8_lossy(&raw));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error_type"], "timeout", "{v}");
    assert!(server.metric("embedkit_requests_total{route=\"/embed\",status=\"408\"}") >= 1.0);
    wait_until("the 408 is logged", Duration::from_secs(10), || {
        server.log_text().contains("status=408")
    });
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
        .write_all(b"POST /embed HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    assert!(closed_within(&mut loris, 10) < Duration::from_secs(5));
    // A keep-alive connection left idle after its answer.
    let mut idle = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let body = br#"{"inputs": "hello"}"#;
    let head = format!(
        "POST /embed HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    idle.write_all(head.as_bytes()).unwrap();
    idle.write_all(body).unwrap();
    assert!(closed_within(&mut idle, 10) < Duration::from_secs(5));
    // The server still answers.
    let (status, _) = post(server.port, "/embed", json!({"inputs": "fine"}));
    assert_eq!(status, 200);
}

/// A request that keeps the inference thread busy for a while: 256 long texts, sent on
/// its own thread; joined for its answer.
fn busy_request(port: u16) -> std::thread::JoinHandle<(u16, String, Vec<u8>)> {
    let text = "a longer document that takes a moment to embed on this CPU ".repeat(8);
    let body = json!({"inputs": vec![text; 256]}).to_string();
    std::thread::spawn(move || request(port, "POST", "/embed", body.as_bytes()))
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let server = start(&[
        "--queue-size",
        "1",
        "--max-batch-texts",
        "256",
        "--max-wait-ms",
        "0",
    ]);
    let port = server.port;
    // A: taken by the inference thread (in progress, nothing queued).
    let a = busy_request(port);
    wait_until("A is being computed", Duration::from_secs(60), || {
        server.metric("embedkit_batch_size_count") >= 1.0
    });
    // B: waits in the queue, which is then full.
    let b = busy_request(port);
    wait_until("B is queued", Duration::from_secs(60), || {
        server.metric("embedkit_queue_depth") >= 1.0
    });
    // C: refused at once.
    let (status, headers, body) = request(port, "POST", "/embed", br#"{"inputs": "c"}"#);
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(headers.contains("retry-after: 1"), "{headers}");
    assert!(String::from_utf8_lossy(&body).contains("overloaded"));
    assert_eq!(a.join().unwrap().0, 200);
    assert_eq!(b.join().unwrap().0, 200);
    let (_, _, metrics) = request(port, "GET", "/metrics", b"");
    assert!(String::from_utf8_lossy(&metrics).contains("status=\"503\""));
}

#[test]
fn the_concurrency_limit_refuses_before_reading_a_body() {
    let server = start(&["--max-concurrent-requests", "2"]);
    let port = server.port;
    // Two uploads that announce 1.5 MB and send a little: each holds a permit.
    let mut uploads: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(
                b"POST /embed HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                  Content-Length: 1500000\r\n\r\n{\"inputs\": [\"",
            )
            .unwrap();
            s
        })
        .collect();
    wait_until(
        "both uploads hold a permit",
        Duration::from_secs(30),
        || server.metric("embedkit_requests_in_progress") >= 2.0,
    );
    // A third request is refused without its body being read; so is /tokenize.
    let (status, headers, body) = request(port, "POST", "/embed", br#"{"inputs": "c"}"#);
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(headers.contains("retry-after"), "{headers}");
    assert!(String::from_utf8_lossy(&body).contains("max_concurrent_requests"));
    let (status, _, _) = request(port, "POST", "/tokenize", br#"{"inputs": "c"}"#);
    assert_eq!(status, 503);
    // Reads are not limited.
    assert_eq!(request(port, "GET", "/health", b"").0, 200);
    uploads.clear();
    wait_until(
        "the uploads' permits are back",
        Duration::from_secs(30),
        || server.metric("embedkit_requests_in_progress") == 0.0,
    );
    let (status, _) = post(port, "/embed", json!({"inputs": "fine"}));
    assert_eq!(status, 200);
}

#[test]
fn sigterm_finishes_requests_in_flight() {
    let mut server = start(&[]);
    let port = server.port;
    let in_flight = busy_request(port);
    wait_until("the request is in flight", Duration::from_secs(60), || {
        server.metric("embedkit_requests_in_progress") >= 1.0
    });
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

/// Token-vector matrices from a late-interaction oracle file: `rows[i]` vectors of `dim`
/// for input i.
fn oracle_matrices(file: &str, dim: usize, rows: &[usize]) -> Vec<Vec<Vec<f32>>> {
    let mut flat = oracle_rows(file, dim).into_iter();
    rows.iter()
        .map(|&n| flat.by_ref().take(n).collect())
        .collect()
}

fn oracle_case(file: &str, name: &str) -> Value {
    let cases: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/expected").join(file)).unwrap(),
    )
    .unwrap();
    let list = cases.get("cases").cloned().unwrap_or(cases);
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no oracle case {name} in {file}"))
        .clone()
}

fn rows_of(case: &Value) -> Vec<usize> {
    case["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_u64().unwrap() as usize)
        .collect()
}

fn data_uri(image: &str) -> String {
    use base64::Engine;
    let bytes = std::fs::read(repo_root().join("tests/data/images").join(image)).unwrap();
    let mime = match image.rsplit('.').next().unwrap() {
        "jpg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        _ => "image/png",
    };
    format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

fn matrices_diff(got: &Value, want: &[Vec<Vec<f32>>]) -> f32 {
    let got: Vec<Vec<Vec<f32>>> = serde_json::from_value(got.clone()).unwrap();
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(g, w)| {
            assert_eq!(g.len(), w.len(), "token rows");
            max_diff(g, w)
        })
        .fold(0.0, f32::max)
}

// One server, one model of every family, each answering with fastembed's outputs
// (tests/expected); a request's `model` picks among them.
#[test]
fn one_server_serves_every_family_with_fastembeds_outputs() {
    let args: Vec<String> = [
        (MINILM, minilm_dir()),
        ("Qdrant/bm25", tiny("bm25")),
        ("Xenova/ms-marco-MiniLM-L-6-v2", tiny("rerank-bert")),
        ("colbert-ir/colbertv2.0", tiny("colbert-128")),
        ("Qdrant/clip-ViT-B-32-vision", tiny("vision-clip-512")),
        ("Qdrant/colpali-v1.3-fp16", tiny("colpali")),
    ]
    .iter()
    .flat_map(|(name, dir)| ["--model".to_string(), model_arg(name, dir)])
    .collect();
    let server = start_args(&args, &[]);
    let port = server.port;
    let (texts, _) = oracle_edge();

    // Late interaction: documents and queries.
    for (case, is_query) in [("colbert-docs", false), ("colbert-queries", true)] {
        let c = oracle_case("late_cases.json", case);
        let want = oracle_matrices(c["data_file"].as_str().unwrap(), 128, &rows_of(&c));
        let (status, got) = post(
            port,
            "/embed_late",
            json!({"inputs": texts, "is_query": is_query}),
        );
        assert_eq!(status, 200, "{got}");
        let d = matrices_diff(&got, &want);
        assert!(d <= 1e-4, "{case}: max difference {d}");
    }

    // Images by data URI: the image model answers /embed (raw, as fastembed) and
    // /v1/embeddings when named.
    let c = oracle_case("image_cases.json", "image-clip");
    let images: Vec<String> = c["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| data_uri(i.as_str().unwrap()))
        .collect();
    let want = oracle_rows("image-clip.f32", 512);
    let (status, got) = post(
        port,
        "/embed",
        json!({"inputs": images, "normalize": false}),
    );
    assert_eq!(status, 200, "{got}");
    let got: Vec<Vec<f32>> = serde_json::from_value(got).unwrap();
    assert!(max_diff(&got, &want) <= 1e-4);
    let (status, v) = post(
        port,
        "/v1/embeddings",
        json!({"input": images[..2], "model": "Qdrant/clip-ViT-B-32-vision"}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["model"], "Qdrant/clip-ViT-B-32-vision");
    let first: Vec<f32> = serde_json::from_value(v["data"][0]["embedding"].clone()).unwrap();
    assert!(max_diff(&[first], &want[..1]) <= 1e-4);

    // Multimodal: images and texts of the ColPali-architecture model.
    let c = oracle_case("multimodal_cases.json", "colpali-image");
    let want = oracle_matrices("colpali-image.f32", 128, &rows_of(&c));
    let imgs: Vec<String> = ["gray16.png", "photo.jpg"]
        .iter()
        .map(|i| data_uri(i))
        .collect();
    let (status, got) = post(port, "/embed_late", json!({"images": imgs}));
    assert_eq!(status, 200, "{got}");
    assert!(matrices_diff(&got, &want) <= 1e-4);
    let c = oracle_case("multimodal_cases.json", "colpali-text-b256");
    let want = oracle_matrices("colpali-text-b256.f32", 128, &rows_of(&c));
    let short: Vec<&String> = texts
        .iter()
        .filter(|t| t.split_whitespace().count() < 100)
        .collect();
    let (status, got) = post(
        port,
        "/embed_late",
        json!({"inputs": short, "model": "Qdrant/colpali-v1.3-fp16"}),
    );
    assert_eq!(status, 200, "{got}");
    assert!(matrices_diff(&got, &want) <= 1e-4);

    // Dense text still goes to the first dense model; a family's route refuses another
    // family's model by name.
    let (status, v) = post(port, "/embed", json!({"inputs": "hello world"}));
    assert_eq!(status, 200);
    assert_eq!(v[0].as_array().unwrap().len(), 384);
    let (status, e) = post(
        port,
        "/embed_sparse",
        json!({"inputs": "a", "model": "colbert-ir/colbertv2.0"}),
    );
    assert_eq!(status, 422);
    assert!(e["error"].as_str().unwrap().contains("/embed_late"), "{e}");
    let (status, e) = post(
        port,
        "/embed_late",
        json!({"images": ["not base64!"], "model": "Qdrant/colpali-v1.3-fp16"}),
    );
    assert_eq!(status, 422, "{e}");
    assert!(e["error"].as_str().unwrap().contains("images[0]"), "{e}");
    // Each model listed once, with its family and what it can do.
    let (_, _, body) = request(port, "GET", "/v1/models", b"");
    let list: Value = serde_json::from_slice(&body).unwrap();
    let caps: Vec<Value> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["capabilities"].clone())
        .collect();
    assert_eq!(
        caps,
        [
            json!(["dense_text", "dense_token_ids", "token_vectors", "tokens"]),
            json!(["sparse_text", "tokens"]),
            json!(["pair_scores"]),
            json!(["multi_vector_text", "tokens"]),
            json!(["dense_image"]),
            json!(["multi_vector_text", "multi_vector_image"]),
        ]
    );
    let kinds: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "dense",
            "sparse",
            "rerank",
            "late_interaction",
            "image",
            "multimodal"
        ]
    );
}

// A static model's /tokenize gives the ids it embeds: the ids embed as the text does.
#[test]
fn tokenize_is_the_served_models_own_tokenizer() {
    let server = start_model("minishlab/potion-base-8M", &tiny("static-256"), &[]);
    let port = server.port;
    let texts = [
        "hello world",
        "Qdrant is a vector database",
        "ünïcödé and emoji 🚀",
    ];
    let (status, toks) = post(port, "/tokenize", json!({"inputs": texts}));
    assert_eq!(status, 200, "{toks}");
    let ids = token_ids(&toks);
    let (_, by_text) = post(port, "/v1/embeddings", json!({"input": texts}));
    let (status, by_ids) = post(port, "/v1/embeddings", json!({"input": ids}));
    assert_eq!(status, 200, "{by_ids}");
    assert_eq!(by_ids["data"], by_text["data"]);
    let counted: usize = ids.iter().map(Vec::len).sum();
    assert_eq!(by_text["usage"]["prompt_tokens"], counted);
}
