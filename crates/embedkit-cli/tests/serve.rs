//! `embedkit serve` run as a user would, on 127.0.0.1 with the real all-MiniLM-L6-v2 fp32
//! model, exercised with real HTTP requests: every route, `dimensions`, bad requests and
//! the official `openai` Python client. The HTTP level (hostile and slow clients, limits,
//! shutdown) is in serve_http.rs, every family in serve_families.rs.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::repo_root;
use common::server::*;

use serde_json::{json, Value};

/// fastembed's vectors for the edge inputs (tests/expected).
pub(crate) fn oracle_edge() -> (Vec<String>, Vec<Vec<f32>>) {
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

    // Output types, the last step: int8 scaled to ±127, bits packed first-value-highest.
    let scaled: Vec<i64> = {
        let max = short.iter().fold(0f32, |m, x| m.max(x.abs()));
        short
            .iter()
            .map(|x| (x * 127.0 / max).round() as i64)
            .collect()
    };
    let packed: Vec<u64> = full
        .chunks(8)
        .map(|c| {
            c.iter()
                .enumerate()
                .map(|(i, &x)| u64::from(x > 0.0) << (7 - i))
                .sum()
        })
        .collect();
    let (status, q) = post(
        server.port,
        "/embed",
        json!({"inputs": ["hello world"], "dimensions": 64, "output_dtype": "int8"}),
    );
    assert_eq!(status, 200, "{q}");
    let q: Vec<i64> = serde_json::from_value(q[0].clone()).unwrap();
    assert_eq!(q, scaled);
    let (status, b) = post(
        server.port,
        "/v1/embeddings",
        json!({"input": "hello world", "output_dtype": "binary"}),
    );
    assert_eq!(status, 200, "{b}");
    let b: Vec<u64> = serde_json::from_value(b["data"][0]["embedding"].clone()).unwrap();
    assert_eq!(b, packed);
    // base64 carries the bytes: the int8 values as two's complement.
    let (status, e) = post(
        server.port,
        "/v1/embeddings",
        json!({"input": "hello world", "dimensions": 64, "output_dtype": "int8",
               "encoding_format": "base64"}),
    );
    assert_eq!(status, 200, "{e}");
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(e["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let decoded: Vec<i64> = bytes.iter().map(|&x| x as i8 as i64).collect();
    assert_eq!(decoded, scaled);
    let (status, _) = post(
        server.port,
        "/embed",
        json!({"inputs": ["x"], "output_dtype": "int4"}),
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

/// Each edge text as its own request, all at once, while a long request holds both
/// cores: the burst queues behind it and is batched across requests. Whichever way the
/// batches share the cores, every answer is fastembed's vector for its own text, and
/// the batches held the cores as `--core-sharing` says.
#[test]
fn batches_share_the_cores_as_asked_and_answer_exactly() {
    let (texts, want) = oracle_edge();
    let long = "a longer document that takes a moment to embed on this CPU ".repeat(8);
    for sharing in ["side-by-side", "together"] {
        let server = start(&[
            "--threads",
            "2",
            "--workers",
            "2",
            "--core-sharing",
            sharing,
            "--max-concurrent-requests",
            "256",
        ]);
        let port = server.port;
        let body = json!({ "inputs": vec![long.clone(); 256] });
        let busy = std::thread::spawn(move || post(port, "/embed", body).0);
        wait_until(
            "the long request is being computed",
            Duration::from_secs(60),
            || server.metric("embedkit_batch_size_count") >= 1.0,
        );
        let burst: Vec<_> = (0..3)
            .flat_map(|_| texts.clone().into_iter().enumerate())
            .map(|(i, text)| {
                std::thread::spawn(move || (i, post(port, "/embed", json!({ "inputs": text }))))
            })
            .collect();
        for handle in burst {
            let (i, (status, got)) = handle.join().unwrap();
            assert_eq!(status, 200, "{sharing}, text {i}: {got}");
            let got: Vec<Vec<f32>> = serde_json::from_value(got).unwrap();
            let d = max_diff(&got, &want[i..=i]);
            assert!(d <= 1e-5, "{sharing}, text {i}: max difference {d}");
        }
        assert_eq!(busy.join().unwrap(), 200);
        let all = server.metric("embedkit_batches_total{cores=\"all\"}");
        let one = server.metric("embedkit_batches_total{cores=\"one\"}");
        match sharing {
            // The burst's first batch was gathered while the long one held both cores.
            "side-by-side" => assert!(one >= 1.0, "{sharing}: all {all}, one {one}"),
            // Every batch on both cores, each holding all that waited: the long one,
            // then the burst's 60 requests in as few batches as the 16384 padded
            // tokens a batch allow (one edge text alone is at the model's length).
            _ => assert!(
                one == 0.0 && (2.0..=6.0).contains(&all),
                "{sharing}: all {all}, one {one}"
            ),
        }
    }
}
