//! BGE-M3 through the CLI, against FlagEmbedding's outputs: `hybrid` writes all three
//! per document from one pass (JSON Lines and Parquet hold the same records), and
//! `embed`, `sparse` and `late` take the model as any other of their kind.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::m3::{check_dense, check_multi, check_sparse, m3_expected};
use crate::common::{repo_root, tmpdir};

fn tiny(name: &str) -> String {
    let dir = repo_root().join("target/test-models").join(name);
    assert!(
        dir.is_dir(),
        "{} is missing: run `make test-models`",
        dir.display()
    );
    dir.to_string_lossy().into_owned()
}

/// Runs `embedkit ARGS... --quiet --output OUT TEXTS...` and returns its JSON Lines
/// records (or nothing, for other formats).
fn run(args: &[&str], texts: &[String], out: &Path) -> Vec<Value> {
    let status = Command::new(env!("CARGO_BIN_EXE_embedkit"))
        .args(args)
        .args(["--quiet", "--output"])
        .arg(out)
        .args(texts)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "embedkit {args:?}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    if out.extension().is_some_and(|e| e == "jsonl") {
        std::fs::read_to_string(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    } else {
        Vec::new()
    }
}

fn floats(v: &Value) -> Vec<f32> {
    serde_json::from_value(v.clone()).unwrap()
}

fn dense_of(records: &[Value]) -> Vec<Vec<f32>> {
    records.iter().map(|r| floats(&r["embedding"])).collect()
}

fn sparse_of(records: &[Value]) -> Vec<(Vec<u32>, Vec<f32>)> {
    records
        .iter()
        .map(|r| {
            (
                serde_json::from_value(r["indices"].clone()).unwrap(),
                floats(&r["values"]),
            )
        })
        .collect()
}

fn multi_of(records: &[Value]) -> Vec<Vec<Vec<f32>>> {
    records
        .iter()
        .map(|r| serde_json::from_value(r["embeddings"].clone()).unwrap())
        .collect()
}

#[test]
fn hybrid_writes_all_three_outputs_as_flagembedding_computes_them() {
    let want = m3_expected(&repo_root());
    assert!(want.texts.iter().all(|t| !t.contains('\n')));
    let dir = tmpdir("m3-hybrid");
    for (model, folder) in [
        ("BAAI/bge-m3", "bge-m3"),
        ("gpahal/bge-m3-onnx-int8", "bge-m3-int8"),
    ] {
        let path = tiny(folder);
        let args = ["hybrid", "-m", model, "--model-path", &path];
        let jsonl = dir.join(format!("{folder}.jsonl"));
        let records = run(&args, &want.texts, &jsonl);
        let ids: Vec<u64> = records.iter().map(|r| r["id"].as_u64().unwrap()).collect();
        assert_eq!(
            ids,
            (0..want.texts.len() as u64).collect::<Vec<_>>(),
            "{model}"
        );
        check_dense(model, &dense_of(&records), &want.dense, want.tol);
        check_sparse(model, &sparse_of(&records), &want.sparse, want.tol);
        check_multi(model, &multi_of(&records), &want.multi, want.tol);

        // The same records as Parquet, read by pyarrow: the same numbers, bit for bit.
        let parquet = dir.join(format!("{folder}.parquet"));
        run(&args, &want.texts, &parquet);
        let python = repo_root().join(".venv-oracle/bin/python");
        assert!(
            python.is_file(),
            "{} is missing: `make test-models`",
            python.display()
        );
        const SAME: &str = r#"
import json, sys
import pyarrow.parquet as pq
table = pq.read_table(sys.argv[1]).to_pylist()
with open(sys.argv[2]) as f:
    lines = [json.loads(l) for l in f]
assert [r["id"] for r in table] == [r["id"] for r in lines]
for p, j in zip(table, lines):
    for key in ("embedding", "indices", "values", "embeddings"):
        assert p[key] == j[key], key
print(sorted(table[0]))
"#;
        let out = Command::new(&python)
            .args(["-c", SAME])
            .arg(&parquet)
            .arg(&jsonl)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{model}: Parquet and JSON Lines differ: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Only the outputs asked for.
    let path = tiny("bge-m3");
    let sparse_only = dir.join("sparse-only.jsonl");
    let records = run(
        &[
            "hybrid",
            "-m",
            "BAAI/bge-m3",
            "--model-path",
            &path,
            "--outputs",
            "sparse",
        ],
        &want.texts[..2],
        &sparse_only,
    );
    let keys: Vec<&String> = records[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "indices", "values"]);
    // A flag for an output the records do not hold is refused before work, no file.
    let refused = dir.join("refused.jsonl");
    for (outputs, flag) in [
        ("sparse", &["--dimensions", "8"][..]),
        ("multi", &["--normalize"]),
        ("dense,multi", &["--top-terms", "3"]),
        ("dense", &["--min-weight", "0.1"]),
        ("dense,sparse", &["--output-dtype", "int8"]),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_embedkit"))
            .args(["hybrid", "-m", "BAAI/bge-m3", "--model-path", &path])
            .args(["--outputs", outputs])
            .args(flag)
            .arg("--output")
            .arg(&refused)
            .arg("a text")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{outputs} {flag:?}: {err}");
        assert!(err.contains(flag[0]), "{outputs} {flag:?}: {err}");
        assert!(!refused.exists(), "{outputs} {flag:?} wrote a file");
    }
}

#[test]
fn embed_sparse_and_late_take_bge_m3_as_any_model_of_their_kind() {
    let want = m3_expected(&repo_root());
    let texts = &want.texts[..8];
    let dir = tmpdir("m3-commands");
    let path = tiny("bge-m3");
    let model = ["-m", "BAAI/bge-m3", "--model-path", &path];
    let with = |cmd: &'static str| -> Vec<&str> { [&[cmd][..], &model[..]].concat() };
    let dense = run(&with("embed"), texts, &dir.join("dense.jsonl"));
    check_dense("embed", &dense_of(&dense), &want.dense[..8], want.tol);
    let sparse = run(&with("sparse"), texts, &dir.join("sparse.jsonl"));
    check_sparse("sparse", &sparse_of(&sparse), &want.sparse[..8], want.tol);
    let late = run(&with("late"), texts, &dir.join("late.jsonl"));
    check_multi("late", &multi_of(&late), &want.multi[..8], want.tol);
    // A flag the model does not honour is refused, not ignored.
    let out = Command::new(env!("CARGO_BIN_EXE_embedkit"))
        .args(with("sparse"))
        .args(["--alpha", "0.3", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("alpha"));
}

#[test]
fn one_served_bge_m3_answers_every_route_its_outputs_allow() {
    use crate::common::server::{post, start_model, tei_sparse};
    let want = m3_expected(&repo_root());
    let texts: Vec<String> = want.texts[..10].to_vec();
    let n = texts.len();
    let dir = std::path::PathBuf::from(tiny("bge-m3"));
    let server = start_model("BAAI/bge-m3", &dir, &["--threads", "2"]);
    let port = server.port;

    // All three in one request, each checked against FlagEmbedding.
    let (status, body) = post(
        port,
        "/embed_hybrid",
        serde_json::json!({ "inputs": texts }),
    );
    assert_eq!(status, 200, "{body}");
    let all = body.as_array().unwrap();
    let dense: Vec<Vec<f32>> = all.iter().map(|r| floats(&r["dense"])).collect();
    let sparse: Vec<(Vec<u32>, Vec<f32>)> = all.iter().map(|r| tei_sparse(&r["sparse"])).collect();
    let multi: Vec<Vec<Vec<f32>>> = all
        .iter()
        .map(|r| serde_json::from_value(r["multi"].clone()).unwrap())
        .collect();
    check_dense("/embed_hybrid", &dense, &want.dense[..n], want.tol);
    check_sparse("/embed_hybrid", &sparse, &want.sparse[..n], want.tol);
    check_multi("/embed_hybrid", &multi, &want.multi[..n], want.tol);

    // Only what was asked for.
    let (status, body) = post(
        port,
        "/embed_hybrid",
        serde_json::json!({ "inputs": "hello world", "outputs": ["sparse"] }),
    );
    assert_eq!(status, 200, "{body}");
    let keys: Vec<&String> = body[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["sparse"]);

    // Each output on its own route, as from a model of that kind alone.
    let (status, body) = post(port, "/embed", serde_json::json!({ "inputs": texts }));
    assert_eq!(status, 200, "{body}");
    let dense: Vec<Vec<f32>> = serde_json::from_value(body).unwrap();
    check_dense("/embed", &dense, &want.dense[..n], want.tol);
    let (status, body) = post(
        port,
        "/v1/embeddings",
        serde_json::json!({ "input": texts, "model": "BAAI/bge-m3" }),
    );
    assert_eq!(status, 200, "{body}");
    let dense: Vec<Vec<f32>> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| floats(&d["embedding"]))
        .collect();
    check_dense("/v1/embeddings", &dense, &want.dense[..n], want.tol);
    let (status, body) = post(
        port,
        "/embed_sparse",
        serde_json::json!({ "inputs": texts }),
    );
    assert_eq!(status, 200, "{body}");
    let sparse: Vec<(Vec<u32>, Vec<f32>)> =
        body.as_array().unwrap().iter().map(tei_sparse).collect();
    check_sparse("/embed_sparse", &sparse, &want.sparse[..n], want.tol);
    let (status, body) = post(port, "/embed_late", serde_json::json!({ "inputs": texts }));
    assert_eq!(status, 200, "{body}");
    let multi: Vec<Vec<Vec<f32>>> = serde_json::from_value(body).unwrap();
    check_multi("/embed_late", &multi, &want.multi[..n], want.tol);

    // The model card says what it offers; what it lacks is refused with the reason.
    let (_, _, body) = crate::common::server::request(port, "GET", "/v1/models", b"");
    let cards: Value = serde_json::from_slice(&body).unwrap();
    let caps = &cards["data"][0]["capabilities"];
    for c in ["dense_text", "sparse_text", "multi_vector_text"] {
        assert!(caps.as_array().unwrap().iter().any(|x| x == c), "{caps}");
    }
    let (status, body) = post(
        port,
        "/rerank",
        serde_json::json!({ "query": "q", "texts": ["a"] }),
    );
    assert!(status == 424 || status == 422, "{status} {body}");
    let (status, body) = post(
        port,
        "/embed_hybrid",
        serde_json::json!({ "inputs": "x", "dimensions": 16 }),
    );
    assert_eq!(status, 422, "{body}");
}
