//! `embedkit serve` put where others can reach it: API keys, JSON-only bodies, the Host
//! check, silent, trickling and HTTP/2 connections, the connection cap, the shutdown
//! deadline, request ids, clients
//! that leave, one bad input among good ones, and a panic in inference. Each test is a
//! probe the first server failed.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::repo_root;
use common::server::*;
use serde_json::{json, Value};

/// Reads until the peer closes; how long that took, or `None` if it stayed open.
fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    s.set_read_timeout(Some(limit)).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(started.elapsed())
            }
            Err(_) => return None,
        }
    }
}

#[test]
fn an_api_key_guards_every_route_but_health() {
    let server = start_args(
        &["--model".into(), model_arg(MINILM, &minilm_dir())],
        &[("EMBEDKIT_API_KEY", "s3cret-key")],
    );
    let port = server.port;
    let body = br#"{"inputs": "hello"}"#;
    let json = "Content-Type: application/json\r\n";
    // No key, a wrong key, a key of another length, another scheme: 401 in JSON.
    for auth in [
        "",
        "Authorization: Bearer s3cret-kez\r\n",
        "Authorization: Bearer s3cret\r\n",
        "Authorization: Basic s3cret-key\r\n",
    ] {
        let (status, headers, b) =
            request_with(port, "POST", "/embed", &format!("{json}{auth}"), body);
        assert_eq!(status, 401, "{auth}");
        assert!(headers.contains("www-authenticate: bearer"), "{headers}");
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["error_type"], "unauthorized");
    }
    for path in ["/metrics", "/info", "/v1/models", "/openapi.json"] {
        assert_eq!(request_with(port, "GET", path, "", b"").0, 401, "{path}");
    }
    // OpenAI's route answers in OpenAI's shape.
    let (status, _, b) = request(port, "POST", "/v1/embeddings", br#"{"input": "a"}"#);
    assert_eq!(status, 401);
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert!(v["error"]["message"].is_string(), "{v}");
    // /health needs no key (for probes).
    assert_eq!(request_with(port, "GET", "/health", "", b"").0, 200);
    // The key opens every route.
    let auth = format!("{json}Authorization: Bearer s3cret-key\r\n");
    assert_eq!(request_with(port, "POST", "/embed", &auth, body).0, 200);
    assert_eq!(request_with(port, "GET", "/metrics", &auth, b"").0, 200);

    // The official OpenAI client and huggingface_hub's InferenceClient with the key get
    // the vectors; with a wrong one, an authentication error.
    let python = repo_root().join(".venv-oracle/bin/python");
    assert!(python.is_file(), "{} is missing", python.display());
    let script = r#"
import sys, openai
from openai import OpenAI
url = f"http://127.0.0.1:{sys.argv[1]}/v1"
out = OpenAI(base_url=url, api_key="s3cret-key").embeddings.create(
    model="sentence-transformers/all-MiniLM-L6-v2", input=["hello"])
assert len(out.data[0].embedding) == 384
try:
    OpenAI(base_url=url, api_key="wrong").embeddings.create(
        model="sentence-transformers/all-MiniLM-L6-v2", input=["hello"])
    raise SystemExit("a wrong key was accepted")
except openai.AuthenticationError:
    pass
# huggingface_hub's TEI client (feature extraction posts to the root) with the key.
import numpy as np
from huggingface_hub import InferenceClient
hf = InferenceClient(model=f"http://127.0.0.1:{sys.argv[1]}", token="s3cret-key")
v = np.asarray(hf.feature_extraction("hello"))
assert v.shape == (1, 384), v.shape
assert np.allclose(v[0], out.data[0].embedding, atol=1e-5)
try:
    InferenceClient(model=f"http://127.0.0.1:{sys.argv[1]}", token="wrong").feature_extraction("hello")
    raise SystemExit("huggingface_hub: a wrong key was accepted")
except Exception as e:
    assert "401" in str(e), e
print("ok")
"#;
    let out = Command::new(python)
        .args(["-c", script, &port.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn only_json_bodies_are_taken_and_only_for_this_host() {
    let server = start(&["--allow-host", "embed.internal"]);
    let port = server.port;
    let body = br#"{"inputs": "hello"}"#;
    // A web page's simple POST (no CORS preflight) is refused: 415.
    for ct in [
        "",
        "Content-Type: text/plain\r\n",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        "Content-Type: multipart/form-data; boundary=x\r\n",
    ] {
        let (status, _, b) = request_with(port, "POST", "/embed", ct, body);
        assert_eq!(status, 415, "{ct}");
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert!(v["error"].as_str().unwrap().contains("application/json"));
    }
    let ok = "Content-Type: Application/JSON; charset=utf-8\r\n";
    assert_eq!(request_with(port, "POST", "/embed", ok, body).0, 200);

    // DNS rebinding: a name that is not this loopback server's is refused.
    let host = |h: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let req = format!("GET /info HTTP/1.1\r\nHost: {h}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        split_response(&raw).0
    };
    assert_eq!(host("attacker.example"), 421);
    assert_eq!(host("attacker.example:8080"), 421);
    assert_eq!(host(&format!("localhost:{port}")), 200);
    assert_eq!(host(&format!("127.0.0.1:{port}")), 200);
    assert_eq!(host(&format!("[::1]:{port}")), 200);
    assert_eq!(host("embed.internal"), 200);

    // Unknown routes and methods: JSON too.
    let (status, _, b) = request(port, "GET", "/nope", b"");
    assert_eq!(status, 404);
    assert_eq!(
        serde_json::from_slice::<Value>(&b).unwrap()["error_type"],
        "not_found"
    );
    let (status, _, b) = request(port, "GET", "/embed", b"");
    assert_eq!(status, 405);
    assert_eq!(
        serde_json::from_slice::<Value>(&b).unwrap()["error_type"],
        "method_not_allowed"
    );
    let (status, _, b) = request(port, "GET", "/v1/nope", b"");
    assert_eq!(status, 404);
    assert!(serde_json::from_slice::<Value>(&b).unwrap()["error"]["message"].is_string());
}

#[test]
fn silent_connections_are_closed_and_http2_is_off_unless_asked() {
    let server = start(&["--idle-timeout-secs", "1"]);
    // A connection that never sends a byte.
    let mut silent: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(("127.0.0.1", server.port)).unwrap())
        .collect();
    for s in &mut silent {
        assert!(
            closed_within(s, Duration::from_secs(10)).is_some(),
            "a silent connection stayed open"
        );
    }
    // HTTP/2 with prior knowledge is not spoken.
    let mut h2 = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    let mut raw = Vec::new();
    h2.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = h2.read_to_end(&mut raw);
    assert!(
        raw.is_empty() || raw.starts_with(b"HTTP/1.1 "),
        "answered HTTP/2: {raw:?}"
    );
    assert_eq!(request(server.port, "GET", "/health", b"").0, 200);
    drop(server);

    // Asked for, HTTP/2 is spoken, and a silent HTTP/2 connection is closed too.
    let server = start(&["--http2", "--idle-timeout-secs", "1"]);
    let mut h2 = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    let mut head = [0u8; 9];
    h2.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    h2.read_exact(&mut head).unwrap();
    assert_eq!(head[3], 4, "the server's first frame is SETTINGS");
    assert!(
        closed_within(&mut h2, Duration::from_secs(10)).is_some(),
        "a silent HTTP/2 connection stayed open"
    );
}

/// Sends `step` every 200 ms (and reads what comes back) until the server closes the
/// connection; how long that took, or `None` if it stayed open for `limit`.
fn trickle_until_closed(s: &mut TcpStream, step: &[u8], limit: Duration) -> Option<Duration> {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        if s.write_all(step).is_err() {
            return Some(started.elapsed());
        }
        match s.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

#[test]
fn clients_that_trickle_bytes_without_a_request_are_closed() {
    let server = start(&["--http2", "--idle-timeout-secs", "1"]);
    // HTTP/2: pings every 200 ms keep bytes moving both ways, and no request ever starts.
    let mut h2 = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    let ping = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00pingping";
    assert!(
        trickle_until_closed(&mut h2, ping, Duration::from_secs(15)).is_some(),
        "an HTTP/2 connection that only pings stayed open"
    );
    // HTTP/2 headers a byte at a time: a HEADERS frame that never completes.
    let mut h2 = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    h2.write_all(b"\x00\x40\x00\x01\x04\x00\x00\x00\x01")
        .unwrap();
    assert!(
        trickle_until_closed(&mut h2, b"\x82", Duration::from_secs(15)).is_some(),
        "an HTTP/2 connection trickling one HEADERS frame stayed open"
    );
    // HTTP/1 headers a byte at a time.
    let mut h1 = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    h1.write_all(b"POST /embed HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    assert!(
        trickle_until_closed(&mut h1, b"x", Duration::from_secs(15)).is_some(),
        "an HTTP/1 connection trickling its headers stayed open"
    );
    // A connection that asks and waits is served as before, over HTTP/1 and HTTP/2.
    assert_eq!(request(server.port, "GET", "/health", b"").0, 200);
}

#[test]
fn connections_beyond_the_cap_get_503_until_one_closes() {
    let server = start(&["--max-connections", "2"]);
    let port = server.port;
    let keep_alive = |s: &mut TcpStream| {
        s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    };
    // Two connections, each answered once and kept open.
    let mut open: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    for s in &mut open {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        keep_alive(s);
    }
    let (status, head, body) = request(port, "GET", "/health", b"");
    assert_eq!(status, 503, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error_type"], "overloaded", "{v}");
    // The connections inside the cap still work.
    keep_alive(&mut open[0]);
    // Once one closes, a new connection is served.
    drop(open.pop());
    wait_until("a slot frees", Duration::from_secs(20), || {
        request(port, "GET", "/health", b"").0 == 200
    });
    keep_alive(&mut open[0]);
}

#[test]
fn shutdown_has_a_deadline_whatever_the_clients_do() {
    let mut server = start(&[
        "--http2",
        "--idle-timeout-secs",
        "120",
        "--shutdown-timeout-secs",
        "2",
    ]);
    let port = server.port;
    // An HTTP/2 client that never answers the server's frames, and an HTTP/1 client
    // half-way through its headers.
    let mut h2 = TcpStream::connect(("127.0.0.1", port)).unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    let mut head = [0u8; 9];
    h2.read_exact(&mut head).unwrap();
    let mut half = TcpStream::connect(("127.0.0.1", port)).unwrap();
    half.write_all(b"POST /embed HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    wait_until("both connections are open", Duration::from_secs(10), || {
        // The server has read them: a request after them is answered.
        request(port, "GET", "/health", b"").0 == 200
    });
    let started = Instant::now();
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = wait_exit(
        &mut server,
        Duration::from_secs(20),
        "SIGTERM did not stop the server within 20 s (deadline 2 s)",
    );
    assert!(status.success(), "{status}");
    assert!(started.elapsed() < Duration::from_secs(10));
    drop((h2, half));
}

#[test]
fn request_ids_are_capped_and_logged_quoted() {
    let server = start(&[]);
    let port = server.port;
    let json = "Content-Type: application/json\r\n";
    let (_, headers, _) = request_with(
        port,
        "POST",
        "/embed",
        &format!("{json}X-Request-Id: trace-42.a\r\n"),
        br#"{"inputs": "a"}"#,
    );
    assert!(headers.contains("x-request-id: trace-42.a"), "{headers}");
    // Too long, or with characters that could forge log fields: replaced by ours.
    for id in [
        "x".repeat(1000),
        r#"a" status=200 forged="yes"#.to_string(),
        "a\tb".to_string(),
    ] {
        let (status, headers, _) = request_with(
            port,
            "POST",
            "/embed",
            &format!("{json}X-Request-Id: {id}\r\n"),
            br#"{"inputs": "a"}"#,
        );
        assert_eq!(status, 200);
        let echoed = headers
            .lines()
            .find_map(|l| l.strip_prefix("x-request-id: "))
            .unwrap();
        assert!(echoed.starts_with("req-"), "{echoed}");
    }
    wait_until("the requests are logged", Duration::from_secs(10), || {
        server.log_text().matches("route=\"/embed\"").count() >= 4
    });
    let log = server.log_text();
    assert!(log.contains("request_id=\"trace-42.a\""), "{log}");
    assert!(!log.contains("forged"), "{log}");
    assert!(!log.contains(&"x".repeat(100)), "a long id was logged");
}

#[test]
fn usage_counts_the_tokens_embedded() {
    let server = start(&[]);
    let (_, _, info) = request(server.port, "GET", "/info", b"");
    let info: Value = serde_json::from_slice(&info).unwrap();
    let max = info["max_input_length"].as_u64().unwrap();
    assert!(max >= 128, "{info}");
    // A 3000-word text is embedded (and counted) as the model's longest sequence.
    let long = "word ".repeat(3000);
    let (status, v) = post(
        server.port,
        "/v1/embeddings",
        json!({"input": [long, "hello world"]}),
    );
    assert_eq!(status, 200, "{v}");
    // [CLS] hello world [SEP] = 4.
    assert_eq!(v["usage"]["prompt_tokens"], max + 4);
    assert_eq!(v["usage"]["total_tokens"], max + 4);
}

/// 512 texts of ~100 tokens: seconds of inference on these machines.
fn heavy_body() -> String {
    let text = "a long document about vector search engines and embeddings ".repeat(10);
    json!({"inputs": vec![text; 512]}).to_string()
}

#[test]
fn clients_that_leave_are_not_computed() {
    let server = start(&["--max-batch-texts", "512", "--request-timeout-secs", "300"]);
    let port = server.port;
    let body = heavy_body();
    let a = {
        let body = body.clone();
        std::thread::spawn(move || request(port, "POST", "/embed", body.as_bytes()).0)
    };
    wait_until("A is being computed", Duration::from_secs(60), || {
        server.metric("embedkit_batch_size_count") >= 1.0
    });
    // Three clients send the same and hang up at once.
    for _ in 0..3 {
        send_and_hang_up(port, "/embed", &body);
    }
    assert_eq!(a.join().unwrap(), 200);
    wait_until("nothing is in progress", Duration::from_secs(120), || {
        server.metric("embedkit_requests_in_progress") == 0.0
            && server.metric("embedkit_queue_depth") == 0.0
    });
    // One more request is computed; the three that left never were.
    assert_eq!(post(port, "/embed", json!({"inputs": "b"})).0, 200);
    assert_eq!(server.metric("embedkit_batch_size_count"), 2.0);
}

#[test]
fn timed_out_requests_get_json_504_and_are_not_computed_later() {
    let server = start(&[
        "--request-timeout-secs",
        "1",
        "--max-batch-texts",
        "512",
        "--workers",
        "2",
    ]);
    let port = server.port;
    let body = heavy_body();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let body = body.clone();
            std::thread::spawn(move || request(port, "POST", "/embed", body.as_bytes()))
        })
        .collect();
    let answers: Vec<(u16, String, Vec<u8>)> =
        clients.into_iter().map(|c| c.join().unwrap()).collect();
    let timed_out = answers.iter().filter(|a| a.0 == 504).count();
    assert!(
        timed_out >= 2,
        "{:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    for (status, _, body) in &answers {
        if *status == 504 {
            let v: Value = serde_json::from_slice(body).unwrap();
            assert_eq!(v["error_type"], "timeout");
        } else {
            // A request whose tokenizing outlasted its deadline, or that finished.
            assert!([200, 504].contains(status), "{status}");
        }
    }
    wait_until("nothing is in progress", Duration::from_secs(120), || {
        server.metric("embedkit_requests_in_progress") == 0.0
            && server.metric("embedkit_queue_depth") == 0.0
    });
    // At most the jobs in hand (one per worker) when their clients gave up were
    // computed; the rest were dropped.
    let computed = server.metric("embedkit_batch_size_count");
    assert!(
        computed <= 2.0,
        "{computed} batches computed for clients that had gone"
    );
    assert!(server.metric("embedkit_requests_total{route=\"/embed\",status=\"504\"}") >= 2.0);
    assert!(server.log_text().contains("status=504"));
}

#[test]
fn a_bad_input_fails_its_own_request_only() {
    // A long batching wait, so that the good and the bad request share one batch.
    let server = start_model(
        "Qdrant/clip-ViT-B-32-vision",
        &tiny("vision-clip-512"),
        &["--max-wait-ms", "500"],
    );
    let port = server.port;
    use base64::Engine;
    let png = std::fs::read(repo_root().join("tests/data/images/photo.png")).unwrap();
    let good = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    );
    let bad = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(b"not an image at all")
    );
    let send = |inputs: Vec<String>| {
        std::thread::spawn(move || post(port, "/embed", json!({"inputs": inputs})))
    };
    let g = send(vec![good.clone(), good.clone()]);
    let b = send(vec![good.clone(), bad]);
    let (gs, gv) = g.join().unwrap();
    let (bs, bv) = b.join().unwrap();
    assert_eq!(gs, 200, "{gv}");
    assert_eq!(gv.as_array().unwrap().len(), 2);
    assert_eq!(bs, 422, "{bv}");
    let said = bv["error"].as_str().unwrap();
    assert!(said.starts_with("inputs[1]: cannot decode"), "{bv}");
    assert_eq!(post(port, "/embed", json!({"inputs": [good]})).0, 200);
}

#[test]
fn a_panic_in_inference_stops_the_server_with_an_error() {
    let mut server = start_args(
        &["--model".into(), model_arg("Qdrant/bm25", &tiny("bm25"))],
        &[("EMBEDKIT_FAULT_PANIC_ON_INPUT", "boom")],
    );
    let port = server.port;
    assert_eq!(
        post(port, "/embed_sparse", json!({"inputs": ["fine"]})).0,
        200
    );
    let (status, v) = post(port, "/embed_sparse", json!({"inputs": ["a", "boom"]}));
    assert!(status >= 500, "{status} {v}");
    assert!(v["error"].is_string(), "{v}");
    let exit = wait_exit(
        &mut server,
        Duration::from_secs(30),
        "the server kept running after a panic",
    );
    assert!(!exit.success(), "a panicked server must exit non-zero");
    wait_until("the panic is logged", Duration::from_secs(10), || {
        server.log_text().contains("inference panicked")
    });
}

/// Vectors per token make answers of gigabytes from a request of kilobytes (512 texts ×
/// 512 tokens × 1024 numbers): `--max-output-numbers` refuses such a request with 413
/// before any work, on `/embed_all` and `/embed_late` (and `/tokenize`, before its answer
/// is built), saying what to change; a request whose characters only look long (12
/// letters, a few tokens) is counted exactly and answered.
#[test]
fn answers_of_vectors_per_token_are_bounded() {
    let server = start_args(
        &[
            "--model".into(),
            model_arg(MINILM, &minilm_dir()),
            "--model".into(),
            model_arg("colbert-ir/colbertv2.0", &tiny("colbert-128")),
            "--max-output-numbers".into(),
            "5000".into(),
        ],
        &[],
    );
    let port = server.port;
    let long = "the quick brown fox jumps over the lazy dog again and again";
    // MiniLM's token vectors are 384 wide: 13 tokens are 4992 numbers at most, 14 more.
    let (status, v) = post(port, "/embed_all", json!({ "inputs": [long] }));
    assert_eq!(status, 413, "{v}");
    let said = v["error"].as_str().unwrap();
    assert!(said.contains("max_output_numbers"), "{said}");
    // 12 characters could be 14 tokens (5376 numbers): tokenized, they are far fewer.
    let (status, v) = post(port, "/embed_all", json!({ "inputs": ["aaaaaaaaaaaa"] }));
    assert_eq!(status, 200, "{v}");
    let rows = v[0].as_array().unwrap();
    assert!(rows.len() * 384 <= 5000, "{} rows", rows.len());
    assert_eq!(rows[0].as_array().unwrap().len(), 384);

    // ColBERT's 128-wide vectors: 8 short texts pass, 40 long ones do not.
    let model = "colbert-ir/colbertv2.0";
    let (status, v) = post(
        port,
        "/embed_late",
        json!({ "inputs": vec!["a b"; 8], "model": model }),
    );
    assert_eq!(status, 200, "{v}");
    let (status, v) = post(
        port,
        "/embed_late",
        json!({ "inputs": vec![long; 40], "model": model }),
    );
    assert_eq!(status, 413, "{v}");
    assert!(v["error"].as_str().unwrap().contains("max_output_numbers"));

    // /tokenize cuts nothing, so its answer grows with the text: a token counts 4
    // numbers (id, start, stop, special). 100 texts of 14 tokens are 5600, one is 56.
    let (status, v) = post(port, "/tokenize", json!({ "inputs": vec![long; 100] }));
    assert_eq!(status, 413, "{v}");
    assert!(v["error"].as_str().unwrap().contains("max_output_numbers"));
    let (status, v) = post(port, "/tokenize", json!({ "inputs": [long] }));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v[0].as_array().unwrap().len(), 14, "{v}");
}
