//! A panic in inference, in process: the server's own request fails, `/health` turns 503
//! and stays so, new work is refused, and the panic watch fires (which `run` turns into
//! shutdown and a non-zero exit; the CLI's tests check that part).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use embedkit::LoadOptions;
use embedkit_server::{router, serve, BatchPolicy, Config, Models, Served, Transport};

fn request(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw[9..12].parse().unwrap();
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[test]
fn a_panic_turns_health_to_503_and_fires_the_watch() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-models/bm25");
    assert!(
        dir.is_dir(),
        "{} is missing: run `make test-models`",
        dir.display()
    );
    let mut load = LoadOptions::default();
    load.cache.specific_model_path = Some(dir);
    let models = Models::new(vec![Served::load("Qdrant/bm25", load).unwrap()]).unwrap();
    let config = Config {
        policy: BatchPolicy {
            panic_on_input: Some("boom".into()),
            ..BatchPolicy::default()
        },
        ..Config::default()
    };
    let (app, mut fatal) = router(models, &config).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    runtime.spawn(serve(
        listener,
        app,
        Transport::default(),
        std::future::pending(),
    ));

    assert_eq!(request(port, "GET", "/health", "").0, 200);
    assert_eq!(
        request(port, "POST", "/embed_sparse", r#"{"inputs": ["fine"]}"#).0,
        200
    );
    let (status, body) = request(
        port,
        "POST",
        "/embed_sparse",
        r#"{"inputs": ["a", "boom"]}"#,
    );
    assert!(status >= 500, "{status} {body}");
    // The watch `run` stops on.
    let message = runtime
        .block_on(async { fatal.wait_for(Option::is_some).await.map(|m| m.clone()) })
        .unwrap();
    assert!(message.unwrap().contains("boom"));
    let (status, body) = request(port, "GET", "/health", "");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("unhealthy"), "{body}");
    let (status, body) = request(port, "POST", "/embed_sparse", r#"{"inputs": ["fine"]}"#);
    assert_eq!(status, 503, "{body}");
}
