//! The `embedkit` binary, run as a user would, on the real all-MiniLM-L6-v2 fp32 model.

use crate::common;

use std::io::Write;
use std::path::PathBuf;

use common::{repo_root, tmpdir};
use std::process::{Command, Output, Stdio};

pub(crate) const MINILM: &str = "sentence-transformers/all-MiniLM-L6-v2";

pub(crate) fn minilm_dir() -> PathBuf {
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

pub(crate) fn embedkit(args: &[&str], stdin: &[u8]) -> Output {
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

pub(crate) fn vectors(stdout: &[u8]) -> Vec<Vec<f32>> {
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

/// The inputs without line breaks inside them, one per line: their indexes and the text.
fn one_per_line(texts: &[String]) -> (Vec<usize>, String) {
    let picked: Vec<usize> = (0..texts.len())
        .filter(|&i| !texts[i].contains('\n') && !texts[i].contains('\r'))
        .collect();
    let input = picked.iter().map(|&i| format!("{}\n", texts[i])).collect();
    (picked, input)
}

#[test]
fn embeds_stdin_lines_like_fastembed() {
    let (texts, want) = oracle_edge();
    let (picked, input) = one_per_line(&texts);
    embeds_lines_as_the_oracle(&["--batch-size", "4"], &input, &picked, &want);
}

/// `embed` of `input` (the edge inputs `picked`, one per line) with `args` gives the
/// oracle's `want` rows for them, within 1e-5.
fn embeds_lines_as_the_oracle(args: &[&str], input: &str, picked: &[usize], want: &[Vec<f32>]) {
    let out = embed_minilm(minilm_dir().to_str().unwrap(), args, input.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = vectors(&out.stdout);
    assert_eq!(got.len(), picked.len());
    for (g, &i) in got.iter().zip(picked) {
        assert_eq!(g.len(), want[i].len(), "input {i}: vector length");
        for (a, b) in g.iter().zip(&want[i]) {
            assert!((a - b).abs() <= 1e-5, "{args:?}, input {i}: {a} vs {b}");
        }
    }
}

/// `--truncation-side left` keeps the end of an over-long text: fastembed's vectors with
/// its tokenizer set to cut at the left (tests/expected/minilm-fp32-left); `right` is
/// the model's own cut.
#[test]
fn truncation_side_left_keeps_the_end_of_long_texts_as_fastembed_does() {
    let (texts, right) = oracle_edge();
    let left = crate::common::server::oracle_rows("minilm-fp32-left.f32", 384);
    let (picked, input) = one_per_line(&texts);
    assert!(picked.contains(&6), "the 21 kB input is one line");
    embeds_lines_as_the_oracle(&["--truncation-side", "left"], &input, &picked, &left);
    embeds_lines_as_the_oracle(&["--truncation-side", "right"], &input, &picked, &right);
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
    // eight headers (fastembed's families, BGE-M3 and the test family these tests are
    // built with), 41 + 6 + 5 + 8 + 8 + 2 + 2 + 1 models, a blank line between sections
    assert_eq!(text.lines().count(), 8 + 41 + 6 + 5 + 8 + 8 + 2 + 2 + 1 + 7);
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
    // BM25's flags do not apply to SPLADE: refused before any output, not ignored.
    for flag in [
        &["--language", "german"][..],
        &["--k", "0.9"],
        &["--disable-stemmer"],
    ] {
        let mut args = vec!["sparse", "--model-path", dir.to_str().unwrap()];
        args.extend_from_slice(flag);
        let out = embedkit(&args, b"paris\n");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag:?}: {err}");
        assert!(
            out.stdout.is_empty() && err.contains(&flag[0][2..].replace('-', "_")),
            "{err}"
        );
    }
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
