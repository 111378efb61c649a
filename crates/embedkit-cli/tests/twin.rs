//! The test family (embedkit's feature `test-family`, enabled for this crate's tests
//! only): a model family this crate has no line of code for. The CLI's commands and the
//! server's routes serve it by its capabilities (dense and sparse vectors from one pass,
//! tokens), checked against its oracle (tests/expected/twin.json: ONNX Runtime and
//! Hugging Face `tokenizers` in Python).

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{json, Value};

use crate::common::server::{post, request, start_model, tei_sparse, tiny};
use crate::common::twin::{self, pairs, Twin};
use crate::common::{repo_root, tmpdir};

const NAME: &str = "embedkit/test-twin";

fn expected() -> Twin {
    twin::expected(&repo_root())
}

fn floats(v: &Value) -> Vec<f32> {
    serde_json::from_value(v.clone()).unwrap()
}

/// TEI's sparse answer as a map.
fn tei_map(v: &Value) -> BTreeMap<u32, f32> {
    let (i, w) = tei_sparse(v);
    i.into_iter().zip(w).collect()
}

#[test]
fn the_cli_writes_a_family_it_has_no_code_for() {
    let want = expected();
    // One text per line: the oracle's texts without line breaks.
    let keep: Vec<usize> = (0..want.texts.len())
        .filter(|&i| !want.texts[i].contains(['\n', '\r']) && !want.texts[i].is_empty())
        .collect();
    let sub = want.only(&keep);
    let input = sub.texts.join("\n") + "\n";
    let dir = tmpdir("twin-cli");
    let path = tiny("twin-64");
    let run = |cmd: &[&str], file: &str, input: &str| -> Vec<Value> {
        let out = dir.join(file);
        let mut child = Command::new(env!("CARGO_BIN_EXE_embedkit"))
            .args(cmd)
            .args(["-m", NAME, "--model-path"])
            .arg(&path)
            .args(["--quiet", "--output"])
            .arg(&out)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let done = child.wait_with_output().unwrap();
        assert!(
            done.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&done.stderr)
        );
        std::fs::read_to_string(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let dense: Vec<Vec<f32>> = run(&["embed"], "dense.jsonl", &input)
        .iter()
        .map(|r| floats(&r["embedding"]))
        .collect();
    sub.check_dense("embed", &dense);
    let sparse: Vec<_> = run(&["sparse"], "sparse.jsonl", &input)
        .iter()
        .map(|r| pairs(&r["indices"], &r["values"]))
        .collect();
    sub.check_sparse("sparse", &sparse);
    let both = run(
        &["hybrid", "--outputs", "dense,sparse"],
        "both.jsonl",
        &input,
    );
    let dense: Vec<Vec<f32>> = both.iter().map(|r| floats(&r["embedding"])).collect();
    let sparse: Vec<_> = both
        .iter()
        .map(|r| pairs(&r["indices"], &r["values"]))
        .collect();
    sub.check_dense("hybrid", &dense);
    sub.check_sparse("hybrid", &sparse);
    // `--no-truncate`: texts that fit give the same vectors; an over-long one fails
    // the run (exit 2), naming its position.
    let fit: Vec<usize> = (0..sub.texts.len())
        .filter(|&i| sub.counts[i] < 128)
        .collect();
    let fits = sub.only(&fit);
    let dense: Vec<Vec<f32>> = run(
        &["embed", "--no-truncate"],
        "whole.jsonl",
        &(fits.texts.join("\n") + "\n"),
    )
    .iter()
    .map(|r| floats(&r["embedding"]))
    .collect();
    fits.check_dense("embed --no-truncate", &dense);
    let long = "word ".repeat(400);
    let out = Command::new(env!("CARGO_BIN_EXE_embedkit"))
        .args([
            "embed",
            "--no-truncate",
            "--quiet",
            "-m",
            NAME,
            "--model-path",
        ])
        .arg(&path)
        .args(["short text", long.as_str()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("input 1 is longer than the model takes (128 tokens)"),
        "{stderr}"
    );
    // A command whose capability it lacks refuses it before any work.
    let out = Command::new(env!("CARGO_BIN_EXE_embedkit"))
        .args(["late", "-m", NAME, "--model-path"])
        .arg(&path)
        .arg("x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("multi_vector_text"));
    // `embedkit models` lists it under its own section.
    let models = Command::new(env!("CARGO_BIN_EXE_embedkit"))
        .args(["models", "--json"])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&models.stdout).unwrap();
    assert_eq!(listed["twin"][0]["model"], NAME, "{listed}");
}

#[test]
fn the_server_serves_a_family_it_has_no_code_for_on_every_route_it_allows() {
    let want = expected();
    let texts = &want.texts;
    let server = start_model(NAME, &tiny("twin-64"), &["--threads", "2"]);
    let port = server.port;

    let (status, body) = post(port, "/embed", json!({ "inputs": texts }));
    assert_eq!(status, 200, "{body}");
    want.check_dense(
        "/embed",
        &serde_json::from_value::<Vec<Vec<f32>>>(body).unwrap(),
    );
    let (status, body) = post(
        port,
        "/v1/embeddings",
        json!({ "input": texts, "model": NAME }),
    );
    assert_eq!(status, 200, "{body}");
    let dense: Vec<Vec<f32>> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| floats(&d["embedding"]))
        .collect();
    want.check_dense("/v1/embeddings", &dense);
    let (status, body) = post(port, "/embed_sparse", json!({ "inputs": texts }));
    assert_eq!(status, 200, "{body}");
    let sparse: Vec<_> = body.as_array().unwrap().iter().map(tei_map).collect();
    want.check_sparse("/embed_sparse", &sparse);
    // Both from one pass.
    let (status, body) = post(
        port,
        "/embed_hybrid",
        json!({ "inputs": texts, "outputs": ["dense", "sparse"] }),
    );
    assert_eq!(status, 200, "{body}");
    let all = body.as_array().unwrap();
    let dense: Vec<Vec<f32>> = all.iter().map(|r| floats(&r["dense"])).collect();
    let sparse: Vec<_> = all.iter().map(|r| tei_map(&r["sparse"])).collect();
    want.check_dense("/embed_hybrid", &dense);
    want.check_sparse("/embed_hybrid", &sparse);
    let (status, body) = post(port, "/tokenize", json!({ "inputs": "hello world" }));
    assert_eq!(status, 200, "{body}");

    // Its card lists what it computes; the routes of what it lacks refuse it.
    let (_, _, body) = request(port, "GET", "/v1/models", b"");
    let cards: Value = serde_json::from_slice(&body).unwrap();
    let caps: Vec<&str> = cards["data"][0]["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(caps, ["dense_text", "sparse_text", "tokens"]);
    for (route, body) in [
        ("/rerank", json!({ "query": "q", "texts": ["a"] })),
        ("/embed_late", json!({ "inputs": ["a"] })),
        (
            "/embed_hybrid",
            json!({ "inputs": ["a"], "outputs": ["multi"] }),
        ),
    ] {
        let (status, answer) = post(port, route, body);
        assert!(status == 422 || status == 424, "{route}: {status} {answer}");
    }
}
