//! Per-model options of `embedkit serve`: a models config giving each model its own
//! threads, precision and limits, and default prompts.

use std::process::Command;

use serde_json::json;

use crate::common::repo_root;
use crate::common::server::{minilm_dir, model_arg, post, start_args, tiny, MINILM};
use crate::serve_compat::{cosine, RERANKER};

/// `--models-config`: each model with its own options (here MiniLM in int8, the reranker
/// exact with its own batch size) beside the flags; a wrong key or a missing file stops
/// the server before it listens, naming the problem.
#[test]
fn a_models_config_gives_each_model_its_own_options() {
    let dir = crate::common::tmpdir("models-config");
    // The int8 file is written beside the model: a folder of links, not the shared one.
    let minilm = dir.join("minilm");
    std::fs::create_dir_all(&minilm).unwrap();
    for entry in std::fs::read_dir(minilm_dir()).unwrap() {
        let entry = entry.unwrap();
        std::os::unix::fs::symlink(entry.path(), minilm.join(entry.file_name())).unwrap();
    }
    let config = dir.join("models.json");
    std::fs::write(
        &config,
        json!({ "models": [
            { "name": MINILM, "path": minilm, "precision": "int8", "threads": 1 },
            { "name": RERANKER, "path": tiny("rerank-bert"), "batch_size": 4 },
        ] })
        .to_string(),
    )
    .unwrap();
    let server = start_args(
        &["--models-config".into(), config.display().to_string()],
        &[],
    );
    let port = server.port;
    let texts: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/data/edge_inputs.json")).unwrap(),
    )
    .unwrap();
    let (status, v) = post(port, "/embed", json!({ "inputs": texts }));
    assert_eq!(status, 200, "{v}");
    let got: Vec<Vec<f32>> = serde_json::from_value(v).unwrap();
    let exact = crate::common::server::oracle_rows("minilm-fp32-edge.f32", 384);
    assert_eq!(got.len(), exact.len());
    // int8: close to fastembed's exact vectors, not equal to them.
    let d = crate::common::server::max_diff(&got, &exact);
    assert!(
        d > 1e-4,
        "the int8 option was not applied: max difference {d}"
    );
    for (g, e) in got.iter().zip(&exact) {
        assert!(cosine(g, e) > 0.98, "cosine {}", cosine(g, e));
    }
    let (status, v) = post(
        port,
        "/rerank",
        json!({ "query": "capital of France", "texts": ["Paris", "bread", "France"] }),
    );
    assert_eq!(status, 200, "{v}");
    drop(server);

    for (bad, says) in [
        (
            json!({ "models": [{ "name": MINILM, "thread": 1 }] }),
            "thread",
        ),
        (json!({ "models": [{ "path": "x" }] }), "name"),
        (
            json!({ "models": [{ "name": MINILM, "threads": 0 }] }),
            "threads",
        ),
    ] {
        std::fs::write(&config, bad.to_string()).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_embedkit"))
            .args(["serve", "--port", "0", "--models-config"])
            .arg(&config)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}: started");
        assert!(err.contains(says), "{bad}: {err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_embedkit"))
        .args(["serve", "--port", "0", "--models-config"])
        .arg(dir.join("absent.json"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("absent.json"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// TEI's `--default-prompt-name` and `--default-prompt`: the prompt before every text of
/// a request that names none (`/embed`, OpenAI's `/v1/embeddings`, `/tokenize`), a named
/// `prompt_name` still winning; a name the model lacks stops the start, naming the ones it
/// has; the reranker beside it is left alone.
#[test]
fn a_default_prompt_goes_before_texts_that_name_none() {
    let dir = crate::common::tmpdir("default-prompt-model");
    for entry in std::fs::read_dir(minilm_dir()).unwrap() {
        let entry = entry.unwrap();
        std::os::unix::fs::symlink(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    std::fs::write(
        dir.join("config_sentence_transformers.json"),
        r#"{"prompts": {"query": "query: ", "passage": "passage: "}}"#,
    )
    .unwrap();
    let texts = ["hello world", "vector search in practice"];
    let with = |p: &str| -> Vec<String> { texts.iter().map(|t| format!("{p}{t}")).collect() };
    // The plain server: the vectors and tokens of the prompted texts, by hand.
    let plain = start_args(&["--model".into(), model_arg(MINILM, &dir)], &[]);
    let (_, query_vectors) = post(plain.port, "/embed", json!({ "inputs": with("query: ") }));
    let (_, passage_vectors) = post(plain.port, "/embed", json!({ "inputs": with("passage: ") }));
    let (_, plain_vectors) = post(plain.port, "/embed", json!({ "inputs": texts }));
    let (_, query_tokens) = post(
        plain.port,
        "/tokenize",
        json!({ "inputs": with("query: ") }),
    );
    let (_, openai_query) = post(
        plain.port,
        "/v1/embeddings",
        json!({ "input": with("query: ") }),
    );
    assert_ne!(query_vectors, plain_vectors);
    drop(plain);

    for flags in [
        vec!["--default-prompt-name", "query"],
        vec!["--default-prompt", "query: "],
    ] {
        let mut args = vec![
            "--model".to_string(),
            model_arg(MINILM, &dir),
            "--model".into(),
            model_arg(RERANKER, &tiny("rerank-bert")),
        ];
        args.extend(flags.iter().map(|s| s.to_string()));
        let server = start_args(&args, &[]);
        let port = server.port;
        let (status, v) = post(port, "/embed", json!({ "inputs": texts }));
        assert_eq!(status, 200, "{flags:?}: {v}");
        assert_eq!(v, query_vectors, "{flags:?}");
        let (_, v) = post(
            port,
            "/embed",
            json!({ "inputs": texts, "prompt_name": "passage" }),
        );
        assert_eq!(v, passage_vectors, "{flags:?}: a named prompt wins");
        let (_, v) = post(port, "/tokenize", json!({ "inputs": texts }));
        assert_eq!(v, query_tokens, "{flags:?}");
        let (_, v) = post(port, "/v1/embeddings", json!({ "input": texts }));
        assert_eq!(v["data"], openai_query["data"], "{flags:?}");
        assert_eq!(v["usage"], openai_query["usage"], "{flags:?}");
        let (status, v) = post(
            port,
            "/rerank",
            json!({ "query": "q", "texts": ["a", "b"] }),
        );
        assert_eq!(status, 200, "{flags:?}: the reranker has no prompt: {v}");
    }

    let out = Command::new(env!("CARGO_BIN_EXE_embedkit"))
        .args(["serve", "--port", "0", "--model", &model_arg(MINILM, &dir)])
        .args(["--default-prompt-name", "document"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started with an unknown prompt");
    assert!(err.contains("passage, query"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_embedkit"))
        .args(["serve", "--port", "0", "--model", &model_arg(MINILM, &dir)])
        .args(["--default-prompt-name", "query", "--default-prompt", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "both flags at once");
}
