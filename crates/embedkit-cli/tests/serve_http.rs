//! `embedkit serve` at the HTTP level, driven over raw sockets where a client library
//! would hide the point: hostile and slow clients, the queue and concurrency limits,
//! SIGTERM, a port that is taken, and the OpenAPI document.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::server::*;
use serde_json::{json, Value};

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
    // One worker: A in progress holds the compute, so B has to wait in the queue.
    let server = start(&[
        "--queue-size",
        "1",
        "--max-batch-texts",
        "256",
        "--max-wait-ms",
        "0",
        "--workers",
        "1",
    ]);
    let port = server.port;
    // A: taken by the inference worker (in progress, nothing queued).
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
fn the_openapi_document_lists_every_route() {
    let server = start(&[]);
    let (status, headers, body) = request(server.port, "GET", "/openapi.json", b"");
    assert_eq!(status, 200);
    assert!(headers.contains("application/json"));
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (path, method) in [
        ("/v1/embeddings", "post"),
        ("/v1/models", "get"),
        ("/embed", "post"),
        ("/embed_sparse", "post"),
        ("/embed_late", "post"),
        ("/embed_all", "post"),
        ("/similarity", "post"),
        ("/decode", "post"),
        ("/v1/rerank", "post"),
        ("/rerank", "post"),
        ("/tokenize", "post"),
        ("/health", "get"),
        ("/info", "get"),
        ("/metrics", "get"),
    ] {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not documented");
        if method == "post" {
            let schema = &op["requestBody"]["content"]["application/json"]["schema"]["$ref"];
            let name = schema.as_str().unwrap().rsplit('/').next().unwrap();
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{name} is not in the components"
            );
        }
    }
    let embed = &doc["components"]["schemas"]["OpenAiEmbeddingRequest"];
    assert!(embed["required"]
        .as_array()
        .unwrap()
        .contains(&json!("input")));
}
