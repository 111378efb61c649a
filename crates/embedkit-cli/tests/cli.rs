//! The `embedkit` binary, run as a user would, on the real all-MiniLM-L6-v2 fp32 model.

use crate::common;

use std::io::Write;
use std::path::PathBuf;

use common::{repo_root, tmpdir};
use std::process::{Command, Output, Stdio};

const MINILM: &str = "sentence-transformers/all-MiniLM-L6-v2";

fn minilm_dir() -> PathBuf {
    let dir = std::env::var("EMBEDKIT_SHARED_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("../shared/models"))
        .join("all-MiniLM-L6-v2-fp32");
    assert!(
        dir.join("model.onnx").is_file(),
        "the real model folder {} is missing; these tests need ../shared/models",
        dir.display()
    );
    dir
}

fn embedkit(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_embedkit"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that fails before reading its input closes the pipe: not an error here.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

/// `embedkit embed --model all-MiniLM-L6-v2 --model-path DIR ARGS...`
fn embed_minilm(dir: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut all = vec!["embed", "--model", MINILM, "--model-path", dir];
    all.extend_from_slice(args);
    embedkit(&all, stdin)
}

fn vectors(stdout: &[u8]) -> Vec<Vec<f32>> {
    std::str::from_utf8(stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            serde_json::from_value(v["embedding"].clone()).unwrap()
        })
        .collect()
}

/// The oracle's vectors for the edge inputs (tests/expected, written by fastembed 0.9.1).
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
fn embeds_stdin_lines_like_fastembed() {
    let dir = minilm_dir();
    let (texts, want) = oracle_edge();
    // One document per line: the inputs without line breaks inside them.
    let picked: Vec<usize> = (0..texts.len())
        .filter(|&i| !texts[i].contains('\n') && !texts[i].contains('\r'))
        .collect();
    let input: String = picked.iter().map(|&i| format!("{}\n", texts[i])).collect();
    let out = embed_minilm(
        dir.to_str().unwrap(),
        &["--batch-size", "4"],
        input.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = vectors(&out.stdout);
    assert_eq!(got.len(), picked.len());
    for (g, &i) in got.iter().zip(&picked) {
        assert_eq!(g.len(), want[i].len(), "input {i}: vector length");
        for (a, b) in g.iter().zip(&want[i]) {
            assert!((a - b).abs() <= 1e-5, "input {i}: {a} vs {b}");
        }
    }
}

#[test]
fn arguments_and_output_file() {
    let dir = minilm_dir();
    let tmp = tmpdir("outfile");
    let dest = tmp.join("out.jsonl");
    let out = embed_minilm(
        dir.to_str().unwrap(),
        &[
            "--output",
            dest.to_str().unwrap(),
            "hello world",
            "second document",
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = vectors(&std::fs::read(&dest).unwrap());
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|v| v.len() == 384), "384-d vectors");
    // fastembed's canonical vector for "hello world" with this model.
    let canonical = [-0.034477, 0.031023, 0.006735, 0.026109, -0.039362];
    for (a, b) in got[0].iter().zip(canonical) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        1,
        "a temporary file was left"
    );
}

#[test]
fn invalid_utf8_names_the_line_and_leaves_no_output_file() {
    let dir = minilm_dir();
    let tmp = tmpdir("badutf8");
    let dest = tmp.join("out.jsonl");
    let out = embed_minilm(
        dir.to_str().unwrap(),
        &["--output", dest.to_str().unwrap()],
        b"fine\nalso fine\nbroken \xff\xfe here\n",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3") && err.contains("UTF-8"), "{err}");
    assert!(!dest.exists(), "a partial output file was written");
    // The rows before the bad one are kept, hidden, for --resume, and the message says so.
    let left: Vec<String> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, vec![".out.jsonl.partial".to_string()]);
    assert!(err.contains("--resume"), "{err}");
    let kept = std::fs::read_to_string(tmp.join(".out.jsonl.partial")).unwrap();
    assert_eq!(kept.lines().count(), 2);
}

#[test]
fn empty_input_gives_empty_output() {
    let dir = minilm_dir();
    let out = embed_minilm(dir.to_str().unwrap(), &[], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn unknown_model_lists_close_names() {
    let out = embedkit(&["embed", "--model", "BAAI/bge-smal-en", "x"], b"");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("BAAI/bge-small-en"), "{err}");
    assert!(err.contains("did you mean"), "{err}");
}

#[test]
fn missing_model_file_names_file_and_folder() {
    let tmp = tmpdir("missing");
    let out = embed_minilm(tmp.to_str().unwrap(), &["x"], b"");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("model.onnx"), "{err}");
    assert!(err.contains(tmp.to_str().unwrap()), "{err}");
}

#[test]
fn corrupt_onnx_is_an_error_not_a_crash() {
    let src = minilm_dir();
    let tmp = tmpdir("corrupt");
    for f in [
        "tokenizer.json",
        "tokenizer_config.json",
        "config.json",
        "special_tokens_map.json",
    ] {
        std::fs::copy(src.join(f), tmp.join(f)).unwrap();
    }
    // A truncated copy of the real file, then plain garbage.
    let bytes = std::fs::read(src.join("model.onnx")).unwrap();
    for content in [&bytes[..bytes.len() / 3], &b"this is not an onnx file"[..]] {
        std::fs::write(tmp.join("model.onnx"), content).unwrap();
        let out = embed_minilm(tmp.to_str().unwrap(), &["x"], b"");
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("model.onnx") && err.contains("could not load"),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn models_lists_the_registry() {
    let out = embedkit(&["models", "--json"], b"");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dense"].as_array().unwrap().len(), 41);
    assert_eq!(v["sparse"].as_array().unwrap().len(), 6);
    assert_eq!(v["late_interaction"].as_array().unwrap().len(), 5);
    assert_eq!(v["rerank"].as_array().unwrap().len(), 8);
    assert_eq!(v["image"].as_array().unwrap().len(), 8);
    assert_eq!(
        v["late_interaction_multimodal"].as_array().unwrap().len(),
        2
    );
    assert_eq!(v["bge_m3"].as_array().unwrap().len(), 2);
    let table = embedkit(&["models"], b"");
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.contains("BAAI/bge-small-en-v1.5"));
    assert!(text.contains("prithivida/Splade_PP_en_v1"));
    assert!(text.contains("colbert-ir/colbertv2.0"));
    assert!(text.contains("Qdrant/colpali-v1.3-fp16"));
    assert!(text.contains("BAAI/bge-m3"));
    // seven headers, 41 + 6 + 5 + 8 + 8 + 2 + 2 models, a blank line between sections
    assert_eq!(text.lines().count(), 7 + 41 + 6 + 5 + 8 + 8 + 2 + 2 + 6);
}

#[test]
fn sparse_embeds_with_the_real_splade_model() {
    let dir = repo_root().join("../shared/models/splade-tiny");
    assert!(dir.is_dir(), "{} is missing", dir.display());
    let out = embedkit(
        &["sparse", "--model-path", dir.to_str().unwrap()],
        b"the capital of france is paris\n\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = std::str::from_utf8(&out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let indices: Vec<u64> = serde_json::from_value(lines[0]["indices"].clone()).unwrap();
    assert!(!indices.is_empty());
    assert!(
        indices.windows(2).all(|w| w[0] < w[1]),
        "indices not ascending"
    );
    // "paris" (id 3000 in the bert vocabulary) is among the expanded terms.
    assert!(indices.contains(&3000), "{indices:?}");
}

#[test]
fn query_and_add_prefix_flags() {
    let dir = minilm_dir();
    let d = dir.to_str().unwrap();
    let plain = embed_minilm(d, &["a query"], b"");
    let query = embed_minilm(d, &["--query", "a query"], b"");
    // fastembed's dense models add no prefix in query_embed: the vectors are the same.
    let plain = vectors(&plain.stdout);
    assert!(
        plain.len() == 1 && plain[0].len() == 384,
        "one 384-d vector"
    );
    assert_eq!(plain, vectors(&query.stdout));
    let bad = embed_minilm(d, &["--add-prefix", "x"], b"");
    assert!(!bad.status.success());
}

/// Runs `embedkit sparse ARGS` on the inputs of the oracle case `name`
/// (tests/expected/sparse_cases.json) fed one per line, and returns the largest weight
/// difference; the indices must be the oracle's exactly.
fn sparse_cli_vs_oracle(name: &str, args: &[&str]) -> f32 {
    let root = repo_root();
    let cases: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("tests/expected/sparse_cases.json")).unwrap(),
    )
    .unwrap();
    let case = cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no oracle case {name}"));
    let texts: Vec<String> = match case["inputs"].as_str().unwrap() {
        "corpus" => std::fs::read_to_string(root.join("tests/data/corpus.txt"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect(),
        lang => {
            let all: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(root.join("tests/data/multilingual.json")).unwrap(),
            )
            .unwrap();
            serde_json::from_value(all[lang.strip_prefix("lang:").unwrap()].clone()).unwrap()
        }
    };
    let expected = case["results"].as_array().unwrap();
    let texts = &texts[..expected.len()];
    assert!(texts.iter().all(|t| !t.contains('\n')));
    let dir = repo_root()
        .join("target/test-models")
        .join(case["dir"].as_str().unwrap().strip_prefix("tiny:").unwrap());
    assert!(
        dir.is_dir(),
        "{} is missing: run `make test-models`",
        dir.display()
    );
    let mut all = vec![
        "sparse",
        "--model",
        case["model"].as_str().unwrap(),
        "--model-path",
        dir.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let out = embedkit(&all, (texts.join("\n") + "\n").as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = std::str::from_utf8(&out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), texts.len());
    let mut worst = 0f32;
    for (i, (got, want)) in lines.iter().zip(expected).enumerate() {
        let pairs = |v: &serde_json::Value| -> std::collections::BTreeMap<u64, f32> {
            v["indices"]
                .as_array()
                .unwrap()
                .iter()
                .zip(v["values"].as_array().unwrap())
                .map(|(k, x)| (k.as_u64().unwrap(), x.as_f64().unwrap() as f32))
                .collect()
        };
        let (g, w) = (pairs(got), pairs(want));
        assert!(g.keys().eq(w.keys()), "{name} line {i}: indices differ");
        for (k, x) in &g {
            worst = worst.max((x - w[k]).abs());
        }
    }
    worst
}

#[test]
fn sparse_bm25_cli_gives_the_oracles_exact_weights() {
    assert_eq!(sparse_cli_vs_oracle("bm25-english-embed", &[]), 0.0);
    assert_eq!(
        sparse_cli_vs_oracle(
            "bm25-params",
            &["--k", "0.9", "--b", "0.4", "--avg-len", "60"]
        ),
        0.0
    );
    assert_eq!(sparse_cli_vs_oracle("bm25-corpus-query", &["--query"]), 0.0);
}

#[test]
fn sparse_minicoil_cli_matches_the_oracle() {
    assert!(sparse_cli_vs_oracle("minicoil-corpus", &[]) <= 1e-5);
    assert!(sparse_cli_vs_oracle("minicoil-corpus-query", &["--query"]) <= 1e-5);
    assert!(
        sparse_cli_vs_oracle(
            "minicoil-params",
            &["--k", "0.9", "--b", "0.4", "--avg-len", "60"]
        ) <= 1e-5
    );
}

fn late_cases() -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/expected/late_cases.json")).unwrap(),
    )
    .unwrap()
}

fn read_le<const N: usize, T>(file: &str, from: fn([u8; N]) -> T) -> Vec<T> {
    std::fs::read(repo_root().join("tests/expected").join(file))
        .unwrap()
        .chunks_exact(N)
        .map(|c| from(c.try_into().unwrap()))
        .collect()
}

#[test]
fn late_cli_writes_the_oracles_matrices_and_muvera_encodings() {
    let dir = repo_root().join("target/test-models/colbert-128");
    assert!(
        dir.is_dir(),
        "{} is missing: run `make test-models`",
        dir.display()
    );
    let dir = dir.to_str().unwrap();
    let all = late_cases();
    let case = all["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "colbert-corpus")
        .unwrap();
    let corpus = std::fs::read_to_string(repo_root().join("tests/data/corpus.txt")).unwrap();
    let lines: Vec<&str> = corpus.lines().take(40).collect();
    let out = embedkit(
        &[
            "late",
            "--model",
            "colbert-ir/colbertv2.0",
            "--model-path",
            dir,
        ],
        (lines.join("\n") + "\n").as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = read_le::<4, f32>(case["data_file"].as_str().unwrap(), f32::from_le_bytes);
    let mut got = Vec::new();
    let mut rows = Vec::new();
    for line in std::str::from_utf8(&out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let m: Vec<Vec<f32>> = serde_json::from_value(v["embeddings"].clone()).unwrap();
        rows.push(m.len() as u64);
        got.extend(m.into_iter().flatten());
    }
    let want_rows: Vec<u64> = case["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_u64().unwrap())
        .collect();
    assert_eq!(rows, want_rows);
    assert_eq!(got.len(), want.len(), "token vectors of the oracle's width");
    let d = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(d <= 1e-5, "|diff| {d:e}");

    // --muvera: fastembed's default MUVERA encodings of edge inputs 3..8.
    let edge: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/data/edge_inputs.json")).unwrap(),
    )
    .unwrap();
    let muvera = all["muvera"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "muvera-default")
        .unwrap();
    for (kind, flag) in [("document", None), ("query", Some("--query"))] {
        let spec = &muvera["outputs"][kind];
        let texts = &edge[3..9];
        assert!(texts.iter().all(|t| !t.contains('\n')));
        let mut args = vec![
            "late",
            "--model",
            "colbert-ir/colbertv2.0",
            "--model-path",
            dir,
            "--muvera",
        ];
        args.extend(flag);
        let out = embedkit(&args, (texts.join("\n") + "\n").as_bytes());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want = read_le::<8, f64>(spec["data_file"].as_str().unwrap(), f64::from_le_bytes);
        let got: Vec<f64> = std::str::from_utf8(&out.stdout)
            .unwrap()
            .lines()
            .flat_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                serde_json::from_value::<Vec<f64>>(v["embedding"].clone()).unwrap()
            })
            .collect();
        assert_eq!(got.len(), want.len());
        // The CLI writes f32 and runs the model itself, whose vectors match the
        // oracle's within 1e-5 (float kernels differ between CPUs); query encodings
        // are sums of them, far from 1, so relative, at the model's tolerance.
        let d = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
            .fold(0f64, f64::max);
        assert!(d <= 1e-5, "muvera {kind}: relative |diff| {d:e}");
    }
}

#[test]
fn rerank_cli_scores_like_the_oracle_and_sorts_top_k() {
    let dir = repo_root().join("target/test-models/rerank-bert");
    assert!(
        dir.is_dir(),
        "{} is missing: run `make test-models`",
        dir.display()
    );
    let all: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/expected/rerank_cases.json")).unwrap(),
    )
    .unwrap();
    let case = all["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "rerank-jina-turbo-corpus")
        .unwrap();
    let want: Vec<f64> = case["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let corpus = std::fs::read_to_string(repo_root().join("tests/data/corpus.txt")).unwrap();
    let stdin = corpus.lines().take(40).collect::<Vec<_>>().join("\n") + "\n";
    let base = [
        "rerank",
        "--model",
        "jinaai/jina-reranker-v1-turbo-en",
        "--model-path",
        dir.to_str().unwrap(),
        "--query",
        case["query"].as_str().unwrap(),
    ];
    let out = embedkit(&base, stdin.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = std::str::from_utf8(&out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), want.len());
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["index"].as_u64().unwrap() as usize, i);
        let d = (row["score"].as_f64().unwrap() - want[i]).abs();
        assert!(d <= 1e-5, "document {i}: |diff| {d:e}");
    }

    let mut args = base.to_vec();
    args.extend(["--top-k", "3"]);
    let out = embedkit(&args, stdin.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<u64> = std::str::from_utf8(&out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["index"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let mut order: Vec<usize> = (0..want.len()).collect();
    order.sort_by(|&a, &b| want[b].total_cmp(&want[a]));
    let expect: Vec<u64> = order.iter().take(3).map(|&i| i as u64).collect();
    assert_eq!(got, expect);
}

#[test]
fn embed_image_cli_matches_the_oracle_and_names_bad_files() {
    let dir = repo_root().join("target/test-models/vision-clip-512");
    assert!(
        dir.is_dir(),
        "{} is missing: run `make test-models`",
        dir.display()
    );
    let all: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/expected/image_cases.json")).unwrap(),
    )
    .unwrap();
    let case = &all["cases"][0];
    assert_eq!(case["name"], "image-clip");
    let images: Vec<String> = case["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            repo_root()
                .join("tests/data/images")
                .join(n.as_str().unwrap())
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut args = vec![
        "embed-image",
        "--model",
        "Qdrant/clip-ViT-B-32-vision",
        "--model-path",
        dir.to_str().unwrap(),
    ];
    args.extend(images.iter().map(String::as_str));
    let out = embedkit(&args, b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = vectors(&out.stdout);
    let want = read_le::<4, f32>(case["data_file"].as_str().unwrap(), f32::from_le_bytes);
    assert_eq!(got.len(), images.len());
    assert_eq!(
        got.iter().map(Vec::len).sum::<usize>(),
        want.len(),
        "vectors of the oracle's width"
    );
    let d = got
        .iter()
        .flatten()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(d <= 1e-4, "|diff| {d:e}");

    let tmp = tmpdir("bad-image");
    let bad = tmp.join("broken.jpg");
    std::fs::write(&bad, b"\xff\xd8\xff\xe0 not a jpeg").unwrap();
    let output = tmp.join("out.jsonl");
    let out = embedkit(
        &[
            "embed-image",
            "--model",
            "Qdrant/clip-ViT-B-32-vision",
            "--model-path",
            dir.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            &images[0],
            bad.to_str().unwrap(),
        ],
        b"",
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.jpg"), "{stderr}");
    assert!(!output.exists(), "a failed run left {}", output.display());
}

#[test]
fn search_ranks_documents_as_fastembeds_vectors_do() {
    let dir = minilm_dir();
    let (texts, want) = oracle_edge();
    // One-line inputs; the first is the query, the others the documents.
    let picked: Vec<usize> = (0..texts.len())
        .filter(|&i| !texts[i].contains('\n') && !texts[i].contains('\r') && !texts[i].is_empty())
        .take(12)
        .collect();
    let (query, docs) = (picked[0], &picked[1..]);
    let input: String = docs.iter().map(|&i| format!("{}\n", texts[i])).collect();
    let out = embedkit(
        &[
            "search",
            "--model",
            MINILM,
            "--model-path",
            dir.to_str().unwrap(),
            "--query",
            &texts[query],
            "--top-k",
            "5",
            "--json",
        ],
        input.as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<serde_json::Value> = std::str::from_utf8(&out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The ranking fastembed's vectors give (they are unit vectors: cosine is the dot).
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let mut expected: Vec<(usize, f32)> = docs
        .iter()
        .enumerate()
        .map(|(pos, &i)| (pos, dot(&want[query], &want[i])))
        .collect();
    expected.sort_by(|a, b| b.1.total_cmp(&a.1));
    assert_eq!(got.len(), 5);
    for (rank, (line, (pos, score))) in got.iter().zip(&expected).enumerate() {
        assert_eq!(line["rank"], rank + 1);
        assert_eq!(line["index"], *pos, "{got:?}");
        assert_eq!(line["text"], texts[docs[*pos]].as_str());
        let s = line["score"].as_f64().unwrap() as f32;
        assert!((s - score).abs() < 1e-5, "{s} vs {score}");
    }
}

/// `embedkit env --json` with the runtime named by ORT_DYLIB_PATH and a cache holding one
/// model of known size: every field a bug report needs, checked against what the test
/// itself finds (the file it pointed at, the CPU as std reports it, the bytes it wrote).
#[test]
fn env_reports_runtime_cpu_and_cache() {
    let (library, _) = embedkit::unstable::runtime::find_library(None)
        .expect("the ONNX Runtime library (make setup) is needed by this test");
    let cache = tmpdir("env-cache");
    let blobs = cache.join("models--org--tiny/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join("a"), vec![0u8; 1000]).unwrap();
    std::fs::write(blobs.join("b"), vec![0u8; 234]).unwrap();
    std::fs::create_dir_all(cache.join("models--org--tiny/snapshots/abc")).unwrap();
    let run = |lib: &std::path::Path, json: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_embedkit"));
        cmd.args(["env", "--cache-dir"]).arg(&cache);
        if json {
            cmd.arg("--json");
        }
        cmd.env("ORT_DYLIB_PATH", lib).output().unwrap()
    };
    let out = run(&library, true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["embedkit"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        r["runtime"]["version"],
        embedkit::unstable::runtime::ORT_VERSION,
        "{r}"
    );
    assert_eq!(r["runtime"]["library"], library.to_str().unwrap());
    assert_eq!(r["runtime"]["found_by"], "env_var");
    let providers = r["runtime"]["providers"].as_array().unwrap();
    assert!(providers.contains(&"CPUExecutionProvider".into()), "{r}");
    #[cfg(target_arch = "x86_64")]
    {
        assert_eq!(
            r["cpu"]["features"]["avx2"],
            std::is_x86_feature_detected!("avx2")
        );
        assert_eq!(
            r["cpu"]["features"]["avx512f"],
            std::is_x86_feature_detected!("avx512f")
        );
    }
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(r["cpu"]["logical_cores"], cores);
    assert_eq!(r["cache"]["models"], 1);
    assert_eq!(r["cache"]["bytes"], 1234);

    // A runtime that does not load is reported, with everything else, and is no failure.
    let out = run(
        std::path::Path::new("/nonexistent/libonnxruntime.so"),
        false,
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("onnxruntime   not loaded:") && text.contains("/nonexistent"),
        "{text}"
    );
    assert!(text.contains("(1 model, 0.0 MB)"), "{text}");
    let _ = std::fs::remove_dir_all(&cache);
}

/// Completions and man pages come from the same clap definitions as the commands: every
/// command is in them, the bash script parses, and each command has its page.
#[test]
fn completions_and_man_pages_cover_every_command() {
    let help = embedkit(&["--help"], b"");
    let help = String::from_utf8(help.stdout).unwrap();
    // The commands as --help lists them ("  name  description").
    let commands: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|c| c != "help")
        .collect();
    assert!(
        commands.len() >= 12 && commands.contains(&"env".to_string()),
        "{commands:?}"
    );
    for shell in ["bash", "zsh", "fish"] {
        let out = embedkit(&["completions", shell], b"");
        assert!(out.status.success());
        let script = String::from_utf8(out.stdout).unwrap();
        for c in &commands {
            assert!(script.contains(c.as_str()), "{shell} completions miss {c}");
        }
    }
    let bash = embedkit(&["completions", "bash"], b"").stdout;
    let check = Command::new("bash")
        .args(["-n", "/dev/stdin"])
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(&bash)?;
            c.wait()
        })
        .unwrap();
    assert!(check.success(), "the bash completion script does not parse");

    let dir = tmpdir("man");
    let out = embedkit(&["man", "--dir", dir.to_str().unwrap()], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for page in std::iter::once("embedkit".to_string())
        .chain(commands.iter().map(|c| format!("embedkit-{c}")))
    {
        let text = std::fs::read_to_string(dir.join(format!("{page}.1")))
            .unwrap_or_else(|e| panic!("{page}.1: {e}"));
        assert!(
            text.contains(&format!(".TH {page} 1")),
            "{page}.1 has no title"
        );
    }
    let main = embedkit(&["man"], b"").stdout;
    assert!(String::from_utf8(main).unwrap().contains(".SH SUBCOMMANDS"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `args` with stderr on a pseudo-terminal (80 columns) and stdout piped; returns
/// the exit status and everything the terminal received.
fn run_with_terminal_stderr(args: &[&str]) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    let (mut master, mut slave) = (-1, -1);
    let size = libc::winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty fills two new descriptors, which the OwnedFds below then own.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty failed");
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut child = Command::new(env!("CARGO_BIN_EXE_embedkit"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    // The command's Stdio held the only slave descriptor besides the child's: once the
    // child exits, reading the master ends (EIO on Linux).
    let reader = std::thread::spawn(move || {
        let mut file = std::fs::File::from(master);
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match file.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    let status = child.wait().unwrap();
    (status, reader.join().unwrap())
}

/// On a terminal, a file input shows a bar with the total, a rate and an ETA, then a
/// summary; piped stderr gets only the summary; --quiet gets nothing.
#[test]
fn progress_shows_total_rate_and_eta_on_a_terminal() {
    let dir = tmpdir("progress");
    let input = dir.join("docs.txt");
    let docs: String = (0..3000)
        .map(|i| format!("document number {i}\n"))
        .collect();
    std::fs::write(&input, docs).unwrap();
    let out = dir.join("out.jsonl");
    let model = minilm_dir();
    let args = [
        "embed",
        "--model",
        MINILM,
        "--model-path",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ];
    let (status, screen) = run_with_terminal_stderr(&args);
    assert!(status.success(), "{screen}");
    assert!(
        screen.contains("/3,000 documents"),
        "no total shown: {screen:?}"
    );
    assert!(
        screen.contains("/s") && screen.contains("ETA"),
        "{screen:?}"
    );
    assert!(
        screen.contains("embedkit: 3000 documents in "),
        "{screen:?}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 3000);

    let piped = embedkit(&args, b"");
    assert!(piped.status.success());
    let stderr = String::from_utf8(piped.stderr).unwrap();
    assert!(!stderr.contains("ETA"), "a bar on a pipe: {stderr:?}");
    assert!(
        stderr.starts_with("embedkit: 3000 documents in "),
        "{stderr:?}"
    );
    assert!(stderr.contains(out.to_str().unwrap()), "{stderr:?}");

    let mut quiet_args = args.to_vec();
    quiet_args.push("--quiet");
    let (status, screen) = run_with_terminal_stderr(&quiet_args);
    assert!(status.success());
    assert_eq!(screen, "", "--quiet printed something");
    let _ = std::fs::remove_dir_all(&dir);
}
